//! Safe to join: the `tensorgrid-worker` binary on the embedded chain against what a hostile
//! poster, a lying RPC node or its own machine can do to it. Each test is an attack or a fault
//! from the outside review; the worker loses no stake to any of them.

mod common;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use base64::Engine;
use sha2::{Digest, Sha256};
use solana_signer::Signer;
use tensorgrid_client::{defaults::SOL, state::JobState};
use tensorgrid_localnet::testing::{RpcProxy, Verdict};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::*;

/// The worker's last status snapshot (`work_dir/status.json`).
fn status(rig: &Rig, name: &str) -> serde_json::Value {
    rig.status(name)
}

/// A market whose terms a provider would not sign: the worker refuses its jobs with the term
/// named, before fetching anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_outside_the_operators_terms_are_refused() {
    let _one = serial().lock().await;
    let rig = Rig::new().await;
    let (_op, key) = rig.operator("w1").await;
    // The authority switches to 5 × collateral and a 100 % slash before the post.
    rig.set_params(|p| {
        p.collateral_bps = 50_000;
        p.slash_bps = 10_000;
    })
    .await;
    let (uri, bytes) = rig.hosted_spec(|_| {}).await;
    let (job, _) = rig
        .post_as(&rig.poster, uri, Sha256::digest(&bytes).into(), 3_600)
        .await;
    let w = rig.spawn("w1", &key);
    wait_until("the refusal", 30, &w, || {
        refusals(&rig.work_dir("w1")).contains_key(&job.to_string())
    })
    .await;
    let r = &refusals(&rig.work_dir("w1"))[&job.to_string()];
    assert!(
        r["reason"].as_str().unwrap().contains("max_collateral_bps"),
        "{r}"
    );
    assert_eq!(r["kind"], "settings");
    assert_eq!(rig.job(&job).await.unwrap().state, JobState::Open);
}

/// A stake below the market's minimum (the authority raised it, or penalties took it) is
/// refilled from the operator's wallet only within `max_stake_topup_per_day_sol`: beyond it
/// claiming pauses (status says why), nothing is sent, the job is not refused; within it the
/// refill is made once, and refills add up over the day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stake_is_topped_up_only_within_the_daily_cap() {
    let _one = serial().lock().await;
    let rig = Rig::new().await;
    let (op, key) = rig.operator("w1").await;
    let mut w = rig.spawn("w1", &key);
    wait_until("registered", 60, &w, || {
        status(&rig, "w1")["stake_lamports"] == 2 * SOL
    })
    .await;
    assert!(w.terminate().success());
    rig.set_params(|p| p.min_stake = 3 * SOL).await;
    let (uri, bytes) = rig.hosted_spec(|_| {}).await;
    let (job, _) = rig
        .post_as(&rig.poster, uri, Sha256::digest(&bytes).into(), 3_600)
        .await;
    let wallet = rig.client().balance(&op.pubkey()).await.unwrap();

    // 1 SOL short, 0.5 SOL a day allowed: claims wait for the operator.
    let cap = |sol: &'static str| [("TENSORGRID_WORKER_MAX_STAKE_TOPUP_PER_DAY_SOL", sol)];
    let mut w = rig.spawn_env("w1", &key, &cap("0.5"));
    wait_until("claiming paused for the stake", 30, &w, || {
        status(&rig, "w1")["paused"]
            .as_str()
            .is_some_and(|p| p.contains("max_stake_topup_per_day_sol"))
    })
    .await;
    // Long enough for a check to pass and a claim to be tried, were one tried.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(
        status(&rig, "w1")["paused"]
            .as_str()
            .is_some_and(|p| p.contains("max_stake_topup_per_day_sol")),
        "the pause holds while the stake is short:\n{}",
        w.log()
    );
    assert!(!w.log().contains("claim refused"), "{}", w.log());
    assert!(w.terminate().success());
    assert_eq!(rig.job(&job).await.unwrap().state, JobState::Open);
    assert!(!refusals_exist(&rig, "w1", &job.to_string()));
    assert_eq!(rig.worker_account(&op).await.stake, 2 * SOL);
    assert_eq!(rig.client().balance(&op.pubkey()).await.unwrap(), wallet);

    // 1 SOL a day allowed: refilled by exactly the shortfall (and a transaction fee), then the
    // job is taken.
    let w = rig.spawn_env("w1", &key, &cap("1"));
    rig.wait_for(&job, Some(JobState::Submitted), 120, &[&w])
        .await;
    let account = rig.worker_account(&op).await;
    assert_eq!(account.stake, 3 * SOL);
    let spent = wallet - rig.client().balance(&op.pubkey()).await.unwrap();
    assert!((SOL..SOL + SOL / 100).contains(&spent), "{spent}");
    let mut w = w;
    assert!(w.terminate().success());

    // Short again the same day by 0.5 SOL: 1.5 SOL in a day is over the cap of 1.
    rig.set_params(|p| p.min_stake = 3 * SOL + SOL / 2).await;
    let w = rig.spawn_env("w1", &key, &cap("1"));
    wait_until("paused again", 30, &w, || {
        status(&rig, "w1")["paused"]
            .as_str()
            .is_some_and(|p| p.contains("1.5 SOL"))
    })
    .await;
    assert_eq!(rig.worker_account(&op).await.stake, 3 * SOL);
}

