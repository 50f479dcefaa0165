use solana_signer::Signer;
use tensorgrid_client::{
    constants::REOPEN_COOLDOWN_S, events::Event, instructions as ix, state::JobState,
    TensorgridError,
};
use tensorgrid_harness::{fixtures::*, TestEnv};

#[test]
fn abandon_pays_penalty_into_the_escrow_and_reopens() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    let poster_before = env.lamports(&lc.poster.pubkey());
    let worker_before = env.lamports(&lc.worker.address);
    let job_before = env.lamports(&lc.job.address);
    let tx = env
        .send(
            &[ix::job_abandon(lc.worker.keys(), lc.job.address)],
            &[&lc.worker.operator],
        )
        .unwrap();
    // 5 % of the collateral (1 x the 2 SOL reward), held in the job for the poster.
    let penalty = 2 * SOL * 500 / 10_000;
    assert_eq!(worker_before - env.lamports(&lc.worker.address), penalty);
    assert_eq!(env.lamports(&lc.job.address) - job_before, penalty);
    assert_eq!(env.lamports(&lc.poster.pubkey()), poster_before);
    let w = lc.worker.state(&env);
    assert_eq!(
        (
            w.stake,
            w.active(),
            w.record.jobs_abandoned,
            w.record.total_slashed
        ),
        (2 * SOL - penalty, None, 1, penalty)
    );
    let j = lc.job.state(&env).unwrap();
    assert_eq!(
        (
            j.state,
            j.holder(),
            j.deadline,
            j.collateral,
            j.compensation
        ),
        (JobState::Open, None, 0, 0, penalty)
    );
    assert_eq!(j.barred_workers[0], lc.worker.address);
    assert_eq!(j.reopens, 1);
    assert!(matches!(&tx.events()[..], [Event::JobAbandoned(e)] if e.penalty == penalty));
    // Someone else can take it after the cooldown; the poster gets the penalty when the job
    // closes.
    let next = lc.market.worker(&mut env, cpu(), 2 * SOL);
    env.warp(REOPEN_COOLDOWN_S + 1);
    next.claim(&mut env, &lc.job).unwrap();
    next.submit(&mut env, &lc.job).unwrap();
    let poster_before = env.lamports(&lc.poster.pubkey());
    let rent = env.rent_exempt(tensorgrid_client::state::Job::SPACE);
    let tx = env
        .send(
            &[ix::job_accept(lc.market.settle_keys(&lc.job, &next))],
            &[&lc.poster],
        )
        .unwrap();
    assert_eq!(
        env.lamports(&lc.poster.pubkey()),
        poster_before + rent + penalty - 5_000
    );
    assert!(matches!(&tx.events()[..], [Event::JobPaid(e)]
        if e.compensation == penalty && e.rent_refunded == rent));
}

/// Review finding 2: a poster that empties its wallet used to block the worker's abandon (the
/// penalty was paid to the poster's account, below its rent minimum).
#[test]
fn abandon_does_not_depend_on_the_posters_balance() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    drain_wallet(&mut env, &lc.poster);
    env.send(
        &[ix::job_abandon(lc.worker.keys(), lc.job.address)],
        &[&lc.worker.operator],
    )
    .unwrap();
    env.send(
        &[ix::worker_deregister(
            lc.worker.operator.pubkey(),
            lc.worker.market,
            lc.worker.address,
        )],
        &[&lc.worker.operator],
    )
    .unwrap();
}

/// Review finding 8 (for abandon): a worker that gives a job back may not take it again, so an
/// `[abandon, claim]` bundle cannot keep a job away from the poster.
#[test]
fn the_abandoning_worker_may_not_claim_again() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    let res = env.send(
        &[
            ix::job_abandon(lc.worker.keys(), lc.job.address),
            ix::job_claim(lc.worker.keys(), lc.job.address, lc.job.offer(&env)),
        ],
        &[&lc.worker.operator],
    );
    assert_eq!(
        custom_code(&res),
        Some(tensorgrid_client::error_code(TensorgridError::ClaimBarred))
    );
    assert_eq!(lc.job.state(&env).unwrap().state, JobState::Claimed);
    env.send(
        &[ix::job_abandon(lc.worker.keys(), lc.job.address)],
        &[&lc.worker.operator],
    )
    .unwrap();
    assert_err(
        lc.worker.claim(&mut env, &lc.job),
        TensorgridError::ClaimBarred,
    );
    // The poster now sees it open and can cancel.
    env.send(
        &[ix::job_cancel(lc.poster.pubkey(), lc.job.address)],
        &[&lc.poster],
    )
    .unwrap();
}

