//! tensorgrid: an on-chain market for decentralised AI training.
//!
//! Posters escrow a reward for a training job; staked workers claim it, train, and submit the
//! sha256 of a result manifest; the reward is released on acceptance (or after a challenge
//! window), and disputed segments are re-run by verifiers drawn by stake, whose majority
//! decides (the market authority rules only when they cannot); part of the collateral a claim
//! puts at risk is slashed when a worker misses its deadline or its result is shown a fraud. Every job carries its own money terms,
//! fixed when it is posted. This file only dispatches: each instruction lives in
//! `instructions/`, the rules in `state/`.

#![allow(unexpected_cfgs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::arithmetic_side_effects,
        clippy::unwrap_used,
        clippy::expect_used
    )
)]

use anchor_lang::prelude::*;
#[cfg(target_os = "solana")]
use solana_compiler_builtins as _;

pub mod constants;
#[macro_use]
pub mod errors;
#[macro_use]
pub mod events;
pub mod instructions;
pub mod state;

use instructions::*;

const TENSORGRID_ID: Pubkey =
    Pubkey::from_str_const("BdfnHUsHP8poe7eBEXDBkPxPh7JJ1Dvu6uckFYwdE14t");

/// The address the bytecode answers at: tensorgrid's own, unless `TENSORGRID_BUILD_PROGRAM_ID`
/// named another when it was compiled (`scripts/build-sbf.sh --program-id ADDRESS`: a
/// deployment of your own under a program keypair you hold, with no source edit). Anchor's
/// entrypoint refuses to run at any other address.
#[cfg(target_os = "solana")]
const BUILD_PROGRAM_ID: Pubkey = match option_env!("TENSORGRID_BUILD_PROGRAM_ID") {
    Some(address) => Pubkey::from_str_const(address),
    None => TENSORGRID_ID,
};
/// Host builds (the clients, the worker, the IDL, the native tests) are always tensorgrid's
/// own: a variable left in a shell must not move every address they derive. Clients of
/// another deployment say so at run time (`--program-id`).
#[cfg(not(target_os = "solana"))]
const BUILD_PROGRAM_ID: Pubkey = TENSORGRID_ID;

declare_id!(BUILD_PROGRAM_ID);

#[program]
pub mod tensorgrid {
    use super::*;

    /// Creates a market whose authority is the signer. Parameters are checked against the
    /// program's bounds (fee ≤ 20 %, collateral ≤ 5 × reward, windows ≤ 30 days) and each
    /// other (abandoning always costs less than missing a deadline).
    pub fn market_init(ctx: Context<MarketInit>, args: MarketInitArgs) -> Result<()> {
        MarketInit::handler(ctx, args)
    }

    /// Authority only: sets the parameters for jobs posted from now on, and/or pauses new
    /// posts and claims. Jobs already posted keep their terms.
    pub fn market_update(ctx: Context<MarketUpdate>, args: MarketUpdateArgs) -> Result<()> {
        MarketUpdate::handler(ctx, args)
    }

    /// Authority only: moves accrued fees from the market account to any recipient.
    pub fn market_withdraw_fees(
        ctx: Context<MarketWithdrawFees>,
        args: MarketWithdrawFeesArgs,
    ) -> Result<()> {
        MarketWithdrawFees::handler(ctx, args)
    }

    /// Registers the signer as a worker with a stake (at least the market's minimum) and a
    /// hardware profile. A deregistered worker registers again into its old account and keeps
    /// its record.
    pub fn worker_register(ctx: Context<WorkerRegister>, args: WorkerRegisterArgs) -> Result<()> {
        WorkerRegister::handler(ctx, args)
    }

    /// Operator only: adds or withdraws stake, withdraws earnings, changes hardware. Stake
    /// withdrawals and hardware changes need the worker idle.
    pub fn worker_update(ctx: Context<WorkerUpdate>, args: WorkerUpdateArgs) -> Result<()> {
        WorkerUpdate::handler(ctx, args)
    }

    /// Operator only, while idle: returns stake and earnings; the account and its record stay.
    pub fn worker_deregister(ctx: Context<WorkerDeregister>) -> Result<()> {
        WorkerDeregister::handler(ctx)
    }

    /// Creates the signer's poster account in a market, which keeps its job ids growing (so a
    /// job address is never used twice). Once per market, before the first `job_post`.
    pub fn poster_init(ctx: Context<PosterInit>) -> Result<()> {
        PosterInit::handler(ctx)
    }

    /// Token market only: the poster withdraws refunds, compensation and returned bonds that
    /// settlements credited to its poster account (a settlement never pays a poster's token
    /// account, which the poster could close or have frozen).
    pub fn poster_withdraw(ctx: Context<PosterWithdraw>, args: PosterWithdrawArgs) -> Result<()> {
        PosterWithdraw::handler(ctx, args)
    }

