//! A residual network for images (ResNet's basic blocks): a 3×3 stem, then stages of blocks —
//! two 3×3 convolutions, each followed by a group norm of one group (each sample's feature map
//! normalised on its own: no batch statistics, so a sample's output never depends on the
//! others in its batch, and nothing to keep apart between training and evaluation; the CPU
//! kernels stay bit-deterministic), the block's input added back through a 1×1 projection
//! where the width changes — a 2×2 max-pool before every stage but the first, global average
//! pooling and a linear classifier. Activations are NHWC throughout.

use candle_core::{DType, Module, Tensor};
use candle_nn::{linear, Linear, VarBuilder};

use crate::{kernels, Result};

const EPS: f32 = 1e-5;

/// One convolution of the network: its widths, kernel size and the side of its (square or
/// not) input, for parameter, activation and FLOP counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    pub c_in: usize,
    pub c_out: usize,
    pub k: usize,
    pub h: usize,
    pub w: usize,
}

impl ConvShape {
    /// The kernel's weights (these convolutions have no bias).
    pub fn weights(&self) -> u128 {
        (self.c_in as u128)
            .saturating_mul((self.k as u128).saturating_mul(self.k as u128))
            .saturating_mul(self.c_out as u128)
    }

    /// Forward FLOPs for one sample (multiply-adds × 2), in f64 (no overflow before a spec
    /// is validated).
    pub fn forward_flops(&self) -> f64 {
        2.0 * self.c_in as f64
            * (self.k * self.k) as f64
            * self.c_out as f64
            * self.h as f64
            * self.w as f64
    }
}

/// Every convolution, in order, of a network over `input_shape` `[C, H, W]`.
pub fn convs(input_shape: [usize; 3], widths: &[usize], blocks: usize) -> Vec<ConvShape> {
    let [c, mut h, mut w] = input_shape;
    let mut out = Vec::new();
    let Some(&w0) = widths.first() else {
        return out;
    };
    out.push(ConvShape {
        c_in: c,
        c_out: w0,
        k: 3,
        h,
        w,
    });
    let mut c_in = w0;
    for (s, &width) in widths.iter().enumerate() {
        if s > 0 {
            (h, w) = (h / 2, w / 2);
        }
        for _ in 0..blocks {
            out.push(ConvShape {
                c_in,
                c_out: width,
                k: 3,
                h,
                w,
            });
            out.push(ConvShape {
                c_in: width,
                c_out: width,
                k: 3,
                h,
                w,
            });
            if c_in != width {
                out.push(ConvShape {
                    c_in,
                    c_out: width,
                    k: 1,
                    h,
                    w,
                });
            }
            c_in = width;
        }
    }
    out
}

/// A convolution without bias (the norm after it has one) and the norm's gain and bias.
struct ConvNorm {
    weight: Tensor,
    ln_w: Tensor,
    ln_b: Tensor,
}

impl ConvNorm {
    fn new(c_in: usize, c_out: usize, conv: &str, ln: &str, vb: &VarBuilder) -> Result<Self> {
        Ok(Self {
            weight: vb.pp(conv).get((c_out, c_in, 3, 3), "weight")?,
            ln_w: super::wide_param(&vb.pp(ln), c_out, "weight")?,
            ln_b: super::wide_param(&vb.pp(ln), c_out, "bias")?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        group_norm1(&conv_nhwc(x, &self.weight, 1)?, &self.ln_w, &self.ln_b)
    }
}

/// Group norm with one group: each sample's whole feature map `(H, W, C)` normalised to zero
/// mean and unit variance, then scaled and shifted per channel — the fused layer-norm kernel
/// over the flattened map, its gain and bias the channel's repeated at every pixel (their
/// gradients summed back to the channel by the broadcast). Statistics of one sample only, as a
/// layer norm's; over the whole map rather than per pixel, which would erase how bright a pixel
/// is next to the others.
fn group_norm1(x: &Tensor, weight: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
    let (b, h, w, c) = x.dims4()?;
    let n = h * w * c;
    let spread = |t: &Tensor| t.broadcast_as((h, w, c))?.flatten_all();
    kernels::layer_norm(&x.reshape((b, n))?, &spread(weight)?, &spread(bias)?, EPS)?
        .reshape((b, h, w, c))
}

struct Block {
    conv1: ConvNorm,
    conv2: ConvNorm,
    /// A 1×1 convolution `(c_out, c_in, 1, 1)` where the width changes.
    proj: Option<Tensor>,
}

impl Block {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = kernels::relu(&self.conv1.forward(x)?)?;
        let y = self.conv2.forward(&y)?;
        let skip = match &self.proj {
            Some(p) => conv_nhwc(x, p, 0)?,
            None => x.clone(),
        };
        kernels::add_relu(&y, &skip)
    }
}

pub struct Resnet {
    input_shape: [usize; 3],
    stem: ConvNorm,
    /// Stages of blocks; a 2×2 max-pool before every stage but the first.
    stages: Vec<Vec<Block>>,
    fc: Linear,
}

impl Resnet {
    pub fn new(
        input_shape: [usize; 3],
        widths: &[usize],
        blocks: usize,
        classes: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let Some(&w0) = widths.first() else {
            return Err(crate::Error::Format("a resnet needs a stage".into()));
        };
        let stem = ConvNorm::new(input_shape[0], w0, "stem.conv", "stem.ln", &vb)?;
        let mut c_in = w0;
        let mut stages = Vec::new();
        for (s, &width) in widths.iter().enumerate() {
            let mut stage = Vec::new();
            for b in 0..blocks {
                let vb = vb.pp(format!("s{s}.b{b}"));
                let proj = if c_in != width {
                    Some(vb.pp("proj").get((width, c_in, 1, 1), "weight")?)
                } else {
                    None
                };
                stage.push(Block {
                    conv1: ConvNorm::new(c_in, width, "conv1", "ln1", &vb)?,
                    conv2: ConvNorm::new(width, width, "conv2", "ln2", &vb)?,
                    proj,
                });
                c_in = width;
            }
            stages.push(stage);
        }
        let fc = linear(c_in, classes, vb.pp("fc"))?;
        Ok(Self {
            input_shape,
            stem,
            stages,
            fc,
        })
    }
}

/// Stride-1 convolution of NHWC `x` with a `(C_out, C_in, k, k)` kernel and zero padding:
/// the fused im2col kernel on the CPU, candle's NCHW convolution elsewhere.
fn conv_nhwc(x: &Tensor, weight: &Tensor, pad: usize) -> candle_core::Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 {
        return kernels::conv2d_nhwc(x, weight, None, pad);
    }
    x.permute((0, 3, 1, 2))?
        .contiguous()?
        .conv2d(weight, pad, 1, 1, 1)?
        .permute((0, 2, 3, 1))
}

