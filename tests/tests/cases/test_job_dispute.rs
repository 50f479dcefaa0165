//! Opening a dispute (poster, inside the window, with the bond), the draw, and what happens
//! when no verifiers can settle it: the authority rules, or the result stands at timeout.
use solana_signer::Signer;
use tensorgrid_client::{
    event_types::{RefundReason, Settlement},
    events::Event,
    instructions as ix, pda,
    state::{Dispute, DisputePhase, JobState},
    TensorgridError,
};
use tensorgrid_harness::{fixtures::*, TestEnv};

#[test]
fn a_dispute_posts_the_bond_and_freezes_the_job() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::submitted(&mut env);
    env.warp(3_600);
    let poster_before = env.lamports(&lc.poster.pubkey());
    let args = dispute_args(&env, &lc.job);
    let bond = lc.reward * 1_000 / 10_000;
    assert_eq!(
        args.bond, bond,
        "10 % of the reward under the default terms"
    );
    let tx = env
        .send(&[ix::job_dispute(lc.settle_keys(), args)], &[&lc.poster])
        .unwrap();
    let dispute = pda::dispute(&lc.job.address);
    let rent = env.rent_exempt(Dispute::SPACE);
    assert_eq!(
        poster_before - env.lamports(&lc.poster.pubkey()),
        bond + rent + tx.meta.fee,
        "the bond and the dispute account's rent, to the lamport"
    );
    assert_eq!(env.lamports(&dispute), bond + rent);
    let job = lc.job.state(&env).unwrap();
    assert_eq!((job.state, job.dispute_ends_at), (JobState::Disputed, 0));
    let d: Dispute = env.get(&dispute).unwrap();
    assert_eq!(
        (d.phase, d.segment, d.end_hash, d.bond, d.worker),
        (DisputePhase::Drawing, 0, END_HASH, bond, lc.worker.address)
    );
    assert_eq!(d.verifier_fee, lc.reward * 300 / 10_000);
    assert!(matches!(&tx.events()[..], [Event::JobDisputed(e)]
        if e.worker == lc.worker.address && e.bond == bond && e.dispute == dispute
            && e.end_hash == END_HASH && e.disputed_slot == env.slot()));
    // A disputed job cannot be finalized or accepted.
    let cranker = env.funded(SOL);
    env.warp(100_000);
    assert_err(
        env.send(&[ix::job_finalize(lc.settle_keys())], &[&cranker]),
        TensorgridError::JobNotSubmitted,
    );
    assert_err(
        env.send(&[ix::job_accept(lc.settle_keys())], &[&lc.poster]),
        TensorgridError::JobNotSubmitted,
    );
}

#[test]
fn dispute_after_window_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::submitted(&mut env);
    env.warp(3_601);
    assert_err(lc.dispute(&mut env), TensorgridError::ChallengeWindowClosed);
}

#[test]
fn a_dispute_must_state_the_jobs_bond_and_a_real_end_state() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::submitted(&mut env);
    let good = dispute_args(&env, &lc.job);
    for (bond, err) in [
        (good.bond - 1, TensorgridError::BondMismatch),
        (good.bond + 1, TensorgridError::BondMismatch),
    ] {
        let args = tensorgrid::instructions::JobDisputeArgs {
            bond,
            ..good.clone()
        };
        assert_err(
            env.send(&[ix::job_dispute(lc.settle_keys(), args)], &[&lc.poster]),
            err,
        );
    }
    let zero = tensorgrid::instructions::JobDisputeArgs {
        end_hash: [0; 32],
        ..good.clone()
    };
    assert_err(
        env.send(&[ix::job_dispute(lc.settle_keys(), zero)], &[&lc.poster]),
        TensorgridError::InvalidSegment,
    );
    // The worker account must be the job's.
    let other = lc.market.worker(&mut env, cpu(), SOL);
    let keys = lc.market.settle_keys(&lc.job, &other);
    assert_err(
        env.send(&[ix::job_dispute(keys, good)], &[&lc.poster]),
        TensorgridError::NotAssignedWorker,
    );
}

#[test]
fn dispute_by_non_poster_before_submission_or_twice_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    let args = dispute_args(&env, &lc.job);
    assert_err(
        env.send(
            &[ix::job_dispute(lc.settle_keys(), args.clone())],
            &[&lc.poster],
        ),
        TensorgridError::JobNotSubmitted,
    );
    lc.worker.submit(&mut env, &lc.job).unwrap();
    let stranger = env.funded(SOL);
    let keys = ix::SettleKeys {
        poster: stranger.pubkey(),
        ..lc.settle_keys()
    };
    assert_err(
        env.send(&[ix::job_dispute(keys, args.clone())], &[&stranger]),
        TensorgridError::NotPoster,
    );
    lc.dispute(&mut env).unwrap();
    // The dispute account exists: a second dispute cannot be opened.
    env.next_slot();
    assert!(lc.dispute(&mut env).is_err());
}

