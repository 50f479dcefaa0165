//! Disputes, from the worker's two sides.
//!
//! - As the disputed worker: its stake stays locked until the dispute ends, so it cranks the
//!   draw as soon as a later slot has a hash and the settlement as soon as voting is over
//!   ([`advance`], called from the main loop for the job it holds).
//! - As a verifier (`verify_disputes`): it joins the market's verifier pool, and a service of
//!   its own ([`serve`]) draws the verifiers of any dispute of its market still waiting for a
//!   draw (a dispute left undrawn freezes the pool), finds the disputes it is drawn for,
//!   judges each (`judge`), commits, reveals once reveals open, and settles. A party that has
//!   not served its files by the middle of the commit window loses the vote on them. The verdict is kept in the work directory and the
//!   salt is derived from the operator's signature of the dispute's address (ed25519 signs
//!   deterministically), so a restart between the commit and the reveal loses nothing.

use std::{collections::BTreeMap, sync::Arc};

use serde::{Deserialize, Serialize};
use solana_signer::Signer;
use tensorgrid_client::{
    anchor_lang::prelude::Pubkey,
    instructions::{self as ix, SettleKeys},
    rpc::{Backoff, CancellationToken, ChainError, DisputeEntry, Draw},
    state::{vote_commitment, Dispute, DisputePhase, Job, VerifierPool, VoteState},
    tensorgrid::instructions::DisputeVoteArgs,
};

use crate::{
    judge::{judge, JudgeError, Judgement},
    pipeline::Worker,
};

/// The work-directory file holding this worker's verdicts, by dispute.
const VERDICTS: &str = "verdicts.json";

/// A verdict kept between the commit and the reveal.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Kept {
    /// The hash committed to (hex).
    pub vote: String,
    pub why: String,
}

/// What a pass over one dispute did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advanced {
    /// Sent a transaction.
    Sent,
    /// Nothing to do yet.
    Waiting,
}

/// The salt of this operator's vote in `dispute`: secret until revealed, the same after a
/// restart.
fn salt(w: &Worker, dispute: &Pubkey) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut msg = b"tensorgrid verifier salt ".to_vec();
    msg.extend_from_slice(dispute.as_ref());
    let signature = w.operator.sign_message(&msg);
    Sha256::digest(signature.as_ref()).into()
}

fn voting_over(d: &Dispute, now: i64) -> bool {
    d.seats.iter().all(|s| s.vote == VoteState::Revealed) || now > d.reveal_ends_at
}

/// Cranks what anyone may crank on `job`'s dispute `d` (as just read): the draw, then the
/// settlement.
pub async fn advance(
    w: &Worker,
    job_key: Pubkey,
    job: &Job,
    d: &Dispute,
    now: i64,
) -> Result<Advanced, ChainError> {
    let instruction = match d.phase {
        DisputePhase::Drawing => match w.chain.draw(&job_key).await? {
            Draw::Ready(i) => i,
            Draw::TooEarly | Draw::Done => return Ok(Advanced::Waiting),
        },
        DisputePhase::Voting if voting_over(d, now) => {
            ix::dispute_settle(SettleKeys::for_job(job_key, job), d.seats.map(|s| s.worker))
        }
        _ => return Ok(Advanced::Waiting),
    };
    let what = if d.phase == DisputePhase::Drawing {
        "drew the dispute's verifiers"
    } else {
        "settled the dispute's vote"
    };
    let l = w.chain.send(&[instruction], &[w.operator.as_ref()]).await?;
    tracing::info!(job = %job_key, signature = %l.signature, "{what}");
    Ok(Advanced::Sent)
}

