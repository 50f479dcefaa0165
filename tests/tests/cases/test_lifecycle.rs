use solana_signer::Signer;
use tensorgrid_client::{
    event_types::Settlement,
    events::Event,
    instructions as ix,
    state::{Job, JobState},
};
use tensorgrid_harness::{fixtures::*, TestEnv};

#[test]
fn post_claim_submit_accept_pays_everyone_exactly() {
    let mut env = TestEnv::new();
    let market = MarketFx::create(&mut env, default_params());
    let poster = market.poster(&mut env, 100 * SOL);
    let poster_start = env.lamports(&poster.pubkey());
    let reward = 2 * SOL;

    let job = market.post(&mut env, &poster, job_args(reward));
    let rent = env.rent_exempt(Job::SPACE);
    assert_eq!(
        env.lamports(&job.address),
        rent + reward,
        "escrow holds rent + reward"
    );
    let state: Job = job.state(&env).unwrap();
    assert_eq!(state.state, JobState::Open);
    assert_eq!(state.job_id, job.id);

    let worker = market.worker(&mut env, cpu(), 2 * SOL);
    let tx = worker.claim(&mut env, &job).unwrap();
    assert!(matches!(tx.events()[..], [Event::JobClaimed(_)]));
    worker.submit(&mut env, &job).unwrap();
    let worker_before = env.lamports(&worker.address);
    let market_before = env.lamports(&market.address);

    let tx = env
        .send(
            &[ix::job_accept(market.settle_keys(&job, &worker))],
            &[&poster],
        )
        .unwrap();
    let fee = reward * 250 / 10_000;
    assert_eq!(env.lamports(&worker.address) - worker_before, reward - fee);
    assert_eq!(env.lamports(&market.address) - market_before, fee);
    assert!(env.account(&job.address).is_none(), "job account closed");
    match &tx.events()[..] {
        [Event::JobPaid(p)] => {
            assert_eq!(p.settlement, Settlement::AcceptedByPoster);
            assert_eq!((p.payout, p.fee), (reward - fee, fee));
        }
        other => panic!("unexpected events {other:?}"),
    }
    // The poster paid exactly reward + three transaction fees; the rent came back.
    assert_eq!(
        poster_start - env.lamports(&poster.pubkey()),
        reward + 2 * 5_000
    );
    let w = worker.state(&env);
    assert_eq!(
        (
            w.active(),
            w.record.jobs_completed,
            w.record.total_earned,
            w.earnings
        ),
        (None, 1, reward - fee, reward - fee)
    );
}
