use anchor_lang::prelude::*;

use crate::{
    constants::MARKET_SEED,
    errors::TensorgridError,
    events::MarketInitialized,
    state::{Market, MarketParams},
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct MarketInitArgs {
    /// Lets one authority run several markets.
    pub market_id: u64,
    pub params: MarketParams,
}

#[event_cpi]
#[derive(Accounts)]
#[instruction(args: MarketInitArgs)]
pub struct MarketInit<'info> {
    #[account(mut)]
    pub authority: Signer<'info>,
    #[account(
        init,
        payer = authority,
        space = 8 + Market::INIT_SPACE,
        seeds = [MARKET_SEED, authority.key().as_ref(), &args.market_id.to_le_bytes()],
        bump,
    )]
    pub market: Account<'info, Market>,
    /// CHECK: any account that can receive lamports; checked to be rent-exempt in `validate`.
    pub treasury: UncheckedAccount<'info>,
    pub system_program: Program<'info, System>,
}

impl MarketInit<'_> {
    fn validate(&self, args: &MarketInitArgs) -> Result<()> {
        args.params.validate()?;
        check_treasury(&self.treasury)
    }

    #[access_control(ctx.accounts.validate(&args))]
    pub fn handler(ctx: Context<Self>, args: MarketInitArgs) -> Result<()> {
        let market = &mut ctx.accounts.market;
        market.set_inner(Market {
            authority: ctx.accounts.authority.key(),
            market_id: args.market_id,
            treasury: ctx.accounts.treasury.key(),
            params: args.params,
            job_count: 0,
            paused: false,
            bump: ctx.bumps.market,
        });
        market.invariant()?;
        emit_cpi!(MarketInitialized {
            market: market.key(),
            authority: market.authority,
            market_id: market.market_id,
            treasury: market.treasury,
            params: market.params,
        });
        Ok(())
    }
}

/// Fees are credited to the treasury without a CPI; an account below its rent-exempt minimum
/// would make every payout fail, so refuse it up front.
pub(crate) fn check_treasury(treasury: &AccountInfo) -> Result<()> {
    let minimum = Rent::get()?.minimum_balance(treasury.data_len());
    require!(
        treasury.lamports() >= minimum && treasury.lamports() > 0,
        TensorgridError::TreasuryNotRentExempt
    );
    Ok(())
}
