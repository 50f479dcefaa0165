//! Compute-unit budgets, checked on the SBF bytecode (`target/deploy/tensorgrid.so`).
//! A budget, not a timing: CU counts are deterministic for a given `.so`.
//!
//! Without a `.so` the test says so and passes, unless `TENSORGRID_REQUIRE_SBF=1`
//! (set by scripts/test.sh and CI, which build the `.so` first).

use tensorgrid_harness::{
    compute::{measure_in, INSTRUCTIONS},
    env::{so_path, Runtime},
    tokens::UNITS,
    TestEnv,
};

/// No instruction may approach the 200k default; the target is 30k each.
const INSTRUCTION_BUDGET: u64 = 30_000;

/// The instructions over the target, each with its own budget (BENCHMARKS.md, "Disputes by
/// re-execution" and "Token markets", says why): the dispute path, once per dispute;
/// `worker_register`, whose bump search the long flow samples over 300 operator keys (1 in 256
/// needs 8 more tries); and, in token markets, the instructions that add a token program CPI
/// to what they already did (`job_post`'s reward, `market_init`'s vault).
const OVER_TARGET: [(&str, u64); 8] = [
    ("worker_register", 43_000),
    ("job_dispute", 48_000),
    ("dispute_draw", 45_000),
    ("dispute_settle", 60_000),
    ("job_resolve", 32_000),
    ("job_dispute_timeout", 31_000),
    ("job_post", 36_000),
    ("market_init", 32_000),
];
const LIFECYCLE_BUDGET: u64 = 100_000;

#[test]
fn every_instruction_stays_within_its_compute_budget() {
    let so = so_path();
    if !so.exists() {
        assert!(
            std::env::var("TENSORGRID_REQUIRE_SBF").as_deref() != Ok("1"),
            "{} is missing: run scripts/build-sbf.sh",
            so.display()
        );
        eprintln!(
            "skipping CU budgets: {} not built (scripts/build-sbf.sh)",
            so.display()
        );
        return;
    }
    for unit in UNITS {
        let report = measure_in(|| TestEnv::with_runtime(Runtime::Sbf(so.clone())), unit);
        for name in INSTRUCTIONS {
            let (happy, worst) = (report.happy[name], report.worst[name]);
            assert!(happy > 0 && worst > 0, "{unit:?} {name}: no CU measured");
            let budget = OVER_TARGET
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(INSTRUCTION_BUDGET, |(_, b)| *b);
            assert!(
                worst <= budget,
                "{unit:?} {name}: {worst} CU > budget {budget}"
            );
        }
        if let Some(worst) = report.worst.get("poster_withdraw") {
            assert!(
                *worst <= INSTRUCTION_BUDGET,
                "{unit:?} poster_withdraw: {worst} CU"
            );
        }
        assert!(
            report.lifecycle_worst <= LIFECYCLE_BUDGET,
            "{unit:?} lifecycle worst case {} CU > {LIFECYCLE_BUDGET}",
            report.lifecycle_worst
        );
    }
}
