//! `tensorgrid-worker`: flags, logging and signals around [`tensorgrid_worker::Daemon`].

use std::{
    collections::BTreeMap,
    io::IsTerminal,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use tensorgrid_client::rpc::solana_config;
use tensorgrid_train::trainer::{Progress, ProgressFn};
use tensorgrid_worker::{Config, Daemon, FileConfig, LogFormat, Snapshot};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "tensorgrid-worker",
    version,
    about = "tensorgrid's provider daemon: finds training jobs it can run, claims, trains, publishes, submits and gets paid",
    after_help = "Settings: flag > TENSORGRID_WORKER_<FIELD> > the config file > default. See worker.toml."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Subcommand)]
enum Command {
    /// Run the worker (the default).
    Run,
    /// Show what the running worker is doing (or what it did last).
    Status {
        /// display or json.
        #[arg(long, default_value = "display")]
        output: String,
    },
    /// Check the configuration and print it resolved.
    Config,
}

#[derive(Args, Default)]
struct Settings {
    /// The configuration file [default: ~/.config/tensorgrid/worker.toml when it exists].
    #[arg(short = 'c', long, global = true)]
    config: Option<PathBuf>,
    /// RPC URL or moniker: mainnet-beta, devnet, testnet, localhost (m, d, t, l); repeat for
    /// failover. Default: the worker config's rpc_urls, else the Solana CLI config's
    /// json_rpc_url, else localhost.
    #[arg(short = 'u', long = "url", visible_alias = "rpc-url", global = true)]
    rpc_urls: Vec<String>,
    /// Websocket URL. Default: the worker config's ws_url (when the RPC URLs come from the
    /// same place), else derived from the first RPC URL.
    #[arg(long, global = true)]
    ws_url: Option<String>,
    /// The operator's keypair: a file, prompt:// (a seed phrase, asked once at start) or
    /// stdin. Default: the worker config's, else the Solana CLI config's keypair_path, else
    /// ~/.config/solana/id.json.
    #[arg(short = 'k', long, global = true)]
    keypair: Option<PathBuf>,
    /// processed, confirmed or finalized. Default: the worker config's, else the Solana CLI
    /// config's, else confirmed.
    #[arg(long, global = true)]
    commitment: Option<String>,
    /// The Solana CLI config file whose RPC URL, keypair and commitment fill what the worker
    /// config leaves out [default: ~/.config/solana/cli/config.yml].
    #[arg(long, global = true, env = "TENSORGRID_SOLANA_CONFIG")]
    solana_config: Option<PathBuf>,
    /// The market (its address). Default: the program's only market.
    #[arg(long, global = true)]
    market: Option<String>,
    /// auto, cpu, cuda or metal.
    #[arg(long, global = true)]
    device: Option<String>,
    /// Where this worker keeps its state, checkpoints and dataset cache
    /// [default: ~/.tensorgrid/worker].
    #[arg(long, global = true)]
    work_dir: Option<PathBuf>,
    /// Where results are published (s3://bucket/prefix).
    #[arg(long, global = true)]
    store: Option<String>,
    /// Stake to register with, in the market's unit: SOL, or its mint's tokens (`25` = 25 USDC).
    #[arg(long, global = true)]
    stake: Option<String>,
    /// Least pay per estimated hour of training, in the market's unit (SOL or its mint's).
    #[arg(long, global = true)]
    min_reward_per_hour: Option<String>,
    /// Largest dataset this worker downloads, in bytes [default: 1 GiB].
    #[arg(long, global = true)]
    max_dataset_bytes: Option<u64>,
    /// Jobs trained at once (a worker account holds one job: must be 1).
    #[arg(long, global = true)]
    max_concurrent_jobs: Option<u32>,
    /// How often the chain is swept for jobs besides the websocket feed, e.g. 10s.
    #[arg(long, global = true)]
    poll_interval: Option<String>,
    /// Highest priority fee paid, in micro-lamports per compute unit.
    #[arg(long, global = true)]
    priority_fee_cap: Option<u64>,
    /// Log lines for a person (human) or a log collector (json).
    #[arg(long, global = true)]
    log_format: Option<String>,
    /// Read plain http:// and private addresses (local setups only).
    #[arg(long, global = true)]
    allow_http: bool,
    /// Serve as a dispute verifier (join the verifier pool, re-run disputed segments).
    #[arg(long, global = true)]
    verify_disputes: bool,
    /// host:port of the status port, "" for none.
    #[arg(long, global = true)]
    status_listen: Option<String>,
    /// No progress bar even on a terminal.
    #[arg(long, global = true)]
    no_progress: bool,
}

impl Settings {
    fn default_config_path() -> Option<PathBuf> {
        dirs::home_dir().map(|h| h.join(".config/tensorgrid/worker.toml"))
    }

