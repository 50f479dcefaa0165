//! Disputes settled by re-execution: the pool, the draw, commit and reveal, and every
//! outcome's money, to the lamport.
use anchor_lang::prelude::Pubkey;
use solana_signer::Signer;
use tensorgrid::instructions::{DisputeVoteArgs, WorkerUpdateArgs};
use tensorgrid_client::{
    constants::POOL_SIZE,
    event_types::{RefundReason, Settlement},
    events::Event,
    instructions as ix, pda,
    state::{draw_seats, Dispute, DisputePhase, PoolEntry, Tally, VerifierPool},
    TensorgridError,
};
use tensorgrid_harness::{fixtures::*, TestEnv};

/// The end state an honest re-run of a faked segment reaches.
const OTHER_HASH: [u8; 32] = [0x0f; 32];

/// A disputed job whose verifiers are drawn from `verifiers`.
struct Court {
    lc: Lifecycle,
    verifiers: Vec<WorkerFx>,
    dispute: Pubkey,
}

impl Court {
    /// `n` CPU verifiers with `stake` each join the pool; the job is submitted, disputed and
    /// drawn.
    fn new(env: &mut TestEnv, n: usize, stake: u64) -> Self {
        let lc = Lifecycle::submitted(env);
        let verifiers = (0..n)
            .map(|_| {
                let v = lc.market.worker(env, cpu(), stake);
                v.join_pool(env).expect("verifier_join");
                v
            })
            .collect();
        Self::dispute_and_draw(env, lc, verifiers)
    }

    fn dispute_and_draw(env: &mut TestEnv, lc: Lifecycle, verifiers: Vec<WorkerFx>) -> Self {
        lc.dispute(env).expect("job_dispute");
        env.next_slot();
        lc.draw(env).expect("dispute_draw");
        let dispute = pda::dispute(&lc.job.address);
        Self {
            lc,
            verifiers,
            dispute,
        }
    }

    fn state(&self, env: &TestEnv) -> Dispute {
        env.get(&self.dispute).expect("dispute exists")
    }

    /// The worker fixture in seat `i`.
    fn seat(&self, env: &TestEnv, i: usize) -> &WorkerFx {
        let key = self.state(env).seats[i].worker;
        self.verifiers
            .iter()
            .find(|v| v.address == key)
            .expect("a seat is one of the verifiers")
    }

    /// Seat `i` commits to and reveals `hash` (reveals once all have committed or the commit
    /// window closed, so call `vote_all`).
    fn vote_all(&self, env: &mut TestEnv, hashes: [Option<[u8; 32]>; 3]) {
        for (i, h) in hashes.iter().enumerate() {
            if let Some(h) = h {
                self.seat(env, i).commit(env, self.dispute, *h).unwrap();
            }
        }
        if hashes.iter().any(Option::is_none) {
            env.warp(default_params().dispute.verify_window_s + 1);
        }
        for (i, h) in hashes.iter().enumerate() {
            if let Some(h) = h {
                self.seat(env, i).reveal(env, self.dispute, *h).unwrap();
            }
        }
    }

    fn fee(&self) -> u64 {
        self.lc.reward * 300 / 10_000
    }

    fn bond(&self) -> u64 {
        self.lc.reward * 1_000 / 10_000
    }
}

fn tallied(events: &[Event]) -> &tensorgrid_client::event_types::DisputeTallied {
    events
        .iter()
        .find_map(|e| match e {
            Event::DisputeTallied(t) => Some(t),
            _ => None,
        })
        .expect("a DisputeTallied event")
}

