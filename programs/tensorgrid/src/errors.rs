use anchor_lang::prelude::*;

/// Returns `err` from the calling function unless `cond` holds: Anchor's `require!` without
/// its per-site error construction (source file, line and two `String`s built inline at every
/// check). Every check calls one shared constructor instead, which keeps the `.so` small; the
/// error code, name and message a client sees are the same.
macro_rules! ensure {
    ($cond:expr, $err:expr $(,)?) => {
        if !($cond) {
            return Err($crate::errors::fail($err));
        }
    };
}

/// The error value for `err` (see [`ensure!`]).
#[inline(never)]
pub fn fail(err: TensorgridError) -> anchor_lang::error::Error {
    err.into()
}

/// Every rejection the program makes, each with its own code. Codes start at 6000 (Anchor's
/// custom range) and are part of the public interface: append new variants at the end, never
/// reorder.
#[error_code]
pub enum TensorgridError {
    #[msg("The market is paused: no new posts or claims")]
    MarketPaused,
    #[msg("A basis-point value is above 10000")]
    InvalidBps,
    #[msg("Windows and the claim duration must be positive")]
    InvalidWindow,
    #[msg("A window or the claim duration exceeds 30 days")]
    WindowTooLong,
    #[msg("The fee is above 2000 bps")]
    FeeTooHigh,
    #[msg("Collateral must be 1 to 50000 bps of the reward")]
    InvalidCollateral,
    #[msg("The crank bounty is above 5000 bps")]
    BountyTooHigh,
    #[msg("Abandon penalty must be below slash x (1 - bounty)")]
    PenaltyNotBelowSlash,
    #[msg("Only the market authority may do this")]
    NotMarketAuthority,
    #[msg("Fewer unclaimed fees than requested")]
    InsufficientFees,
    #[msg("Stake is below the market minimum")]
    StakeBelowMinimum,
    #[msg("Stake is below the market minimum or the job's collateral")]
    InsufficientStake,
    #[msg("Withdrawal would leave stake below the minimum")]
    WithdrawBelowMinimum,
    #[msg("Fewer earnings than requested")]
    InsufficientEarnings,
    #[msg("Hardware label is longer than 32 bytes")]
    LabelTooLong,
    #[msg("Only the worker's operator may do this")]
    NotOperator,
    #[msg("The worker is already registered")]
    WorkerAlreadyRegistered,
    #[msg("The worker is deregistered")]
    WorkerDeregistered,
    #[msg("The worker still has an active job")]
    WorkerHasActiveJob,
    #[msg("Spec URI is empty or longer than 200 bytes")]
    SpecUriInvalid,
    #[msg("Result URI is empty or longer than 200 bytes")]
    ResultUriInvalid,
    #[msg("Reward must be greater than zero")]
    ZeroReward,
    #[msg("Max duration must be positive and at most max_claim_s")]
    InvalidMaxDuration,
    #[msg("Spec hash must not be all zeros")]
    ZeroSpecHash,
    #[msg("Result hash must not be all zeros")]
    ZeroResultHash,
    #[msg("Only the job's poster may do this")]
    NotPoster,
    #[msg("The account does not belong to this market")]
    MarketMismatch,
    #[msg("The device kind does not meet the job's requirement")]
    DeviceMismatch,
    #[msg("The worker has less VRAM than the job requires")]
    InsufficientVram,
    #[msg("The job is not open")]
    JobNotOpen,
    #[msg("The job is not claimed")]
    JobNotClaimed,
    #[msg("The job has no submitted result")]
    JobNotSubmitted,
    #[msg("The job is not disputed")]
    JobNotDisputed,
    #[msg("This worker is not assigned to the job")]
    NotAssignedWorker,
    #[msg("This worker abandoned or missed this job and may not claim it again")]
    ClaimBarred,
    #[msg("The job was reopened less than 600 s ago")]
    JobCoolingDown,
    #[msg("Reward too small: its collateral, dispute bond or verifier fee rounds to zero")]
    RewardTooSmall,
    #[msg("The claim deadline has passed")]
    DeadlinePassed,
    #[msg("The claim deadline has not passed yet")]
    DeadlineNotReached,
    #[msg("The challenge window is still open")]
    ChallengeWindowOpen,
    #[msg("The challenge window has closed")]
    ChallengeWindowClosed,
    #[msg("The dispute's resolution window has closed")]
    DisputeExpired,
    #[msg("The dispute's resolution window is still open")]
    DisputeNotExpired,
    #[msg("The receiving account is not the one recorded on-chain")]
    RecipientMismatch,
    #[msg("Arithmetic overflow")]
    ArithmeticOverflow,
    #[msg("Account invariant violated")]
    InvariantViolated,
    #[msg("The market's terms differ from those the post agreed to")]
    TermsChanged,
    #[msg("The job differs from the offer the claim agreed to")]
    OfferChanged,
    #[msg("Job id used: ids must be at least the poster's next_job_id")]
    JobIdUsed,
    #[msg("Dispute terms invalid: the bond and the slash must each cover three verifier fees, bond and slash at most 100 %")]
    InvalidDisputeTerms,
    #[msg("The bond differs from the job's dispute terms")]
    BondMismatch,
    #[msg("A disputed segment's end hash must not be all zeros")]
    InvalidSegment,
    #[msg("The dispute's verifiers are already drawn")]
    DisputeNotDrawing,
    #[msg("No slot hash after the dispute's slot yet: draw in a later slot")]
    DrawTooEarly,
    #[msg("The seat accounts differ from the dispute's drawn verifiers")]
    SeatMismatch,
    #[msg("This worker holds no seat in the dispute")]
    NotVerifier,
    #[msg("The dispute is not in its voting phase")]
    DisputeNotVoting,
    #[msg("The commit window has closed")]
    CommitWindowClosed,
    #[msg("Reveals open when the commit window closes or every seat has committed")]
    RevealNotOpen,
    #[msg("The reveal window has closed")]
    RevealWindowClosed,
    #[msg("This seat has already committed or revealed")]
    AlreadyVoted,
    #[msg("This seat has not committed")]
    NotCommitted,
    #[msg("The revealed hash and salt do not match the commitment")]
    RevealMismatch,
    #[msg("Voting goes on until the reveal window closes or every seat has revealed")]
    VotingNotOver,
    #[msg("The dispute has not been escalated to the market authority")]
    DisputeNotEscalated,
    #[msg("The verifier pool is full and every entry has at least this stake")]
    VerifierPoolFull,
    #[msg("This stake is pledged to the verifier pool: leave the pool first")]
    StakePledged,
    #[msg("The worker holds a verifier seat in an open dispute")]
    VerifierSeated,
    #[msg("The verifier pool is frozen between a dispute and its draw: draw first")]
    PoolFrozen,
    #[msg(
        "The pledge must be at least the market's minimum stake and backed by stake no job holds"
    )]
    PledgeNotBacked,
    #[msg("The dispute account is not this job's")]
    DisputeJobMismatch,
    #[msg("Three seat accounts are expected, in seat order")]
    SeatCount,
    #[msg("This seat has already revealed")]
    AlreadyRevealed,
    #[msg("The verifier pool's data is malformed")]
    PoolMalformed,
    #[msg("A token market's instruction needs its mint, vault and token program accounts")]
    TokenAccountsMissing,
    #[msg("A SOL market's instruction takes no token accounts")]
    TokenAccountsUnexpected,
    #[msg("The mint is not the market's")]
    MintMismatch,
    #[msg("The vault is not the market's")]
    VaultMismatch,
    #[msg("The token program is not the market's mint's")]
    TokenProgramMismatch,
    #[msg("The token account is not of the market's mint, or is the vault itself")]
    TokenAccountMismatch,
    #[msg("Mints with a transfer fee are refused: amounts would not arrive whole")]
    MintTransferFee,
    #[msg("Mints with a transfer hook are refused: another program could block transfers")]
    MintTransferHook,
    #[msg("Mints with a permanent delegate are refused: it could take the vault's tokens")]
    MintPermanentDelegate,
    #[msg("Mints with confidential transfers are refused: amounts must be visible")]
    MintConfidentialTransfers,
    #[msg("Mints whose new accounts start frozen are refused: the vault would be frozen")]
    MintDefaultFrozen,
    #[msg("Non-transferable mints are refused: nothing could leave the vault")]
    MintNonTransferable,
    #[msg("Pausable mints are refused: a pause would stop every exit")]
    MintPausable,
    #[msg("The mint has an extension this program does not accept")]
    MintExtensionUnsupported,
    #[msg("Fewer refunds than requested")]
    InsufficientRefunds,
    #[msg("The terms' mint is not the market's")]
    TermsMintMismatch,
    #[msg("The poster account is not the job's poster's in the job's market")]
    PosterAccountMismatch,
    #[msg("Closable mints are refused: one could be created again with other extensions")]
    MintCloseable,
    #[msg("Only a token market holds refunds for its posters")]
    NotTokenMarket,
}
