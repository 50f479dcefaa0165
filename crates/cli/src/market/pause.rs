use anyhow::Result;
use clap::Args;
use tensorgrid_client::{instructions, tensorgrid::instructions::MarketUpdateArgs};

use crate::{
    chain_args::{ChainArgs, Ctx},
    output::OutputFormat,
    tx,
};

#[derive(Args)]
#[command(after_help = "Examples:\n  tensorgrid market pause\n  tensorgrid market resume")]
pub struct PauseArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    confirm: crate::chain_args::Confirm,
}

/// `market pause` (`paused = true`) and `market resume`.
pub async fn run(a: PauseArgs, paused: bool, out: OutputFormat) -> Result<std::process::ExitCode> {
    let ctx = Ctx::new(&a.chain, out, a.confirm.yes)?;
    let authority = ctx.keypair()?;
    let (key, _) = ctx.market().await?;
    let verb = if paused { "pause" } else { "resume" };
    ctx.confirm(&format!("{verb} market {key}?"))?;
    let ix = instructions::market_update(
        authority.pubkey(),
        key,
        MarketUpdateArgs {
            params: None,
            paused: Some(paused),
        },
    );
    let action = if paused {
        "market paused"
    } else {
        "market resumed"
    };
    let sent = tx::send(&ctx, &[ix], &authority, action)
        .await?
        .with("market", key);
    ctx.out.emit(&sent)?;
    Ok(std::process::ExitCode::SUCCESS)
}
