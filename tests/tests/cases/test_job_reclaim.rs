use solana_signer::Signer;
use tensorgrid_client::{
    events::Event, instructions as ix, state::JobState, state::MarketParams, TensorgridError,
};
use tensorgrid_harness::{fixtures::*, TestEnv};

fn reclaim(lc: &Lifecycle, cranker: &solana_keypair::Keypair) -> ix::Instruction {
    ix::job_reclaim(cranker.pubkey(), lc.worker.address, lc.job.address)
}

#[test]
fn reclaim_after_deadline_slashes_the_collateral_and_reopens() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    let cranker = env.funded(SOL);
    env.warp(3_601);
    let poster = env.lamports(&lc.poster.pubkey());
    let crank_before = env.lamports(&cranker.pubkey());
    let tx = env.send(&[reclaim(&lc, &cranker)], &[&cranker]).unwrap();
    // Half of the collateral (1 x the 2 SOL reward); a tenth of that to the cranker.
    let slashed = 2 * SOL * 5_000 / 10_000;
    let bounty = slashed * 1_000 / 10_000;
    assert_eq!(
        env.lamports(&cranker.pubkey()) + 5_000 - crank_before,
        bounty
    );
    assert_eq!(env.lamports(&lc.poster.pubkey()), poster, "held in escrow");
    let w = lc.worker.state(&env);
    assert_eq!(
        (w.stake, w.active(), w.record.deadlines_missed),
        (2 * SOL - slashed, None, 1)
    );
    let j = lc.job.state(&env).unwrap();
    assert_eq!(
        (j.state, j.holder(), j.compensation, j.barred_workers[0]),
        (JobState::Open, None, slashed - bounty, lc.worker.address)
    );
    assert_eq!(
        env.lamports(&lc.job.address),
        env.rent_exempt(tensorgrid_client::state::Job::SPACE) + lc.reward + slashed - bounty,
        "escrow intact, compensation added"
    );
    assert!(matches!(&tx.events()[..], [Event::JobReclaimed(e)]
        if e.bounty == bounty && e.to_poster == slashed - bounty));
    // Another worker may claim it; the poster may also cancel and collect everything.
    let before = env.lamports(&lc.poster.pubkey());
    let held = env.lamports(&lc.job.address);
    env.send(
        &[ix::job_cancel(lc.poster.pubkey(), lc.job.address)],
        &[&lc.poster],
    )
    .unwrap();
    assert_eq!(env.lamports(&lc.poster.pubkey()), before + held - 5_000);
}

/// Review finding 8: `[job_reclaim, job_claim]` in one transaction let a worker keep a job
/// forever, the poster never seeing it open.
#[test]
fn a_reclaimed_worker_cannot_take_the_job_back() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    env.warp(3_601);
    let res = env.send(
        &[
            ix::job_reclaim(
                lc.worker.operator.pubkey(),
                lc.worker.address,
                lc.job.address,
            ),
            ix::job_claim(lc.worker.keys(), lc.job.address, lc.job.offer(&env)),
        ],
        &[&lc.worker.operator],
    );
    assert_eq!(
        custom_code(&res),
        Some(tensorgrid_client::error_code(TensorgridError::ClaimBarred))
    );
    let cranker = env.funded(SOL);
    env.send(&[reclaim(&lc, &cranker)], &[&cranker]).unwrap();
    assert_err(
        lc.worker.claim(&mut env, &lc.job),
        TensorgridError::ClaimBarred,
    );
    let next = lc.market.worker(&mut env, cpu(), 2 * SOL);
    assert_err(
        next.claim(&mut env, &lc.job),
        TensorgridError::JobCoolingDown,
    );
    env.warp(tensorgrid_client::constants::REOPEN_COOLDOWN_S + 1);
    next.claim(&mut env, &lc.job).unwrap();
}

