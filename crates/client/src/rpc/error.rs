//! What can go wrong between this process and the chain, in words a person can act on.

use anchor_lang::prelude::Pubkey;
use solana_rpc_client_api::{
    client_error::{Error as ClientError, ErrorKind},
    request::{RpcError, RpcResponseErrorData},
};
use solana_transaction_error::TransactionError;
use tensorgrid::errors::TensorgridError;

use crate::errors::{describe_code, program_error};

/// The system program's "transfer: insufficient lamports" (`SystemError::ResultWithNegativeLamports`).
const SYSTEM_INSUFFICIENT_LAMPORTS: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The program (or Anchor's checks in it) refused the instruction.
    #[error("{name}: {message}")]
    Program {
        code: u32,
        name: String,
        message: String,
        /// Set when the code is one of the program's own errors.
        variant: Option<TensorgridError>,
        logs: Vec<String>,
    },
    #[error("insufficient funds: {0}")]
    InsufficientFunds(String),
    #[error("account {0} not found")]
    AccountNotFound(Pubkey),
    #[error("account {pubkey} is not a valid {expected}: {reason}")]
    Decode {
        pubkey: Pubkey,
        expected: &'static str,
        reason: String,
    },
    /// No endpoint answered (connection refused, DNS, TLS, HTTP 5xx/429, timeouts) after
    /// every retry round. Nothing was sent when this comes from a write's preparation.
    #[error("RPC unreachable: {urls}: {last}")]
    Unreachable { urls: String, last: String },
    #[error("timed out {0}")]
    Timeout(String),
    /// Sent, but whether it executed is unknown (the chain stopped answering, or it did not
    /// reach the commitment in time). Check the signature before sending again.
    #[error("transaction {signature} was sent but its outcome is unknown ({reason}); check it (solana confirm {signature}) before sending again")]
    Unconfirmed {
        signature: solana_signature::Signature,
        reason: String,
    },
    #[error("transaction failed: {err}")]
    Transaction {
        err: TransactionError,
        logs: Vec<String>,
    },
    /// The node answered with an error that is not about the transaction.
    #[error("RPC error: {0}")]
    Rpc(String),
    #[error("invalid chain configuration: {0}")]
    Config(String),
    #[error("signing failed: {0}")]
    Signing(String),
}

impl ChainError {
    /// The program's own error, when that is what this is.
    pub fn program_error(&self) -> Option<TensorgridError> {
        match self {
            ChainError::Program { variant, .. } => *variant,
            _ => None,
        }
    }

    /// The transaction logs that came with a failure (empty when there are none).
    pub fn logs(&self) -> &[String] {
        match self {
            ChainError::Program { logs, .. } | ChainError::Transaction { logs, .. } => logs,
            _ => &[],
        }
    }

    /// A transaction error (from simulation or from the executed transaction) with its logs.
    pub fn from_transaction(err: TransactionError, logs: Vec<String>) -> Self {
        match &err {
            TransactionError::InstructionError(_, ix_err) => {
                if let solana_instruction_error::InstructionError::Custom(code) = ix_err {
                    let ours =
                        failing_program(&logs).is_none_or(|p| p == crate::program_id().to_string());
                    if let Some((name, message)) = describe_code(*code, &logs).filter(|_| ours) {
                        return ChainError::Program {
                            code: *code,
                            name,
                            message,
                            variant: program_error(*code),
                            logs,
                        };
                    }
                    if *code == SYSTEM_INSUFFICIENT_LAMPORTS
                        && logs.iter().any(|l| l.contains("insufficient lamports"))
                    {
                        let detail = logs
                            .iter()
                            .find(|l| l.contains("insufficient lamports"))
                            .map(|l| l.trim_start_matches("Program log: ").to_string())
                            .unwrap_or_default();
                        return ChainError::InsufficientFunds(detail);
                    }
                }
                ChainError::Transaction { err, logs }
            }
            TransactionError::InsufficientFundsForFee => {
                ChainError::InsufficientFunds("the fee payer cannot pay the transaction fee".into())
            }
            TransactionError::InsufficientFundsForRent { account_index } => {
                ChainError::InsufficientFunds(format!(
                    "account #{account_index} of the transaction would fall below rent exemption"
                ))
            }
            TransactionError::AccountNotFound => ChainError::InsufficientFunds(
                "the fee payer has never been funded (account not found)".into(),
            ),
            _ => ChainError::Transaction { err, logs },
        }
    }
}

/// The program whose custom error failed the transaction: the first (innermost)
/// `Program <id> failed: custom program error` line of the logs.
fn failing_program(logs: &[String]) -> Option<&str> {
    logs.iter().find_map(|l| {
        let rest = l.strip_prefix("Program ")?;
        let (id, tail) = rest.split_once(' ')?;
        tail.starts_with("failed: custom program error")
            .then_some(id)
    })
}

