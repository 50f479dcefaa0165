//! `tensorgrid demo`, as a newcomer runs it from the repository root: the local chain and
//! store start, a worker registers, the digits job is posted, trained, verified and paid, and
//! the command exits 0 with the balances before and after.

use std::{path::Path, process::Command};

fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tensorgrid demo ARGS --dir HOME/demo` from the repository root, as a newcomer with `HOME`
/// as home and no market or store set runs it.
fn demo(home: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tensorgrid"))
        .arg("demo")
        .args(args)
        .arg("--dir")
        .arg(home.join("demo"))
        .current_dir(repo())
        .env("HOME", home)
        .env_remove("TENSORGRID_MARKET")
        .env_remove("TENSORGRID_STORE")
        .output()
        .unwrap()
}

#[test]
fn the_demo_posts_trains_verifies_and_pays() {
    let home = tempfile::tempdir().unwrap();
    let out = demo(home.path(), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for want in [
        "Balances before the job:",
        "$ tensorgrid job post",
        "claimed",
        "$ tensorgrid job verify",
        ": PASSED",
        "$ tensorgrid job accept",
        "paid",
        "Balances after:",
        "worker earned 0.975",
        "market fee 0.025",
        "Paid and verified",
        "Where the time went: chain and store start",
        "The same by hand, against `tensorgrid localnet`:",
        "tensorgrid job post --spec jobs/digits-mlp.json --reward 0.1 --max-duration 2h -u devnet",
    ] {
        assert!(
            stdout.contains(want),
            "{want:?} missing:\n{stdout}\n{stderr}"
        );
    }
    let time = stdout
        .lines()
        .find(|l| l.starts_with("Where the time went:"))
        .unwrap_or_default();
    for phase in [
        "worker start",
        "post",
        "claim",
        "training",
        "verify",
        "accept",
    ] {
        assert!(time.contains(phase), "{phase:?} missing: {time}");
    }
    // The verified result and its curve are kept.
    let results = home.path().join("demo/results");
    assert!(results.join("curve.png").is_file(), "{stdout}");
    assert!(results.join("manifest.json").is_file());
}

/// `demo --mint usdc`: the market priced in the local chain's test USDC; the worker stakes the
/// reward's collateral in it, the poster pays the reward in it (only fees in SOL), the earnings and the fee are in
/// it, and the by-hand commands name the USDC chain and the worker's stake in it.
#[test]
fn the_demo_runs_in_usdc() {
    let home = tempfile::tempdir().unwrap();
    let out = demo(home.path(), &["--mint", "usdc", "--reward", "2.5"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for want in [
        "the market is priced in the test USDC: mint ",
        "registered with a stake of 2.5 tokens",
        "poster wallet        1000000 tokens and ",
        ": PASSED",
        "0.0625 tokens",
        "poster wallet        999997.5 tokens and ",
        "operator wallet      999997.5 tokens and ",
        "poster paid 2.5 tokens (the reward) and ",
        "worker earned 2.4375 tokens, market fee 0.0625 tokens",
        "Paid and verified",
        "localnet --usdc",
        "--store s3://tensorgrid --stake 1",
    ] {
        assert!(
            stdout.contains(want),
            "{want:?} missing:\n{stdout}\n{stderr}"
        );
    }
}

/// The shipped sharded job through the whole market: its index and nine shards uploaded
/// beside each other, the worker checking the index and its first shards before claiming,
/// training while it streams the rest from the store, and the poster's verifier re-running
/// it from the same shards.
#[test]
fn the_demo_runs_the_sharded_job_end_to_end() {
    let repo = repo();
    let home = tempfile::tempdir().unwrap();
    let out = demo(home.path(), &["--job", "jobs/kjv-gpt2-shards.json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for want in [": PASSED", "vs threshold 160", "worker earned 0.975"] {
        assert!(
            stdout.contains(want),
            "{want:?} missing:\n{stdout}\n{stderr}"
        );
    }
    let results = home.path().join("demo/results");
    assert!(results.join("tokenizer.json").is_file(), "{stdout}");
    // The shards went up beside their index, under the names it gives them.
    let index = std::fs::read(repo.join("data/kjv-tokens/index.json")).unwrap();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&index));
    let store = home.path().join("demo");
    let found = walk(&store)
        .into_iter()
        .filter(|p| {
            p.to_string_lossy()
                .contains(&format!("datasets/{sha}/part-"))
        })
        .count();
    assert_eq!(found, 9, "{stdout}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn the_demo_refuses_to_empty_a_directory_it_did_not_make() {
    let repo = repo();
    let home = tempfile::tempdir().unwrap();
    let precious = home.path().join("mine/notes.txt");
    std::fs::create_dir_all(precious.parent().unwrap()).unwrap();
    std::fs::write(&precious, b"keep me").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tensorgrid"))
        .arg("demo")
        .arg("--dir")
        .arg(home.path().join("mine"))
        .current_dir(&repo)
        .env("HOME", home.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("not made by the demo"), "{stderr}");
    assert_eq!(std::fs::read(&precious).unwrap(), b"keep me");
}
