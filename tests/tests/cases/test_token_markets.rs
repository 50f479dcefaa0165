//! Markets priced in a token (SPL Token or Token-2022): the mint a market may take, where the
//! amounts sit (one vault per market, each party's share in its own account), and every way a
//! token account could be wrong or hostile. Paths that run in every unit are parameterised
//! over `UNITS` (SOL, SPL Token, Token-2022); see also `test_conservation`.
use anchor_lang::prelude::Pubkey;
use solana_signer::Signer;
use tensorgrid::instructions::{JobPostArgs, MarketInitArgs, WorkerUpdateArgs};
use tensorgrid_client::{
    currency::{vault, TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID},
    instructions as ix, pda,
    state::{Market, Poster},
    Currency, TensorgridError,
};
use tensorgrid_harness::{
    fixtures::*,
    invariants::market_token_liabilities,
    tokens::{token_balance, Ext, MintFx, UnitKind, UNITS},
    TestEnv,
};

/// The token programs' `TokenError::AccountFrozen`.
const ACCOUNT_FROZEN: u32 = 17;

fn init_args(id: u64) -> MarketInitArgs {
    MarketInitArgs {
        market_id: id,
        params: default_params(),
    }
}

/// The vault holds exactly what the market's accounts say they are owed.
#[track_caller]
fn assert_vault_exact(env: &TestEnv, market: &MarketFx) {
    if market.mint.is_some() {
        let held = token_balance(env, &vault(&market.address)) as u128;
        assert_eq!(held, market_token_liabilities(env, &market.address));
    }
}

#[test]
fn a_market_records_its_unit_and_a_token_market_owns_its_vault() {
    for unit in UNITS {
        let mut env = TestEnv::new();
        let m = MarketFx::create_in(&mut env, default_params(), unit);
        let state: Market = m.state(&env);
        match &m.mint {
            None => {
                assert_eq!(state.mint, Pubkey::default());
                assert_eq!((state.decimals, state.vault), (9, Pubkey::default()));
            }
            Some(mint) => {
                assert_eq!(state.mint, mint.address);
                assert_eq!(state.decimals, 6);
                assert_eq!(state.token_program, mint.program);
                assert_eq!(state.vault, vault(&m.address));
                let acc = env.account(&state.vault).expect("the vault exists");
                assert_eq!(acc.owner, mint.program, "{unit:?}");
                // The market PDA owns the vault's tokens (bytes 32..64 of a token account).
                assert_eq!(&acc.data[32..64], m.address.as_ref(), "{unit:?}");
                assert_eq!(token_balance(&env, &state.vault), 0);
            }
        }
        // Jobs posted there state the market's mint in their terms.
        assert_eq!(state.job_terms().mint, state.mint);
    }
}

#[test]
fn each_refused_token_2022_extension_is_refused_by_name() {
    let cases = [
        (Ext::TransferFee, TensorgridError::MintTransferFee),
        (Ext::TransferHook, TensorgridError::MintTransferHook),
        (
            Ext::PermanentDelegate,
            TensorgridError::MintPermanentDelegate,
        ),
        (
            Ext::ConfidentialTransfers,
            TensorgridError::MintConfidentialTransfers,
        ),
        (Ext::DefaultFrozen, TensorgridError::MintDefaultFrozen),
        (Ext::NonTransferable, TensorgridError::MintNonTransferable),
        (Ext::Pausable, TensorgridError::MintPausable),
        (Ext::MintCloseAuthority, TensorgridError::MintCloseable),
    ];
    for (ext, err) in cases {
        let mut env = TestEnv::new();
        let mint =
            MintFx::token_2022(&mut env, 6, &[ext]).unwrap_or_else(|e| panic!("{ext:?} mint: {e}"));
        let authority = env.funded(10 * SOL);
        let res = env.send(
            &[ix::market_init_in(
                &mint.currency(),
                authority.pubkey(),
                init_args(0),
            )],
            &[&authority],
        );
        assert_err(res, err);
        assert!(env
            .account(&pda::market(&authority.pubkey(), 0).0)
            .is_none());
    }
    // Extensions that keep every amount exact are accepted.
    let mut env = TestEnv::new();
    let mint = MintFx::token_2022(
        &mut env,
        6,
        &[Ext::MetadataPointer, Ext::DefaultInitialized],
    )
    .expect("mint");
    let authority = env.funded(10 * SOL);
    env.send(
        &[ix::market_init_in(
            &mint.currency(),
            authority.pubkey(),
            init_args(0),
        )],
        &[&authority],
    )
    .expect("accepted extensions");
}

