use solana_signer::Signer;
use tensorgrid::instructions::{MarketInitArgs, MarketUpdateArgs};
use tensorgrid_client::{
    constants::MAX_WINDOW_S,
    events::Event,
    instructions as ix, pda,
    state::{DisputeTerms, MarketParams},
    TensorgridError,
};
use tensorgrid_harness::{fixtures::*, TestEnv};

fn init(env: &mut TestEnv, params: MarketParams) -> tensorgrid_harness::TxResult {
    let authority = env.funded(10 * SOL);
    let ix = ix::market_init(
        authority.pubkey(),
        MarketInitArgs {
            market_id: 0,
            params,
        },
    );
    env.send(&[ix], &[&authority])
}

/// Parameter sets the program must refuse, each with its own error.
fn invalid_params() -> Vec<(MarketParams, TensorgridError)> {
    let p = default_params();
    use TensorgridError::*;
    vec![
        (
            MarketParams {
                slash_bps: 10_001,
                ..p
            },
            InvalidBps,
        ),
        (
            MarketParams {
                abandon_penalty_bps: u16::MAX,
                ..p
            },
            InvalidBps,
        ),
        (
            MarketParams {
                crank_bounty_bps: 10_001,
                ..p
            },
            InvalidBps,
        ),
        (
            MarketParams {
                fee_bps: 2_001,
                ..p
            },
            FeeTooHigh,
        ),
        (
            MarketParams {
                fee_bps: 10_000,
                ..p
            },
            FeeTooHigh,
        ),
        (
            MarketParams {
                collateral_bps: 0,
                ..p
            },
            InvalidCollateral,
        ),
        (
            MarketParams {
                collateral_bps: 50_001,
                ..p
            },
            InvalidCollateral,
        ),
        (
            MarketParams {
                crank_bounty_bps: 5_001,
                ..p
            },
            BountyTooHigh,
        ),
        (
            MarketParams {
                challenge_window_s: 0,
                ..p
            },
            InvalidWindow,
        ),
        (
            MarketParams {
                resolve_window_s: -1,
                ..p
            },
            InvalidWindow,
        ),
        (
            MarketParams {
                max_claim_s: -5,
                dispute: tensorgrid_client::defaults::dispute_terms(),
                ..p
            },
            InvalidWindow,
        ),
        // The window that made every submission overflow (review bug 1).
        (
            MarketParams {
                challenge_window_s: i64::MAX,
                ..p
            },
            WindowTooLong,
        ),
        (
            MarketParams {
                resolve_window_s: MAX_WINDOW_S + 1,
                ..p
            },
            WindowTooLong,
        ),
        (
            MarketParams {
                max_claim_s: i64::MAX,
                dispute: tensorgrid_client::defaults::dispute_terms(),
                ..p
            },
            WindowTooLong,
        ),
        // Abandoning must cost less than missing the deadline and cranking it oneself.
        (
            MarketParams {
                slash_bps: 1_000,
                abandon_penalty_bps: 500,
                crank_bounty_bps: 5_000,
                ..p
            },
            PenaltyNotBelowSlash,
        ),
        (
            MarketParams {
                slash_bps: 0,
                abandon_penalty_bps: 0,
                ..p
            },
            PenaltyNotBelowSlash,
        ),
        (
            MarketParams {
                slash_bps: 2_000,
                abandon_penalty_bps: 2_000,
                crank_bounty_bps: 0,
                ..p
            },
            PenaltyNotBelowSlash,
        ),
        (d(|t| t.bond_bps = 0), InvalidDisputeTerms),
        (d(|t| t.bond_bps = 10_001), InvalidDisputeTerms),
        (d(|t| t.verifier_fee_bps = 0), InvalidDisputeTerms),
        (d(|t| t.fraud_slash_bps = 10_001), InvalidDisputeTerms),
        // Three fees must fit in the bond (a frivolous dispute pays them)...
        (
            d(|t| {
                t.bond_bps = 899;
                t.verifier_fee_bps = 300;
            }),
            InvalidDisputeTerms,
        ),
        // ...and in the fraud slash (a cheat pays them): 100 % of a 5 % collateral < 3 × 2 %.
        (
            MarketParams {
                collateral_bps: 500,
                dispute: DisputeTerms {
                    verifier_fee_bps: 200,
                    ..p.dispute
                },
                ..p
            },
            InvalidDisputeTerms,
        ),
        (d(|t| t.verify_window_s = 0), InvalidWindow),
        (d(|t| t.verify_window_s = MAX_WINDOW_S + 1), WindowTooLong),
    ]
}

