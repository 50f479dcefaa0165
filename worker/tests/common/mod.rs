//! The test rig shared by the daemon's test binaries: an embedded chain with a market, the
//! shared local S3 server, a poster, worker processes and their logs, and helpers to host
//! specs and datasets and to post jobs.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
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

pub fn serial() -> &'static tokio::sync::Mutex<()> {
    static M: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();
    M.get_or_init(|| tokio::sync::Mutex::new(()))
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A chain with a market, the shared S3 server, a poster, and a place for workers.
pub struct Rig {
    pub net: Localnet,
    pub store: Store,
    pub dir: tempfile::TempDir,
    pub poster: Keypair,
}

/// A worker process; killed when dropped. Its log (JSON lines) is kept in a file.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
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
    pub async fn new() -> Self {
        Self::priced(false).await
    }

    /// A rig whose market is priced in the local chain's test USDC (6 decimals; the poster
    /// holds a million).
    pub async fn usdc() -> Self {
        Self::priced(true).await
    }

    async fn priced(usdc: bool) -> Self {
        tensorgrid_localnet::testing::shared_s3();
        let net = LocalnetBuilder::for_tests()
            .accounts(["poster"])
            .market(default_market_params())
            .usdc(usdc)
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
        }
    }

    pub fn client(&self) -> &ChainClient {
        self.net.client()
    }

    pub fn market(&self) -> Pubkey {
        self.net.market().unwrap()
    }

    /// A funded operator keypair written to a file.
    pub async fn operator(&self, name: &str) -> (Keypair, PathBuf) {
        let kp = self.net.funded(20 * SOL).await.unwrap();
        let path = self.dir.path().join(format!("{name}.json"));
        std::fs::write(
            &path,
            serde_json::to_string(&kp.to_bytes().to_vec()).unwrap(),
        )
        .unwrap();
        (kp, path)
    }

    /// The worker's status file as JSON (`null` until written).
    pub fn status(&self, name: &str) -> serde_json::Value {
        std::fs::read(self.work_dir(name).join("status.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// The market authority changes the market's parameters (`edit`).
    pub async fn set_params(&self, edit: impl FnOnce(&mut tensorgrid_client::state::MarketParams)) {
        let authority = self.net.payer().keypair.insecure_clone();
        let mut params = self.client().market(&self.market()).await.unwrap().params;
        edit(&mut params);
        self.client()
            .send(
                &[ix::market_update(
                    authority.pubkey(),
                    self.market(),
                    tensorgrid_client::tensorgrid::instructions::MarketUpdateArgs {
                        params: Some(params),
                        paused: None,
                    },
                )],
                &[&authority],
            )
            .await
            .unwrap();
    }

    pub fn work_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("work-{name}"))
    }

    /// The worker binary for `name`; `rpc` may list several URLs, comma-separated (failover).
    pub fn command(&self, name: &str, keypair: &Path, rpc: &str, ws: &str) -> Command {
        self.command_staking(name, keypair, rpc, ws, "2")
    }

    /// [`Self::command`] with `--stake STAKE` (in the market's unit).
    pub fn command_staking(
        &self,
        name: &str,
        keypair: &Path,
        rpc: &str,
        ws: &str,
        stake: &str,
    ) -> Command {
        // `TENSORGRID_WORKER_BIN` runs the suite against another build (the release binary a
        // rig runs, say); the test profile's by default.
        let bin = std::env::var("TENSORGRID_WORKER_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_tensorgrid-worker").to_string());
        let mut c = Command::new(bin);
        for url in rpc.split(',') {
            c.args(["-u", url]);
        }
        c.args(["--ws-url", ws, "-k"])
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
                stake,
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
    pub fn spawn_via(
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

    /// Starts a worker named `name` on the chain's own endpoints with `env` set.
    pub fn spawn_env(&self, name: &str, keypair: &Path, env: &[(&str, &str)]) -> Proc {
        self.spawn_via(name, keypair, self.net.rpc_url(), self.net.ws_url(), env)
    }

    /// The worker account of `operator`, as the chain shows it now.
    pub async fn worker_account(&self, operator: &Keypair) -> tensorgrid_client::state::Worker {
        self.client()
            .worker(&self.worker_of(&operator.pubkey()))
            .await
            .unwrap()
            .expect("the worker is registered")
    }

    pub fn spawn(&self, name: &str, keypair: &Path) -> Proc {
        let (rpc, ws) = (
            self.net.rpc_url().to_string(),
            self.net.ws_url().to_string(),
        );
        self.spawn_via(name, keypair, &rpc, &ws, &[])
    }

    /// Hosts the digits dataset and the MLP spec edited by `edit`; returns (uri, bytes).
    pub async fn hosted_spec(
        &self,
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> (String, Vec<u8>) {
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
    pub async fn post(
        &mut self,
        uri: String,
        hash: [u8; 32],
        max_duration_s: i64,
    ) -> (Pubkey, u64) {
        let poster = self.poster.insecure_clone();
        self.post_as(&poster, uri, hash, max_duration_s).await
    }

    /// [`Self::post`] from `poster`'s wallet, at its next id.
    pub async fn post_as(
        &self,
        poster: &Keypair,
        uri: String,
        hash: [u8; 32],
        max_duration_s: i64,
    ) -> (Pubkey, u64) {
        self.post_paying(poster, uri, hash, max_duration_s, SOL / 2)
            .await
    }

    /// [`Self::post_as`] with a reward of `reward` lamports.
    pub async fn post_paying(
        &self,
        poster: &Keypair,
        uri: String,
        hash: [u8; 32],
        max_duration_s: i64,
        reward: u64,
    ) -> (Pubkey, u64) {
        let posting = self
            .client()
            .post_context(&self.market(), &poster.pubkey())
            .await
            .unwrap();
        let id = posting.next_job_id();
        let ixs = posting.instructions(
            poster.pubkey(),
            self.market(),
            JobPostArgs {
                job_id: id,
                reward,
                spec_hash: hash,
                spec_uri: uri,
                requirements: defaults::any_device(),
                max_duration_s,
                terms: posting.terms(),
            },
        );
        let landed = self.client().send(&ixs, &[poster]).await.unwrap();
        let fee = self.client().outcome(&landed.signature).await.unwrap().fee;
        (pda::job(&self.market(), &poster.pubkey(), id).0, fee)
    }

    /// Puts `bytes` in the store as a dataset; its URI and sha256.
    pub async fn hosted_dataset(&self, bytes: Vec<u8>) -> (String, String) {
        let sha = hex::encode(Sha256::digest(&bytes));
        let uri = self
            .store
            .put(&format!("datasets/{sha}"), bytes)
            .await
            .unwrap();
        (uri, sha)
    }

    pub async fn post_spec(&mut self, edit: impl FnOnce(&mut serde_json::Value)) -> Pubkey {
        let (uri, bytes) = self.hosted_spec(edit).await;
        self.post(uri, Sha256::digest(&bytes).into(), 3_600).await.0
    }

    pub async fn job(&self, job: &Pubkey) -> Option<Job> {
        self.client().job(job).await.unwrap()
    }

    /// Waits until `job` is in `state` (or closed, for `None`), showing `procs`' logs if not.
    pub async fn wait_for(
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

    pub async fn accept(&self, job: &Pubkey) -> u64 {
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

    pub fn worker_of(&self, operator: &Pubkey) -> Pubkey {
        pda::worker(&self.market(), operator).0
    }
}

pub async fn wait_until(what: &str, secs: u64, proc: &Proc, mut ok: impl FnMut() -> bool) {
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

/// `rejected.json` of a work dir: job → {reason, kind, poster, at}.
pub fn refusals(work_dir: &Path) -> std::collections::BTreeMap<String, serde_json::Value> {
    std::fs::read(work_dir.join("rejected.json"))
        .ok()
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or_default()
}

/// A `.npy` file: `header` as the array's description, then `data`.
pub fn npy(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend((h.len() as u16).to_le_bytes());
    v.extend(h.as_bytes());
    v.extend(data);
    v
}

/// A safetensors file with one scalar `images` tensor and a `labels` vector.
pub fn scalar_safetensors() -> Vec<u8> {
    let header = r#"{"images":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"labels":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend(header.as_bytes());
    v.extend(1f32.to_le_bytes());
    v.extend(0f32.to_le_bytes());
    v
}

/// The digits CNN for `epochs`, checkpointed every 10 steps: a job that trains for seconds.
pub fn cnn(epochs: u32) -> impl FnOnce(&mut serde_json::Value) {
    move |v| {
        v["model"] =
            serde_json::json!({"kind": "cnn", "input_shape": [1, 8, 8], "channels": [16, 32]});
        v["training"]["epochs"] = epochs.into();
        v["training"]["checkpoint_every"] = 10.into();
    }
}

/// The manifest a submitted job names, fetched: its sha256 is the result hash on chain.
pub async fn published_manifest(done: &tensorgrid_client::state::Job) -> Vec<u8> {
    let bytes = tensorgrid_artifacts::fetch(
        &done.result_uri,
        1 << 20,
        &tensorgrid_artifacts::ReadPolicy::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        hex::encode(Sha256::digest(&bytes)),
        hex::encode(done.result_hash)
    );
    bytes.to_vec()
}

/// Every file under `dir`.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
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
pub fn stage(work_dir: &Path, job: &Pubkey) -> Option<String> {
    let p = work_dir
        .join("jobs")
        .join(job.to_string())
        .join("progress.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).ok()?).ok()?;
    v["stage"].as_str().map(str::to_string)
}
