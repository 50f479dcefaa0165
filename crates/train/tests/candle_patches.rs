//! The patches in `vendor/candle-core` (vendor/README.md): the backward pass keeps a node's
//! first gradient as it is instead of adding it to zeros, computes a product's gradient only
//! for a factor that leads to a variable, and the CPU matmul writes into unzeroed memory.
//! Each is checked against f64 arithmetic by hand, and the last two against what the
//! published crate kept (a data matrix's gradient, a first gradient's zero sign).

use candle_core::{Device, Tensor, Var, D};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn bits(t: &Tensor) -> Vec<u32> {
    let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
    v.into_iter().map(f32::to_bits).collect()
}

/// `a · b` in f64 from row-major `(m, k)` and `(k, n)` values.
fn product(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut c = vec![0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k)
                .map(|p| a[i * k + p] as f64 * b[p * n + j] as f64)
                .sum();
        }
    }
    c
}

#[test]
fn matmul_into_unzeroed_memory_writes_every_element() {
    let cpu = Device::Cpu;
    // Fill the allocator's free lists with NaN (kept in the heap, as training processes keep
    // them), so an element the gemm left unwritten would show as NaN, not as a lucky zero.
    tensorgrid_train::alloc::keep_freed_memory();
    for len in [1, 12, 64, 300, 4_096, 65_536, 1 << 20] {
        drop(Tensor::from_vec(vec![f32::NAN; len], len, &cpu).unwrap());
    }
    for (b, m, k, n) in [
        (1, 1, 1, 1),
        (1, 7, 5, 3),
        (3, 4, 9, 6),
        (2, 65, 33, 17),
        (1, 300, 40, 257),
        (4, 1, 64, 1),
    ] {
        let a = values(b * m * k, 1);
        let w = values(b * k * n, 2);
        let lhs = Tensor::from_vec(a.clone(), (b, m, k), &cpu).unwrap();
        let rhs = Tensor::from_vec(w.clone(), (b, k, n), &cpu).unwrap();
        // Contiguous operands, a transposed one (strides, no copy), and a right-hand side
        // shared by the batch (stride 0: the batches stack into one gemm).
        let t = rhs
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap()
            .transpose(1, 2)
            .unwrap();
        let shared = Tensor::from_vec(w[..k * n].to_vec(), (1, k, n), &cpu)
            .unwrap()
            .broadcast_as((b, k, n))
            .unwrap();
        for (how, rhs, per_batch) in [
            ("contiguous", &rhs, true),
            ("transposed", &t, true),
            ("shared", &shared, false),
        ] {
            let got: Vec<f32> = lhs
                .matmul(rhs)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            for step in 0..b {
                let r = if per_batch { step } else { 0 };
                let want = product(
                    &a[step * m * k..(step + 1) * m * k],
                    &w[r * k * n..(r + 1) * k * n],
                    m,
                    k,
                    n,
                );
                for (g, e) in got[step * m * n..(step + 1) * m * n].iter().zip(&want) {
                    assert!(
                        ((*g as f64) - e).abs() <= 1e-5 * (1.0 + e.abs()),
                        "{how} b{b} m{m} k{k} n{n}: {g} vs {e}"
                    );
                }
            }
        }
    }
    // An empty inner dimension: the product is zeros, not whatever memory held.
    let lhs = Tensor::zeros((3, 0), candle_core::DType::F32, &cpu).unwrap();
    let rhs = Tensor::zeros((0, 4), candle_core::DType::F32, &cpu).unwrap();
    assert_eq!(bits(&lhs.matmul(&rhs).unwrap()), vec![0u32; 12]);
}