    /// flag > env > file > the Solana CLI config > default; every problem at once.
    /// `publishing`: the settings are for running the daemon (a store is needed).
    fn resolve(&self, publishing: bool) -> Result<Config, tensorgrid_worker::ConfigErrors> {
        let mut problems = Vec::new();
        let (path, required) = match &self.config {
            Some(p) => (Some(p.clone()), true),
            None => (Self::default_config_path().filter(|p| p.exists()), false),
        };
        let mut file = match path {
            Some(p) => match std::fs::read_to_string(&p) {
                Ok(text) => match FileConfig::parse(&text) {
                    Ok(f) => f,
                    Err(e) => {
                        problems.extend(e.0.into_iter().map(|m| format!("{}: {m}", p.display())));
                        FileConfig::default()
                    }
                },
                Err(e) if required || e.kind() != std::io::ErrorKind::NotFound => {
                    problems.push(format!("{}: {e}", p.display()));
                    FileConfig::default()
                }
                Err(_) => FileConfig::default(),
            },
            None => FileConfig::default(),
        };
        let env: BTreeMap<String, String> = std::env::vars().collect();
        file.apply_env(&env, &mut problems);
        self.apply(&mut file);
        let home = dirs::home_dir().unwrap_or_else(|| PathBuf::from("."));
        let solana_path = self
            .solana_config
            .clone()
            .unwrap_or_else(|| solana_config::default_config_path(&home));
        match solana_config::SolanaConfig::load(&solana_path) {
            Ok(solana) => file.fill_from_solana_config(&solana),
            Err(e) => problems.push(e.to_string()),
        }
        match file.resolve_for(&home, publishing) {
            Ok(c) if problems.is_empty() => Ok(c),
            Ok(_) => Err(tensorgrid_worker::ConfigErrors(problems)),
            Err(e) => {
                problems.extend(e.0);
                Err(tensorgrid_worker::ConfigErrors(problems))
            }
        }
    }

    fn apply(&self, f: &mut FileConfig) {
        if !self.rpc_urls.is_empty() {
            f.rpc_urls = Some(self.rpc_urls.clone());
            // A websocket from the file belongs to the file's RPC URL: derived from the flag's
            // instead (as the Solana CLI does), unless --ws-url says otherwise.
            f.ws_url = None;
        }
        macro_rules! set {
            ($($flag:ident => $field:ident),*) => {$(
                if let Some(v) = &self.$flag {
                    f.$field = Some(v.clone());
                }
            )*};
        }
        set!(ws_url => ws_url, keypair => keypair, commitment => commitment, market => market, device => device,
            work_dir => work_dir, store => store, max_dataset_bytes => max_dataset_bytes,
            max_concurrent_jobs => max_concurrent_jobs, poll_interval => poll_interval,
            priority_fee_cap => priority_fee_cap, log_format => log_format,
            status_listen => status_listen);
        // In whatever unit the market is priced in (SOL, or its mint's): applied once the
        // market is read, over the file's amounts for that unit.
        f.market_unit_flags.stake = self.stake.clone();
        f.market_unit_flags.min_reward_per_hour = self.min_reward_per_hour.clone();
        if self.allow_http {
            f.allow_http = Some(true);
        }
        if self.verify_disputes {
            f.verify_disputes = Some(true);
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Human => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

/// A progress bar for the current job, on an interactive terminal.
fn progress_bar() -> ProgressFn {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(2));
    bar.set_style(
        ProgressStyle::with_template("{spinner} training {pos}/{len} steps ({eta} left) {msg}")
            .expect("static template"),
    );
    Arc::new(move |p: &Progress| {
        if bar.length() != Some(p.total) {
            bar.set_length(p.total);
            bar.reset();
        }
        bar.set_position(p.step);
        if let Some(r) = p.record {
            bar.set_message(format!("eval {:.4}", r.eval_loss));
        }
        if p.step >= p.total {
            bar.finish_and_clear();
        }
    })
}

/// SIGINT or SIGTERM: stop cleanly (training checkpoints first). A second one: exit now.
fn on_signals(cancel: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        for n in 0.. {
            #[cfg(unix)]
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
            if n == 0 {
                tracing::info!("stopping: the current step finishes and is checkpointed (signal again to exit now)");
                cancel.cancel();
            } else {
                std::process::exit(130);
            }
        }
    });
}

