//! A feed of jobs matching a query that does not go quiet: a websocket program subscription
//! (the fast path) plus a periodic `getProgramAccounts` sweep (the safety net). The
//! subscription reconnects and resubscribes with backoff whenever it ends, errors or stays
//! silent for too long, and every (re)connection triggers an immediate sweep, so a job posted
//! while the socket was down is still reported.

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use anchor_lang::prelude::Pubkey;
use futures_util::StreamExt;
use solana_account_decoder_client_types::UiAccountEncoding;
use solana_pubsub_client::nonblocking::pubsub_client::PubsubClient;
use solana_rpc_client_api::config::{RpcAccountInfoConfig, RpcProgramAccountsConfig};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use super::{backoff::Backoff, queries::JobQuery, ChainClient};
use crate::{program_id, state::Job};

/// How a feed watches.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// Between two sweeps (besides the one after each reconnection).
    pub sweep_every: Duration,
    /// No message at all (not even a slot) for this long: the socket is presumed dead.
    pub stale_after: Duration,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            sweep_every: Duration::from_secs(30),
            stale_after: Duration::from_secs(60),
        }
    }
}

/// Where a feed learnt about a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Subscription,
    Sweep,
}

/// A job that is new to the feed, or changed since it was last reported.
#[derive(Debug, Clone)]
pub struct JobSeen {
    pub pubkey: Pubkey,
    pub job: Job,
    pub source: Source,
}

/// Counters for status displays and tests.
#[derive(Debug, Default)]
pub struct FeedStats {
    /// Successful subscriptions (1 + reconnections).
    pub subscriptions: AtomicU64,
    pub sweeps: AtomicU64,
    pub notifications: AtomicU64,
}

/// A running feed; dropping it stops its tasks.
pub struct JobFeed {
    rx: mpsc::Receiver<JobSeen>,
    stats: Arc<FeedStats>,
    cancel: CancellationToken,
}

impl JobFeed {
    /// The next new or changed job; `None` once the feed stopped.
    pub async fn next(&mut self) -> Option<JobSeen> {
        self.rx.recv().await
    }

    pub fn stats(&self) -> &FeedStats {
        &self.stats
    }
}

impl Drop for JobFeed {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Reports each (pubkey, data) once per distinct content, never data older (by slot) than
/// what was already reported for that account.
struct Dedup {
    /// pubkey → (slot of the data, hash of the data).
    seen: Mutex<HashMap<Pubkey, (u64, u64)>>,
    tx: mpsc::Sender<JobSeen>,
}

impl Dedup {
    /// Forgets accounts a complete sweep no longer returns (closed, or out of the query), so
    /// the map stays the size of the query's result.
    fn retain(&self, keep: &std::collections::HashSet<Pubkey>) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|k, _| keep.contains(k));
    }

    /// `false` once the receiver is gone.
    async fn offer(&self, pubkey: Pubkey, data: &[u8], slot: u64, source: Source) -> bool {
        let Ok(job) = crate::decode_account::<Job>(data) else {
            tracing::warn!(%pubkey, "undecodable job account in the feed");
            return true;
        };
        let mut h = DefaultHasher::new();
        data.hash(&mut h);
        let digest = h.finish();
        let fresh = {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            match seen.get(&pubkey) {
                Some((s, _)) if *s > slot => false,
                Some((_, d)) if *d == digest => false,
                _ => {
                    seen.insert(pubkey, (slot, digest));
                    true
                }
            }
        };
        if !fresh {
            return true;
        }
        self.tx
            .send(JobSeen {
                pubkey,
                job,
                source,
            })
            .await
            .is_ok()
    }
}

/// What the feed's two tasks share.
struct Shared {
    query: JobQuery,
    config: FeedConfig,
    dedup: Dedup,
    stats: Arc<FeedStats>,
    /// The subscription task asks for a sweep after every (re)connection.
    sweep_now: Notify,
    cancel: CancellationToken,
}

impl ChainClient {
    /// Starts a feed of the jobs matching `query` (first everything that matches now, then
    /// every new or changed one). It runs until `cancel` fires or the feed is dropped.
    pub fn watch_jobs(
        &self,
        query: JobQuery,
        config: FeedConfig,
        cancel: CancellationToken,
    ) -> JobFeed {
        let cancel = cancel.child_token();
        let (tx, rx) = mpsc::channel(1024);
        let stats = Arc::new(FeedStats::default());
        let shared = Arc::new(Shared {
            query,
            config,
            dedup: Dedup {
                seen: Mutex::new(HashMap::new()),
                tx,
            },
            stats: stats.clone(),
            sweep_now: Notify::new(),
            cancel: cancel.clone(),
        });
        tokio::spawn(subscription_task(
            self.config.ws_urls(),
            self.config.commitment_config(),
            shared.clone(),
        ));
        tokio::spawn(sweep_task(self.clone(), shared));
        JobFeed { rx, stats, cancel }
    }
}

