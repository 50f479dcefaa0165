//! `tensorgrid job dispute`: challenge one segment of a submitted result. The command reads
//! the result's manifest (checked against the on-chain result hash), quotes the segment's
//! committed start and end states from it, posts the job's bond, and draws the verifiers as
//! soon as a later slot has a hash.

use anyhow::{bail, Context, Result};
use clap::Args;
use tensorgrid_artifacts::{fetch, result::MAX_MANIFEST_BYTES, sha256_hex};
use tensorgrid_client::{
    anchor_lang::prelude::Pubkey,
    instructions,
    rpc::{ChainError, Draw},
    state::Job,
    tensorgrid::instructions::JobDisputeArgs,
    TensorgridError,
};

/// The part of a result manifest a dispute quotes (the rest is the verifiers' to check).
#[derive(serde::Deserialize)]
struct Quoted {
    commitments: QuotedCommitments,
}

#[derive(serde::Deserialize)]
struct QuotedCommitments {
    state_hashes: Vec<String>,
}

use super::{preflight::Action, JobRef};
use crate::{
    chain_args::{ChainArgs, Ctx},
    output::OutputFormat,
    store_args::StoreArgs,
    tx,
};

#[derive(Args)]
#[command(
    after_help = "Example:\n  tensorgrid job verify 3 --spot-check 5   # finds segment 17 does not re-run\n  tensorgrid job dispute 3 --segment 17"
)]
pub struct DisputeArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    confirm: crate::chain_args::Confirm,
    /// The job: its address, or your job id.
    job: JobRef,
    /// The training segment that does not re-run to its committed state (as `job verify
    /// --spot-check` names it).
    #[arg(long)]
    segment: u32,
}

pub async fn run(a: DisputeArgs, out: OutputFormat) -> Result<std::process::ExitCode> {
    let ctx = Ctx::new(&a.chain, out, a.confirm.yes)?;
    let signer = ctx.keypair()?;
    let (address, job) = a
        .job
        .load_for(&ctx, None, Action::Dispute, &signer.pubkey())
        .await?;
    let (start_hash, end_hash) = quote(&job, a.segment, &a.store.read_policy()).await?;
    let bond = job.terms.dispute.bond(job.reward)?;
    let fee = job.terms.dispute.verifier_fee(job.reward)?;
    let market = ctx.market_of(&job).await?;
    let unit = crate::units::Unit::of(&market);
    ctx.confirm(&format!(
        "Dispute segment {} of job {address}, posting a bond of {}? Three verifiers drawn by \
         stake re-run it. If they reach the worker's committed state, the bond pays them ({} \
         each) and the rest goes to the worker; if not, you get the reward and the bond back.",
        a.segment,
        unit.show(bond),
        unit.show(fee),
    ))?;
    let keys = instructions::SettleKeys::for_job(address, &job);
    let args = JobDisputeArgs {
        segment: a.segment,
        start_hash,
        end_hash,
        bond,
    };
    let ix = instructions::job_dispute_in(&tensorgrid_client::Currency::of(&market), keys, args);
    let mut sent = tx::send(&ctx, &[ix], &signer, "segment disputed")
        .await?
        .with("job", address)
        .with_number("segment", a.segment.into())
        .with_number("bond", bond);
    // Anyone may draw; the poster does it at once so nobody waits for a crank.
    let follow = format!("tensorgrid job show {address}");
    sent = match draw_when_ready(&ctx, &address).await {
        Ok(Some(ix)) => match tx::send(&ctx, &[ix], &signer, "verifiers drawn").await {
            Ok(drawn) => {
                sent.events.extend(drawn.events);
                sent.fee = sent.fee.saturating_add(drawn.fee);
                sent.with("draw signature", drawn.signature).next(format!(
                    "the verifiers re-run segment {}; follow with `{follow}`",
                    a.segment
                ))
            }
            // Someone (the disputed worker, a verifier) drew first: nothing lost.
            Err(e)
                if matches!(
                    e.downcast_ref::<ChainError>().and_then(ChainError::program_error),
                    Some(TensorgridError::DisputeNotDrawing)
                ) =>
            {
                sent.next(follow)
            }
            Err(e) => return Err(e),
        },
        Ok(None) => sent.next(follow),
        Err(e) => sent.next(format!(
            "the verifiers are not drawn yet ({e:#}): `tensorgrid job finalize {address}` draws them"
        )),
    };
    ctx.out.emit(&sent)?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// The segment's committed start and end states from the result manifest the chain commits
/// to.
pub async fn quote(
    job: &Job,
    segment: u32,
    policy: &tensorgrid_artifacts::ReadPolicy,
) -> Result<([u8; 32], [u8; 32])> {
    let bytes = fetch(&job.result_uri, MAX_MANIFEST_BYTES, policy)
        .await
        .with_context(|| format!("fetching the result manifest {}", job.result_uri))?;
    let sha = sha256_hex(&bytes);
    if sha != hex::encode(job.result_hash) {
        bail!(
            "the manifest at {} hashes to {sha}, not the result hash on chain: the worker's result is not there (dispute it anyway: every verifier will find the same)",
            job.result_uri
        );
    }
    let m: Quoted = serde_json::from_slice(&bytes).context("the result manifest's commitments")?;
    let hashes = &m.commitments.state_hashes;
    let i = segment as usize;
    let (Some(start), Some(end)) = (hashes.get(i), hashes.get(i + 1)) else {
        bail!(
            "segment {segment} does not exist: the result commits to {} segments (0..{})",
            hashes.len().saturating_sub(1),
            hashes.len().saturating_sub(1)
        );
    };
    Ok((hash32(start)?, hash32(end)?))
}

fn hash32(hex_hash: &str) -> Result<[u8; 32]> {
    let v = hex::decode(hex_hash).with_context(|| format!("committed hash {hex_hash:?}"))?;
    v.try_into()
        .map_err(|_| anyhow::anyhow!("committed hash {hex_hash:?} is not 32 bytes"))
}

/// The draw for `job`'s dispute once a slot after the dispute's has a hash (a few seconds at
/// most); `None` when someone already drew.
pub async fn draw_when_ready(
    ctx: &Ctx,
    job: &Pubkey,
) -> Result<Option<tensorgrid_client::instructions::Instruction>> {
    for _ in 0..30 {
        match ctx.chain.draw(job).await? {
            Draw::Ready(ix) => return Ok(Some(ix)),
            Draw::Done => return Ok(None),
            Draw::TooEarly => tokio::time::sleep(std::time::Duration::from_millis(400)).await,
        }
    }
    bail!("no slot after the dispute's has a hash yet")
}
