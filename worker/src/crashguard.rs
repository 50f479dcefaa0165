//! No job can make the worker crash in a loop.
//!
//! Panics are caught (the release build unwinds; checks and training run on blocking threads
//! whose panics come back as errors), but a process can still die in ways nothing in it can
//! catch: killed for memory, a native library's abort. So each risky phase leaves a marker on
//! disk while it runs:
//! - `checking` (the job checked before claiming): found at the next start, that job crashed
//!   its check, and is refused for good, never claimed;
//! - `jobs/<job>/training`: found at the next start, that run of the job's training crashed;
//!   after [`MAX_TRAINING_CRASHES`] of them the job is given back, not resumed again.

use serde::{Deserialize, Serialize};

use crate::{
    state::{write_atomic, StateError},
    WorkDir,
};

/// Crashed runs of one job's training after which it is given back.
pub const MAX_TRAINING_CRASHES: u32 = 3;
const CHECKING: &str = "checking";
const TRAINING: &str = "training";
const CRASHES: &str = "crashes";

/// The job whose check was running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checking {
    pub job: String,
    pub poster: String,
}

/// Marks the check of `job` as running.
pub fn begin_check(work: &WorkDir, job: &str, poster: &str) -> Result<(), StateError> {
    work.write_json(
        CHECKING,
        &Checking {
            job: job.into(),
            poster: poster.into(),
        },
    )
}

/// The check ended (either way).
pub fn end_check(work: &WorkDir) {
    let _ = std::fs::remove_file(work.root().join(CHECKING));
}

/// A check the last run left unfinished: that job crashed the worker. The marker is removed.
pub fn crashed_check(work: &WorkDir) -> Option<Checking> {
    let path = work.root().join(CHECKING);
    let found = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let _ = std::fs::remove_file(&path);
    found
}

/// Marks `job`'s training as running; returns how many earlier runs crashed (a marker left
/// by the last run counts as one more).
pub fn begin_training(work: &WorkDir, job: &str) -> Result<u32, StateError> {
    let dir = work.job_dir(job);
    let mut crashes = crashes(work, job);
    if dir.join(TRAINING).exists() {
        crashes = crashes.saturating_add(1);
        write_atomic(&dir.join(CRASHES), crashes.to_string().as_bytes())?;
    }
    write_atomic(&dir.join(TRAINING), b"")?;
    Ok(crashes)
}

/// The training run ended without a crash (finished, stopped, or failed with an error).
pub fn end_training(work: &WorkDir, job: &str) {
    let _ = std::fs::remove_file(work.job_dir(job).join(TRAINING));
}

fn crashes(work: &WorkDir, job: &str) -> u32 {
    std::fs::read_to_string(work.job_dir(job).join(CRASHES))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What catches a panic in a check or in training is unwinding: the release build a rig
    /// runs must keep it (an abort would end the daemon on the first panic, and systemd would
    /// start it into the same job again).
    #[test]
    fn the_shipped_build_unwinds_on_panic() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml")).unwrap();
        let manifest: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(
            manifest["profile"]["release"]["panic"].as_str(),
            Some("unwind")
        );
        let caught = std::panic::catch_unwind(|| panic!("a panic in a check"));
        assert!(caught.is_err(), "this build unwinds");
    }

    #[test]
    fn a_check_left_running_is_found_once() {
        let dir = tempfile::tempdir().unwrap();
        let w = WorkDir::open(dir.path()).unwrap();
        begin_check(&w, "J", "P").unwrap();
        end_check(&w);
        assert_eq!(crashed_check(&w), None);
        begin_check(&w, "J", "P").unwrap();
        // The process dies here; the next start finds it.
        let w = WorkDir::open(dir.path()).unwrap();
        assert_eq!(
            crashed_check(&w),
            Some(Checking {
                job: "J".into(),
                poster: "P".into()
            })
        );
        assert_eq!(crashed_check(&w), None);
    }

    #[test]
    fn crashed_training_runs_are_counted_and_clean_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let w = WorkDir::open(dir.path()).unwrap();
        assert_eq!(begin_training(&w, "J").unwrap(), 0);
        end_training(&w, "J");
        assert_eq!(begin_training(&w, "J").unwrap(), 0, "a clean stop");
        // Killed: no end_training.
        assert_eq!(begin_training(&w, "J").unwrap(), 1);
        assert_eq!(begin_training(&w, "J").unwrap(), 2);
        end_training(&w, "J");
        assert_eq!(begin_training(&w, "J").unwrap(), 2, "the count stays");
    }
}
