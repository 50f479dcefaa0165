//! Checkpoints: parameters, optimizer state and the run's metadata (step, metrics so far, the
//! spec it belongs to, the engine that wrote it) in **one** safetensors file, written to a
//! temporary name, synced and renamed. A kill at any moment leaves either the previous
//! checkpoint or the new one, never a mix of the two.
//!
//! A checkpoint is bound to the sha256 of its spec and to the engine version: resuming a
//! different spec (or with another engine) from it would produce a result that verifies but
//! is not what the spec describes, so such a checkpoint is set aside and training starts over.

use std::{
    collections::{BTreeMap, HashMap},
    io::Write,
    path::{Path, PathBuf},
};

use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::{optim::Optimizer, trainer::MetricsRecord, Error, Result};

const FILE: &str = "state.safetensors";
/// The metadata rides in the same file as a `u8` tensor of JSON.
const META_TENSOR: &str = "__meta__";
/// The engine's version as a manifest records it: the crate's, and the revision of its
/// arithmetic after the `+`, bumped whenever the same spec trains to other bits on the same
/// device class (numerics 2: a CPU step's batch in parts side by side, [`crate::parts`];
/// numerics 3: layer and group norms sum their rows over eight running sums). A
/// result of another revision is never resumed, spot-checked or judged here.
pub const ENGINE_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "+numerics.3");
/// Written into every checkpoint; a checkpoint from another engine is not resumed. (The same
/// as [`ENGINE_VERSION`]: `concat!` takes literals only.)
pub const ENGINE: &str = concat!(
    "tensorgrid-train ",
    env!("CARGO_PKG_VERSION"),
    "+numerics.3"
);

/// Why a re-run of the result `m` made here would not agree with it to the bit (another
/// device kind or class, another engine), or `None` when it would.
pub fn cannot_rerun(m: &crate::manifest::Manifest, device: &Device) -> Option<String> {
    let (kind, isa) = platform(device);
    if m.device != kind || m.cpu_isa != isa {
        return Some(format!(
            "the result was trained on {} {}, this is {kind} {isa}: a re-run agrees to the bit \
             only on the same device class",
            m.device, m.cpu_isa
        ));
    }
    let theirs = m
        .software
        .get("tensorgrid-train")
        .map_or("unknown", String::as_str);
    if theirs != ENGINE_VERSION {
        return Some(format!(
            "the result was trained by tensorgrid-train {theirs}, this is {ENGINE_VERSION}: a \
             re-run agrees to the bit only with the same engine"
        ));
    }
    None
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    /// sha256 (hex) of the spec bytes the run trains.
    pub spec_sha256: String,
    /// [`ENGINE`] of the writer.
    pub engine: String,
    /// The device kind trained on (`cpu`, `cuda`, `metal`) and, for the CPU, its ISA class:
    /// rounding differs between them, so a run continued on another is reproducible by no one.
    #[serde(default)]
    pub device: String,
    #[serde(default)]
    pub cpu_isa: String,
    /// Steps completed.
    pub step: u64,
    pub records: Vec<MetricsRecord>,
    /// Training loss accumulated since the last record.
    pub loss_sum: f64,
    pub loss_n: u64,
    /// Seconds spent training before this checkpoint, over all previous runs (so the spec's
    /// wall-time limit holds across resumes).
    #[serde(default)]
    pub train_secs: f64,
    /// State hashes committed so far (steps 0, every, 2·every, …): see [`crate::commit`].
    #[serde(default)]
    pub commitments: Vec<String>,
}

pub struct Checkpoint {
    pub meta: Meta,
    pub tensors: BTreeMap<String, Tensor>,
}

/// The checkpoint file in a run's checkpoint directory.
pub fn file(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

pub fn save(
    dir: &Path,
    params: &BTreeMap<String, Var>,
    opt: &Optimizer,
    meta: &Meta,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    save_as(&file(dir), params, opt, meta)?;
    tracing::debug!(step = meta.step, "checkpoint saved");
    Ok(())
}

/// The state as one file at `path` (its directory must exist), atomically.
pub fn save_as(
    path: &Path,
    params: &BTreeMap<String, Var>,
    opt: &Optimizer,
    meta: &Meta,
) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| FILE.into());
    let mut tensors: HashMap<String, Tensor> = opt.state().into_iter().collect();
    for (name, var) in params {
        tensors.insert(format!("param.{name}"), var.as_tensor().clone());
    }
    let json = serde_json::to_vec(meta).expect("meta serialises");
    let len = json.len();
    tensors.insert(
        META_TENSOR.into(),
        Tensor::from_vec(json, len, &Device::Cpu)?,
    );
    let tmp = dir.join(format!("{name}.tmp"));
    let written = candle_core::safetensors::save(&tensors, &tmp)
        .map_err(Error::from)
        .and_then(|()| {
            // On disk before the rename makes it the checkpoint: a power cut cannot leave a
            // renamed-but-empty file.
            std::fs::OpenOptions::new()
                .append(true)
                .open(&tmp)
                .and_then(|mut f| f.flush().and_then(|()| f.sync_all()))
                .map_err(Error::io(&tmp))
        })
        .and_then(|()| std::fs::rename(&tmp, path).map_err(Error::io(path)));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename itself, on disk.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A state file as written by [`save_as`], parsed on the CPU and moved to `device`; any
