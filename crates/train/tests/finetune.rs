//! Fine-tuning (`model.init`) and a given tokenizer (`dataset.format.tokenizer`): a job starts
//! from a previous result's weights over that result's tokenizer, every parameter bit-equal to
//! the file's; the result names what it grew from; files that do not fit the model, or
//! tokenizers that would make the run differ or take hours, are refused with the reason.

mod common;

use std::{collections::HashMap, path::Path};

use candle_core::{DType, Tensor};
use sha2::{Digest, Sha256};
use tensorgrid_train::{
    data, manifest,
    spec::{JobSpec, INIT_ROLE, TOKENIZER_ROLE},
    tokenizer,
    trainer::{evaluate, train, Built},
    Device, Error,
};

/// A small GPT-2 over a BPE of 300 ids trained on the KJV: the base the fine-tunes start from.
fn base_spec() -> serde_json::Value {
    let (_, bytes) = common::job_spec("kjv-gpt2", |v| {
        v["dataset"]["uri"] = "file:../data/kjv.txt".into();
        v["dataset"]["sha256"] =
            common::sha256_hex(&std::fs::read(common::repo().join("data/kjv.txt")).unwrap()).into();
        v["dataset"]["format"]["vocab_size"] = 300.into();
        v["dataset"]["eval_fraction"] = 0.01.into();
        v["model"] = serde_json::json!({"kind": "gpt2", "layers": 1, "d_model": 32, "heads": 2, "context": 16});
        v["training"]["steps"] = 40.into();
        v["training"]["batch_size"] = 8.into();
        v["training"]["eval_every"] = 20.into();
        v["training"]["commit_every"] = 20.into();
        v["training"]["checkpoint_every"] = 0.into();
        v["evaluation"]["threshold"] = 1e9.into();
    });
    serde_json::from_slice(&bytes).unwrap()
}

fn file_ref(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap();
    serde_json::json!({
        "uri": format!("file://{}", path.display()),
        "sha256": common::sha256_hex(&bytes),
        "bytes": bytes.len(),
    })
}

/// Trains the base into `dir` (once per test: 40 small steps).
fn base(dir: &Path) {
    let bytes = serde_json::to_vec(&base_spec()).unwrap();
    let mut spec = JobSpec::from_json(&bytes).unwrap();
    let data = common::load(&mut spec);
    train(&spec, &bytes, &data, &common::opts(dir)).unwrap();
}

/// The base's spec made a fine-tune on the WEB New Testament from the result in `base`.
fn finetune_json(base: &Path) -> serde_json::Value {
    let mut v = base_spec();
    let web = std::fs::read(common::repo().join("data/web-nt.txt")).unwrap();
    v["dataset"]["uri"] = "file:../data/web-nt.txt".into();
    v["dataset"]["sha256"] = common::sha256_hex(&web).into();
    v["dataset"]["format"] = serde_json::json!({
        "kind": "bpe_text", "tokenizer": file_ref(&base.join("tokenizer.json"))
    });
    v["model"]["init"] = file_ref(&base.join("model.safetensors"));
    v["training"]["steps"] = 10.into();
    v["training"]["eval_every"] = 10.into();
    v["training"]["commit_every"] = 5.into();
    v
}

fn parse(v: &serde_json::Value) -> (JobSpec, Vec<u8>) {
    let bytes = serde_json::to_vec_pretty(v).unwrap();
    (JobSpec::from_json(&bytes).unwrap(), bytes)
}

fn tensors(path: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .into_iter()
        .map(f32::to_bits)
        .collect()
}

/// A change to a weights file's tensors.
type Edit = dyn FnOnce(&mut HashMap<String, Tensor>);

/// The fine-tune's error (the model built from `init` written by `write`).
fn built_with(base: &Path, write: impl FnOnce(&mut HashMap<String, Tensor>)) -> Option<Error> {
    let mut t = tensors(&base.join("model.safetensors"));
    write(&mut t);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("init.safetensors");
    candle_core::safetensors::save(&t, &path).unwrap();
    let mut v = finetune_json(base);
    v["model"]["init"] = file_ref(&path);
    let (mut spec, _) = parse(&v);
    let data = common::load(&mut spec);
    Built::new(&spec, &data, &Device::Cpu).err()
}

