//! `tensorgrid demo`: the whole market on this machine. The embedded chain (with the program's
//! `.so`) and the local S3 store start; a market is created; a worker (the real daemon, CPU)
//! starts in this process; a poster posts a job from `jobs/` with this same command line, as
//! a wallet would; the job is followed (`job watch`, each transition with its signature, and
//! the worker's training progress); the poster verifies the result (`job verify`) and accepts;
//! the balances of poster, worker and market are shown before and after. Exit 0 only if the
//! worker was paid and the verification passed.

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use clap::Args;
use solana_signer::Signer;
use tensorgrid_client::{
    anchor_lang::prelude::Pubkey, pda, program_id, rpc::ChainClient, state::JobState, Currency,
};
use tensorgrid_localnet::{default_market_params, s3, LocalS3, Localnet, LocalnetBuilder};
use tensorgrid_worker::{Daemon, FileConfig};
use tokio_util::sync::CancellationToken;

use crate::units::{sol, Unit};

#[derive(Args)]
#[command(
    after_help = "Examples:\n  tensorgrid demo\n  tensorgrid demo --mint usdc\n  tensorgrid demo --dir /tmp/tg-demo"
)]
pub struct DemoArgs {
    #[command(flatten)]
    threads: crate::chain_args::Threads,
    /// The job spec to post (its dataset is uploaded to the local store).
    #[arg(long, default_value = "jobs/digits-mlp.json")]
    job: PathBuf,
    /// The reward, in the market's unit (SOL, or USDC with `--mint usdc`).
    #[arg(long, default_value = "1")]
    reward: String,
    /// What the market is priced in: sol, or usdc (a test USDC-like mint with 6 decimals on
    /// the local chain; stake, reward, earnings and fees in it, transaction fees in SOL).
    #[arg(long, value_enum, default_value = "sol")]
    mint: DemoMint,
    /// Where the demo keeps its files (keys, store, worker, the verified result and its
    /// training curve); emptied at the start of each run.
    #[arg(long, default_value = ".tensorgrid/demo")]
    dir: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoMint {
    Sol,
    Usdc,
}

/// The file that marks a directory as the demo's own, so that only such a directory is emptied.
const DEMO_MARKER: &str = ".tensorgrid-demo";

/// What the three parties hold: wallets in lamports (and, in a token market, their token
/// accounts in base units), the program's shares in the market's unit.
struct Balances {
    poster: u64,
    operator: u64,
    poster_tokens: u64,
    operator_tokens: u64,
    worker_earnings: u64,
    worker_stake: u64,
    market_fees: u64,
}

async fn balances(
    client: &ChainClient,
    currency: &Currency,
    poster: &Pubkey,
    operator: &Pubkey,
    worker: &Pubkey,
    market: &Pubkey,
) -> Result<Balances> {
    let w = client.worker(worker).await?;
    let tokens = |owner: &Pubkey| {
        let account = currency.token_account(owner);
        async move {
            Ok::<u64, anyhow::Error>(match account {
                Some(a) => client.token_balance(&a).await?.unwrap_or(0),
                None => 0,
            })
        }
    };
    Ok(Balances {
        poster: client.balance(poster).await?,
        operator: client.balance(operator).await?,
        poster_tokens: tokens(poster).await?,
        operator_tokens: tokens(operator).await?,
        worker_earnings: w.as_ref().map_or(0, |w| w.earnings),
        worker_stake: w.as_ref().map_or(0, |w| w.stake),
        market_fees: client.market(market).await?.fees_unclaimed,
    })
}

fn show(title: &str, b: &Balances, unit: Unit) {
    let wallet = |lamports: u64, tokens: u64| match unit.mint {
        None => format!("{} SOL", sol(lamports)),
        Some(_) => format!("{} and {} SOL", unit.show(tokens), sol(lamports)),
    };
    println!("{title}");
    println!(
        "  poster wallet        {}",
        wallet(b.poster, b.poster_tokens)
    );
    println!(
        "  operator wallet      {}",
        wallet(b.operator, b.operator_tokens)
    );
    println!("  worker stake         {}", unit.show(b.worker_stake));
    println!("  worker earnings      {}", unit.show(b.worker_earnings));
    println!("  market fees          {}", unit.show(b.market_fees));
}

/// Where the demo's time went: each phase's length, in order.
struct Timeline {
    last: Instant,
    phases: Vec<(&'static str, Duration)>,
}

impl Timeline {
    fn new(start: Instant) -> Self {
        Self {
            last: start,
            phases: Vec::new(),
        }
    }

    /// The phase `name` ended now.
    fn mark(&mut self, name: &'static str) {
        let now = Instant::now();
        self.phases.push((name, now - self.last));
        self.last = now;
    }

