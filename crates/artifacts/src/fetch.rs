use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    sync::Arc,
};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use object_store::{local::LocalFileSystem, path::Path as ObjPath, ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use url::Url;

use crate::{aws, http, ArtifactError, Result};

/// Which URIs may be read. URIs on the chain come from strangers: by default only `s3://` and
/// `https://` to public addresses; plain `http://` and private or loopback addresses only when
/// asked for (a local server), and `file://` only inside one directory the reader chose (its
/// own local store), never anywhere else on the machine.
#[derive(Debug, Clone, Default)]
pub struct ReadPolicy {
    pub allow_http: bool,
    pub allow_private: bool,
    pub local_root: Option<PathBuf>,
    /// `Some(buckets)`: this environment's AWS credentials sign reads from these buckets only;
    /// any other `s3://` bucket named by a stranger is read anonymously (public objects), so a
    /// URI on the chain cannot make the reader fetch private objects with its own keys.
    /// `None`: every bucket is read with the credentials.
    pub signed_buckets: Option<Vec<String>>,
}

impl ReadPolicy {
    pub fn with_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// Loopback, private and link-local addresses (a local server, not a cloud's metadata
    /// service reached through a stranger's URI).
    pub fn with_private(mut self, allow: bool) -> Self {
        self.allow_private = allow;
        self
    }

    /// Signs S3 reads only for `buckets`; others are read anonymously.
    pub fn sign_only(mut self, buckets: Vec<String>) -> Self {
        self.signed_buckets = Some(buckets);
        self
    }

    pub fn with_local_root(mut self, dir: PathBuf) -> Self {
        self.local_root = Some(dir.canonicalize().unwrap_or(dir));
        self
    }
}

/// Where fetched bytes go, hashed on the way.
pub(crate) enum Sink {
    Memory(BytesMut),
    File(tokio::fs::File, PathBuf),
}

pub(crate) struct Capped<'a> {
    uri: &'a str,
    pub(crate) limit: u64,
    seen: u64,
    hasher: Sha256,
    sink: Sink,
}

impl Capped<'_> {
    pub(crate) async fn push(&mut self, chunk: &[u8]) -> Result<()> {
        self.seen = self.seen.saturating_add(chunk.len() as u64);
        if self.seen > self.limit {
            return Err(ArtifactError::TooLarge {
                uri: self.uri.into(),
                limit: self.limit,
            });
        }
        self.hasher.update(chunk);
        match &mut self.sink {
            Sink::Memory(buf) => buf.extend_from_slice(chunk),
            Sink::File(f, path) => f
                .write_all(chunk)
                .await
                .map_err(ArtifactError::io(path.display()))?,
        }
        Ok(())
    }
}

/// Reads the artifact at `uri` into memory, refusing it (before and while streaming) once it
/// exceeds `limit` bytes.
pub async fn fetch(uri: &str, limit: u64, policy: &ReadPolicy) -> Result<Bytes> {
    let mut c = Capped {
        uri,
        limit,
        seen: 0,
        hasher: Sha256::new(),
        sink: Sink::Memory(BytesMut::new()),
    };
    read(uri, policy, &mut c).await?;
    match c.sink {
        Sink::Memory(buf) => Ok(buf.freeze()),
        Sink::File(..) => unreachable!("fetch reads into memory"),
    }
}

/// Streams the artifact at `uri` into `path` (through `path.partial`, renamed when complete)
/// with the same cap, and returns its hex sha256. Large files never sit in memory.
pub async fn fetch_to_file(
    uri: &str,
    limit: u64,
    policy: &ReadPolicy,
    path: &Path,
) -> Result<String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.partial"));
    let file = tokio::fs::File::create(&tmp)
        .await
        .map_err(ArtifactError::io(tmp.display()))?;
    let mut c = Capped {
        uri,
        limit,
        seen: 0,
        hasher: Sha256::new(),
        sink: Sink::File(file, tmp.clone()),
    };
    let read_result = read(uri, policy, &mut c).await;
    let Capped { hasher, sink, .. } = c;
    if let Sink::File(mut f, _) = sink {
        let flushed = f.flush().await;
        drop(f);
        if let Err(e) = read_result.and(flushed.map_err(ArtifactError::io(tmp.display()))) {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
    }
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(ArtifactError::io(path.display()))?;
    Ok(hex::encode(hasher.finalize()))
}

/// The artifact's size, without reading it (an S3 HEAD, or an HTTP HEAD's `Content-Length`;
/// `None` when a server does not say). Under the same policy as a read.
pub async fn probe_size(uri: &str, policy: &ReadPolicy) -> Result<Option<u64>> {
    let url = parse(uri)?;
    if matches!(url.scheme(), "http" | "https") {
        return http::head(&url, uri, policy).await;
    }
    let (store, path) = locate(&url, uri, policy)?;
    let meta = store
        .head(&path)
        .await
        .map_err(|e| ArtifactError::from_store(uri, e))?;
    Ok(Some(meta.size))
}