/// problem is an error (a verifier's input, never set aside).
pub fn read_state(path: &Path, device: &Device) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(Error::io(path))?;
    let bad = |why: String| Error::Checkpoint(format!("{}: {why}", path.display()));
    let mut tensors: BTreeMap<String, Tensor> =
        candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
            .map_err(|e| bad(e.to_string()))?
            .into_iter()
            .collect();
    let meta_t = tensors
        .remove(META_TENSOR)
        .ok_or_else(|| bad("no metadata".into()))?;
    let meta: Meta = meta_t
        .to_vec1::<u8>()
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad("unreadable metadata".into()))?;
    let tensors = tensors
        .into_iter()
        .map(|(k, t)| Ok((k, t.to_device(device)?)))
        .collect::<Result<BTreeMap<_, _>>>()?;
    Ok(Checkpoint { meta, tensors })
}

/// The checkpoint in `dir` if there is one for this spec (sha256 hex) and engine. One for
/// another spec or engine, or an unreadable one, is moved aside (`state.safetensors.stale`)
/// with a warning, and `None` returned: the run starts over.
pub fn load(dir: &Path, device: &Device, spec_sha256: &str) -> Result<Option<Checkpoint>> {
    let path = file(dir);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        // Not the checkpoint's fault (a busy disk, too many files): keep it for a retry.
        Err(e) => return Err(Error::Io { path, source: e }),
    };
    let set_aside = |why: String| -> Result<Option<Checkpoint>> {
        tracing::warn!(checkpoint = %path.display(), "{why}: starting over");
        let stale = dir.join(format!("{FILE}.stale"));
        std::fs::rename(&path, &stale).map_err(Error::io(&path))?;
        Ok(None)
    };
    let mut tensors: BTreeMap<String, Tensor> =
        match candle_core::safetensors::load_buffer(&bytes, &Device::Cpu) {
            Ok(t) => t.into_iter().collect(),
            Err(e) => return set_aside(format!("unreadable checkpoint ({e})")),
        };
    let Some(meta_t) = tensors.remove(META_TENSOR) else {
        return set_aside("checkpoint without metadata".into());
    };
    let meta: Meta = match meta_t
        .to_vec1::<u8>()
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        Some(m) => m,
        None => return set_aside("checkpoint metadata unreadable".into()),
    };
    if meta.spec_sha256 != spec_sha256 {
        return set_aside(format!(
            "checkpoint is for spec {}, not this spec {spec_sha256}",
            meta.spec_sha256
        ));
    }
    if meta.engine != ENGINE {
        return set_aside(format!(
            "checkpoint written by {}, this is {ENGINE}",
            meta.engine
        ));
    }
    let (kind, isa) = platform(device);
    if meta.device != kind || meta.cpu_isa != isa {
        return set_aside(format!(
            "checkpoint trained on {} {}, this is {kind} {isa}",
            meta.device, meta.cpu_isa
        ));
    }
    // Parsed on the CPU; moved to the device here, where a failure (memory) is an error, not
    // a reason to throw the checkpoint away.
    let tensors = tensors
        .into_iter()
        .map(|(k, t)| Ok((k, t.to_device(device)?)))
        .collect::<Result<BTreeMap<_, _>>>()?;
    Ok(Some(Checkpoint { meta, tensors }))
}

/// The device kind and its class (the CPU's ISA class, a GPU's model and architecture: see
/// [`crate::device::accelerator_class`]) a checkpoint and a manifest record: a run continues,
/// and a segment is judged, only within one class.
pub fn platform(device: &Device) -> (String, String) {
    let kind = crate::device::name(device).to_string();
    (kind, crate::device::accelerator_class(device))
}

