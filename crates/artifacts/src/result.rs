//! A training result in the store: `manifest.json` and the files it lists, side by side. The
//! on-chain `result_uri` is the manifest's URI and `result_hash` its sha256, so downloading
//! starts from the manifest and every other file is checked against it.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::Deserialize;

use crate::{fetch, fetch_to_file, sha256_hex, ArtifactError, ReadPolicy, Result, Store};

pub const MANIFEST_FILE: &str = "manifest.json";
/// A manifest is a small JSON document; anything bigger is not one.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// Files a manifest may list beside the weights and the metrics.
const MAX_EXTRA_FILES: usize = 8;

/// A file the manifest lists (the fields every manifest entry has).
#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

/// The parts of a manifest the store needs: which files to fetch.
#[derive(Debug, Clone, Deserialize)]
struct Listing {
    weights: Entry,
    metrics: Entry,
    /// Files beside them (a gpt2 result's `config.json`).
    #[serde(default)]
    extra: Vec<Entry>,
}

/// What [`download`] fetched.
#[derive(Debug, Clone)]
pub struct Downloaded {
    /// sha256 of the manifest bytes as fetched (compare with the on-chain `result_hash`).
    pub manifest_sha256: String,
    /// Whether the files were fetched: not when the manifest is not the one expected.
    pub complete: bool,
    /// The listed files whose bytes do not hash to the manifest's entry (already written, so
    /// a verifier can report them).
    pub mismatched: Vec<String>,
    /// Paths written: the listed files, then the manifest.
    pub files: Vec<PathBuf>,
}

/// Uploads `files` of `dir` under `key_prefix`, the manifest last so that a reader never
/// finds a manifest whose files are not there yet. Returns the manifest's URI.
pub async fn publish(
    store: &Store,
    key_prefix: &str,
    dir: &Path,
    files: &[&str],
) -> Result<String> {
    let prefix = key_prefix.trim_matches('/');
    for name in files.iter().filter(|n| **n != MANIFEST_FILE) {
        let path = dir.join(name);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(ArtifactError::io(path.display()))?;
        store.put(&format!("{prefix}/{name}"), bytes).await?;
    }
    let path = dir.join(MANIFEST_FILE);
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(ArtifactError::io(path.display()))?;
    store.put(&format!("{prefix}/{MANIFEST_FILE}"), bytes).await
}

/// Downloads the manifest at `uri` and, if it hashes to `expected_sha256` (hex; the on-chain
/// result hash), the files it lists (from the same location) into `dest`, streamed to disk,
/// each capped at its listed size and all of them at `max_total` bytes. A manifest that is not
/// the expected one is written for inspection but its files are not fetched.
pub async fn download(
    uri: &str,
    dest: &Path,
    max_total: u64,
    expected_sha256: Option<&str>,
    policy: &ReadPolicy,
) -> Result<Downloaded> {
    let base = uri
        .rsplit_once('/')
        .map(|(b, _)| b)
        .filter(|_| uri.ends_with(MANIFEST_FILE))
        .ok_or_else(|| ArtifactError::Manifest {
            uri: uri.into(),
            reason: format!("a result URI names its {MANIFEST_FILE}"),
        })?;
    let manifest = fetch(uri, MAX_MANIFEST_BYTES, policy).await?;
    tokio::fs::create_dir_all(dest)
        .await
        .map_err(ArtifactError::io(dest.display()))?;
    let manifest_sha256 = sha256_hex(&manifest);
    let mut out = Downloaded {
        complete: expected_sha256.is_none_or(|e| e.eq_ignore_ascii_case(&manifest_sha256)),
        manifest_sha256,
        mismatched: Vec::new(),
        files: Vec::new(),
    };
    if out.complete {
        let listing: Listing =
            serde_json::from_slice(&manifest).map_err(|e| ArtifactError::Manifest {
                uri: uri.into(),
                reason: e.to_string(),
            })?;
        let mut total = manifest.len() as u64;
        // A stranger's manifest: a bounded number of files, each name checked.
        if listing.extra.len() > MAX_EXTRA_FILES {
            return Err(ArtifactError::Manifest {
                uri: uri.into(),
                reason: format!(
                    "{} extra files listed, at most {MAX_EXTRA_FILES}",
                    listing.extra.len()
                ),
            });
        }
        for entry in [&listing.weights, &listing.metrics]
            .into_iter()
            .chain(&listing.extra)
        {
            check_name(uri, &entry.path)?;
            total = total.saturating_add(entry.bytes);
            if total > max_total {
                return Err(ArtifactError::TooLarge {
                    uri: uri.into(),
                    limit: max_total,
                });
            }
            let path = dest.join(&entry.path);
            let sha = fetch_to_file(
                &format!("{base}/{}", entry.path),
                entry.bytes,
                policy,
                &path,
            )
            .await?;
            if sha != entry.sha256.to_ascii_lowercase() {
                out.mismatched.push(entry.path.clone());
            }
            out.files.push(path);
        }
    }
    out.files
        .push(write_atomic(dest, MANIFEST_FILE, manifest).await?);
    Ok(out)
}

