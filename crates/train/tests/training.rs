//! End-to-end training on the shipped digits: accuracy, determinism, resume.

mod common;

use common::{opts, split as digits};
use tensorgrid_train::{trainer::train, verify::verify, Device};

#[test]
fn digits_mlp_reaches_97_percent_and_verifies() {
    let (spec, bytes) = common::digits_spec(|_| {});
    let split = digits(&spec);
    let dir = tempfile::tempdir().unwrap();
    let out = train(&spec, &bytes, &split, &opts(dir.path())).unwrap();
    assert!(
        out.manifest.result.value >= 0.97,
        "accuracy {}",
        out.manifest.result.value
    );
    assert!(out.manifest.result.meets_threshold);
    let report = verify(&spec, &bytes, &split, dir.path(), &Device::Cpu).unwrap();
    assert!(report.passed(), "{report:?}");
    assert_eq!(report.result_hash, hex::encode(out.result_hash));
    // Tampered weights are caught.
    let w = dir.path().join("weights.safetensors");
    let mut b = std::fs::read(&w).unwrap();
    let n = b.len();
    b[n - 1] ^= 1;
    std::fs::write(&w, b).unwrap();
    let report = verify(&spec, &bytes, &split, dir.path(), &Device::Cpu).unwrap();
    assert!(
        !report.passed() && report.problems.iter().any(|p| p.contains("weights")),
        "{report:?}"
    );
}

/// `mixed_precision` is for accelerators: on the CPU the run is the f32 run to the bit, its
/// manifest says nothing of a half type, and a manifest that claims one there is refused.
#[test]
fn mixed_precision_leaves_the_cpu_run_as_it_was() {
    let epochs = |v: &mut serde_json::Value| v["training"]["epochs"] = 2.into();
    let (plain, plain_bytes) = common::digits_spec(epochs);
    let (mixed, mixed_bytes) = common::digits_spec(|v| {
        epochs(v);
        v["training"]["mixed_precision"] = "bf16".into();
    });
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let pa = train(&plain, &plain_bytes, &digits(&plain), &opts(a.path())).unwrap();
    let mb = train(&mixed, &mixed_bytes, &digits(&mixed), &opts(b.path())).unwrap();
    assert_eq!(pa.manifest.weights.sha256, mb.manifest.weights.sha256);
    assert_eq!(mb.manifest.compute_dtype, None);
    let path = b.path().join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("compute_dtype"), "{text}");
    let check = || {
        verify(
            &mixed,
            &mixed_bytes,
            &digits(&mixed),
            b.path(),
            &Device::Cpu,
        )
        .unwrap()
    };
    let report = check();
    assert!(report.problems.is_empty(), "{report:?}");
    let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
    m["compute_dtype"] = "bf16".into();
    std::fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let report = check();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("computed in bf16") && p.contains("cpu in f32")),
        "{report:?}"
    );
}

#[test]
fn same_spec_gives_the_same_result_hash() {
    let (spec, bytes) = common::digits_spec(|v| v["training"]["epochs"] = 3.into());
    let split = digits(&spec);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ha = train(&spec, &bytes, &split, &opts(a.path()))
        .unwrap()
        .result_hash;
    let hb = train(&spec, &bytes, &split, &opts(b.path()))
        .unwrap()
        .result_hash;
    assert_eq!(ha, hb);
    // A different seed gives a different result.
    let (spec2, bytes2) = common::digits_spec(|v| {
        v["training"]["epochs"] = 3.into();
        v["training"]["seed"] = 7.into();
    });
    let c = tempfile::tempdir().unwrap();
    assert_ne!(
        train(&spec2, &bytes2, &digits(&spec2), &opts(c.path()))
            .unwrap()
            .result_hash,
        ha
    );
}

#[test]
fn cancelled_run_resumes_bit_identically() {
    for optimizer in [
        serde_json::json!({ "kind": "adamw", "lr": 0.002 }),
        serde_json::json!({ "kind": "sgd", "lr": 0.05, "momentum": 0.9 }),
    ] {
        let (spec, bytes) = common::digits_spec(|v| {
            v["training"]["epochs"] = 4.into();
            v["training"]["checkpoint_every"] = 10.into();
            v["training"]["optimizer"] = optimizer.clone();
        });
        common::assert_resumes_bit_identically(&optimizer.to_string(), &spec, &bytes);
    }
}

