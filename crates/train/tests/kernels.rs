//! The fused CPU kernels against candle's composed ops: forward values and every input's and
//! parameter's gradient, on seeded random inputs; and bit-identical results whatever the
//! thread count.

use candle_core::{DType, Device, Tensor, Var, D};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tensorgrid_train::kernels;

fn rand(shape: &[usize], seed: u64, scale: f32) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| rng.random_range(-1.0f32..1.0) * scale)
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn var(shape: &[usize], seed: u64, scale: f32) -> Var {
    Var::from_tensor(&rand(shape, seed, scale)).unwrap()
}

/// Largest |a − b| relative to the size of `b`.
fn assert_close(what: &str, a: &Tensor, b: &Tensor, tol: f32) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes");
    let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-3);
    let worst = a
        .iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        worst <= tol * scale,
        "{what}: max |Δ| {worst} vs scale {scale}"
    );
}

/// Gradients of `Σ out ⊙ R` (fixed random R) with respect to `vars`.
fn grads(out: &Tensor, vars: &[&Var]) -> Vec<Tensor> {
    let r = rand(out.dims(), 99, 1.0);
    let g = (out * r).unwrap().sum_all().unwrap().backward().unwrap();
    vars.iter()
        .map(|v| {
            g.get(v.as_tensor())
                .unwrap_or_else(|| panic!("no gradient"))
                .clone()
        })
        .collect()
}

/// Compares a fused op against its reference: value, then the gradient of every var.
fn check(name: &str, vars: &[&Var], fused: Tensor, reference: Tensor, tol: f32) {
    assert_close(&format!("{name} forward"), &fused, &reference, tol);
    let (gf, gr) = (grads(&fused, vars), grads(&reference, vars));
    for (i, (a, b)) in gf.iter().zip(&gr).enumerate() {
        assert_close(&format!("{name} grad of input {i}"), a, b, tol);
    }
}

#[test]
fn gelu_matches_candle() {
    let x = var(&[33, 70], 1, 6.0);
    check(
        "gelu",
        &[&x],
        kernels::gelu(&x).unwrap(),
        x.gelu().unwrap(),
        1e-5,
    );
}

/// ReLU and a residual's ReLU(a + b) give candle's bits exactly, values and gradients: zeros
/// included (an input of exactly 0 passes its gradient, as candle's `x ≥ 0` mask does). A
/// gradient's zero may differ in sign only: candle's composed backward masks by multiplying
/// (a negative upstream times 0 is −0) and hands that product over as it is (the patched
/// backward, vendor/README.md), the kernel writes +0; no zero's sign reaches a parameter
/// (the optimizers take gradients through `g·c + 0`, which makes −0 +0).
#[test]
fn relu_and_add_relu_are_candles_to_the_bit() {
    let exact = |t: &Tensor| -> Vec<u32> {
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        v.iter().map(|f| f.to_bits()).collect()
    };
    let bits = |t: &Tensor| -> Vec<u32> {
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        v.iter()
            .map(|f| if *f == 0.0 { 0 } else { f.to_bits() })
            .collect()
    };
    // Every fourth value exactly 0 (and its negation), more than one parallel chunk.
    let zeroed = |seed| {
        let t = rand(&[3, 70, 129], seed, 2.0);
        let keep = Tensor::from_vec(
            (0..t.elem_count())
                .map(|i| if i.is_multiple_of(4) { 0f32 } else { 1.0 })
                .collect::<Vec<_>>(),
            t.dims(),
            &Device::Cpu,
        )
        .unwrap();
        Var::from_tensor(&(t * keep).unwrap()).unwrap()
    };
    let (x, a) = (zeroed(41), zeroed(42));
    // b = -a at every third element (those sums exactly 0), random elsewhere.
    let third = |i: usize| i.is_multiple_of(3);
    let av: Vec<f32> = a.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
    let rv: Vec<f32> = rand(&[3, 70, 129], 43, 2.0)
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let bv: Vec<f32> = (0..av.len())
        .map(|i| if third(i) { -av[i] } else { rv[i] })
        .collect();
    let b = Var::from_tensor(&Tensor::from_vec(bv, a.dims(), &Device::Cpu).unwrap()).unwrap();
    let pairs = [
        (kernels::relu(&x).unwrap(), x.relu().unwrap(), vec![&x]),
        (
            kernels::add_relu(&a, &b).unwrap(),
            (a.as_tensor() + b.as_tensor()).unwrap().relu().unwrap(),
            vec![&a, &b],
        ),
    ];
    for (fused, reference, vars) in &pairs {
        assert_eq!(exact(fused), exact(reference), "forward");
        let zeros = reference
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .filter(|v| **v == 0.0)
            .count();
        assert!(zeros > 0);
        for (g, r) in grads(fused, vars).iter().zip(&grads(reference, vars)) {
            assert_eq!(bits(g), bits(r), "gradient");
        }
    }
    // The sums that are exactly zero pass their gradient (R, the upstream, is never 0).
    let g: Vec<f32> = grads(&pairs[1].0, &[&a])[0]
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let passed = (0..g.len()).filter(|&i| third(i) && g[i] != 0.0).count();
    assert_eq!(
        passed,
        g.len().div_ceil(3),
        "a zero sum blocked its gradient"
    );
    let blocked = g.iter().filter(|v| **v == 0.0).count();
    assert!(
        blocked > g.len() / 4,
        "negative sums passed theirs: {blocked}"
    );
}

