//! Fine-tuning: a model's parameters set from a safetensors file (`model.init`) instead of the
//! seed. The file is the poster's: a previous job's result, or weights in that layout (a `gpt2`
//! model also takes Hugging Face's own files, `transformer.`-prefixed names, the attention-mask
//! buffers and the tied `lm_head.weight` of older exports, and a position table longer than
//! the spec's context, cut to it). Every parameter must be there with its shape; anything else
//! in the file is an error, so weights meant for another model are never half-loaded.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;

use crate::{spec::INIT_ROLE, Error, Result};

/// Most names an error lists.
const SHOWN: usize = 8;
/// Largest magnitude of an initial weight (trained networks stay far below it).
pub const MAX_ABS: f32 = 1e4;

/// Sets every variable of `varmap` from the safetensors `bytes`. `gpt2`: also read Hugging
/// Face's names and cut `wpe.weight` to this model's context.
pub fn load(varmap: &VarMap, bytes: &[u8], gpt2: bool) -> Result<()> {
    let bad = |reason: String| Error::File {
        role: INIT_ROLE,
        reason,
    };
    let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
        .map_err(|e| bad(format!("not a readable safetensors file: {e}")))?;
    let mut by_name: BTreeMap<String, Tensor> = BTreeMap::new();
    let mut unknown = Vec::new();
    let mut lm_head = None;
    let data = varmap.data().lock().expect("varmap lock");
    for (raw, t) in tensors {
        let name = if gpt2 {
            raw.strip_prefix("transformer.").unwrap_or(&raw).to_string()
        } else {
            raw.clone()
        };
        // GPT-2 exports carry the causal mask as buffers, and some the tied output layer
        // (checked equal to the embedding below: an untied one would not be this model).
        if gpt2 && name == "lm_head.weight" {
            lm_head = Some(t);
            continue;
        }
        if gpt2
            && (name.ends_with(".attn.bias") && !data.contains_key(&name)
                || name.ends_with(".attn.masked_bias"))
        {
            continue;
        }
        if !data.contains_key(&name) {
            unknown.push(raw);
            continue;
        }
        if by_name.insert(name.clone(), t).is_some() {
            return Err(bad(format!("`{name}` is in the file twice")));
        }
    }
    if !unknown.is_empty() {
        return Err(bad(format!(
            "{} tensors this model does not have: {}",
            unknown.len(),
            shown(&unknown)
        )));
    }
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let missing: Vec<String> = names
        .iter()
        .filter(|n| !by_name.contains_key(**n))
        .map(|n| n.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(bad(format!(
            "{} of the model's {} parameters are not in the file: {}",
            missing.len(),
            names.len(),
            shown(&missing)
        )));
    }
    if let (Some(head), Some(wte)) = (&lm_head, by_name.get("wte.weight")) {
        let bits = |t: &Tensor| -> Result<Vec<u32>> {
            Ok(t.flatten_all()?
                .to_dtype(DType::F32)?
                .to_vec1::<f32>()?
                .into_iter()
                .map(f32::to_bits)
                .collect())
        };
        if head.dims() != wte.dims() || bits(head)? != bits(wte)? {
            return Err(bad(
                "`lm_head.weight` is not `wte.weight`: this model's output layer is tied to \
                 its embedding"
                    .into(),
            ));
        }
    }
    for name in names {
        let var = &data[name];
        let want = var.shape().dims().to_vec();
        let mut t = by_name.remove(name).expect("checked above");
        if !matches!(t.dtype(), DType::F32 | DType::F16 | DType::BF16) {
            return Err(bad(format!(
                "`{name}` is {:?}; weights are f32, f16 or bf16",
                t.dtype()
            )));
        }
        let got = t.dims().to_vec();
        // A longer position table (GPT-2's 1,024 positions for a shorter context).
        if gpt2 && name == "wpe.weight" && got.len() == 2 && got[1] == want[1] && got[0] > want[0] {
            t = t.narrow(0, 0, want[0])?;
        } else if got != want {
            return Err(bad(format!(
                "`{name}` has shape {got:?}, the model's is {want:?}"
            )));
        }
        let t = t.to_dtype(DType::F32)?;
        // Value by value: a reduction's max skips NaN, a sum may overflow. A huge finite
        // value (in an embedding row the first steps never touch) would overflow a loss late
        // in the run, where the worker's rehearsal cannot see it.
        let values = t.flatten_all()?.to_vec1::<f32>()?;
        if let Some(v) = values.iter().find(|v| !v.is_finite() || v.abs() > MAX_ABS) {
            return Err(bad(format!(
                "`{name}` holds {v:e}; initial weights are finite and at most {MAX_ABS:e} in size"
            )));
        }
        var.set(&t.contiguous()?.to_device(var.device())?)?;
    }
    Ok(())
}

fn shown(names: &[String]) -> String {
    let mut s = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    s
}