#[test]
fn a_token_market_needs_its_own_token_accounts_and_a_sol_market_none() {
    let mut env = TestEnv::new();
    let m = MarketFx::create_in(&mut env, default_params(), UnitKind::Spl);
    let cur = m.currency();
    let operator = env.funded(10 * SOL);
    m.fund_tokens(&mut env, &operator.pubkey(), 5 * SOL);
    let register = |cur: &Currency| {
        ix::worker_register_in(
            cur,
            operator.pubkey(),
            m.address,
            tensorgrid::instructions::WorkerRegisterArgs {
                stake: 2 * SOL,
                hardware: cpu(),
            },
        )
    };
    // Without token accounts.
    assert_err(
        env.send(&[register(&Currency::Sol)], &[&operator]),
        TensorgridError::TokenAccountsMissing,
    );
    // Another mint (with its own program's accounts).
    let other = MintFx::spl(&mut env, 6);
    other.fund(&mut env, &operator.pubkey(), 5 * SOL);
    assert_err(
        env.send(&[register(&other.currency())], &[&operator]),
        TensorgridError::MintMismatch,
    );
    // The right mint, another vault.
    let mut wrong_vault = register(&cur);
    let real_vault = vault(&m.address);
    let fake_vault = other.account(&mut env, &m.address);
    for meta in wrong_vault
        .accounts
        .iter_mut()
        .filter(|a| a.pubkey == real_vault)
    {
        meta.pubkey = fake_vault;
    }
    assert_err(
        env.send(&[wrong_vault], &[&operator]),
        TensorgridError::VaultMismatch,
    );
    // The right accounts but Token-2022 named as the program of an SPL mint.
    let mut lying = register(&cur);
    for meta in lying
        .accounts
        .iter_mut()
        .filter(|a| a.pubkey == TOKEN_PROGRAM_ID)
    {
        meta.pubkey = TOKEN_2022_PROGRAM_ID;
    }
    assert_err(
        env.send(&[lying], &[&operator]),
        TensorgridError::TokenProgramMismatch,
    );
    // And the stake paid from a token account of another mint.
    let mut foreign_payer = register(&cur);
    let own = cur.token_account(&operator.pubkey()).unwrap();
    let foreign = other.currency().token_account(&operator.pubkey()).unwrap();
    for meta in foreign_payer
        .accounts
        .iter_mut()
        .filter(|a| a.pubkey == own)
    {
        meta.pubkey = foreign;
    }
    assert_err(
        env.send(&[foreign_payer], &[&operator]),
        TensorgridError::TokenAccountMismatch,
    );
    env.send(&[register(&cur)], &[&operator])
        .expect("the market's own accounts");
    assert_vault_exact(&env, &m);

    // A SOL market refuses token accounts.
    let sol = MarketFx::create_with_id(&mut env, default_params(), 7);
    let op2 = env.funded(10 * SOL);
    let mut with_tokens = ix::worker_register_in(
        &cur,
        op2.pubkey(),
        sol.address,
        tensorgrid::instructions::WorkerRegisterArgs {
            stake: 2 * SOL,
            hardware: cpu(),
        },
    );
    // Real token accounts (the token market's vault in the vault's place).
    let sol_vault = vault(&sol.address);
    for meta in with_tokens
        .accounts
        .iter_mut()
        .filter(|a| a.pubkey == sol_vault)
    {
        meta.pubkey = real_vault;
    }
    m.fund_tokens(&mut env, &op2.pubkey(), 2 * SOL);
    assert_err(
        env.send(&[with_tokens], &[&op2]),
        TensorgridError::TokenAccountsUnexpected,
    );
}

