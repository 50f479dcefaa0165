use anchor_lang::prelude::*;

use crate::{
    constants::WORKER_SEED,
    errors::TensorgridError,
    events::WorkerDeregistered,
    state::{checked_add, move_lamports, Worker},
};

#[event_cpi]
#[derive(Accounts)]
pub struct WorkerDeregister<'info> {
    /// The worker's operator; receives the stake and the earnings.
    #[account(mut)]
    pub operator: Signer<'info>,
    /// The worker account. It is not closed: its record of completed, abandoned and slashed
    /// jobs stays readable, and `worker_register` reuses it.
    #[account(
        mut,
        has_one = operator @ TensorgridError::NotOperator,
        seeds = [WORKER_SEED, worker.market.as_ref(), worker.operator.as_ref()],
        bump = worker.bump,
    )]
    pub worker: Account<'info, Worker>,
}

impl WorkerDeregister<'_> {
    fn validate(&self) -> Result<()> {
        self.worker.require_registered()?;
        self.worker.require_idle()?;
        self.worker.require_unpledged()
    }

    #[access_control(ctx.accounts.validate())]
    pub fn handler(ctx: Context<Self>) -> Result<()> {
        let worker_info = ctx.accounts.worker.to_account_info();
        let worker = &mut ctx.accounts.worker;
        let (stake, earnings) = (worker.stake, worker.earnings);
        move_lamports(
            &worker_info,
            &ctx.accounts.operator.to_account_info(),
            checked_add(stake, earnings)?,
        )?;
        worker.stake = 0;
        worker.earnings = 0;
        worker.registered = false;
        worker.invariant(&worker_info)?;
        emit_event!(
            ctx,
            WorkerDeregistered {
                worker: worker.key(),
                operator: worker.operator,
                stake_returned: stake,
                earnings_returned: earnings,
            }
        );
        Ok(())
    }
}
