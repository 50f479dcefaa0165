//! Before a job command signs anything: is the job in a state where the command can work, and
//! is the signer the party that may send it? Said in words a poster understands, with what the
//! job is waiting for and what to do instead, rather than the error of whichever account
//! check the program happens to fail first (accepting an open job fails on its empty worker
//! account: "owned by a different program").

use anyhow::{bail, Result};
use tensorgrid_client::{
    anchor_lang::prelude::Pubkey,
    state::{Job, JobState},
};

use crate::units::when;

/// A command that changes a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Accept,
    Dispute,
    Cancel,
    Finalize,
    Reclaim,
    Resolve,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Accept => "accept",
            Action::Dispute => "dispute",
            Action::Cancel => "cancel",
            Action::Finalize => "finalize",
            Action::Reclaim => "reclaim",
            Action::Resolve => "resolve",
        }
    }
}

/// Where the job is, in words: "open: waiting for a worker", …
pub fn situation(job: &Job, now: i64) -> String {
    match job.state {
        JobState::Open => "open: waiting for a worker to claim it".into(),
        JobState::Claimed if job.deadline < now => format!(
            "claimed, and its worker missed the deadline ({})",
            when(job.deadline, now)
        ),
        JobState::Claimed => format!(
            "claimed: worker {} has until {} to submit",
            job.worker,
            when(job.deadline, now)
        ),
        JobState::Submitted if job.challenge_ends_at < now => format!(
            "submitted, and the challenge window has closed ({})",
            when(job.challenge_ends_at, now)
        ),
        JobState::Submitted => format!(
            "submitted: the poster may dispute until {}",
            when(job.challenge_ends_at, now)
        ),
        JobState::Disputed if job.dispute_ends_at == 0 => {
            "disputed: verifiers drawn by stake re-run the disputed segment".into()
        }
        JobState::Disputed if job.dispute_ends_at < now => format!(
            "disputed, the verifiers could not settle it, and the authority did not rule in time ({})",
            when(job.dispute_ends_at, now)
        ),
        JobState::Disputed => format!(
            "disputed, and the verifiers could not settle it: the market authority may rule until {}",
            when(job.dispute_ends_at, now)
        ),
    }
}

/// What to do with a job in this situation instead.
fn instead(job: &Job, address: &Pubkey, now: i64) -> String {
    match job.state {
        JobState::Open => format!(
            "follow it with `tensorgrid job watch {address}`, or take the reward back with `tensorgrid job cancel {address}`"
        ),
        JobState::Claimed if job.deadline < now => {
            format!("anyone may reopen it with `tensorgrid job reclaim {address}`")
        }
        JobState::Claimed => format!("follow it with `tensorgrid job watch {address}`"),
        JobState::Submitted if job.challenge_ends_at < now => {
            format!("anyone may pay the worker with `tensorgrid job finalize {address}`")
        }
        JobState::Submitted => format!(
            "check the result with `tensorgrid job verify {address}`, then `job accept` or `job dispute`"
        ),
        JobState::Disputed if job.dispute_ends_at == 0 => format!(
            "follow the verifiers with `tensorgrid job show {address}`; anyone may draw them or settle their vote once due with `tensorgrid job finalize {address}`"
        ),
        JobState::Disputed if job.dispute_ends_at < now => format!(
            "anyone may apply the default (the result stands, the bond goes back) with `tensorgrid job finalize {address}`"
        ),
        JobState::Disputed => format!(
            "the market authority rules with `tensorgrid job resolve {address} --for worker|poster`"
        ),
    }
}

