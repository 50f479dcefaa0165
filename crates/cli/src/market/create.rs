use anyhow::{bail, Context, Result};
use clap::Args;
use tensorgrid_client::{
    anchor_lang::prelude::Pubkey,
    currency::{TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID},
    defaults, instructions, pda,
    tensorgrid::instructions::MarketInitArgs,
    Currency,
};

use super::params::ParamArgs;
use crate::{
    chain_args::{ChainArgs, Ctx},
    output::OutputFormat,
    tx,
};

#[derive(Args)]
#[command(
    after_help = "Examples:\n  tensorgrid market create --fee-bps 250 --challenge-window 1d -u devnet\n  tensorgrid market create --mint EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v --min-stake 100   # priced in USDC"
)]
pub struct CreateArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    confirm: crate::chain_args::Confirm,
    /// Lets one authority run several markets (part of the market's address).
    #[arg(long, default_value_t = 0)]
    market_id: u64,
    /// Price the market in this SPL Token or Token-2022 mint (e.g. USDC) instead of SOL:
    /// every amount of the market is then in the mint's units. Fixed for the market's life.
    #[arg(long, value_parser = crate::chain_args::address)]
    mint: Option<Pubkey>,
    /// Parameters (defaults: 2.5% fee, a min stake of 1 SOL or one token of the mint,
    /// collateral = reward, 50% slash, 5% abandon penalty, 10% crank bounty, 1h challenge,
    /// 24h to rule, claims up to 24h).
    #[command(flatten)]
    params: ParamArgs,
}

pub async fn run(a: CreateArgs, out: OutputFormat) -> Result<std::process::ExitCode> {
    let ctx = Ctx::new(&a.chain, out, a.confirm.yes)?;
    let authority = ctx.keypair()?;
    let (currency, unit) = match a.mint {
        None => (Currency::Sol, crate::units::Unit::SOL),
        Some(mint) => mint_unit(&ctx, mint).await?,
    };
    let mut defaults = defaults::market_params();
    if unit.mint.is_some() {
        // One whole token, as the SOL default is one SOL.
        defaults.min_stake = match 10u64.checked_pow(u32::from(unit.decimals)) {
            Some(one) => one,
            None if a.params.min_stake_given() => 0,
            None => bail!(
                "one token of a mint with {} decimals is more base units than an amount holds: give --min-stake",
                unit.decimals
            ),
        };
    }
    let params = a.params.apply(defaults, unit)?;
    let market = pda::market(&authority.pubkey(), a.market_id).0;
    let priced = a.mint.map_or("SOL".to_string(), |m| format!("mint {m}"));
    ctx.confirm(&format!(
        "Create market {market}, priced in {priced}, with you as authority?"
    ))?;
    let ix = instructions::market_init_in(
        &currency,
        authority.pubkey(),
        MarketInitArgs {
            market_id: a.market_id,
            params,
        },
    );
    let sent = tx::send(&ctx, &[ix], &authority, "market created")
        .await?
        .with("market", market)
        .with("authority", authority.pubkey())
        .next(format!("tensorgrid market show --market {market}"));
    ctx.out.emit(&sent)?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// The currency and unit of a market priced in `mint`, read from the chain: its token program
/// (the mint account's owner) and its decimals.
async fn mint_unit(ctx: &Ctx, mint: Pubkey) -> Result<(Currency, crate::units::Unit)> {
    let account = ctx
        .chain
        .account(&mint)
        .await?
        .with_context(|| format!("mint {mint} does not exist on {}", ctx.chain.active_url()))?;
    let token_program = account.owner;
    if token_program != TOKEN_PROGRAM_ID && token_program != TOKEN_2022_PROGRAM_ID {
        bail!(
            "{mint} is not a mint: its owner {token_program} is neither SPL Token nor Token-2022"
        );
    }
    // A mint's decimals are byte 44 of its 82-byte base state (both token programs).
    let Some(&decimals) = account.data.get(44).filter(|_| account.data.len() >= 82) else {
        bail!(
            "{mint} is not a mint: its account holds {} bytes",
            account.data.len()
        );
    };
    Ok((
        Currency::Token {
            mint,
            token_program,
        },
        crate::units::Unit {
            decimals,
            mint: Some(mint),
        },
    ))
}
