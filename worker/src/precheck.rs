//! Deciding, before claiming, whether to take a job. Specs come from strangers: everything is
//! checked that can be without downloading the dataset, and a refusal names its reason (it
//! is logged and remembered, so the job is not looked at again).

use serde::Serialize;
use sha2::{Digest, Sha256};
use tensorgrid_client::state::{DeviceRequirement, Hardware, Job};
use tensorgrid_train::spec::JobSpec;

use crate::{Config, Money};

/// What the chain says a job offers.
#[derive(Debug, Clone)]
pub struct Offer {
    pub spec_hash: [u8; 32],
    /// Lamports the worker receives when paid (the reward less the market's fee).
    pub payout: u64,
    /// Seconds from claim to submission.
    pub max_duration_s: i64,
    pub device: DeviceRequirement,
    pub min_vram_mib: u32,
}

impl Offer {
    pub fn from_job(job: &Job) -> Self {
        Self {
            spec_hash: job.spec_hash,
            payout: job.terms.payout(job.reward).map_or(0, |p| p.to_worker),
            max_duration_s: job.max_duration_s,
            device: job.requirements.device,
            min_vram_mib: job.requirements.min_vram_mib,
        }
    }
}

/// A job worth claiming: the validated spec and how long it should take here.
#[derive(Debug, Clone)]
pub struct Plan {
    pub spec: JobSpec,
    pub estimated_secs: f64,
}

/// Why a job is not taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{0}")]
pub struct Rejection(pub String);

/// Whether a refusal stands for good: the spec is fixed by its hash, so a wrong hash, an
/// invalid spec or a dataset scheme this worker never reads stay so. Others (pay, time, the
/// device, a size over the configured cap) can change with the settings.
pub fn is_permanent(reason: &str) -> bool {
    reason.starts_with("spec hash mismatch")
        || reason.starts_with("invalid spec")
        || reason.starts_with("dataset URI")
}

/// Headroom on the estimate: training time varies, and publishing and submitting need time
/// after it.
const TIME_FACTOR: f64 = 1.5;
const AFTER_TRAINING_S: f64 = 120.0;

/// Checks `spec_bytes` (fetched from the job's `spec_uri`) against the offer, this worker's
/// hardware and settings; `estimate_secs` says how long the spec would train here.
pub fn precheck(
    offer: &Offer,
    spec_bytes: &[u8],
    hardware: &Hardware,
    config: &Config,
    money: &Money,
    estimate_secs: impl FnOnce(&JobSpec) -> f64,
) -> Result<Plan, Rejection> {
    let reject = |why: String| Err(Rejection(why));
    let actual: [u8; 32] = Sha256::digest(spec_bytes).into();
    if actual != offer.spec_hash {
        return reject(format!(
            "spec hash mismatch: the spec served hashes to {}, the job commits to {}",
            hex::encode(actual),
            hex::encode(offer.spec_hash)
        ));
    }
    let spec = match JobSpec::from_json(spec_bytes) {
        Ok(s) => s,
        Err(e) => {
            return reject(format!(
                "invalid spec: {}",
                e.to_string().replace('\n', " ")
            ))
        }
    };
    let uris = std::iter::once(("dataset", &spec.dataset.uri))
        .chain(spec.files().into_iter().map(|(role, f)| (role, &f.uri)));
    for (role, uri) in uris {
        let scheme_ok = uri.starts_with("s3://")
            || uri.starts_with("https://")
            || (config.allow_http && uri.starts_with("http://"));
        if !scheme_ok {
            return reject(format!(
                "{role} URI {uri:?}: only s3:// and https://{} are fetched, never local files",
                if config.allow_http {
                    " (and http://)"
                } else {
                    ""
                }
            ));
        }
    }
    if !offer.device.accepts(hardware.device) {
        return reject(format!(
            "needs {:?}, this worker has {:?}",
            offer.device, hardware.device
        ));
    }
    if hardware.vram_mib < offer.min_vram_mib {
        return reject(format!(
            "needs {} MiB of device memory, this worker has {}",
            offer.min_vram_mib, hardware.vram_mib
        ));
    }
    let estimated_secs = estimate_secs(&spec);
    if !estimated_secs.is_finite() || estimated_secs < 0.0 {
        return reject("no training-time estimate for this spec".into());
    }
    let needed = estimated_secs * TIME_FACTOR + AFTER_TRAINING_S;
    if needed > offer.max_duration_s as f64 {
        return reject(format!(
            "cannot finish in time: about {needed:.0} s needed, the job allows {} s",
            offer.max_duration_s
        ));
    }
    if estimated_secs * TIME_FACTOR > spec.limits.max_wall_time_s as f64 {
        return reject(format!(
            "the spec's own limit of {} s is shorter than about {:.0} s of training here",
            spec.limits.max_wall_time_s,
            estimated_secs * TIME_FACTOR
        ));
    }
    // Paid per estimated hour, at least a minute counted; compared in integers (the estimate
    // rounded up to whole seconds), so a job paying exactly the floor is taken.
    let secs = u128::from(estimated_secs.max(60.0).ceil() as u64);
    let pays = u128::from(offer.payout) * 3_600;
    if pays < u128::from(money.min_reward_per_hour) * secs {
        let per_hour = u64::try_from(pays / secs).unwrap_or(u64::MAX);
        return reject(format!(
            "pays {} per estimated hour, below the configured {}",
            money.unit.show(per_hour),
            money.unit.show(money.min_reward_per_hour)
        ));
    }
    Ok(Plan {
        spec,
        estimated_secs,
    })
}

