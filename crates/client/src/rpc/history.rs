//! What happened to an account, from the chain's transaction history: the program's events
//! of every successful transaction that touched it, oldest first. Works for closed accounts
//! too (a paid job), as long as the node keeps the history.

use anchor_lang::prelude::Pubkey;
use serde::Deserialize;
use serde_json::json;
use solana_rpc_client_api::request::RpcRequest;
use solana_signature::Signature;

use super::{ChainClient, ChainError, TxOutcome};

/// `getSignaturesForAddress` returns at most this many per call.
const PAGE: usize = 1_000;

#[derive(Deserialize)]
struct SignatureInfo {
    signature: String,
    err: Option<serde_json::Value>,
    #[serde(default)]
    memo: Option<String>,
}

impl ChainClient {
    /// Signatures of the successful transactions that referenced `address`, oldest first (at
    /// most `limit`, the most recent ones).
    pub async fn signatures_for(
        &self,
        address: &Pubkey,
        limit: usize,
    ) -> Result<Vec<Signature>, ChainError> {
        Ok(self
            .signature_infos(address, limit, None)
            .await?
            .into_iter()
            .map(|(s, _)| s)
            .collect())
    }

    /// The memos (as the RPC reports them: `[len] text; …`) of the successful transactions
    /// that referenced `address`, oldest first: the most recent `limit`, or, with `until`,
    /// those newer than that signature (at most `limit`). Returns the newest signature seen
    /// (to pass as `until` next time; `None` when there were none).
    pub async fn memos_for(
        &self,
        address: &Pubkey,
        limit: usize,
        until: Option<&Signature>,
    ) -> Result<(Vec<String>, Option<Signature>), ChainError> {
        let infos = self.signature_infos(address, limit, until).await?;
        let newest = infos.last().map(|(s, _)| *s);
        Ok((infos.into_iter().filter_map(|(_, m)| m).collect(), newest))
    }

    async fn signature_infos(
        &self,
        address: &Pubkey,
        limit: usize,
        until: Option<&Signature>,
    ) -> Result<Vec<(Signature, Option<String>)>, ChainError> {
        let commitment = if self.config.commitment_config().is_finalized() {
            "finalized"
        } else {
            "confirmed"
        };
        let mut options = json!({"limit": limit.clamp(1, PAGE), "commitment": commitment});
        if let Some(u) = until {
            options["until"] = json!(u.to_string());
        }
        let params = json!([address.to_string(), options]);
        let infos: Vec<SignatureInfo> = self
            .endpoints
            .call("getSignaturesForAddress", move |c| {
                let params = params.clone();
                async move { c.send(RpcRequest::GetSignaturesForAddress, params).await }
            })
            .await?;
        let mut sigs = infos
            .into_iter()
            .filter(|i| i.err.is_none())
            .map(|i| {
                let s = i.signature.parse().map_err(|_| {
                    ChainError::Rpc(format!("unreadable signature {}", i.signature))
                })?;
                Ok((s, i.memo))
            })
            .collect::<Result<Vec<_>, ChainError>>()?;
        sigs.reverse();
        Ok(sigs)
    }

    /// The outcome (events, fee, slot) of each successful transaction that touched `address`,
    /// oldest first.
    pub async fn history(
        &self,
        address: &Pubkey,
        limit: usize,
    ) -> Result<Vec<TxOutcome>, ChainError> {
        let mut out = Vec::new();
        for sig in self.signatures_for(address, limit).await? {
            out.push(self.outcome(&sig).await?);
        }
        Ok(out)
    }
}
