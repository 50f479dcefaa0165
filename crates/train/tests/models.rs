//! Forward passes against hand-computed values, and a check that every parameter of every
//! model receives a gradient (candle's fused norm/softmax ops silently drop it).

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{VarBuilder, VarMap};
use tensorgrid_train::models::{cnn::Cnn, init::set, mlp::Mlp, transformer};

fn t2(v: &[f32], r: usize, c: usize) -> Tensor {
    Tensor::from_slice(v, (r, c), &Device::Cpu).unwrap()
}

fn close(got: &Tensor, want: &[f32]) {
    let got: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-3, "{got:?} vs {want:?}");
    }
}

#[test]
fn mlp_forward_matches_hand_computation() {
    let vm = VarMap::new();
    let m = Mlp::new(
        2,
        &[2],
        2,
        VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu),
    )
    .unwrap();
    // h = relu(W1 x + b1) = relu([2, -3 + 1]) = [2, 0]; y = W2 h + b2 = [2 + 0.5, 4]
    set(&vm, "fc0.weight", t2(&[1., 0., 0., -1.], 2, 2)).unwrap();
    set(
        &vm,
        "fc0.bias",
        Tensor::new(&[0f32, 1.], &Device::Cpu).unwrap(),
    )
    .unwrap();
    set(&vm, "fc1.weight", t2(&[1., 1., 2., -1.], 2, 2)).unwrap();
    set(
        &vm,
        "fc1.bias",
        Tensor::new(&[0.5f32, 0.], &Device::Cpu).unwrap(),
    )
    .unwrap();
    close(&m.forward(&t2(&[2., 3.], 1, 2)).unwrap(), &[2.5, 4.0]);
}

#[test]
fn cnn_forward_matches_hand_computation() {
    let vm = VarMap::new();
    let m = Cnn::new(
        [1, 2, 2],
        &[1],
        2,
        VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu),
    )
    .unwrap();
    // A centre-only 3×3 kernel is the identity; relu keeps [[1,2],[3,-4]] → [[1,2],[3,0]];
    // the 2×2 max-pool gives 3; fc: [3·1, 3·(−1) + 1].
    let mut k = vec![0f32; 9];
    k[4] = 1.0;
    set(
        &vm,
        "conv0.weight",
        Tensor::from_vec(k, (1, 1, 3, 3), &Device::Cpu).unwrap(),
    )
    .unwrap();
    set(
        &vm,
        "conv0.bias",
        Tensor::new(&[0f32], &Device::Cpu).unwrap(),
    )
    .unwrap();
    set(&vm, "fc.weight", t2(&[1., -1.], 2, 1)).unwrap();
    set(
        &vm,
        "fc.bias",
        Tensor::new(&[0f32, 1.], &Device::Cpu).unwrap(),
    )
    .unwrap();
    close(
        &m.forward(&t2(&[1., 2., 3., -4.], 1, 4)).unwrap(),
        &[3.0, -2.0],
    );
}

