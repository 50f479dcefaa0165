//! How the program's accounts and events read: names, SOL amounts, metric values. Shared by
//! `job show`, `job watch`, `job list` and the market and worker commands.

use serde::Serialize;
use serde_json::{json, Value};
use tensorgrid_client::{
    event_types::{RefundReason, Settlement},
    events::Event,
    state::{DeviceKind, DeviceRequirement, Hardware, JobRequirements, JobState, Tally},
};

use crate::units::{money, sol};

pub fn state_name(s: JobState) -> &'static str {
    match s {
        JobState::Open => "open",
        JobState::Claimed => "claimed",
        JobState::Submitted => "submitted",
        JobState::Disputed => "disputed",
    }
}

pub fn device_name(d: DeviceKind) -> &'static str {
    match d {
        DeviceKind::Cpu => "cpu",
        DeviceKind::Cuda => "cuda",
        DeviceKind::Metal => "metal",
    }
}

pub fn requirement_name(r: &JobRequirements) -> String {
    let device = match r.device {
        DeviceRequirement::Any => "any device",
        DeviceRequirement::Gpu => "a GPU",
        DeviceRequirement::Cuda => "a CUDA GPU",
        DeviceRequirement::Metal => "a Metal GPU",
    };
    if r.min_vram_mib > 0 {
        format!("{device} with ≥ {} MiB", r.min_vram_mib)
    } else {
        device.into()
    }
}

pub fn hardware(h: &Hardware) -> String {
    let label = clean(&h.label);
    if h.vram_mib > 0 {
        format!("{} {label} ({} MiB)", device_name(h.device), h.vram_mib)
    } else {
        format!("{} {label}", device_name(h.device))
    }
}

/// A string from the chain (a URI, a hardware label: anyone's bytes) made safe to print on a
/// terminal: control, bidirectional-override and zero-width characters are shown escaped, so
/// a value cannot fake other lines or reorder what a person reads.
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            let sneaky = c.is_control()
                || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}');
            if sneaky {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A language model's sample for a person: the text is the model's, from a stranger's
/// dataset, so escaped like any detail, its line breaks shown as ↵ to keep it on one line.
pub fn sample(s: &tensorgrid_train::sample::Sample) -> String {
    let shown = |t: &str| clean(&t.replace('\n', " ↵ "));
    format!(
        "sample (temperature {}):\n  {} ▸ {}\n",
        s.temperature,
        shown(&s.prompt),
        shown(&s.continuation)
    )
}

/// The job an event is about (`None` for market and worker events).
pub fn event_job(e: &Event) -> Option<tensorgrid_client::anchor_lang::prelude::Pubkey> {
    Some(match e {
        Event::JobPosted(x) => x.job,
        Event::JobCancelled(x) => x.job,
        Event::JobClaimed(x) => x.job,
        Event::JobAbandoned(x) => x.job,
        Event::JobSubmitted(x) => x.job,
        Event::JobPaid(x) => x.job,
        Event::JobDisputed(x) => x.job,
        Event::JobRefunded(x) => x.job,
        Event::JobReclaimed(x) => x.job,
        Event::DisputeDrawn(x) => x.job,
        Event::DisputeVoted(x) => x.job,
        Event::DisputeTallied(x) => x.job,
        Event::DisputeClosed(x) => x.job,
        _ => return None,
    })
}

/// A metric reported on chain in millionths.
pub fn metric(millionths: u64) -> f64 {
    millionths as f64 / 1e6
}

/// One event of a job's history.
#[derive(Debug, Clone, Serialize)]
pub struct EventLine {
    pub event: &'static str,
    pub summary: String,
    pub details: Value,
}

/// The job's terminal outcome, if the event ends it.
pub fn terminal(e: &Event) -> Option<&'static str> {
    match e {
        Event::JobPaid(_) => Some("paid"),
        Event::JobRefunded(_) => Some("refunded"),
        Event::JobCancelled(_) => Some("cancelled"),
        _ => None,
    }
}

