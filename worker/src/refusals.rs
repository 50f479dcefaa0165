//! Jobs this worker will not take, why, and who posted them (`rejected.json`).
//!
//! A refusal for the job as posted (its spec, its dataset, a crash it caused, a job given
//! back) stands for good: the spec is fixed by its hash and the job's address is never
//! reused. Such refusals count against the job's poster: past [`POSTER_STRIKES`] of them,
//! that poster's new jobs are refused without being downloaded. A refusal for this worker's
//! settings (pay, time, terms, device, size caps) is looked at again after a restart.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{state::StateError, WorkDir};

/// Refusals kept: past this, the oldest are forgotten (a forgotten job is only checked again).
const MAX_KEPT: usize = 5_000;
/// Jobs a poster may post that could not be done (for the poster's reasons) before its jobs
/// are refused without a check.
pub const POSTER_STRIKES: usize = 3;
const FILE: &str = "rejected.json";

/// Why a job was refused, which decides whether the refusal lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The job as posted cannot be done (spec, dataset, divergence, a crash it caused, a job
    /// given back): lasts, and counts against the poster.
    Poster,
    /// This worker's settings or hardware (pay, time, terms, device, size caps): checked again
    /// after a restart.
    Settings,
    /// The poster's servers did not answer, again and again: lasts, not counted.
    Unreachable,
    /// Its poster's recent jobs could not be done (see [`POSTER_STRIKES`]): lasts, not
    /// counted again.
    Blocked,
    /// The job crashed the worker (a panic while checking it, a process that died while
    /// checking or training it): lasts, and is not counted against the poster, since a crash
    /// can also be this machine's (a power cut, an engine bug).
    Crashed,
}

/// One refused job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub reason: String,
    pub kind: Kind,
    /// The poster's wallet.
    #[serde(default)]
    pub poster: String,
    /// Unix time of the refusal.
    #[serde(default)]
    pub at: i64,
    /// For a server that did not answer: its host (`host:port`, or `s3://bucket`), so the
    /// next jobs pointing at it are refused without waiting on it again.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
}

/// The host part of a URI (`https://a.b:8080/x` → `a.b:8080`, `s3://bucket/k` → `s3://bucket`).
pub fn host_of(uri: &str) -> String {
    let (scheme, rest) = uri.split_once("://").unwrap_or(("", uri));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if scheme == "s3" {
        format!("s3://{host}")
    } else {
        host.to_ascii_lowercase()
    }
}

impl Refusal {
    pub fn lasts(&self) -> bool {
        self.kind != Kind::Settings
    }
}

/// The refusals in a work dir.
pub struct Refusals<'a> {
    work: &'a WorkDir,
}

impl<'a> Refusals<'a> {
    pub fn new(work: &'a WorkDir) -> Self {
        Self { work }
    }

    /// Every refusal kept, by job address.
    pub fn all(&self) -> BTreeMap<String, Refusal> {
        self.work.read_json(FILE)
    }

    pub fn add(&self, job: &str, refusal: Refusal) -> Result<(), StateError> {
        let mut all = self.all();
        all.insert(job.into(), refusal);
        while all.len() > MAX_KEPT {
            // The oldest refusal goes first.
            let Some(oldest) = all.iter().min_by_key(|(_, r)| r.at).map(|(k, _)| k.clone()) else {
                break;
            };
            all.remove(&oldest);
        }
        self.work.write_json(FILE, &all)
    }

    /// Jobs whose spec server at `host` did not answer.
    pub fn unanswered(all: &BTreeMap<String, Refusal>, host: &str) -> usize {
        all.values()
            .filter(|r| r.kind == Kind::Unreachable && r.host == host)
            .count()
    }

    /// Jobs `poster` posted that could not be done for the poster's reasons.
    pub fn strikes(all: &BTreeMap<String, Refusal>, poster: &str) -> usize {
        all.values()
            .filter(|r| r.kind == Kind::Poster && r.poster == poster)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(kind: Kind, poster: &str, at: i64) -> Refusal {
        Refusal {
            reason: "why".into(),
            kind,
            poster: poster.into(),
            at,
            host: String::new(),
        }
    }

    #[test]
    fn hosts_of_uris() {
        assert_eq!(
            host_of("https://Example.org:8443/a/b?c"),
            "example.org:8443"
        );
        assert_eq!(host_of("http://127.0.0.1:9/spec.json"), "127.0.0.1:9");
        assert_eq!(host_of("s3://bucket/specs/x.json"), "s3://bucket");
        assert_eq!(host_of("nonsense"), "nonsense");
    }

    #[test]
    fn refusals_survive_a_restart_and_count_against_their_poster() {
        let dir = tempfile::tempdir().unwrap();
        let w = WorkDir::open(dir.path()).unwrap();
        let r = Refusals::new(&w);
        r.add("A", refusal(Kind::Poster, "P", 1)).unwrap();
        r.add("B", refusal(Kind::Poster, "P", 2)).unwrap();
        r.add("C", refusal(Kind::Settings, "P", 3)).unwrap();
        r.add("D", refusal(Kind::Poster, "Q", 4)).unwrap();
        let w2 = WorkDir::open(dir.path()).unwrap();
        let all = Refusals::new(&w2).all();
        assert_eq!(all.len(), 4);
        assert_eq!(Refusals::strikes(&all, "P"), 2);
        assert!(all["A"].lasts() && !all["C"].lasts());
    }

    #[test]
    fn an_unreadable_file_is_no_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let w = WorkDir::open(dir.path()).unwrap();
        std::fs::write(dir.path().join(FILE), b"{\"A\": \"an old format\"").unwrap();
        assert!(Refusals::new(&w).all().is_empty());
    }
}
