//! The worker daemon: start (keypair, chain, market, hardware, registration), reconcile the
//! work directory with the chain, then one loop — carry the job this worker holds to payment
//! (train, publish, submit, then finalize once the poster's window passes), otherwise claim
//! the best-paying job that passed its check before claiming (see `check`). Jobs the feed
//! reports are checked concurrently, in tasks, so a slow or hostile candidate never holds up
//! a good one. Transient failures wait with backoff and jitter (100 ms → 30 s) and are
//! retried; nothing but a shutdown or a broken setup (a keypair that cannot be read, no
//! market) ends the loop.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use solana_signer::Signer;
use tensorgrid_artifacts::{fetch, Store};
use tensorgrid_client::{
    anchor_lang::prelude::Pubkey,
    instructions::{self as ix, SettleKeys},
    rpc::{
        read_keypair, Backoff, ChainClient, ChainConfig, ChainError, CommitmentLevel, FeedConfig,
        JobQuery, Outage, PriorityFeeConfig,
    },
    state::{Job, JobOffer, JobState, Worker as WorkerAccount},
    tensorgrid::{
        constants::REOPEN_COOLDOWN_S,
        instructions::{WorkerRegisterArgs, WorkerUpdateArgs},
    },
};
use tensorgrid_train::{
    device::DeviceChoice,
    spec::JobSpec,
    trainer::{Progress, ProgressFn},
};
use tokio_util::sync::CancellationToken;

use crate::{
    check::{self, Gates, Plan, Verdict, MAX_SPEC_BYTES, SPEC_TIMEOUT},
    crashguard,
    estimate::Throughput,
    hardware,
    ledger::{Kind as LedgerKind, Ledger, Topups},
    pipeline::{JobError, Worker, SUBMIT_MARGIN_S},
    refusals::{Kind, Refusal, Refusals, POSTER_STRIKES},
    status::{self, Snapshot, Status},
    Config, Money, Stage, Unit, WorkDir,
};

/// The spec as checked before claiming, kept in the job's directory for a restart.
const SPEC_FILE: &str = "spec.json";
/// The longest a request for committed states waits for this worker to read it.
const STATE_REQUEST_POLL: Duration = Duration::from_secs(3);
/// Checks failing transiently this many times (backoff from 20 s doubling) end in a refusal.
const MAX_CHECK_ATTEMPTS: u32 = 6;
/// Refusals for the poster's reasons count against the poster for this long.
const STRIKE_MEMORY_S: i64 = 7 * 86_400;
/// A spec server that did not answer is remembered for this long.
const SLOW_HOST_MEMORY_S: i64 = 86_400;
/// Jobs on a spec server that did not answer after which its next ones are refused at once.
const SLOW_HOST_STRIKES: usize = 2;
/// Checks of candidates in flight at most (the heavy part has its own, smaller, bound).
const MAX_CHECKS_IN_FLIGHT: usize = 32;
/// The longest a job checked and worth taking waits for the checks still running on jobs that
/// pay more (so the best-paying is taken first, while a slow or hostile one holds nothing up).
const BETTER_PAY_GRACE: Duration = Duration::from_secs(5);
/// Datasets kept in the cache, in bytes, beyond those in use.
pub(crate) const DATASET_CACHE_BYTES: u64 = 4 << 30;
/// A stake short of the market's minimum that the day's cap kept from being topped up is
/// tried again this often (the cap counts the last 24 h).
const TOPUP_RETRY: Duration = Duration::from_secs(600);
/// How the pause a short stake causes (the day's top-up cap reached, or too few tokens to top
/// it up) ends: told apart from other pauses by it.
const STAKE_SHORT_MARK: &str = "claims wait for the operator";
/// How soon a job seen while the stake is short is looked at again.
const STAKE_SHORT_RECHECK: Duration = Duration::from_secs(30);

/// What stops the daemon from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
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
    /// Transient check failures per job.
    attempts: HashMap<Pubkey, u32>,
    /// Checks running, each its own task.
    checks: tokio::task::JoinSet<(Pubkey, Verdict)>,
    /// The jobs being checked, with their posters, spec servers and pay to this worker.
    checking: HashMap<Pubkey, (String, String, u64)>,
    /// Since when a plan has waited for better-paying checks (`BETTER_PAY_GRACE`).
    plan_waiting_since: Option<Instant>,
    /// Jobs that passed their check, waiting for this worker to be free.
    plans: Vec<Plan>,
    gates: Gates,
    /// Refusals for the poster's reasons in the last `STRIKE_MEMORY_S`, by poster.
    strikes: HashMap<String, usize>,
    /// Spec servers that did not answer in the last `SLOW_HOST_MEMORY_S`, by host.
    slow_hosts: HashMap<String, usize>,
    cancel: CancellationToken,
    /// Held while the daemon runs: one worker per work directory.
    _lock: std::fs::File,
    /// Repeating failures of the main loop's reads, each logged once and then every few
    /// minutes rather than on every pass.
    outages: std::sync::Mutex<HashMap<&'static str, Outage>>,
    /// The market's minimum stake when this worker's stake is below it and the day's top-up
    /// cap stopped the refill, with when that was decided: no claim is sent meanwhile (the
    /// program would refuse it), the refill is tried again every `TOPUP_RETRY`.
    stake_short: std::sync::Mutex<Option<(u64, Instant)>>,
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
    let mut outage = Outage::new(what);
    loop {
        match op().await {
            Ok(v) => {
                outage.succeeded();
                status.chain_contact();
                return Some(v);
            }
            Err(e) => {
                outage.failed(&e);
                status.update(|s| s.last_error = Some(format!("{what}: {e}")));
                tokio::select! {
                    _ = cancel.cancelled() => return None,
                    _ = backoff.wait() => {}
                }
            }
        }
    }
}

