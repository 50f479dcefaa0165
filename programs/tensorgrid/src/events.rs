//! One event per state change, emitted with `emit_cpi!` so that clients read them back from the
//! transaction's inner instructions (logs can be truncated; inner instructions cannot). Every
//! event names every amount of lamports the instruction moved.

use anchor_lang::{
    event::EVENT_IX_TAG_LE,
    prelude::*,
    solana_program::{
        instruction::{AccountMeta, Instruction},
        program::invoke_signed,
    },
};

use crate::state::{Hardware, JobRequirements, JobTerms, MarketParams};

/// `emit_cpi!(event)` with one shared body instead of a copy at every site (the `.so` is
/// smaller by the difference): the event is a self-invocation signed by the event authority
/// PDA, exactly as Anchor's macro makes it, so every Anchor client decodes it the same way.
/// The accounts struct must be marked `#[event_cpi]`.
macro_rules! emit_event {
    ($ctx:ident, $event:expr) => {
        $crate::events::emit_cpi_data(
            &$ctx.accounts.event_authority,
            anchor_lang::Event::data(&$event),
        )?
    };
}

/// Invokes this program with `EVENT_IX_TAG_LE ‖ data`, signed by the event authority.
#[inline(never)]
pub fn emit_cpi_data(authority: &AccountInfo, data: Vec<u8>) -> Result<()> {
    let mut ix_data = Vec::with_capacity(data.len().saturating_add(EVENT_IX_TAG_LE.len()));
    ix_data.extend_from_slice(EVENT_IX_TAG_LE);
    ix_data.extend_from_slice(&data);
    let ix = Instruction::new_with_bytes(
        crate::ID,
        &ix_data,
        vec![AccountMeta::new_readonly(*authority.key, true)],
    );
    invoke_signed(
        &ix,
        std::slice::from_ref(authority),
        &[&[b"__event_authority", &[crate::EVENT_AUTHORITY_AND_BUMP.1]]],
    )
    .map_err(Into::into)
}

/// A market was created.
#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketInitialized {
    /// The new market account.
    pub market: Pubkey,
    /// Who may update it, resolve its disputes and withdraw its fees.
    pub authority: Pubkey,
    /// The authority's id for this market.
    pub market_id: u64,
    /// Parameters for jobs posted from now on.
    pub params: MarketParams,
    /// The mint amounts are counted in; `Pubkey::default()` for SOL.
    pub mint: Pubkey,
    /// The mint's decimals (9 for SOL).
    pub decimals: u8,
    /// The token market's vault; `Pubkey::default()` for SOL.
    pub vault: Pubkey,
}

/// The authority changed the parameters for future jobs or paused / resumed the market.
#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketUpdated {
    /// The market.
    pub market: Pubkey,
    /// Parameters for jobs posted from now on (jobs already posted keep theirs).
    pub params: MarketParams,
    /// Whether new posts and claims are blocked.
    pub paused: bool,
}

/// The authority withdrew accrued fees.
#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketFeesWithdrawn {
    /// The market.
    pub market: Pubkey,
    /// Where the lamports went.
    pub recipient: Pubkey,
    /// Lamports withdrawn.
    pub amount: u64,
    /// Fees still held by the market afterwards.
    pub fees_unclaimed: u64,
}

/// A worker registered (or registered again after deregistering, keeping its record).
#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRegistered {
    /// The market.
    pub market: Pubkey,
    /// The worker account.
    pub worker: Pubkey,
    /// The operator's wallet.
    pub operator: Pubkey,
    /// Lamports moved from the operator into the stake.
    pub stake: u64,
    /// Rent paid by the operator for a new account (0 when the account already existed).
    pub rent_paid: u64,
    /// The worker's hardware.
    pub hardware: Hardware,
}

/// A worker changed its stake, withdrew earnings or changed its hardware.
#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerUpdated {
    /// The worker account.
    pub worker: Pubkey,
    /// Lamports moved from the operator into the stake.
    pub stake_added: u64,
    /// Lamports of stake moved to the operator.
    pub stake_withdrawn: u64,
    /// Lamports of earnings moved to the operator.
    pub earnings_withdrawn: u64,
    /// Stake afterwards.
    pub stake: u64,
    /// Unwithdrawn earnings afterwards.
    pub earnings: u64,
    /// Hardware afterwards.
    pub hardware: Hardware,
}

/// A worker left the market; its account (and record) stays.
#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerDeregistered {
    /// The worker account.
    pub worker: Pubkey,
    /// The operator's wallet, which received the lamports.
    pub operator: Pubkey,
    /// Stake returned to the operator.
    pub stake_returned: u64,
    /// Earnings returned to the operator.
    pub earnings_returned: u64,
}