async fn run(config: Config, interactive: bool) -> Result<()> {
    let cancel = CancellationToken::new();
    on_signals(cancel.clone());
    let progress = interactive.then(progress_bar);
    let daemon = match Daemon::start(config.clone(), cancel.clone(), progress).await {
        Ok(d) => d,
        Err(tensorgrid_worker::daemon::StartError::Stopped) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let status = daemon.status().clone();
    if let Some(listen) = &config.status_listen {
        match tensorgrid_worker::status::serve(status.clone(), listen, cancel.clone()).await {
            Ok(addr) => {
                tracing::info!(%addr, "status on http://{addr}/status and /metrics");
                status.update(|s| s.listen = Some(addr.to_string()));
            }
            Err(e) => bail!("status port {listen}: {e} (set status_listen to another address, or \"\" for none)"),
        }
    }
    let writer = tensorgrid_worker::status::persist(
        status,
        config.work_dir.join("status.json"),
        Duration::from_secs(2),
        cancel.clone(),
    );
    daemon.run().await;
    cancel.cancel();
    let _ = writer.await;
    Ok(())
}

/// Reads the running worker's status through its port, else the last one it wrote.
async fn status(config: &Config, json: bool) -> Result<()> {
    let path = config.work_dir.join("status.json");
    let last: Option<Snapshot> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let live = match last.as_ref().and_then(|s| s.listen.clone()) {
        Some(addr) => fetch_status(&addr).await,
        None => None,
    };
    let (mut snap, running) = match (live, last) {
        (Some(s), _) => (s, true),
        (None, Some(s)) => (s, false),
        (None, None) => bail!(
            "no worker has run with work dir {} (no status.json)",
            config.work_dir.display()
        ),
    };
    if !running {
        refresh_from_chain(config, &mut snap).await;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&snap)?);
    } else {
        print!("{}", display(&snap, running));
    }
    Ok(())
}

/// A stopped worker's last status, brought up to date with the chain where it is stale: its
/// current job may have been paid, finalized or reclaimed since (the worker records that at
/// its next start). Best effort: without an answer the last status stands.
async fn refresh_from_chain(config: &Config, snap: &mut Snapshot) {
    let Some(current) = snap.current.as_mut() else {
        return;
    };
    let Ok(job) = current.job.parse() else {
        return;
    };
    let Some(chain) = tensorgrid_worker::daemon::chain_config(config)
        .ok()
        .and_then(|c| tensorgrid_client::rpc::ChainClient::new(c).ok())
    else {
        return;
    };
    let read = tokio::time::timeout(Duration::from_secs(5), chain.job(&job)).await;
    match read {
        Ok(Ok(None)) => {
            current.stage =
                "closed on chain since (paid, refunded or reclaimed; recorded at the next start)"
                    .into();
            current.eta_s = None;
        }
        Ok(Ok(Some(j))) if j.worker.to_string() != snap.worker => {
            current.stage =
                "no longer this worker's on chain (reclaimed since; recorded at the next start)"
                    .into();
            current.eta_s = None;
        }
        _ => {}
    }
}

async fn fetch_status(addr: &str) -> Option<Snapshot> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .no_proxy()
        .build()
        .ok()?;
    let body = client
        .get(format!("http://{addr}/status"))
        .send()
        .await
        .ok()?
        .bytes()
        .await
        .ok()?;
    serde_json::from_slice(&body).ok()
}

fn sol(lamports: u64) -> String {
    format!(
        "{} SOL",
        tensorgrid_client::currency::format_units(lamports, 9)
    )
}

fn ago(t: i64) -> String {
    let d = tensorgrid_worker::status::unix_now()
        .saturating_sub(t)
        .max(0);
    match d {
        0..=119 => format!("{d} s ago"),
        120..=7_199 => format!("{} min ago", d / 60),
        _ => format!("{} h ago", d / 3_600),
    }
}

fn display(s: &Snapshot, running: bool) -> String {
    let mut out = String::new();
    let state = if running {
        s.state.clone()
    } else {
        format!("not running (last status {})", ago(s.updated_at))
    };
    out.push_str(&format!("Worker:            {} ({state})\n", s.worker));
    out.push_str(&format!("Operator:          {}\n", s.operator));
    out.push_str(&format!("Market:            {}\n", s.market));
    if let Some(m) = &s.mint {
        out.push_str(&format!(
            "Priced in:         mint {m} ({} decimals); amounts in its tokens\n",
            s.decimals.unwrap_or(0)
        ));
    }
    out.push_str(&format!("Hardware:          {}\n", s.hardware));
    out.push_str(&format!("Up since:          {}\n", ago(s.started_at)));
    if let Some(c) = &s.current {
        let eta = c.eta_s.map_or(String::new(), |e| {
            format!(", {}", tensorgrid_worker::status::eta_text(e))
        });
        out.push_str(&format!(
            "Current job:       {} — {} (step {}/{}{eta})\n",
            c.job, c.stage, c.step, c.total_steps
        ));
    } else {
        out.push_str("Current job:       none\n");
    }
    out.push_str(&format!(
        "Jobs since start:  {} submitted, {} paid, {} given back, {} lost to others, {} refused\n",
        s.jobs_submitted, s.jobs_paid, s.jobs_abandoned, s.jobs_lost, s.jobs_rejected
    ));
    out.push_str(&format!(
        "Since start:       earned {}, lost {} to penalties and slashes\n",
        s.show(s.earned_lamports),
        s.show(s.lost_lamports)
    ));
    if let Some(p) = &s.paused {
        out.push_str(&format!("CLAIMING PAUSED:   {p}\n"));
    }
    if !s.recent.is_empty() {
        out.push_str("Recent:\n");
        for e in s.recent.iter().rev() {
            let what = e.kind.describe(&s.show(e.lamports));
            out.push_str(&format!("  {:<44} job {}\n", what, e.job));
        }
    }
    out.push_str(&format!(
        "Chain:             earned {} ever, stake {}, unwithdrawn {}\n",
        s.show(s.total_earned_lamports),
        s.show(s.stake_lamports),
        s.show(s.earnings_balance_lamports)
    ));
    out.push_str(&format!(
        "Last chain contact: {}\n",
        s.last_chain_contact.map_or("never".into(), ago)
    ));
    if let Some(e) = &s.last_error {
        out.push_str(&format!("Last error:        {e}\n"));
    }
    out
}

