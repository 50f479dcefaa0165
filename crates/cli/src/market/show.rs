use anyhow::Result;
use clap::Args;
use serde::Serialize;
use tensorgrid_client::{rpc::JobQuery, state::JobState};

use super::params::ParamsView;
use crate::{
    chain_args::{ChainArgs, Ctx},
    output::{fields, OutputFormat, Report},
};

#[derive(Args)]
#[command(
    after_help = "Examples:\n  tensorgrid market show\n  tensorgrid market show --market 5mKt…Qw9z -u devnet"
)]
pub struct ShowArgs {
    #[command(flatten)]
    chain: ChainArgs,
}

#[derive(Serialize)]
struct Shown {
    market: String,
    authority: String,
    market_id: u64,
    paused: bool,
    /// The mint the market is priced in; absent for SOL.
    #[serde(skip_serializing_if = "Option::is_none")]
    mint: Option<String>,
    /// Decimals of the market's unit (9 for SOL): every amount here is in its raw units.
    decimals: u8,
    params: ParamsView,
    jobs_posted: u64,
    fees_unclaimed: u64,
    fees_withdrawn: u64,
    workers: usize,
    jobs_open: usize,
    jobs_in_flight: usize,
}

impl Report for Shown {
    fn display(&self) -> String {
        let mut s = fields(&[
            ("market", self.market.clone()),
            ("authority", self.authority.clone()),
            ("market id", self.market_id.to_string()),
            (
                "status",
                if self.paused { "paused" } else { "taking jobs" }.into(),
            ),
            (
                "priced in",
                self.mint.as_ref().map_or("SOL".into(), |m| {
                    format!("token mint {m} ({} decimals)", self.decimals)
                }),
            ),
            ("jobs posted", self.jobs_posted.to_string()),
            ("jobs open", self.jobs_open.to_string()),
            ("jobs in flight", self.jobs_in_flight.to_string()),
            ("workers", self.workers.to_string()),
            ("fees unclaimed", self.params.unit.show(self.fees_unclaimed)),
            ("fees withdrawn", self.params.unit.show(self.fees_withdrawn)),
        ]);
        s.push_str("parameters:\n");
        for line in self.params.display().lines() {
            s.push_str(&format!("  {line}\n"));
        }
        s
    }
}

pub async fn run(a: ShowArgs, out: OutputFormat) -> Result<std::process::ExitCode> {
    let ctx = Ctx::new(&a.chain, out, true)?;
    let (key, m) = ctx.market().await?;
    let jobs = ctx
        .chain
        .jobs(&JobQuery::all().and(tensorgrid_client::rpc::JobFilter::Market(key)))
        .await?;
    let shown = Shown {
        market: key.to_string(),
        authority: m.authority.to_string(),
        market_id: m.market_id,
        paused: m.paused,
        mint: (m.mint != Default::default()).then(|| m.mint.to_string()),
        decimals: m.decimals,
        params: ParamsView::of(&m.params, crate::units::Unit::of(&m)),
        jobs_posted: m.jobs_posted,
        fees_unclaimed: m.fees_unclaimed,
        fees_withdrawn: m.fees_withdrawn,
        workers: ctx.chain.workers_in(key).await?.len(),
        jobs_open: jobs
            .iter()
            .filter(|j| j.job.state == JobState::Open)
            .count(),
        jobs_in_flight: jobs
            .iter()
            .filter(|j| j.job.state != JobState::Open)
            .count(),
    };
    ctx.out.emit(&shown)?;
    Ok(std::process::ExitCode::SUCCESS)
}
