//! The worker daemon: start (keypair, chain, market, hardware, registration), reconcile the
//! work directory with the chain, then one loop — carry the job this worker holds to payment
//! (train, publish, submit, then finalize once the poster's window passes), otherwise take the
//! next job the feed reports that passes the check before claiming. Transient failures wait
//! with backoff and jitter (100 ms → 30 s) and are retried; nothing but a shutdown or a broken
//! setup (a keypair that cannot be read, no market) ends the loop.

use std::{
    collections::{HashSet, VecDeque},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use solana_signer::Signer;
use tensorgrid_artifacts::{fetch, probe_size, ArtifactError, Store};
use tensorgrid_client::{
    anchor_lang::prelude::Pubkey,
    instructions::{self as ix, SettleKeys},
    rpc::{
        read_keypair, Backoff, ChainClient, ChainConfig, ChainError, FeedConfig, JobQuery,
        PriorityFeeConfig,
    },
    state::{Job, JobState, Worker as WorkerAccount},
    tensorgrid::instructions::{WorkerRegisterArgs, WorkerUpdateArgs},
};
use tensorgrid_train::{
    device::DeviceChoice,
    spec::JobSpec,
    trainer::{Progress, ProgressFn},
};
use tokio_util::sync::CancellationToken;

use crate::{
    estimate::Throughput,
    hardware,
    pipeline::{JobError, Worker},
    precheck::{precheck, Offer},
    status::{self, Snapshot, Status},
    Config, Stage, WorkDir,
};

/// Largest spec file read (specs are a few hundred bytes).
const MAX_SPEC_BYTES: u64 = 64 << 10;
/// The spec as checked before claiming, kept in the job's directory for a restart.
const SPEC_FILE: &str = "spec.json";

/// What stops the daemon from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Keypair(#[from] tensorgrid_client::rpc::KeypairError),
    #[error("{0}")]
    Setup(String),
    #[error("stopped before the worker was ready")]
    Stopped,
}

/// A started worker, ready to [`run`](Daemon::run).
pub struct Daemon {
    worker: Arc<Worker>,
    throughput: Throughput,
    rejected: HashSet<Pubkey>,
    cancel: CancellationToken,
}

