//! The command line: global options and the command tree.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::{
    job::JobCommand, local, localnet_cmd, market::MarketCommand, output::OutputFormat,
    worker::WorkerCommand,
};

#[derive(Parser)]
#[command(
    name = "tensorgrid",
    version,
    about = "tensorgrid: decentralised AI training on Solana"
)]
pub struct Cli {
    /// Output format: display (for people), json or json-compact.
    #[arg(long, global = true, value_enum, default_value = "display")]
    output: OutputFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Post, follow, verify and settle training jobs.
    #[command(subcommand)]
    Job(JobCommand),
    /// Create and run a market (its authority).
    #[command(subcommand)]
    Market(MarketCommand),
    /// A provider's worker account: register, stake, earnings, hardware.
    #[command(subcommand)]
    Worker(WorkerCommand),
    /// Train a job spec and write weights, metrics and the result manifest.
    Train(local::train::TrainArgs),
    /// Check a result directory against its job spec: hashes, and the model re-evaluated.
    Verify(local::verify::VerifyArgs),
    /// Training throughput of job specs' models and the matmul ceiling (JSON lines).
    Bench(local::bench::BenchArgs),
    /// Cut a dataset too large for one file into shards and their index (a spec's
    /// `dataset.format` `shards`): text tokenized, or token / CIFAR files by record.
    Shard(local::shard::ShardArgs),
    /// Run the embedded local Solana chain and S3 store, until Ctrl-C; `localnet warp`
    /// moves its clock.
    Localnet(localnet_cmd::LocalnetArgs),
    /// The keypair's address.
    Address(crate::account_cmd::AddressArgs),
    /// An address's balance in SOL (default: the keypair's).
    Balance(crate::account_cmd::BalanceArgs),
    /// Request SOL from the cluster's faucet (a local chain, devnet or testnet).
    Airdrop(crate::account_cmd::AirdropArgs),
    /// Write a new keypair file (as solana-keygen new does).
    Keygen(crate::account_cmd::KeygenArgs),
    #[cfg(feature = "localnet")]
    /// The whole market on this machine: chain, store, a worker, a job posted, trained,
    /// verified and paid.
    Demo(crate::demo::DemoArgs),
}

impl Cli {
    /// The log level when RUST_LOG does not say: chain commands report through their output,
    /// so only warnings are logged; local training and the local chain log progress.
    pub fn default_log_filter(&self) -> &'static str {
        match self.command {
            Command::Train(_) | Command::Localnet(_) | Command::Bench(_) => {
                "info,parity_ws=warn,jsonrpc_ws_server=warn,litesvm::accounts_db=off"
            }
            // The demo reports through its own output; the embedded chain's loader complains
            // about accounts it cannot parse as programs, harmlessly.
            #[cfg(feature = "localnet")]
            Command::Demo(_) => "error,litesvm::accounts_db=off",
            // Retries and failovers are reported by the one error line if they all fail.
            _ => "error",
        }
    }

    pub fn run(self) -> Result<ExitCode> {
        let out = self.output;
        let chain =
            |fut: std::pin::Pin<Box<dyn std::future::Future<Output = Result<ExitCode>>>>| {
                tokio::runtime::Runtime::new()
                    .context("starting the async runtime")?
                    .block_on(fut)
            };
        match self.command {
            Command::Job(c) => chain(Box::pin(c.run(out))),
            Command::Market(c) => chain(Box::pin(c.run(out))),
            Command::Worker(c) => chain(Box::pin(c.run(out))),
            Command::Train(a) => local::train::run(a).map(|()| ExitCode::SUCCESS),
            Command::Verify(a) => local::verify::run(a, out),
            Command::Bench(a) => local::bench::run(a).map(|()| ExitCode::SUCCESS),
            Command::Shard(a) => local::shard::run(a, out).map(|()| ExitCode::SUCCESS),
            Command::Localnet(a) => localnet_cmd::run(a, out).map(|()| ExitCode::SUCCESS),
            Command::Address(a) => chain(Box::pin(crate::account_cmd::address(a, out))),
            Command::Balance(a) => chain(Box::pin(crate::account_cmd::balance(a, out))),
            Command::Airdrop(a) => chain(Box::pin(crate::account_cmd::airdrop(a, out))),
            Command::Keygen(a) => crate::account_cmd::keygen(a, out),
            #[cfg(feature = "localnet")]
            Command::Demo(a) => crate::demo::run(a),
        }
    }
}
