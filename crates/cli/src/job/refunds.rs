//! `job refunds`: what a token market owes the poster (refunds, compensation, returned bonds
//! that settlements credited to its poster account), and `--withdraw` to take it out.

use anyhow::{bail, Result};
use clap::Args;
use tensorgrid_client::{instructions, Currency};

use crate::{
    chain_args::{ChainArgs, Ctx},
    output::OutputFormat,
    tx,
    units::Unit,
};

#[derive(Args)]
#[command(after_help = "Examples:\n  tensorgrid job refunds\n  tensorgrid job refunds --withdraw")]
pub struct RefundsArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    confirm: crate::chain_args::Confirm,
    /// Withdraw them to your token account of the market's mint (created if missing).
    #[arg(long)]
    withdraw: bool,
}

/// What the market owes the poster.
#[derive(serde::Serialize)]
struct Refunds {
    market: String,
    poster: String,
    /// Base units of the mint.
    refunds: u64,
    decimals: u8,
    #[serde(skip)]
    shown: String,
}

impl crate::output::Report for Refunds {
    fn display(&self) -> String {
        crate::output::fields(&[
            ("market", self.market.clone()),
            ("poster", self.poster.clone()),
            ("refunds", self.shown.clone()),
        ])
    }
}

pub async fn run(a: RefundsArgs, out: OutputFormat) -> Result<std::process::ExitCode> {
    let ctx = Ctx::new(&a.chain, out, a.confirm.yes)?;
    let signer = ctx.keypair()?;
    let me = signer.pubkey();
    let (market_key, market) = ctx.market().await?;
    let (unit, currency) = (Unit::of(&market), Currency::of(&market));
    if currency == Currency::Sol {
        bail!("market {market_key} is priced in SOL: its settlements pay posters in their wallets, nothing waits to be withdrawn");
    }
    let refunds = ctx
        .chain
        .poster(&market_key, &me)
        .await?
        .map_or(0, |p| p.refunds);
    if !a.withdraw {
        ctx.out.emit(&Refunds {
            market: market_key.to_string(),
            poster: me.to_string(),
            refunds,
            decimals: unit.decimals,
            shown: unit.show(refunds),
        })?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    if refunds == 0 {
        bail!("nothing to withdraw: market {market_key} owes {me} no refunds");
    }
    ctx.confirm(&format!("Withdraw {} of refunds?", unit.show(refunds)))?;
    let mut ixs: Vec<_> = currency
        .ensure_token_account(&me, &me)
        .into_iter()
        .collect();
    ixs.push(instructions::poster_withdraw(
        &currency, me, market_key, refunds,
    ));
    let sent = tx::send(&ctx, &ixs, &signer, "refunds withdrawn")
        .await?
        .with("market", market_key)
        .with_number("amount", refunds);
    ctx.out.emit(&sent)?;
    Ok(std::process::ExitCode::SUCCESS)
}
