//! The market end to end, the paths a job takes, as its users run it: the embedded chain
//! over JSON-RPC and websocket, the local S3 server, the provider's worker daemon (this
//! crate's dependency, run in this process on the CPU, exactly as `tensorgrid-worker` and
//! `tensorgrid demo` run it), and the `tensorgrid` binary for everything a poster, the market's
//! authority and a third party do.
//!
//! Every scenario ends with each of its job accounts closed and every account's lamports
//! checked: each party (a wallet, or an operator with its worker account, the market) changed by
//! what the program's terms say less the fees its transactions paid (each fee read back from
//! the chain, failed transactions included), every other account by its fees only, so that
//! all of them together fell by exactly the fees. The main paths run again in a market priced
//! in the chain's test USDC (`*_in_usdc`): there lamports move by fees only, and the tokens
//! each party holds (its token account, and its share the market's vault keeps for it: a
//! worker's stake and earnings, a poster's refunds, the market's fees) change by what the
//! terms say, all of them together by nothing, with the vault holding exactly those shares.
//! (Abandon is covered by
//! worker/tests/pipeline.rs, a dispute left to time out by crates/localnet/tests/every_instruction.rs
//! and the program suite.)
//!
//! The tests take turns: each trains on the CPU, and two at once would only slow both.

mod common;

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use common::{events, finished, repo, World};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tensorgrid_artifacts::{fetch, ReadPolicy};
use tensorgrid_client::{
    anchor_lang::prelude::Pubkey,
    pda,
    state::{Job, JobState, Worker},
};
use tensorgrid_localnet::SOL;
use tensorgrid_train::{
    data,
    spec::JobSpec,
    trainer::{self, ProgressFn, TrainOptions},
};
use tensorgrid_worker::{Daemon, FileConfig, Status};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

fn serial() -> &'static tokio::sync::Mutex<()> {
    static M: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();
    M.get_or_init(|| tokio::sync::Mutex::new(()))
}

/// The wallets of every scenario: a poster, two worker operators, a stranger, three verifier
/// operators; plus the market's authority (the chain's payer).
const WALLETS: [&str; 8] = [
    "poster",
    "op1",
    "op2",
    "anyone",
    "v1",
    "v2",
    "v3",
    "authority",
];

async fn world() -> World {
    World::with_accounts(&WALLETS[..7]).await
}

/// The scenario's world, its market priced in the test USDC when `usdc`.
async fn world_in(usdc: bool) -> World {
    if usdc {
        World::with_usdc(&WALLETS[..7]).await
    } else {
        world().await
    }
}

/// Runs the scenario `$body` (an `async fn(bool)`) in SOL as `$sol` and in USDC as `$usdc`.
macro_rules! in_both_units {
    ($body:ident, $sol:ident, $usdc:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sol() {
            $body(false).await
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $usdc() {
            $body(true).await
        }
    };
}

/// A worker daemon running in this process.
struct RunningWorker {
    operator: Pubkey,
    /// The worker account (PDA).
    account: Pubkey,
    status: Status,
    cancel: CancellationToken,
    run: JoinHandle<()>,
    /// The first training step reported, per total: a resumed run starts past 0.
    first_steps: Arc<Mutex<Vec<u64>>>,
}

impl RunningWorker {
    /// Stops it as SIGTERM does (checkpoint, leave the claim) and waits until it has.
    async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(60), self.run)
            .await
            .expect("the worker stops within a minute")
            .unwrap();
    }

    async fn wait_for(
        &self,
        what: &str,
        secs: u64,
        ok: impl Fn(&tensorgrid_worker::Snapshot) -> bool,
    ) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.status.snapshot();
            if ok(&s) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "worker: no {what} after {secs} s: {s:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Every account of a scenario (the wallets, the market, the worker and job accounts) with
/// its lamports at the start; `settle` checks each account's change at the end.
struct Ledger {
    start: Vec<(Pubkey, u64)>,
    /// Transactions that existed when the ledger opened (not this scenario's).
    old: HashSet<String>,
    /// Accounts a wallet created and keeps (its poster account, whose rent stays in it):
    /// counted as part of that wallet.
    kept: HashMap<Pubkey, Pubkey>,
    /// In a token market: what each account held in tokens at the start (see `tokens_held`).
    tokens: Option<HashMap<Pubkey, u64>>,
}

#[derive(serde::Deserialize)]
struct SignatureInfo {
    signature: String,
}

impl Ledger {
    /// Every wallet of the scenario and the market; worker and job accounts join as they
    /// appear (they held nothing before).
    async fn open(w: &World) -> Self {
        let mut start = Vec::new();
        for k in WALLETS.iter().map(|n| w.key(n)).chain([w.market]) {
            start.push((k, w.balance(&k).await));
        }
        let tokens = match w.net.mint() {
            None => None,
            Some(_) => {
                let mut held = HashMap::new();
                for (k, _) in &start {
                    held.insert(*k, tokens_held(w, k).await);
                }
                Some(held)
            }
        };
        Self {
            start,
            old: signatures(w).await,
            kept: HashMap::new(),
            tokens,
        }
    }

    /// An account that appeared (it held nothing before, lamports or tokens).
    fn add(&mut self, account: Pubkey) {
        if !self.start.iter().any(|(k, _)| *k == account) {
            self.start.push((account, 0));
            if let Some(t) = self.tokens.as_mut() {
                t.insert(account, 0);
            }
        }
    }

    /// `account`, created by `wallet` and kept, counts as part of `wallet` from now on.
    fn keep(&mut self, wallet: Pubkey, account: Pubkey) {
        self.add(account);
        self.kept.insert(wallet, account);
    }

    /// `ks` with the accounts their wallets keep.
    fn party(&self, ks: &[Pubkey]) -> Vec<Pubkey> {
        ks.iter()
            .flat_map(|k| std::iter::once(*k).chain(self.kept.get(k).copied()))
            .collect()
    }

    /// The fees of this scenario's transactions, by the wallet that paid them (each read back
    /// from the chain, failed transactions included).
    async fn fees(&self, w: &World) -> HashMap<Pubkey, u64> {
        let wallets: Vec<Pubkey> = WALLETS.iter().map(|n| w.key(n)).collect();
        let mut fees = HashMap::new();
        for sig in signatures(w).await.difference(&self.old) {
            // The all-ones signature: where the embedded chain files transactions refused
            // before they ran (nothing charged).
            if sig.bytes().all(|b| b == b'1') {
                continue;
            }
            let tx: Value = w
                .net
                .client()
                .raw(
                    "getTransaction",
                    json!([sig, {"encoding": "json", "commitment": "confirmed",
                                 "maxSupportedTransactionVersion": 0}]),
                )
                .await
                .unwrap();
            let payer: Pubkey = tx["transaction"]["message"]["accountKeys"][0]
                .as_str()
                .unwrap_or_else(|| panic!("transaction {sig}: {tx}"))
                .parse()
                .unwrap();
            assert!(
                wallets.contains(&payer),
                "{sig} paid by {payer}, not a wallet of the scenario"
            );
            let meta = &tx["meta"];
            // A failed transaction: what its payer lost (the chain reports a fee even for the
            // failures that charged nothing).
            let fee = if meta["err"].is_null() {
                meta["fee"].as_u64().unwrap()
            } else {
                meta["preBalances"][0].as_u64().unwrap() - meta["postBalances"][0].as_u64().unwrap()
            };
            *fees.entry(payer).or_default() += fee;
        }
        fees
    }

