//! `job watch`: the job's transitions as they land, each with its signature, until the job
//! is closed (paid, refunded or cancelled).

use std::{
    collections::HashSet,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;
use tensorgrid_client::anchor_lang::prelude::Pubkey;

use super::{show::HistoryEntry, JobRef};
use crate::{
    chain_args::{ChainArgs, Ctx},
    describe,
    output::OutputFormat,
    output::Report,
    units::parse_duration,
};

#[derive(Args)]
#[command(after_help = "Example:\n  tensorgrid job watch 3 --timeout 2h")]
pub struct WatchArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// The job: its address, or a job id (yours, or --poster's).
    job: JobRef,
    /// The poster, when the job is given by id (default: the keypair's wallet).
    #[arg(long, value_parser = crate::chain_args::address)]
    poster: Option<Pubkey>,
    /// Give up after this long (e.g. 30m); default: wait as long as it takes.
    #[arg(long)]
    timeout: Option<String>,
}

#[derive(Serialize)]
pub struct Watched {
    job: String,
    outcome: Option<&'static str>,
    history: Vec<HistoryEntry>,
}

impl Report for Watched {
    fn display(&self) -> String {
        format!(
            "job {}: {}\n",
            self.job,
            self.outcome.unwrap_or("still open")
        )
    }
}

pub async fn run(a: WatchArgs, out: OutputFormat) -> Result<ExitCode> {
    let ctx = Ctx::new(&a.chain, out, true)?;
    let address = a.job.address(&ctx, a.poster).await?;
    let timeout = a.timeout.as_deref().map(parse_duration).transpose()?;
    let timeout = timeout.map(|s| Duration::from_secs(s as u64));
    let (code, watched) = follow(&ctx, address, timeout).await?;
    ctx.out.emit(&watched)?;
    Ok(code)
}

/// Prints each new event of the job (stderr, for a person) until it closes; exit code 0 when
/// paid, cancelled or refunded, 1 on timeout. The caller emits the report.
pub async fn follow(
    ctx: &Ctx,
    address: Pubkey,
    timeout: Option<Duration>,
) -> Result<(ExitCode, Watched)> {
    let started = Instant::now();
    let mut seen: HashSet<String> = HashSet::new();
    let mut history: Vec<HistoryEntry> = Vec::new();
    let mut outcome = None;
    ctx.out.note(format!(
        "watching job {address} (Ctrl-C stops watching, not the job)"
    ));
    loop {
        let exists = ctx.chain.job(&address).await?.is_some();
        for sig in ctx
            .chain
            .signatures_for(&address, super::show::HISTORY_LIMIT)
            .await?
        {
            if !seen.insert(sig.to_string()) {
                continue;
            }
            let tx = ctx.chain.outcome(&sig).await?;
            for e in tx
                .events
                .iter()
                .filter(|e| describe::event_job(e) == Some(address))
            {
                if let Some(end) = describe::terminal(e) {
                    outcome = Some(end);
                }
                let line = describe::event(e);
                ctx.out.note(format!(
                    "{:<10} {}  (slot {}, {})",
                    line.event, line.summary, tx.slot, tx.signature
                ));
                history.push(HistoryEntry {
                    signature: tx.signature.to_string(),
                    slot: tx.slot,
                    event: line,
                });
            }
        }
        if !exists {
            if seen.is_empty() {
                bail!("job {address} does not exist on {}", ctx.chain.active_url());
            }
            if outcome.is_some() {
                break;
            }
        }
        if timeout.is_some_and(|t| started.elapsed() > t) {
            let watched = Watched {
                job: address.to_string(),
                outcome: None,
                history,
            };
            return Ok((ExitCode::FAILURE, watched));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let watched = Watched {
        job: address.to_string(),
        outcome,
        history,
    };
    Ok((ExitCode::SUCCESS, watched))
}