#[cfg(test)]
mod tests {
    use tensorgrid_client::state::DeviceKind;

    use super::*;

    fn spec_bytes(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../jobs/digits-mlp.json");
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        v["dataset"]["uri"] = "s3://bucket/datasets/digits".into();
        edit(&mut v);
        serde_json::to_vec(&v).unwrap()
    }

    fn offer(bytes: &[u8]) -> Offer {
        Offer {
            spec_hash: Sha256::digest(bytes).into(),
            payout: 500_000_000,
            max_duration_s: 3_600,
            device: DeviceRequirement::Any,
            min_vram_mib: 0,
        }
    }

    fn cpu() -> Hardware {
        tensorgrid_client::defaults::cpu("test")
    }

    /// `precheck` with the default settings and a training estimate of `secs`.
    fn check(
        offer: &Offer,
        spec: &[u8],
        hardware: &Hardware,
        secs: f64,
    ) -> Result<Plan, Rejection> {
        precheck(
            offer,
            spec,
            hardware,
            &config(),
            &Money::sol(&config()),
            |_| secs,
        )
    }

    fn config() -> Config {
        crate::FileConfig::parse("store = \"s3://b/r\"")
            .unwrap()
            .resolve(std::path::Path::new("/h"))
            .unwrap()
    }

    fn reason(r: Result<Plan, Rejection>) -> String {
        r.expect_err("should be rejected").0
    }

    #[test]
    fn a_fitting_job_is_planned() {
        let b = spec_bytes(|_| {});
        let plan = check(&offer(&b), &b, &cpu(), 30.0).unwrap();
        assert_eq!(plan.estimated_secs, 30.0);
    }

