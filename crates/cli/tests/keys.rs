//! The signer the user names, and only it: a keypair flag or variable that cannot be used is
//! an error with nothing spent, never a fallback to `config.yml`'s wallet; `stdin` and the
//! Solana CLI's other sources work; a secret typed on the command line is refused unread.

mod common;

use std::{
    ffi::OsStr,
    io::Write,
    os::unix::ffi::OsStrExt,
    process::{Command, Stdio},
};

use common::{address, World};
use solana_signer::Signer;
use tensorgrid_client::anchor_lang::prelude::Pubkey;

/// `tensorgrid ARGS --output json` with a fresh HOME whose `config.yml` names `poster`'s
/// keypair and this chain: no `-u`, no `-k` unless the test adds them.
fn cli(w: &World, args: &[&OsStr]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tensorgrid"));
    c.args(args)
        .args(["--output", "json"])
        .current_dir(w.dir.path())
        .env("HOME", w.dir.path())
        .env(
            "TENSORGRID_STORE",
            format!("s3://{}", tensorgrid_localnet::s3::LOCAL_BUCKET),
        )
        .env("RUST_BACKTRACE", "1")
        .env_remove("TENSORGRID_KEYPAIR")
        .env_remove("TENSORGRID_URL")
        .env_remove("TENSORGRID_MARKET")
        .env_remove("TENSORGRID_SOLANA_CONFIG")
        .env_remove("RUST_LOG");
    c
}

fn write_config(w: &World) {
    let cfg = w.dir.path().join(".config/solana/cli/config.yml");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(
        &cfg,
        format!(
            "json_rpc_url: {}\nwebsocket_url: ''\nkeypair_path: {}\ncommitment: confirmed\n",
            w.net.rpc_url(),
            w.keyfile("poster").display()
        ),
    )
    .unwrap();
}

fn post_args(spec: &std::path::Path) -> Vec<std::ffi::OsString> {
    ["job", "post", "--spec"]
        .iter()
        .map(Into::into)
        .chain([spec.as_os_str().to_owned()])
        .chain(
            ["--reward", "0.5", "--max-duration", "1h", "--yes"]
                .iter()
                .map(Into::into),
        )
        .collect()
}

