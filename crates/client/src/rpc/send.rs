//! Build, sign, send and confirm a transaction so that its instructions execute at most once.
//!
//! 1. Simulate with the maximum compute-unit limit: a program error comes back here, before
//!    anything is sent (and an unreachable chain is reported with nothing sent).
//! 2. Limit = simulated units plus the configured margin; price = a percentile of the recent
//!    priority fees paid for the accounts the transaction writes, capped (off on localhost).
//! 3. Sign with a fresh blockhash, send, poll the signature's status; rebroadcast the same
//!    signed bytes now and then (the chain deduplicates by signature).
//! 4. If the blockhash expires first (the *finalized* block height passed its last valid
//!    height, so no fork can still include it), ask the same node, with its history, whether
//!    the signature landed: only if it did not can it never land, and only then is the
//!    transaction signed again with a new blockhash and sent.
//!
//! Once the first send was attempted, a failure to learn the outcome is
//! [`ChainError::Unconfirmed`] with the signature, never an error that reads as "not sent".

use std::time::{Duration, Instant};

use anchor_lang::prelude::Pubkey;
use serde_json::json;
use solana_commitment_config::CommitmentConfig;
use solana_compute_budget_interface::ComputeBudgetInstruction;
use solana_message::Message;
use solana_rpc_client_api::{
    config::{RpcSendTransactionConfig, RpcSimulateTransactionConfig, RpcTransactionConfig},
    request::RpcRequest,
};
use solana_signature::Signature;
use solana_signer::signers::Signers;
use solana_transaction::Transaction;
use solana_transaction_status_client_types::{
    option_serializer::OptionSerializer, EncodedConfirmedTransactionWithStatusMeta,
    TransactionStatus, UiInstruction, UiTransactionEncoding,
};

use super::{ChainClient, ChainError};
use crate::{
    events::{decode_events, Event},
    instructions::Instruction,
};

/// The runtime's ceiling for one transaction.
const MAX_COMPUTE_UNITS: u32 = 1_400_000;
/// Added to the margin so that tiny transactions are not limited to the unit.
const CU_HEADROOM: u64 = 1_000;
/// Between two broadcasts of the same signed transaction.
const REBROADCAST_EVERY: Duration = Duration::from_secs(2);

/// A transaction that reached the configured commitment.
#[derive(Debug, Clone)]
pub struct Landed {
    pub signature: Signature,
    pub slot: u64,
    /// Times it had to be re-signed because a blockhash expired before it landed.
    pub resigned: u32,
    /// The compute-unit limit and the price (µlamports/CU) it was sent with.
    pub cu_limit: u32,
    pub cu_price: u64,
}

/// What an executed transaction did, read back from the chain.
#[derive(Debug, Clone)]
pub struct TxOutcome {
    pub signature: Signature,
    pub slot: u64,
    pub fee: u64,
    pub compute_units: Option<u64>,
    pub logs: Vec<String>,
    /// The program's events, in order.
    pub events: Vec<Event>,
}

/// Options for one send.
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    /// Overrides the simulation-sized compute-unit limit.
    pub cu_limit: Option<u32>,
    /// Overrides the fee policy: µlamports per CU.
    pub cu_price: Option<u64>,
}

/// Times a transaction is signed again after its blockhash expired unseen before giving up.
const MAX_SIGNINGS: u32 = 5;

/// How following a sent transaction ended.
enum Followed {
    /// It reached the commitment in this slot.
    Landed(u64),
    /// Its blockhash expired and the chain, asked with its history, never saw it.
    Expired,
}

impl ChainClient {
    /// Sends `instructions` signed by `signers` (the first pays) and waits for the configured
    /// commitment. See the module documentation for the exactly-once guarantee. Errors from
    /// before the first send mean nothing was sent; after it, anything but a transaction
    /// failure is [`ChainError::Unconfirmed`], naming the signature to check.
    pub async fn send<S: Signers + ?Sized>(
        &self,
        instructions: &[Instruction],
        signers: &S,
    ) -> Result<Landed, ChainError> {
        self.send_with(instructions, signers, SendOptions::default())
            .await
    }

    /// [`send`](Self::send), then the executed transaction's fee, logs and events.
    pub async fn send_and_fetch<S: Signers + ?Sized>(
        &self,
        instructions: &[Instruction],
        signers: &S,
    ) -> Result<TxOutcome, ChainError> {
        let landed = self.send(instructions, signers).await?;
        self.outcome(&landed.signature).await
    }

