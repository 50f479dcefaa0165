//! The job feed: a new job reaches a subscriber; after the websocket is cut, or goes silent,
//! the feed resubscribes and still reports every job posted meanwhile; with no websocket at
//! all, the polling sweep alone reports them.

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use anchor_lang::prelude::Pubkey;
use solana_signer::Signer;
use tensorgrid_client::{
    pda,
    rpc::{CancellationToken, ChainClient, ChainConfig, FeedConfig, JobFeed, JobQuery, Source},
};
use tensorgrid_localnet::{
    default_market_params,
    testing::{job_post_args, TcpProxy},
    Localnet, LocalnetBuilder, SOL,
};

async fn post(net: &Localnet, job_id: u64) -> Pubkey {
    let poster = net.account("poster");
    let market = net.market().unwrap();
    let args = job_post_args(job_id, SOL);
    net.client()
        .send(
            &net.client()
                .post_instructions(&poster.pubkey(), &market, args)
                .await
                .unwrap(),
            &[poster],
        )
        .await
        .unwrap();
    pda::job(&market, &poster.pubkey(), job_id).0
}

/// Reads the feed until every job of `want` was reported, or panics after `within`.
async fn expect_jobs(feed: &mut JobFeed, want: &[Pubkey], within: Duration) -> Vec<Source> {
    let mut missing: BTreeSet<Pubkey> = want.iter().copied().collect();
    let mut sources = Vec::new();
    let deadline = Instant::now() + within;
    while !missing.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, feed.next()).await {
            Ok(Some(seen)) => {
                if missing.remove(&seen.pubkey) {
                    sources.push(seen.source);
                }
            }
            Ok(None) => panic!("the feed stopped"),
            Err(_) => panic!("{} job(s) never reported: {missing:?}", missing.len()),
        }
    }
    sources
}

async fn wait_for(what: &str, within: Duration, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_survives_a_cut_and_a_silent_websocket_without_missing_a_job() {
    let net = LocalnetBuilder::for_tests()
        .accounts(["poster"])
        .market(default_market_params())
        .start()
        .await
        .unwrap();
    let ws: SocketAddr = net.ws_url().trim_start_matches("ws://").parse().unwrap();
    let proxy = TcpProxy::start(ws).await.unwrap();
    let mut config = ChainConfig::new(net.rpc_url());
    config.ws_url = Some(format!("ws://{}", proxy.addr()));
    let client = ChainClient::new(config).unwrap();
    // Sweeps only after reconnections: the subscription alone must deliver the first job.
    let feed_config = FeedConfig {
        sweep_every: Duration::from_secs(3_600),
        stale_after: Duration::from_secs(2),
    };
    let mut feed = client.watch_jobs(
        JobQuery::open_in(net.market().unwrap()),
        feed_config,
        CancellationToken::new(),
    );
    wait_for("the subscription", Duration::from_secs(10), || {
        feed.stats().subscriptions.load(Ordering::SeqCst) >= 1
    })
    .await;

    let first = post(&net, 1).await;
    let sources = expect_jobs(&mut feed, &[first], Duration::from_secs(5)).await;
    assert_eq!(sources, vec![Source::Subscription]);

    // Cut: every connection closed; jobs posted right away.
    proxy.sever();
    let cut = vec![post(&net, 2).await, post(&net, 3).await];
    expect_jobs(&mut feed, &cut, Duration::from_secs(15)).await;
    wait_for("a resubscription", Duration::from_secs(10), || {
        feed.stats().subscriptions.load(Ordering::SeqCst) >= 2
    })
    .await;

    // Silent: TCP stays up but nothing flows; the heartbeat notices, and once the network is
    // back the resubscription's sweep reports what was posted in the dark.
    let subscriptions = feed.stats().subscriptions.load(Ordering::SeqCst);
    proxy.set_silent(true);
    let dark = vec![post(&net, 4).await, post(&net, 5).await];
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.set_silent(false);
    proxy.sever();
    expect_jobs(&mut feed, &dark, Duration::from_secs(20)).await;
    assert!(
        feed.stats().subscriptions.load(Ordering::SeqCst) > subscriptions,
        "resubscribed after the silence"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_websocket_at_all_the_sweep_reports_new_jobs() {
    let net = LocalnetBuilder::for_tests()
        .accounts(["poster"])
        .market(default_market_params())
        .start()
        .await
        .unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut config = ChainConfig::new(net.rpc_url());
    config.ws_url = Some(format!("ws://{closed}"));
    let client = ChainClient::new(config).unwrap();
    let feed_config = FeedConfig {
        sweep_every: Duration::from_millis(300),
        stale_after: Duration::from_secs(2),
    };
    let mut feed = client.watch_jobs(
        JobQuery::open_in(net.market().unwrap()),
        feed_config,
        CancellationToken::new(),
    );
    let jobs = vec![post(&net, 1).await, post(&net, 2).await];
    let sources = expect_jobs(&mut feed, &jobs, Duration::from_secs(10)).await;
    assert!(sources.iter().all(|s| *s == Source::Sweep));
    assert_eq!(feed.stats().subscriptions.load(Ordering::SeqCst), 0);
}