/// Downloads one more file beside the manifest at `uri` (a committed training state, named by
/// its hash, which loading it checks) into `dest`, capped at `max_bytes`.
pub async fn download_beside(
    uri: &str,
    name: &str,
    max_bytes: u64,
    dest: &Path,
    policy: &ReadPolicy,
) -> Result<()> {
    let base = uri
        .rsplit_once('/')
        .map(|(b, _)| b)
        .ok_or_else(|| ArtifactError::Manifest {
            uri: uri.into(),
            reason: format!("a result URI names its {MANIFEST_FILE}"),
        })?;
    check_name(uri, name)?;
    fetch_to_file(
        &format!("{base}/{name}"),
        max_bytes,
        policy,
        &dest.join(name),
    )
    .await?;
    Ok(())
}

/// Uploads more files of `dir` beside a result already published under `key_prefix` (states
/// asked for after the result).
pub async fn publish_beside(
    store: &Store,
    key_prefix: &str,
    dir: &Path,
    name: &str,
) -> Result<String> {
    let prefix = key_prefix.trim_matches('/');
    check_name(prefix, name)?;
    let path = dir.join(name);
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(ArtifactError::io(path.display()))?;
    store.put(&format!("{prefix}/{name}"), bytes).await
}

/// A listed file is a plain name next to the manifest: no directories, no `..`, nothing hidden.
fn check_name(uri: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(ArtifactError::Manifest {
            uri: uri.into(),
            reason: format!("file name {name:?} is not a plain file name"),
        })
    }
}

