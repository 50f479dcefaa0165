//! The chain client against the embedded chain: failover, unreachable endpoints, program
//! errors as names and messages, insufficient funds, exactly-once sends across blockhash
//! expiry, and the clock moved past a deadline.

use std::{
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc,
    },
    time::Duration,
};

use anchor_lang::prelude::Pubkey;
use serde_json::{json, Value};
use solana_keypair::Keypair;
use solana_signer::Signer;
use tensorgrid_client::{
    defaults,
    instructions::{self as ix, WorkerKeys},
    pda,
    rpc::{ChainClient, ChainConfig, ChainError},
    state::JobState,
    tensorgrid::instructions::{JobPostArgs, WorkerRegisterArgs, WorkerUpdateArgs},
    TensorgridError,
};
use tensorgrid_localnet::{
    default_market_params,
    testing::{job_post_args, signature_of_wire_tx, RpcProxy, Verdict},
    Localnet, LocalnetBuilder, SOL,
};

async fn chain() -> Localnet {
    LocalnetBuilder::for_tests()
        .accounts(["poster", "operator", "cranker"])
        .market(default_market_params())
        .start()
        .await
        .expect("local chain")
}

fn post_args(job_id: u64) -> JobPostArgs {
    job_post_args(job_id, SOL)
}

async fn register(net: &Localnet) -> WorkerKeys {
    let operator = net.account("operator");
    let market = net.market().unwrap();
    let args = WorkerRegisterArgs {
        stake: 3 * SOL,
        hardware: defaults::cpu("cpu"),
    };
    net.client()
        .send(
            &[ix::worker_register(operator.pubkey(), market, args)],
            &[operator],
        )
        .await
        .unwrap();
    WorkerKeys {
        operator: operator.pubkey(),
        market,
        worker: pda::worker(&market, &operator.pubkey()).0,
    }
}

/// A registered worker and job 1 of the poster, posted and claimed by that worker.
async fn claimed_job(net: &Localnet) -> (WorkerKeys, Pubkey) {
    let poster = net.account("poster");
    let market = net.market().unwrap();
    let wk = register(net).await;
    let job = pda::job(&market, &poster.pubkey(), 1).0;
    let post = net
        .client()
        .post_instructions(&poster.pubkey(), &market, post_args(1))
        .await
        .unwrap();
    net.client().send(&post, &[poster]).await.unwrap();
    let offer = net.client().job(&job).await.unwrap().unwrap().offer();
    let claim = ix::job_claim(wk, job, offer);
    net.client()
        .send(&[claim], &[net.account("operator")])
        .await
        .unwrap();
    (wk, job)
}

fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_first_endpoint_fails_over_and_no_endpoint_is_a_clear_error_with_nothing_sent() {
    let net = chain().await;
    let poster = net.account("poster");
    let market = net.market().unwrap();

    let client = ChainClient::new(
        ChainConfig::with_urls(vec![closed_port_url(), net.rpc_url().into()]).unwrap(),
    )
    .unwrap();
    client.ping().await.expect("the second endpoint answers");
    assert_eq!(client.active_url(), net.rpc_url());
    client
        .send(
            &net.client()
                .post_instructions(&poster.pubkey(), &market, post_args(1))
                .await
                .unwrap(),
            &[poster],
        )
        .await
        .unwrap();
    assert!(client
        .job(&pda::job(&market, &poster.pubkey(), 1).0)
        .await
        .unwrap()
        .is_some());

    let (a, b) = (closed_port_url(), closed_port_url());
    let mut config = ChainConfig::with_urls(vec![a.clone(), b.clone()]).unwrap();
    config.max_rounds = 2;
    let dead = ChainClient::new(config).unwrap();
    let before = net.client().balance(&poster.pubkey()).await.unwrap();
    let err = dead
        .send(
            &net.client()
                .post_instructions(&poster.pubkey(), &market, post_args(2))
                .await
                .unwrap(),
            &[poster],
        )
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ChainError::Unreachable { .. }), "{msg}");
    assert!(
        msg.contains(&a) && msg.contains(&b) && msg.contains("connection failed"),
        "{msg}"
    );
    assert!(
        net.client()
            .job(&pda::job(&market, &poster.pubkey(), 2).0)
            .await
            .unwrap()
            .is_none(),
        "nothing sent"
    );
    assert_eq!(
        net.client().balance(&poster.pubkey()).await.unwrap(),
        before,
        "no fee paid"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn program_errors_come_back_as_their_variant_and_message_before_anything_is_paid() {
    let net = chain().await;
    let client = net.client();
    let (poster, cranker) = (net.account("poster"), net.account("cranker"));
    let market = net.market().unwrap();
    let (_, job) = claimed_job(&net).await;

    let before = client.balance(&poster.pubkey()).await.unwrap();
    let err = client
        .send(&[ix::job_cancel(poster.pubkey(), job)], &[poster])
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "JobNotOpen: The job is not open");
    assert!(matches!(
        err.program_error(),
        Some(TensorgridError::JobNotOpen)
    ));
    assert!(!err.logs().is_empty(), "the program logs come with it");
    assert_eq!(
        client.balance(&poster.pubkey()).await.unwrap(),
        before,
        "refused in simulation: no fee"
    );

    let err = client
        .send(&[ix::job_cancel(cranker.pubkey(), job)], &[cranker])
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "NotPoster: Only the job's poster may do this"
    );

    // Anchor's own checks, read from its log line: the market account passed as the job.
    let err = client
        .send(&[ix::job_cancel(poster.pubkey(), market)], &[poster])
        .await
        .unwrap_err();
    match &err {
        ChainError::Program {
            name,
            message,
            variant: None,
            code,
            ..
        } => {
            assert_eq!(
                (name.as_str(), *code),
                ("AccountDiscriminatorMismatch", 3002),
                "{err}"
            );
            assert!(!message.is_empty());
        }
        other => panic!("expected Anchor's discriminator error, got {other}"),
    }

    // A wallet that was never funded, and one that cannot cover the reward.
    let empty = Keypair::new();
    let err = client
        .send(
            &client
                .post_instructions(&empty.pubkey(), &market, post_args(2))
                .await
                .unwrap(),
            &[&empty],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ChainError::InsufficientFunds(_)), "{err}");
    let poor = net.funded(SOL / 2).await.unwrap();
    let err = client
        .send(
            &client
                .post_instructions(&poor.pubkey(), &market, post_args(3))
                .await
                .unwrap(),
            &[&poor],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ChainError::InsufficientFunds(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_clock_moved_past_the_deadline_a_third_party_reclaims_over_rpc() {
    let net = chain().await;
    let client = net.client();
    let cranker = net.account("cranker");
    let market = net.market().unwrap();
    let (wk, job) = claimed_job(&net).await;

    let now = client.chain_time().await.unwrap();
    assert!(client
        .jobs_past_deadline(market, now)
        .await
        .unwrap()
        .is_empty());
    let err = client
        .send(
            &[ix::job_reclaim(cranker.pubkey(), wk.worker, job)],
            &[cranker],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.program_error(),
            Some(TensorgridError::DeadlineNotReached)
        ),
        "{err}"
    );

    let now = net.warp(3_601).await.unwrap();
    let due = client.jobs_past_deadline(market, now).await.unwrap();
    assert_eq!(due.iter().map(|e| e.pubkey).collect::<Vec<_>>(), vec![job]);
    let before = client.balance(&cranker.pubkey()).await.unwrap();
    let outcome = client
        .send_and_fetch(
            &[ix::job_reclaim(cranker.pubkey(), wk.worker, job)],
            &[cranker],
        )
        .await
        .unwrap();
    let bounty = outcome
        .events
        .iter()
        .find_map(|e| match e {
            tensorgrid_client::events::Event::JobReclaimed(r) => Some(r.bounty),
            _ => None,
        })
        .expect("a JobReclaimed event");
    assert!(bounty > 0);
    assert_eq!(
        client.balance(&cranker.pubkey()).await.unwrap(),
        before + bounty - outcome.fee
    );
    let reopened = client.job(&job).await.unwrap().unwrap();
    assert_eq!(reopened.state, JobState::Open);
    assert_eq!(reopened.barred_workers[0], wk.worker);
    assert!(reopened.is_barred(&wk.worker));
}

/// A client for `net` through a proxy, confirming at "confirmed".
async fn through_proxy(net: &Localnet) -> (RpcProxy, ChainClient) {
    let proxy = RpcProxy::start(net.rpc_url()).await.unwrap();
    let mut config = ChainConfig::new(proxy.url());
    config.poll_interval = Duration::from_millis(20);
    config.confirm_timeout = Duration::from_secs(120);
    (proxy, ChainClient::new(config).unwrap())
}

fn add_stake(wk: WorkerKeys, lamports: u64) -> ix::Instruction {
    ix::worker_update(
        wk.operator,
        wk.market,
        wk.worker,
        WorkerUpdateArgs {
            hardware: None,
            add_stake: lamports,
            withdraw_stake: 0,
            withdraw_earnings: 0,
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_lost_before_the_chain_is_signed_again_after_expiry_and_executes_once() {
    let net = chain().await;
    let wk = register(&net).await;
    let (proxy, client) = through_proxy(&net).await;
    // Every broadcast of the first signed transaction is acknowledged as a node would, and
    // dropped; later signings go through.
    let swallowed = Arc::new(AtomicU32::new(0));
    let first = Arc::new(std::sync::Mutex::new(None::<String>));
    let (counter, first_sig) = (swallowed.clone(), first.clone());
    proxy.set_rule(move |req: &Value| {
        if req["method"] != "sendTransaction" {
            return Verdict::Forward;
        }
        let sig = signature_of_wire_tx(req["params"][0].as_str().unwrap_or_default()).unwrap();
        let mut first = first_sig.lock().unwrap();
        if first.get_or_insert_with(|| sig.clone()) == &sig {
            counter.fetch_add(1, Ordering::SeqCst);
            return Verdict::Answer(json!(sig));
        }
        Verdict::Forward
    });
    let stake = net
        .client()
        .worker(&wk.worker)
        .await
        .unwrap()
        .unwrap()
        .stake;
    let landed = client
        .send(&[add_stake(wk, 12_345)], &[net.account("operator")])
        .await
        .unwrap();
    assert_eq!(
        landed.resigned, 1,
        "the lost transaction was signed again once"
    );
    assert!(swallowed.load(Ordering::SeqCst) >= 1);
    assert_eq!(
        net.client()
            .worker(&wk.worker)
            .await
            .unwrap()
            .unwrap()
            .stake,
        stake + 12_345,
        "executed exactly once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_that_landed_unseen_is_not_sent_again_after_expiry() {
    let net = chain().await;
    let wk = register(&net).await;
    let (proxy, client) = through_proxy(&net).await;
    // Plain status polls see nothing; only the final look with history tells the truth.
    proxy.set_rule(|req: &Value| {
        let history = req["params"][1]["searchTransactionHistory"]
            .as_bool()
            .unwrap_or(false);
        if req["method"] == "getSignatureStatuses" && !history {
            return Verdict::Answer(json!({ "context": { "slot": 1 }, "value": [null] }));
        }
        Verdict::Forward
    });
    let stake = net
        .client()
        .worker(&wk.worker)
        .await
        .unwrap()
        .unwrap()
        .stake;
    let landed = client
        .send(&[add_stake(wk, 777)], &[net.account("operator")])
        .await
        .unwrap();
    assert_eq!(
        landed.resigned, 0,
        "it landed the first time: never signed again"
    );
    assert_eq!(
        net.client()
            .worker(&wk.worker)
            .await
            .unwrap()
            .unwrap()
            .stake,
        stake + 777,
        "executed exactly once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keypairs_are_written_as_solana_cli_files() {
    let dir = tempfile::tempdir().unwrap();
    let net = LocalnetBuilder::for_tests()
        .keypair_dir(dir.path())
        .accounts(["poster"])
        .lamports_each(42 * SOL)
        .start()
        .await
        .unwrap();
    let path = dir.path().join("poster.json");
    let bytes: Vec<u8> = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let kp = Keypair::try_from(&bytes[..]).unwrap();
    assert_eq!(kp.pubkey(), net.account("poster").pubkey());
    assert_eq!(net.client().balance(&kp.pubkey()).await.unwrap(), 42 * SOL);
    assert!(dir.path().join("payer.json").is_file());
    let _ = Pubkey::default();
}
