use anchor_lang::{
    prelude::*,
    system_program::{transfer, Transfer},
};

use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

use super::vault;
use crate::{
    constants::{DISPUTE_SEED, JOB_SEED, VERIFIER_POOL_SEED, WORKER_SEED},
    errors::TensorgridError,
    events::JobDisputed,
    state::{with_pool_mut, Dispute, DisputePhase, Job, JobState, Market, Seat, VoteState, Worker},
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct JobDisputeArgs {
    /// Index of the segment the poster says does not re-run (states `segment` → `segment+1`
    /// of the result manifest's commitments).
    pub segment: u32,
    /// The segment's start state, as committed in the result manifest.
    pub start_hash: [u8; 32],
    /// The segment's end state, as committed in the result manifest. Verifiers check both
    /// hashes against the manifest the result hash commits to: a dispute that misquotes it is
    /// upheld for the worker.
    pub end_hash: [u8; 32],
    /// The bond the poster agrees to post: must equal the job's `terms.dispute.bond_bps` of
    /// the reward.
    pub bond: u64,
}

#[event_cpi]
#[derive(Accounts)]
pub struct JobDispute<'info> {
    /// The job's poster: posts the bond and pays the dispute account's rent.
    #[account(mut)]
    pub poster: Signer<'info>,
    /// The job's market (its unit, and its vault in a token market); the job's `has_one`
    /// names it.
    pub market: Box<Account<'info, Market>>,
    /// The submitted job, inside its challenge window.
    #[account(
        mut, has_one = poster @ TensorgridError::NotPoster,
        has_one = market @ TensorgridError::MarketMismatch,
        seeds = [JOB_SEED, job.market.as_ref(), job.poster.as_ref(), &job.job_id.to_le_bytes()],
        bump = job.bump,
    )]
    pub job: Account<'info, Job>,
    /// The worker holding the job: its device class decides who may verify.
    #[account(
        seeds = [WORKER_SEED, worker.market.as_ref(), worker.operator.as_ref()],
        bump = worker.bump,
    )]
    pub worker: Account<'info, Worker>,
    /// The dispute, holding the bond until it ends.
    #[account(
        init,
        payer = poster,
        space = Dispute::SPACE,
        seeds = [DISPUTE_SEED, job.key().as_ref()],
        bump,
    )]
    pub dispute: Box<Account<'info, Dispute>>,
    /// The market's verifier pool, frozen until this dispute's draw (it may not exist yet:
    /// then nobody can be drawn).
    /// CHECK: the PDA is checked by its seeds; its data is used only if this program owns it.
    #[account(mut, seeds = [VERIFIER_POOL_SEED, job.market.as_ref()], bump)]
    pub pool: UncheckedAccount<'info>,
    pub system_program: Program<'info, System>,
    /// Token market only: the market's mint.
    pub mint: Option<InterfaceAccount<'info, Mint>>,
    /// Token market only: the market's vault, which receives the bond.
    #[account(mut)]
    pub vault: Option<InterfaceAccount<'info, TokenAccount>>,
    /// Token market only: the poster's token account paying the bond.
    #[account(mut)]
    pub poster_token: Option<InterfaceAccount<'info, TokenAccount>>,
    /// Token market only: the mint's token program.
    pub token_program: Option<Interface<'info, TokenInterface>>,
}

impl JobDispute<'_> {
    fn validate(&self, args: &JobDisputeArgs) -> Result<()> {
        let job = &self.job;
        job.require_state(JobState::Submitted)?;
        job.require_assigned(&self.worker.key())?;
        ensure!(args.end_hash != [0; 32], TensorgridError::InvalidSegment);
        ensure!(
            args.bond == job.terms.dispute.bond(job.reward)?,
            TensorgridError::BondMismatch
        );
        Ok(())
    }

    #[access_control(ctx.accounts.validate(&args))]
    pub fn handler(ctx: Context<Self>, args: JobDisputeArgs) -> Result<()> {
        let a = &ctx.accounts;
        match vault::vault(&a.market, &a.mint, &a.vault, &a.token_program)? {
            None => {
                vault::no_party(&a.poster_token)?;
                transfer(
                    CpiContext::new(
                        a.system_program.key(),
                        Transfer {
                            from: a.poster.to_account_info(),
                            to: a.dispute.to_account_info(),
                        },
                    ),
                    args.bond,
                )?;
            }
            Some(v) => {
                let from = vault::party(&a.poster_token, &a.market)?;
                v.deposit(from, &a.poster.to_account_info(), args.bond)?;
            }
        }
        let clock = Clock::get()?;
        // The pool, if there is one, stays as it is until this dispute's draw.
        let pool_frozen = with_pool_mut(&ctx.accounts.pool.to_account_info(), |pool| {
            pool.pending_draws = pool
                .pending_draws
                .checked_add(1)
                .ok_or(TensorgridError::ArithmeticOverflow)?;
            Ok(())
        })?
        .is_some();
        let job = &mut ctx.accounts.job;
        job.dispute(clock.unix_timestamp)?;
        job.invariant(&job.to_account_info())?;
        let empty = Seat {
            worker: Pubkey::default(),
            reserve: 0,
            vote: VoteState::Drawn,
            commitment: [0; 32],
            revealed: [0; 32],
        };
        ctx.accounts.dispute.set_inner(Dispute {
            job: job.key(),
            poster: job.poster,
            worker: job.worker,
            segment: args.segment,
            start_hash: args.start_hash,
            end_hash: args.end_hash,
            device: ctx.accounts.worker.hardware.device,
            pool_frozen,
            bond: args.bond,
            forfeits: 0,
            verifier_fee: job.terms.dispute.verifier_fee(job.reward)?,
            disputed_slot: clock.slot,
            drawn_slot: 0,
            phase: DisputePhase::Drawing,
            commit_ends_at: 0,
            reveal_ends_at: 0,
            seats: [empty; 3],
            bump: ctx.bumps.dispute,
        });
        let dispute = &ctx.accounts.dispute;
        dispute.invariant(&dispute.to_account_info(), job.unit())?;
        emit_event!(
            ctx,
            JobDisputed {
                job: job.key(),
                job_id: job.job_id,
                worker: job.worker,
                dispute: dispute.key(),
                segment: args.segment,
                end_hash: args.end_hash,
                bond: args.bond,
                disputed_slot: clock.slot,
            }
        );
        Ok(())
    }
}
