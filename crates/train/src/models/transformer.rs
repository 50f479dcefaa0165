//! A small GPT-style character model.
//!
//! Layer norm, softmax and GELU come from [`kernels`], which have backward passes (candle's
//! fused layer norm and softmax do not, so parameters before them would silently never train —
//! see the gradient test) and run fused on the CPU.

use candle_core::{Module, Tensor};
use candle_nn::{embedding, linear, linear_no_bias, Embedding, Linear, VarBuilder};

use crate::{kernels, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub vocab: usize,
    pub layers: usize,
    pub d_model: usize,
    pub heads: usize,
    pub context: usize,
}

const LN_EPS: f32 = 1e-5;

struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
}

impl LayerNorm {
    fn new(d: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            weight: vb.get(d, "weight")?,
            bias: vb.get(d, "bias")?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        kernels::layer_norm(x, &self.weight, &self.bias, LN_EPS)
    }
}

struct Block {
    ln1: LayerNorm,
    qkv: Linear,
    proj: Linear,
    ln2: LayerNorm,
    fc: Linear,
    fc_proj: Linear,
    heads: usize,
}

impl Block {
    fn new(d: usize, heads: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            ln1: LayerNorm::new(d, vb.pp("ln1"))?,
            qkv: linear(d, 3 * d, vb.pp("attn.qkv"))?,
            proj: linear(d, d, vb.pp("attn.proj"))?,
            ln2: LayerNorm::new(d, vb.pp("ln2"))?,
            fc: linear(d, 4 * d, vb.pp("mlp.fc"))?,
            fc_proj: linear(4 * d, d, vb.pp("mlp.proj"))?,
            heads,
        })
    }

    /// `x`: `(B·T, d)` activations, rows in batch-major order. Kept 2-D so every linear layer
    /// is one gemm (candle-nn's `Linear` on a 3-D input broadcasts its weight over the batch:
    /// a batched matmul forward and a strided reduction backward).
    fn forward(&self, x: &Tensor, b: usize, t: usize) -> candle_core::Result<Tensor> {
        let d = x.dim(1)?;
        let hd = d / self.heads;
        let qkv =
            kernels::dense(&self.qkv, &self.ln1.forward(x)?)?.reshape((b, t, 3, self.heads, hd))?;
        let part = |i: usize| {
            qkv.narrow(2, i, 1)?
                .squeeze(2)?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, k, v) = (part(0)?, part(1)?, part(2)?); // (B, H, T, hd)
        let att = kernels::causal_softmax(&q.matmul(&k.t()?)?, 1.0 / (hd as f64).sqrt())?;
        let y = att.matmul(&v)?.transpose(1, 2)?.reshape((b * t, d))?;
        let x = (x + kernels::dense(&self.proj, &y)?)?;
        let h = kernels::gelu(&kernels::dense(&self.fc, &self.ln2.forward(&x)?)?)?;
        x + kernels::dense(&self.fc_proj, &h)?
    }
}

pub struct CharTransformer {
    cfg: Config,
    wte: Embedding,
    wpe: Embedding,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    head: Linear,
}

impl CharTransformer {
    pub fn new(cfg: Config, vb: VarBuilder) -> Result<Self> {
        let d = cfg.d_model;
        Ok(Self {
            wte: embedding(cfg.vocab, d, vb.pp("wte"))?,
            wpe: embedding(cfg.context, d, vb.pp("wpe"))?,
            blocks: (0..cfg.layers)
                .map(|i| Block::new(d, cfg.heads, vb.pp(format!("h{i}"))))
                .collect::<Result<_>>()?,
            ln_f: LayerNorm::new(d, vb.pp("ln_f"))?,
            head: linear_no_bias(d, cfg.vocab, vb.pp("head"))?,
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
            .reshape((b * t, self.cfg.d_model))?;
        for block in &self.blocks {
            x = block.forward(&x, b, t)?;
        }
        kernels::dense(&self.head, &self.ln_f.forward(&x)?)?.reshape((b, t, self.cfg.vocab))
    }
}
