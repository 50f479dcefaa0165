//! A `gpt2` result in Hugging Face's layout: `config.json` (a `GPT2Config`) and
//! `model.safetensors` (the parameters under `GPT2Model`'s names, `Conv1D` weights `(in, out)`,
//! no `lm_head.weight`: it is tied to `wte.weight`), so
//! `GPT2LMHeadModel.from_pretrained(dir)` and candle-transformers read a downloaded result as
//! it is. The engine trains those very tensors, so nothing is converted and the published
//! weights are the ones the state commitments end in.

use std::{collections::HashMap, path::Path};

use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use crate::{
    data::Split,
    spec::{JobSpec, TransformerSpec},
    Error, Result,
};

pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// The files a result publishes beside its weights and metrics, with their bytes, which the
/// spec and the data fix: a `gpt2` model's `config.json`, a trained BPE's `tokenizer.json`.
pub fn extra_files(spec: &JobSpec, data: &Split) -> Vec<(&'static str, Vec<u8>)> {
    let Split::Text { vocab, .. } = data else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(t) = spec.model.transformer().filter(|t| t.gpt2) {
        out.push((CONFIG_FILE, config_bytes(&t, vocab.len())));
    }
    if let Some(json) = vocab.tokenizer_json() {
        out.push((TOKENIZER_FILE, json.to_vec()));
    }
    out
}

/// `transformers`' `GPT2Config`, as its `config.json` spells it. Fields in a fixed order (the
/// file's bytes are part of the result and its hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gpt2Config {
    pub architectures: Vec<String>,
    pub model_type: String,
    pub vocab_size: usize,
    pub n_positions: usize,
    pub n_ctx: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    /// `null`: 4 × `n_embd`.
    pub n_inner: Option<usize>,
    /// The tanh approximation, which the engine's GELU computes.
    pub activation_function: String,
    pub layer_norm_epsilon: f64,
    pub resid_pdrop: f64,
    pub embd_pdrop: f64,
    pub attn_pdrop: f64,
    pub initializer_range: f64,
    pub scale_attn_weights: bool,
    pub tie_word_embeddings: bool,
    /// The engine's vocabulary has no special tokens.
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
    pub torch_dtype: String,
}

/// The config of a `gpt2` spec over a vocabulary of `vocab` ids.
pub fn config(t: &TransformerSpec, vocab: usize) -> Gpt2Config {
    Gpt2Config {
        architectures: vec!["GPT2LMHeadModel".into()],
        model_type: "gpt2".into(),
        vocab_size: vocab,
        n_positions: t.context,
        n_ctx: t.context,
        n_embd: t.d_model,
        n_layer: t.layers,
        n_head: t.heads,
        n_inner: None,
        activation_function: "gelu_new".into(),
        layer_norm_epsilon: f64::from(crate::models::transformer::LN_EPS),
        resid_pdrop: 0.0,
        embd_pdrop: 0.0,
        attn_pdrop: 0.0,
        initializer_range: 0.02,
        scale_attn_weights: true,
        tie_word_embeddings: true,
        bos_token_id: None,
        eos_token_id: None,
        torch_dtype: "float32".into(),
    }
}

/// `config.json`'s bytes: the same for the same spec and vocabulary, on every machine.
pub fn config_bytes(t: &TransformerSpec, vocab: usize) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(&config(t, vocab)).expect("config serialises");
    bytes.push(b'\n');
    bytes
}

/// Writes `varmap`'s tensors to `path` as safetensors with the `{"format": "pt"}` metadata
/// that `transformers` checks before it reads a file.
pub fn save_weights(varmap: &VarMap, path: &Path) -> Result<()> {
    let data = varmap.data().lock().expect("varmap lock");
    let tensors: Vec<(String, candle_core::Tensor)> = data
        .iter()
        .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
        .collect();
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(tensors, Some(metadata), path).map_err(|e| match e {
        safetensors::SafeTensorError::IoError(source) => Error::Io {
            path: path.into(),
            source,
        },
        e => Error::Checkpoint(format!("{}: {e}", path.display())),
    })
}

/// Whether the safetensors file at `path` carries exactly the metadata [`save_weights`]
/// writes (its header is read, at most 100 MB as safetensors allows, not its tensors).
pub fn has_pt_metadata(path: &Path) -> bool {
    use std::io::Read;
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut len = [0u8; 8];
    if f.read_exact(&mut len).is_err() {
        return false;
    }
    let n = u64::from_le_bytes(len);
    if n > 100_000_000 {
        return false;
    }
    let mut header = vec![0u8; n as usize];
    if f.read_exact(&mut header).is_err() {
        return false;
    }
    let Ok(parsed) = serde_json::from_slice::<serde_json::Value>(&header) else {
        return false;
    };
    parsed.get("__metadata__") == Some(&serde_json::json!({"format": "pt"}))
}
