use solana_signer::Signer;
use tensorgrid::instructions::{MarketInitArgs, MarketUpdateArgs};
use tensorgrid_client::{events::Event, instructions as ix, pda, TensorgridError};
use tensorgrid_harness::{fixtures::*, TestEnv};

fn init(
    env: &mut TestEnv,
    params: tensorgrid_client::state::MarketParams,
) -> tensorgrid_harness::TxResult {
    let authority = env.funded(10 * SOL);
    let treasury = env.funded(SOL).pubkey();
    let ix = ix::market_init(
        authority.pubkey(),
        treasury,
        MarketInitArgs {
            market_id: 0,
            params,
        },
    );
    env.send(&[ix], &[&authority])
}

#[test]
fn init_records_params_and_emits_event() {
    let mut env = TestEnv::new();
    let authority = env.funded(10 * SOL);
    let treasury = env.funded(SOL).pubkey();
    let ix = ix::market_init(
        authority.pubkey(),
        treasury,
        MarketInitArgs {
            market_id: 7,
            params: default_params(),
        },
    );
    let tx = env.send(&[ix], &[&authority]).unwrap();
    let (address, bump) = pda::market(&authority.pubkey(), 7);
    let m: tensorgrid_client::state::Market = env.get(&address).unwrap();
    assert_eq!(m.authority, authority.pubkey());
    assert_eq!(m.treasury, treasury);
    assert_eq!(m.params, default_params());
    assert_eq!(
        (m.market_id, m.job_count, m.paused, m.bump),
        (7, 0, false, bump)
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
fn init_rejects_bps_above_10000() {
    let mut env = TestEnv::new();
    for params in [
        tensorgrid_client::state::MarketParams {
            fee_bps: 10_001,
            ..default_params()
        },
        tensorgrid_client::state::MarketParams {
            slash_bps: 10_001,
            ..default_params()
        },
        tensorgrid_client::state::MarketParams {
            abandon_penalty_bps: u16::MAX,
            ..default_params()
        },
        tensorgrid_client::state::MarketParams {
            crank_bounty_bps: 10_001,
            ..default_params()
        },
    ] {
        assert_err(init(&mut env, params), TensorgridError::InvalidBps);
    }
    // The boundary is allowed: a 100 % fee is a (strange) valid market.
    init(
        &mut env,
        tensorgrid_client::state::MarketParams {
            fee_bps: 10_000,
            ..default_params()
        },
    )
    .unwrap();
}

#[test]
fn init_rejects_non_positive_windows() {
    let mut env = TestEnv::new();
    for params in [
        tensorgrid_client::state::MarketParams {
            challenge_window_s: 0,
            ..default_params()
        },
        tensorgrid_client::state::MarketParams {
            max_claim_s: -5,
            ..default_params()
        },
    ] {
        assert_err(init(&mut env, params), TensorgridError::InvalidWindow);
    }
}

#[test]
fn init_rejects_treasury_below_rent_exemption() {
    let mut env = TestEnv::new();
    let authority = env.funded(10 * SOL);
    let empty = solana_keypair::Keypair::new().pubkey();
    let ix = ix::market_init(
        authority.pubkey(),
        empty,
        MarketInitArgs {
            market_id: 0,
            params: default_params(),
        },
    );
    assert_err(
        env.send(&[ix], &[&authority]),
        TensorgridError::TreasuryNotRentExempt,
    );
}

#[test]
fn init_twice_with_same_id_fails_and_keeps_the_first() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let other_params = tensorgrid_client::state::MarketParams {
        fee_bps: 1,
        ..default_params()
    };
    let ix = ix::market_init(
        m.authority.pubkey(),
        m.treasury,
        MarketInitArgs {
            market_id: 0,
            params: other_params,
        },
    );
    assert!(env.send(&[ix], &[&m.authority]).is_err());
    assert_eq!(m.state(&env).params, default_params());
}

#[test]
fn update_changes_params_pause_and_treasury() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let new_treasury = env.funded(SOL).pubkey();
    let params = tensorgrid_client::state::MarketParams {
        fee_bps: 100,
        min_stake: 3 * SOL,
        ..default_params()
    };
    let ix = ix::market_update(
        m.authority.pubkey(),
        m.address,
        Some(new_treasury),
        MarketUpdateArgs {
            params: Some(params),
            paused: Some(true),
        },
    );
    let tx = env.send(&[ix], &[&m.authority]).unwrap();
    let s = m.state(&env);
    assert_eq!(
        (s.params, s.paused, s.treasury),
        (params, true, new_treasury)
    );
    assert!(
        matches!(&tx.events()[..], [Event::MarketUpdated(e)] if e.paused && e.treasury == new_treasury)
    );
    // Empty update keeps everything.
    let ix = ix::market_update(
        m.authority.pubkey(),
        m.address,
        None,
        MarketUpdateArgs::default(),
    );
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
        None,
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
fn update_validates_params_and_treasury() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let bad_fee = tensorgrid_client::state::MarketParams {
        fee_bps: 20_000,
        ..default_params()
    };
    let bad_window = tensorgrid_client::state::MarketParams {
        challenge_window_s: 0,
        ..default_params()
    };
    for (bad, code) in [
        (bad_fee, TensorgridError::InvalidBps),
        (bad_window, TensorgridError::InvalidWindow),
    ] {
        let args = MarketUpdateArgs {
            params: Some(bad),
            paused: None,
        };
        let ix = ix::market_update(m.authority.pubkey(), m.address, None, args);
        assert_err(env.send(&[ix], &[&m.authority]), code);
    }
    let empty = solana_keypair::Keypair::new().pubkey();
    let ix = ix::market_update(
        m.authority.pubkey(),
        m.address,
        Some(empty),
        MarketUpdateArgs::default(),
    );
    assert_err(
        env.send(&[ix], &[&m.authority]),
        TensorgridError::TreasuryNotRentExempt,
    );
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
            None,
            MarketUpdateArgs {
                params: None,
                paused: Some(paused),
            },
        )
    };
    env.send(&[pause(true)], &[&lc.market.authority]).unwrap();

    let post = lc.market.post_ix(&env, &lc.poster.pubkey(), job_args(SOL));
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
            None,
            MarketUpdateArgs {
                params: None,
                paused: Some(true),
            },
        );
        assert_anchor_err(env.send(&[ix], &[&m.authority]), code);
    }
}
