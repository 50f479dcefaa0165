use anchor_lang::{
    prelude::*,
    system_program::{transfer, Transfer},
};

use crate::{
    constants::{MARKET_SEED, WORKER_SEED},
    errors::TensorgridError,
    events::WorkerRegistered,
    state::{rent_exempt_minimum, Hardware, Market, Worker, WorkerRecord},
};

use super::vault;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct WorkerRegisterArgs {
    /// Stake, in the market's unit; at least the market's `min_stake`.
    pub stake: u64,
    /// The worker's device.
    pub hardware: Hardware,
}

#[event_cpi]
#[derive(Accounts)]
pub struct WorkerRegister<'info> {
    /// The provider's wallet: pays the stake (and the rent of a new worker account).
    #[account(mut)]
    pub operator: Signer<'info>,
    /// The market to work in.
    #[account(
        seeds = [MARKET_SEED, market.authority.as_ref(), &market.market_id.to_le_bytes()],
        bump = market.bump,
    )]
    pub market: Account<'info, Market>,
    /// `["worker", market, operator]`: created on first registration; a deregistered worker
    /// registers again into the same account and keeps its record.
    #[account(
        init_if_needed,
        payer = operator,
        space = Worker::SPACE,
        seeds = [WORKER_SEED, market.key().as_ref(), operator.key().as_ref()],
        bump,
    )]
    pub worker: Account<'info, Worker>,
    pub system_program: Program<'info, System>,
    /// Token market only: the market's mint.
    pub mint: Option<InterfaceAccount<'info, Mint>>,
    /// Token market only: the market's vault, which receives the stake.
    #[account(mut)]
    pub vault: Option<InterfaceAccount<'info, TokenAccount>>,
    /// Token market only: the operator's token account paying the stake.
    #[account(mut)]
    pub operator_token: Option<InterfaceAccount<'info, TokenAccount>>,
    /// Token market only: the mint's token program.
    pub token_program: Option<Interface<'info, TokenInterface>>,
}

impl WorkerRegister<'_> {
    /// A worker account that already existed before this instruction.
    fn existed(&self) -> bool {
        self.worker.operator != Pubkey::default()
    }

    fn validate(&self, args: &WorkerRegisterArgs) -> Result<()> {
        ensure!(
            !(self.existed() && self.worker.registered),
            TensorgridError::WorkerAlreadyRegistered
        );
        ensure!(
            args.stake >= self.market.params.min_stake,
            TensorgridError::StakeBelowMinimum
        );
        args.hardware.validate()
    }

    #[access_control(ctx.accounts.validate(&args))]
    pub fn handler(ctx: Context<Self>, args: WorkerRegisterArgs) -> Result<()> {
        let existed = ctx.accounts.existed();
        let a = &ctx.accounts;
        match vault::vault(&a.market, &a.mint, &a.vault, &a.token_program)? {
            None => {
                vault::no_party(&a.operator_token)?;
                transfer(
                    CpiContext::new(
                        a.system_program.key(),
                        Transfer {
                            from: a.operator.to_account_info(),
                            to: a.worker.to_account_info(),
                        },
                    ),
                    args.stake,
                )?;
            }
            Some(v) => {
                let from = vault::party(&a.operator_token, &a.market)?;
                v.deposit(from, &a.operator.to_account_info(), args.stake)?;
            }
        }
        let unit = ctx.accounts.market.unit();
        let now = Clock::get()?.unix_timestamp;
        let worker = &mut ctx.accounts.worker;
        let (record, registered_at, rent_paid) = if existed {
            (worker.record, worker.registered_at, 0)
        } else {
            (
                WorkerRecord::default(),
                now,
                rent_exempt_minimum(Worker::SPACE)?,
            )
        };
        worker.set_inner(Worker {
            market: ctx.accounts.market.key(),
            operator: ctx.accounts.operator.key(),
            active_job: Pubkey::default(),
            stake: args.stake,
            earnings: 0,
            registered: true,
            registered_at,
            record,
            pooled_stake: 0,
            locked_collateral: 0,
            seat_reserve: 0,
            open_seats: 0,
            bump: ctx.bumps.worker,
            hardware: args.hardware,
        });
        worker.invariant(&worker.to_account_info(), unit)?;
        emit_event!(
            ctx,
            WorkerRegistered {
                market: worker.market,
                worker: worker.key(),
                operator: worker.operator,
                stake: worker.stake,
                rent_paid,
                hardware: worker.hardware.clone(),
            }
        );
        Ok(())
    }
}