#[test]
fn three_verifiers_uphold_an_honest_result_and_the_bond_pays_them_and_the_worker() {
    let mut env = TestEnv::new();
    let c = Court::new(&mut env, 4, 3 * SOL);
    let d = c.state(&env);
    assert_eq!(d.phase, DisputePhase::Voting);
    let seats: Vec<_> = (0..3).map(|i| c.seat(&env, i).address).collect();
    for s in &seats {
        let w = env.get::<tensorgrid_client::state::Worker>(s).unwrap();
        assert_eq!((w.open_seats, w.seat_reserve), (1, c.fee()), "locked");
    }
    let poster_before = env.lamports(&c.lc.poster.pubkey());
    let job_held = env.lamports(&c.lc.job.address);
    let dispute_rent = env.rent_exempt(Dispute::SPACE);
    c.vote_all(&mut env, [Some(END_HASH); 3]);
    let tx = c.lc.settle_dispute(&mut env).unwrap();
    let t = tallied(&tx.events()).clone();
    assert_eq!(t.tally, Tally::Upheld);
    assert_eq!((t.seat_fees, t.seat_forfeits), ([c.fee(); 3], [0; 3]));
    let market_fee = c.lc.reward * 250 / 10_000;
    let compensation = c.bond() - 3 * c.fee();
    assert!(tx.events().iter().any(|e| matches!(e, Event::JobPaid(p)
        if p.settlement == Settlement::UpheldByVerifiers && p.payout == c.lc.reward - market_fee)));
    assert!(tx
        .events()
        .iter()
        .any(|e| matches!(e, Event::DisputeClosed(d)
        if d.to_worker == compensation && d.to_poster == 0 && d.rent_refunded == dispute_rent)));
    // The honest worker: paid as if accepted, plus what is left of the bond.
    let w = c.lc.worker.state(&env);
    assert_eq!(
        (w.stake, w.earnings, w.active(), w.record.jobs_completed),
        (2 * SOL, c.lc.reward - market_fee + compensation, None, 1)
    );
    for s in &seats {
        let v = env.get::<tensorgrid_client::state::Worker>(s).unwrap();
        assert_eq!(
            (v.stake, v.earnings, v.open_seats, v.seat_reserve),
            (3 * SOL, c.fee(), 0, 0)
        );
        assert_eq!(v.record.verifications, 1);
    }
    // The poster lost the bond and nothing else: both rents came back.
    assert_eq!(
        env.lamports(&c.lc.poster.pubkey()) - poster_before,
        job_held - c.lc.reward + dispute_rent
    );
    assert!(env.account(&c.lc.job.address).is_none());
    assert!(env.account(&c.dispute).is_none());
    assert_eq!(c.lc.market.state(&env).fees_unclaimed, market_fee);
}

#[test]
fn three_verifiers_find_a_fraud_and_the_cheat_loses_more_than_it_could_gain() {
    let mut env = TestEnv::new();
    let c = Court::new(&mut env, 3, 3 * SOL);
    let poster_before = env.lamports(&c.lc.poster.pubkey());
    let job_held = env.lamports(&c.lc.job.address);
    let dispute_held = env.lamports(&c.dispute);
    let seats: Vec<_> = (0..3).map(|i| c.seat(&env, i).address).collect();
    c.vote_all(&mut env, [Some(OTHER_HASH); 3]);
    let tx = c.lc.settle_dispute(&mut env).unwrap();
    assert_eq!(tallied(&tx.events()).tally, Tally::Fraud);
    let slashed = c.lc.reward; // collateral = reward, fraud slash 100 %
    assert!(tx.events().iter().any(|e| matches!(e, Event::JobRefunded(r)
        if r.reason == RefundReason::FraudFound && r.slashed == slashed)));
    let w = c.lc.worker.state(&env);
    assert_eq!(
        (w.stake, w.earnings, w.record.disputes_lost),
        (2 * SOL - slashed, 0, 1)
    );
    let gain_if_unchallenged = c.lc.reward - c.lc.reward * 250 / 10_000;
    assert!(slashed > gain_if_unchallenged);
    // The poster: escrow, bond and rents back, plus the slash less the verifiers' fees.
    assert_eq!(
        env.lamports(&c.lc.poster.pubkey()) - poster_before,
        job_held + dispute_held + slashed - 3 * c.fee()
    );
    for s in &seats {
        let v: tensorgrid_client::state::Worker = env.get(s).unwrap();
        assert_eq!((v.earnings, v.stake), (c.fee(), 3 * SOL));
    }
    assert_eq!(
        c.lc.market.state(&env).fees_unclaimed,
        0,
        "no fee on a fraud"
    );
}

#[test]
fn a_verifier_against_the_majority_forfeits_to_the_majority() {
    let mut env = TestEnv::new();
    let c = Court::new(&mut env, 3, 3 * SOL);
    let wrong = c.seat(&env, 2).address;
    c.vote_all(&mut env, [Some(END_HASH), Some(END_HASH), Some(OTHER_HASH)]);
    let tx = c.lc.settle_dispute(&mut env).unwrap();
    let events = tx.events();
    let t = tallied(&events);
    assert_eq!(t.tally, Tally::Upheld);
    // The wrong seat's forfeit is shared by the two right ones: deviating never pays.
    let share = c.fee() / 2;
    assert_eq!(t.seat_fees, [c.fee() + share, c.fee() + share, 0]);
    assert_eq!(t.seat_forfeits, [0, 0, c.fee()]);
    let v: tensorgrid_client::state::Worker = env.get(&wrong).unwrap();
    assert_eq!(
        (v.stake, v.earnings, v.record.verifications_failed),
        (3 * SOL - c.fee(), 0, 1)
    );
    // The worker gets the bond less two fees (and an odd lamport of the forfeit, if any).
    let market_fee = c.lc.reward * 250 / 10_000;
    assert_eq!(
        c.lc.worker.state(&env).earnings,
        c.lc.reward - market_fee + c.bond() - 2 * c.fee() + (c.fee() - 2 * share)
    );
}