    pub async fn send_with<S: Signers + ?Sized>(
        &self,
        instructions: &[Instruction],
        signers: &S,
        options: SendOptions,
    ) -> Result<Landed, ChainError> {
        let payer = *signers
            .pubkeys()
            .first()
            .ok_or_else(|| ChainError::Signing("no signer given".into()))?;
        let cu_price = match options.cu_price {
            Some(p) => p,
            None => self.priority_fee(instructions).await?,
        };
        let cu_limit = match options.cu_limit {
            Some(l) => l,
            None => self.simulate_units(instructions, &payer, cu_price).await?,
        };
        let message = Message::new(&with_budget(instructions, cu_limit, cu_price), Some(&payer));
        for signing in 0..MAX_SIGNINGS {
            let (blockhash, last_valid) = self.latest_blockhash().await?;
            let mut tx = Transaction::new_unsigned(message.clone());
            tx.try_sign(signers, blockhash)
                .map_err(|e| ChainError::Signing(e.to_string()))?;
            let signature = tx.signatures[0];
            let followed = self
                .follow(&tx, last_valid)
                .await
                .map_err(|e| unconfirmed(signature, e))?;
            match followed {
                Followed::Landed(slot) => {
                    return Ok(Landed {
                        signature,
                        slot,
                        resigned: signing,
                        cu_limit,
                        cu_price,
                    })
                }
                Followed::Expired => {
                    tracing::warn!(%signature, "blockhash expired before the transaction landed; signing it again")
                }
            }
        }
        Err(ChainError::Timeout(format!(
            "the transaction expired unseen {MAX_SIGNINGS} times; is the cluster dropping it?"
        )))
    }

    /// Sends `tx` and follows its signature until it reaches the commitment or its blockhash
    /// provably expired. Once the send was attempted the transaction may be on its way, so
    /// only a refusal of the transaction itself ends the following early.
    async fn follow(
        &self,
        tx: &Transaction,
        last_valid_block_height: u64,
    ) -> Result<Followed, ChainError> {
        let signature = tx.signatures[0];
        if let Err(e) = self.broadcast(tx).await {
            if is_transaction_refusal(&e) {
                return Err(e);
            }
            tracing::warn!(%signature, error = %e, "send failed; following the signature anyway");
        }
        let started = Instant::now();
        let mut last_broadcast = Instant::now();
        let mut seen = false;
        // Once only the history knows the signature (an old one), keep asking it.
        let mut history = false;
        loop {
            tokio::time::sleep(self.config.poll_interval).await;
            if let Some(status) = self.signature_status(&signature, history).await? {
                seen = true;
                if let Some(slot) = self.settled(&signature, &status).await? {
                    return Ok(Followed::Landed(slot));
                }
            } else if !seen {
                // Expiry and the history lookup on one node, so a node that is behind cannot
                // answer "never seen" for a transaction another node has.
                if let Some(found) = self
                    .expired_unseen(&signature, last_valid_block_height)
                    .await?
                {
                    if !found {
                        return Ok(Followed::Expired);
                    }
                    seen = true;
                    history = true;
                }
            }
            if started.elapsed() > self.config.confirm_timeout {
                return Err(ChainError::Timeout(format!(
                    "waiting {} s for {signature} to reach {:?}",
                    self.config.confirm_timeout.as_secs(),
                    self.config.commitment
                )));
            }
            if !seen && last_broadcast.elapsed() >= REBROADCAST_EVERY {
                let _ = self.broadcast(tx).await;
                last_broadcast = Instant::now();
            }
        }
    }

    /// `Some(slot)` when `status` reached the commitment; the transaction's error once a
    /// failed execution reached it (its fee is spent, its instructions did nothing); `None`
    /// while it has not.
    async fn settled(
        &self,
        signature: &Signature,
        status: &TransactionStatus,
    ) -> Result<Option<u64>, ChainError> {
        if !status.satisfies_commitment(self.config.commitment_config()) {
            return Ok(None);
        }
        if let Some(err) = status.err.clone() {
            let logs = self
                .outcome(signature)
                .await
                .map(|o| o.logs)
                .unwrap_or_default();
            return Err(ChainError::from_transaction(err, logs));
        }
        Ok(Some(status.slot))
    }

    /// `None` while the blockhash is still valid (finalized block height at most
    /// `last_valid`); then `Some(whether the chain's history has the signature)`.
    async fn expired_unseen(
        &self,
        signature: &Signature,
        last_valid: u64,
    ) -> Result<Option<bool>, ChainError> {
        let sig = *signature;
        self.endpoints
            .call("getBlockHeight+getSignatureStatuses", move |c| async move {
                // Finalized: no fork can still include the transaction once it is past.
                let height = c
                    .get_block_height_with_commitment(CommitmentConfig::finalized())
                    .await?;
                if height <= last_valid {
                    return Ok(None);
                }
                let statuses = c.get_signature_statuses_with_history(&[sig]).await?;
                Ok(Some(statuses.value.first().is_some_and(Option::is_some)))
            })
            .await
    }