/// How one failed RPC call should be handled.
#[derive(Debug)]
pub(crate) enum Fault {
    /// The endpoint did not answer usefully: try the next one, then back off.
    Transport(String),
    /// A real answer: retrying elsewhere would give the same.
    Final(ChainError),
}

impl From<ChainError> for Fault {
    fn from(e: ChainError) -> Self {
        Fault::Final(e)
    }
}

/// Sorts a client error into a transport fault or a final answer.
pub(crate) fn classify(err: ClientError) -> Fault {
    match err.kind() {
        ErrorKind::Io(e) => Fault::Transport(e.to_string()),
        // Refused connections, timeouts, any HTTP error status (a bad API key on one endpoint
        // must not block the next), bodies that are not JSON-RPC (a proxy's error page).
        ErrorKind::Reqwest(e) => Fault::Transport(reqwest_message(e)),
        ErrorKind::Middleware(e) => Fault::Transport(e.to_string()),
        ErrorKind::RpcError(RpcError::RpcResponseError {
            data: RpcResponseErrorData::SendTransactionPreflightFailure(sim),
            message,
            ..
        }) => match sim.err.clone() {
            Some(tx_err) => Fault::Final(ChainError::from_transaction(
                tx_err.into(),
                sim.logs.clone().unwrap_or_default(),
            )),
            None => Fault::Final(ChainError::Rpc(message.clone())),
        },
        ErrorKind::RpcError(RpcError::RpcResponseError {
            data: RpcResponseErrorData::NodeUnhealthy { num_slots_behind },
            ..
        }) => Fault::Transport(format!(
            "node unhealthy ({} slots behind)",
            num_slots_behind.map_or("?".into(), |n| n.to_string())
        )),
        ErrorKind::RpcError(RpcError::RpcRequestError(m)) => Fault::Transport(m.clone()),
        // Minimum context slot not reached: this node is behind.
        ErrorKind::RpcError(RpcError::RpcResponseError {
            code: -32016,
            message,
            ..
        }) => Fault::Transport(message.clone()),
        ErrorKind::RpcError(e) => Fault::Final(ChainError::Rpc(e.to_string())),
        ErrorKind::TransactionError(e) => {
            Fault::Final(ChainError::from_transaction(e.clone(), Vec::new()))
        }
        ErrorKind::SigningError(e) => Fault::Final(ChainError::Signing(e.to_string())),
        ErrorKind::SerdeJson(e) => Fault::Transport(format!("unreadable response: {e}")),
        ErrorKind::Custom(m) => Fault::Final(ChainError::Rpc(m.clone())),
    }
}

/// reqwest's own message hides the cause ("error sending request for url"); add the source.
fn reqwest_message(e: &reqwest::Error) -> String {
    let mut msg = if e.is_connect() {
        "connection failed".to_string()
    } else if e.is_timeout() {
        "request timed out".to_string()
    } else if let Some(status) = e.status() {
        format!("HTTP {status}")
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use solana_instruction_error::InstructionError;

    use super::*;
    use crate::error_code;

    #[test]
    fn a_program_code_becomes_its_variant_and_message() {
        let code = error_code(TensorgridError::JobNotOpen);
        let e = ChainError::from_transaction(
            TransactionError::InstructionError(1, InstructionError::Custom(code)),
            vec!["Program log: x".into()],
        );
        assert_eq!(e.to_string(), "JobNotOpen: The job is not open");
        assert!(matches!(
            e.program_error(),
            Some(TensorgridError::JobNotOpen)
        ));
        assert_eq!(e.logs().len(), 1);
    }

    #[test]
    fn a_custom_code_from_another_program_is_not_ours() {
        let code = error_code(TensorgridError::JobNotOpen);
        let other = "Other111111111111111111111111111111111111111";
        let e = ChainError::from_transaction(
            TransactionError::InstructionError(0, InstructionError::Custom(code)),
            vec![format!(
                "Program {other} failed: custom program error: 0x{code:x}"
            )],
        );
        assert!(matches!(e, ChainError::Transaction { .. }), "{e}");
        let e = ChainError::from_transaction(
            TransactionError::InstructionError(0, InstructionError::Custom(code)),
            vec![format!(
                "Program {} failed: custom program error: 0x{code:x}",
                crate::program_id()
            )],
        );
        assert!(e.program_error().is_some());
    }

    #[test]
    fn a_failed_system_transfer_reads_as_insufficient_funds() {
        let e = ChainError::from_transaction(
            TransactionError::InstructionError(0, InstructionError::Custom(1)),
            vec!["Transfer: insufficient lamports 5, need 10".into()],
        );
        assert!(
            matches!(e, ChainError::InsufficientFunds(ref m) if m.contains("need 10")),
            "{e}"
        );
        let e = ChainError::from_transaction(TransactionError::InsufficientFundsForFee, vec![]);
        assert!(matches!(e, ChainError::InsufficientFunds(_)));
    }
}
