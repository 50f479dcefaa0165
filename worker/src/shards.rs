//! Where a sharded dataset's shards come from on a worker (and for the CLI's verifier): the
//! artifact fetcher (s3://, https://, under the read policy), called from the training
//! thread, optionally through the work dir's dataset cache, and stopped by shutdown or the
//! job's deadline.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use sha2::{Digest, Sha256};
use tensorgrid_artifacts::{fetch, fetch_to_file, ArtifactError, ReadPolicy};
use tensorgrid_train::{
    data::{shards::Shard, ShardStore},
    Error,
};
use tokio_util::sync::CancellationToken;

/// The cache a store keeps shards in: the work dir's dataset cache (by sha256), with the
/// size beyond which a shard the stream has moved past is let go.
pub struct Cache {
    pub dir: PathBuf,
    pub max_bytes: u64,
}

/// A [`ShardStore`] over the artifact fetcher.
pub struct Shards {
    handle: tokio::runtime::Handle,
    policy: ReadPolicy,
    cache: Option<Cache>,
    cancel: Option<CancellationToken>,
    deadline: Option<Instant>,
    prefetch: bool,
    release: bool,
}

/// A shard gets this long, plus its bytes at [`MIN_RATE`], before its server counts as not
/// serving it.
const GRACE: Duration = Duration::from_secs(30);
/// The slowest a shard may arrive (as a check asks of a dataset).
const MIN_RATE: u64 = 256 << 10;

/// Temporary names unique within the process: two fetches of one shard (a prefetch and a
/// resumed run, a check and a training) never write the same file.
static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

impl Shards {
    /// A store reading into memory, driven by the runtime `handle` (the caller's, taken on
    /// the runtime: the stream calls it from threads of its own).
    pub fn new(handle: tokio::runtime::Handle, policy: ReadPolicy) -> Self {
        Self {
            handle,
            policy,
            cache: None,
            cancel: None,
            deadline: None,
            prefetch: true,
            release: true,
        }
    }

    /// Shards the stream moves past stay in the cache whatever its size (a check's: the
    /// claim needs what it fetched).
    pub fn keeping(mut self) -> Self {
        self.release = false;
        self
    }

    /// No shard fetched ahead of the stream (a check's few steps read what they need only).
    pub fn without_prefetch(mut self) -> Self {
        self.prefetch = false;
        self
    }

    /// Shards kept by hash in `cache.dir` (verified bytes only), read from there when there.
    pub fn cached(mut self, cache: Cache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// A fetch in flight gives up when `cancel` fires (the run is stopped: [`Error::Cancelled`])
    /// or `deadline` passes (transient: the run keeps its state and resumes later). Each shard
    /// also has its own limit, its size at 256 KiB/s and 30 s more: a server slower than that
    /// is not serving it (transient as well, and the poster's to answer for).
    pub fn stopping(mut self, cancel: CancellationToken, deadline: Option<Instant>) -> Self {
        self.cancel = Some(cancel);
        self.deadline = deadline;
        self
    }

    fn block<T>(
        &self,
        shard: &Shard,
        fut: impl std::future::Future<Output = Result<T, ArtifactError>>,
    ) -> tensorgrid_train::Result<T> {
        let uri = shard.uri.as_str();
        let late = |why: String| Error::Fetch {
            uri: uri.into(),
            reason: why,
        };
        let cancel = self.cancel.clone().unwrap_or_default();
        let allowed = GRACE + Duration::from_secs(shard.bytes / MIN_RATE);
        let limit = Instant::now() + allowed;
        let (until, why) = match self.deadline {
            Some(d) if d < limit => (d, "not fetched before the deadline".to_string()),
            _ => (
                limit,
                format!(
                    "not served within {} s ({} bytes at {} KiB/s or faster)",
                    allowed.as_secs(),
                    shard.bytes,
                    MIN_RATE >> 10
                ),
            ),
        };
        self.handle.block_on(async move {
            tokio::select! {
                _ = cancel.cancelled() => Err(Error::Cancelled(0)),
                _ = tokio::time::sleep_until(until.into()) => Err(late(why)),
                r = fut => r.map_err(|e| from_artifact(uri, e)),
            }
        })
    }

    fn get_cached(&self, cache: &Cache, shard: &Shard) -> tensorgrid_train::Result<Vec<u8>> {
        let sha = shard.sha256.to_ascii_lowercase();
        let path = cache.dir.join(&sha);
        if let Ok(bytes) = std::fs::read(&path) {
            if hex::encode(Sha256::digest(&bytes)) == sha {
                return Ok(bytes);
            }
            // Not what its name says (a disk error): fetched again.
            let _ = std::fs::remove_file(&path);
        }
        std::fs::create_dir_all(&cache.dir).map_err(Error::io(&cache.dir))?;
        // Fetched under a name of its own, into the cache only once verified.
        let tmp = cache.dir.join(format!(
            ".{sha}.{}.{}.shard",
            std::process::id(),
            NEXT_TMP.fetch_add(1, Ordering::Relaxed)
        ));
        let got = self.block(
            shard,
            fetch_to_file(&shard.uri, shard.bytes, &self.policy, &tmp),
        );
        let outcome = match got {
            Ok(got) if got == sha => std::fs::rename(&tmp, &path).map_err(Error::io(&path)),
            Ok(got) => Err(Error::HashMismatch {
                uri: shard.uri.clone(),
                expected: sha.clone(),
                actual: got,
            }),
            Err(e) => Err(e),
        };
        let _ = std::fs::remove_file(&tmp);
        outcome?;
        // Read back and checked once more: the bytes handed on are the bytes verified (a
        // file changed on disk is this machine's problem, not the poster's).
        let bytes = std::fs::read(&path).map_err(Error::io(&path))?;
        if hex::encode(Sha256::digest(&bytes)) != sha {
            let _ = std::fs::remove_file(&path);
            return Err(Error::Io {
                path,
                source: std::io::Error::other("changed on disk after it was verified"),
            });
        }
        Ok(bytes)
    }
}

impl ShardStore for Shards {
    fn get(&self, shard: &Shard) -> tensorgrid_train::Result<Vec<u8>> {
        match &self.cache {
            Some(c) => self.get_cached(c, shard),
            None => self
                .block(shard, fetch(&shard.uri, shard.bytes, &self.policy))
                .map(|b| b.to_vec()),
        }
    }