#[test]
fn a_finetune_starts_from_the_base_and_the_result_names_it() {
    let dir = tempfile::tempdir().unwrap();
    base(dir.path());
    let (mut spec, bytes) = parse(&finetune_json(dir.path()));
    let data = common::load(&mut spec);
    // Over the base's own tokenizer: the published file is the given one, byte for byte.
    let data::Split::Text { vocab, .. } = &data else {
        panic!("text")
    };
    let given = std::fs::read(dir.path().join("tokenizer.json")).unwrap();
    assert_eq!(vocab.tokenizer_json(), Some(&given[..]));
    assert_eq!(vocab.len(), tokenizer::check_given(&given).unwrap());

    // Every parameter is the base's, bit for bit.
    let built = Built::new(&spec, &data, &Device::Cpu).unwrap();
    let base_weights = tensors(&dir.path().join("model.safetensors"));
    let params = built.params();
    assert_eq!(params.len(), base_weights.len());
    for (name, var) in &params {
        assert_eq!(bits(var.as_tensor()), bits(&base_weights[name]), "{name}");
    }
    // So it reads the new text far better than the seed's weights do.
    let (from_base, _) = evaluate(&built.model, &data, &Device::Cpu).unwrap();
    let mut fresh_spec = spec.clone();
    if let tensorgrid_train::spec::ModelSpec::Gpt2 { init, .. } = &mut fresh_spec.model {
        *init = None;
    }
    let fresh = Built::new(&fresh_spec, &data, &Device::Cpu).unwrap();
    let (from_seed, _) = evaluate(&fresh.model, &data, &Device::Cpu).unwrap();
    assert!(
        from_base < from_seed - 0.5,
        "eval loss from the base {from_base}, from the seed {from_seed}"
    );

    let out = tempfile::tempdir().unwrap();
    let r = train(&spec, &bytes, &data, &common::opts(out.path())).unwrap();
    let init = std::fs::read(dir.path().join("model.safetensors")).unwrap();
    assert_eq!(
        r.manifest.init_sha256.as_deref(),
        Some(hex::encode(Sha256::digest(&init)).as_str())
    );
    assert_eq!(manifest::read(out.path()).unwrap(), r.manifest);
    // A verifier that fetched the same files re-evaluates it and replays a segment.
    let report =
        tensorgrid_train::verify::verify(&spec, &bytes, &data, out.path(), &Device::Cpu).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    // A manifest that names other initial weights is caught.
    let tampered = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(out.path()).unwrap() {
        let f = f.unwrap().path();
        if f.is_file() {
            std::fs::copy(&f, tampered.path().join(f.file_name().unwrap())).unwrap();
        }
    }
    let mut m = r.manifest.clone();
    m.init_sha256 = Some("ab".repeat(32));
    std::fs::write(
        tampered.path().join(manifest::MANIFEST_FILE),
        serde_json::to_vec_pretty(&m).unwrap(),
    )
    .unwrap();
    let report =
        tensorgrid_train::verify::verify(&spec, &bytes, &data, tampered.path(), &Device::Cpu)
            .unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("initial weights were abab")),
        "{:?}",
        report.problems
    );
    let check = tensorgrid_train::commit::spot_check(
        &spec,
        &data,
        out.path(),
        &r.manifest.commitments,
        10,
        &[0],
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(check.mismatches, 0, "{check:?}");
    // Not fetched: a clear error, never the seed's weights.
    let (unfetched, _) = parse(&finetune_json(dir.path()));
    let e = Built::new(&unfetched, &data, &Device::Cpu)
        .err()
        .expect("refused");
    assert!(e.to_string().contains("was not fetched"), "{e}");
    assert_eq!(e.fault(), tensorgrid_train::Fault::Internal);
}

#[test]
fn weights_that_do_not_fit_the_model_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    base(dir.path());
    let cases: Vec<(&str, Box<Edit>)> = vec![
        (
            "not in the file: `h.0.ln_1.weight`",
            Box::new(|t| {
                t.remove("h.0.ln_1.weight");
            }),
        ),
        (
            "does not have: `h.7.mlp.c_fc.weight`",
            Box::new(|t| {
                t.insert(
                    "h.7.mlp.c_fc.weight".into(),
                    Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap(),
                );
            }),
        ),
        (
            "`ln_f.weight` has shape [33]",
            Box::new(|t| {
                t.insert(
                    "ln_f.weight".into(),
                    Tensor::ones(33, DType::F32, &Device::Cpu).unwrap(),
                );
            }),
        ),
        (
            "holds NaN",
            Box::new(|t| {
                let nan = Tensor::new(&[f32::NAN], &Device::Cpu).unwrap();
                let w = Tensor::cat(&[&t["ln_f.bias"].narrow(0, 0, 31).unwrap(), &nan], 0).unwrap();
                t.insert("ln_f.bias".into(), w);
            }),
        ),
        (
            "holds 1e5",
            Box::new(|t| {
                let big = Tensor::new(&[1e5f32], &Device::Cpu).unwrap();
                let w = Tensor::cat(&[&t["ln_f.bias"].narrow(0, 0, 31).unwrap(), &big], 0).unwrap();
                t.insert("ln_f.bias".into(), w);
            }),
        ),
        (
            "`lm_head.weight` is not `wte.weight`",
            Box::new(|t| {
                let head = (&t["wte.weight"] * 2.0).unwrap();
                t.insert("lm_head.weight".into(), head);
            }),
        ),
        (
            "is U8",
            Box::new(|t| {
                t.insert(
                    "ln_f.bias".into(),
                    Tensor::zeros(32, DType::U8, &Device::Cpu).unwrap(),
                );
            }),
        ),
    ];
    for (want, write) in cases {
        let e = built_with(dir.path(), write).unwrap_or_else(|| panic!("{want}: built"));
        let msg = e.to_string();
        assert!(
            msg.contains(INIT_ROLE) && msg.contains(want),
            "{want}: {msg}"
        );
        assert_eq!(e.fault(), tensorgrid_train::Fault::Poster, "{msg}");
    }
    // Not a safetensors file at all.
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"\xff\xff\xff\xff\xff\xff\xff\x7fnot safetensors").unwrap();
    let mut v = finetune_json(dir.path());
    v["model"]["init"] = file_ref(&junk);
    let (mut spec, _) = parse(&v);
    let data = common::load(&mut spec);
    let e = Built::new(&spec, &data, &Device::Cpu)
        .err()
        .expect("refused");
    assert!(e.to_string().contains("not a readable safetensors"), "{e}");
}

