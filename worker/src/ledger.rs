//! Every lamport this worker gained or lost in the market, read from the chain's events:
//! payments, abandon penalties, slashes for missed deadlines and lost disputes, disputes that
//! timed out. Kept in `ledger.jsonl` (one entry per line) with a cursor, so a payment or a
//! slash that landed while the worker was down is found at the next start, and every one is
//! logged, counted in the status and shown by `tensorgrid-worker status`.

use serde::{Deserialize, Serialize};
use tensorgrid_client::{
    anchor_lang::prelude::Pubkey,
    event_types::RefundReason,
    events::Event,
    rpc::{ChainClient, ChainError},
};

use crate::WorkDir;

const FILE: &str = "ledger.jsonl";
const CURSOR: &str = "ledger-cursor.json";
/// Transactions of the worker account looked at per sync (the most recent ones).
const SCAN: usize = 200;
/// Entries kept on disk.
const MAX_ENTRIES: usize = 2_000;

/// What moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A job paid: the payout into the worker's earnings.
    Paid,
    /// A job given back: the abandon penalty out of the stake.
    AbandonPenalty,
    /// A missed deadline: the slash out of the stake (the poster's share and the bounty).
    DeadlineSlash,
    /// A dispute the authority resolved for the poster: the slash out of the stake.
    DisputeSlash,
    /// A dispute that timed out: the poster refunded, nothing taken from the stake, nothing
    /// paid.
    DisputeExpired,
}

impl Kind {
    /// Stake lost, as opposed to a payment or nothing.
    pub fn is_loss(self) -> bool {
        matches!(
            self,
            Kind::AbandonPenalty | Kind::DeadlineSlash | Kind::DisputeSlash
        )
    }
}

/// One movement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub kind: Kind,
    pub job: String,
    pub lamports: u64,
    pub signature: String,
    pub slot: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cursor {
    /// The newest transaction already read.
    signature: Option<String>,
}

/// The entries `events` (of one transaction) make for the worker account `worker`.
pub fn entries_of(events: &[Event], worker: &Pubkey, signature: &str, slot: u64) -> Vec<Entry> {
    let entry = |kind, job: &Pubkey, lamports| Entry {
        kind,
        job: job.to_string(),
        lamports,
        signature: signature.into(),
        slot,
    };
    events
        .iter()
        .filter_map(|e| match e {
            Event::JobPaid(p) if p.worker == *worker => Some(entry(Kind::Paid, &p.job, p.payout)),
            Event::JobAbandoned(a) if a.worker == *worker => {
                Some(entry(Kind::AbandonPenalty, &a.job, a.penalty))
            }
            Event::JobReclaimed(r) if r.worker == *worker => Some(entry(
                Kind::DeadlineSlash,
                &r.job,
                r.to_poster.saturating_add(r.bounty),
            )),
            Event::JobRefunded(r) if r.worker == *worker => Some(match r.reason {
                RefundReason::DisputeLost => entry(Kind::DisputeSlash, &r.job, r.slashed),
                RefundReason::DisputeExpired => entry(Kind::DisputeExpired, &r.job, 0),
            }),
            _ => None,
        })
        .collect()
}

/// The ledger in a work dir.
pub struct Ledger<'a> {
    work: &'a WorkDir,
}

impl<'a> Ledger<'a> {
    pub fn new(work: &'a WorkDir) -> Self {
        Self { work }
    }

