//! `tensorgrid shard`: a text tokenized into shards and their index (what a sharded spec's
//! `dataset` names), and inputs it cannot cut refused with one line.

use std::{path::Path, process::Command};

use sha2::{Digest, Sha256};

fn shard(args: &[&str]) -> (bool, String, String) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(env!("CARGO_BIN_EXE_tensorgrid"))
        .arg("shard")
        .args(args)
        .current_dir(&repo)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn a_text_is_tokenized_into_shards_and_bad_inputs_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("web");
    let d = dir.to_str().unwrap();
    let (ok, stdout, stderr) = shard(&[
        "--output",
        "json",
        "--tokenizer",
        "data/kjv-gpt2/tokenizer.json",
        "--shard-mb",
        "0.1",
        "--out",
        d,
        "data/web-nt.txt",
    ]);
    assert!(ok, "{stderr}");
    let r: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let index = std::fs::read(dir.join("index.json")).unwrap();
    assert_eq!(r["sha256"], hex::encode(Sha256::digest(&index)));
    let index: serde_json::Value = serde_json::from_slice(&index).unwrap();
    let shards = index["shards"].as_array().unwrap();
    assert_eq!(r["shards"], shards.len());
    assert!(shards.len() >= 3, "{index}");
    let mut total = 0;
    for s in shards {
        let bytes = std::fs::read(dir.join(s["uri"].as_str().unwrap())).unwrap();
        assert_eq!(s["sha256"], hex::encode(Sha256::digest(&bytes)));
        assert_eq!(s["bytes"], bytes.len());
        assert!(bytes.len() <= 104_857 && bytes.len().is_multiple_of(2));
        total += bytes.len();
    }
    assert_eq!(r["bytes"], total);
    // About 4 bytes of English a GPT-2 id (2 bytes each, u16).
    assert!((300_000..700_000).contains(&total), "{total}");

    // Shuffled by lines: the same ids in another order, the same order for the same seed.
    let shuffled = |name: &str, seed: &str| {
        let d = tmp.path().join(name);
        let (ok, stdout, stderr) = shard(&[
            "--output",
            "json",
            "--tokenizer",
            "data/kjv-gpt2/tokenizer.json",
            "--shard-mb",
            "0.1",
            "--shuffle",
            seed,
            "--out",
            d.to_str().unwrap(),
            "data/web-nt.txt",
        ]);
        assert!(ok, "{stderr}");
        let r: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        (r["sha256"].clone(), r["bytes"].clone())
    };
    let (a, b, c) = (
        shuffled("s1", "7"),
        shuffled("s2", "7"),
        shuffled("s3", "8"),
    );
    assert_eq!(a, b);
    assert_ne!(a.0, c.0);
    assert_ne!(a.0, r["sha256"]);
    assert_eq!(
        a.1, r["bytes"],
        "each line tokenizes to the same ids wherever it is"
    );

    // Into a directory that has an index already; a file not whole records; too few shards.
    let (ok, _, stderr) = shard(&["--record-bytes", "2", "--out", d, "data/web-nt.txt"]);
    assert!(
        !ok && stderr.contains("is not empty: shard into a new directory"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    let other = tmp.path().join("x");
    let o = other.to_str().unwrap();
    let (ok, _, stderr) = shard(&["--record-bytes", "3073", "--out", o, "data/kjv.txt"]);
    assert!(
        !ok && stderr.contains("not a whole number of 3073-byte records"),
        "{stderr}"
    );
    let (ok, _, stderr) = shard(&[
        "--record-bytes",
        "3073",
        "--out",
        o,
        "data/shapes-cifar.bin",
    ]);
    assert!(!ok && stderr.contains("needs at least two"), "{stderr}");
    let (ok, _, stderr) = shard(&[
        "--record-bytes",
        "2",
        "--shuffle",
        "1",
        "--out",
        o,
        "data/kjv.txt",
    ]);
    assert!(
        !ok && stderr.contains("would shuffle single token ids"),
        "{stderr}"
    );
    let (ok, _, stderr) = shard(&["--out", o, "data/kjv.txt"]);
    assert!(!ok && stderr.contains("--record-bytes"), "{stderr}");
}
