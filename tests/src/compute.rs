//! Compute-unit measurement of every instruction, on the SBF bytecode.
//!
//! Each instruction runs in a short and a long flow: the long one uses the largest inputs the
//! program accepts (200-byte URIs, a 32-byte label), which is what makes account
//! (de)serialisation and events most expensive. For instructions that run more than once in
//! a flow, the most expensive run counts.

use std::collections::BTreeMap;

use solana_signer::Signer;
use tensorgrid::instructions::{
    DisputeVoteArgs, JobDisputeArgs, JobPostArgs, JobSubmitArgs, MarketInitArgs, MarketUpdateArgs,
    WorkerRegisterArgs, WorkerUpdateArgs,
};
use tensorgrid_client::{
    instructions as ix, pda,
    state::{vote_commitment, Hardware},
};

use crate::{
    env::TestEnv,
    fixtures::*,
    tokens::{MintFx, UnitKind},
};

/// Per-instruction CU: the short flow's median (happy path) and the most expensive run of
/// any flow (worst case). Runs differ by more than their inputs: `init` searches for the PDA
/// bump, whose cost depends on the keys, so each flow runs `RUNS` times with fresh keys.
#[derive(Debug, Clone)]
pub struct CuReport {
    pub happy: BTreeMap<&'static str, u64>,
    pub worst: BTreeMap<&'static str, u64>,
    /// post + claim + submit + accept, short flow.
    pub lifecycle_accept: u64,
    /// post + claim + submit + finalize, short flow.
    pub lifecycle_finalize: u64,
    /// post + claim + submit + the dearer settlement, worst cases.
    pub lifecycle_worst: u64,
}

/// Fresh-key runs of each flow.
pub const RUNS: usize = 9;

/// Runs both flows `RUNS` times on fresh chains made by `new_env`, in a market priced in
/// `unit` (a token market also measures `poster_withdraw`).
pub fn measure_in(new_env: impl Fn() -> TestEnv, unit: UnitKind) -> CuReport {
    let short: Vec<_> = (0..RUNS)
        .map(|run| flow(&mut new_env(), run as u8, false, unit))
        .collect();
    let long: Vec<_> = (0..RUNS)
        .map(|run| flow(&mut new_env(), run as u8, true, unit))
        .collect();
    let mut happy = BTreeMap::new();
    let mut worst = BTreeMap::new();
    for name in INSTRUCTIONS
        .into_iter()
        .chain((unit != UnitKind::Sol).then_some("poster_withdraw"))
    {
        let mut runs: Vec<u64> = short.iter().map(|r| r[name]).collect();
        runs.sort_unstable();
        happy.insert(name, runs[RUNS / 2]);
        let max = short
            .iter()
            .chain(&long)
            .map(|r| r[name])
            .max()
            .unwrap_or(0);
        worst.insert(name, max);
    }
    let sum = |names: &[&str]| names.iter().map(|n| happy[n]).sum();
    // The dearest settlement stands in for the lifecycle's last step.
    CuReport {
        lifecycle_accept: sum(&["job_post", "job_claim", "job_submit", "job_accept"]),
        lifecycle_finalize: sum(&["job_post", "job_claim", "job_submit", "job_finalize"]),
        lifecycle_worst: [
            "job_post",
            "job_claim",
            "job_submit",
            "job_accept",
            "job_finalize",
        ]
        .iter()
        .map(|n| worst[n])
        .sum::<u64>()
            - worst["job_accept"].min(worst["job_finalize"]),
        happy,
        worst,
    }
}

