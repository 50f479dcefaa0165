//! Every terminal path closes the job and strands no lamport: across all the accounts that
//! ever took part, the total changes only by the transaction fees paid.
use anchor_lang::prelude::Pubkey;
use solana_keypair::Keypair;
use solana_signer::Signer;
use tensorgrid_client::instructions as ix;
use tensorgrid_harness::{fixtures::*, TestEnv};

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

fn run_path(path: &str) {
    let mut env = TestEnv::new();
    let lc = Lifecycle::new(&mut env);
    let cranker = env.funded(SOL);
    let world: Vec<Pubkey> = vec![
        lc.market.authority.pubkey(),
        lc.market.address,
        lc.poster.pubkey(),
        lc.worker.operator.pubkey(),
        lc.worker.address,
        lc.job.address,
        cranker.pubkey(),
    ];
    let start = env.total_lamports(&world);
    let mut l = Ledger { env, fees: 0 };
    let claim = ix::job_claim(lc.worker.keys(), lc.job.address, lc.job.offer(&l.env));
    let submit = ix::job_submit(lc.worker.keys(), lc.job.address, submit_args());
    let dispute = |env: &TestEnv| ix::job_dispute(lc.settle_keys(), dispute_args(env, &lc.job));
    let draw = ix::dispute_draw(lc.market.address, lc.job.address, &[]);
    let cancel = ix::job_cancel(lc.poster.pubkey(), lc.job.address);
    let auth = &lc.market.authority;
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
            let reclaim = ix::job_reclaim(cranker.pubkey(), lc.worker.address, lc.job.address);
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
        "{path}: job account closed"
    );
    l.send(
        ix::worker_deregister(lc.worker.operator.pubkey(), lc.worker.address),
        &lc.worker.operator,
    );
    let fees = l
        .env
        .get::<tensorgrid_client::state::Market>(&lc.market.address)
        .unwrap()
        .fees_unclaimed;
    l.send(
        ix::market_withdraw_fees(auth.pubkey(), lc.market.address, auth.pubkey(), fees),
        auth,
    );
    let end = l.env.total_lamports(&world);
    assert_eq!(start - end, l.fees, "{path}: lamports stranded or created");
    // Program accounts keep their rent and nothing else: the worker's (its record stays) and
    // the market's.
    let rent = |space| l.env.rent_exempt(space);
    assert_eq!(
        l.env.lamports(&lc.worker.address),
        rent(tensorgrid_client::state::Worker::SPACE),
        "{path}: worker holds only rent"
    );
    assert_eq!(
        l.env.lamports(&lc.market.address),
        rent(tensorgrid_client::state::Market::SPACE),
        "{path}: market holds only rent"
    );
}

#[test]
fn no_lamport_is_stranded_on_any_terminal_path() {
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
        run_path(path);
    }
}
