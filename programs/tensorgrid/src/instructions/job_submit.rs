use anchor_lang::prelude::*;

use crate::{
    constants::{JOB_SEED, MAX_URI_LEN, WORKER_SEED},
    errors::TensorgridError,
    events::JobSubmitted,
    state::{Job, JobState, Worker},
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct JobSubmitArgs {
    /// sha256 of the result manifest.
    pub result_hash: [u8; 32],
    /// Where the manifest and weights can be fetched (1 to 200 bytes).
    pub result_uri: String,
    /// The spec's evaluation metric as measured by the worker, in millionths.
    pub reported_metric: u64,
}

#[event_cpi]
#[derive(Accounts)]
pub struct JobSubmit<'info> {
    /// The worker's operator.
    pub operator: Signer<'info>,
    /// The worker holding the job.
    #[account(
        has_one = operator @ TensorgridError::NotOperator,
        seeds = [WORKER_SEED, worker.market.as_ref(), worker.operator.as_ref()],
        bump = worker.bump,
    )]
    pub worker: Account<'info, Worker>,
    /// The claimed job.
    #[account(
        mut,
        constraint = job.market == worker.market @ TensorgridError::MarketMismatch,
        seeds = [JOB_SEED, job.market.as_ref(), job.poster.as_ref(), &job.job_id.to_le_bytes()],
        bump = job.bump,
    )]
    pub job: Account<'info, Job>,
}

impl JobSubmit<'_> {
    fn validate(&self, args: &JobSubmitArgs) -> Result<()> {
        self.job.require_state(JobState::Claimed)?;
        self.job.require_assigned(&self.worker.key())?;
        self.job
            .require_before_deadline(Clock::get()?.unix_timestamp)?;
        ensure!(args.result_hash != [0; 32], TensorgridError::ZeroResultHash);
        ensure!(
            !args.result_uri.is_empty() && args.result_uri.len() <= MAX_URI_LEN,
            TensorgridError::ResultUriInvalid
        );
        Ok(())
    }

    #[access_control(ctx.accounts.validate(&args))]
    pub fn handler(ctx: Context<Self>, args: JobSubmitArgs) -> Result<()> {
        let now = Clock::get()?.unix_timestamp;
        let job = &mut ctx.accounts.job;
        job.submit(args.result_hash, args.result_uri, args.reported_metric, now)?;
        job.invariant(&job.to_account_info())?;
        emit_event!(
            ctx,
            JobSubmitted {
                job: job.key(),
                job_id: job.job_id,
                worker: ctx.accounts.worker.key(),
                result_hash: job.result_hash,
                result_uri: job.result_uri.clone(),
                reported_metric: job.reported_metric,
                challenge_ends_at: job.challenge_ends_at,
            }
        );
        Ok(())
    }
}
