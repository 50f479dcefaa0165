use anyhow::{bail, Result};
use clap::Args;
use tensorgrid_client::{instructions, tensorgrid::instructions::MarketUpdateArgs};

use super::params::ParamArgs;
use crate::{
    chain_args::{ChainArgs, Ctx},
    output::OutputFormat,
    tx,
};

#[derive(Args)]
#[command(after_help = "Example:\n  tensorgrid market update --fee-bps 200")]
pub struct UpdateArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    confirm: crate::chain_args::Confirm,
    #[command(flatten)]
    params: ParamArgs,
}

pub async fn run(a: UpdateArgs, out: OutputFormat) -> Result<std::process::ExitCode> {
    if !a.params.any() {
        bail!("nothing to update: give at least one parameter (see --help)");
    }
    let ctx = Ctx::new(&a.chain, out, a.confirm.yes)?;
    let authority = ctx.keypair()?;
    let (key, market) = ctx.market().await?;
    let params = a
        .params
        .apply(market.params, crate::units::Unit::of(&market))?;
    ctx.confirm(&format!(
        "Update market {key}? Jobs already posted keep their terms."
    ))?;
    let ix = instructions::market_update(
        authority.pubkey(),
        key,
        MarketUpdateArgs {
            params: Some(params),
            paused: None,
        },
    );
    let sent = tx::send(&ctx, &[ix], &authority, "market updated")
        .await?
        .with("market", key);
    ctx.out.emit(&sent)?;
    Ok(std::process::ExitCode::SUCCESS)
}
