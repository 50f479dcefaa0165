use std::{path::PathBuf, process::ExitCode};

use anyhow::Result;
use clap::Args;
use tensorgrid_train::verify;

use super::{load, Common};

#[derive(Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    common: Common,
    /// The result directory (with manifest.json).
    #[arg(long)]
    result: PathBuf,
    /// The result hash committed on chain (hex): the manifest must hash to it. Without it a
    /// result whose files and manifest were all rewritten consistently would pass.
    #[arg(long)]
    expect_hash: Option<String>,
}

pub fn run(a: VerifyArgs) -> Result<ExitCode> {
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
    println!("{}", serde_json::to_string_pretty(&report)?);
    if !report.passed() {
        eprintln!("error: verification failed");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
