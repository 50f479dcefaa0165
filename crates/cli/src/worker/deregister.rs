use anyhow::Result;
use clap::Args;
use tensorgrid_client::{instructions, pda, Currency};

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
    let (market, market_state) = ctx.market().await?;
    let currency = Currency::of(&market_state);
    let worker = pda::worker(&market, &operator.pubkey()).0;
    ctx.confirm(&format!(
        "Deregister worker {worker} and take back its stake and earnings?"
    ))?;
    // In a token market the stake and earnings go to the operator's token account, created
    // first if it does not exist.
    let mut ixs: Vec<_> = currency
        .ensure_token_account(&operator.pubkey(), &operator.pubkey())
        .into_iter()
        .collect();
    ixs.push(instructions::worker_deregister_in(
        &currency,
        operator.pubkey(),
        market,
        worker,
    ));
    let sent = tx::send(&ctx, &ixs, &operator, "worker deregistered")
        .await?
        .with("worker", worker);
    ctx.out.emit(&sent)?;
    Ok(std::process::ExitCode::SUCCESS)
}
