//! Where artifacts go and what may be read: `--store` (an S3 URL or a directory) and
//! `--allow-http`.

use anyhow::{anyhow, Result};
use clap::Args;
use tensorgrid_artifacts::{ReadPolicy, Store};

#[derive(Args, Debug, Clone, Default)]
pub struct StoreArgs {
    /// Artifact store for specs and results: s3://bucket[/prefix] (AWS, R2, MinIO; endpoint
    /// and credentials from the AWS environment or ~/.aws) or a local directory.
    #[arg(long, env = "TENSORGRID_STORE")]
    pub store: Option<String>,
    /// Also read plain http:// URLs and private or loopback addresses (a local server);
    /// https:// to public addresses and s3:// are always read.
    #[arg(long, env = "TENSORGRID_ALLOW_HTTP")]
    pub allow_http: bool,
}

impl StoreArgs {
    pub fn open(&self) -> Result<Store> {
        let url = self.store.as_deref().ok_or_else(|| {
            anyhow!("no artifact store: pass --store s3://bucket/prefix (or a directory), or set TENSORGRID_STORE")
        })?;
        Ok(Store::open(url)?)
    }

    /// What may be read: s3 and public https, http and private addresses when allowed, and
    /// the local store's own directory.
    pub fn read_policy(&self) -> ReadPolicy {
        let base = ReadPolicy::default()
            .with_http(self.allow_http)
            .with_private(self.allow_http);
        match self.store.as_deref().and_then(Store::local_dir_of) {
            Some(dir) => base.with_local_root(dir),
            None => base,
        }
    }
}
