//! A training process killed mid-run (SIGKILL, no chance to save) and restarted from its last
//! periodic checkpoint ends with weights bit-identical to an uninterrupted run.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shipped digits MLP spec with an absolute dataset URI, written into `dir`.
fn spec_in(dir: &Path) -> PathBuf {
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join("jobs/digits-mlp.json")).unwrap())
            .unwrap();
    let data = repo()
        .join("data/digits.safetensors")
        .canonicalize()
        .unwrap();
    v["dataset"]["uri"] = format!("file://{}", data.display()).into();
    v["training"]["epochs"] = 60.into();
    v["training"]["checkpoint_every"] = 25.into();
    let path = dir.join("spec.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    path
}

fn tensorgrid(spec: &Path, out: &Path) -> Command {
    tensorgrid_threads(spec, out, 1)
}

fn tensorgrid_threads(spec: &Path, out: &Path, threads: usize) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tensorgrid"));
    c.args([
        "train",
        "--threads",
        &threads.to_string(),
        "--device",
        "cpu",
        "--spec",
    ])
    .arg(spec)
    .arg("--out")
    .arg(out)
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    c
}

#[test]
fn killed_run_resumes_to_identical_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = spec_in(tmp.path());
    let whole = tmp.path().join("whole");
    let out = tensorgrid(&spec, &whole).output().unwrap();
    assert!(out.status.success(), "uninterrupted run failed");

    let killed = tmp.path().join("killed");
    let mut child = tensorgrid(&spec, &killed).spawn().unwrap();
    let meta = killed.join("checkpoint/state.safetensors");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !meta.exists() {
        assert!(Instant::now() < deadline, "no checkpoint appeared");
        assert!(
            child.try_wait().unwrap().is_none(),
            "run ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !killed.join("manifest.json").exists(),
        "killed before finishing"
    );

    let out = tensorgrid(&spec, &killed).output().unwrap();
    assert!(out.status.success(), "resumed run failed");
    for file in ["weights.safetensors", "metrics.jsonl", "manifest.json"] {
        assert_eq!(
            std::fs::read(whole.join(file)).unwrap(),
            std::fs::read(killed.join(file)).unwrap(),
            "{file} differs after kill + resume"
        );
    }
}

#[test]
fn interrupted_run_saves_a_checkpoint_and_resumes_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = spec_in(tmp.path());
    let whole = tmp.path().join("whole");
    assert!(tensorgrid(&spec, &whole).output().unwrap().status.success());

    let out_dir = tmp.path().join("interrupted");
    let mut child = tensorgrid(&spec, &out_dir)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let meta = out_dir.join("checkpoint/state.safetensors");
    while !meta.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "run ended before the interrupt"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an interrupted run reports failure");
    assert!(stderr.contains("interrupted at step"), "{stderr}");
    assert!(meta.exists(), "checkpoint kept for the resume");

    assert!(tensorgrid(&spec, &out_dir)
        .output()
        .unwrap()
        .status
        .success());
    for file in ["metrics.jsonl", "manifest.json"] {
        assert_eq!(
            std::fs::read_to_string(whole.join(file)).unwrap(),
            std::fs::read_to_string(out_dir.join(file)).unwrap(),
            "{file}"
        );
    }
}

/// Trains `spec` on one thread and on two; the result hashes must be equal.
fn assert_same_on_one_and_two_threads(dir: &Path, spec: &Path) {
    let (one, two) = (dir.join("one"), dir.join("two"));
    for (out, threads) in [(&one, 1), (&two, 2)] {
        assert!(tensorgrid_threads(spec, out, threads)
            .output()
            .unwrap()
            .status
            .success());
    }
    assert_eq!(
        std::fs::read(one.join("manifest.json")).unwrap(),
        std::fs::read(two.join("manifest.json")).unwrap(),
        "result hash depends on the thread count"
    );
}

#[test]
fn thread_count_does_not_change_the_result() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = spec_in(tmp.path());
    assert_same_on_one_and_two_threads(tmp.path(), &spec);
}

/// The ResNet on CIFAR-format images with its augmentation (random crops and flips drawn per
/// step) gives the same bits on one thread and two.
#[test]
fn the_resnet_with_augmentation_is_the_same_on_one_and_two_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join("jobs/shapes-resnet.json")).unwrap())
            .unwrap();
    let data = repo().join("data/shapes-cifar.bin").canonicalize().unwrap();
    v["dataset"]["uri"] = format!("file://{}", data.display()).into();
    v["training"]["epochs"] = 1.into();
    let spec = tmp.path().join("resnet.json");
    std::fs::write(&spec, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    assert_same_on_one_and_two_threads(tmp.path(), &spec);
}