/// The verifier service: joins the pool, then serves every seat this worker is drawn for
/// until shutdown. Transient failures are logged and retried; it never stops on one.
pub async fn serve(w: Arc<Worker>, cancel: CancellationToken) {
    let mut backoff = Backoff::standard();
    while !cancel.is_cancelled() {
        match join_pool(&w).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, "joining the verifier pool");
                tokio::select! { _ = cancel.cancelled() => return, _ = backoff.wait() => {} }
            }
        }
    }
    let mut judging_failures: BTreeMap<Pubkey, u32> = BTreeMap::new();
    while !cancel.is_cancelled() {
        match sweep(&w, &mut judging_failures).await {
            Ok(sent) if sent > 0 => backoff.reset(),
            Ok(_) => {
                backoff.reset();
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(w.config.poll_interval) => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "serving as a verifier");
                tokio::select! { _ = cancel.cancelled() => break, _ = backoff.wait() => {} }
            }
        }
    }
}

/// Joins the market's verifier pool, pledging `verifier_pledge_sol` (in a token market: its
/// mint's `verifier_pledge`) of the stake, unless it is in it already. A worker whose entry a heavier joiner took clears its pledge first (it
/// would otherwise stay locked out of its claims) and joins again.
async fn join_pool(w: &Worker) -> Result<(), ChainError> {
    let keys = w.keys();
    let Some(account) = w.chain.worker(&keys.worker).await? else {
        return Err(ChainError::Rpc("this worker is not registered yet".into()));
    };
    if account.pooled_stake > 0 {
        let pool: Option<VerifierPool> = w
            .chain
            .fetch(&tensorgrid_client::pda::verifier_pool(&w.market))
            .await?;
        if pool.is_some_and(|p| p.entries.iter().any(|e| e.worker == keys.worker)) {
            return Ok(());
        }
        let l = w
            .chain
            .send(&[ix::verifier_leave(keys)], &[w.operator.as_ref()])
            .await?;
        tracing::warn!(signature = %l.signature, "this worker's pool entry went to a heavier pledge: its pledge is cleared, joining again");
    }
    let pledge = w.money.verifier_pledge;
    let l = w
        .chain
        .send(&[ix::verifier_join(keys, pledge)], &[w.operator.as_ref()])
        .await?;
    tracing::info!(pledge = %w.money.unit.show(pledge), signature = %l.signature, "joined the verifier pool");
    Ok(())
}

/// One pass: the draws of the market's disputes still waiting for one, then the disputes this
/// worker sits in; returns the transactions sent.
async fn sweep(w: &Worker, failures: &mut BTreeMap<Pubkey, u32>) -> Result<usize, ChainError> {
    let me = w.keys().worker;
    let mut sent = 0;
    let now = w.chain.chain_time().await?;
    for waiting in w.chain.disputes(Some(DisputePhase::Drawing)).await? {
        let Some(job) = w.chain.job(&waiting.dispute.job).await? else {
            continue;
        };
        if job.market != w.market {
            continue;
        }
        match advance(w, waiting.dispute.job, &job, &waiting.dispute, now).await {
            Ok(Advanced::Sent) => sent += 1,
            Ok(Advanced::Waiting) => {}
            // Someone else drew first, most likely.
            Err(e) => tracing::debug!(dispute = %waiting.pubkey, error = %e, "drawing"),
        }
    }
    // (Verdicts are kept, about 150 bytes each: a node that lags must never make this worker
    // forget one it committed to.)
    let seated = w.chain.seats_of(&me).await?;
    for entry in seated {
        match serve_seat(w, &me, &entry, now, failures).await {
            Ok(Advanced::Sent) => sent += 1,
            Ok(Advanced::Waiting) => {}
            Err(e) => tracing::warn!(dispute = %entry.pubkey, error = %e, "a verifier seat"),
        }
    }
    Ok(sent)
}

