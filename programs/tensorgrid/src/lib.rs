//! tensorgrid: an on-chain market for decentralised AI training.
//!
//! Posters escrow a reward for a training job; staked workers claim it, train, and submit the
//! sha256 of a result manifest; the reward is released on acceptance (or after a challenge
//! window), refunded on a lost dispute, and the stake of a worker that misses its deadline is
//! slashed. This file only dispatches: each instruction lives in `instructions/`.

#![allow(unexpected_cfgs)]

use anchor_lang::prelude::*;
#[cfg(target_os = "solana")]
use solana_compiler_builtins as _;

pub mod constants;
pub mod errors;
pub mod events;
pub mod instructions;
pub mod state;

use instructions::*;

declare_id!("BdfnHUsHP8poe7eBEXDBkPxPh7JJ1Dvu6uckFYwdE14t");

#[program]
pub mod tensorgrid {
    use super::*;

    pub fn market_init(ctx: Context<MarketInit>, args: MarketInitArgs) -> Result<()> {
        MarketInit::handler(ctx, args)
    }

    pub fn market_update(ctx: Context<MarketUpdate>, args: MarketUpdateArgs) -> Result<()> {
        MarketUpdate::handler(ctx, args)
    }

    pub fn worker_register(ctx: Context<WorkerRegister>, args: WorkerRegisterArgs) -> Result<()> {
        WorkerRegister::handler(ctx, args)
    }

    pub fn worker_update(ctx: Context<WorkerUpdate>, args: WorkerUpdateArgs) -> Result<()> {
        WorkerUpdate::handler(ctx, args)
    }

    pub fn worker_deregister(ctx: Context<WorkerDeregister>) -> Result<()> {
        WorkerDeregister::handler(ctx)
    }

    pub fn job_post(ctx: Context<JobPost>, args: JobPostArgs) -> Result<()> {
        JobPost::handler(ctx, args)
    }

    pub fn job_cancel(ctx: Context<JobCancel>) -> Result<()> {
        JobCancel::handler(ctx)
    }

    pub fn job_claim(ctx: Context<JobClaim>) -> Result<()> {
        JobClaim::handler(ctx)
    }

    pub fn job_abandon(ctx: Context<JobAbandon>) -> Result<()> {
        JobAbandon::handler(ctx)
    }

    pub fn job_submit(ctx: Context<JobSubmit>, args: JobSubmitArgs) -> Result<()> {
        JobSubmit::handler(ctx, args)
    }

    pub fn job_accept(ctx: Context<JobAccept>) -> Result<()> {
        JobAccept::handler(ctx)
    }

    pub fn job_finalize(ctx: Context<JobFinalize>) -> Result<()> {
        JobFinalize::handler(ctx)
    }

    pub fn job_dispute(ctx: Context<JobDispute>) -> Result<()> {
        JobDispute::handler(ctx)
    }

    pub fn job_resolve(ctx: Context<JobResolve>, args: JobResolveArgs) -> Result<()> {
        JobResolve::handler(ctx, args)
    }

    pub fn job_reclaim(ctx: Context<JobReclaim>) -> Result<()> {
        JobReclaim::handler(ctx)
    }
}