#[test]
fn backward_sums_gradients_as_the_published_crate_did() {
    let cpu = Device::Cpu;
    let x = Var::from_vec(values(6 * 4, 3), (6, 4), &cpu).unwrap();
    let w = Var::from_vec(values(4 * 5, 4), (4, 5), &cpu).unwrap();
    let data = Tensor::from_vec(values(6 * 5, 5), (6, 5), &cpu).unwrap();
    // x is used three times (a product, a square, a transposed sum), w twice, one node once.
    let h = x.matmul(&w).unwrap();
    let y = ((&h * &data).unwrap()
        + x.sqr()
            .unwrap()
            .sum_keepdim(D::Minus1)
            .unwrap()
            .broadcast_as((6, 5))
            .unwrap())
    .unwrap();
    let z = (y.sum_all().unwrap() + x.t().unwrap().matmul(&h).unwrap().sum_all().unwrap()).unwrap();
    let grads = z.backward().unwrap();
    let gx = grads.get(&x).unwrap();
    let gw = grads.get(&w).unwrap();
    assert!(gx.is_contiguous() && gw.is_contiguous());

    // By hand, in f64: z = Σ (xW) ⊙ D + 5 Σ x² + Σ xᵀ(xW).
    let (xv, wv, dv): (Vec<f32>, Vec<f32>, Vec<f32>) = (
        x.flatten_all().unwrap().to_vec1().unwrap(),
        w.flatten_all().unwrap().to_vec1().unwrap(),
        data.flatten_all().unwrap().to_vec1().unwrap(),
    );
    let hv = product(&xv, &wv, 6, 4, 5);
    // ∂/∂h of Σ xᵀh is Σ_i x[r][i] for every column of h's row r; of Σ h ⊙ D it is D.
    let dh: Vec<f64> = (0..30)
        .map(|p| dv[p] as f64 + (0..4).map(|i| xv[(p / 5) * 4 + i] as f64).sum::<f64>())
        .collect();
    assert_matches("dx", gx, |r, c| {
        let through_h: f64 = (0..5).map(|j| dh[r * 5 + j] * wv[c * 5 + j] as f64).sum();
        let direct = 10.0 * xv[r * 4 + c] as f64 + (0..5).map(|j| hv[r * 5 + j]).sum::<f64>();
        through_h + direct
    });
    assert_matches("dw", gw, |i, j| {
        (0..6).map(|r| xv[r * 4 + i] as f64 * dh[r * 5 + j]).sum()
    });
}

/// Every element `[r][c]` of the 2-D `got` within 1e-4 (relative) of `want(r, c)`.
fn assert_matches(what: &str, got: &Tensor, want: impl Fn(usize, usize) -> f64) {
    let got: Vec<Vec<f32>> = got.to_vec2().unwrap();
    for (r, row) in got.iter().enumerate() {
        for (c, &g) in row.iter().enumerate() {
            let (g, want) = (g as f64, want(r, c));
            assert!(
                (g - want).abs() <= 1e-4 * (1.0 + want.abs()),
                "{what}[{r}][{c}]: {g} vs {want}"
            );
        }
    }
}

#[test]
fn a_data_matrix_gets_no_gradient_and_a_first_gradient_is_not_copied() {
    let cpu = Device::Cpu;
    let data = Tensor::from_vec(values(8 * 3, 6), (8, 3), &cpu).unwrap();
    let w = Var::from_vec(values(3 * 2, 7), (3, 2), &cpu).unwrap();
    let out = data.matmul(&w).unwrap();
    let grads = out.sum_all().unwrap().backward().unwrap();
    // The published crate computed and kept ∂/∂data too (a product as large as the data).
    assert!(grads.get(&data).is_none(), "a data matrix got a gradient");
    assert!(
        grads.get(&out).is_none(),
        "an inner node's gradient was kept"
    );
    let gw: Vec<f32> = grads
        .get(&w)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let cols: Vec<f32> = data.sum(0).unwrap().to_vec1().unwrap();
    for (i, g) in gw.iter().enumerate() {
        assert!(
            (g - cols[i / 2]).abs() <= 1e-6,
            "dw[{i}]: {g} vs {}",
            cols[i / 2]
        );
    }
    // A variable used once: its gradient is the upstream product itself, not zeros plus it —
    // seen in a negative zero, which the published crate's `0 + (−0)` turned into +0. (Neither
    // reaches a parameter: the optimizers take gradients through `g·c + 0`.)
    let v = Var::from_vec(vec![1f32, -2.0, 3.0], 3, &cpu).unwrap();
    let up = Tensor::from_vec(vec![-0f32, 5.0, 0.0], 3, &cpu).unwrap();
    let g = v
        .as_tensor()
        .mul(&up)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let gv: Vec<f32> = g.get(&v).unwrap().to_vec1().unwrap();
    assert_eq!(
        gv.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        bits(&up)
    );
}
