use std::{path::PathBuf, process::ExitCode};

use anyhow::Result;
use clap::Args;
use tensorgrid_train::verify;

use super::{load, Common};
use crate::output::{fields, OutputFormat, Report};

#[derive(Args)]
#[command(
    after_help = "Examples:\n  tensorgrid verify --spec results/3/posted-spec.json --result results/3 --expect-hash 5e0c…\n  tensorgrid verify --spec results/3/posted-spec.json --result results/3 --spot-check 3"
)]
pub struct VerifyArgs {
    #[command(flatten)]
    threads: crate::chain_args::Threads,
    #[command(flatten)]
    common: Common,
    /// The result directory (with manifest.json).
    #[arg(long)]
    result: PathBuf,
    /// The result hash committed on chain (hex): the manifest must hash to it. Without it a
    /// result whose files and manifest were all rewritten consistently would pass.
    #[arg(long)]
    expect_hash: Option<String>,
    #[command(flatten)]
    spot: crate::spot_check::SpotCheckArgs,
    /// Also measure the model on your own held-out data (the spec's dataset format), which
    /// the worker never saw; it must meet the spec's threshold too.
    #[arg(long, value_name = "FILE")]
    eval_data: Option<PathBuf>,
}

/// The local check's report, as JSON (the engine's fields and `passed`) or for a person.
#[derive(serde::Serialize)]
struct Local {
    passed: bool,
    #[serde(flatten)]
    report: verify::Report,
    /// Segments re-run (`--spot-check`, `--segments`); `null` when none was asked for.
    spot_check: Option<tensorgrid_train::commit::SpotCheck>,
    /// The model on `--eval-data`; `null` without it.
    private_eval: Option<verify::PrivateEval>,
    #[serde(skip)]
    private_text: Option<String>,
    #[serde(skip)]
    result_dir: String,
}

impl Report for Local {
    fn display(&self) -> String {
        let r = &self.report;
        let mut s = format!(
            "{}: {}\n",
            crate::describe::clean(&self.result_dir),
            if self.passed { "PASSED" } else { "FAILED" }
        );
        for p in &r.problems {
            s.push_str(&format!("  [!!] {}\n", crate::describe::clean(p)));
        }
        s.push_str(&fields(&[
            ("result hash", r.result_hash.clone()),
            ("claimed metric", r.claimed.to_string()),
            ("measured metric", r.measured.to_string()),
            (
                "threshold",
                format!(
                    "{} ({})",
                    r.threshold,
                    if r.meets_threshold { "met" } else { "NOT met" }
                ),
            ),
        ]));
        if let Some(p) = &self.private_text {
            s.push_str(&format!("your own data: {p}\n"));
        }
        if let Some(spot) = &self.spot_check {
            s.push_str(&format!(
                "spot check: {}\n",
                crate::spot_check::describe(spot)
            ));
        }
        if let Some(sample) = &r.sample {
            s.push_str(&crate::describe::sample(sample));
        }
        s
    }
}

pub fn run(a: VerifyArgs, out: OutputFormat) -> Result<ExitCode> {
    a.threads.apply();
    let (spec, bytes, split, device) = load(&a.common)?;
    let mut report = verify::verify(&spec, &bytes, &split, &a.result, &device)?;
    if let Some(expected) = &a.expect_hash {
        let expected = expected
            .trim()
            .trim_start_matches("0x")
            .to_ascii_lowercase();
        if expected != report.result_hash {
            report.problems.push(format!(
                "manifest sha256 {} is not the expected result hash {expected}",
                report.result_hash
            ));
        }
    }
    let spot_check = if a.spot.wanted() {
        let m = tensorgrid_train::manifest::read(&a.result)?;
        let total = crate::spot_check::ready(&spec, &split, &m, &device)?;
        let segments = a.spot.choose(&m.commitments)?;
        let spot = tensorgrid_train::commit::spot_check(
            &spec,
            &split,
            &a.result,
            &m.commitments,
            total,
            &segments,
            &device,
        )?;
        if spot.mismatches > 0 {
            report.problems.push(format!(
                "spot check: {}",
                crate::spot_check::describe(&spot)
            ));
        }
        Some(spot)
    } else {
        None
    };
    let private_eval = match &a.eval_data {
        Some(file) => {
            let p = crate::private_eval::measure(&spec, &split, file, &a.result, &device)?;
            if !p.meets_threshold {
                report.problems.push(format!(
                    "on your own data: {}",
                    crate::private_eval::describe(&spec, &p)
                ));
            }
            Some(p)
        }
        None => None,
    };
    let passed = report.passed();
    out.emit(&Local {
        passed,
        report,
        spot_check,
        private_text: private_eval
            .as_ref()
            .map(|p| crate::private_eval::describe(&spec, p)),
        private_eval,
        result_dir: a.result.display().to_string(),
    })?;
    if !passed {
        eprintln!("error: verification failed");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
