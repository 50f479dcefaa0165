//! Chain-access figures on the embedded chain, for BENCHMARKS.md:
//! post → subscriber latency (websocket, and the polling fallback), send → commitment latency
//! at each commitment, and a scan of 10,000 open jobs with full accounts and with `dataSlice`.
//!
//! `cargo run -p tensorgrid-localnet --bin chain-bench [-- --write]`

use std::time::{Duration, Instant};

use anchor_lang::prelude::Pubkey;
use anyhow::{Context, Result};
use serde_json::json;
use solana_signer::Signer;
use tensorgrid_client::{
    defaults,
    instructions::{self as ix, WorkerKeys},
    pda,
    rpc::{
        CancellationToken, ChainClient, ChainConfig, CommitmentLevel, FeedConfig, JobQuery, Source,
    },
    state::{Job, JobState},
    tensorgrid::instructions::{JobPostArgs, WorkerRegisterArgs, WorkerUpdateArgs},
    PROGRAM_ID,
};
use tensorgrid_localnet::{
    default_market_params,
    testing::{job_account_data, job_post_args},
    Localnet, LocalnetBuilder, SOL,
};

const BEGIN: &str = "<!-- chain-bench:begin -->";
const END: &str = "<!-- chain-bench:end -->";
const SLOT_MS: u64 = 400;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// (median, p95) in ms.
fn stats(mut xs: Vec<Duration>) -> (f64, f64) {
    xs.sort();
    let at = |q: f64| ms(xs[((xs.len() as f64 - 1.0) * q).round() as usize]);
    (at(0.5), at(0.95))
}

fn post_args(job_id: u64) -> JobPostArgs {
    job_post_args(job_id, SOL / 10)
}

async fn post_to_seen(
    net: &Localnet,
    client: &ChainClient,
    first_id: u64,
    n: u64,
    expect: Source,
) -> Result<Vec<Duration>> {
    let poster = net.account("poster");
    let market = net.market().context("market")?;
    let config = match expect {
        Source::Subscription => FeedConfig {
            sweep_every: Duration::from_secs(3_600),
            ..FeedConfig::default()
        },
        Source::Sweep => FeedConfig {
            sweep_every: Duration::from_secs(1),
            ..FeedConfig::default()
        },
    };
    let mut feed = client.watch_jobs(JobQuery::open_in(market), config, CancellationToken::new());
    // Drain what is already open (the first sweep).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), feed.next()).await {}
    let mut out = Vec::new();
    for id in first_id..first_id + n {
        let job = pda::job(&market, &poster.pubkey(), id).0;
        let t0 = Instant::now();
        net.client()
            .send(
                &net.client()
                    .post_instructions(&poster.pubkey(), &market, post_args(id))
                    .await?,
                &[poster],
            )
            .await?;
        loop {
            let seen = tokio::time::timeout(Duration::from_secs(30), feed.next())
                .await?
                .context("feed ended")?;
            if seen.pubkey == job {
                anyhow::ensure!(seen.source == expect, "seen via {:?}", seen.source);
                out.push(t0.elapsed());
                break;
            }
        }
    }
    Ok(out)
}

async fn send_latency(
    net: &Localnet,
    wk: WorkerKeys,
    commitment: CommitmentLevel,
    n: usize,
) -> Result<Vec<Duration>> {
    let mut config = ChainConfig::new(net.rpc_url());
    config.commitment = commitment;
    config.poll_interval = Duration::from_millis(20);
    let client = ChainClient::new(config)?;
    let operator = net.account("worker");
    let mut out = Vec::new();
    for i in 0..n {
        let update = WorkerUpdateArgs {
            hardware: None,
            add_stake: 1_000 + i as u64,
            withdraw_stake: 0,
            withdraw_earnings: 0,
        };
        let t0 = Instant::now();
        client
            .send(
                &[ix::worker_update(wk.operator, wk.market, wk.worker, update)],
                &[operator],
            )
            .await?;
        out.push(t0.elapsed());
    }
    Ok(out)
}

