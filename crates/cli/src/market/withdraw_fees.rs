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
    /// Amount in the market's unit: SOL or the mint's tokens (raw units with --lamports);
    /// default: all unclaimed fees.
    #[arg(long)]
    amount: Option<String>,
    /// The amount is in raw units: lamports, or the mint's base units.
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
    if currency != tensorgrid_client::Currency::Sol {
        // The fees go to `to`'s token account of the mint: `to` must be a wallet, not itself a
        // token account (one owned by a token account could never be spent from).
        if let Some(account) = ctx.chain.account(&to).await? {
            let owner = account.owner;
            if owner == tensorgrid_client::currency::TOKEN_PROGRAM_ID
                || owner == tensorgrid_client::currency::TOKEN_2022_PROGRAM_ID
            {
                bail!("--to {to} is a token account; give the wallet that owns it");
            }
        }
    }
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
