//! Program error codes back to names and messages: what a failed transaction reports as
//! `Custom(code)` becomes `JobNotOpen: the job is not open`.

use anchor_lang::error::ERROR_CODE_OFFSET;
use tensorgrid::errors::TensorgridError;

use TensorgridError::*;

/// Every program error in code order (6000, 6001, ...). The test below pins this list against
/// the committed IDL, so a new variant cannot be forgotten here.
pub const ALL: [TensorgridError; 93] = [
    MarketPaused,
    InvalidBps,
    InvalidWindow,
    WindowTooLong,
    FeeTooHigh,
    InvalidCollateral,
    BountyTooHigh,
    PenaltyNotBelowSlash,
    NotMarketAuthority,
    InsufficientFees,
    StakeBelowMinimum,
    InsufficientStake,
    WithdrawBelowMinimum,
    InsufficientEarnings,
    LabelTooLong,
    NotOperator,
    WorkerAlreadyRegistered,
    WorkerDeregistered,
    WorkerHasActiveJob,
    SpecUriInvalid,
    ResultUriInvalid,
    ZeroReward,
    InvalidMaxDuration,
    ZeroSpecHash,
    ZeroResultHash,
    NotPoster,
    MarketMismatch,
    DeviceMismatch,
    InsufficientVram,
    JobNotOpen,
    JobNotClaimed,
    JobNotSubmitted,
    JobNotDisputed,
    NotAssignedWorker,
    ClaimBarred,
    JobCoolingDown,
    RewardTooSmall,
    DeadlinePassed,
    DeadlineNotReached,
    ChallengeWindowOpen,
    ChallengeWindowClosed,
    DisputeExpired,
    DisputeNotExpired,
    RecipientMismatch,
    ArithmeticOverflow,
    InvariantViolated,
    TermsChanged,
    OfferChanged,
    JobIdUsed,
    InvalidDisputeTerms,
    BondMismatch,
    InvalidSegment,
    DisputeNotDrawing,
    DrawTooEarly,
    SeatMismatch,
    NotVerifier,
    DisputeNotVoting,
    CommitWindowClosed,
    RevealNotOpen,
    RevealWindowClosed,
    AlreadyVoted,
    NotCommitted,
    RevealMismatch,
    VotingNotOver,
    DisputeNotEscalated,
    VerifierPoolFull,
    StakePledged,
    VerifierSeated,
    PoolFrozen,
    PledgeNotBacked,
    DisputeJobMismatch,
    SeatCount,
    AlreadyRevealed,
    PoolMalformed,
    TokenAccountsMissing,
    TokenAccountsUnexpected,
    MintMismatch,
    VaultMismatch,
    TokenProgramMismatch,
    TokenAccountMismatch,
    MintTransferFee,
    MintTransferHook,
    MintPermanentDelegate,
    MintConfidentialTransfers,
    MintDefaultFrozen,
    MintNonTransferable,
    MintPausable,
    MintExtensionUnsupported,
    InsufficientRefunds,
    TermsMintMismatch,
    PosterAccountMismatch,
    MintCloseable,
    NotTokenMarket,
];

/// The on-chain code of a program error (what a failed transaction reports as `Custom(code)`).
pub fn error_code(e: TensorgridError) -> u32 {
    ERROR_CODE_OFFSET + e as u32
}

/// The program error with this custom code, if it is one of ours.
pub fn program_error(code: u32) -> Option<TensorgridError> {
    let index = code.checked_sub(ERROR_CODE_OFFSET)?;
    ALL.get(usize::try_from(index).ok()?).copied()
}

/// A custom error code as a person should read it, `(name, message)`: the program's own
/// errors from the list above; Anchor's framework errors (constraints, account checks) from the
/// `AnchorError ... Error Code: X. Error Number: N. Error Message: M.` line Anchor logs;
/// `None` for a code neither explains (a CPI'd program's own error).
pub fn describe_code(code: u32, logs: &[String]) -> Option<(String, String)> {
    if let Some(e) = program_error(code) {
        return Some((e.name(), e.to_string()));
    }
    // The system program's `AccountAlreadyInUse` (custom 0) from an `init`: a job at this id
    // is live, or the poster account exists already.
    if code == 0 && logs.iter().any(|l| l.contains("already in use")) {
        return Some((
            "AccountAlreadyInUse".into(),
            "an account at this address exists already (a live job at this id, or a poster account created before)".into(),
        ));
    }
    logs.iter().find_map(|line| anchor_log_error(line, code))
}

fn anchor_log_error(line: &str, code: u32) -> Option<(String, String)> {
    let rest = &line[line.find("Error Code: ")? + "Error Code: ".len()..];
    let (name, rest) = rest.split_once(". Error Number: ")?;
    let (number, rest) = rest.split_once(". Error Message: ")?;
    if number.trim().parse::<u32>().ok()? != code {
        return None;
    }
    let message = rest.trim_end().trim_end_matches('.');
    Some((name.to_string(), message.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_matches_the_idl_in_order() {
        let idl: serde_json::Value =
            serde_json::from_str(include_str!("../../../idl/tensorgrid.json"))
                .expect("the committed IDL parses");
        let errors = idl["errors"].as_array().expect("the IDL lists errors");
        assert_eq!(
            errors.len(),
            ALL.len(),
            "a program error is missing from errors::ALL"
        );
        for (e, entry) in ALL.iter().zip(errors) {
            assert_eq!(entry["code"].as_u64(), Some(u64::from(error_code(*e))));
            assert_eq!(entry["name"].as_str(), Some(e.name().as_str()));
            assert_eq!(
                program_error(error_code(*e)).map(error_code),
                Some(error_code(*e))
            );
        }
    }

    #[test]
    fn codes_outside_the_program_range_are_not_program_errors() {
        assert!(program_error(0).is_none());
        assert!(program_error(5999).is_none());
        assert!(program_error(6000 + ALL.len() as u32).is_none());
        assert_eq!(describe_code(1, &[]), None);
    }

    #[test]
    fn framework_errors_are_read_from_anchors_log_line() {
        let logs = vec![
            "Program log: Instruction: JobClaim".to_string(),
            "Program log: AnchorError caused by account: job. Error Code: ConstraintSeeds. \
             Error Number: 2006. Error Message: A seeds constraint was violated."
                .to_string(),
        ];
        assert_eq!(
            describe_code(2006, &logs),
            Some((
                "ConstraintSeeds".into(),
                "A seeds constraint was violated".into()
            ))
        );
        assert_eq!(describe_code(2003, &logs), None, "the number must match");
        let in_use =
            vec!["Allocate: account Address { address: X, base: None } already in use".to_string()];
        assert_eq!(
            describe_code(0, &in_use).map(|(n, _)| n),
            Some("AccountAlreadyInUse".into())
        );
        assert_eq!(describe_code(0, &[]), None);
        let (name, message) = describe_code(6029, &[]).expect("a program error");
        assert_eq!(
            (name.as_str(), message.as_str()),
            ("JobNotOpen", "The job is not open")
        );
    }
}