/// One scripted pass over every instruction. Keys are derived from `seed`, so a run's CU is
/// reproducible (PDA bump searches depend on the keys).
fn flow(env: &mut TestEnv, seed: u8, long: bool, unit: UnitKind) -> BTreeMap<&'static str, u64> {
    let mint = MintFx::for_unit(env, unit);
    let cur = mint
        .as_ref()
        .map_or(tensorgrid_client::Currency::Sol, MintFx::currency);
    // In a token market every party holds the mint's tokens to pay in (amounts as in SOL).
    let fund = |env: &mut TestEnv, owner: &solana_keypair::Keypair, amount: u64| {
        if let Some(mint) = &mint {
            mint.fund(env, &owner.pubkey(), amount);
        }
    };
    let mut n = 0u8;
    let mut key = |env: &mut TestEnv, lamports| {
        n += 1;
        let mut secret = [seed; 32];
        secret[0] = n;
        env.fund(solana_keypair::Keypair::new_from_array(secret), lamports)
    };
    let mut cu: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut send = |env: &mut TestEnv,
                    name: &'static str,
                    i: ix::Instruction,
                    signer: &solana_keypair::Keypair| {
        let tx = env
            .send(&[i], &[signer])
            .unwrap_or_else(|f| panic!("{name}: {:?}\n{}", f.err, f.logs.join("\n")));
        let e = cu.entry(name).or_default();
        *e = (*e).max(tx.meta.compute_units_consumed);
    };
    let uri = |c: char| {
        if long {
            c.to_string().repeat(200)
        } else {
            format!("file:///{c}")
        }
    };
    let label = if long { "L".repeat(32) } else { "gpu".into() };
    let hw = Hardware {
        label,
        ..cuda(24_576)
    };

    let authority = key(env, 100 * SOL);
    let init = MarketInitArgs {
        market_id: 1,
        params: default_params(),
    };
    send(
        env,
        "market_init",
        ix::market_init_in(&cur, authority.pubkey(), init),
        &authority,
    );
    let market = pda::market(&authority.pubkey(), 1).0;
    let update = if long {
        MarketUpdateArgs {
            params: Some(default_params()),
            paused: Some(false),
        }
    } else {
        MarketUpdateArgs {
            params: None,
            paused: Some(false),
        }
    };
    send(
        env,
        "market_update",
        ix::market_update(authority.pubkey(), market, update),
        &authority,
    );

    let poster = key(env, 100 * SOL);
    fund(env, &poster, 100 * SOL);
    fund(env, &authority, 0);
    let ops: Vec<_> = (0..2).map(|_| key(env, 20 * SOL)).collect();
    for op in &ops {
        fund(env, op, 20 * SOL);
        let args = WorkerRegisterArgs {
            stake: 4 * SOL,
            hardware: hw.clone(),
        };
        send(
            env,
            "worker_register",
            ix::worker_register_in(&cur, op.pubkey(), market, args),
            op,
        );
    }
    let keys = |i: usize| ix::WorkerKeys {
        operator: ops[i].pubkey(),
        market,
        worker: pda::worker(&market, &ops[i].pubkey()).0,
    };
    let update = WorkerUpdateArgs {
        hardware: long.then(|| hw.clone()),
        add_stake: SOL,
        withdraw_stake: if long { SOL / 2 } else { 0 },
        withdraw_earnings: 0,
    };
    send(
        env,
        "worker_update",
        ix::worker_update_in(&cur, ops[0].pubkey(), market, keys(0).worker, update),
        &ops[0],
    );

    send(
        env,
        "poster_init",
        ix::poster_init(poster.pubkey(), market),
        &poster,
    );
    let mut jobs = Vec::new();
    let mut next_id = 0;
    for _ in 0..7 {
        let id = next_id;
        next_id = id + 1;
        let args = JobPostArgs {
            job_id: id,
            spec_uri: uri('s'),
            ..job_args(SOL)
        };
        let args = JobPostArgs {
            terms: tensorgrid_client::state::JobTerms {
                mint: cur.mint().unwrap_or_default(),
                ..args.terms
            },
            ..args
        };
        let job = pda::job(&market, &poster.pubkey(), id).0;
        send(
            env,
            "job_post",
            ix::job_post_in(&cur, poster.pubkey(), market, args),
            &poster,
        );
        jobs.push(job);
    }
    let offer = |env: &TestEnv, job| {
        env.get::<tensorgrid_client::state::Job>(&job)
            .expect("the job exists")
            .offer()
    };
    let submit = || JobSubmitArgs {
        result_uri: uri('r'),
        ..submit_args()
    };
    let settle = |job, w: usize| ix::SettleKeys {
        market,
        worker: keys(w).worker,
        job,
        poster: poster.pubkey(),
    };
    let dispute = |env: &TestEnv, job| {
        let j = env
            .get::<tensorgrid_client::state::Job>(&job)
            .expect("the job exists");
        JobDisputeArgs {
            segment: 7,
            start_hash: START_HASH,
            end_hash: END_HASH,
            bond: j.terms.dispute.bond(j.reward).expect("bond"),
        }
    };
    // Job 0: accept. Job 1: finalize. Jobs 2 and 3: dispute, resolved each way.
    for (n, &job) in jobs[..4].iter().enumerate() {
        send(
            env,
            "job_claim",
            ix::job_claim(keys(0), job, offer(env, job)),
            &ops[0],
        );
        send(
            env,
            "job_submit",
            ix::job_submit(keys(0), job, submit()),
            &ops[0],
        );
        match n {
            0 => send(env, "job_accept", ix::job_accept(settle(job, 0)), &poster),
            1 => {
                env.warp(3_601);
                send(
                    env,
                    "job_finalize",
                    ix::job_finalize(settle(job, 0)),
                    &poster,
                );
            }
            _ => {
                send(
                    env,
                    "job_dispute",
                    ix::job_dispute_in(&cur, settle(job, 0), dispute(env, job)),
                    &poster,
                );
                // No verifiers yet: the draw hands the dispute to the authority.
                env.next_slot();
                send(
                    env,
                    "dispute_draw",
                    ix::dispute_draw(market, job, &[]),
                    &poster,
                );
                send(
                    env,
                    "job_resolve",
                    ix::job_resolve(authority.pubkey(), settle(job, 0), n == 2),
                    &authority,
                );
            }
        }
    }
    // Job 4: abandoned by one worker, claimed by the other, reclaimed after a missed
    // deadline, then cancelled.
    let job = jobs[4];
    send(
        env,
        "job_claim",
        ix::job_claim(keys(1), job, offer(env, job)),
        &ops[1],
    );
    send(env, "job_abandon", ix::job_abandon(keys(1), job), &ops[1]);
    env.warp(tensorgrid_client::constants::REOPEN_COOLDOWN_S + 1);
    send(
        env,
        "job_claim",
        ix::job_claim(keys(0), job, offer(env, job)),
        &ops[0],
    );
    env.warp(3_601);
    let cranker = key(env, SOL);
    fund(env, &cranker, 0);
    let reclaim = ix::job_reclaim_in(&cur, cranker.pubkey(), market, keys(0).worker, job);
    send(env, "job_reclaim", reclaim, &cranker);
    send(
        env,
        "job_cancel",
        ix::job_cancel_in(&cur, poster.pubkey(), market, job),
        &poster,
    );
    if cur.mint().is_some() {
        // The cancelled job's reward and compensation, credited to the poster account.
        let refunds = env
            .get::<tensorgrid_client::state::Poster>(&pda::poster(&market, &poster.pubkey()).0)
            .map_or(0, |p| p.refunds);
        send(
            env,
            "poster_withdraw",
            ix::poster_withdraw(&cur, poster.pubkey(), market, refunds),
            &poster,
        );
    }
    // Job 5: disputed, and the dispute times out.
    let job = jobs[5];
    send(
        env,
        "job_claim",
        ix::job_claim(keys(1), job, offer(env, job)),
        &ops[1],
    );
    send(
        env,
        "job_submit",
        ix::job_submit(keys(1), job, submit()),
        &ops[1],
    );
    send(
        env,
        "job_dispute",
        ix::job_dispute_in(&cur, settle(job, 1), dispute(env, job)),
        &poster,
    );
    env.next_slot();
    send(
        env,
        "dispute_draw",
        ix::dispute_draw(market, job, &[]),
        &poster,
    );
    env.warp(default_params().resolve_window_s + 1);
    send(
        env,
        "job_dispute_timeout",
        ix::job_dispute_timeout(settle(job, 1)),
        &cranker,
    );
    // Job 6: disputed before a pool of verifiers (full in the long flow, the dearest draw;
    // one more joins by evicting the lightest), who commit, reveal and are settled.
    let verifiers: Vec<_> = (0..if long { 33 } else { 4 })
        .map(|_| key(env, 20 * SOL))
        .collect();
    for op in &verifiers {
        fund(env, op, 20 * SOL);
    }
    let vkeys = |op: &solana_keypair::Keypair| ix::WorkerKeys {
        operator: op.pubkey(),
        market,
        worker: pda::worker(&market, &op.pubkey()).0,
    };
    for (i, op) in verifiers.iter().enumerate() {
        let args = WorkerRegisterArgs {
            stake: 2 * SOL + i as u64,
            hardware: hw.clone(),
        };
        send(
            env,
            "worker_register",
            ix::worker_register_in(&cur, op.pubkey(), market, args),
            op,
        );
        let pledge = 2 * SOL + i as u64;
        send(
            env,
            "verifier_join",
            ix::verifier_join(vkeys(op), pledge),
            op,
        );
    }
    let job = jobs[6];
    send(
        env,
        "job_claim",
        ix::job_claim(keys(0), job, offer(env, job)),
        &ops[0],
    );
    send(
        env,
        "job_submit",
        ix::job_submit(keys(0), job, submit()),
        &ops[0],
    );
    send(
        env,
        "job_dispute",
        ix::job_dispute_in(&cur, settle(job, 0), dispute(env, job)),
        &poster,
    );
    env.next_slot();
    let seats = {
        let j = env.get(&job).expect("job");
        let d = env.get(&pda::dispute(&job)).expect("dispute");
        let pool: Option<tensorgrid_client::state::VerifierPool> =
            env.get(&pda::verifier_pool(&market));
        tensorgrid_client::draw::expected_seats(
            pool.as_ref(),
            &d,
            &j,
            &job,
            &env.slot_hashes_data(),
        )
        .expect("a slot after the dispute")
        .expect("enough verifiers")
    };
    send(
        env,
        "dispute_draw",
        ix::dispute_draw(market, job, &seats),
        &poster,
    );
    let seated: Vec<_> = seats
        .iter()
        .map(|s| {
            verifiers
                .iter()
                .find(|op| vkeys(op).worker == *s)
                .expect("a seat is a verifier")
        })
        .collect();
    let salt = [3u8; 32];
    for op in &seated {
        let commitment = vote_commitment(&END_HASH, &salt, &vkeys(op).worker);
        let vote = DisputeVoteArgs::Commit { commitment };
        send(
            env,
            "dispute_vote",
            ix::dispute_vote(vkeys(op), pda::dispute(&job), vote),
            op,
        );
    }
    for op in &seated {
        let vote = DisputeVoteArgs::Reveal {
            hash: END_HASH,
            salt,
        };
        send(
            env,
            "dispute_vote",
            ix::dispute_vote(vkeys(op), pda::dispute(&job), vote),
            op,
        );
    }
    let seats: [_; 3] = seats;
    send(
        env,
        "dispute_settle",
        ix::dispute_settle(settle(job, 0), seats),
        &poster,
    );
    let unseated = verifiers
        .iter()
        .find(|op| {
            !seats.contains(&vkeys(op).worker) && {
                let w: tensorgrid_client::state::Worker =
                    env.get(&vkeys(op).worker).expect("worker");
                w.pooled_stake > 0
            }
        })
        .expect("a verifier without a seat");
    send(
        env,
        "verifier_leave",
        ix::verifier_leave(vkeys(unseated)),
        unseated,
    );
    let fees = env
        .get::<tensorgrid_client::state::Market>(&market)
        .map(|m| m.fees_unclaimed)
        .unwrap_or(0);
    send(
        env,
        "market_withdraw_fees",
        ix::market_withdraw_fees_in(&cur, authority.pubkey(), market, authority.pubkey(), fees),
        &authority,
    );
    let earnings = env
        .get::<tensorgrid_client::state::Worker>(&keys(0).worker)
        .map(|w| w.earnings)
        .unwrap_or(0);
    let collect = WorkerUpdateArgs {
        withdraw_earnings: earnings,
        ..Default::default()
    };
    send(
        env,
        "worker_update",
        ix::worker_update_in(&cur, ops[0].pubkey(), market, keys(0).worker, collect),
        &ops[0],
    );
    send(
        env,
        "worker_deregister",
        ix::worker_deregister_in(&cur, ops[1].pubkey(), market, keys(1).worker),
        &ops[1],
    );
    // Registering again reuses the account and keeps the record.
    let again = WorkerRegisterArgs {
        stake: 4 * SOL,
        hardware: hw.clone(),
    };
    send(
        env,
        "worker_register",
        ix::worker_register_in(&cur, ops[1].pubkey(), market, again),
        &ops[1],
    );
    cu
}

/// Every instruction the program has, in the order the README lists them.
pub const INSTRUCTIONS: [&str; 23] = [
    "market_init",
    "market_update",
    "market_withdraw_fees",
    "worker_register",
    "worker_update",
    "worker_deregister",
    "poster_init",
    "job_post",
    "job_cancel",
    "job_claim",
    "job_abandon",
    "job_submit",
    "job_accept",
    "job_finalize",
    "job_dispute",
    "dispute_draw",
    "dispute_vote",
    "dispute_settle",
    "job_resolve",
    "job_dispute_timeout",
    "job_reclaim",
    "verifier_join",
    "verifier_leave",
];
