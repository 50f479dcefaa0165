//! Shared helpers for the training-engine tests.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use sha2::{Digest, Sha256};
use tensorgrid_train::{
    data,
    spec::JobSpec,
    trainer::{train, TrainOptions},
    Device, Error,
};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The shipped digits MLP spec, with overrides applied to its JSON.
pub fn digits_spec(edit: impl FnOnce(&mut serde_json::Value)) -> (JobSpec, Vec<u8>) {
    job_spec("digits-mlp", edit)
}

/// A shipped spec (`jobs/<name>.json`), with overrides applied to its JSON.
pub fn job_spec(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> (JobSpec, Vec<u8>) {
    let path = repo().join(format!("jobs/{name}.json"));
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    edit(&mut v);
    let bytes = serde_json::to_vec_pretty(&v).unwrap();
    (JobSpec::from_json(&bytes).expect("valid spec"), bytes)
}

/// CPU training into `dir`, resuming from a checkpoint there if one exists.
pub fn opts(dir: &Path) -> TrainOptions {
    TrainOptions::new(Device::Cpu, dir)
}

/// The dataset of a spec whose `file:` URIs are relative to `jobs/` (its other files fetched
/// into a copy: [`load`] keeps them with the spec, as a fine-tune's model needs).
pub fn split(spec: &JobSpec) -> data::Split {
    load(&mut spec.clone())
}

/// [`split`], the spec's files fetched and attached to it.
pub fn load(spec: &mut JobSpec) -> data::Split {
    data::load(spec, &repo().join("jobs"), None).unwrap()
}

/// Trains `spec` whole; then again, cancelled mid-run once the first periodic checkpoint
/// exists (cancelling before the first step would be trivial) and resumed; and asserts both
/// end with the same result hash and byte-identical weights.
pub fn assert_resumes_bit_identically(what: &str, spec: &JobSpec, bytes: &[u8]) {
    let data = split(spec);
    let whole = tempfile::tempdir().unwrap();
    let reference = train(spec, bytes, &data, &opts(whole.path())).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let cancel = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (cancel, ckpt) = (
            cancel.clone(),
            dir.path().join("checkpoint/state.safetensors"),
        );
        std::thread::spawn(move || {
            while !ckpt.exists() {
                std::thread::yield_now();
            }
            cancel.store(true, Ordering::Relaxed);
        })
    };
    let first = train(
        spec,
        bytes,
        &data,
        &TrainOptions {
            cancel: Some(cancel),
            ..opts(dir.path())
        },
    );
    watcher.join().unwrap();
    let Err(Error::Cancelled(at)) = first else {
        panic!("{what}: expected a cancelled run, got {first:?}")
    };
    assert!(
        at > 0 && at < reference.manifest.steps,
        "{what}: cancelled at {at}"
    );
    let resumed = train(spec, bytes, &data, &opts(dir.path())).unwrap();
    assert_eq!(
        resumed.result_hash, reference.result_hash,
        "{what}: resumed run differs"
    );
    let weights = &reference.manifest.weights.path;
    assert_eq!(
        std::fs::read(dir.path().join(weights)).unwrap(),
        std::fs::read(whole.path().join(weights)).unwrap(),
        "{what}"
    );
}