/// The default parameters with their dispute terms changed by `f`.
fn d(f: impl Fn(&mut DisputeTerms)) -> MarketParams {
    let mut p = default_params();
    f(&mut p.dispute);
    p
}

#[test]
fn the_tightest_dispute_terms_are_accepted() {
    let mut env = TestEnv::new();
    // Bond exactly three fees; slash exactly three fees (100 % of a 9 % collateral).
    let p = MarketParams {
        collateral_bps: 900,
        dispute: DisputeTerms {
            bond_bps: 900,
            verifier_fee_bps: 300,
            fraud_slash_bps: 10_000,
            verify_window_s: MAX_WINDOW_S,
        },
        ..default_params()
    };
    init(&mut env, p).unwrap();
}

#[test]
fn init_records_params_and_emits_event() {
    let mut env = TestEnv::new();
    let authority = env.funded(10 * SOL);
    let ix = ix::market_init(
        authority.pubkey(),
        MarketInitArgs {
            market_id: 7,
            params: default_params(),
        },
    );
    let tx = env.send(&[ix], &[&authority]).unwrap();
    let (address, bump) = pda::market(&authority.pubkey(), 7);
    let m: tensorgrid_client::state::Market = env.get(&address).unwrap();
    assert_eq!(m.authority, authority.pubkey());
    assert_eq!(m.params, default_params());
    assert_eq!(
        (
            m.market_id,
            m.jobs_posted,
            m.fees_unclaimed,
            m.paused,
            m.bump
        ),
        (7, 0, 0, false, bump)
    );
    match &tx.events()[..] {
        [Event::MarketInitialized(e)] => {
            assert_eq!(
                (e.market, e.market_id, e.params),
                (address, 7, default_params())
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn init_and_update_refuse_every_out_of_bounds_or_inconsistent_parameter() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    for (params, code) in invalid_params() {
        assert_err(init(&mut env, params), code);
        let args = MarketUpdateArgs {
            params: Some(params),
            paused: None,
        };
        let ix = ix::market_update(m.authority.pubkey(), m.address, args);
        assert_err(env.send(&[ix], &[&m.authority]), code);
    }
    assert_eq!(m.state(&env).params, default_params());
    // The bounds themselves are allowed.
    let edge = MarketParams {
        fee_bps: 2_000,
        collateral_bps: 50_000,
        slash_bps: 10_000,
        abandon_penalty_bps: 4_999,
        crank_bounty_bps: 5_000,
        challenge_window_s: MAX_WINDOW_S,
        resolve_window_s: MAX_WINDOW_S,
        max_claim_s: MAX_WINDOW_S,
        dispute: tensorgrid_client::defaults::dispute_terms(),
        ..default_params()
    };
    init(&mut env, edge).unwrap();
}

#[test]
fn init_twice_with_same_id_fails_and_keeps_the_first() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let other_params = MarketParams {
        fee_bps: 1,
        ..default_params()
    };
    let ix = ix::market_init(
        m.authority.pubkey(),
        MarketInitArgs {
            market_id: 0,
            params: other_params,
        },
    );
    assert!(env.send(&[ix], &[&m.authority]).is_err());
    assert_eq!(m.state(&env).params, default_params());
}

#[test]
fn update_changes_params_and_pause() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let params = MarketParams {
        fee_bps: 100,
        min_stake: 3 * SOL,
        ..default_params()
    };
    let ix = ix::market_update(
        m.authority.pubkey(),
        m.address,
        MarketUpdateArgs {
            params: Some(params),
            paused: Some(true),
        },
    );
    let tx = env.send(&[ix], &[&m.authority]).unwrap();
    let s = m.state(&env);
    assert_eq!((s.params, s.paused), (params, true));
    assert!(
        matches!(&tx.events()[..], [Event::MarketUpdated(e)] if e.paused && e.params == params)
    );
    // Empty update keeps everything.
    let ix = ix::market_update(m.authority.pubkey(), m.address, MarketUpdateArgs::default());
    env.send(&[ix], &[&m.authority]).unwrap();
    assert_eq!(m.state(&env).params, params);
}

#[test]
fn update_by_non_authority_is_rejected() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let stranger = env.funded(SOL);
    let ix = ix::market_update(
        stranger.pubkey(),
        m.address,
        MarketUpdateArgs {
            params: None,
            paused: Some(true),
        },
    );
    assert_err(
        env.send(&[ix], &[&stranger]),
        TensorgridError::NotMarketAuthority,
    );
    assert!(!m.state(&env).paused);
}