#[test]
fn a_post_must_state_the_markets_mint() {
    let mut env = TestEnv::new();
    let m = MarketFx::create_in(&mut env, default_params(), UnitKind::Token2022);
    let poster = env.funded(10 * SOL);
    // Terms read as a SOL market's: refused by name.
    let args = JobPostArgs {
        terms: default_params().job_terms(),
        ..job_args(SOL)
    };
    let post = m.post_ix(&mut env, &poster, args);
    assert_err(
        env.send(&[post], &[&poster]),
        TensorgridError::TermsMintMismatch,
    );
    // A claim states the mint too (the job's offer carries its terms).
    let job = m.post(&mut env, &poster, job_args(SOL));
    assert_eq!(job.offer(&env).terms.mint, m.mint.as_ref().unwrap().address);
}

/// Post, claim, submit, accept; then every party takes out what it is owed. In every unit
/// each amount lands exactly where the terms say.
#[test]
fn a_paid_job_pays_exactly_in_every_unit() {
    for unit in UNITS {
        let mut env = TestEnv::new();
        let lc = Lifecycle::new_in(&mut env, unit);
        let cur = lc.market.currency();
        let (poster, op) = (lc.poster.pubkey(), lc.worker.operator.pubkey());
        lc.worker.claim(&mut env, &lc.job).expect("claim");
        lc.worker.submit(&mut env, &lc.job).expect("submit");
        env.send(&[ix::job_accept(lc.settle_keys())], &[&lc.poster])
            .expect("accept");
        let payout = default_params().job_terms().payout(lc.reward).unwrap();
        let w = lc.worker.state(&env);
        assert_eq!(w.earnings, payout.to_worker, "{unit:?}");
        assert_eq!(lc.market.state(&env).fees_unclaimed, payout.fee);
        assert_vault_exact(&env, &lc.market);
        let before = lc.market.balance(&env, &op);
        let withdraw = ix::worker_update_in(
            &cur,
            op,
            lc.market.address,
            lc.worker.address,
            WorkerUpdateArgs {
                withdraw_earnings: payout.to_worker,
                ..Default::default()
            },
        );
        let tx = env
            .send(&[withdraw], &[&lc.worker.operator])
            .expect("withdraw");
        let fee = if unit == UnitKind::Sol {
            tx.meta.fee
        } else {
            0
        };
        assert_eq!(
            lc.market.balance(&env, &op) + fee - before,
            payout.to_worker,
            "{unit:?}: the operator receives its earnings"
        );
        let auth = &lc.market.authority;
        let before = lc.market.balance(&env, &auth.pubkey());
        lc.market.fund_tokens(&mut env, &auth.pubkey(), 0);
        let tx = env
            .send(
                &[ix::market_withdraw_fees_in(
                    &cur,
                    auth.pubkey(),
                    lc.market.address,
                    auth.pubkey(),
                    payout.fee,
                )],
                &[auth],
            )
            .expect("fees");
        let fee = if unit == UnitKind::Sol {
            tx.meta.fee
        } else {
            0
        };
        assert_eq!(
            lc.market.balance(&env, &auth.pubkey()) + fee - before,
            payout.fee
        );
        assert_vault_exact(&env, &lc.market);
        if unit != UnitKind::Sol {
            // The poster paid the reward in tokens and only rent and fees in lamports.
            assert_eq!(lc.market.balance(&env, &poster), 0, "{unit:?}");
        }
    }
}

