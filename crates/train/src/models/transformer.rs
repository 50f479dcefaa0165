//! A GPT-style language model, in two layouts: the character model's own (`char_transformer`:
//! candle's `(out, in)` weights, its own output layer) and GPT-2's (`gpt2`: Hugging Face's
//! parameter names, `Conv1D` weights `(in, out)`, the output layer tied to the token
//! embedding), so a `gpt2` result's weights are `model.safetensors` as `transformers` reads it.
//!
//! Layer norm, softmax and GELU come from [`kernels`], which have backward passes (candle's
//! fused layer norm and softmax do not, so parameters before them would silently never train —
//! see the gradient test) and run fused on the CPU.

use candle_core::{Module, Tensor};
use candle_nn::{Embedding, VarBuilder};

use crate::{kernels, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub vocab: usize,
    pub layers: usize,
    pub d_model: usize,
    pub heads: usize,
    pub context: usize,
    /// GPT-2's names, layouts and tied output layer.
    pub gpt2: bool,
}

/// Parameter names of one layout.
struct Names {
    block: fn(usize) -> String,
    ln1: &'static str,
    qkv: &'static str,
    proj: &'static str,
    ln2: &'static str,
    fc: &'static str,
    fc_proj: &'static str,
}

const CHAR_NAMES: Names = Names {
    block: |i| format!("h{i}"),
    ln1: "ln1",
    qkv: "attn.qkv",
    proj: "attn.proj",
    ln2: "ln2",
    fc: "mlp.fc",
    fc_proj: "mlp.proj",
};

/// Hugging Face's `GPT2Model` names.
const GPT2_NAMES: Names = Names {
    block: |i| format!("h.{i}"),
    ln1: "ln_1",
    qkv: "attn.c_attn",
    proj: "attn.c_proj",
    ln2: "ln_2",
    fc: "mlp.c_fc",
    fc_proj: "mlp.c_proj",
};

/// A dense layer with a bias: candle's `(out, in)` weight, or GPT-2's `Conv1D` `(in, out)`.
struct Dense {
    weight: Tensor,
    bias: Tensor,
    in_out: bool,
}

impl Dense {
    fn new(i: usize, o: usize, in_out: bool, vb: VarBuilder) -> Result<Self> {
        let weight = if in_out {
            vb.get((i, o), "weight")?
        } else {
            vb.get((o, i), "weight")?
        };
        Ok(Self {
            weight,
            bias: vb.get(o, "bias")?,
            in_out,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if self.in_out {
            kernels::linear_in_out(x, &self.weight, Some(&self.bias))
        } else {
            kernels::linear(x, &self.weight, Some(&self.bias))
        }
    }
}

pub const LN_EPS: f32 = 1e-5;

struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
}

impl LayerNorm {
    fn new(d: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            weight: super::wide_param(&vb, d, "weight")?,
            bias: super::wide_param(&vb, d, "bias")?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        kernels::layer_norm(x, &self.weight, &self.bias, LN_EPS)
    }
}

struct Block {
    ln1: LayerNorm,
    qkv: Dense,
    proj: Dense,
    ln2: LayerNorm,
    fc: Dense,
    fc_proj: Dense,
    heads: usize,
}

impl Block {
    fn new(d: usize, heads: usize, names: &Names, in_out: bool, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            ln1: LayerNorm::new(d, vb.pp(names.ln1))?,
            qkv: Dense::new(d, 3 * d, in_out, vb.pp(names.qkv))?,
            proj: Dense::new(d, d, in_out, vb.pp(names.proj))?,
            ln2: LayerNorm::new(d, vb.pp(names.ln2))?,
            fc: Dense::new(d, 4 * d, in_out, vb.pp(names.fc))?,
            fc_proj: Dense::new(4 * d, d, in_out, vb.pp(names.fc_proj))?,
            heads,
        })
    }

    /// `x`: `(B·T, d)` activations, rows in batch-major order. Kept 2-D so every linear layer
    /// is one gemm (candle-nn's `Linear` on a 3-D input broadcasts its weight over the batch:
    /// a batched matmul forward and a strided reduction backward).
    fn forward(&self, x: &Tensor, b: usize, t: usize) -> candle_core::Result<Tensor> {
        let d = x.dim(1)?;
        let hd = d / self.heads;
        let qkv = self
            .qkv
            .forward(&self.ln1.forward(x)?)?
            .reshape((b, t, 3, self.heads, hd))?;
        let part = |i: usize| {
            qkv.narrow(2, i, 1)?
                .squeeze(2)?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, k, v) = (part(0)?, part(1)?, part(2)?); // (B, H, T, hd)
        let att = kernels::causal_softmax(&q.matmul(&k.t()?)?, 1.0 / (hd as f64).sqrt())?;
        let y = att.matmul(&v)?.transpose(1, 2)?.reshape((b * t, d))?;
        let x = (x + self.proj.forward(&y)?)?;
        let h = kernels::gelu(&self.fc.forward(&self.ln2.forward(&x)?)?)?;
        x + self.fc_proj.forward(&h)?
    }
}

pub struct CharTransformer {
    cfg: Config,
    /// The embedding tables, at least f32 whatever the model computes in: a lookup's backward
    /// adds each row's gradient once per occurrence of its token, thousands of times a batch,
    /// which a half type's accumulation would lose. The sum of the two lookups is cast.
    wte: Embedding,
    wpe: Embedding,
    dtype: candle_core::DType,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    /// The output layer `(vocab, d)`: its own, or (GPT-2) the token embedding's table.
    head: Tensor,
}

impl CharTransformer {
    pub fn new(cfg: Config, vb: VarBuilder) -> Result<Self> {
        let d = cfg.d_model;
        let names = if cfg.gpt2 { &GPT2_NAMES } else { &CHAR_NAMES };
        let table = |name: &str, rows: usize| -> Result<Embedding> {
            Ok(Embedding::new(
                super::wide_param(&vb.pp(name), (rows, d), "weight")?,
                d,
            ))
        };
        let wte = table("wte", cfg.vocab)?;
        let head = if cfg.gpt2 {
            // Tied: the same f32 table, cast for the output layer's matmul.
            wte.embeddings().to_dtype(vb.dtype())?
        } else {
            vb.pp("head").get((cfg.vocab, d), "weight")?
        };
        Ok(Self {
            wpe: table("wpe", cfg.context)?,
            dtype: vb.dtype(),
            blocks: (0..cfg.layers)
                .map(|i| Block::new(d, cfg.heads, names, cfg.gpt2, vb.pp((names.block)(i))))
                .collect::<Result<_>>()?,
            ln_f: LayerNorm::new(d, vb.pp("ln_f"))?,
            wte,
            head,
            cfg,
        })
    }

    pub fn config(&self) -> Config {
        self.cfg
    }
}

impl Module for CharTransformer {
    /// `idx`: `(batch, T)` u32 token ids, `T ≤ context`. Returns `(batch, T, vocab)` logits.
    fn forward(&self, idx: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t) = idx.dims2()?;
        let pos = Tensor::arange(0u32, t as u32, idx.device())?;
        let mut x = self
            .wte
            .forward(idx)?
            .broadcast_add(&self.wpe.forward(&pos)?)?
            .reshape((b * t, self.cfg.d_model))?
            .to_dtype(self.dtype)?;
        for block in &self.blocks {
            x = block.forward(&x, b, t)?;
        }
        kernels::linear(&self.ln_f.forward(&x)?, &self.head, None)?.reshape((b, t, self.cfg.vocab))
    }
}
