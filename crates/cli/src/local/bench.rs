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
    /// Compute the steps in f32, bf16 or f16 (mixed precision, f32 weights), whatever the
    /// specs say; the CPU always computes in f32. Default: each spec's own.
    #[arg(long)]
    precision: Option<tensorgrid_train::precision::Choice>,
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
    let mut header = serde_json::json!({ "matmul_1024_gflops": gflops, "device": device::name(&device), "threads": tensorgrid_train::cpu_threads() });
    if !device.is_cpu() {
        // The ceilings f32 and mixed precision are measured against on a GPU, at a size
        // large enough to reach them (1024³ falls well short on a large card). Best effort: a
        // card without bf16 (before Ampere, some Macs) still benches f32.
        if let Ok(f32) =
            tensorgrid_train::bench::matmul_gflops_in(&device, 4096, tensorgrid_train::DType::F32)
        {
            header["matmul_4096_f32_gflops"] = f32.into();
        }
        if let Ok(bf16) =
            tensorgrid_train::bench::matmul_gflops_in(&device, 4096, tensorgrid_train::DType::BF16)
        {
            header["matmul_4096_bf16_gflops"] = bf16.into();
        }
        header["accelerator"] = device::accelerator_class(&device).into();
    }
    println!("{header}");
    let timing = tensorgrid_train::bench::Timing {
        rounds: a.rounds,
        round_secs: a.round_secs,
        ..Default::default()
    };
    for spec in &a.specs {
        let row = tensorgrid_train::bench::bench_spec(spec, &device, timing, a.precision)
            .with_context(|| format!("benchmarking {}", spec.display()))?;
        println!("{}", serde_json::to_string(&row)?);
    }
    Ok(())
}