    async fn broadcast(&self, tx: &Transaction) -> Result<Signature, ChainError> {
        let config = RpcSendTransactionConfig {
            // Simulated already; a second preflight would only add latency.
            skip_preflight: true,
            preflight_commitment: None,
            encoding: Some(UiTransactionEncoding::Base64),
            max_retries: None,
            min_context_slot: None,
        };
        let tx = tx.clone();
        self.endpoints
            .call("sendTransaction", move |c| {
                let tx = tx.clone();
                async move { c.send_transaction_with_config(&tx, config).await }
            })
            .await
    }

    async fn signature_status(
        &self,
        signature: &Signature,
        history: bool,
    ) -> Result<Option<TransactionStatus>, ChainError> {
        let sig = *signature;
        let response = self
            .endpoints
            .call("getSignatureStatuses", move |c| async move {
                if history {
                    c.get_signature_statuses_with_history(&[sig]).await
                } else {
                    c.get_signature_statuses(&[sig]).await
                }
            })
            .await?;
        Ok(response.value.into_iter().next().flatten())
    }

    /// A blockhash and its last valid block height, at `confirmed` at least: a `processed`
    /// blockhash may belong to a fork that never confirms.
    async fn latest_blockhash(&self) -> Result<(solana_hash::Hash, u64), ChainError> {
        let commitment = if self.config.commitment_config().is_finalized() {
            CommitmentConfig::finalized()
        } else {
            CommitmentConfig::confirmed()
        };
        self.endpoints
            .call("getLatestBlockhash", move |c| async move {
                c.get_latest_blockhash_with_commitment(commitment).await
            })
            .await
    }

    /// Compute units the instructions take, by simulation, plus the margin. A program error
    /// stops here, before anything is signed or sent.
    async fn simulate_units(
        &self,
        instructions: &[Instruction],
        payer: &Pubkey,
        cu_price: u64,
    ) -> Result<u32, ChainError> {
        let message = Message::new(
            &with_budget(instructions, MAX_COMPUTE_UNITS, cu_price),
            Some(payer),
        );
        let tx = Transaction::new_unsigned(message);
        let config = RpcSimulateTransactionConfig {
            sig_verify: false,
            replace_recent_blockhash: true,
            commitment: Some(self.config.commitment_config()),
            encoding: Some(UiTransactionEncoding::Base64),
            accounts: None,
            min_context_slot: None,
            inner_instructions: false,
        };
        let result = self
            .endpoints
            .call("simulateTransaction", move |c| {
                let tx = tx.clone();
                let config = config.clone();
                async move { c.simulate_transaction_with_config(&tx, config).await }
            })
            .await?
            .value;
        if let Some(err) = result.err {
            return Err(ChainError::from_transaction(
                err.into(),
                result.logs.unwrap_or_default(),
            ));
        }
        let used = result
            .units_consumed
            .unwrap_or(u64::from(MAX_COMPUTE_UNITS));
        let limit = used
            .saturating_mul(100 + self.config.cu_margin_pct)
            .div_ceil(100)
            .saturating_add(CU_HEADROOM);
        Ok(u32::try_from(limit)
            .unwrap_or(MAX_COMPUTE_UNITS)
            .min(MAX_COMPUTE_UNITS))
    }

    /// The price (µlamports per CU) by the fee policy: a percentile of what recent blocks
    /// charged for the accounts these instructions write, capped.
    pub async fn priority_fee(&self, instructions: &[Instruction]) -> Result<u64, ChainError> {
        let Some(percentile) = self.config.priority_fee.percentile else {
            return Ok(0);
        };
        let mut writable: Vec<Pubkey> = instructions
            .iter()
            .flat_map(|ix| {
                ix.accounts
                    .iter()
                    .filter(|m| m.is_writable)
                    .map(|m| m.pubkey)
            })
            .collect();
        writable.sort();
        writable.dedup();
        // The RPC accepts at most 128 addresses.
        writable.truncate(128);
        let fees = self
            .endpoints
            .call("getRecentPrioritizationFees", move |c| {
                let writable = writable.clone();
                async move { c.get_recent_prioritization_fees(&writable).await }
            })
            .await?;
        let fees: Vec<u64> = fees.into_iter().map(|f| f.prioritization_fee).collect();
        Ok(percentile_of(fees, percentile).min(self.config.priority_fee.max_micro_lamports))
    }

