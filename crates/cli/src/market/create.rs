use anyhow::Result;
use clap::Args;
use tensorgrid_client::{defaults, instructions, pda, tensorgrid::instructions::MarketInitArgs};

use super::params::ParamArgs;
use crate::{
    chain_args::{ChainArgs, Ctx},
    output::OutputFormat,
    tx,
};

#[derive(Args)]
#[command(
    after_help = "Example:\n  tensorgrid market create --fee-bps 250 --challenge-window 1d -u devnet"
)]
pub struct CreateArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    confirm: crate::chain_args::Confirm,
    /// Lets one authority run several markets (part of the market's address).
    #[arg(long, default_value_t = 0)]
    market_id: u64,
    /// Parameters (defaults: 2.5% fee, 1 SOL min stake, collateral = reward, 50% slash, 5%
    /// abandon penalty, 10% crank bounty, 1h challenge, 24h to rule, claims up to 24h).
    #[command(flatten)]
    params: ParamArgs,
}

pub async fn run(a: CreateArgs, out: OutputFormat) -> Result<std::process::ExitCode> {
    let ctx = Ctx::new(&a.chain, out, a.confirm.yes)?;
    let authority = ctx.keypair()?;
    let params = a.params.apply(defaults::market_params())?;
    let market = pda::market(&authority.pubkey(), a.market_id).0;
    ctx.confirm(&format!("Create market {market} with you as authority?"))?;
    let ix = instructions::market_init(
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
