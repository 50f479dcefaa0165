//! The daemon in a market priced in a mint (the local chain's test USDC, 6 decimals): it
//! stakes from the operator's token account, is paid, reclaims a job whose deadline it missed
//! (the bounty to its token account) and tops its stake up, all in the mint's units, and says
//! so in its status; an operator whose token account cannot cover the stake is refused at
//! start with the reason, before any transaction.

mod common;

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use solana_signer::Signer;
use tensorgrid_client::{
    anchor_lang::prelude::Pubkey, currency::TOKEN_PROGRAM_ID, state::JobState, Currency,
};

use common::*;

/// One token of the test mint, in base units.
const USDC: u64 = 1_000_000;

async fn tokens(rig: &Rig, owner: &Pubkey) -> u64 {
    let currency = Currency::Token {
        mint: rig.net.mint().expect("a USDC rig"),
        token_program: TOKEN_PROGRAM_ID,
    };
    rig.client()
        .token_balance(&currency.token_account(owner).unwrap())
        .await
        .unwrap()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stakes_earns_reclaims_and_tops_up_in_usdc() {
    let _one = serial().lock().await;
    let rig = Rig::usdc().await;
    let mint = rig.net.mint().unwrap();

    // No tokens: refused at start, nothing sent (`--stake 2` is 2 USDC in this market).
    let (broke, broke_key) = rig.operator("broke").await;
    let mut w0 = rig.spawn("broke", &broke_key);
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(s) = w0.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "still running:\n{}", w0.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!exit.success());
    assert!(
        w0.log()
            .contains("staking 2 tokens needs the operator's token account"),
        "{}",
        w0.log()
    );
    assert!(rig
        .client()
        .worker(&rig.worker_of(&broke.pubkey()))
        .await
        .unwrap()
        .is_none());

    // 100 USDC: registered with 2 of them; only rent and fees in SOL.
    let (op, key) = rig.operator("w1").await;
    rig.net.fund_tokens(&op.pubkey(), 100 * USDC).await.unwrap();
    let worker = rig.worker_of(&op.pubkey());
    let mut w = rig.spawn("w1", &key);
    wait_until("registered", 60, &w, || {
        rig.status("w1")["stake_lamports"] == 2 * USDC
    })
    .await;
    assert_eq!(tokens(&rig, &op.pubkey()).await, 98 * USDC);
    let status = rig.status("w1");
    assert_eq!(status["mint"], mint.to_string());
    assert_eq!(status["decimals"], 6);

    // A job it cannot finish before going down: restarted after the deadline, it reclaims
    // the job itself (the slash from its stake, the bounty back to its token account).
    let (uri, bytes) = rig.hosted_spec(cnn(12)).await;
    let (missed, _) = rig
        .post_paying(
            &rig.poster,
            uri,
            Sha256::digest(&bytes).into(),
            600,
            2 * USDC,
        )
        .await;
    let claimed = rig
        .wait_for(&missed, Some(JobState::Claimed), 60, &[&w])
        .await
        .unwrap();
    assert_eq!(claimed.collateral, 2 * USDC);
    w.kill();
    rig.net.warp_to(claimed.deadline + 1).await.unwrap();
    rig.net.warp(1).await.unwrap();
    let mut w = rig.spawn("w1", &key);
    rig.wait_for(&missed, Some(JobState::Open), 60, &[&w]).await;
    let split = claimed.terms.reclaim_split(claimed.collateral).unwrap();
    assert_eq!(split.bounty, USDC / 10);
    assert_eq!(
        rig.worker_account(&op).await.stake,
        2 * USDC - split.bounty - split.to_poster
    );
    assert_eq!(tokens(&rig, &op.pubkey()).await, 98 * USDC + split.bounty);

    // A job it can do, paying 1 USDC: the poster pays exactly that in tokens.
    let poster_tokens = tokens(&rig, &rig.poster.pubkey()).await;
    let (uri, bytes) = rig.hosted_spec(|_| {}).await;
    let (job, _) = rig
        .post_paying(&rig.poster, uri, Sha256::digest(&bytes).into(), 3_600, USDC)
        .await;
    assert_eq!(
        tokens(&rig, &rig.poster.pubkey()).await,
        poster_tokens - USDC
    );
    let submitted = rig
        .wait_for(&job, Some(JobState::Submitted), 120, &[&w])
        .await
        .unwrap();
    assert_eq!(submitted.worker, worker);
    // The status command speaks the mint's units.
    let out = rig
        .command("w1", &key, rig.net.rpc_url(), rig.net.ws_url())
        .arg("status")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("mint {mint} (6 decimals)")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("Chain:") && l.contains(" tokens ever, stake ")),
        "{text}"
    );
    rig.accept(&job).await;
    rig.wait_for(&job, None, 10, &[&w]).await;
    let payout = submitted.terms.payout(USDC).unwrap();
    let after = rig.worker_account(&op).await;
    assert_eq!(after.earnings, payout.to_worker);
    assert_eq!(after.stake, USDC, "the collateral came back");
    wait_until("the payment logged in tokens", 30, &w, || {
        w.log()
            .lines()
            .any(|l| l.contains("\"paid\"") && l.contains(" tokens"))
    })
    .await;
    assert!(w.terminate().success(), "{}", w.log());

    // The market's minimum rises to 3 USDC: topped up to it from the token account, within
    // the day's cap (the stake, 2 USDC, by default).
    rig.set_params(|p| p.min_stake = 3 * USDC).await;
    let mut w = rig.spawn("w1", &key);
    wait_until("topped up", 60, &w, || {
        rig.status("w1")["stake_lamports"] == 3 * USDC
    })
    .await;
    assert_eq!(
        tokens(&rig, &op.pubkey()).await,
        98 * USDC + split.bounty - 2 * USDC
    );
    assert!(w.terminate().success(), "{}", w.log());

    // The minimum rises to 200 USDC and the operator allows a stake of 300 (and so a day's
    // top-up of 300), but its token account holds 96.1: claiming pauses with the reason, the
    // daemon runs on, nothing is sent.
    rig.set_params(|p| p.min_stake = 200 * USDC).await;
    let log = rig.dir.path().join("w1-short.log");
    let file = std::fs::File::create(&log).unwrap();
    let child = rig
        .command_staking("w1", &key, rig.net.rpc_url(), rig.net.ws_url(), "300")
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    let mut w = Proc { child, log };
    wait_until("paused for want of tokens", 60, &w, || {
        rig.status("w1")["paused"].as_str().is_some_and(|p| {
            p.contains("staking 297 tokens needs the operator's token account")
                && p.contains("claims wait for the operator")
        })
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        w.child.try_wait().unwrap().is_none(),
        "still running:\n{}",
        w.log()
    );
    assert_eq!(rig.worker_account(&op).await.stake, 3 * USDC);
    assert!(w.terminate().success(), "{}", w.log());
}
