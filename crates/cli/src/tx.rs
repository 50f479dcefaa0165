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
    /// What the reader may want next (the job, its id, the worker account…), each a field
    /// of its own in JSON: `"job": "…"`, `"job_id": 3`.
    #[serde(flatten)]
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// The fields' keys in the order they were added (for the display).
    #[serde(skip)]
    order: Vec<String>,
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
            fields: serde_json::Map::new(),
            order: Vec::new(),
            next: None,
        }
    }

    /// A field shown as `label` and named `label` in snake case in JSON, as a string.
    pub fn with(self, label: &str, value: impl ToString) -> Self {
        self.with_value(label, serde_json::Value::String(value.to_string()))
    }

    /// The same, a number in JSON.
    pub fn with_number(self, label: &str, value: u64) -> Self {
        self.with_value(label, value.into())
    }

    fn with_value(mut self, label: &str, value: serde_json::Value) -> Self {
        let key = label.replace(' ', "_");
        self.order.push(key.clone());
        self.fields.insert(key, value);
        self
    }

    /// A string field's value.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(|v| v.as_str())
    }

    pub fn next(mut self, command: impl Into<String>) -> Self {
        self.next = Some(command.into());
        self
    }
}

impl Report for Sent {
    fn display(&self) -> String {
        let labels: Vec<String> = self.order.iter().map(|k| k.replace('_', " ")).collect();
        let mut rows: Vec<(&str, String)> = self
            .order
            .iter()
            .zip(&labels)
            .map(|(k, label)| {
                let v = match &self.fields[k] {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (label.as_str(), v)
            })
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
