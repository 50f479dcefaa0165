use anyhow::Result;
use clap::Args;
use tensorgrid_client::{instructions, pda};

use crate::{
    chain_args::{ChainArgs, Ctx},
    output::OutputFormat,
    tx,
};

#[derive(Args)]
#[command(after_help = "Example:\n  tensorgrid worker deregister")]
pub struct DeregisterArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    confirm: crate::chain_args::Confirm,
}

pub async fn run(a: DeregisterArgs, out: OutputFormat) -> Result<std::process::ExitCode> {
    let ctx = Ctx::new(&a.chain, out, a.confirm.yes)?;
    let operator = ctx.keypair()?;
    let (market, _) = ctx.market().await?;
    let worker = pda::worker(&market, &operator.pubkey()).0;
    ctx.confirm(&format!(
        "Deregister worker {worker} and take back its stake and earnings?"
    ))?;
    let ix = instructions::worker_deregister(operator.pubkey(), market, worker);
    let sent = tx::send(&ctx, &[ix], &operator, "worker deregistered")
        .await?
        .with("worker", worker);
    ctx.out.emit(&sent)?;
    Ok(std::process::ExitCode::SUCCESS)
}
