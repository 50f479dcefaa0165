//! Sharded datasets: a hashed index of shards streamed through training two at a time,
//! resumable mid-shard, verifiable segment by segment, every bad shard named.

mod common;

use std::{
    path::Path,
    sync::{Arc, Mutex},
};

use tensorgrid_train::{
    data::{self, shards::Shard, ShardStore, Split},
    spec::JobSpec,
    trainer::train,
    verify::verify,
    Device, Error, Fault,
};

/// Writes `shards` into `dir` with an index naming them relative to it; returns the index's
/// bytes.
fn write_shards(dir: &Path, shards: &[Vec<u8>]) -> Vec<u8> {
    let mut list = Vec::new();
    for (i, s) in shards.iter().enumerate() {
        let name = format!("part-{i:03}.bin");
        std::fs::write(dir.join(&name), s).unwrap();
        list.push(serde_json::json!({
            "uri": name, "sha256": common::sha256_hex(s), "bytes": s.len()
        }));
    }
    let index = serde_json::to_vec_pretty(&serde_json::json!({ "shards": list })).unwrap();
    std::fs::write(dir.join("index.json"), &index).unwrap();
    index
}

/// u16 token shards of a learnable sequence (each id mostly follows from the one before).
fn token_shards(lens: &[usize]) -> Vec<Vec<u8>> {
    let mut x = 1u32;
    lens.iter()
        .map(|&n| {
            (0..n)
                .flat_map(|i| {
                    x = (x * 5 + 3 + u32::from(i % 97 == 0)) % 61;
                    (x as u16).to_le_bytes()
                })
                .collect()
        })
        .collect()
}

fn token_spec(
    dir: &Path,
    index: &[u8],
    edit: impl FnOnce(&mut serde_json::Value),
) -> (JobSpec, Vec<u8>) {
    common::job_spec("kjv-gpt2", |v| {
        v["dataset"] = serde_json::json!({
            "uri": format!("file://{}", dir.join("index.json").display()),
            "sha256": common::sha256_hex(index),
            "format": {
                "kind": "shards",
                "shard_format": {"kind": "tokens", "dtype": "u16", "vocab_size": 64},
                "eval_shards": 1
            }
        });
        v["model"] = serde_json::json!({"kind": "gpt2", "layers": 1, "d_model": 32, "heads": 2, "context": 16});
        v["training"]["steps"] = 60.into();
        v["training"]["batch_size"] = 8.into();
        v["training"]["eval_every"] = 20.into();
        v["training"]["commit_every"] = 10.into();
        v["training"]["checkpoint_every"] = 10.into();
        v["training"]["schedule"]["warmup_steps"] = 5.into();
        edit(v);
    })
}

fn load(spec: &JobSpec) -> Split {
    data::load(&mut spec.clone(), Path::new("/"), None).unwrap()
}