#[test]
fn fees_accrue_in_the_market_and_only_the_authority_withdraws_them() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::submitted(&mut env);
    env.send(&[ix::job_accept(lc.settle_keys())], &[&lc.poster])
        .unwrap();
    let fee = lc.reward * 250 / 10_000;
    let m = &lc.market;
    assert_eq!(m.state(&env).fees_unclaimed, fee);
    assert_eq!(
        env.lamports(&m.address),
        env.rent_exempt(tensorgrid_client::state::Market::SPACE) + fee
    );

    let stranger = env.funded(SOL);
    let steal = ix::market_withdraw_fees(stranger.pubkey(), m.address, stranger.pubkey(), fee);
    assert_err(
        env.send(&[steal], &[&stranger]),
        TensorgridError::NotMarketAuthority,
    );
    let too_much = ix::market_withdraw_fees(
        m.authority.pubkey(),
        m.address,
        m.authority.pubkey(),
        fee + 1,
    );
    assert_err(
        env.send(&[too_much], &[&m.authority]),
        TensorgridError::InsufficientFees,
    );
    let to_itself = ix::market_withdraw_fees(m.authority.pubkey(), m.address, m.address, fee);
    assert_err(
        env.send(&[to_itself], &[&m.authority]),
        TensorgridError::RecipientMismatch,
    );

    // Any recipient, even an account that does not exist yet (fee ≥ its rent minimum here).
    let recipient = solana_keypair::Keypair::new().pubkey();
    let tx = env
        .send(
            &[ix::market_withdraw_fees(
                m.authority.pubkey(),
                m.address,
                recipient,
                fee,
            )],
            &[&m.authority],
        )
        .unwrap();
    assert_eq!(env.lamports(&recipient), fee);
    let s = m.state(&env);
    assert_eq!((s.fees_unclaimed, s.fees_withdrawn), (0, fee));
    assert!(matches!(
        &tx.events()[..],
        [Event::MarketFeesWithdrawn(e)] if e.amount == fee && e.recipient == recipient && e.fees_unclaimed == 0
    ));
}

#[test]
fn pause_blocks_posts_and_claims_but_not_work_in_flight() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    let open_job = lc.market.post(&mut env, &lc.poster, job_args(SOL));
    let other = lc.market.worker(&mut env, cpu(), SOL);
    let pause = |paused| {
        ix::market_update(
            lc.market.authority.pubkey(),
            lc.market.address,
            MarketUpdateArgs {
                params: None,
                paused: Some(paused),
            },
        )
    };
    env.send(&[pause(true)], &[&lc.market.authority]).unwrap();

    let post = lc.market.post_ix(&mut env, &lc.poster, job_args(SOL));
    assert_err(
        env.send(&[post], &[&lc.poster]),
        TensorgridError::MarketPaused,
    );
    assert_err(
        other.claim(&mut env, &open_job),
        TensorgridError::MarketPaused,
    );
    // In-flight work still settles, and the poster can still withdraw an open job.
    lc.worker.submit(&mut env, &lc.job).unwrap();
    env.send(&[ix::job_accept(lc.settle_keys())], &[&lc.poster])
        .unwrap();

    env.send(&[pause(false)], &[&lc.market.authority]).unwrap();
    other.claim(&mut env, &open_job).unwrap();
}

#[test]
fn market_account_substitution_is_rejected() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let (fake, foreign) = forged_copies(&mut env, &m.address);
    for (market, code) in [
        (fake, anchor_lang::error::ErrorCode::ConstraintSeeds),
        (
            foreign,
            anchor_lang::error::ErrorCode::AccountOwnedByWrongProgram,
        ),
    ] {
        let ix = ix::market_update(
            m.authority.pubkey(),
            market,
            MarketUpdateArgs {
                params: None,
                paused: Some(true),
            },
        );
        assert_anchor_err(env.send(&[ix], &[&m.authority]), code);
    }
}
