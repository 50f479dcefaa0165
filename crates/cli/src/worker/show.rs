use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;
use solana_signer::Signer;
use tensorgrid_client::{anchor_lang::prelude::Pubkey, pda};

use crate::{
    chain_args::{ChainArgs, Ctx},
    describe,
    output::{fields, OutputFormat, Report},
    units::{sol, when},
};

#[derive(Args)]
pub struct ShowArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// The operator's wallet (default: yours).
    #[arg(long)]
    operator: Option<Pubkey>,
}

#[derive(Serialize)]
struct Shown {
    worker: String,
    operator: String,
    market: String,
    registered: bool,
    stake: u64,
    earnings: u64,
    hardware: String,
    active_job: Option<String>,
    registered_at: i64,
    jobs_completed: u64,
    jobs_abandoned: u64,
    deadlines_missed: u64,
    disputes_lost: u64,
    total_earned: u64,
    total_slashed: u64,
    #[serde(skip)]
    now: i64,
}

impl Report for Shown {
    fn display(&self) -> String {
        fields(&[
            ("worker", self.worker.clone()),
            ("operator", self.operator.clone()),
            ("market", self.market.clone()),
            (
                "status",
                if self.registered {
                    "registered"
                } else {
                    "leaving (job in flight)"
                }
                .into(),
            ),
            ("hardware", self.hardware.clone()),
            ("stake", format!("{} SOL", sol(self.stake))),
            (
                "earnings",
                format!(
                    "{} SOL (withdraw with `tensorgrid worker update --withdraw-earnings`)",
                    sol(self.earnings)
                ),
            ),
            (
                "active job",
                self.active_job.clone().unwrap_or_else(|| "none".into()),
            ),
            ("registered", when(self.registered_at, self.now)),
            (
                "record",
                format!(
                    "{} completed, {} abandoned, {} deadlines missed, {} disputes lost",
                    self.jobs_completed,
                    self.jobs_abandoned,
                    self.deadlines_missed,
                    self.disputes_lost
                ),
            ),
            (
                "earned / slashed",
                format!(
                    "{} SOL / {} SOL",
                    sol(self.total_earned),
                    sol(self.total_slashed)
                ),
            ),
        ])
    }
}

pub async fn run(a: ShowArgs, out: OutputFormat) -> Result<std::process::ExitCode> {
    let ctx = Ctx::new(&a.chain, out, true)?;
    let operator = match a.operator {
        Some(o) => o,
        None => ctx.keypair()?.pubkey(),
    };
    let (market, _) = ctx.market().await?;
    let key = pda::worker(&market, &operator).0;
    let Some(w) = ctx.chain.worker(&key).await? else {
        bail!("{operator} is not registered in market {market} (`tensorgrid worker register --stake SOL`)");
    };
    let shown = Shown {
        worker: key.to_string(),
        operator: w.operator.to_string(),
        market: w.market.to_string(),
        registered: w.registered,
        stake: w.stake,
        earnings: w.earnings,
        hardware: describe::hardware(&w.hardware),
        active_job: w.active().map(|j| j.to_string()),
        registered_at: w.registered_at,
        jobs_completed: w.record.jobs_completed,
        jobs_abandoned: w.record.jobs_abandoned,
        deadlines_missed: w.record.deadlines_missed,
        disputes_lost: w.record.disputes_lost,
        total_earned: w.record.total_earned,
        total_slashed: w.record.total_slashed,
        now: ctx.chain.chain_time().await?,
    };
    ctx.out.emit(&shown)?;
    Ok(std::process::ExitCode::SUCCESS)
}