    /// Checks every account's change, to the lamport: each group of `expected` (a party: a
    /// wallet, or an operator with its worker account) changed by its amount less the fees its
    /// wallets paid; every other account only by its own fees (a job account: closed, back to
    /// nothing). So the lamports of all of them together fell by exactly the fees.
    ///
    /// In a token market the amounts are tokens: lamports then move by fees only (each
    /// group's change is its fees, rent moving within it), and the tokens each group holds
    /// change by its amount, every other account's by nothing, all of them together by
    /// nothing, and the vault holds exactly what the program's accounts say it keeps.
    async fn settle(&self, w: &World, expected: &[(&[Pubkey], i128)]) {
        if let Some(start) = &self.tokens {
            let lamports: Vec<(&[Pubkey], i128)> = expected.iter().map(|(g, _)| (*g, 0)).collect();
            self.settle_lamports(w, &lamports).await;
            let mut after = HashMap::new();
            for k in start.keys() {
                after.insert(*k, tokens_held(w, k).await);
            }
            let moved = |ks: &[Pubkey]| -> i128 {
                ks.iter().map(|k| after[k] as i128 - start[k] as i128).sum()
            };
            let mut grouped = HashSet::new();
            for (group, amount) in expected {
                let group = self.party(group);
                grouped.extend(group.iter().copied());
                assert_eq!(moved(&group), *amount, "{group:?}: tokens held");
            }
            let others: Vec<Pubkey> = start
                .keys()
                .filter(|k| !grouped.contains(*k))
                .copied()
                .collect();
            for k in others {
                assert_eq!(moved(&[k]), 0, "{k} should hold the tokens it held");
            }
            let all: Vec<Pubkey> = start.keys().copied().collect();
            assert_eq!(moved(&all), 0, "tokens not conserved");
            // What the program's accounts keep is what the vault holds, to the base unit.
            let wallets: HashSet<Pubkey> = WALLETS.iter().map(|n| w.key(n)).collect();
            let kept: u64 = all
                .iter()
                .filter(|k| !wallets.contains(*k))
                .map(|k| after[k])
                .sum();
            let vault = tensorgrid_client::currency::vault(&w.market);
            let in_vault = w.net.client().token_balance(&vault).await.unwrap().unwrap();
            assert_eq!(
                in_vault, kept,
                "the vault holds exactly the market's shares"
            );
            return;
        }
        self.settle_lamports(w, expected).await;
    }

    async fn settle_lamports(&self, w: &World, expected: &[(&[Pubkey], i128)]) {
        let fees = self.fees(w).await;
        let mut after = HashMap::new();
        for (k, _) in &self.start {
            after.insert(*k, w.balance(k).await);
        }
        let start: HashMap<Pubkey, u64> = self.start.iter().copied().collect();
        let change = |ks: &[Pubkey]| -> (i128, i128) {
            let moved: i128 = ks.iter().map(|k| after[k] as i128 - start[k] as i128).sum();
            let paid: i128 = ks.iter().map(|k| *fees.get(k).unwrap_or(&0) as i128).sum();
            (moved, paid)
        };
        let mut grouped = HashSet::new();
        for (group, amount) in expected {
            let group = &self.party(group);
            for k in group.iter() {
                assert!(start.contains_key(k), "{k} is not in the ledger");
                assert!(grouped.insert(*k), "{k} is in two groups");
            }
            let (moved, paid) = change(group);
            assert_eq!(
                moved,
                amount - paid,
                "{group:?}: expected {amount} less {paid} in fees"
            );
        }
        let kept: HashSet<Pubkey> = self.kept.values().copied().collect();
        for (k, _) in self
            .start
            .iter()
            .filter(|(k, _)| !grouped.contains(k) && !kept.contains(k))
        {
            let (moved, paid) = change(&self.party(&[*k]));
            assert_eq!(moved, -paid, "{k} should have changed by its fees only");
        }
        let total_paid: u64 = fees.values().sum();
        let (sum_before, sum_after): (u64, u64) = (start.values().sum(), after.values().sum());
        assert_eq!(sum_before, sum_after + total_paid, "lamports not conserved");
    }
}

/// What `k` holds in a token market: a wallet its token account of the mint; the program's
/// accounts their share of the vault (the market its unclaimed fees, a worker account its
/// stake and earnings, a poster account its refunds, a job its reward and compensation).
async fn tokens_held(w: &World, k: &Pubkey) -> u64 {
    use tensorgrid_client::{
        anchor_lang::Discriminator,
        state::{Market, Poster},
    };
    let client = w.net.client();
    if WALLETS.iter().any(|n| w.key(n) == *k) {
        return client
            .token_balance(&w.currency().token_account(k).unwrap())
            .await
            .unwrap()
            .unwrap_or(0);
    }
    let Some(account) = client.account(k).await.unwrap() else {
        return 0;
    };
    assert_eq!(
        account.owner,
        tensorgrid_client::program_id(),
        "{k}: neither a wallet of the scenario nor the program's"
    );
    let disc = &account.data[..8];
    if disc == Market::DISCRIMINATOR {
        client.market(k).await.unwrap().fees_unclaimed
    } else if disc == Worker::DISCRIMINATOR {
        let a = client.worker(k).await.unwrap().unwrap();
        a.stake + a.earnings
    } else if disc == Poster::DISCRIMINATOR {
        client.fetch::<Poster>(k).await.unwrap().unwrap().refunds
    } else if disc == Job::DISCRIMINATOR {
        let j = client.job(k).await.unwrap().unwrap();
        j.reward + j.compensation
    } else {
        // A dispute is closed by the time a scenario settles; the verifier pool holds none.
        0
    }
}

/// Every transaction a wallet of the scenario appears in, failed ones too.
async fn signatures(w: &World) -> HashSet<String> {
    let mut out = HashSet::new();
    for name in WALLETS {
        let infos: Vec<SignatureInfo> = w
            .net
            .client()
            .raw(
                "getSignaturesForAddress",
                json!([w.key(name).to_string(), {"limit": 1000, "commitment": "confirmed"}]),
            )
            .await
            .unwrap();
        out.extend(infos.into_iter().map(|i| i.signature));
    }
    out
}

impl World {
    /// What the market is priced in.
    fn currency(&self) -> tensorgrid_client::Currency {
        match self.net.mint() {
            None => tensorgrid_client::Currency::Sol,
            Some(mint) => tensorgrid_client::Currency::Token {
                mint,
                token_program: tensorgrid_client::currency::TOKEN_PROGRAM_ID,
            },
        }
    }

    /// One whole unit of the market's (a SOL, or a USDC), in base units.
    fn one(&self) -> u64 {
        match self.net.mint() {
            None => SOL,
            Some(_) => 10u64.pow(u32::from(tensorgrid_localnet::usdc::DECIMALS)),
        }
    }

    /// Starts the worker daemon for wallet `who` (CPU, its own work directory, a stake of 2
    /// of the market's unit), registered when this returns. `extra` is appended to its TOML
    /// configuration (in a USDC market its `min_reward_per_hour_sol` becomes the mint's).
    async fn start_worker(&self, who: &str, extra: &str) -> RunningWorker {
        let work_dir = self.dir.path().join(format!("worker-{who}"));
        let mut toml = format!(
            "rpc_urls = [{:?}]\nws_url = {:?}\nkeypair = {:?}\nmarket = \"{}\"\n\
             work_dir = {:?}\nstore = \"s3://tensorgrid\"\ndevice = \"cpu\"\n\
             allow_http = true\npoll_interval = \"1s\"\nstatus_listen = \"\"\nstake_sol = \"2\"\n",
            self.net.rpc_url(),
            self.net.ws_url(),
            self.keyfile(who),
            self.market,
            work_dir,
        );
        match self.net.mint() {
            None => toml.push_str(&format!("{extra}\n")),
            Some(mint) => {
                let mut table = format!("[mint.{mint}]\nstake = \"2\"\n");
                for line in extra.lines() {
                    match line.strip_prefix("min_reward_per_hour_sol") {
                        Some(rest) => table.push_str(&format!("min_reward_per_hour{rest}\n")),
                        None => toml.push_str(&format!("{line}\n")),
                    }
                }
                toml.push_str(&table);
            }
        }
        let config = FileConfig::parse(&toml)
            .unwrap()
            .resolve(self.dir.path())
            .unwrap();
        let first_steps = Arc::new(Mutex::new(Vec::new()));
        let seen = first_steps.clone();
        let last = Arc::new(Mutex::new(None::<u64>));
        let progress: ProgressFn = Arc::new(move |p: &trainer::Progress| {
            // A new run of the trainer starts (its first report, or a step going backwards).
            let mut last = last.lock().unwrap();
            if last.is_none_or(|l| p.step <= l) {
                seen.lock().unwrap().push(p.step);
            }
            *last = Some(p.step);
        });
        let cancel = CancellationToken::new();
        let daemon = Daemon::start(config, cancel.clone(), Some(progress))
            .await
            .unwrap();
        let operator = self.key(who);
        RunningWorker {
            operator,
            account: pda::worker(&self.market, &operator).0,
            status: daemon.status().clone(),
            cancel,
            run: tokio::spawn(daemon.run()),
            first_steps,
        }
    }