#[test]
fn causal_softmax_matches_masked_candle_softmax() {
    let s = var(&[2, 3, 9, 9], 2, 4.0);
    let scale = 0.35;
    let mask = kernels::causal_mask(9, &Device::Cpu).unwrap();
    let reference = candle_nn::ops::softmax(
        &(s.as_tensor() * scale)
            .unwrap()
            .broadcast_add(&mask)
            .unwrap(),
        D::Minus1,
    )
    .unwrap();
    let fused = kernels::causal_softmax(&s, scale).unwrap();
    // Masked weights are exactly zero, not merely small.
    let row0: Vec<f32> = fused.flatten_all().unwrap().to_vec1().unwrap()[..9].to_vec();
    assert!(
        row0[0] == 1.0 && row0[1..].iter().all(|&v| v == 0.0),
        "{row0:?}"
    );
    check("causal softmax", &[&s], fused, reference, 1e-5);
    assert!(kernels::causal_softmax(&s, 0.0).is_err());
    assert!(kernels::causal_softmax(&rand(&[2, 3, 4], 3, 1.0), 1.0).is_err());
}

#[test]
fn layer_norm_matches_candle() {
    let x = var(&[4, 5, 24], 3, 3.0);
    let w = var(&[24], 4, 1.0);
    let b = var(&[24], 5, 1.0);
    check(
        "layer norm",
        &[&x, &w, &b],
        kernels::layer_norm(&x, &w, &b, 1e-5).unwrap(),
        candle_nn::ops::layer_norm_slow(&x, &w, &b, 1e-5).unwrap(),
        1e-4,
    );
    assert!(kernels::layer_norm(&x, &rand(&[23], 1, 1.0), &b, 1e-5).is_err());
}

#[test]
fn cross_entropy_matches_candle() {
    let logits = var(&[37, 11], 6, 5.0);
    let targets: Vec<u32> = (0..37).map(|i| (i * 7 % 11) as u32).collect();
    let t = Tensor::new(targets.as_slice(), &Device::Cpu).unwrap();
    check(
        "cross entropy",
        &[&logits],
        kernels::cross_entropy(&logits, &t).unwrap(),
        candle_nn::loss::cross_entropy(&logits, &t).unwrap(),
        1e-5,
    );
    let t64 = t.to_dtype(DType::I64).unwrap();
    assert_close(
        "i64 targets",
        &kernels::cross_entropy(&logits, &t64).unwrap(),
        &kernels::cross_entropy(&logits, &t).unwrap(),
        0.0,
    );
    let bad = Tensor::new(&[11u32; 37], &Device::Cpu).unwrap();
    let err = kernels::cross_entropy(&logits, &bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("target 11"), "{err}");
    assert!(kernels::cross_entropy(&logits, &t.narrow(0, 0, 5).unwrap()).is_err());
}

#[test]
fn linear_matches_candle() {
    let x = var(&[29, 13], 7, 1.0);
    let w = var(&[6, 13], 8, 1.0);
    let b = var(&[6], 9, 1.0);
    let reference = x
        .matmul(&w.t().unwrap())
        .unwrap()
        .broadcast_add(&b)
        .unwrap();
    check(
        "linear",
        &[&x, &w, &b],
        kernels::linear(&x, &w, Some(&b)).unwrap(),
        reference,
        1e-5,
    );
}

