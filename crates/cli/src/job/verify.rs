//! `job verify`: what a poster checks before accepting. Everything is compared with what the
//! chain holds, not with what the worker's files say about themselves:
//! the spec at `spec_uri` hashes to `spec_hash`; the manifest at `result_uri` hashes to
//! `result_hash`; every file hashes to its manifest entry; the manifest names this spec; the
//! model, re-evaluated here on the held-out split, scores what the manifest and the chain
//! report and meets the spec's threshold. `--rerun` trains the spec again on this device and
//! requires the bit-identical result hash.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;
use tensorgrid_artifacts::{fetch, result, sha256_hex};
use tensorgrid_client::{anchor_lang::prelude::Pubkey, events::Event};
use tensorgrid_train::{
    data,
    device::{self, DeviceChoice},
    manifest,
    spec::JobSpec,
    trainer::{self, TrainOptions},
    verify as engine,
};

use super::{post::MAX_SPEC_BYTES, JobRef};
use crate::{
    chain_args::{ChainArgs, Ctx},
    describe::metric,
    output::{fields, OutputFormat, Report},
    plot,
    store_args::StoreArgs,
};

/// A result is weights plus a small log; a cap so a hostile result URI cannot fill the disk.
const MAX_RESULT_BYTES: u64 = 4 << 30;

#[derive(Args)]
#[command(
    after_help = "Examples:\n  tensorgrid job verify 3 --out results/3\n  tensorgrid job verify 3 --spot-check 3  # re-run 3 committed segments of the training\n  tensorgrid job verify 3 --rerun        # also re-train here (the same device class)"
)]
pub struct VerifyArgs {
    #[command(flatten)]
    threads: crate::chain_args::Threads,
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// The job: its address, or a job id (yours, or --poster's).
    job: JobRef,
    /// The poster, when the job is given by id (default: the keypair's wallet).
    #[arg(long, value_parser = crate::chain_args::address)]
    poster: Option<Pubkey>,
    /// Where to download the result (default: tensorgrid-results/<job address>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also re-train the spec here (on --device, which must be the device class the result
    /// was trained on) and require the same result hash.
    #[arg(long)]
    rerun: bool,
    /// Device for re-evaluation, spot-checks and --rerun: cpu (default), auto, cuda or metal.
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    #[command(flatten)]
    spot: crate::spot_check::SpotCheckArgs,
    /// How long a spot-check waits for the worker to publish the states it asks for (the
    /// worker keeps them and publishes each on request).
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    wait_states: u64,
    /// Also measure the model on your own held-out data (the spec's dataset format), which
    /// the worker never saw; it must meet the spec's threshold too.
    #[arg(long, value_name = "FILE")]
    eval_data: Option<PathBuf>,
}

/// What the chain says about the job's result.
struct Committed {
    /// The job's poster, and whether its worker still holds the job (and so its states):
    /// submitted or disputed, not yet settled.
    poster: Option<Pubkey>,
    open: bool,
    spec_uri: String,
    spec_hash: [u8; 32],
    result_uri: String,
    result_hash: [u8; 32],
    reported_metric: u64,
}

/// The posted spec's file name in the result directory.
pub const POSTED_SPEC_FILE: &str = "posted-spec.json";

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct Verified {
    pub job: String,
    pub passed: bool,
    pub checks: Vec<Check>,
    pub result_hash: String,
    pub reported_metric: f64,
    pub measured_metric: Option<f64>,
    pub threshold: Option<f64>,
    pub result_dir: String,
    /// The spec as posted (the bytes whose sha256 is on chain), kept beside the result so
    /// `tensorgrid verify --spec FILE --result DIR` checks it again offline.
    pub spec_file: Option<String>,
    pub curve_png: Option<String>,
    /// A language model's text from held-out text, drawn here from the checked weights.
    pub sample: Option<tensorgrid_train::sample::Sample>,
    /// Segments of the training re-run (`--spot-check`, `--segments`); `null` when none was
    /// asked for.
    pub spot_check: Option<tensorgrid_train::commit::SpotCheck>,
    /// The model measured on `--eval-data`; `null` without it.
    pub private_eval: Option<tensorgrid_train::verify::PrivateEval>,
}