async fn write_atomic(dir: &Path, name: &str, bytes: Bytes) -> Result<PathBuf> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.partial"));
    tokio::fs::write(&tmp, &bytes)
        .await
        .map_err(ArtifactError::io(tmp.display()))?;
    tokio::fs::rename(&tmp, &path)
        .await
        .map_err(ArtifactError::io(path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(weights: &[u8], weights_name: &str) -> String {
        serde_json::json!({
            "weights": {"path": weights_name, "sha256": sha256_hex(weights), "bytes": weights.len()},
            "metrics": {"path": "metrics.jsonl", "sha256": sha256_hex(b"m\n"), "bytes": 2},
        })
        .to_string()
    }

    #[tokio::test]
    async fn publish_then_download_checks_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("weights.safetensors"), b"WWWW").unwrap();
        std::fs::write(src.join("metrics.jsonl"), b"m\n").unwrap();
        std::fs::write(
            src.join(MANIFEST_FILE),
            manifest(b"WWWW", "weights.safetensors"),
        )
        .unwrap();
        let store = Store::open(dir.path().join("store").to_str().unwrap()).unwrap();
        let files = ["weights.safetensors", "metrics.jsonl", MANIFEST_FILE];
        let uri = publish(&store, "results/7", &src, &files).await.unwrap();
        assert!(uri.ends_with("results/7/manifest.json"), "{uri}");
        let policy = store.read_policy(ReadPolicy::default());
        let got = download(&uri, &dir.path().join("dl"), 1 << 20, None, &policy)
            .await
            .unwrap();
        assert!(got.mismatched.is_empty());
        assert_eq!(
            got.manifest_sha256,
            sha256_hex(&std::fs::read(src.join(MANIFEST_FILE)).unwrap())
        );

        // Weights swapped in the store: the download reports it.
        store
            .put("results/7/weights.safetensors", b"XXXX".to_vec())
            .await
            .unwrap();
        let got = download(&uri, &dir.path().join("dl2"), 1 << 20, None, &policy)
            .await
            .unwrap();
        assert_eq!(got.mismatched, vec!["weights.safetensors".to_string()]);

        // A bigger file than listed is refused while streaming.
        store
            .put("results/7/weights.safetensors", b"WWWWW".to_vec())
            .await
            .unwrap();
        let e = download(&uri, &dir.path().join("dl3"), 1 << 20, None, &policy)
            .await
            .unwrap_err();
        assert!(matches!(e, ArtifactError::TooLarge { .. }), "{e}");
        // And the total cap holds.
        let e = download(&uri, &dir.path().join("dl4"), 10, None, &policy)
            .await
            .unwrap_err();
        assert!(matches!(e, ArtifactError::TooLarge { .. }), "{e}");
        // Not the committed manifest: nothing but the manifest is fetched.
        let other = "0".repeat(64);
        let got = download(
            &uri,
            &dir.path().join("dl5"),
            1 << 20,
            Some(&other),
            &policy,
        )
        .await
        .unwrap();
        assert!(!got.complete && got.files.len() == 1);
        assert!(!dir.path().join("dl5/weights.safetensors").exists());
    }

    #[tokio::test]
    async fn listed_paths_cannot_leave_the_result() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store").to_str().unwrap()).unwrap();
        let uri = store
            .put(
                "r/manifest.json",
                manifest(b"W", "../../secret").into_bytes(),
            )
            .await
            .unwrap();
        let policy = store.read_policy(ReadPolicy::default());
        let e = download(&uri, &dir.path().join("dl"), 1 << 20, None, &policy)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not a plain file name"), "{e}");
        assert!(!dir.path().join("secret").exists());
    }

    /// A gpt2 result lists its Hugging Face `config.json` beside the weights: fetched and
    /// checked like them; an extra name that leaves the result, or too many extras, is refused.
    #[tokio::test]
    async fn extra_files_are_fetched_checked_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store").to_str().unwrap()).unwrap();
        let with_extra = |extra: serde_json::Value| {
            let mut m: serde_json::Value =
                serde_json::from_str(&manifest(b"W", "model.safetensors")).unwrap();
            m["extra"] = extra;
            m.to_string().into_bytes()
        };
        store
            .put("r/model.safetensors", b"W".to_vec())
            .await
            .unwrap();
        store.put("r/metrics.jsonl", b"m\n".to_vec()).await.unwrap();
        store.put("r/config.json", b"{}".to_vec()).await.unwrap();
        let entry =
            |name: &str| serde_json::json!({"path": name, "sha256": sha256_hex(b"{}"), "bytes": 2});
        let uri = store
            .put(
                "r/manifest.json",
                with_extra(serde_json::json!([entry("config.json")])),
            )
            .await
            .unwrap();
        let policy = store.read_policy(ReadPolicy::default());
        let got = download(&uri, &dir.path().join("dl"), 1 << 20, None, &policy)
            .await
            .unwrap();
        assert!(got.mismatched.is_empty(), "{:?}", got.mismatched);
        assert_eq!(
            std::fs::read(dir.path().join("dl/config.json")).unwrap(),
            b"{}"
        );

        let uri = store
            .put(
                "r/manifest.json",
                with_extra(serde_json::json!([entry("../x.json")])),
            )
            .await
            .unwrap();
        let e = download(&uri, &dir.path().join("dl2"), 1 << 20, None, &policy)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not a plain file name"), "{e}");
        let many: Vec<serde_json::Value> = (0..9).map(|i| entry(&format!("f{i}.json"))).collect();
        let uri = store
            .put("r/manifest.json", with_extra(many.into()))
            .await
            .unwrap();
        let e = download(&uri, &dir.path().join("dl3"), 1 << 20, None, &policy)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("at most 8"), "{e}");
    }
}