/// Protocol review (second round): two colluding workers passing a job back and forth with
/// `[abandon, claim]` bundles kept it from ever being open to its poster. After any reopen,
/// nobody may claim for `REOPEN_COOLDOWN_S`: the poster's window to cancel.
#[test]
fn a_reopened_job_waits_out_the_cooldown_so_the_poster_can_cancel() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    let accomplice = lc.market.worker(&mut env, cpu(), 2 * SOL);
    let res = env.send(
        &[
            ix::job_abandon(lc.worker.keys(), lc.job.address),
            ix::job_claim(accomplice.keys(), lc.job.address, lc.job.offer(&env)),
        ],
        &[&lc.worker.operator, &accomplice.operator],
    );
    assert_eq!(
        custom_code(&res),
        Some(tensorgrid_client::error_code(
            TensorgridError::JobCoolingDown
        ))
    );
    env.send(
        &[ix::job_abandon(lc.worker.keys(), lc.job.address)],
        &[&lc.worker.operator],
    )
    .unwrap();
    assert_eq!(lc.job.state(&env).unwrap().reopened_at, env.now());
    env.warp(REOPEN_COOLDOWN_S);
    assert_err(
        accomplice.claim(&mut env, &lc.job),
        TensorgridError::JobCoolingDown,
    );
    // The poster's window: cancel, with the penalty.
    let before = env.lamports(&lc.poster.pubkey());
    let held = env.lamports(&lc.job.address);
    env.send(
        &[ix::job_cancel(lc.poster.pubkey(), lc.job.address)],
        &[&lc.poster],
    )
    .unwrap();
    assert_eq!(env.lamports(&lc.poster.pubkey()), before + held - 5_000);
}

#[test]
fn abandon_after_deadline_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    env.warp(3_601);
    assert_err(
        env.send(
            &[ix::job_abandon(lc.worker.keys(), lc.job.address)],
            &[&lc.worker.operator],
        ),
        TensorgridError::DeadlinePassed,
    );
}

#[test]
fn abandon_by_unassigned_worker_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    let other = lc.market.worker(&mut env, cpu(), SOL);
    assert_err(
        env.send(
            &[ix::job_abandon(other.keys(), lc.job.address)],
            &[&other.operator],
        ),
        TensorgridError::NotAssignedWorker,
    );
}

#[test]
fn abandon_of_open_or_submitted_job_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::new(&mut env);
    let abandon = ix::job_abandon(lc.worker.keys(), lc.job.address);
    assert_err(
        env.send(std::slice::from_ref(&abandon), &[&lc.worker.operator]),
        TensorgridError::JobNotClaimed,
    );
    lc.worker.claim(&mut env, &lc.job).unwrap();
    lc.worker.submit(&mut env, &lc.job).unwrap();
    assert_err(
        env.send(&[abandon], &[&lc.worker.operator]),
        TensorgridError::JobNotClaimed,
    );
}

#[test]
fn abandon_with_wrong_signer_or_market_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    let decoy = env.funded(SOL);
    let mut keys = lc.worker.keys();
    keys.operator = decoy.pubkey();
    assert_err(
        env.send(&[ix::job_abandon(keys, lc.job.address)], &[&decoy]),
        TensorgridError::NotOperator,
    );
    // A worker of another market naming this market's job.
    let other = MarketFx::create_with_id(&mut env, default_params(), 4);
    let stranger = other.worker(&mut env, cpu(), SOL);
    assert_err(
        env.send(
            &[ix::job_abandon(stranger.keys(), lc.job.address)],
            &[&stranger.operator],
        ),
        TensorgridError::MarketMismatch,
    );
}
