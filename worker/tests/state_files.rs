//! The worker's state files are its own, but a crash, a full disk or an operator's editor can
//! leave anything in them: whatever bytes each holds, reading it at start returns (a default
//! or what parses), never a crash that would stop the daemon from starting.

use proptest::prelude::*;
use tensorgrid_worker::{crashguard, ledger, refusals::Refusals, WorkDir};

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_in_any_state_file_are_read_without_a_crash(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        json_ish in "[\\[\\]{}\":,0-9a-z ]{0,120}",
    ) {
        let dir = tempfile::tempdir().unwrap();
        let w = WorkDir::open(dir.path()).unwrap();
        let job = "9m6zQpj6vEz6AuXqbgdybFwN4h2GDGtFmEZ9YUY8Y1aG";
        std::fs::create_dir_all(w.job_dir(job)).unwrap();
        for content in [&bytes[..], json_ish.as_bytes()] {
            for name in ["rejected.json", "ledger.jsonl", "ledger-cursor.json", "topups.json", "checking"] {
                std::fs::write(dir.path().join(name), content).unwrap();
            }
            for name in ["progress.json", "crashes", "training"] {
                std::fs::write(w.job_dir(job).join(name), content).unwrap();
            }
            let _ = w.stage(job);
            let _ = w.in_progress();
            let _ = Refusals::new(&w).all();
            let _ = ledger::Ledger::new(&w).entries();
            let _ = ledger::Topups::new(&w).last_day(1_000_000, &Default::default());
            let _ = crashguard::crashed_check(&w);
            let _ = crashguard::begin_training(&w, job);
            crashguard::end_training(&w, job);
        }
    }
}
