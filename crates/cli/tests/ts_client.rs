//! The TypeScript client generated from the IDL with Codama (clients/ts, built by
//! `npm run build`) drives a job's whole life on the embedded chain through
//! scripts/lifecycle.ts, with a fee payer that is none of the parties: register, post (with
//! the poster account), a claim of another offer refused with the program's error name, claim,
//! submit, accept. Every party's lamports are asserted: the fee payer paid exactly the fees.

mod common;

use std::process::Command;

use common::{repo, World};
use serde_json::Value;
use tensorgrid_client::{
    pda,
    state::{Poster, Worker},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_ts_client_runs_a_job_with_a_separate_fee_payer() {
    let script = repo().join(".tsbuild/scripts/lifecycle.js");
    assert!(
        script.exists(),
        "{} is missing: run `npm ci && npm run build` (scripts/test.sh does)",
        script.display()
    );
    let w = World::with_accounts(&["poster", "operator", "payer"]).await;
    let client = w.net.client();
    let (poster, operator, payer) = (w.key("poster"), w.key("operator"), w.key("payer"));
    let worker = pda::worker(&w.market, &operator).0;
    let before = [
        w.balance(&poster).await,
        w.balance(&operator).await,
        w.balance(&payer).await,
        w.balance(&w.market).await,
    ];

    let out = Command::new("node")
        .arg(&script)
        .args(["--url", w.net.rpc_url(), "--ws-url", w.net.ws_url()])
        .args(["--market", &w.market.to_string()])
        .arg("--fee-payer")
        .arg(w.keyfile("payer"))
        .arg("--poster")
        .arg(w.keyfile("poster"))
        .arg("--operator")
        .arg(w.keyfile("operator"))
        .output()
        .expect("node must be installed to run the TypeScript client");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let steps: Vec<&str> = lines.iter().map(|l| l["step"].as_str().unwrap()).collect();
    assert_eq!(
        steps,
        [
            "registered",
            "posted",
            "refused",
            "claimed",
            "submitted",
            "accepted",
            "done"
        ]
    );
    let events = |step: &str| -> Vec<String> {
        lines.iter().find(|l| l["step"] == step).unwrap()["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap().to_string())
            .collect()
    };
    // Events decoded from the inner instructions (emit_cpi), with the IDL's names.
    assert_eq!(events("registered"), ["WorkerRegistered"]);
    assert_eq!(events("posted"), ["PosterInitialized", "JobPosted"]);
    assert_eq!(events("claimed"), ["JobClaimed"]);
    assert_eq!(events("submitted"), ["JobSubmitted"]);
    assert_eq!(events("accepted"), ["JobPaid"]);
    // The refused claim: the program's error by code and name.
    let refused = lines.iter().find(|l| l["step"] == "refused").unwrap();
    assert_eq!(refused["code"], 6047, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("offer"),
        "{refused}"
    );

    // Lamports: the fee payer paid the fees and nothing else; the poster the reward and its
    // poster account's rent (the job's rent came back); the operator the stake and the worker
    // account's rent; the worker earned the payout, the market the fee.
    let job = tensorgrid_client::pda::job(&w.market, &poster, 0).0;
    assert!(
        client.job(&job).await.unwrap().is_none(),
        "the job is closed"
    );
    let fees: u64 = lines
        .iter()
        .filter_map(|l| l["fee"].as_str())
        .map(|f| f.parse::<u64>().unwrap())
        .sum();
    let market = client.market(&w.market).await.unwrap();
    let reward = 300_000_000u64;
    let pay = market.params.job_terms().payout(reward).unwrap();
    let poster_rent = client.rent_exempt(Poster::SPACE).await.unwrap();
    let worker_rent = client.rent_exempt(Worker::SPACE).await.unwrap();
    let account = client.worker(&worker).await.unwrap().unwrap();
    assert_eq!(account.earnings, pay.to_worker);
    assert_eq!(lines.last().unwrap()["earnings"], pay.to_worker.to_string());
    assert_eq!(before[2] - w.balance(&payer).await, fees, "fee payer");
    assert_eq!(
        before[0] - w.balance(&poster).await,
        reward + poster_rent,
        "poster"
    );
    assert_eq!(
        before[1] - w.balance(&operator).await,
        market.params.min_stake + worker_rent,
        "operator"
    );
    assert_eq!(
        w.balance(&w.market).await - before[3],
        pay.fee,
        "market fee"
    );
    assert_eq!(
        w.balance(&worker).await,
        worker_rent + market.params.min_stake + pay.to_worker
    );
}
