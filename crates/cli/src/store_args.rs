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
    /// Also read plain http:// URLs (a local server); https:// and s3:// are always read.
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

    /// What may be read: s3 and https, http when allowed, and the local store's own directory.
    pub fn read_policy(&self) -> ReadPolicy {
        let base = ReadPolicy::default().with_http(self.allow_http);
        match self.store.as_deref().map(Store::open) {
            Some(Ok(store)) => store.read_policy(base),
            _ => base,
        }
    }
}
