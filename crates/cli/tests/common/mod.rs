//! What the CLI's end-to-end tests share: a chain with a market and named wallets, the shared
//! local S3 server, and the `tensorgrid` binary run as a user runs it (`-u`, `-k`,
//! `--output json`), its output parsed.

// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use serde_json::Value;
use solana_signer::Signer;
use tensorgrid_client::{anchor_lang::prelude::Pubkey, rpc::Signature};
use tensorgrid_localnet::{default_market_params, Localnet, LocalnetBuilder};

pub fn s3() -> &'static tensorgrid_localnet::LocalS3 {
    tensorgrid_localnet::testing::shared_s3()
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The program's bytecode: `TENSORGRID_SO`, else this checkout's (named outright: a binary
/// run from elsewhere, with CI's target dir outside the checkout, would not find it).
pub fn so_path() -> PathBuf {
    std::env::var_os("TENSORGRID_SO")
        .map_or_else(|| repo().join("target/deploy/tensorgrid.so"), PathBuf::from)
}

/// A chain with the default market, wallets named by the test, and a directory that is the
/// CLI's working directory and HOME.
pub struct World {
    pub net: Localnet,
    pub dir: tempfile::TempDir,
    pub market: Pubkey,
}

/// One finished `tensorgrid` command.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }

    pub fn ok(self) -> Value {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self.json()
    }

    /// Failed with exactly one error line (no backtrace, no "Caused by").
    pub fn failed(&self) -> &str {
        assert_ne!(self.code, 0, "expected a failure; stdout: {}", self.stdout);
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(lines.len(), 1, "one line expected:\n{}", self.stderr);
        assert!(lines[0].starts_with("error: "), "{}", lines[0]);
        lines[0]
    }
}

impl World {
    /// A fresh chain with the default market and these funded wallets (the market's
    /// authority is the chain's payer, named "authority" here).
    pub async fn with_accounts(names: &[&str]) -> Self {
        Self::start(names, false).await
    }

    /// The same, the default market priced in the chain's test USDC (a million of it in each
    /// wallet's token account).
    #[allow(dead_code)]
    pub async fn with_usdc(names: &[&str]) -> Self {
        Self::start(names, true).await
    }

    async fn start(names: &[&str], usdc: bool) -> Self {
        s3();
        let dir = tempfile::tempdir().unwrap();
        let net = LocalnetBuilder::for_tests()
            .keypair_dir(dir.path().join("keys"))
            .accounts(names.iter().copied())
            .market(default_market_params())
            .usdc(usdc)
            .start()
            .await
            .unwrap();
        let market = net.market().unwrap();
        Self { net, dir, market }
    }

    pub fn keyfile(&self, who: &str) -> PathBuf {
        if who == "authority" {
            return self.net.payer().path.clone().unwrap();
        }
        self.net
            .accounts()
            .iter()
            .find(|a| a.name == who)
            .and_then(|a| a.path.clone())
            .unwrap_or_else(|| panic!("no wallet named {who}"))
    }

    pub fn key(&self, who: &str) -> Pubkey {
        if who == "authority" {
            return self.net.payer().keypair.pubkey();
        }
        self.net.account(who).pubkey()
    }

