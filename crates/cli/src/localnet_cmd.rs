//! `tensorgrid localnet`: the embedded local chain kept up for manual use.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use solana_signer::Signer;
use tensorgrid_client::program_id;
use tensorgrid_localnet::{default_market_params, s3, LocalS3, LocalnetBuilder, ProgramSource};

#[derive(Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  tensorgrid localnet                      # chain + S3 store until Ctrl-C\n  tensorgrid localnet --ledger .tensorgrid/ledger   # keeps state across restarts\n  tensorgrid localnet warp 2h              # in another terminal: move the clock"
)]
pub struct LocalnetArgs {
    #[command(subcommand)]
    action: Option<LocalnetAction>,
    /// JSON-RPC port.
    #[arg(long, default_value_t = 8899)]
    rpc_port: u16,
    /// Websocket port.
    #[arg(long, default_value_t = 8900)]
    ws_port: u16,
    /// Keep the chain's state here (SQLite) so a restart continues where it stopped;
    /// without it the chain lives in memory.
    #[arg(long)]
    ledger: Option<PathBuf>,
    /// Start from an empty chain: delete the ledger's state first.
    #[arg(long, requires = "ledger")]
    reset: bool,
    /// Where the payer's and the named accounts' keypair files live (reused when present).
    #[arg(long, default_value = ".tensorgrid/localnet/keys")]
    keypair_dir: PathBuf,
    /// Funded keypairs to create besides the payer.
    #[arg(long, value_delimiter = ',', default_value = "poster,worker")]
    accounts: Vec<String>,
    /// SOL given to each of them at start.
    #[arg(long, default_value_t = 1_000)]
    sol_each: u64,
    /// Milliseconds per slot.
    #[arg(long, default_value_t = 400)]
    slot_ms: u64,
    /// The program's .so (default: target/deploy/tensorgrid.so, built when missing).
    #[arg(long)]
    program: Option<PathBuf>,
    /// Do not create the default market.
    #[arg(long)]
    no_market: bool,
    /// Port of the local S3-protocol artifact store.
    #[arg(long, default_value_t = 9000)]
    s3_port: u16,
    /// Where the local S3 store keeps its objects (a bucket per sub-directory).
    #[arg(long, default_value = ".tensorgrid/localnet/s3")]
    s3_dir: PathBuf,
}

#[derive(Subcommand)]
enum LocalnetAction {
    /// Move a running local chain's clock forward (deadlines, challenge windows).
    Warp(WarpArgs),
}

#[derive(Args)]
#[command(after_help = "Example:\n  tensorgrid localnet warp 1h30m")]
struct WarpArgs {
    /// How far: 90s, 45m, 2h, 1d (or a combination, e.g. 1h30m).
    duration: String,
    #[command(flatten)]
    chain: crate::chain_args::ChainArgs,
}

pub fn run(a: LocalnetArgs, out: crate::output::OutputFormat) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match a.action {
        Some(LocalnetAction::Warp(w)) => runtime.block_on(warp(w, out)),
        None => runtime.block_on(serve(a)),
    }
}

#[derive(serde::Serialize)]
struct Warped {
    from_unix: i64,
    to_unix: i64,
}

impl crate::output::Report for Warped {
    fn display(&self) -> String {
        format!(
            "chain clock moved {} s forward, to {}",
            self.to_unix - self.from_unix,
            chrono::DateTime::from_timestamp(self.to_unix, 0)
                .map_or(self.to_unix.to_string(), |t| t.to_rfc3339())
        )
    }
}

/// Moves the local chain's clock (surfpool's time-travel cheatcode): only on this machine's
/// chain, never a shared cluster.
async fn warp(w: WarpArgs, out: crate::output::OutputFormat) -> Result<()> {
    let secs = crate::units::parse_duration(&w.duration).context("the duration")?;
    if secs <= 0 {
        bail!("the duration must be positive (the clock only moves forward)");
    }
    let mut chain = w.chain;
    if chain.url.is_empty() {
        chain.url = vec!["localhost".into()];
    }
    let ctx = crate::chain_args::Ctx::new(&chain, out, true)?;
    let url = ctx.chain.active_url().to_string();
    if !tensorgrid_client::rpc::config::is_local(&url) {
        bail!("{url} is not a local chain: only `tensorgrid localnet` can move its clock");
    }
    let from = ctx.chain.chain_time().await?;
    let to = from.checked_add(secs).context("the duration is too long")?;
    tensorgrid_localnet::cheatcodes::time_travel_to(&ctx.chain, to)
        .await
        .with_context(|| format!("{url} did not move its clock (is it `tensorgrid localnet`?)"))?;
    out.emit(&Warped {
        from_unix: from,
        to_unix: ctx.chain.chain_time().await?,
    })
}

