use anchor_lang::prelude::*;

use crate::{
    constants::JOB_SEED,
    errors::TensorgridError,
    events::JobCancelled,
    state::{checked_sub, Job, JobState},
};

#[event_cpi]
#[derive(Accounts)]
pub struct JobCancel<'info> {
    /// The job's poster; receives reward, compensation and rent.
    #[account(mut)]
    pub poster: Signer<'info>,
    /// The job, closed to the poster. Only an open job can be cancelled.
    #[account(
        mut,
        close = poster,
        has_one = poster @ TensorgridError::NotPoster,
        seeds = [JOB_SEED, job.market.as_ref(), job.poster.as_ref(), &job.job_id.to_le_bytes()],
        bump = job.bump,
    )]
    pub job: Account<'info, Job>,
}

impl JobCancel<'_> {
    fn validate(&self) -> Result<()> {
        self.job.require_state(JobState::Open)
    }

    #[access_control(ctx.accounts.validate())]
    pub fn handler(ctx: Context<Self>) -> Result<()> {
        let job = &ctx.accounts.job;
        let held = job.to_account_info().lamports();
        emit_event!(
            ctx,
            JobCancelled {
                job: job.key(),
                job_id: job.job_id,
                poster: job.poster,
                reward_refunded: job.reward,
                compensation: job.compensation,
                rent_refunded: checked_sub(held, job.escrowed()?)?,
            }
        );
        Ok(())
    }
}