    fn command(&self, args: &[&str], url: &str, keypair: &Path) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tensorgrid"));
        c.args(args)
            .args([
                "-u",
                url,
                "-k",
                keypair.to_str().unwrap(),
                "--output",
                "json",
            ])
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env(
                "TENSORGRID_STORE",
                format!("s3://{}", tensorgrid_localnet::s3::LOCAL_BUCKET),
            )
            .env("RUST_BACKTRACE", "1")
            .env_remove("TENSORGRID_MARKET")
            .env_remove("RUST_LOG");
        c
    }

    /// `tensorgrid ARGS -u URL -k KEYPAIR --output json` with HOME in the test's directory.
    pub fn run_with(&self, args: &[&str], url: &str, keypair: &Path) -> Run {
        let out = self.command(args, url, keypair).output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        }
    }

    /// `tensorgrid ARGS` as `who` against this chain.
    pub fn run(&self, who: &str, args: &[&str]) -> Run {
        self.run_with(args, self.net.rpc_url(), &self.keyfile(who))
    }

    /// The same command, running in the background (stdout and stderr piped).
    pub fn spawn(&self, who: &str, args: &[&str]) -> Child {
        self.command(args, self.net.rpc_url(), &self.keyfile(who))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// `job post --spec SPEC --reward R --max-duration D EXTRA…` as `who`.
    pub fn post_run(
        &self,
        who: &str,
        spec: &str,
        reward: &str,
        duration: &str,
        extra: &[&str],
    ) -> Run {
        let mut args = vec![
            "job",
            "post",
            "--spec",
            spec,
            "--reward",
            reward,
            "--max-duration",
            duration,
        ];
        args.extend_from_slice(extra);
        self.run(who, &args)
    }

    /// Posts `spec` with two hours to do it; the job's address and the command's output.
    pub fn post(&self, who: &str, spec: &Path, reward: &str) -> (Pubkey, Value) {
        let v = self
            .post_run(who, spec.to_str().unwrap(), reward, "2h", &[])
            .ok();
        let job = address(&v, "job");
        (job, v)
    }

    pub async fn balance(&self, k: &Pubkey) -> u64 {
        self.net.client().balance(k).await.unwrap()
    }

    /// A copy of `jobs/digits-mlp.json` (its dataset as a local file, the CLI uploads it),
    /// changed by `edit`, written as `name`.
    pub fn spec(&self, name: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
        let repo = repo();
        let mut spec: Value =
            serde_json::from_slice(&std::fs::read(repo.join("jobs/digits-mlp.json")).unwrap())
                .unwrap();
        let data = repo.join("data/digits.safetensors").canonicalize().unwrap();
        spec["dataset"]["uri"] = format!("file://{}", data.display()).into();
        spec["evaluation"]["threshold"] = 0.5.into();
        edit(&mut spec);
        let path = self.dir.path().join(name);
        std::fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
        path
    }

    /// The digits MLP for `epochs` epochs.
    pub fn small_spec(&self, name: &str, epochs: u32) -> PathBuf {
        self.spec(name, |s| s["training"]["epochs"] = epochs.into())
    }

    /// `job verify JOB --out OUT` as `who`, which must pass (hashes against the chain, the
    /// model re-evaluated); its report.
    pub fn verify(&self, who: &str, job: &Pubkey, out: &Path) -> Value {
        let job = job.to_string();
        let args = ["job", "verify", &job, "--out", out.to_str().unwrap()];
        let v = self.run(who, &args).ok();
        assert_eq!(v["passed"], true, "{v:#}");
        v
    }

    /// The transaction a command reported exists on chain.
    pub async fn exists(&self, sig: &Value) {
        let sig: Signature = sig.as_str().unwrap().parse().unwrap();
        self.net.client().outcome(&sig).await.unwrap();
    }
}

/// Waits for a command started with `World::spawn`; it must succeed. Its JSON output.
pub async fn finished(child: Child) -> Value {
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The address labelled `label` in a command's JSON output.
pub fn address(v: &Value, label: &str) -> Pubkey {
    v[label]
        .as_str()
        .unwrap_or_else(|| panic!("no {label} in {v}"))
        .parse()
        .unwrap()
}

/// The names of the program events a command's transaction emitted.
pub fn events(v: &Value) -> Vec<String> {
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect()
}

/// Names, types and nesting, without the values: `{"job": "string", "job_id": "integer"}`.
pub fn shape(v: &Value) -> Value {
    match v {
        Value::Null => serde_json::json!("null"),
        Value::Bool(_) => serde_json::json!("boolean"),
        Value::Number(n) if n.is_u64() || n.is_i64() => serde_json::json!("integer"),
        Value::Number(_) => serde_json::json!("number"),
        Value::String(_) => serde_json::json!("string"),
        Value::Array(a) => Value::Array(a.first().map(shape).into_iter().collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
    }
}

/// `output`'s shape against `tests/json/NAME.json`, which `TENSORGRID_BLESS=1` (re)writes.
pub fn check_shape(name: &str, output: &Value) -> Result<(), String> {
    let got = shape(output);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/json/{name}.json"));
    if std::env::var_os("TENSORGRID_BLESS").is_some() {
        // Blessing passes every check: never where the checks are the point.
        assert!(
            std::env::var_os("CI").is_none(),
            "TENSORGRID_BLESS under CI: shapes are blessed by a person, then committed"
        );
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
        return Ok(());
    }
    let pinned: Value = match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).unwrap(),
        Err(_) => return Err(format!("{name}: no pinned shape ({})", path.display())),
    };
    if pinned == got {
        Ok(())
    } else {
        Err(format!(
            "{name}: shape changed\n  pinned: {pinned}\n  now:    {got}"
        ))
    }
}
