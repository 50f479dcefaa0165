use anchor_lang::prelude::*;

use crate::{
    constants::{VERIFIER_POOL_SEED, WORKER_SEED},
    errors::TensorgridError,
    events::VerifierPoolChanged,
    state::{VerifierPool, Worker},
};

#[event_cpi]
#[derive(Accounts)]
pub struct VerifierLeave<'info> {
    /// The worker's operator.
    pub operator: Signer<'info>,
    /// The worker leaving (without seats: a seat's reserve is part of the pledge); its stake
    /// is no longer pledged.
    #[account(
        mut,
        has_one = operator @ TensorgridError::NotOperator,
        seeds = [WORKER_SEED, worker.market.as_ref(), worker.operator.as_ref()],
        bump = worker.bump,
    )]
    pub worker: Account<'info, Worker>,
    /// The market's verifier pool (a worker evicted from it leaves to free its pledge).
    #[account(
        mut,
        seeds = [VERIFIER_POOL_SEED, worker.market.as_ref()],
        bump = pool.load()?.bump,
    )]
    pub pool: AccountLoader<'info, VerifierPool>,
}

impl VerifierLeave<'_> {
    fn validate(&self) -> Result<()> {
        ensure!(self.worker.open_seats == 0, TensorgridError::VerifierSeated);
        Ok(())
    }

    #[access_control(ctx.accounts.validate())]
    pub fn handler(ctx: Context<Self>) -> Result<()> {
        let a = &mut *ctx.accounts;
        let count = {
            let mut pool = a.pool.load_mut()?;
            // Leaving changes the pool: not while a draw is pending. A worker evicted from it
            // clears its pledge at any time.
            if pool.contains(&a.worker.key()) {
                pool.require_thawed()?;
            }
            pool.leave(&a.worker.key());
            pool.invariant()?;
            pool.count
        };
        a.worker.pooled_stake = 0;
        let event = VerifierPoolChanged {
            worker: a.worker.key(),
            joined: false,
            weight: 0,
            evicted: None,
            count,
        };
        emit_event!(ctx, event);
        Ok(())
    }
}