    fn prefetch(&self) -> bool {
        self.prefetch
    }

    /// A shard behind the stream leaves a cache that is over its size (the next epoch fetches
    /// it again); under it, it stays for the next epoch.
    fn release(&self, shard: &Shard) {
        let Some(c) = self.cache.as_ref().filter(|_| self.release) else {
            return;
        };
        if dir_bytes(&c.dir) > c.max_bytes {
            let _ = std::fs::remove_file(c.dir.join(shard.sha256.to_ascii_lowercase()));
        }
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    })
}

/// An artifact error as the engine's: the network's (retried), this machine's (its disk, its
/// settings), or the poster's (a shard that is not there or not readable, or larger than the
/// index says), as a check classifies the dataset's.
fn from_artifact(uri: &str, e: ArtifactError) -> Error {
    let uri = uri.to_string();
    match e {
        e if e.is_transient() => Error::Fetch {
            uri,
            reason: e.to_string(),
        },
        ArtifactError::TooLarge { limit, .. } => Error::TooLarge { uri, limit },
        ArtifactError::Io { path, source } => Error::Io {
            path: path.into(),
            source,
        },
        // This machine's settings (as its device would be): retried once they are fixed,
        // never the poster's.
        e @ ArtifactError::Config(_) => Error::Device(format!("{uri}: {e}")),
        // Not there, not readable, a store's final answer: as a check treats the dataset's.
        e => Error::Unavailable {
            uri,
            reason: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use tensorgrid_train::Fault;

    use super::*;

    /// Whose a shard's failure is, as a check judges the dataset's: the network's retried,
    /// a shard not there or not readable the poster's, this disk's this machine's.
    #[test]
    fn a_shards_failures_are_classified_as_a_datasets() {
        let uri = "s3://b/k";
        let fault = |e| from_artifact(uri, e).fault();
        let u = || uri.to_string();
        assert_eq!(
            fault(ArtifactError::Unreachable {
                uri: u(),
                reason: "connection refused".into()
            }),
            Fault::Transient
        );
        for e in [
            ArtifactError::NotFound { uri: u() },
            ArtifactError::Denied {
                uri: u(),
                reason: "403".into(),
            },
            ArtifactError::TooLarge { uri: u(), limit: 3 },
        ] {
            assert_eq!(fault(e), Fault::Poster);
        }
        let io = ArtifactError::Io {
            path: "/w/datasets/x".into(),
            source: std::io::Error::from(std::io::ErrorKind::StorageFull),
        };
        assert_eq!(fault(io), Fault::Transient);
        assert_eq!(
            fault(ArtifactError::Config("no region".into())),
            Fault::Transient
        );
    }
}
