use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use tensorgrid_train::device::{self, DeviceChoice};

#[derive(Args)]
#[command(after_help = "Example:\n  tensorgrid bench --threads 1 --device cpu")]
pub struct BenchArgs {
    #[command(flatten)]
    threads: crate::chain_args::Threads,
    /// Job specs whose model and data to time.
    #[arg(long, num_args = 1.., default_values = ["jobs/digits-mlp.json", "jobs/digits-cnn.json", "jobs/shapes-resnet.json", "jobs/kjv-charlm.json", "jobs/kjv-gpt2.json"])]
    specs: Vec<PathBuf>,
    /// auto (CUDA, then Metal, then CPU), cpu, cuda or metal.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Timing rounds per model; the median round is reported.
    #[arg(long, default_value_t = 7)]
    rounds: usize,
    /// Seconds per timing round.
    #[arg(long, default_value_t = 0.4)]
    round_secs: f64,
}

pub fn run(a: BenchArgs) -> Result<()> {
    a.threads.apply();
    let device = device::select(a.device)?;
    let gflops = tensorgrid_train::bench::matmul_gflops(&device, 1024)?;
    println!(
        "{}",
        serde_json::json!({ "matmul_1024_gflops": gflops, "device": device::name(&device), "threads": tensorgrid_train::cpu_threads() })
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