/// A cancel in a token market credits the poster account; withdrawing in the same
/// transaction gives the poster back everything at once. A new job posted in the same
/// transaction takes a fresh escrow (ids only grow).
#[test]
fn cancel_withdraw_and_repost_in_one_transaction() {
    for unit in [UnitKind::Spl, UnitKind::Token2022] {
        let mut env = TestEnv::new();
        let lc = Lifecycle::new_in(&mut env, unit);
        let cur = lc.market.currency();
        let poster = lc.poster.pubkey();
        assert_eq!(lc.market.balance(&env, &poster), 0);
        let again = job_args(lc.reward);
        let again_id = again.job_id;
        let repost = ix::job_post_in(
            &cur,
            poster,
            lc.market.address,
            JobPostArgs {
                terms: lc.market.state(&env).job_terms(),
                ..again
            },
        );
        env.send(
            &[
                ix::job_cancel_in(&cur, poster, lc.market.address, lc.job.address),
                ix::poster_withdraw(&cur, poster, lc.market.address, lc.reward),
                repost,
            ],
            &[&lc.poster],
        )
        .expect("cancel, withdraw and post again");
        assert!(lc.job.state(&env).is_none(), "the old escrow is closed");
        let new_job = pda::job(&lc.market.address, &poster, again_id).0;
        assert_eq!(
            env.get::<tensorgrid_client::state::Job>(&new_job)
                .unwrap()
                .reward,
            lc.reward
        );
        assert_eq!(
            lc.market.balance(&env, &poster),
            0,
            "the refund paid the new reward"
        );
        assert_vault_exact(&env, &lc.market);
        // Nothing more to withdraw.
        assert_err(
            env.send(
                &[ix::poster_withdraw(&cur, poster, lc.market.address, 1)],
                &[&lc.poster],
            ),
            TensorgridError::InsufficientRefunds,
        );
        // A token cancel without the poster account is refused, not silently unpaid.
        let lc2 = Lifecycle::new_in(&mut env, unit);
        assert_err(
            env.send(
                &[ix::job_cancel(lc2.poster.pubkey(), lc2.job.address)],
                &[&lc2.poster],
            ),
            TensorgridError::PosterAccountMismatch,
        );
    }
    // A SOL market has no refunds to withdraw (its posters are paid in their wallets).
    let mut env = TestEnv::new();
    let lc = Lifecycle::new(&mut env);
    let usdc = Currency::Token {
        mint: Pubkey::new_unique(),
        token_program: TOKEN_PROGRAM_ID,
    };
    let mut withdraw = ix::poster_withdraw(&usdc, lc.poster.pubkey(), lc.market.address, 0);
    // Leave the token accounts out, as a SOL market's instruction does.
    let absent = [
        usdc.mint(),
        usdc.vault(&lc.market.address),
        usdc.token_account(&lc.poster.pubkey()),
        usdc.token_program(),
    ];
    for meta in withdraw
        .accounts
        .iter_mut()
        .filter(|a| absent.contains(&Some(a.pubkey)))
    {
        *meta =
            anchor_lang::prelude::AccountMeta::new_readonly(tensorgrid_client::PROGRAM_ID, false);
    }
    assert_err(
        env.send(&[withdraw], &[&lc.poster]),
        TensorgridError::NotTokenMarket,
    );
}