/// Commits, reveals or settles, whichever is due for this worker's seat in `entry`.
async fn serve_seat(
    w: &Worker,
    me: &Pubkey,
    entry: &DisputeEntry,
    now: i64,
    failures: &mut BTreeMap<Pubkey, u32>,
) -> Result<Advanced, ChainError> {
    let (key, d) = (entry.pubkey, &entry.dispute);
    let Some(seat) = d.seats.iter().find(|s| s.worker == *me) else {
        return Ok(Advanced::Waiting);
    };
    let Some(job) = w.chain.job(&d.job).await? else {
        return Ok(Advanced::Waiting);
    };
    let mut kept: BTreeMap<String, Kept> = w.work.read_json(VERDICTS);
    if voting_over(d, now) {
        return advance(w, d.job, &job, d, now).await;
    }
    // Past the middle of the commit window a party still not serving its files loses the
    // vote on them.
    let half = job.terms.dispute.verify_window_s / 2;
    let late = now > d.commit_ends_at.saturating_sub(half);
    let vote = match seat.vote {
        VoteState::Drawn if now <= d.commit_ends_at => {
            let verdict = match kept.get(&key.to_string()) {
                Some(k) => k.clone(),
                None => match judge(w, &key, &job, d).await {
                    Ok(j) => {
                        tracing::info!(dispute = %key, segment = d.segment, why = %j.why, "judged a disputed segment");
                        keep(w, &mut kept, &key, j)?
                    }
                    Err(JudgeError::CannotJudge(e)) => {
                        tracing::warn!(dispute = %key, error = %e, "cannot judge this dispute: not voting (the seat forfeits its fee)");
                        return Ok(Advanced::Waiting);
                    }
                    Err(JudgeError::Transient(side, e)) => {
                        let n = failures.entry(key).or_default();
                        *n += 1;
                        match Judgement::for_withheld(side, d, &e).filter(|_| late) {
                            Some(j) => {
                                tracing::warn!(dispute = %key, why = %j.why, "judged a disputed segment on files not served");
                                keep(w, &mut kept, &key, j)?
                            }
                            None => {
                                tracing::warn!(dispute = %key, attempt = *n, error = %e, "judging a disputed segment; retrying");
                                return Ok(Advanced::Waiting);
                            }
                        }
                    }
                },
            };
            let hash = decode_vote(&verdict.vote)?;
            DisputeVoteArgs::Commit {
                commitment: vote_commitment(&hash, &salt(w, &key), me),
            }
        }
        VoteState::Committed => {
            let open = now > d.commit_ends_at || d.seats.iter().all(|s| s.vote != VoteState::Drawn);
            if !open || now > d.reveal_ends_at {
                return Ok(Advanced::Waiting);
            }
            let Some(k) = kept.get(&key.to_string()) else {
                tracing::error!(dispute = %key, "committed without a kept verdict: cannot reveal");
                return Ok(Advanced::Waiting);
            };
            DisputeVoteArgs::Reveal {
                hash: decode_vote(&k.vote)?,
                salt: salt(w, &key),
            }
        }
        _ => return Ok(Advanced::Waiting),
    };
    let what = match vote {
        DisputeVoteArgs::Commit { .. } => "committed",
        DisputeVoteArgs::Reveal { .. } => "revealed",
    };
    let l = w
        .chain
        .send(
            &[ix::dispute_vote(w.keys(), key, vote)],
            &[w.operator.as_ref()],
        )
        .await?;
    tracing::info!(dispute = %key, signature = %l.signature, "{what} a verifier vote");
    Ok(Advanced::Sent)
}

/// Writes `j` down before committing to it: a restart reveals what was committed.
fn keep(
    w: &Worker,
    kept: &mut BTreeMap<String, Kept>,
    key: &Pubkey,
    j: Judgement,
) -> Result<Kept, ChainError> {
    let k = Kept {
        vote: hex::encode(j.vote),
        why: j.why,
    };
    kept.insert(key.to_string(), k.clone());
    w.work
        .write_json(VERDICTS, kept)
        .map_err(|e| ChainError::Rpc(e.to_string()))?;
    Ok(k)
}

fn decode_vote(hex_vote: &str) -> Result<[u8; 32], ChainError> {
    hex::decode(hex_vote)
        .ok()
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .ok_or_else(|| ChainError::Rpc(format!("a kept verdict is not a hash: {hex_vote:?}")))
}
