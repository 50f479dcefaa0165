use anyhow::{bail, Result};
use clap::Args;
use tensorgrid_client::{instructions, pda, tensorgrid::instructions::WorkerUpdateArgs, Currency};

use super::HardwareArgs;
use crate::{
    chain_args::{ChainArgs, Ctx},
    output::OutputFormat,
    tx,
    units::Unit,
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
    /// Stake to add, in the market's unit: SOL or the mint's tokens (raw units with --lamports).
    #[arg(long)]
    add_stake: Option<String>,
    /// Stake to withdraw (no active job; the rest must stay at the market's minimum).
    #[arg(long)]
    withdraw_stake: Option<String>,
    /// Earnings to withdraw, in the market's unit; `all`, or no value, for everything.
    #[arg(long, num_args = 0..=1, default_missing_value = "all", value_name = "AMOUNT|all")]
    withdraw_earnings: Option<String>,
    /// Amounts are in raw units: lamports, or the mint's base units.
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
    let (market, market_state) = ctx.market().await?;
    let unit = Unit::of(&market_state);
    let currency = Currency::of(&market_state);
    let worker = pda::worker(&market, &operator.pubkey()).0;
    let Some(current) = ctx.chain.worker(&worker).await? else {
        bail!("{} is not registered in market {market}", operator.pubkey());
    };
    let amount = |v: &Option<String>| -> Result<u64> {
        v.as_deref().map_or(Ok(0), |s| unit.parse(s, a.lamports))
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
        "Update worker {worker}: add {} of stake, withdraw {} of stake and {} of earnings{}?",
        unit.show(args.add_stake),
        unit.show(args.withdraw_stake),
        unit.show(args.withdraw_earnings),
        args.hardware.as_ref().map_or(String::new(), |h| format!(
            ", hardware {}",
            crate::describe::hardware(h)
        ))
    ))?;
    // A withdrawal in a token market goes to the operator's token account: created first if
    // it does not exist.
    let moves = args.add_stake > 0 || args.withdraw_stake > 0 || args.withdraw_earnings > 0;
    let mut ixs: Vec<_> = currency
        .ensure_token_account(&operator.pubkey(), &operator.pubkey())
        .filter(|_| moves)
        .into_iter()
        .collect();
    ixs.push(if moves {
        instructions::worker_update_in(&currency, operator.pubkey(), market, worker, args)
    } else {
        instructions::worker_update(operator.pubkey(), market, worker, args)
    });
    let sent = tx::send(&ctx, &ixs, &operator, "worker updated")
        .await?
        .with("worker", worker);
    ctx.out.emit(&sent)?;
    Ok(std::process::ExitCode::SUCCESS)
}