/// A poster whose token account is frozen (or closed) cannot hold up the worker's pay: the
/// settlement credits the poster account, and only the poster's own withdrawal waits.
#[test]
fn a_frozen_poster_account_does_not_block_the_worker() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::new_in(&mut env, UnitKind::Spl);
    let mint = lc.market.mint.clone().unwrap();
    let cur = lc.market.currency();
    let poster = lc.poster.pubkey();
    // The compensation an abandon leaves in the escrow comes back to the poster on settlement.
    lc.worker.claim(&mut env, &lc.job).expect("claim");
    env.send(
        &[ix::job_abandon(lc.worker.keys(), lc.job.address)],
        &[&lc.worker.operator],
    )
    .expect("abandon");
    let compensation = lc.job.state(&env).unwrap().compensation;
    assert!(compensation > 0);
    env.warp(601);
    let second = lc.market.worker(&mut env, cpu(), 2 * SOL);
    second.claim(&mut env, &lc.job).expect("claim");
    second.submit(&mut env, &lc.job).expect("submit");
    let poster_ata = cur.token_account(&poster).unwrap();
    mint.set_frozen(&mut env, &poster_ata, true)
        .expect("freeze");
    env.warp(3_601);
    let cranker = env.funded(SOL);
    let keys = lc.market.settle_keys(&lc.job, &second);
    env.send(&[ix::job_finalize(keys)], &[&cranker])
        .expect("finalize does not touch the poster's token account");
    assert!(second.state(&env).earnings > 0);
    let account: Poster = env
        .get(&pda::poster(&lc.market.address, &poster).0)
        .unwrap();
    assert_eq!(account.refunds, compensation);
    assert_vault_exact(&env, &lc.market);
    let withdraw = ix::poster_withdraw(&cur, poster, lc.market.address, compensation);
    let res = env.send(std::slice::from_ref(&withdraw), &[&lc.poster]);
    assert_eq!(custom_code(&res), Some(ACCOUNT_FROZEN), "frozen: {res:?}");
    mint.set_frozen(&mut env, &poster_ata, false).expect("thaw");
    env.send(&[withdraw], &[&lc.poster])
        .expect("withdraw after the thaw");
    assert_eq!(lc.market.balance(&env, &poster), compensation);
    assert_vault_exact(&env, &lc.market);
}

/// A frozen vault stops every exit (the token program refuses its transfers) but loses
/// nothing: settlements still move the records, and after a thaw everyone withdraws.
#[test]
fn a_frozen_vault_stops_exits_and_loses_nothing() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::new_in(&mut env, UnitKind::Token2022);
    let mint = lc.market.mint.clone().unwrap();
    let cur = lc.market.currency();
    let vault = vault(&lc.market.address);
    lc.worker.claim(&mut env, &lc.job).expect("claim");
    lc.worker.submit(&mut env, &lc.job).expect("submit");
    mint.set_frozen(&mut env, &vault, true)
        .expect("freeze the vault");
    env.send(&[ix::job_accept(lc.settle_keys())], &[&lc.poster])
        .expect("settlement needs no transfer");
    let op = &lc.worker.operator;
    let deregister =
        ix::worker_deregister_in(&cur, op.pubkey(), lc.market.address, lc.worker.address);
    let res = env.send(std::slice::from_ref(&deregister), &[op]);
    assert_eq!(
        custom_code(&res),
        Some(ACCOUNT_FROZEN),
        "frozen vault: {res:?}"
    );
    assert!(lc.worker.state(&env).registered, "nothing changed");
    mint.set_frozen(&mut env, &vault, false).expect("thaw");
    let owed = {
        let w = lc.worker.state(&env);
        w.stake + w.earnings
    };
    env.send(&[deregister], &[op])
        .expect("deregister after the thaw");
    assert_eq!(lc.market.balance(&env, &op.pubkey()), owed);
    assert_vault_exact(&env, &lc.market);
}

