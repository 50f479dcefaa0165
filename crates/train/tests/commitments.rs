//! State commitments: every shipped model's segments re-run to the committed hash bit for
//! bit on the CPU; a result trained on the evaluation rows passes the plain check but not a
//! spot-check, nor the poster's own data; an altered state file or manifest is caught.

mod common;

use common::{job_spec, opts, split};
use tensorgrid_train::{
    commit::{self, spot_check},
    data::{self, Split},
    manifest,
    trainer::train,
    verify::{evaluate_private, verify},
    Device,
};

/// The cheat: the model fitted to the rows it will be judged on — the evaluation rows, repeated
/// to the training split's size so the run has the spec's number of steps.
fn fitted_to_eval(honest: &Split) -> Split {
    let Split::Table {
        train,
        eval,
        classes,
        ..
    } = honest
    else {
        panic!("a table")
    };
    let idx: Vec<u32> = (0..train.rows())
        .map(|i| (i % eval.rows()) as u32)
        .collect();
    Split::Table {
        shards: None,
        train: eval.select(&idx),
        eval: eval.clone(),
        classes: *classes,
    }
}

/// Trains `name` (edited) and re-runs every one of its segments.
fn every_segment_reruns_identically(name: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let (spec, bytes) = job_spec(name, edit);
    let data = split(&spec);
    let dir = tempfile::tempdir().unwrap();
    let out = train(&spec, &bytes, &data, &opts(dir.path())).unwrap();
    let c = &out.manifest.commitments;
    assert!(c.segments() >= 2, "{name}: {c:?}");
    assert!(commit::problems(c, out.manifest.steps).is_empty());
    // Every segment's start is kept (for whoever asks for it); the last state starts none.
    for i in 0..c.segments() {
        assert!(dir.path().join(c.start_file(i).unwrap()).is_file(), "{i}");
    }
    let last = commit::state_file_name(c.state_hashes.last().unwrap());
    assert!(!dir.path().join(last).exists());
    let all: Vec<usize> = (0..c.segments()).collect();
    let check = spot_check(
        &spec,
        &data,
        dir.path(),
        c,
        out.manifest.steps,
        &all,
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(check.mismatches, 0, "{name}: {check:#?}");
    assert_eq!(check.steps, out.manifest.steps);
    assert!((check.share_of_job - 1.0).abs() < 1e-12);
    println!("{name}: {}", check.summary());
}

#[test]
fn the_mlps_segments_rerun_to_their_committed_states() {
    every_segment_reruns_identically("digits-mlp", |v| {
        v["training"]["epochs"] = 2.into();
        v["training"]["commit_every"] = 7.into();
    });
}

#[test]
fn the_cnns_segments_rerun_to_their_committed_states() {
    every_segment_reruns_identically("digits-cnn", |v| {
        v["training"]["epochs"] = 1.into();
    });
}

#[test]
fn the_char_transformers_segments_rerun_to_their_committed_states() {
    every_segment_reruns_identically("kjv-charlm", |v| {
        v["training"]["steps"] = 30.into();
        v["training"]["eval_every"] = 10.into();
        v["training"]["commit_every"] = 8.into();
    });
}

/// A warmup-then-cosine rate, clipped gradients and micro-batches are functions of the step
/// and the state: a segment re-run from any committed state lands on the next one.
#[test]
fn segments_with_a_schedule_clipping_and_micro_batches_rerun_identically() {
    every_segment_reruns_identically("kjv-charlm", |v| {
        v["training"]["steps"] = 24.into();
        v["training"]["eval_every"] = 8.into();
        v["training"]["commit_every"] = 5.into();
        v["training"]["schedule"] =
            serde_json::json!({"warmup_steps": 6, "decay": "cosine", "min_lr_ratio": 0.1});
        v["training"]["clip_grad_norm"] = 0.5.into();
        v["training"]["grad_accumulation"] = 4.into();
    });
}

#[test]
fn training_on_the_evaluation_rows_passes_a_plain_check_but_not_a_spot_check() {
    let (spec, bytes) = job_spec("digits-mlp", |v| {
        v["training"]["epochs"] = 10.into();
        v["evaluation"]["threshold"] = 0.5.into();
    });
    let honest = split(&spec);
    let cheat = fitted_to_eval(&honest);
    let dir = tempfile::tempdir().unwrap();
    let out = train(&spec, &bytes, &cheat, &opts(dir.path())).unwrap();
    let report = verify(&spec, &bytes, &honest, dir.path(), &Device::Cpu).unwrap();
    assert!(report.passed(), "the plain check is fooled: {report:?}");

    let c = &out.manifest.commitments;
    let check = spot_check(
        &spec,
        &honest,
        dir.path(),
        c,
        out.manifest.steps,
        &[0, c.segments() - 1],
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(check.mismatches, 2, "{check:#?}");
    let first = &check.checked[0];
    assert!(first.problem.is_none() && first.reached.is_some());
    assert_ne!(first.reached.as_deref(), Some(first.expected.as_str()));
}

#[test]
fn an_altered_state_file_or_commitment_list_is_caught() {
    let (spec, bytes) = job_spec("digits-mlp", |v| {
        v["training"]["epochs"] = 1.into();
        v["training"]["commit_every"] = 5.into();
    });
    let data = split(&spec);
    let dir = tempfile::tempdir().unwrap();
    let out = train(&spec, &bytes, &data, &opts(dir.path())).unwrap();
    let c = out.manifest.commitments.clone();
    let total = out.manifest.steps;

    // Segment 1's starting state swapped for segment 2's: loaded, but not the state committed.
    let (one, two) = (c.start_file(1).unwrap(), c.start_file(2).unwrap());
    std::fs::copy(dir.path().join(two), dir.path().join(one)).unwrap();
    let check = spot_check(&spec, &data, dir.path(), &c, total, &[1], &Device::Cpu).unwrap();
    assert_eq!(check.mismatches, 1);
    let problem = check.checked[0].problem.as_deref().unwrap();
    assert!(problem.contains("not the state committed"), "{problem}");

    // A missing file is a mismatch with its reason, not a crash.
    std::fs::remove_file(dir.path().join(c.start_file(3).unwrap())).unwrap();
    let check = spot_check(&spec, &data, dir.path(), &c, total, &[3], &Device::Cpu).unwrap();
    assert_eq!(check.mismatches, 1);
    assert!(check.checked[0].problem.is_some());

    // A segment that does not exist is an error.
    assert!(spot_check(
        &spec,
        &data,
        dir.path(),
        &c,
        total,
        &[c.segments()],
        &Device::Cpu
    )
    .is_err());

    // A list that does not fit the steps, and a file not named for its state.
    let mut short = c.clone();
    short.state_hashes.pop();
    assert!(!commit::problems(&short, total).is_empty());
    // A hash that is not one (it names a file: a path must never pass).
    let mut renamed = c.clone();
    renamed.state_hashes[0] = "../weights".into();
    assert!(!commit::problems(&renamed, total).is_empty());
    let mut bad_digest = c.clone();
    bad_digest.last.optimizer_sha256 = "zz".into();
    assert!(!commit::problems(&bad_digest, total).is_empty());
    // The manifest on disk commits to the list: the verify report names a changed one.
    let mut m = manifest::read(dir.path()).unwrap();
    m.commitments.state_hashes.pop();
    std::fs::write(
        dir.path().join(manifest::MANIFEST_FILE),
        serde_json::to_vec_pretty(&m).unwrap(),
    )
    .unwrap();
    let report = verify(&spec, &bytes, &data, dir.path(), &Device::Cpu).unwrap();
    assert!(
        report.problems.iter().any(|p| p.contains("commitments")),
        "{report:?}"
    );
}

/// The poster's own held-out data (`--eval-data`): the same cheat, which the public
/// evaluation rows flatter, measures worse on rows it never saw.
#[test]
fn the_posters_own_data_exposes_a_model_fitted_to_the_public_evaluation_rows() {
    let (spec, bytes) = job_spec("digits-mlp", |v| {
        v["training"]["epochs"] = 10.into();
        v["evaluation"]["threshold"] = 0.5.into();
    });
    let honest = split(&spec);
    let Split::Table { train, .. } = &honest else {
        panic!("a table")
    };
    let cheat = fitted_to_eval(&honest);
    let dir = tempfile::tempdir().unwrap();
    train_run(&spec, &bytes, &cheat, dir.path());
    let public = verify(&spec, &bytes, &honest, dir.path(), &Device::Cpu)
        .unwrap()
        .measured;

    // The poster's file: 400 rows the cheat never saw, in the spec's format (raw pixel
    // values: the spec scales them by 1/16 when it reads them).
    let rows = 400;
    let dim = train.dim;
    let images: Vec<f32> = train.features[..rows * dim]
        .iter()
        .map(|v| v * 16.0)
        .collect();
    let labels: Vec<f32> = train.labels[..rows].iter().map(|&l| l as f32).collect();
    let own = dir.path().join("own.safetensors");
    let save = |images: Vec<f32>, dim: usize, path: &std::path::Path| {
        let n = images.len() / dim;
        let tensors = std::collections::HashMap::from([
            (
                "images".to_string(),
                candle_core::Tensor::from_vec(images, (n, dim), &candle_core::Device::Cpu).unwrap(),
            ),
            (
                "labels".to_string(),
                candle_core::Tensor::from_vec(labels[..n].to_vec(), n, &candle_core::Device::Cpu)
                    .unwrap(),
            ),
        ]);
        candle_core::safetensors::save(&tensors, path).unwrap();
    };
    save(images, dim, &own);
    let private = data::private_eval(&spec, &std::fs::read(&own).unwrap(), &honest).unwrap();
    let p = evaluate_private(&spec, &private, dir.path(), &Device::Cpu).unwrap();
    assert_eq!(p.samples, rows);
    println!(
        "public evaluation rows: {public:.4}, the poster's own rows: {:.4}",
        p.measured
    );
    assert!(p.measured < public - 0.05, "{public} vs {p:?}");

    // Rows of another width are refused with the reason.
    let narrow = dir.path().join("narrow.safetensors");
    save(vec![1.0; 40 * 10], 10, &narrow);
    let e = data::private_eval(&spec, &std::fs::read(&narrow).unwrap(), &honest).unwrap_err();
    assert!(e.to_string().contains("10 values"), "{e}");
}

fn train_run(
    spec: &tensorgrid_train::spec::JobSpec,
    bytes: &[u8],
    data: &Split,
    dir: &std::path::Path,
) {
    train(spec, bytes, data, &opts(dir)).unwrap();
}

/// Rewrites the manifest in `dir` with `edit` applied (a worker's lie), keeping its file.
fn lie(dir: &std::path::Path, edit: impl FnOnce(&mut manifest::Manifest)) {
    let mut m = manifest::read(dir).unwrap();
    edit(&mut m);
    std::fs::write(
        dir.join(manifest::MANIFEST_FILE),
        serde_json::to_vec_pretty(&m).unwrap(),
    )
    .unwrap();
}

fn problems_of(
    spec: &tensorgrid_train::spec::JobSpec,
    bytes: &[u8],
    data: &Split,
    dir: &std::path::Path,
) -> Vec<String> {
    verify(spec, bytes, data, dir, &Device::Cpu)
        .unwrap()
        .problems
}

/// The cheats a chain of honest segments could hide, each caught by the plain check: weights
/// swapped after honest training, a chain started from another state than the spec's, and a
/// run shorter than the spec's.
#[test]
fn the_chain_is_tied_to_the_spec_at_its_start_and_to_the_weights_at_its_end() {
    let (spec, bytes) = job_spec("digits-mlp", |v| {
        v["training"]["epochs"] = 2.into();
        v["evaluation"]["threshold"] = 0.5.into();
    });
    let data = split(&spec);
    let honest = tempfile::tempdir().unwrap();
    train(&spec, &bytes, &data, &opts(honest.path())).unwrap();
    assert!(problems_of(&spec, &bytes, &data, honest.path()).is_empty());

    // Swapped weights (here: another seed's), listed with their true hash.
    let (other, other_bytes) = job_spec("digits-mlp", |v| {
        v["training"]["epochs"] = 2.into();
        v["training"]["seed"] = 7.into();
    });
    let elsewhere = tempfile::tempdir().unwrap();
    train(
        &other,
        &other_bytes,
        &split(&other),
        &opts(elsewhere.path()),
    )
    .unwrap();
    let swapped = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(honest.path()).unwrap() {
        let f = f.unwrap().path();
        if f.is_file() {
            std::fs::copy(&f, swapped.path().join(f.file_name().unwrap())).unwrap();
        }
    }
    let w = manifest::WEIGHTS_FILE;
    std::fs::copy(elsewhere.path().join(w), swapped.path().join(w)).unwrap();
    let theirs = manifest::read(elsewhere.path()).unwrap().weights;
    lie(swapped.path(), |m| m.weights = theirs);
    let p = problems_of(&spec, &bytes, &data, swapped.path());
    assert!(
        p.iter()
            .any(|p| p.contains("weights and metrics are not the final committed state")),
        "{p:?}"
    );

    // The weights kept, the manifest's account of the last state's other parts changed: the
    // optimizer digest or the loss accumulator are committed too.
    let moments = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(honest.path()).unwrap() {
        let f = f.unwrap().path();
        if f.is_file() {
            std::fs::copy(&f, moments.path().join(f.file_name().unwrap())).unwrap();
        }
    }
    lie(moments.path(), |m| {
        m.commitments.last.optimizer_sha256 = "ab".repeat(32)
    });
    let p = problems_of(&spec, &bytes, &data, moments.path());
    assert!(
        p.iter()
            .any(|p| p.contains("weights and metrics are not the final committed state")),
        "{p:?}"
    );
    lie(moments.path(), |m| {
        m.commitments.last = manifest::read(honest.path()).unwrap().commitments.last;
        m.commitments.last.loss_n += 1;
    });
    assert!(!problems_of(&spec, &bytes, &data, moments.path()).is_empty());

    // A whole chain from another start (the other seed's run, claimed for this spec).
    let spec_hash = manifest::read(honest.path()).unwrap().spec_sha256;
    lie(elsewhere.path(), |m| m.spec_sha256 = spec_hash.clone());
    let p = problems_of(&spec, &bytes, &data, elsewhere.path());
    assert!(
        p.iter()
            .any(|p| p.contains("first committed state is not the spec's initialisation")),
        "{p:?}"
    );

    // Fewer steps than the spec's: a one-epoch run claimed for the two-epoch spec.
    let (short, short_bytes) = job_spec("digits-mlp", |v| {
        v["training"]["epochs"] = 1.into();
    });
    let short_dir = tempfile::tempdir().unwrap();
    train(
        &short,
        &short_bytes,
        &split(&short),
        &opts(short_dir.path()),
    )
    .unwrap();
    lie(short_dir.path(), |m| m.spec_sha256 = spec_hash.clone());
    let p = problems_of(&spec, &bytes, &data, short_dir.path());
    assert!(p.iter().any(|p| p.contains("the spec makes")), "{p:?}");
}

/// The rule every verifier follows for a disputed segment: an honest segment re-runs to its
/// committed end; a cheat's reaches another state; a misquoted dispute is upheld for the
/// worker; a result whose start state is gone is a fraud (all-zero vote).
#[test]
fn a_disputed_segments_verdict_is_the_same_for_every_honest_verifier() {
    use tensorgrid_train::dispute::{segment_verdict, DisputedDevice, SegmentVerdict};
    let (spec, bytes) = job_spec("digits-mlp", |v| {
        v["training"]["epochs"] = 4.into();
        v["evaluation"]["threshold"] = 0.5.into();
    });
    let honest = split(&spec);
    let verdict = |dir: &std::path::Path, seg: usize, start: &str, end: &str| {
        let m = manifest::read(dir).unwrap();
        let cpu = DisputedDevice::Cpu;
        segment_verdict(&spec, &honest, dir, &m, seg, start, end, cpu, &Device::Cpu).unwrap()
    };

    let dir = tempfile::tempdir().unwrap();
    let out = train(&spec, &bytes, &honest, &opts(dir.path())).unwrap();
    let h = out.manifest.commitments.state_hashes.clone();
    let last = h.len() - 2;
    for seg in [0, 1, last] {
        assert_eq!(
            verdict(dir.path(), seg, &h[seg], &h[seg + 1]),
            SegmentVerdict::Reached(h[seg + 1].clone()),
            "segment {seg}"
        );
    }
    let end = [7u8; 32];
    let misquoted = verdict(dir.path(), 1, &h[1], &h[3]);
    assert_eq!(misquoted, SegmentVerdict::Misquoted);
    assert_eq!(misquoted.vote(&end), end, "upheld for the worker");
    assert_eq!(
        verdict(dir.path(), h.len(), &h[0], &h[1]),
        SegmentVerdict::Misquoted,
        "no such segment"
    );
    // The start state withheld: the segment cannot be re-run, whoever asks.
    let start_file = out.manifest.commitments.start_file(1).unwrap();
    std::fs::remove_file(dir.path().join(start_file)).unwrap();
    let gone = verdict(dir.path(), 1, &h[1], &h[2]);
    assert!(matches!(gone, SegmentVerdict::Broken(_)), "{gone:?}");
    assert_eq!(gone.vote(&end), [0; 32]);

    // A worker registered with a CUDA card whose manifest says CPU: nobody drawn for it can
    // judge the result by the manifest's word, so it counts against the worker.
    let m = manifest::read(dir.path()).unwrap();
    let lied = segment_verdict(
        &spec,
        &honest,
        dir.path(),
        &m,
        0,
        &h[0],
        &h[1],
        DisputedDevice::Cuda,
        &Device::Cpu,
    )
    .unwrap();
    assert!(matches!(lied, SegmentVerdict::Broken(_)), "{lied:?}");

    // The cheat trained on the evaluation rows: its segments reach other states.
    let cheat_dir = tempfile::tempdir().unwrap();
    let cheat = train(
        &spec,
        &bytes,
        &fitted_to_eval(&honest),
        &opts(cheat_dir.path()),
    )
    .unwrap();
    let c = cheat.manifest.commitments.state_hashes.clone();
    match verdict(cheat_dir.path(), 1, &c[1], &c[2]) {
        SegmentVerdict::Reached(reached) => assert_ne!(reached, c[2]),
        other => panic!("{other:?}"),
    }
}

/// A diverged run's records (losses that are not finite, written as `null`) read back to the
/// bytes they were hashed as: the last state of an honest diverged run still ties to them.
#[test]
fn records_that_are_not_finite_read_back_to_the_same_bytes() {
    use tensorgrid_train::trainer::MetricsRecord;
    let records = vec![
        MetricsRecord {
            step: 10,
            epoch: Some(1),
            train_loss: f64::NAN,
            eval_loss: f64::INFINITY,
            eval_accuracy: Some(f64::NAN),
        },
        MetricsRecord {
            step: 20,
            epoch: None,
            train_loss: 0.5,
            eval_loss: 0.25,
            eval_accuracy: None,
        },
    ];
    for r in &records {
        let line = serde_json::to_string(r).unwrap();
        let back: MetricsRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), line);
    }
    assert_eq!(
        serde_json::to_vec(&records).unwrap(),
        serde_json::to_vec(
            &serde_json::from_slice::<Vec<MetricsRecord>>(&serde_json::to_vec(&records).unwrap())
                .unwrap()
        )
        .unwrap()
    );
}