/// A payment that lands while the worker is down is found at its next start: logged with the
/// job and the amount, and shown in its status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_made_while_the_worker_was_down_is_logged_and_shown() {
    let _one = serial().lock().await;
    let rig = Rig::new().await;
    let (_op, key) = rig.operator("w1").await;
    let (uri, bytes) = rig.hosted_spec(|_| {}).await;
    let (job, _) = rig
        .post_as(&rig.poster, uri, Sha256::digest(&bytes).into(), 3_600)
        .await;
    let mut w = rig.spawn("w1", &key);
    let submitted = rig
        .wait_for(&job, Some(JobState::Submitted), 120, &[&w])
        .await
        .unwrap();
    assert!(w.terminate().success());
    rig.accept(&job).await;
    let payout = submitted.terms.payout(submitted.reward).unwrap().to_worker;
    // While it is down, its status says the job closed on chain since (not "waiting for
    // payment", the last thing it wrote).
    let shown = std::process::Command::new(env!("CARGO_BIN_EXE_tensorgrid-worker"))
        .args(["status", "-u", rig.net.rpc_url(), "--work-dir"])
        .arg(rig.work_dir("w1"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("not running") && text.contains("closed on chain since"),
        "{text}{}",
        String::from_utf8_lossy(&shown.stderr)
    );

    let w = rig.spawn("w1", &key);
    wait_until("the payment logged", 30, &w, || {
        w.log().lines().any(|l| {
            l.contains("\"message\":\"paid\"")
                && l.contains(&job.to_string())
                && l.contains(&format!("\"base_units\":{payout}"))
                && l.contains("\"amount\":\"0.4875 SOL\"")
        })
    })
    .await;
    wait_until("the payment in the status", 30, &w, || {
        status(&rig, "w1")["recent"].as_array().is_some_and(|r| {
            r.iter()
                .any(|e| e["kind"] == "paid" && e["lamports"] == payout)
        })
    })
    .await;
    // `tensorgrid-worker status` shows it to the operator.
    let shown = std::process::Command::new(env!("CARGO_BIN_EXE_tensorgrid-worker"))
        .args(["status", "--store", "s3://tensorgrid", "--work-dir"])
        .arg(rig.work_dir("w1"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("paid 0.4875 SOL") && text.contains(&job.to_string()),
        "{text}"
    );
}

/// A full work disk is the worker's own condition: claiming pauses (status and metrics say
/// why), the job is not claimed, no stake is lost; with room again, the job is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_pauses_claiming_and_costs_no_stake() {
    let _one = serial().lock().await;
    let rig = Rig::new().await;
    let (op, key) = rig.operator("w1").await;
    let (uri, bytes) = rig.hosted_spec(|_| {}).await;
    let (job, _) = rig
        .post_as(&rig.poster, uri, Sha256::digest(&bytes).into(), 3_600)
        .await;
    // "Keep 1 PiB free": no disk has that much, so the disk is as good as full.
    let mut w = rig.spawn_env(
        "w1",
        &key,
        &[("TENSORGRID_WORKER_MIN_FREE_DISK_MIB", "1073741824")],
    );
    wait_until("claiming paused", 30, &w, || {
        status(&rig, "w1")["paused"]
            .as_str()
            .is_some_and(|p| p.contains("MiB free"))
    })
    .await;
    assert!(w.log().contains("claiming paused"));
    assert_eq!(rig.job(&job).await.unwrap().state, JobState::Open);
    assert!(
        !refusals_exist(&rig, "w1", &job.to_string()),
        "a full disk is not the job's fault"
    );
    assert!(w.terminate().success());
    let account = rig.worker_account(&op).await;
    assert_eq!((account.stake, account.record.jobs_abandoned), (2 * SOL, 0));
    // Room again: taken and done.
    let w = rig.spawn("w1", &key);
    rig.wait_for(&job, Some(JobState::Submitted), 120, &[&w])
        .await;
}

