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

/// Trains `name` (edited) and re-runs every one of its segments.
fn every_segment_reruns_identically(name: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let (spec, bytes) = job_spec(name, edit);
    let data = split(&spec);
    let dir = tempfile::tempdir().unwrap();
    let out = train(&spec, &bytes, &data, &opts(dir.path())).unwrap();
    let c = &out.manifest.commitments;
    assert!(c.segments() >= 2, "{name}: {c:?}");
    assert!(commit::problems(c, out.manifest.steps).is_empty());
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

#[test]
fn training_on_the_evaluation_rows_passes_a_plain_check_but_not_a_spot_check() {
    let (spec, bytes) = job_spec("digits-mlp", |v| {
        v["training"]["epochs"] = 10.into();
        v["evaluation"]["threshold"] = 0.5.into();
    });
    let honest = split(&spec);
    let Split::Table { eval, classes, .. } = &honest else {
        panic!("a table")
    };
    // The cheat: the model is fitted to the rows it will be judged on.
    let cheat = Split::Table {
        train: eval.clone(),
        eval: eval.clone(),
        classes: *classes,
    };
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
    let (one, two) = (&c.states[1].path, &c.states[2].path);
    std::fs::copy(dir.path().join(two), dir.path().join(one)).unwrap();
    let check = spot_check(&spec, &data, dir.path(), &c, total, &[1], &Device::Cpu).unwrap();
    assert_eq!(check.mismatches, 1);
    let problem = check.checked[0].problem.as_deref().unwrap();
    assert!(problem.contains("not the state committed"), "{problem}");

    // A missing file is a mismatch with its reason, not a crash.
    std::fs::remove_file(dir.path().join(&c.states[3].path)).unwrap();
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
    let mut renamed = c.clone();
    renamed.states[0].path = "weights.safetensors".into();
    assert!(!commit::problems(&renamed, total).is_empty());
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
    let Split::Table {
        train,
        eval,
        classes,
    } = &honest
    else {
        panic!("a table")
    };
    let cheat = Split::Table {
        train: eval.clone(),
        eval: eval.clone(),
        classes: *classes,
    };
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
