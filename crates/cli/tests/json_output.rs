//! The JSON every command prints with `--output json` keeps its shape: field names and types
//! are pinned in `tests/json/COMMAND.json` (a program that reads them must not break when the
//! CLI changes). A change of shape fails here; after a deliberate one, run with
//! `TENSORGRID_BLESS=1` to write the new shapes and review the diff. `job verify`'s is pinned
//! where a real result is verified (tests/scenarios.rs).

mod common;

use std::collections::BTreeMap;

use common::World;
use serde_json::Value;
use tensorgrid_client::{
    anchor_lang::prelude::Pubkey,
    instructions::{self as ix, WorkerKeys},
    pda,
    tensorgrid::instructions::JobSubmitArgs,
};

struct Shapes {
    seen: BTreeMap<String, Value>,
}

impl Shapes {
    fn record(&mut self, name: &str, output: &Value) {
        assert!(
            self.seen.insert(name.into(), output.clone()).is_none(),
            "{name} twice"
        );
    }

    /// Compares every shape with its pinned file (or writes them when blessing); lists all
    /// differences at once.
    fn check(self) {
        let wrong: Vec<String> = self
            .seen
            .iter()
            .filter_map(|(name, output)| common::check_shape(name, output).err())
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}

/// `tensorgrid ARGS --output json-compact` with no chain flags (the local commands); its
/// JSON lines.
fn local(w: &World, args: &[&str]) -> Vec<Value> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tensorgrid"))
        .args(args)
        .args(["--output", "json-compact"])
        .current_dir(w.dir.path())
        .env("HOME", w.dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{args:?}: {e}: {l}")))
        .collect()
}

fn keys(w: &World, who: &str) -> WorkerKeys {
    let operator = w.key(who);
    WorkerKeys {
        operator,
        market: w.market,
        worker: pda::worker(&w.market, &operator).0,
    }
}

async fn claim(w: &World, job: Pubkey) {
    let offer = w.net.client().job(&job).await.unwrap().unwrap().offer();
    w.net
        .client()
        .send(
            &[ix::job_claim(keys(w, "worker"), job, offer)],
            &[w.net.account("worker")],
        )
        .await
        .unwrap();
}

async fn submit(w: &World, job: Pubkey) {
    // A manifest committing to two training states: what a dispute quotes.
    let manifest = serde_json::to_vec(&serde_json::json!({
        "commitments": {"state_hashes": ["11".repeat(32), "22".repeat(32), "33".repeat(32)]}
    }))
    .unwrap();
    let store = tensorgrid_artifacts::Store::open(&format!(
        "s3://{}",
        tensorgrid_localnet::s3::LOCAL_BUCKET
    ))
    .unwrap();
    let key = format!("results/{job}/manifest.json");
    let result_uri = store.put(&key, manifest.clone()).await.unwrap();
    use sha2::Digest;
    let args = JobSubmitArgs {
        result_hash: sha2::Sha256::digest(&manifest).into(),
        result_uri,
        reported_metric: 900_000,
    };
    w.net
        .client()
        .send(
            &[ix::job_submit(keys(w, "worker"), job, args)],
            &[w.net.account("worker")],
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_commands_json_keeps_its_shape() {
    let w = World::with_accounts(&["poster", "worker", "crank"]).await;
    let mut s = Shapes {
        seen: BTreeMap::new(),
    };
    let spec = w.small_spec("small.json", 1);
    let spec = spec.to_str().unwrap();
    let post = |w: &World| -> (Pubkey, Value) {
        let v = w.post_run("poster", spec, "0.5", "1h", &["--yes"]).ok();
        (common::address(&v, "job"), v)
    };

    s.record("market_show", &w.run("poster", &["market", "show"]).ok());
    s.record(
        "worker_register",
        &w.run(
            "worker",
            &[
                "worker", "register", "--stake", "2", "--device", "cpu", "--yes",
            ],
        )
        .ok(),
    );
    s.record("worker_show", &w.run("worker", &["worker", "show"]).ok());

    // Accepted.
    let (job, posted) = post(&w);
    s.record("job_post", &posted);
    s.record("job_list", &w.run("poster", &["job", "list"]).ok());
    s.record(
        "job_show",
        &w.run("poster", &["job", "show", &job.to_string()]).ok(),
    );
    claim(&w, job).await;
    submit(&w, job).await;
    s.record(
        "job_accept",
        &w.run("poster", &["job", "accept", &job.to_string(), "--yes"])
            .ok(),
    );
    s.record(
        "job_watch",
        &w.run("poster", &["job", "watch", &job.to_string()]).ok(),
    );
    s.record(
        "job_list_all",
        &w.run("poster", &["job", "list", "--mine", "--all"]).ok(),
    );
    s.record(
        "worker_update",
        &w.run(
            "worker",
            &["worker", "update", "--withdraw-earnings", "--yes"],
        )
        .ok(),
    );

    // Cancelled.
    let (job, _) = post(&w);
    s.record(
        "job_cancel",
        &w.run("poster", &["job", "cancel", &job.to_string(), "--yes"])
            .ok(),
    );

    // Disputed, resolved.
    let (job, _) = post(&w);
    claim(&w, job).await;
    submit(&w, job).await;
    s.record(
        "job_dispute",
        &w.run(
            "poster",
            &[
                "job",
                "dispute",
                &job.to_string(),
                "--segment",
                "1",
                "--yes",
            ],
        )
        .ok(),
    );
    s.record(
        "job_resolve",
        &w.run(
            "authority",
            &[
                "job",
                "resolve",
                &job.to_string(),
                "--for",
                "worker",
                "--yes",
            ],
        )
        .ok(),
    );

    // Finalized after the window, by a stranger.
    let (job, _) = post(&w);
    claim(&w, job).await;
    submit(&w, job).await;
    s.record(
        "localnet_warp",
        &w.run("crank", &["localnet", "warp", "8d"]).ok(),
    );
    s.record(
        "job_finalize",
        &w.run("crank", &["job", "finalize", &job.to_string(), "--yes"])
            .ok(),
    );

    // Reclaimed past the deadline.
    let (job, _) = post(&w);
    claim(&w, job).await;
    w.run("crank", &["localnet", "warp", "2h"]).ok();
    s.record(
        "job_reclaim",
        &w.run("crank", &["job", "reclaim", &job.to_string(), "--yes"])
            .ok(),
    );

    // The market's authority.
    s.record(
        "market_update",
        &w.run(
            "authority",
            &["market", "update", "--fee-bps", "200", "--yes"],
        )
        .ok(),
    );
    s.record(
        "market_pause",
        &w.run("authority", &["market", "pause", "--yes"]).ok(),
    );
    s.record(
        "market_resume",
        &w.run("authority", &["market", "resume", "--yes"]).ok(),
    );
    s.record(
        "market_withdraw_fees",
        &w.run("authority", &["market", "withdraw-fees", "--yes"])
            .ok(),
    );

    // Leaving: stake and earnings back.
    s.record(
        "worker_deregister",
        &w.run("worker", &["worker", "deregister", "--yes"]).ok(),
    );

    // A second market (last: the commands above find the only one).
    s.record(
        "market_create",
        &w.run("crank", &["market", "create", "--yes"]).ok(),
    );

    // The local commands.
    let result = w.dir.path().join("trained");
    // The poster's "own" evaluation data: any file in the spec's format will do here.
    let own = common::repo().join("data/digits.safetensors");
    let result = result.to_str().unwrap();
    s.record(
        "train",
        &local(&w, &["train", "--spec", spec, "--out", result])[0],
    );
    s.record(
        "verify",
        &local(
            &w,
            &[
                "verify",
                "--spec",
                spec,
                "--result",
                result,
                "--spot-check",
                "1",
                "--eval-data",
                own.to_str().unwrap(),
            ],
        )[0],
    );
    let bench = local(
        &w,
        &[
            "bench",
            "--specs",
            spec,
            "--rounds",
            "1",
            "--round-secs",
            "0.1",
        ],
    );
    assert_eq!(
        bench.len(),
        2,
        "the device line, then one per spec: {bench:?}"
    );
    s.record("bench_device", &bench[0]);
    s.record("bench_model", &bench[1]);

    // Wallet basics.
    s.record("address", &w.run("poster", &["address"]).ok());
    s.record("balance", &w.run("poster", &["balance"]).ok());
    s.record("airdrop", &w.run("crank", &["airdrop", "1"]).ok());
    let keyfile = w.dir.path().join("new.json");
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_tensorgrid"))
        .args(["keygen", "--output", "json", "-o"])
        .arg(&keyfile)
        .env("HOME", w.dir.path())
        .output()
        .unwrap();
    assert!(made.status.success());
    s.record("keygen", &serde_json::from_slice(&made.stdout).unwrap());
    s.check();
}
