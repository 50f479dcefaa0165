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
    /// The poster's id for the job, part of its address: any value not already used by this
    /// poster in this market (clients pick a random or increasing one).
    pub job_id: u64,
    /// Lamports escrowed for the worker, fee included.
    pub reward: u64,
    /// sha256 of the job-spec JSON.
    pub spec_hash: [u8; 32],
    /// Where the job spec can be fetched (1 to 200 bytes).
    pub spec_uri: String,
    /// What a worker's device must offer to claim the job.
    pub requirements: JobRequirements,
    /// Seconds a worker has, from its claim, to submit a result (at most the market's
    /// `max_claim_s`).
    pub max_duration_s: i64,
}

#[event_cpi]
#[derive(Accounts)]
#[instruction(args: JobPostArgs)]
pub struct JobPost<'info> {
    /// The AI developer: pays the reward and the job account's rent.
    #[account(mut)]
    pub poster: Signer<'info>,
    /// The market to post in (its job counter moves).
    #[account(
        mut,
        seeds = [MARKET_SEED, market.authority.as_ref(), &market.market_id.to_le_bytes()],
        bump = market.bump,
    )]
    pub market: Account<'info, Market>,
    /// The new job: `["job", market, poster, job_id LE]`.
    #[account(
        init,
        payer = poster,
        space = Job::SPACE,
        seeds = [JOB_SEED, market.key().as_ref(), poster.key().as_ref(), &args.job_id.to_le_bytes()],
        bump,
    )]
    pub job: Account<'info, Job>,
    pub system_program: Program<'info, System>,
}

impl JobPost<'_> {
    fn validate(&self, args: &JobPostArgs) -> Result<()> {
        let params = &self.market.params;
        require!(!self.market.paused, TensorgridError::MarketPaused);
        require!(args.reward > 0, TensorgridError::ZeroReward);
        // Rent plus reward must be representable, or the escrow invariant cannot hold; the
        // collateral must be computable and non-zero (the fee, at most 20 % of the reward,
        // always is).
        checked_add(self.job.to_account_info().lamports(), args.reward)?;
        let terms = params.job_terms();
        require!(
            terms.collateral(args.reward)? > 0,
            TensorgridError::RewardTooSmall
        );
        require!(
            !args.spec_uri.is_empty() && args.spec_uri.len() <= MAX_URI_LEN,
            TensorgridError::SpecUriInvalid
        );
        require!(args.spec_hash != [0; 32], TensorgridError::ZeroSpecHash);
        require!(
            args.max_duration_s > 0 && args.max_duration_s <= params.max_claim_s,
            TensorgridError::InvalidMaxDuration
        );
        Ok(())
    }

    #[access_control(ctx.accounts.validate(&args))]
    pub fn handler(ctx: Context<Self>, args: JobPostArgs) -> Result<()> {
        let rent = rent_exempt_minimum(Job::SPACE)?;
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
        market.record_post()?;
        let job = &mut ctx.accounts.job;
        job.set_inner(Job {
            market: market.key(),
            poster: ctx.accounts.poster.key(),
            worker: Pubkey::default(),
            state: JobState::Open,
            job_id: args.job_id,
            reward: args.reward,
            collateral: 0,
            compensation: 0,
            spec_hash: args.spec_hash,
            result_hash: [0; 32],
            reported_metric: 0,
            requirements: args.requirements,
            terms: market.params.job_terms(),
            max_duration_s: args.max_duration_s,
            created_at: Clock::get()?.unix_timestamp,
            claimed_at: 0,
            deadline: 0,
            submitted_at: 0,
            challenge_ends_at: 0,
            dispute_ends_at: 0,
            reopened_at: 0,
            barred_worker: Pubkey::default(),
            bump: ctx.bumps.job,
            spec_uri: args.spec_uri,
            result_uri: String::new(),
        });
        job.invariant(&job.to_account_info())?;
        emit_cpi!(JobPosted {
            market: job.market,
            job: job.key(),
            job_id: job.job_id,
            poster: job.poster,
            reward: job.reward,
            rent_paid: rent,
            spec_hash: job.spec_hash,
            spec_uri: job.spec_uri.clone(),
            requirements: job.requirements,
            max_duration_s: job.max_duration_s,
            terms: job.terms,
        });
        Ok(())
    }
}
