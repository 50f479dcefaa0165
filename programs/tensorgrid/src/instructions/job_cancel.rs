use anchor_lang::prelude::*;

use super::settle::closing;
use crate::{
    constants::JOB_SEED,
    errors::TensorgridError,
    events::JobCancelled,
    state::{Job, JobState, Poster, Unit},
};

#[event_cpi]
#[derive(Accounts)]
pub struct JobCancel<'info> {
    /// The job's poster; receives reward, compensation and rent (in a token market the rent;
    /// reward and compensation are credited to the poster account).
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
    /// Token market only: the poster's account in this market, credited with the reward and
    /// compensation (`poster_withdraw` takes them out, in the same transaction if the poster
    /// likes). Not needed in a SOL market.
    #[account(
        mut,
        constraint = poster_account.market == job.market
            && poster_account.wallet == job.poster @ TensorgridError::PosterAccountMismatch,
    )]
    pub poster_account: Option<Account<'info, Poster>>,
}

impl JobCancel<'_> {
    fn validate(&self) -> Result<()> {
        self.job.require_state(JobState::Open)
    }

    #[access_control(ctx.accounts.validate())]
    pub fn handler(ctx: Context<Self>) -> Result<()> {
        let a = &mut *ctx.accounts;
        match (a.job.unit(), &mut a.poster_account) {
            (Unit::Lamports, _) => {}
            (Unit::Token, None) => {
                return Err(crate::errors::fail(TensorgridError::PosterAccountMismatch));
            }
            (Unit::Token, Some(account)) => account.credit(a.job.escrowed()?)?,
        }
        let close = closing(&a.job)?;
        let job = &ctx.accounts.job;
        emit_event!(
            ctx,
            JobCancelled {
                job: job.key(),
                job_id: job.job_id,
                poster: job.poster,
                reward_refunded: job.reward,
                compensation: close.compensation,
                rent_refunded: close.rent_refunded,
            }
        );
        Ok(())
    }
}
