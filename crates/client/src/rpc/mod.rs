//! The async chain client (feature `rpc`): one code path to the chain for the CLI, the worker
//! and the end-to-end tests, over standard Solana JSON-RPC and websocket.
//!
//! - reads: typed accounts ([`accounts`]), filtered scans ([`queries`]);
//! - writes: simulate, size the compute budget, price it, sign, send, confirm, never twice
//!   ([`send`]);
//! - errors a person can read ([`ChainError`]);
//! - events decoded from the executed transaction ([`TxOutcome`]);
//! - a job feed that survives dropped websockets ([`subscribe`]);
//! - several endpoints with failover and backoff.

pub mod accounts;
pub mod backoff;
pub mod config;
pub mod disputes;
mod endpoints;
pub mod error;
pub mod history;
pub mod keypair;
pub mod outage;
pub mod queries;
pub mod send;
pub mod solana_config;
pub mod subscribe;

use std::sync::Arc;

pub use accounts::ProgramAccount;
pub use backoff::Backoff;
pub use config::{ChainConfig, PriorityFeeConfig};
pub use disputes::{DisputeEntry, Draw};
pub use error::ChainError;
pub use keypair::{read_keypair, read_signer, KeypairError};
pub use outage::Outage;
pub use queries::{JobEntry, JobFilter, JobQuery};
pub use send::{Landed, SendOptions, TxOutcome};
pub use subscribe::{FeedConfig, JobFeed, JobSeen, Source};

pub use solana_commitment_config::CommitmentLevel;
pub use solana_keypair::Keypair;
pub use solana_rpc_client::nonblocking::rpc_client::RpcClient;
pub use solana_signature::Signature;
pub use solana_signer::Signer;
pub use tokio_util::sync::CancellationToken;

use endpoints::Endpoints;

/// The chain client. Cheap to clone: clones share endpoints and their failover state.
#[derive(Clone)]
pub struct ChainClient {
    config: Arc<ChainConfig>,
    endpoints: Arc<Endpoints>,
}

impl ChainClient {
    pub fn new(config: ChainConfig) -> Result<Self, ChainError> {
        config.validate()?;
        Ok(Self {
            endpoints: Arc::new(Endpoints::new(&config)),
            config: Arc::new(config),
        })
    }

    /// A client for one endpoint with the default settings.
    pub fn for_url(url: impl Into<String>) -> Result<Self, ChainError> {
        Self::new(ChainConfig::new(url))
    }

    pub fn config(&self) -> &ChainConfig {
        &self.config
    }

    /// The endpoint requests go to now (it changes on failover).
    pub fn active_url(&self) -> &str {
        self.endpoints.active_url()
    }

    /// Checks that an endpoint answers (`getVersion`), returning the node's version.
    pub async fn ping(&self) -> Result<String, ChainError> {
        let version = self
            .endpoints
            .call("getVersion", |c| async move { c.get_version().await })
            .await?;
        Ok(version.solana_core)
    }

    /// Raw JSON-RPC for methods the client does not wrap (e.g. a local chain's cheatcodes).
    pub async fn raw<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        method: &'static str,
        params: serde_json::Value,
    ) -> Result<T, ChainError> {
        if !params.is_array() {
            return Err(ChainError::Config(format!(
                "{method}: params must be a JSON array"
            )));
        }
        self.endpoints
            .call(method, move |c| {
                let params = params.clone();
                async move {
                    c.send::<T>(
                        solana_rpc_client_api::request::RpcRequest::Custom { method },
                        params,
                    )
                    .await
                }
            })
            .await
    }
}
