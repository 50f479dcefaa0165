//! The work directory: what the worker has done for each job, written before the next step
//! so that a restart after a crash at any point knows where to continue.
//!
//! ```text
//! work_dir/
//!   jobs/<job address>/
//!     progress.json   the last completed stage (see [`Stage`])
//!     spec.json       the spec bytes, hash-checked against the chain
//!     training        present while training runs; left by a crash (see `crashguard`)
//!     crashes         how many runs of this job's training ended in a crash
//!     out/            the engine's output: checkpoint/, then weights, metrics, manifest
//!   datasets/<sha256> datasets, by content: downloaded and checked before claiming
//!   checking          the job being checked before claiming; left by a crash
//!   rejected.json     jobs not taken, why, and their posters (see `refusals`)
//!   ledger.jsonl      payments, penalties and slashes (see `ledger`)
//!   topups.json       stake top-ups from the operator's wallet (the daily cap)
//! ```
//!
//! Every file is written to a temporary name, synced and renamed: a kill leaves the old or
//! the new version, never half of one.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// How far a job got. Each stage is recorded once its effect is durable (on chain or on disk).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Stage {
    /// The claim landed; `deadline` is the chain's unix time to submit by.
    Claimed { deadline: i64 },
    /// Training finished: the result's hash and its metric in millionths.
    Trained {
        deadline: i64,
        result_hash: String,
        metric: u64,
    },
    /// The result is in the store at `result_uri`.
    Published {
        deadline: i64,
        result_hash: String,
        metric: u64,
        result_uri: String,
    },
    /// The submission landed.
    Submitted {
        result_hash: String,
        signature: String,
        #[serde(default)]
        result_uri: String,
        #[serde(default)]
        metric: u64,
    },
}

impl Stage {
    /// The stage's name as recorded (`claimed`, `trained`, `published`, `submitted`).
    pub fn name(&self) -> &'static str {
        match self {
            Stage::Claimed { .. } => "claimed",
            Stage::Trained { .. } => "trained",
            Stage::Published { .. } => "published",
            Stage::Submitted { .. } => "submitted",
        }
    }

    pub fn deadline(&self) -> Option<i64> {
        match self {
            Stage::Claimed { deadline }
            | Stage::Trained { deadline, .. }
            | Stage::Published { deadline, .. } => Some(*deadline),
            Stage::Submitted { .. } => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("work dir {path}: {source}")]
pub struct StateError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

fn err(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically and durably.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(path)(e));
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The work directory.
#[derive(Debug, Clone)]
pub struct WorkDir {
    root: PathBuf,
}

impl WorkDir {
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StateError> {
        let root = root.into();
        std::fs::create_dir_all(root.join("jobs")).map_err(err(&root))?;
        Ok(Self { root })
    }

    /// The directory everything lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a dataset with this (lowercase hex) sha256 is kept, once downloaded and checked.
    pub fn dataset_path(&self, sha256: &str) -> PathBuf {
        debug_assert!(sha256.chars().all(|c| c.is_ascii_hexdigit()));
        self.datasets_dir().join(sha256.to_ascii_lowercase())
    }

    /// The cache of datasets, shards and job files, each named by its sha256.
    pub fn datasets_dir(&self) -> PathBuf {
        self.root.join("datasets")
    }

    /// Keeps the dataset cache within `max_bytes`: the least recently used go first, never
    /// one of `keep` (the datasets of jobs held or waiting to be claimed) nor one written less
    /// than `min_age` ago (a check may be about to read it).
    pub fn prune_datasets(&self, max_bytes: u64, keep: &[String], min_age: std::time::Duration) {
        let dir = self.root.join("datasets");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                let used = m.accessed().or_else(|_| m.modified()).ok()?;
                Some((used, m.len(), e.path()))
            })
            .collect();
        files.sort();
        let mut total: u64 = files.iter().map(|(_, len, _)| *len).sum();
        for (_, len, path) in files {
            if total <= max_bytes {
                break;
            }
            let name = path.file_name().map(|n| n.to_string_lossy().to_string());
            if name.is_some_and(|n| keep.iter().any(|k| k.eq_ignore_ascii_case(&n))) {
                continue;
            }
            let recent = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_none_or(|age| age < min_age);
            if recent {
                continue;
            }
            if std::fs::remove_file(&path).is_ok() {
                total = total.saturating_sub(len);
            }
        }
    }

    /// The directory of the job at `address` (a base58 account address: no path separators).
    pub fn job_dir(&self, address: &str) -> PathBuf {
        debug_assert!(address.chars().all(|c| c.is_ascii_alphanumeric()));
        self.root.join("jobs").join(address)
    }

    /// An exclusive lock on the directory, held as long as the returned file is open: two
    /// workers on one directory would carry the same job and corrupt its checkpoint.
    pub fn lock(&self) -> Result<std::fs::File, String> {
        let path = self.root.join(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => Err(format!(
                "work dir {} is in use by another worker",
                self.root.display()
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(format!("{}: {e}", path.display())),
        }
    }

    pub fn stage(&self, address: &str) -> Result<Option<Stage>, StateError> {
        let path = self.job_dir(address).join("progress.json");
        match std::fs::read(&path) {
            Ok(b) => Ok(serde_json::from_slice(&b).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(err(&path)(e)),
        }
    }

    pub fn record(&self, address: &str, stage: &Stage) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(stage).expect("stage serialises");
        write_atomic(&self.job_dir(address).join("progress.json"), &bytes)
    }

    /// Jobs with a recorded stage: what a restart reconciles with the chain.
    /// Every job directory (a job checked, claimed or in progress), by address.
    pub fn job_names(&self) -> Result<Vec<String>, StateError> {
        let dir = self.root.join("jobs");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(err(&dir))? {
            out.push(
                entry
                    .map_err(err(&dir))?
                    .file_name()
                    .to_string_lossy()
                    .to_string(),
            );
        }
        out.sort();
        Ok(out)
    }

    /// The jobs with a recorded stage.
    pub fn in_progress(&self) -> Result<Vec<(String, Stage)>, StateError> {
        let mut out = Vec::new();
        for name in self.job_names()? {
            if let Some(stage) = self.stage(&name)? {
                out.push((name, stage));
            }
        }
        Ok(out)
    }

    /// Forgets a job (paid, lost, or given up): its directory goes.
    pub fn finish(&self, address: &str) -> Result<(), StateError> {
        let dir = self.job_dir(address);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(err(&dir)(e)),
        }
    }

    /// A small JSON state file at the top of the work dir, `T::default()` when missing or
    /// unreadable (every such file is a cache of what the chain or the operator can restore).
    pub fn read_json<T: serde::de::DeserializeOwned + Default>(&self, name: &str) -> T {
        std::fs::read(self.root.join(name))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Writes a small JSON state file atomically.
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(value).expect("state serialises");
        write_atomic(&self.root.join(name), &bytes)
    }
}