    /// Every entry kept, oldest first (unreadable lines are skipped).
    pub fn entries(&self) -> Vec<Entry> {
        std::fs::read_to_string(self.work.root().join(FILE))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn append(&self, new: &[Entry], cursor: &str) -> Result<(), crate::state::StateError> {
        let mut all = self.entries();
        all.extend_from_slice(new);
        let skip = all.len().saturating_sub(MAX_ENTRIES);
        let text: String = all[skip..]
            .iter()
            .map(|e| serde_json::to_string(e).expect("entry serialises") + "\n")
            .collect();
        crate::state::write_atomic(&self.work.root().join(FILE), text.as_bytes())?;
        self.work.write_json(
            CURSOR,
            &Cursor {
                signature: Some(cursor.into()),
            },
        )
    }

    /// Reads the worker account's transactions newer than the cursor and records what they
    /// moved; returns the new entries, oldest first.
    pub async fn sync(
        &self,
        chain: &ChainClient,
        worker: &Pubkey,
    ) -> Result<Vec<Entry>, ChainError> {
        let cursor: Cursor = self.work.read_json(CURSOR);
        let sigs = chain.signatures_for(worker, SCAN).await?;
        let start = cursor
            .signature
            .as_deref()
            .and_then(|c| sigs.iter().position(|s| s.to_string() == c))
            .map_or(0, |i| i + 1);
        let Some(newest) = sigs.last().map(|s| s.to_string()) else {
            return Ok(Vec::new());
        };
        if start >= sigs.len() {
            return Ok(Vec::new());
        }
        // Transactions already recorded are skipped (a cursor a node did not know sends the
        // scan back to the start of the window: nothing is counted twice).
        let known: std::collections::HashSet<String> =
            self.entries().into_iter().map(|e| e.signature).collect();
        let mut new = Vec::new();
        for sig in &sigs[start..] {
            let s = sig.to_string();
            if known.contains(&s) {
                continue;
            }
            let outcome = chain.outcome(sig).await?;
            new.extend(entries_of(&outcome.events, worker, &s, outcome.slot));
        }
        self.append(&new, &newest)
            .map_err(|e| ChainError::Rpc(format!("ledger not saved: {e}")))?;
        Ok(new)
    }
}

/// Stake top-ups from the operator's wallet (`topups.json`), for the daily cap.
pub struct Topups<'a> {
    work: &'a WorkDir,
}

const TOPUPS: &str = "topups.json";

impl<'a> Topups<'a> {
    pub fn new(work: &'a WorkDir) -> Self {
        Self { work }
    }

    /// Lamports added in the 24 h before `now`.
    pub fn last_day(&self, now: i64) -> u64 {
        let all: Vec<(i64, u64)> = self.work.read_json(TOPUPS);
        all.iter()
            .filter(|(at, _)| now.saturating_sub(*at) < 86_400)
            .map(|(_, l)| *l)
            .fold(0u64, u64::saturating_add)
    }

    pub fn record(&self, now: i64, lamports: u64) -> Result<(), crate::state::StateError> {
        let mut all: Vec<(i64, u64)> = self.work.read_json(TOPUPS);
        all.retain(|(at, _)| now.saturating_sub(*at) < 86_400);
        all.push((now, lamports));
        self.work.write_json(TOPUPS, &all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorgrid_client::event_types::*;

    #[test]
    fn only_this_workers_movements_count() {
        let (me, other, job) = (
            Pubkey::new_unique(),
            Pubkey::new_unique(),
            Pubkey::new_unique(),
        );
        let events = vec![
            Event::JobAbandoned(JobAbandoned {
                job,
                job_id: 1,
                worker: me,
                penalty: 5,
            }),
            Event::JobAbandoned(JobAbandoned {
                job,
                job_id: 1,
                worker: other,
                penalty: 7,
            }),
            Event::JobReclaimed(JobReclaimed {
                job,
                job_id: 1,
                worker: me,
                cranker: other,
                to_poster: 9,
                bounty: 1,
            }),
        ];
        let got = entries_of(&events, &me, "sig", 3);
        assert_eq!(
            got.iter().map(|e| (e.kind, e.lamports)).collect::<Vec<_>>(),
            vec![(Kind::AbandonPenalty, 5), (Kind::DeadlineSlash, 10)]
        );
        assert!(got.iter().all(|e| e.kind.is_loss()));
    }

    #[test]
    fn top_ups_count_for_a_day() {
        let dir = tempfile::tempdir().unwrap();
        let w = WorkDir::open(dir.path()).unwrap();
        let t = Topups::new(&w);
        t.record(1_000, 5).unwrap();
        t.record(50_000, 7).unwrap();
        assert_eq!(t.last_day(60_000), 12);
        assert_eq!(
            t.last_day(1_000 + 86_400),
            7,
            "a day later the first no longer counts"
        );
    }

    #[test]
    fn entries_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let w = WorkDir::open(dir.path()).unwrap();
        let l = Ledger::new(&w);
        let e = Entry {
            kind: Kind::Paid,
            job: "J".into(),
            lamports: 42,
            signature: "S".into(),
            slot: 1,
        };
        l.append(std::slice::from_ref(&e), "S").unwrap();
        assert_eq!(
            Ledger::new(&WorkDir::open(dir.path()).unwrap()).entries(),
            vec![e]
        );
    }
}