/// Hugging Face's own GPT-2 files: `transformer.` names, the attention-mask buffers, the tied
/// `lm_head.weight`, bf16 values and 1,024 positions for a 16-token context all load.
#[test]
fn hugging_face_gpt2_files_load_as_published() {
    let dir = tempfile::tempdir().unwrap();
    base(dir.path());
    let base_weights = tensors(&dir.path().join("model.safetensors"));
    let mut hf: HashMap<String, Tensor> = base_weights
        .iter()
        .map(|(k, t)| (format!("transformer.{k}"), t.clone()))
        .collect();
    hf.insert("lm_head.weight".into(), base_weights["wte.weight"].clone());
    hf.insert(
        "transformer.h.0.attn.bias".into(),
        Tensor::ones((1, 1, 16, 16), DType::F32, &Device::Cpu).unwrap(),
    );
    hf.insert(
        "transformer.h.0.attn.masked_bias".into(),
        Tensor::new(&[-1e4f32], &Device::Cpu).unwrap(),
    );
    let wpe = &base_weights["wpe.weight"];
    let extra = Tensor::ones((1_008, 32), DType::F32, &Device::Cpu).unwrap();
    hf.insert(
        "transformer.wpe.weight".into(),
        Tensor::cat(&[wpe, &extra], 0).unwrap(),
    );
    for t in hf.values_mut() {
        *t = t.to_dtype(DType::BF16).unwrap();
    }
    let path = dir.path().join("hf.safetensors");
    candle_core::safetensors::save(&hf, &path).unwrap();
    let mut v = finetune_json(dir.path());
    v["model"]["init"] = file_ref(&path);
    let (mut spec, _) = parse(&v);
    let data = common::load(&mut spec);
    let built = Built::new(&spec, &data, &Device::Cpu).unwrap();
    for (name, var) in built.params() {
        let want = base_weights[&name]
            .to_dtype(DType::BF16)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap();
        assert_eq!(bits(var.as_tensor()), bits(&want), "{name}");
    }
}