#[test]
fn verifiers_that_never_commit_or_reveal_forfeit_and_voting_waits_for_the_window() {
    let mut env = TestEnv::new();
    let c = Court::new(&mut env, 3, 3 * SOL);
    let (s0, s1, s2) = (c.seat(&env, 0), c.seat(&env, 1), c.seat(&env, 2));
    s0.commit(&mut env, c.dispute, OTHER_HASH).unwrap();
    s1.commit(&mut env, c.dispute, OTHER_HASH).unwrap();
    // Seat 2 never commits; reveals wait for the commit window.
    assert_err(
        s0.reveal(&mut env, c.dispute, OTHER_HASH),
        TensorgridError::RevealNotOpen,
    );
    env.warp(default_params().dispute.verify_window_s + 1);
    assert_err(
        s2.commit(&mut env, c.dispute, OTHER_HASH),
        TensorgridError::CommitWindowClosed,
    );
    s0.reveal(&mut env, c.dispute, OTHER_HASH).unwrap();
    assert_err(
        c.lc.settle_dispute(&mut env),
        TensorgridError::VotingNotOver,
    );
    // Seat 1 committed but never reveals.
    env.warp(default_params().dispute.verify_window_s);
    assert_err(
        s1.reveal(&mut env, c.dispute, OTHER_HASH),
        TensorgridError::RevealWindowClosed,
    );
    let poster_before = env.lamports(&c.lc.poster.pubkey());
    let tx = c.lc.settle_dispute(&mut env).unwrap();
    // One reveal is no majority: the authority rules; both absent seats forfeit.
    let events = tx.events();
    let t = tallied(&events);
    assert_eq!(t.tally, Tally::Undecided);
    assert_eq!(t.seat_forfeits, [0, c.fee(), c.fee()]);
    assert_eq!(t.seat_fees, [0; 3]);
    assert_eq!(
        t.dispute_ends_at,
        env.now() + default_params().resolve_window_s
    );
    let d = c.state(&env);
    assert_eq!(
        (d.phase, d.forfeits),
        (DisputePhase::Escalated, 2 * c.fee())
    );
    assert_eq!(env.lamports(&c.lc.poster.pubkey()), poster_before);
    // The authority rules for the poster: bond and forfeits back to the poster.
    let dispute_held = env.lamports(&c.dispute);
    let job_held = env.lamports(&c.lc.job.address);
    let auth = &c.lc.market.authority;
    env.send(
        &[ix::job_resolve(auth.pubkey(), c.lc.settle_keys(), false)],
        &[auth],
    )
    .unwrap();
    let slashed = c.lc.reward * 5_000 / 10_000;
    assert_eq!(
        env.lamports(&c.lc.poster.pubkey()) - poster_before,
        job_held + dispute_held + slashed
    );
}

#[test]
fn a_tie_goes_to_the_authority_and_if_it_is_silent_the_result_stands() {
    let mut env = TestEnv::new();
    let c = Court::new(&mut env, 3, 3 * SOL);
    c.vote_all(&mut env, [Some(END_HASH), Some(OTHER_HASH), None]);
    env.warp(default_params().dispute.verify_window_s);
    let tx = c.lc.settle_dispute(&mut env).unwrap();
    let events = tx.events();
    let t = tallied(&events);
    assert_eq!(t.tally, Tally::Undecided);
    // A disagreement proves neither side wrong: only the absent seat forfeits.
    assert_eq!(t.seat_forfeits, [0, 0, c.fee()]);
    let poster_before = env.lamports(&c.lc.poster.pubkey());
    let dispute_held = env.lamports(&c.dispute);
    let job_held = env.lamports(&c.lc.job.address);
    env.warp(default_params().resolve_window_s + 1);
    let cranker = env.funded(SOL);
    env.send(&[ix::job_dispute_timeout(c.lc.settle_keys())], &[&cranker])
        .unwrap();
    let market_fee = c.lc.reward * 250 / 10_000;
    assert_eq!(
        c.lc.worker.state(&env).earnings,
        c.lc.reward - market_fee,
        "paid: nothing showed the result wrong"
    );
    assert_eq!(
        env.lamports(&c.lc.poster.pubkey()) - poster_before,
        job_held - c.lc.reward + dispute_held,
        "the bond and the forfeit back: nothing showed the dispute wrong"
    );
}

