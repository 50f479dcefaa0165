//! Accept (poster, early) and finalize (anyone, after the challenge window).
use solana_signer::Signer;
use tensorgrid_client::{
    event_types::Settlement, events::Event, instructions as ix, state::MarketParams,
    TensorgridError,
};
use tensorgrid_harness::{fixtures::*, TestEnv};

#[test]
fn finalize_after_window_pays_worker_and_treasury() {
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
    let op = env.lamports(&lc.worker.operator.pubkey());
    let poster = env.lamports(&lc.poster.pubkey());
    let treasury = env.lamports(&lc.market.treasury);
    let held = env.lamports(&lc.job.address);
    let tx = env.send(&[finalize], &[&cranker]).unwrap();
    let fee = lc.reward * 250 / 10_000;
    assert_eq!(
        env.lamports(&lc.worker.operator.pubkey()) - op,
        lc.reward - fee
    );
    assert_eq!(env.lamports(&lc.market.treasury) - treasury, fee);
    assert_eq!(
        env.lamports(&lc.poster.pubkey()) - poster,
        held - lc.reward,
        "rent back to poster"
    );
    assert!(env.account(&lc.job.address).is_none());
    assert!(
        matches!(&tx.events()[..], [Event::JobPaid(e)] if e.settlement == Settlement::FinalizedAfterWindow)
    );
}

#[test]
fn accept_requires_the_poster_signature() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::submitted(&mut env);
    let stranger = env.funded(SOL);
    // The same accounts, but the poster does not sign.
    let mut accept = ix::job_accept(lc.settle_keys());
    accept
        .accounts
        .iter_mut()
        .for_each(|m| m.is_signer &= m.pubkey != lc.poster.pubkey());
    assert_err(
        env.send(&[accept], &[&stranger]),
        TensorgridError::NotPoster,
    );
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
fn settlement_rejects_substituted_recipients() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::submitted(&mut env);
    let decoy = env.funded(SOL).pubkey();
    let good = lc.settle_keys();
    let cases = [
        (
            ix::SettleKeys {
                treasury: decoy,
                ..good
            },
            TensorgridError::TreasuryMismatch,
        ),
        (
            ix::SettleKeys {
                operator: decoy,
                ..good
            },
            TensorgridError::RecipientMismatch,
        ),
        (
            ix::SettleKeys {
                poster: decoy,
                ..good
            },
            TensorgridError::RecipientMismatch,
        ),
    ];
    for (keys, code) in cases {
        let cranker = env.funded(SOL);
        env.warp(3_601);
        assert_err(env.send(&[ix::job_finalize(keys)], &[&cranker]), code);
    }
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
    keys.treasury = other.treasury;
    assert_err(
        env.send(&[ix::job_accept(keys)], &[&lc.poster]),
        TensorgridError::MarketMismatch,
    );
}

#[test]
fn fee_extremes_are_exact() {
    for (fee_bps, fee) in [(0u16, 0u64), (10_000, 2 * SOL), (1, 2 * SOL / 10_000)] {
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
        let worker = market.worker(&mut env, cpu(), SOL);
        worker.claim(&mut env, &job).unwrap();
        worker.submit(&mut env, &job).unwrap();
        let treasury = env.lamports(&market.treasury);
        let op = env.lamports(&worker.operator.pubkey());
        env.send(
            &[ix::job_accept(market.settle_keys(&job, &worker))],
            &[&poster],
        )
        .unwrap();
        assert_eq!(env.lamports(&market.treasury) - treasury, fee);
        assert_eq!(env.lamports(&worker.operator.pubkey()) - op, 2 * SOL - fee);
    }
}
