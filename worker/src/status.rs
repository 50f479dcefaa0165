//! What the worker is doing, readable while it runs: a snapshot kept in memory, served on a
//! local HTTP port (`/status` as JSON, `/metrics` in Prometheus' text format) and written to
//! `work_dir/status.json` every few seconds (what `tensorgrid-worker status` reads to find
//! the port, and what it shows when the worker is not running).

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use http_body_util::Full;
use hyper::{body::Bytes, server::conn::http1, service::service_fn, Request, Response};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// Time left as a person reads it: "under a second left", "about 40 s left", "about 12 min
/// left", "about 3.5 h left".
pub fn eta_text(secs: f64) -> String {
    match secs {
        s if !s.is_finite() || s < 0.0 => "time left unknown".into(),
        s if s < 1.0 => "under a second left".into(),
        s if s < 90.0 => format!("about {s:.0} s left"),
        s if s < 5_400.0 => format!("about {:.0} min left", s / 60.0),
        s => format!("about {:.1} h left", s / 3_600.0),
    }
}

/// Ledger entries kept in the snapshot.
pub const RECENT: usize = 20;

/// The job being worked on.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Current {
    pub job: String,
    /// claiming, downloading, training, publishing, submitting, waiting for payment.
    pub stage: String,
    pub step: u64,
    pub total_steps: u64,
    /// Seconds of training left, from the pace so far.
    pub eta_s: Option<f64>,
    /// The latest evaluation loss.
    #[serde(default)]
    pub eval_loss: Option<f64>,
    /// The on-chain deadline (unix seconds).
    pub deadline: Option<i64>,
}

/// Everything the worker reports about itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    pub version: String,
    pub pid: u32,
    /// Where this snapshot is served (`host:port`), if anywhere.
    pub listen: Option<String>,
    pub operator: String,
    pub worker: String,
    pub market: String,
    pub hardware: String,
    /// Unix seconds.
    pub started_at: i64,
    pub updated_at: i64,
    /// starting, idle, working, stopping, stopped.
    pub state: String,
    pub current: Option<Current>,
    pub jobs_submitted: u64,
    pub jobs_paid: u64,
    pub jobs_abandoned: u64,
    pub jobs_lost: u64,
    pub jobs_rejected: u64,
    /// The mint the market is priced in; `None` for SOL. Every amount below is in base units
    /// of the market's unit (lamports in a SOL market, whatever the fields' names say).
    #[serde(default)]
    pub mint: Option<String>,
    /// The decimals of the market's unit (9 for SOL); `None` in a status written before
    /// token markets (SOL).
    #[serde(default)]
    pub decimals: Option<u8>,
    /// Lamports earned (net of fees) since this process started.
    pub earned_lamports: u64,
    /// From the chain: lamports earned by this worker ever, stake, unwithdrawn earnings.
    pub total_earned_lamports: u64,
    pub stake_lamports: u64,
    /// Of the stake, pledged to the verifier pool (claims use only the rest).
    #[serde(default)]
    pub pledged_lamports: u64,
    pub earnings_balance_lamports: u64,
    /// Unix seconds of the last successful answer from the chain.
    pub last_chain_contact: Option<i64>,
    pub rpc_url: String,
    pub subscriptions: u64,
    pub sweeps: u64,
    pub last_error: Option<String>,
    /// Why claiming is paused (this machine's condition, e.g. a full disk), if it is.
    #[serde(default)]
    pub paused: Option<String>,
    /// Stake lost to penalties and slashes, as read since the daemon started.
    #[serde(default)]
    pub lost_lamports: u64,
    /// The latest payments, penalties and slashes (at most [`RECENT`]).
    #[serde(default)]
    pub recent: Vec<crate::ledger::Entry>,
}

/// The shared, updatable snapshot.
#[derive(Debug, Clone, Default)]
pub struct Status(Arc<Mutex<Snapshot>>);

