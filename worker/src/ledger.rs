//! Every lamport this worker gained or lost in the market, read from the chain's events:
//! payments, abandon penalties, slashes for missed deadlines and lost disputes, what a wrong
//! dispute's bond paid it, and its fees and forfeits as a verifier. Kept in `ledger.jsonl` (one entry per line) with a cursor, so a payment or a
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
    /// A dispute whose verifiers found the result did not re-run: the fraud slash.
    FraudSlash,
    /// A dispute that was wrong: what was left of the poster's bond, into the earnings.
    DisputeCompensation,
    /// A verifier seat that voted with the majority: its fee, into the earnings.
    VerifierFee,
    /// A verifier seat that did not reveal or voted against the majority: its forfeit.
    VerifierForfeit,
}

impl Kind {
    /// What moved, as a person reads it, with the amount already formatted.
    pub fn describe(self, amount: &str) -> String {
        match self {
            Kind::Paid => format!("paid {amount}"),
            Kind::AbandonPenalty => format!("gave the job back: {amount} of stake"),
            Kind::DeadlineSlash => format!("missed the deadline: {amount} slashed"),
            Kind::DisputeSlash => format!("lost a dispute: {amount} slashed"),
            Kind::FraudSlash => format!("verifiers found a fraud: {amount} slashed"),
            Kind::DisputeCompensation => format!("a wrong dispute's bond: {amount}"),
            Kind::VerifierFee => format!("verified a dispute: {amount} fee"),
            Kind::VerifierForfeit => format!("failed a verifier seat: {amount} forfeited"),
        }
    }

    /// Stake lost, as opposed to a payment.
    pub fn is_loss(self) -> bool {
        matches!(
            self,
            Kind::AbandonPenalty
                | Kind::DeadlineSlash
                | Kind::DisputeSlash
                | Kind::FraudSlash
                | Kind::VerifierForfeit
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
    let mut out: Vec<Entry> = events
        .iter()
        .filter_map(|e| match e {
            Event::JobPaid(p) if p.worker == *worker => Some(entry(Kind::Paid, &p.job, p.payout)),
            Event::DisputeClosed(d) if d.worker == *worker && d.to_worker > 0 => {
                Some(entry(Kind::DisputeCompensation, &d.job, d.to_worker))
            }
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
                RefundReason::FraudFound => entry(Kind::FraudSlash, &r.job, r.slashed),
            }),
            _ => None,
        })
        .collect();
    // As a verifier: the seat's fee or forfeit.
    for e in events {
        if let Event::DisputeTallied(t) = e {
            for ((seat, fee), forfeit) in t.seats.iter().zip(t.seat_fees).zip(t.seat_forfeits) {
                if seat == worker && fee > 0 {
                    out.push(entry(Kind::VerifierFee, &t.job, fee));
                }
                if seat == worker && forfeit > 0 {
                    out.push(entry(Kind::VerifierForfeit, &t.job, forfeit));
                }
            }
        }
    }
    out
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

/// Stake top-ups from the operator's wallet (`topups.json`), for the daily cap: each with the
/// market it went to, so a work directory used for a SOL market and a USDC market never adds
/// lamports to base units of the mint.
pub struct Topups<'a> {
    work: &'a WorkDir,
}

const TOPUPS: &str = "topups.json";

/// One top-up as recorded: `[at, amount, market]`, or `[at, lamports]` as written before
/// markets were told apart (counted against every market's cap: never less than spent).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum Topup {
    InMarket(i64, u64, String),
    Unmarked(i64, u64),
}

impl Topup {
    fn at(&self) -> i64 {
        match self {
            Topup::InMarket(at, ..) | Topup::Unmarked(at, _) => *at,
        }
    }
}

impl<'a> Topups<'a> {
    pub fn new(work: &'a WorkDir) -> Self {
        Self { work }
    }

    /// Base units added to the stake in `market` in the 24 h before `now`.
    pub fn last_day(&self, now: i64, market: &Pubkey) -> u64 {
        let market = market.to_string();
        let all: Vec<Topup> = self.work.read_json(TOPUPS);
        all.iter()
            .filter(|t| now.saturating_sub(t.at()) < 86_400)
            .filter_map(|t| match t {
                Topup::InMarket(_, amount, m) if *m == market => Some(*amount),
                Topup::InMarket(..) => None,
                Topup::Unmarked(_, amount) => Some(*amount),
            })
            .fold(0u64, u64::saturating_add)
    }

    pub fn record(
        &self,
        now: i64,
        amount: u64,
        market: &Pubkey,
    ) -> Result<(), crate::state::StateError> {
        let mut all: Vec<Topup> = self.work.read_json(TOPUPS);
        all.retain(|t| now.saturating_sub(t.at()) < 86_400);
        all.push(Topup::InMarket(now, amount, market.to_string()));
        self.work.write_json(TOPUPS, &all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A top-up counts against its own market's cap only; one recorded before markets were
    /// told apart counts against every market's.
    #[test]
    fn top_ups_count_against_their_own_market() {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::open(dir.path()).unwrap();
        let (sol, usdc) = (Pubkey::new_unique(), Pubkey::new_unique());
        std::fs::write(dir.path().join(TOPUPS), b"[[1000, 7]]").unwrap();
        let t = Topups::new(&work);
        t.record(1_000, 25_000_000, &usdc).unwrap();
        t.record(1_001, 1_000_000_000, &sol).unwrap();
        assert_eq!(t.last_day(2_000, &usdc), 25_000_007);
        assert_eq!(t.last_day(2_000, &sol), 1_000_000_007);
        // A day later none of them counts.
        assert_eq!(t.last_day(1_000 + 86_400 + 2, &sol), 0);
    }
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
        let m = Pubkey::new_unique();
        t.record(1_000, 5, &m).unwrap();
        t.record(50_000, 7, &m).unwrap();
        assert_eq!(t.last_day(60_000, &m), 12);
        assert_eq!(
            t.last_day(1_000 + 86_400, &m),
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