impl Report for Verified {
    fn display(&self) -> String {
        let mut s = format!(
            "job {}: {}\n",
            self.job,
            if self.passed { "PASSED" } else { "FAILED" }
        );
        for c in &self.checks {
            s.push_str(&format!(
                "  [{}] {:<16} {}\n",
                if c.ok { "ok" } else { "!!" },
                c.name,
                // Details quote the worker's files and URIs: escaped, they cannot repaint
                // the screen.
                crate::describe::clean(&c.detail)
            ));
        }
        let mut rows = vec![("reported metric", self.reported_metric.to_string())];
        if let Some(m) = self.measured_metric {
            rows.push(("measured metric", m.to_string()));
        }
        if let Some(t) = self.threshold {
            rows.push(("threshold", t.to_string()));
        }
        rows.push(("result", self.result_dir.clone()));
        if let Some(p) = &self.spec_file {
            rows.push(("posted spec", p.clone()));
        }
        if let Some(p) = &self.curve_png {
            rows.push(("training curve", p.clone()));
        }
        s.push_str(&fields(&rows));
        if let Some(sample) = &self.sample {
            s.push_str(&crate::describe::sample(sample));
        }
        s
    }
}

struct Checks(Vec<Check>);

impl Checks {
    fn add(&mut self, name: &'static str, ok: bool, detail: impl Into<String>) -> bool {
        self.0.push(Check {
            name,
            ok,
            detail: detail.into(),
        });
        ok
    }
}

