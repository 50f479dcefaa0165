//! `tensorgrid`, the command line of the marketplace: a poster's job commands, a market
//! authority's and a provider's account commands against any Solana RPC (Solana CLI
//! conventions: `-u`, `-k`, config.yml, `--output json`), and local train / verify / bench /
//! localnet. Hardware detection is the worker's (`tensorgrid_worker::hardware`).

mod account_cmd;
pub mod chain_args;
mod cli;
#[cfg(feature = "localnet")]
mod demo;
pub mod describe;
#[cfg(feature = "localnet")]
mod hints;
mod job;
mod local;
mod localnet_cmd;
#[cfg(feature = "localnet")]
mod localnet_serve;
mod market;
pub mod output;
pub mod plot;
mod private_eval;
mod progress;
mod spot_check;
pub mod store_args;
mod tx;
pub mod units;
mod worker;

pub use cli::Cli;
pub use tensorgrid_client::rpc::solana_config;

use std::process::ExitCode;

use clap::Parser;

/// Runs the command line; errors are printed once, on one line, without a backtrace (a
/// backtrace is for bugs: panics keep theirs).
pub fn main() -> ExitCode {
    tensorgrid_client::process::exit_quietly_on_broken_pipe();
    let cli = Cli::parse();
    tensorgrid_train::alloc::keep_freed_memory();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| cli.default_log_filter().into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// `context: cause: root cause`, each message once (a wrapper often repeats its source).
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        if parts.iter().any(|p| p.contains(&msg)) {
            continue;
        }
        parts.push(msg);
    }
    // Messages quote URIs and files from the chain: escaped, they cannot repaint the screen.
    describe::clean(&parts.join(": "))
}