#[test]
fn the_draw_waits_for_a_later_slot_and_runs_once() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::disputed(&mut env);
    assert_err(lc.draw(&mut env), TensorgridError::DrawTooEarly);
    env.next_slot();
    let tx = lc.draw(&mut env).unwrap();
    // No verifier pool in this market: the authority's window starts now.
    let ends = env.now() + default_params().resolve_window_s;
    assert_eq!(lc.job.state(&env).unwrap().dispute_ends_at, ends);
    assert_eq!(lc.dispute_state(&env).phase, DisputePhase::Escalated);
    assert!(matches!(&tx.events()[..], [Event::DisputeDrawn(e)]
        if e.dispute_ends_at == ends && e.commit_ends_at == 0 && e.drawn_slot == env.slot()));
    env.next_slot();
    assert_err(lc.draw(&mut env), TensorgridError::DisputeNotDrawing);
}

#[test]
fn the_authority_rules_only_on_an_escalated_dispute() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::disputed(&mut env);
    let auth = &lc.market.authority;
    assert_err(
        env.send(
            &[ix::job_resolve(auth.pubkey(), lc.settle_keys(), false)],
            &[auth],
        ),
        TensorgridError::DisputeNotEscalated,
    );
    let cranker = env.funded(SOL);
    env.warp(200_000);
    assert_err(
        env.send(&[ix::job_dispute_timeout(lc.settle_keys())], &[&cranker]),
        TensorgridError::DisputeNotEscalated,
    );
}

#[test]
fn resolve_for_worker_pays_like_acceptance_with_the_bond() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::escalated(&mut env);
    let bond = lc.dispute_state(&env).bond;
    let dispute = pda::dispute(&lc.job.address);
    let dispute_rent = env.rent_exempt(Dispute::SPACE);
    let poster_before = env.lamports(&lc.poster.pubkey());
    let job_held = env.lamports(&lc.job.address);
    let auth = &lc.market.authority;
    let tx = env
        .send(
            &[ix::job_resolve(auth.pubkey(), lc.settle_keys(), true)],
            &[auth],
        )
        .unwrap();
    let fee = lc.reward * 250 / 10_000;
    assert!(env.account(&lc.job.address).is_none());
    assert!(env.account(&dispute).is_none());
    assert!(
        matches!(&tx.events()[..], [Event::JobPaid(e), Event::DisputeClosed(c)]
        if e.settlement == Settlement::ResolvedForWorker && e.payout == lc.reward - fee
            && c.to_worker == bond && c.to_poster == 0 && c.rent_refunded == dispute_rent)
    );
    let w = lc.worker.state(&env);
    assert_eq!(
        (w.active(), w.record.jobs_completed, w.stake, w.earnings),
        (None, 1, 2 * SOL, lc.reward - fee + bond),
        "paid, and the bond of a dispute that was wrong"
    );
    assert_eq!(
        env.lamports(&lc.poster.pubkey()) - poster_before,
        job_held - lc.reward + dispute_rent,
        "the poster gets the rents back, not the bond"
    );
    assert_eq!(lc.market.state(&env).fees_unclaimed, fee);
}

#[test]
fn resolve_for_poster_refunds_with_the_bond_and_slashes_the_jobs_collateral_only() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let poster = env.funded(10 * SOL);
    let job = m.post(&mut env, &poster, job_args(SOL / 10));
    // A big stake: a lost dispute takes a share of this job's collateral, not of the stake.
    let worker = m.worker(&mut env, cpu(), 50 * SOL);
    worker.claim(&mut env, &job).unwrap();
    worker.submit(&mut env, &job).unwrap();
    env.send(
        &[ix::job_dispute(
            m.settle_keys(&job, &worker),
            dispute_args(&env, &job),
        )],
        &[&poster],
    )
    .unwrap();
    env.next_slot();
    env.send(&[ix::dispute_draw(m.address, job.address, &[])], &[&poster])
        .unwrap();
    let before = env.lamports(&poster.pubkey());
    let held = env.lamports(&job.address);
    let dispute_held = env.lamports(&pda::dispute(&job.address));
    let auth = &m.authority;
    let tx = env
        .send(
            &[ix::job_resolve(
                auth.pubkey(),
                m.settle_keys(&job, &worker),
                false,
            )],
            &[auth],
        )
        .unwrap();
    let slashed = SOL / 10 * 5_000 / 10_000;
    assert_eq!(
        env.lamports(&poster.pubkey()) - before,
        held + slashed + dispute_held,
        "escrow, slash, bond and both rents"
    );
    assert!(env.account(&job.address).is_none());
    let w = worker.state(&env);
    assert_eq!(
        (w.active(), w.record.disputes_lost, w.stake),
        (None, 1, 50 * SOL - slashed)
    );
    assert!(
        matches!(&tx.events()[..], [Event::JobRefunded(e), Event::DisputeClosed(c)]
        if e.reward_refunded == SOL / 10 && e.reward_refunded + e.rent_refunded == held
            && e.slashed == slashed && e.reason == RefundReason::DisputeLost
            && c.to_worker == 0 && c.to_poster == SOL / 10 / 10)
    );
}

