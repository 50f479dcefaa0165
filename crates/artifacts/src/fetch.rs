use std::{path::PathBuf, sync::Arc};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use object_store::{
    http::HttpBuilder, local::LocalFileSystem, path::Path as ObjPath, ObjectStore, ObjectStoreExt,
};
use url::Url;

use crate::{aws, ArtifactError, Result};

/// Which URIs may be read. URIs on the chain come from strangers: by default only `s3://` and
/// `https://`; plain `http://` only when asked for (a local store), and `file://` only inside
/// one directory the reader chose (its own local store), never anywhere else on the machine.
#[derive(Debug, Clone, Default)]
pub struct ReadPolicy {
    pub allow_http: bool,
    pub local_root: Option<PathBuf>,
}

impl ReadPolicy {
    pub fn with_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    pub fn with_local_root(mut self, dir: PathBuf) -> Self {
        self.local_root = Some(dir.canonicalize().unwrap_or(dir));
        self
    }
}

/// Reads the artifact at `uri`, refusing it (before and while streaming) once it exceeds
/// `limit` bytes.
pub async fn fetch(uri: &str, limit: u64, policy: &ReadPolicy) -> Result<Bytes> {
    let (store, path) = locate(uri, policy)?;
    let got = store
        .get(&path)
        .await
        .map_err(|e| ArtifactError::from_store(uri, e))?;
    let too_large = || ArtifactError::TooLarge {
        uri: uri.into(),
        limit,
    };
    if got.meta.size > limit {
        return Err(too_large());
    }
    // The announced size is the server's word; the cap holds whatever it then sends.
    let mut buf = BytesMut::with_capacity(got.meta.size as usize);
    let mut stream = got.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ArtifactError::from_store(uri, e))?;
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// The store that serves `uri` and the object's path in it.
fn locate(uri: &str, policy: &ReadPolicy) -> Result<(Arc<dyn ObjectStore>, ObjPath)> {
    let forbidden = |reason: &str| ArtifactError::Forbidden {
        uri: uri.into(),
        reason: reason.into(),
    };
    let url = Url::parse(uri).map_err(|_| ArtifactError::UnsupportedScheme { uri: uri.into() })?;
    if url.username() != "" || url.password().is_some() {
        return Err(forbidden("credentials in a URL are not accepted"));
    }
    match url.scheme() {
        "s3" => {
            let bucket = url
                .host_str()
                .filter(|b| !b.is_empty())
                .ok_or_else(|| forbidden("no bucket"))?;
            let path = object_path(&url, uri)?;
            Ok((Arc::new(aws::s3(bucket)?), path))
        }
        "http" | "https" => {
            if url.scheme() == "http" && !policy.allow_http {
                return Err(forbidden(
                    "plain http:// is not allowed here (use https://)",
                ));
            }
            if url.query().is_some() || url.fragment().is_some() {
                return Err(forbidden("URLs with a query or fragment are not supported"));
            }
            let origin = url.origin().ascii_serialization();
            let store = HttpBuilder::new()
                .with_url(origin)
                .with_retry(aws::retry())
                .with_client_options(aws::client_options(policy.allow_http))
                .build()
                .map_err(|e| ArtifactError::Config(format!("{uri}: {e}")))?;
            Ok((Arc::new(store), object_path(&url, uri)?))
        }
        "file" => {
            let root = policy.local_root.as_ref().ok_or_else(|| {
                forbidden("local files are not read from URIs found on the chain")
            })?;
            let file = url
                .to_file_path()
                .map_err(|_| forbidden("not a local absolute path"))?;
            // Canonical paths: `..` and symlinks cannot leave the allowed directory.
            let file = file
                .canonicalize()
                .map_err(|_| ArtifactError::NotFound { uri: uri.into() })?;
            let rel = file
                .strip_prefix(root)
                .map_err(|_| forbidden("outside the local artifact directory"))?;
            let store = LocalFileSystem::new_with_prefix(root)
                .map_err(|e| ArtifactError::Config(format!("{}: {e}", root.display())))?;
            let path = ObjPath::from_filesystem_path(rel)
                .or_else(|_| ObjPath::parse(rel.to_string_lossy()))
                .map_err(|e| forbidden(&e.to_string()))?;
            Ok((Arc::new(store), path))
        }
        _ => Err(ArtifactError::UnsupportedScheme { uri: uri.into() }),
    }
}

fn object_path(url: &Url, uri: &str) -> Result<ObjPath> {
    let path = ObjPath::from_url_path(url.path()).map_err(|e| ArtifactError::Forbidden {
        uri: uri.into(),
        reason: e.to_string(),
    })?;
    if path.as_ref().is_empty() {
        return Err(ArtifactError::Forbidden {
            uri: uri.into(),
            reason: "no object path".into(),
        });
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hostile_uris_are_refused_before_any_request() {
        let p = ReadPolicy::default();
        for (uri, want) in [
            ("file:///etc/passwd", "local files"),
            ("http://example.com/x", "plain http"),
            ("https://user:pw@example.com/x", "credentials"),
            ("https://example.com/x?sig=1", "query"),
        ] {
            let e = fetch(uri, 10, &p).await.unwrap_err().to_string();
            assert!(e.contains(want), "{uri}: {e}");
        }
        for uri in ["ftp://x/y", "/etc/passwd", "gopher://a"] {
            let e = fetch(uri, 10, &p).await.unwrap_err();
            assert!(
                matches!(e, ArtifactError::UnsupportedScheme { .. }),
                "{uri}: {e}"
            );
        }
    }

    #[tokio::test]
    async fn local_root_confines_reads() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(dir.path().join("secret"), b"x").unwrap();
        let root = root.canonicalize().unwrap();
        let p = ReadPolicy::default().with_local_root(root.clone());
        let outside = Url::from_file_path(root.join("../secret"))
            .unwrap()
            .to_string();
        let e = fetch(&outside, 10, &p).await.unwrap_err().to_string();
        assert!(e.contains("outside"), "{e}");
    }

    #[tokio::test]
    async fn a_refused_connection_says_so() {
        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let uri = format!("http://127.0.0.1:{port}/data.bin");
        let e = fetch(&uri, 10, &ReadPolicy::default().with_http(true))
            .await
            .unwrap_err();
        assert!(e.is_transient(), "{e}");
        assert!(
            e.to_string().to_lowercase().contains("connection refused"),
            "{e}"
        );
    }
}