impl Snapshot {
    /// An amount of the market's unit as people read it: `0.5 SOL`, `12.5 tokens`.
    pub fn show(&self, amount: u64) -> String {
        let unit = if self.mint.is_some() { "tokens" } else { "SOL" };
        let decimals = self.decimals.unwrap_or(9);
        format!(
            "{} {unit}",
            tensorgrid_client::currency::format_units(amount, decimals)
        )
    }
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Status {
    pub fn new(snapshot: Snapshot) -> Self {
        Self(Arc::new(Mutex::new(snapshot)))
    }

    pub fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s);
        s.updated_at = unix_now();
    }

    pub fn snapshot(&self) -> Snapshot {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The chain answered just now.
    pub fn chain_contact(&self) {
        self.update(|s| s.last_chain_contact = Some(unix_now()));
    }

    pub fn stage(&self, job: &str, stage: &str) {
        self.update(|s| {
            let c = s.current.get_or_insert_with(Current::default);
            if c.job != job {
                *c = Current {
                    job: job.into(),
                    ..Current::default()
                };
            }
            c.stage = stage.into();
            s.state = "working".into();
        });
    }

    pub fn idle(&self) {
        self.update(|s| {
            s.current = None;
            if s.state == "working" || s.state == "starting" {
                s.state = "idle".into();
            }
        });
    }
}

/// Prometheus' text exposition format.
pub fn prometheus(s: &Snapshot) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
        out.push_str(&format!(
            "# HELP tensorgrid_worker_{name} {help}\n# TYPE tensorgrid_worker_{name} {kind}\ntensorgrid_worker_{name} {value}\n"
        ));
    };
    metric("up", "gauge", "1 while the worker runs.", 1.0);
    metric(
        "jobs_submitted_total",
        "counter",
        "Results submitted since start.",
        s.jobs_submitted as f64,
    );
    metric(
        "jobs_paid_total",
        "counter",
        "Jobs paid since start.",
        s.jobs_paid as f64,
    );
    metric(
        "jobs_abandoned_total",
        "counter",
        "Jobs given back since start.",
        s.jobs_abandoned as f64,
    );
    metric(
        "jobs_lost_total",
        "counter",
        "Claims lost to another worker since start.",
        s.jobs_lost as f64,
    );
    metric(
        "jobs_rejected_total",
        "counter",
        "Jobs refused before claiming since start.",
        s.jobs_rejected as f64,
    );
    metric(
        "earned_lamports_total",
        "counter",
        "Earned since start, in base units of the market's unit (lamports in a SOL market; see market_decimals).",
        s.earned_lamports as f64,
    );
    metric(
        "lost_lamports_total",
        "counter",
        "Stake lost to penalties and slashes, as read since start, in base units of the market's unit.",
        s.lost_lamports as f64,
    );
    metric(
        "market_decimals",
        "gauge",
        "Decimals of the market's unit: 9 for SOL (amounts in lamports), the mint's for a market priced in a mint (amounts in its base units).",
        f64::from(s.decimals.unwrap_or(9)),
    );
    metric(
        "claiming_paused",
        "gauge",
        "1 while claiming is paused for this machine's condition (e.g. a full disk).",
        if s.paused.is_some() { 1.0 } else { 0.0 },
    );
    metric(
        "lifetime_earned_lamports",
        "gauge",
        "Earned by this worker account ever (chain), in base units of the market's unit.",
        s.total_earned_lamports as f64,
    );
    metric(
        "stake_lamports",
        "gauge",
        "At stake (chain), in base units of the market's unit.",
        s.stake_lamports as f64,
    );
    metric(
        "earnings_balance_lamports",
        "gauge",
        "Unwithdrawn earnings (chain), in base units of the market's unit.",
        s.earnings_balance_lamports as f64,
    );
    metric(
        "last_chain_contact_seconds",
        "gauge",
        "Unix time of the last answer from the chain.",
        s.last_chain_contact.unwrap_or(0) as f64,
    );
    metric(
        "subscriptions_total",
        "counter",
        "Websocket (re)subscriptions.",
        s.subscriptions as f64,
    );
    metric(
        "sweeps_total",
        "counter",
        "Polling sweeps of open jobs.",
        s.sweeps as f64,
    );
    let working = s.current.is_some();
    metric(
        "busy",
        "gauge",
        "1 while a job is held.",
        f64::from(u8::from(working)),
    );
    if let Some(c) = &s.current {
        metric(
            "current_step",
            "gauge",
            "Training step of the current job.",
            c.step as f64,
        );
        metric(
            "current_total_steps",
            "gauge",
            "Training steps of the current job.",
            c.total_steps as f64,
        );
        if let Some(eta) = c.eta_s {
            metric(
                "current_eta_seconds",
                "gauge",
                "Estimated seconds of training left.",
                eta,
            );
        }
    }
    out
}

