use anchor_lang::prelude::*;

use super::market_init::check_treasury;
use crate::{
    constants::MARKET_SEED,
    errors::TensorgridError,
    events::MarketUpdated,
    state::{Market, MarketParams},
};

/// Each `Some` field replaces the market's value; `None` keeps it.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug, Default)]
pub struct MarketUpdateArgs {
    pub params: Option<MarketParams>,
    pub paused: Option<bool>,
}

#[event_cpi]
#[derive(Accounts)]
pub struct MarketUpdate<'info> {
    pub authority: Signer<'info>,
    #[account(
        mut,
        has_one = authority @ TensorgridError::NotMarketAuthority,
        seeds = [MARKET_SEED, market.authority.as_ref(), &market.market_id.to_le_bytes()],
        bump = market.bump,
    )]
    pub market: Account<'info, Market>,
    /// CHECK: optional new treasury; checked to be rent-exempt in `validate`.
    pub new_treasury: Option<UncheckedAccount<'info>>,
}

impl MarketUpdate<'_> {
    fn validate(&self, args: &MarketUpdateArgs) -> Result<()> {
        if let Some(params) = &args.params {
            params.validate()?;
        }
        if let Some(treasury) = &self.new_treasury {
            check_treasury(treasury)?;
        }
        Ok(())
    }

    #[access_control(ctx.accounts.validate(&args))]
    pub fn handler(ctx: Context<Self>, args: MarketUpdateArgs) -> Result<()> {
        let new_treasury = ctx.accounts.new_treasury.as_ref().map(|t| t.key());
        let market = &mut ctx.accounts.market;
        if let Some(params) = args.params {
            market.params = params;
        }
        if let Some(paused) = args.paused {
            market.paused = paused;
        }
        if let Some(treasury) = new_treasury {
            market.treasury = treasury;
        }
        market.invariant()?;
        emit_cpi!(MarketUpdated {
            market: market.key(),
            treasury: market.treasury,
            params: market.params,
            paused: market.paused,
        });
        Ok(())
    }
}
