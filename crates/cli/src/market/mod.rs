//! `tensorgrid market …`: a market authority's commands.

mod create;
mod params;
mod pause;
mod show;
mod update;
mod withdraw_fees;

use anyhow::Result;
use clap::Subcommand;

use crate::output::OutputFormat;

#[derive(Subcommand)]
pub enum MarketCommand {
    /// Create a market with you as its authority.
    Create(create::CreateArgs),
    /// A market's parameters, fees and activity.
    Show(show::ShowArgs),
    /// Change parameters for jobs posted from now on (posted jobs keep their terms).
    Update(update::UpdateArgs),
    /// Stop new posts and claims (jobs in flight continue and settle).
    Pause(pause::PauseArgs),
    /// Allow posts and claims again.
    Resume(pause::PauseArgs),
    /// Move collected fees to a wallet.
    WithdrawFees(withdraw_fees::WithdrawArgs),
}

impl MarketCommand {
    pub async fn run(self, out: OutputFormat) -> Result<std::process::ExitCode> {
        match self {
            MarketCommand::Create(a) => create::run(a, out).await,
            MarketCommand::Show(a) => show::run(a, out).await,
            MarketCommand::Update(a) => update::run(a, out).await,
            MarketCommand::Pause(a) => pause::run(a, true, out).await,
            MarketCommand::Resume(a) => pause::run(a, false, out).await,
            MarketCommand::WithdrawFees(a) => withdraw_fees::run(a, out).await,
        }
    }
}
