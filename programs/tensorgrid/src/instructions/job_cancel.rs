use anchor_lang::prelude::*;

use crate::{
    constants::JOB_SEED,
    errors::TensorgridError,
    events::JobCancelled,
    state::{Job, JobState},
};

#[event_cpi]
#[derive(Accounts)]
pub struct JobCancel<'info> {
    #[account(mut)]
    pub poster: Signer<'info>,
    /// Closing refunds reward and rent to the poster.
    #[account(
        mut,
        close = poster,
        has_one = poster @ TensorgridError::NotPoster,
        seeds = [JOB_SEED, job.market.as_ref(), &job.job_id.to_le_bytes()],
        bump = job.bump,
    )]
    pub job: Account<'info, Job>,
}

impl JobCancel<'_> {
    fn validate(&self) -> Result<()> {
        require!(
            self.job.state == JobState::Open,
            TensorgridError::JobNotOpen
        );
        Ok(())
    }

    #[access_control(ctx.accounts.validate())]
    pub fn handler(ctx: Context<Self>) -> Result<()> {
        emit_cpi!(JobCancelled {
            job: ctx.accounts.job.key(),
            job_id: ctx.accounts.job.job_id,
            refunded: ctx.accounts.job.to_account_info().lamports(),
        });
        Ok(())
    }
}