impl PartialOrd for Stage {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Stage {
    /// By progress (claimed < trained < published < submitted).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let rank = |s: &Stage| match s {
            Stage::Claimed { .. } => 0,
            Stage::Trained { .. } => 1,
            Stage::Published { .. } => 2,
            Stage::Submitted { .. } => 3,
        };
        rank(self).cmp(&rank(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_survive_a_restart_and_finish_removes_them() {
        let dir = tempfile::tempdir().unwrap();
        let w = WorkDir::open(dir.path()).unwrap();
        let job = "9m6zQpj6vEz6AuXqbgdybFwN4h2GDGtFmEZ9YUY8Y1aG";
        assert_eq!(w.stage(job).unwrap(), None);
        w.record(job, &Stage::Claimed { deadline: 100 }).unwrap();
        let published = Stage::Published {
            deadline: 100,
            result_hash: "ab".repeat(32),
            metric: 971_000,
            result_uri: "s3://b/results/x/manifest.json".into(),
        };
        w.record(job, &published).unwrap();

        let again = WorkDir::open(dir.path()).unwrap();
        assert_eq!(
            again.in_progress().unwrap(),
            vec![(job.to_string(), published.clone())]
        );
        assert_eq!(published.deadline(), Some(100));
        assert!(Stage::Claimed { deadline: 1 } < published);
        let names: Vec<_> = std::fs::read_dir(w.job_dir(job))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["progress.json"], "no temporary files left");

        again.finish(job).unwrap();
        assert!(again.in_progress().unwrap().is_empty());
        again.finish(job).unwrap();
    }

    #[test]
    fn the_dataset_cache_keeps_what_is_in_use_within_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let w = WorkDir::open(dir.path()).unwrap();
        let (a, b, c) = ("aa".repeat(32), "bb".repeat(32), "cc".repeat(32));
        for (sha, len) in [(&a, 100), (&b, 100), (&c, 100)] {
            std::fs::create_dir_all(w.dataset_path(sha).parent().unwrap()).unwrap();
            std::fs::write(w.dataset_path(sha), vec![0u8; len]).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        w.prune_datasets(
            150,
            std::slice::from_ref(&a),
            std::time::Duration::from_secs(3_600),
        );
        assert!(w.dataset_path(&b).exists(), "written just now: kept");
        w.prune_datasets(150, std::slice::from_ref(&a), std::time::Duration::ZERO);
        assert!(w.dataset_path(&a).exists(), "in use: kept");
        assert!(!w.dataset_path(&b).exists(), "the oldest not in use: gone");
        assert!(!w.dataset_path(&c).exists(), "still over the cap");
    }

    #[test]
    fn a_corrupt_progress_file_reads_as_no_progress() {
        let dir = tempfile::tempdir().unwrap();
        let w = WorkDir::open(dir.path()).unwrap();
        std::fs::create_dir_all(w.job_dir("C")).unwrap();
        std::fs::write(w.job_dir("C").join("progress.json"), b"{trunc").unwrap();
        assert_eq!(w.stage("C").unwrap(), None);
    }
}