async fn sweep_task(client: ChainClient, shared: Arc<Shared>) {
    let Shared {
        query,
        config,
        dedup,
        stats,
        sweep_now,
        cancel,
    } = &*shared;
    let mut outage = super::Outage::new("job sweep");
    loop {
        // The data a sweep returns is at least as new as the slot read just before it.
        let swept = match client.slot().await {
            Ok(slot) => client
                .program_accounts(query.rpc_filters(), None)
                .await
                .map(|accounts| (slot, accounts)),
            Err(e) => Err(e),
        };
        match swept {
            Ok((slot, accounts)) => {
                outage.succeeded();
                stats.sweeps.fetch_add(1, Ordering::Relaxed);
                dedup.retain(&accounts.iter().map(|(k, _)| *k).collect());
                for (pubkey, data) in accounts {
                    if !dedup.offer(pubkey, &data, slot, Source::Sweep).await {
                        return;
                    }
                }
            }
            Err(e) => {
                outage.failed(&e);
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(config.sweep_every) => {}
            _ = sweep_now.notified() => {}
        }
    }
}

async fn subscription_task(
    ws_urls: Vec<String>,
    commitment: solana_commitment_config::CommitmentConfig,
    shared: Arc<Shared>,
) {
    let Shared {
        query,
        config,
        dedup,
        stats,
        sweep_now,
        cancel,
    } = &*shared;
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
    let subscribe_config = RpcProgramAccountsConfig {
        filters: Some(query.rpc_filters()),
        account_config: RpcAccountInfoConfig {
            encoding: Some(UiAccountEncoding::Base64),
            // The same commitment as the sweeps, so both report the same history.
            commitment: Some(commitment),
            ..RpcAccountInfoConfig::default()
        },
        ..RpcProgramAccountsConfig::default()
    };
    let mut first = true;
    let mut outage = super::Outage::new("job subscription (websocket)");
    // Each failed attempt moves on to the next endpoint; a working one is kept.
    let mut endpoint = 0usize;
    while !cancel.is_cancelled() {
        if !first {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = backoff.wait() => {}
            }
        }
        first = false;
        let Some(ws_url) = ws_urls.get(endpoint % ws_urls.len().max(1)).cloned() else {
            return tracing::error!("no websocket URL: the polling sweep alone reports jobs");
        };
        endpoint += 1;
        // A socket that accepts but never answers would hang the handshake forever.
        let Some(client) = bounded(
            &mut outage,
            &ws_url,
            "websocket connect",
            config.stale_after,
            PubsubClient::new(ws_url.as_str()),
        )
        .await
        else {
            continue;
        };
        let program = program_id();
        let subscribe = client.program_subscribe(&program, Some(subscribe_config.clone()));
        let Some((mut accounts, _unsubscribe)) = bounded(
            &mut outage,
            &ws_url,
            "programSubscribe",
            config.stale_after,
            subscribe,
        )
        .await
        else {
            continue;
        };
        // Slots are the heartbeat: a socket that delivers nothing for `stale_after` is dead
        // even if TCP says otherwise.
        let mut slots = bounded(
            &mut outage,
            &ws_url,
            "slotSubscribe",
            config.stale_after,
            client.slot_subscribe(),
        )
        .await
        .map(|(s, _unsubscribe)| s);
        endpoint -= 1;
        // Without the slot heartbeat the socket cannot be told alive: not a recovery yet.
        if slots.is_some() {
            outage.succeeded();
        }
        let n = stats.subscriptions.fetch_add(1, Ordering::Relaxed);
        if n > 0 {
            tracing::info!(url = %ws_url, "resubscribed; sweeping for anything missed");
        }
        backoff.reset();
        sweep_now.notify_one();
        let mut stale = Box::pin(tokio::time::sleep(config.stale_after));
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                msg = accounts.next() => match msg {
                    Some(update) => {
                        stale.as_mut().reset(tokio::time::Instant::now() + config.stale_after);
                        stats.notifications.fetch_add(1, Ordering::Relaxed);
                        let slot = update.context.slot;
                        let keyed = update.value;
                        let (Ok(pubkey), Some(data)) = (keyed.pubkey.parse::<Pubkey>(), keyed.account.data.decode()) else {
                            tracing::warn!(pubkey = %keyed.pubkey, "undecodable notification");
                            continue;
                        };
                        if !dedup.offer(pubkey, &data, slot, Source::Subscription).await {
                            return;
                        }
                    }
                    None => {
                        outage.failed(&format!("{ws_url}: the job subscription ended; reconnecting"));
                        break;
                    }
                },
                Some(_) = async { match slots.as_mut() { Some(s) => s.next().await, None => std::future::pending().await } } => {
                    stale.as_mut().reset(tokio::time::Instant::now() + config.stale_after);
                }
                _ = &mut stale => {
                    outage.failed(&format!(
                        "{ws_url}: silent for {} s; reconnecting",
                        config.stale_after.as_secs()
                    ));
                    break;
                }
            }
        }
    }
}

/// One websocket step within `limit`: its value, or `None` after reporting why not to `outage`
/// (the polling sweep goes on meanwhile).
async fn bounded<T, E: std::fmt::Display>(
    outage: &mut super::Outage,
    url: &str,
    step: &str,
    limit: Duration,
    future: impl std::future::Future<Output = Result<T, E>>,
) -> Option<T> {
    match tokio::time::timeout(limit, future).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(e)) => {
            outage.failed(&format!("{url}: {step}: {e}; the polling sweep continues"));
            None
        }
        Err(_) => {
            outage.failed(&format!(
                "{url}: {step}: no answer in {} s; the polling sweep continues",
                limit.as_secs()
            ));
            None
        }
    }
}