/// Whether `action`, signed by `signer`, can work on `job` at chain time `now`; `authority` is
/// the job's market's authority. The program enforces all of it anyway: this says why first.
pub fn check(
    action: Action,
    address: &Pubkey,
    job: &Job,
    signer: &Pubkey,
    authority: &Pubkey,
    now: i64,
) -> Result<()> {
    let state_ok = match action {
        Action::Accept => job.state == JobState::Submitted,
        Action::Dispute => job.state == JobState::Submitted && now <= job.challenge_ends_at,
        Action::Cancel => job.state == JobState::Open,
        Action::Finalize => match job.state {
            JobState::Submitted => now > job.challenge_ends_at,
            // The verifiers' phases are cranked too; whether one is due is the dispute's to say.
            JobState::Disputed => job.dispute_ends_at == 0 || now > job.dispute_ends_at,
            _ => false,
        },
        Action::Reclaim => job.state == JobState::Claimed && now > job.deadline,
        Action::Resolve => {
            job.state == JobState::Disputed && job.dispute_ends_at > 0 && now <= job.dispute_ends_at
        }
    };
    if !state_ok {
        bail!(
            "cannot {} job {address}: it is {}; {}",
            action.name(),
            situation(job, now),
            instead(job, address, now)
        );
    }
    let (who, must_be) = match action {
        Action::Accept | Action::Dispute | Action::Cancel => ("the poster", job.poster),
        Action::Resolve => ("the market authority", *authority),
        Action::Finalize | Action::Reclaim => return Ok(()),
    };
    if *signer != must_be {
        bail!(
            "cannot {} job {address}: only {who} ({must_be}) may, and the keypair is {signer} (pass -k with that wallet)",
            action.name()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tensorgrid_client::state::{DeviceRequirement, JobRequirements, JobTerms};

    use super::*;

    /// A job in `state` whose deadline and windows all end at 100.
    fn job(state: JobState) -> Job {
        Job {
            market: Pubkey::new_unique(),
            poster: Pubkey::new_unique(),
            worker: Pubkey::default(),
            state,
            job_id: 0,
            reward: 1,
            collateral: 0,
            compensation: 0,
            spec_hash: [0; 32],
            result_hash: [0; 32],
            reported_metric: 0,
            requirements: JobRequirements {
                device: DeviceRequirement::Any,
                min_vram_mib: 0,
            },
            terms: JobTerms {
                fee_bps: 0,
                collateral_bps: 0,
                slash_bps: 0,
                abandon_penalty_bps: 0,
                crank_bounty_bps: 0,
                challenge_window_s: 0,
                resolve_window_s: 0,
                dispute: tensorgrid_client::defaults::dispute_terms(),
                mint: Pubkey::default(),
            },
            max_duration_s: 0,
            created_at: 0,
            claimed_at: 0,
            deadline: 100,
            submitted_at: 0,
            challenge_ends_at: 100,
            dispute_ends_at: 100,
            reopened_at: 0,
            reopens: 0,
            barred_workers: [Pubkey::default(); 8],
            bump: 0,
            spec_uri: String::new(),
            result_uri: String::new(),
        }
    }

    /// Every action in every state, early and late, by the right and a wrong signer: allowed
    /// exactly where the program allows it; refusals name the state and say what to do.
    #[test]
    fn each_action_is_allowed_exactly_where_the_program_allows_it() {
        use Action::*;
        use JobState::*;
        let authority = Pubkey::new_unique();
        let stranger = Pubkey::new_unique();
        let allowed = |a: Action, s: JobState, late: bool| -> bool {
            matches!(
                (a, s, late),
                (Accept, Submitted, _)
                    | (Dispute, Submitted, false)
                    | (Cancel, Open, _)
                    | (Finalize, Submitted, true)
                    | (Finalize, Disputed, true)
                    | (Reclaim, Claimed, true)
                    | (Resolve, Disputed, false)
            )
        };
        for a in [Accept, Dispute, Cancel, Finalize, Reclaim, Resolve] {
            for s in [Open, Claimed, Submitted, Disputed] {
                for late in [false, true] {
                    let j = job(s);
                    let now = if late { 101 } else { 100 };
                    let address = Pubkey::new_unique();
                    let right = match a {
                        Resolve => authority,
                        Finalize | Reclaim => stranger,
                        _ => j.poster,
                    };
                    let r = check(a, &address, &j, &right, &authority, now);
                    assert_eq!(
                        r.is_ok(),
                        allowed(a, s, late),
                        "{a:?} {s:?} late={late}: {r:?}"
                    );
                    if let Err(e) = r {
                        let m = e.to_string();
                        assert!(
                            m.contains(&address.to_string()) && m.contains("tensorgrid job"),
                            "{m}"
                        );
                    }
                    if allowed(a, s, late) && !matches!(a, Finalize | Reclaim) {
                        let e = check(a, &address, &j, &stranger, &authority, now).unwrap_err();
                        assert!(e.to_string().contains("only"), "{e}");
                    }
                }
            }
        }
    }
}
