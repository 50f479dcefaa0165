//! How the client reaches the chain: endpoints, commitment, fees and time limits.

use std::time::Duration;

use solana_commitment_config::{CommitmentConfig, CommitmentLevel};

use super::ChainError;

/// Priority fee policy: a percentile of `getRecentPrioritizationFees` over the accounts a
/// transaction writes, never above `max_micro_lamports` per compute unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorityFeeConfig {
    /// `None`: no priority fee at all.
    pub percentile: Option<u8>,
    pub max_micro_lamports: u64,
}

impl PriorityFeeConfig {
    pub const OFF: Self = Self {
        percentile: None,
        max_micro_lamports: 0,
    };

    /// The default for an endpoint: off on a local chain (no competition for block space, and
    /// a fee there only costs the tester), the 75th percentile capped at 100,000 µlamports/CU
    /// (0.02 SOL for a 200k-CU transaction at worst) elsewhere.
    pub fn default_for(url: &str) -> Self {
        if is_local(url) {
            Self::OFF
        } else {
            Self {
                percentile: Some(75),
                max_micro_lamports: 100_000,
            }
        }
    }
}

/// Whether `url` points at this machine.
pub fn is_local(url: &str) -> bool {
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "0.0.0.0")
}

/// The websocket URL the Solana CLI derives from an HTTP one: same host, `ws(s)`, port + 1.
pub fn websocket_url_for(rpc_url: &str) -> String {
    let (scheme, rest) = match rpc_url.split_once("://") {
        Some(("https", rest)) => ("wss", rest),
        Some((_, rest)) => ("ws", rest),
        None => ("ws", rpc_url),
    };
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    // The port is after the last ':' unless that ':' is inside an IPv6 literal ("[::1]").
    let authority = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => match port.parse::<u16>() {
            Ok(p) => format!("{host}:{}", p.wrapping_add(1)),
            Err(_) => authority.to_string(),
        },
        _ => authority.to_string(),
    };
    if path.is_empty() {
        format!("{scheme}://{authority}")
    } else {
        format!("{scheme}://{authority}/{path}")
    }
}

/// Everything [`ChainClient`](super::ChainClient) needs to know about where and how to talk.
#[derive(Debug, Clone)]
pub struct ChainConfig {
    /// JSON-RPC endpoints, tried in this order; the client stays on the one that answered.
    pub rpc_urls: Vec<String>,
    /// Websocket endpoint for subscriptions; by default derived from the first RPC URL.
    pub ws_url: Option<String>,
    /// The commitment reads are made at and writes are confirmed to.
    pub commitment: CommitmentLevel,
    pub priority_fee: PriorityFeeConfig,
    /// Compute-unit limit = simulated units × (100 + margin) / 100, plus 1,000.
    pub cu_margin_pct: u64,
    /// One HTTP request's limit.
    pub request_timeout: Duration,
    /// How long to wait for a transaction to reach `commitment` before giving up on it. The
    /// blockhash expiry (about a minute on a cluster) usually ends the wait first.
    pub confirm_timeout: Duration,
    /// Between two signature-status polls.
    pub poll_interval: Duration,
    /// Rounds over all endpoints before a read or a send is reported unreachable.
    pub max_rounds: u32,
}

impl ChainConfig {
    /// Sensible defaults for one endpoint (`priority_fee` by [`PriorityFeeConfig::default_for`]).
    pub fn new(rpc_url: impl Into<String>) -> Self {
        let rpc_url = rpc_url.into();
        Self {
            priority_fee: PriorityFeeConfig::default_for(&rpc_url),
            rpc_urls: vec![rpc_url],
            ws_url: None,
            commitment: CommitmentLevel::Confirmed,
            cu_margin_pct: 20,
            request_timeout: Duration::from_secs(30),
            confirm_timeout: Duration::from_secs(90),
            poll_interval: Duration::from_millis(200),
            max_rounds: 3,
        }
    }

    /// Several endpoints, tried in order.
    pub fn with_urls(urls: Vec<String>) -> Result<Self, ChainError> {
        let first = urls
            .first()
            .ok_or_else(|| ChainError::Config("no RPC URL given".into()))?;
        Ok(Self {
            rpc_urls: urls.clone(),
            ..Self::new(first.clone())
        })
    }

    pub fn ws_url(&self) -> String {
        self.ws_urls().into_iter().next().unwrap_or_default()
    }

    /// Websocket endpoints for subscriptions, tried in turn: the configured one, else one
    /// derived from each RPC URL.
    pub fn ws_urls(&self) -> Vec<String> {
        match &self.ws_url {
            Some(url) => vec![url.clone()],
            None => self.rpc_urls.iter().map(|u| websocket_url_for(u)).collect(),
        }
    }

    pub fn commitment_config(&self) -> CommitmentConfig {
        CommitmentConfig {
            commitment: self.commitment,
        }
    }

    /// Every problem with this configuration, at once.
    pub fn validate(&self) -> Result<(), ChainError> {
        let mut problems = Vec::new();
        if self.rpc_urls.is_empty() {
            problems.push("no RPC URL given".to_string());
        }
        for url in &self.rpc_urls {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                problems.push(format!("RPC URL {url:?} is not http(s)://"));
            }
        }
        let ws = self.ws_url();
        if !(ws.starts_with("ws://") || ws.starts_with("wss://")) {
            problems.push(format!("websocket URL {ws:?} is not ws(s)://"));
        }
        if self.max_rounds == 0 {
            problems.push("max_rounds must be at least 1".into());
        }
        if self.poll_interval.is_zero() {
            problems.push("poll_interval must be positive".into());
        }
        if matches!(self.priority_fee.percentile, Some(p) if p > 100) {
            problems.push("the priority-fee percentile must be 0 to 100".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ChainError::Config(problems.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_urls_follow_the_solana_cli() {
        assert_eq!(
            websocket_url_for("http://127.0.0.1:8899"),
            "ws://127.0.0.1:8900"
        );
        assert_eq!(
            websocket_url_for("https://api.devnet.solana.com"),
            "wss://api.devnet.solana.com"
        );
        assert_eq!(
            websocket_url_for("https://rpc.example.com:443/key/abc"),
            "wss://rpc.example.com:444/key/abc"
        );
        assert_eq!(websocket_url_for("http://[::1]:8899"), "ws://[::1]:8900");
        assert_eq!(websocket_url_for("http://[::1]"), "ws://[::1]");
    }

    #[test]
    fn priority_fees_are_off_on_localhost_only() {
        assert_eq!(
            PriorityFeeConfig::default_for("http://localhost:8899"),
            PriorityFeeConfig::OFF
        );
        assert_eq!(
            PriorityFeeConfig::default_for("http://127.0.0.1:1234/"),
            PriorityFeeConfig::OFF
        );
        assert_eq!(
            PriorityFeeConfig::default_for("https://api.devnet.solana.com").percentile,
            Some(75)
        );
        assert!(!is_local("https://localhost.evil.com"));
    }

    #[test]
    fn validation_lists_every_problem() {
        let mut c = ChainConfig::new("ftp://x");
        c.max_rounds = 0;
        c.ws_url = Some("http://y".into());
        let msg = c.validate().unwrap_err().to_string();
        assert!(
            msg.contains("not http(s)") && msg.contains("not ws(s)") && msg.contains("max_rounds"),
            "{msg}"
        );
        assert!(ChainConfig::new("http://127.0.0.1:8899").validate().is_ok());
    }
}
