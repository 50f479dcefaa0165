use std::{path::PathBuf, sync::Arc};

use bytes::Bytes;
use object_store::{local::LocalFileSystem, path::Path as ObjPath, ObjectStore, ObjectStoreExt};
use url::Url;

use crate::{aws, fetch::ReadPolicy, ArtifactError, Result};

/// A place to publish artifacts: `s3://bucket[/prefix]` or a local directory (`file:///dir`
/// or a path). Keys are relative to the prefix; [`Store::put`] returns the URI anyone with
/// read access to the store can fetch.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    /// `s3://bucket/prefix/` or `file:///abs/dir/`, always ending in `/`.
    root: String,
    prefix: ObjPath,
    local_dir: Option<PathBuf>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("root", &self.root).finish()
    }
}

impl Store {
    /// Opens the store at `url`. A local directory is created if missing.
    pub fn open(url: &str) -> Result<Self> {
        let url = url.trim();
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(ArtifactError::Config(format!(
                    "{url}: no bucket (expected s3://bucket[/prefix])"
                )));
            }
            let prefix = prefix.trim_matches('/');
            let root = if prefix.is_empty() {
                format!("s3://{bucket}/")
            } else {
                format!("s3://{bucket}/{prefix}/")
            };
            return Ok(Self {
                inner: Arc::new(aws::s3(bucket)?),
                root,
                prefix: ObjPath::from(prefix),
                local_dir: None,
            });
        }
        if url.starts_with("http://") || url.starts_with("https://") {
            return Err(ArtifactError::Config(format!(
                "{url}: HTTP(S) URLs are read-only; publish to s3://bucket/prefix or a directory"
            )));
        }
        let dir = if url.starts_with("file:") {
            Url::parse(url)
                .ok()
                .and_then(|u| u.to_file_path().ok())
                .ok_or_else(|| {
                    ArtifactError::Config(format!("{url}: not a file:///absolute/path"))
                })?
        } else if url.contains("://") {
            return Err(ArtifactError::UnsupportedScheme { uri: url.into() });
        } else {
            PathBuf::from(url)
        };
        std::fs::create_dir_all(&dir).map_err(ArtifactError::io(dir.display()))?;
        let dir = dir
            .canonicalize()
            .map_err(ArtifactError::io(dir.display()))?;
        let fs = LocalFileSystem::new_with_prefix(&dir)
            .map_err(|e| ArtifactError::Config(format!("{}: {e}", dir.display())))?;
        let root = Url::from_directory_path(&dir)
            .map_err(|_| ArtifactError::Config(format!("{}: not an absolute path", dir.display())))?
            .to_string();
        Ok(Self {
            inner: Arc::new(fs),
            root,
            prefix: ObjPath::default(),
            local_dir: Some(dir),
        })
    }

    /// The directory a local store URL names (canonical when it exists), without opening or
    /// creating anything; `None` for S3 and HTTP(S) URLs.
    pub fn local_dir_of(url: &str) -> Option<PathBuf> {
        let url = url.trim();
        let dir = if url.starts_with("file:") {
            Url::parse(url).ok()?.to_file_path().ok()?
        } else if url.contains("://") {
            return None;
        } else {
            PathBuf::from(url)
        };
        Some(dir.canonicalize().unwrap_or(dir))
    }

    /// `s3://bucket/prefix/` or `file:///dir/`.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The directory of a local store (what a [`ReadPolicy`] must allow to read it back).
    pub fn local_dir(&self) -> Option<&std::path::Path> {
        self.local_dir.as_deref()
    }

    /// A read policy that also allows reading this store back (a local directory).
    pub fn read_policy(&self, base: ReadPolicy) -> ReadPolicy {
        match &self.local_dir {
            Some(d) => base.with_local_root(d.clone()),
            None => base,
        }
    }

    /// The bucket of an S3 store.
    pub fn bucket(&self) -> Option<&str> {
        self.root
            .strip_prefix("s3://")
            .and_then(|r| r.split('/').next())
    }

    /// The URI of `key` in this store.
    pub fn uri(&self, key: &str) -> String {
        format!("{}{}", self.root, key.trim_start_matches('/'))
    }

    fn path(&self, key: &str) -> ObjPath {
        self.prefix
            .parts()
            .chain(ObjPath::from(key.trim_start_matches('/')).parts())
            .collect()
    }

    /// Writes `bytes` at `key` (atomically: readers see all of it or nothing) and returns its URI.
    pub async fn put(&self, key: &str, bytes: impl Into<Bytes>) -> Result<String> {
        let uri = self.uri(key);
        self.inner
            .put(&self.path(key), bytes.into().into())
            .await
            .map_err(|e| ArtifactError::from_store(&uri, e))?;
        tracing::debug!(%uri, "artifact stored");
        Ok(uri)
    }

    /// Whether `key` exists (and its size).
    pub async fn size(&self, key: &str) -> Result<Option<u64>> {
        let uri = self.uri(key);
        match self.inner.head(&self.path(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(ArtifactError::from_store(&uri, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_store_round_trips_through_fetch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("art").to_str().unwrap()).unwrap();
        assert!(store.root().starts_with("file:///"));
        let uri = store.put("specs/a b.json", b"{}".to_vec()).await.unwrap();
        assert_eq!(store.size("specs/a b.json").await.unwrap(), Some(2));
        // Not readable unless the policy allows this directory.
        let err = crate::fetch(&uri, 100, &ReadPolicy::default())
            .await
            .unwrap_err();
        assert!(matches!(err, ArtifactError::Forbidden { .. }), "{err}");
        let policy = store.read_policy(ReadPolicy::default());
        let got = crate::fetch(&uri, 100, &policy).await.unwrap();
        assert_eq!(&got[..], b"{}");
        let err = crate::fetch(&uri, 1, &policy).await.unwrap_err();
        assert!(matches!(err, ArtifactError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn store_urls() {
        assert!(matches!(
            Store::open("https://example.com/x"),
            Err(ArtifactError::Config(_))
        ));
        assert!(matches!(
            Store::open("gs://bucket"),
            Err(ArtifactError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            Store::open("s3://"),
            Err(ArtifactError::Config(_))
        ));
        let s = Store::open("s3://bucket/some/prefix/").unwrap();
        assert_eq!(
            s.uri("results/1/manifest.json"),
            "s3://bucket/some/prefix/results/1/manifest.json"
        );
    }
}