#[test]
fn a_reveal_that_differs_from_the_commitment_is_refused_and_the_seat_forfeits() {
    let mut env = TestEnv::new();
    let c = Court::new(&mut env, 3, 3 * SOL);
    let (s0, s1, s2) = (c.seat(&env, 0), c.seat(&env, 1), c.seat(&env, 2));
    s0.commit(&mut env, c.dispute, OTHER_HASH).unwrap();
    s1.commit(&mut env, c.dispute, OTHER_HASH).unwrap();
    s2.commit(&mut env, c.dispute, OTHER_HASH).unwrap();
    // Every seat has committed: reveals open at once.
    assert_err(
        s2.reveal(&mut env, c.dispute, END_HASH),
        TensorgridError::RevealMismatch,
    );
    s0.reveal(&mut env, c.dispute, OTHER_HASH).unwrap();
    s1.reveal(&mut env, c.dispute, OTHER_HASH).unwrap();
    assert_err(
        s1.reveal(&mut env, c.dispute, OTHER_HASH),
        TensorgridError::AlreadyRevealed,
    );
    env.warp(2 * default_params().dispute.verify_window_s + 1);
    let tx = c.lc.settle_dispute(&mut env).unwrap();
    let events = tx.events();
    let t = tallied(&events);
    assert_eq!(t.tally, Tally::Fraud);
    assert_eq!(t.seat_forfeits, [0, 0, c.fee()]);
}

#[test]
fn the_workers_sybil_verifiers_do_not_decide_its_dispute() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::submitted(&mut env);
    // The cheating worker's operator registered three verifiers of its own beforehand, each
    // with the market's minimum stake; three honest verifiers stake 20 SOL each.
    let sybils: Vec<_> = (0..3)
        .map(|_| {
            let v = lc.market.worker(&mut env, cpu(), SOL);
            v.join_pool(&mut env).unwrap();
            v
        })
        .collect();
    let honest: Vec<_> = (0..3)
        .map(|_| {
            let v = lc.market.worker(&mut env, cpu(), 20 * SOL);
            v.join_pool(&mut env).unwrap();
            v
        })
        .collect();
    let sybil_keys: Vec<_> = sybils.iter().map(|s| s.address).collect();
    let mut all = sybils;
    all.extend(honest);
    let c = Court::dispute_and_draw(&mut env, lc, all);
    let seats = c.state(&env).seats.map(|s| s.worker);
    // A sybil without a seat cannot race to vote.
    for s in c.verifiers.iter().filter(|v| !seats.contains(&v.address)) {
        assert_err(
            s.commit(&mut env, c.dispute, END_HASH),
            TensorgridError::NotVerifier,
        );
    }
    // The seated sybils vote for the worker's faked end state; the honest re-run differs.
    let votes = seats.map(|s| {
        Some(if sybil_keys.contains(&s) {
            END_HASH
        } else {
            OTHER_HASH
        })
    });
    c.vote_all(&mut env, votes);
    let tx = c.lc.settle_dispute(&mut env).unwrap();
    assert_eq!(tallied(&tx.events()).tally, Tally::Fraud);

    // Over many slot hashes: a third of the pool's keys but 1/21 of its stake takes a
    // majority of the seats in about 3·(1/21)² of draws, not a third.
    let entries: Vec<PoolEntry> = (0..6u8)
        .map(|i| {
            PoolEntry::new(
                Pubkey::new_from_array([i + 1; 32]),
                Pubkey::new_from_array([i + 101; 32]),
                if i < 3 { SOL } else { 20 * SOL },
                Default::default(),
            )
        })
        .collect();
    let sybil = |k: &Pubkey| k.to_bytes()[0] <= 3;
    let share = |entries: &[PoolEntry]| {
        let draws = 4_000u32;
        let captured = (0..draws)
            .filter(|n| {
                let mut seed = [0u8; 32];
                seed[..4].copy_from_slice(&n.to_le_bytes());
                let none = Pubkey::default();
                let seats = draw_seats(entries, Default::default(), &none, &none, &seed).unwrap();
                seats.iter().filter(|k| sybil(k)).count() >= 2
            })
            .count();
        captured as f64 / draws as f64
    };
    let small = share(&entries);
    assert!(small < 0.02, "1/21 of the stake captured {small} of draws");
    // Half the stake captures about half the draws: it is stake that decides, not keys.
    let even: Vec<_> = entries
        .iter()
        .map(|e| PoolEntry {
            weight: if sybil(&e.worker) { 20 * SOL } else { e.weight },
            ..*e
        })
        .collect();
    let half = share(&even);
    assert!((0.45..0.55).contains(&half), "half the stake: {half}");
}

