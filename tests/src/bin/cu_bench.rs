//! Compute units per instruction on the SBF bytecode, `.so` size and lifecycle totals.
//!
//! `cargo run -p tensorgrid-harness --bin cu-bench` prints a Markdown table;
//! with `--write` it also replaces the CU section of BENCHMARKS.md.
//! Needs `target/deploy/tensorgrid.so` (scripts/build-sbf.sh) or `TENSORGRID_SO`.

use anyhow::{Context, Result};
use sha2::Digest;
use tensorgrid_harness::{
    compute::{measure, INSTRUCTIONS, RUNS},
    env::{so_path, Runtime},
    idl::workspace_root,
    TestEnv,
};

const BEGIN: &str = "<!-- cu-bench:begin -->";
const END: &str = "<!-- cu-bench:end -->";

fn main() -> Result<()> {
    let so = so_path();
    let bytes = std::fs::read(&so)
        .with_context(|| format!("{}: build it with scripts/build-sbf.sh", so.display()))?;
    let size = bytes.len();
    let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
    let report = measure(|| TestEnv::with_runtime(Runtime::Sbf(so.clone())));
    let mut md = String::new();
    md.push_str(&format!(
        "Program `.so`: {size} bytes ({:.1} KiB), SBPF v3, built by `scripts/build-sbf.sh`, \
         sha256 `{sha256}` (the same from any checkout path: `scripts/check-reproducible-sbf.sh`).\n\n",
        size as f64 / 1024.0
    ));
    md.push_str(&format!(
        "| instruction | happy path CU (median of {RUNS}) | worst case CU (max of {}) |\n|---|---:|---:|\n",
        2 * RUNS
    ));
    for name in INSTRUCTIONS {
        md.push_str(&format!(
            "| `{name}` | {} | {} |\n",
            report.happy[name], report.worst[name]
        ));
    }
    md.push_str(&format!(
        "\nFull job lifecycle (post + claim + submit + accept): **{} CU**; with finalize instead of accept: {} CU; \
         from the worst cases: {} CU.\n",
        report.lifecycle_accept, report.lifecycle_finalize, report.lifecycle_worst
    ));
    md.push_str(
        "Worst case: the most expensive of all runs, short inputs and long ones (200-byte spec and result URIs, \
         a 32-byte hardware label, every optional update field set). `market_init` and `worker_register` vary \
         with the keys (Anchor searches for the PDA bump); jobs are posted at the next id (their cost does not depend on it).\n",
    );
    print!("{md}");
    if std::env::args().any(|a| a == "--write") {
        let path = workspace_root().join("BENCHMARKS.md");
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        let block = format!("{BEGIN}\n{md}{END}");
        let new = match (old.find(BEGIN), old.find(END)) {
            (Some(a), Some(b)) => format!("{}{block}{}", &old[..a], &old[b + END.len()..]),
            _ => format!("{old}\n## Compute units (`cargo run -p tensorgrid-harness --bin cu-bench`)\n\n{block}\n"),
        };
        std::fs::write(&path, new)?;
        eprintln!("updated {}", path.display());
    }
    Ok(())
}
