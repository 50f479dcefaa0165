//! A market priced in a token, from the CLI: the embedded chain's test USDC (6 decimals),
//! amounts typed and shown in it, every token accounted for at each step.

mod common;

use common::World;
use tensorgrid_client::{
    anchor_lang::prelude::Pubkey,
    currency::{vault, TOKEN_PROGRAM_ID},
    Currency,
};
use tensorgrid_localnet::usdc::EACH;

/// The token balance of `owner`'s account of the market's mint (0 when it has none).
async fn tokens(w: &World, currency: &Currency, owner: &Pubkey) -> u64 {
    let account = currency.token_account(owner).unwrap();
    amount(w, &account).await
}

async fn amount(w: &World, account: &Pubkey) -> u64 {
    w.net
        .client()
        .token_balance(account)
        .await
        .unwrap()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_usdc_market_takes_stakes_and_rewards_in_usdc_and_gives_them_back() {
    let w = World::with_usdc(&["poster", "worker"]).await;
    let mint = w.net.mint().expect("the market is priced in the test USDC");
    let usdc = Currency::Token {
        mint,
        token_program: TOKEN_PROGRAM_ID,
    };
    let (poster, worker) = (w.key("poster"), w.key("worker"));
    let market = w.net.client().market(&w.market).await.unwrap();
    assert_eq!((market.mint, market.decimals), (mint, 6));
    assert_eq!(tokens(&w, &usdc, &poster).await, EACH);

    // A stake typed in USDC: 2.5 of them, in base units 2_500_000.
    w.run(
        "worker",
        &[
            "worker", "register", "--stake", "2.5", "--device", "cpu", "--yes",
        ],
    )
    .ok();
    assert_eq!(tokens(&w, &usdc, &worker).await, EACH - 2_500_000);
    let shown = w.run("worker", &["worker", "show"]).ok();
    assert_eq!(shown["stake"], 2_500_000, "{shown}");
    let market_shown = w.run("worker", &["market", "show"]).ok();
    assert_eq!(market_shown["mint"], mint.to_string(), "{market_shown}");
    assert_eq!(market_shown["decimals"], 6);
    // More decimals than the mint has: refused in one line, nothing spent.
    let r = w.run(
        "worker",
        &["worker", "update", "--add-stake", "0.0000001", "--yes"],
    );
    assert!(r.failed().contains("6 decimals"), "{}", r.stderr);

    // A reward of 12.5 USDC escrowed from the poster's token account.
    let spec = w.small_spec("small.json", 1);
    let lamports_before = w.balance(&poster).await;
    let (job, posted) = w.post("poster", &spec, "12.5");
    // Shown in the mint's units, not as SOL.
    assert!(
        posted.to_string().contains("reward of 12.5 tokens"),
        "{posted}"
    );
    let shown = w.run("poster", &["job", "show", &job.to_string()]).ok();
    assert_eq!(shown["account"]["reward"], 12_500_000, "{shown}");
    assert!(
        shown["history"][0]["summary"]
            .as_str()
            .unwrap()
            .ends_with("reward of 12.5 tokens"),
        "{shown}"
    );
    assert_eq!(tokens(&w, &usdc, &poster).await, EACH - 12_500_000);
    assert_eq!(amount(&w, &vault(&w.market)).await, 2_500_000 + 12_500_000);
    let lamports_spent = lamports_before - w.balance(&poster).await;
    assert!(
        lamports_spent < 10_000_000,
        "only rent and fees in SOL: {lamports_spent}"
    );

    // Cancelled: the reward comes back to the token account in the same transaction.
    w.run("poster", &["job", "cancel", &job.to_string(), "--yes"])
        .ok();
    assert_eq!(tokens(&w, &usdc, &poster).await, EACH);
    let refunds = w.run("poster", &["job", "refunds"]).ok();
    assert_eq!(refunds["refunds"], 0, "{refunds}");

    // The worker leaves with its stake.
    w.run("worker", &["worker", "deregister", "--yes"]).ok();
    assert_eq!(tokens(&w, &usdc, &worker).await, EACH);
    assert_eq!(amount(&w, &vault(&w.market)).await, 0);
}

/// The TypeScript wallet script in a USDC market: `--reward 12.5` is 12.5 USDC (its decimals
/// read from the market), paid from the poster's token account; a reward the token account
/// cannot cover, or finer than the mint, is refused before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ts_wallet_script_posts_in_the_markets_mint() {
    let script = common::repo().join(".tsbuild/scripts/post-job.js");
    assert!(
        script.exists(),
        "{} is missing: run `npm ci && npm run build` (scripts/test.sh does)",
        script.display()
    );
    let w = World::with_usdc(&["poster"]).await;
    let mint = w.net.mint().unwrap();
    let usdc = Currency::Token {
        mint,
        token_program: TOKEN_PROGRAM_ID,
    };
    let poster = w.key("poster");
    // A spec hosted by an earlier post (the CLI uploaded it with its dataset).
    let (first, _) = w.post("poster", &w.small_spec("small.json", 1), "1");
    let hosted = w.net.client().job(&first).await.unwrap().unwrap();
    let script_run = |reward: &str| {
        std::process::Command::new("node")
            .arg(&script)
            .args(["--url", w.net.rpc_url(), "--ws-url", w.net.ws_url()])
            .args(["--keypair", w.keyfile("poster").to_str().unwrap()])
            .args(["--market", &w.market.to_string()])
            .args(["--spec-uri", &hosted.spec_uri])
            .args(["--spec-sha256", &hex::encode(hosted.spec_hash)])
            .args(["--reward", reward, "--max-duration", "3600"])
            .output()
            .expect("node must be installed to run the wallet script")
    };
    let before = tokens(&w, &usdc, &poster).await;

    let out = script_run("12.5");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let posted: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(posted["reward"], "12500000", "{posted}");
    assert_eq!(posted["unit"], mint.to_string());
    assert_eq!(posted["decimals"], 6);
    let job: Pubkey = posted["job"].as_str().unwrap().parse().unwrap();
    let account = w.net.client().job(&job).await.unwrap().unwrap();
    assert_eq!(account.reward, 12_500_000);
    assert_eq!(account.terms.mint, mint);
    assert_eq!(tokens(&w, &usdc, &poster).await, before - 12_500_000);

    // More than the token account holds, or finer than the mint: refused, nothing sent.
    let held = before - 12_500_000;
    for (reward, why) in [
        ("2000000", "holds"),
        ("0.0000001", "6 decimals"),
        ("-1", "not an amount"),
    ] {
        let out = script_run(reward);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{reward}: {stderr}");
        assert!(stderr.contains(why), "{reward}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    }
    assert_eq!(tokens(&w, &usdc, &poster).await, held);
}