/// A poster's account in a market was created (before its first job).
#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PosterInitialized {
    /// The market.
    pub market: Pubkey,
    /// The poster's wallet.
    pub poster: Pubkey,
    /// The poster account (`["poster", market, poster]`).
    pub account: Pubkey,
    /// Rent the poster paid for it (kept: the account is never closed).
    pub rent_paid: u64,
}

/// A job was posted and its reward escrowed.
#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPosted {
    /// The market.
    pub market: Pubkey,
    /// The job account.
    pub job: Pubkey,
    /// The poster's id for the job.
    pub job_id: u64,
    /// The poster's wallet.
    pub poster: Pubkey,
    /// Lamports escrowed (fee included).
    pub reward: u64,
    /// Rent the poster paid for the job account (returned when it closes).
    pub rent_paid: u64,
    /// sha256 of the job spec.
    pub spec_hash: [u8; 32],
    /// Where the spec is.
    pub spec_uri: String,
    /// What a worker's device must offer.
    pub requirements: JobRequirements,
    /// Seconds a worker has to submit, from its claim.
    pub max_duration_s: i64,
    /// Money terms fixed for this job.
    pub terms: JobTerms,
}

/// The poster cancelled an open job.
#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCancelled {
    /// The job account (now closed).
    pub job: Pubkey,
    /// The poster's id for the job.
    pub job_id: u64,
    /// The poster's wallet.
    pub poster: Pubkey,
    /// Reward returned to the poster.
    pub reward_refunded: u64,
    /// Penalties from earlier abandons / reclaims paid to the poster.
    pub compensation: u64,
    /// Rent returned to the poster.
    pub rent_refunded: u64,
}

/// A worker claimed a job.
#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobClaimed {
    /// The job account.
    pub job: Pubkey,
    /// The poster's id for the job.
    pub job_id: u64,
    /// The worker account.
    pub worker: Pubkey,
    /// Lamports of the worker's stake at risk for this job.
    pub collateral: u64,
    /// Unix time by which the worker must submit.
    pub deadline: i64,
}

/// A worker gave a claimed job back before its deadline.
#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobAbandoned {
    /// The job account.
    pub job: Pubkey,
    /// The poster's id for the job.
    pub job_id: u64,
    /// The worker account.
    pub worker: Pubkey,
    /// Stake moved into the job's escrow for the poster.
    pub penalty: u64,
}

/// A worker submitted a result.
#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSubmitted {
    /// The job account.
    pub job: Pubkey,
    /// The poster's id for the job.
    pub job_id: u64,
    /// The worker account.
    pub worker: Pubkey,
    /// sha256 of the result manifest.
    pub result_hash: [u8; 32],
    /// Where the result is.
    pub result_uri: String,
    /// The metric the worker reports, in millionths.
    pub reported_metric: u64,
    /// Unix time until which the poster may dispute.
    pub challenge_ends_at: i64,
}

/// How a job reached `Paid`.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// The poster accepted the result.
    AcceptedByPoster,
    /// The challenge window passed without a dispute.
    FinalizedAfterWindow,
    /// The authority resolved a dispute for the worker.
    ResolvedForWorker,
    /// The verifiers' majority re-ran the disputed segment to the worker's committed state.
    UpheldByVerifiers,
    /// A dispute neither the verifiers nor the authority settled in time: the result stands.
    DisputeExpired,
}

/// A job was paid and closed.
#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPaid {
    /// The job account (now closed).
    pub job: Pubkey,
    /// The poster's id for the job.
    pub job_id: u64,
    /// The worker account, credited with the payout.
    pub worker: Pubkey,
    /// The poster's wallet.
    pub poster: Pubkey,
    /// How the job was settled.
    pub settlement: Settlement,
    /// Reward minus fee, added to the worker's earnings.
    pub payout: u64,
    /// Fee, added to the market's unclaimed fees.
    pub fee: u64,
    /// Penalties from earlier abandons / reclaims paid to the poster.
    pub compensation: u64,
    /// Rent returned to the poster.
    pub rent_refunded: u64,
}

/// The poster disputed a submitted result.
#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDisputed {
    /// The job account.
    pub job: Pubkey,
    /// The poster's id for the job.
    pub job_id: u64,
    /// The worker account.
    pub worker: Pubkey,
    /// The dispute account, holding the bond.
    pub dispute: Pubkey,
    /// The disputed segment's index.
    pub segment: u32,
    /// The segment's committed end state, which the verifiers re-run to.
    pub end_hash: [u8; 32],
    /// Lamports of bond moved from the poster into the dispute account.
    pub bond: u64,
    /// The slot after which the verifiers' draw takes its slot hash.
    pub disputed_slot: u64,
}

