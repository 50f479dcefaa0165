//! A job's files besides its dataset (a tokenizer, initial weights), fetched into memory and
//! attached to its spec: what a verifier and a judge re-running a segment need. (The worker's
//! own training keeps them in its cache on disk: `check` and `pipeline`.)

use tensorgrid_artifacts::{fetch, ArtifactError, ReadPolicy};
use tensorgrid_train::spec::JobSpec;

/// Why a file could not be had.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{role}: {source}")]
    Fetch {
        role: &'static str,
        #[source]
        source: ArtifactError,
    },
    /// Fetched, but not the bytes the spec names (size or sha256).
    #[error("{role}: {source}")]
    Mismatch {
        role: &'static str,
        #[source]
        source: tensorgrid_train::Error,
    },
}

/// Fetches each of `spec`'s files (at most its stated size) and attaches it.
pub async fn fetch_files(spec: &mut JobSpec, policy: &ReadPolicy) -> Result<(), FileError> {
    for (role, f) in spec.files_mut() {
        let bytes = fetch(&f.uri, f.bytes, policy)
            .await
            .map_err(|source| FileError::Fetch { role, source })?;
        // `Bytes` to `Vec` without a copy when it is the only handle (it is: just fetched).
        f.attach(role, bytes.into())
            .map_err(|source| FileError::Mismatch { role, source })?;
    }
    Ok(())
}
