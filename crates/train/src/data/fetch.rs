//! Getting dataset bytes: from a local file or over HTTP(S), with a size limit, verified
//! against the spec's sha256 before anything uses them, and cached by hash.

use std::{
    fs,
    io::Read,
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Returns the dataset bytes once their sha256 equals `expected` (hex).
pub fn fetch(
    uri: &str,
    expected: &str,
    max_bytes: u64,
    base_dir: &Path,
    cache_dir: Option<&Path>,
) -> Result<Vec<u8>> {
    let expected = expected.to_ascii_lowercase();
    let bytes = if let Some(path) = uri.strip_prefix("file:") {
        read_file(uri, &resolve(path, base_dir), max_bytes)?
    } else if uri.starts_with("http://") || uri.starts_with("https://") {
        if let Some(hit) = cache_dir
            .and_then(|c| cached(c, &expected))
            .filter(|b| b.len() as u64 <= max_bytes)
        {
            tracing::debug!(uri, "dataset from cache");
            return Ok(hit);
        }
        download(uri, max_bytes)?
    } else {
        return Err(Error::Unavailable {
            uri: uri.into(),
            reason: "unsupported scheme (this reads file:, http:// and https://)".into(),
        });
    };
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != expected {
        return Err(Error::HashMismatch {
            uri: uri.into(),
            expected,
            actual,
        });
    }
    if let (Some(dir), true) = (cache_dir, uri.starts_with("http")) {
        store(dir, &actual, &bytes)?;
    }
    Ok(bytes)
}

/// `file:///abs`, `file:/abs` and `file:rel` (relative to `base_dir`).
fn resolve(path: &str, base_dir: &Path) -> PathBuf {
    let path = path.strip_prefix("//").unwrap_or(path);
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base_dir.join(p)
    }
}

fn read_file(uri: &str, path: &Path, max_bytes: u64) -> Result<Vec<u8>> {
    let too_large = || Error::TooLarge {
        uri: uri.into(),
        limit: max_bytes,
    };
    if fs::metadata(path).map_err(Error::io(path))?.len() > max_bytes {
        return Err(too_large());
    }
    // The length of a device or a pipe says nothing: read at most one byte past the cap.
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|f| f.take(max_bytes + 1).read_to_end(&mut bytes))
        .map_err(Error::io(path))?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Downloads on a thread of its own: reqwest's blocking client runs its own async runtime,
/// which panics when created or dropped on a thread that is inside another one (a worker's
/// tokio runtime, `spawn_blocking` included). A plain thread is never inside one.
fn download(uri: &str, max_bytes: u64) -> Result<Vec<u8>> {
    std::thread::scope(|s| {
        s.spawn(|| download_here(uri, max_bytes))
            .join()
            .unwrap_or_else(|_| {
                Err(Error::Fetch {
                    uri: uri.into(),
                    reason: "the download thread panicked".into(),
                })
            })
    })
}

fn download_here(uri: &str, max_bytes: u64) -> Result<Vec<u8>> {
    let fail = |reason: String| Error::Fetch {
        uri: uri.into(),
        reason,
    };
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .map_err(|e| fail(causes(&e)))?;
    let resp = client.get(uri).send().map_err(|e| fail(causes(&e)))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let reason = format!("HTTP {status}");
        // A 4xx other than "too many requests" / "timeout" is the server's final answer.
        if status.is_client_error() && status.as_u16() != 429 && status.as_u16() != 408 {
            return Err(Error::Unavailable {
                uri: uri.into(),
                reason,
            });
        }
        return Err(fail(reason));
    }
    if resp.content_length().is_some_and(|n| n > max_bytes) {
        return Err(Error::TooLarge {
            uri: uri.into(),
            limit: max_bytes,
        });
    }
    // Stream with a hard cap: a server may lie about (or omit) its length.
    let mut bytes = Vec::new();
    resp.take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(causes(&e)))?;
    if bytes.len() as u64 > max_bytes {
        return Err(Error::TooLarge {
            uri: uri.into(),
            limit: max_bytes,
        });
    }
    Ok(bytes)
}

/// The error and its sources on one line ("error sending request …: connection refused"):
/// reqwest's own message omits the cause a person can act on.
fn causes(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(err) = cur {
        let msg = err.to_string();
        if !parts.iter().any(|p| p.contains(&msg)) {
            parts.push(msg);
        }
        cur = err.source();
    }
    parts.join(": ")
}

fn cached(dir: &Path, sha256: &str) -> Option<Vec<u8>> {
    let bytes = fs::read(dir.join(sha256)).ok()?;
    // A corrupted cache entry is ignored, not trusted.
    (hex::encode(Sha256::digest(&bytes)) == sha256).then_some(bytes)
}

fn store(dir: &Path, sha256: &str, bytes: &[u8]) -> Result<()> {
    fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let tmp = dir.join(format!("{sha256}.partial"));
    fs::write(&tmp, bytes).map_err(Error::io(&tmp))?;
    fs::rename(&tmp, dir.join(sha256)).map_err(Error::io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_url_says_why() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let uri = format!("http://127.0.0.1:{port}/d.csv");
        let e = fetch(&uri, &"0".repeat(64), 10, Path::new("."), None).unwrap_err();
        let msg = e.to_string().to_lowercase();
        assert!(msg.contains("connection refused"), "{msg}");
    }
}
