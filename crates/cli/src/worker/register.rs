use anyhow::{bail, Result};
use clap::Args;
use tensorgrid_client::{instructions, pda, tensorgrid::instructions::WorkerRegisterArgs};

use super::HardwareArgs;
use crate::{
    chain_args::{ChainArgs, Ctx},
    describe,
    output::OutputFormat,
    tx,
    units::{parse_amount, sol},
};

#[derive(Args)]
#[command(
    after_help = "Examples:\n  tensorgrid worker register --stake 2\n  tensorgrid worker register --stake 5 --device cuda --vram 24576 --label rtx-4090"
)]
pub struct RegisterArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    confirm: crate::chain_args::Confirm,
    /// Stake in SOL (or lamports with --lamports); at least the market's minimum.
    #[arg(long)]
    stake: String,
    /// The amount is in lamports, not SOL.
    #[arg(long)]
    lamports: bool,
    #[command(flatten)]
    hardware: HardwareArgs,
}

pub async fn run(a: RegisterArgs, out: OutputFormat) -> Result<std::process::ExitCode> {
    let ctx = Ctx::new(&a.chain, out, a.confirm.yes)?;
    let operator = ctx.keypair()?;
    let stake = parse_amount(&a.stake, a.lamports)?;
    let (market_key, market) = ctx.market().await?;
    if stake < market.params.min_stake {
        bail!(
            "stake {} SOL is below market {market_key}'s minimum of {} SOL",
            sol(stake),
            sol(market.params.min_stake)
        );
    }
    let hardware = a.hardware.resolve()?;
    let worker = pda::worker(&market_key, &operator.pubkey()).0;
    ctx.confirm(&format!(
        "Register as a worker ({}) in market {market_key}, staking {} SOL?",
        describe::hardware(&hardware),
        sol(stake)
    ))?;
    let ix = instructions::worker_register(
        operator.pubkey(),
        market_key,
        WorkerRegisterArgs { stake, hardware },
    );
    let sent = tx::send(&ctx, &[ix], &operator, "worker registered")
        .await?
        .with("worker", worker)
        .with("market", market_key)
        .next("tensorgrid worker show");
    ctx.out.emit(&sent)?;
    Ok(std::process::ExitCode::SUCCESS)
}
