//! End-to-end training on the shipped digits: accuracy, determinism, resume.

mod common;

use common::{opts, split as digits};
use tensorgrid_train::{trainer::train, verify::verify, Device};

#[test]
fn digits_mlp_reaches_97_percent_and_verifies() {
    let (spec, bytes) = common::digits_spec(|_| {});
    let split = digits(&spec);
    let dir = tempfile::tempdir().unwrap();
    let out = train(&spec, &bytes, &split, &opts(dir.path())).unwrap();
    assert!(
        out.manifest.result.value >= 0.97,
        "accuracy {}",
        out.manifest.result.value
    );
    assert!(out.manifest.result.meets_threshold);
    let report = verify(&spec, &bytes, &split, dir.path(), &Device::Cpu).unwrap();
    assert!(report.passed(), "{report:?}");
    assert_eq!(report.result_hash, hex::encode(out.result_hash));
    // Tampered weights are caught.
    let w = dir.path().join("weights.safetensors");
    let mut b = std::fs::read(&w).unwrap();
    let n = b.len();
    b[n - 1] ^= 1;
    std::fs::write(&w, b).unwrap();
    let report = verify(&spec, &bytes, &split, dir.path(), &Device::Cpu).unwrap();
    assert!(
        !report.passed() && report.problems.iter().any(|p| p.contains("weights")),
        "{report:?}"
    );
}

#[test]
fn same_spec_gives_the_same_result_hash() {
    let (spec, bytes) = common::digits_spec(|v| v["training"]["epochs"] = 3.into());
    let split = digits(&spec);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ha = train(&spec, &bytes, &split, &opts(a.path()))
        .unwrap()
        .result_hash;
    let hb = train(&spec, &bytes, &split, &opts(b.path()))
        .unwrap()
        .result_hash;
    assert_eq!(ha, hb);
    // A different seed gives a different result.
    let (spec2, bytes2) = common::digits_spec(|v| {
        v["training"]["epochs"] = 3.into();
        v["training"]["seed"] = 7.into();
    });
    let c = tempfile::tempdir().unwrap();
    assert_ne!(
        train(&spec2, &bytes2, &digits(&spec2), &opts(c.path()))
            .unwrap()
            .result_hash,
        ha
    );
}

#[test]
fn cancelled_run_resumes_bit_identically() {
    for optimizer in [
        serde_json::json!({ "kind": "adamw", "lr": 0.002 }),
        serde_json::json!({ "kind": "sgd", "lr": 0.05, "momentum": 0.9 }),
    ] {
        let (spec, bytes) = common::digits_spec(|v| {
            v["training"]["epochs"] = 4.into();
            v["training"]["checkpoint_every"] = 10.into();
            v["training"]["optimizer"] = optimizer.clone();
        });
        common::assert_resumes_bit_identically(&optimizer.to_string(), &spec, &bytes);
    }
}
