//! Mixed precision against what it promises ([`crate::precision`]), run on the CPU with the
//! half types forced (no GPU here): the steps compute in the half type while the parameters,
//! gradients, optimizer and loss stay f32; the gradients agree with f32's to the half type's
//! precision and reach every parameter (the tied GPT-2 embedding through both of its uses);
//! f16's loss scale keeps small gradients and backs off when they overflow; and the f32 path
//! is the one it always was.

use candle_core::{DType, Device, Module, Tensor};

use crate::{
    data::{Split, Table, Vocab},
    optim::Optimizer,
    spec::JobSpec,
    trainer::{all_finite, gradients, loss, update, Batches, Built},
};

fn gpt2_spec(edit: impl FnOnce(&mut serde_json::Value)) -> JobSpec {
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../../../jobs/kjv-charlm.json")).unwrap();
    v["model"] = serde_json::json!(
        {"kind": "gpt2", "layers": 2, "d_model": 32, "heads": 4, "context": 16});
    v["training"]["batch_size"] = 8.into();
    v["training"]["optimizer"] = serde_json::json!({"kind": "adamw", "lr": 0.003});
    edit(&mut v);
    let spec: JobSpec = serde_json::from_value(v).unwrap();
    spec.validate().unwrap();
    spec
}

fn text() -> Split {
    // A learnable sequence: each id follows from the one before.
    let ids: Vec<u32> = (0..4_000u32).map(|i| (i * 7 + i / 13) % 23).collect();
    Split::Text {
        shards: None,
        train: ids[..3_000].to_vec(),
        eval: ids[3_000..].to_vec(),
        vocab: Vocab::Ids(23),
    }
}

fn table(dim: usize) -> Split {
    let t = |rows: usize, off: usize| Table {
        features: (0..rows * dim)
            .map(|i| (((i + off) * 37 % 101) as f32) / 50.0 - 1.0)
            .collect(),
        labels: (0..rows)
            .map(|r| (((r + off) * 37 % 101) % 4) as u32)
            .collect(),
        dim,
    };
    Split::Table {
        shards: None,
        train: t(64, 0),
        eval: t(16, 7),
        classes: 4,
    }
}

fn table_spec(model: serde_json::Value) -> JobSpec {
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../../../jobs/digits-mlp.json")).unwrap();
    v["model"] = model;
    v["training"]["batch_size"] = 64.into();
    v["training"]["optimizer"] = serde_json::json!({"kind": "adamw", "lr": 0.01});
    let spec: JobSpec = serde_json::from_value(v).unwrap();
    spec.validate().unwrap();
    spec
}

/// The first batch's gradients at `dtype` and loss `scale`, by parameter, as f64.
fn grads_at(spec: &JobSpec, data: &Split, dtype: DType, scale: f64) -> Vec<(String, Vec<f64>)> {
    let device = Device::Cpu;
    let built = Built::computing_in(spec, data, &device, dtype).unwrap();
    let opt = Optimizer::new(spec.training.optimizer.clone(), built.params()).unwrap();
    let mut batches = Batches::new(spec, data, &device).unwrap();
    let (x, y) = batches
        .batch(spec.training.seed, 0, spec.training.batch_size, &device)
        .unwrap();
    let model = built.step_model().unwrap();
    assert_eq!(model.dtype(), dtype);
    let (grads, lv) = gradients(built.parts, &model, &opt, &x, &y, scale).unwrap();
    assert!(lv.is_finite());
    assert_eq!(
        grads.len(),
        built.params().len(),
        "a gradient for every parameter"
    );
    grads
        .into_iter()
        .map(|(n, g)| {
            assert_eq!(g.dtype(), DType::F32, "{n}: the gradient applied is f32");
            let v = g.flatten_all().unwrap().to_dtype(DType::F64).unwrap();
            (n, v.to_vec1::<f64>().unwrap())
        })
        .collect()
}

/// The worst relative error of `b`'s gradients against `a`'s, per parameter (its norm).
fn worst_relative(a: &[(String, Vec<f64>)], b: &[(String, Vec<f64>)]) -> (String, f64) {
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    a.iter()
        .zip(b)
        .map(|((n, x), (m, y))| {
            assert_eq!(n, m);
            let diff: Vec<f64> = x.iter().zip(y).map(|(x, y)| x - y).collect();
            (n.clone(), norm(&diff) / norm(x).max(1e-12))
        })
        .fold((String::new(), 0.0), |w, c| if c.1 > w.1 { c } else { w })
}

