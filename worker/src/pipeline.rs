//! One job, from claim to submission: claim → dataset → train → publish → submit. Each stage
//! is recorded in the work directory once its effect is durable, so running [`Worker::work_on`]
//! again after a crash continues where the last run stopped (a finished training is not
//! repeated, an upload is not repeated, a submission is not sent twice).

use std::{
    sync::{atomic::AtomicBool, Arc},
    time::{Duration, Instant},
};

use solana_keypair::Keypair;
use solana_signer::Signer;
use tensorgrid_artifacts::{
    fetch_to_file,
    progress::{self, Progress},
    result, ArtifactError, ReadPolicy, Store,
};
use tensorgrid_client::{
    anchor_lang::prelude::Pubkey,
    instructions::{self as ix, WorkerKeys},
    pda,
    rpc::{ChainClient, ChainError},
    state::{Hardware, Job, JobOffer, JobState},
    tensorgrid::instructions::JobSubmitArgs,
    TensorgridError,
};
use tensorgrid_train::{
    data,
    manifest::MANIFEST_FILE,
    spec::JobSpec,
    trainer::{self, ProgressFn, TrainOptions},
    Fault,
};

use tokio_util::sync::CancellationToken;

use crate::{
    crashguard, refusals::Kind, state::StateError, status::Status, Config, Stage, WorkDir,
};

/// Time kept, after training, to publish and submit before the deadline.
pub const SUBMIT_MARGIN_S: i64 = 90;
/// RPC endpoints whose clocks differ by at most this many seconds agree.
const CLOCK_TOLERANCE_S: i64 = 60;

/// The chain's clock as the configured endpoints show it (see [`Worker::chain_clock`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainClock {
    pub earliest: i64,
    pub latest: i64,
}

impl ChainClock {
    /// From the endpoints' `readings`, with `here` (this machine's clock) to settle a
    /// disagreement of more than [`CLOCK_TOLERANCE_S`]; `None` without readings.
    pub fn from_readings(readings: &[i64], here: i64) -> Option<Self> {
        let (&earliest, &latest) = (readings.iter().min()?, readings.iter().max()?);
        if latest - earliest <= CLOCK_TOLERANCE_S {
            return Some(Self { earliest, latest });
        }
        let closest = readings
            .iter()
            .copied()
            .min_by_key(|t| (t - here).unsigned_abs())?;
        Some(Self {
            earliest: closest,
            latest: closest,
        })
    }
}

/// Why a job did not end in a submission.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Another worker claimed it first, or it is no longer ours: nothing to do.
    #[error("job lost: {0}")]
    Lost(String),
    /// The job cannot be done as posted (bad data, a spec that diverges, no time left); it
    /// was given back with the smaller abandon penalty when it was ours.
    #[error("job given up: {0}")]
    GaveUp(String),
    /// Worth trying again later (network, store, RPC); progress so far is kept.
    #[error("transient: {0}")]
    Transient(String),
    /// Stopped on request (shutdown); a checkpoint was written and the job is still ours.
    #[error("stopped")]
    Stopped,
    /// Not claimable yet (reopened, in its cooldown); worth trying again after `.0` seconds.
    #[error("not claimable for another {0} s")]
    NotYet(i64),
    /// The claim was refused for this worker's own state (stake below the minimum,
    /// deregistered, hardware): the registration needs updating.
    #[error("registration: {0}")]
    Registration(String),
    #[error(transparent)]
    State(#[from] StateError),
}

impl From<ChainError> for JobError {
    fn from(e: ChainError) -> Self {
        JobError::Transient(e.to_string())
    }
}

/// The longest progress URI named in a claim (a claim must stay well inside a transaction).
const MAX_PROGRESS_URI: usize = 300;

/// The longest the progress file goes unwritten while the job is worked on.
const PROGRESS_HEARTBEAT: Duration = Duration::from_secs(60);

