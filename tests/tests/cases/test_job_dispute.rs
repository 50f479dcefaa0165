//! Dispute (poster, inside the window) and resolve (authority).
use solana_signer::Signer;
use tensorgrid_client::{
    event_types::{RefundReason, Settlement},
    events::Event,
    instructions as ix,
    state::JobState,
    TensorgridError,
};
use tensorgrid_harness::{fixtures::*, TestEnv};

#[test]
fn dispute_inside_window_freezes_the_job() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::submitted(&mut env);
    env.warp(3_600);
    let tx = env
        .send(
            &[ix::job_dispute(lc.poster.pubkey(), lc.job.address)],
            &[&lc.poster],
        )
        .unwrap();
    assert_eq!(lc.job.state(&env).unwrap().state, JobState::Disputed);
    assert!(matches!(&tx.events()[..], [Event::JobDisputed(e)]
        if e.worker == lc.worker.address && e.dispute_ends_at == env.now() + 86_400));
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
    assert_err(
        env.send(
            &[ix::job_dispute(lc.poster.pubkey(), lc.job.address)],
            &[&lc.poster],
        ),
        TensorgridError::ChallengeWindowClosed,
    );
}

#[test]
fn dispute_by_non_poster_or_before_submission_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    assert_err(
        env.send(
            &[ix::job_dispute(lc.poster.pubkey(), lc.job.address)],
            &[&lc.poster],
        ),
        TensorgridError::JobNotSubmitted,
    );
    lc.worker.submit(&mut env, &lc.job).unwrap();
    let stranger = env.funded(SOL);
    assert_err(
        env.send(
            &[ix::job_dispute(stranger.pubkey(), lc.job.address)],
            &[&stranger],
        ),
        TensorgridError::NotPoster,
    );
    // A second dispute finds the job no longer Submitted.
    env.send(
        &[ix::job_dispute(lc.poster.pubkey(), lc.job.address)],
        &[&lc.poster],
    )
    .unwrap();
    assert_err(
        env.send(
            &[ix::job_dispute(lc.poster.pubkey(), lc.job.address)],
            &[&lc.poster],
        ),
        TensorgridError::JobNotSubmitted,
    );
}

#[test]
fn resolve_for_worker_pays_like_acceptance() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::disputed(&mut env);
    let auth = &lc.market.authority;
    let tx = env
        .send(
            &[ix::job_resolve(auth.pubkey(), lc.settle_keys(), true)],
            &[auth],
        )
        .unwrap();
    let fee = lc.reward * 250 / 10_000;
    assert!(env.account(&lc.job.address).is_none());
    assert!(matches!(&tx.events()[..], [Event::JobPaid(e)]
        if e.settlement == Settlement::ResolvedForWorker && e.payout == lc.reward - fee));
    let w = lc.worker.state(&env);
    assert_eq!(
        (w.active(), w.record.jobs_completed, w.stake, w.earnings),
        (None, 1, 2 * SOL, lc.reward - fee)
    );
    assert_eq!(lc.market.state(&env).fees_unclaimed, fee);
}

#[test]
fn resolve_for_poster_refunds_and_slashes_the_jobs_collateral_only() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let poster = env.funded(10 * SOL);
    let job = m.post(&mut env, &poster, job_args(SOL / 10));
    // A big stake: a lost dispute takes a share of this job's collateral, not of the stake.
    let worker = m.worker(&mut env, cpu(), 50 * SOL);
    worker.claim(&mut env, &job).unwrap();
    worker.submit(&mut env, &job).unwrap();
    env.send(&[ix::job_dispute(poster.pubkey(), job.address)], &[&poster])
        .unwrap();
    let before = env.lamports(&poster.pubkey());
    let held = env.lamports(&job.address);
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
    assert_eq!(env.lamports(&poster.pubkey()) - before, held + slashed);
    assert!(env.account(&job.address).is_none());
    let w = worker.state(&env);
    assert_eq!(
        (w.active(), w.record.disputes_lost, w.stake),
        (None, 1, 50 * SOL - slashed)
    );
    assert!(matches!(&tx.events()[..], [Event::JobRefunded(e)]
        if e.reward_refunded == SOL / 10 && e.reward_refunded + e.rent_refunded == held
            && e.slashed == slashed && e.reason == RefundReason::DisputeLost));
}

#[test]
fn an_unresolved_dispute_times_out_to_a_refund_without_slash() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::disputed(&mut env);
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
    let tx = env.send(&[timeout], &[&cranker]).unwrap();
    assert_eq!(env.lamports(&lc.poster.pubkey()) - poster, held);
    assert!(env.account(&lc.job.address).is_none());
    let w = lc.worker.state(&env);
    assert_eq!(
        (w.active(), w.stake, w.earnings, w.record.disputes_expired),
        (None, 2 * SOL, 0, 1)
    );
    assert_eq!(lc.market.state(&env).fees_unclaimed, 0, "no fee");
    assert!(matches!(&tx.events()[..], [Event::JobRefunded(e)]
        if e.reason == RefundReason::DisputeExpired && e.slashed == 0 && e.reward_refunded == lc.reward));
}

#[test]
fn dispute_timeout_checks_state_worker_and_poster() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::submitted(&mut env);
    let cranker = env.funded(SOL);
    env.warp(200_000);
    assert_err(
        env.send(&[ix::job_dispute_timeout(lc.settle_keys())], &[&cranker]),
        TensorgridError::JobNotDisputed,
    );
    let lc = Lifecycle::disputed(&mut env);
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
    assert_err(
        env.send(&[ix::job_dispute_timeout(wrong_poster)], &[&cranker]),
        TensorgridError::RecipientMismatch,
    );
}

#[test]
fn resolve_by_non_authority_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::disputed(&mut env);
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

#[test]
fn resolve_of_undisputed_job_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::submitted(&mut env);
    let auth = &lc.market.authority;
    assert_err(
        env.send(
            &[ix::job_resolve(auth.pubkey(), lc.settle_keys(), false)],
            &[auth],
        ),
        TensorgridError::JobNotDisputed,
    );
}
