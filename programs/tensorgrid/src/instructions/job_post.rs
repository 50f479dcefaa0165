use anchor_lang::{
    prelude::*,
    system_program::{
        allocate, assign, create_account, transfer, Allocate, Assign, CreateAccount, Transfer,
    },
};

use crate::{
    constants::{JOB_SEED, MARKET_SEED, MAX_URI_LEN, POSTER_SEED},
    errors::TensorgridError,
    events::JobPosted,
    state::{
        checked_add, rent_exempt_minimum, Job, JobRequirements, JobState, JobTerms, Market, Poster,
        Unit,
    },
};

use super::vault;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct JobPostArgs {
    /// The poster's id for the job, part of its address: at least the poster account's
    /// `next_job_id` (ids only grow, so an address is never used twice). `u64::MAX` is never
    /// accepted, so a post at `u64::MAX - 1` is the poster's last in this market.
    pub job_id: u64,
    /// Escrowed for the worker, fee included, in the market's unit.
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
    /// The money terms the poster agrees to: the market's current parameters and its mint as
    /// the poster read them (`Market::job_terms`). Refused if the market's differ when the post
    /// lands, so an authority's update cannot change a pending post's terms.
    pub terms: JobTerms,
}

#[event_cpi]
#[derive(Accounts)]
#[instruction(args: JobPostArgs, job_bump: u8)]
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
    /// The poster's account in this market (`poster_init`): its job-id counter moves.
    #[account(
        mut,
        seeds = [POSTER_SEED, market.key().as_ref(), poster.key().as_ref()],
        bump = poster_account.bump,
    )]
    pub poster_account: Account<'info, Poster>,
    /// The new job: `["job", market, poster, job_id LE]` at the bump `job_bump` (the client's
    /// `find_program_address`), created by this instruction.
    /// CHECK: `validate` requires it unused (system-owned, no data).
    /// Created by hand rather than by `init`, which searches for the canonical bump on chain at
    /// about 1,500 compute units a try: a job costs the same at every id. The id is unique
    /// through the poster's counter, so another bump cannot post at an id twice.
    #[account(
        mut,
        seeds = [JOB_SEED, market.key().as_ref(), poster.key().as_ref(), &args.job_id.to_le_bytes()],
        bump = job_bump,
    )]
    pub job: UncheckedAccount<'info>,
    pub system_program: Program<'info, System>,
    /// Token market only: the market's mint.
    pub mint: Option<InterfaceAccount<'info, Mint>>,
    /// Token market only: the market's vault, which receives the reward.
    #[account(mut)]
    pub vault: Option<InterfaceAccount<'info, TokenAccount>>,
    /// Token market only: the poster's token account paying the reward.
    #[account(mut)]
    pub poster_token: Option<InterfaceAccount<'info, TokenAccount>>,
    /// Token market only: the mint's token program.
    pub token_program: Option<Interface<'info, TokenInterface>>,
}

