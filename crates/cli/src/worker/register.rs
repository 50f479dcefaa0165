use anyhow::{bail, Result};
use clap::Args;
use tensorgrid_client::{
    instructions, pda, tensorgrid::instructions::WorkerRegisterArgs, Currency,
};

use super::HardwareArgs;
use crate::{
    chain_args::{ChainArgs, Ctx},
    describe,
    output::OutputFormat,
    tx,
    units::Unit,
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
    /// Stake in the market's unit: SOL, or the mint's tokens (`12.5`) in a token market (raw
    /// units with --lamports); at least the market's minimum.
    #[arg(long)]
    stake: String,
    /// The amount is in raw units: lamports, or the mint's base units.
    #[arg(long)]
    lamports: bool,
    #[command(flatten)]
    hardware: HardwareArgs,
}

pub async fn run(a: RegisterArgs, out: OutputFormat) -> Result<std::process::ExitCode> {
    let ctx = Ctx::new(&a.chain, out, a.confirm.yes)?;
    let operator = ctx.keypair()?;
    let (market_key, market) = ctx.market().await?;
    let unit = Unit::of(&market);
    let stake = unit.parse(&a.stake, a.lamports)?;
    if stake < market.params.min_stake {
        bail!(
            "stake {} is below market {market_key}'s minimum of {}",
            unit.show(stake),
            unit.show(market.params.min_stake)
        );
    }
    let hardware = a.hardware.resolve()?;
    let worker = pda::worker(&market_key, &operator.pubkey()).0;
    ctx.confirm(&format!(
        "Register as a worker ({}) in market {market_key}, staking {}?",
        describe::hardware(&hardware),
        unit.show(stake)
    ))?;
    let ix = instructions::worker_register_in(
        &Currency::of(&market),
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
