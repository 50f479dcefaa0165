//! A `gpt2` result is Hugging Face's layout as published: `config.json` + `model.safetensors`
//! with GPT-2's names, shapes and metadata. Proven without PyTorch: an independent forward pass
//! written here from GPT-2's definition (as `transformers`' `modeling_gpt2.py` computes it:
//! `Conv1D` as `x·W + b`, `gelu_new`, the head tied to `wte`), reading only those two files
//! with the `safetensors` crate, gives the engine's logits.

mod common;

use std::path::Path;

use candle_core::{Module, Tensor};
use tensorgrid_train::{
    commit::spot_check,
    hf::{self, Gpt2Config},
    trainer::{train, Built},
    verify::verify,
    Device,
};

fn gpt2_spec() -> (tensorgrid_train::spec::JobSpec, Vec<u8>) {
    common::job_spec("kjv-charlm", |v| {
        v["model"] = serde_json::json!({"kind": "gpt2", "layers": 2, "d_model": 32, "heads": 4, "context": 16});
        v["training"]["steps"] = 30.into();
        v["training"]["eval_every"] = 10.into();
        v["training"]["commit_every"] = 7.into();
        v["training"]["batch_size"] = 8.into();
    })
}

/// The tensors of `model.safetensors`, by name: shape and f32 values.
struct Weights(std::collections::HashMap<String, (Vec<usize>, Vec<f32>)>);

impl Weights {
    fn read(path: &Path) -> (Self, Option<std::collections::HashMap<String, String>>) {
        let bytes = std::fs::read(path).unwrap();
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let map = st
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}");
                let values = view
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                (name, (view.shape().to_vec(), values))
            })
            .collect();
        (Self(map), meta.metadata().clone())
    }

    fn get(&self, name: &str, shape: &[usize]) -> &[f32] {
        let (s, v) = self
            .0
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not in model.safetensors"));
        assert_eq!(s, shape, "{name}");
        v
    }
}

fn layer_norm(x: &[f64], w: &[f32], b: &[f32], eps: f64) -> Vec<f64> {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    let inv = 1.0 / (var + eps).sqrt();
    x.iter()
        .zip(w.iter().zip(b))
        .map(|(v, (w, b))| (v - mean) * inv * f64::from(*w) + f64::from(*b))
        .collect()
}

/// `x · W + b` with `W: (in, out)`, GPT-2's `Conv1D`.
fn conv1d(x: &[f64], w: &[f32], b: &[f32]) -> Vec<f64> {
    let out = b.len();
    let mut y: Vec<f64> = b.iter().map(|&v| f64::from(v)).collect();
    for (i, xi) in x.iter().enumerate() {
        for (o, yo) in y.iter_mut().enumerate() {
            *yo += xi * f64::from(w[i * out + o]);
        }
    }
    y
}

fn gelu_new(x: f64) -> f64 {
    0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
}