/// Repeats `op` while it fails transiently (logged, backoff with jitter) until it succeeds or
/// `cancel` fires (`None`).
async fn retry<T, F, Fut>(
    what: &str,
    cancel: &CancellationToken,
    status: &Status,
    mut op: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ChainError>>,
{
    let mut backoff = Backoff::standard();
    loop {
        match op().await {
            Ok(v) => {
                status.chain_contact();
                return Some(v);
            }
            Err(e) => {
                tracing::warn!(error = %e, "{what}: retrying");
                status.update(|s| s.last_error = Some(format!("{what}: {e}")));
                tokio::select! {
                    _ = cancel.cancelled() => return None,
                    _ = backoff.wait() => {}
                }
            }
        }
    }
}

fn chain_config(config: &Config) -> Result<ChainConfig, StartError> {
    let mut c = ChainConfig::with_urls(config.rpc_urls.clone())
        .map_err(|e| StartError::Setup(e.to_string()))?;
    c.ws_url = config.ws_url.clone();
    c.priority_fee = match PriorityFeeConfig::default_for(&config.rpc_urls[0]) {
        PriorityFeeConfig {
            percentile: Some(p),
            ..
        } => PriorityFeeConfig {
            percentile: Some(p),
            max_micro_lamports: config.priority_fee_cap,
        },
        off => off,
    };
    Ok(c)
}

impl Daemon {
    /// Reads the keypair, reaches the chain (waiting for it), finds the market, detects the
    /// hardware and registers (or updates the registration). `progress` receives training
    /// steps (a progress bar).
    pub async fn start(
        config: Config,
        cancel: CancellationToken,
        progress: Option<ProgressFn>,
    ) -> Result<Self, StartError> {
        let operator = Arc::new(read_keypair(&config.keypair)?);
        let chain = ChainClient::new(chain_config(&config)?)
            .map_err(|e| StartError::Setup(e.to_string()))?;
        let choice: DeviceChoice = config.device.parse().map_err(StartError::Setup)?;
        let (hw, device) =
            hardware::detect(choice).map_err(|e| StartError::Setup(format!("device: {e}")))?;
        let store = Store::open(&config.store)
            .map_err(|e| StartError::Setup(format!("store {}: {e}", config.store)))?;
        let work = WorkDir::open(&config.work_dir).map_err(|e| StartError::Setup(e.to_string()))?;
        let status = Status::new(Snapshot {
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            operator: operator.pubkey().to_string(),
            hardware: format!("{:?} {} ({} MiB)", hw.device, hw.label, hw.vram_mib),
            started_at: status::unix_now(),
            state: "starting".into(),
            rpc_url: chain.active_url().to_string(),
            ..Snapshot::default()
        });
        tracing::info!(
            operator = %operator.pubkey(),
            device = ?hw.device,
            label = %hw.label,
            vram_mib = hw.vram_mib,
            rpc = %chain.active_url(),
            "starting"
        );
        let throughput = {
            let d = device.clone();
            tokio::task::spawn_blocking(move || Throughput::measure(&d))
                .await
                .map_err(|e| StartError::Setup(format!("measuring the device: {e}")))?
                .map_err(|e| StartError::Setup(format!("measuring the device: {e}")))?
        };
        tracing::info!(
            gflops = format!("{:.1}", throughput.gflops),
            "device measured"
        );

        let market =
            match &config.market {
                Some(m) => m
                    .parse::<Pubkey>()
                    .map_err(|_| StartError::Setup(format!("market {m:?} is not an address")))?,
                None => {
                    let markets = retry("listing markets", &cancel, &status, || chain.markets())
                        .await
                        .ok_or(StartError::Stopped)?;
                    match markets.as_slice() {
                        [(m, _)] => *m,
                        [] => return Err(StartError::Setup(
                            "no market on this chain (create one with `tensorgrid market create`)"
                                .into(),
                        )),
                        many => {
                            return Err(StartError::Setup(format!(
                                "{} markets on this chain; choose one with `market` ({})",
                                many.len(),
                                many.iter()
                                    .map(|(k, _)| k.to_string())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )))
                        }
                    }
                }
            };
        let progress = Some(track_progress(status.clone(), progress));
        let worker = Worker {
            chain,
            store,
            work,
            config,
            operator,
            market,
            hardware: hw,
            device,
            stop: Arc::new(AtomicBool::new(false)),
            progress,
            status,
        };
        worker.status.update(|s| {
            s.market = market.to_string();
            s.worker = worker.keys().worker.to_string();
        });
        let rejected = worker
            .work
            .rejected()
            .keys()
            .filter_map(|k| k.parse().ok())
            .collect();
        let daemon = Self {
            worker: Arc::new(worker),
            throughput,
            rejected,
            cancel,
        };
        daemon.register().await?;
        Ok(daemon)
    }

    pub fn status(&self) -> &Status {
        &self.worker.status
    }

    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// Registers with the configured stake when not registered; updates the hardware when it
    /// changed; tops the stake up to the configured amount when penalties took it below the
    /// market's minimum.
    async fn register(&self) -> Result<(), StartError> {
        let w = &self.worker;
        let keys = w.keys();
        let (cancel, status) = (&self.cancel, &w.status);
        let market = retry("reading the market", cancel, status, || {
            w.chain.market(&w.market)
        })
        .await
        .ok_or(StartError::Stopped)?;
        let account = retry("reading the worker account", cancel, status, || {
            w.chain.worker(&keys.worker)
        })
        .await
        .ok_or(StartError::Stopped)?;
        let send = |what: &'static str, ixs: Vec<ix::Instruction>| async move {
            w.chain
                .send(&ixs, &[w.operator.as_ref()])
                .await
                .map_err(|e| StartError::Setup(format!("{what}: {e}")))
        };
        match account {
            Some(a) if a.registered => {
                let mut args = WorkerUpdateArgs::default();
                if hardware::changed(&a.hardware, &w.hardware) {
                    if a.active_job == Pubkey::default() {
                        args.hardware = Some(w.hardware.clone());
                    } else {
                        tracing::info!("hardware changed; updated once the job held now is done");
                    }
                }
                if a.stake < market.params.min_stake {
                    args.add_stake = w.config.stake.max(market.params.min_stake) - a.stake;
                }
                if args.hardware.is_some() || args.add_stake > 0 {
                    let landed = send(
                        "updating the worker",
                        vec![ix::worker_update(
                            keys.operator,
                            w.market,
                            keys.worker,
                            args,
                        )],
                    )
                    .await?;
                    tracing::info!(signature = %landed.signature, "registration updated (hardware or stake)");
                }
                tracing::info!(worker = %keys.worker, stake = a.stake, earnings = a.earnings, "registered");
            }
            _ => {
                let stake = w.config.stake.max(market.params.min_stake);
                let landed = send(
                    "registering the worker",
                    vec![ix::worker_register(
                        keys.operator,
                        w.market,
                        WorkerRegisterArgs {
                            stake,
                            hardware: w.hardware.clone(),
                        },
                    )],
                )
                .await?;
                tracing::info!(worker = %keys.worker, stake, signature = %landed.signature, "registered");
            }
        }
        self.refresh_account().await;
        Ok(())
    }

    /// Reads the worker account into the status (stake, earnings); `None` when unreadable.
    async fn refresh_account(&self) -> Option<WorkerAccount> {
        let w = &self.worker;
        match w.chain.worker(&w.keys().worker).await {
            Ok(Some(a)) => {
                w.status.chain_contact();
                w.status.update(|s| {
                    s.stake_lamports = a.stake;
                    s.earnings_balance_lamports = a.earnings;
                    s.total_earned_lamports = a.record.total_earned;
                });
                Some(a)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "reading the worker account");
                None
            }
        }
    }

    /// Runs until `cancel` fires.
    pub async fn run(mut self) {
        let w = self.worker.clone();
        let cancel = self.cancel.clone();
        // Training notices the shutdown between steps.
        {
            let (stop, c) = (w.stop.clone(), cancel.clone());
            tokio::spawn(async move {
                c.cancelled().await;
                stop.store(true, Ordering::SeqCst);
            });
        }
        self.reconcile().await;
        let mut feed = w.chain.watch_jobs(
            JobQuery::open_in(w.market),
            FeedConfig {
                sweep_every: w.config.poll_interval,
                ..FeedConfig::default()
            },
            cancel.clone(),
        );
        // Jobs whose check failed transiently, looked at again later.
        let mut deferred: VecDeque<(Instant, Pubkey)> = VecDeque::new();
        let mut backoff = Backoff::standard();
        w.status.idle();
        while !cancel.is_cancelled() {
            let stats = feed.stats();
            w.status.update(|s| {
                s.subscriptions = stats.subscriptions.load(Ordering::Relaxed);
                s.sweeps = stats.sweeps.load(Ordering::Relaxed);
            });
            // The job this worker holds comes first: one at a time.
            let account = match w.chain.worker(&w.keys().worker).await {
                Ok(a) => {
                    w.status.chain_contact();
                    a
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading the worker account");
                    tokio::select! { _ = cancel.cancelled() => break, _ = backoff.wait() => {} }
                    continue;
                }
            };
            let held = account
                .as_ref()
                .map(|a| a.active_job)
                .filter(|j| *j != Pubkey::default());
            if let Some(job) = held {
                if self.carry(job).await {
                    backoff.reset();
                } else {
                    tokio::select! { _ = cancel.cancelled() => break, _ = backoff.wait() => {} }
                }
                continue;
            }
            w.status.idle();
            let due = deferred.front().map(|(t, _)| *t);
            let next = tokio::select! {
                _ = cancel.cancelled() => break,
                seen = feed.next() => match seen {
                    Some(s) => Some((s.pubkey, Some(s.job))),
                    None => break,
                },
                _ = sleep_until(due) => deferred.pop_front().map(|(_, k)| (k, None)),
            };
            let Some((job, account)) = next else { continue };
            if let Some(retry_in) = self.consider(job, account).await {
                deferred.push_back((Instant::now() + retry_in, job));
                deferred.make_contiguous().sort_by_key(|(t, _)| *t);
            }
        }
        w.status.update(|s| s.state = "stopped".into());
        tracing::info!("stopped");
    }

    /// Looks at a job the feed reported. Returns when to look again after a transient failure.
    async fn consider(&mut self, job: Pubkey, seen: Option<Job>) -> Option<Duration> {
        let w = self.worker.clone();
        if self.rejected.contains(&job) {
            return None;
        }
        let account = match seen {
            Some(a) => a,
            None => match w.chain.job(&job).await {
                Ok(Some(a)) => a,
                Ok(None) => return None,
                Err(e) => {
                    tracing::debug!(%job, error = %e, "re-reading a deferred job");
                    return Some(Duration::from_secs(5));
                }
            },
        };
        if account.state != JobState::Open || account.market != w.market {
            return None;
        }
        if account.barred_worker == w.keys().worker {
            return None;
        }
        match self.check(job, &account).await {
            Ok((spec, bytes)) => {
                let name = job.to_string();
                if let Err(e) =
                    crate::state::write_atomic(&w.work.job_dir(&name).join(SPEC_FILE), &bytes)
                {
                    tracing::error!(%job, error = %e, "cannot keep the spec in the work dir");
                    return Some(Duration::from_secs(30));
                }
                self.work(job, &spec, &bytes).await;
                None
            }
            Err(Check::Rejected(why)) => {
                tracing::info!(%job, reason = %why, "not taken");
                self.rejected.insert(job);
                w.status.update(|s| s.jobs_rejected += 1);
                if let Err(e) = w.work.reject(&job.to_string(), &why) {
                    tracing::warn!(error = %e, "rejected jobs not saved");
                }
                None
            }
            Err(Check::Transient(why)) => {
                tracing::warn!(%job, reason = %why, "cannot check the job now; trying again later");
                Some(Duration::from_secs(10))
            }
        }
    }

    /// The check before claiming: the spec (fetched, hash-checked, validated), the dataset's
    /// size, the device, the deadline and the pay.
    async fn check(&self, job: Pubkey, account: &Job) -> Result<(JobSpec, Vec<u8>), Check> {
        let w = &self.worker;
        let policy = w.read_policy();
        let bytes = fetch(&account.spec_uri, MAX_SPEC_BYTES, &policy)
            .await
            .map_err(|e| Check::from_artifact("spec", e))?
            .to_vec();
        // The dataset URI is only probed once the spec proved to be the committed one.
        let offer = Offer::from_job(account);
        let cheap = precheck(&offer, &bytes, &w.hardware, &w.config, |_| 0.0)
            .map_err(|r| Check::Rejected(r.0))?;
        let cap = cheap
            .spec
            .limits
            .max_dataset_bytes
            .min(w.config.max_dataset_bytes);
        let size = match probe_size(&cheap.spec.dataset.uri, &policy).await {
            Ok(Some(n)) if n > cap => {
                return Err(Check::Rejected(format!(
                    "the dataset is {n} bytes, over the cap of {cap}"
                )))
            }
            Ok(Some(n)) => n,
            Ok(None) => cap,
            Err(e) => return Err(Check::from_artifact("dataset", e)),
        };
        let plan = precheck(&offer, &bytes, &w.hardware, &w.config, |spec| {
            self.throughput.estimate_secs(spec, size)
        })
        .map_err(|r| Check::Rejected(r.0))?;
        tracing::info!(%job, estimated_s = format!("{:.0}", plan.estimated_secs), dataset_bytes = size, "worth claiming");
        Ok((plan.spec, bytes))
    }

    /// Claims (unless already claimed) and works the job to its submission; `true` when it
    /// got somewhere (submitted, given up, lost), `false` after a transient failure.
    async fn work(&self, job: Pubkey, spec: &JobSpec, bytes: &[u8]) -> bool {
        let w = &self.worker;
        let started = Instant::now();
        match w.work_on(job, spec, bytes).await {
            Ok(done) => {
                tracing::info!(%job, result_hash = %done.result_hash, secs = format!("{:.1}", started.elapsed().as_secs_f64()), "submitted; waiting for payment");
                w.status.update(|s| s.jobs_submitted += 1);
                true
            }
            Err(JobError::Lost(why)) => {
                tracing::info!(%job, %why, "job lost");
                w.status.update(|s| s.jobs_lost += 1);
                let _ = w.work.finish(&job.to_string());
                true
            }
            Err(JobError::GaveUp(why)) => {
                tracing::warn!(%job, %why, "job given back");
                w.status.update(|s| s.jobs_abandoned += 1);
                true
            }
            Err(JobError::Stopped) => false,
            Err(e @ (JobError::Transient(_) | JobError::State(_))) => {
                tracing::warn!(%job, error = %e, "job interrupted; retrying");
                w.status.update(|s| s.last_error = Some(e.to_string()));
                false
            }
        }
    }

    /// Carries the job this worker holds one step further: work on it, or finalize it once
    /// the poster's window passed, or wait for the poster or the authority. `false` after a
    /// transient failure.
    async fn carry(&self, job: Pubkey) -> bool {
        let w = &self.worker;
        let name = job.to_string();
        let account = match w.chain.job(&job).await {
            Ok(Some(a)) => a,
            // Closed between two reads: the next read of the worker account shows it.
            Ok(None) => return true,
            Err(e) => {
                tracing::warn!(%job, error = %e, "reading the job held");
                return false;
            }
        };
        let now = match w.chain.chain_time().await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "reading the chain's clock");
                return false;
            }
        };
        w.status.chain_contact();
        match account.state {
            JobState::Claimed if now > account.deadline => {
                // Missed (the worker was down, or too slow): nothing more is done on it; the
                // reclaim frees this worker for the next job (its slash goes to the poster,
                // the bounty back to this operator).
                tracing::warn!(%job, deadline = account.deadline, "the deadline passed; the job is not worked on further");
                let _ = w.work.finish(&name);
                match w
                    .chain
                    .send(
                        &[ix::job_reclaim(w.operator.pubkey(), w.keys().worker, job)],
                        &[w.operator.as_ref()],
                    )
                    .await
                {
                    Ok(l) => {
                        tracing::warn!(%job, signature = %l.signature, "reclaimed after the missed deadline");
                        true
                    }
                    Err(e) => {
                        tracing::warn!(%job, error = %e, "reclaim");
                        false
                    }
                }
            }
            JobState::Claimed => {
                let Some((spec, bytes)) = self.held_spec(job, &account).await else {
                    return false;
                };
                if w.work.stage(&name).ok().flatten().is_none() {
                    // Claimed, but the work dir does not know it (wiped, or killed right
                    // after the claim landed): continue from the claim.
                    let _ = w.work.record(
                        &name,
                        &Stage::Claimed {
                            deadline: account.deadline,
                        },
                    );
                }
                self.work(job, &spec, &bytes).await
            }
            JobState::Submitted | JobState::Disputed => {
                self.await_payment(job, &account, now).await
            }
            JobState::Open => true,
        }
    }

    /// The spec of a job this worker holds: the copy kept at claim time, or fetched again;
    /// either way checked against the chain's hash.
    async fn held_spec(&self, job: Pubkey, account: &Job) -> Option<(JobSpec, Vec<u8>)> {
        let w = &self.worker;
        let path = w.work.job_dir(&job.to_string()).join(SPEC_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) if JobSpec::hash_bytes(&b) == account.spec_hash => b,
            _ => match fetch(&account.spec_uri, MAX_SPEC_BYTES, &w.read_policy()).await {
                Ok(b) if JobSpec::hash_bytes(&b) == account.spec_hash => {
                    let _ = crate::state::write_atomic(&path, &b);
                    b.to_vec()
                }
                Ok(_) | Err(_) => {
                    tracing::warn!(%job, "the held job's spec is unavailable or does not match its hash");
                    return None;
                }
            },
        };
        match JobSpec::from_json(&bytes) {
            Ok(spec) => Some((spec, bytes)),
            Err(e) => {
                tracing::warn!(%job, error = %e, "the held job's spec is invalid");
                None
            }
        }
    }

    /// A submitted (or disputed) job: finalized by this worker once nobody can object any
    /// more; otherwise waited on. Paid when its account closes.
    async fn await_payment(&self, job: Pubkey, account: &Job, now: i64) -> bool {
        let w = &self.worker;
        let name = job.to_string();
        w.status.stage(&name, "waiting for payment");
        let keys = SettleKeys {
            market: w.market,
            worker: w.keys().worker,
            job,
            poster: account.poster,
        };
        let (ready, ix, until) = match account.state {
            JobState::Submitted => (
                now > account.challenge_ends_at,
                ix::job_finalize(keys),
                account.challenge_ends_at,
            ),
            _ => (
                now > account.dispute_ends_at,
                ix::job_dispute_timeout(keys),
                account.dispute_ends_at,
            ),
        };
        if ready {
            let before = self.refresh_account().await;
            match w.chain.send(&[ix], &[w.operator.as_ref()]).await {
                Ok(l) => {
                    tracing::info!(%job, signature = %l.signature, "settled after the window");
                    self.settled(job, before).await;
                    true
                }
                Err(e) => {
                    tracing::warn!(%job, error = %e, "settling");
                    false
                }
            }
        } else {
            // Woken early by the account closing (the poster accepted) or by the window.
            let before = self.refresh_account().await;
            let wait = Duration::from_secs(until.saturating_sub(now).clamp(0, 3_600) as u64 + 1)
                .min(w.config.poll_interval);
            tokio::select! {
                _ = self.cancel.cancelled() => return true,
                _ = tokio::time::sleep(wait) => {}
            }
            if let Ok(None) = w.chain.job(&job).await {
                self.settled(job, before).await;
            }
            true
        }
    }

    /// The held job closed: log what it earned and forget it.
    async fn settled(&self, job: Pubkey, before: Option<WorkerAccount>) {
        let w = &self.worker;
        let after = self.refresh_account().await;
        let earned = match (&before, &after) {
            (Some(b), Some(a)) => a.record.total_earned.saturating_sub(b.record.total_earned),
            _ => 0,
        };
        if earned > 0 {
            tracing::info!(%job, earned_lamports = earned, total_earned_lamports = after.as_ref().map_or(0, |a| a.record.total_earned), "paid");
            w.status.update(|s| {
                s.jobs_paid += 1;
                s.earned_lamports += earned;
            });
        } else {
            tracing::warn!(%job, "the job closed without a payment to this worker");
        }
        let _ = w.work.finish(&job.to_string());
        w.status.idle();
    }

    /// After a restart: every job directory whose job is no longer this worker's is removed;
    /// the job still held is carried on by the main loop.
    async fn reconcile(&self) {
        let w = &self.worker;
        let Ok(local) = w.work.job_names() else {
            return;
        };
        let held = w
            .chain
            .worker(&w.keys().worker)
            .await
            .ok()
            .flatten()
            .map(|a| a.active_job);
        for name in local {
            let Ok(job) = name.parse::<Pubkey>() else {
                continue;
            };
            let stage = w.work.stage(&name).ok().flatten().map(|s| s.name());
            if held.is_some_and(|h| h != job) {
                tracing::info!(%job, ?stage, "no longer held by this worker; its files are removed");
                let _ = w.work.finish(&name);
            } else {
                tracing::info!(%job, ?stage, "continuing after a restart");
            }
        }
    }
}

