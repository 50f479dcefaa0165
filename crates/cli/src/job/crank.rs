//! Sweeps for a crank: settle every job that is due, one transaction each, carrying on past
//! jobs someone else settled first.

use clap::Args;
use serde::Serialize;
use solana_signer::Signer;
use tensorgrid_client::{anchor_lang::prelude::Pubkey, instructions::Instruction, state::Job};

use crate::{
    chain_args::Ctx,
    output::Report,
    tx::{self, Sent},
};

/// One job, or `--all` of the market's that are due.
#[derive(Args, Debug, Clone)]
pub struct Target {
    /// The job's address (or your job id).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub job: Option<super::JobRef>,
    /// Every job of the market that is due.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Serialize)]
pub struct Failed {
    pub job: String,
    pub error: String,
}

#[derive(Debug, Serialize)]
pub struct Sweep {
    pub action: &'static str,
    pub candidates: usize,
    pub settled: Vec<Sent>,
    /// Jobs that another party (the worker, another crank) settled between the listing and
    /// this sweep's transaction: not failures.
    pub settled_by_others: Vec<String>,
    pub failed: Vec<Failed>,
}

impl Report for Sweep {
    fn display(&self) -> String {
        let mut s = format!(
            "{}: {} due, {} settled, {} settled by someone else first, {} failed\n",
            self.action,
            self.candidates,
            self.settled.len(),
            self.settled_by_others.len(),
            self.failed.len()
        );
        for d in &self.settled {
            let job = d.field("job").unwrap_or_default();
            s.push_str(&format!("  {job}  {}\n", d.signature));
            for e in &d.events {
                s.push_str(&format!("    {}\n", e.summary));
            }
        }
        for f in &self.failed {
            s.push_str(&format!("  {}  failed: {}\n", f.job, f.error));
        }
        s
    }
}

pub async fn sweep(
    ctx: &Ctx,
    signer: &dyn Signer,
    action: &'static str,
    due: Vec<(Pubkey, Job)>,
    build: impl Fn(&Pubkey, &Job) -> Instruction,
) -> Sweep {
    let mut out = Sweep {
        action,
        candidates: due.len(),
        settled: Vec::new(),
        settled_by_others: Vec::new(),
        failed: Vec::new(),
    };
    for (address, job) in due {
        match tx::send(ctx, &[build(&address, &job)], signer, action).await {
            Ok(sent) => out.settled.push(sent.with("job", address)),
            Err(_) if moved_on(ctx, &address, &job).await => {
                out.settled_by_others.push(address.to_string())
            }
            Err(e) => out.failed.push(Failed {
                job: address.to_string(),
                error: format!("{e:#}"),
            }),
        }
    }
    out
}

/// Whether the job is no longer what the sweep listed (closed, or another state or worker):
/// someone settled it first. A read that fails says nothing, so it counts as not moved on.
async fn moved_on(ctx: &Ctx, address: &Pubkey, listed: &Job) -> bool {
    match ctx.chain.job(address).await {
        Ok(None) => true,
        Ok(Some(now)) => now.state != listed.state || now.worker != listed.worker,
        Err(_) => false,
    }
}