pub async fn run(a: VerifyArgs, out: OutputFormat) -> Result<ExitCode> {
    a.threads.apply();
    let ctx = Ctx::new(&a.chain, out, true)?;
    let address = a.job.address(&ctx, a.poster).await?;
    let c = committed(&ctx, &address).await?;
    let policy = a.store.read_policy();
    let dir = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("tensorgrid-results").join(address.to_string()));
    let mut checks = Checks(Vec::new());
    let mut report = Verified {
        job: address.to_string(),
        passed: false,
        checks: Vec::new(),
        result_hash: hex::encode(c.result_hash),
        reported_metric: metric(c.reported_metric),
        measured_metric: None,
        threshold: None,
        result_dir: dir.display().to_string(),
        spec_file: None,
        curve_png: None,
        sample: None,
        spot_check: None,
        private_eval: None,
    };

    // The spec, as committed.
    let spec_bytes = fetch(&c.spec_uri, MAX_SPEC_BYTES, &policy)
        .await
        .with_context(|| format!("fetching the spec {}", c.spec_uri))?;
    let spec_sha = sha256_hex(&spec_bytes);
    if !checks.add(
        "spec hash",
        spec_sha == hex::encode(c.spec_hash),
        format!("{} → sha256 {spec_sha}", c.spec_uri),
    ) {
        return finish(&ctx, report, checks);
    }
    let spec =
        JobSpec::from_json(&spec_bytes).with_context(|| format!("the spec at {}", c.spec_uri))?;
    report.threshold = Some(spec.evaluation.threshold);

    // The result, as committed.
    ctx.out.note(format!("downloading {} ...", c.result_uri));
    let committed_hash = hex::encode(c.result_hash);
    let got = result::download(
        &c.result_uri,
        &dir,
        MAX_RESULT_BYTES,
        Some(&committed_hash),
        &policy,
    )
    .await
    .with_context(|| format!("downloading the result {}", c.result_uri))?;
    if !checks.add(
        "result hash",
        got.complete,
        format!(
            "manifest sha256 {} (on chain {committed_hash})",
            got.manifest_sha256
        ),
    ) {
        return finish(&ctx, report, checks);
    }
    // The posted spec beside the result: the job's own spec for a later offline check (the
    // file given to `job post` had its dataset replaced by the uploaded copy).
    // A result that lists a file of that name would have it overwritten: the name is ours.
    let reserved = got
        .files
        .iter()
        .any(|f| f.file_name().is_some_and(|n| n == POSTED_SPEC_FILE));
    if !checks.add(
        "file names",
        !reserved,
        if reserved {
            format!("the result lists a file named {POSTED_SPEC_FILE}, a name job verify keeps for the posted spec")
        } else {
            "none clashes with the posted spec's copy".to_string()
        },
    ) {
        return finish(&ctx, report, checks);
    }
    let spec_file = dir.join(POSTED_SPEC_FILE);
    std::fs::write(&spec_file, &spec_bytes)
        .with_context(|| format!("writing {}", spec_file.display()))?;
    report.spec_file = Some(spec_file.display().to_string());
    checks.add(
        "files",
        got.mismatched.is_empty(),
        if got.mismatched.is_empty() {
            "every file matches its manifest entry".to_string()
        } else {
            format!(
                "not as listed in the manifest: {}",
                got.mismatched.join(", ")
            )
        },
    );

    // The dataset, then the model re-evaluated off the async runtime.
    ctx.out
        .note(format!("fetching the dataset {} ...", spec.dataset.uri));
    let data_bytes = fetch(&spec.dataset.uri, spec.limits.max_dataset_bytes, &policy)
        .await
        .with_context(|| format!("fetching the dataset {}", spec.dataset.uri))?;
    let data_sha = sha256_hex(&data_bytes);
    if !checks.add(
        "dataset hash",
        data_sha == spec.dataset.sha256.to_ascii_lowercase(),
        format!("sha256 {data_sha}"),
    ) {
        return finish(&ctx, report, checks);
    }
    // A fine-tune's initial weights, a given tokenizer: fetched and checked as the dataset,
    // and kept with the spec every check below uses (the model is built from them).
    let mut spec = spec;
    if !spec.files().is_empty() {
        ctx.out
            .note("fetching the job's tokenizer / initial weights ...");
        let fetched = tensorgrid_worker::files::fetch_files(&mut spec, &policy).await;
        if !checks.add(
            "job files",
            fetched.is_ok(),
            match &fetched {
                Ok(()) => format!("{} fetched, as the spec names them", spec.files().len()),
                Err(e) => e.to_string(),
            },
        ) {
            return finish(&ctx, report, checks);
        }
    }
    let (spec2, bytes2, dir2, choice) = (spec.clone(), spec_bytes.to_vec(), dir.clone(), a.device);
    // A sharded dataset's shards, fetched as the segments re-run reach them.
    let store =
        tensorgrid_worker::shards::Shards::new(tokio::runtime::Handle::current(), policy.clone());
    let (engine_report, mut split) = tokio::task::spawn_blocking(move || -> Result<_> {
        let split = data::split_with(&spec2, &data_bytes, Some(std::sync::Arc::new(store)))?;
        let device = device::select(choice)?;
        let r = engine::verify(&spec2, &bytes2, &split, &dir2, &device)?;
        Ok((r, split))
    })
    .await??;
    checks.add(
        "manifest",
        engine_report.problems.is_empty(),
        if engine_report.problems.is_empty() {
            "names this spec; claimed metric reproduced".to_string()
        } else {
            engine_report.problems.join("; ")
        },
    );
    report.measured_metric = Some(engine_report.measured);
    let reported = metric(c.reported_metric);
    checks.add(
        "reported metric",
        (engine_report.measured - reported).abs() <= 1e-6 + 1e-4 * reported.abs(),
        format!("on chain {reported}, measured {}", engine_report.measured),
    );
    checks.add(
        "threshold",
        engine_report.meets_threshold,
        format!(
            "{:?} {} vs threshold {}",
            spec.evaluation.metric, engine_report.measured, spec.evaluation.threshold
        ),
    );

    // The training curve.
    let png = dir.join("curve.png");
    let metrics_file = got
        .files
        .get(1)
        .cloned()
        .unwrap_or_else(|| dir.join(manifest::METRICS_FILE));
    match plot::read_metrics(&metrics_file).and_then(|m| {
        let short = address.to_string();
        let title = format!("job {}… — {}", &short[..8], plot::Curve::title_for(&spec));
        let curve = plot::Curve {
            sample: engine_report.sample.as_ref(),
            ..plot::Curve::for_spec(&spec, &title)
        };
        plot::curve(&m, &curve, &png)
    }) {
        Ok(()) => report.curve_png = Some(png.display().to_string()),
        Err(e) => ctx.out.note(format!("no training curve: {e:#}")),
    }
    report.sample = engine_report.sample;

    if let Some(file) = &a.eval_data {
        let (spec2, file, dir2, choice) = (spec.clone(), file.clone(), dir.clone(), a.device);
        let (private, back) = tokio::task::spawn_blocking(move || -> Result<_> {
            let device = device::select(choice)?;
            let p = crate::private_eval::measure(&spec2, &split, &file, &dir2, &device);
            Ok((p, split))
        })
        .await??;
        split = back;
        let private = private?;
        checks.add(
            "your own data",
            private.meets_threshold,
            crate::private_eval::describe(&spec, &private),
        );
        report.private_eval = Some(private);
    }

    let split = if a.spot.wanted() {
        let (spot, split) = spot_check(&ctx, &a, &c, &address, &dir, &spec, split, &policy).await?;
        checks.add(
            "spot check",
            spot.mismatches == 0,
            crate::spot_check::describe(&spot),
        );
        report.spot_check = Some(spot);
        split
    } else {
        split
    };

    if a.rerun {
        // Bits agree only within a device class: a result trained elsewhere is not judged
        // by a re-run here (it would fail an honest worker), and the check says why.
        let here = device::select(a.device)?;
        let (kind, isa) = tensorgrid_train::checkpoint::platform(&here);
        let trained = manifest::read(&dir).ok().map(|m| (m.device, m.cpu_isa));
        if trained.as_ref() != Some(&(kind.clone(), isa.clone())) {
            let (d, i) = trained.unwrap_or_default();
            checks.add(
                "rerun",
                false,
                format!(
                    "not re-trained: the result was trained on {d} {i}, this is {kind} {isa}; a re-run agrees to the bit only on the same device class (--device)"
                ),
            );
            return finish(&ctx, report, checks);
        }
        ctx.out.note(format!(
            "re-training the spec on this {kind} (this takes as long as the job did) ..."
        ));
        let rerun_dir = dir.join("rerun");
        let (spec3, bytes3) = (spec.clone(), spec_bytes.to_vec());
        let outcome = tokio::task::spawn_blocking(move || {
            let opts = TrainOptions {
                resume: false,
                progress: Some(crate::progress::bar()),
                ..TrainOptions::new(here, rerun_dir)
            };
            trainer::train(&spec3, &bytes3, &split, &opts)
        })
        .await??;
        let again = hex::encode(outcome.result_hash);
        checks.add(
            "rerun",
            again == hex::encode(c.result_hash),
            format!("re-trained result hash {again}"),
        );
    }
    finish(&ctx, report, checks)
}