/// A checkpoint belongs to its spec: another spec trained in the same directory starts over
/// (and ends with its own result), instead of resuming the first spec's state.
#[test]
fn a_checkpoint_of_another_spec_is_not_resumed() {
    let (a, a_bytes) = common::digits_spec(|v| {
        v["training"]["epochs"] = 3.into();
        v["training"]["checkpoint_every"] = 10.into();
    });
    let (b, b_bytes) = common::digits_spec(|v| {
        v["training"]["epochs"] = 3.into();
        v["training"]["checkpoint_every"] = 10.into();
        v["training"]["seed"] = 777.into();
    });
    let data = common::split(&a);
    let fresh_b = tempfile::tempdir().unwrap();
    let reference =
        tensorgrid_train::trainer::train(&b, &b_bytes, &data, &common::opts(fresh_b.path()))
            .unwrap();

    // Spec A stops mid-run, leaving its checkpoint.
    let dir = tempfile::tempdir().unwrap();
    cancelled_after(&a, &a_bytes, &data, dir.path(), 25);

    // Spec B in the same directory: A's checkpoint is set aside, B's result is B's.
    let (first, b_run) = train_noting_the_start(&b, &b_bytes, &data, dir.path());
    assert_eq!(first, Some(0), "started over");
    assert_eq!(b_run.result_hash, reference.result_hash);
}

/// The spec's wall-time limit counts the time of earlier runs too (a resume does not reset
/// it), and a deadline stops training with a checkpoint to resume from.
#[test]
fn wall_time_accumulates_over_resumes_and_deadlines_stop_with_a_checkpoint() {
    use std::time::Instant;
    use tensorgrid_train::{checkpoint, trainer::TrainOptions, Error, Fault};

    let (spec, bytes) = common::digits_spec(|v| {
        v["training"]["epochs"] = 3.into();
        v["training"]["checkpoint_every"] = 10.into();
        v["limits"]["max_wall_time_s"] = 600.into();
    });
    let data = common::split(&spec);
    let dir = tempfile::tempdir().unwrap();
    let stopped = tensorgrid_train::trainer::train(
        &spec,
        &bytes,
        &data,
        &TrainOptions {
            deadline: Some(Instant::now()),
            ..common::opts(dir.path())
        },
    );
    let Err(e @ Error::DeadlineReached(0)) = stopped else {
        panic!("{stopped:?}")
    };
    assert_eq!(e.fault(), Fault::Stopped);
    let ck_dir = dir.path().join("checkpoint");
    let sha = common::sha256_hex(&bytes);
    let mut ck = checkpoint::load(&ck_dir, &tensorgrid_train::Device::Cpu, &sha)
        .unwrap()
        .expect("a checkpoint at the deadline");

    // As if earlier runs had already trained for longer than the limit.
    ck.meta.train_secs = 601.0;
    let (built, opt) = {
        let built =
            tensorgrid_train::trainer::Built::new(&spec, &data, &tensorgrid_train::Device::Cpu)
                .unwrap();
        let mut opt = tensorgrid_train::optim::Optimizer::new(
            spec.training.optimizer.clone(),
            built.params(),
        )
        .unwrap();
        checkpoint::restore(&ck, &built.params(), &mut opt).unwrap();
        (built, opt)
    };
    checkpoint::save(&ck_dir, &built.params(), &opt, &ck.meta).unwrap();
    let over = tensorgrid_train::trainer::train(&spec, &bytes, &data, &common::opts(dir.path()));
    let Err(e @ Error::LimitExceeded(_)) = over else {
        panic!("{over:?}")
    };
    assert_eq!(e.fault(), Fault::Poster);
}