#[test]
fn conv_and_pool_match_candle_nchw() {
    // 3×3 "same" and unpadded, 1×1 (the ResNet's projections), 5×5 at several paddings.
    for (c_in, h, w, ks, pad) in [
        (1, 8, 8, 3, 1),
        (3, 7, 6, 3, 1),
        (2, 5, 5, 3, 0),
        (5, 6, 7, 1, 0),
        (2, 9, 8, 5, 2),
        (3, 8, 7, 5, 1),
        (2, 6, 6, 5, 4),
    ] {
        let x = var(&[3, c_in, h, w], 10, 1.0); // NCHW
        let k = var(&[4, c_in, ks, ks], 11, 0.5);
        let b = var(&[4], 12, 0.5);
        let cfg = candle_nn::Conv2dConfig {
            padding: pad,
            ..Default::default()
        };
        let reference =
            candle_nn::Conv2d::new(k.as_tensor().clone(), Some(b.as_tensor().clone()), cfg);
        let reference = candle_core::Module::forward(&reference, &x).unwrap();
        let nhwc = x.permute((0, 2, 3, 1)).unwrap();
        let fused = kernels::conv2d_nhwc(&nhwc, &k, Some(&b), pad).unwrap();
        let name = format!("conv c_in={c_in} {h}×{w} k={ks} pad={pad}");
        check(
            &name,
            &[&x, &k, &b],
            fused.permute((0, 3, 1, 2)).unwrap(),
            reference.clone(),
            1e-5,
        );
        // Not candle's `max_pool2d`, whose gradient is a quarter of the true one.
        let pooled_ref = kernels::max_pool2_nchw(&reference).unwrap();
        let pooled = kernels::max_pool2_nhwc(&fused)
            .unwrap()
            .permute((0, 3, 1, 2))
            .unwrap();
        check(
            &format!("pool after {name}"),
            &[&x, &k, &b],
            pooled,
            pooled_ref,
            1e-5,
        );
    }
    // An image batch (no variable) gets no gradient; the kernel's is the same as above.
    let x = rand(&[2, 5, 6, 3], 13, 1.0);
    let k = var(&[4, 3, 3, 3], 14, 0.5);
    let y = kernels::conv2d_nhwc(&x, &k, None, 1).unwrap();
    let g = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    assert!(g.get(&x).is_none(), "the image batch got a gradient");
    let xv = Var::from_tensor(&x).unwrap();
    let yv = kernels::conv2d_nhwc(&xv, &k, None, 1).unwrap();
    let gv = yv.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    assert!(gv.get(&xv).is_some());
    assert_close(
        "kernel gradient",
        g.get(&k).unwrap(),
        gv.get(&k).unwrap(),
        0.0,
    );
    let x = rand(&[1, 4, 4, 2], 1, 1.0);
    assert!(kernels::conv2d_nhwc(&x, &rand(&[3, 1, 3, 3], 1, 1.0), None, 1).is_err());
    // An empty map that only padding would turn into outputs is refused.
    let empty = rand(&[1, 0, 4, 2], 1, 1.0);
    assert!(kernels::conv2d_nhwc(&empty, &rand(&[3, 2, 1, 1], 1, 1.0), None, 1).is_err());
    assert!(kernels::max_pool2_nhwc(&rand(&[1, 1, 4, 2], 1, 1.0)).is_err());
}

#[test]
fn max_pool_gradient_is_the_upstream_gradient_at_the_maximum() {
    // Window [[1, 4], [2, 3]]: d(max)/dx is 1 at the 4 and 0 elsewhere, in both layouts.
    let v = [1f32, 4., 2., 3.];
    for nhwc in [true, false] {
        let x =
            Var::from_tensor(&Tensor::from_slice(&v, (1, 1, 2, 2), &Device::Cpu).unwrap()).unwrap();
        let out = if nhwc {
            kernels::max_pool2_nhwc(&x.reshape((1, 2, 2, 1)).unwrap()).unwrap()
        } else {
            kernels::max_pool2_nchw(&x).unwrap()
        };
        let g = (out * 3.0).unwrap().sum_all().unwrap().backward().unwrap();
        let dx: Vec<f32> = g.get(&x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(dx, vec![0.0, 3.0, 0.0, 0.0], "nhwc={nhwc}");
    }
}

#[test]
fn max_pool_routes_ties_to_the_first_maximum() {
    // One 2×2 window of equal values: the gradient goes to the first in scan order only.
    let x =
        Var::from_tensor(&Tensor::ones((1, 2, 2, 1), DType::F32, &Device::Cpu).unwrap()).unwrap();
    let g = kernels::max_pool2_nhwc(&x)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let dx: Vec<f32> = g.get(&x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(dx, vec![1.0, 0.0, 0.0, 0.0]);
}

/// Forward and backward of every kernel, as raw bits, under a rayon pool of `threads`.
fn all_kernels_bits(threads: usize) -> Vec<Vec<u32>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        // Big enough to split into several parallel chunks.
        let x = var(&[96, 4, 32, 32], 20, 3.0);
        let w = var(&[32], 21, 1.0);
        let b = var(&[32], 22, 1.0);
        let img = var(&[8, 16, 16, 8], 23, 1.0);
        let k = var(&[8, 8, 3, 3], 24, 0.3);
        let kb = var(&[8], 26, 0.3);
        let dense = var(&[32, 32], 25, 1.0);
        let targets: Vec<u32> = (0..3072u32).map(|i| i % 32).collect();
        let targets = Tensor::new(targets.as_slice(), &Device::Cpu).unwrap();
        let flat = x.reshape((96 * 4 * 32, 32)).unwrap();
        let conv = kernels::conv2d_nhwc(&img, &k, Some(&kb), 1).unwrap();
        let outs: Vec<(Tensor, Vec<&Var>)> = vec![
            (kernels::gelu(&x).unwrap(), vec![&x]),
            (kernels::causal_softmax(&x, 0.25).unwrap(), vec![&x]),
            (
                kernels::layer_norm(&x, &w, &b, 1e-5).unwrap(),
                vec![&x, &w, &b],
            ),
            (
                kernels::linear(&flat, &dense, Some(&b)).unwrap(),
                vec![&x, &dense, &b],
            ),
            (kernels::max_pool2_nhwc(&conv).unwrap(), vec![&img, &k, &kb]),
            (
                kernels::cross_entropy(&flat.narrow(0, 0, 3072).unwrap(), &targets).unwrap(),
                vec![&x],
            ),
            (kernels::relu(&x).unwrap(), vec![&x]),
            (kernels::add_relu(&x, &x).unwrap(), vec![&x]),
        ];
        let bits = |t: &Tensor| -> Vec<u32> {
            let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            v.iter().map(|f| f.to_bits()).collect()
        };
        let mut all = Vec::new();
        for (out, vars) in &outs {
            all.push(bits(out));
            all.extend(grads(out, vars).iter().map(bits));
        }
        all
    })
}