/// Review finding 7: a worker cranking its own reclaim collected the bounty, so missing a
/// deadline could cost less than abandoning. Under every market the program accepts, it
/// costs at least as much.
#[test]
fn self_cranked_reclaim_costs_more_than_abandoning() {
    let params = MarketParams {
        slash_bps: 2_000,
        abandon_penalty_bps: 999,
        crank_bounty_bps: 5_000,
        ..default_params()
    };
    let cost = |abandon: bool| {
        let mut env = TestEnv::new();
        let m = MarketFx::create(&mut env, params);
        let poster = env.funded(10 * SOL);
        let job = m.post(&mut env, &poster, job_args(2 * SOL));
        let w = m.worker(&mut env, cpu(), 2 * SOL);
        w.claim(&mut env, &job).unwrap();
        let before = env.lamports(&w.operator.pubkey()) + env.lamports(&w.address);
        if abandon {
            env.send(&[ix::job_abandon(w.keys(), job.address)], &[&w.operator])
                .unwrap();
        } else {
            env.warp(3_601);
            env.send(
                &[ix::job_reclaim(w.operator.pubkey(), w.address, job.address)],
                &[&w.operator],
            )
            .unwrap();
        }
        before - env.lamports(&w.operator.pubkey()) - env.lamports(&w.address) - 5_000
    };
    let (abandon, miss) = (cost(true), cost(false));
    assert_eq!(abandon, 2 * SOL * 999 / 10_000);
    assert_eq!(miss, 2 * SOL * 2_000 / 10_000 / 2);
    assert!(miss > abandon, "missing {miss} vs abandoning {abandon}");
}

#[test]
fn reclaim_before_or_at_deadline_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    let cranker = env.funded(SOL);
    assert_err(
        env.send(&[reclaim(&lc, &cranker)], &[&cranker]),
        TensorgridError::DeadlineNotReached,
    );
    env.warp(3_600);
    assert_err(
        env.send(&[reclaim(&lc, &cranker)], &[&cranker]),
        TensorgridError::DeadlineNotReached,
    );
}

#[test]
fn reclaim_of_open_or_submitted_job_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::new(&mut env);
    let cranker = env.funded(SOL);
    env.warp(10_000);
    assert_err(
        env.send(&[reclaim(&lc, &cranker)], &[&cranker]),
        TensorgridError::JobNotClaimed,
    );
    lc.worker.claim(&mut env, &lc.job).unwrap();
    lc.worker.submit(&mut env, &lc.job).unwrap();
    env.warp(10_000);
    assert_err(
        env.send(&[reclaim(&lc, &cranker)], &[&cranker]),
        TensorgridError::JobNotClaimed,
    );
}

#[test]
fn reclaim_names_the_right_worker() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    let innocent = lc.market.worker(&mut env, cpu(), SOL);
    let cranker = env.funded(SOL);
    env.warp(3_601);
    let wrong_worker = ix::job_reclaim(cranker.pubkey(), innocent.address, lc.job.address);
    assert_err(
        env.send(&[wrong_worker], &[&cranker]),
        TensorgridError::NotAssignedWorker,
    );
    // A worker of another market.
    let other = MarketFx::create_with_id(&mut env, default_params(), 2);
    let foreign = other.worker(&mut env, cpu(), SOL);
    assert_err(
        env.send(
            &[ix::job_reclaim(
                cranker.pubkey(),
                foreign.address,
                lc.job.address,
            )],
            &[&cranker],
        ),
        TensorgridError::MarketMismatch,
    );
    assert_eq!(innocent.state(&env).stake, SOL);
}

#[test]
fn slashed_worker_below_minimum_cannot_claim_until_topped_up() {
    let mut env = TestEnv::new();
    let market = MarketFx::create(&mut env, default_params());
    let poster = env.funded(10 * SOL);
    let first = market.post(&mut env, &poster, job_args(SOL));
    let second = market.post(&mut env, &poster, job_args(SOL));
    let worker = market.worker(&mut env, cpu(), SOL);
    worker.claim(&mut env, &first).unwrap();
    env.warp(3_601);
    let cranker = env.funded(SOL);
    env.send(
        &[ix::job_reclaim(
            cranker.pubkey(),
            worker.address,
            first.address,
        )],
        &[&cranker],
    )
    .unwrap();
    assert_err(
        worker.claim(&mut env, &second),
        TensorgridError::InsufficientStake,
    );
    let top_up = ix::worker_update(
        worker.operator.pubkey(),
        market.address,
        worker.address,
        tensorgrid::instructions::WorkerUpdateArgs {
            add_stake: SOL / 2,
            ..Default::default()
        },
    );
    env.send(&[top_up], &[&worker.operator]).unwrap();
    worker.claim(&mut env, &second).unwrap();
}
