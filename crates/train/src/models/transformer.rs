//! A small GPT-style character model.
//!
//! Layer norm and softmax use candle's `*_slow` / generic ops: the fused ones have no backward
//! pass, so parameters before them would silently never train (see the gradient test).

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{embedding, linear, linear_no_bias, ops, Embedding, Linear, VarBuilder};

use crate::Result;

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
        ops::layer_norm_slow(x, &self.weight, &self.bias, LN_EPS)
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

    /// `mask`: `(T, T)`, 0 where attention is allowed, −∞ above the diagonal.
    fn forward(&self, x: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t, d) = x.dims3()?;
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
        let att = (q.matmul(&k.t()?)? / (hd as f64).sqrt())?.broadcast_add(mask)?;
        let att = ops::softmax(&att, D::Minus1)?;
        let y = att.matmul(&v)?.transpose(1, 2)?.reshape((b, t, d))?;
        let x = (x + self.proj.forward(&y)?)?;
        let h = self.fc.forward(&self.ln2.forward(&x)?)?.gelu()?;
        x + self.fc_proj.forward(&h)?
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

fn causal_mask(t: usize, device: &Device) -> candle_core::Result<Tensor> {
    let v: Vec<f32> = (0..t * t)
        .map(|i| {
            if i % t > i / t {
                f32::NEG_INFINITY
            } else {
                0.0
            }
        })
        .collect();
    Tensor::from_vec(v, (t, t), device)
}

impl Module for CharTransformer {
    /// `idx`: `(batch, T)` u32 token ids, `T ≤ context`. Returns `(batch, T, vocab)` logits.
    fn forward(&self, idx: &Tensor) -> candle_core::Result<Tensor> {
        let (_, t) = idx.dims2()?;
        let pos = Tensor::arange(0u32, t as u32, idx.device())?;
        let mut x = self
            .wte
            .forward(idx)?
            .broadcast_add(&self.wpe.forward(&pos)?)?;
        let mask = causal_mask(t, idx.device())?.to_dtype(DType::F32)?;
        for block in &self.blocks {
            x = block.forward(&x, &mask)?;
        }
        self.head.forward(&self.ln_f.forward(&x)?)
    }
}
