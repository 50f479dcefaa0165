use anchor_lang::prelude::*;

use crate::{
    constants::{JOB_SEED, MARKET_SEED, MAX_URI_LEN, WORKER_SEED},
    errors::TensorgridError,
    events::JobSubmitted,
    state::{checked_add_i64, Job, JobState, Market, Worker},
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct JobSubmitArgs {
    /// sha256 of the result manifest.
    pub result_hash: [u8; 32],
    /// Where the manifest and weights can be fetched (≤ 200 bytes).
    pub result_uri: String,
    /// The spec's evaluation metric as measured by the worker, in millionths.
    pub reported_metric: u64,
}

#[event_cpi]
#[derive(Accounts)]
pub struct JobSubmit<'info> {
    pub operator: Signer<'info>,
    #[account(
        seeds = [MARKET_SEED, market.authority.as_ref(), &market.market_id.to_le_bytes()],
        bump = market.bump,
    )]
    pub market: Account<'info, Market>,
    #[account(
        has_one = operator @ TensorgridError::NotOperator,
        has_one = market @ TensorgridError::MarketMismatch,
        seeds = [WORKER_SEED, worker.market.as_ref(), worker.operator.as_ref()],
        bump = worker.bump,
    )]
    pub worker: Account<'info, Worker>,
    #[account(
        mut, has_one = market @ TensorgridError::MarketMismatch,
        seeds = [JOB_SEED, job.market.as_ref(), &job.job_id.to_le_bytes()],
        bump = job.bump,
    )]
    pub job: Account<'info, Job>,
}

impl JobSubmit<'_> {
    fn validate(&self, args: &JobSubmitArgs) -> Result<()> {
        require!(
            self.job.state == JobState::Claimed,
            TensorgridError::JobNotClaimed
        );
        require!(
            self.job.worker == Some(self.worker.key()),
            TensorgridError::NotAssignedWorker
        );
        require!(
            Clock::get()?.unix_timestamp <= self.job.deadline,
            TensorgridError::DeadlinePassed
        );
        require!(args.result_hash != [0; 32], TensorgridError::ZeroResultHash);
        require!(
            !args.result_uri.is_empty() && args.result_uri.len() <= MAX_URI_LEN,
            TensorgridError::ResultUriInvalid
        );
        Ok(())
    }

    #[access_control(ctx.accounts.validate(&args))]
    pub fn handler(ctx: Context<Self>, args: JobSubmitArgs) -> Result<()> {
        let now = Clock::get()?.unix_timestamp;
        let window = ctx.accounts.market.params.challenge_window_s;
        let job = &mut ctx.accounts.job;
        job.state = JobState::Submitted;
        job.result_hash = args.result_hash;
        job.result_uri = args.result_uri;
        job.reported_metric = args.reported_metric;
        job.submitted_at = now;
        job.challenge_ends_at = checked_add_i64(now, window)?;
        job.invariant(&job.to_account_info())?;
        emit_cpi!(JobSubmitted {
            job: job.key(),
            job_id: job.job_id,
            worker: ctx.accounts.worker.key(),
            result_hash: job.result_hash,
            result_uri: job.result_uri.clone(),
            reported_metric: job.reported_metric,
            challenge_ends_at: job.challenge_ends_at,
        });
        Ok(())
    }
}
