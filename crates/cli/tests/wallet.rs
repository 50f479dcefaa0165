//! The wallet CLI end to end: the `tensorgrid` binary against the embedded chain's JSON-RPC
//! and a real S3-protocol server on localhost. Each command's `--output json` is parsed and
//! asserted (state, balances to the lamport, signatures that exist on chain); bad input must
//! fail with one readable line and send nothing.

mod common;

use std::process::Command;

use common::{address, events, finished, repo, World};
use serde_json::Value;
use solana_signer::Signer;
use tensorgrid_artifacts::{fetch, result, ReadPolicy, Store};
use tensorgrid_client::{
    anchor_lang::prelude::Pubkey,
    instructions::{self as ix, WorkerKeys},
    pda,
    tensorgrid::instructions::JobSubmitArgs,
};
use tensorgrid_localnet::SOL;
use tensorgrid_train::{
    data,
    manifest::{MANIFEST_FILE, METRICS_FILE, WEIGHTS_FILE},
    spec::JobSpec,
    trainer::{self, TrainOptions},
};

/// The wallets these tests use; "poor" holds 1 SOL.
async fn world() -> World {
    let w = World::with_accounts(&["poster", "worker", "other", "poor"]).await;
    w.net
        .set_lamports(&w.net.account("poor").pubkey(), SOL)
        .await
        .unwrap();
    w
}

/// What these tests do by hand that the worker daemon otherwise does.
impl World {
    async fn jobs_posted(&self) -> u64 {
        self.net
            .client()
            .market(&self.market)
            .await
            .unwrap()
            .jobs_posted
    }

    fn worker_keys(&self) -> WorkerKeys {
        let operator = self.key("worker");
        WorkerKeys {
            operator,
            market: self.market,
            worker: pda::worker(&self.market, &operator).0,
        }
    }

    async fn claim(&self, job: Pubkey) {
        let w = self.net.account("worker");
        let offer = self.net.client().job(&job).await.unwrap().unwrap().offer();
        self.net
            .client()
            .send(&[ix::job_claim(self.worker_keys(), job, offer)], &[w])
            .await
            .unwrap();
    }

