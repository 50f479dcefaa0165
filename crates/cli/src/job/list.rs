use anyhow::Result;
use clap::{Args, ValueEnum};
use serde::Serialize;
use tensorgrid_client::{
    anchor_lang::prelude::Pubkey,
    pda,
    rpc::{JobFilter, JobQuery},
    state::JobState,
};

use super::JobView;
use crate::{
    chain_args::{ChainArgs, Ctx},
    output::{OutputFormat, Report},
    units::{money, relative},
};

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum StateArg {
    Open,
    Claimed,
    Submitted,
    Disputed,
}

#[derive(Args)]
#[command(
    after_help = "Examples:\n  tensorgrid job list --state open\n  tensorgrid job list --mine --all     # your jobs, closed ones too"
)]
pub struct ListArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// Only jobs in this state.
    #[arg(long, value_enum)]
    state: Option<StateArg>,
    /// Only jobs you posted.
    #[arg(long)]
    mine: bool,
    /// Closed jobs too (paid, refunded, cancelled), read from the chain's history: the
    /// market's latest --limit transactions, or with --mine all your posts' ones.
    #[arg(long, conflicts_with = "state")]
    all: bool,
    /// Transactions of history read for --all.
    #[arg(long, default_value_t = 200, requires = "all")]
    limit: usize,
}

/// A job whose account is gone: what its history says.
#[derive(Serialize)]
struct ClosedJob {
    job: String,
    job_id: u64,
    poster: String,
    reward: u64,
    /// paid, refunded or cancelled; `null` if the end is older than the history read.
    outcome: Option<&'static str>,
    posted_slot: u64,
}

#[derive(Serialize)]
struct JobList {
    market: String,
    now: i64,
    jobs: Vec<JobView>,
    /// With --all: the jobs that ended, newest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    closed: Option<Vec<ClosedJob>>,
}

impl JobList {
    fn closed_display(&self) -> String {
        let Some(closed) = self.closed.as_ref().filter(|c| !c.is_empty()) else {
            return String::new();
        };
        let mut s = format!(
            "\nclosed:\n{:<44}  {:>20}  {:<9}  {:>12}\n",
            "JOB", "ID", "OUTCOME", "REWARD"
        );
        for c in closed {
            s.push_str(&format!(
                "{:<44}  {:>20}  {:<9}  {:>12}\n",
                c.job,
                c.job_id,
                c.outcome.unwrap_or("closed"),
                money(c.reward)
            ));
        }
        s
    }
}

impl Report for JobList {
    fn display(&self) -> String {
        if self.jobs.is_empty() {
            let hint = if self.closed.is_none() {
                " (add --all for closed jobs)"
            } else {
                ""
            };
            return format!(
                "no open jobs in market {}{hint}\n{}",
                self.market,
                self.closed_display()
            );
        }
        let mut s = format!(
            "{:<44}  {:>20}  {:<9}  {:>12}  {}\n",
            "JOB", "ID", "STATE", "REWARD", "DUE"
        );
        for j in &self.jobs {
            let due = match j.state {
                "claimed" => format!(
                    "deadline {}",
                    relative(j.deadline.unwrap_or(0).saturating_sub(self.now))
                ),
                "submitted" => format!(
                    "dispute window ends {}",
                    relative(j.challenge_ends_at.unwrap_or(0).saturating_sub(self.now))
                ),
                "disputed" => format!(
                    "ruling due {}",
                    relative(j.dispute_ends_at.unwrap_or(0).saturating_sub(self.now))
                ),
                _ => format!("posted {}", relative(j.created_at.saturating_sub(self.now))),
            };
            s.push_str(&format!(
                "{:<44}  {:>20}  {:<9}  {:>12}  {}\n",
                j.address,
                j.job_id,
                j.state,
                money(j.reward),
                due
            ));
        }
        s.push_str(&self.closed_display());
        s
    }
}

/// How a closed job ended, from its newest transactions only (its last one closed it): a few
/// reads per job, however long its history.
async fn ending(ctx: &Ctx, job: &Pubkey) -> Result<Option<&'static str>> {
    const NEWEST: usize = 8;
    for sig in ctx.chain.signatures_for(job, NEWEST).await?.iter().rev() {
        let tx = ctx.chain.outcome(sig).await?;
        let end = tx
            .events
            .iter()
            .filter(|e| crate::describe::event_job(e) == Some(*job))
            .find_map(crate::describe::terminal);
        if end.is_some() {
            return Ok(end);
        }
    }
    Ok(None)
}

/// The jobs posted in the history of `source` (the market, or a poster account) whose
/// accounts are gone, each with how it ended (from its own history).
async fn closed_jobs(
    ctx: &Ctx,
    source: &Pubkey,
    limit: usize,
    live: &std::collections::HashSet<Pubkey>,
    poster: Option<Pubkey>,
) -> Result<Vec<ClosedJob>> {
    let mut out = Vec::new();
    for tx in ctx.chain.history(source, limit).await? {
        for e in &tx.events {
            let tensorgrid_client::events::Event::JobPosted(p) = e else {
                continue;
            };
            if live.contains(&p.job) || poster.is_some_and(|w| w != p.poster) {
                continue;
            }
            let outcome = ending(ctx, &p.job).await?;
            out.push(ClosedJob {
                job: p.job.to_string(),
                job_id: p.job_id,
                poster: p.poster.to_string(),
                reward: p.reward,
                outcome,
                posted_slot: tx.slot,
            });
        }
    }
    out.sort_by_key(|c| std::cmp::Reverse(c.posted_slot));
    Ok(out)
}

pub async fn run(a: ListArgs, out: OutputFormat) -> Result<std::process::ExitCode> {
    let ctx = Ctx::new(&a.chain, out, true)?;
    let (market, _) = ctx.market().await?;
    let mut query = JobQuery::all().and(JobFilter::Market(market));
    if let Some(s) = a.state {
        query = query.and(JobFilter::State(match s {
            StateArg::Open => JobState::Open,
            StateArg::Claimed => JobState::Claimed,
            StateArg::Submitted => JobState::Submitted,
            StateArg::Disputed => JobState::Disputed,
        }));
    }
    let me = if a.mine {
        Some(ctx.keypair()?.pubkey())
    } else {
        None
    };
    if let Some(me) = me {
        query = query.and(JobFilter::Poster(me));
    }
    let mut entries = ctx.chain.jobs(&query).await?;
    entries.sort_by_key(|e| (e.job.created_at, e.job.job_id));
    let closed = if a.all {
        let live = entries.iter().map(|e| e.pubkey).collect();
        // A poster account is written by each of its posts only: its history is exactly
        // the poster's jobs, however busy the market.
        let source = me.map_or(market, |w| pda::poster(&market, &w).0);
        Some(closed_jobs(&ctx, &source, a.limit, &live, me).await?)
    } else {
        None
    };
    let list = JobList {
        market: market.to_string(),
        now: ctx.chain.chain_time().await?,
        jobs: entries
            .iter()
            .map(|e| JobView::new(&e.pubkey, &e.job))
            .collect(),
        closed,
    };
    ctx.out.emit(&list)?;
    Ok(std::process::ExitCode::SUCCESS)
}
