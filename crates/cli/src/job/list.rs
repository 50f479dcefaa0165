use anyhow::Result;
use clap::{Args, ValueEnum};
use serde::Serialize;
use solana_signer::Signer;
use tensorgrid_client::{
    rpc::{JobFilter, JobQuery},
    state::JobState,
};

use super::JobView;
use crate::{
    chain_args::{ChainArgs, Ctx},
    output::{OutputFormat, Report},
    units::{relative, sol},
};

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum StateArg {
    Open,
    Claimed,
    Submitted,
    Disputed,
}

#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// Only jobs in this state.
    #[arg(long, value_enum)]
    state: Option<StateArg>,
    /// Only jobs you posted.
    #[arg(long)]
    mine: bool,
}

#[derive(Serialize)]
struct JobList {
    market: String,
    now: i64,
    jobs: Vec<JobView>,
}

impl Report for JobList {
    fn display(&self) -> String {
        if self.jobs.is_empty() {
            return format!("no jobs in market {}\n", self.market);
        }
        let mut s = format!(
            "{:<44}  {:>20}  {:<9}  {:>12}  {}\n",
            "JOB", "ID", "STATE", "REWARD SOL", "DUE"
        );
        for j in &self.jobs {
            let due = match j.state {
                "claimed" => format!("deadline {}", relative(j.deadline - self.now)),
                "submitted" => format!(
                    "dispute window ends {}",
                    relative(j.challenge_ends_at - self.now)
                ),
                "disputed" => format!("ruling due {}", relative(j.dispute_ends_at - self.now)),
                _ => format!("posted {}", relative(j.created_at - self.now)),
            };
            s.push_str(&format!(
                "{:<44}  {:>20}  {:<9}  {:>12}  {}\n",
                j.address,
                j.job_id,
                j.state,
                sol(j.reward),
                due
            ));
        }
        s
    }
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
    if a.mine {
        query = query.and(JobFilter::Poster(ctx.keypair()?.pubkey()));
    }
    let mut entries = ctx.chain.jobs(&query).await?;
    entries.sort_by_key(|e| (e.job.created_at, e.job.job_id));
    let list = JobList {
        market: market.to_string(),
        now: ctx.chain.chain_time().await?,
        jobs: entries
            .iter()
            .map(|e| JobView::new(&e.pubkey, &e.job))
            .collect(),
    };
    ctx.out.emit(&list)?;
    Ok(std::process::ExitCode::SUCCESS)
}