impl JobPost<'_> {
    fn validate(&self, args: &JobPostArgs) -> Result<()> {
        let params = &self.market.params;
        ensure!(!self.market.paused, TensorgridError::MarketPaused);
        ensure!(
            args.terms.mint == self.market.mint,
            TensorgridError::TermsMintMismatch
        );
        let terms = self.market.job_terms();
        ensure!(terms == args.terms, TensorgridError::TermsChanged);
        ensure!(
            args.job_id >= self.poster_account.next_job_id,
            TensorgridError::JobIdUsed
        );
        ensure!(args.reward > 0, TensorgridError::ZeroReward);
        // Never used: a job address is taken once (lamports sent to it beforehand are kept).
        ensure!(
            self.job.owner == &System::id() && self.job.data_is_empty(),
            TensorgridError::JobIdUsed
        );
        // In SOL, rent plus reward must be representable, or the escrow invariant cannot hold;
        // the collateral, the dispute bond and the verifier fee must be computable and non-zero
        // (a verifier with nothing to earn or forfeit would decide for free).
        if self.market.unit() == Unit::Lamports {
            checked_add(
                self.job.lamports().max(rent_exempt_minimum(Job::SPACE)?),
                args.reward,
            )?;
        }
        ensure!(
            terms.collateral(args.reward)? > 0
                && terms.dispute.bond(args.reward)? > 0
                && terms.dispute.verifier_fee(args.reward)? > 0,
            TensorgridError::RewardTooSmall
        );
        ensure!(
            !args.spec_uri.is_empty() && args.spec_uri.len() <= MAX_URI_LEN,
            TensorgridError::SpecUriInvalid
        );
        ensure!(args.spec_hash != [0; 32], TensorgridError::ZeroSpecHash);
        ensure!(
            args.max_duration_s > 0 && args.max_duration_s <= params.max_claim_s,
            TensorgridError::InvalidMaxDuration
        );
        Ok(())
    }

    /// Creates the job's account at its address (signed with its seeds): `create_account`,
    /// the rent paid by the poster; or, when someone sent lamports to the address beforehand
    /// (which `create_account` refuses), `allocate` and `assign`, returning the rent still
    /// owed (sent with the reward: the account is rent-exempt by the instruction's end).
    fn create_job_account(&self, job_id: u64, job_bump: u8, rent: u64) -> Result<u64> {
        let (market, poster) = (self.market.key(), self.poster.key());
        let id = job_id.to_le_bytes();
        let bump = [job_bump];
        let seeds: &[&[u8]] = &[JOB_SEED, market.as_ref(), poster.as_ref(), &id, &bump];
        let signer = &[seeds];
        let system = self.system_program.key();
        let space = Job::SPACE as u64;
        let held = self.job.lamports();
        if held == 0 {
            create_account(
                CpiContext::new_with_signer(
                    system,
                    CreateAccount {
                        from: self.poster.to_account_info(),
                        to: self.job.to_account_info(),
                    },
                    signer,
                ),
                rent,
                space,
                &crate::ID,
            )?;
            return Ok(0);
        }
        allocate(
            CpiContext::new_with_signer(
                system,
                Allocate {
                    account_to_allocate: self.job.to_account_info(),
                },
                signer,
            ),
            space,
        )?;
        assign(
            CpiContext::new_with_signer(
                system,
                Assign {
                    account_to_assign: self.job.to_account_info(),
                },
                signer,
            ),
            &crate::ID,
        )?;
        Ok(rent.saturating_sub(held))
    }

    #[access_control(ctx.accounts.validate(&args))]
    pub fn handler(ctx: Context<Self>, args: JobPostArgs, job_bump: u8) -> Result<()> {
        // What the poster pays of the rent: lamports sent to the address beforehand count.
        let rent = rent_exempt_minimum(Job::SPACE)?;
        let rent_paid = rent.saturating_sub(ctx.accounts.job.lamports());
        let owed = ctx
            .accounts
            .create_job_account(args.job_id, job_bump, rent)?;
        let a = &ctx.accounts;
        // The rent still owed is lamports in every market; the reward is in the market's unit.
        let lamports = match vault::vault(&a.market, &a.mint, &a.vault, &a.token_program)? {
            None => {
                vault::no_party(&a.poster_token)?;
                checked_add(args.reward, owed)?
            }
            Some(v) => {
                let from = vault::party(&a.poster_token, &a.market)?;
                v.deposit(from, &a.poster.to_account_info(), args.reward)?;
                owed
            }
        };
        if lamports > 0 {
            transfer(
                CpiContext::new(
                    a.system_program.key(),
                    Transfer {
                        from: a.poster.to_account_info(),
                        to: a.job.to_account_info(),
                    },
                ),
                lamports,
            )?;
        }
        let poster_account = &mut ctx.accounts.poster_account;
        poster_account.take_job_id(args.job_id)?;
        poster_account.invariant()?;
        let market = &mut ctx.accounts.market;
        market.record_post()?;
        let job = Job {
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
            terms: args.terms,
            max_duration_s: args.max_duration_s,
            created_at: Clock::get()?.unix_timestamp,
            claimed_at: 0,
            deadline: 0,
            submitted_at: 0,
            challenge_ends_at: 0,
            dispute_ends_at: 0,
            reopened_at: 0,
            reopens: 0,
            barred_workers: [Pubkey::default(); 8],
            bump: job_bump,
            spec_uri: args.spec_uri,
            result_uri: String::new(),
        };
        let info = ctx.accounts.job.to_account_info();
        job.try_serialize(&mut &mut info.try_borrow_mut_data()?[..])?;
        job.invariant(&info)?;
        emit_event!(
            ctx,
            JobPosted {
                market: job.market,
                job: info.key(),
                job_id: job.job_id,
                poster: job.poster,
                reward: job.reward,
                rent_paid,
                spec_hash: job.spec_hash,
                spec_uri: job.spec_uri.clone(),
                requirements: job.requirements,
                max_duration_s: job.max_duration_s,
                terms: job.terms,
            }
        );
        Ok(())
    }
}