/// A market's verifier pool changed.
#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierPoolChanged {
    /// The worker account that joined (or refreshed its entry) or left.
    pub worker: Pubkey,
    /// True for a join, false for a leave.
    pub joined: bool,
    /// Stake pledged (the weight in draws); 0 on leaving.
    pub weight: u64,
    /// A lighter worker that lost its slot to this one in a full pool.
    pub evicted: Option<Pubkey>,
    /// Entries in the pool now.
    pub count: u8,
}

/// The verifiers of a dispute were drawn, or too few could be and it went to the authority.
#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisputeDrawn {
    /// The job account.
    pub job: Pubkey,
    /// The dispute account.
    pub dispute: Pubkey,
    /// The slot whose hash seeded the draw.
    pub drawn_slot: u64,
    /// The seated verifiers' worker accounts (all default when escalated).
    pub seats: [Pubkey; 3],
    /// Unix time until which seats may commit (0 when escalated).
    pub commit_ends_at: i64,
    /// Unix time until which seats may reveal (0 when escalated).
    pub reveal_ends_at: i64,
    /// Non-zero when fewer than three eligible verifiers were in the pool: the authority may
    /// rule until then.
    pub dispute_ends_at: i64,
}

/// A seated verifier committed to, or revealed, its end-state hash.
#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisputeVoted {
    /// The disputed job.
    pub job: Pubkey,
    /// The dispute account.
    pub dispute: Pubkey,
    /// The verifier's worker account.
    pub worker: Pubkey,
    /// The hash revealed; `None` for a commitment.
    pub revealed: Option<[u8; 32]>,
}

/// Voting ended: the seats were paid or forfeited, and the dispute decided or escalated.
#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisputeTallied {
    /// The job account.
    pub job: Pubkey,
    /// The dispute account.
    pub dispute: Pubkey,
    /// How the votes came out.
    pub tally: crate::state::Tally,
    /// The seated verifiers' worker accounts.
    pub seats: [Pubkey; 3],
    /// Lamports paid into each seat's earnings: its fee and its share of the others' forfeits.
    pub seat_fees: [u64; 3],
    /// Lamports of pledged stake each seat forfeited (shared among the majority's seats; held
    /// for the authority's ruling when there is no majority).
    pub seat_forfeits: [u64; 3],
    /// When undecided: Unix time until which the authority may rule (0 otherwise).
    pub dispute_ends_at: i64,
}

/// A dispute account was closed: its bond and forfeits went where the outcome says.
#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisputeClosed {
    /// The job account.
    pub job: Pubkey,
    /// The dispute account (now closed).
    pub dispute: Pubkey,
    /// The disputed worker account.
    pub worker: Pubkey,
    /// Lamports of bond the poster had posted.
    pub bond: u64,
    /// Lamports (bond and forfeits) added to the worker's earnings.
    pub to_worker: u64,
    /// Lamports returned to the poster above the account's rent (bond, forfeits, the rest of
    /// a fraud slash).
    pub to_poster: u64,
    /// The dispute account's rent, returned to the poster.
    pub rent_refunded: u64,
}

/// Why a job was refunded.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefundReason {
    /// The authority resolved the dispute for the poster; the worker was slashed.
    DisputeLost,
    /// The verifiers' majority found the disputed segment does not re-run to the worker's
    /// committed state; the worker was slashed by the fraud share.
    FraudFound,
}

/// A disputed job was refunded to the poster and closed.
#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRefunded {
    /// The job account (now closed).
    pub job: Pubkey,
    /// The poster's id for the job.
    pub job_id: u64,
    /// The worker account.
    pub worker: Pubkey,
    /// The poster's wallet.
    pub poster: Pubkey,
    /// Why.
    pub reason: RefundReason,
    /// Reward returned to the poster.
    pub reward_refunded: u64,
    /// Stake moved from the worker to the poster.
    pub slashed: u64,
    /// Penalties from earlier abandons / reclaims paid to the poster.
    pub compensation: u64,
    /// Rent returned to the poster.
    pub rent_refunded: u64,
}

/// A job whose worker missed its deadline was reclaimed and reopened.
#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobReclaimed {
    /// The job account.
    pub job: Pubkey,
    /// The poster's id for the job.
    pub job_id: u64,
    /// The worker account that missed the deadline.
    pub worker: Pubkey,
    /// Who cranked the reclaim.
    pub cranker: Pubkey,
    /// Stake moved into the job's escrow for the poster.
    pub to_poster: u64,
    /// Stake moved to the cranker.
    pub bounty: u64,
}

/// A poster withdrew token refunds credited to its poster account.
#[event]
pub struct PosterWithdrew {
    /// The market.
    pub market: Pubkey,
    /// The poster's wallet.
    pub poster: Pubkey,
    /// Base units of the mint withdrawn.
    pub amount: u64,
    /// Refunds left in the poster account.
    pub refunds: u64,
}