pub fn restore(ck: &Checkpoint, params: &BTreeMap<String, Var>, opt: &mut Optimizer) -> Result<()> {
    for (name, var) in params {
        let t = ck
            .tensors
            .get(&format!("param.{name}"))
            .ok_or_else(|| Error::Checkpoint(format!("missing parameter {name}")))?;
        if t.shape() != var.shape() || t.dtype() != var.dtype() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            spec_sha256: "ab".repeat(32),
            engine: ENGINE.into(),
            device: "cpu".into(),
            cpu_isa: crate::device::cpu_isa(),
            step: 46,
            records: vec![MetricsRecord {
                step: 46,
                epoch: Some(2),
                train_loss: 1.3407748160154924,
                eval_loss: 0.9575076699256897,
                eval_accuracy: Some(0.8969359331476323),
            }],
            loss_sum: 0.1 + 0.2,
            loss_n: 3,
            commitments: vec!["cd".repeat(32)],
            train_secs: 1.5,
        }
    }

    /// A re-run is refused, each with its reason, for a result of another device class or of
    /// another engine (an older engine's arithmetic, or a manifest naming none); one of this
    /// machine and engine is re-run.
    #[test]
    fn a_rerun_needs_the_same_device_class_and_engine() {
        use crate::manifest::{FileEntry, FinalMetric, Manifest};
        let (kind, isa) = platform(&Device::Cpu);
        let file = FileEntry {
            path: "model.safetensors".into(),
            sha256: "00".repeat(32),
            bytes: 1,
        };
        let here = Manifest {
            version: crate::manifest::MANIFEST_VERSION,
            spec_sha256: "ab".repeat(32),
            weights: file.clone(),
            metrics: file,
            result: FinalMetric {
                metric: crate::spec::Metric::Loss,
                value: 1.0,
                threshold: 2.0,
                meets_threshold: true,
            },
            steps: 10,
            device: kind,
            cpu_isa: isa,
            compute_dtype: None,
            software: BTreeMap::from([("tensorgrid-train".into(), ENGINE_VERSION.into())]),
            commitments: Default::default(),
            extra: Vec::new(),
            init_sha256: None,
        };
        assert_eq!(cannot_rerun(&here, &Device::Cpu), None);
        let mut other_isa = here.clone();
        other_isa.cpu_isa = "x86_64-v4 (avx512f, avx2, fma)x".into();
        assert!(cannot_rerun(&other_isa, &Device::Cpu)
            .is_some_and(|why| why.contains("same device class")));
        let mut older = here.clone();
        older
            .software
            .insert("tensorgrid-train".into(), "0.1.0".into());
        let why = cannot_rerun(&older, &Device::Cpu).expect("refused");
        assert!(
            why.contains("tensorgrid-train 0.1.0") && why.contains("same engine"),
            "{why}"
        );
        let mut unnamed = here;
        unnamed.software.clear();
        assert!(cannot_rerun(&unnamed, &Device::Cpu).is_some());
        assert_eq!(ENGINE, format!("tensorgrid-train {ENGINE_VERSION}"));
    }

    /// The metrics carried in the metadata must come back bit for bit, or a resumed run's
    /// `metrics.jsonl` (and so its result hash) differs from an uninterrupted run's. serde_json's
    /// default float parser is off by one ulp on values like this one (seen in a resume test).
    #[test]
    fn meta_round_trips_floats_exactly() {
        let m = meta();
        let back: Meta = serde_json::from_slice(&serde_json::to_vec(&m).unwrap()).unwrap();
        assert_eq!(back.records, m.records);
        assert_eq!(back.loss_sum.to_bits(), m.loss_sum.to_bits());
    }

    fn one_param() -> (BTreeMap<String, Var>, Optimizer) {
        let var = Var::from_tensor(&Tensor::new(&[1f32, 2., 3.], &Device::Cpu).unwrap()).unwrap();
        let params = BTreeMap::from([("w".to_string(), var)]);
        let opt = Optimizer::new(
            crate::spec::OptimizerSpec::Sgd {
                lr: 0.1,
                momentum: 0.0,
            },
            params.clone(),
        )
        .unwrap();
        (params, opt)
    }

    #[test]
    fn one_file_bound_to_its_spec() {
        let dir = tempfile::tempdir().unwrap();
        let (params, opt) = one_param();
        save(dir.path(), &params, &opt, &meta()).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![FILE.to_string()], "one file, no temporaries");

        let ck = load(dir.path(), &Device::Cpu, &"ab".repeat(32))
            .unwrap()
            .unwrap();
        assert_eq!(ck.meta.step, 46);
        assert!(ck.tensors.contains_key("param.w") && !ck.tensors.contains_key(META_TENSOR));

        // Another spec: set aside, not resumed.
        assert!(load(dir.path(), &Device::Cpu, &"cd".repeat(32))
            .unwrap()
            .is_none());
        assert!(!file(dir.path()).exists());
        assert!(dir.path().join(format!("{FILE}.stale")).exists());

        // Another engine: the same.
        let mut m = meta();
        m.engine = "tensorgrid-train 0.0.1".into();
        save(dir.path(), &params, &opt, &m).unwrap();
        assert!(load(dir.path(), &Device::Cpu, &"ab".repeat(32))
            .unwrap()
            .is_none());

        // Another CPU class: set aside.
        let mut m = meta();
        m.cpu_isa = "some other isa".into();
        save(dir.path(), &params, &opt, &m).unwrap();
        assert!(load(dir.path(), &Device::Cpu, &"ab".repeat(32))
            .unwrap()
            .is_none());

        // A truncated file (a torn write from an older engine, a full disk): set aside.
        save(dir.path(), &params, &opt, &meta()).unwrap();
        let bytes = std::fs::read(file(dir.path())).unwrap();
        std::fs::write(file(dir.path()), &bytes[..bytes.len() / 2]).unwrap();
        assert!(load(dir.path(), &Device::Cpu, &"ab".repeat(32))
            .unwrap()
            .is_none());
    }
}