/// The chain client's settings from the worker's (endpoints, websocket, commitment, fees).
pub fn chain_config(config: &Config) -> Result<ChainConfig, StartError> {
    let mut c = ChainConfig::with_urls(config.rpc_urls.clone())
        .map_err(|e| StartError::Setup(e.to_string()))?;
    c.ws_url = config.ws_url.clone();
    c.commitment = match config.commitment.as_str() {
        "processed" => CommitmentLevel::Processed,
        "finalized" => CommitmentLevel::Finalized,
        _ => CommitmentLevel::Confirmed,
    };
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
        let lock = work.lock().map_err(StartError::Setup)?;
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
        // The market's unit decides what the amount settings mean: read once, here.
        let account = retry("reading the market", &cancel, &status, || async {
            match chain.market(&market).await {
                Err(ChainError::AccountNotFound(_)) => Ok(None),
                other => other.map(Some),
            }
        })
        .await
        .ok_or(StartError::Stopped)?
        .ok_or_else(|| StartError::Setup(format!("market {market} does not exist")))?;
        let money = Money::for_market(&config, &market, &account).map_err(StartError::Setup)?;
        if config.verify_disputes && money.verifier_pledge >= money.stake {
            tracing::warn!(
                pledge = %money.unit.show(money.verifier_pledge),
                stake = %money.unit.show(money.stake),
                "the whole stake is pledged to the verifier pool: claims need stake beyond the pledge, so this worker verifies but takes no job (raise the stake or lower the pledge)"
            );
        }
        if let Some(mint) = money.unit.currency.mint() {
            tracing::info!(%mint, decimals = money.unit.decimals, stake = %money.unit.show(money.stake), min_reward_per_hour = %money.unit.show(money.min_reward_per_hour), "a market priced in a mint");
        }
        let progress = Some(track_progress(status.clone(), progress));
        let worker = Worker {
            chain,
            store,
            work,
            money,
            config,
            operator,
            market,
            hardware: hw,
            device,
            stop: Arc::new(AtomicBool::new(false)),
            progress,
            status,
            cancel: cancel.clone(),
            states: Default::default(),
        };
        worker.status.update(|s| {
            s.mint = money.unit.currency.mint().map(|m| m.to_string());
            s.decimals = Some(money.unit.decimals);
            s.market = market.to_string();
            s.worker = worker.keys().worker.to_string();
        });
        // A check the last run left unfinished crashed the process: that job is refused for
        // good rather than checked (and crashed on) again.
        if let Some(c) = crashguard::crashed_check(&worker.work) {
            // Recorded first, then said: whoever reads the log finds the refusal on disk.
            let _ = Refusals::new(&worker.work).add(
                &c.job,
                Refusal {
                    reason: "the job crashed the worker during its check".into(),
                    kind: Kind::Crashed,
                    poster: c.poster.clone(),
                    at: status::unix_now(),
                    host: String::new(),
                },
            );
            tracing::warn!(job = %c.job, poster = %c.poster, "the last run crashed while checking this job; refused");
        }
        // Refusals that cannot change (the job as posted) are remembered across restarts; the
        // rest (pay, time, device, settings) are looked at again.
        let all = Refusals::new(&worker.work).all();
        let rejected = all
            .iter()
            .filter(|(_, r)| r.lasts())
            .filter_map(|(k, _)| k.parse().ok())
            .collect();
        let mut strikes: HashMap<String, usize> = HashMap::new();
        let since = status::unix_now() - STRIKE_MEMORY_S;
        for r in all
            .values()
            .filter(|r| r.kind == Kind::Poster && r.at >= since)
        {
            *strikes.entry(r.poster.clone()).or_default() += 1;
        }
        // Spec servers that did not answer lately, across restarts.
        let mut slow_hosts: HashMap<String, usize> = HashMap::new();
        let since = status::unix_now() - SLOW_HOST_MEMORY_S;
        for r in all
            .values()
            .filter(|r| r.kind == Kind::Unreachable && !r.host.is_empty() && r.at >= since)
        {
            *slow_hosts.entry(r.host.clone()).or_default() += 1;
        }
        let gates = Gates::new(worker.config.max_parallel_checks);
        let daemon = Self {
            worker: Arc::new(worker),
            throughput,
            rejected,
            attempts: HashMap::new(),
            checks: tokio::task::JoinSet::new(),
            checking: HashMap::new(),
            plan_waiting_since: None,
            plans: Vec::new(),
            gates,
            strikes,
            slow_hosts,
            cancel,
            _lock: lock,
            outages: std::sync::Mutex::new(HashMap::new()),
            stake_short: std::sync::Mutex::new(None),
        };
        daemon.register().await?;
        Ok(daemon)
    }

    pub fn status(&self) -> &Status {
        &self.worker.status
    }

    /// Registers with the configured stake when not registered; updates the hardware when it
    /// changed; tops the stake up to the configured amount when penalties took it below the
    /// market's minimum. Transient failures are retried (the account is read again first, so
    /// nothing is paid twice); a refusal by the program is fatal.
    async fn register(&self) -> Result<(), StartError> {
        let mut backoff = Backoff::standard();
        loop {
            match self.register_once().await {
                Ok(()) => return Ok(()),
                Err(Registration::Fatal(why)) => return Err(StartError::Setup(why)),
                Err(Registration::Transient(why)) => {
                    tracing::warn!(reason = %why, "registration: retrying");
                    tokio::select! {
                        _ = self.cancel.cancelled() => return Err(StartError::Stopped),
                        _ = backoff.wait() => {}
                    }
                }
            }
        }
    }

    async fn register_once(&self) -> Result<(), Registration> {
        let w = &self.worker;
        let keys = w.keys();
        let transient = |what: &str, e: ChainError| Registration::Transient(format!("{what}: {e}"));
        let market = w.chain.market(&w.market).await.map_err(|e| match e {
            ChainError::AccountNotFound(_) => {
                Registration::Fatal(format!("market {} does not exist", w.market))
            }
            e => transient("reading the market", e),
        })?;
        let money = w.money;
        let unit = money.unit;
        // The amounts were read in the unit the market had at start; a market is created in
        // its unit and keeps it, so a change means another account at this address.
        if Unit::of(&market) != unit {
            return Err(Registration::Fatal(format!(
                "market {} is now priced in {}, not the unit this worker started with: restart it",
                w.market,
                Unit::of(&market).name()
            )));
        }
        let account = w
            .chain
            .worker(&keys.worker)
            .await
            .map_err(|e| transient("reading the worker account", e))?;
        let min_stake = market.params.min_stake;
        let send = |what: &'static str, ixs: Vec<ix::Instruction>| async move {
            w.chain
                .send(&ixs, &[w.operator.as_ref()])
                .await
                .map_err(|e| match e.program_error() {
                    Some(p) => Registration::Fatal(format!("{what}: {p}")),
                    None => transient(what, e),
                })
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
                if a.stake < min_stake {
                    let want = money.stake.max(min_stake) - a.stake;
                    // Refills come from the operator's wallet: at most the configured amount a
                    // day, so a run of losses cannot drain it.
                    let topups = Topups::new(&w.work);
                    let used = topups.last_day(status::unix_now(), &w.market);
                    let short = if used.saturating_add(want) > money.max_stake_topup_per_day {
                        Some(format!(
                            "the stake ({}) is below the market's minimum ({}); topping it up would take {} from the operator's wallet today, more than {} ({})",
                            unit.show(a.stake),
                            unit.show(min_stake),
                            unit.show(used.saturating_add(want)),
                            money.topup_cap_field(),
                            unit.show(money.max_stake_topup_per_day)
                        ))
                    } else {
                        self.token_shortfall(want).await?.map(|why| {
                            format!(
                                "the stake ({}) is below the market's minimum ({}); {why}",
                                unit.show(a.stake),
                                unit.show(min_stake)
                            )
                        })
                    };
                    match short {
                        Some(why) => {
                            let why = format!("{why}: {STAKE_SHORT_MARK}");
                            tracing::error!("{why}");
                            w.status.update(|s| s.paused = Some(why));
                            self.set_stake_short(Some(min_stake));
                        }
                        None => args.add_stake = want,
                    }
                } else {
                    self.set_stake_short(None);
                }
                if args.hardware.is_some() || args.add_stake > 0 {
                    let added = args.add_stake;
                    // A hardware-only update moves no tokens and names no token account: one
                    // the operator closed cannot hold it up.
                    let currency = if added > 0 {
                        unit.currency
                    } else {
                        tensorgrid_client::Currency::Sol
                    };
                    let landed = send(
                        "updating the worker",
                        vec![ix::worker_update_in(
                            &currency,
                            keys.operator,
                            w.market,
                            keys.worker,
                            args,
                        )],
                    )
                    .await?;
                    if added > 0 {
                        if let Err(e) =
                            Topups::new(&w.work).record(status::unix_now(), added, &w.market)
                        {
                            tracing::warn!(error = %e, "the top-up was not recorded");
                        }
                        self.set_stake_short(None);
                    }
                    tracing::info!(signature = %landed.signature, stake_added = added, "registration updated (hardware or stake)");
                }
                tracing::info!(worker = %keys.worker, stake = a.stake, earnings = a.earnings, "registered");
            }
            _ => {
                // Never more than the operator configured: an authority that raised the
                // minimum cannot make the worker stake more on its own.
                if min_stake > money.stake {
                    return Err(Registration::Fatal(format!(
                        "market {} asks for a stake of at least {}, more than {} ({}); raise it to register",
                        w.market,
                        unit.show(min_stake),
                        money.stake_field(),
                        unit.show(money.stake)
                    )));
                }
                let stake = money.stake;
                if let Some(why) = self.token_shortfall(stake).await? {
                    return Err(Registration::Fatal(why));
                }
                let landed = send(
                    "registering the worker",
                    vec![ix::worker_register_in(
                        &unit.currency,
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

    /// In a token market, why staking `amount` cannot be done when the operator's token
    /// account does not hold it (the transaction would fail with a token program error);
    /// `None` when it can, and always in a SOL market.
    async fn token_shortfall(&self, amount: u64) -> Result<Option<String>, Registration> {
        let w = &self.worker;
        let unit = w.money.unit;
        let Some(account) = unit.currency.token_account(&w.operator.pubkey()) else {
            return Ok(None);
        };
        let held = w
            .chain
            .token_balance(&account)
            .await
            .map_err(|e| {
                Registration::Transient(format!("reading the operator's token account: {e}"))
            })?
            .unwrap_or(0);
        Ok((held < amount).then(|| {
            format!(
                "staking {} needs the operator's token account {account} (mint {}) to hold it; it holds {}",
                unit.show(amount),
                unit.currency.mint().unwrap_or_default(),
                unit.show(held)
            )
        }))
    }

    /// Records that the stake is short of `min_stake` (the day's cap kept it from a refill), or
    /// that it no longer is (`None`: the pause it caused, if any, ends).
    fn set_stake_short(&self, min_stake: Option<u64>) {
        let mut short = self.stake_short.lock().unwrap_or_else(|e| e.into_inner());
        let was = short.take();
        *short = min_stake.map(|m| (m, Instant::now()));
        if was.is_some() && short.is_none() {
            tracing::info!("the stake is at the market's minimum again; claiming resumes");
            // Only the stake's own pause: a full disk says so itself at its next check.
            self.worker.status.update(|s| {
                if s.paused
                    .as_deref()
                    .is_some_and(|p| p.contains(STAKE_SHORT_MARK))
                {
                    s.paused = None;
                }
            });
        }
    }

    /// The refill the cap stopped was tried again and failed: the next try in `TOPUP_RETRY`.
    fn stake_short_retried(&self) {
        let mut short = self.stake_short.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, since)) = short.as_mut() {
            *since = Instant::now();
        }
    }

    /// Whether claims wait for the stake (`stake` lamports now) to reach the market's minimum;
    /// a stake the operator raised meanwhile ends the wait.
    fn stake_is_short(&self, stake: u64) -> bool {
        let short = *self.stake_short.lock().unwrap_or_else(|e| e.into_inner());
        match short {
            Some((min_stake, _)) if stake < min_stake => true,
            Some(_) => {
                self.set_stake_short(None);
                false
            }
            None => false,
        }
    }

    /// Whether the refill the day's cap stopped is due to be tried again.
    fn topup_due(&self) -> bool {
        let short = *self.stake_short.lock().unwrap_or_else(|e| e.into_inner());
        short.is_some_and(|(_, since)| since.elapsed() >= TOPUP_RETRY)
    }

    /// Reads the worker account into the status (stake, earnings); `None` when unreadable.
    async fn refresh_account(&self) -> Option<WorkerAccount> {
        let w = &self.worker;
        let read = w.chain.worker(&w.keys().worker).await;
        if read.is_ok() {
            self.recovered("reading the worker account");
        }
        match read {
            Ok(Some(a)) => {
                w.status.chain_contact();
                w.status.update(|s| {
                    s.stake_lamports = a.stake;
                    s.pledged_lamports = a.pooled_stake;
                    s.earnings_balance_lamports = a.earnings;
                    s.total_earned_lamports = a.record.total_earned;
                    s.rpc_url = w.chain.active_url().to_string();
                });
                Some(a)
            }
            Ok(None) => None,
            Err(e) => {
                self.failed("reading the worker account", &e);
                None
            }
        }
    }

    /// A failure of `what` that repeats: logged the first time and then every few minutes.
    fn failed(&self, what: &'static str, error: &dyn std::fmt::Display) {
        let mut outages = self.outages.lock().unwrap_or_else(|e| e.into_inner());
        outages
            .entry(what)
            .or_insert_with(|| Outage::new(what))
            .failed(error);
    }

    /// `what` worked: a run of failures, if any, is over (logged).
    fn recovered(&self, what: &'static str) {
        let mut outages = self.outages.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(o) = outages.get_mut(what) {
            o.succeeded();
        }
    }

    /// Runs until `cancel` fires.
    pub async fn run(mut self) {
        let w = self.worker.clone();
        let cancel = self.cancel.clone();
        // Training notices the shutdown between steps.
        {
            let (stop, c, status) = (w.stop.clone(), cancel.clone(), w.status.clone());
            tokio::spawn(async move {
                c.cancelled().await;
                stop.store(true, Ordering::SeqCst);
                status.update(|s| s.state = "stopping".into());
            });
        }
        self.reconcile().await;
        self.sync_ledger().await;
        if w.config.verify_disputes {
            tokio::spawn(crate::disputes::serve(w.clone(), cancel.clone()));
        }
        let watch = || {
            w.chain.watch_jobs(
                JobQuery::open_in(w.market),
                FeedConfig {
                    sweep_every: w.config.poll_interval,
                    ..FeedConfig::default()
                },
                cancel.clone(),
            )
        };
        let mut feed = watch();
        // Jobs whose check failed transiently or that are not claimable yet, looked at later.
        let mut deferred: VecDeque<(Instant, Pubkey)> = VecDeque::new();
        let mut backoff = Backoff::standard();
        // The job held at the last pass and the account then: a change means it closed.
        let mut last: Option<(Pubkey, WorkerAccount)> = None;
        w.status.idle();
        while !cancel.is_cancelled() {
            let stats = feed.stats();
            w.status.update(|s| {
                s.subscriptions = stats.subscriptions.load(Ordering::Relaxed);
                s.sweeps = stats.sweeps.load(Ordering::Relaxed);
            });
            // The job this worker holds comes first: one at a time.
            let Some(account) = self.refresh_account().await else {
                tokio::select! { _ = cancel.cancelled() => break, _ = backoff.wait() => {} }
                continue;
            };
            let held = Some(account.active_job).filter(|j| *j != Pubkey::default());
            if let Some((job, before)) = last.take() {
                if held == Some(job) || self.still_ours(job).await {
                    // Unchanged, or a node behind the others: looked at again next pass.
                    if held != Some(job) {
                        last = Some((job, before));
                        tokio::select! { _ = cancel.cancelled() => break, _ = backoff.wait() => {} }
                        continue;
                    }
                } else if match w.work.stage(&job.to_string()) {
                    // Nothing here to lose.
                    Ok(None) => true,
                    // A submitted result's committed states are the only copy a dispute can
                    // be served from: they go once every node shows the job closed.
                    Ok(Some(Stage::Submitted { .. })) => w.confirmed_closed(&job).await,
                    // Work not yet submitted goes only on every node's word.
                    _ => w.confirmed_not_ours(&job).await,
                } {
                    self.settled(job, &before, &account).await;
                } else {
                    // One node says it is over, the others do not (yet): nothing is deleted.
                    last = Some((job, before));
                    tokio::select! { _ = cancel.cancelled() => break, _ = backoff.wait() => {} }
                    continue;
                }
            }
            if let Some(job) = held {
                last = Some((job, account));
                // Checks that finished while this job is held: their verdicts recorded now (a
                // refusal is remembered at once; a plan waits for this worker to be free).
                while let Some(done) = self.checks.try_join_next() {
                    match done {
                        Ok((job, verdict)) => self.verdict(job, verdict, &mut deferred),
                        Err(e) => tracing::error!(error = %e, "a check task failed"),
                    }
                }
                let moved = self.carry(job).await;
                self.note_give_up(job);
                if moved {
                    backoff.reset();
                    w.status.update(|s| s.last_error = None);
                } else {
                    tokio::select! { _ = cancel.cancelled() => break, _ = backoff.wait() => {} }
                }
                continue;
            }
            w.status.idle();
            if self.topup_due() {
                // One try (the operator's wallet may be empty): the next one in TOPUP_RETRY.
                match self.register_once().await {
                    Ok(()) => {}
                    Err(Registration::Fatal(why) | Registration::Transient(why)) => {
                        tracing::warn!(reason = %why, "the stake top-up failed; tried again later");
                        self.stake_short_retried();
                    }
                }
            }
            // A job checked and worth taking goes first, the best-paying one.
            if let Some(plan) = self.best_plan() {
                let job = plan.job;
                let outcome = self.take(plan).await;
                if w.work.stage(&job.to_string()).ok().flatten().is_some() {
                    // Claimed on this pass: if it closes (paid) before the next read of the
                    // worker account, the change is still seen against this account.
                    last = Some((job, account));
                }
                match outcome {
                    Next::Done => {}
                    Next::Later(after) => defer(&mut deferred, job, after),
                    Next::Register => {
                        if let Err(e) = self.register().await {
                            tracing::error!(error = %e, "cannot update the registration; stopping");
                            break;
                        }
                        defer(&mut deferred, job, self.recheck());
                    }
                }
                continue;
            }
            let due = deferred.front().map(|(t, _)| *t);
            let plan_wait = self.plan_wait_ends();
            tokio::select! {
                _ = cancel.cancelled() => break,
                seen = feed.next() => match seen {
                    Some(s) => self.consider(s.pubkey, &mut deferred).await,
                    None => {
                        // The feed's tasks ended without a shutdown: start another.
                        tracing::warn!("the job feed stopped; starting it again");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        feed = watch();
                    }
                },
                Some(done) = self.checks.join_next(), if !self.checks.is_empty() => {
                    match done {
                        Ok((job, verdict)) => self.verdict(job, verdict, &mut deferred),
                        Err(e) => tracing::error!(error = %e, "a check task failed"),
                    }
                }
                _ = sleep_until(due) => {
                    if let Some((_, job)) = deferred.pop_front() {
                        self.consider(job, &mut deferred).await;
                    }
                }
                // A plan that waited its grace for better-paying checks is taken now.
                _ = sleep_until(plan_wait), if plan_wait.is_some() => {}
            }
        }
        self.checks.abort_all();
        // A rehearsal in flight runs on a blocking thread: let it end (it clears its crash
        // marker) rather than leave the marker for a crash that was a shutdown.
        let _ = tokio::time::timeout(Duration::from_secs(30), self.gates.device.acquire()).await;
        w.status.update(|s| s.state = "stopped".into());
        tracing::info!("stopped");
    }

    /// Looks at a job the feed reported, as the chain shows it now: what can be decided
    /// without fetching anything is decided here; the rest is a check started in its own task.
    async fn consider(&mut self, job: Pubkey, deferred: &mut VecDeque<(Instant, Pubkey)>) {
        let w = self.worker.clone();
        if self.rejected.contains(&job)
            || self.checking.contains_key(&job)
            || self.plans.iter().any(|p| p.job == job)
        {
            return;
        }
        let (account, now) = match tokio::try_join!(w.chain.job(&job), w.chain.chain_time()) {
            Ok((Some(a), now)) => (a, now),
            Ok((None, _)) => return,
            Err(e) => {
                tracing::debug!(%job, error = %e, "reading a reported job");
                return defer(deferred, job, Duration::from_secs(5));
            }
        };
        if account.state != JobState::Open
            || account.market != w.market
            || account.is_barred(&w.keys().worker)
        {
            return;
        }
        let claimable_at = account.reopened_at.saturating_add(REOPEN_COOLDOWN_S);
        if account.reopened_at > 0 && now <= claimable_at {
            // Looked at again by the poll interval at the latest: the chain's clock, not this
            // machine's, ends the cooldown.
            let wait = Duration::from_secs((claimable_at - now + 1) as u64).min(self.recheck());
            return defer(deferred, job, wait);
        }
        // The terms first: the operator's limits decide whether this job is one to sign at
        // all (the claim commits to exactly these terms).
        if let Err(why) = crate::policy::check_terms(&account.terms, &w.config.terms) {
            return self.reject(job, &account.poster.to_string(), Kind::Settings, &why);
        }
        // The claim puts this much of the stake at risk; the program refuses it beyond the
        // stake (and topping up is the operator's decision, not a stranger's).
        let collateral = account.terms.collateral(account.reward).unwrap_or(u64::MAX);
        let snapshot = w.status.snapshot();
        let stake = snapshot.stake_lamports;
        // The program locks collateral out of the stake the verifier pledge leaves free.
        let free = stake.saturating_sub(snapshot.pledged_lamports);
        // Below the market's minimum with the day's refill spent: the operator's condition,
        // not the job's (looked at again once there is stake, never refused).
        if self.stake_is_short(stake) {
            return defer(deferred, job, STAKE_SHORT_RECHECK);
        }
        if collateral > free {
            let unit = w.money.unit;
            let why = format!(
                "needs {} of stake as collateral, this worker has {} free (stake {}, pledged to the verifier pool {})",
                unit.show(collateral),
                unit.show(free),
                unit.show(stake),
                unit.show(snapshot.pledged_lamports)
            );
            return self.reject(job, &account.poster.to_string(), Kind::Settings, &why);
        }
        let poster = account.poster.to_string();
        let strikes = self.strikes.get(&poster).copied().unwrap_or(0);
        if strikes >= POSTER_STRIKES {
            let why = format!(
                "its poster {poster} posted {strikes} jobs lately that could not be done as posted"
            );
            return self.reject(job, &poster, Kind::Blocked, &why);
        }
        let host = crate::refusals::host_of(&account.spec_uri);
        let unanswered = self.slow_hosts.get(&host).copied().unwrap_or(0);
        if unanswered >= SLOW_HOST_STRIKES {
            let why = format!("its spec server {host} did not answer for {unanswered} jobs lately");
            return self.reject_at(job, &poster, Kind::Unreachable, &why, "");
        }
        if self.checks.len() >= MAX_CHECKS_IN_FLIGHT {
            return defer(deferred, job, Duration::from_secs(5));
        }
        let pay = pay_of(&account);
        self.checking.insert(job, (poster, host, pay));
        let (throughput, gates) = (self.throughput, self.gates.clone());
        self.checks.spawn(async move {
            let verdict = check::check(&w, throughput, &gates, job, account).await;
            (job, verdict)
        });
    }

    /// What a finished check decided.
    fn verdict(
        &mut self,
        job: Pubkey,
        verdict: Verdict,
        deferred: &mut VecDeque<(Instant, Pubkey)>,
    ) {
        let (poster, host, _) = self.checking.remove(&job).unwrap_or_default();
        match verdict {
            Verdict::Take(plan) => {
                self.attempts.remove(&job);
                // A check passing says the disk has room again; a short stake still holds.
                let short = self
                    .stake_short
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_some();
                self.worker.status.update(|s| {
                    if s.paused.is_some() && !short {
                        s.paused = None;
                    }
                });
                self.plans.push(*plan);
            }
            Verdict::Refuse(kind, why) => {
                self.attempts.remove(&job);
                // A spec server that did not answer counts against its host.
                let slow = if kind == Kind::Unreachable && why.starts_with("spec:") {
                    *self.slow_hosts.entry(host.clone()).or_default() += 1;
                    host.as_str()
                } else {
                    ""
                };
                self.reject_at(job, &poster, kind, &why, slow);
            }
            Verdict::Later(why) => {
                let n = self.attempts.entry(job).or_insert(0);
                *n += 1;
                if *n >= MAX_CHECK_ATTEMPTS {
                    self.attempts.remove(&job);
                    let why = format!("unreachable {MAX_CHECK_ATTEMPTS} times: {why}");
                    return self.reject(job, &poster, Kind::Unreachable, &why);
                }
                let wait = Duration::from_secs(10 << (*n).min(6));
                tracing::warn!(%job, reason = %why, retry_in_s = wait.as_secs(), "cannot check the job now");
                defer(deferred, job, wait);
            }
            Verdict::Paused(why) => {
                // This machine's condition, not the job's: nothing is claimed until there is
                // room, and the operator is told.
                tracing::error!(%job, reason = %why, "claiming paused");
                self.worker.status.update(|s| s.paused = Some(why.clone()));
                defer(deferred, job, Duration::from_secs(60));
            }
        }
    }

    /// The best-paying plan still waiting (its check passed).
    fn best_plan(&mut self) -> Option<Plan> {
        // Plans that passed their checks while a job was held wait for the stake too: the
        // program would refuse their claims.
        if self.stake_is_short(self.worker.status.snapshot().stake_lamports) {
            return None;
        }
        let Some(best) = (0..self.plans.len()).max_by_key(|&i| pay_of(&self.plans[i].account))
        else {
            self.plan_waiting_since = None;
            return None;
        };
        let pay = pay_of(&self.plans[best].account);
        // A check still running on a job that pays more: waited for, a few seconds at most.
        let better = self.checking.values().any(|(_, _, p)| *p > pay);
        if better {
            let since = *self.plan_waiting_since.get_or_insert_with(Instant::now);
            if since.elapsed() < BETTER_PAY_GRACE {
                return None;
            }
        }
        self.plan_waiting_since = None;
        Some(self.plans.swap_remove(best))
    }

    /// When a plan waiting for better-paying checks stops waiting.
    fn plan_wait_ends(&self) -> Option<Instant> {
        self.plan_waiting_since.map(|t| t + BETTER_PAY_GRACE)
    }

    /// Claims the job of `plan` and works it to its submission (the device is this job's
    /// meanwhile: checks wait to rehearse).
    async fn take(&mut self, plan: Plan) -> Next {
        let w = self.worker.clone();
        let job = plan.job;
        let name = job.to_string();
        // The check's dataset and files must still be here: the claim is made only for a
        // job whose inputs this worker holds, checked (otherwise it is checked again).
        let inputs = cached_inputs(&w.work, &plan.spec);
        if inputs.iter().any(|sha| !w.work.dataset_path(sha).exists()) {
            tracing::info!(%job, "a checked input left the cache; checking the job again");
            return Next::Later(Duration::from_secs(1));
        }
        // Whatever a directory of this name holds is not a job this worker has.
        let _ = w.work.finish(&name);
        if let Err(e) =
            crate::state::write_atomic(&w.work.job_dir(&name).join(SPEC_FILE), &plan.spec_bytes)
        {
            tracing::error!(%job, error = %e, "cannot keep the spec in the work dir");
            return Next::Later(Duration::from_secs(30));
        }
        let next = self
            .work(job, &plan.account.offer(), &plan.spec, &plan.spec_bytes)
            .await;
        self.note_give_up(job);
        // Datasets not in use beyond the cache's size go: never this job's, another waiting
        // plan's, or one written in the last hour (a check in flight may be about to read it).
        let mut keep: Vec<String> = self
            .plans
            .iter()
            .flat_map(|p| cached_inputs(&w.work, &p.spec))
            .collect();
        keep.extend(inputs);
        let work = w.work.clone();
        tokio::task::spawn_blocking(move || {
            work.prune_datasets(DATASET_CACHE_BYTES, &keep, Duration::from_secs(3_600))
        });
        match next {
            // Failing again and again (a paused market, an RPC down): wait longer.
            Next::Later(after) => {
                let n = self.attempts.entry(job).or_insert(0);
                *n += 1;
                Next::Later(after.max(Duration::from_secs(1 << (*n).min(6))))
            }
            next => next,
        }
    }

    /// A job given back for its poster's reasons (recorded by the pipeline) counts against
    /// its poster now, not only after a restart; and it is never looked at again.
    fn note_give_up(&mut self, job: Pubkey) {
        let all = Refusals::new(&self.worker.work).all();
        let Some(r) = all.get(&job.to_string()) else {
            return;
        };
        if r.lasts() && self.rejected.insert(job) && r.kind == Kind::Poster {
            *self.strikes.entry(r.poster.clone()).or_default() += 1;
        }
    }

    /// How soon a job waiting on the chain's clock is looked at again.
    fn recheck(&self) -> Duration {
        self.worker.config.poll_interval.max(Duration::from_secs(1))
    }

    /// Remembers a refusal: in memory for this run, and in `rejected.json` (read back at the
    /// next start when it lasts: the job as posted, not this worker's settings). A refusal
    /// for the poster's reasons counts against the poster.
    fn reject(&mut self, job: Pubkey, poster: &str, kind: Kind, why: &str) {
        self.reject_at(job, poster, kind, why, "")
    }

    /// [`Self::reject`], naming the server `host` that did not answer (or "").
    fn reject_at(&mut self, job: Pubkey, poster: &str, kind: Kind, why: &str, host: &str) {
        let w = &self.worker;
        tracing::info!(%job, reason = %why, "not taken");
        if self.rejected.len() >= 50_000 {
            // Bounded: forgotten refusals only cost a check again.
            self.rejected.clear();
        }
        self.rejected.insert(job);
        if kind == Kind::Poster && !poster.is_empty() {
            *self.strikes.entry(poster.to_string()).or_default() += 1;
        }
        w.status.update(|s| s.jobs_rejected += 1);
        let refusal = Refusal {
            reason: why.into(),
            kind,
            poster: poster.into(),
            at: status::unix_now(),
            host: host.into(),
        };
        if let Err(e) = Refusals::new(&w.work).add(&job.to_string(), refusal) {
            tracing::warn!(error = %e, "rejected jobs not saved");
        }
    }

    /// Claims (unless already claimed) and works the job to its submission.
    async fn work(&self, job: Pubkey, expected: &JobOffer, spec: &JobSpec, bytes: &[u8]) -> Next {
        let w = &self.worker;
        // The device is this job's: checks wait to run their steps until it is done.
        let Ok(_device) = self.gates.device.acquire().await else {
            return Next::Done;
        };
        let started = Instant::now();
        match w.work_on(job, expected, spec, bytes).await {
            Ok(done) => {
                self.recovered("working on the job held (interrupted; retrying)");
                if done.fresh {
                    tracing::info!(%job, result_hash = %done.result_hash, secs = format!("{:.1}", started.elapsed().as_secs_f64()), "submitted; waiting for payment");
                    w.status.update(|s| s.jobs_submitted += 1);
                }
                Next::Done
            }
            Err(JobError::Lost(why)) => {
                tracing::info!(%job, %why, "job lost");
                w.status.update(|s| s.jobs_lost += 1);
                let _ = w.work.finish(&job.to_string());
                Next::Done
            }
            Err(JobError::GaveUp(why)) => {
                tracing::warn!(%job, %why, "job given back");
                w.status.update(|s| s.jobs_abandoned += 1);
                Next::Done
            }
            Err(JobError::NotYet(secs)) => {
                let _ = w.work.finish(&job.to_string());
                Next::Later(Duration::from_secs(secs.max(1) as u64).min(self.recheck()))
            }
            Err(JobError::Registration(why)) => {
                tracing::warn!(%job, %why, "claim refused for this worker's registration; updating it");
                let _ = w.work.finish(&job.to_string());
                Next::Register
            }
            Err(JobError::Stopped) => Next::Done,
            Err(e @ (JobError::Transient(_) | JobError::State(_))) => {
                self.failed(
                    "working on the job held (interrupted; retrying)",
                    &format!("{job}: {e}"),
                );
                w.status.update(|s| s.last_error = Some(e.to_string()));
                Next::Later(Duration::from_secs(1))
            }
        }
    }

    /// Carries the job this worker holds one step further: work on it, or finalize it once
    /// the poster's window passed, or wait for the poster or the authority. `false` when
    /// nothing moved (the caller waits before the next pass).
    async fn carry(&self, job: Pubkey) -> bool {
        let w = &self.worker;
        let name = job.to_string();
        let (account, now) = match tokio::try_join!(w.chain.job(&job), w.chain.chain_time()) {
            Ok((Some(a), now)) => (a, now),
            // Closed, or not yet visible on this node: the next pass reads both again.
            Ok((None, _)) => return false,
            Err(e) => {
                self.failed("reading the job held", &format!("{job}: {e}"));
                return false;
            }
        };
        self.recovered("reading the job held");
        w.status.chain_contact();
        if account.worker != w.keys().worker {
            // Another node's older view of the worker account: nothing to do on this job.
            return false;
        }
        match account.state {
            JobState::Claimed
                if now > account.deadline
                    && w.cautious_now().await.is_ok_and(|t| t > account.deadline) =>
            {
                // Missed (the worker was down, or too slow), by every node's clock: nothing
                // more is done on it; the reclaim frees this worker for the next job (its
                // slash goes to the poster, the bounty back to this operator). The files go
                // once the reclaim landed.
                tracing::warn!(%job, deadline = account.deadline, "the deadline passed; the job is not worked on further");
                // In a token market the bounty is paid to the operator's token account: it is
                // created first if it does not exist.
                let operator = w.operator.pubkey();
                let currency = w.money.unit.currency;
                let mut ixs: Vec<ix::Instruction> = currency
                    .ensure_token_account(&operator, &operator)
                    .into_iter()
                    .collect();
                ixs.push(ix::job_reclaim_in(
                    &currency,
                    operator,
                    w.market,
                    w.keys().worker,
                    job,
                ));
                match w.chain.send(&ixs, &[w.operator.as_ref()]).await {
                    Ok(l) => {
                        tracing::warn!(%job, signature = %l.signature, "reclaimed after the missed deadline");
                        let _ = w.work.finish(&name);
                        true
                    }
                    Err(e) => {
                        tracing::warn!(%job, error = %e, "reclaim");
                        false
                    }
                }
            }
            JobState::Claimed => {
                let stage = w.work.stage(&name).ok().flatten();
                // Trained already: publishing and submitting take seconds.
                let trained = matches!(
                    stage,
                    Some(Stage::Trained { .. } | Stage::Published { .. } | Stage::Submitted { .. })
                );
                if !trained
                    && account.deadline.saturating_sub(now) <= SUBMIT_MARGIN_S
                    && w.cautious_now()
                        .await
                        .is_ok_and(|t| account.deadline.saturating_sub(t) <= SUBMIT_MARGIN_S)
                {
                    // Too close to finish: given back now, the abandon penalty instead of
                    // the slash that a missed deadline costs.
                    return match w
                        .give_up::<()>(job, "too close to the deadline to finish".into())
                        .await
                    {
                        Err(JobError::GaveUp(_)) => {
                            w.status.update(|s| s.jobs_abandoned += 1);
                            true
                        }
                        _ => false,
                    };
                }
                let Some((spec, bytes)) = self.held_spec(job, &account).await else {
                    return false;
                };
                if stage.is_none() {
                    // Claimed, but the work dir does not know it (wiped, or killed right
                    // after the claim landed): continue from the claim. Never claimed again
                    // from here: without the record, nothing is done.
                    let recorded = w.work.record(
                        &name,
                        &Stage::Claimed {
                            deadline: account.deadline,
                        },
                    );
                    if let Err(e) = recorded {
                        tracing::error!(%job, error = %e, "cannot record the job held");
                        return false;
                    }
                }
                matches!(
                    self.work(job, &account.offer(), &spec, &bytes).await,
                    Next::Done
                )
            }
            JobState::Submitted | JobState::Disputed => {
                self.await_payment(job, &account, now).await
            }
            // Listed as held by the worker account but open: a node behind the other.
            JobState::Open => false,
        }
    }

    /// Whether `job` still exists and is held by this worker (a node behind the others may
    /// show the worker account without it). An unreadable job counts as still held.
    async fn still_ours(&self, job: Pubkey) -> bool {
        let w = &self.worker;
        match w.chain.job(&job).await {
            Ok(Some(j)) => j.worker == w.keys().worker && j.state != JobState::Open,
            Ok(None) => false,
            Err(_) => true,
        }
    }

    /// The spec of a job this worker holds: the copy kept at claim time, or fetched again;
    /// either way checked against the chain's hash.
    async fn held_spec(&self, job: Pubkey, account: &Job) -> Option<(JobSpec, Vec<u8>)> {
        let w = &self.worker;
        let path = w.work.job_dir(&job.to_string()).join(SPEC_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) if JobSpec::hash_bytes(&b) == account.spec_hash => b,
            _ => {
                let fetched = tokio::time::timeout(
                    SPEC_TIMEOUT,
                    fetch(&account.spec_uri, MAX_SPEC_BYTES, &w.read_policy()),
                )
                .await;
                match fetched {
                    Ok(Ok(b)) if JobSpec::hash_bytes(&b) == account.spec_hash => {
                        let _ = crate::state::write_atomic(&path, &b);
                        b.to_vec()
                    }
                    _ => {
                        tracing::warn!(%job, "the held job's spec is unavailable or does not match its hash");
                        return None;
                    }
                }
            }
        };
        match JobSpec::from_json(&bytes) {
            Ok(spec) => Some((spec, bytes)),
            Err(e) => {
                tracing::warn!(%job, error = %e, "the held job's spec is invalid");
                None
            }
        }
    }

    /// A submitted (or disputed) job: settled by this worker once nobody can object any more
    /// (finalize, or the dispute timeout); otherwise waited on. Its closing is noticed by the
    /// main loop.
    async fn await_payment(&self, job: Pubkey, account: &Job, now: i64) -> bool {
        let w = &self.worker;
        w.status.stage(&job.to_string(), "waiting for payment");
        // The dispute, read once for serving its state and for cranking it.
        let dispute = match account.state {
            JobState::Disputed => w.chain.dispute_of(&job).await,
            _ => Ok(None),
        };
        // Anyone checking the result may ask for committed states until it is settled.
        crate::states::serve(
            w,
            job,
            account,
            dispute.as_ref().ok().and_then(Option::as_ref),
        )
        .await;
        let keys = SettleKeys::for_job(job, account);
        if account.state == JobState::Disputed && account.dispute_ends_at == 0 {
            // The verifiers' turn: draw them, then settle their vote, as soon as each is due.
            w.status
                .stage(&job.to_string(), "disputed: verifiers re-run a segment");
            let advanced = match dispute {
                Ok(Some(d)) => crate::disputes::advance(w, job, account, &d, now).await,
                Ok(None) => Ok(crate::disputes::Advanced::Waiting),
                Err(e) => Err(e),
            };
            return match advanced {
                Ok(crate::disputes::Advanced::Sent) => true,
                Ok(crate::disputes::Advanced::Waiting) => {
                    tokio::select! {
                        _ = self.cancel.cancelled() => {}
                        _ = tokio::time::sleep(w.config.poll_interval.min(Duration::from_secs(2))) => {}
                    }
                    true
                }
                Err(e) => {
                    tracing::warn!(%job, error = %e, "advancing the dispute");
                    false
                }
            };
        }
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
            return match w.chain.send(&[ix], &[w.operator.as_ref()]).await {
                Ok(l) => {
                    tracing::info!(%job, signature = %l.signature, "settled after the window");
                    true
                }
                Err(e) => {
                    tracing::warn!(%job, error = %e, "settling");
                    false
                }
            };
        }
        // Requests for states are read at least every few seconds: a poster waits on them.
        let wait = Duration::from_secs(until.saturating_sub(now).clamp(0, 3_600) as u64 + 1)
            .min(w.config.poll_interval)
            .min(STATE_REQUEST_POLL);
        tokio::select! {
            _ = self.cancel.cancelled() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        true
    }

    /// The job held closed (paid, refunded, given back, reclaimed): log what it earned, update
    /// the registration if penalties took the stake below the minimum, forget the job.
    async fn settled(&self, job: Pubkey, before: &WorkerAccount, after: &WorkerAccount) {
        let w = &self.worker;
        // Forgotten first: once "paid" is logged, nothing of the job is left on disk.
        let _ = w.work.finish(&job.to_string());
        w.states.forget(&job);
        // What the job's end moved, from its events (payment, penalty or slash), logged and
        // counted; the account's record as the fallback when the history cannot be read.
        if !self.sync_ledger().await {
            let earned = after
                .record
                .total_earned
                .saturating_sub(before.record.total_earned);
            if earned > 0 {
                tracing::info!(%job, base_units = earned, amount = %w.money.unit.show(earned), "paid");
                w.status.update(|s| {
                    s.jobs_paid += 1;
                    s.earned_lamports += earned;
                });
            }
        }
        w.status.idle();
        if after.stake < before.stake {
            if let Err(e) = self.register().await {
                tracing::warn!(error = %e, "the stake could not be topped up");
            }
        }
    }

    /// Reads what the chain moved for this worker since the last look (payments, penalties,
    /// slashes — also those that landed while the daemon was down), logs each and counts it in
    /// the status. `false` when the history could not be read.
    async fn sync_ledger(&self) -> bool {
        let w = &self.worker;
        let new = match Ledger::new(&w.work).sync(&w.chain, &w.keys().worker).await {
            Ok(new) => {
                self.recovered("reading this worker's payments and penalties");
                new
            }
            Err(e) => {
                self.failed("reading this worker's payments and penalties", &e);
                return false;
            }
        };
        let unit = w.money.unit;
        for e in new {
            let amount = unit.show(e.lamports);
            match e.kind {
                LedgerKind::Paid => {
                    tracing::info!(job = %e.job, base_units = e.lamports, %amount, signature = %e.signature, "paid")
                }
                LedgerKind::DisputeCompensation | LedgerKind::VerifierFee => {
                    tracing::info!(job = %e.job, base_units = e.lamports, %amount, kind = ?e.kind, signature = %e.signature, "earned")
                }
                kind => {
                    tracing::warn!(job = %e.job, base_units = e.lamports, %amount, ?kind, signature = %e.signature, "stake lost")
                }
            }
            w.status.update(|s| {
                match e.kind {
                    LedgerKind::Paid => {
                        s.jobs_paid += 1;
                        s.earned_lamports += e.lamports;
                    }
                    LedgerKind::DisputeCompensation | LedgerKind::VerifierFee => {
                        s.earned_lamports += e.lamports;
                    }
                    k if k.is_loss() => s.lost_lamports += e.lamports,
                    _ => {}
                }
                s.recent.push(e.clone());
                let excess = s.recent.len().saturating_sub(status::RECENT);
                s.recent.drain(..excess);
            });
        }
        true
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
            // A job with recorded work is removed only when every node agrees it is no longer
            // this worker's; a directory without a stage holds no work.
            if held.is_some_and(|h| h != job)
                && (stage.is_none() || w.confirmed_not_ours(&job).await)
            {
                tracing::info!(%job, ?stage, "no longer held by this worker; its files are removed");
                let _ = w.work.finish(&name);
            } else {
                tracing::info!(%job, ?stage, "continuing after a restart");
            }
        }
    }
}

