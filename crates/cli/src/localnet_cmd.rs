//! `tensorgrid localnet`: the embedded local chain kept up for manual use.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

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
    pub(crate) rpc_port: u16,
    /// Websocket port.
    #[arg(long, default_value_t = 8900)]
    pub(crate) ws_port: u16,
    /// Keep the chain's state here (SQLite) so a restart continues where it stopped;
    /// without it the chain lives in memory.
    #[arg(long)]
    pub(crate) ledger: Option<PathBuf>,
    /// Start from an empty chain: delete the ledger's state first.
    #[arg(long, requires = "ledger")]
    pub(crate) reset: bool,
    /// Where the payer's and the named accounts' keypair files live (reused when present).
    #[arg(long, default_value = ".tensorgrid/localnet/keys")]
    pub(crate) keypair_dir: PathBuf,
    /// Funded keypairs to create besides the payer.
    #[arg(long, value_delimiter = ',', default_value = "poster,worker")]
    pub(crate) accounts: Vec<String>,
    /// SOL given to each of them at start.
    #[arg(long, default_value_t = 1_000)]
    pub(crate) sol_each: u64,
    /// Milliseconds per slot.
    #[arg(long, default_value_t = 400)]
    pub(crate) slot_ms: u64,
    /// The program's .so (default: target/deploy/tensorgrid.so, built when missing).
    #[arg(long)]
    pub(crate) program: Option<PathBuf>,
    /// Do not create the default market.
    #[arg(long)]
    pub(crate) no_market: bool,
    /// Price the default market in a test USDC (an SPL Token mint with 6 decimals, a million
    /// of it in each funded wallet) instead of SOL.
    #[arg(long, conflicts_with = "no_market")]
    pub(crate) usdc: bool,
    /// Port of the local S3-protocol artifact store.
    #[arg(long, default_value_t = 9000)]
    pub(crate) s3_port: u16,
    /// Where the local S3 store keeps its objects (a bucket per sub-directory).
    #[arg(long, default_value = ".tensorgrid/localnet/s3")]
    pub(crate) s3_dir: PathBuf,
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
        #[cfg(feature = "localnet")]
        None => runtime.block_on(crate::localnet_serve::serve(a)),
        #[cfg(not(feature = "localnet"))]
        None => bail!(
            "this tensorgrid was built without the embedded chain (--no-default-features); \
             `tensorgrid localnet warp` works against one running elsewhere"
        ),
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
            self.to_unix.saturating_sub(self.from_unix),
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
    // surfpool's cheatcode, over plain JSON-RPC (no embedded chain needed in this build).
    let ms = to.checked_mul(1000).context("the duration is too long")?;
    let _: serde_json::Value = ctx
        .chain
        .raw(
            "surfnet_timeTravel",
            serde_json::json!([{ "absoluteTimestamp": ms }]),
        )
        .await
        .with_context(|| format!("{url} did not move its clock (is it `tensorgrid localnet`?)"))?;
    out.emit(&Warped {
        from_unix: from,
        to_unix: ctx.chain.chain_time().await?,
    })
}
