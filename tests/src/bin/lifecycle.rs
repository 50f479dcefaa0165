//! A scripted run of the whole market on an in-process chain (LiteSVM, program run natively):
//! a market opens, a worker stakes, a developer posts a training job, the worker claims it,
//! submits a result hash, the developer accepts, and everyone is paid. A second job shows the
//! dispute path, a third the missed-deadline slash. Each step prints its events and balances.
//!
//! `cargo run -p tensorgrid-harness --bin lifecycle`

use anyhow::{anyhow, Result};
use solana_keypair::Keypair;
use solana_signer::Signer;
use tensorgrid_client::{events::Event, instructions as ix};
use tensorgrid_harness::{
    env::{so_path, Runtime},
    fixtures::*,
    TestEnv, TxResult,
};

fn sol(lamports: u64) -> String {
    format!("{:.6} SOL", lamports as f64 / SOL as f64)
}

fn step(name: &str, res: TxResult) -> Result<()> {
    let tx = res.map_err(|f| anyhow!("{name} failed: {:?}\n{}", f.err, f.logs.join("\n")))?;
    if SBF.with(|s| s.get()) {
        println!("✔ {name}  ({} CU)", tx.meta.compute_units_consumed);
    } else {
        println!("✔ {name}");
    }
    for event in tx.events() {
        println!("    event: {}", describe(&event));
    }
    Ok(())
}

fn describe(e: &Event) -> String {
    match e {
        Event::MarketInitialized(e) => format!(
            "MarketInitialized fee={}bps min_stake={}",
            e.params.fee_bps,
            sol(e.params.min_stake)
        ),
        Event::WorkerRegistered(e) => format!(
            "WorkerRegistered stake={} device={:?}",
            sol(e.stake),
            e.hardware.device
        ),
        Event::JobPosted(e) => format!(
            "JobPosted id={} reward={} spec={}",
            e.job_id,
            sol(e.reward),
            e.spec_uri
        ),
        Event::JobClaimed(e) => format!("JobClaimed id={} deadline={}", e.job_id, e.deadline),
        Event::JobSubmitted(e) => format!(
            "JobSubmitted id={} metric={} result={}",
            e.job_id,
            e.reported_metric as f64 / 1e6,
            e.result_uri
        ),
        Event::JobPaid(e) => format!(
            "JobPaid id={} {:?} payout={} fee={}",
            e.job_id,
            e.settlement,
            sol(e.payout),
            sol(e.fee)
        ),
        Event::JobDisputed(e) => format!("JobDisputed id={}", e.job_id),
        Event::JobRefunded(e) => format!(
            "JobRefunded id={} {:?} refunded={} slashed={} rent={}",
            e.job_id,
            e.reason,
            sol(e.reward_refunded + e.compensation),
            sol(e.slashed),
            sol(e.rent_refunded)
        ),
        Event::JobReclaimed(e) => format!(
            "JobReclaimed id={} to_poster={} bounty={}",
            e.job_id,
            sol(e.to_poster),
            sol(e.bounty)
        ),
        Event::WorkerUpdated(e) => format!(
            "WorkerUpdated stake={} (+{} −{}) earnings withdrawn={}",
            sol(e.stake),
            sol(e.stake_added),
            sol(e.stake_withdrawn),
            sol(e.earnings_withdrawn)
        ),
        Event::WorkerDeregistered(e) => format!(
            "WorkerDeregistered stake returned={} earnings returned={}",
            sol(e.stake_returned),
            sol(e.earnings_returned)
        ),
        Event::JobCancelled(e) => format!(
            "JobCancelled id={} refunded={} compensation={} rent={}",
            e.job_id,
            sol(e.reward_refunded),
            sol(e.compensation),
            sol(e.rent_refunded)
        ),
        other => format!("{other:?}"),
    }
}

fn balances(env: &TestEnv, who: &[(&str, &Keypair)], market: &MarketFx, worker: &WorkerFx) {
    let mut line: Vec<String> = who
        .iter()
        .map(|(n, k)| format!("{n} {}", sol(env.lamports(&k.pubkey()))))
        .collect();
    line.push(format!(
        "worker stake {} earnings {}",
        sol(worker.state(env).stake),
        sol(worker.state(env).earnings)
    ));
    line.push(format!(
        "market fees {}",
        sol(market.state(env).fees_unclaimed)
    ));
    println!("    balances: {}", line.join(" · "));
}