/// Why a job is not claimed now.
enum Check {
    /// Never (remembered).
    Rejected(String),
    /// Not now (looked at again later).
    Transient(String),
}

impl Check {
    fn from_artifact(what: &str, e: ArtifactError) -> Self {
        if e.is_transient() {
            Check::Transient(format!("{what}: {e}"))
        } else {
            Check::Rejected(format!("{what}: {e}"))
        }
    }
}

/// A progress callback that keeps the status's step, total and ETA, then calls `next`.
fn track_progress(status: Status, next: Option<ProgressFn>) -> ProgressFn {
    // (when, step) of the first report of this run: the pace since then gives the ETA.
    let first = std::sync::Mutex::new(None::<(Instant, u64)>);
    Arc::new(move |p: &Progress| {
        let mut f = first.lock().unwrap_or_else(|e| e.into_inner());
        let (t0, s0) = match *f {
            Some((t, s)) if s <= p.step => (t, s),
            _ => {
                *f = Some((Instant::now(), p.step));
                (Instant::now(), p.step)
            }
        };
        let done = p.step.saturating_sub(s0);
        let eta = (done > 0).then(|| {
            t0.elapsed().as_secs_f64() / done as f64 * p.total.saturating_sub(p.step) as f64
        });
        status.update(|s| {
            if let Some(c) = s.current.as_mut() {
                c.step = p.step;
                c.total_steps = p.total;
                c.eta_s = eta;
            }
        });
        if let Some(n) = &next {
            n(p);
        }
    })
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}
