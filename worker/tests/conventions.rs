//! The worker follows the Solana CLI's conventions as the wallet does: `-u/--url` with
//! monikers, the Solana CLI's `config.yml` for what the worker's own settings leave out,
//! `--commitment`, keypair sources; `status` needs no store; errors are said once; a chain out
//! of reach is logged once, not on every retry.

use std::{path::Path, process::Command, time::Duration};

fn worker(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tensorgrid-worker"));
    c.env("HOME", home)
        .env("RUST_BACKTRACE", "0")
        .env_remove("RUST_LOG")
        .env_remove("TENSORGRID_SOLANA_CONFIG");
    for (k, _) in std::env::vars() {
        if k.starts_with("TENSORGRID_WORKER_") {
            c.env_remove(k);
        }
    }
    c
}

fn run(c: &mut Command) -> (Option<i32>, String, String) {
    let out = c.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn field<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .trim()
}

#[test]
fn a_fresh_home_with_only_the_solana_cli_config_is_enough() {
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join(".config/solana/cli/config.yml");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(
        &cfg,
        "json_rpc_url: devnet\nwebsocket_url: ''\nkeypair_path: /keys/op.json\ncommitment: finalized\n",
    )
    .unwrap();
    let (code, out, err) = run(worker(home.path()).args(["config", "--store", "s3://b/p"]));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(field(&out, "rpc"), "https://api.devnet.solana.com");
    assert_eq!(field(&out, "keypair"), "/keys/op.json");
    assert_eq!(field(&out, "commitment"), "finalized");

    // Flags outrank it; monikers and --rpc-url (the old name) both work.
    let (code, out, err) = run(worker(home.path()).args([
        "config",
        "--store",
        "s3://b/p",
        "--url",
        "t",
        "--rpc-url",
        "m",
        "-k",
        "/keys/flag.json",
        "--commitment",
        "processed",
    ]));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        field(&out, "rpc"),
        "https://api.testnet.solana.com, https://api.mainnet-beta.solana.com"
    );
    assert_eq!(field(&out, "keypair"), "/keys/flag.json");
    assert_eq!(field(&out, "commitment"), "processed");

    // The worker's own file outranks the Solana CLI's.
    let own = home.path().join("worker.toml");
    std::fs::write(
        &own,
        "rpc_urls = [\"http://10.1.1.1:8899\"]\nkeypair = \"/keys/own.json\"\nstore = \"s3://b/p\"\n",
    )
    .unwrap();
    let (code, out, err) = run(worker(home.path()).arg("config").arg("-c").arg(&own));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(field(&out, "rpc"), "http://10.1.1.1:8899");
    assert_eq!(field(&out, "keypair"), "/keys/own.json");
    assert_eq!(field(&out, "commitment"), "finalized");

    // A commitment that is not one is named.
    let (code, _, err) =
        run(worker(home.path()).args(["config", "--store", "s3://b/p", "--commitment", "final"]));
    assert_eq!(code, Some(2));
    assert!(err.contains("commitment: \"final\""), "{err}");
}

#[test]
fn status_needs_no_store_and_says_when_nothing_ran() {
    let home = tempfile::tempdir().unwrap();
    let (code, _, err) = run(worker(home.path()).arg("status"));
    assert_eq!(code, Some(1), "{err}");
    assert!(!err.contains("store"), "{err}");
    assert!(err.contains("no worker has run"), "{err}");
}

#[test]
fn a_keypair_error_is_said_once_and_an_empty_one_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let missing = home.path().join("missing.json");
    let (code, _, err) = run(worker(home.path())
        .args(["--store", "s3://b/r", "-u", "http://127.0.0.1:9", "-k"])
        .arg(&missing)
        .arg("--work-dir")
        .arg(home.path().join("w")));
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.matches("does not exist").count(), 1, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // An empty keypair is not replaced by the default one.
    let (code, _, err) = run(worker(home.path()).args([
        "--store",
        "s3://b/r",
        "-u",
        "http://127.0.0.1:9",
        "-k",
        "",
        "--status-listen",
        "",
    ]));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--keypair"), "{err}");
    // An empty variable is not "unset": no fallback to config.yml's wallet.
    let (code, _, err) = run(worker(home.path())
        .args(["config", "--store", "s3://b/r"])
        .env("TENSORGRID_WORKER_KEYPAIR", ""));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("TENSORGRID_WORKER_KEYPAIR is set but empty"),
        "{err}"
    );
    // A public key cannot sign.
    let (code, _, err) = run(worker(home.path()).args([
        "--store",
        "s3://b/r",
        "-u",
        "http://127.0.0.1:9",
        "-k",
        "11111111111111111111111111111111",
        "--status-listen",
        "",
    ]));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("public key cannot sign"), "{err}");
}

#[test]
fn an_unreachable_rpc_is_logged_once_not_on_every_retry() {
    let home = tempfile::tempdir().unwrap();
    let key = home.path().join("id.json");
    let kp = solana_keypair::Keypair::new();
    std::fs::write(
        &key,
        serde_json::to_string(&kp.to_bytes().to_vec()).unwrap(),
    )
    .unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = worker(home.path())
        .args(["-u", &format!("http://127.0.0.1:{port}"), "-k"])
        .arg(&key)
        .arg("--store")
        .arg(format!("file://{}", home.path().join("store").display()))
        .arg("--work-dir")
        .arg(home.path().join("w"))
        .args([
            "--status-listen",
            "",
            "--device",
            "cpu",
            "--log-format",
            "json",
        ])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Backoff from 100 ms: a dozen retries or more in this time.
    std::thread::sleep(Duration::from_secs(8));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"level\":\"WARN\""))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("RPC unreachable"), "{log}");
    // The endpoint is named once in the message, not twice.
    let url = format!("127.0.0.1:{port}");
    assert_eq!(warnings[0].matches(&url).count(), 1, "{log}");
}

/// The crash tests (`safe_to_join.rs`, `daemon.rs`) run the test profile's binary; they stand
/// for the release build a rig runs only while both unwind panics (a panic in a check or in
/// training comes back as an error: the job is refused or given back). `panic = "abort"` in
/// either would make them prove nothing about the other.
#[test]
fn the_shipped_build_and_the_tested_one_both_unwind_panics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let manifest: toml::Table = text.parse().unwrap();
    let profile = |name: &str| manifest["profile"].get(name).and_then(|p| p.as_table());
    assert_eq!(
        profile("release").and_then(|p| p.get("panic")?.as_str()),
        Some("unwind"),
        "the release profile must say panic = \"unwind\""
    );
    for name in ["dev", "test"] {
        let panic = profile(name).and_then(|p| p.get("panic")?.as_str());
        assert!(matches!(panic, None | Some("unwind")), "{name}: {panic:?}");
    }
}