#[test]
fn half_steps_give_f32_gradients_close_to_f32s_for_every_parameter() {
    let (spec, data) = (gpt2_spec(|_| {}), text());
    let f32 = grads_at(&spec, &data, DType::F32, 1.0);
    for (n, g) in &f32 {
        assert!(g.iter().any(|v| *v != 0.0), "{n}: no gradient at f32");
    }
    let bf16 = grads_at(&spec, &data, DType::BF16, 1.0);
    let (name, worst) = worst_relative(&f32, &bf16);
    // bf16 keeps 8 bits of mantissa (relative step 2⁻⁸ ≈ 0.4 %), through two blocks.
    assert!(worst < 0.1, "bf16: {name} off by {worst}");
    assert!(
        worst > 0.0,
        "bf16 gave f32's gradients to the bit: it did not run in bf16"
    );
    let f16 = grads_at(
        &spec,
        &data,
        DType::F16,
        crate::precision::F16_LOSS_SCALES[0],
    );
    let (name, worst) = worst_relative(&f32, &f16);
    assert!(worst < 0.02, "f16: {name} off by {worst}");
    // The image models' inputs are cast too, and their convolutions, pooling and group norm
    // run in the half type (in f16 here: candle's CPU convolution has no bf16 gemm).
    for (model, dim, dtype) in [
        (
            serde_json::json!({"kind": "mlp", "hidden": [32]}),
            16,
            DType::BF16,
        ),
        (
            serde_json::json!({"kind": "cnn", "input_shape": [1, 8, 8], "channels": [4, 8]}),
            64,
            DType::F16,
        ),
        (
            serde_json::json!(
                {"kind": "resnet", "input_shape": [3, 8, 8], "widths": [4, 8], "blocks": 1}),
            192,
            DType::F16,
        ),
    ] {
        let (spec, data) = (table_spec(model), table(dim));
        let scale = crate::precision::loss_scales(dtype)[0];
        let (name, worst) = worst_relative(
            &grads_at(&spec, &data, DType::F32, 1.0),
            &grads_at(&spec, &data, dtype, scale),
        );
        let kind = spec.model.kind();
        assert!(worst < 0.1, "{kind}: {dtype:?} {name} off by {worst}");
        assert!(worst > 0.0, "{kind}: not run in {dtype:?}");
    }
}

#[test]
fn f16s_loss_scale_keeps_small_gradients_and_backs_off_on_overflow() {
    // The logits' gradients are divided over the batch's rows (64 × 32 here): the smallest
    // of those that reach the weights fall below f16's smallest subnormal.
    let (spec, data) = (
        gpt2_spec(|v| {
            v["training"]["batch_size"] = 64.into();
            v["model"]["context"] = 32.into();
        }),
        text(),
    );
    let zeros =
        |g: &[(String, Vec<f64>)]| g.iter().flat_map(|(_, v)| v).filter(|v| **v == 0.0).count();
    let f32 = grads_at(&spec, &data, DType::F32, 1.0);
    let unscaled = grads_at(&spec, &data, DType::F16, 1.0);
    let scaled = grads_at(
        &spec,
        &data,
        DType::F16,
        crate::precision::F16_LOSS_SCALES[0],
    );
    // f32 loses none of them; f16 unscaled flushes some to zero; scaled, it keeps them all.
    assert_eq!(zeros(&f32), 0);
    assert!(zeros(&unscaled) > 0, "unscaled f16 lost no gradient");
    assert_eq!(zeros(&scaled), 0, "scaled f16 lost gradients");

    // A scale too large for f16 overflows; update backs off from it to a finite step.
    let device = Device::Cpu;
    let built = Built::computing_in(&spec, &data, &device, DType::F16).unwrap();
    let mut opt = Optimizer::new(spec.training.optimizer.clone(), built.params()).unwrap();
    let mut batches = Batches::new(&spec, &data, &device).unwrap();
    let (x, y) = batches.batch(spec.training.seed, 0, 64, &device).unwrap();
    let model = built.step_model().unwrap();
    let (huge, _) = gradients(built.parts, &model, &opt, &x, &y, 2f64.powi(30)).unwrap();
    assert!(!all_finite(&huge).unwrap(), "2³⁰ must overflow f16");
    let (fine, _) = gradients(built.parts, &model, &opt, &x, &y, 1.0).unwrap();
    assert!(all_finite(&fine).unwrap());
    drop(model);
    for _ in 0..3 {
        let lv = update(&spec, &built, &mut opt, &x, &y, 1.0).unwrap();
        assert!(lv.is_finite());
    }
    for (n, p) in built.params() {
        let v = p
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!(v.iter().all(|x| x.is_finite()), "{n}");
    }
}