/// GPT-2's logits for `ids`, from the config and weights files alone.
fn reference_logits(dir: &Path, ids: &[u32]) -> Vec<Vec<f64>> {
    let cfg: Gpt2Config =
        serde_json::from_slice(&std::fs::read(dir.join(hf::CONFIG_FILE)).unwrap()).unwrap();
    let (w, _) = Weights::read(&dir.join(hf::WEIGHTS_FILE));
    let (d, heads, vocab, eps) = (
        cfg.n_embd,
        cfg.n_head,
        cfg.vocab_size,
        cfg.layer_norm_epsilon,
    );
    let inner = cfg.n_inner.unwrap_or(4 * d);
    let hd = d / heads;
    let wte = w.get("wte.weight", &[vocab, d]);
    let wpe = w.get("wpe.weight", &[cfg.n_positions, d]);
    let mut x: Vec<Vec<f64>> = ids
        .iter()
        .enumerate()
        .map(|(t, &id)| {
            (0..d)
                .map(|j| f64::from(wte[id as usize * d + j]) + f64::from(wpe[t * d + j]))
                .collect()
        })
        .collect();
    for l in 0..cfg.n_layer {
        let p = |n: &str| format!("h.{l}.{n}");
        let (ln1w, ln1b) = (w.get(&p("ln_1.weight"), &[d]), w.get(&p("ln_1.bias"), &[d]));
        let attn_w = w.get(&p("attn.c_attn.weight"), &[d, 3 * d]);
        let attn_b = w.get(&p("attn.c_attn.bias"), &[3 * d]);
        let qkv: Vec<Vec<f64>> = x
            .iter()
            .map(|xt| conv1d(&layer_norm(xt, ln1w, ln1b, eps), attn_w, attn_b))
            .collect();
        let mut y = vec![vec![0f64; d]; ids.len()];
        for h in 0..heads {
            for t in 0..ids.len() {
                let q = &qkv[t][h * hd..(h + 1) * hd];
                let scores: Vec<f64> = (0..=t)
                    .map(|u| {
                        let k = &qkv[u][d + h * hd..d + (h + 1) * hd];
                        q.iter().zip(k).map(|(a, b)| a * b).sum::<f64>() / (hd as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let z: f64 = e.iter().sum();
                for (u, eu) in e.iter().enumerate() {
                    let v = &qkv[u][2 * d + h * hd..2 * d + (h + 1) * hd];
                    for j in 0..hd {
                        y[t][h * hd + j] += eu / z * v[j];
                    }
                }
            }
        }
        let proj_w = w.get(&p("attn.c_proj.weight"), &[d, d]);
        let proj_b = w.get(&p("attn.c_proj.bias"), &[d]);
        let (ln2w, ln2b) = (w.get(&p("ln_2.weight"), &[d]), w.get(&p("ln_2.bias"), &[d]));
        let fc_w = w.get(&p("mlp.c_fc.weight"), &[d, inner]);
        let fc_b = w.get(&p("mlp.c_fc.bias"), &[inner]);
        let out_w = w.get(&p("mlp.c_proj.weight"), &[inner, d]);
        let out_b = w.get(&p("mlp.c_proj.bias"), &[d]);
        for t in 0..ids.len() {
            let a = conv1d(&y[t], proj_w, proj_b);
            x[t].iter_mut().zip(&a).for_each(|(x, a)| *x += a);
            let m = conv1d(&layer_norm(&x[t], ln2w, ln2b, eps), fc_w, fc_b);
            let m: Vec<f64> = m.into_iter().map(gelu_new).collect();
            let o = conv1d(&m, out_w, out_b);
            x[t].iter_mut().zip(&o).for_each(|(x, o)| *x += o);
        }
    }
    let (lnfw, lnfb) = (w.get("ln_f.weight", &[d]), w.get("ln_f.bias", &[d]));
    // No lm_head.weight: the head is the token embedding (tie_word_embeddings).
    assert!(!w.0.contains_key("lm_head.weight"));
    x.iter()
        .map(|xt| {
            let h = layer_norm(xt, lnfw, lnfb, eps);
            (0..vocab)
                .map(|v| (0..d).map(|j| h[j] * f64::from(wte[v * d + j])).sum())
                .collect()
        })
        .collect()
}

#[test]
fn a_gpt2_result_is_hugging_faces_layout_and_its_logits_match_an_independent_forward_pass() {
    let (spec, bytes) = gpt2_spec();
    let data = common::split(&spec);
    let dir = tempfile::tempdir().unwrap();
    let out = train(&spec, &bytes, &data, &common::opts(dir.path())).unwrap();
    let m = &out.manifest;
    assert_eq!(m.weights.path, hf::WEIGHTS_FILE);
    assert_eq!(
        m.files(),
        [hf::WEIGHTS_FILE, "metrics.jsonl", hf::CONFIG_FILE]
    );
    assert!(!dir.path().join("weights.safetensors").exists());

    let cfg: Gpt2Config =
        serde_json::from_slice(&std::fs::read(dir.path().join(hf::CONFIG_FILE)).unwrap()).unwrap();
    let tensorgrid_train::data::Split::Text { vocab, .. } = &data else {
        panic!("text")
    };
    assert_eq!(
        (cfg.model_type.as_str(), cfg.architectures[0].as_str()),
        ("gpt2", "GPT2LMHeadModel")
    );
    assert_eq!(
        (
            cfg.vocab_size,
            cfg.n_positions,
            cfg.n_embd,
            cfg.n_layer,
            cfg.n_head
        ),
        (vocab.len(), 16, 32, 2, 4)
    );
    assert_eq!(cfg.activation_function, "gelu_new");
    assert!(cfg.tie_word_embeddings);
    let (_, meta) = Weights::read(&dir.path().join(hf::WEIGHTS_FILE));
    assert_eq!(
        meta.unwrap().get("format").map(String::as_str),
        Some("pt"),
        "transformers refuses a safetensors file without it"
    );

    // The engine's logits for a held-out sequence of the full context, with the published
    // weights loaded into a model built from the spec.
    let ids: Vec<u32> = match &data {
        tensorgrid_train::data::Split::Text { eval, .. } => eval[..16].to_vec(),
        _ => unreachable!(),
    };
    let mut built = Built::new(&spec, &data, &Device::Cpu).unwrap();
    built
        .varmap
        .load(dir.path().join(hf::WEIGHTS_FILE))
        .unwrap();
    let idx = Tensor::new(ids.as_slice(), &candle_core::Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let ours: Vec<Vec<f32>> = built
        .model
        .forward(&idx)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_vec2()
        .unwrap();
    let theirs = reference_logits(dir.path(), &ids);
    let mut worst = 0f64;
    for (a, b) in ours.iter().flatten().zip(theirs.iter().flatten()) {
        worst = worst.max((f64::from(*a) - b).abs());
    }
    let scale = theirs.iter().flatten().fold(1f64, |m, v| m.max(v.abs()));
    println!("logits: worst difference {worst:.2e} at scale {scale:.2}");
    assert!(worst <= 1e-5 * scale, "{worst} at scale {scale}");
    // Trained, not the initialisation: the logits say something.
    assert!(scale > 1.0, "{scale}");

    // The result verifies; its segments re-run; an edited config is caught.
    let report = verify(&spec, &bytes, &data, dir.path(), &Device::Cpu).unwrap();
    assert!(report.problems.is_empty(), "{report:?}");
    let all: Vec<usize> = (0..m.commitments.segments()).collect();
    let check = spot_check(
        &spec,
        &data,
        dir.path(),
        &m.commitments,
        m.steps,
        &all,
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(check.mismatches, 0, "{check:#?}");
    // Weights without the metadata transformers reads (the same tensors, saved by candle).
    let weights = dir.path().join(hf::WEIGHTS_FILE);
    let original = std::fs::read(&weights).unwrap();
    let tensors = candle_core::safetensors::load(&weights, &candle_core::Device::Cpu).unwrap();
    candle_core::safetensors::save(&tensors, &weights).unwrap();
    let report = verify(&spec, &bytes, &data, dir.path(), &Device::Cpu).unwrap();
    assert!(
        report.problems.iter().any(|p| p.contains("metadata")),
        "{report:?}"
    );
    std::fs::write(&weights, original).unwrap();
    let config = dir.path().join(hf::CONFIG_FILE);
    let edited = std::fs::read_to_string(&config)
        .unwrap()
        .replace("\"n_head\": 4", "\"n_head\": 8");
    std::fs::write(&config, edited).unwrap();
    let report = verify(&spec, &bytes, &data, dir.path(), &Device::Cpu).unwrap();
    assert!(
        report.problems.iter().any(|p| p.contains("config.json")),
        "{report:?}"
    );
}

/// A byte-level BPE trained on the job's text is published as `tokenizer.json` beside the
/// Hugging Face config and weights (`PreTrainedTokenizerFast(tokenizer_file=...)` and
/// `tokenizers` read it); a verifier rebuilds the very same file from the spec and the data,
/// and the published file encodes the held-out text to the ids the model was evaluated on.
#[test]
fn a_trained_bpe_is_published_and_rebuilt_by_a_verifier() {
    let (spec, bytes) = common::job_spec("kjv-charlm", |v| {
        v["dataset"]["format"] = serde_json::json!({"kind": "bpe_text", "vocab_size": 400});
        v["model"] = serde_json::json!({"kind": "gpt2", "layers": 1, "d_model": 16, "heads": 2, "context": 16});
        v["training"]["steps"] = 6.into();
        v["training"]["eval_every"] = 3.into();
    });
    let data = common::split(&spec);
    let again = common::split(&spec);
    let (
        tensorgrid_train::data::Split::Text { eval, vocab, .. },
        tensorgrid_train::data::Split::Text { vocab: vocab2, .. },
    ) = (&data, &again)
    else {
        panic!("text")
    };
    assert_eq!(vocab, vocab2, "the same tokenizer from the same text");
    assert_eq!(vocab.len(), 400);
    let dir = tempfile::tempdir().unwrap();
    let out = train(&spec, &bytes, &data, &common::opts(dir.path())).unwrap();
    assert_eq!(
        out.manifest.files(),
        [
            hf::WEIGHTS_FILE,
            "metrics.jsonl",
            hf::CONFIG_FILE,
            hf::TOKENIZER_FILE
        ]
    );
    let published = std::fs::read(dir.path().join(hf::TOKENIZER_FILE)).unwrap();
    let tk = tensorgrid_train::tokenizer::load(&published).unwrap();
    let text = std::fs::read_to_string(common::repo().join("data/kjv.txt")).unwrap();
    let ids = tensorgrid_train::tokenizer::encode(&tk, &text).unwrap();
    // The held-out part is the text's end: its ids end the whole text's (BPE does not merge
    // across the split point's word boundary here, a line break).
    assert!(ids.ends_with(&eval[eval.len() - 100..]));
    assert!(
        ids.len() < text.len() / 2,
        "{} ids for {} bytes",
        ids.len(),
        text.len()
    );
    let report = verify(&spec, &bytes, &data, dir.path(), &Device::Cpu).unwrap();
    assert!(report.problems.is_empty(), "{report:?}");
    // The sample is decoded text: a held-out line's start, and the model's continuation.
    let sample = report
        .sample
        .expect("a BPE model's report carries a sample");
    assert!(!sample.prompt.is_empty() && !sample.continuation.is_empty());
    assert!(text.contains(&sample.prompt), "{sample:?}");
    // Another tokenizer in its place (the same, one merge dropped) is caught.
    let mut edited: serde_json::Value = serde_json::from_slice(&published).unwrap();
    edited["model"]["merges"].as_array_mut().unwrap().pop();
    std::fs::write(
        dir.path().join(hf::TOKENIZER_FILE),
        serde_json::to_vec(&edited).unwrap(),
    )
    .unwrap();
    let report = verify(&spec, &bytes, &data, dir.path(), &Device::Cpu).unwrap();
    assert!(
        report.problems.iter().any(|p| p.contains("tokenizer.json")),
        "{report:?}"
    );
}