#[test]
fn the_draw_excludes_the_parties_and_other_device_classes() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::submitted(&mut env);
    // The disputed worker and the poster's own worker sit in the pool; so do two CUDA rigs
    // (which cannot reproduce a CPU result bit for bit) and two CPU verifiers.
    let top_up = WorkerUpdateArgs {
        add_stake: SOL,
        ..Default::default()
    };
    env.send(
        &[ix::worker_update(
            lc.worker.operator.pubkey(),
            lc.market.address,
            lc.worker.address,
            top_up,
        )],
        &[&lc.worker.operator],
    )
    .unwrap();
    lc.worker.join_pool(&mut env).unwrap();
    let posters_own = lc.market.worker_for(&mut env, &lc.poster, cpu(), SOL);
    posters_own.join_pool(&mut env).unwrap();
    for _ in 0..2 {
        let v = lc.market.worker(&mut env, cuda(24_576), 50 * SOL);
        v.join_pool(&mut env).unwrap();
        let v = lc.market.worker(&mut env, cpu(), SOL);
        v.join_pool(&mut env).unwrap();
    }
    // Two eligible are too few: the dispute goes to the authority at once.
    let c = Court::dispute_and_draw(&mut env, lc, vec![]);
    assert_eq!(c.state(&env).phase, DisputePhase::Escalated);
    assert!(c
        .state(&env)
        .seats
        .iter()
        .all(|s| s.worker == Pubkey::default()));
}

#[test]
fn draw_and_settle_name_exactly_the_drawn_seats() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::submitted(&mut env);
    let verifiers: Vec<_> = (0..4)
        .map(|_| {
            let v = lc.market.worker(&mut env, cpu(), 3 * SOL);
            v.join_pool(&mut env).unwrap();
            v
        })
        .collect();
    lc.dispute(&mut env).unwrap();
    env.next_slot();
    let seats = expected_seats(&env, &lc.job);
    assert_eq!(seats.len(), 3);
    let cranker = env.funded(SOL);
    let unseated = verifiers
        .iter()
        .find(|v| !seats.contains(&v.address))
        .unwrap()
        .address;
    let mut wrong = seats.clone();
    wrong[1] = unseated;
    assert_err(
        env.send(
            &[ix::dispute_draw(
                lc.market.address,
                lc.job.address,
                &seats[..2],
            )],
            &[&cranker],
        ),
        TensorgridError::SeatCount,
    );
    for bad in [wrong, vec![seats[1], seats[0], seats[2]]] {
        assert_err(
            env.send(
                &[ix::dispute_draw(lc.market.address, lc.job.address, &bad)],
                &[&cranker],
            ),
            TensorgridError::SeatMismatch,
        );
    }
    env.send(
        &[ix::dispute_draw(lc.market.address, lc.job.address, &seats)],
        &[&cranker],
    )
    .unwrap();
    let mut named = [seats[0], seats[1], seats[2]];
    named.swap(0, 2);
    assert!(env
        .send(&[ix::dispute_settle(lc.settle_keys(), named)], &[&cranker])
        .is_err());
}

#[test]
fn a_seated_or_pooled_verifier_keeps_its_stake_until_it_is_free() {
    let mut env = TestEnv::new();
    let c = Court::new(&mut env, 4, 3 * SOL);
    let seated = c.seat(&env, 0);
    let withdraw = |v: &WorkerFx, amount| {
        ix::worker_update(
            v.operator.pubkey(),
            v.market,
            v.address,
            WorkerUpdateArgs {
                withdraw_stake: amount,
                ..Default::default()
            },
        )
    };
    assert_err(
        env.send(&[withdraw(seated, SOL)], &[&seated.operator]),
        TensorgridError::VerifierSeated,
    );
    assert_err(
        env.send(
            &[ix::worker_deregister(
                seated.operator.pubkey(),
                seated.market,
                seated.address,
            )],
            &[&seated.operator],
        ),
        TensorgridError::VerifierSeated,
    );
    // Nor leave the pool: the seat's reserve is part of its pledge.
    assert_err(
        env.send(&[ix::verifier_leave(seated.keys())], &[&seated.operator]),
        TensorgridError::VerifierSeated,
    );
    // A pooled verifier without a seat: its pledge stays until it leaves.
    let seats = c.state(&env).seats.map(|s| s.worker);
    let free = c
        .verifiers
        .iter()
        .find(|v| !seats.contains(&v.address))
        .unwrap();
    assert_err(
        env.send(&[withdraw(free, SOL)], &[&free.operator]),
        TensorgridError::StakePledged,
    );
    let new_hw = WorkerUpdateArgs {
        hardware: Some(cuda(8_192)),
        ..Default::default()
    };
    assert_err(
        env.send(
            &[ix::worker_update(
                free.operator.pubkey(),
                free.market,
                free.address,
                new_hw,
            )],
            &[&free.operator],
        ),
        TensorgridError::StakePledged,
    );
    assert_err(
        env.send(
            &[ix::worker_deregister(
                free.operator.pubkey(),
                free.market,
                free.address,
            )],
            &[&free.operator],
        ),
        TensorgridError::StakePledged,
    );
    env.send(&[ix::verifier_leave(free.keys())], &[&free.operator])
        .unwrap();
    env.send(&[withdraw(free, SOL)], &[&free.operator]).unwrap();
    let pool: VerifierPool = env.get(&pda::verifier_pool(&c.lc.market.address)).unwrap();
    assert_eq!(pool.count, 3, "one of four left");
}