/// What to do with a job after looking at it.
enum Next {
    Done,
    Later(Duration),
    /// The claim was refused for this worker's registration: update it, then try again.
    Register,
}

enum Registration {
    Fatal(String),
    Transient(String),
}

/// A progress callback that keeps the status's step, total and ETA, then calls `next`.
fn track_progress(status: Status, next: Option<ProgressFn>) -> ProgressFn {
    // (when, step) of the first report of this run: the pace since then gives the ETA.
    // A step going back or another total is another run.
    let first = std::sync::Mutex::new(None::<(Instant, u64, u64, u64)>);
    Arc::new(move |p: &Progress| {
        let mut f = first.lock().unwrap_or_else(|e| e.into_inner());
        let (t0, s0) = match *f {
            Some((t, s, total, seen)) if total == p.total && seen <= p.step => (t, s),
            _ => (Instant::now(), p.step),
        };
        *f = Some((t0, s0, p.total, p.step));
        let done = p.step.saturating_sub(s0);
        let eta = (done > 0).then(|| {
            t0.elapsed().as_secs_f64() / done as f64 * p.total.saturating_sub(p.step) as f64
        });
        status.update(|s| {
            if let Some(c) = s.current.as_mut() {
                c.step = p.step;
                c.total_steps = p.total;
                c.eta_s = eta;
                if let Some(r) = p.record {
                    c.eval_loss = Some(r.eval_loss);
                }
            }
        });
        if let Some(n) = &next {
            n(p);
        }
    })
}

