use anchor_lang::{
    prelude::*,
    system_program::{transfer, Transfer},
};

use crate::{
    constants::{JOB_SEED, MARKET_SEED, MAX_URI_LEN},
    errors::TensorgridError,
    events::JobPosted,
    state::{checked_add, rent_exempt_minimum, Job, JobRequirements, JobState, Market},
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct JobPostArgs {
    /// Lamports escrowed for the worker, fee included.
    pub reward: u64,
    /// sha256 of the job-spec JSON.
    pub spec_hash: [u8; 32],
    /// Where the job spec can be fetched (≤ 200 bytes).
    pub spec_uri: String,
    pub requirements: JobRequirements,
    /// Seconds a worker has, from its claim, to submit a result.
    pub max_duration_s: i64,
}

#[event_cpi]
#[derive(Accounts)]
pub struct JobPost<'info> {
    #[account(mut)]
    pub poster: Signer<'info>,
    #[account(
        mut,
        seeds = [MARKET_SEED, market.authority.as_ref(), &market.market_id.to_le_bytes()],
        bump = market.bump,
    )]
    pub market: Account<'info, Market>,
    /// The job id is the market's counter, so clients derive the address from `market.job_count`.
    #[account(
        init,
        payer = poster,
        space = Job::SPACE,
        seeds = [JOB_SEED, market.key().as_ref(), &market.job_count.to_le_bytes()],
        bump,
    )]
    pub job: Account<'info, Job>,
    pub system_program: Program<'info, System>,
}

impl JobPost<'_> {
    fn validate(&self, args: &JobPostArgs) -> Result<()> {
        require!(!self.market.paused, TensorgridError::MarketPaused);
        require!(args.reward > 0, TensorgridError::ZeroReward);
        // Rent plus reward must be representable, or the escrow invariant cannot hold.
        checked_add(rent_exempt_minimum(Job::SPACE)?, args.reward)?;
        require!(
            !args.spec_uri.is_empty() && args.spec_uri.len() <= MAX_URI_LEN,
            TensorgridError::SpecUriInvalid
        );
        require!(args.spec_hash != [0; 32], TensorgridError::ZeroSpecHash);
        require!(
            args.max_duration_s > 0 && args.max_duration_s <= self.market.params.max_claim_s,
            TensorgridError::InvalidMaxDuration
        );
        Ok(())
    }

    #[access_control(ctx.accounts.validate(&args))]
    pub fn handler(ctx: Context<Self>, args: JobPostArgs) -> Result<()> {
        transfer(
            CpiContext::new(
                ctx.accounts.system_program.key(),
                Transfer {
                    from: ctx.accounts.poster.to_account_info(),
                    to: ctx.accounts.job.to_account_info(),
                },
            ),
            args.reward,
        )?;
        let market = &mut ctx.accounts.market;
        let job_id = market.job_count;
        market.job_count = checked_add(job_id, 1)?;
        let job = &mut ctx.accounts.job;
        job.set_inner(Job {
            market: market.key(),
            job_id,
            poster: ctx.accounts.poster.key(),
            state: JobState::Open,
            reward: args.reward,
            spec_hash: args.spec_hash,
            spec_uri: args.spec_uri,
            requirements: args.requirements,
            max_duration_s: args.max_duration_s,
            created_at: Clock::get()?.unix_timestamp,
            worker: None,
            claimed_at: 0,
            deadline: 0,
            result_hash: [0; 32],
            result_uri: String::new(),
            reported_metric: 0,
            submitted_at: 0,
            challenge_ends_at: 0,
            bump: ctx.bumps.job,
        });
        job.invariant(&job.to_account_info())?;
        emit_cpi!(JobPosted {
            market: job.market,
            job: job.key(),
            job_id,
            poster: job.poster,
            reward: job.reward,
            spec_hash: job.spec_hash,
            spec_uri: job.spec_uri.clone(),
            requirements: job.requirements,
            max_duration_s: job.max_duration_s,
        });
        Ok(())
    }
}
