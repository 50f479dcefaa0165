//! The shipped CNN, char-transformer and BPE GPT-2 jobs, run exactly as shipped, reach their
//! targets (digits CNN ≥ 97.5 % eval accuracy; char transformer ≤ 2.0 nats/char within 500
//! steps; GPT-2 perplexity ≤ 100 within 500 steps), and the first two resume bit-identically
//! after a cancel — the kernels they use on the CPU included.

mod common;

use common::{opts, split};
use tensorgrid_train::{trainer::train, verify::verify, Device};

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
    if name.contains("charlm") {
        let sample = report
            .sample
            .expect("a language model's report carries a sample");
        assert_eq!(sample.prompt.chars().count(), 40, "{sample:?}");
        assert_eq!(sample.continuation.chars().count(), 240, "{sample:?}");
        // Trained to 2 nats/char on English: it writes mostly letters and spaces, in words.
        let letters = sample
            .continuation
            .chars()
            .filter(|c| c.is_alphabetic() || *c == ' ')
            .count();
        assert!(letters >= 200, "{sample:?}");
        assert!(
            sample.continuation.split_whitespace().count() >= 20,
            "{sample:?}"
        );
        // Drawn again from the same weights and seed: the same text.
        let again = verify(&spec, &bytes, &data, dir.path(), &Device::Cpu).unwrap();
        assert_eq!(again.sample, Some(sample));
        println!("{name} sample: {:?}", again.sample);
    } else if name.contains("gpt2") {
        // A BPE model's sample, decoded: English words, drawn the same way again.
        let sample = report
            .sample
            .expect("a BPE model's report carries a sample");
        let words = sample.continuation.split_whitespace().count();
        assert!(words >= 20, "{sample:?}");
        let again = verify(&spec, &bytes, &data, dir.path(), &Device::Cpu).unwrap();
        assert_eq!(again.sample, Some(sample));
        println!("{name} sample: {:?}", again.sample);
    } else {
        assert!(report.sample.is_none());
    }
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

/// The shipped GPT-2 with a byte-level BPE (2,048 ids trained on the KJV's first 95 %;
/// 1.7M parameters) reaches an evaluation perplexity of 100 on the held-out end of the Bible
/// (from Colossians 1:11 on) within 500 steps: 86.5 in under three minutes on two cores.
#[test]
fn shipped_bpe_gpt2_job_reaches_perplexity_100_in_500_steps() {
    let (spec, _) = common::job_spec("kjv-gpt2", |_| {});
    assert!(matches!(spec.training.steps, Some(s) if s <= 500));
    reaches_target("kjv-gpt2", |perplexity| perplexity <= 100.0);
}

fn resumes_bit_identically(name: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let (spec, bytes) = common::job_spec(name, edit);
    common::assert_resumes_bit_identically(name, &spec, &bytes);
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
