use anyhow::Result;
use clap::Args;
use serde::Serialize;
use tensorgrid_client::{
    anchor_lang::prelude::Pubkey,
    state::{Dispute, DisputePhase, VoteState},
};

use super::{JobRef, JobView};
use crate::{
    chain_args::{ChainArgs, Ctx},
    describe::{self, EventLine},
    output::{fields, OutputFormat, Report},
    units::{money, when},
};

/// Transactions of a job's history read at most.
pub const HISTORY_LIMIT: usize = 100;

#[derive(Args)]
#[command(
    after_help = "Examples:\n  tensorgrid job show 3                 # your job id 3\n  tensorgrid job show 9xQe…Lk2m          # any job by address"
)]
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
    /// The job's address (a string in every command's output).
    job: String,
    /// The job account; `null` once the job is closed (paid, refunded or cancelled).
    account: Option<JobView>,
    worker_hardware: Option<String>,
    /// The open dispute, if the job is disputed.
    dispute: Option<DisputeView>,
    /// How a closed job ended.
    outcome: Option<&'static str>,
    history: Vec<HistoryEntry>,
    #[serde(skip)]
    now: i64,
}

/// A dispute as the chain holds it, and how anyone checks the disputed segment.
#[derive(Serialize)]
struct DisputeView {
    account: String,
    segment: u32,
    start_hash: String,
    end_hash: String,
    bond: u64,
    verifier_fee: u64,
    /// drawing, voting or escalated.
    phase: String,
    seats: Vec<SeatView>,
    commit_ends_at: Option<i64>,
    reveal_ends_at: Option<i64>,
    /// The command that re-runs the disputed segment here.
    check: String,
}

#[derive(Serialize)]
struct SeatView {
    worker: String,
    /// drawn, committed or revealed.
    vote: String,
    revealed: Option<String>,
}

impl DisputeView {
    fn new(account: &Pubkey, job: &Pubkey, d: &Dispute) -> Self {
        let drawn = d.phase == DisputePhase::Voting;
        Self {
            account: account.to_string(),
            segment: d.segment,
            start_hash: hex::encode(d.start_hash),
            end_hash: hex::encode(d.end_hash),
            bond: d.bond,
            verifier_fee: d.verifier_fee,
            phase: format!("{:?}", d.phase).to_lowercase(),
            seats: if drawn {
                d.seats
                    .iter()
                    .map(|s| SeatView {
                        worker: s.worker.to_string(),
                        vote: format!("{:?}", s.vote).to_lowercase(),
                        revealed: (s.vote == VoteState::Revealed).then(|| hex::encode(s.revealed)),
                    })
                    .collect()
            } else {
                Vec::new()
            },
            commit_ends_at: drawn.then_some(d.commit_ends_at),
            reveal_ends_at: drawn.then_some(d.reveal_ends_at),
            check: format!("tensorgrid job verify {job} --segments {}", d.segment),
        }
    }

    fn display(&self, now: i64) -> String {
        let mut rows = vec![
            ("disputed segment", self.segment.to_string()),
            ("committed end", self.end_hash.clone()),
            ("bond", money(self.bond)),
            ("verifiers", self.phase.clone()),
        ];
        for s in &self.seats {
            let vote = match &s.revealed {
                Some(h) => format!("revealed {h}"),
                None => s.vote.clone(),
            };
            rows.push(("  seat", format!("{} {vote}", s.worker)));
        }
        if let (Some(c), Some(r)) = (self.commit_ends_at, self.reveal_ends_at) {
            rows.push(("commits until", when(c, now)));
            rows.push(("reveals until", when(r, now)));
        }
        rows.push(("check it yourself", self.check.clone()));
        fields(&rows)
    }
}

impl Report for Shown {
    fn display(&self) -> String {
        let mut s = match &self.account {
            Some(j) => j.display(self.now, self.worker_hardware.clone()),
            None => format!(
                "job {}: closed{}\n",
                self.job,
                self.outcome.map_or(String::new(), |o| format!(" ({o})"))
            ),
        };
        if let Some(d) = &self.dispute {
            s.push_str(&d.display(self.now));
        }
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

/// A job that never existed: for an id, whose ids were looked at and which exist.
async fn not_found(
    ctx: &Ctx,
    job: &JobRef,
    poster: Option<Pubkey>,
    address: &Pubkey,
) -> anyhow::Error {
    let url = ctx.chain.active_url();
    let JobRef::Id(id) = job else {
        return anyhow::anyhow!("job {address} does not exist on {url}");
    };
    let who = match poster {
        Some(p) => Ok(p),
        None => ctx.keypair().map(|k| k.pubkey()),
    };
    let (Ok(who), Ok((market, _))) = (who, ctx.market().await) else {
        return anyhow::anyhow!("job id {id} (address {address}) does not exist on {url}");
    };
    let posted = match ctx.chain.poster(&market, &who).await {
        Ok(Some(p)) if p.next_job_id > 0 => format!(
            "its ids there run from 0 to {} (`tensorgrid job list --mine --all` lists them)",
            p.next_job_id - 1
        ),
        Ok(_) => "it has posted no job there".into(),
        Err(e) => format!("its poster account could not be read: {e}"),
    };
    anyhow::anyhow!(
        "{who} has no job {id} in market {market} (address {address}): {posted}; pass --poster for another poster's"
    )
}

pub async fn run(a: ShowArgs, out: OutputFormat) -> Result<std::process::ExitCode> {
    let ctx = Ctx::new(&a.chain, out, true)?;
    let address = a.job.address(&ctx, a.poster).await?;
    let job = ctx.chain.job(&address).await?;
    if let Some(j) = &job {
        ctx.use_job_unit(j).await?;
    }
    let worker_hardware = match job.as_ref().and_then(|j| j.holder()) {
        Some(w) => ctx
            .chain
            .worker(&w)
            .await?
            .map(|w| describe::hardware(&w.hardware)),
        None => None,
    };
    let (history, outcome) = history(&ctx, &address).await?;
    let dispute_key = tensorgrid_client::pda::dispute(&address);
    let dispute = ctx
        .chain
        .dispute_of(&address)
        .await?
        .map(|d| DisputeView::new(&dispute_key, &address, &d));
    if job.is_none() && history.is_empty() {
        return Err(not_found(&ctx, &a.job, a.poster, &address).await);
    }
    let shown = Shown {
        job: address.to_string(),
        account: job.as_ref().map(|j| JobView::new(&address, j)),
        worker_hardware,
        dispute,
        outcome: if job.is_some() { None } else { outcome },
        history,
        now: ctx.chain.chain_time().await?,
    };
    ctx.out.emit(&shown)?;
    Ok(std::process::ExitCode::SUCCESS)
}
