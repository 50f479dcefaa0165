//! Every job command in every state where it cannot work: refused before anything is signed,
//! in one line that says where the job is and what to do instead, never the error of
//! whichever account check the program would fail first; nothing spent.

mod common;

use common::World;
use solana_signer::Signer;
use tensorgrid_client::{
    anchor_lang::prelude::Pubkey,
    instructions::{self as ix, WorkerKeys},
    pda,
    tensorgrid::instructions::JobSubmitArgs,
};

const COMMANDS: [&str; 6] = [
    "accept", "dispute", "cancel", "finalize", "reclaim", "resolve",
];

/// Runs every command but `except` on `job` as `who` (resolve as the authority); each must be
/// refused naming `state`, and the balances of everyone involved must not move.
async fn refused_in(w: &World, job: &Pubkey, state: &str, except: &[&str]) {
    let people = ["poster", "worker", "authority"].map(|p| w.key(p));
    let mut before = Vec::new();
    for p in &people {
        before.push(w.balance(p).await);
    }
    let job_s = job.to_string();
    for cmd in COMMANDS.iter().filter(|c| !except.contains(c)) {
        let mut args = vec!["job", cmd, &job_s];
        if *cmd == "resolve" {
            args.extend(["--for", "worker"]);
        }
        if *cmd == "dispute" {
            args.extend(["--segment", "0"]);
        }
        let who = if *cmd == "resolve" {
            "authority"
        } else {
            "poster"
        };
        let r = w.run(who, &args);
        let line = r.failed();
        assert!(
            line.contains(&format!("cannot {cmd} job")) && line.contains(&format!("it is {state}")),
            "{cmd} on a {state} job: {line}"
        );
        assert!(line.contains("tensorgrid job"), "no way forward: {line}");
        assert!(!line.contains("program"), "{line}");
    }
    for (p, b) in people.iter().zip(before) {
        assert_eq!(w.balance(p).await, b, "{p} spent something");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_job_command_in_each_wrong_state_says_why_and_spends_nothing() {
    let w = World::with_accounts(&["poster", "worker", "other"]).await;
    w.run(
        "worker",
        &[
            "worker", "register", "--stake", "2", "--device", "cpu", "--label", "cpu",
        ],
    )
    .ok();
    let spec = w.small_spec("small.json", 1);
    let (job, _) = w.post("poster", &spec, "0.5");

    // Open: only cancel works.
    refused_in(&w, &job, "open", &["cancel"]).await;

    // Claimed, before its deadline: nothing works.
    let operator = w.net.account("worker");
    let keys = WorkerKeys {
        operator: operator.pubkey(),
        market: w.market,
        worker: pda::worker(&w.market, &operator.pubkey()).0,
    };
    let client = w.net.client();
    let offer = client.job(&job).await.unwrap().unwrap().offer();
    client
        .send(&[ix::job_claim(keys, job, offer)], &[operator])
        .await
        .unwrap();
    refused_in(&w, &job, "claimed", &[]).await;

    // Submitted, in the challenge window: accept and dispute work (by the poster only). The
    // result's manifest commits to two training states (what a dispute quotes).
    let manifest = serde_json::to_vec(&serde_json::json!({
        "commitments": {"state_hashes": ["11".repeat(32), "22".repeat(32)]}
    }))
    .unwrap();
    let store = tensorgrid_artifacts::Store::open(&format!(
        "s3://{}",
        tensorgrid_localnet::s3::LOCAL_BUCKET
    ))
    .unwrap();
    let result_uri = store
        .put(&format!("results/{job}/manifest.json"), manifest.clone())
        .await
        .unwrap();
    use sha2::Digest;
    let args = JobSubmitArgs {
        result_hash: sha2::Sha256::digest(&manifest).into(),
        result_uri,
        reported_metric: 1,
    };
    client
        .send(&[ix::job_submit(keys, job, args)], &[operator])
        .await
        .unwrap();
    refused_in(&w, &job, "submitted", &["accept", "dispute"]).await;
    let r = w.run("other", &["job", "accept", &job.to_string()]);
    assert!(r.failed().contains("only the poster"), "{}", r.stderr);

    // Disputed, with no verifiers in this market (the draw hands it to the authority), in
    // the resolve window: only resolve, by the authority only.
    w.run(
        "poster",
        &["job", "dispute", &job.to_string(), "--segment", "0"],
    )
    .ok();
    refused_in(&w, &job, "disputed", &["resolve"]).await;
    let r = w.run(
        "other",
        &["job", "resolve", &job.to_string(), "--for", "worker"],
    );
    assert!(
        r.failed().contains("only the market authority"),
        "{}",
        r.stderr
    );
}
