//! The `tensorgrid-worker` binary against the embedded chain's JSON-RPC and websocket and the
//! local S3 server, as a provider runs it: it registers, finds jobs, refuses hostile ones
//! before claiming, trains, publishes, submits and is paid; it survives SIGKILL during
//! training and a crash between upload and submission with the same result hash, paid once;
//! two workers share the jobs; a proxy that drops 30% of requests and cuts the websocket does
//! not stop it; a missed deadline ends in a third party's reclaim and the worker goes on.
//!
//! The tests take a lock: each trains on the CPU, and two at once would only slow both.

mod common;

use std::{
    net::SocketAddr,
    process::Command,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use rand::Rng;
use sha2::{Digest, Sha256};
use solana_signer::Signer;
use tensorgrid_client::{defaults::SOL, instructions as ix, state::JobState};

use common::*;
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
    // A CNN the review's worker estimated at 7 s and claimed (widths of a million).
    let huge_cnn = rig
        .post_spec(|v| {
            v["model"] = serde_json::json!({
                "kind": "cnn", "input_shape": [1, 8, 8], "channels": [1_000_000, 1_000_000]
            })
        })
        .await;
    // Then an honest one, from another wallet: five refusals of the first poster's jobs
    // bar that poster (checks run concurrently, so its honest job could be checked after
    // three of them and be refused for its poster, rightly).
    let honest = rig.net.funded(10 * SOL).await.unwrap();
    let (uri, bytes) = rig.hosted_spec(|_| {}).await;
    let (good, _) = rig
        .post_as(&honest, uri, Sha256::digest(&bytes).into(), 3_600)
        .await;

    let w = rig.spawn("w1", &key);
    rig.wait_for(&good, Some(JobState::Submitted), 120, &[&w])
        .await;
    for job in [mismatch, local, big, invalid, huge_cnn] {
        assert_eq!(
            rig.job(&job).await.unwrap().state,
            JobState::Open,
            "{job} was claimed"
        );
    }
    let rejected = refusals(&rig.work_dir("w1"));
    for (job, why) in [
        (mismatch, "spec hash mismatch"),
        (local, "never local files"),
        (big, "over the cap"),
        (invalid, "invalid spec"),
        (huge_cnn, "invalid spec"),
    ] {
        let r = rejected
            .get(&job.to_string())
            .unwrap_or_else(|| panic!("{job} not recorded: {rejected:?}"));
        let reason = r["reason"].as_str().unwrap();
        assert!(reason.contains(why), "{job}: {reason}");
        assert!(w.log().contains(why), "the reason is logged");
    }
}