    /// Fee, logs and events of a confirmed transaction (retried while the node has not
    /// indexed it yet, which is common right after confirmation).
    pub async fn outcome(&self, signature: &Signature) -> Result<TxOutcome, ChainError> {
        let sig = *signature;
        let config = RpcTransactionConfig {
            encoding: Some(UiTransactionEncoding::Base64),
            commitment: Some(if self.config.commitment_config().is_finalized() {
                CommitmentConfig::finalized()
            } else {
                CommitmentConfig::confirmed()
            }),
            max_supported_transaction_version: Some(0),
        };
        let started = Instant::now();
        let confirmed = loop {
            let found: Option<EncodedConfirmedTransactionWithStatusMeta> = self
                .endpoints
                .call("getTransaction", move |c| async move {
                    c.send(RpcRequest::GetTransaction, json!([sig.to_string(), config]))
                        .await
                })
                .await?;
            if let Some(tx) = found {
                break tx;
            }
            if started.elapsed() > self.config.confirm_timeout {
                return Err(ChainError::Timeout(format!(
                    "waiting for transaction {sig} to be readable"
                )));
            }
            tokio::time::sleep(self.config.poll_interval).await;
        };
        decode_outcome(sig, confirmed)
    }
}

/// Whether a send error is the node refusing the transaction itself (so it was not
/// forwarded), as opposed to not knowing what happened to it.
fn is_transaction_refusal(e: &ChainError) -> bool {
    matches!(
        e,
        ChainError::Program { .. }
            | ChainError::Transaction { .. }
            | ChainError::InsufficientFunds(_)
            | ChainError::Signing(_)
    )
}

/// Errors met while following a sent transaction: its fate is unknown.
fn unconfirmed(signature: Signature, e: ChainError) -> ChainError {
    if is_transaction_refusal(&e) {
        return e;
    }
    ChainError::Unconfirmed {
        signature,
        reason: e.to_string(),
    }
}

fn decode_outcome(
    sig: Signature,
    confirmed: EncodedConfirmedTransactionWithStatusMeta,
) -> Result<TxOutcome, ChainError> {
    let tx = confirmed
        .transaction
        .transaction
        .decode()
        .ok_or_else(|| ChainError::Rpc(format!("transaction {sig}: undecodable")))?;
    let account_keys = tx.message.static_account_keys().to_vec();
    let meta = confirmed
        .transaction
        .meta
        .ok_or_else(|| ChainError::Rpc(format!("transaction {sig}: no status metadata")))?;
    let inner: Vec<(usize, Vec<u8>)> = match meta.inner_instructions {
        OptionSerializer::Some(groups) => groups
            .into_iter()
            .flat_map(|g| g.instructions)
            .filter_map(|ix| match ix {
                UiInstruction::Compiled(c) => bs58::decode(&c.data)
                    .into_vec()
                    .ok()
                    .map(|data| (usize::from(c.program_id_index), data)),
                UiInstruction::Parsed(_) => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let events = decode_events(&account_keys, inner.iter().map(|(p, d)| (*p, d.as_slice())));
    let logs = match meta.log_messages {
        OptionSerializer::Some(logs) => logs,
        _ => Vec::new(),
    };
    let compute_units = match meta.compute_units_consumed {
        OptionSerializer::Some(cu) => Some(cu),
        _ => None,
    };
    Ok(TxOutcome {
        signature: sig,
        slot: confirmed.slot,
        fee: meta.fee,
        compute_units,
        logs,
        events,
    })
}

/// The compute-budget instructions first, then the caller's.
fn with_budget(instructions: &[Instruction], cu_limit: u32, cu_price: u64) -> Vec<Instruction> {
    let mut out = vec![ComputeBudgetInstruction::set_compute_unit_limit(cu_limit)];
    if cu_price > 0 {
        out.push(ComputeBudgetInstruction::set_compute_unit_price(cu_price));
    }
    out.extend_from_slice(instructions);
    out
}

/// The `p`-th percentile (nearest rank) of `values`; 0 for none.
fn percentile_of(mut values: Vec<u64>, p: u8) -> u64 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    let rank = (usize::from(p.min(100)) * values.len()).div_ceil(100);
    values[rank.saturating_sub(1).min(values.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        assert_eq!(percentile_of(vec![], 75), 0);
        assert_eq!(percentile_of(vec![5], 75), 5);
        assert_eq!(percentile_of(vec![1, 2, 3, 4], 75), 3);
        assert_eq!(percentile_of(vec![4, 3, 2, 1], 100), 4);
        assert_eq!(percentile_of(vec![4, 3, 2, 1], 0), 1);
    }

    #[test]
    fn budget_instructions_come_first_and_the_price_only_when_set() {
        let ix = crate::instructions::memo(Pubkey::new_unique(), "budget");
        assert_eq!(with_budget(std::slice::from_ref(&ix), 50_000, 0).len(), 2);
        let all = with_budget(std::slice::from_ref(&ix), 50_000, 7);
        assert_eq!(all.len(), 3);
        assert_eq!(all[2], ix);
    }
}