    /// What a worker does after claiming: fetch the spec and dataset by their URIs, train,
    /// publish to the store, submit. Returns the result hash.
    async fn work(&self, job: Pubkey) -> [u8; 32] {
        let j = self.net.client().job(&job).await.unwrap().unwrap();
        let policy = ReadPolicy::default();
        let spec_bytes = fetch(&j.spec_uri, 1 << 20, &policy).await.unwrap().to_vec();
        let spec = JobSpec::from_json(&spec_bytes).unwrap();
        assert!(
            spec.dataset.uri.starts_with("s3://"),
            "{}",
            spec.dataset.uri
        );
        let data_bytes = fetch(&spec.dataset.uri, 1 << 24, &policy).await.unwrap();
        let out = self.dir.path().join(format!("work-{job}"));
        let out2 = out.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let split = data::split(&spec, &data_bytes).unwrap();
            let opts = TrainOptions {
                resume: false,
                ..TrainOptions::new(tensorgrid_train::Device::Cpu, out2)
            };
            trainer::train(&spec, &spec_bytes, &split, &opts).unwrap()
        })
        .await
        .unwrap();
        let store = Store::open("s3://tensorgrid").unwrap();
        // As the worker publishes: the files, the manifest last (the committed states stay
        // here, published on request).
        let files = [WEIGHTS_FILE, METRICS_FILE, MANIFEST_FILE];
        let uri = result::publish(&store, &format!("results/{job}"), &out, &files)
            .await
            .unwrap();
        let args = JobSubmitArgs {
            result_hash: outcome.result_hash,
            result_uri: uri,
            reported_metric: (outcome.manifest.result.value * 1e6).round() as u64,
        };
        let w = self.net.account("worker");
        self.net
            .client()
            .send(&[ix::job_submit(self.worker_keys(), job, args)], &[w])
            .await
            .unwrap();
        outcome.result_hash
    }

    fn register_worker(&self) -> Value {
        self.run(
            "worker",
            &[
                "worker", "register", "--stake", "2", "--device", "cpu", "--label", "test cpu",
            ],
        )
        .ok()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_refuses_bad_input_and_sends_nothing() {
    let w = world().await;
    let poster = w.key("poster");
    let (posted0, balance0) = (w.jobs_posted().await, w.balance(&poster).await);
    let spec = w.small_spec("ok.json", 2);

    // A spec with two problems: both named, on one line.
    let mut bad: Value = serde_json::from_slice(&std::fs::read(&spec).unwrap()).unwrap();
    bad["version"] = 9.into();
    bad["training"]["optimizer"]["lr"] = (-1.0).into();
    let bad_path = w.dir.path().join("bad.json");
    std::fs::write(&bad_path, serde_json::to_vec(&bad).unwrap()).unwrap();
    let r = w.post_run("poster", bad_path.to_str().unwrap(), "0.5", "1h", &[]);
    let line = r.failed();
    assert!(
        line.contains("invalid job spec (2 problems)")
            && line.contains("version 9")
            && line.contains("lr"),
        "{line}"
    );

    // A spec that is not JSON.
    std::fs::write(&bad_path, b"{ not json").unwrap();
    let r = w.post_run("poster", bad_path.to_str().unwrap(), "0.5", "1h", &[]);
    assert!(r.failed().contains("bad.json"), "{}", r.stderr);

    // --spec-uri whose content is another file.
    let store = Store::open("s3://tensorgrid").unwrap();
    let other_uri = store
        .put("specs/other.json", b"{\"version\": 1}".to_vec())
        .await
        .unwrap();
    let hosted = w.dir.path().join("hosted.json");
    let mut hosted_spec: Value = serde_json::from_slice(&std::fs::read(&spec).unwrap()).unwrap();
    hosted_spec["dataset"]["uri"] = "https://example.com/digits.safetensors".into();
    std::fs::write(&hosted, serde_json::to_vec(&hosted_spec).unwrap()).unwrap();
    let r = w.post_run(
        "poster",
        hosted.to_str().unwrap(),
        "0.5",
        "1h",
        &["--spec-uri", &other_uri],
    );
    assert!(r.failed().contains("its content (sha256"), "{}", r.stderr);

    // Keypair files that do not exist, or are not keypairs.
    let missing = w.dir.path().join("nope.json");
    let a = [
        "job",
        "post",
        "--spec",
        spec.to_str().unwrap(),
        "--reward",
        "0.5",
        "--max-duration",
        "1h",
    ];
    let r = w.run_with(&a, w.net.rpc_url(), &missing);
    assert!(r.failed().contains("does not exist"), "{}", r.stderr);
    let garbage = w.dir.path().join("garbage.json");
    std::fs::write(&garbage, b"[1, 2, 3]").unwrap();
    let r = w.run_with(&a, w.net.rpc_url(), &garbage);
    assert!(r.failed().contains("not a Solana keypair"), "{}", r.stderr);

    // An RPC URL that refuses connections.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = w.run_with(
        &a,
        &format!("http://127.0.0.1:{port}"),
        &w.keyfile("poster"),
    );
    let line = r.failed();
    assert!(
        line.to_lowercase().contains("unreachable") && line.contains(&port.to_string()),
        "{line}"
    );

    // Rewards below the rent-exempt minimum, above the balance, and zero.
    let r = w.post_run("poster", spec.to_str().unwrap(), "0.0001", "1h", &[]);
    assert!(r.failed().contains("rent-exempt minimum"), "{}", r.stderr);
    let r = w.post_run("poor", spec.to_str().unwrap(), "5", "1h", &[]);
    assert!(r.failed().contains("has 1 SOL"), "{}", r.stderr);
    let r = w.post_run("poster", spec.to_str().unwrap(), "0.5", "1000h", &[]);
    assert!(r.failed().contains("longer than market"), "{}", r.stderr);

    let r = w.post_run("poster", spec.to_str().unwrap(), "0", "1h", &[]);
    assert!(r.failed().contains("rent-exempt minimum"), "{}", r.stderr);
    // A spec URI longer than the program stores.
    let long = format!("https://example.com/{}", "a".repeat(181));
    assert_eq!(long.len(), 201);
    let r = w.post_run(
        "poster",
        hosted.to_str().unwrap(),
        "0.5",
        "1h",
        &["--spec-uri", &long],
    );
    assert!(r.failed().contains("1 to 200 bytes"), "{}", r.stderr);

    assert_eq!(w.jobs_posted().await, posted0, "nothing posted");
    assert_eq!(w.balance(&poster).await, balance0, "nothing paid");
    assert_eq!(w.balance(&w.key("poor")).await, SOL);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_train_verify_accept_pays_to_the_lamport() {
    let w = world().await;
    let (poster, operator) = (w.key("poster"), w.key("worker"));
    let client = w.net.client();

    let reg = w.register_worker();
    assert_eq!(events(&reg), ["worker registered"]);
    w.exists(&reg["signature"]).await;
    let shown = w.run("worker", &["worker", "show"]).ok();
    assert_eq!(shown["stake"], 2 * SOL);
    assert_eq!(shown["hardware"], "cpu test cpu");

    let p0 = w.balance(&poster).await;
    let spec = w.small_spec("small.json", 2);
    let (job, posted) = w.post("poster", &spec, "0.5");
    w.exists(&posted["signature"]).await;
    // The first post in the market creates the poster's account (its rent is kept there).
    assert_eq!(events(&posted), ["poster account created", "posted"]);
    let rent = client
        .rent_exempt(tensorgrid_client::state::Job::SPACE)
        .await
        .unwrap();
    let account_rent = client
        .rent_exempt(tensorgrid_client::state::Poster::SPACE)
        .await
        .unwrap();
    let post_fee = posted["fee"].as_u64().unwrap();
    assert_eq!(
        w.balance(&poster).await,
        p0 - SOL / 2 - rent - account_rent - post_fee
    );
    assert!(posted["next"].as_str().unwrap().contains(&job.to_string()));

    let listed = w
        .run("poster", &["job", "list", "--state", "open", "--mine"])
        .ok();
    let jobs = listed["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["address"], job.to_string());
    let shown = w.run("other", &["job", "show", &job.to_string()]).ok();
    assert_eq!(shown["account"]["state"], "open");
    assert_eq!(shown["account"]["reward"], SOL / 2);
    assert_eq!(shown["account"]["fee"], SOL / 2 * 250 / 10_000);
    // The job id works for its poster.
    let by_id = w
        .run(
            "poster",
            &[
                "job",
                "show",
                &posted["job_id"].as_u64().unwrap().to_string(),
            ],
        )
        .ok();
    assert_eq!(by_id["job"], job.to_string());

    w.claim(job).await;
    let result_hash = w.work(job).await;
    let shown = w.run("other", &["job", "show", &job.to_string()]).ok();
    assert_eq!(shown["account"]["state"], "submitted");
    assert_eq!(shown["account"]["result_hash"], hex::encode(result_hash));
    assert_eq!(shown["worker_hardware"], "cpu test cpu");

    // The honest result verifies, and a curve is drawn.
    let out = w.dir.path().join("verified");
    let verified = w.verify("poster", &job, &out);
    assert!(std::fs::metadata(out.join("curve.png")).unwrap().len() > 1_000);
    // The posted spec is kept beside the result: the offline check passes on it as is.
    let posted_spec = out.join("posted-spec.json");
    assert_eq!(verified["spec_file"], posted_spec.display().to_string());
    let offline = Command::new(env!("CARGO_BIN_EXE_tensorgrid"))
        .arg("verify")
        .arg("--spec")
        .arg(&posted_spec)
        .arg("--result")
        .arg(&out)
        .args(["--expect-hash", &hex::encode(result_hash)])
        .args(["--device", "cpu", "--output", "json"])
        .env("HOME", w.dir.path())
        .output()
        .unwrap();
    assert!(
        offline.status.success(),
        "{}",
        String::from_utf8_lossy(&offline.stderr)
    );
    let offline: Value = serde_json::from_slice(&offline.stdout).unwrap();
    assert_eq!(offline["passed"], true, "{offline:#}");

    // Not the poster: the program's error, readable, nothing moved.
    let r = w.run("other", &["job", "accept", &job.to_string()]);
    let line = r.failed();
    assert!(
        line.contains("NotPoster") || line.contains("poster"),
        "{line}"
    );
    let r = w.run(
        "other",
        &["job", "dispute", &job.to_string(), "--segment", "0"],
    );
    assert!(r.failed().contains("oster"), "{}", r.stderr);

    // Accept: the worker's payout, the market's fee, the poster's rent, each to the lamport.
    let worker = pda::worker(&w.market, &operator).0;
    let (p1, wk1, m1) = (
        w.balance(&poster).await,
        w.balance(&worker).await,
        w.balance(&w.market).await,
    );
    let job_lamports = w.balance(&job).await;
    let earnings1 = client.worker(&worker).await.unwrap().unwrap().earnings;
    let watcher = w.spawn(
        "other",
        &["job", "watch", &job.to_string(), "--timeout", "2m"],
    );
    let accepted = w.run("poster", &["job", "accept", &job.to_string()]).ok();
    w.exists(&accepted["signature"]).await;
    assert_eq!(events(&accepted), ["paid"]);
    let fee = SOL / 2 * 250 / 10_000;
    let payout = SOL / 2 - fee;
    let tx_fee = accepted["fee"].as_u64().unwrap();
    assert_eq!(accepted["events"][0]["details"]["payout"], payout);
    assert_eq!(w.balance(&poster).await, p1 + rent - tx_fee);
    assert_eq!(w.balance(&worker).await, wk1 + payout);
    assert_eq!(w.balance(&w.market).await, m1 + fee);
    assert_eq!(
        client.worker(&worker).await.unwrap().unwrap().earnings,
        earnings1 + payout
    );
    assert_eq!(job_lamports, rent + SOL / 2);
    assert!(
        client.account(&job).await.unwrap().is_none(),
        "job account closed"
    );
    // `worker show` lists the payment, from the worker account's history.
    let shown = w.run("worker", &["worker", "show"]).ok();
    let m = &shown["movements"][0];
    assert_eq!(
        (
            m["kind"].as_str(),
            m["job"].as_str(),
            m["lamports"].as_u64()
        ),
        (Some("paid"), Some(job.to_string().as_str()), Some(payout)),
        "{shown}"
    );
    assert_eq!(m["signature"], accepted["signature"]);

    // The live watcher saw every transition and stopped when the job closed.
    let watched = finished(watcher).await;
    assert_eq!(watched["outcome"], "paid");
    let names: Vec<&str> = watched["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["posted", "claimed", "submitted", "paid"]);
    assert_eq!(watched["history"][3]["signature"], accepted["signature"]);

    // Closed: show reads the history; verify still works from it.
    let shown = w.run("other", &["job", "show", &job.to_string()]).ok();
    assert_eq!(shown["outcome"], "paid");
    let names: Vec<&str> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["posted", "claimed", "submitted", "paid"]);
    w.verify("other", &job, &out);

    // Earnings out to the operator's wallet.
    let o1 = w.balance(&operator).await;
    let upd = w
        .run(
            "worker",
            &["worker", "update", "--withdraw-earnings", "all"],
        )
        .ok();
    assert_eq!(
        w.balance(&operator).await,
        o1 + payout - upd["fee"].as_u64().unwrap()
    );
    let dereg = w.run("worker", &["worker", "deregister"]).ok();
    assert_eq!(events(&dereg), ["worker deregistered"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_catches_tampered_results() {
    let w = world().await;
    w.register_worker();
    let spec = w.small_spec("small.json", 1);
    let (job, _) = w.post("poster", &spec, "0.5");
    w.claim(job).await;
    w.work(job).await;
    let store = Store::open("s3://tensorgrid").unwrap();
    let key = |f: &str| format!("results/{job}/{f}");
    let weights = fetch(
        &store.uri(&key(WEIGHTS_FILE)),
        1 << 24,
        &ReadPolicy::default(),
    )
    .await
    .unwrap()
    .to_vec();
    let manifest = fetch(
        &store.uri(&key(MANIFEST_FILE)),
        1 << 20,
        &ReadPolicy::default(),
    )
    .await
    .unwrap()
    .to_vec();

    // `tensorgrid verify` of the worker's local result directory against the committed hash.
    let committed = hex::encode(w.net.client().job(&job).await.unwrap().unwrap().result_hash);
    let posted_spec = w.dir.path().join("posted-spec.json");
    let spec_uri = w.net.client().job(&job).await.unwrap().unwrap().spec_uri;
    std::fs::write(
        &posted_spec,
        fetch(&spec_uri, 1 << 20, &ReadPolicy::default())
            .await
            .unwrap(),
    )
    .unwrap();
    let local = |hash: &str| {
        Command::new(env!("CARGO_BIN_EXE_tensorgrid"))
            .args([
                "verify",
                "--device",
                "cpu",
                "--spec",
                posted_spec.to_str().unwrap(),
            ])
            .args([
                "--result",
                w.dir.path().join(format!("work-{job}")).to_str().unwrap(),
            ])
            .args(["--expect-hash", hash])
            .output()
            .unwrap()
    };
    assert!(local(&committed).status.success());
    let wrong = local(&"ab".repeat(32));
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stdout).contains("is not the expected result hash"));

    // Weights changed: their hash no longer matches the manifest.
    let mut evil = weights.clone();
    let at = evil.len() - 5;
    evil[at] ^= 0x55;
    store.put(&key(WEIGHTS_FILE), evil.clone()).await.unwrap();
    let r = w.run("poster", &["job", "verify", &job.to_string()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let v = r.json();
    assert_eq!(v["passed"], false);
    let failed: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(failed.contains(&"files"), "{v:#}");

    // The manifest re-hashed to match the changed weights: the chain's hash catches it.
    let mut m: Value = serde_json::from_slice(&manifest).unwrap();
    m["weights"]["sha256"] = tensorgrid_artifacts::sha256_hex(&evil).into();
    store
        .put(&key(MANIFEST_FILE), serde_json::to_vec_pretty(&m).unwrap())
        .await
        .unwrap();
    let r = w.run("poster", &["job", "verify", &job.to_string()]);
    assert_eq!(r.code, 1);
    let v = r.json();
    let check = |v: &Value, name: &str| -> Option<bool> {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["ok"] == true)
    };
    assert_eq!(check(&v, "result hash"), Some(false), "{v:#}");
    assert_eq!(
        check(&v, "files"),
        None,
        "files of a manifest not on chain are not fetched"
    );

    // A worker whose result URI points into the poster's machine: refused, nothing read.
    let (job2, _) = w.post("poster", &spec, "0.5");
    let hostile_uris = [
        "file:///etc/manifest.json",
        "http://169.254.169.254/latest/manifest.json",
        "https://127.0.0.1/manifest.json",
    ];
    w.run("poster", &["job", "accept", &job.to_string()]).ok();
    w.claim(job2).await;
    let args = JobSubmitArgs {
        result_hash: [7; 32],
        result_uri: hostile_uris[0].into(),
        reported_metric: 990_000,
    };
    let wk = w.net.account("worker");
    w.net
        .client()
        .send(&[ix::job_submit(w.worker_keys(), job2, args)], &[wk])
        .await
        .unwrap();
    let r = w.run("poster", &["job", "verify", &job2.to_string()]);
    assert!(r.failed().contains("not allowed"), "{}", r.stderr);
    for uri in &hostile_uris[1..] {
        let e = fetch(uri, 1 << 20, &ReadPolicy::default())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not allowed"), "{uri}: {e}");
    }

    // Restored: passes again, including a bit-identical re-run on this CPU.
    store.put(&key(WEIGHTS_FILE), weights).await.unwrap();
    store.put(&key(MANIFEST_FILE), manifest).await.unwrap();
    let v = w
        .run("poster", &["job", "verify", &job.to_string(), "--rerun"])
        .ok();
    assert_eq!(v["passed"], true, "{v:#}");
    assert!(v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "rerun" && c["ok"] == true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_dispute_resolve_reclaim_finalize_and_market_admin() {
    let w = world().await;
    w.register_worker();
    let client = w.net.client();
    let spec = w.small_spec("small.json", 1);

    // Cancel: only the poster; reward and rent come back.
    let (job, _) = w.post("poster", &spec, "0.5");
    assert!(w
        .run("other", &["job", "cancel", &job.to_string()])
        .failed()
        .contains("oster"));
    let p = w.balance(&w.key("poster")).await;
    let c = w.run("poster", &["job", "cancel", &job.to_string()]).ok();
    assert_eq!(events(&c), ["cancelled"]);
    let rent = client
        .rent_exempt(tensorgrid_client::state::Job::SPACE)
        .await
        .unwrap();
    assert_eq!(
        w.balance(&w.key("poster")).await,
        p + SOL / 2 + rent - c["fee"].as_u64().unwrap()
    );

    // A spec already hosted: --spec-uri with the same bytes posts without uploading.
    let (first, _) = w.post("poster", &spec, "0.5");
    let hosted_uri = client.job(&first).await.unwrap().unwrap().spec_uri;
    let hosted_bytes = fetch(&hosted_uri, 1 << 20, &ReadPolicy::default())
        .await
        .unwrap();
    let local_copy = w.dir.path().join("hosted-copy.json");
    std::fs::write(&local_copy, &hosted_bytes).unwrap();
    let v = w
        .post_run(
            "poster",
            local_copy.to_str().unwrap(),
            "0.5",
            "1h",
            &["--spec-uri", &hosted_uri],
        )
        .ok();
    let again = client.job(&address(&v, "job")).await.unwrap().unwrap();
    assert_eq!(again.spec_uri, hosted_uri);
    assert_eq!(
        hex::encode(again.spec_hash),
        tensorgrid_artifacts::sha256_hex(&hosted_bytes)
    );
    for j in [first, address(&v, "job")] {
        w.run("poster", &["job", "cancel", &j.to_string()]).ok();
    }

    // Dispute (no verifiers in this market: the draw hands it to the authority), then the
    // authority rules for the poster: refund, bond back and slash.
    let (job, _) = w.post("poster", &spec, "0.5");
    w.claim(job).await;
    w.work(job).await;
    let d = w
        .run(
            "poster",
            &["job", "dispute", &job.to_string(), "--segment", "0"],
        )
        .ok();
    assert_eq!(events(&d), ["disputed", "verifiers drawn"]);
    assert!(w
        .run(
            "other",
            &["job", "resolve", &job.to_string(), "--for", "poster"]
        )
        .failed()
        .contains("uthority"));
    let r = w
        .run(
            "authority",
            &["job", "resolve", &job.to_string(), "--for", "poster"],
        )
        .ok();
    assert_eq!(events(&r), ["refunded", "dispute closed"]);
    assert!(r["events"][0]["details"]["slashed"].as_u64().unwrap() > 0);

    // A missed deadline: a third party reclaims for the bounty.
    let (job, _) = w.post("poster", &spec, "0.5");
    w.claim(job).await;
    assert!(w
        .run("other", &["job", "reclaim", &job.to_string()])
        .failed()
        .contains("has until"));
    w.net.warp(3 * 3_600).await.unwrap();
    let o = w.balance(&w.key("other")).await;
    let r = w.run("other", &["job", "reclaim", "--all"]).ok();
    assert_eq!(r["candidates"], 1);
    let settled = &r["settled"][0];
    assert_eq!(events(settled), ["reclaimed"]);
    let bounty = settled["events"][0]["details"]["bounty"].as_u64().unwrap();
    assert!(bounty > 0);
    assert_eq!(
        w.balance(&w.key("other")).await,
        o + bounty - settled["fee"].as_u64().unwrap()
    );
    assert_eq!(
        client.job(&job).await.unwrap().unwrap().state,
        tensorgrid_client::state::JobState::Open
    );

    // The worker tops its stake up after the slashes; a submitted job finalizes after the window.
    w.run("worker", &["worker", "update", "--add-stake", "2"])
        .ok();
    let (job2, _) = w.post("poster", &spec, "0.5");
    w.claim(job2).await;
    w.work(job2).await;
    assert!(w
        .run("other", &["job", "finalize", &job2.to_string()])
        .failed()
        .contains("may dispute until"));
    w.net.warp(2 * 3_600).await.unwrap();
    let f = w.run("other", &["job", "finalize", "--all"]).ok();
    assert_eq!(f["settled"].as_array().unwrap().len(), 1);
    assert_eq!(events(&f["settled"][0]), ["paid"]);

    // Market administration by its authority.
    let m = w.run("other", &["market", "show"]).ok();
    assert_eq!(m["params"]["fee_bps"], 250);
    assert!(w
        .run("other", &["market", "pause"])
        .failed()
        .contains("uthority"));
    w.run("authority", &["market", "pause"]).ok();
    let posted = w.jobs_posted().await;
    assert!(w
        .post_run("poster", spec.to_str().unwrap(), "0.5", "1h", &[])
        .failed()
        .contains("paused"));
    assert_eq!(w.jobs_posted().await, posted);
    w.run("authority", &["market", "resume"]).ok();
    w.run(
        "authority",
        &[
            "market",
            "update",
            "--fee-bps",
            "300",
            "--challenge-window",
            "2h",
        ],
    )
    .ok();
    let m = w.run("other", &["market", "show"]).ok();
    assert_eq!(m["params"]["fee_bps"], 300);
    assert_eq!(m["params"]["challenge_window_s"], 7_200);
    let fees = m["fees_unclaimed"].as_u64().unwrap();
    assert!(fees > 0);
    let a = w.balance(&w.key("authority")).await;
    let wd = w.run("authority", &["market", "withdraw-fees"]).ok();
    assert_eq!(
        w.balance(&w.key("authority")).await,
        a + fees - wd["fee"].as_u64().unwrap()
    );

    // A second market: commands must now be told which one.
    let created = w
        .run(
            "other",
            &["market", "create", "--market-id", "7", "--fee-bps", "100"],
        )
        .ok();
    let second = address(&created, "market");
    assert_eq!(second, pda::market(&w.key("other"), 7).0);
    assert!(w
        .run("poster", &["job", "list"])
        .failed()
        .contains("--market"));
    let m = w
        .run(
            "poster",
            &["market", "show", "--market", &second.to_string()],
        )
        .ok();
    assert_eq!(m["params"]["fee_bps"], 100);
}

/// The TypeScript wallet script (scripts/post-job.ts, built by `npm run build`): posts a job
/// from a hosted spec with only the IDL and @anchor-lang/core, the Rust CLI shows that job,
/// and the script, waiting, exits 0 once the job is paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ts_wallet_script_posts_a_job_the_cli_shows_and_waits_until_paid() {
    use std::io::{BufRead, BufReader};

    let script = repo().join(".tsbuild/scripts/post-job.js");
    assert!(
        script.exists(),
        "{} is missing: run `npm ci && npm run build` (scripts/test.sh does)",
        script.display()
    );
    let w = world().await;
    w.register_worker();
    // A spec hosted by an earlier post (the CLI uploaded it with its dataset).
    let (first, _) = w.post("poster", &w.small_spec("small.json", 1), "0.5");
    let hosted = w.net.client().job(&first).await.unwrap().unwrap();

    let mut child = Command::new("node")
        .arg(&script)
        .args([
            "--url",
            w.net.rpc_url(),
            "--ws-url",
            w.net.ws_url(),
            "--keypair",
            w.keyfile("poster").to_str().unwrap(),
        ])
        .args([
            "--market",
            &w.market.to_string(),
            "--spec-uri",
            &hosted.spec_uri,
        ])
        .args([
            "--spec-sha256",
            &hex::encode(hosted.spec_hash),
            "--reward",
            "0.4",
        ])
        .args(["--max-duration", "3600", "--wait", "--timeout", "120"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("node must be installed to run the wallet script");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let posted: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(posted["step"], "posted", "{posted}");
    let job: Pubkey = posted["job"].as_str().unwrap().parse().unwrap();

    let shown = w.run("other", &["job", "show", &job.to_string()]).ok();
    assert_eq!(shown["account"]["state"], "open");
    assert_eq!(shown["account"]["reward"], 400_000_000u64);
    assert_eq!(shown["account"]["spec_uri"], hosted.spec_uri);
    assert_eq!(shown["account"]["spec_hash"], hex::encode(hosted.spec_hash));
    assert_eq!(
        shown["account"]["job_id"].to_string(),
        posted["job_id"].as_str().unwrap()
    );

    w.claim(job).await;
    w.work(job).await;
    w.run("poster", &["job", "accept", &job.to_string()]).ok();
    let rest = tokio::task::spawn_blocking(move || {
        let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
        (rest, child.wait().unwrap())
    })
    .await
    .unwrap();
    assert!(rest.1.success(), "script failed: {:?}", rest.0);
    let last: Value = serde_json::from_str(rest.0.last().unwrap()).unwrap();
    assert_eq!(last["step"], "jobPaid", "{:?}", rest.0);
    let steps: Vec<&str> = rest.0.iter().map(|l| l.as_str()).collect();
    assert_eq!(steps.len(), 4, "{steps:?}");
}
