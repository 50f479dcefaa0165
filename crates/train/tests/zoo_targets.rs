//! The shipped CNN and char-transformer jobs, run exactly as shipped, reach their targets
//! (digits CNN ≥ 97.5 % eval accuracy; char transformer ≤ 2.0 nats/char within 500 steps), and
//! both resume bit-identically after a cancel — the kernels they use on the CPU included.

mod common;

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use tensorgrid_train::{
    data,
    spec::JobSpec,
    trainer::{train, TrainOptions},
    verify::verify,
    Device, Error,
};

fn opts(dir: &std::path::Path) -> TrainOptions {
    TrainOptions {
        device: Device::Cpu,
        out_dir: dir.to_path_buf(),
        resume: true,
        cancel: None,
        progress: false,
    }
}

fn split(spec: &JobSpec) -> data::Split {
    data::load(spec, &common::repo().join("jobs"), None).unwrap()
}

fn reaches_target(name: &str, check: impl Fn(f64) -> bool) {
    let (spec, bytes) = common::job_spec(name, |_| {});
    let data = split(&spec);
    let dir = tempfile::tempdir().unwrap();
    let out = train(&spec, &bytes, &data, &opts(dir.path())).unwrap();
    let value = out.manifest.result.value;
    assert!(check(value), "{name}: {value}");
    assert!(out.manifest.result.meets_threshold, "{name}: {value}");
    let report = verify(&spec, &bytes, &data, dir.path(), &Device::Cpu).unwrap();
    assert!(report.passed(), "{name}: {report:?}");
}

#[test]
fn shipped_cnn_job_reaches_97_5_percent() {
    reaches_target("digits-cnn", |accuracy| accuracy >= 0.975);
}

#[test]
fn shipped_char_transformer_job_reaches_2_nats_in_500_steps() {
    let (spec, _) = common::job_spec("kjv-charlm", |_| {});
    assert!(matches!(spec.training.steps, Some(s) if s <= 500));
    reaches_target("kjv-charlm", |loss| loss <= 2.0);
}

/// Cancels mid-run once the first periodic checkpoint exists, resumes, and compares with an
/// uninterrupted run.
fn resumes_bit_identically(name: &str, edit: impl Fn(&mut serde_json::Value)) {
    let (spec, bytes) = common::job_spec(name, edit);
    let data = split(&spec);
    let whole = tempfile::tempdir().unwrap();
    let reference = train(&spec, &bytes, &data, &opts(whole.path())).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let cancel = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (cancel, ckpt) = (cancel.clone(), dir.path().join("checkpoint/meta.json"));
        std::thread::spawn(move || {
            while !ckpt.exists() {
                std::thread::yield_now();
            }
            cancel.store(true, Ordering::Relaxed);
        })
    };
    let first = train(
        &spec,
        &bytes,
        &data,
        &TrainOptions {
            cancel: Some(cancel),
            ..opts(dir.path())
        },
    );
    watcher.join().unwrap();
    let Err(Error::Cancelled(at)) = first else {
        panic!("{name}: expected a cancelled run, got {first:?}")
    };
    assert!(
        at > 0 && at < reference.manifest.steps,
        "{name}: cancelled at {at}"
    );
    let resumed = train(&spec, &bytes, &data, &opts(dir.path())).unwrap();
    assert_eq!(resumed.result_hash, reference.result_hash, "{name}");
    assert_eq!(
        std::fs::read(dir.path().join("weights.safetensors")).unwrap(),
        std::fs::read(whole.path().join("weights.safetensors")).unwrap(),
        "{name}"
    );
}

#[test]
fn cnn_resumes_bit_identically() {
    resumes_bit_identically("digits-cnn", |v| {
        v["training"]["epochs"] = 2.into();
        v["training"]["checkpoint_every"] = 10.into();
    });
}

#[test]
fn char_transformer_resumes_bit_identically() {
    resumes_bit_identically("kjv-charlm", |v| {
        v["training"]["steps"] = 30.into();
        v["training"]["checkpoint_every"] = 10.into();
        v["training"]["eval_every"] = 15.into();
    });
}
