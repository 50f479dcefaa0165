//! Each job query over real `getProgramAccounts` returns exactly the right accounts among ~50
//! jobs in every state, across three markets, next to Worker and Market accounts whose bytes
//! at the same offsets would match a filter that forgot the discriminator.

use anchor_lang::prelude::Pubkey;
use solana_signer::Signer;
use tensorgrid_client::{
    defaults, instructions as ix, pda,
    rpc::JobQuery,
    state::{Job, JobState},
    tensorgrid::instructions::WorkerRegisterArgs,
    PROGRAM_ID,
};
use tensorgrid_localnet::{
    default_market_params,
    testing::{job_account_data, job_post_args},
    LocalnetBuilder, SOL,
};

const NOW: i64 = 2_000_000_000;
const STATES: [JobState; 4] = [
    JobState::Open,
    JobState::Claimed,
    JobState::Submitted,
    JobState::Disputed,
];

fn key(tag: u8, n: usize) -> Pubkey {
    let mut b = [tag; 32];
    b[31] = n as u8;
    Pubkey::new_from_array(b)
}

/// Job `i` of the mix: its market, poster, state, holder and times all vary with `i`.
fn synthetic(i: usize, markets: &[Pubkey; 3], workers: &[Pubkey; 3]) -> Job {
    let state = STATES[i % 4];
    let held = state != JobState::Open;
    // Independent of the market (i % 3) and the state (i % 4).
    let early = (i / 4).is_multiple_of(2);
    Job {
        market: markets[i % 3],
        poster: key(0xA0, i % 5),
        worker: if held {
            workers[i % 3]
        } else {
            Pubkey::default()
        },
        state,
        job_id: i as u64,
        reward: SOL,
        collateral: if held { SOL } else { 0 },
        compensation: 0,
        spec_hash: [7; 32],
        result_hash: if matches!(state, JobState::Submitted | JobState::Disputed) {
            [9; 32]
        } else {
            [0; 32]
        },
        reported_metric: 0,
        requirements: defaults::any_device(),
        terms: defaults::market_params().job_terms(),
        max_duration_s: 3_600,
        created_at: NOW - 10_000,
        claimed_at: if held { NOW - 5_000 } else { 0 },
        deadline: if held {
            if early {
                NOW - 100
            } else {
                NOW + 100
            }
        } else {
            0
        },
        submitted_at: if held && state != JobState::Claimed {
            NOW - 4_000
        } else {
            0
        },
        challenge_ends_at: if held && state != JobState::Claimed {
            if early {
                NOW - 50
            } else {
                NOW + 50
            }
        } else {
            0
        },
        dispute_ends_at: 0,
        reopened_at: 0,
        reopens: 0,
        barred_workers: [Pubkey::default(); 8],
        bump: 255,
        spec_uri: format!("https://example.org/{i}.json"),
        result_uri: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_query_returns_exactly_its_jobs() {
    let net = LocalnetBuilder::for_tests()
        .accounts(["operator", "poster"])
        .start()
        .await
        .expect("local chain");
    let client = net.client();
    let params = default_market_params();
    let markets = [
        net.create_market(0, params).await.unwrap(),
        net.create_market(1, params).await.unwrap(),
        net.create_market(2, params).await.unwrap(),
    ];
    // Real Worker accounts in each market: their bytes at the Job's MARKET offset are the
    // market too.
    let operator = net.account("operator");
    let mut workers = [Pubkey::default(); 3];
    for (i, m) in markets.iter().enumerate() {
        let args = WorkerRegisterArgs {
            stake: 2 * SOL,
            hardware: defaults::cpu("cpu"),
        };
        client
            .send(
                &[ix::worker_register(operator.pubkey(), *m, args)],
                &[operator],
            )
            .await
            .unwrap();
        workers[i] = pda::worker(m, &operator.pubkey()).0;
    }
    // One real posted job, and 50 written directly.
    let poster = net.account("poster");
    let real_args = job_post_args(99, SOL);
    client
        .send(
            &client
                .post_instructions(&poster.pubkey(), &markets[0], real_args)
                .await
                .unwrap(),
            &[poster],
        )
        .await
        .unwrap();
    let real_job = pda::job(&markets[0], &poster.pubkey(), 99).0;
    let rent = client.rent_exempt(Job::SPACE).await.unwrap();
    let mut all: Vec<(Pubkey, Job)> =
        vec![(real_job, client.job(&real_job).await.unwrap().unwrap())];
    for i in 0..50 {
        let job = synthetic(i, &markets, &workers);
        let address = key(0xB0, i);
        net.set_account(&address, rent + SOL, &PROGRAM_ID, &job_account_data(&job))
            .await
            .unwrap();
        all.push((address, job));
    }
    let expect = |pred: &dyn Fn(&Job) -> bool| {
        let mut keys: Vec<Pubkey> = all
            .iter()
            .filter(|(_, j)| pred(j))
            .map(|(k, _)| *k)
            .collect();
        keys.sort();
        keys
    };
    let keys_of = |entries: Vec<tensorgrid_client::rpc::JobEntry>| {
        entries.into_iter().map(|e| e.pubkey).collect::<Vec<_>>()
    };

    assert_eq!(
        client.job_keys(&JobQuery::all()).await.unwrap().len(),
        51,
        "jobs only: no Worker or Market"
    );
    for m in markets {
        let want = expect(&|j| j.market == m && j.state == JobState::Open);
        assert!(!want.is_empty());
        assert_eq!(
            keys_of(client.jobs(&JobQuery::open_in(m)).await.unwrap()),
            want,
            "open in {m}"
        );
        assert_eq!(
            client.job_keys(&JobQuery::open_in(m)).await.unwrap(),
            want,
            "keys only"
        );
        let want = expect(&|j| j.market == m && j.state == JobState::Disputed);
        assert_eq!(
            keys_of(
                client
                    .jobs(&JobQuery::in_state(m, JobState::Disputed))
                    .await
                    .unwrap()
            ),
            want
        );
        let want = expect(&|j| j.market == m && j.state == JobState::Claimed && j.deadline < NOW);
        assert!(!want.is_empty());
        assert_eq!(
            keys_of(client.jobs_past_deadline(m, NOW).await.unwrap()),
            want,
            "past deadline in {m}"
        );
        let want = expect(&|j| {
            j.market == m && j.state == JobState::Submitted && j.challenge_ends_at < NOW
        });
        assert!(!want.is_empty());
        assert_eq!(
            keys_of(client.jobs_past_challenge(m, NOW).await.unwrap()),
            want,
            "past challenge in {m}"
        );
    }
    for n in 0..5 {
        let p = key(0xA0, n);
        let want = expect(&|j| j.poster == p);
        assert_eq!(
            keys_of(client.jobs(&JobQuery::of_poster(p)).await.unwrap()),
            want,
            "poster {n}"
        );
    }
    assert_eq!(
        keys_of(
            client
                .jobs(&JobQuery::of_poster(poster.pubkey()))
                .await
                .unwrap()
        ),
        vec![real_job]
    );
    for w in workers {
        let want = expect(&|j| j.worker == w);
        assert!(!want.is_empty());
        assert_eq!(
            keys_of(client.jobs(&JobQuery::held_by(w)).await.unwrap()),
            want,
            "held by {w}"
        );
    }
    assert_eq!(client.workers_in(markets[1]).await.unwrap().len(), 1);
    assert_eq!(client.markets().await.unwrap().len(), 3);
}