async fn serve(a: LocalnetArgs) -> Result<()> {
    if a.reset {
        if let Some(ledger) = &a.ledger {
            let db = ledger.join("surfnet.sqlite");
            for file in [
                db.clone(),
                db.with_extension("sqlite-wal"),
                db.with_extension("sqlite-shm"),
            ] {
                if file.exists() {
                    std::fs::remove_file(&file)
                        .with_context(|| format!("removing {}", file.display()))?;
                }
            }
        }
    }
    let mut builder = LocalnetBuilder::default()
        .rpc_port(a.rpc_port)
        .ws_port(a.ws_port)
        .slot_time_ms(a.slot_ms)
        .keypair_dir(&a.keypair_dir)
        .accounts(a.accounts.clone())
        .lamports_each(a.sol_each.saturating_mul(tensorgrid_localnet::SOL));
    if let Some(p) = &a.program {
        builder = builder.program(ProgramSource::Path(p.clone()));
    }
    if let Some(l) = &a.ledger {
        builder = builder.ledger(l);
    }
    if !a.no_market {
        builder = builder.market(default_market_params());
    }
    let mut s3 = LocalS3::start(&a.s3_dir, s3::LOCAL_BUCKET, a.s3_port)?;
    let mut net = builder.start().await?;
    print_summary(&net, &s3);
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    eprintln!("\nstopping the local chain...");
    net.stop()?;
    s3.stop();
    eprintln!("stopped");
    Ok(())
}

/// The commands to run next, in other terminals, with this chain's URL and keypair files.
fn print_next(net: &tensorgrid_localnet::Localnet, s3: &LocalS3) {
    let (cli, worker) = (crate::hints::cli(), crate::hints::worker());
    let url = net.rpc_url();
    let key = |name: &str| {
        net.accounts()
            .iter()
            .find(|a| a.name == name)
            .and_then(|a| a.path.as_ref())
            .map(|p| p.display().to_string())
    };
    println!("Next, in other terminals (after the exports above):");
    if let Some(w) = key("worker") {
        println!(
            "  {worker} -u {url} -k {w} --store {}     # a worker",
            s3.store_url()
        );
    }
    if let Some(p) = key("poster") {
        println!("  {cli} job post --spec jobs/digits-mlp.json --reward 1 --max-duration 1h -u {url} -k {p}");
        println!("  {cli} job watch 0 -u {url} -k {p}     # then job verify 0, job accept 0");
    }
    println!("  {cli} keygen -o me.json && {cli} airdrop 10 -u {url} -k me.json     # a wallet of your own");
    println!("  {cli} localnet warp 1h -u {url}     # move the chain's clock (deadlines, windows)");
}

fn print_summary(net: &tensorgrid_localnet::Localnet, s3: &LocalS3) {
    let payer = net.payer();
    let file = |a: &tensorgrid_localnet::NamedAccount| {
        a.path
            .as_ref()
            .map_or_else(|| "(in memory)".to_string(), |p| p.display().to_string())
    };
    println!("tensorgrid local chain up in {:.0?}", net.started_in());
    println!("  JSON-RPC   {}", net.rpc_url());
    println!("  websocket  {}", net.ws_url());
    println!(
        "  program    {}  ({})",
        program_id(),
        net.program_path().display()
    );
    if let Some(market) = net.market() {
        println!("  market     {market}  (authority: payer)");
    }
    println!("  payer      {}  {}", payer.keypair.pubkey(), file(payer));
    for a in net.accounts() {
        println!("  {:<10} {}  {}", a.name, a.keypair.pubkey(), file(a));
    }
    println!();
    println!("Solana CLI:   solana config set --url {}", net.rpc_url());
    if let Some(a) = net.accounts().first() {
        println!(
            "              solana balance --url {} --keypair {}",
            net.rpc_url(),
            file(a)
        );
    }
    println!(
        "Other tools:  --url {} (websocket {}){}",
        net.rpc_url(),
        net.ws_url(),
        net.market()
            .map_or(String::new(), |m| format!(" --market {m}"))
    );
    println!(
        "Artifacts:    S3 at {} (bucket {}, objects in {})",
        s3.endpoint(),
        s3::LOCAL_BUCKET,
        s3.dir().display()
    );
    println!("              for tensorgrid and any S3 client, in your shell:");
    for (k, v) in s3.env() {
        println!("              export {k}={v}");
    }
    println!("              export TENSORGRID_STORE={}", s3.store_url());
    print_next(net, s3);
    println!("Ctrl-C stops the chain.");
}