/// The review's jobs that were claimed and then lost, each for its poster's reasons: each is
/// now refused before claiming, with the reason, remembered against the poster; the worker
/// loses nothing, then takes and finishes an honest job; restarted, it does not look at them
/// again; and the same poster's next job is refused without a download.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_that_would_fail_for_their_posters_reasons_are_never_claimed() {
    let _one = serial().lock().await;
    let rig = Rig::new().await;
    let (op, key) = rig.operator("w1").await;
    let hostile = rig.net.funded(50 * SOL).await.unwrap();
    let digits = std::fs::read(repo().join("data/digits.safetensors")).unwrap();
    let (digits_uri, _) = rig.hosted_dataset(digits).await;
    let post = |edit: Box<dyn FnOnce(&mut serde_json::Value) + Send>| {
        let (rig, hostile) = (&rig, &hostile);
        async move {
            let (uri, bytes) = rig.hosted_spec(edit).await;
            let hash: [u8; 32] = Sha256::digest(&bytes).into();
            rig.post_as(hostile, uri, hash, 3_600).await.0
        }
    };
    let dataset = |uri: String, sha: String, format: serde_json::Value| {
        move |v: &mut serde_json::Value| {
            v["dataset"]["uri"] = uri.into();
            v["dataset"]["sha256"] = sha.into();
            v["dataset"]["format"] = format;
        }
    };
    // The dataset is not the one the spec commits to.
    let wrong_hash = post(Box::new(dataset(
        digits_uri.clone(),
        "ab".repeat(32),
        serde_json::json!({"kind": "safetensors", "features": "images", "labels": "labels"}),
    )))
    .await;
    // A `.npy` whose header has no shape (this panicked the engine).
    let bad = npy(
        "{'descr': '<f4', 'fortran_order': False, 'shape': ), }",
        &[0; 64],
    );
    let (u, s) = rig.hosted_dataset(bad).await;
    let bad_npy = post(Box::new(dataset(u, s, serde_json::json!({"kind": "npy"})))).await;
    // A `.npy` whose shape claims far more data than there is.
    let lying = npy(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }",
        &[0; 64],
    );
    let (u, s) = rig.hosted_dataset(lying).await;
    let lying_npy = post(Box::new(dataset(u, s, serde_json::json!({"kind": "npy"})))).await;
    // A safetensors file whose features are a scalar (an index out of bounds before).
    let (u, s) = rig.hosted_dataset(scalar_safetensors()).await;
    let scalar = post(Box::new(dataset(
        u,
        s,
        serde_json::json!({"kind": "safetensors", "features": "images", "labels": "labels"}),
    )))
    .await;
    // An MLP of 32 × 8192: 2.1e9 parameters, about 60 GB to train, on a dataset of a few
    // rows (so that the time it takes does not refuse it first).
    let (u, s) = rig
        .hosted_dataset(b"1,2,0\n3,4,1\n5,6,0\n7,8,1\n".to_vec())
        .await;
    let huge = post(Box::new(move |v: &mut serde_json::Value| {
        dataset(u, s, serde_json::json!({"kind": "csv"}))(v);
        v["model"]["hidden"] = serde_json::json!(vec![8192; 32]);
        v["training"]["epochs"] = 1.into();
    }))
    .await;
    // Finite features of 1e15 with plain SGD at the highest learning rate allowed: a loss
    // that overflows (soon, or, with the large rows placed late, after the rehearsal's steps).
    // Not taken: the worker takes features up to 1e6 (the rehearsal's own catch of an early
    // divergence is tested in the engine).
    let csv: String = (0..200)
        .map(|i| format!("{}e15,{}e15,{}\n", i % 7, i % 5, i % 3))
        .collect();
    let (u, s) = rig.hosted_dataset(csv.into_bytes()).await;
    let huge_values = post(Box::new(move |v: &mut serde_json::Value| {
        dataset(u, s, serde_json::json!({"kind": "csv"}))(v);
        v["training"]["optimizer"] = serde_json::json!({"kind": "sgd", "lr": 10.0});
    }))
    .await;
    let hostile_jobs = [
        (wrong_hash, "dataset sha256"),
        (bad_npy, "bad shape"),
        (lying_npy, "needs more than"),
        (scalar, "must be (samples"),
        (huge, "training needs about"),
        (huge_values, "beyond 1e6"),
    ];
    // Then an honest job from the usual poster.
    let good = {
        let (uri, bytes) = rig.hosted_spec(|_| {}).await;
        rig.post_as(&rig.poster, uri, Sha256::digest(&bytes).into(), 3_600)
            .await
            .0
    };

    let w = rig.spawn_env(
        "w1",
        &key,
        &[("TENSORGRID_WORKER_MAX_JOB_MEMORY_MIB", "4096")],
    );
    rig.wait_for(&good, Some(JobState::Submitted), 120, &[&w])
        .await;
    wait_until("every hostile job refused", 60, &w, || {
        let r = refusals(&rig.work_dir("w1"));
        hostile_jobs
            .iter()
            .all(|(j, _)| r.contains_key(&j.to_string()))
    })
    .await;
    let rejected = refusals(&rig.work_dir("w1"));
    for (job, why) in hostile_jobs {
        assert_eq!(
            rig.job(&job).await.unwrap().state,
            JobState::Open,
            "{job} claimed"
        );
        let r = &rejected[&job.to_string()];
        let reason = r["reason"].as_str().unwrap();
        assert!(reason.contains(why), "{job}: {reason} (wanted {why})");
        let expected_kind = if why == "training needs about" || why == "beyond 1e6" {
            "settings"
        } else {
            "poster"
        };
        assert_eq!(r["kind"], expected_kind, "{job}: {r}");
        assert_eq!(r["poster"], hostile.pubkey().to_string());
    }
    // Nothing lost: the stake is whole, nothing abandoned, nothing slashed.
    let account = rig.worker_account(&op).await;
    assert_eq!(account.stake, 2 * SOL);
    assert_eq!(account.record.jobs_abandoned, 0);
    assert_eq!(account.record.total_slashed, 0);

    // Paid for the honest job, the worker is free again. The hostile poster's next job,
    // however good, is refused without being downloaded.
    rig.accept(&good).await;
    rig.wait_for(&good, None, 30, &[&w]).await;
    let next = {
        let (uri, bytes) = rig
            .hosted_spec(|v| v["training"]["epochs"] = 2.into())
            .await;
        rig.post_as(&hostile, uri, Sha256::digest(&bytes).into(), 3_600)
            .await
            .0
    };
    wait_until("the poster's next job refused", 30, &w, || {
        refusals(&rig.work_dir("w1")).contains_key(&next.to_string())
    })
    .await;
    let r = &refusals(&rig.work_dir("w1"))[&next.to_string()];
    assert_eq!(r["kind"], "blocked", "{r}");
    assert_eq!(rig.job(&next).await.unwrap().state, JobState::Open);

    // Restarted: the jobs refused as posted are not looked at again (their refusals last);
    // the one refused for this worker's memory is looked at again, and now refused for its
    // poster's record, without a download.
    let mut w = w;
    assert!(w.terminate().success());
    let w = rig.spawn_env(
        "w1",
        &key,
        &[("TENSORGRID_WORKER_MAX_JOB_MEMORY_MIB", "4096")],
    );
    wait_until("the settings refusals looked at again", 30, &w, || {
        w.log().contains(&format!("\"job\":\"{huge}\""))
            && w.log().contains(&format!("\"job\":\"{huge_values}\""))
    })
    .await;
    assert!(
        w.log().contains("jobs lately that could not be done"),
        "{}",
        w.log()
    );
    for (job, _) in hostile_jobs
        .into_iter()
        .filter(|(j, _)| *j != huge && *j != huge_values)
    {
        assert!(
            !w.log().contains(&format!("\"job\":\"{job}\"")),
            "{job} looked at again after the restart:\n{}",
            w.log()
        );
    }

    // A sybil claims the poisoned job and gives it back (a reopen, as the review's sybil
    // did to clear the bar): after the cooldown the job is open again, and still not taken.
    let sybil = rig.net.funded(10 * SOL).await.unwrap();
    let market = rig.market();
    rig.client()
        .send(
            &[ix::worker_register(
                sybil.pubkey(),
                market,
                tensorgrid_client::tensorgrid::instructions::WorkerRegisterArgs {
                    stake: 2 * SOL,
                    hardware: tensorgrid_client::defaults::cpu("sybil"),
                },
            )],
            &[&sybil],
        )
        .await
        .unwrap();
    let keys = ix::WorkerKeys {
        operator: sybil.pubkey(),
        market,
        worker: rig.worker_of(&sybil.pubkey()),
    };
    let offer = rig.job(&wrong_hash).await.unwrap().offer();
    rig.client()
        .send(&[ix::job_claim(keys, wrong_hash, offer)], &[&sybil])
        .await
        .unwrap();
    rig.client()
        .send(&[ix::job_abandon(keys, wrong_hash)], &[&sybil])
        .await
        .unwrap();
    rig.net
        .warp(tensorgrid_client::constants::REOPEN_COOLDOWN_S + 1)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let j = rig.job(&wrong_hash).await.unwrap();
    assert_eq!((j.state, j.reopens), (JobState::Open, 1));
    assert!(
        !w.log().contains(&format!("\"job\":\"{wrong_hash}\"")),
        "the poisoned job looked at again after a sybil's abandon:\n{}",
        w.log()
    );
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
    // The slash that landed while it was down is in its ledger, its status and its metric,
    // with the job and the amount.
    let slash = split.bounty + split.to_poster;
    let ledger = std::fs::read_to_string(rig.work_dir("w1").join("ledger.jsonl")).unwrap();
    let entries: Vec<serde_json::Value> = ledger
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        entries.iter().any(|e| e["kind"] == "deadline_slash"
            && e["job"] == job.to_string()
            && e["lamports"] == slash),
        "{ledger}"
    );
    let status = || -> serde_json::Value {
        std::fs::read(rig.work_dir("w1").join("status.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    };
    // status.json is rewritten every few seconds.
    wait_until("the slash in the status", 30, &w, || {
        status()["lost_lamports"] == slash
    })
    .await;
    let status = status();
    assert!(
        status["recent"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "deadline_slash" && e["job"] == job.to_string()),
        "{status}"
    );
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

/// A fine-tune: the worker fetches the job's tokenizer and initial weights (the shipped GPT-2
/// base, hosted in the store) with its dataset, trains from them and submits; the result
/// names the weights it grew from. The same job whose weights are not the ones it names is
/// refused before claiming, as the poster's fault, and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finetune_is_trained_from_its_hosted_weights_and_wrong_weights_are_refused() {
    let _one = serial().lock().await;
    let rig = Rig::new().await;
    let (op, key) = rig.operator("w1").await;
    let base = repo().join("data/kjv-gpt2");
    let tokenizer = std::fs::read(base.join("tokenizer.json")).unwrap();
    let weights = std::fs::read(base.join("model.safetensors")).unwrap();
    let (tk_uri, tk_sha) = rig.hosted_dataset(tokenizer.clone()).await;
    let (w_uri, w_sha) = rig.hosted_dataset(weights.clone()).await;
    // The first 100 kB of the new text, at a line's end.
    let text = std::fs::read(repo().join("data/web-nt.txt")).unwrap();
    let cut = text[..100_000].iter().rposition(|b| *b == b'\n').unwrap() + 1;
    let (d_uri, d_sha) = rig.hosted_dataset(text[..cut].to_vec()).await;
    let shipped: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join("jobs/kjv-gpt2-web.json")).unwrap())
            .unwrap();
    let finetune = move |init_sha: String| {
        let mut v = shipped.clone();
        v["dataset"]["uri"] = d_uri.clone().into();
        v["dataset"]["sha256"] = d_sha.clone().into();
        v["dataset"]["format"]["tokenizer"] =
            serde_json::json!({"uri": tk_uri, "sha256": tk_sha, "bytes": tokenizer.len()});
        v["model"]["init"] =
            serde_json::json!({"uri": w_uri, "sha256": init_sha, "bytes": weights.len()});
        v["training"]["steps"] = 6.into();
        v["training"]["batch_size"] = 4.into();
        v["training"]["eval_every"] = 3.into();
        v["training"]["commit_every"] = 3.into();
        v["training"]["checkpoint_every"] = 0.into();
        v["evaluation"]["threshold"] = 1e9.into();
        move |s: &mut serde_json::Value| *s = v
    };
    let hostile = rig.net.funded(10 * SOL).await.unwrap();
    let wrong = {
        let (uri, bytes) = rig.hosted_spec(finetune.clone()("ab".repeat(32))).await;
        rig.post_as(&hostile, uri, Sha256::digest(&bytes).into(), 3_600)
            .await
            .0
    };
    let good = {
        let (uri, bytes) = rig.hosted_spec(finetune(w_sha.clone())).await;
        rig.post_as(&rig.poster, uri, Sha256::digest(&bytes).into(), 3_600)
            .await
            .0
    };
    let mut w = rig.spawn("w1", &key);
    let done = rig
        .wait_for(&good, Some(JobState::Submitted), 180, &[&w])
        .await
        .unwrap();
    wait_until("the wrong weights refused", 60, &w, || {
        refusals(&rig.work_dir("w1")).contains_key(&wrong.to_string())
    })
    .await;
    let r = &refusals(&rig.work_dir("w1"))[&wrong.to_string()];
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.contains("model.init") && reason.contains("sha256 is"),
        "{reason}"
    );
    assert_eq!(r["kind"], "poster", "{r}");
    assert_eq!(rig.job(&wrong).await.unwrap().state, JobState::Open);
    // The published manifest names the initial weights.
    let bytes = published_manifest(&done).await;
    let m: tensorgrid_train::manifest::Manifest = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(m.init_sha256.as_deref(), Some(w_sha.as_str()));
    let account = rig.worker_account(&op).await;
    assert_eq!(account.stake, 2 * SOL);
    assert_eq!(account.record.jobs_abandoned, 0);
    assert!(w.terminate().success(), "{}", w.log());
}

