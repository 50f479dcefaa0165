//! The job pipeline over the embedded chain's JSON-RPC and a real local S3 server: a poster
//! posts a small job, the worker checks it, claims, fetches, trains, publishes and submits;
//! the poster accepts and the worker is paid to the lamport. A job whose dataset is not what
//! its spec says is given back with the abandon penalty.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use solana_keypair::Keypair;
use solana_signer::Signer;
use tensorgrid_artifacts::{fetch, ReadPolicy, Store};
use tensorgrid_client::{
    defaults::{self, SOL},
    instructions::{self as ix, SettleKeys},
    pda,
    state::JobState,
    tensorgrid::instructions::{JobPostArgs, WorkerRegisterArgs},
};
use tensorgrid_localnet::{default_market_params, LocalnetBuilder};
use tensorgrid_worker::{
    pipeline::Worker,
    precheck::{precheck, Offer},
    FileConfig, JobError, Stage, WorkDir,
};

fn s3() -> &'static tensorgrid_localnet::LocalS3 {
    tensorgrid_localnet::testing::shared_s3()
}

/// Uploads the digits dataset and a two-epoch spec naming it (with `dataset_sha` as its
/// claimed hash); returns the spec's URI and bytes.
async fn hosted_spec(store: &Store, dataset_sha: Option<&str>) -> (String, Vec<u8>) {
    let repo = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let data = std::fs::read(format!("{repo}/data/digits.safetensors")).unwrap();
    let real_sha = hex::encode(Sha256::digest(&data));
    let data_uri = store
        .put(&format!("datasets/{real_sha}"), data)
        .await
        .unwrap();
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{repo}/jobs/digits-mlp.json")).unwrap())
            .unwrap();
    v["dataset"]["uri"] = data_uri.into();
    v["dataset"]["sha256"] = dataset_sha.unwrap_or(&real_sha).into();
    v["training"]["epochs"] = 2.into();
    v["evaluation"]["threshold"] = 0.5.into();
    let bytes = serde_json::to_vec_pretty(&v).unwrap();
    let uri = store
        .put(
            &format!("specs/{}.json", hex::encode(Sha256::digest(&bytes))),
            bytes.clone(),
        )
        .await
        .unwrap();
    (uri, bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_claimed_trained_published_submitted_and_paid() {
    s3();
    let net = LocalnetBuilder::for_tests()
        .accounts(["poster", "operator"])
        .market(default_market_params())
        .start()
        .await
        .unwrap();
    let client = net.client().clone();
    let market = net.market().unwrap();
    let poster = net.account("poster");
    let operator = Keypair::try_from(&net.account("operator").to_bytes()[..]).unwrap();
    client
        .send(
            &[ix::worker_register(
                operator.pubkey(),
                market,
                WorkerRegisterArgs {
                    stake: 2 * SOL,
                    hardware: defaults::cpu("test"),
                },
            )],
            &[&operator],
        )
        .await
        .unwrap();

    let store = Store::open("s3://tensorgrid").unwrap();
    let work_dir = tempfile::tempdir().unwrap();
    let config = FileConfig::parse("store = \"s3://tensorgrid\"")
        .unwrap()
        .resolve(work_dir.path())
        .unwrap();
    let worker = Worker {
        chain: client.clone(),
        store: store.clone(),
        work: WorkDir::open(work_dir.path().join("work")).unwrap(),
        money: tensorgrid_worker::Money::sol(&config),
        config,
        operator: Arc::new(operator),
        market,
        hardware: defaults::cpu("test"),
        device: tensorgrid_train::Device::Cpu,
        stop: Default::default(),
        progress: None,
        status: Default::default(),
        cancel: Default::default(),
        states: Default::default(),
    };
    client
        .send(&[ix::poster_init(poster.pubkey(), market)], &[poster])
        .await
        .unwrap();
    let terms = client.market(&market).await.unwrap().params.job_terms();
    let post = |job_id: u64, spec_uri: String, bytes: &[u8]| {
        ix::job_post(
            poster.pubkey(),
            market,
            JobPostArgs {
                job_id,
                reward: SOL / 2,
                spec_hash: Sha256::digest(bytes).into(),
                spec_uri,
                requirements: defaults::any_device(),
                max_duration_s: 3_600,
                terms,
            },
        )
    };

    // An honest job, end to end.
    let (spec_uri, _) = hosted_spec(&store, None).await;
    let job = pda::job(&market, &poster.pubkey(), 1).0;
    let spec_bytes = fetch(&spec_uri, 1 << 20, &ReadPolicy::default())
        .await
        .unwrap();
    client
        .send(&[post(1, spec_uri, &spec_bytes)], &[poster])
        .await
        .unwrap();
    let account = client.job(&job).await.unwrap().unwrap();
    let plan = precheck(
        &Offer::from_job(&account),
        &spec_bytes,
        &worker.hardware,
        &worker.config,
        &worker.money,
        |_| 5.0,
    )
    .unwrap();
    let done = worker
        .work_on(job, &account.offer(), &plan.spec, &spec_bytes)
        .await
        .unwrap();
    let submitted = client.job(&job).await.unwrap().unwrap();
    assert_eq!(submitted.state, JobState::Submitted);
    assert_eq!(hex::encode(submitted.result_hash), done.result_hash);
    assert!(submitted.result_uri.ends_with("manifest.json"));
    // The published manifest is the committed one.
    let manifest = fetch(&submitted.result_uri, 1 << 20, &ReadPolicy::default())
        .await
        .unwrap();
    assert_eq!(hex::encode(Sha256::digest(&manifest)), done.result_hash);
    // Running it again (a restart after the submission) sends nothing new.
    let again = worker
        .work_on(job, &account.offer(), &plan.spec, &spec_bytes)
        .await
        .unwrap();
    assert_eq!(again.signature, done.signature);
    assert!(matches!(
        worker.work.stage(&job.to_string()).unwrap(),
        Some(Stage::Submitted { .. })
    ));

    // Paid on acceptance: the payout to the worker's earnings, to the lamport.
    let worker_key = worker.keys().worker;
    let before = client.worker(&worker_key).await.unwrap().unwrap().earnings;
    client
        .send(
            &[ix::job_accept(SettleKeys {
                market,
                worker: worker_key,
                job,
                poster: poster.pubkey(),
            })],
            &[poster],
        )
        .await
        .unwrap();
    let payout = account.terms.payout(account.reward).unwrap().to_worker;
    assert_eq!(
        client.worker(&worker_key).await.unwrap().unwrap().earnings,
        before + payout
    );

    // A dataset that is not what its spec says: given back, the job reopens, the abandon
    // penalty (not the slash) is taken.
    let (bad_uri, _) = hosted_spec(&store, Some(&"ab".repeat(32))).await;
    let bad_bytes = fetch(&bad_uri, 1 << 20, &ReadPolicy::default())
        .await
        .unwrap();
    client
        .send(&[post(2, bad_uri, &bad_bytes)], &[poster])
        .await
        .unwrap();
    let job2 = pda::job(&market, &poster.pubkey(), 2).0;
    let account2 = client.job(&job2).await.unwrap().unwrap();
    let plan2 = precheck(
        &Offer::from_job(&account2),
        &bad_bytes,
        &worker.hardware,
        &worker.config,
        &worker.money,
        |_| 5.0,
    )
    .unwrap();
    let stake_before = client.worker(&worker_key).await.unwrap().unwrap().stake;
    let err = worker
        .work_on(job2, &account2.offer(), &plan2.spec, &bad_bytes)
        .await
        .unwrap_err();
    assert!(
        matches!(err, JobError::GaveUp(ref why) if why.contains("sha256")),
        "{err}"
    );
    let reopened = client.job(&job2).await.unwrap().unwrap();
    assert_eq!(reopened.state, JobState::Open);
    let terms = account2.terms;
    let penalty = terms
        .abandon_penalty(terms.collateral(account2.reward).unwrap())
        .unwrap();
    assert_eq!(
        client.worker(&worker_key).await.unwrap().unwrap().stake,
        stake_before - penalty
    );
    assert_eq!(
        worker.work.stage(&job2.to_string()).unwrap(),
        None,
        "forgotten"
    );

    // Claimed, then the clock runs too close to the deadline to train and submit: given back
    // before the deadline (the abandon penalty), not left to be slashed.
    let (late_uri, _) = hosted_spec(&store, None).await;
    let late_bytes = fetch(&late_uri, 1 << 20, &ReadPolicy::default())
        .await
        .unwrap();
    client
        .send(&[post(3, late_uri, &late_bytes)], &[poster])
        .await
        .unwrap();
    let job3 = pda::job(&market, &poster.pubkey(), 3).0;
    client
        .send(
            &[ix::job_claim(
                worker.keys(),
                job3,
                client.job(&job3).await.unwrap().unwrap().offer(),
            )],
            &[worker.operator.as_ref()],
        )
        .await
        .unwrap();
    let claimed = client.job(&job3).await.unwrap().unwrap();
    worker
        .work
        .record(
            &job3.to_string(),
            &Stage::Claimed {
                deadline: claimed.deadline,
            },
        )
        .unwrap();
    net.warp_to(claimed.deadline - 30).await.unwrap();
    let stake_before = client.worker(&worker_key).await.unwrap().unwrap().stake;
    let plan3 = tensorgrid_train::spec::JobSpec::from_json(&late_bytes).unwrap();
    let err = worker
        .work_on(job3, &claimed.offer(), &plan3, &late_bytes)
        .await
        .unwrap_err();
    assert!(
        matches!(err, JobError::GaveUp(ref why) if why.contains("no time left")),
        "{err}"
    );
    let reopened = client.job(&job3).await.unwrap().unwrap();
    assert_eq!(reopened.state, JobState::Open);
    let penalty = claimed.terms.abandon_penalty(claimed.collateral).unwrap();
    assert_eq!(
        client.worker(&worker_key).await.unwrap().unwrap().stake,
        stake_before - penalty
    );
    assert_eq!(reopened.compensation, claimed.compensation + penalty);
}
