use anyhow::{bail, Result};
use clap::Args;
use tensorgrid_client::{anchor_lang::prelude::Pubkey, instructions};

use crate::{
    chain_args::{ChainArgs, Ctx},
    output::OutputFormat,
    tx,
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
    let unit = crate::units::Unit::of(&market);
    let currency = tensorgrid_client::Currency::of(&market);
    let amount = match &a.amount {
        Some(v) => unit.parse(v, a.lamports)?,
        None => market.fees_unclaimed,
    };
    if amount == 0 {
        bail!("market {key} has no unclaimed fees");
    }
    let to = a.to.unwrap_or(authority.pubkey());
    ctx.confirm(&format!("Withdraw {} of fees to {to}?", unit.show(amount)))?;
    // In a token market the fees go to `to`'s token account, created first (the authority
    // pays its rent) if it does not exist.
    let mut ixs: Vec<_> = currency
        .ensure_token_account(&authority.pubkey(), &to)
        .into_iter()
        .collect();
    ixs.push(instructions::market_withdraw_fees_in(
        &currency,
        authority.pubkey(),
        key,
        to,
        amount,
    ));
    let sent = tx::send(&ctx, &ixs, &authority, "fees withdrawn")
        .await?
        .with("market", key);
    ctx.out.emit(&sent)?;
    Ok(std::process::ExitCode::SUCCESS)
}