/// Trains `steps` steps at `dtype`: the mean loss of the first and last five, and whether
/// the parameters stayed f32.
fn train_losses(dtype: DType, steps: u64) -> (f32, f32) {
    let (spec, data, device) = (gpt2_spec(|_| {}), text(), Device::Cpu);
    let built = Built::computing_in(&spec, &data, &device, dtype).unwrap();
    let mut opt = Optimizer::new(spec.training.optimizer.clone(), built.params()).unwrap();
    let mut batches = Batches::new(&spec, &data, &device).unwrap();
    let mut losses = Vec::new();
    for step in 0..steps {
        let (x, y) = batches.batch(spec.training.seed, step, 8, &device).unwrap();
        losses.push(update(&spec, &built, &mut opt, &x, &y, 1.0).unwrap());
    }
    for (n, p) in built.params() {
        assert_eq!(p.dtype(), DType::F32, "{n}: the master weights stay f32");
    }
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    (mean(&losses[..5]), mean(&losses[losses.len() - 5..]))
}

#[test]
fn half_steps_train_the_f32_weights_as_f32_does() {
    let (f32_first, f32_last) = train_losses(DType::F32, 60);
    assert!(f32_last < 0.7 * f32_first, "f32 {f32_first} → {f32_last}");
    for dtype in [DType::BF16, DType::F16] {
        let (first, last) = train_losses(dtype, 60);
        assert!(last < 0.7 * first, "{dtype:?} {first} → {last}");
        assert!(
            (last - f32_last).abs() < 0.15 * f32_last,
            "{dtype:?} ends at {last}, f32 at {f32_last}"
        );
    }
}

#[test]
fn the_cpu_and_f32_jobs_compute_in_f32_with_the_model_they_always_had() {
    use crate::precision::{compute_dtype, manifest_name};
    let mixed = gpt2_spec(|v| v["training"]["mixed_precision"] = "bf16".into());
    assert_eq!(compute_dtype(&mixed.training, &Device::Cpu), DType::F32);
    assert_eq!(manifest_name(&mixed.training, "cpu"), None);
    assert_eq!(
        manifest_name(&mixed.training, "cuda").as_deref(),
        Some("bf16")
    );
    let f16 = gpt2_spec(|v| v["training"]["mixed_precision"] = "f16".into());
    assert_eq!(
        manifest_name(&f16.training, "metal").as_deref(),
        Some("f16")
    );
    assert_eq!(manifest_name(&gpt2_spec(|_| {}).training, "cuda"), None);
    // On the CPU the step's model is the f32 model itself, not a copy.
    let built = Built::new(&mixed, &text(), &Device::Cpu).unwrap();
    let step = built.step_model().unwrap();
    assert!(std::ptr::eq(&*step, &built.model));
    // An unknown type is refused by name.
    let mut v = serde_json::to_value(&mixed).unwrap();
    v["training"]["mixed_precision"] = "fp8".into();
    let err = serde_json::from_value::<JobSpec>(v)
        .unwrap_err()
        .to_string();
    assert!(err.contains("fp8") && err.contains("bf16"), "{err}");
    // The model's logits are f32 whatever it computes in.
    let half = Built::computing_in(&mixed, &text(), &Device::Cpu, DType::BF16).unwrap();
    let x = Tensor::from_vec(vec![1u32, 2, 3, 4], (1, 4), &Device::Cpu).unwrap();
    let logits = half.step_model().unwrap().forward(&x).unwrap();
    assert_eq!(logits.dtype(), DType::F32);
    assert!(loss(&logits, &x)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
        .is_finite());
}

#[test]
fn gelu_in_f16_has_a_finite_gradient_far_from_zero() {
    // candle's own GELU backward cubes its input in the tensor's type: 41³ overflows f16.
    let xs = [-60f32, -41.0, -1.0, 0.0, 1.0, 41.0, 60.0];
    let grad = |dtype: DType| -> Vec<f32> {
        let v = candle_core::Var::from_vec(xs.to_vec(), xs.len(), &Device::Cpu).unwrap();
        let x = v.as_tensor().to_dtype(dtype).unwrap();
        let y = crate::kernels::gelu(&x)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap();
        let g = y.sum_all().unwrap().backward().unwrap();
        g.get(v.as_tensor()).unwrap().to_vec1::<f32>().unwrap()
    };
    let (f32, f16) = (grad(DType::F32), grad(DType::F16));
    for ((x, a), b) in xs.iter().zip(&f32).zip(&f16) {
        assert!(b.is_finite(), "gelu'({x}) in f16: {b}");
        assert!((a - b).abs() < 1e-2, "gelu'({x}): f32 {a}, f16 {b}");
    }
}