/// The progress callback sees every step once and every evaluation's record.
#[test]
fn progress_reports_every_step_and_evaluation() {
    use std::sync::{Arc, Mutex};
    use tensorgrid_train::trainer::TrainOptions;

    let (spec, bytes) = common::digits_spec(|v| {
        v["training"]["epochs"] = 2.into();
    });
    let data = common::split(&spec);
    let seen: Arc<Mutex<(Vec<u64>, usize)>> = Arc::default();
    let s = seen.clone();
    let dir = tempfile::tempdir().unwrap();
    let out = tensorgrid_train::trainer::train(
        &spec,
        &bytes,
        &data,
        &TrainOptions {
            progress: Some(Arc::new(move |p| {
                let mut g = s.lock().unwrap();
                g.0.push(p.step);
                g.1 += usize::from(p.record.is_some());
            })),
            ..common::opts(dir.path())
        },
    )
    .unwrap();
    let (steps, records) = seen.lock().unwrap().clone();
    assert_eq!(steps, (0..=out.manifest.steps).collect::<Vec<_>>());
    assert_eq!(records, 2, "one evaluation per epoch");
}

/// A checkpoint whose committed state files are gone (a directory partly wiped) is not
/// resumed: its result would commit to states nobody can be served. The run starts over and
/// every segment's state is there at the end.
#[test]
fn a_checkpoint_whose_state_files_are_gone_starts_over() {
    let (spec, bytes) = common::digits_spec(|v| {
        v["training"]["epochs"] = 3.into();
        v["training"]["checkpoint_every"] = 10.into();
        v["training"]["commit_every"] = 5.into();
    });
    let data = common::split(&spec);
    let dir = tempfile::tempdir().unwrap();
    cancelled_after(&spec, &bytes, &data, dir.path(), 25);
    let lost: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("state-"))
        .collect();
    assert!(lost.len() >= 2, "{lost:?}");
    std::fs::remove_file(&lost[1]).unwrap();

    let (first, out) = train_noting_the_start(&spec, &bytes, &data, dir.path());
    assert_eq!(first, Some(0), "started over");
    let c = &out.manifest.commitments;
    for i in 0..c.segments() {
        assert!(dir.path().join(c.start_file(i).unwrap()).is_file(), "{i}");
    }
}

/// Trains `spec` in `dir` and cancels it once `step` steps are done (a checkpoint left).
fn cancelled_after(
    spec: &tensorgrid_train::spec::JobSpec,
    bytes: &[u8],
    data: &tensorgrid_train::data::Split,
    dir: &std::path::Path,
    step: u64,
) {
    use std::sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    };
    use tensorgrid_train::{checkpoint, trainer::TrainOptions, Error};
    let cancel = Arc::new(AtomicBool::new(false));
    let c = cancel.clone();
    let run = tensorgrid_train::trainer::train(
        spec,
        bytes,
        data,
        &TrainOptions {
            cancel: Some(cancel),
            progress: Some(Arc::new(move |p| {
                if p.step >= step {
                    c.store(true, Ordering::Relaxed);
                }
            })),
            ..common::opts(dir)
        },
    );
    assert!(matches!(run, Err(Error::Cancelled(_))), "{run:?}");
    assert!(checkpoint::file(&dir.join("checkpoint")).exists());
}

/// Trains `spec` in `dir` to the end; also the first step it reported (0 when it started
/// over, the checkpoint's step when it resumed).
fn train_noting_the_start(
    spec: &tensorgrid_train::spec::JobSpec,
    bytes: &[u8],
    data: &tensorgrid_train::data::Split,
    dir: &std::path::Path,
) -> (Option<u64>, tensorgrid_train::trainer::Outcome) {
    use std::sync::{Arc, Mutex};
    let first_step = Arc::new(Mutex::new(None));
    let f = first_step.clone();
    let out = tensorgrid_train::trainer::train(
        spec,
        bytes,
        data,
        &tensorgrid_train::trainer::TrainOptions {
            progress: Some(Arc::new(move |p| {
                f.lock().unwrap().get_or_insert(p.step);
            })),
            ..common::opts(dir)
        },
    )
    .unwrap();
    let first = *first_step.lock().unwrap();
    (first, out)
}
