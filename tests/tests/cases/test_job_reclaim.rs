use solana_signer::Signer;
use tensorgrid_client::{events::Event, instructions as ix, state::JobState, TensorgridError};
use tensorgrid_harness::{fixtures::*, TestEnv};

fn reclaim(lc: &Lifecycle, cranker: &solana_keypair::Keypair) -> ix::Instruction {
    ix::job_reclaim(
        cranker.pubkey(),
        lc.market.address,
        lc.worker.address,
        lc.job.address,
        lc.poster.pubkey(),
    )
}

#[test]
fn reclaim_after_deadline_slashes_and_reopens() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    let cranker = env.funded(SOL);
    env.warp(3_601);
    let poster = env.lamports(&lc.poster.pubkey());
    let crank_before = env.lamports(&cranker.pubkey());
    let tx = env.send(&[reclaim(&lc, &cranker)], &[&cranker]).unwrap();
    let slashed = 2 * SOL * 5_000 / 10_000;
    let bounty = slashed * 1_000 / 10_000;
    assert_eq!(
        env.lamports(&cranker.pubkey()) + 5_000 - crank_before,
        bounty
    );
    assert_eq!(env.lamports(&lc.poster.pubkey()) - poster, slashed - bounty);
    let w = lc.worker.state(&env);
    assert_eq!(
        (w.stake, w.active_job, w.jobs_slashed),
        (2 * SOL - slashed, None, 1)
    );
    let j = lc.job.state(&env).unwrap();
    assert_eq!((j.state, j.worker), (JobState::Open, None));
    assert_eq!(
        env.lamports(&lc.job.address),
        env.rent_exempt(tensorgrid_client::state::Job::SPACE) + lc.reward,
        "escrow intact"
    );
    assert!(
        matches!(&tx.events()[..], [Event::JobReclaimed(e)] if e.bounty == bounty && e.to_poster == slashed - bounty)
    );
    // The slashed worker (1 SOL left = min stake) may claim again; another worker may too.
    let next = lc.market.worker(&mut env, cpu(), SOL);
    next.claim(&mut env, &lc.job).unwrap();
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
fn reclaim_names_the_right_worker_and_poster() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    let innocent = lc.market.worker(&mut env, cpu(), SOL);
    let cranker = env.funded(SOL);
    env.warp(3_601);
    let wrong_worker = ix::job_reclaim(
        cranker.pubkey(),
        lc.market.address,
        innocent.address,
        lc.job.address,
        lc.poster.pubkey(),
    );
    assert_err(
        env.send(&[wrong_worker], &[&cranker]),
        TensorgridError::NotAssignedWorker,
    );
    let wrong_poster = ix::job_reclaim(
        cranker.pubkey(),
        lc.market.address,
        lc.worker.address,
        lc.job.address,
        cranker.pubkey(),
    );
    assert_err(
        env.send(&[wrong_poster], &[&cranker]),
        TensorgridError::RecipientMismatch,
    );
    assert_eq!(innocent.state(&env).stake, SOL);
}

#[test]
fn slashed_worker_below_minimum_cannot_claim_until_topped_up() {
    let mut env = TestEnv::new();
    let market = MarketFx::create(&mut env, default_params());
    let poster = env.funded(10 * SOL);
    let job = market.post(&mut env, &poster, job_args(SOL));
    let worker = market.worker(&mut env, cpu(), SOL);
    worker.claim(&mut env, &job).unwrap();
    env.warp(3_601);
    let cranker = env.funded(SOL);
    env.send(
        &[ix::job_reclaim(
            cranker.pubkey(),
            market.address,
            worker.address,
            job.address,
            poster.pubkey(),
        )],
        &[&cranker],
    )
    .unwrap();
    assert_err(
        worker.claim(&mut env, &job),
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
    worker.claim(&mut env, &job).unwrap();
}
