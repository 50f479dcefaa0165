use anyhow::Result;
use clap::Args;
use serde::Serialize;
use tensorgrid_client::anchor_lang::prelude::Pubkey;

use super::{JobRef, JobView};
use crate::{
    chain_args::{ChainArgs, Ctx},
    describe::{self, EventLine},
    output::{OutputFormat, Report},
};

/// Transactions of a job's history read at most.
pub const HISTORY_LIMIT: usize = 100;

#[derive(Args)]
pub struct ShowArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// The job: its address, or a job id (yours, or --poster's).
    job: JobRef,
    /// The poster, when the job is given by id.
    #[arg(long, value_parser = crate::chain_args::address)]
    poster: Option<Pubkey>,
}

/// One transaction of the history and what it did.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub signature: String,
    pub slot: u64,
    #[serde(flatten)]
    pub event: EventLine,
}

#[derive(Serialize)]
struct Shown {
    address: String,
    /// `null` once the job is closed (paid, refunded or cancelled).
    job: Option<JobView>,
    worker_hardware: Option<String>,
    /// How a closed job ended.
    outcome: Option<&'static str>,
    history: Vec<HistoryEntry>,
    #[serde(skip)]
    now: i64,
}

impl Report for Shown {
    fn display(&self) -> String {
        let mut s = match &self.job {
            Some(j) => j.display(self.now, self.worker_hardware.clone()),
            None => format!(
                "job {}: closed{}\n",
                self.address,
                self.outcome.map_or(String::new(), |o| format!(" ({o})"))
            ),
        };
        if !self.history.is_empty() {
            s.push_str("history:\n");
            for h in &self.history {
                s.push_str(&format!(
                    "  slot {:>8}  {:<10} {}\n              {}\n",
                    h.slot, h.event.event, h.event.summary, h.signature
                ));
            }
        }
        s
    }
}

/// The job's events, oldest first, and how it ended if it did. A job address is used once
/// (`job post` never reuses an id with history), so its history is one job's.
pub async fn history(
    ctx: &Ctx,
    address: &Pubkey,
) -> Result<(Vec<HistoryEntry>, Option<&'static str>)> {
    let mut entries = Vec::new();
    let mut outcome = None;
    for tx in ctx.chain.history(address, HISTORY_LIMIT).await? {
        // A transaction may touch other jobs too (or name this one as a mere account).
        for e in tx
            .events
            .iter()
            .filter(|e| describe::event_job(e) == Some(*address))
        {
            if let Some(end) = describe::terminal(e) {
                outcome = Some(end);
            }
            entries.push(HistoryEntry {
                signature: tx.signature.to_string(),
                slot: tx.slot,
                event: describe::event(e),
            });
        }
    }
    Ok((entries, outcome))
}

pub async fn run(a: ShowArgs, out: OutputFormat) -> Result<std::process::ExitCode> {
    let ctx = Ctx::new(&a.chain, out, true)?;
    let address = a.job.address(&ctx, a.poster).await?;
    let job = ctx.chain.job(&address).await?;
    let worker_hardware = match job.as_ref().and_then(|j| j.holder()) {
        Some(w) => ctx
            .chain
            .worker(&w)
            .await?
            .map(|w| describe::hardware(&w.hardware)),
        None => None,
    };
    let (history, outcome) = history(&ctx, &address).await?;
    if job.is_none() && history.is_empty() {
        anyhow::bail!("job {address} does not exist on {}", ctx.chain.active_url());
    }
    let shown = Shown {
        address: address.to_string(),
        job: job.as_ref().map(|j| JobView::new(&address, j)),
        worker_hardware,
        outcome: if job.is_some() { None } else { outcome },
        history,
        now: ctx.chain.chain_time().await?,
    };
    ctx.out.emit(&shown)?;
    Ok(std::process::ExitCode::SUCCESS)
}