#[test]
fn transformer_forward_matches_hand_computation_and_is_causal() {
    let dev = Device::Cpu;
    let vm = VarMap::new();
    let cfg = transformer::Config {
        vocab: 2,
        layers: 1,
        d_model: 2,
        heads: 1,
        context: 2,
        gpt2: false,
    };
    let m = transformer::CharTransformer::new(cfg, VarBuilder::from_varmap(&vm, DType::F32, &dev))
        .unwrap();
    let zeros = |r, c| Tensor::zeros((r, c), DType::F32, &dev).unwrap();
    let eye = t2(&[1., 0., 0., 1.], 2, 2);
    // Token embeddings ±[1, −1], no positions; layer norm maps them to themselves.
    set(&vm, "wte.weight", t2(&[1., -1., -1., 1.], 2, 2)).unwrap();
    set(&vm, "wpe.weight", zeros(2, 2)).unwrap();
    for ln in ["h0.ln1", "h0.ln2", "ln_f"] {
        set(
            &vm,
            &format!("{ln}.weight"),
            Tensor::ones(2, DType::F32, &dev).unwrap(),
        )
        .unwrap();
        set(
            &vm,
            &format!("{ln}.bias"),
            Tensor::zeros(2, DType::F32, &dev).unwrap(),
        )
        .unwrap();
    }
    // q = k = 0 (uniform attention over the visible positions), v = identity.
    let mut qkv = vec![0f32; 12];
    qkv[8] = 1.0;
    qkv[11] = 1.0;
    set(
        &vm,
        "h0.attn.qkv.weight",
        Tensor::from_vec(qkv, (6, 2), &dev).unwrap(),
    )
    .unwrap();
    set(
        &vm,
        "h0.attn.qkv.bias",
        Tensor::zeros(6, DType::F32, &dev).unwrap(),
    )
    .unwrap();
    set(&vm, "h0.attn.proj.weight", eye.clone()).unwrap();
    set(
        &vm,
        "h0.attn.proj.bias",
        Tensor::zeros(2, DType::F32, &dev).unwrap(),
    )
    .unwrap();
    set(&vm, "h0.mlp.fc.weight", zeros(8, 2)).unwrap();
    set(
        &vm,
        "h0.mlp.fc.bias",
        Tensor::zeros(8, DType::F32, &dev).unwrap(),
    )
    .unwrap();
    set(&vm, "h0.mlp.proj.weight", zeros(2, 8)).unwrap();
    set(
        &vm,
        "h0.mlp.proj.bias",
        Tensor::zeros(2, DType::F32, &dev).unwrap(),
    )
    .unwrap();
    set(&vm, "head.weight", eye).unwrap();
    // Tokens [0, 1]: position 0 sees only itself: x0 = [1,−1] + [1,−1] = [2,−2] → ln → [1,−1].
    // Position 1 averages v0 and v1 = 0: x1 = [−1, 1] → ln → [−1, 1]. A leaky mask would
    // make position 0 average too and give [1,−1] + 0 → still [1,−1], so position 1 with a
    // *future* token check follows: tokens [1, 0] give x0 = [−2, 2] → [−1, 1], x1 = [1,−1].
    let idx = Tensor::new(&[[0u32, 1]], &dev).unwrap();
    close(&m.forward(&idx).unwrap(), &[1., -1., -1., 1.]);
    let idx = Tensor::new(&[[1u32, 0]], &dev).unwrap();
    close(&m.forward(&idx).unwrap(), &[-1., 1., 1., -1.]);
    // Causality: changing the last token must not change the first position's output.
    let a = m
        .forward(&Tensor::new(&[[0u32, 0]], &dev).unwrap())
        .unwrap()
        .narrow(1, 0, 1)
        .unwrap();
    let b = m
        .forward(&Tensor::new(&[[0u32, 1]], &dev).unwrap())
        .unwrap()
        .narrow(1, 0, 1)
        .unwrap();
    close(&a, &b.flatten_all().unwrap().to_vec1::<f32>().unwrap());
}

/// Every parameter gets a non-zero gradient from one loss.
fn assert_all_params_train(vm: &VarMap, loss: Tensor) {
    let grads = loss.backward().unwrap();
    let data = vm.data().lock().unwrap();
    assert!(!data.is_empty());
    for (name, var) in data.iter() {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no gradient"));
        let norm: f32 = g.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
        assert!(norm > 0.0, "{name}: zero gradient");
    }
}

#[test]
fn every_parameter_receives_a_gradient() {
    let dev = Device::Cpu;
    let init =
        |vm: &VarMap, scheme| tensorgrid_train::models::init::initialize(vm, 7, scheme).unwrap();
    use tensorgrid_train::models::init::Scheme;

    let vm = VarMap::new();
    let m = Mlp::new(
        4,
        &[8, 8],
        3,
        VarBuilder::from_varmap(&vm, DType::F32, &dev),
    )
    .unwrap();
    init(&vm, Scheme::FanIn);
    let x = Tensor::arange(0f32, 8., &dev)
        .unwrap()
        .reshape((2, 4))
        .unwrap();
    let y = Tensor::new(&[0u32, 2], &dev).unwrap();
    assert_all_params_train(
        &vm,
        tensorgrid_train::trainer::loss(&m.forward(&x).unwrap(), &y).unwrap(),
    );

    let vm = VarMap::new();
    let m = Cnn::new(
        [1, 4, 4],
        &[2, 3],
        3,
        VarBuilder::from_varmap(&vm, DType::F32, &dev),
    )
    .unwrap();
    init(&vm, Scheme::FanIn);
    let x = (Tensor::arange(0f32, 32., &dev)
        .unwrap()
        .reshape((2, 16))
        .unwrap()
        / 10.0)
        .unwrap();
    assert_all_params_train(
        &vm,
        tensorgrid_train::trainer::loss(&m.forward(&x).unwrap(), &y).unwrap(),
    );

    // Both layouts: the character model's, and GPT-2's (its tied output layer trains the
    // token embedding through both of its uses).
    for gpt2 in [false, true] {
        let vm = VarMap::new();
        let cfg = transformer::Config {
            vocab: 5,
            layers: 2,
            d_model: 8,
            heads: 2,
            context: 4,
            gpt2,
        };
        let m =
            transformer::CharTransformer::new(cfg, VarBuilder::from_varmap(&vm, DType::F32, &dev))
                .unwrap();
        init(&vm, Scheme::Normal002);
        let names: Vec<String> = vm.data().lock().unwrap().keys().cloned().collect();
        assert_eq!(names.iter().any(|n| n == "head.weight"), !gpt2, "{names:?}");
        assert_eq!(
            names.iter().any(|n| n == "h.1.attn.c_attn.weight"),
            gpt2,
            "{names:?}"
        );
        // Every vocab entry and position appears, so every embedding row gets a gradient.
        let idx = Tensor::new(&[[0u32, 1, 2, 3], [4, 3, 2, 1]], &dev).unwrap();
        let tgt = Tensor::new(&[[1u32, 2, 3, 4], [0, 1, 2, 3]], &dev).unwrap();
        assert_all_params_train(
            &vm,
            tensorgrid_train::trainer::loss(&m.forward(&idx).unwrap(), &tgt).unwrap(),
        );
    }
}