    /// Posts a job: escrows the reward in a new job account at `["job", market, poster, job_id]`
    /// with the bump `job_bump` (the one `find_program_address` gives; `job_id` at least the
    /// poster's `next_job_id`) and fixes its money terms, which must be the market's current
    /// ones exactly as the poster states them in `args.terms`.
    pub fn job_post(ctx: Context<JobPost>, args: JobPostArgs, job_bump: u8) -> Result<()> {
        JobPost::handler(ctx, args, job_bump)
    }

    /// Poster only, while the job is open: returns reward, compensation and rent.
    pub fn job_cancel(ctx: Context<JobCancel>) -> Result<()> {
        JobCancel::handler(ctx)
    }

    /// Operator of an idle worker with enough stake and matching hardware: takes an open job
    /// and puts the job's collateral at risk until the deadline. `args.expected` states the
    /// job's reward, spec hash, requirements, duration and terms as the worker read them; the
    /// claim is refused on any difference.
    pub fn job_claim(ctx: Context<JobClaim>, args: JobClaimArgs) -> Result<()> {
        JobClaim::handler(ctx, args)
    }

    /// The holding worker, before its deadline: gives the job back, paying the abandon penalty
    /// into the escrow for the poster. The job reopens; this worker may not claim it again.
    pub fn job_abandon(ctx: Context<JobAbandon>) -> Result<()> {
        JobAbandon::handler(ctx)
    }

    /// The holding worker, before its deadline: records the result hash, URI and metric and
    /// opens the challenge window.
    pub fn job_submit(ctx: Context<JobSubmit>, args: JobSubmitArgs) -> Result<()> {
        JobSubmit::handler(ctx, args)
    }

    /// Poster only: accepts a submitted result and pays at once.
    pub fn job_accept(ctx: Context<JobAccept>) -> Result<()> {
        JobAccept::handler(ctx)
    }

    /// Anyone, after the challenge window: pays a submitted job.
    pub fn job_finalize(ctx: Context<JobFinalize>) -> Result<()> {
        JobFinalize::handler(ctx)
    }

    /// Poster only, inside the challenge window: disputes one segment of the result, quoting
    /// its committed start and end states, and posts the job's bond. Verifiers are drawn next.
    pub fn job_dispute(ctx: Context<JobDispute>, args: JobDisputeArgs) -> Result<()> {
        JobDispute::handler(ctx, args)
    }

    /// Anyone, in a slot after the dispute's: seats three verifiers drawn from the pool by
    /// stake from that slot's hash (their worker accounts as remaining accounts, in seat
    /// order), or hands the dispute to the authority when fewer than three are eligible.
    pub fn dispute_draw(ctx: Context<DisputeDraw>) -> Result<()> {
        DisputeDraw::handler(ctx)
    }

    /// A seated verifier's operator: commits to the end-state hash its re-run reached, then
    /// reveals it.
    pub fn dispute_vote(ctx: Context<DisputeVote>, args: DisputeVoteArgs) -> Result<()> {
        DisputeVote::handler(ctx, args)
    }

    /// Anyone, once voting is over: pays the majority's verifiers, takes the forfeits of the
    /// others, and settles the job by the majority (worker upheld, or fraud), or hands it to
    /// the authority when there is no majority.
    pub fn dispute_settle(ctx: Context<DisputeSettle>) -> Result<()> {
        DisputeSettle::handler(ctx)
    }

    /// Authority only, on a dispute the verifiers could not settle, inside the resolution
    /// window: pays the worker (with the bond), or refunds the poster (with the bond) and
    /// slashes the job's collateral (never more than the job's terms allow).
    pub fn job_resolve(ctx: Context<JobResolve>, args: JobResolveArgs) -> Result<()> {
        JobResolve::handler(ctx, args)
    }

    /// Anyone, after the resolution window of a dispute nobody settled: the result stands
    /// (the worker is paid under the job's terms) and the poster's bond goes back.
    pub fn job_dispute_timeout(ctx: Context<JobDisputeTimeout>) -> Result<()> {
        JobDisputeTimeout::handler(ctx)
    }

    /// A registered worker's operator: joins the market's verifier pool pledging part of its
    /// stake (its weight in draws, out of which its seats' forfeits come; no claim may use
    /// it), or changes its pledge.
    pub fn verifier_join(ctx: Context<VerifierJoin>, args: VerifierJoinArgs) -> Result<()> {
        VerifierJoin::handler(ctx, args)
    }

    /// A worker's operator, holding no seat: leaves the verifier pool (or clears the pledge of
    /// an entry it lost to a heavier joiner).
    pub fn verifier_leave(ctx: Context<VerifierLeave>) -> Result<()> {
        VerifierLeave::handler(ctx)
    }

    /// Anyone, after a missed deadline: slashes the job's collateral (bounty to the caller, the
    /// rest into the escrow for the poster) and reopens the job.
    pub fn job_reclaim(ctx: Context<JobReclaim>) -> Result<()> {
        JobReclaim::handler(ctx)
    }
}