/// Serves the snapshot on `listen` until `cancel`; returns the bound address.
pub async fn serve(
    status: Status,
    listen: &str,
    cancel: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                _ = cancel.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::debug!(error = %e, "status port: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let status = status.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let status = status.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(&status, req.uri().path())) }
                });
                let conn = http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(5))
                    .serve_connection(TokioIo::new(stream), service);
                let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
            });
        }
    });
    Ok(addr)
}

fn answer(status: &Status, path: &str) -> Response<Full<Bytes>> {
    let (code, kind, body) = match path {
        "/metrics" => (
            200,
            "text/plain; version=0.0.4",
            prometheus(&status.snapshot()),
        ),
        "/status" | "/" => (
            200,
            "application/json",
            serde_json::to_string_pretty(&status.snapshot()).expect("snapshot serialises"),
        ),
        _ => (404, "text/plain", "not found: /status or /metrics\n".into()),
    };
    Response::builder()
        .status(code)
        .header("content-type", kind)
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts")
}

/// Writes the snapshot to `path` every `every` until `cancel` (and once more at the end).
pub fn persist(
    status: Status,
    path: PathBuf,
    every: Duration,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let bytes = serde_json::to_vec_pretty(&status.snapshot()).expect("snapshot serialises");
            if let Err(e) = crate::state::write_atomic(&path, &bytes) {
                tracing::debug!(error = %e, "status file not written");
            }
            if cancel.is_cancelled() {
                return;
            }
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = tokio::time::sleep(every) => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_status_port_serves_json_and_prometheus_text() {
        let status = Status::new(Snapshot {
            operator: "op".into(),
            ..Snapshot::default()
        });
        status.stage("job1", "training");
        status.update(|s| {
            s.jobs_paid = 2;
            s.earned_lamports = 900;
            if let Some(c) = s.current.as_mut() {
                c.step = 5;
                c.total_steps = 10;
            }
        });
        let cancel = CancellationToken::new();
        let addr = serve(status.clone(), "127.0.0.1:0", cancel.clone())
            .await
            .unwrap();
        let get = |p: &str| {
            let url = format!("http://{addr}{p}");
            async move {
                let r = reqwest::get(url).await.unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            }
        };
        let (code, body) = get("/status").await;
        assert_eq!(code, 200);
        let snap: Snapshot = serde_json::from_str(&body).unwrap();
        assert_eq!(snap.current.unwrap().job, "job1");
        assert_eq!(snap.jobs_paid, 2);
        let (code, text) = get("/metrics").await;
        assert_eq!(code, 200);
        assert!(
            text.contains("tensorgrid_worker_jobs_paid_total 2\n"),
            "{text}"
        );
        assert!(
            text.contains("tensorgrid_worker_current_step 5\n"),
            "{text}"
        );
        assert!(
            text.contains("tensorgrid_worker_earned_lamports_total 900\n"),
            "{text}"
        );
        assert_eq!(get("/nope").await.0, 404);
        cancel.cancel();
        status.idle();
        assert_eq!(status.snapshot().state, "idle");
    }
}