/// How often the progress file is rewritten while training goes on (a new stage is written
/// at once).
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Writes the job's progress (from the status) to the store while the job is worked on;
/// stops when dropped. Best effort: a failed write is tried again a second later and never
/// holds up the job.
struct ProgressPublisher(tokio::task::JoinHandle<()>);

impl ProgressPublisher {
    fn start(store: Store, status: Status, job: String) -> Self {
        Self(tokio::spawn(async move {
            let key = progress::key(&job);
            let mut last: Option<(Progress, Instant)> = None;
            loop {
                let current = status.snapshot().current.filter(|c| c.job == job);
                if let Some(c) = current {
                    let p = Progress {
                        job: job.clone(),
                        stage: c.stage.clone(),
                        step: c.step.min(c.total_steps),
                        total_steps: c.total_steps,
                        eval_loss: c.eval_loss.filter(|l| l.is_finite()),
                        eta_s: c.eta_s.filter(|e| e.is_finite()),
                        updated_at: crate::status::unix_now(),
                    };
                    // A new stage at once; news (a step, an evaluation) every 10 s; and a
                    // heartbeat each minute, so the poster can tell a long evaluation from a
                    // worker gone.
                    let due = match &last {
                        None => true,
                        Some((l, _)) if l.stage != p.stage => true,
                        Some((l, at)) => {
                            let news = l.step != p.step || l.eval_loss != p.eval_loss;
                            (news && at.elapsed() >= PROGRESS_EVERY)
                                || at.elapsed() >= PROGRESS_HEARTBEAT
                        }
                    };
                    if due {
                        match serde_json::to_vec(&p) {
                            Ok(bytes) => match store.put(&key, bytes).await {
                                Ok(_) => last = Some((p, Instant::now())),
                                Err(e) => {
                                    tracing::debug!(%job, error = %e, "progress not published")
                                }
                            },
                            Err(e) => tracing::debug!(%job, error = %e, "progress not encoded"),
                        }
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }))
    }
}

impl Drop for ProgressPublisher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a finished job produced.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub result_hash: String,
    pub result_uri: String,
    pub signature: String,
    /// Sent by this call (not found already done).
    pub fresh: bool,
}

/// Everything a worker works with.
pub struct Worker {
    pub chain: ChainClient,
    pub store: Store,
    pub work: WorkDir,
    pub config: Config,
    /// The stake, pledge, top-up cap and pay floor in the market's unit.
    pub money: crate::Money,
    pub operator: Arc<Keypair>,
    pub market: Pubkey,
    pub hardware: Hardware,
    pub device: tensorgrid_train::Device,
    /// Set on shutdown: training checkpoints and stops between steps.
    pub stop: Arc<AtomicBool>,
    /// Training progress, for the status port and the progress bar.
    pub progress: Option<ProgressFn>,
    pub status: Status,
    /// Shutdown: downloads in progress are dropped (training checks `stop`).
    pub cancel: CancellationToken,
    /// Committed states published on request, by job.
    pub states: crate::states::Served,
}

impl Worker {
    pub fn keys(&self) -> WorkerKeys {
        let operator = self.operator.pubkey();
        WorkerKeys {
            operator,
            market: self.market,
            worker: pda::worker(&self.market, &operator).0,
        }
    }

    /// How URIs from the chain are read: the operator's AWS credentials sign only reads from
    /// its own store's bucket; anything else is read as the public would.
    pub(crate) fn read_policy(&self) -> ReadPolicy {
        let base = ReadPolicy::default()
            .with_http(self.config.allow_http)
            .with_private(self.config.allow_http);
        // A local setup (allow_http) signs everything: a local S3 server refuses anonymous
        // requests, and it holds nothing of the operator's.
        let base = if self.config.allow_http {
            base
        } else {
            base.sign_only(
                self.store
                    .bucket()
                    .map(str::to_string)
                    .into_iter()
                    .collect(),
            )
        };
        self.store.read_policy(base)
    }

    /// Takes `job` (whose spec, `spec_bytes`, passed the precheck) through every stage not yet
    /// recorded. A claim agrees to `expected` (the job as read for the precheck): the program
    /// refuses it if the job changed since.
    pub async fn work_on(
        &self,
        job: Pubkey,
        expected: &JobOffer,
        spec: &JobSpec,
        spec_bytes: &[u8],
    ) -> Result<Submitted, JobError> {
        let name = job.to_string();
        // The poster follows training through this file until the result is in.
        let _progress =
            ProgressPublisher::start(self.store.clone(), self.status.clone(), name.clone());
        let mut stage = match self.work.stage(&name)? {
            Some(s) => s,
            None => {
                self.status.stage(&name, "claiming");
                self.claim(job, expected).await?
            }
        };
        loop {
            self.status.update(|s| {
                if let Some(c) = s.current.as_mut() {
                    c.deadline = stage.deadline();
                }
            });
            stage = match stage {
                Stage::Claimed { deadline } => self.train(job, spec, spec_bytes, deadline).await?,
                Stage::Trained {
                    deadline,
                    result_hash,
                    metric,
                } => {
                    self.status.stage(&name, "publishing");
                    let out = out_dir(&self.work, &job);
                    // The committed states stay here: each is published when asked for
                    // (`crate::states`).
                    // What the manifest lists (a gpt2 result's Hugging Face config too), then
                    // the manifest.
                    let listed = tensorgrid_train::manifest::read(&out)
                        .map_err(|e| JobError::Transient(e.to_string()))?;
                    let mut files = listed.files();
                    files.push(MANIFEST_FILE);
                    let result_uri =
                        result::publish(&self.store, &format!("results/{job}"), &out, &files)
                            .await
                            .map_err(|e| JobError::Transient(e.to_string()))?;
                    tracing::info!(%job, %result_uri, "result published");
                    Stage::Published {
                        deadline,
                        result_hash,
                        metric,
                        result_uri,
                    }
                }
                Stage::Published {
                    result_hash,
                    metric,
                    result_uri,
                    ..
                } => {
                    self.status.stage(&name, "submitting");
                    let signature = self.submit(job, &result_hash, &result_uri, metric).await?;
                    let done = Submitted {
                        result_hash: result_hash.clone(),
                        result_uri: result_uri.clone(),
                        signature: signature.clone(),
                        fresh: true,
                    };
                    let submitted = Stage::Submitted {
                        result_hash,
                        signature,
                        result_uri,
                        metric,
                    };
                    self.work.record(&name, &submitted)?;
                    crash_point(&submitted);
                    return Ok(done);
                }
                Stage::Submitted {
                    result_hash,
                    signature,
                    result_uri,
                    metric,
                } => {
                    // Recorded as submitted, but the chain may disagree (a node that lagged,
                    // a fork that dropped the transaction): then submit again.
                    let j = self.chain.job(&job).await?;
                    match j {
                        Some(j)
                            if j.state == JobState::Claimed && j.worker == self.keys().worker =>
                        {
                            tracing::warn!(%job, "recorded as submitted, but the chain has no submission: sending it again");
                            if result_uri.is_empty() {
                                // Recorded without its URI: published again from out/.
                                Stage::Trained {
                                    deadline: j.deadline,
                                    result_hash,
                                    metric,
                                }
                            } else {
                                Stage::Published {
                                    deadline: j.deadline,
                                    result_hash,
                                    metric,
                                    result_uri,
                                }
                            }
                        }
                        _ => {
                            return Ok(Submitted {
                                result_hash,
                                result_uri,
                                signature,
                                fresh: false,
                            })
                        }
                    }
                }
            };
            self.work.record(&name, &stage)?;
            crash_point(&stage);
        }
    }

    async fn claim(&self, job: Pubkey, expected: &JobOffer) -> Result<Stage, JobError> {
        // A memo in the claim names where this worker publishes its progress: the poster's
        // `job watch` reads it from the claim transaction.
        // Only for a store posters can read (s3), and short enough to keep the claim small: a
        // local store's path would put this machine's paths on chain for nothing.
        let progress_uri = self.store.uri(&progress::key(&job.to_string()));
        let mut instructions = vec![ix::job_claim(self.keys(), job, *expected)];
        if progress_uri.starts_with("s3://") && progress_uri.len() <= MAX_PROGRESS_URI {
            instructions.push(ix::memo(
                self.operator.pubkey(),
                &format!("{}{progress_uri}", progress::MEMO_PREFIX),
            ));
        }
        match self
            .chain
            .send(&instructions, &[self.operator.as_ref()])
            .await
        {
            Ok(_) => {}
            Err(e) => {
                return Err(match e.program_error() {
                    Some(TensorgridError::JobNotOpen | TensorgridError::ClaimBarred) => {
                        tracing::info!(%job, "claimed by another worker first");
                        JobError::Lost(e.to_string())
                    }
                    // The job is not what was checked (the program never changes an open
                    // job's terms, so only a node that served a wrong account gets here):
                    // nothing was taken.
                    Some(TensorgridError::OfferChanged) => {
                        tracing::warn!(%job, "the job changed between the check and the claim; not claimed");
                        JobError::Lost(e.to_string())
                    }
                    Some(TensorgridError::JobCoolingDown) => JobError::NotYet(
                        tensorgrid_client::tensorgrid::constants::REOPEN_COOLDOWN_S,
                    ),
                    // Claims resume when the authority resumes the market.
                    Some(TensorgridError::MarketPaused) => JobError::NotYet(60),
                    Some(
                        TensorgridError::InsufficientStake
                        | TensorgridError::WorkerDeregistered
                        | TensorgridError::InsufficientVram
                        | TensorgridError::DeviceMismatch,
                    ) => JobError::Registration(e.to_string()),
                    _ => JobError::Transient(e.to_string()),
                });
            }
        }
        // The deadline as the chain set it: read until a node shows this claim (one that
        // lags behind would show the job as it was before).
        let mut claimed = None;
        for _ in 0..20 {
            match self.chain.job(&job).await? {
                Some(j) if j.state == JobState::Claimed && j.worker == self.keys().worker => {
                    claimed = Some(j);
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
        let Some(claimed) = claimed else {
            // The claim landed; the next pass finds it held by this worker and records it.
            return Err(JobError::Transient(
                "the claim landed but no node shows it yet".into(),
            ));
        };
        tracing::info!(%job, deadline = claimed.deadline, "claimed");
        let stage = Stage::Claimed {
            deadline: claimed.deadline,
        };
        self.work.record(&job.to_string(), &stage)?;
        Ok(stage)
    }

    /// Fetches and checks the dataset, trains off the async runtime until a deadline taken
    /// from the chain's, and records the result.
    async fn train(
        &self,
        job: Pubkey,
        spec: &JobSpec,
        spec_bytes: &[u8],
        deadline: i64,
    ) -> Result<Stage, JobError> {
        let name = job.to_string();
        let dir = self.work.job_dir(&name);
        let cap = spec
            .limits
            .max_dataset_bytes
            .min(self.config.max_dataset_bytes);
        let dataset = self
            .input(
                job,
                deadline,
                "dataset",
                &spec.dataset.uri,
                &spec.dataset.sha256,
                cap,
            )
            .await?;
        let mut files = Vec::new();
        for (role, f) in spec.files() {
            let path = self
                .input(job, deadline, role, &f.uri, &f.sha256, f.bytes)
                .await?;
            files.push(path);
        }
        let left = self.time_left(job, deadline).await?;
        let (mut spec2, bytes, out, device) = (
            spec.clone(),
            spec_bytes.to_vec(),
            dir.join("out"),
            self.device.clone(),
        );
        let stop_at = Instant::now() + Duration::from_secs(left);
        let (stop, progress) = (self.stop.clone(), self.progress.clone());
        // A run that died (killed for memory, an abort) left its marker: after a few, the job
        // is given back rather than resumed into the same death again.
        let crashes = crashguard::begin_training(&self.work, &name)?;
        if crashes >= crashguard::MAX_TRAINING_CRASHES {
            crashguard::end_training(&self.work, &name);
            let why = format!("its training crashed the worker {crashes} times");
            return self.give_up_recorded(job, why, Kind::Crashed).await;
        }
        self.status.stage(&name, "training");
        // A sharded dataset's shards arrive while it trains, through the dataset cache.
        let store: Arc<dyn data::ShardStore> = Arc::new(
            crate::shards::Shards::new(tokio::runtime::Handle::current(), self.read_policy())
                .cached(crate::shards::Cache {
                    dir: self.work.datasets_dir(),
                    max_bytes: crate::daemon::DATASET_CACHE_BYTES,
                })
                .stopping(self.cancel.clone(), Some(stop_at)),
        );
        let trained = tokio::task::spawn_blocking(move || {
            let data_bytes =
                std::fs::read(&dataset).map_err(tensorgrid_train::Error::io(&dataset))?;
            // The bytes trained on are the bytes checked: hashed again as read.
            let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&data_bytes));
            if !sha.eq_ignore_ascii_case(&spec2.dataset.sha256) {
                let _ = std::fs::remove_file(&dataset);
                return Err(tensorgrid_train::Error::Io {
                    path: dataset.clone(),
                    source: std::io::Error::other(
                        "the cached dataset changed on disk; removed, it is fetched again",
                    ),
                });
            }
            for ((role, f), path) in spec2.files_mut().into_iter().zip(&files) {
                let read = std::fs::read(path).map_err(tensorgrid_train::Error::io(path))?;
                if f.attach(role, read).is_err() {
                    let _ = std::fs::remove_file(path);
                    return Err(tensorgrid_train::Error::Io {
                        path: path.clone(),
                        source: std::io::Error::other(
                            "the cached file changed on disk; removed, it is fetched again",
                        ),
                    });
                }
            }
            let split = data::split_with(&spec2, &data_bytes, Some(store))?;
            let opts = TrainOptions {
                deadline: Some(stop_at),
                cancel: Some(stop),
                progress,
                ..TrainOptions::new(device, out)
            };
            trainer::train(&spec2, &bytes, &split, &opts)
        })
        .await;
        crashguard::end_training(&self.work, &name);
        let trained = match trained {
            Ok(t) => t,
            // A panic in the engine on this job's input: not retried (it would panic again).
            Err(e) if e.is_panic() => {
                return self
                    .give_up_recorded(job, "its training panicked".into(), Kind::Crashed)
                    .await
            }
            Err(e) => return Err(JobError::Transient(format!("training task: {e}"))),
        };
        match trained {
            Ok(outcome) => {
                let value = outcome.manifest.result.value;
                tracing::info!(%job, metric = value, secs = outcome.wall_time_s, "trained");
                Ok(Stage::Trained {
                    deadline,
                    result_hash: hex::encode(outcome.result_hash),
                    metric: to_millionths(value),
                })
            }
            // Stopped on request: the checkpoint is kept for the next run. Stopped by the
            // deadline: it cannot be finished in time, so it is given back.
            Err(tensorgrid_train::Error::Cancelled(step)) => {
                tracing::info!(%job, step, "training stopped; it resumes from its checkpoint");
                Err(JobError::Stopped)
            }
            // The spec's own wall-time limit reached: this worker's estimate was wrong, not
            // the poster's fault.
            Err(e @ tensorgrid_train::Error::LimitExceeded(_)) => {
                self.give_up(job, e.to_string()).await
            }
            Err(e) => match e.fault() {
                Fault::Transient => Err(JobError::Transient(e.to_string())),
                Fault::Poster => {
                    self.give_up_recorded(job, e.to_string(), Kind::Poster)
                        .await
                }
                _ => self.give_up(job, e.to_string()).await,
            },
        }
    }

    /// A file the job trains from (its dataset, a tokenizer, initial weights) in the cache
    /// kept by content, fetched (at most `cap` bytes, before the deadline) if it is not there.
    async fn input(
        &self,
        job: Pubkey,
        deadline: i64,
        role: &str,
        uri: &str,
        sha: &str,
        cap: u64,
    ) -> Result<std::path::PathBuf, JobError> {
        // Checked before claiming and kept by content: normally here already.
        let path = self.work.dataset_path(sha);
        // A file already here is complete (downloads land under a temporary name first).
        let kept = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || file_sha256(&path))
                .await
                .ok()
                .and_then(Result::ok)
        };
        let got = match kept {
            Some(got) if got.eq_ignore_ascii_case(sha) => got,
            _ => {
                self.status.stage(&job.to_string(), "downloading");
                if let Some(d) = path.parent() {
                    std::fs::create_dir_all(d)
                        .map_err(|e| JobError::Transient(format!("{}: {e}", d.display())))?;
                }
                // A download that trickles must not run out the deadline.
                let left = self.time_left(job, deadline).await?;
                let policy = self.read_policy();
                let fetched = tokio::select! {
                    _ = self.cancel.cancelled() => return Err(JobError::Stopped),
                    r = tokio::time::timeout(
                        Duration::from_secs(left),
                        fetch_to_file(uri, cap, &policy, &path),
                    ) => r,
                };
                match fetched {
                    Err(_) => {
                        return self
                            .give_up(
                                job,
                                format!("the {role} did not arrive before the deadline"),
                            )
                            .await
                    }
                    Ok(Ok(sha)) => sha,
                    // A full or unwritable disk is this rig's problem, not the poster's.
                    Ok(Err(e)) if e.is_transient() || matches!(e, ArtifactError::Io { .. }) => {
                        return Err(JobError::Transient(e.to_string()))
                    }
                    Ok(Err(e)) => return self.give_up(job, format!("{role}: {e}")).await,
                }
            }
        };
        if !got.eq_ignore_ascii_case(sha) {
            return self
                .give_up(job, format!("{role} sha256 is {got}, the spec says {sha}"))
                .await;
        }
        Ok(path)
    }

    async fn submit(
        &self,
        job: Pubkey,
        result_hash: &str,
        result_uri: &str,
        metric: u64,
    ) -> Result<String, JobError> {
        let j = self
            .chain
            .job(&job)
            .await?
            .ok_or_else(|| JobError::Lost("the job is gone".into()))?;
        if j.state != JobState::Claimed || j.worker != self.keys().worker {
            // The result is deleted only when every node agrees the job is gone: a lagging
            // node must not cost the work.
            if !self.confirmed_not_ours(&job).await {
                return Err(JobError::Transient(
                    "one node shows the job as not ours; the others do not agree yet".into(),
                ));
            }
            self.work.finish(&job.to_string())?;
            return Err(JobError::Lost(format!(
                "the job is no longer ours ({:?})",
                j.state
            )));
        }
        let mut hash = [0u8; 32];
        hex::decode_to_slice(result_hash, &mut hash)
            .map_err(|e| JobError::Transient(format!("recorded hash: {e}")))?;
        let args = JobSubmitArgs {
            result_hash: hash,
            result_uri: result_uri.into(),
            reported_metric: metric,
        };
        let landed = self
            .chain
            .send(
                &[ix::job_submit(self.keys(), job, args)],
                &[self.operator.as_ref()],
            )
            .await
            .map_err(|e| match e.program_error() {
                Some(TensorgridError::DeadlinePassed) => {
                    JobError::Lost("the deadline passed".into())
                }
                _ => JobError::Transient(e.to_string()),
            })?;
        tracing::info!(%job, signature = %landed.signature, "result submitted");
        Ok(landed.signature.to_string())
    }

    /// The chain's clock as the endpoints show it, one read each. `earliest` decides that a
    /// time has passed (giving up, reclaiming: a node whose clock runs ahead cannot hurry the
    /// worker), `latest` when to stop training (a node behind cannot make it run past its
    /// deadline). When the readings disagree by more than a minute, the one closest to this
    /// machine's clock is taken for both: the node far ahead of or behind the others is the
    /// one that is wrong. (With one endpoint there is nothing to compare: configure two.)
    pub async fn chain_clock(&self) -> Result<ChainClock, JobError> {
        let readings: Vec<i64> = self
            .chain
            .chain_time_each()
            .await
            .into_iter()
            .flatten()
            .collect();
        let clock = ChainClock::from_readings(&readings, crate::status::unix_now())
            .ok_or_else(|| JobError::Transient("no endpoint answered with the clock".into()))?;
        if clock.earliest == clock.latest && readings.len() > 1 {
            let (lo, hi) = (readings.iter().min(), readings.iter().max());
            if lo != hi {
                tracing::warn!(?lo, ?hi, taken = clock.earliest, "the RPC endpoints' clocks disagree; the one closest to this machine's is taken");
            }
        }
        Ok(clock)
    }

    /// [`ChainClock::earliest`]: what a decision that a time has passed is made on.
    pub async fn cautious_now(&self) -> Result<i64, JobError> {
        Ok(self.chain_clock().await?.earliest)
    }

    /// Whether `job` is no longer this worker's, confirmed: every endpoint that answers, on
    /// two reads a moment apart, shows it closed or not held by this worker (and at least one
    /// answered). What deleting a result or giving up waits for: one lagging or lying node's
    /// word is not enough.
    pub async fn confirmed_not_ours(&self, job: &Pubkey) -> bool {
        let mine = self.keys().worker;
        self.every_endpoint_twice(job, |j| {
            !j.is_some_and(|j| j.worker == mine && j.state != JobState::Open)
        })
        .await
    }

    /// Whether every endpoint that answers, on two reads, shows `job` closed (its account
    /// gone): a submitted job's committed states are kept until then, since a dispute needs
    /// them and only the job's end ends that.
    pub async fn confirmed_closed(&self, job: &Pubkey) -> bool {
        self.every_endpoint_twice(job, |j| j.is_none()).await
    }

    /// Whether `holds` is true of `job` as every endpoint that answers shows it, on two reads
    /// a moment apart (and at least one answered).
    async fn every_endpoint_twice(
        &self,
        job: &Pubkey,
        holds: impl Fn(Option<Job>) -> bool,
    ) -> bool {
        let mut answered = false;
        for read in 0..2 {
            if read > 0 {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            for j in self.chain.job_each(job).await.into_iter().flatten() {
                answered = true;
                if !holds(j) {
                    return false;
                }
            }
        }
        answered
    }

    /// Seconds left to work before the deadline, keeping the time to publish and submit; the
    /// job is given back when there are none.
    async fn time_left(&self, job: Pubkey, deadline: i64) -> Result<u64, JobError> {
        let clock = self.chain_clock().await?;
        let left = |now: i64| deadline.saturating_sub(now).saturating_sub(SUBMIT_MARGIN_S);
        // Given up only when even the earliest clock says the time is gone; worked until the
        // latest says so.
        if left(clock.earliest) <= 0 {
            return self
                .give_up(job, "no time left before the deadline".into())
                .await;
        }
        Ok(u64::try_from(left(clock.latest)).unwrap_or(0).max(1))
    }

    /// [`Self::give_up`], the job remembered as refused with `kind` (`Poster`: its data or its
    /// spec, counted against its poster; `Crashed`: it crashed the worker, not counted), so
    /// neither this run nor a later one takes it again.
    pub async fn give_up_recorded<T>(
        &self,
        job: Pubkey,
        why: String,
        kind: Kind,
    ) -> Result<T, JobError> {
        let poster = self
            .chain
            .job(&job)
            .await
            .ok()
            .flatten()
            .map(|j| j.poster.to_string())
            .unwrap_or_default();
        let refusal = crate::refusals::Refusal {
            reason: format!("given back: {why}"),
            kind,
            poster,
            at: crate::status::unix_now(),
            host: String::new(),
        };
        if let Err(e) = crate::refusals::Refusals::new(&self.work).add(&job.to_string(), refusal) {
            tracing::warn!(%job, error = %e, "the refusal was not saved");
        }
        self.give_up(job, why).await
    }

    /// Gives the job back (the abandon penalty is smaller than a missed deadline's slash) and
    /// forgets it.
    pub async fn give_up<T>(&self, job: Pubkey, why: String) -> Result<T, JobError> {
        // Giving up costs the abandon penalty: only for a job every node shows as this
        // worker's claim (a node that shows it otherwise is behind, or lying).
        let mine = self.keys().worker;
        let views = self.chain.job_each(&job).await;
        if views.iter().any(|v| {
            matches!(v, Ok(Some(j)) if j.worker == mine && j.state != JobState::Claimed)
                || matches!(v, Ok(None))
        }) || views.iter().all(Result::is_err)
        {
            return Err(JobError::Transient(format!(
                "not giving the job back ({why}): the nodes do not all show it claimed by this worker"
            )));
        }
        tracing::warn!(%job, reason = %why, "abandoning the job");
        self.chain
            .send(
                &[ix::job_abandon(self.keys(), job)],
                &[self.operator.as_ref()],
            )
            .await?;
        self.work.finish(&job.to_string())?;
        Err(JobError::GaveUp(why))
    }
}

/// `TENSORGRID_WORKER_CRASH_AFTER=<stage>` aborts the process right after that stage is
/// recorded, as a power cut would (no destructor runs): how the tests place a kill exactly
/// between two steps, e.g. after the upload and before the submission.
fn crash_point(stage: &Stage) {
    if std::env::var("TENSORGRID_WORKER_CRASH_AFTER").is_ok_and(|at| at == stage.name()) {
        tracing::error!(
            stage = stage.name(),
            "crashing on purpose (TENSORGRID_WORKER_CRASH_AFTER)"
        );
        std::process::abort();
    }
}

/// Hex sha256 of a file, streamed.
fn file_sha256(path: &std::path::Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

/// A metric as the chain stores it: millionths, rounded, never negative.
pub fn to_millionths(value: f64) -> u64 {
    if value.is_finite() && value > 0.0 {
        (value * 1e6).round().min(u64::MAX as f64) as u64
    } else {
        0
    }
}

/// The directory a job's training writes to and its result is published from.
pub fn out_dir(work: &WorkDir, job: &Pubkey) -> std::path::PathBuf {
    work.job_dir(&job.to_string()).join("out")
}

#[cfg(test)]
mod tests {
    use super::ChainClock;

    /// A node 2 h ahead or 2 h behind the others is outvoted by this machine's clock; nodes
    /// within a minute of each other give the range (the earliest to decide a time passed,
    /// the latest to stop training).
    #[test]
    fn a_node_far_from_the_others_is_not_believed() {
        let here = 1_000_000;
        let honest = here + 5;
        for liar in [honest + 7_200, honest - 7_200] {
            assert_eq!(
                ChainClock::from_readings(&[liar, honest], here),
                Some(ChainClock {
                    earliest: honest,
                    latest: honest
                })
            );
        }
        assert_eq!(
            ChainClock::from_readings(&[honest, honest + 30], here),
            Some(ChainClock {
                earliest: honest,
                latest: honest + 30
            })
        );
        assert_eq!(ChainClock::from_readings(&[], here), None);
        // One endpoint: nothing to compare, its word is taken.
        assert_eq!(
            ChainClock::from_readings(&[here + 7_200], here),
            Some(ChainClock {
                earliest: here + 7_200,
                latest: here + 7_200
            })
        );
    }
}