#[test]
fn an_unsettled_dispute_times_out_to_the_result_standing_and_the_bond_back() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::escalated(&mut env);
    let ends = lc.job.state(&env).unwrap().dispute_ends_at;
    assert_eq!(ends, env.now() + default_params().resolve_window_s);
    let cranker = env.funded(SOL);
    let timeout = ix::job_dispute_timeout(lc.settle_keys());
    assert_err(
        env.send(std::slice::from_ref(&timeout), &[&cranker]),
        TensorgridError::DisputeNotExpired,
    );
    env.warp(default_params().resolve_window_s);
    assert_err(
        env.send(std::slice::from_ref(&timeout), &[&cranker]),
        TensorgridError::DisputeNotExpired,
    );
    env.warp(1);
    // The authority's power to rule has ended.
    let auth = &lc.market.authority;
    assert_err(
        env.send(
            &[ix::job_resolve(auth.pubkey(), lc.settle_keys(), false)],
            &[auth],
        ),
        TensorgridError::DisputeExpired,
    );
    let poster = env.lamports(&lc.poster.pubkey());
    let held = env.lamports(&lc.job.address);
    let dispute_held = env.lamports(&pda::dispute(&lc.job.address));
    let tx = env.send(&[timeout], &[&cranker]).unwrap();
    let fee = lc.reward * 250 / 10_000;
    assert_eq!(
        env.lamports(&lc.poster.pubkey()) - poster,
        held - lc.reward + dispute_held,
        "rents and the whole bond back; the reward paid the worker"
    );
    assert!(env.account(&lc.job.address).is_none());
    let w = lc.worker.state(&env);
    assert_eq!(
        (w.active(), w.stake, w.earnings, w.record.disputes_expired),
        (None, 2 * SOL, lc.reward - fee, 1)
    );
    assert_eq!(lc.market.state(&env).fees_unclaimed, fee);
    assert!(
        matches!(&tx.events()[..], [Event::JobPaid(e), Event::DisputeClosed(c)]
        if e.settlement == Settlement::DisputeExpired && c.to_worker == 0)
    );
}

#[test]
fn dispute_timeout_checks_state_worker_and_poster() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::submitted(&mut env);
    let cranker = env.funded(SOL);
    env.warp(200_000);
    assert!(env
        .send(&[ix::job_dispute_timeout(lc.settle_keys())], &[&cranker])
        .is_err());
    let lc = Lifecycle::escalated(&mut env);
    env.warp(200_000);
    let other = lc.market.worker(&mut env, cpu(), SOL);
    let wrong_worker = lc.market.settle_keys(&lc.job, &other);
    assert_err(
        env.send(&[ix::job_dispute_timeout(wrong_worker)], &[&cranker]),
        TensorgridError::NotAssignedWorker,
    );
    let wrong_poster = ix::SettleKeys {
        poster: cranker.pubkey(),
        ..lc.settle_keys()
    };
    let timeout = with_poster_account_of(
        ix::job_dispute_timeout(wrong_poster),
        &wrong_poster,
        &lc.settle_keys(),
    );
    assert_err(
        env.send(&[timeout], &[&cranker]),
        TensorgridError::RecipientMismatch,
    );
}

#[test]
fn resolve_by_non_authority_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::escalated(&mut env);
    // The poster would love to resolve their own dispute.
    assert_err(
        env.send(
            &[ix::job_resolve(lc.poster.pubkey(), lc.settle_keys(), false)],
            &[&lc.poster],
        ),
        TensorgridError::NotMarketAuthority,
    );
    // So would the authority of some other market.
    let other = MarketFx::create_with_id(&mut env, default_params(), 4);
    assert_err(
        env.send(
            &[ix::job_resolve(
                other.authority.pubkey(),
                lc.settle_keys(),
                true,
            )],
            &[&other.authority],
        ),
        TensorgridError::NotMarketAuthority,
    );
}
