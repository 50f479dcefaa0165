//! The `tensorgrid-worker` binary against the embedded chain's JSON-RPC and websocket and the
//! local S3 server, as a provider runs it: it registers, finds jobs, refuses hostile ones
//! before claiming, trains, publishes, submits and is paid; it survives SIGKILL during
//! training and a crash between upload and submission with the same result hash, paid once;
//! two workers share the jobs; a proxy that drops 30% of requests and cuts the websocket does
//! not stop it; a missed deadline ends in a third party's reclaim and the worker goes on.
//!
//! The tests take a lock: each trains on the CPU, and two at once would only slow both.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, OnceLock,
    },
    time::{Duration, Instant},
};

use rand::Rng;
use sha2::{Digest, Sha256};
use solana_keypair::Keypair;
use solana_signer::Signer;
use tensorgrid_artifacts::Store;
use tensorgrid_client::{
    anchor_lang::prelude::Pubkey,
    defaults::{self, SOL},
    instructions::{self as ix, SettleKeys},
    pda,
    rpc::ChainClient,
    state::{Job, JobState},
    tensorgrid::instructions::JobPostArgs,
};
use tensorgrid_localnet::{default_market_params, Localnet, LocalnetBuilder};

fn serial() -> &'static tokio::sync::Mutex<()> {
    static M: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();
    M.get_or_init(|| tokio::sync::Mutex::new(()))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A chain with a market, the shared S3 server, a poster, and a place for workers.
struct Rig {
    net: Localnet,
    store: Store,
    dir: tempfile::TempDir,
    poster: Keypair,
    next_id: u64,
}