fn refusals_exist(rig: &Rig, name: &str, job: &str) -> bool {
    std::fs::read(rig.work_dir(name).join("rejected.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v.get(job).is_some())
}

/// Rewrites the clock sysvar in a `getAccountInfo` answer: `secs` later than the chain's.
fn clock_ahead(secs: i64) -> Verdict {
    Verdict::Rewrite(Arc::new(move |mut v: serde_json::Value| {
        let b64 = base64::engine::general_purpose::STANDARD;
        if let Some(data) = v["result"]["value"]["data"][0].as_str() {
            if let Ok(mut bytes) = b64.decode(data) {
                if bytes.len() >= 40 {
                    let t = i64::from_le_bytes(bytes[32..40].try_into().unwrap()) + secs;
                    bytes[32..40].copy_from_slice(&t.to_le_bytes());
                    v["result"]["value"]["data"][0] = b64.encode(bytes).into();
                }
            }
        }
        v
    }))
}

/// An RPC node whose clock runs 2 h ahead, first in the worker's list, would have made it
/// give a job back as out of time (paying the abandon penalty) right after claiming. The
/// worker acts on the earliest clock its endpoints show: it trains, submits, loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_clock_runs_two_hours_ahead_does_not_make_the_worker_give_up() {
    let _one = serial().lock().await;
    let rig = Rig::new().await;
    let (op, key) = rig.operator("w1").await;
    let proxy = RpcProxy::start(rig.net.rpc_url()).await.unwrap();
    proxy.set_rule(|req: &serde_json::Value| {
        let clock = "SysvarC1ock11111111111111111111111111111111";
        if req["method"] == "getAccountInfo" && req["params"][0] == clock {
            clock_ahead(7_200)
        } else {
            Verdict::Forward
        }
    });
    let (uri, bytes) = rig.hosted_spec(cnn(6)).await;
    let (job, _) = rig
        .post_as(&rig.poster, uri, Sha256::digest(&bytes).into(), 3_600)
        .await;
    let urls = format!("{},{}", proxy.url(), rig.net.rpc_url());
    let w = rig.spawn_via("w1", &key, &urls, rig.net.ws_url(), &[]);
    rig.wait_for(&job, Some(JobState::Submitted), 180, &[&w])
        .await;
    assert!(!w.log().contains("abandoning"), "{}", w.log());
    let account = rig.worker_account(&op).await;
    assert_eq!((account.stake, account.record.jobs_abandoned), (2 * SOL, 0));
}

/// A web server that answers any request with a 200 and then a body of one byte every 3 s.
async fn trickling_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4000\r\n\r\n")
                    .await;
                for _ in 0..4000 {
                    if s.write_all(b" ").await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(3)).await;
                }
            });
        }
    });
    format!("http://{addr}")
}

