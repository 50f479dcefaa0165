//! tensorgrid's artifact store: where job specs, datasets and results live off-chain. The
//! chain stores only their URIs and sha256 hashes.
//!
//! - [`Store`]: a place to publish to — an S3-compatible bucket (`s3://bucket/prefix`; AWS,
//!   Cloudflare R2, MinIO, the local S3 server of `tensorgrid localnet`) or a local directory;
//! - [`fetch`] / [`fetch_to_file`]: read any artifact URI (`s3://`, `https://` to public
//!   addresses; `http://`, private addresses and `file://` only when the [`ReadPolicy`] allows
//!   them), with a size cap enforced while streaming, because URIs on the chain come from
//!   strangers;
//! - [`result`]: publishing a result directory and downloading one by its manifest.
//!
//! Credentials come only from the environment (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`, …) or
//! the standard AWS files (`~/.aws/credentials`, `~/.aws/config`), and are never logged.

mod aws;
mod error;
mod fetch;
mod http;
pub mod result;
mod store;

pub mod progress;
pub use error::{ArtifactError, Result};
pub use fetch::{fetch, fetch_to_file, probe_size, ReadPolicy};
pub use store::Store;

use sha2::{Digest, Sha256};

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