    #[test]
    fn hostile_or_unfit_jobs_are_refused_with_their_reason() {
        let b = spec_bytes(|_| {});
        let mut wrong = offer(&b);
        wrong.spec_hash = [1; 32];
        assert!(reason(check(&wrong, &b, &cpu(), 1.0)).contains("spec hash mismatch"));

        for (uri, why) in [
            ("file:///etc/passwd", "never local files"),
            ("file:../data/digits.safetensors", "never local files"),
            ("http://10.0.0.1/d", "only s3:// and https://"),
        ] {
            let b = spec_bytes(|v| v["dataset"]["uri"] = uri.into());
            assert!(
                reason(check(&offer(&b), &b, &cpu(), 1.0)).contains(why),
                "{uri}"
            );
        }

        // A fine-tune's files are held to the same rule.
        let file =
            |uri: &str| serde_json::json!({"uri": uri, "sha256": "ab".repeat(32), "bytes": 10});
        let b = spec_bytes(|v| v["model"]["init"] = file("file:///etc/shadow"));
        let why = reason(check(&offer(&b), &b, &cpu(), 1.0));
        assert!(
            why.contains("model.init URI") && why.contains("never local files"),
            "{why}"
        );
        let b = spec_bytes(|v| v["model"]["init"] = file("http://10.0.0.1/w"));
        let why = reason(check(&offer(&b), &b, &cpu(), 1.0));
        assert!(why.contains("model.init URI"), "{why}");
        let b = spec_bytes(|v| v["model"]["init"] = file("s3://bucket/w.safetensors"));
        assert!(check(&offer(&b), &b, &cpu(), 1.0).is_ok());

        let b = spec_bytes(|v| v["training"]["optimizer"]["lr"] = f64::NAN.into());
        assert!(reason(check(&offer(&b), &b, &cpu(), 1.0)).contains("invalid spec"));
        let b = spec_bytes(|v| v["model"]["hidden"] = serde_json::json!([1_000_000]));
        assert!(reason(check(&offer(&b), &b, &cpu(), 1.0)).contains("invalid spec"));
        let b = spec_bytes(|v| v["training"]["steps"] = 1_000_000_000u64.into());
        assert!(reason(check(&offer(&b), &b, &cpu(), 1.0)).contains("invalid spec"));

        let b = spec_bytes(|_| {});
        let mut gpu = offer(&b);
        gpu.device = DeviceRequirement::Gpu;
        assert!(reason(check(&gpu, &b, &cpu(), 1.0)).contains("needs"));
        let mut vram = offer(&b);
        vram.min_vram_mib = 8_192;
        let card = Hardware {
            device: DeviceKind::Cuda,
            vram_mib: 4_096,
            label: "small".into(),
        };
        assert!(reason(check(&vram, &b, &card, 1.0)).contains("8192 MiB"));

        assert!(reason(check(&offer(&b), &b, &cpu(), 3_000.0)).contains("cannot finish in time"));
        let b2 = spec_bytes(|v| v["limits"]["max_wall_time_s"] = 10.into());
        assert!(reason(check(&offer(&b2), &b2, &cpu(), 100.0)).contains("own limit"));

        let greedy = Money {
            min_reward_per_hour: 10_000_000_000,
            ..Money::sol(&config())
        };
        let why = reason(precheck(&offer(&b), &b, &cpu(), &config(), &greedy, |_| {
            300.0
        }));
        assert!(
            why.contains("per estimated hour, below the configured 10 SOL"),
            "{why}"
        );
    }

    /// In a token market the floor is in the mint's units, and so is the refusal.
    #[test]
    fn the_pay_floor_is_in_the_markets_unit() {
        let b = spec_bytes(|_| {});
        let usdc = crate::Unit {
            currency: tensorgrid_client::Currency::Token {
                mint: Default::default(),
                token_program: tensorgrid_client::currency::TOKEN_PROGRAM_ID,
            },
            decimals: 6,
        };
        let money = |floor| Money {
            unit: usdc,
            min_reward_per_hour: floor,
            ..Money::sol(&config())
        };
        // The offer pays `offer(&b).payout` for 300 s: 12 × that per hour.
        let per_hour = offer(&b).payout * 12;
        assert!(
            precheck(&offer(&b), &b, &cpu(), &config(), &money(per_hour), |_| {
                300.0
            })
            .is_ok()
        );
        let why = reason(precheck(
            &offer(&b),
            &b,
            &cpu(),
            &config(),
            &money(per_hour + 1),
            |_| 300.0,
        ));
        assert!(why.contains("tokens per estimated hour"), "{why}");
    }
}