/// A web server of the review's hostile datasets: `/endless.csv` answers a HEAD with a
/// length of 100 and a GET with a body that never ends; `/bomb.csv` answers with a gzip
/// `Content-Encoding` whose few kilobytes inflate to 16 MB, sixteen times the spec's cap.
async fn hostile_data_server() -> String {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let chunk = "1,2,0\n".repeat(10_000);
    for _ in 0..(16 << 20) / chunk.len() {
        gz.write_all(chunk.as_bytes()).unwrap();
    }
    let bomb = Arc::new(gz.finish().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let bomb = bomb.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).to_string();
                if request.starts_with("HEAD") {
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
                        .await;
                } else if request.contains("/bomb.csv") {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: {}\r\n\r\n",
                        bomb.len()
                    );
                    let _ = s.write_all(head.as_bytes()).await;
                    let _ = s.write_all(&bomb).await;
                } else {
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n")
                        .await;
                    let rows = "1,2,0\n".repeat(10_000);
                    while s.write_all(rows.as_bytes()).await.is_ok() {}
                }
            });
        }
    });
    format!("http://{addr}")
}

/// Review: a server that answers HEAD small and streams forever on GET, and a gzip bomb, were
/// both claimed and then abandoned. Each is now refused before claiming (the download is
/// capped as it streams, inflated or not), the worker stays up, loses nothing, and takes the
/// honest job posted after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_download_and_a_gzip_bomb_are_refused_before_claiming() {
    let _one = serial().lock().await;
    let rig = Rig::new().await;
    let (op, key) = rig.operator("w1").await;
    let server = hostile_data_server().await;
    let mut hostile = Vec::new();
    for path in ["endless.csv", "bomb.csv"] {
        let (uri, bytes) = rig
            .hosted_spec(|v| {
                v["dataset"]["uri"] = format!("{server}/{path}").into();
                v["dataset"]["sha256"] = "ab".repeat(32).into();
                v["dataset"]["format"] = serde_json::json!({"kind": "csv"});
            })
            .await;
        let (job, _) = rig
            .post_as(&rig.poster, uri, Sha256::digest(&bytes).into(), 3_600)
            .await;
        hostile.push(job);
    }
    let (uri, bytes) = rig.hosted_spec(|_| {}).await;
    let (good, _) = rig
        .post_as(&rig.poster, uri, Sha256::digest(&bytes).into(), 3_600)
        .await;
    let w = rig.spawn("w1", &key);
    rig.wait_for(&good, Some(JobState::Submitted), 120, &[&w])
        .await;
    wait_until("both hostile datasets refused", 60, &w, || {
        let r = refusals(&rig.work_dir("w1"));
        hostile.iter().all(|j| r.contains_key(&j.to_string()))
    })
    .await;
    for job in &hostile {
        assert_eq!(
            rig.job(job).await.unwrap().state,
            JobState::Open,
            "{job} claimed"
        );
        // Capped while streaming: the body (inflated, for the bomb) is over the spec's limit.
        let r = &refusals(&rig.work_dir("w1"))[&job.to_string()];
        let reason = r["reason"].as_str().unwrap();
        assert!(
            reason.contains("larger than the limit of 1000000 bytes"),
            "{r}"
        );
        assert_eq!(r["kind"], "poster", "the spec's own cap: {r}");
    }
    let account = rig.worker_account(&op).await;
    assert_eq!(
        (
            account.stake,
            account.record.jobs_abandoned,
            account.record.total_slashed
        ),
        (2 * SOL, 0, 0)
    );
    // Nothing of either download is left in the dataset cache.
    let cache = rig.work_dir("w1").join("datasets");
    let left: u64 = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    assert!(left < 10 << 20, "{left} bytes left in {}", cache.display());
}

