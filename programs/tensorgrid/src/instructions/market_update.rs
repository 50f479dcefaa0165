use anchor_lang::prelude::*;

use crate::{
    constants::MARKET_SEED,
    errors::TensorgridError,
    events::MarketUpdated,
    state::{Market, MarketParams},
};

/// Each `Some` field replaces the market's value; `None` keeps it.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug, Default)]
pub struct MarketUpdateArgs {
    /// New parameters for jobs posted from now on; jobs already posted keep their terms.
    pub params: Option<MarketParams>,
    /// Block (`true`) or allow (`false`) new posts and claims.
    pub paused: Option<bool>,
}

#[event_cpi]
#[derive(Accounts)]
pub struct MarketUpdate<'info> {
    /// The market's authority.
    pub authority: Signer<'info>,
    /// The market to update.
    #[account(
        mut,
        has_one = authority @ TensorgridError::NotMarketAuthority,
        seeds = [MARKET_SEED, market.authority.as_ref(), &market.market_id.to_le_bytes()],
        bump = market.bump,
    )]
    pub market: Account<'info, Market>,
}

impl MarketUpdate<'_> {
    fn validate(&self, args: &MarketUpdateArgs) -> Result<()> {
        if let Some(params) = &args.params {
            params.validate()?;
        }
        Ok(())
    }

    #[access_control(ctx.accounts.validate(&args))]
    pub fn handler(ctx: Context<Self>, args: MarketUpdateArgs) -> Result<()> {
        let market = &mut ctx.accounts.market;
        if let Some(params) = args.params {
            market.params = params;
        }
        if let Some(paused) = args.paused {
            market.paused = paused;
        }
        market.invariant(&market.to_account_info())?;
        emit_event!(
            ctx,
            MarketUpdated {
                market: market.key(),
                params: market.params,
                paused: market.paused,
            }
        );
        Ok(())
    }
}
