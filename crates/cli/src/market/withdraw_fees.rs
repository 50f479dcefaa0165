use anyhow::{bail, Result};
use clap::Args;
use tensorgrid_client::{anchor_lang::prelude::Pubkey, instructions};

use crate::{
    chain_args::{ChainArgs, Ctx},
    output::OutputFormat,
    tx,
    units::{parse_amount, sol},
};

#[derive(Args)]
#[command(after_help = "Example:\n  tensorgrid market withdraw-fees --amount 1.5 --to 7xKX…3fQe")]
pub struct WithdrawArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    confirm: crate::chain_args::Confirm,
    /// Amount in SOL (or lamports with --lamports); default: all unclaimed fees.
    #[arg(long)]
    amount: Option<String>,
    /// The amount is in lamports, not SOL.
    #[arg(long)]
    lamports: bool,
    /// Wallet to pay (default: the authority).
    #[arg(long, value_parser = crate::chain_args::address)]
    to: Option<Pubkey>,
}

pub async fn run(a: WithdrawArgs, out: OutputFormat) -> Result<std::process::ExitCode> {
    let ctx = Ctx::new(&a.chain, out, a.confirm.yes)?;
    let authority = ctx.keypair()?;
    let (key, market) = ctx.market().await?;
    let amount = match &a.amount {
        Some(v) => parse_amount(v, a.lamports)?,
        None => market.fees_unclaimed,
    };
    if amount == 0 {
        bail!("market {key} has no unclaimed fees");
    }
    let to = a.to.unwrap_or(authority.pubkey());
    ctx.confirm(&format!("Withdraw {} SOL of fees to {to}?", sol(amount)))?;
    let ix = instructions::market_withdraw_fees(authority.pubkey(), key, to, amount);
    let sent = tx::send(&ctx, &[ix], &authority, "fees withdrawn")
        .await?
        .with("market", key);
    ctx.out.emit(&sent)?;
    Ok(std::process::ExitCode::SUCCESS)
}