/// Mints with no decimals and with 9, and amounts near `u64::MAX`: base units throughout.
#[test]
fn decimals_and_u64_extremes() {
    for decimals in [0u8, 9] {
        let mut env = TestEnv::new();
        let mint = MintFx::spl(&mut env, decimals);
        let m = MarketFx::create_priced(&mut env, default_params(), 0, Some(mint));
        assert_eq!(m.state(&env).decimals, decimals);
        let poster = env.funded(10 * SOL);
        // The largest reward whose collateral (1 × reward by default) and the worker's stake
        // fit in the mint's supply together.
        let reward = u64::MAX / 2;
        let job = m.post(&mut env, &poster, job_args(reward));
        let operator = env.funded(10 * SOL);
        let worker = m.worker_for(&mut env, &operator, cpu(), u64::MAX - reward);
        worker.claim(&mut env, &job).expect("claim");
        worker.submit(&mut env, &job).expect("submit");
        env.send(&[ix::job_accept(m.settle_keys(&job, &worker))], &[&poster])
            .expect("accept");
        let payout = default_params().job_terms().payout(reward).unwrap();
        assert_eq!(worker.state(&env).earnings, payout.to_worker);
        assert_eq!(
            token_balance(&env, &vault(&m.address)),
            u64::MAX,
            "the whole supply sits in the vault"
        );
        assert_vault_exact(&env, &m);
        // A reward whose collateral (2 × the reward here) would not fit in a u64 is refused,
        // not wrapped.
        let mint = MintFx::spl(&mut env, decimals);
        let params = tensorgrid_client::state::MarketParams {
            collateral_bps: 20_000,
            ..default_params()
        };
        let m2 = MarketFx::create_priced(&mut env, params, 1, Some(mint));
        let terms = m2.state(&env).job_terms();
        let big = m2.post_ix(
            &mut env,
            &poster,
            JobPostArgs {
                terms,
                ..job_args(u64::MAX / 2 + 1)
            },
        );
        assert_err(
            env.send(&[big], &[&poster]),
            TensorgridError::ArithmeticOverflow,
        );
    }
}

/// The deadline bounty is paid in the market's unit to the cranker's own account.
#[test]
fn a_reclaim_pays_its_bounty_in_every_unit() {
    for unit in UNITS {
        let mut env = TestEnv::new();
        let lc = Lifecycle::new_in(&mut env, unit);
        let cur = lc.market.currency();
        lc.worker.claim(&mut env, &lc.job).expect("claim");
        env.warp(3_601);
        let cranker = env.funded(SOL);
        lc.market.fund_tokens(&mut env, &cranker.pubkey(), 0);
        let before = lc.market.balance(&env, &cranker.pubkey());
        let reclaim = ix::job_reclaim_in(
            &cur,
            cranker.pubkey(),
            lc.market.address,
            lc.worker.address,
            lc.job.address,
        );
        let tx = env.send(&[reclaim], &[&cranker]).expect("reclaim");
        let fee = if unit == UnitKind::Sol {
            tx.meta.fee
        } else {
            0
        };
        let job = lc.job.state(&env).unwrap();
        let split = job
            .terms
            .reclaim_split(lc.reward * default_params().collateral_bps as u64 / 10_000)
            .unwrap();
        assert_eq!(
            lc.market.balance(&env, &cranker.pubkey()) + fee - before,
            split.bounty,
            "{unit:?}"
        );
        assert_eq!(job.compensation, split.to_poster);
        assert_vault_exact(&env, &lc.market);
        if unit != UnitKind::Sol {
            // Without the market and token accounts a token reclaim is refused.
            let lc2 = Lifecycle::new_in(&mut env, unit);
            lc2.worker.claim(&mut env, &lc2.job).expect("claim");
            env.warp(3_601);
            assert_err(
                env.send(
                    &[ix::job_reclaim(
                        cranker.pubkey(),
                        lc2.worker.address,
                        lc2.job.address,
                    )],
                    &[&cranker],
                ),
                TensorgridError::TokenAccountsMissing,
            );
        }
    }
}