/// A sharded dataset: the worker checks the index and fetches only its evaluation shard and
/// the first training shard before claiming; it trains streaming the rest from the store and
/// submits. An index whose evaluation shard is not the bytes it names, one that points
/// outside its folder, and one with a shard over the worker's cap are refused before claiming.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_job_is_checked_on_its_first_shards_and_trained_streaming() {
    let _one = serial().lock().await;
    let rig = Rig::new().await;
    let (op, key) = rig.operator("w1").await;
    // u16 token shards of a learnable sequence: 5 to train on, the last held out.
    let mut x = 1u32;
    let shards: Vec<Vec<u8>> = [900usize, 700, 1_100, 800, 600, 500]
        .iter()
        .map(|&n| {
            (0..n)
                .flat_map(|_| {
                    x = (x * 5 + 3) % 61;
                    (x as u16).to_le_bytes()
                })
                .collect()
        })
        .collect();
    // Hosts the shards under `folder`, as listed (uri, bytes), and their index; returns the
    // index's URI and sha256.
    let host = |folder: &'static str, list: Vec<(String, Vec<u8>)>| {
        let rig = &rig;
        async move {
            let mut entries = Vec::new();
            for (name, bytes) in list {
                let sha = hex::encode(Sha256::digest(&bytes));
                rig.store
                    .put(&format!("{folder}/{name}"), bytes.clone())
                    .await
                    .unwrap();
                entries.push(serde_json::json!({"uri": name, "sha256": sha, "bytes": bytes.len()}));
            }
            let index = serde_json::to_vec(&serde_json::json!({ "shards": entries })).unwrap();
            let sha = hex::encode(Sha256::digest(&index));
            let uri = rig
                .store
                .put(&format!("{folder}/index.json"), index)
                .await
                .unwrap();
            (uri, sha)
        }
    };
    let named: Vec<(String, Vec<u8>)> = shards
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("part-{i}.bin"), s.clone()))
        .collect();
    let spec = |(uri, sha): (String, String)| {
        move |v: &mut serde_json::Value| {
            v["dataset"] = serde_json::json!({
                "uri": uri, "sha256": sha,
                "format": {"kind": "shards", "eval_shards": 1,
                           "shard_format": {"kind": "tokens", "dtype": "u16", "vocab_size": 64}}
            });
            v["model"] = serde_json::json!({"kind": "gpt2", "layers": 1, "d_model": 32, "heads": 2, "context": 16});
            v["training"] = serde_json::json!({
                "steps": 40, "batch_size": 8, "eval_every": 20, "commit_every": 10,
                "optimizer": {"kind": "adamw", "lr": 0.003}, "seed": 3
            });
            v["evaluation"] = serde_json::json!({"metric": "perplexity", "threshold": 1000.0});
        }
    };
    let good_index = host("datasets/good", named.clone()).await;
    // The held-out shard is not the bytes the index names.
    let mut altered = named.clone();
    altered[5].1[0] ^= 1;
    let (bad_uri, bad_sha) = host("datasets/altered", named.clone()).await;
    rig.store
        .put("datasets/altered/part-5.bin", altered[5].1.clone())
        .await
        .unwrap();
    // A shard named outside the index's folder.
    let mut escaping = named.clone();
    escaping[2].0 = "../good/part-2.bin".into();
    let escaping_index = host("datasets/escaping", escaping).await;
    // A training shard over this worker's own cap on what it reads whole (3,000 bytes here).
    let mut large = named.clone();
    large[1].1 = shards[2].iter().chain(&shards[3]).copied().collect();
    let large_index = host("datasets/large", large).await;

    let hostile = rig.net.funded(10 * SOL).await.unwrap();
    let mut posted = Vec::new();
    for index in [(bad_uri, bad_sha), escaping_index, large_index] {
        let (uri, bytes) = rig.hosted_spec(spec(index)).await;
        posted.push(
            rig.post_as(&hostile, uri, Sha256::digest(&bytes).into(), 3_600)
                .await
                .0,
        );
    }
    let good = {
        let (uri, bytes) = rig.hosted_spec(spec(good_index.clone())).await;
        rig.post_as(&rig.poster, uri, Sha256::digest(&bytes).into(), 3_600)
            .await
            .0
    };
    let mut w = rig.spawn_env(
        "w1",
        &key,
        &[("TENSORGRID_WORKER_MAX_DATASET_BYTES", "3000")],
    );
    wait_until("the bad indexes refused", 90, &w, || {
        let r = refusals(&rig.work_dir("w1"));
        posted.iter().all(|j| r.contains_key(&j.to_string()))
    })
    .await;
    let r = refusals(&rig.work_dir("w1"));
    for (job, (why, kind)) in posted.iter().zip([
        ("sha256 is", "poster"),
        ("not a URI", "poster"),
        ("part-1.bin is 3800 bytes, over the cap of 3000", "settings"),
    ]) {
        let reason = r[&job.to_string()]["reason"].as_str().unwrap();
        assert!(reason.contains(why), "{job}: {reason} (wanted {why})");
        assert_eq!(r[&job.to_string()]["kind"], kind, "{reason}");
        assert_eq!(rig.job(job).await.unwrap().state, JobState::Open);
    }
    let done = rig
        .wait_for(&good, Some(JobState::Submitted), 180, &[&w])
        .await
        .unwrap();
    // Trained on every training shard, each verified into the cache by its hash.
    let cache = rig.work_dir("w1").join("datasets");
    for s in &shards[..5] {
        let sha = hex::encode(Sha256::digest(s));
        assert!(cache.join(&sha).is_file(), "shard {sha} not in the cache");
    }
    published_manifest(&done).await;
    let account = rig.worker_account(&op).await;
    assert_eq!(account.stake, 2 * SOL);
    assert_eq!(account.record.jobs_abandoned, 0);
    assert!(w.terminate().success(), "{}", w.log());
}