async fn read(uri: &str, policy: &ReadPolicy, out: &mut Capped<'_>) -> Result<()> {
    let url = parse(uri)?;
    if matches!(url.scheme(), "http" | "https") {
        return http::get(&url, uri, policy, out).await;
    }
    let (store, path) = locate(&url, uri, policy)?;
    let got = store
        .get(&path)
        .await
        .map_err(|e| ArtifactError::from_store(uri, e))?;
    if got.meta.size > out.limit {
        return Err(ArtifactError::TooLarge {
            uri: uri.into(),
            limit: out.limit,
        });
    }
    let mut stream = got.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ArtifactError::from_store(uri, e))?;
        out.push(&chunk).await?;
    }
    Ok(())
}

fn parse(uri: &str) -> Result<Url> {
    let url = Url::parse(uri).map_err(|_| ArtifactError::UnsupportedScheme { uri: uri.into() })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ArtifactError::Forbidden {
            uri: uri.into(),
            reason: "credentials in a URL are not accepted".into(),
        });
    }
    Ok(url)
}

/// The store that serves an `s3://` or `file://` URI and the object's path in it.
fn locate(url: &Url, uri: &str, policy: &ReadPolicy) -> Result<(Arc<dyn ObjectStore>, ObjPath)> {
    let forbidden = |reason: &str| ArtifactError::Forbidden {
        uri: uri.into(),
        reason: reason.into(),
    };
    match url.scheme() {
        "s3" => {
            let bucket = url
                .host_str()
                .filter(|b| !b.is_empty())
                .ok_or_else(|| forbidden("no bucket"))?;
            let path = object_path(url, uri)?;
            let signed = policy
                .signed_buckets
                .as_ref()
                .is_none_or(|b| b.iter().any(|b| b == bucket));
            Ok((Arc::new(aws::s3_with(bucket, !signed)?), path))
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
            let path: ObjPath = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().to_string())
                .collect::<Vec<_>>()
                .iter()
                .map(|s| object_store::path::PathPart::from(s.as_str()))
                .collect();
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

/// An address anyone on the internet could be serving from: not loopback, private, link-local
/// (cloud metadata services live there), shared, documentation or unspecified.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240
                || o[0] == 0)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            let o = v6.octets();
            // Addresses that carry an IPv4 one: NAT64 (64:ff9b::/96, 64:ff9b:1::/48), 6to4
            // (2002::/16) and the deprecated IPv4-compatible ::/96 reach that IPv4 address.
            let embedded = if s[0] == 0x64 && s[1] == 0xff9b {
                Some(std::net::Ipv4Addr::new(o[12], o[13], o[14], o[15]))
            } else if s[0] == 0x2002 {
                Some(std::net::Ipv4Addr::new(o[2], o[3], o[4], o[5]))
            } else if s[..6].iter().all(|&x| x == 0) && !v6.is_loopback() && !v6.is_unspecified() {
                Some(std::net::Ipv4Addr::new(o[12], o[13], o[14], o[15]))
            } else {
                None
            };
            if let Some(v4) = embedded {
                return is_public(IpAddr::V4(v4));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0)
        }
    }
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
            ("https://127.0.0.1/x", "private"),
            ("https://169.254.169.254/latest/meta-data", "private"),
            ("https://[::1]/x", "private"),
            ("https://localhost/x", "private"),
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

    #[test]
    fn public_addresses() {
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "::127.0.0.1",
            "fec0::1",
            "198.18.0.1",
            "240.0.0.1",
            "192.0.0.8",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn local_root_confines_reads() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(dir.path().join("secret"), b"x").unwrap();
        std::fs::write(root.join("a/ok.bin"), b"hello").unwrap();
        let root = root.canonicalize().unwrap();
        let p = ReadPolicy::default().with_local_root(root.clone());
        let outside = Url::from_file_path(root.join("../secret"))
            .unwrap()
            .to_string();
        let e = fetch(&outside, 10, &p).await.unwrap_err().to_string();
        assert!(e.contains("outside"), "{e}");
        let inside = Url::from_file_path(root.join("a/ok.bin"))
            .unwrap()
            .to_string();
        assert_eq!(&fetch(&inside, 10, &p).await.unwrap()[..], b"hello");
        let to = dir.path().join("copy.bin");
        let sha = fetch_to_file(&inside, 10, &p, &to).await.unwrap();
        assert_eq!(sha, crate::sha256_hex(b"hello"));
        assert_eq!(std::fs::read(&to).unwrap(), b"hello");
        let e = fetch_to_file(&inside, 4, &p, &dir.path().join("big.bin"))
            .await
            .unwrap_err();
        assert!(matches!(e, ArtifactError::TooLarge { .. }));
        assert!(
            !dir.path().join("big.bin").exists() && !dir.path().join(".big.bin.partial").exists()
        );
    }
}