/// A settlement credits the job's own poster account: another poster's, or an account of
/// another type, is refused (in a SOL market the account is not read).
#[test]
fn a_settlement_credits_only_the_jobs_poster_account() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::new_in(&mut env, UnitKind::Spl);
    let other_poster = env.funded(10 * SOL);
    lc.market.init_poster(&mut env, &other_poster);
    lc.worker.claim(&mut env, &lc.job).expect("claim");
    lc.worker.submit(&mut env, &lc.job).expect("submit");
    env.warp(3_601);
    let cranker = env.funded(SOL);
    let keys = lc.settle_keys();
    let real = pda::poster(&lc.market.address, &lc.poster.pubkey()).0;
    let swap = |to: Pubkey| {
        let mut finalize = ix::job_finalize(keys);
        for meta in finalize.accounts.iter_mut().filter(|a| a.pubkey == real) {
            meta.pubkey = to;
        }
        finalize
    };
    let theirs = pda::poster(&lc.market.address, &other_poster.pubkey()).0;
    assert_err(
        env.send(&[swap(theirs)], &[&cranker]),
        TensorgridError::PosterAccountMismatch,
    );
    assert_err(
        env.send(&[swap(lc.worker.address)], &[&cranker]),
        TensorgridError::PosterAccountMismatch,
    );
    env.send(&[ix::job_finalize(keys)], &[&cranker])
        .expect("the job's own poster account");
}

/// Lamports sent to a market's vault address before the market exists do not keep it from
/// being created (the address is known from the authority and the market id).
#[test]
fn a_prefunded_vault_address_does_not_block_the_market() {
    for unit in [UnitKind::Spl, UnitKind::Token2022] {
        let mut env = TestEnv::new();
        let mint = MintFx::for_unit(&mut env, unit).unwrap();
        let authority = env.funded(10 * SOL);
        let market = pda::market(&authority.pubkey(), 0).0;
        let griefer = env.funded(SOL);
        env.send(
            &[anchor_lang::solana_program::system_instruction::transfer(
                &griefer.pubkey(),
                &vault(&market),
                env.rent_exempt(0),
            )],
            &[&griefer],
        )
        .expect("lamports to the vault's address");
        env.send(
            &[ix::market_init_in(
                &mint.currency(),
                authority.pubkey(),
                init_args(0),
            )],
            &[&authority],
        )
        .expect("the market and its vault");
        assert_eq!(token_balance(&env, &vault(&market)), 0);
        let acc = env.account(&vault(&market)).unwrap();
        assert_eq!(acc.owner, mint.program);
        assert_eq!(
            acc.lamports,
            env.rent_exempt(acc.data.len()),
            "{unit:?}: topped up to rent"
        );
    }
}

/// A withdrawal into the vault itself is refused (the tokens would stay there, owed to
/// nobody); a hardware change in a token market needs no token account.
#[test]
fn withdrawals_name_a_real_destination_and_hardware_changes_need_none() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::new_in(&mut env, UnitKind::Spl);
    let cur = lc.market.currency();
    let op = &lc.worker.operator;
    let mut into_vault = ix::worker_update_in(
        &cur,
        op.pubkey(),
        lc.market.address,
        lc.worker.address,
        WorkerUpdateArgs {
            withdraw_stake: 1,
            ..Default::default()
        },
    );
    let own = cur.token_account(&op.pubkey()).unwrap();
    let vault = vault(&lc.market.address);
    for meta in into_vault.accounts.iter_mut().filter(|a| a.pubkey == own) {
        meta.pubkey = vault;
    }
    // Anchor refuses the vault named twice as a writable account before the program's own
    // check (`TokenAccountMismatch`) is reached.
    assert_anchor_err(
        env.send(&[into_vault], &[op]),
        anchor_lang::error::ErrorCode::ConstraintDuplicateMutableAccount,
    );
    let hardware = ix::worker_update(
        op.pubkey(),
        lc.market.address,
        lc.worker.address,
        WorkerUpdateArgs {
            hardware: Some(cuda(8_192)),
            ..Default::default()
        },
    );
    env.send(&[hardware], &[op]).expect("a hardware change");
    assert_eq!(lc.worker.state(&env).hardware.vram_mib, 8_192);
    assert_vault_exact(&env, &lc.market);
}
