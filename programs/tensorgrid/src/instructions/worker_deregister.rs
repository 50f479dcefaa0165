use anchor_lang::prelude::*;

use crate::{
    constants::WORKER_SEED,
    errors::TensorgridError,
    events::WorkerDeregistered,
    state::{checked_add, move_lamports, Market, Worker},
};

use super::vault;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

#[event_cpi]
#[derive(Accounts)]
pub struct WorkerDeregister<'info> {
    /// The worker's operator; receives the stake and the earnings.
    #[account(mut)]
    pub operator: Signer<'info>,
    /// The worker's market (its unit, and the vault's owner in a token market); the worker's
    /// `has_one` names it.
    pub market: Account<'info, Market>,
    /// The worker account. It is not closed: its record of completed, abandoned and slashed
    /// jobs stays readable, and `worker_register` reuses it.
    #[account(
        mut,
        has_one = operator @ TensorgridError::NotOperator,
        has_one = market @ TensorgridError::MarketMismatch,
        seeds = [WORKER_SEED, worker.market.as_ref(), worker.operator.as_ref()],
        bump = worker.bump,
    )]
    pub worker: Account<'info, Worker>,
    /// Token market only: the market's mint.
    pub mint: Option<InterfaceAccount<'info, Mint>>,
    /// Token market only: the market's vault.
    #[account(mut)]
    pub vault: Option<InterfaceAccount<'info, TokenAccount>>,
    /// Token market only: the token account receiving the stake and earnings (any account of
    /// the mint the operator names).
    #[account(mut)]
    pub operator_token: Option<InterfaceAccount<'info, TokenAccount>>,
    /// Token market only: the mint's token program.
    pub token_program: Option<Interface<'info, TokenInterface>>,
}

impl WorkerDeregister<'_> {
    fn validate(&self) -> Result<()> {
        self.worker.require_registered()?;
        self.worker.require_idle()?;
        self.worker.require_unpledged()
    }

    #[access_control(ctx.accounts.validate())]
    pub fn handler(ctx: Context<Self>) -> Result<()> {
        let a = &ctx.accounts;
        let worker_info = a.worker.to_account_info();
        let (stake, earnings) = (a.worker.stake, a.worker.earnings);
        let out = checked_add(stake, earnings)?;
        match vault::vault(&a.market, &a.mint, &a.vault, &a.token_program)? {
            None => {
                vault::no_party(&a.operator_token)?;
                move_lamports(&worker_info, &a.operator.to_account_info(), out)?;
            }
            Some(v) => {
                let to = vault::party(&a.operator_token, &a.market)?;
                v.withdraw(&a.market.to_account_info(), to, out)?;
            }
        }
        let unit = ctx.accounts.market.unit();
        let worker = &mut ctx.accounts.worker;
        worker.stake = 0;
        worker.earnings = 0;
        worker.registered = false;
        worker.invariant(&worker_info, unit)?;
        emit_event!(
            ctx,
            WorkerDeregistered {
                worker: worker.key(),
                operator: worker.operator,
                stake_returned: stake,
                earnings_returned: earnings,
            }
        );
        Ok(())
    }
}