/// Name, one line for a person, and the fields for JSON.
pub fn event(e: &Event) -> EventLine {
    let (event, summary, details) = match e {
        Event::JobPosted(p) => (
            "posted",
            format!(
                "job {} posted with a reward of {}",
                p.job_id,
                money(p.reward)
            ),
            json!({"job_id": p.job_id, "poster": p.poster.to_string(), "reward": p.reward, "spec_uri": p.spec_uri, "spec_hash": hex::encode(p.spec_hash), "max_duration_s": p.max_duration_s}),
        ),
        Event::JobClaimed(c) => (
            "claimed",
            format!(
                "claimed by worker {} ({} of stake at risk)",
                c.worker,
                money(c.collateral)
            ),
            json!({"worker": c.worker.to_string(), "collateral": c.collateral, "deadline": c.deadline}),
        ),
        Event::JobAbandoned(a) => (
            "abandoned",
            format!(
                "abandoned by worker {} (penalty {})",
                a.worker,
                money(a.penalty)
            ),
            json!({"worker": a.worker.to_string(), "penalty": a.penalty}),
        ),
        Event::JobSubmitted(s) => (
            "submitted",
            format!(
                "result {} submitted, metric {}",
                clean(&s.result_uri),
                metric(s.reported_metric)
            ),
            json!({"worker": s.worker.to_string(), "result_hash": hex::encode(s.result_hash), "result_uri": s.result_uri, "reported_metric": s.reported_metric, "challenge_ends_at": s.challenge_ends_at}),
        ),
        Event::JobDisputed(d) => (
            "disputed",
            format!(
                "segment {} disputed by the poster with a bond of {}",
                d.segment,
                money(d.bond)
            ),
            json!({"worker": d.worker.to_string(), "dispute": d.dispute.to_string(), "segment": d.segment, "end_hash": hex::encode(d.end_hash), "bond": d.bond, "disputed_slot": d.disputed_slot}),
        ),
        Event::DisputeDrawn(d) => (
            "verifiers drawn",
            if d.dispute_ends_at > 0 {
                "too few verifiers in the pool: the market authority rules".to_string()
            } else {
                format!(
                    "verifiers {}, {}, {} drawn from slot {}",
                    d.seats[0], d.seats[1], d.seats[2], d.drawn_slot
                )
            },
            json!({"seats": d.seats.map(|s| s.to_string()), "drawn_slot": d.drawn_slot, "commit_ends_at": d.commit_ends_at, "reveal_ends_at": d.reveal_ends_at, "dispute_ends_at": d.dispute_ends_at}),
        ),
        Event::DisputeVoted(v) => (
            "verifier voted",
            match v.revealed {
                Some(h) => format!("verifier {} revealed {}", v.worker, hex::encode(h)),
                None => format!("verifier {} committed", v.worker),
            },
            json!({"worker": v.worker.to_string(), "revealed": v.revealed.map(hex::encode)}),
        ),
        Event::DisputeTallied(t) => (
            "votes tallied",
            format!(
                "{}; verifiers paid {}, forfeited {}",
                match t.tally {
                    Tally::Upheld => "the segment re-ran to the worker's committed state",
                    Tally::Fraud => "the segment did not re-run to the worker's committed state",
                    Tally::Undecided => "no majority: the market authority rules",
                },
                money(t.seat_fees.iter().sum()),
                money(t.seat_forfeits.iter().sum())
            ),
            json!({"tally": format!("{:?}", t.tally).to_lowercase(), "seats": t.seats.map(|s| s.to_string()), "seat_fees": t.seat_fees, "seat_forfeits": t.seat_forfeits, "dispute_ends_at": t.dispute_ends_at}),
        ),
        Event::DisputeClosed(c) => (
            "dispute closed",
            format!(
                "bond of {}: {} to the worker, {} back to the poster",
                money(c.bond),
                money(c.to_worker),
                money(c.to_poster)
            ),
            json!({"bond": c.bond, "to_worker": c.to_worker, "to_poster": c.to_poster, "rent_refunded": c.rent_refunded}),
        ),
        Event::VerifierPoolChanged(p) => (
            if p.joined {
                "verifier joined"
            } else {
                "verifier left"
            },
            format!(
                "worker {} {} the verifier pool ({} members)",
                p.worker,
                if p.joined { "joined" } else { "left" },
                p.count
            ),
            json!({"worker": p.worker.to_string(), "weight": p.weight, "evicted": p.evicted.map(|e| e.to_string()), "count": p.count}),
        ),
        Event::JobPaid(p) => (
            "paid",
            format!(
                "paid ({}): {} to the worker, fee {}",
                match p.settlement {
                    Settlement::AcceptedByPoster => "accepted by the poster",
                    Settlement::FinalizedAfterWindow => "finalized after the challenge window",
                    Settlement::ResolvedForWorker => "dispute resolved for the worker",
                    Settlement::UpheldByVerifiers => "the verifiers upheld the result",
                    Settlement::DisputeExpired => "dispute not settled in time: the result stands",
                },
                money(p.payout),
                money(p.fee)
            ),
            json!({"worker": p.worker.to_string(), "payout": p.payout, "fee": p.fee, "compensation": p.compensation, "rent_refunded": p.rent_refunded}),
        ),
        Event::JobRefunded(r) => (
            "refunded",
            format!(
                "refunded ({}): {} back, {} slashed from the worker",
                match r.reason {
                    RefundReason::DisputeLost => "dispute resolved for the poster",
                    RefundReason::FraudFound => "the verifiers found the result a fraud",
                },
                money(r.reward_refunded),
                money(r.slashed)
            ),
            json!({"worker": r.worker.to_string(), "reward_refunded": r.reward_refunded, "slashed": r.slashed, "compensation": r.compensation, "rent_refunded": r.rent_refunded}),
        ),
        Event::JobReclaimed(r) => (
            "reclaimed",
            format!(
                "deadline missed by worker {}: reopened, {} to the poster, {} bounty",
                r.worker,
                money(r.to_poster),
                money(r.bounty)
            ),
            json!({"worker": r.worker.to_string(), "cranker": r.cranker.to_string(), "to_poster": r.to_poster, "bounty": r.bounty}),
        ),
        Event::JobCancelled(c) => (
            "cancelled",
            format!(
                "cancelled by the poster, {} refunded",
                money(c.reward_refunded)
            ),
            json!({"reward_refunded": c.reward_refunded, "compensation": c.compensation, "rent_refunded": c.rent_refunded}),
        ),
        Event::WorkerRegistered(r) => (
            "worker registered",
            format!(
                "worker {} registered with {} of stake ({})",
                r.worker,
                money(r.stake),
                hardware(&r.hardware)
            ),
            json!({"worker": r.worker.to_string(), "operator": r.operator.to_string(), "stake": r.stake, "rent_paid": r.rent_paid}),
        ),
        Event::WorkerUpdated(u) => (
            "worker updated",
            format!(
                "stake {}, earnings {} ({} of earnings withdrawn)",
                money(u.stake),
                money(u.earnings),
                money(u.earnings_withdrawn)
            ),
            json!({"worker": u.worker.to_string(), "stake_added": u.stake_added, "stake_withdrawn": u.stake_withdrawn, "earnings_withdrawn": u.earnings_withdrawn, "stake": u.stake, "earnings": u.earnings}),
        ),
        Event::WorkerDeregistered(d) => (
            "worker deregistered",
            format!(
                "{} of stake and {} of earnings returned",
                money(d.stake_returned),
                money(d.earnings_returned)
            ),
            json!({"worker": d.worker.to_string(), "stake_returned": d.stake_returned, "earnings_returned": d.earnings_returned}),
        ),
        Event::PosterInitialized(p) => (
            "poster account created",
            format!(
                "poster {} can post in market {} ({} SOL of rent, kept)",
                p.poster,
                p.market,
                sol(p.rent_paid)
            ),
            json!({"market": p.market.to_string(), "poster": p.poster.to_string(), "account": p.account.to_string(), "rent_paid": p.rent_paid}),
        ),
        Event::MarketInitialized(m) => (
            "market created",
            format!("market {} (id {}) created", m.market, m.market_id),
            json!({"market": m.market.to_string(), "authority": m.authority.to_string(), "market_id": m.market_id}),
        ),
        Event::MarketUpdated(m) => (
            "market updated",
            format!(
                "market {} updated{}",
                m.market,
                if m.paused { " (paused)" } else { "" }
            ),
            json!({"market": m.market.to_string(), "paused": m.paused}),
        ),
        Event::MarketFeesWithdrawn(f) => (
            "fees withdrawn",
            format!("{} of fees to {}", money(f.amount), f.recipient),
            json!({"market": f.market.to_string(), "recipient": f.recipient.to_string(), "amount": f.amount, "fees_unclaimed": f.fees_unclaimed}),
        ),
    };
    EventLine {
        event,
        summary,
        details,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_strings_cannot_fake_lines() {
        assert_eq!(clean("s3://b/x.json"), "s3://b/x.json");
        let evil = "s3://b/x\nstate     paid\u{1b}[2J\u{202e}gnp.";
        let shown = clean(evil);
        assert!(
            !shown.contains('\n') && !shown.contains('\u{1b}') && !shown.contains('\u{202e}'),
            "{shown}"
        );
        assert!(shown.contains("\\u{a}"), "{shown}");
    }
}