    fn show(&self) -> String {
        self.phases
            .iter()
            .map(|(name, d)| format!("{name} {:.1} s", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// This program again, with `args` (the poster's commands, as a wallet would run them).
fn me(args: &[&str]) -> Result<Command> {
    let exe = std::env::current_exe().context("locating this program")?;
    let mut c = Command::new(exe);
    c.args(args).env_remove("TENSORGRID_MARKET");
    Ok(c)
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

pub fn run(a: DemoArgs) -> Result<ExitCode> {
    a.threads.apply();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(demo(a))
}

async fn demo(a: DemoArgs) -> Result<ExitCode> {
    let started = Instant::now();
    if !a.job.exists() {
        bail!(
            "job spec {} not found (run the demo from the repository root, or pass --job FILE)",
            a.job.display()
        );
    }
    let job_spec = a.job.canonicalize()?;
    let dir = a.dir.clone();
    // A fresh run each time: nothing left from the previous one (its chain is gone). Only a
    // directory an earlier demo made (its marker inside) or an empty one is emptied.
    let marker = dir.join(DEMO_MARKER);
    if dir.exists() {
        let empty = std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_none();
        if !empty && !marker.exists() {
            bail!(
                "{} is not empty and was not made by the demo: pass --dir with a new or empty directory",
                dir.display()
            );
        }
        std::fs::remove_dir_all(&dir).with_context(|| format!("emptying {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(&marker, b"").with_context(|| format!("writing {}", marker.display()))?;
    let dir = dir.canonicalize()?;
    let mut time = Timeline::new(started);

    // The store first: its address goes into this process's AWS environment, which the
    // worker (in-process) and the poster's commands (child processes) read.
    let store = LocalS3::start(&dir.join("s3"), s3::LOCAL_BUCKET, 0)?;
    for (k, v) in store.env() {
        std::env::set_var(k, v);
    }
    println!("Starting the local chain (the program's .so is built first if missing)...");
    let net = LocalnetBuilder::default()
        .slot_time_ms(100)
        .keypair_dir(dir.join("keys"))
        .accounts(["poster", "operator"])
        .lamports_each(100 * tensorgrid_localnet::SOL)
        .market(default_market_params())
        .usdc(a.mint == DemoMint::Usdc)
        .start()
        .await?;
    let market = net.market().context("no market")?;
    let market_account = net.client().market(&market).await?;
    let (currency, unit) = (Currency::of(&market_account), Unit::of(&market_account));
    let key_of = |name: &str| -> Result<PathBuf> {
        net.accounts()
            .iter()
            .find(|x| x.name == name)
            .and_then(|x| x.path.clone())
            .with_context(|| format!("{name}'s keypair file"))
    };
    let (poster_key, operator_key) = (key_of("poster")?, key_of("operator")?);
    let poster = net.account("poster").pubkey();
    let operator = net.account("operator").pubkey();
    let worker = pda::worker(&market, &operator).0;
    println!(
        "  chain {} (program {}), market {market}, store {} — up in {:.1?}",
        net.rpc_url(),
        program_id(),
        store.endpoint(),
        net.started_in()
    );
    if let Some(mint) = unit.mint {
        println!(
            "  the market is priced in the test USDC: mint {mint}, {} decimals, a million of it in each local wallet (transaction fees and rent stay SOL)",
            unit.decimals
        );
    }
    time.mark("chain and store start");
    let client = net.client().clone();

    // The worker: the real daemon, on the CPU, in this process.
    // Enough stake for the reward's collateral (the market's minimum at least): a worker
    // refuses a job whose collateral its stake cannot cover.
    let reward = unit.parse(&a.reward, false).context("--reward")?;
    let collateral = market_account.job_terms().collateral(reward).map_err(|_| {
        anyhow::anyhow!(
            "--reward {}: too large for this market's collateral rule",
            a.reward
        )
    })?;
    let stake = collateral.max(market_account.params.min_stake);
    let cancel = CancellationToken::new();
    let status = start_worker(&net, &dir, &operator_key, unit, stake, cancel.clone()).await?;
    println!(
        "  worker {worker} registered with a stake of {} (operator {operator})",
        unit.show(status.snapshot().stake_lamports)
    );
    time.mark("worker start (device measured, registered)");
    let registered = balances(&client, &currency, &poster, &operator, &worker, &market).await?;
    show("\nBalances before the job:", &registered, unit);

    // The poster posts, as a wallet would.
    let common = |key: &Path| {
        vec![
            "-u".to_string(),
            net.rpc_url().to_string(),
            "-k".to_string(),
            path_str(key),
        ]
    };
    println!(
        "\n$ tensorgrid job post --spec {} --reward {} --max-duration 1h    # {}",
        a.job.display(),
        a.reward,
        unit.name()
    );
    let post = me(&[
        "job",
        "post",
        "--spec",
        &path_str(&job_spec),
        "--reward",
        &a.reward,
        "--max-duration",
        "1h",
        "--store",
        "s3://tensorgrid",
        "--output",
        "json",
        "--yes",
    ])?
    .args(common(&poster_key))
    .stderr(Stdio::inherit())
    .output()
    .context("running job post")?;
    if !post.status.success() {
        bail!("job post failed");
    }
    let posted: serde_json::Value =
        serde_json::from_slice(&post.stdout).context("job post's JSON output")?;
    let job: Pubkey = posted["job"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .context("job post's output names no job")?;
    println!(
        "  posted job {job} (signature {})",
        posted["signature"].as_str().unwrap_or("?")
    );
    time.mark("post (spec and dataset uploaded)");

    // Followed: every transition with its signature, by `job watch`. Its lines are marked:
    // they arrive while verify and accept print theirs.
    let mut watch = me(&["job", "watch", &job.to_string(), "--timeout", "600"])?
        .args(common(&poster_key))
        // The worker's progress file is in the poster's store bucket: read with its
        // credentials (an unsigned read is refused by the local store, which logs it).
        .env("TENSORGRID_STORE", "s3://tensorgrid")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("running job watch")?;
    let watch_lines = watch.stdout.take().map(|stdout| {
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                println!("  [job watch] {line}");
            }
        })
    });

    // The worker's progress until the result is submitted.
    // What the worker reports: each stage once, training by tenths.
    let (mut last_stage, mut last_tenth) = (String::new(), None);
    let (mut claimed, mut trained) = (false, false);
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let j = client.job(&job).await?;
        let state = j.as_ref().map(|j| j.state);
        if !claimed && matches!(state, Some(s) if s != JobState::Open) {
            claimed = true;
            time.mark("claim (spec fetched and checked)");
        }
        if matches!(state, Some(s) if s != JobState::Open && s != JobState::Claimed) {
            time.mark(if trained {
                "publish and submit"
            } else {
                "training, publish and submit"
            });
            break;
        }
        if let Some(c) = status.snapshot().current {
            if c.stage != last_stage {
                println!("  worker: {}", c.stage);
                if c.stage == "training" && !claimed {
                    claimed = true;
                    time.mark("claim and dataset download");
                } else if c.stage == "training" {
                    time.mark("dataset download");
                } else if last_stage == "training" && !trained {
                    trained = true;
                    time.mark("training");
                }
                last_stage = c.stage.clone();
            }
            let tenth = (c.stage == "training" && c.total_steps > 0)
                .then(|| c.step.saturating_mul(10) / c.total_steps);
            if tenth.is_some() && tenth > last_tenth {
                last_tenth = tenth;
                let eta = c.eta_s.map_or(String::new(), |e| {
                    format!(", {}", tensorgrid_worker::status::eta_text(e))
                });
                println!("  worker: training step {}/{}{eta}", c.step, c.total_steps);
            }
        }
        // A job the worker refused would wait here for good: say why instead.
        if status.snapshot().jobs_rejected > 0 {
            cancel.cancel();
            // The count moves just before the reason is written: give it a moment.
            let mut why = None;
            for _ in 0..20 {
                why = refusal(&dir.join("worker"), &job);
                if why.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            bail!(
                "the worker refused the job: {}",
                why.unwrap_or_else(|| "(no reason recorded)".into())
            );
        }
        if Instant::now() > deadline {
            bail!("the job was not submitted within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The poster verifies against the chain, then accepts.
    let results = dir.join("results");
    println!("\n$ tensorgrid job verify {job}");
    let verified = me(&[
        "job",
        "verify",
        &job.to_string(),
        "--out",
        &path_str(&results),
        "--store",
        "s3://tensorgrid",
    ])?
    .args(common(&poster_key))
    .status()
    .context("running job verify")?;
    if !verified.success() {
        cancel.cancel();
        bail!("the result did not verify; not accepted");
    }
    time.mark("verify (hashes, re-evaluation)");
    println!("\n$ tensorgrid job accept {job}");
    let accepted = me(&["job", "accept", &job.to_string(), "--yes"])?
        .args(common(&poster_key))
        .status()
        .context("running job accept")?;
    if !accepted.success() {
        bail!("job accept failed");
    }
    let watched = tokio::task::spawn_blocking(move || {
        let status = watch.wait();
        if let Some(lines) = watch_lines {
            let _ = lines.join();
        }
        status
    })
    .await
    .context("job watch")??;

    // The worker notices the payment.
    let deadline = Instant::now() + Duration::from_secs(30);
    while status.snapshot().jobs_paid == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    time.mark("accept and payment seen by the worker");
    let after = balances(&client, &currency, &poster, &operator, &worker, &market).await?;
    show("\nBalances after:", &after, unit);
    let earned = after
        .worker_earnings
        .saturating_sub(registered.worker_earnings);
    let fees = after.market_fees.saturating_sub(registered.market_fees);
    let poster_sol = sol(registered.poster.saturating_sub(after.poster));
    let paid = match unit.mint {
        None => format!("{poster_sol} SOL (reward and transaction fees; the job's rent came back)"),
        Some(_) => format!(
            "{} (the reward) and {poster_sol} SOL (transaction fees; the job's rent came back)",
            unit.show(registered.poster_tokens.saturating_sub(after.poster_tokens))
        ),
    };
    println!(
        "  poster paid {paid}, worker earned {}, market fee {}",
        unit.show(earned),
        unit.show(fees)
    );
    cancel.cancel();
    let paid = earned > 0 && watched.success() && status.snapshot().jobs_paid == 1;
    println!(
        "\n{} in {:.0?}.",
        if paid {
            "Paid and verified"
        } else {
            "NOT PAID"
        },
        started.elapsed()
    );
    println!("Where the time went: {}.", time.show());
    print_next_steps(a.mint);
    Ok(if paid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The daemon staking `stake` base units of the market's unit: as `stake_sol`, or in the
/// `[mint.<mint>]` table of a token market.
async fn start_worker(
    net: &Localnet,
    dir: &Path,
    keypair: &Path,
    unit: Unit,
    stake: u64,
    cancel: CancellationToken,
) -> Result<tensorgrid_worker::Status> {
    let mut toml = format!(
        "rpc_urls = [{:?}]\nws_url = {:?}\nkeypair = {:?}\nwork_dir = {:?}\nstore = \"s3://tensorgrid\"\ndevice = \"cpu\"\nallow_http = true\npoll_interval = \"1s\"\nstatus_listen = \"\"\n",
        net.rpc_url(),
        net.ws_url(),
        path_str(keypair),
        path_str(&dir.join("worker")),
    );
    let stake = crate::units::decimal(stake, unit.decimals);
    match unit.mint {
        None => toml.push_str(&format!("stake_sol = \"{stake}\"\n")),
        Some(mint) => toml.push_str(&format!("[mint.{mint}]\nstake = \"{stake}\"\n")),
    }
    let config = FileConfig::parse(&toml)?.resolve(dir)?;
    let daemon = Daemon::start(config, cancel, None).await?;
    let status = daemon.status().clone();
    tokio::spawn(daemon.run());
    Ok(status)
}

/// Why the worker whose work directory is `work_dir` refused `job`, as it recorded it.
fn refusal(work_dir: &Path, job: &Pubkey) -> Option<String> {
    std::fs::read(work_dir.join("rejected.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v[job.to_string()]["reason"].as_str().map(str::to_string))
}

fn print_next_steps(mint: DemoMint) {
    let (cli, worker) = (crate::hints::cli(), crate::hints::worker());
    let (usdc, stake) = match mint {
        DemoMint::Sol => ("", ""),
        DemoMint::Usdc => (" --usdc", " --stake 1"),
    };
    println!(
        "\nThe same by hand, against `tensorgrid localnet`:
  {cli} localnet{usdc}      # terminal 1: chain + store; prints the exports and commands for the others
  # terminals 2 and 3: paste those exports (AWS_*, TENSORGRID_STORE), then
  {worker} -u l -k .tensorgrid/localnet/keys/worker.json --store s3://tensorgrid{stake}
  {cli} job post --spec jobs/digits-mlp.json --reward 1 --max-duration 1h -u l -k .tensorgrid/localnet/keys/poster.json
  {cli} job watch 0 -u l -k .tensorgrid/localnet/keys/poster.json    # then job verify 0, job accept 0
On devnet (README: \"Deploy to devnet\", \"Run a worker on your GPU rig\", \"Post a training job from a wallet\"):
  # the program deployed and a market created (or an existing deployment's --program-id); a bucket workers can read
  tensorgrid-worker -u devnet -k ~/.config/solana/operator.json --store s3://BUCKET/tensorgrid   # on the rig, built from the deployed tree
  export TENSORGRID_STORE=s3://BUCKET/tensorgrid      # the poster's uploads (AWS_* credentials)
  tensorgrid job post --spec jobs/digits-mlp.json --reward 0.1 --max-duration 2h -u devnet --program-id PROGRAM
  tensorgrid job watch ID -u devnet --program-id PROGRAM   # then job verify ID, job accept ID"
    );
}