/// Fetches the committed states the chosen segments start from (asking the worker for those
/// not published yet), re-runs the segments off the async runtime and hands the data back.
#[allow(clippy::too_many_arguments)]
async fn spot_check(
    ctx: &Ctx,
    a: &VerifyArgs,
    c: &Committed,
    job: &Pubkey,
    dir: &std::path::Path,
    spec: &JobSpec,
    split: data::Split,
    policy: &tensorgrid_artifacts::ReadPolicy,
) -> Result<(tensorgrid_train::commit::SpotCheck, data::Split)> {
    let m = manifest::read(dir)?;
    let here = device::select(a.device)?;
    let total = crate::spot_check::ready(spec, &split, &m, &here)?;
    let segments = a.spot.choose(&m.commitments)?;
    ctx.out.note(format!(
        "re-running {} of {} training segments (fetching their starting states) ...",
        segments.len(),
        m.commitments.segments()
    ));
    let missing = fetch_states(ctx, a, c, job, dir, &m, &segments, policy).await?;
    let (spec, dir, wait_states, settled) =
        (spec.clone(), dir.to_path_buf(), a.wait_states, !c.open);
    tokio::task::spawn_blocking(move || -> Result<_> {
        let mut spot = tensorgrid_train::commit::spot_check(
            &spec,
            &split,
            &dir,
            &m.commitments,
            total,
            &segments,
            &here,
        )?;
        // A state the worker did not serve in time, said as such: asked again later, or
        // disputed (verifiers count a state still withheld by the middle of their commit
        // window as fraud).
        for check in spot.checked.iter_mut().filter(|s| missing.contains(&s.segment)) {
            check.problem = Some(if settled {
                "its start state is not published, and the job is settled: its worker no longer keeps it".to_string()
            } else { format!(
                "the worker has not served its start state in {wait} s: check again with --segments {seg} --wait-states 600, or dispute it (tensorgrid job dispute JOB --segment {seg}), and verifiers count a state still withheld by the middle of their commit window as fraud",
                wait = wait_states,
                seg = check.segment
            )});
        }
        Ok((spot, split))
    })
    .await?
}

/// How often a spot-check asks again for states still missing (a worker that was down, or a
/// request it missed).
const REQUEST_AGAIN: std::time::Duration = std::time::Duration::from_secs(30);