/// A language model over five token shards: it learns, a run cancelled mid-shard resumes to
/// the same bytes, and a verifier re-running its segments from a fresh read of the shards
/// agrees with it.
#[test]
fn token_shards_train_resume_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    // 60 steps × 8 windows of 16 ids: 7,680 ids, more than the 4,300 training ones (about
    // 265 windows): the stream wraps into a second and a third epoch.
    let index = write_shards(dir.path(), &token_shards(&[1_000, 700, 1_500, 1_100, 600]));
    let (spec, bytes) = token_spec(dir.path(), &index, |_| {});
    let data = load(&spec);
    let Split::Text {
        train: t,
        eval,
        shards: Some(set),
        ..
    } = &data
    else {
        panic!("a sharded corpus")
    };
    assert!(
        t.is_empty(),
        "training ids are streamed, never all in memory"
    );
    assert_eq!(eval.len(), 600, "the last shard is the evaluation split");
    assert_eq!(set.samples(), 999 / 16 + 699 / 16 + 1_499 / 16 + 1_099 / 16);

    let out = tempfile::tempdir().unwrap();
    let run = train(&spec, &bytes, &data, &common::opts(out.path())).unwrap();
    let losses: Vec<f64> = std::fs::read_to_string(out.path().join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["eval_loss"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert!(
        losses.len() >= 3 && losses[losses.len() - 1] < losses[0] * 0.8,
        "{losses:?}"
    );

    common::assert_resumes_bit_identically("token shards", &spec, &bytes);

    let report = verify(&spec, &bytes, &load(&spec), out.path(), &Device::Cpu).unwrap();
    assert!(report.problems.is_empty(), "{report:?}");
    assert_eq!(report.result_hash, hex::encode(run.result_hash));
}

/// A store that counts what the stream asks of it.
struct Counting {
    inner: data::shards::LocalStore,
    log: Mutex<(Vec<String>, i64, i64)>,
}

impl ShardStore for Counting {
    fn get(&self, shard: &Shard) -> tensorgrid_train::Result<Vec<u8>> {
        let mut l = self.log.lock().unwrap();
        let name = shard.uri.rsplit('/').next().unwrap().to_string();
        // Training shards out at once (the evaluation shard is read once, at the start, and
        // never let go: a worker keeps it for its claim).
        if name != "part-004.bin" {
            l.1 += 1;
            l.2 = l.2.max(l.1);
        }
        l.0.push(name);
        drop(l);
        self.inner.get(shard)
    }

    fn release(&self, _: &Shard) {
        self.log.lock().unwrap().1 -= 1;
    }
}

/// CIFAR-format shards through a ResNet for three epochs: each epoch fetches each training
/// shard once, in an order of its own, and never more than three are out at once (two in
/// memory, one arriving).
#[test]
fn image_shards_are_streamed_a_shard_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let record = |label: u8, i: usize| {
        std::iter::once(label)
            .chain((0..3072).map(move |p| ((p * 7 + i * 13) % 256) as u8 * (label % 2)))
    };
    let shards: Vec<Vec<u8>> = [12usize, 9, 15, 10, 8]
        .iter()
        .enumerate()
        .map(|(s, &n)| {
            (0..n)
                .flat_map(|i| record((i % 2) as u8, s * 100 + i))
                .collect()
        })
        .collect();
    let index = write_shards(dir.path(), &shards);
    let (spec, bytes) = common::job_spec("shapes-resnet", |v| {
        v["dataset"] = serde_json::json!({
            "uri": format!("file://{}", dir.path().join("index.json").display()),
            "sha256": common::sha256_hex(&index),
            "format": {"kind": "shards", "shard_format": {"kind": "cifar"}, "classes": 2}
        });
        v["model"]["widths"] = serde_json::json!([4, 8]);
        v["training"]["epochs"] = 3.into();
        v["training"]["batch_size"] = 8.into();
    });
    let store = Arc::new(Counting {
        inner: data::shards::LocalStore {
            base_dir: "/".into(),
            cache_dir: None,
        },
        log: Mutex::new((Vec::new(), 0, 0)),
    });
    let data = data::split_with(&spec, &index, Some(store.clone())).unwrap();
    let Split::Table { eval, classes, .. } = &data else {
        panic!("a table")
    };
    assert_eq!((eval.rows(), *classes), (8, 2));
    let out = tempfile::tempdir().unwrap();
    let run = train(&spec, &bytes, &data, &common::opts(out.path())).unwrap();
    // 46 training records in batches of 8: 6 steps an epoch.
    assert_eq!(run.manifest.steps, 18);
    let (gets, _, most) = store.log.lock().unwrap().clone();
    assert_eq!(gets[0], "part-004.bin", "the evaluation shard first");
    let train_gets = &gets[1..];
    assert!(most <= 3, "{most} shards out at once: {gets:?}");
    // Each shard once an epoch (a shard in memory across an epoch's end is not fetched
    // again), and the epochs in different orders.
    assert!((10..=12).contains(&train_gets.len()), "{train_gets:?}");
    for name in [
        "part-000.bin",
        "part-001.bin",
        "part-002.bin",
        "part-003.bin",
    ] {
        let n = train_gets.iter().filter(|g| *g == name).count();
        assert!(
            (2..=3).contains(&n),
            "{name} fetched {n} times: {train_gets:?}"
        );
    }
    assert_ne!(train_gets[..4], train_gets[4..8], "{train_gets:?}");
}

