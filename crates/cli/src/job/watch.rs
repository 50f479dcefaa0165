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
use tensorgrid_artifacts::{
    fetch,
    progress::{self, Progress},
    ReadPolicy,
};
use tensorgrid_client::{anchor_lang::prelude::Pubkey, events::Event, state::JobState};

use super::{show::HistoryEntry, JobRef};
use crate::{
    chain_args::{ChainArgs, Ctx},
    describe,
    output::OutputFormat,
    output::Report,
    units::{parse_duration, when},
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
    /// The worker's last progress report seen (its word, not the chain's).
    progress: Option<Progress>,
}

/// How often the worker's progress file is read while the job is claimed.
const PROGRESS_POLL: Duration = Duration::from_secs(3);
/// The longest a progress read may take.
const PROGRESS_READ_LIMIT: Duration = Duration::from_secs(5);

/// The worker's progress while it trains: where it publishes it (named in its claim
/// transaction's memo) and the last report shown.
#[derive(Default)]
struct Following {
    /// The job watched: a report about another is ignored.
    job: String,
    uri: Option<String>,
    last: Option<Progress>,
    read_at: Option<Instant>,
}

impl Following {
    /// Reads the progress file if it is time, and says what changed.
    async fn poll(&mut self, ctx: &Ctx) {
        let Some(uri) = &self.uri else { return };
        if self.read_at.is_some_and(|t| t.elapsed() < PROGRESS_POLL) {
            return;
        }
        self.read_at = Some(Instant::now());
        // The worker chose this URI: read with the poster's credentials only from the poster's
        // own store bucket (TENSORGRID_STORE), anonymously anywhere else; briefly (a slow
        // server must not hold up the watch); and only a report about this job.
        let own_bucket = std::env::var("TENSORGRID_STORE")
            .ok()
            .and_then(|s| Some(s.strip_prefix("s3://")?.split('/').next()?.to_string()))
            .filter(|b| !b.is_empty());
        let policy = ReadPolicy::default().sign_only(own_bucket.into_iter().collect());
        let read = tokio::time::timeout(
            PROGRESS_READ_LIMIT,
            fetch(uri, progress::MAX_BYTES, &policy),
        )
        .await;
        let Ok(Ok(bytes)) = read else {
            return;
        };
        let Some(p) = Progress::parse(&bytes).filter(|p| p.job == self.job) else {
            return;
        };
        let changed = self
            .last
            .as_ref()
            .is_none_or(|l| (&l.stage, l.step) != (&p.stage, p.step));
        if changed {
            ctx.out.note(describe::clean(&progress_line(&p)));
            self.last = Some(p);
        }
    }
}

/// "progress   training step 400/1000 (40 %), eval loss 0.3120, about 2 min left".
fn progress_line(p: &Progress) -> String {
    let pct = p
        .step
        .saturating_mul(100)
        .checked_div(p.total_steps)
        .map_or(String::new(), |pct| format!(" ({pct} %)"));
    let loss = p
        .eval_loss
        .map_or(String::new(), |l| format!(", eval loss {l:.4}"));
    let eta = match (p.stage.as_str(), p.eta_s) {
        ("training", Some(e)) => format!(", {}", tensorgrid_worker::status::eta_text(e)),
        _ => String::new(),
    };
    format!(
        "{:<10} {} step {}/{}{pct}{loss}{eta} (the worker's report)",
        "progress", p.stage, p.step, p.total_steps
    )
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
    let mut following = Following {
        job: address.to_string(),
        ..Following::default()
    };
    // Passes that found the job closed without its end in the history read.
    let mut closed_unexplained = 0;
    ctx.out.note(format!(
        "watching job {address} (Ctrl-C stops watching, not the job)"
    ));
    loop {
        let job = ctx.chain.job(&address).await?;
        if let Some(j) = &job {
            ctx.use_job_unit(j).await?;
        }
        let exists = job.is_some();
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
                match e {
                    Event::JobClaimed(_) => {
                        following = Following {
                            job: address.to_string(),
                            uri: progress::uri_in_logs(&tx.logs),
                            ..Following::default()
                        }
                    }
                    Event::JobAbandoned(_) | Event::JobReclaimed(_) | Event::JobSubmitted(_) => {
                        following.uri = None
                    }
                    _ => {}
                }
                let line = describe::event(e);
                ctx.out.note(format!(
                    "{:<10} {}  (slot {}, {})",
                    line.event, line.summary, tx.slot, tx.signature
                ));
                if let Event::JobSubmitted(sub) = e {
                    // Still waiting for the poster (not already settled in this batch).
                    let open = ctx.chain.job(&address).await?;
                    if open.is_some_and(|j| j.state == JobState::Submitted) {
                        let now = ctx.chain.chain_time().await?;
                        ctx.out.note(format!(
                            "{:<10} check it with `tensorgrid job verify {address}`, then `job accept` or `job dispute` before {}; after that anyone may finalize it and the worker is paid",
                            "next",
                            when(sub.challenge_ends_at, now)
                        ));
                    }
                }
                history.push(HistoryEntry {
                    signature: tx.signature.to_string(),
                    slot: tx.slot,
                    event: line,
                });
            }
        }
        if job.as_ref().is_some_and(|j| j.state == JobState::Claimed) {
            following.poll(ctx).await;
        }
        if !exists {
            if seen.is_empty() {
                bail!("job {address} does not exist on {}", ctx.chain.active_url());
            }
            if outcome.is_some() {
                break;
            }
            // Closed, but its end is older than the transactions read (or buried under
            // others): say so rather than wait forever.
            closed_unexplained += 1;
            if closed_unexplained >= 3 {
                bail!(
                    "job {address} is closed, but how it ended is not in its latest {} transactions: `tensorgrid job show {address}`",
                    super::show::HISTORY_LIMIT
                );
            }
        }
        if timeout.is_some_and(|t| started.elapsed() > t) {
            let watched = Watched {
                job: address.to_string(),
                outcome: None,
                history,
                progress: following.last,
            };
            return Ok((ExitCode::FAILURE, watched));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let watched = Watched {
        job: address.to_string(),
        outcome,
        history,
        progress: following.last,
    };
    Ok((ExitCode::SUCCESS, watched))
}
