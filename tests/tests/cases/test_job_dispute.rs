//! Dispute (poster, inside the window) and resolve (authority).
use solana_signer::Signer;
use tensorgrid_client::{
    event_types::Settlement, events::Event, instructions as ix, state::JobState, TensorgridError,
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
    assert!(matches!(&tx.events()[..], [Event::JobDisputed(e)] if e.worker == lc.worker.address));
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
    let op = env.lamports(&lc.worker.operator.pubkey());
    let auth = &lc.market.authority;
    let tx = env
        .send(
            &[ix::job_resolve(auth.pubkey(), lc.settle_keys(), true)],
            &[auth],
        )
        .unwrap();
    let fee = lc.reward * 250 / 10_000;
    assert_eq!(
        env.lamports(&lc.worker.operator.pubkey()) - op,
        lc.reward - fee
    );
    assert!(env.account(&lc.job.address).is_none());
    assert!(
        matches!(&tx.events()[..], [Event::JobPaid(e)] if e.settlement == Settlement::ResolvedForWorker)
    );
    let w = lc.worker.state(&env);
    assert_eq!(
        (w.active_job, w.jobs_completed, w.stake),
        (None, 1, 2 * SOL)
    );
}

#[test]
fn resolve_for_poster_refunds_and_slashes() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::disputed(&mut env);
    let poster = env.lamports(&lc.poster.pubkey());
    let held = env.lamports(&lc.job.address);
    let auth = &lc.market.authority;
    let tx = env
        .send(
            &[ix::job_resolve(auth.pubkey(), lc.settle_keys(), false)],
            &[auth],
        )
        .unwrap();
    let slashed = 2 * SOL * 5_000 / 10_000;
    assert_eq!(env.lamports(&lc.poster.pubkey()) - poster, held + slashed);
    assert!(env.account(&lc.job.address).is_none());
    let w = lc.worker.state(&env);
    assert_eq!(
        (w.active_job, w.jobs_slashed, w.stake),
        (None, 1, 2 * SOL - slashed)
    );
    assert!(
        matches!(&tx.events()[..], [Event::JobRefunded(e)] if e.refunded == held && e.slashed == slashed)
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
