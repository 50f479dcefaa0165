use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use anyhow::{bail, Context, Result};
use clap::Args;
use tensorgrid_train::{
    device,
    trainer::{self, TrainOptions},
};

use super::{load, Common};

#[derive(Args)]
#[command(
    after_help = "Example:\n  tensorgrid train --spec jobs/digits-mlp.json --out out/digits --threads 2"
)]
pub struct TrainArgs {
    #[command(flatten)]
    threads: crate::chain_args::Threads,
    #[command(flatten)]
    common: Common,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Start over even if `out/checkpoint` exists.
    #[arg(long)]
    fresh: bool,
}

pub fn run(a: TrainArgs) -> Result<()> {
    a.threads.apply();
    let (spec, bytes, split, device) = load(&a.common)?;
    tracing::info!(device = device::name(&device), out = %a.out.display(), "training");
    // Ctrl-C stops between steps after writing a checkpoint; the same command resumes.
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;
    let opts = TrainOptions {
        resume: !a.fresh,
        cancel: Some(cancel),
        progress: Some(crate::progress::bar()),
        ..TrainOptions::new(device, a.out.clone())
    };
    let outcome = match trainer::train(&spec, &bytes, &split, &opts) {
        Err(tensorgrid_train::Error::Cancelled(step)) => {
            bail!("interrupted at step {step}; checkpoint saved in {}, run the same command to resume", a.out.join("checkpoint").display())
        }
        other => other?,
    };
    let r = &outcome.manifest.result;
    println!(
        "{}",
        serde_json::json!({
            "result_hash": hex::encode(outcome.result_hash),
            "metric": r.metric,
            "value": r.value,
            "threshold": r.threshold,
            "meets_threshold": r.meets_threshold,
            "steps": outcome.manifest.steps,
            "wall_time_s": outcome.wall_time_s,
            // What committing to the training state cost: time; the bytes the commitments add
            // to the published result; the states' bytes, kept beside it (published one by
            // one on request), against the weights'.
            "commit_secs": outcome.commit_secs,
            "segments": outcome.manifest.commitments.segments(),
            "commitment_bytes": commitment_bytes(&outcome.manifest.commitments),
            "state_bytes": state_bytes(&a.out, &outcome.manifest.commitments),
            "weights_bytes": outcome.manifest.weights.bytes,
            "out": a.out,
        })
    );
    Ok(())
}

/// The bytes the commitments take in the manifest (as written there).
fn commitment_bytes(c: &tensorgrid_train::commit::Commitments) -> usize {
    serde_json::to_vec_pretty(c).map_or(0, |v| v.len())
}

/// The bytes of the state files kept in `out` for re-running segments.
fn state_bytes(out: &std::path::Path, c: &tensorgrid_train::commit::Commitments) -> u64 {
    (0..c.segments())
        .filter_map(|i| c.start_file(i))
        .filter_map(|name| std::fs::metadata(out.join(name)).ok())
        .map(|m| m.len())
        .sum()
}