#[test]
fn kernels_are_bit_identical_across_thread_counts() {
    let one = all_kernels_bits(1);
    assert_eq!(one, all_kernels_bits(3));
    assert_eq!(
        one,
        all_kernels_bits(1),
        "not even reproducible on one thread"
    );
}

/// f64 tensors take the composed fallback (the path CUDA and Metal take): it must agree with
/// the fused f32 kernels.
#[test]
fn fallback_paths_agree_with_fused_kernels() {
    let x = rand(&[3, 8, 8, 6], 30, 2.0);
    let x64 = x.to_dtype(DType::F64).unwrap();
    let f32_of = |t: Tensor| t.to_dtype(DType::F32).unwrap();
    let w = rand(&[6], 31, 1.0);
    let b = rand(&[6], 32, 1.0);
    let (w64, b64) = (
        w.to_dtype(DType::F64).unwrap(),
        b.to_dtype(DType::F64).unwrap(),
    );
    let pairs = [
        (
            "gelu",
            kernels::gelu(&x).unwrap(),
            f32_of(kernels::gelu(&x64).unwrap()),
        ),
        (
            "causal softmax",
            kernels::causal_softmax(&x.narrow(3, 0, 6).unwrap().narrow(2, 0, 6).unwrap(), 0.5)
                .unwrap(),
            f32_of(
                kernels::causal_softmax(
                    &x64.narrow(3, 0, 6).unwrap().narrow(2, 0, 6).unwrap(),
                    0.5,
                )
                .unwrap(),
            ),
        ),
        (
            "layer norm",
            kernels::layer_norm(&x, &w, &b, 1e-5).unwrap(),
            f32_of(kernels::layer_norm(&x64, &w64, &b64, 1e-5).unwrap()),
        ),
        (
            "max pool",
            kernels::max_pool2_nhwc(&x).unwrap(),
            f32_of(kernels::max_pool2_nhwc(&x64).unwrap()),
        ),
        (
            "linear",
            kernels::linear(
                &x.reshape((192, 6)).unwrap(),
                &rand(&[4, 6], 33, 1.0),
                Some(&b.narrow(0, 0, 4).unwrap()),
            )
            .unwrap(),
            f32_of(
                kernels::linear(
                    &x64.reshape((192, 6)).unwrap(),
                    &rand(&[4, 6], 33, 1.0).to_dtype(DType::F64).unwrap(),
                    Some(&b64.narrow(0, 0, 4).unwrap()),
                )
                .unwrap(),
            ),
        ),
    ];
    for (name, fused, fallback) in pairs {
        assert_close(name, &fused, &fallback, 1e-5);
    }
    let t = Tensor::new(&[1u32, 0, 5], &Device::Cpu).unwrap();
    let logits = rand(&[3, 6], 34, 3.0);
    assert_close(
        "cross entropy",
        &kernels::cross_entropy(&logits, &t).unwrap(),
        &f32_of(kernels::cross_entropy(&logits.to_dtype(DType::F64).unwrap(), &t).unwrap()),
        1e-5,
    );
    assert!(kernels::conv2d_nhwc(&x64, &rand(&[2, 6, 3, 3], 1, 1.0), None, 1).is_err());
}