/// What `job` pays this worker (the reward less the market's fee).
fn pay_of(job: &Job) -> u64 {
    job.terms.payout(job.reward).map_or(0, |p| p.to_worker)
}

/// Queues `job` to be looked at again after `after`, in time order (once).
fn defer(queue: &mut VecDeque<(Instant, Pubkey)>, job: Pubkey, after: Duration) {
    queue.retain(|(_, k)| *k != job);
    let at = Instant::now() + after;
    let i = queue.partition_point(|(t, _)| *t <= at);
    queue.insert(i, (at, job));
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// The cache names (lower-case sha256) of the files a job trains from: its dataset, and a
/// fine-tune's tokenizer and initial weights.
fn cached_inputs(work: &WorkDir, spec: &tensorgrid_train::spec::JobSpec) -> Vec<String> {
    let mut out: Vec<String> = std::iter::once(&spec.dataset.sha256)
        .chain(spec.files().into_iter().map(|(_, f)| &f.sha256))
        .map(|s| s.to_ascii_lowercase())
        .collect();
    // A sharded dataset's checked shards too: its evaluation shards and first training shard
    // (the rest arrive while it trains).
    out.extend(crate::check::checked_shards(work, spec));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deferred_jobs_stay_in_time_order_and_appear_once() {
        let (a, b, c) = (
            Pubkey::new_unique(),
            Pubkey::new_unique(),
            Pubkey::new_unique(),
        );
        let mut q = VecDeque::new();
        defer(&mut q, a, Duration::from_secs(30));
        defer(&mut q, b, Duration::from_secs(10));
        defer(&mut q, c, Duration::from_secs(20));
        defer(&mut q, a, Duration::from_secs(5));
        let order: Vec<Pubkey> = q.iter().map(|(_, k)| *k).collect();
        assert_eq!(order, vec![a, b, c]);
        assert!(q.iter().zip(q.iter().skip(1)).all(|(x, y)| x.0 <= y.0));
    }
}