/// A worker process; killed when dropped. Its log (JSON lines) is kept in a file.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status.
    fn terminate(&mut self) -> std::process::ExitStatus {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "no exit after SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Rig {
    async fn new() -> Self {
        tensorgrid_localnet::testing::shared_s3();
        let net = LocalnetBuilder::for_tests()
            .accounts(["poster"])
            .market(default_market_params())
            .start()
            .await
            .unwrap();
        let poster = Keypair::try_from(&net.account("poster").to_bytes()[..]).unwrap();
        // The poster's account exists before any test measures the poster's balance.
        net.client()
            .send(
                &[ix::poster_init(poster.pubkey(), net.market().unwrap())],
                &[&poster],
            )
            .await
            .unwrap();
        Self {
            net,
            store: Store::open("s3://tensorgrid").unwrap(),
            dir: tempfile::tempdir().unwrap(),
            poster,
            next_id: 1,
        }
    }

    fn client(&self) -> &ChainClient {
        self.net.client()
    }

    fn market(&self) -> Pubkey {
        self.net.market().unwrap()
    }

    /// A funded operator keypair written to a file.
    async fn operator(&self, name: &str) -> (Keypair, PathBuf) {
        let kp = self.net.funded(20 * SOL).await.unwrap();
        let path = self.dir.path().join(format!("{name}.json"));
        std::fs::write(
            &path,
            serde_json::to_string(&kp.to_bytes().to_vec()).unwrap(),
        )
        .unwrap();
        (kp, path)
    }

    fn work_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("work-{name}"))
    }

    fn command(&self, name: &str, keypair: &Path, rpc: &str, ws: &str) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tensorgrid-worker"));
        c.args(["-u", rpc, "--ws-url", ws, "-k"])
            .arg(keypair)
            .arg("--work-dir")
            .arg(self.work_dir(name))
            .args([
                "--store",
                "s3://tensorgrid",
                "--device",
                "cpu",
                "--allow-http",
                "--poll-interval",
                "1s",
                "--stake",
                "2",
                "--status-listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
            ])
            .env("RUST_LOG", "info")
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null());
        c
    }

    /// Starts a worker named `name`, through `rpc`/`ws` (the chain's own by default).
    fn spawn_via(
        &self,
        name: &str,
        keypair: &Path,
        rpc: &str,
        ws: &str,
        env: &[(&str, &str)],
    ) -> Proc {
        let log = self
            .dir
            .path()
            .join(format!("{name}-{}.log", rand::rng().random::<u32>()));
        let file = std::fs::File::create(&log).unwrap();
        let mut c = self.command(name, keypair, rpc, ws);
        for (k, v) in env {
            c.env(k, v);
        }
        let child = c
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        Proc { child, log }
    }

    fn spawn(&self, name: &str, keypair: &Path) -> Proc {
        let (rpc, ws) = (
            self.net.rpc_url().to_string(),
            self.net.ws_url().to_string(),
        );
        self.spawn_via(name, keypair, &rpc, &ws, &[])
    }

    /// Hosts the digits dataset and the MLP spec edited by `edit`; returns (uri, bytes).
    async fn hosted_spec(&self, edit: impl FnOnce(&mut serde_json::Value)) -> (String, Vec<u8>) {
        let data = std::fs::read(repo().join("data/digits.safetensors")).unwrap();
        let sha = hex::encode(Sha256::digest(&data));
        let data_uri = self
            .store
            .put(&format!("datasets/{sha}"), data)
            .await
            .unwrap();
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(repo().join("jobs/digits-mlp.json")).unwrap())
                .unwrap();
        v["dataset"]["uri"] = data_uri.into();
        v["training"]["epochs"] = 3.into();
        v["evaluation"]["threshold"] = 0.5.into();
        edit(&mut v);
        let bytes = serde_json::to_vec_pretty(&v).unwrap();
        let uri = self
            .store
            .put(
                &format!("specs/{}.json", hex::encode(Sha256::digest(&bytes))),
                bytes.clone(),
            )
            .await
            .unwrap();
        (uri, bytes)
    }

    /// Posts a job for `uri` committing to `hash`; returns its address and the fee paid.
    async fn post(&mut self, uri: String, hash: [u8; 32], max_duration_s: i64) -> (Pubkey, u64) {
        let id = self.next_id;
        self.next_id += 1;
        let posting = self
            .client()
            .post_context(&self.market(), &self.poster.pubkey())
            .await
            .unwrap();
        let ixs = posting.instructions(
            self.poster.pubkey(),
            self.market(),
            JobPostArgs {
                job_id: id,
                reward: SOL / 2,
                spec_hash: hash,
                spec_uri: uri,
                requirements: defaults::any_device(),
                max_duration_s,
                terms: posting.terms(),
            },
        );
        let landed = self.client().send(&ixs, &[&self.poster]).await.unwrap();
        let fee = self.client().outcome(&landed.signature).await.unwrap().fee;
        (pda::job(&self.market(), &self.poster.pubkey(), id).0, fee)
    }

    async fn post_spec(&mut self, edit: impl FnOnce(&mut serde_json::Value)) -> Pubkey {
        let (uri, bytes) = self.hosted_spec(edit).await;
        self.post(uri, Sha256::digest(&bytes).into(), 3_600).await.0
    }

    async fn job(&self, job: &Pubkey) -> Option<Job> {
        self.client().job(job).await.unwrap()
    }

    /// Waits until `job` is in `state` (or closed, for `None`), showing `procs`' logs if not.
    async fn wait_for(
        &self,
        job: &Pubkey,
        state: Option<JobState>,
        secs: u64,
        procs: &[&Proc],
    ) -> Option<Job> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let j = self.job(job).await;
            if j.as_ref().map(|j| j.state) == state {
                return j;
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = procs.iter().map(|p| p.log()).collect();
                panic!(
                    "job {job} is {:?}, not {state:?}, after {secs} s; worker logs:\n{}",
                    j.map(|j| j.state),
                    logs.join("\n----\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn accept(&self, job: &Pubkey) -> u64 {
        let j = self.job(job).await.unwrap();
        let landed = self
            .client()
            .send(
                &[ix::job_accept(SettleKeys {
                    market: self.market(),
                    worker: j.worker,
                    job: *job,
                    poster: self.poster.pubkey(),
                })],
                &[&self.poster],
            )
            .await
            .unwrap();
        self.client().outcome(&landed.signature).await.unwrap().fee
    }

    fn worker_of(&self, operator: &Pubkey) -> Pubkey {
        pda::worker(&self.market(), operator).0
    }
}

async fn wait_until(what: &str, secs: u64, proc: &Proc, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "{what}: not after {secs} s; log:\n{}",
            proc.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posted_job_is_found_trained_submitted_and_paid_to_the_lamport() {
    let _one = serial().lock().await;
    let mut rig = Rig::new().await;
    let (op, key) = rig.operator("w1").await;
    let mut w = rig.spawn("w1", &key);
    let worker = rig.worker_of(&op.pubkey());
    // Registered by the worker itself, with its detected hardware and the configured stake.
    let deadline = Instant::now() + Duration::from_secs(60);
    let registered = loop {
        if let Some(a) = rig.client().worker(&worker).await.unwrap() {
            break a;
        }
        assert!(Instant::now() < deadline, "never registered:\n{}", w.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(registered.stake, 2 * SOL);
    assert!(!registered.hardware.label.is_empty());

    let client = rig.client().clone();
    let poster_before = client.balance(&rig.poster.pubkey()).await.unwrap();
    let market_before = client.market(&rig.market()).await.unwrap().fees_unclaimed;
    let (uri, bytes) = rig.hosted_spec(|_| {}).await;
    let (job, post_fee) = rig.post(uri, Sha256::digest(&bytes).into(), 3_600).await;
    let terms = rig.job(&job).await.unwrap().terms;
    let submitted = rig
        .wait_for(&job, Some(JobState::Submitted), 120, &[&w])
        .await
        .unwrap();
    assert_eq!(submitted.worker, worker);

    // Readable while it runs: the status command (through the status port).
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let out = rig
            .command("w1", &key, rig.net.rpc_url(), rig.net.ws_url())
            .args(["status", "--output", "json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if status["jobs_submitted"] == 1 || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status["worker"], worker.to_string());
    assert_eq!(status["jobs_submitted"], 1, "{status}");
    assert_eq!(status["pid"], w.child.id());
    assert!(status["last_chain_contact"].as_i64().unwrap() > 0);

    let accept_fee = rig.accept(&job).await;
    rig.wait_for(&job, None, 10, &[&w]).await;
    let payout = terms.payout(SOL / 2).unwrap();
    assert_eq!(payout.to_worker + payout.fee, SOL / 2);
    let after = client.worker(&worker).await.unwrap().unwrap();
    assert_eq!(
        after.earnings, payout.to_worker,
        "paid once, exactly the payout"
    );
    assert_eq!(after.record.jobs_completed, 1);
    assert_eq!(after.stake, 2 * SOL, "the collateral came back");
    assert_eq!(
        client.market(&rig.market()).await.unwrap().fees_unclaimed,
        market_before + payout.fee
    );
    // The poster paid the reward and two transaction fees; the job's rent came back.
    assert_eq!(
        client.balance(&rig.poster.pubkey()).await.unwrap(),
        poster_before - SOL / 2 - post_fee - accept_fee
    );
    // The worker saw the payment and logged it; its work dir forgot the job.
    wait_until("the payment logged", 30, &w, || {
        w.log().contains("\"paid\"")
    })
    .await;
    assert!(!rig
        .work_dir("w1")
        .join("jobs")
        .join(job.to_string())
        .exists());
    // SIGTERM: a clean exit.
    assert!(w.terminate().success(), "{}", w.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_jobs_are_refused_before_claiming_and_the_worker_carries_on() {
    let _one = serial().lock().await;
    let mut rig = Rig::new().await;
    let (_op, key) = rig.operator("w1").await;
    // A spec whose hash is not the committed one.
    let (uri, _) = rig.hosted_spec(|_| {}).await;
    let (mismatch, _) = rig.post(uri, [7; 32], 3_600).await;
    // A local file as the dataset.
    let local = rig
        .post_spec(|v| v["dataset"]["uri"] = "file:///etc/passwd".into())
        .await;
    // A dataset over the spec's own cap.
    let big = rig
        .post_spec(|v| v["limits"]["max_dataset_bytes"] = 1_000.into())
        .await;
    // A spec that fails validation (a model of 10^9 units).
    let invalid = rig
        .post_spec(|v| v["model"]["hidden"] = serde_json::json!([1_000_000_000]))
        .await;
    // Then an honest one.
    let good = rig.post_spec(|_| {}).await;

    let w = rig.spawn("w1", &key);
    rig.wait_for(&good, Some(JobState::Submitted), 120, &[&w])
        .await;
    for job in [mismatch, local, big, invalid] {
        assert_eq!(
            rig.job(&job).await.unwrap().state,
            JobState::Open,
            "{job} was claimed"
        );
    }
    let rejected: std::collections::BTreeMap<String, String> =
        serde_json::from_slice(&std::fs::read(rig.work_dir("w1").join("rejected.json")).unwrap())
            .unwrap();
    for (job, why) in [
        (mismatch, "spec hash mismatch"),
        (local, "never local files"),
        (big, "over the cap"),
        (invalid, "invalid spec"),
    ] {
        let reason = rejected
            .get(&job.to_string())
            .unwrap_or_else(|| panic!("{job} not recorded: {rejected:?}"));
        assert!(reason.contains(why), "{job}: {reason}");
        assert!(w.log().contains(why), "the reason is logged");
    }
}

/// The digits CNN for `epochs`, checkpointed every 10 steps: a job that trains for seconds.
fn cnn(epochs: u32) -> impl FnOnce(&mut serde_json::Value) {
    move |v| {
        v["model"] =
            serde_json::json!({"kind": "cnn", "input_shape": [1, 8, 8], "channels": [16, 32]});
        v["training"]["epochs"] = epochs.into();
        v["training"]["checkpoint_every"] = 10.into();
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// How far the worker with `work_dir` got on `job`.
fn stage(work_dir: &Path, job: &Pubkey) -> Option<String> {
    let p = work_dir
        .join("jobs")
        .join(job.to_string())
        .join("progress.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).ok()?).ok()?;
    v["stage"].as_str().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_during_training_and_after_the_upload_it_ends_with_the_same_hash_paid_once() {
    let _one = serial().lock().await;
    let mut rig = Rig::new().await;
    let (op, key) = rig.operator("w1").await;
    let worker = rig.worker_of(&op.pubkey());
    // Long enough to be caught mid-training: a CNN, checkpointed often.
    let (uri, bytes) = rig.hosted_spec(cnn(40)).await;
    let hash: [u8; 32] = Sha256::digest(&bytes).into();
    let (job, _) = rig.post(uri.clone(), hash, 3_600).await;

    // 1. SIGKILL once a checkpoint exists.
    let mut w = rig.spawn("w1", &key);
    let ckpt = rig
        .work_dir("w1")
        .join("jobs")
        .join(job.to_string())
        .join("out/checkpoint/state.safetensors");
    wait_until("a checkpoint", 120, &w, || ckpt.exists()).await;
    w.kill();
    assert_eq!(rig.job(&job).await.unwrap().state, JobState::Claimed);
    assert_eq!(stage(&rig.work_dir("w1"), &job).as_deref(), Some("claimed"));

    // 2. Restarted, it resumes; SIGTERM: it checkpoints, stops cleanly, leaves nothing
    // half-written, and the job stays claimed.
    let mut w = rig.spawn("w1", &key);
    wait_until("training resumed", 60, &w, || w.log().contains("\"eval\"")).await;
    let status = w.terminate();
    assert!(status.success(), "{status:?}\n{}", w.log());
    assert!(
        w.log().contains("resumes from its checkpoint"),
        "{}",
        w.log()
    );
    assert_eq!(stage(&rig.work_dir("w1"), &job).as_deref(), Some("claimed"));
    assert!(ckpt.exists());
    let job_dir = rig.work_dir("w1").join("jobs").join(job.to_string());
    for entry in walk(&job_dir) {
        let name = entry.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            !name.ends_with(".tmp") && !name.ends_with(".partial"),
            "half-written {}",
            entry.display()
        );
    }
    assert_eq!(rig.job(&job).await.unwrap().state, JobState::Claimed);

    // 3. Restarted, it resumes; it crashes right after publishing, before submitting.
    let (rpc, ws) = (rig.net.rpc_url().to_string(), rig.net.ws_url().to_string());
    let mut w = rig.spawn_via(
        "w1",
        &key,
        &rpc,
        &ws,
        &[("TENSORGRID_WORKER_CRASH_AFTER", "published")],
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while w.child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "no crash after publishing:\n{}",
            w.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        w.log().contains("resum") || w.log().contains("continuing"),
        "{}",
        w.log()
    );
    assert_eq!(
        stage(&rig.work_dir("w1"), &job).as_deref(),
        Some("published")
    );
    assert_eq!(
        rig.job(&job).await.unwrap().state,
        JobState::Claimed,
        "not submitted yet"
    );

    // 4. Restarted again, it submits what it uploaded.
    let w = rig.spawn("w1", &key);
    let interrupted = rig
        .wait_for(&job, Some(JobState::Submitted), 120, &[&w])
        .await
        .unwrap();
    rig.accept(&job).await;
    rig.wait_for(&job, None, 10, &[&w]).await;

    // The same spec, uninterrupted, by the same worker: the same result hash.
    let (again, _) = rig.post(uri, hash, 3_600).await;
    let whole = rig
        .wait_for(&again, Some(JobState::Submitted), 120, &[&w])
        .await
        .unwrap();
    assert_eq!(
        hex::encode(interrupted.result_hash),
        hex::encode(whole.result_hash)
    );
    rig.accept(&again).await;
    rig.wait_for(&again, None, 10, &[&w]).await;
    let terms = whole.terms;
    let account = rig.client().worker(&worker).await.unwrap().unwrap();
    assert_eq!(account.record.jobs_completed, 2, "each job paid once");
    assert_eq!(
        account.earnings,
        2 * terms.payout(SOL / 2).unwrap().to_worker
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_the_jobs_each_claimed_once() {
    let _one = serial().lock().await;
    let mut rig = Rig::new().await;
    let (a, ka) = rig.operator("a").await;
    let (b, kb) = rig.operator("b").await;
    let wa = rig.spawn("a", &ka);
    let wb = rig.spawn("b", &kb);
    for op in [&a, &b] {
        let w = rig.worker_of(&op.pubkey());
        let deadline = Instant::now() + Duration::from_secs(60);
        while rig.client().worker(&w).await.unwrap().is_none() {
            assert!(Instant::now() < deadline, "{}\n{}", wa.log(), wb.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Both see both jobs at once; each job is claimed by exactly one of them.
    let j1 = rig.post_spec(|_| {}).await;
    let j2 = rig.post_spec(|v| v["training"]["seed"] = 7.into()).await;
    let s1 = rig
        .wait_for(&j1, Some(JobState::Submitted), 180, &[&wa, &wb])
        .await
        .unwrap();
    let s2 = rig
        .wait_for(&j2, Some(JobState::Submitted), 180, &[&wa, &wb])
        .await
        .unwrap();
    let workers = [rig.worker_of(&a.pubkey()), rig.worker_of(&b.pubkey())];
    assert!(workers.contains(&s1.worker) && workers.contains(&s2.worker));
    assert_ne!(
        s1.worker, s2.worker,
        "one job each (a worker holds one at a time)"
    );
    let logs = format!("{}{}", wa.log(), wb.log());
    assert_eq!(logs.matches("\"claimed\"").count(), 2, "{logs}");
}

/// Faults the proxies made.
#[derive(Default)]
struct Faults {
    requests: AtomicU64,
    failed: AtomicU64,
    cuts: AtomicU64,
}

/// An HTTP proxy to the JSON-RPC at `target` that answers 30% of requests with an error
/// (half 503, half a connection closed without an answer) and forwards the rest.
async fn flaky_rpc(target: String, faults: Arc<Faults>) -> SocketAddr {
    use http_body_util::{BodyExt, Full};
    use hyper::{body::Bytes, server::conn::http1, service::service_fn, Response};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = reqwest::Client::new();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (client, target, faults) = (client.clone(), target.clone(), faults.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (client, target, faults) = (client.clone(), target.clone(), faults.clone());
                    async move {
                        faults.requests.fetch_add(1, Ordering::Relaxed);
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map_err(std::io::Error::other)?
                            .to_bytes();
                        let roll: f64 = rand::rng().random();
                        if roll < 0.3 {
                            faults.failed.fetch_add(1, Ordering::Relaxed);
                            if roll < 0.15 {
                                return Ok(Response::builder()
                                    .status(503)
                                    .body(Full::new(Bytes::new()))
                                    .unwrap());
                            }
                            // No answer: the connection is closed under the request.
                            return Err(std::io::Error::other("dropped"));
                        }
                        let forwarded = client
                            .post(&target)
                            .header("content-type", "application/json")
                            .body(body)
                            .send()
                            .await;
                        let resp = match forwarded {
                            Ok(r) => Response::builder()
                                .status(r.status().as_u16())
                                .header("content-type", "application/json")
                                .body(Full::new(r.bytes().await.unwrap_or_default()))
                                .unwrap(),
                            Err(_) => Response::builder()
                                .status(502)
                                .body(Full::new(Bytes::new()))
                                .unwrap(),
                        };
                        Ok::<_, std::io::Error>(resp)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// The project's TCP proxy to the websocket at `target`, every connection cut every 1–3 s.
async fn cutting_ws(target: SocketAddr, faults: Arc<Faults>) -> SocketAddr {
    let proxy = tensorgrid_localnet::testing::TcpProxy::start(target)
        .await
        .unwrap();
    let addr = proxy.addr();
    tokio::spawn(async move {
        loop {
            let pause = rand::rng().random_range(1_000..3_000);
            tokio::time::sleep(Duration::from_millis(pause)).await;
            proxy.sever();
            faults.cuts.fetch_add(1, Ordering::Relaxed);
        }
    });
    addr
}

fn addr_of(url: &str) -> SocketAddr {
    let rest = url.split_once("://").unwrap().1;
    rest.trim_end_matches('/').parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_rpc_and_a_cut_websocket_do_not_stop_the_job() {
    let _one = serial().lock().await;
    let mut rig = Rig::new().await;
    let (_op, key) = rig.operator("w1").await;
    let faults = Arc::new(Faults::default());
    let rpc = flaky_rpc(rig.net.rpc_url().to_string(), faults.clone()).await;
    let ws = cutting_ws(addr_of(rig.net.ws_url()), faults.clone()).await;
    let w = rig.spawn_via(
        "w1",
        &key,
        &format!("http://{rpc}"),
        &format!("ws://{ws}"),
        &[],
    );
    // The job is posted once the worker's websocket has been cut and reopened twice.
    let deadline = Instant::now() + Duration::from_secs(60);
    while faults.cuts.load(Ordering::Relaxed) < 2 {
        assert!(
            Instant::now() < deadline,
            "the websocket was never cut:\n{}",
            w.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let job = rig.post_spec(|_| {}).await;
    rig.wait_for(&job, Some(JobState::Submitted), 240, &[&w])
        .await;
    rig.accept(&job).await;
    rig.wait_for(&job, None, 10, &[&w]).await;
    // Paid, and the worker saw it through the faulty endpoint.
    wait_until("the payment logged", 180, &w, || {
        w.log().contains("\"paid\"")
    })
    .await;
    let (n, failed, cuts) = (
        faults.requests.load(Ordering::Relaxed),
        faults.failed.load(Ordering::Relaxed),
        faults.cuts.load(Ordering::Relaxed),
    );
    // Each request fails with probability 0.3: at least 10% of 20 or more is missed about once
    // in a thousand runs (a 20% floor failed about one run in ten).
    assert!(
        n >= 20 && failed * 10 >= n,
        "{failed} of {n} requests failed"
    );
    assert!(cuts >= 1, "the websocket was cut {cuts} times");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_deadline_is_reclaimed_by_a_third_party_and_the_worker_goes_on() {
    let _one = serial().lock().await;
    let mut rig = Rig::new().await;
    let (op, key) = rig.operator("w1").await;
    let worker = rig.worker_of(&op.pubkey());
    let (uri, bytes) = rig.hosted_spec(cnn(12)).await;
    let (job, _) = rig.post(uri, Sha256::digest(&bytes).into(), 600).await;
    let mut w = rig.spawn("w1", &key);
    let claimed = rig
        .wait_for(&job, Some(JobState::Claimed), 60, &[&w])
        .await
        .unwrap();
    // The worker goes down mid-job; its deadline passes.
    w.kill();
    let stake_before = rig.client().worker(&worker).await.unwrap().unwrap().stake;
    rig.net.warp_to(claimed.deadline + 1).await.unwrap();
    rig.net.warp(1).await.unwrap();
    // Anyone may reclaim: the slash, less the bounty, to the poster's escrow.
    let cranker = rig.net.funded(SOL).await.unwrap();
    let cranker_before = rig.client().balance(&cranker.pubkey()).await.unwrap();
    let landed = rig
        .client()
        .send(
            &[ix::job_reclaim(cranker.pubkey(), worker, job)],
            &[&cranker],
        )
        .await
        .unwrap();
    let fee = rig.client().outcome(&landed.signature).await.unwrap().fee;
    let split = claimed.terms.reclaim_split(claimed.collateral).unwrap();
    assert_eq!(
        rig.client().balance(&cranker.pubkey()).await.unwrap(),
        cranker_before + split.bounty - fee
    );
    let after = rig.client().worker(&worker).await.unwrap().unwrap();
    assert_eq!(after.stake, stake_before - split.bounty - split.to_poster);
    let reopened = rig.job(&job).await.unwrap();
    assert_eq!(reopened.state, JobState::Open);
    assert_eq!(
        reopened.compensation,
        claimed.compensation + split.to_poster
    );

    // Another worker waits out the reopened job's cooldown (by the chain's clock) and takes it.
    let (other, other_key) = rig.operator("w2").await;
    let w2 = rig.spawn("w2", &other_key);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        rig.job(&job).await.unwrap().state,
        JobState::Open,
        "cooling down"
    );
    rig.net.warp(601).await.unwrap();
    let retaken = rig
        .wait_for(&job, Some(JobState::Submitted), 120, &[&w2])
        .await
        .unwrap();
    assert_eq!(retaken.worker, rig.worker_of(&other.pubkey()));
    drop(w2);

    // Restarted, the first worker drops the lost job and takes the next one.
    let w = rig.spawn("w1", &key);
    let next = rig.post_spec(|_| {}).await;
    let done = rig
        .wait_for(&next, Some(JobState::Submitted), 120, &[&w])
        .await
        .unwrap();
    assert_eq!(done.worker, worker);
    assert!(!rig
        .work_dir("w1")
        .join("jobs")
        .join(job.to_string())
        .exists());
}

#[test]
fn an_invalid_configuration_lists_every_problem_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("worker.toml");
    std::fs::write(&file, "device = \"tpu\"\npoll_interval = \"soon\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tensorgrid-worker"))
        .arg("-c")
        .arg(&file)
        .args(["-u", "ftp://nowhere", "--max-concurrent-jobs", "3"])
        .env("TENSORGRID_WORKER_LOG_FORMAT", "xml")
        .env_remove("TENSORGRID_WORKER_STORE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for field in [
        "device",
        "poll_interval",
        "rpc_urls",
        "max_concurrent_jobs",
        "log_format",
        "store",
    ] {
        assert!(
            err.contains(&format!("- {field}")),
            "{field} missing: {err}"
        );
    }
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    // A keypair that is not there: one line, exit 1, nothing sent.
    let out = Command::new(env!("CARGO_BIN_EXE_tensorgrid-worker"))
        .args(["--store", "s3://b/r", "-u", "http://127.0.0.1:9", "-k"])
        .arg(dir.path().join("missing.json"))
        .arg("--work-dir")
        .arg(dir.path().join("w"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("solana-keygen new"), "{err}");
}
