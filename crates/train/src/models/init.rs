//! Deterministic parameter initialisation from the job seed.

use candle_core::Tensor;
use candle_nn::VarMap;

use crate::{rng, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Weights uniform in ±1/√fan_in (PyTorch's default for linear and conv layers).
    FanIn,
    /// Weights with standard deviation 0.02 (GPT-2), drawn uniform in ±0.02·√3.
    Normal002,
}

/// Overwrites every variable: norm gains 1, biases 0, weights per `scheme`. Names are visited
/// in sorted order (the VarMap is a HashMap) and each gets its own RNG stream, so the result
/// depends only on the seed and the architecture.
pub fn initialize(varmap: &VarMap, seed: u64, scheme: Scheme) -> Result<()> {
    let data = varmap.data().lock().expect("varmap lock");
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for (i, name) in names.into_iter().enumerate() {
        let var = &data[name];
        let shape = var.shape().clone();
        let n = shape.elem_count();
        let is_norm = name.split('.').any(|p| p.starts_with("ln"));
        let values = if name.ends_with(".bias") {
            vec![0f32; n]
        } else if is_norm {
            vec![1f32; n]
        } else {
            let fan_in: usize = shape.dims().iter().skip(1).product::<usize>().max(1);
            let bound = match scheme {
                Scheme::FanIn => 1.0 / (fan_in as f32).sqrt(),
                Scheme::Normal002 => 0.02 * 3f32.sqrt(),
            };
            rng::uniform(&mut rng::stream(seed, "init", i as u64), n, bound)
        };
        var.set(&Tensor::from_vec(values, shape, var.device())?)?;
    }
    Ok(())
}

/// Replaces one variable's value (tests, loading by name).
pub fn set(varmap: &VarMap, name: &str, value: Tensor) -> Result<()> {
    let data = varmap.data().lock().expect("varmap lock");
    let var = data
        .get(name)
        .ok_or_else(|| crate::Error::Checkpoint(format!("no parameter `{name}`")))?;
    var.set(&value.to_device(var.device())?)?;
    Ok(())
}
