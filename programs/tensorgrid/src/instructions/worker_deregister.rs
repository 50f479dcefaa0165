use anchor_lang::prelude::*;

use crate::{
    constants::WORKER_SEED, errors::TensorgridError, events::WorkerDeregistered, state::Worker,
};

#[event_cpi]
#[derive(Accounts)]
pub struct WorkerDeregister<'info> {
    #[account(mut)]
    pub operator: Signer<'info>,
    /// Closing returns stake and rent to the operator.
    #[account(
        mut,
        close = operator,
        has_one = operator @ TensorgridError::NotOperator,
        seeds = [WORKER_SEED, worker.market.as_ref(), worker.operator.as_ref()],
        bump = worker.bump,
    )]
    pub worker: Account<'info, Worker>,
}

impl WorkerDeregister<'_> {
    fn validate(&self) -> Result<()> {
        require!(
            self.worker.active_job.is_none(),
            TensorgridError::WorkerHasActiveJob
        );
        Ok(())
    }

    #[access_control(ctx.accounts.validate())]
    pub fn handler(ctx: Context<Self>) -> Result<()> {
        emit_cpi!(WorkerDeregistered {
            worker: ctx.accounts.worker.key(),
            operator: ctx.accounts.operator.key(),
            returned: ctx.accounts.worker.to_account_info().lamports(),
        });
        Ok(())
    }
}
