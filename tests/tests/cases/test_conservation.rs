//! Every terminal path closes the job and strands nothing, in every unit a market can be priced
//! in: across all the accounts that ever took part, the lamports change only by the transaction
//! fees paid, and in a token market every token that entered the vault leaves it again once
//! each party has taken out what it is owed.
use anchor_lang::prelude::Pubkey;
use solana_keypair::Keypair;
use solana_signer::Signer;
use tensorgrid_client::{instructions as ix, state::Poster, Currency};
use tensorgrid_harness::{
    fixtures::*,
    invariants::market_token_liabilities,
    tokens::{token_balance, UnitKind, UNITS},
    TestEnv,
};

/// Sends and accumulates fees, so the world's total can be checked at the end.
struct Ledger {
    env: TestEnv,
    fees: u128,
}

impl Ledger {
    fn send(&mut self, i: ix::Instruction, signer: &Keypair) {
        let tx = self.env.send(&[i], &[signer]).expect("step succeeds");
        self.fees += tx.meta.fee as u128;
    }
}

fn run_path(unit: UnitKind, path: &str) {
    let mut env = TestEnv::new();
    let lc = Lifecycle::new_in(&mut env, unit);
    let cur = lc.market.currency();
    let cranker = env.funded(SOL);
    let auth = &lc.market.authority;
    // Every party's token account exists before the start (their rent is not the path's),
    // and the poster holds the bond it may post.
    let bond = dispute_args(&env, &lc.job).bond;
    lc.market.fund_tokens(&mut env, &lc.poster.pubkey(), bond);
    for who in [&cranker, auth] {
        lc.market.fund_tokens(&mut env, &who.pubkey(), 0);
    }
    let parties = [
        auth.pubkey(),
        lc.poster.pubkey(),
        lc.worker.operator.pubkey(),
        cranker.pubkey(),
    ];
    let mut world: Vec<Pubkey> = vec![lc.market.address, lc.worker.address, lc.job.address];
    world.extend(parties);
    world.extend(parties.iter().filter_map(|p| cur.token_account(p)));
    world.extend(cur.vault(&lc.market.address));
    let start = env.total_lamports(&world);
    // Tokens held by the parties and the vault (none in SOL).
    let tokens = |env: &TestEnv| -> u128 {
        parties
            .iter()
            .filter_map(|p| cur.token_account(p))
            .chain(cur.vault(&lc.market.address))
            .map(|a| token_balance(env, &a) as u128)
            .sum()
    };
    let tokens_start = tokens(&env);
    let mut l = Ledger { env, fees: 0 };
    let claim = ix::job_claim(lc.worker.keys(), lc.job.address, lc.job.offer(&l.env));
    let submit = ix::job_submit(lc.worker.keys(), lc.job.address, submit_args());
    let dispute =
        |env: &TestEnv| ix::job_dispute_in(&cur, lc.settle_keys(), dispute_args(env, &lc.job));
    let draw = ix::dispute_draw(lc.market.address, lc.job.address, &[]);
    let cancel = ix::job_cancel_in(&cur, lc.poster.pubkey(), lc.market.address, lc.job.address);
    match path {
        "accept" => {
            l.send(claim, &lc.worker.operator);
            l.send(submit, &lc.worker.operator);
            l.send(ix::job_accept(lc.settle_keys()), &lc.poster);
        }
        "finalize" => {
            l.send(claim, &lc.worker.operator);
            l.send(submit, &lc.worker.operator);
            l.env.warp(3_601);
            l.send(ix::job_finalize(lc.settle_keys()), &cranker);
        }
        "resolve-worker" | "resolve-poster" => {
            l.send(claim, &lc.worker.operator);
            l.send(submit, &lc.worker.operator);
            l.send(dispute(&l.env), &lc.poster);
            l.env.next_slot();
            l.send(draw, &cranker);
            let worker_wins = path == "resolve-worker";
            l.send(
                ix::job_resolve(auth.pubkey(), lc.settle_keys(), worker_wins),
                auth,
            );
        }
        "cancel" => l.send(cancel, &lc.poster),
        "abandon-cancel" => {
            l.send(claim, &lc.worker.operator);
            l.send(
                ix::job_abandon(lc.worker.keys(), lc.job.address),
                &lc.worker.operator,
            );
            l.send(cancel, &lc.poster);
        }
        "reclaim-cancel" => {
            l.send(claim, &lc.worker.operator);
            l.env.warp(3_601);
            let reclaim = ix::job_reclaim_in(
                &cur,
                cranker.pubkey(),
                lc.market.address,
                lc.worker.address,
                lc.job.address,
            );
            l.send(reclaim, &cranker);
            l.send(cancel, &lc.poster);
        }
        "dispute-timeout" => {
            l.send(claim, &lc.worker.operator);
            l.send(submit, &lc.worker.operator);
            l.send(dispute(&l.env), &lc.poster);
            l.env.next_slot();
            l.send(draw, &cranker);
            l.env.warp(default_params().resolve_window_s + 1);
            l.send(ix::job_dispute_timeout(lc.settle_keys()), &cranker);
        }
        other => unreachable!("{other}"),
    }
    assert!(
        l.env.account(&lc.job.address).is_none(),
        "{unit:?} {path}: job account closed"
    );
    // Everyone takes out what it is owed.
    l.send(
        ix::worker_deregister_in(
            &cur,
            lc.worker.operator.pubkey(),
            lc.worker.market,
            lc.worker.address,
        ),
        &lc.worker.operator,
    );
    let fees = l
        .env
        .get::<tensorgrid_client::state::Market>(&lc.market.address)
        .unwrap()
        .fees_unclaimed;
    l.send(
        ix::market_withdraw_fees_in(&cur, auth.pubkey(), lc.market.address, auth.pubkey(), fees),
        auth,
    );
    let poster_account = tensorgrid_client::pda::poster(&lc.market.address, &lc.poster.pubkey()).0;
    let refunds = l.env.get::<Poster>(&poster_account).unwrap().refunds;
    if cur != Currency::Sol {
        l.send(
            ix::poster_withdraw(&cur, lc.poster.pubkey(), lc.market.address, refunds),
            &lc.poster,
        );
    } else {
        assert_eq!(refunds, 0, "a SOL market credits no refunds");
    }
    let end = l.env.total_lamports(&world);
    assert_eq!(
        start - end,
        l.fees,
        "{unit:?} {path}: lamports stranded or created"
    );
    assert_eq!(
        tokens(&l.env),
        tokens_start,
        "{unit:?} {path}: tokens created or lost"
    );
    if let Some(vault) = cur.vault(&lc.market.address) {
        assert_eq!(
            token_balance(&l.env, &vault),
            0,
            "{unit:?} {path}: tokens left in the vault"
        );
        assert_eq!(market_token_liabilities(&l.env, &lc.market.address), 0);
    }
    // Program accounts keep their rent and nothing else: the worker's (its record stays) and
    // the market's.
    let rent = |space| l.env.rent_exempt(space);
    assert_eq!(
        l.env.lamports(&lc.worker.address),
        rent(tensorgrid_client::state::Worker::SPACE),
        "{unit:?} {path}: worker holds only rent"
    );
    assert_eq!(
        l.env.lamports(&lc.market.address),
        rent(tensorgrid_client::state::Market::SPACE),
        "{unit:?} {path}: market holds only rent"
    );
}

#[test]
fn nothing_is_stranded_on_any_terminal_path_in_any_unit() {
    for unit in UNITS {
        for path in [
            "accept",
            "finalize",
            "resolve-worker",
            "resolve-poster",
            "cancel",
            "abandon-cancel",
            "reclaim-cancel",
            "dispute-timeout",
        ] {
            run_path(unit, path);
        }
    }
}