impl Module for Resnet {
    /// `x`: `(batch, C·H·W)` flat samples (CHW order, as CIFAR stores them).
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let [c, h, w] = self.input_shape;
        let x = x
            .reshape((x.dim(0)?, c, h, w))?
            .permute((0, 2, 3, 1))?
            .contiguous()?;
        let mut x = kernels::relu(&self.stem.forward(&x)?)?;
        for (s, stage) in self.stages.iter().enumerate() {
            if s > 0 {
                x = kernels::max_pool2_nhwc(&x)?;
            }
            for block in stage {
                x = block.forward(&x)?;
            }
        }
        // Global average pooling over the pixels.
        let pooled = x.mean(2)?.mean(1)?;
        kernels::dense(&self.fc, &pooled)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Module, Tensor, Var};
    use candle_nn::{VarBuilder, VarMap};

    use super::*;

    /// The CPU path (fused f32 kernels: im2col convolutions, layer norm, pooling) computes the
    /// gradients the composed ops do in f64, for every parameter and the input.
    #[test]
    fn the_fused_cpu_path_has_the_composed_paths_gradients() {
        let dev = Device::Cpu;
        // Odd sides: the pool between the stages drops a row and a column.
        let shape = [3, 7, 9];
        let build = |dtype: DType| {
            let vm = VarMap::new();
            let net = Resnet::new(
                shape,
                &[4, 6],
                2,
                5,
                VarBuilder::from_varmap(&vm, dtype, &dev),
            )
            .unwrap();
            (vm, net)
        };
        let (vm32, net32) = build(DType::F32);
        crate::models::init::initialize(&vm32, 3, crate::models::init::Scheme::FanIn).unwrap();
        let (vm64, net64) = build(DType::F64);
        let names: Vec<String> = {
            let d = vm32.data().lock().unwrap();
            let mut n: Vec<String> = d.keys().cloned().collect();
            n.sort();
            n
        };
        for n in &names {
            let v = vm32.data().lock().unwrap()[n]
                .as_tensor()
                .to_dtype(DType::F64)
                .unwrap();
            vm64.data().lock().unwrap()[n].set(&v).unwrap();
        }
        let x: Vec<f32> = (0..2 * 189)
            .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
            .collect();
        let y = Tensor::new(&[1u32, 3], &dev).unwrap();
        let x32 = Var::from_tensor(&Tensor::from_vec(x, (2, 189), &dev).unwrap()).unwrap();
        let x64 = Var::from_tensor(&x32.as_tensor().to_dtype(DType::F64).unwrap()).unwrap();
        let loss = |net: &Resnet, x: &Tensor| {
            let logits = net.forward(x).unwrap();
            candle_nn::loss::cross_entropy(&logits, &y).unwrap()
        };
        let g32 = loss(&net32, x32.as_tensor()).backward().unwrap();
        let g64 = loss(&net64, x64.as_tensor()).backward().unwrap();
        let close = |what: &str, a: &Tensor, b: &Tensor| {
            let a: Vec<f64> = a
                .to_dtype(DType::F64)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let b: Vec<f64> = b.flatten_all().unwrap().to_vec1().unwrap();
            let scale = b.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
            let worst = a
                .iter()
                .zip(&b)
                .fold(0f64, |m, (a, b)| m.max((a - b).abs()));
            assert!(worst <= 1e-4 * scale, "{what}: off by {worst} of {scale}");
        };
        for n in &names {
            let a = g32.get(vm32.data().lock().unwrap()[n].as_tensor()).unwrap();
            let b = g64.get(vm64.data().lock().unwrap()[n].as_tensor()).unwrap();
            close(n, a, b);
        }
        close(
            "input",
            g32.get(x32.as_tensor()).unwrap(),
            g64.get(x64.as_tensor()).unwrap(),
        );
    }
}
