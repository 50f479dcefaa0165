use anchor_lang::{
    prelude::*,
    system_program::{transfer, Transfer},
};

use crate::{
    constants::{MARKET_SEED, WORKER_SEED},
    errors::TensorgridError,
    events::WorkerUpdated,
    state::{checked_add, checked_sub, move_lamports, Hardware, Market, Unit, Worker},
};

use super::vault;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug, Default)]
pub struct WorkerUpdateArgs {
    /// New hardware profile, if it changed (only without an active job).
    pub hardware: Option<Hardware>,
    /// Amount to add to the stake, in the market's unit (e.g. to top up after a slash).
    pub add_stake: u64,
    /// Stake to withdraw; only without an active job, and the rest must stay at
    /// or above the market's `min_stake`.
    pub withdraw_stake: u64,
    /// Earnings to withdraw (allowed at any time, up to `earnings`).
    pub withdraw_earnings: u64,
}

#[event_cpi]
#[derive(Accounts)]
pub struct WorkerUpdate<'info> {
    /// The worker's operator: pays stake in, receives withdrawals.
    #[account(mut)]
    pub operator: Signer<'info>,
    /// The worker's market (for its minimum stake).
    #[account(
        seeds = [MARKET_SEED, market.authority.as_ref(), &market.market_id.to_le_bytes()],
        bump = market.bump,
    )]
    pub market: Account<'info, Market>,
    /// The worker account.
    #[account(
        mut,
        has_one = operator @ TensorgridError::NotOperator,
        has_one = market @ TensorgridError::MarketMismatch,
        seeds = [WORKER_SEED, worker.market.as_ref(), worker.operator.as_ref()],
        bump = worker.bump,
    )]
    pub worker: Account<'info, Worker>,
    pub system_program: Program<'info, System>,
    /// Token market only: the market's mint.
    pub mint: Option<InterfaceAccount<'info, Mint>>,
    /// Token market only: the market's vault.
    #[account(mut)]
    pub vault: Option<InterfaceAccount<'info, TokenAccount>>,
    /// Token market only: the operator's token account, paying stake in and receiving
    /// withdrawals (any account of the mint the operator names).
    #[account(mut)]
    pub operator_token: Option<InterfaceAccount<'info, TokenAccount>>,
    /// Token market only: the mint's token program.
    pub token_program: Option<Interface<'info, TokenInterface>>,
}

impl WorkerUpdate<'_> {
    fn validate(&self, args: &WorkerUpdateArgs) -> Result<()> {
        let worker = &self.worker;
        worker.require_registered()?;
        if let Some(hw) = &args.hardware {
            hw.validate()?;
            // Changing hardware mid-job would defeat the claim-time requirement check, and a
            // pooled verifier's device class is its entry's (leave and join again).
            worker.require_idle()?;
            ensure!(worker.pooled_stake == 0, TensorgridError::StakePledged);
        }
        if args.withdraw_stake > 0 {
            // The stake backs the active job's collateral until the job ends, and each open
            // verifier seat's forfeit until its dispute ends.
            worker.require_idle()?;
            ensure!(worker.open_seats == 0, TensorgridError::VerifierSeated);
            let remaining = checked_sub(
                checked_add(worker.stake, args.add_stake)?,
                args.withdraw_stake,
            )
            .map_err(|_| crate::errors::fail(TensorgridError::WithdrawBelowMinimum))?;
            ensure!(
                remaining >= self.market.params.min_stake,
                TensorgridError::WithdrawBelowMinimum
            );
            ensure!(
                remaining >= worker.pooled_stake,
                TensorgridError::StakePledged
            );
        }
        ensure!(
            args.withdraw_earnings <= worker.earnings,
            TensorgridError::InsufficientEarnings
        );
        Ok(())
    }

    #[access_control(ctx.accounts.validate(&args))]
    pub fn handler(ctx: Context<Self>, args: WorkerUpdateArgs) -> Result<()> {
        let a = &ctx.accounts;
        let worker_info = a.worker.to_account_info();
        let out = checked_add(args.withdraw_stake, args.withdraw_earnings)?;
        // A hardware change moves no money: a token market's accounts are not needed for it.
        let moves = args.add_stake > 0 || out > 0;
        let unit = ctx.accounts.market.unit();
        match vault::vault(&a.market, &a.mint, &a.vault, &a.token_program).or_else(|e| {
            if moves {
                Err(e)
            } else {
                Ok(None)
            }
        })? {
            None => {
                vault::no_party(&a.operator_token)?;
                if args.add_stake > 0 {
                    transfer(
                        CpiContext::new(
                            a.system_program.key(),
                            Transfer {
                                from: a.operator.to_account_info(),
                                to: a.worker.to_account_info(),
                            },
                        ),
                        args.add_stake,
                    )?;
                }
                if unit == Unit::Lamports {
                    move_lamports(&worker_info, &a.operator.to_account_info(), out)?;
                }
            }
            Some(v) => {
                let token = vault::party(&a.operator_token, &a.market)?;
                v.deposit(token, &a.operator.to_account_info(), args.add_stake)?;
                v.withdraw(&a.market.to_account_info(), token, out)?;
            }
        }
        let worker = &mut ctx.accounts.worker;
        worker.stake = checked_sub(
            checked_add(worker.stake, args.add_stake)?,
            args.withdraw_stake,
        )?;
        worker.earnings = checked_sub(worker.earnings, args.withdraw_earnings)?;
        if let Some(hw) = args.hardware {
            worker.hardware = hw;
        }
        worker.invariant(&worker_info, unit)?;
        emit_event!(
            ctx,
            WorkerUpdated {
                worker: worker.key(),
                stake_added: args.add_stake,
                stake_withdrawn: args.withdraw_stake,
                earnings_withdrawn: args.withdraw_earnings,
                stake: worker.stake,
                earnings: worker.earnings,
                hardware: worker.hardware.clone(),
            }
        );
        Ok(())
    }
}