/// Builds a model twice — f32 (the fused CPU kernels) and f64 (the composed-op path CUDA and
/// Metal take) — with the same weights, and checks logits and every parameter's gradient agree.
fn cpu_and_gpu_paths_agree<M: Module>(
    build: impl Fn(VarBuilder) -> M,
    scheme: tensorgrid_train::models::init::Scheme,
    x32: Tensor,
    x64: Tensor,
    targets: Tensor,
) {
    let dev = Device::Cpu;
    let (vm32, vm64) = (VarMap::new(), VarMap::new());
    let m32 = build(VarBuilder::from_varmap(&vm32, DType::F32, &dev));
    let m64 = build(VarBuilder::from_varmap(&vm64, DType::F64, &dev));
    tensorgrid_train::models::init::initialize(&vm32, 11, scheme).unwrap();
    for (name, var) in vm32.data().lock().unwrap().iter() {
        set(&vm64, name, var.to_dtype(DType::F64).unwrap()).unwrap();
    }
    let (y32, y64) = (m32.forward(&x32).unwrap(), m64.forward(&x64).unwrap());
    let as_f32 = |t: &Tensor| -> Vec<f32> {
        t.to_dtype(DType::F32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    let near = |what: &str, a: &[f32], b: &[f32]| {
        let scale = b.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-4 * scale, "{what}: {x} vs {y}");
        }
    };
    near("logits", &as_f32(&y32), &as_f32(&y64));
    let loss = tensorgrid_train::trainer::loss;
    let g32 = loss(&y32, &targets).unwrap().backward().unwrap();
    let g64 = loss(&y64, &targets).unwrap().backward().unwrap();
    let (d32, d64) = (vm32.data().lock().unwrap(), vm64.data().lock().unwrap());
    for (name, var) in d32.iter() {
        let a = as_f32(g32.get(var.as_tensor()).unwrap());
        let b = as_f32(g64.get(d64[name].as_tensor()).unwrap());
        near(name, &a, &b);
    }
}

#[test]
fn cpu_kernels_and_gpu_composed_paths_agree() {
    use tensorgrid_train::models::init::Scheme;
    let dev = Device::Cpu;
    let x = (Tensor::arange(0f32, 96., &dev)
        .unwrap()
        .reshape((2, 48))
        .unwrap()
        / 50.0)
        .unwrap()
        .sin()
        .unwrap();
    let y = Tensor::new(&[0u32, 2], &dev).unwrap();
    cpu_and_gpu_paths_agree(
        |vb| Cnn::new([3, 4, 4], &[4, 5], 3, vb).unwrap(),
        Scheme::FanIn,
        x.clone(),
        x.to_dtype(DType::F64).unwrap(),
        y.clone(),
    );
    cpu_and_gpu_paths_agree(
        |vb| Mlp::new(48, &[16], 3, vb).unwrap(),
        Scheme::FanIn,
        x.clone(),
        x.to_dtype(DType::F64).unwrap(),
        y,
    );
    for gpt2 in [false, true] {
        let cfg = transformer::Config {
            vocab: 7,
            layers: 2,
            d_model: 8,
            heads: 2,
            context: 5,
            gpt2,
        };
        let idx = Tensor::new(&[[0u32, 1, 2, 3, 4], [6, 5, 4, 3, 2]], &dev).unwrap();
        let tgt = Tensor::new(&[[1u32, 2, 3, 4, 5], [5, 4, 3, 2, 1]], &dev).unwrap();
        cpu_and_gpu_paths_agree(
            |vb| transformer::CharTransformer::new(cfg, vb).unwrap(),
            Scheme::Normal002,
            idx.clone(),
            idx,
            tgt,
        );
    }
}