/// Downloads the start states of `segments` into `dir`; those the worker has not published
/// yet are asked for (memo transactions, while it holds the job, again every 30 s) and waited
/// on up to `--wait-states`. Returns the segments whose state never came.
#[allow(clippy::too_many_arguments)]
async fn fetch_states(
    ctx: &Ctx,
    a: &VerifyArgs,
    c: &Committed,
    job: &Pubkey,
    dir: &std::path::Path,
    m: &manifest::Manifest,
    segments: &[usize],
    policy: &tensorgrid_artifacts::ReadPolicy,
) -> Result<Vec<usize>> {
    use tensorgrid_artifacts::ArtifactError;
    let cap = tensorgrid_train::commit::max_state_bytes(m.weights.bytes, m.metrics.bytes);
    // A state not there (a store says 404, or 403 to a reader that may not list), a store
    // that does not answer, or a file larger than a state can be: not served (yet).
    let fetch_missing = |wanted: Vec<usize>| async move {
        let mut missing = Vec::new();
        for i in wanted {
            let name = m
                .commitments
                .start_file(i)
                .context("a segment past the run")?;
            if dir.join(&name).exists() {
                continue;
            }
            match result::download_beside(&c.result_uri, &name, cap, dir, policy).await {
                Ok(()) => {}
                Err(
                    ArtifactError::NotFound { .. }
                    | ArtifactError::Denied { .. }
                    | ArtifactError::TooLarge { .. },
                ) => missing.push(i),
                Err(e) if e.is_transient() => missing.push(i),
                Err(e) => {
                    return Err(anyhow::Error::from(e)
                        .context(format!("downloading the committed state {name}")))
                }
            }
        }
        Ok::<_, anyhow::Error>(missing)
    };
    let mut missing = fetch_missing(segments.to_vec()).await?;
    if missing.is_empty() {
        return Ok(missing);
    }
    let list = |s: &[usize]| s.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    let Some(poster) = c.poster.filter(|_| c.open) else {
        ctx.out.note(format!(
            "the job is settled: its worker no longer serves the states of segments {}",
            list(&missing)
        ));
        return Ok(missing);
    };
    let signer = ctx.keypair()?;
    ctx.out.note(format!(
        "asking the worker for the start states of segments {} (a memo transaction); waiting up to {} s ...",
        list(&missing),
        a.wait_states
    ));
    let until = std::time::Instant::now() + std::time::Duration::from_secs(a.wait_states);
    let mut asked_at: Option<std::time::Instant> = None;
    while !missing.is_empty() && std::time::Instant::now() < until {
        if asked_at.is_none_or(|t| t.elapsed() >= REQUEST_AGAIN) {
            for chunk in missing.chunks(tensorgrid_client::state_requests::MAX_PER_REQUEST) {
                let ixs =
                    tensorgrid_client::state_requests::request(signer.pubkey(), poster, job, chunk);
                ctx.chain
                    .send(&ixs, &[signer])
                    .await
                    .context("asking the worker for committed states")?;
            }
            asked_at = Some(std::time::Instant::now());
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        missing = fetch_missing(missing).await?;
    }
    Ok(missing)
}

fn finish(ctx: &Ctx, mut report: Verified, checks: Checks) -> Result<ExitCode> {
    report.passed = checks.0.iter().all(|c| c.ok);
    report.checks = checks.0;
    ctx.out.emit(&report)?;
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The spec and result the chain holds for the job: from its account while it exists, from
/// its history once it is closed.
async fn committed(ctx: &Ctx, address: &Pubkey) -> Result<Committed> {
    if let Some(job) = ctx.chain.job(address).await? {
        if job.result_hash == [0; 32] {
            bail!(
                "job {address} has no result yet (it is {})",
                crate::describe::state_name(job.state)
            );
        }
        return Ok(Committed {
            poster: Some(job.poster),
            open: matches!(
                job.state,
                tensorgrid_client::state::JobState::Submitted
                    | tensorgrid_client::state::JobState::Disputed
            ),
            spec_uri: job.spec_uri,
            spec_hash: job.spec_hash,
            result_uri: job.result_uri,
            result_hash: job.result_hash,
            reported_metric: job.reported_metric,
        });
    }
    let (mut spec, mut result) = (None, None);
    for tx in ctx
        .chain
        .history(address, super::show::HISTORY_LIMIT)
        .await?
    {
        for e in tx.events {
            match e {
                Event::JobPosted(p) => spec = Some((p.spec_uri, p.spec_hash)),
                Event::JobSubmitted(s) => {
                    result = Some((s.result_uri, s.result_hash, s.reported_metric))
                }
                _ => {}
            }
        }
    }
    match (spec, result) {
        (Some((spec_uri, spec_hash)), Some((result_uri, result_hash, reported_metric))) => {
            Ok(Committed {
                poster: None,
                open: false,
                spec_uri,
                spec_hash,
                result_uri,
                result_hash,
                reported_metric,
            })
        }
        (None, _) => bail!("job {address} does not exist on {}", ctx.chain.active_url()),
        (Some(_), None) => bail!("job {address} closed without a result"),
    }
}
