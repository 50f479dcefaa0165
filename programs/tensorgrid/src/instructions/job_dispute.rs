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
    pub poster: Signer<'info>,
    #[account(
        mut, has_one = poster @ TensorgridError::NotPoster,
        seeds = [JOB_SEED, job.market.as_ref(), &job.job_id.to_le_bytes()],
        bump = job.bump,
    )]
    pub job: Account<'info, Job>,
}

impl JobDispute<'_> {
    fn validate(&self) -> Result<()> {
        require!(
            self.job.state == JobState::Submitted,
            TensorgridError::JobNotSubmitted
        );
        require!(
            Clock::get()?.unix_timestamp <= self.job.challenge_ends_at,
            TensorgridError::ChallengeWindowClosed
        );
        Ok(())
    }

    #[access_control(ctx.accounts.validate())]
    pub fn handler(ctx: Context<Self>) -> Result<()> {
        let job = &mut ctx.accounts.job;
        job.state = JobState::Disputed;
        job.invariant(&job.to_account_info())?;
        emit_cpi!(JobDisputed {
            job: job.key(),
            job_id: job.job_id,
            worker: job.worker.unwrap_or_default(),
        });
        Ok(())
    }
}
