//! `tensorgrid`: train a job spec locally, verify a result, run a local chain.

mod commands;
mod localnet_cmd;

use anyhow::Result;
use clap::Parser;

fn main() -> Result<()> {
    let cli = commands::Cli::parse();
    cli.init_runtime();
    tensorgrid_train::alloc::keep_freed_memory();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                // The embedded chain's servers log every connection at info, and LiteSVM logs an
                // error while the program account is being written (harmless): keep them quiet.
                "info,parity_ws=warn,jsonrpc_ws_server=warn,litesvm::accounts_db=off".into()
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    cli.run()
}
