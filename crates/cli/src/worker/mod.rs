//! `tensorgrid worker …`: a provider's account in a market (the worker daemon registers and
//! updates through the same code).

mod deregister;
mod hardware_args;
mod register;
mod show;
mod update;

use anyhow::Result;
use clap::Subcommand;

use crate::output::OutputFormat;

pub use hardware_args::HardwareArgs;

#[derive(Subcommand)]
pub enum WorkerCommand {
    /// Register in the market with a stake and your hardware.
    Register(register::RegisterArgs),
    /// A worker's stake, earnings, hardware, record and current job.
    Show(show::ShowArgs),
    /// Add or withdraw stake, withdraw earnings, or change the hardware.
    Update(update::UpdateArgs),
    /// Leave the market: stake and earnings back (no job may be active).
    Deregister(deregister::DeregisterArgs),
}

impl WorkerCommand {
    pub async fn run(self, out: OutputFormat) -> Result<std::process::ExitCode> {
        match self {
            WorkerCommand::Register(a) => register::run(a, out).await,
            WorkerCommand::Show(a) => show::run(a, out).await,
            WorkerCommand::Update(a) => update::run(a, out).await,
            WorkerCommand::Deregister(a) => deregister::run(a, out).await,
        }
    }
}