#[test]
fn a_seat_never_risks_the_stake_behind_its_own_job() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::submitted(&mut env);
    let mut verifiers: Vec<_> = (0..2)
        .map(|_| {
            let v = lc.market.worker(&mut env, cpu(), 3 * SOL);
            v.join_pool(&mut env).unwrap();
            v
        })
        .collect();
    // A verifier that pledged 1 of its 3 SOL and trains a job with the other 2.
    let busy = lc.market.worker(&mut env, cpu(), 3 * SOL);
    busy.join_pool_with(&mut env, SOL).unwrap();
    let own_job = lc.market.post(&mut env, &lc.poster, job_args(2 * SOL));
    busy.claim(&mut env, &own_job).unwrap();
    // Its pledge cannot back a second claim's collateral.
    let busy_key = busy.address;
    verifiers.push(busy);
    let c = Court::dispute_and_draw(&mut env, lc, verifiers);
    let d = c.state(&env);
    let seat = d.seats.iter().find(|s| s.worker == busy_key).unwrap();
    assert_eq!(seat.reserve, c.fee(), "reserved out of the pledge");
    // It never votes: the forfeit comes out of its pledge; its job's collateral is whole.
    let votes = d.seats.map(|s| (s.worker != busy_key).then_some(END_HASH));
    c.vote_all(&mut env, votes);
    env.warp(default_params().dispute.verify_window_s);
    c.lc.settle_dispute(&mut env).unwrap();
    let w: tensorgrid_client::state::Worker = env.get(&busy_key).unwrap();
    assert_eq!(
        (w.stake, w.locked_collateral, w.pooled_stake),
        (3 * SOL - c.fee(), 2 * SOL, SOL - c.fee())
    );
    // Its weight in the pool fell with the pledge.
    let pool: VerifierPool = env.get(&pda::verifier_pool(&c.lc.market.address)).unwrap();
    let entry = pool.entries.iter().find(|e| e.worker == busy_key).unwrap();
    assert_eq!(entry.weight, SOL - c.fee());

    // Pledged stake is not free stake for a claim, and a pledge needs stake no job holds.
    let mut env = TestEnv::new();
    let c = Court::new(&mut env, 3, 2 * SOL + 1);
    let seated = c.seat(&env, 0);
    let job = c.lc.market.post(&mut env, &c.lc.poster, job_args(2 * SOL));
    assert_err(
        seated.claim(&mut env, &job),
        TensorgridError::InsufficientStake,
    );
    let other = c.lc.market.worker(&mut env, cpu(), 2 * SOL);
    other.claim(&mut env, &job).unwrap();
    assert_err(
        other.join_pool_with(&mut env, SOL),
        TensorgridError::PledgeNotBacked,
    );
}

/// Review finding: a dispute froze nothing, so whoever drew could first reshape the pool
/// (join, leave) for the slot hash it already knew. The pool is frozen until the draw.
#[test]
fn the_pool_is_frozen_between_a_dispute_and_its_draw() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::submitted(&mut env);
    let members: Vec<_> = (0..3)
        .map(|_| {
            let v = lc.market.worker(&mut env, cpu(), 2 * SOL);
            v.join_pool(&mut env).unwrap();
            v
        })
        .collect();
    lc.dispute(&mut env).unwrap();
    env.next_slot();
    let late = lc.market.worker(&mut env, cpu(), 50 * SOL);
    assert_err(late.join_pool(&mut env), TensorgridError::PoolFrozen);
    assert_err(
        env.send(
            &[ix::verifier_leave(members[0].keys())],
            &[&members[0].operator],
        ),
        TensorgridError::PoolFrozen,
    );
    lc.draw(&mut env).unwrap();
    let pool: VerifierPool = env.get(&pda::verifier_pool(&lc.market.address)).unwrap();
    assert_eq!(pool.pending_draws, 0);
    late.join_pool(&mut env).unwrap();
}