fn print_config(c: &Config, path: &Path) {
    println!("work dir:     {}", c.work_dir.display());
    println!("rpc:          {}", c.rpc_urls.join(", "));
    println!(
        "ws:           {}",
        c.ws_url.as_deref().unwrap_or("(derived)")
    );
    println!("keypair:      {}", c.keypair.display());
    println!("commitment:   {}", c.commitment);
    println!(
        "market:       {}",
        c.market.as_deref().unwrap_or("(the only one)")
    );
    println!("device:       {}", c.device);
    println!("store:        {}", c.store);
    println!("stake:        {} (in a SOL market)", sol(c.stake));
    println!(
        "min pay/hour: {} (in a SOL market)",
        sol(c.min_reward_per_hour)
    );
    let flags = &c.market_unit_flags;
    if flags.stake.is_some() || flags.min_reward_per_hour.is_some() {
        println!(
            "flags:        --stake {}, --min-reward-per-hour {} (in the market's unit, over the file's)",
            flags.stake.as_deref().unwrap_or("(not given)"),
            flags.min_reward_per_hour.as_deref().unwrap_or("(not given)")
        );
    }
    for (mint, given) in &c.mints {
        let text = |v: &Option<String>, default: &str| v.clone().unwrap_or_else(|| default.into());
        println!(
            "mint {mint}: stake {}, min pay/hour {}, pledge {}, top-up cap {} (in its tokens)",
            text(&given.stake, "(not set)"),
            text(&given.min_reward_per_hour, "0"),
            text(&given.verifier_pledge, "the stake"),
            text(&given.max_stake_topup_per_day, "the stake"),
        );
    }
    println!("max dataset:  {} bytes", c.max_dataset_bytes);
    println!("poll:         {:?}", c.poll_interval);
    println!(
        "status port:  {}",
        c.status_listen.as_deref().unwrap_or("off")
    );
    println!("(config file: {})", path.display());
}

fn main() -> ExitCode {
    // Training runs in this process: keep freed tensor buffers in the heap (see the engine's
    // `alloc` module; about a fifth of a step's time otherwise goes to page faults).
    tensorgrid_train::alloc::keep_freed_memory();
    // Before any thread starts: every CPU thread training uses is rayon's (see `threads`).
    tensorgrid_train::threads::configure(None);
    tensorgrid_client::process::exit_quietly_on_broken_pipe();
    let cli = Cli::parse();
    let publishing = !matches!(cli.command, Some(Command::Status { .. }));
    let config = match cli.settings.resolve(publishing) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let interactive = !cli.settings.no_progress
        && config.log_format == LogFormat::Human
        && std::io::stderr().is_terminal();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Run => {
            init_logging(config.log_format);
            runtime.block_on(run(config, interactive))
        }
        Command::Status { output } => match output.as_str() {
            "json" | "display" => runtime
                .block_on(status(&config, output == "json"))
                .context("status"),
            other => Err(anyhow::anyhow!("--output {other:?}: display or json")),
        },
        Command::Config => {
            let path = cli
                .settings
                .config
                .clone()
                .or_else(Settings::default_config_path)
                .unwrap_or_default();
            print_config(&config, &path);
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, no backtrace: the chain of causes joined.
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every flag of the daemon says what it is, in every subcommand.
    #[test]
    fn every_flag_is_described() {
        let mut root = Cli::command();
        root.build();
        let mut missing = Vec::new();
        let mut all = vec![root.clone()];
        all.extend(root.get_subcommands().cloned());
        for cmd in &all {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if !matches!(id, "help" | "version") && arg.get_help().is_none() {
                    missing.push(format!("{}: {id}", cmd.get_name()));
                }
            }
        }
        assert!(missing.is_empty(), "no description: {missing:?}");
    }
}
