//! Where a sharded dataset's shards come from on a worker (and for the CLI's verifier): the
//! artifact fetcher (s3://, https://, under the read policy), called from the training
//! thread, optionally through the work dir's dataset cache, and stopped by shutdown or the
//! job's deadline.

use std::{
    path::{Path, PathBuf},
    time::Instant,
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
}

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
        }
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

    /// A fetch in flight gives up when `cancel` fires or `deadline` passes (a transient
    /// error: the run keeps its state and resumes later).
    pub fn stopping(mut self, cancel: CancellationToken, deadline: Option<Instant>) -> Self {
        self.cancel = Some(cancel);
        self.deadline = deadline;
        self
    }

    fn block<T>(
        &self,
        uri: &str,
        fut: impl std::future::Future<Output = Result<T, ArtifactError>>,
    ) -> tensorgrid_train::Result<T> {
        let stopped = |why: &str| Error::Fetch {
            uri: uri.into(),
            reason: why.into(),
        };
        let cancel = self.cancel.clone().unwrap_or_default();
        let deadline = self.deadline;
        self.handle.block_on(async move {
            let until = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => Err(stopped("stopped while fetching")),
                _ = until => Err(stopped("not fetched before the deadline")),
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
        let tmp = cache
            .dir
            .join(format!(".{sha}.{}.shard", std::process::id()));
        let got = self.block(
            &shard.uri,
            fetch_to_file(&shard.uri, shard.bytes, &self.policy, &tmp),
        );
        let outcome = match got {
            Ok(got) if got == sha => std::fs::rename(&tmp, &path).map_err(Error::io(&path)),
            Ok(got) => Err(Error::HashMismatch {
                uri: shard.uri.clone(),
                expected: sha,
                actual: got,
            }),
            Err(e) => Err(e),
        };
        let _ = std::fs::remove_file(&tmp);
        outcome?;
        std::fs::read(&path).map_err(Error::io(&path))
    }
}

impl ShardStore for Shards {
    fn get(&self, shard: &Shard) -> tensorgrid_train::Result<Vec<u8>> {
        match &self.cache {
            Some(c) => self.get_cached(c, shard),
            None => self
                .block(&shard.uri, fetch(&shard.uri, shard.bytes, &self.policy))
                .map(|b| b.to_vec()),
        }
    }

    fn prefetch(&self) -> bool {
        self.prefetch
    }

    /// A shard behind the stream leaves a cache that is over its size (the next epoch fetches
    /// it again); under it, it stays for the next epoch.
    fn release(&self, shard: &Shard) {
        let Some(c) = &self.cache else { return };
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
        // This machine's settings: retried once they are fixed.
        e @ ArtifactError::Config(_) => Error::Fetch {
            uri,
            reason: e.to_string(),
        },
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
