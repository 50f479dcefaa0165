use anchor_lang::prelude::*;

use crate::{
    constants::JOB_SEED,
    errors::TensorgridError,
    events::JobDisputed,
    state::{Job, JobState},
};

#[event_cpi]
#[derive(Accounts)]
pub struct JobDispute<'info> {
    /// The job's poster.
    pub poster: Signer<'info>,
    /// The submitted job, inside its challenge window.
    #[account(
        mut, has_one = poster @ TensorgridError::NotPoster,
        seeds = [JOB_SEED, job.market.as_ref(), job.poster.as_ref(), &job.job_id.to_le_bytes()],
        bump = job.bump,
    )]
    pub job: Account<'info, Job>,
}

impl JobDispute<'_> {
    fn validate(&self) -> Result<()> {
        self.job.require_state(JobState::Submitted)
    }

    #[access_control(ctx.accounts.validate())]
    pub fn handler(ctx: Context<Self>) -> Result<()> {
        let job = &mut ctx.accounts.job;
        job.dispute(Clock::get()?.unix_timestamp)?;
        job.invariant(&job.to_account_info())?;
        emit_event!(
            ctx,
            JobDisputed {
                job: job.key(),
                job_id: job.job_id,
                worker: job.worker,
                dispute_ends_at: job.dispute_ends_at,
            }
        );
        Ok(())
    }
}