/// Review finding: past the `SlotHashes` window the draw took whichever slot was oldest, so
/// waiting chose the seed. Now nobody is drawn and the authority rules.
#[test]
fn a_draw_too_late_to_read_its_slot_hash_goes_to_the_authority() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::submitted(&mut env);
    for _ in 0..3 {
        let v = lc.market.worker(&mut env, cpu(), 2 * SOL);
        v.join_pool(&mut env).unwrap();
    }
    lc.dispute(&mut env).unwrap();
    for _ in 0..600 {
        env.next_slot();
    }
    let tx = lc.draw(&mut env).unwrap();
    assert!(matches!(&tx.events()[..], [Event::DisputeDrawn(d)] if d.dispute_ends_at > 0));
    assert_eq!(lc.dispute_state(&env).phase, DisputePhase::Escalated);
}

#[test]
fn a_full_pool_takes_only_a_heavier_joiner() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let members: Vec<_> = (0..POOL_SIZE as u64)
        .map(|i| {
            let v = m.worker(&mut env, cpu(), SOL + i);
            v.join_pool(&mut env).unwrap();
            v
        })
        .collect();
    let light = m.worker(&mut env, cpu(), SOL);
    assert_err(light.join_pool(&mut env), TensorgridError::VerifierPoolFull);
    let heavy = m.worker(&mut env, cpu(), 2 * SOL);
    let tx = heavy.join_pool(&mut env).unwrap();
    assert!(matches!(&tx.events()[..], [Event::VerifierPoolChanged(e)]
        if e.evicted == Some(members[0].address) && e.count == 32 && e.weight == 2 * SOL));
    // The evicted worker's pledge stays until it says it has left.
    assert_eq!(members[0].state(&env).pooled_stake, SOL);
    env.send(
        &[ix::verifier_leave(members[0].keys())],
        &[&members[0].operator],
    )
    .unwrap();
    assert_eq!(members[0].state(&env).pooled_stake, 0);
    let pool: VerifierPool = env.get(&pda::verifier_pool(&m.address)).unwrap();
    assert_eq!(pool.count, 32);
    assert!(pool.entries.iter().any(|e| e.worker == heavy.address));
}

#[test]
fn votes_outside_the_voting_phase_are_refused() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::escalated(&mut env);
    let v = lc.market.worker(&mut env, cpu(), SOL);
    assert_err(
        env.send(
            &[ix::dispute_vote(
                v.keys(),
                pda::dispute(&lc.job.address),
                DisputeVoteArgs::Commit {
                    commitment: [1; 32],
                },
            )],
            &[&v.operator],
        ),
        TensorgridError::DisputeNotVoting,
    );
    let c = Court::new(&mut env, 3, SOL);
    let (s0, s1) = (c.seat(&env, 0), c.seat(&env, 1));
    s0.commit(&mut env, c.dispute, END_HASH).unwrap();
    assert_err(
        s0.commit(&mut env, c.dispute, END_HASH),
        TensorgridError::AlreadyVoted,
    );
    env.warp(default_params().dispute.verify_window_s + 1);
    assert_err(
        s1.reveal(&mut env, c.dispute, END_HASH),
        TensorgridError::NotCommitted,
    );
}

