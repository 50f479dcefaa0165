use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;
use tensorgrid_client::{anchor_lang::prelude::Pubkey, pda};
use tensorgrid_worker::ledger::{entries_of, Entry};

use crate::{
    chain_args::{ChainArgs, Ctx},
    describe,
    output::{fields, OutputFormat, Report},
    units::when,
};

#[derive(Args)]
#[command(
    after_help = "Examples:\n  tensorgrid worker show\n  tensorgrid worker show --operator 7xKX…3fQe"
)]
pub struct ShowArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// The operator's wallet (default: yours).
    #[arg(long, value_parser = crate::chain_args::address)]
    operator: Option<Pubkey>,
    /// Payments, penalties and slashes shown, the latest first (read from the worker
    /// account's transaction history).
    #[arg(long, default_value_t = 10)]
    history: usize,
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
    /// The latest payments, penalties and slashes, newest first: kind, job, lamports,
    /// signature.
    movements: Vec<Entry>,
    #[serde(skip)]
    now: i64,
    /// The market's unit (every amount above is in its raw units).
    #[serde(skip)]
    unit: crate::units::Unit,
}

/// One movement, as a person reads it.
fn movement(e: &Entry, unit: crate::units::Unit) -> String {
    let what = e.kind.describe(&unit.show(e.lamports));
    format!("{what:<44} job {}", e.job)
}

impl Report for Shown {
    fn display(&self) -> String {
        let recent = if self.movements.is_empty() {
            "none in the recent history".to_string()
        } else {
            self.movements
                .iter()
                .map(|e| movement(e, self.unit))
                .collect::<Vec<_>>()
                .join("\n                  ")
        };
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
            ("stake", self.unit.show(self.stake)),
            (
                "earnings",
                format!(
                    "{} (withdraw with `tensorgrid worker update --withdraw-earnings`)",
                    self.unit.show(self.earnings)
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
                    "{} / {}",
                    self.unit.show(self.total_earned),
                    self.unit.show(self.total_slashed)
                ),
            ),
            ("recent", recent),
        ])
    }
}

/// The worker account's latest `n` payments, penalties and slashes, newest first.
async fn movements(ctx: &Ctx, worker: &Pubkey, n: usize) -> Result<Vec<Entry>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    // The account's transactions, newest first, until `n` movements are found (most of a
    // worker's transactions are claims and submissions, which move nothing).
    let sigs = ctx.chain.signatures_for(worker, 200).await?;
    for sig in sigs.iter().rev() {
        let o = ctx.chain.outcome(sig).await?;
        let mut found = entries_of(&o.events, worker, &sig.to_string(), o.slot);
        found.reverse();
        out.extend(found);
        if out.len() >= n {
            out.truncate(n);
            break;
        }
    }
    Ok(out)
}

pub async fn run(a: ShowArgs, out: OutputFormat) -> Result<std::process::ExitCode> {
    let ctx = Ctx::new(&a.chain, out, true)?;
    let operator = match a.operator {
        Some(o) => o,
        None => ctx.keypair()?.pubkey(),
    };
    let (market, market_state) = ctx.market().await?;
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
        movements: movements(&ctx, &key, a.history).await?,
        now: ctx.chain.chain_time().await?,
        unit: crate::units::Unit::of(&market_state),
    };
    ctx.out.emit(&shown)?;
    Ok(std::process::ExitCode::SUCCESS)
}