#[test]
fn a_nan_among_finite_gradients_is_not_finite() {
    let t = |v: Vec<f32>| Tensor::from_vec(v.clone(), v.len(), &Device::Cpu).unwrap();
    let map = |v: Vec<f32>| {
        std::collections::BTreeMap::from([
            ("a".to_string(), t(vec![1.0, 2.0])),
            ("b".to_string(), t(v)),
        ])
    };
    assert!(all_finite(&map(vec![3.0, -4.0])).unwrap());
    assert!(!all_finite(&map(vec![3.0, f32::NAN])).unwrap());
    assert!(!all_finite(&map(vec![f32::INFINITY, 1.0])).unwrap());
    assert!(!all_finite(&map(vec![f32::NEG_INFINITY, 1.0])).unwrap());
    // Half-typed gradients too.
    let h = std::collections::BTreeMap::from([(
        "c".to_string(),
        t(vec![1.0, f32::NAN]).to_dtype(DType::F16).unwrap(),
    )]);
    assert!(!all_finite(&h).unwrap());
    assert_eq!(crate::precision::worst_case_passes(DType::F16), 3);
    assert_eq!(crate::precision::worst_case_passes(DType::BF16), 1);
}

#[test]
fn a_frequent_tokens_embedding_gradient_is_summed_in_f32() {
    // One id fills most of every window: its row's gradient is the sum of thousands of
    // per-position gradients, which bf16 accumulation would lose a quarter of.
    let ids: Vec<u32> = (0..8_000u32)
        .map(|i| if i % 9 == 0 { 1 + i % 22 } else { 0 })
        .collect();
    let data = Split::Text {
        shards: None,
        train: ids[..6_000].to_vec(),
        eval: ids[6_000..].to_vec(),
        vocab: Vocab::Ids(23),
    };
    let spec = gpt2_spec(|v| {
        v["training"]["batch_size"] = 64.into();
        v["model"]["context"] = 64.into();
    });
    let row0 = |g: &[(String, Vec<f64>)]| -> Vec<f64> {
        let (_, v) = g.iter().find(|(n, _)| n == "wte.weight").unwrap();
        v[..32].to_vec()
    };
    let a = row0(&grads_at(&spec, &data, DType::F32, 1.0));
    let b = row0(&grads_at(&spec, &data, DType::BF16, 1.0));
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let diff: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
    let rel = norm(&diff) / norm(&a);
    assert!(rel < 0.05, "token 0's embedding gradient off by {rel}");
}

#[test]
fn only_half_types_are_widened_to_f32() {
    // An f64 input (the composed path's own test type) computes in f64, as candle's ops do.
    let v: Vec<f64> = (0..24).map(|i| (i as f64 * 0.37).sin() * 3.0).collect();
    let x = Tensor::from_vec(v, (2, 3, 4), &Device::Cpu).unwrap();
    let same = |a: Tensor, b: Tensor| {
        assert_eq!(a.dtype(), DType::F64);
        let (a, b) = (
            a.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
            b.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
        );
        assert_eq!(a, b);
    };
    same(crate::kernels::gelu(&x).unwrap(), x.gelu().unwrap());
    let (w, b) = (
        Tensor::ones(4, DType::F64, &Device::Cpu).unwrap(),
        Tensor::zeros(4, DType::F64, &Device::Cpu).unwrap(),
    );
    same(
        crate::kernels::layer_norm(&x, &w, &b, 1e-5).unwrap(),
        candle_nn::ops::layer_norm_slow(&x, &w, &b, 1e-5).unwrap(),
    );
    let sq = x.narrow(2, 0, 3).unwrap().contiguous().unwrap();
    let mask = crate::kernels::causal_mask(3, &Device::Cpu)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap();
    same(
        crate::kernels::causal_softmax(&sq, 0.5).unwrap(),
        candle_nn::ops::softmax(&(&sq * 0.5).unwrap().broadcast_add(&mask).unwrap(), 2).unwrap(),
    );
}
