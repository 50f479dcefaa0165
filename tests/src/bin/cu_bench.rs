//! Compute units per instruction on the SBF bytecode, `.so` size and lifecycle totals.
//!
//! `cargo run -p tensorgrid-harness --bin cu-bench` prints a Markdown table;
//! with `--write` it also replaces the CU section of BENCHMARKS.md.
//! Needs `target/deploy/tensorgrid.so` (scripts/build-sbf.sh) or `TENSORGRID_SO`.

use anyhow::{Context, Result};
use sha2::Digest;
use tensorgrid_harness::{
    compute::{measure_in, INSTRUCTIONS, RUNS},
    env::{so_path, Runtime},
    idl::workspace_root,
    tokens::{UnitKind, UNITS},
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
    let new_env = || TestEnv::with_runtime(Runtime::Sbf(so.clone()));
    let reports: Vec<_> = UNITS
        .iter()
        .map(|unit| (*unit, measure_in(new_env, *unit)))
        .collect();
    let report = &reports[0].1;
    let mut md = String::new();
    md.push_str(&format!(
        "Program `.so`: {size} bytes ({:.1} KiB), SBPF v3, built by `scripts/build-sbf.sh`, \
         sha256 `{sha256}` (the same from any checkout path: `scripts/check-reproducible-sbf.sh`).\n\n",
        size as f64 / 1024.0
    ));
    md.push_str(&format!(
        "Happy path: the median of {RUNS} runs of the short flow; worst case: the maximum of {} runs, short and long. \
         SOL: lamports; SPL: an SPL Token mint; T22: a Token-2022 mint with a metadata pointer.\n\n\
         | instruction | SOL happy | SOL worst | SPL happy | SPL worst | T22 happy | T22 worst |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
        2 * RUNS
    ));
    for name in INSTRUCTIONS.into_iter().chain(["poster_withdraw"]) {
        let cells: Vec<String> = reports
            .iter()
            .flat_map(|(_, r)| {
                let cell = |v: Option<&u64>| v.map_or("—".to_string(), u64::to_string);
                [cell(r.happy.get(name)), cell(r.worst.get(name))]
            })
            .collect();
        md.push_str(&format!("| `{name}` | {} |\n", cells.join(" | ")));
    }
    for (unit, r) in &reports {
        let unit = match unit {
            UnitKind::Sol => "SOL",
            UnitKind::Spl => "SPL Token",
            UnitKind::Token2022 => "Token-2022",
        };
        md.push_str(&format!(
            "\nFull job lifecycle in {unit} (post + claim + submit + accept): **{} CU**; with finalize instead of accept: {} CU; \
             from the worst cases: {} CU.",
            r.lifecycle_accept, r.lifecycle_finalize, r.lifecycle_worst
        ));
    }
    md.push('\n');
    let _ = report;
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
