use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use tensorgrid_train::{
    data,
    device::{self, DeviceChoice},
    spec::JobSpec,
    trainer::{self, TrainOptions},
    verify,
};

#[derive(Parser)]
#[command(
    name = "tensorgrid",
    version,
    about = "tensorgrid: decentralised AI training on Solana"
)]
pub struct Cli {
    /// CPU threads for training (sets RAYON_NUM_THREADS; results are identical for any count).
    #[arg(long, global = true, env = "TENSORGRID_THREADS")]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a job spec and write weights, metrics and the result manifest.
    Train(TrainArgs),
    /// Check a result directory against its job spec: hashes, and the model re-evaluated.
    Verify(VerifyArgs),
    /// Training throughput of job specs' models and the matmul ceiling (JSON lines).
    Bench(BenchArgs),
    /// Run the embedded local Solana chain with the program loaded, until Ctrl-C.
    Localnet(crate::localnet_cmd::LocalnetArgs),
}

#[derive(Args)]
struct BenchArgs {
    /// Job specs whose model and data to time.
    #[arg(long, num_args = 1.., default_values = ["jobs/digits-mlp.json", "jobs/digits-cnn.json", "jobs/kjv-charlm.json"])]
    specs: Vec<PathBuf>,
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Timing rounds per model; the median round is reported.
    #[arg(long, default_value_t = 7)]
    rounds: usize,
    /// Seconds per timing round.
    #[arg(long, default_value_t = 0.4)]
    round_secs: f64,
}

#[derive(Args)]
struct Common {
    /// The job spec (JSON).
    #[arg(long)]
    spec: PathBuf,
    /// auto (CUDA, then Metal, then CPU), cpu, cuda or metal.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Cache for downloaded datasets, keyed by sha256.
    #[arg(long, env = "TENSORGRID_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

#[derive(Args)]
struct TrainArgs {
    #[command(flatten)]
    common: Common,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Start over even if `out/checkpoint` exists.
    #[arg(long)]
    fresh: bool,
}

#[derive(Args)]
struct VerifyArgs {
    #[command(flatten)]
    common: Common,
    /// The result directory (with manifest.json).
    #[arg(long)]
    result: PathBuf,
}

impl Cli {
    /// Settings that must precede candle's first operation.
    pub fn init_runtime(&self) {
        if let Some(n) = self.threads {
            std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        }
    }

    pub fn run(self) -> Result<()> {
        match self.command {
            Command::Train(a) => train(a),
            Command::Verify(a) => verify_cmd(a),
            Command::Bench(a) => bench(a),
            Command::Localnet(a) => crate::localnet_cmd::run(a),
        }
    }
}

/// Reads, validates and loads a spec and its dataset.
fn load(c: &Common) -> Result<(JobSpec, Vec<u8>, data::Split, tensorgrid_train::Device)> {
    let bytes = std::fs::read(&c.spec).with_context(|| format!("reading {}", c.spec.display()))?;
    let spec = JobSpec::from_json(&bytes).with_context(|| format!("{}", c.spec.display()))?;
    let base = c.spec.parent().map(Path::to_path_buf).unwrap_or_default();
    let split = data::load(&spec, &base, c.cache_dir.as_deref()).context("loading the dataset")?;
    let dev = device::select(c.device)?;
    Ok((spec, bytes, split, dev))
}

fn train(a: TrainArgs) -> Result<()> {
    let (spec, bytes, split, device) = load(&a.common)?;
    tracing::info!(device = device::name(&device), out = %a.out.display(), "training");
    // Ctrl-C stops between steps after writing a checkpoint; the same command resumes.
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;
    let opts = TrainOptions {
        device,
        out_dir: a.out.clone(),
        resume: !a.fresh,
        cancel: Some(cancel),
        progress: true,
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
            "out": a.out,
        })
    );
    Ok(())
}

fn verify_cmd(a: VerifyArgs) -> Result<()> {
    let (spec, bytes, split, device) = load(&a.common)?;
    let report = verify::verify(&spec, &bytes, &split, &a.result, &device)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    if !report.passed() {
        bail!("verification failed");
    }
    Ok(())
}

fn bench(a: BenchArgs) -> Result<()> {
    let device = device::select(a.device)?;
    let gflops = tensorgrid_train::bench::matmul_gflops(&device, 1024)?;
    println!(
        "{}",
        serde_json::json!({ "matmul_1024_gflops": gflops, "device": device::name(&device), "threads": std::env::var("RAYON_NUM_THREADS").ok() })
    );
    let timing = tensorgrid_train::bench::Timing {
        rounds: a.rounds,
        round_secs: a.round_secs,
        ..Default::default()
    };
    for spec in &a.specs {
        let row = tensorgrid_train::bench::bench_spec(spec, &device, timing)
            .with_context(|| format!("benchmarking {}", spec.display()))?;
        println!("{}", serde_json::to_string(&row)?);
    }
    Ok(())
}
