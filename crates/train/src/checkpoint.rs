//! Checkpoints: parameters and optimizer state in one safetensors file, the step and the
//! metrics so far in a JSON sidecar. Written to temporary names and renamed, so a kill
//! mid-write leaves the previous checkpoint intact.

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
};

use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::{optim::Optimizer, trainer::MetricsRecord, Error, Result};

const STATE: &str = "state.safetensors";
const META: &str = "meta.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    /// Steps completed.
    pub step: u64,
    pub records: Vec<MetricsRecord>,
    /// Training loss accumulated since the last record.
    pub loss_sum: f64,
    pub loss_n: u64,
}

pub struct Checkpoint {
    pub meta: Meta,
    pub tensors: BTreeMap<String, Tensor>,
}

pub fn save(
    dir: &Path,
    params: &BTreeMap<String, Var>,
    opt: &Optimizer,
    records: &[MetricsRecord],
    (loss_sum, loss_n): (f64, u64),
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let mut tensors: HashMap<String, Tensor> = opt.state().into_iter().collect();
    for (name, var) in params {
        tensors.insert(format!("param.{name}"), var.as_tensor().clone());
    }
    let tmp = dir.join(format!("{STATE}.tmp"));
    candle_core::safetensors::save(&tensors, &tmp)?;
    std::fs::rename(&tmp, dir.join(STATE)).map_err(Error::io(dir))?;
    let meta = Meta {
        step: opt.step,
        records: records.to_vec(),
        loss_sum,
        loss_n,
    };
    let tmp = dir.join(format!("{META}.tmp"));
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(&meta).expect("meta serialises"),
    )
    .map_err(Error::io(&tmp))?;
    std::fs::rename(&tmp, dir.join(META)).map_err(Error::io(dir))?;
    tracing::debug!(step = opt.step, "checkpoint saved");
    Ok(())
}

/// The checkpoint in `dir`, if there is a complete one. The sidecar is written last, so its
/// step is the one the state file holds.
pub fn load(dir: &Path, device: &Device) -> Result<Option<Checkpoint>> {
    let meta_path = dir.join(META);
    if !meta_path.exists() {
        return Ok(None);
    }
    let meta: Meta =
        serde_json::from_slice(&std::fs::read(&meta_path).map_err(Error::io(&meta_path))?)
            .map_err(|e| Error::Checkpoint(format!("{}: {e}", meta_path.display())))?;
    let tensors = candle_core::safetensors::load(dir.join(STATE), device)?
        .into_iter()
        .collect();
    Ok(Some(Checkpoint { meta, tensors }))
}

pub fn restore(ck: &Checkpoint, params: &BTreeMap<String, Var>, opt: &mut Optimizer) -> Result<()> {
    for (name, var) in params {
        let t = ck
            .tensors
            .get(&format!("param.{name}"))
            .ok_or_else(|| Error::Checkpoint(format!("missing parameter {name}")))?;
        if t.shape() != var.shape() {
            return Err(Error::Checkpoint(format!(
                "{name}: shape {:?} ≠ {:?}",
                t.shape(),
                var.shape()
            )));
        }
        var.set(t)?;
    }
    opt.load_state(&ck.tensors, ck.meta.step)
}
