//! Several RPC endpoints, tried in order: the client stays on the one that last answered and
//! moves on when it stops answering, with backoff between full rounds.

use std::{
    future::Future,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_rpc_client_api::client_error::Result as ClientResult;

use super::{
    backoff::Backoff,
    error::{classify, Fault},
    ChainConfig, ChainError,
};

pub(crate) struct Endpoints {
    clients: Vec<Arc<RpcClient>>,
    /// The endpoints as shown in logs and errors: without credentials (`?api-key=…`,
    /// `user:pass@`), which RPC providers put in URLs.
    urls: Vec<String>,
    active: AtomicUsize,
    max_rounds: u32,
    /// Bounds one request whatever the HTTP client does inside it (it retries HTTP 429 by
    /// itself, honouring `Retry-After` for minutes).
    request_timeout: std::time::Duration,
}

/// `url` fit to print: no query (providers put API keys there), no user or password.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let hidden = u.query().is_some() || !u.username().is_empty() || u.password().is_some();
            if !hidden {
                return url.to_string();
            }
            u.set_query(None);
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string() + "?…"
        }
        Err(_) => "(an RPC URL that does not parse)".into(),
    }
}

impl Endpoints {
    pub fn new(config: &ChainConfig) -> Self {
        let clients = config
            .rpc_urls
            .iter()
            .map(|url| {
                Arc::new(RpcClient::new_with_timeout_and_commitment(
                    url.clone(),
                    config.request_timeout,
                    config.commitment_config(),
                ))
            })
            .collect();
        Self {
            clients,
            urls: config.rpc_urls.iter().map(|u| redact_url(u)).collect(),
            active: AtomicUsize::new(0),
            max_rounds: config.max_rounds.max(1),
            request_timeout: config.request_timeout,
        }
    }

    /// The endpoint requests go to now.
    pub fn active_url(&self) -> &str {
        &self.urls[self.active.load(Ordering::Relaxed) % self.urls.len()]
    }

    /// How many endpoints are configured.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Runs `request` once on every endpoint (no failover, no retry), in the configured order:
    /// each node's own answer, for a caller that must not act on one node's word.
    pub async fn call_each<T, F, Fut>(&self, request: F) -> Vec<Result<T, ChainError>>
    where
        F: Fn(Arc<RpcClient>) -> Fut,
        Fut: Future<Output = ClientResult<T>>,
    {
        let mut out = Vec::with_capacity(self.clients.len());
        for (client, url) in self.clients.iter().zip(&self.urls) {
            let answer = tokio::time::timeout(self.request_timeout, request(client.clone())).await;
            out.push(match answer {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(match classify(e) {
                    Fault::Final(e) => e,
                    Fault::Transport(m) => ChainError::Unreachable {
                        urls: url.clone(),
                        last: m,
                    },
                }),
                Err(_) => Err(ChainError::Unreachable {
                    urls: url.clone(),
                    last: "no answer in time".into(),
                }),
            });
        }
        out
    }

    /// Runs `request` on the active endpoint; on a transport fault, on the next ones in
    /// order, then again after a backoff, up to `max_rounds` rounds. A real answer from the
    /// node (including an error) ends it at once.
    pub async fn call<T, F, Fut>(&self, what: &str, request: F) -> Result<T, ChainError>
    where
        F: Fn(Arc<RpcClient>) -> Fut,
        Fut: Future<Output = ClientResult<T>>,
    {
        let n = self.clients.len();
        let mut backoff = Backoff::new(
            std::time::Duration::from_millis(100),
            std::time::Duration::from_secs(5),
        );
        let mut last = String::new();
        for round in 0..self.max_rounds {
            let first = self.active.load(Ordering::Relaxed);
            for i in 0..n {
                let idx = (first + i) % n;
                let attempt =
                    tokio::time::timeout(self.request_timeout, request(self.clients[idx].clone()));
                let result = match attempt.await {
                    Ok(r) => r.map_err(classify),
                    Err(_) => Err(Fault::Transport(format!(
                        "no answer within {} s",
                        self.request_timeout.as_secs()
                    ))),
                };
                match result {
                    Ok(value) => {
                        if idx != first % n {
                            tracing::warn!(url = %self.urls[idx], failed = %self.urls[first % n], error = %last, "switched RPC endpoint");
                            self.active.store(idx, Ordering::Relaxed);
                        }
                        return Ok(value);
                    }
                    Err(Fault::Final(e)) => return Err(e),
                    Err(Fault::Transport(m)) => {
                        // Per attempt at debug: the caller says once that the chain is out of
                        // reach (a retry loop would otherwise log every attempt, forever).
                        tracing::debug!(url = %self.urls[idx], request = what, error = %m, "RPC endpoint failed");
                        last = if n > 1 {
                            format!("last {}: {m}", self.urls[idx])
                        } else {
                            m
                        };
                    }
                }
            }
            if round + 1 < self.max_rounds {
                backoff.wait().await;
            }
        }
        Err(ChainError::Unreachable {
            urls: self.urls.join(", "),
            last,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn credentials_in_urls_are_not_shown() {
        let shown = redact_url("https://user:pw@rpc.example.com/v1?api-key=SECRET");
        assert!(
            !shown.contains("SECRET") && !shown.contains("pw") && !shown.contains("user"),
            "{shown}"
        );
        assert!(shown.starts_with("https://rpc.example.com/v1"), "{shown}");
        assert_eq!(redact_url("http://127.0.0.1:8899"), "http://127.0.0.1:8899");
    }
}