#[test]
fn a_file_is_attached_only_with_its_size_and_hash() {
    let dir = tempfile::tempdir().unwrap();
    base(dir.path());
    let (mut spec, _) = parse(&finetune_json(dir.path()));
    let mut files = spec.files_mut();
    assert_eq!(
        files.iter().map(|(r, _)| *r).collect::<Vec<_>>(),
        [TOKENIZER_ROLE, INIT_ROLE]
    );
    let (role, f) = &mut files[1];
    let right = std::fs::read(dir.path().join("model.safetensors")).unwrap();
    let e = f.attach(role, right[1..].to_vec()).unwrap_err().to_string();
    assert!(e.contains("bytes, the spec says"), "{e}");
    let mut flipped = right.clone();
    *flipped.last_mut().unwrap() ^= 1;
    let e = f.attach(role, flipped).unwrap_err().to_string();
    assert!(
        e.starts_with("model.init: ") && e.contains("sha256 is"),
        "{e}"
    );
    f.attach(role, right).unwrap();
    // Fetched through the engine's loader, a changed file is refused the same way.
    let mut v = finetune_json(dir.path());
    v["model"]["init"]["sha256"] = "ab".repeat(32).into();
    let (mut spec, _) = parse(&v);
    let e = data::load(&mut spec, &common::repo().join("jobs"), None).unwrap_err();
    assert!(
        matches!(
            e,
            Error::File {
                role: INIT_ROLE,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.fault(), tensorgrid_train::Fault::Poster);
}

#[test]
fn spec_rules_for_a_given_tokenizer_and_initial_weights() {
    let dir = tempfile::tempdir().unwrap();
    let tk = dir.path().join("tokenizer.json");
    std::fs::write(&tk, b"{}").unwrap();
    let mut v = base_spec();
    v["dataset"]["format"]["tokenizer"] = file_ref(&tk);
    let e = JobSpec::from_json(&serde_json::to_vec(&v).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("not both"), "{e}");
    v["dataset"]["format"] = serde_json::json!({"kind": "bpe_text"});
    let e = JobSpec::from_json(&serde_json::to_vec(&v).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs either vocab_size"), "{e}");
    v["dataset"]["format"] = serde_json::json!({"kind": "bpe_text", "tokenizer": {
        "uri": "ftp://x/tokenizer.json", "sha256": "zz", "bytes": 17u64 << 20
    }});
    v["model"]["init"] =
        serde_json::json!({"uri": "file:w", "sha256": "ab".repeat(32), "bytes": 0});
    let e = JobSpec::from_json(&serde_json::to_vec(&v).unwrap())
        .unwrap_err()
        .to_string();
    for want in [
        "dataset.format.tokenizer.uri `ftp://x/tokenizer.json`: unsupported scheme",
        "dataset.format.tokenizer.sha256 must be 64 hex",
        "dataset.format.tokenizer.bytes 17825792 must be 1..=16777216",
        "model.init.bytes 0 must be 1..=",
    ] {
        assert!(e.contains(want), "{want}: {e}");
    }
    // Unknown fields in a file reference are refused, as everywhere in a spec.
    v["model"]["init"] =
        serde_json::json!({"uri": "file:w", "sha256": "ab".repeat(32), "bytes": 1, "dtype": "f32"});
    assert!(JobSpec::from_json(&serde_json::to_vec(&v).unwrap()).is_err());
}

/// Only a byte-level BPE like GPT-2's: anything that would make two runs tokenize differently,
/// drop text, or hand a regex engine a poster's pattern is refused, each with its reason.
#[test]
fn a_given_tokenizer_must_be_a_byte_level_bpe_like_gpt2s() {
    let text = "In the beginning God created the heaven and the earth. ".repeat(50);
    let good: serde_json::Value =
        serde_json::from_slice(&tokenizer::train_bpe(&text, 300).unwrap()).unwrap();
    assert!(tokenizer::check_given(&serde_json::to_vec(&good).unwrap()).unwrap() <= 300);
    let refused = |edit: &dyn Fn(&mut serde_json::Value), want: &str| {
        let mut v = good.clone();
        edit(&mut v);
        let e = tokenizer::check_given(&serde_json::to_vec(&v).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{want}: {e}");
    };
    refused(&|v| v["model"]["dropout"] = 0.1.into(), "BPE dropout");
    refused(
        &|v| v["normalizer"] = serde_json::json!({"type": "Lowercase"}),
        "it has a normalizer",
    );
    refused(
        &|v| {
            v["pre_tokenizer"] = serde_json::json!({"type": "Split", "pattern": {"Regex": "(a+)+$"},
                "behavior": "Isolated", "invert": false})
        },
        "not GPT-2's ByteLevel",
    );
    refused(
        &|v| v["truncation"] = serde_json::json!({"direction": "Right", "max_length": 8, "strategy": "LongestFirst", "stride": 0}),
        "it has a truncation",
    );
    refused(&|v| v["model"]["type"] = "WordPiece".into(), "not a BPE");
    refused(
        &|v| v["model"]["end_of_word_suffix"] = "</w>".into(),
        "end_of_word_suffix",
    );
    refused(
        &|v| v["model"]["continuing_subword_prefix"] = "##".into(),
        "continuing_subword_prefix",
    );
    refused(
        &|v| v["model"]["byte_fallback"] = true.into(),
        "byte_fallback",
    );
    // GPT-2's own spelling of "none" passes.
    let mut gpt2_like = good.clone();
    gpt2_like["model"]["continuing_subword_prefix"] = "".into();
    gpt2_like["model"]["end_of_word_suffix"] = "".into();
    gpt2_like["post_processor"] = serde_json::json!({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true});
    assert!(tokenizer::check_given(&serde_json::to_vec(&gpt2_like).unwrap()).is_ok());
    refused(
        &|v| {
            v["model"]["vocab"].as_object_mut().unwrap().remove("Ā");
        },
        "of the 256 byte symbols",
    );
    refused(
        &|v| v["model"]["vocab"]["zzzz"] = 70_000.into(),
        "ids go up to 70000",
    );
    let e = tokenizer::check_given(b"not json").unwrap_err().to_string();
    assert!(e.contains("not a tokenizer.json"), "{e}");
}
