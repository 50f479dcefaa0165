mod common;

use tensorgrid_train::{spec::JobSpec, Error};

fn errors(json: serde_json::Value) -> Vec<String> {
    match JobSpec::from_json(&serde_json::to_vec(&json).unwrap()) {
        Err(Error::InvalidSpec(e)) => e,
        other => panic!("expected InvalidSpec, got {other:?}"),
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let (_, bytes) = common::digits_spec(|_| {});
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["version"] = 2.into();
    v["dataset"]["uri"] = "ftp://example/x".into();
    v["dataset"]["sha256"] = "abc".into();
    v["training"]["batch_size"] = 0.into();
    v["training"]["epochs"] = 0.into();
    v["training"]["optimizer"]["lr"] = (-1.0).into();
    v["model"]["hidden"] = serde_json::json!([0]);
    v["evaluation"]["threshold"] = 1.5.into();
    let errs = errors(v);
    for needle in [
        "version 2",
        "unsupported scheme",
        "sha256",
        "batch_size",
        "epochs",
        "lr",
        "hidden",
        "threshold",
    ] {
        assert!(
            errs.iter().any(|e| e.contains(needle)),
            "no error about {needle}: {errs:#?}"
        );
    }
    assert_eq!(errs.len(), 8, "{errs:#?}");
}

#[test]
fn unknown_model_and_fields_are_syntax_errors() {
    let (_, bytes) = common::digits_spec(|_| {});
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["model"] = serde_json::json!({ "kind": "resnet152" });
    let err = JobSpec::from_json(&serde_json::to_vec(&v).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("resnet152"), "{err}");
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["training"]["learning_rate"] = 0.1.into();
    let err = JobSpec::from_json(&serde_json::to_vec(&v).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("learning_rate"), "{err}");
}

#[test]
fn model_must_fit_the_dataset_kind() {
    let (_, bytes) = common::digits_spec(|_| {});
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["model"] = serde_json::json!({ "kind": "char_transformer", "layers": 1, "d_model": 30, "heads": 4, "context": 1 });
    let errs = errors(v);
    assert!(
        errs.iter()
            .any(|e| e.contains("needs a text or tokens dataset")),
        "{errs:#?}"
    );
    assert!(
        errs.iter().any(|e| e.contains("heads 4 must divide")),
        "{errs:#?}"
    );
    assert!(errs.iter().any(|e| e.contains("context")), "{errs:#?}");
    assert!(
        errs.iter().any(|e| e.contains("training.steps")),
        "{errs:#?}"
    );
}

#[test]
fn shipped_specs_are_valid() {
    for name in ["digits-mlp", "digits-cnn", "kjv-charlm"] {
        let bytes = std::fs::read(common::repo().join(format!("jobs/{name}.json"))).unwrap();
        JobSpec::from_json(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn commitments_are_bounded() {
    let spec = |edit: &dyn Fn(&mut serde_json::Value)| {
        let (_, bytes) = common::job_spec("kjv-charlm", |_| {});
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        edit(&mut v);
        v
    };
    let zero = errors(spec(&|v| v["training"]["commit_every"] = 0.into()));
    assert!(
        zero.iter().any(|e| e.contains("commit_every 0")),
        "{zero:?}"
    );
    // 5,000 steps every 4: 1,250 segments, and 1,000 is the most.
    let many = errors(spec(&|v| {
        v["training"]["steps"] = 5_000.into();
        v["training"]["commit_every"] = 4.into();
    }));
    assert!(many.iter().any(|e| e.contains("1250 segments")), "{many:?}");
    let ok = spec(&|v| v["training"]["commit_every"] = 10.into());
    let parsed = JobSpec::from_json(&serde_json::to_vec(&ok).unwrap()).unwrap();
    assert_eq!(parsed.commit_every(500).unwrap(), 10);
    // The default: a fiftieth of the run, at least one step.
    let default = JobSpec::from_json(&serde_json::to_vec(&spec(&|_| {})).unwrap()).unwrap();
    assert_eq!(default.commit_every(500).unwrap(), 10);
    assert_eq!(default.commit_every(7).unwrap(), 1);
    // With epochs the count is known once the data is: refused then.
    assert!(parsed.commit_every(20_000).is_err());
}

/// The schedule, clipping and micro-batch settings are bounded like every other field, each
/// problem named; an unknown decay is a syntax error.
#[test]
fn schedule_clipping_and_micro_batches_are_bounded() {
    let (_, bytes) = common::digits_spec(|_| {});
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["training"]["batch_size"] = 8.into();
    v["training"]["schedule"] =
        serde_json::json!({"warmup_steps": 2_000_000u64, "decay": "cosine", "min_lr_ratio": 1.5});
    v["training"]["clip_grad_norm"] = 0.0.into();
    v["training"]["grad_accumulation"] = 9.into();
    let errs = errors(v.clone());
    for needle in [
        "warmup_steps",
        "min_lr_ratio",
        "clip_grad_norm",
        "grad_accumulation 9",
    ] {
        assert!(
            errs.iter().any(|e| e.contains(needle)),
            "no error about {needle}: {errs:#?}"
        );
    }
    assert_eq!(errs.len(), 4, "{errs:#?}");
    v["training"]["grad_accumulation"] = 0.into();
    assert!(errors(v.clone())
        .iter()
        .any(|e| e.contains("grad_accumulation 0")));
    v["training"]["schedule"]["decay"] = "exponential".into();
    assert!(JobSpec::from_json(&serde_json::to_vec(&v).unwrap())
        .unwrap_err()
        .to_string()
        .contains("exponential"));
}

/// A tokens dataset names a vocabulary the model can be built for; it is language data, so a
/// classifier cannot take it.
#[test]
fn a_tokens_dataset_names_a_usable_vocabulary() {
    let (_, bytes) = common::job_spec("kjv-charlm", |_| {});
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    for bad in [0u64, 1, 65_537, u64::from(u32::MAX)] {
        v["dataset"]["format"] =
            serde_json::json!({"kind": "tokens", "dtype": "u16", "vocab_size": bad});
        assert!(
            errors(v.clone()).iter().any(|e| e.contains("vocab_size")),
            "{bad}"
        );
    }
    v["dataset"]["format"] =
        serde_json::json!({"kind": "tokens", "dtype": "u32", "vocab_size": 50_257});
    JobSpec::from_json(&serde_json::to_vec(&v).unwrap()).unwrap();
    v["model"] = serde_json::json!({"kind": "mlp", "hidden": [8]});
    assert!(errors(v.clone()).iter().any(|e| e.contains("not text")));
    // GPT-2 small on a GPT-2 vocabulary is within the limits; on image data it is not.
    v["model"] = serde_json::json!({"kind": "gpt2", "layers": 12, "d_model": 768, "heads": 12, "context": 1024});
    JobSpec::from_json(&serde_json::to_vec(&v).unwrap()).unwrap();
    let (_, digits) = common::digits_spec(|_| {});
    let mut d: serde_json::Value = serde_json::from_slice(&digits).unwrap();
    d["model"] = v["model"].clone();
    let errs = errors(d);
    assert!(
        errs.iter()
            .any(|e| e.contains("model gpt2 needs a text or tokens dataset")),
        "{errs:#?}"
    );
    assert!(errs
        .iter()
        .any(|e| e.contains("model gpt2 needs training.steps")));
    v["dataset"]["format"] =
        serde_json::json!({"kind": "tokens", "dtype": "u8", "vocab_size": 100});
    assert!(JobSpec::from_json(&serde_json::to_vec(&v).unwrap()).is_err());
}

/// A trained BPE's vocabulary holds the 256 bytes and at least one merge, and fits the limit.
#[test]
fn a_bpe_vocabulary_is_bounded() {
    let (_, bytes) = common::job_spec("kjv-charlm", |_| {});
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    for bad in [0u64, 256, 65_537] {
        v["dataset"]["format"] = serde_json::json!({"kind": "bpe_text", "vocab_size": bad});
        let errs = errors(v.clone());
        assert!(
            errs.iter()
                .any(|e| e.contains("vocab_size") && e.contains("257..=65536")),
            "{bad}: {errs:#?}"
        );
    }
    v["dataset"]["format"] = serde_json::json!({"kind": "bpe_text", "vocab_size": 257});
    JobSpec::from_json(&serde_json::to_vec(&v).unwrap()).unwrap();
    // An engine that knew only `text` must not read a BPE spec as characters: the kind is
    // new (serde ignores extra fields beside the tag of a unit variant like `text`).
    v["dataset"]["format"] = serde_json::json!({"kind": "text", "vocab_size": 300});
    let spec = JobSpec::from_json(&serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(
        spec.dataset.format,
        tensorgrid_train::spec::DatasetFormat::Text
    );
}
