//! `tensorgrid job …`: a poster's, a crank's and an arbiter's commands on jobs.

mod accept;
mod cancel;
mod crank;
mod dispute;
mod finalize;
mod list;
mod post;
mod preflight;
mod reclaim;
mod refunds;
mod resolve;
mod show;
mod verify;
mod view;
mod watch;

use std::str::FromStr;

use anyhow::{anyhow, bail, Result};
use clap::Subcommand;
use tensorgrid_client::{anchor_lang::prelude::Pubkey, pda, state::Job};

use crate::{chain_args::Ctx, output::OutputFormat};

pub use view::JobView;

#[derive(Subcommand)]
pub enum JobCommand {
    /// Validate a job spec, upload it, and post the job with its reward in escrow.
    Post(post::PostArgs),
    /// Jobs in the market (all states, or --state), optionally only yours.
    List(list::ListArgs),
    /// A job's state, worker, deadlines, money and history.
    Show(show::ShowArgs),
    /// Follow a job live until it is paid, refunded or cancelled.
    Watch(watch::WatchArgs),
    /// Download the result, check it against the chain, re-evaluate (or re-train) the model.
    Verify(verify::VerifyArgs),
    /// Accept a submitted result: pays the worker now.
    Accept(accept::AcceptArgs),
    /// Dispute one training segment of a submitted result within the challenge window,
    /// posting the job's bond; verifiers drawn by stake re-run it and their majority decides.
    Dispute(dispute::DisputeArgs),
    /// Cancel an open job: reward and rent back.
    Cancel(cancel::CancelArgs),
    /// Pay a submitted job whose challenge window passed, or move a dispute on: draw its
    /// verifiers, settle their vote, apply the timeout (anyone may; --all sweeps).
    Finalize(finalize::FinalizeArgs),
    /// Reopen a claimed job whose deadline passed, slashing the worker (anyone may, for a
    /// bounty; --all sweeps).
    Reclaim(reclaim::ReclaimArgs),
    /// Rule on a dispute the verifiers could not settle (market authority).
    Resolve(resolve::ResolveArgs),
    /// In a token market: refunds, compensation and bonds settlements credited to you as a
    /// poster (`--withdraw` takes them out).
    Refunds(refunds::RefundsArgs),
}

impl JobCommand {
    pub async fn run(self, out: OutputFormat) -> Result<std::process::ExitCode> {
        match self {
            JobCommand::Post(a) => post::run(a, out).await,
            JobCommand::List(a) => list::run(a, out).await,
            JobCommand::Show(a) => show::run(a, out).await,
            JobCommand::Watch(a) => watch::run(a, out).await,
            JobCommand::Verify(a) => verify::run(a, out).await,
            JobCommand::Accept(a) => accept::run(a, out).await,
            JobCommand::Dispute(a) => dispute::run(a, out).await,
            JobCommand::Cancel(a) => cancel::run(a, out).await,
            JobCommand::Finalize(a) => finalize::run(a, out).await,
            JobCommand::Reclaim(a) => reclaim::run(a, out).await,
            JobCommand::Refunds(a) => refunds::run(a, out).await,
            JobCommand::Resolve(a) => resolve::run(a, out).await,
        }
    }
}

/// A job named on the command line: its address, or the poster's job id in the market
/// (the poster being `--poster` or the keypair's owner).
#[derive(Debug, Clone)]
pub enum JobRef {
    Address(Pubkey),
    Id(u64),
}

impl FromStr for JobRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(id) = s.parse::<u64>() {
            return Ok(JobRef::Id(id));
        }
        Pubkey::from_str(s)
            .map(JobRef::Address)
            .map_err(|_| format!("{s:?} is neither a job address nor a job id"))
    }
}

impl JobRef {
    /// The job's address.
    pub async fn address(&self, ctx: &Ctx, poster: Option<Pubkey>) -> Result<Pubkey> {
        match self {
            JobRef::Address(a) => Ok(*a),
            JobRef::Id(id) => {
                let (market, _) = ctx.market().await?;
                let poster = match poster {
                    Some(p) => p,
                    None => solana_signer::Signer::pubkey(&ctx.keypair().map_err(|e| {
                        anyhow!("{e:#} (a job id is looked up among your jobs: pass the job's address or --poster)")
                    })?),
                };
                Ok(pda::job(&market, &poster, *id).0)
            }
        }
    }

    /// The job's address and its account, checked for `action` by `signer` (state, deadlines,
    /// who may): a refusal says where the job is and what to do instead.
    pub async fn load_for(
        &self,
        ctx: &Ctx,
        poster: Option<Pubkey>,
        action: preflight::Action,
        signer: &Pubkey,
    ) -> Result<(Pubkey, Job)> {
        let (address, job) = self.load(ctx, poster).await?;
        let now = ctx.chain.chain_time().await?;
        let authority = match action {
            preflight::Action::Resolve => ctx.market_of(&job).await?.authority,
            _ => Pubkey::default(),
        };
        preflight::check(action, &address, &job, signer, &authority, now)?;
        Ok((address, job))
    }

    /// The job's address and its account, which must still exist.
    pub async fn load(&self, ctx: &Ctx, poster: Option<Pubkey>) -> Result<(Pubkey, Job)> {
        let address = self.address(ctx, poster).await?;
        match ctx.chain.job(&address).await? {
            Some(job) => {
                ctx.use_job_unit(&job).await?;
                Ok((address, job))
            }
            None => bail!(
                "job {address} does not exist (any more): `tensorgrid job show {address}` shows its history"
            ),
        }
    }
}
