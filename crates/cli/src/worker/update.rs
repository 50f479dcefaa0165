use anyhow::{bail, Result};
use clap::Args;
use tensorgrid_client::{instructions, pda, tensorgrid::instructions::WorkerUpdateArgs};

use super::HardwareArgs;
use crate::{
    chain_args::{ChainArgs, Ctx},
    output::OutputFormat,
    tx,
    units::{parse_amount, sol},
};

#[derive(Args)]
#[command(
    after_help = "Examples:\n  tensorgrid worker update --withdraw-earnings\n  tensorgrid worker update --add-stake 1 --update-hardware"
)]
pub struct UpdateArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    confirm: crate::chain_args::Confirm,
    /// Stake to add, in SOL (or lamports with --lamports).
    #[arg(long)]
    add_stake: Option<String>,
    /// Stake to withdraw (no active job; the rest must stay at the market's minimum).
    #[arg(long)]
    withdraw_stake: Option<String>,
    /// Earnings to withdraw, in SOL; `all`, or no value, for everything.
    #[arg(long, num_args = 0..=1, default_missing_value = "all", value_name = "SOL|all")]
    withdraw_earnings: Option<String>,
    /// Amounts are in lamports, not SOL.
    #[arg(long)]
    lamports: bool,
    /// Record the hardware again (detected, or as given by --device/--vram/--label).
    #[arg(long)]
    update_hardware: bool,
    #[command(flatten)]
    hardware: HardwareArgs,
}

pub async fn run(a: UpdateArgs, out: OutputFormat) -> Result<std::process::ExitCode> {
    let ctx = Ctx::new(&a.chain, out, a.confirm.yes)?;
    let operator = ctx.keypair()?;
    let (market, _) = ctx.market().await?;
    let worker = pda::worker(&market, &operator.pubkey()).0;
    let Some(current) = ctx.chain.worker(&worker).await? else {
        bail!("{} is not registered in market {market}", operator.pubkey());
    };
    let amount = |v: &Option<String>| -> Result<u64> {
        v.as_deref().map_or(Ok(0), |s| parse_amount(s, a.lamports))
    };
    let withdraw_earnings = match a.withdraw_earnings.as_deref() {
        Some("all") => current.earnings,
        _ => amount(&a.withdraw_earnings)?,
    };
    let hardware = if a.update_hardware || a.hardware.given() {
        Some(a.hardware.resolve()?)
    } else {
        None
    };
    let args = WorkerUpdateArgs {
        hardware,
        add_stake: amount(&a.add_stake)?,
        withdraw_stake: amount(&a.withdraw_stake)?,
        withdraw_earnings,
    };
    if args.hardware.is_none()
        && args.add_stake == 0
        && args.withdraw_stake == 0
        && args.withdraw_earnings == 0
    {
        bail!("nothing to update: give --add-stake, --withdraw-stake, --withdraw-earnings or --update-hardware");
    }
    ctx.confirm(&format!(
        "Update worker {worker}: add {} SOL of stake, withdraw {} SOL of stake and {} SOL of earnings{}?",
        sol(args.add_stake),
        sol(args.withdraw_stake),
        sol(args.withdraw_earnings),
        args.hardware.as_ref().map_or(String::new(), |h| format!(", hardware {}", crate::describe::hardware(h)))
    ))?;
    let ix = instructions::worker_update(operator.pubkey(), market, worker, args);
    let sent = tx::send(&ctx, &[ix], &operator, "worker updated")
        .await?
        .with("worker", worker);
    ctx.out.emit(&sent)?;
    Ok(std::process::ExitCode::SUCCESS)
}