thread_local! {
    /// Compute units mean something only when the bytecode runs.
    static SBF: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The `.so` when it has been built (scripts/build-sbf.sh), native execution otherwise;
/// `TENSORGRID_RUNTIME` overrides.
fn runtime() -> Runtime {
    if std::env::var_os("TENSORGRID_RUNTIME").is_none() && so_path().exists() {
        Runtime::Sbf(so_path())
    } else {
        Runtime::from_env()
    }
}

fn main() -> Result<()> {
    let runtime = runtime();
    SBF.with(|s| s.set(matches!(runtime, Runtime::Sbf(_))));
    println!(
        "tensorgrid lifecycle on LiteSVM — program: {}\n",
        runtime.describe()
    );
    let mut env = TestEnv::with_runtime(runtime);
    let market = MarketFx::create(&mut env, default_params());
    println!("✔ market_init  authority={}", market.authority.pubkey());
    let developer = env.funded(20 * SOL);
    let worker = market.worker(&mut env, cuda(24_576), 5 * SOL);
    println!(
        "✔ worker_register  operator={} stake=5 SOL (CUDA, 24 GiB)",
        worker.operator.pubkey()
    );
    let who = [("developer", &developer), ("operator", &worker.operator)];
    balances(&env, &who, &market, &worker);

    println!("\n— job 1: the happy path");
    let args = job_args(3 * SOL);
    let id = args.job_id;
    let post = market.post_ix(&mut env, &developer, args);
    step("job_post", env.send(&[post], &[&developer]))?;
    let job = JobFx {
        address: tensorgrid_client::pda::job(&market.address, &developer.pubkey(), id).0,
        id,
        poster: developer.pubkey(),
    };
    step("job_claim", worker.claim(&mut env, &job))?;
    env.warp(900);
    step("job_submit", worker.submit(&mut env, &job))?;
    step(
        "job_accept",
        env.send(
            &[ix::job_accept(market.settle_keys(&job, &worker))],
            &[&developer],
        ),
    )?;
    balances(&env, &who, &market, &worker);

    println!("\n— job 2: disputed; no verifiers in this market, so the authority sides with the developer");
    let job = market.post(&mut env, &developer, job_args(SOL));
    println!("✔ job_post  id={}", job.id);
    step("job_claim", worker.claim(&mut env, &job))?;
    step("job_submit", worker.submit(&mut env, &job))?;
    step(
        "job_dispute",
        env.send(
            &[ix::job_dispute(
                market.settle_keys(&job, &worker),
                dispute_args(&env, &job),
            )],
            &[&developer],
        ),
    )?;
    env.next_slot();
    step(
        "dispute_draw (no verifiers: to the authority)",
        env.send(
            &[ix::dispute_draw(market.address, job.address, &[])],
            &[&developer],
        ),
    )?;
    let auth = &market.authority;
    step(
        "job_resolve",
        env.send(
            &[ix::job_resolve(
                auth.pubkey(),
                market.settle_keys(&job, &worker),
                false,
            )],
            &[auth],
        ),
    )?;
    balances(&env, &who, &market, &worker);

    println!("\n— job 3: the worker misses its deadline; a cranker reclaims, the job reopens");
    let job = market.post(&mut env, &developer, job_args(SOL));
    println!("✔ job_post  id={}", job.id);
    let top_up = tensorgrid::instructions::WorkerUpdateArgs {
        add_stake: SOL,
        ..Default::default()
    };
    step(
        "worker_update (top up stake)",
        env.send(
            &[ix::worker_update(
                worker.operator.pubkey(),
                market.address,
                worker.address,
                top_up,
            )],
            &[&worker.operator],
        ),
    )?;
    step("job_claim", worker.claim(&mut env, &job))?;
    env.warp(3_601);
    let cranker = env.funded(SOL);
    step(
        "job_reclaim",
        env.send(
            &[ix::job_reclaim(
                cranker.pubkey(),
                worker.address,
                job.address,
            )],
            &[&cranker],
        ),
    )?;
    step(
        "job_cancel",
        env.send(
            &[ix::job_cancel(developer.pubkey(), job.address)],
            &[&developer],
        ),
    )?;
    let fees = market.state(&env).fees_unclaimed;
    step(
        "market_withdraw_fees",
        env.send(
            &[ix::market_withdraw_fees(
                auth.pubkey(),
                market.address,
                auth.pubkey(),
                fees,
            )],
            &[auth],
        ),
    )?;
    step(
        "worker_deregister",
        env.send(
            &[ix::worker_deregister(
                worker.operator.pubkey(),
                worker.market,
                worker.address,
            )],
            &[&worker.operator],
        ),
    )?;
    balances(&env, &who, &market, &worker);
    println!(
        "\nEvery transaction above was checked for lamport conservation and account invariants."
    );
    Ok(())
}