/// Every verdict of a dispute with verifiers, in every unit: the amounts each party is owed
/// afterwards, and every token back out of the vault once each party has withdrawn.
#[test]
fn every_verdict_pays_exactly_in_every_unit() {
    use tensorgrid_client::{
        currency::vault,
        state::{Poster, Worker},
    };
    use tensorgrid_harness::{
        invariants::market_token_liabilities,
        tokens::{token_balance, UnitKind, UNITS},
    };
    for unit in UNITS {
        for verdict in [Tally::Upheld, Tally::Fraud, Tally::Undecided] {
            let mut env = TestEnv::new();
            let lc = Lifecycle::new_in(&mut env, unit);
            lc.worker.claim(&mut env, &lc.job).expect("claim");
            lc.worker.submit(&mut env, &lc.job).expect("submit");
            let verifiers: Vec<_> = (0..4)
                .map(|_| {
                    let v = lc.market.worker(&mut env, cpu(), 3 * SOL);
                    v.join_pool(&mut env).expect("verifier_join");
                    v
                })
                .collect();
            let c = Court::dispute_and_draw(&mut env, lc, verifiers);
            let (reward, fee, bond) = (c.lc.reward, c.fee(), c.bond());
            let hashes = match verdict {
                Tally::Upheld => [Some(END_HASH); 3],
                Tally::Fraud => [Some(OTHER_HASH); 3],
                // One seat never reveals; the other two disagree.
                Tally::Undecided => [Some(END_HASH), Some(OTHER_HASH), None],
            };
            c.vote_all(&mut env, hashes);
            let seats = c.state(&env).seats.map(|s| s.worker);
            if verdict == Tally::Undecided {
                // The silent seat's reveal window closes.
                env.warp(default_params().dispute.verify_window_s + 1);
            }
            let tx = c.lc.settle_dispute(&mut env).expect("dispute_settle");
            assert_eq!(tallied(&tx.events()).tally, verdict, "{unit:?}");
            if verdict == Tally::Undecided {
                env.warp(default_params().resolve_window_s + 1);
                let cranker = env.funded(SOL);
                env.send(&[ix::job_dispute_timeout(c.lc.settle_keys())], &[&cranker])
                    .expect("timeout");
            }
            let payout = default_params().job_terms().payout(reward).unwrap();
            let worker: Worker = c.lc.worker.state(&env);
            let poster_account: Poster = env
                .get(&pda::poster(&c.lc.market.address, &c.lc.poster.pubkey()).0)
                .unwrap();
            let seat_earned: u64 = seats
                .iter()
                .map(|key| env.get::<Worker>(key).unwrap().earnings)
                .sum();
            match verdict {
                Tally::Upheld => {
                    assert_eq!(
                        worker.earnings,
                        payout.to_worker + bond - 3 * fee,
                        "{unit:?}"
                    );
                    assert_eq!(seat_earned, 3 * fee);
                }
                Tally::Fraud => {
                    assert_eq!(worker.earnings, 0);
                    assert_eq!(seat_earned, 3 * fee);
                    // Reward and bond back, and the slash (the whole collateral, one reward)
                    // less the three fees.
                    let owed = reward + bond + reward - 3 * fee;
                    if unit == UnitKind::Sol {
                        assert_eq!(poster_account.refunds, 0);
                    } else {
                        assert_eq!(poster_account.refunds, owed, "{unit:?}");
                    }
                }
                _ => {
                    // The result stands; the bond goes back with the absent seat's forfeit.
                    assert_eq!(worker.earnings, payout.to_worker, "{unit:?}");
                    assert_eq!(seat_earned, 0);
                    if unit != UnitKind::Sol {
                        assert_eq!(poster_account.refunds, bond + fee, "{unit:?}");
                    }
                }
            }
            if unit == UnitKind::Sol {
                continue;
            }
            // Everyone takes out what it is owed; the vault ends empty.
            let cur = c.lc.market.currency();
            let market = c.lc.market.address;
            assert_eq!(
                token_balance(&env, &vault(&market)) as u128,
                market_token_liabilities(&env, &market),
                "{unit:?} {verdict:?}: the vault holds exactly what is owed"
            );
            for v in &c.verifiers {
                env.send(&[ix::verifier_leave(v.keys())], &[&v.operator])
                    .expect("leave the pool");
                env.send(
                    &[ix::worker_deregister_in(
                        &cur,
                        v.operator.pubkey(),
                        market,
                        v.address,
                    )],
                    &[&v.operator],
                )
                .expect("verifier deregisters");
            }
            let w = &c.lc.worker;
            env.send(
                &[ix::worker_deregister_in(
                    &cur,
                    w.operator.pubkey(),
                    market,
                    w.address,
                )],
                &[&w.operator],
            )
            .expect("worker deregisters");
            let poster = c.lc.poster.pubkey();
            env.send(
                &[ix::poster_withdraw(
                    &cur,
                    poster,
                    market,
                    poster_account.refunds,
                )],
                &[&c.lc.poster],
            )
            .expect("poster withdraws");
            let auth = &c.lc.market.authority;
            c.lc.market.fund_tokens(&mut env, &auth.pubkey(), 0);
            let fees = c.lc.market.state(&env).fees_unclaimed;
            env.send(
                &[ix::market_withdraw_fees_in(
                    &cur,
                    auth.pubkey(),
                    market,
                    auth.pubkey(),
                    fees,
                )],
                &[auth],
            )
            .expect("fees");
            assert_eq!(
                token_balance(&env, &vault(&market)),
                0,
                "{unit:?} {verdict:?}"
            );
        }
    }
}