/// Every problem of an index is named at once, and a shard whose bytes are not the index's
/// stops training with the poster's fault, naming it.
#[test]
fn bad_indexes_and_shards_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let shards = token_shards(&[400, 400, 300]);
    let index = write_shards(dir.path(), &shards);
    let (spec, _) = token_spec(dir.path(), &index, |_| {});
    let bad = serde_json::json!({"shards": [
        {"uri": "../../etc/passwd", "sha256": "00", "bytes": 3},
        {"uri": "s3://b/k", "sha256": "ab".repeat(32), "bytes": 20},
        {"uri": "file:/tmp/x", "sha256": "ab".repeat(32), "bytes": 2},
    ]});
    let (spec_remote, _) = token_spec(dir.path(), b"", |v| {
        v["dataset"]["uri"] = "s3://b/index.json".into();
    });
    let e = data::shards::Index::parse(&spec_remote, bad.to_string().as_bytes())
        .unwrap_err()
        .to_string();
    for want in [
        "shard 0 (../../etc/passwd): not a URI",
        "shard 0 (../../etc/passwd): sha256 must be 64 hex",
        "3 bytes is not a whole number of 2-byte ids",
        "shard 1 (s3://b/k): too short for one training sample (17 ids a window)",
        "shard 2 (file:/tmp/x): a file: shard in an index that is not itself a local file",
    ] {
        assert!(e.contains(want), "{want:?} not in {e}");
    }
    let one = serde_json::json!({"shards": [{"uri": "a", "sha256": "ab".repeat(32), "bytes": 40}]});
    let e = data::shards::Index::parse(&spec, one.to_string().as_bytes()).unwrap_err();
    assert!(e.to_string().contains("1 shards; it needs 2..="), "{e}");
    assert!(
        data::split(&spec, &index).is_err(),
        "a shard index needs a store"
    );

    // A training shard changed after the index was made: found when training reaches it.
    let mut changed = shards[1].clone();
    changed[10] ^= 1;
    std::fs::write(dir.path().join("part-001.bin"), &changed).unwrap();
    let data = load(&spec);
    let out = tempfile::tempdir().unwrap();
    let e = train(&spec, b"{}", &data, &common::opts(out.path())).unwrap_err();
    assert_eq!(e.fault(), Fault::Poster, "{e}");
    assert!(
        matches!(&e, Error::HashMismatch { uri, .. } if uri.ends_with("part-001.bin")),
        "{e}"
    );

    // An id past the vocabulary in the evaluation shard: refused before training.
    let mut wrong = shards[2].clone();
    wrong[8..10].copy_from_slice(&64u16.to_le_bytes());
    let index = write_shards(dir.path(), &[shards[0].clone(), shards[1].clone(), wrong]);
    let (spec, _) = token_spec(dir.path(), &index, |_| {});
    let e = data::load(&mut spec.clone(), Path::new("/"), None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("part-002.bin") && e.contains("id 64 at position 4"),
        "{e}"
    );
}

/// The spec's own rules for a sharded dataset.
#[test]
fn sharded_specs_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let problems = |edit: fn(&mut serde_json::Value)| {
        let (spec, _) = token_spec(dir.path(), b"", |_| {});
        let mut v = serde_json::to_value(&spec).unwrap();
        edit(&mut v);
        let spec: JobSpec = serde_json::from_value(v).unwrap();
        spec.validate()
            .map_err(|e| e.to_string())
            .err()
            .unwrap_or_default()
    };
    assert_eq!(problems(|_| {}), "");
    let e =
        problems(|v| v["dataset"]["format"]["shard_format"] = serde_json::json!({"kind": "text"}));
    assert!(e.contains("shard_format must be tokens or cifar"), "{e}");
    let e = problems(|v| v["dataset"]["format"]["eval_shards"] = 0.into());
    assert!(e.contains("eval_shards 0 must be 1.."), "{e}");
    let e = problems(|v| v["dataset"]["format"]["classes"] = 10.into());
    assert!(e.contains("classes 10: only for cifar shards"), "{e}");
    let e = problems(|v| {
        v["dataset"]["format"]["shard_format"] = serde_json::json!({"kind": "cifar"});
    });
    assert!(e.contains("classes is needed for cifar shards"), "{e}");
    assert!(e.contains("cifar holds [3, 32, 32] images"), "{e}");
}