    async fn job(&self, job: &Pubkey) -> Option<Job> {
        self.net.client().job(job).await.unwrap()
    }

    async fn market_fees(&self) -> u64 {
        self.net
            .client()
            .market(&self.market)
            .await
            .unwrap()
            .fees_unclaimed
    }

    /// `job dispute JOB --segment N` as the poster, then waits until the verifiers are drawn
    /// (the command draws them, unless the disputed worker's daemon did first).
    async fn dispute(&self, job: &Pubkey, segment: u32) {
        let seg = segment.to_string();
        let names = self.job_cmd("poster", "dispute", job, &["--segment", &seg]);
        assert!(
            names == ["disputed", "verifiers drawn"] || names == ["disputed"],
            "{names:?}"
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let d = self.net.client().dispute_of(job).await.unwrap();
            if d.is_none_or(|d| d.phase != tensorgrid_client::state::DisputePhase::Drawing) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the verifiers of {job} were not drawn"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Moves the chain's clock past `t` and waits until the chain reports it.
    async fn warp_past(&self, t: i64) {
        self.net.warp_to(t + 1).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.net.client().chain_time().await.unwrap() <= t {
            assert!(Instant::now() < deadline, "the clock did not move past {t}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn worker_account(&self, worker: &Pubkey) -> Worker {
        self.net.client().worker(worker).await.unwrap().unwrap()
    }

    /// Waits until `job` is in `state`; returns it.
    async fn wait_state(&self, job: &Pubkey, state: JobState, secs: u64) -> Job {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let j = self.job(job).await;
            match &j {
                Some(j) if j.state == state => return j.clone(),
                _ => assert!(
                    Instant::now() < deadline,
                    "job {job} not {state:?} after {secs} s: {j:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until one of `jobs` is submitted; returns it.
    async fn wait_any_submitted(&self, jobs: &[Pubkey], secs: u64) -> (Pubkey, Job) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            for job in jobs {
                if let Some(j) = self
                    .job(job)
                    .await
                    .filter(|j| j.state == JobState::Submitted)
                {
                    return (*job, j);
                }
            }
            assert!(
                Instant::now() < deadline,
                "none of {jobs:?} submitted after {secs} s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Posts `spec` as the poster through the CLI; the job's address (the ledger follows it,
    /// and the poster account the first post creates, as part of the poster's wallet).
    fn post_job(&self, ledger: &mut Ledger, spec: &std::path::Path, reward: &str) -> Pubkey {
        let (job, out) = self.post("poster", spec, reward);
        let poster = self.key("poster");
        let account = tensorgrid_client::pda::poster(&self.market, &poster).0;
        let names = events(&out);
        if names == ["poster account created", "posted"] {
            assert!(!ledger.kept.contains_key(&poster), "created twice");
            ledger.keep(poster, account);
        } else {
            assert_eq!(names, ["posted"]);
        }
        ledger.add(job);
        job
    }

    /// `tensorgrid job ACTION JOB` as `who`; the names of the events it emitted.
    fn job_cmd(&self, who: &str, action: &str, job: &Pubkey, extra: &[&str]) -> Vec<String> {
        let job = job.to_string();
        let mut args = vec!["job", action, job.as_str()];
        args.extend_from_slice(extra);
        events(&self.run(who, &args).ok())
    }

    /// The event names of a (closed) job's history, as `job show` reads them from the chain.
    /// Asserts `job`'s history ends with its verifiers' vote tallied, then `outcome`
    /// (`paid`, `refunded`), then the dispute closed.
    fn settled_by_the_vote(&self, job: &Pubkey, outcome: &str) {
        let h = self.history(job);
        assert!(
            h.ends_with(&[
                "votes tallied".into(),
                outcome.into(),
                "dispute closed".into()
            ]),
            "{h:?}"
        );
    }

    fn history(&self, job: &Pubkey) -> Vec<String> {
        let shown = self.run("anyone", &["job", "show", &job.to_string()]).ok();
        shown["history"]
            .as_array()
            .unwrap_or_else(|| panic!("no history: {shown}"))
            .iter()
            .map(|h| h["event"].as_str().unwrap().to_string())
            .collect()
    }

    /// The job account is gone and its history ends with `last` (and, after a dispute, the
    /// dispute account's closing).
    async fn closed(&self, job: &Pubkey, last: &str) {
        assert!(
            self.net.client().account(job).await.unwrap().is_none(),
            "job {job} still open"
        );
        let h = self.history(job);
        let end: Vec<&str> = h
            .iter()
            .map(String::as_str)
            .filter(|e| *e != "dispute closed")
            .collect();
        assert_eq!(end.last().copied(), Some(last), "{h:?}");
    }
}

/// The digits CNN for `epochs`, checkpointed every 10 steps: a job that trains for seconds.
fn cnn(epochs: u32) -> impl FnOnce(&mut Value) {
    move |v| {
        v["model"] = json!({"kind": "cnn", "input_shape": [1, 8, 8], "channels": [16, 32]});
        v["training"]["epochs"] = epochs.into();
        v["training"]["checkpoint_every"] = 10.into();
    }
}

/// A language model's result: `job verify` re-evaluates it and has it write text from the
/// held-out split, shown in the report and drawn beside the curve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_language_model_is_verified_with_a_sample_of_its_text() {
    let _one = serial().lock().await;
    let w = world().await;
    let mut ledger = Ledger::open(&w).await;
    let worker = w.start_worker("op1", "").await;
    ledger.add(worker.account);
    let spec = w.spec("charlm.json", |v| {
        let shipped: Value = serde_json::from_slice(
            &std::fs::read(common::repo().join("jobs/kjv-charlm.json")).unwrap(),
        )
        .unwrap();
        *v = shipped;
        let data = common::repo().join("data/kjv.txt").canonicalize().unwrap();
        v["dataset"]["uri"] = format!("file://{}", data.display()).into();
        // A few steps: the text is gibberish, the check is that it is there.
        v["training"]["steps"] = 20.into();
        v["training"]["eval_every"] = 10.into();
        v["training"]["checkpoint_every"] = 10.into();
        v["evaluation"]["threshold"] = 10.0.into();
    });
    let job = w.post_job(&mut ledger, &spec, "1");
    w.wait_state(&job, JobState::Submitted, 180).await;
    let out = w.dir.path().join(format!("verified-{job}"));
    let verified = w.verify("poster", &job, &out);
    common::check_shape("job_verify_language_model", &verified).unwrap();
    let sample = &verified["sample"];
    assert_eq!(sample["temperature"], 0.8, "{verified:#}");
    assert_eq!(sample["prompt"].as_str().unwrap().chars().count(), 40);
    assert_eq!(
        sample["continuation"].as_str().unwrap().chars().count(),
        240
    );
    // The poster's own text (here: the corpus's first 2,000 characters) measured too.
    let own = w.dir.path().join("own.txt");
    let text: String = std::fs::read_to_string(common::repo().join("data/kjv.txt"))
        .unwrap()
        .chars()
        .take(2_000)
        .collect();
    std::fs::write(&own, text).unwrap();
    let mine = w
        .run(
            "poster",
            &[
                "job",
                "verify",
                &job.to_string(),
                "--out",
                w.dir.path().join("own-check").to_str().unwrap(),
                "--eval-data",
                own.to_str().unwrap(),
            ],
        )
        .ok();
    assert_eq!(mine["private_eval"]["samples"], 2_000, "{mine:#}");
    assert!(
        mine["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "your own data" && c["ok"] == true),
        "{mine:#}"
    );
    // The curve is the wide one, with the text panel.
    let png = std::fs::read(verified["curve_png"].as_str().unwrap()).unwrap();
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 1440);
    worker.stop().await;
}

/// A fine-tune posted from local files: `job post` uploads the text, the tokenizer and the
/// initial weights (the shipped GPT-2 base) with the spec, the worker trains from them, and
/// `job verify` fetches them again to re-evaluate, spot-check two segments and measure the
/// poster's own text — every path that builds the model from the weights.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finetune_posted_from_local_files_is_trained_verified_and_spot_checked() {
    let _one = serial().lock().await;
    let w = world().await;
    let mut ledger = Ledger::open(&w).await;
    let worker = w.start_worker("op1", "").await;
    ledger.add(worker.account);
    let repo = repo();
    let text = std::fs::read(repo.join("data/web-nt.txt")).unwrap();
    let cut = |n: usize| text[..n].iter().rposition(|b| *b == b'\n').unwrap() + 1;
    let train = w.dir.path().join("web-part.txt");
    std::fs::write(&train, &text[..cut(60_000)]).unwrap();
    let own = w.dir.path().join("own-text.txt");
    std::fs::write(&own, &text[cut(60_000)..cut(70_000)]).unwrap();
    let shipped: Value =
        serde_json::from_slice(&std::fs::read(repo.join("jobs/kjv-gpt2-web.json")).unwrap())
            .unwrap();
    let file = |path: std::path::PathBuf| {
        let bytes = std::fs::read(&path).unwrap();
        serde_json::json!({
            "uri": format!("file://{}", path.canonicalize().unwrap().display()),
            "sha256": hex::encode(Sha256::digest(&bytes)),
            "bytes": bytes.len(),
        })
    };
    let mut spec = shipped.clone();
    spec["dataset"] = file(train.clone());
    spec["dataset"]["format"] = shipped["dataset"]["format"].clone();
    spec["dataset"]["format"]["tokenizer"] = file(repo.join("data/kjv-gpt2/tokenizer.json"));
    spec["dataset"]["eval_fraction"] = 0.05.into();
    spec["dataset"].as_object_mut().unwrap().remove("bytes");
    spec["model"]["init"] = file(repo.join("data/kjv-gpt2/model.safetensors"));
    spec["training"]["steps"] = 6.into();
    spec["training"]["batch_size"] = 4.into();
    spec["training"]["eval_every"] = 3.into();
    spec["training"]["commit_every"] = 2.into();
    spec["training"]["checkpoint_every"] = 0.into();
    spec["evaluation"]["threshold"] = 1e9.into();
    spec["limits"]["max_dataset_bytes"] = 100_000.into();
    let path = w.dir.path().join("finetune.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();

    let job = w.post_job(&mut ledger, &path, "1");
    w.wait_state(&job, JobState::Submitted, 180).await;
    let out = w.dir.path().join(format!("finetune-{job}"));
    let v = w
        .run(
            "poster",
            &[
                "job",
                "verify",
                &job.to_string(),
                "--out",
                out.to_str().unwrap(),
                "--spot-check",
                "2",
                "--eval-data",
                own.to_str().unwrap(),
            ],
        )
        .ok();
    assert_eq!(v["passed"], true, "{v:#}");
    let check = |name: &str| {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == name && c["ok"] == true)
    };
    assert!(check("job files"), "{v:#}");
    assert!(check("your own data"), "{v:#}");
    assert_eq!(v["spot_check"]["mismatches"], 0, "{v:#}");
    assert_eq!(v["spot_check"]["checked"].as_array().unwrap().len(), 2);
    // The posted spec names the uploaded files, by content, and the result the weights.
    let posted: Value =
        serde_json::from_slice(&std::fs::read(out.join("posted-spec.json")).unwrap()).unwrap();
    let init = posted["model"]["init"]["uri"].as_str().unwrap();
    assert!(
        init.starts_with("s3://")
            && init.ends_with(spec["model"]["init"]["sha256"].as_str().unwrap()),
        "{init}"
    );
    let m = tensorgrid_train::manifest::read(&out).unwrap();
    assert_eq!(
        m.init_sha256.as_deref(),
        spec["model"]["init"]["sha256"].as_str()
    );
    assert!(out.join("tokenizer.json").exists() && out.join("config.json").exists());
    worker.stop().await;
}

/// The demo's flow: a worker trains the job the poster posted, `job watch` follows it, the
/// poster verifies and accepts; the worker is paid the reward less the fee.
async fn posted_trained_verified_accepted_and_paid_in(usdc: bool) {
    let _one = serial().lock().await;
    let w = world_in(usdc).await;
    let one = w.one();
    let mut ledger = Ledger::open(&w).await;
    let worker = w.start_worker("op1", "").await;
    ledger.add(worker.account);

    let job = w.post_job(&mut ledger, &w.small_spec("digits.json", 4), "1");
    let watcher = w.spawn(
        "anyone",
        &["job", "watch", &job.to_string(), "--timeout", "3m"],
    );
    let submitted = w.wait_state(&job, JobState::Submitted, 120).await;
    assert_eq!(submitted.worker, worker.account);
    let verified = w.verify(
        "poster",
        &job,
        &w.dir.path().join(format!("verified-{job}")),
    );
    assert!(
        verified["sample"].is_null(),
        "a classifier has no text sample"
    );
    // `job verify --output json` keeps its shape (the other commands': tests/json_output.rs).
    common::check_shape("job_verify", &verified).unwrap();
    // The worker published its weights, not its states: it keeps them and publishes each on
    // request. The spot-check asks for two (a memo) and re-runs them to the bit.
    let m =
        tensorgrid_train::manifest::read(&w.dir.path().join(format!("verified-{job}"))).unwrap();
    let published = published_states(&job, &m.commitments).await;
    assert!(published.is_empty(), "{published:?}");
    let out = w.dir.path().join(format!("spot-{job}"));
    let spot = w
        .run(
            "poster",
            &[
                "job",
                "verify",
                &job.to_string(),
                "--out",
                out.to_str().unwrap(),
                "--spot-check",
                "2",
            ],
        )
        .ok();
    assert_eq!(spot["passed"], true, "{spot:#}");
    let spot = &spot["spot_check"];
    assert_eq!(spot["checked"].as_array().unwrap().len(), 2, "{spot:#}");
    assert_eq!(spot["mismatches"], 0, "{spot:#}");
    assert!(spot["of"].as_u64().unwrap() >= 2, "{spot:#}");
    common::check_shape("job_verify_spot_check", spot).unwrap();
    let checked: Vec<usize> = spot["checked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["segment"].as_u64().unwrap() as usize)
        .collect();
    assert_eq!(published_states(&job, &m.commitments).await, checked);
    assert_eq!(w.job_cmd("poster", "accept", &job, &[]), ["paid"]);
    worker
        .wait_for("payment", 30, |s| s.jobs_paid == 1 && s.current.is_none())
        .await;

    // `job watch` saw every transition, each with its signature, and exited when it closed.
    let watched = finished(watcher).await;
    assert_eq!(watched["outcome"], "paid");
    let steps = watched["history"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|h| h["event"].as_str().unwrap()).collect();
    assert_eq!(names, ["posted", "claimed", "submitted", "paid"]);
    assert!(steps
        .iter()
        .all(|h| h["signature"].as_str().is_some_and(|s| s.len() > 80)));

    w.closed(&job, "paid").await;
    let pay = submitted.terms.payout(one).unwrap();
    // The poster paid the reward (the job's rent came back); the operator's party (its wallet
    // and worker account: stake and rent moved between them) gained the payout; the market
    // the fee.
    ledger
        .settle(
            &w,
            &[
                (&[w.key("poster")], -(one as i128)),
                (&[worker.operator, worker.account], pay.to_worker as i128),
                (&[w.market], pay.fee as i128),
            ],
        )
        .await;
    let account = w.worker_account(&worker.account).await;
    assert_eq!(account.earnings, pay.to_worker);
    assert_eq!(account.record.jobs_completed, 1);
    assert_eq!(w.market_fees().await, pay.fee);
    worker.stop().await;
}

in_both_units!(
    posted_trained_verified_accepted_and_paid_in,
    posted_trained_verified_accepted_and_paid,
    posted_trained_verified_accepted_and_paid_in_usdc
);

/// Two workers, three jobs: each job is claimed once, the workers share them, two are accepted
/// by the poster and the third is finalized by a stranger after its challenge window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_three_jobs_each_paid_once() {
    let _one = serial().lock().await;
    let w = world().await;
    let mut ledger = Ledger::open(&w).await;
    let a = w.start_worker("op1", "").await;
    let b = w.start_worker("op2", "").await;
    ledger.add(a.account);
    ledger.add(b.account);

    // Jobs of a few seconds each: both workers are busy when the third is posted.
    let jobs: Vec<Pubkey> = (0..3)
        .map(|i| {
            let spec = w.spec(&format!("job{i}.json"), |v| {
                cnn(6)(v);
                v["training"]["seed"] = (100 + i).into();
            });
            w.post_job(&mut ledger, &spec, "0.5")
        })
        .collect();
    // A worker holds one job until it is paid (its collateral is at risk until then): the
    // poster accepts the first two as they are submitted, which frees a worker for the third.
    let mut done = HashMap::new();
    let mut waiting = jobs.clone();
    while waiting.len() > 1 {
        let (job, submitted) = w.wait_any_submitted(&waiting, 240).await;
        waiting.retain(|j| *j != job);
        assert_eq!(w.job_cmd("poster", "accept", &job, &[]), ["paid"]);
        done.insert(job, submitted);
    }
    let last = waiting[0];
    done.insert(last, w.wait_state(&last, JobState::Submitted, 240).await);
    let by_a = done.values().filter(|j| j.worker == a.account).count();
    let by_b = done.values().filter(|j| j.worker == b.account).count();
    assert_eq!(by_a + by_b, 3);
    assert!(by_a >= 1 && by_b >= 1, "both worked: {by_a} and {by_b}");

    // The worker holding the last one goes away (it would finalize its own job once the
    // window passes); a stranger's sweep does it instead. Not yet: the poster may still
    // dispute.
    let (holder, other) = if done[&last].worker == a.account {
        (a, b)
    } else {
        (b, a)
    };
    let (holder_op, holder_account) = (holder.operator, holder.account);
    let (other_op, other_account) = (other.operator, other.account);
    holder.stop().await;
    let early = w.run("anyone", &["job", "finalize", &last.to_string()]);
    assert!(
        early.failed().contains("may dispute until"),
        "{}",
        early.stderr
    );
    w.net.warp(2 * 3_600).await.unwrap();
    let f = w.run("anyone", &["job", "finalize", "--all"]).ok();
    assert_eq!(f["candidates"], 1, "{f}");
    assert_eq!(f["settled"].as_array().unwrap().len(), 1, "{f}");
    assert_eq!(events(&f["settled"][0]), ["paid"]);
    assert_eq!(f["settled_by_others"].as_array().unwrap().len(), 0, "{f}");
    other
        .wait_for("its payments", 30, |s| s.current.is_none())
        .await;
    other.stop().await;

    for job in &jobs {
        w.closed(job, "paid").await;
        let h = w.history(job);
        assert_eq!(h.iter().filter(|e| *e == "claimed").count(), 1, "{h:?}");
    }
    let pay = done[&last].terms.payout(SOL / 2).unwrap();
    let by = |account: Pubkey| done.values().filter(|j| j.worker == account).count() as i128;
    ledger
        .settle(
            &w,
            &[
                (&[w.key("poster")], -3 * (SOL / 2) as i128),
                (
                    &[holder_op, holder_account],
                    by(holder_account) * pay.to_worker as i128,
                ),
                (
                    &[other_op, other_account],
                    by(other_account) * pay.to_worker as i128,
                ),
                (&[w.market], 3 * pay.fee as i128),
            ],
        )
        .await;
    let (wh, wo) = (
        w.worker_account(&holder_account).await,
        w.worker_account(&other_account).await,
    );
    assert_eq!(wh.earnings, by(holder_account) as u64 * pay.to_worker);
    assert_eq!(wo.earnings, by(other_account) as u64 * pay.to_worker);
    assert_eq!(wh.record.jobs_completed + wo.record.jobs_completed, 3);
    assert_eq!(w.market_fees().await, 3 * pay.fee);
}

/// A disputed result goes to the market's authority. Resolved for the worker: paid as if
/// accepted. Resolved for the poster: the reward comes back with part of the worker's
/// collateral (the slash), and the worker carries on.
async fn disputes_resolved_for_the_worker_and_for_the_poster_in(usdc: bool) {
    let _one = serial().lock().await;
    let w = world_in(usdc).await;
    let one = w.one();
    let mut ledger = Ledger::open(&w).await;
    let worker = w.start_worker("op1", "").await;
    ledger.add(worker.account);

    // 1. For the worker. No verifiers in this market: the draw hands it to the authority.
    let won = w.post_job(&mut ledger, &w.small_spec("won.json", 3), "0.5");
    let submitted = w.wait_state(&won, JobState::Submitted, 120).await;
    let bond = submitted.terms.dispute.bond(one / 2).unwrap();
    w.dispute(&won, 0).await;
    let stranger = w.run(
        "anyone",
        &["job", "resolve", &won.to_string(), "--for", "worker"],
    );
    assert!(
        stranger.failed().contains("uthority"),
        "{}",
        stranger.stderr
    );
    assert_eq!(
        w.job_cmd("authority", "resolve", &won, &["--for", "worker"]),
        ["paid", "dispute closed"]
    );
    worker.wait_for("payment", 30, |s| s.jobs_paid == 1).await;
    w.closed(&won, "paid").await;
    let pay = submitted.terms.payout(one / 2).unwrap();
    assert_eq!(
        w.worker_account(&worker.account).await.earnings,
        pay.to_worker + bond,
        "paid, and the bond of a dispute ruled wrong"
    );

    // 2. For the poster: refunded, the worker slashed.
    let stake0 = w.worker_account(&worker.account).await.stake;
    let lost = w.post_job(&mut ledger, &w.small_spec("lost.json", 2), "0.5");
    let submitted = w.wait_state(&lost, JobState::Submitted, 120).await;
    w.dispute(&lost, 1).await;
    let r = w
        .run(
            "authority",
            &["job", "resolve", &lost.to_string(), "--for", "poster"],
        )
        .ok();
    assert_eq!(events(&r), ["refunded", "dispute closed"]);
    let slashed = submitted.terms.slash(submitted.collateral).unwrap();
    assert!(slashed > 0);
    assert_eq!(r["events"][0]["details"]["slashed"], slashed);
    w.closed(&lost, "refunded").await;
    let after = w.worker_account(&worker.account).await;
    assert_eq!(after.stake, stake0 - slashed);
    assert_eq!(
        after.earnings,
        pay.to_worker + bond,
        "nothing paid for the lost one"
    );

    // The worker carries on: the next job is trained and paid.
    let next = w.post_job(&mut ledger, &w.small_spec("next.json", 2), "0.5");
    w.wait_state(&next, JobState::Submitted, 120).await;
    assert_eq!(w.job_cmd("poster", "accept", &next, &[]), ["paid"]);
    worker.wait_for("payment", 30, |s| s.jobs_paid == 2).await;
    w.closed(&next, "paid").await;

    // The poster paid two rewards and the bond of the dispute it lost, and got the slash from
    // the one it won; the operator's party earned two payouts and that bond and lost the slash
    // (a stake top-up moves within the party).
    ledger
        .settle(
            &w,
            &[
                (
                    &[w.key("poster")],
                    -2 * (one / 2) as i128 + slashed as i128 - bond as i128,
                ),
                (
                    &[worker.operator, worker.account],
                    2 * pay.to_worker as i128 - slashed as i128 + bond as i128,
                ),
                (&[w.market], 2 * pay.fee as i128),
            ],
        )
        .await;
    assert_eq!(w.market_fees().await, 2 * pay.fee);
    assert_eq!(
        w.worker_account(&worker.account).await.earnings,
        2 * pay.to_worker + bond
    );
    worker.stop().await;
}

in_both_units!(
    disputes_resolved_for_the_worker_and_for_the_poster_in,
    disputes_resolved_for_the_worker_and_for_the_poster,
    disputes_resolved_for_the_worker_and_for_the_poster_in_usdc
);

/// A worker driven by this test rather than a daemon: it trains a job the way it is told (on
/// the evaluation rows, to cheat, or honestly), publishes the result with its committed
/// states, and submits.
struct Hand {
    operator: solana_keypair::Keypair,
    account: Pubkey,
}

impl Hand {
    async fn register(w: &World, who: &str) -> Self {
        let operator = tensorgrid_client::rpc::read_keypair(&w.keyfile(who)).unwrap();
        let args = tensorgrid_client::tensorgrid::instructions::WorkerRegisterArgs {
            stake: 2 * w.one(),
            hardware: tensorgrid_client::defaults::cpu("hand-driven"),
        };
        let ix = tensorgrid_client::instructions::worker_register_in(
            &w.currency(),
            solana_signer::Signer::pubkey(&operator),
            w.market,
            args,
        );
        w.net.client().send(&[ix], &[&operator]).await.unwrap();
        let account = pda::worker(&w.market, &solana_signer::Signer::pubkey(&operator)).0;
        Self { operator, account }
    }

    /// Claims `job`, trains it (on the evaluation rows when `cheat`), publishes (its states
    /// too when `with_states`) and submits.
    async fn deliver(&self, w: &World, job: &Pubkey, cheat: bool, with_states: bool) {
        let client = w.net.client();
        let keys = tensorgrid_client::instructions::WorkerKeys {
            operator: solana_signer::Signer::pubkey(&self.operator),
            market: w.market,
            worker: self.account,
        };
        let account = client.job(job).await.unwrap().unwrap();
        let claim = tensorgrid_client::instructions::job_claim(keys, *job, account.offer());
        client.send(&[claim], &[&self.operator]).await.unwrap();
        let store = tensorgrid_artifacts::Store::open(&format!(
            "s3://{}",
            tensorgrid_localnet::s3::LOCAL_BUCKET
        ))
        .unwrap();
        let policy = store.read_policy(ReadPolicy::default().with_http(true).with_private(true));
        let spec_bytes = fetch(&account.spec_uri, 1 << 20, &policy).await.unwrap();
        let spec = JobSpec::from_json(&spec_bytes).unwrap();
        let data_bytes = fetch(&spec.dataset.uri, 1 << 30, &policy).await.unwrap();
        let out = w.dir.path().join(format!("hand-{job}"));
        let (spec2, out2) = (spec.clone(), out.clone());
        let outcome = tokio::task::spawn_blocking(move || {
            let honest = data::split(&spec2, &data_bytes).unwrap();
            let split = if cheat {
                fitted_to_eval(&honest)
            } else {
                honest
            };
            let opts = TrainOptions::new(tensorgrid_train::Device::Cpu, &out2);
            trainer::train(&spec2, &spec_bytes, &split, &opts).unwrap()
        })
        .await
        .unwrap();
        // This worker publishes every state up front, as a worker may (the daemon keeps them
        // and publishes each on request), or none, and never serves them.
        let c = &outcome.manifest.commitments;
        let states: Vec<String> = (0..c.segments())
            .filter(|_| with_states)
            .filter_map(|i| c.start_file(i))
            .collect();
        let mut files = vec![
            tensorgrid_train::manifest::WEIGHTS_FILE,
            tensorgrid_train::manifest::METRICS_FILE,
        ];
        files.extend(states.iter().map(String::as_str));
        files.push(tensorgrid_train::manifest::MANIFEST_FILE);
        let uri =
            tensorgrid_artifacts::result::publish(&store, &format!("results/{job}"), &out, &files)
                .await
                .unwrap();
        let args = tensorgrid_client::tensorgrid::instructions::JobSubmitArgs {
            result_hash: outcome.result_hash,
            result_uri: uri,
            reported_metric: (outcome.manifest.result.value * 1e6).round() as u64,
        };
        let submit = tensorgrid_client::instructions::job_submit(keys, *job, args);
        client.send(&[submit], &[&self.operator]).await.unwrap();
    }
}

/// The segments of `job` whose start state is in the local store.
async fn published_states(job: &Pubkey, c: &tensorgrid_train::commit::Commitments) -> Vec<usize> {
    let store = tensorgrid_artifacts::Store::open(&format!(
        "s3://{}",
        tensorgrid_localnet::s3::LOCAL_BUCKET
    ))
    .unwrap();
    let mut out = Vec::new();
    for i in 0..c.segments() {
        let key = format!("results/{job}/{}", c.start_file(i).unwrap());
        if store.size(&key).await.unwrap().is_some() {
            out.push(i);
        }
    }
    out
}

/// The cheat: trained on the rows it is judged on, repeated to the training split's size so
/// the run has the spec's number of steps.
fn fitted_to_eval(honest: &data::Split) -> data::Split {
    let data::Split::Table {
        train,
        eval,
        classes,
        ..
    } = honest
    else {
        panic!("a table")
    };
    let idx: Vec<u32> = (0..train.rows())
        .map(|i| (i % eval.rows()) as u32)
        .collect();
    data::Split::Table {
        shards: None,
        train: eval.select(&idx),
        eval: eval.clone(),
        classes: *classes,
    }
}

/// Writes `rows` rows of the training split of `spec` (whose dataset is a local file) as a
/// dataset file of the same format: what a poster keeps back to check a result with.
fn own_rows(spec: &std::path::Path, out: &std::path::Path, rows: usize) {
    let v: Value = serde_json::from_slice(&std::fs::read(spec).unwrap()).unwrap();
    let spec = JobSpec::from_json(&serde_json::to_vec(&v).unwrap()).unwrap();
    let path = v["dataset"]["uri"]
        .as_str()
        .unwrap()
        .trim_start_matches("file://")
        .to_string();
    let split = data::split(&spec, &std::fs::read(path).unwrap()).unwrap();
    let data::Split::Table { train, .. } = &split else {
        panic!("a table")
    };
    let dim = train.dim;
    let images: Vec<u8> = train.features[..rows * dim]
        .iter()
        .flat_map(|v| (v * 16.0).to_le_bytes())
        .collect();
    let labels: Vec<u8> = train.labels[..rows]
        .iter()
        .flat_map(|&l| (l as f32).to_le_bytes())
        .collect();
    // The safetensors layout: a little-endian header length, the JSON header, the data.
    let header = json!({
        "images": {"dtype": "F32", "shape": [rows, dim], "data_offsets": [0, images.len()]},
        "labels": {"dtype": "F32", "shape": [rows],
                   "data_offsets": [images.len(), images.len() + labels.len()]},
    })
    .to_string();
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend(images);
    bytes.extend(labels);
    std::fs::write(out, bytes).unwrap();
}

/// Waits until `job`'s account is gone (settled).
async fn wait_closed(w: &World, job: &Pubkey, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while w.net.client().account(job).await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "job {job} not settled after {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The scenario: a worker that trained on the evaluation rows passes the plain check
/// but not the spot-check; the poster disputes the failing segment; three verifier daemons
/// re-run it, commit, reveal and settle it against the worker with no authority action. Then
/// a frivolous dispute of an honest result: the verifiers uphold it, the worker is paid and
/// the bond pays the verifiers and the worker. Every lamport accounted for.
async fn a_cheat_is_caught_by_re_execution_and_a_frivolous_dispute_pays_the_worker_in(usdc: bool) {
    let _one = serial().lock().await;
    let w = world_in(usdc).await;
    let one = w.one();
    let mut ledger = Ledger::open(&w).await;
    // Three verifier daemons that take no jobs of their own.
    let only_verify = "verify_disputes = true\nmin_reward_per_hour_sol = \"1000000\"";
    let mut verifiers = Vec::new();
    for who in ["v1", "v2", "v3"] {
        let v = w.start_worker(who, only_verify).await;
        ledger.add(v.account);
        verifiers.push(v);
    }
    let pool = pda::verifier_pool(&w.market);
    let deadline = Instant::now() + Duration::from_secs(60);
    for v in &verifiers {
        while w.worker_account(&v.account).await.pooled_stake == 0 {
            assert!(
                Instant::now() < deadline,
                "a verifier did not join the pool"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    ledger.add(pool);
    let hand = Hand::register(&w, "op1").await;
    ledger.add(hand.account);

    // 1. The cheat. A threshold its public score meets but an honest look does not.
    let spec = w.spec("cheat.json", |v| {
        v["training"]["epochs"] = 4.into();
        v["training"]["commit_every"] = 10.into();
        v["evaluation"]["threshold"] = 0.95.into();
    });
    let cheated = w.post_job(&mut ledger, &spec, "0.5");
    hand.deliver(&w, &cheated, true, true).await;
    let submitted = w.wait_state(&cheated, JobState::Submitted, 30).await;
    let terms = submitted.terms;
    let out = w.dir.path().join("cheat-plain");
    w.verify("poster", &cheated, &out);
    let spot = w.run(
        "poster",
        &[
            "job",
            "verify",
            &cheated.to_string(),
            "--out",
            w.dir.path().join("cheat-spot").to_str().unwrap(),
            "--segments",
            "2",
        ],
    );
    assert_ne!(spot.code, 0, "the spot-check fails");
    let spot = spot.json();
    assert_eq!(spot["spot_check"]["mismatches"], 1, "{spot:#}");
    // The poster's own held-out rows (400 rows of the training split, which the cheat never
    // saw; raw pixel values, as the dataset stores them) fail the threshold.
    let own = w.dir.path().join("own.safetensors");
    own_rows(&spec, &own, 400);
    let mine = w.run(
        "poster",
        &[
            "job",
            "verify",
            &cheated.to_string(),
            "--out",
            w.dir.path().join("cheat-own").to_str().unwrap(),
            "--eval-data",
            own.to_str().unwrap(),
        ],
    );
    assert_ne!(mine.code, 0, "the poster's own data fails it");
    let mine = mine.json();
    assert!(
        mine["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "your own data" && c["ok"] == false),
        "{mine:#}"
    );
    let disputed_at = Instant::now();
    w.dispute(&cheated, 2).await;
    let dispute = pda::dispute(&cheated);
    ledger.add(dispute);
    wait_closed(&w, &cheated, 180).await;
    println!(
        "dispute to settlement (fraud, 3 verifier daemons): {:.2} s",
        disputed_at.elapsed().as_secs_f64()
    );
    w.settled_by_the_vote(&cheated, "refunded");
    let fee = terms.dispute.verifier_fee(one / 2).unwrap();
    let bond = terms.dispute.bond(one / 2).unwrap();
    let slashed = terms.dispute.fraud_slash(submitted.collateral).unwrap();
    assert_eq!(
        w.worker_account(&hand.account).await.stake,
        2 * one - slashed
    );
    for v in &verifiers {
        let a = w.worker_account(&v.account).await;
        assert_eq!(
            (a.earnings, a.record.verifications, a.open_seats),
            (fee, 1, 0)
        );
    }

    // 2. A frivolous dispute of an honest result, trained by a worker daemon: it keeps its
    // states and publishes the disputed segment's when it sees the dispute.
    let honest_worker = w.start_worker("op2", "").await;
    ledger.add(honest_worker.account);
    let spec = w.spec("honest.json", |v| {
        v["training"]["epochs"] = 2.into();
        v["training"]["commit_every"] = 10.into();
    });
    let honest = w.post_job(&mut ledger, &spec, "0.5");
    let submitted = w.wait_state(&honest, JobState::Submitted, 120).await;
    assert_eq!(submitted.worker, honest_worker.account);
    let disputed_at = Instant::now();
    w.dispute(&honest, 0).await;
    ledger.add(pda::dispute(&honest));
    wait_closed(&w, &honest, 180).await;
    println!(
        "dispute to settlement (upheld, 3 verifier daemons): {:.2} s",
        disputed_at.elapsed().as_secs_f64()
    );
    w.settled_by_the_vote(&honest, "paid");
    let pay = terms.payout(one / 2).unwrap();
    let kept_of_bond = bond - 3 * fee;
    let a = w.worker_account(&honest_worker.account).await;
    assert_eq!(
        a.earnings,
        pay.to_worker + kept_of_bond,
        "paid, plus the bond less the fees"
    );
    // Its daemon would race the hand-driven worker for the next job: it has done its part.
    let honest_party = [honest_worker.operator, honest_worker.account];
    honest_worker.stop().await;

    // 3. A worker that never serves the disputed segment's state: past the middle of the
    // commit window (the chain's clock moved there) the verifiers count it withheld, a fraud.
    let spec = w.spec("withheld.json", |v| {
        v["training"]["epochs"] = 2.into();
        v["training"]["commit_every"] = 10.into();
    });
    let withheld = w.post_job(&mut ledger, &spec, "0.5");
    hand.deliver(&w, &withheld, false, false).await;
    let submitted = w.wait_state(&withheld, JobState::Submitted, 30).await;
    w.dispute(&withheld, 1).await;
    ledger.add(pda::dispute(&withheld));
    // The verifiers (polling every second) wait for the state rather than vote at once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let d = w.net.client().dispute_of(&withheld).await.unwrap().unwrap();
    assert!(
        d.seats
            .iter()
            .all(|s| s.vote == tensorgrid_client::state::VoteState::Drawn),
        "nobody votes on a state it cannot fetch before the middle of the window: {:?}",
        d.seats
    );
    let half = submitted.terms.dispute.verify_window_s / 2;
    w.net.warp_to(d.commit_ends_at - half + 1).await.unwrap();
    wait_closed(&w, &withheld, 120).await;
    w.settled_by_the_vote(&withheld, "refunded");
    let slashed_again = terms.dispute.fraud_slash(submitted.collateral).unwrap();
    assert_eq!(
        w.worker_account(&hand.account).await.stake,
        2 * one - slashed - slashed_again
    );

    // To the lamport: the poster paid two rewards and one bond and got back the cheat's
    // reward, its own bond and the slash less three fees (twice: the cheat, the withheld
    // state); the hand-driven worker lost both slashes; the honest worker was paid and kept
    // the bond less the fees; the verifiers earned nine fees (the pool's rent, paid by one of
    // them, stays in the pool: part of their group); the market the honest job's fee.
    ledger
        .settle(
            &w,
            &[
                (
                    &[w.key("poster")],
                    -(one as i128 / 2) - bond as i128 + slashed as i128 - 3 * fee as i128
                        + slashed_again as i128
                        - 3 * fee as i128,
                ),
                (
                    &[w.key("op1"), hand.account],
                    -(slashed as i128) - slashed_again as i128,
                ),
                (&honest_party, pay.to_worker as i128 + kept_of_bond as i128),
                (
                    &[
                        w.key("v1"),
                        w.key("v2"),
                        w.key("v3"),
                        verifiers[0].account,
                        verifiers[1].account,
                        verifiers[2].account,
                        pool,
                    ],
                    9 * fee as i128,
                ),
                (&[w.market], pay.fee as i128),
            ],
        )
        .await;
    for v in verifiers {
        v.stop().await;
    }
}

in_both_units!(
    a_cheat_is_caught_by_re_execution_and_a_frivolous_dispute_pays_the_worker_in,
    a_cheat_is_caught_by_re_execution_and_a_frivolous_dispute_pays_the_worker,
    a_cheat_is_caught_by_re_execution_and_a_frivolous_dispute_pays_the_worker_in_usdc
);

/// A worker goes down after claiming and misses its deadline: a stranger reclaims the job for
/// the bounty, the rest of the slash goes into the job's escrow for the poster, and the
/// reopened job, cancelled, returns reward, compensation and rent.
async fn a_missed_deadline_is_reclaimed_by_a_stranger_for_the_bounty_in(usdc: bool) {
    let _one = serial().lock().await;
    let w = world_in(usdc).await;
    let mut ledger = Ledger::open(&w).await;
    let worker = w.start_worker("op1", "").await;
    ledger.add(worker.account);
    let (operator, account) = (worker.operator, worker.account);

    let job = w.post_job(&mut ledger, &w.spec("long.json", cnn(40)), "0.5");
    let claimed = w.wait_state(&job, JobState::Claimed, 60).await;
    worker.stop().await;
    assert_eq!(w.job(&job).await.unwrap().state, JobState::Claimed);
    let stake0 = w.worker_account(&claimed.worker).await.stake;

    let early = w.run("anyone", &["job", "reclaim", &job.to_string()]);
    assert!(early.failed().contains("has until"), "{}", early.stderr);
    w.warp_past(claimed.deadline).await;
    let r = w.run("anyone", &["job", "reclaim", "--all"]).ok();
    assert_eq!(r["candidates"], 1, "{r}");
    assert_eq!(events(&r["settled"][0]), ["reclaimed"]);
    let split = claimed.terms.reclaim_split(claimed.collateral).unwrap();
    assert!(split.bounty > 0 && split.to_poster > 0);
    assert_eq!(
        r["settled"][0]["events"][0]["details"]["bounty"],
        split.bounty
    );
    let reopened = w.job(&job).await.unwrap();
    assert_eq!(reopened.state, JobState::Open);
    assert_eq!(reopened.compensation, split.to_poster);
    assert_eq!(
        w.worker_account(&claimed.worker).await.stake,
        stake0 - split.bounty - split.to_poster
    );

    assert_eq!(w.job_cmd("poster", "cancel", &job, &[]), ["cancelled"]);
    w.closed(&job, "cancelled").await;
    // The stranger earned the bounty, the poster the rest of the slash (with the reward and
    // the rent back), the operator's party lost both.
    let slash = (split.bounty + split.to_poster) as i128;
    ledger
        .settle(
            &w,
            &[
                (&[w.key("anyone")], split.bounty as i128),
                (&[w.key("poster")], split.to_poster as i128),
                (&[operator, account], -slash),
            ],
        )
        .await;
}

in_both_units!(
    a_missed_deadline_is_reclaimed_by_a_stranger_for_the_bounty_in,
    a_missed_deadline_is_reclaimed_by_a_stranger_for_the_bounty,
    a_missed_deadline_is_reclaimed_by_a_stranger_for_the_bounty_in_usdc
);

/// A job no worker takes (its reward is below what the running worker asks for) is cancelled
/// by its poster: everything comes back but the fees; a stranger cannot cancel it.
async fn a_job_cancelled_before_any_claim_returns_everything_in(usdc: bool) {
    let _one = serial().lock().await;
    let w = world_in(usdc).await;
    let mut ledger = Ledger::open(&w).await;
    let worker = w
        .start_worker("op1", "min_reward_per_hour_sol = \"1000\"")
        .await;
    ledger.add(worker.account);

    let job = w.post_job(&mut ledger, &w.small_spec("cheap.json", 2), "0.5");
    worker
        .wait_for("refusal", 30, |s| s.jobs_rejected >= 1)
        .await;
    // Refused for its pay, and the reason kept for the operator.
    let rejected = std::fs::read_to_string(w.dir.path().join("worker-op1/rejected.json")).unwrap();
    assert!(
        rejected.contains(&job.to_string()) && rejected.contains("per estimated hour"),
        "{rejected}"
    );
    assert_eq!(w.job(&job).await.unwrap().state, JobState::Open);
    let stranger = w.run("anyone", &["job", "cancel", &job.to_string()]);
    assert!(stranger.failed().contains("oster"), "{}", stranger.stderr);
    assert_eq!(w.job_cmd("poster", "cancel", &job, &[]), ["cancelled"]);
    w.closed(&job, "cancelled").await;

    // Nothing moved but fees: the operator's stake and rent went to its worker account.
    ledger
        .settle(&w, &[(&[worker.operator, worker.account], 0)])
        .await;
    assert_eq!(
        w.worker_account(&worker.account)
            .await
            .record
            .jobs_completed,
        0
    );
    worker.stop().await;
}

in_both_units!(
    a_job_cancelled_before_any_claim_returns_everything_in,
    a_job_cancelled_before_any_claim_returns_everything,
    a_job_cancelled_before_any_claim_returns_everything_in_usdc
);

/// The worker is stopped mid-training and started again: it resumes from its checkpoint, and
/// its result is the one an uninterrupted run gives (the same hash), verified and paid once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_restarted_mid_job_resumes_and_is_paid_once() {
    let _one = serial().lock().await;
    let w = world().await;
    let mut ledger = Ledger::open(&w).await;
    let first = w.start_worker("op1", "").await;
    ledger.add(first.account);

    let job = w.post_job(&mut ledger, &w.spec("resume.json", cnn(12)), "0.5");
    let ckpt: PathBuf = w
        .dir
        .path()
        .join("worker-op1/jobs")
        .join(job.to_string())
        .join("out/checkpoint/state.safetensors");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ckpt.exists() {
        assert!(
            Instant::now() < deadline,
            "no checkpoint: {:#?}",
            first.status.snapshot()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.stop().await;
    assert_eq!(w.job(&job).await.unwrap().state, JobState::Claimed);

    let second = w.start_worker("op1", "").await;
    let submitted = w.wait_state(&job, JobState::Submitted, 180).await;
    let resumed_at = second.first_steps.lock().unwrap().clone();
    assert!(
        resumed_at.first().is_some_and(|s| *s > 1),
        "the restarted worker trained from step 0: {resumed_at:?}"
    );

    // The hash an uninterrupted run of the same spec and data gives.
    let policy = ReadPolicy::default();
    let spec_bytes = fetch(&submitted.spec_uri, 1 << 20, &policy)
        .await
        .unwrap()
        .to_vec();
    let spec = JobSpec::from_json(&spec_bytes).unwrap();
    let data_bytes = fetch(&spec.dataset.uri, 1 << 24, &policy).await.unwrap();
    let out = w.dir.path().join("uninterrupted");
    let outcome = tokio::task::spawn_blocking(move || {
        let split = data::split(&spec, &data_bytes).unwrap();
        let opts = TrainOptions {
            resume: false,
            ..TrainOptions::new(tensorgrid_train::Device::Cpu, out)
        };
        trainer::train(&spec, &spec_bytes, &split, &opts).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(submitted.result_hash, outcome.result_hash);

    w.verify(
        "poster",
        &job,
        &w.dir.path().join(format!("verified-{job}")),
    );
    assert_eq!(w.job_cmd("poster", "accept", &job, &[]), ["paid"]);
    second
        .wait_for("payment", 30, |s| s.jobs_paid == 1 && s.current.is_none())
        .await;
    w.closed(&job, "paid").await;
    let h = w.history(&job);
    assert_eq!(h, ["posted", "claimed", "submitted", "paid"]);

    let pay = submitted.terms.payout(SOL / 2).unwrap();
    ledger
        .settle(
            &w,
            &[
                (&[w.key("poster")], -((SOL / 2) as i128)),
                (&[second.operator, second.account], pay.to_worker as i128),
                (&[w.market], pay.fee as i128),
            ],
        )
        .await;
    let account = w.worker_account(&second.account).await;
    assert_eq!(account.earnings, pay.to_worker);
    assert_eq!(account.record.jobs_completed, 1);
    second.stop().await;
}

/// Between the claim and the result the poster sees the worker's progress: the worker names
/// its progress file in a memo of its claim, `job watch` reads it and shows step, loss and
/// time left; after the submission watch says what the poster can do and until when.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poster_follows_training_progress_and_is_told_what_to_do_next() {
    let _one = serial().lock().await;
    let w = world().await;
    let mut ledger = Ledger::open(&w).await;
    let worker = w.start_worker("op1", "").await;
    ledger.add(worker.account);
    // Long enough (several seconds) for a few progress reports.
    let job = w.post_job(&mut ledger, &w.spec("long.json", cnn(60)), "1");
    // One watcher for a person (its lines on stderr), one for a program (JSON).
    let person = std::process::Command::new(env!("CARGO_BIN_EXE_tensorgrid"))
        .args(["job", "watch", &job.to_string(), "--timeout", "3m"])
        .args(["-u", w.net.rpc_url(), "-k"])
        .arg(w.keyfile("poster"))
        .env("HOME", w.dir.path())
        // Locally the poster's store is the workers' bucket: read with its credentials.
        .env("TENSORGRID_STORE", "s3://tensorgrid")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let program = w.spawn(
        "poster",
        &["job", "watch", &job.to_string(), "--timeout", "3m"],
    );
    w.wait_state(&job, JobState::Submitted, 180).await;
    // A poster takes a moment before accepting: the watchers see the submission first.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(w.job_cmd("poster", "accept", &job, &[]), ["paid"]);
    let out = tokio::task::spawn_blocking(move || person.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let watched = finished(program).await;
    let progress: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("progress"))
        .collect();
    assert!(!progress.is_empty(), "no progress shown:\n{stderr}");
    assert!(
        progress
            .iter()
            .any(|l| l.contains("training step") && l.contains("/")),
        "{stderr}"
    );
    let last = &watched["progress"];
    assert_eq!(last["job"], job.to_string(), "{watched:#}");
    assert!(last["total_steps"].as_u64().unwrap() > 0);
    // After the submission: verify, then accept or dispute, before the window ends.
    let next = stderr
        .lines()
        .find(|l| l.starts_with("next"))
        .unwrap_or_else(|| panic!("no next step:\n{stderr}"));
    assert!(
        next.contains("job verify") && next.contains("accept") && next.contains("dispute"),
        "{next}"
    );
    worker.stop().await;
}
