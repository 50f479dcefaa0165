//! Accept (poster, early) and finalize (anyone, after the challenge window).
use anchor_lang::error::ErrorCode as Anchor;
use solana_signer::Signer;
use tensorgrid_client::{
    event_types::Settlement,
    events::Event,
    instructions as ix,
    state::{Job, MarketParams},
    TensorgridError,
};
use tensorgrid_harness::{fixtures::*, TestEnv};

#[test]
fn finalize_after_window_pays_worker_and_market() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::submitted(&mut env);
    let cranker = env.funded(SOL);
    let finalize = ix::job_finalize(lc.settle_keys());
    assert_err(
        env.send(std::slice::from_ref(&finalize), &[&cranker]),
        TensorgridError::ChallengeWindowOpen,
    );
    env.warp(3_600);
    assert_err(
        env.send(std::slice::from_ref(&finalize), &[&cranker]),
        TensorgridError::ChallengeWindowOpen,
    );
    env.warp(1);
    let worker = env.lamports(&lc.worker.address);
    let poster = env.lamports(&lc.poster.pubkey());
    let market = env.lamports(&lc.market.address);
    let held = env.lamports(&lc.job.address);
    let tx = env.send(&[finalize], &[&cranker]).unwrap();
    let fee = lc.reward * 250 / 10_000;
    assert_eq!(env.lamports(&lc.worker.address) - worker, lc.reward - fee);
    assert_eq!(lc.worker.state(&env).earnings, lc.reward - fee);
    assert_eq!(env.lamports(&lc.market.address) - market, fee);
    assert_eq!(lc.market.state(&env).fees_unclaimed, fee);
    assert_eq!(
        env.lamports(&lc.poster.pubkey()) - poster,
        held - lc.reward,
        "rent back to poster"
    );
    assert!(env.account(&lc.job.address).is_none());
    assert!(matches!(&tx.events()[..], [Event::JobPaid(e)]
        if e.settlement == Settlement::FinalizedAfterWindow && e.payout == lc.reward - fee
            && e.fee == fee && e.rent_refunded == held - lc.reward && e.compensation == 0));
}

#[test]
fn accept_requires_the_poster_signature() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::submitted(&mut env);
    let stranger = env.funded(SOL);
    // The same accounts, but the poster does not sign: refused by the accounts struct itself.
    let mut accept = ix::job_accept(lc.settle_keys());
    accept
        .accounts
        .iter_mut()
        .for_each(|m| m.is_signer &= m.pubkey != lc.poster.pubkey());
    assert_anchor_err(env.send(&[accept], &[&stranger]), Anchor::AccountNotSigner);
    // A stranger signing as the poster.
    let keys = ix::SettleKeys {
        poster: stranger.pubkey(),
        ..lc.settle_keys()
    };
    let accept = with_poster_account_of(ix::job_accept(keys), &keys, &lc.settle_keys());
    assert_err(
        env.send(&[accept], &[&stranger]),
        TensorgridError::NotPoster,
    );
    assert!(lc.job.state(&env).is_some(), "nothing paid");
}

/// Review finding (IDL): a client that pays fees from another wallet and signs as the poster,
/// exactly as the IDL says, can accept.
#[test]
fn accept_with_a_separate_fee_payer() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::submitted(&mut env);
    let payer = env.funded(SOL);
    env.send(&[ix::job_accept(lc.settle_keys())], &[&payer, &lc.poster])
        .unwrap();
    assert!(lc.job.state(&env).is_none());
}

#[test]
fn accept_before_submission_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    assert_err(
        env.send(&[ix::job_accept(lc.settle_keys())], &[&lc.poster]),
        TensorgridError::JobNotSubmitted,
    );
    let cranker = env.funded(SOL);
    env.warp(10_000);
    assert_err(
        env.send(&[ix::job_finalize(lc.settle_keys())], &[&cranker]),
        TensorgridError::JobNotSubmitted,
    );
}

#[test]
fn finalize_rejects_a_substituted_poster() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::submitted(&mut env);
    let decoy = env.funded(SOL).pubkey();
    let keys = ix::SettleKeys {
        poster: decoy,
        ..lc.settle_keys()
    };
    let cranker = env.funded(SOL);
    env.warp(3_601);
    let finalize = with_poster_account_of(ix::job_finalize(keys), &keys, &lc.settle_keys());
    assert_err(
        env.send(&[finalize], &[&cranker]),
        TensorgridError::RecipientMismatch,
    );
    assert!(lc.job.state(&env).is_some(), "nothing paid");
}

#[test]
fn settlement_with_another_worker_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::submitted(&mut env);
    let other = lc.market.worker(&mut env, cpu(), SOL);
    let keys = lc.market.settle_keys(&lc.job, &other);
    assert_err(
        env.send(&[ix::job_accept(keys)], &[&lc.poster]),
        TensorgridError::NotAssignedWorker,
    );
}

#[test]
fn settlement_with_another_markets_accounts_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::submitted(&mut env);
    let other = MarketFx::create_with_id(&mut env, default_params(), 3);
    let mut keys = lc.settle_keys();
    keys.market = other.address;
    let accept = with_poster_account_of(ix::job_accept(keys), &keys, &lc.settle_keys());
    assert_err(
        env.send(&[accept], &[&lc.poster]),
        TensorgridError::MarketMismatch,
    );
}

/// Review finding 2: nothing a settlement pays may depend on a third account's balance. The
/// poster's and the operator's wallets are emptied, the reward is below a wallet's rent
/// minimum, and the job still settles (payout into the worker account, fee into the market,
/// rent and compensation to the poster through the job's close).
#[test]
fn settlement_does_not_depend_on_anyones_balance() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let poster = env.funded(SOL);
    let job = m.post(&mut env, &poster, job_args(1_000));
    let worker = m.worker(&mut env, cpu(), SOL);
    worker.claim(&mut env, &job).unwrap();
    worker.submit(&mut env, &job).unwrap();
    drain_wallet(&mut env, &poster);
    drain_wallet(&mut env, &worker.operator);
    let cranker = env.funded(SOL);
    env.warp(3_601);
    env.send(
        &[ix::job_finalize(m.settle_keys(&job, &worker))],
        &[&cranker],
    )
    .unwrap();
    assert_eq!(
        env.lamports(&poster.pubkey()),
        env.rent_exempt(Job::SPACE),
        "rent back"
    );
    assert_eq!(worker.state(&env).earnings, 1_000 - 1_000 * 250 / 10_000);
}

#[test]
fn fee_extremes_are_exact() {
    for (fee_bps, fee) in [(0u16, 0u64), (2_000, 2 * SOL / 5), (1, 2 * SOL / 10_000)] {
        let mut env = TestEnv::new();
        let market = MarketFx::create(
            &mut env,
            MarketParams {
                fee_bps,
                ..default_params()
            },
        );
        let poster = env.funded(10 * SOL);
        let job = market.post(&mut env, &poster, job_args(2 * SOL));
        let worker = market.worker(&mut env, cpu(), 2 * SOL);
        worker.claim(&mut env, &job).unwrap();
        worker.submit(&mut env, &job).unwrap();
        env.send(
            &[ix::job_accept(market.settle_keys(&job, &worker))],
            &[&poster],
        )
        .unwrap();
        assert_eq!(market.state(&env).fees_unclaimed, fee);
        assert_eq!(worker.state(&env).earnings, 2 * SOL - fee);
    }
}