/// Jobs found together are taken best-paying first: three checked side by side, the one that
/// pays most is claimed first, whatever order they were posted in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_best_paying_job_is_claimed_first() {
    let _one = serial().lock().await;
    let rig = Rig::new().await;
    let (_op, key) = rig.operator("w1").await;
    let mut jobs = Vec::new();
    for (i, reward) in [3 * SOL / 10, 9 * SOL / 10, 5 * SOL / 10]
        .into_iter()
        .enumerate()
    {
        let (uri, bytes) = rig
            .hosted_spec(|v| v["training"]["seed"] = (500 + i).into())
            .await;
        let (job, _) = rig
            .post_paying(
                &rig.poster,
                uri,
                Sha256::digest(&bytes).into(),
                3_600,
                reward,
            )
            .await;
        jobs.push(job);
    }
    let w = rig.spawn("w1", &key);
    let started = Instant::now();
    let first = loop {
        let mut claimed = Vec::new();
        for job in &jobs {
            if rig.job(job).await.unwrap().state != JobState::Open {
                claimed.push(*job);
            }
        }
        if !claimed.is_empty() {
            break claimed;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "nothing claimed:\n{}",
            w.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(first, vec![jobs[1]], "the 0.9 SOL job first:\n{}", w.log());
}

/// Review: eight cheap jobs whose specs arrive a byte every 3 s, checked one at a time for
/// 30 s each, kept a good job waiting 262 s. Checks now run side by side and a spec must
/// arrive within 10 s: the good job posted after them is claimed within seconds, and the
/// trickling ones are refused as unreachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_trickling_specs_do_not_hold_up_a_good_job() {
    let _one = serial().lock().await;
    let rig = Rig::new().await;
    let (_op, key) = rig.operator("w1").await;
    let w = rig.spawn("w1", &key);
    // Registered and watching before the posts.
    wait_until("registered", 60, &w, || w.log().contains("\"registered\"")).await;
    let slow = trickling_server().await;
    let mut slow_jobs = Vec::new();
    for i in 0..8 {
        let (job, _) = rig
            .post_as(
                &rig.poster,
                format!("{slow}/spec-{i}.json"),
                [i + 1; 32],
                3_600,
            )
            .await;
        slow_jobs.push(job);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (uri, bytes) = rig.hosted_spec(|_| {}).await;
    let posted = Instant::now();
    let (good, _) = rig
        .post_as(&rig.poster, uri, Sha256::digest(&bytes).into(), 3_600)
        .await;
    rig.wait_for(&good, Some(JobState::Claimed), 60, &[&w])
        .await;
    let waited = posted.elapsed();
    assert!(
        waited < Duration::from_secs(8),
        "the good job waited {waited:?}:\n{}",
        w.log()
    );
    // Once the good job is paid the worker is free, and the trickling ones are refused.
    rig.wait_for(&good, Some(JobState::Submitted), 60, &[&w])
        .await;
    rig.accept(&good).await;
    wait_until("the trickling specs refused", 60, &w, || {
        let r = refusals(&rig.work_dir("w1"));
        slow_jobs.iter().all(|j| r.contains_key(&j.to_string()))
    })
    .await;
    for j in &slow_jobs {
        let r = &refusals(&rig.work_dir("w1"))[&j.to_string()];
        assert_eq!(r["kind"], "unreachable", "{r}");
        assert_eq!(rig.job(j).await.unwrap().state, JobState::Open);
    }
    // The server is remembered: its next job is refused at once, not waited on again.
    let (ninth, _) = rig
        .post_as(&rig.poster, format!("{slow}/spec-9.json"), [99; 32], 3_600)
        .await;
    let posted = Instant::now();
    wait_until("the ninth refused", 30, &w, || {
        refusals(&rig.work_dir("w1")).contains_key(&ninth.to_string())
    })
    .await;
    assert!(
        posted.elapsed() < Duration::from_secs(5),
        "{:?}",
        posted.elapsed()
    );
    let r = &refusals(&rig.work_dir("w1"))[&ninth.to_string()];
    assert!(
        r["reason"].as_str().unwrap().contains("did not answer for"),
        "{r}"
    );

    // Restarted, it still remembers the server: a tenth job there is refused at once too.
    let mut w = w;
    assert!(w.terminate().success());
    let w = rig.spawn("w1", &key);
    wait_until("registered again", 60, &w, || {
        w.log().matches("\"registered\"").count() >= 1
    })
    .await;
    let (tenth, _) = rig
        .post_as(
            &rig.poster,
            format!("{slow}/spec-10.json"),
            [100; 32],
            3_600,
        )
        .await;
    let posted = Instant::now();
    wait_until("the tenth refused", 30, &w, || {
        refusals(&rig.work_dir("w1")).contains_key(&tenth.to_string())
    })
    .await;
    assert!(
        posted.elapsed() < Duration::from_secs(5),
        "{:?}",
        posted.elapsed()
    );
    let r = &refusals(&rig.work_dir("w1"))[&tenth.to_string()];
    assert!(
        r["reason"].as_str().unwrap().contains("did not answer for"),
        "{r}"
    );
}

/// A job whose training kills the process every time (as an out-of-memory kill would) is
/// not resumed into the same death forever: after three crashed runs it is given back (the
/// abandon penalty, not the deadline's slash) and remembered against its poster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_crashes_the_worker_again_and_again_is_given_back() {
    let _one = serial().lock().await;
    let rig = Rig::new().await;
    let (op, key) = rig.operator("w1").await;
    let (uri, bytes) = rig.hosted_spec(cnn(60)).await;
    let (job, _) = rig
        .post_as(&rig.poster, uri, Sha256::digest(&bytes).into(), 3_600)
        .await;
    let dir = rig.work_dir("w1").join("jobs").join(job.to_string());
    let crashes = || {
        std::fs::read_to_string(dir.join("crashes"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(0)
    };
    for run in 0..3 {
        let mut w = rig.spawn("w1", &key);
        // In training: the marker of this run (the count moved past the last run's crash).
        wait_until("training", 120, &w, || {
            dir.join("training").exists() && crashes() == run
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        w.kill();
    }
    let w = rig.spawn("w1", &key);
    rig.wait_for(&job, Some(JobState::Open), 60, &[&w]).await;
    wait_until("the give-up logged", 30, &w, || {
        w.log().contains("crashed the worker 3 times")
    })
    .await;
    let account = rig.worker_account(&op).await;
    assert_eq!(account.record.jobs_abandoned, 1);
    assert_eq!(account.record.deadlines_missed, 0);
    // Remembered as a crash: lasting, but not counted against the poster (a crash can be
    // this machine's own doing).
    let r = &refusals(&rig.work_dir("w1"))[&job.to_string()];
    assert_eq!(r["kind"], "crashed", "{r}");
    assert_eq!(r["poster"], rig.poster.pubkey().to_string());
}

/// A panic while checking a job (an engine bug on a stranger's input) is a refusal of that
/// job, not the end of the daemon; an abort (which no unwinding catches) ends the process,
/// and the next start refuses the job instead of checking it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_crashes_its_check_is_refused_not_retried() {
    let _one = serial().lock().await;
    let rig = Rig::new().await;
    let (_op, key) = rig.operator("w1").await;
    let (uri, bytes) = rig.hosted_spec(|_| {}).await;
    let (first, _) = rig
        .post_as(&rig.poster, uri, Sha256::digest(&bytes).into(), 3_600)
        .await;
    let (rpc, ws) = (rig.net.rpc_url(), rig.net.ws_url());
    let mut w = rig.spawn_via(
        "w1",
        &key,
        rpc,
        ws,
        &[("TENSORGRID_WORKER_FAULT_IN_CHECK", "panic")],
    );
    wait_until("the panic refused", 60, &w, || {
        refusals(&rig.work_dir("w1")).contains_key(&first.to_string())
    })
    .await;
    let r = &refusals(&rig.work_dir("w1"))[&first.to_string()];
    assert!(
        r["reason"].as_str().unwrap().contains("crashed its check"),
        "{r}"
    );
    assert!(w.child.try_wait().unwrap().is_none(), "the daemon runs on");
    assert!(w.terminate().success());

    let (uri, bytes) = rig
        .hosted_spec(|v| v["training"]["epochs"] = 2.into())
        .await;
    let (second, _) = rig
        .post_as(&rig.poster, uri, Sha256::digest(&bytes).into(), 3_600)
        .await;
    let mut w = rig.spawn_via(
        "w1",
        &key,
        rpc,
        ws,
        &[("TENSORGRID_WORKER_FAULT_IN_CHECK", "abort")],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while w.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "no abort:\n{}", w.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rig.job(&second).await.unwrap().state, JobState::Open);
    // Restarted without the fault: the job that was being checked is refused, not checked.
    let w = rig.spawn("w1", &key);
    wait_until("the crash remembered", 30, &w, || {
        w.log().contains("crashed while checking this job")
    })
    .await;
    let r = &refusals(&rig.work_dir("w1"))[&second.to_string()];
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("crashed the worker during its check"),
        "{r}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(rig.job(&second).await.unwrap().state, JobState::Open);
}