fn open_job(i: u32, market: Pubkey) -> Vec<u8> {
    let job = Job {
        market,
        poster: Pubkey::new_from_array([9; 32]),
        worker: Pubkey::default(),
        state: JobState::Open,
        job_id: u64::from(i),
        reward: SOL,
        collateral: 0,
        compensation: 0,
        spec_hash: [7; 32],
        result_hash: [0; 32],
        reported_metric: 0,
        requirements: defaults::any_device(),
        terms: defaults::market_params().job_terms(),
        max_duration_s: 3_600,
        created_at: 0,
        claimed_at: 0,
        deadline: 0,
        submitted_at: 0,
        challenge_ends_at: 0,
        dispute_ends_at: 0,
        reopened_at: 0,
        reopens: 0,
        barred_workers: [Pubkey::default(); 8],
        bump: 255,
        spec_uri: format!("https://example.org/specs/{i:08}.json"),
        result_uri: String::new(),
    };
    job_account_data(&job)
}

/// Response bytes and time of a raw getProgramAccounts, as a client on the wire sees them.
async fn raw_scan(
    url: &str,
    market: Pubkey,
    slice: Option<(usize, usize)>,
) -> Result<(usize, Duration, usize)> {
    let filters = JobQuery::open_in(market).rpc_filters();
    let mut config = json!({ "encoding": "base64", "filters": filters, "commitment": "confirmed" });
    if let Some((offset, length)) = slice {
        config["dataSlice"] = json!({ "offset": offset, "length": length });
    }
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "getProgramAccounts", "params": [PROGRAM_ID.to_string(), config] });
    let t0 = Instant::now();
    let response = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await?
        .bytes()
        .await?;
    let elapsed = t0.elapsed();
    let parsed: serde_json::Value = serde_json::from_slice(&response)?;
    let count = parsed["result"].as_array().map_or(0, Vec::len);
    Ok((response.len(), elapsed, count))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let net = LocalnetBuilder::default()
        .slot_time_ms(SLOT_MS)
        .accounts(["poster", "worker"])
        .market(default_market_params())
        .start()
        .await?;
    let market = net.market().context("market")?;
    let mut md = format!(
        "Embedded chain (surfpool 1.6.1 in-process, {SLOT_MS} ms slots, offline), client and chain in one \
         process on this 2-core machine, dev profile (dependencies at opt-level 1). Chain start to a usable chain \
         (program loaded, market created): {:.0} ms.\n\n",
        ms(net.started_in())
    );

    // Post → subscriber.
    let client = ChainClient::new(ChainConfig {
        ws_url: Some(net.ws_url().into()),
        ..ChainConfig::new(net.rpc_url())
    })?;
    let ws = post_to_seen(&net, &client, 1, 20, Source::Subscription).await?;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let polling = ChainClient::new(ChainConfig {
        ws_url: Some(format!("ws://{closed}")),
        ..ChainConfig::new(net.rpc_url())
    })?;
    let sweep = post_to_seen(&net, &polling, 100, 10, Source::Sweep).await?;
    let (wm, wp) = stats(ws);
    let (sm, sp) = stats(sweep);
    md.push_str("| path | median | p95 |\n|---|---|---|\n");
    md.push_str(&format!(
        "| post sent → subscriber sees the job (websocket, 20 posts) | {wm:.0} ms | {wp:.0} ms |\n"
    ));
    md.push_str(&format!("| post sent → subscriber sees the job (polling sweep every 1 s, websocket down, 10 posts) | {sm:.0} ms | {sp:.0} ms |\n"));

    // send → commitment.
    let operator = net.account("worker");
    let register = WorkerRegisterArgs {
        stake: 10 * SOL,
        hardware: defaults::cpu("cpu"),
    };
    net.client()
        .send(
            &[ix::worker_register(operator.pubkey(), market, register)],
            &[operator],
        )
        .await?;
    let wk = WorkerKeys {
        operator: operator.pubkey(),
        market,
        worker: pda::worker(&market, &operator.pubkey()).0,
    };
    for (level, n) in [
        (CommitmentLevel::Processed, 20),
        (CommitmentLevel::Confirmed, 20),
        (CommitmentLevel::Finalized, 5),
    ] {
        let (m, p) = stats(send_latency(&net, wk, level, n).await?);
        md.push_str(&format!("| send → {level:?} (simulate, sign, send, poll every 20 ms; {n} sends) | {m:.0} ms | {p:.0} ms |\n"));
    }

    // Scan of 10,000 open jobs.
    let scan_market = net.create_market(9, default_market_params()).await?;
    let rent = net.client().rent_exempt(Job::SPACE).await?;
    let t0 = Instant::now();
    for i in 0..10_000u32 {
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(&i.to_le_bytes());
        key[4] = 0xEE;
        net.set_account(
            &Pubkey::new_from_array(key),
            rent + SOL,
            &PROGRAM_ID,
            &open_job(i, scan_market),
        )
        .await?;
    }
    let written = t0.elapsed();
    let t0 = Instant::now();
    let jobs = net.client().jobs(&JobQuery::open_in(scan_market)).await?;
    let typed_full = t0.elapsed();
    anyhow::ensure!(jobs.len() == 10_000, "scan found {}", jobs.len());
    let t0 = Instant::now();
    let keys = net
        .client()
        .job_keys(&JobQuery::open_in(scan_market))
        .await?;
    let typed_keys = t0.elapsed();
    anyhow::ensure!(keys.len() == 10_000);
    let (full_bytes, full_t, n1) = raw_scan(net.rpc_url(), scan_market, None).await?;
    let (slice_bytes, slice_t, n2) = raw_scan(
        net.rpc_url(),
        scan_market,
        Some((tensorgrid_client::layout::job::REWARD, 8)),
    )
    .await?;
    let (keys_bytes, keys_t, n3) = raw_scan(net.rpc_url(), scan_market, Some((0, 0))).await?;
    anyhow::ensure!(n1 == 10_000 && n2 == 10_000 && n3 == 10_000);
    md.push_str(&format!(
        "\nScan of 10,000 open jobs of one market (written with `surfnet_setAccount` in {:.1} s), `getProgramAccounts` \
         with the discriminator, market and state filters:\n\n\
         | scan | time | bytes on the wire |\n|---|---|---|\n\
         | full accounts, decoded (`ChainClient::jobs`) | {:.0} ms | |\n\
         | full accounts, raw | {:.0} ms | {:.1} MB |\n\
         | `dataSlice` 8 bytes (the reward) | {:.0} ms | {:.2} MB |\n\
         | `dataSlice` 0 bytes, addresses only (`ChainClient::job_keys`) | {:.0} ms (raw {:.0} ms) | {:.2} MB |\n",
        written.as_secs_f64(),
        ms(typed_full),
        ms(full_t),
        full_bytes as f64 / 1e6,
        ms(slice_t),
        slice_bytes as f64 / 1e6,
        ms(typed_keys),
        ms(keys_t),
        keys_bytes as f64 / 1e6,
    ));
    print!("{md}");
    if std::env::args().any(|a| a == "--write") {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../BENCHMARKS.md");
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        let block = format!("{BEGIN}\n{md}{END}");
        let new = match (old.find(BEGIN), old.find(END)) {
            (Some(a), Some(b)) => format!("{}{block}{}", &old[..a], &old[b + END.len()..]),
            _ => format!("{old}\n## Chain access (`cargo run -p tensorgrid-localnet --bin chain-bench`)\n\n{block}\n"),
        };
        std::fs::write(&path, new)?;
        eprintln!("updated {}", path.display());
    }
    Ok(())
}
