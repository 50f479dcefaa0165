//! Shared helpers for the training-engine tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tensorgrid_train::spec::JobSpec;

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