fn arg<'a>(v: &'a [&'a str]) -> Vec<&'a OsStr> {
    v.iter().map(OsStr::new).collect()
}

fn os(v: &[std::ffi::OsString]) -> Vec<&OsStr> {
    v.iter().map(|s| s.as_os_str()).collect()
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(mut c: Command) -> Out {
    let o = c.output().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
    }
}

impl Out {
    fn failed(&self) -> &str {
        assert_ne!(self.code, 0, "expected a failure: {}", self.stdout);
        let lines: Vec<&str> = self.stderr.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 1, "{}", self.stderr);
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        lines[0]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keypair_that_cannot_be_used_is_an_error_and_nothing_is_spent() {
    let w = World::with_accounts(&["poster", "other"]).await;
    write_config(&w);
    let spec = w.small_spec("ok.json", 1);
    let poster = w.key("poster");
    let before = w.balance(&poster).await;
    let posted = w.net.client().market(&w.market).await.unwrap().jobs_posted;

    // A path that is not UTF-8 and names no file: the flag and the variable.
    let bad = OsStr::from_bytes(b"/tmp/\xff\xfekey.json");
    let mut args = post_args(&spec);
    args.extend(["-k".into(), bad.to_owned()]);
    let r = run(cli(&w, &os(&args)));
    let line = r.failed();
    assert!(line.contains("does not exist"), "{line}");
    let mut c = cli(&w, &os(&post_args(&spec)));
    c.env("TENSORGRID_KEYPAIR", bad);
    let r = run(c);
    assert!(r.failed().contains("does not exist"), "{}", r.stderr);

    // A public key, and a secret key written out (refused without being echoed).
    let mut args = post_args(&spec);
    args.extend(["-k".into(), poster.to_string().into()]);
    let r = run(cli(&w, &os(&args)));
    assert!(
        r.failed().contains("public key cannot sign"),
        "{}",
        r.stderr
    );
    let other = w.net.account("other");
    let secret = bs58::encode(other.to_bytes()).into_string();
    let mut args = post_args(&spec);
    args.extend(["-k".into(), secret.clone().into()]);
    let r = run(cli(&w, &os(&args)));
    let line = r.failed();
    assert!(line.contains("keypair file"), "{line}");
    assert!(!line.contains(&secret[..20]), "{line}");

    // prompt:// with no terminal to type on: refused, one line.
    let mut args = post_args(&spec);
    args.extend(["-k".into(), "prompt://".into()]);
    let mut c = cli(&w, &os(&args));
    c.stdin(Stdio::null());
    let r = run(c);
    assert!(r.failed().contains("prompt://"), "{}", r.stderr);

    // Nothing was posted or paid by the config file's wallet.
    assert_eq!(w.balance(&poster).await, before);
    assert_eq!(
        w.net.client().market(&w.market).await.unwrap().jobs_posted,
        posted
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_and_the_config_file_name_the_signer() {
    let w = World::with_accounts(&["poster", "other"]).await;
    write_config(&w);
    let spec = w.small_spec("ok.json", 1);

    // No -k: config.yml's keypair (the poster) posts.
    let r = run(cli(&w, &os(&post_args(&spec))));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let job = address(&v, "job");
    let j = w.net.client().job(&job).await.unwrap().unwrap();
    assert_eq!(j.poster, w.key("poster"));

    // -k stdin: the keypair file's contents piped in; "other" posts.
    let mut args = post_args(&spec);
    args.extend(["-k".into(), "stdin".into()]);
    let mut c = cli(&w, &os(&args));
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let key = std::fs::read(w.keyfile("other")).unwrap();
    child.stdin.take().unwrap().write_all(&key).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let job: Pubkey = address(&v, "job");
    let j = w.net.client().job(&job).await.unwrap().unwrap();
    assert_eq!(j.poster, w.net.account("other").pubkey());

    // A command that reads the signer twice (to find the job by id, then to sign) reads stdin
    // once: "other" cancels its job 0 by id.
    let mut c = cli(&w, &arg(&["job", "cancel", "0", "-k", "stdin", "--yes"]));
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(&key).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(w.net.client().job(&job).await.unwrap().is_none());
}

/// A newcomer with no Solana CLI: a keypair, its address, SOL from the local faucet, the
/// balance, and the local chain's clock moved — all with `tensorgrid`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keygen_address_airdrop_balance_and_warp_without_the_solana_cli() {
    let w = World::with_accounts(&["poster"]).await;
    let url = w.net.rpc_url().to_string();

    let r = run(cli(&w, &arg(&["keygen"])));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let made: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let file = w.dir.path().join(".config/solana/id.json");
    assert_eq!(made["keypair_file"], file.display().to_string());
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let key = tensorgrid_client::rpc::read_keypair(&file).unwrap();
    assert_eq!(made["address"], key.pubkey().to_string());
    // Never overwritten without --force.
    let again = run(cli(&w, &arg(&["keygen"])));
    assert!(again.failed().contains("--force"), "{}", again.stderr);
    assert_eq!(
        tensorgrid_client::rpc::read_keypair(&file)
            .unwrap()
            .pubkey(),
        key.pubkey()
    );

    let r = run(cli(&w, &arg(&["address"])));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["address"], key.pubkey().to_string());

    let r = run(cli(&w, &arg(&["airdrop", "5", "-u", &url])));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(w.balance(&key.pubkey()).await, 5 * tensorgrid_localnet::SOL);
    let r = run(cli(&w, &arg(&["balance", "-u", &url])));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["lamports"], 5 * tensorgrid_localnet::SOL);
    assert_eq!(v["sol"], "5");
    // Mainnet has no faucet: refused before asking.
    let r = run(cli(&w, &arg(&["airdrop", "5", "-u", "mainnet-beta"])));
    assert!(r.failed().contains("no airdrops"), "{}", r.stderr);

    let before = w.net.client().chain_time().await.unwrap();
    let r = run(cli(&w, &arg(&["localnet", "warp", "2h", "-u", &url])));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let after = w.net.client().chain_time().await.unwrap();
    assert!(
        (7_200..7_300).contains(&(after - before)),
        "moved {} s",
        after - before
    );
    // Never a shared cluster's clock.
    let r = run(cli(&w, &arg(&["localnet", "warp", "2h", "-u", "devnet"])));
    assert!(r.failed().contains("not a local chain"), "{}", r.stderr);
}
