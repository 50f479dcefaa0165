//! Sending a command's transaction and reporting what it did.

use anyhow::Result;
use serde::Serialize;
use solana_signer::Signer;
use tensorgrid_client::{
    instructions::Instruction,
    rpc::{ChainError, TxOutcome},
};

use crate::{
    chain_args::Ctx,
    describe::{self, EventLine},
    output::{fields, Report},
    units::sol,
};

/// What a transaction did: its signature, fee and the program's events.
#[derive(Debug, Clone, Serialize)]
pub struct Sent {
    pub action: String,
    pub signature: String,
    pub slot: u64,
    pub fee: u64,
    pub events: Vec<EventLine>,
    /// Addresses the reader may want next (the job, the worker account…).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<(String, String)>,
    /// The command to run next, if there is an obvious one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

impl Sent {
    pub fn new(action: impl Into<String>, outcome: &TxOutcome) -> Self {
        Self {
            action: action.into(),
            signature: outcome.signature.to_string(),
            slot: outcome.slot,
            fee: outcome.fee,
            events: outcome.events.iter().map(describe::event).collect(),
            addresses: Vec::new(),
            next: None,
        }
    }

    pub fn with(mut self, label: &str, value: impl ToString) -> Self {
        self.addresses.push((label.into(), value.to_string()));
        self
    }

    pub fn next(mut self, command: impl Into<String>) -> Self {
        self.next = Some(command.into());
        self
    }
}

impl Report for Sent {
    fn display(&self) -> String {
        let mut rows: Vec<(&str, String)> = self
            .addresses
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        rows.push(("signature", self.signature.clone()));
        rows.push(("fee", format!("{} SOL", sol(self.fee))));
        let mut text = format!("{}\n{}", self.action, fields(&rows));
        for e in &self.events {
            text.push_str(&format!("  event: {}\n", e.summary));
        }
        if let Some(n) = &self.next {
            text.push_str(&format!("next: {n}\n"));
        }
        text
    }
}

/// Sends `ixs` paid and signed by `signer`, then reads back its events.
pub async fn send(
    ctx: &Ctx,
    ixs: &[Instruction],
    signer: &dyn Signer,
    action: &str,
) -> Result<Sent> {
    let outcome = match ctx.chain.send_and_fetch(ixs, &[signer]).await {
        Err(e @ ChainError::InsufficientFunds(_)) => {
            let hint = ctx.funding_hint(&signer.pubkey());
            anyhow::bail!("{e}; wallet {}: {hint}", signer.pubkey());
        }
        r => r?,
    };
    Ok(Sent::new(action, &outcome))
}
