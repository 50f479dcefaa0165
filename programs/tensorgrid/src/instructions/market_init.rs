use anchor_lang::prelude::*;

use crate::{
    constants::MARKET_SEED,
    events::MarketInitialized,
    state::{Market, MarketParams},
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct MarketInitArgs {
    /// Lets one authority run several markets; part of the market's address.
    pub market_id: u64,
    /// Parameters for the jobs posted in this market (validated against the program's bounds).
    pub params: MarketParams,
}

#[event_cpi]
#[derive(Accounts)]
#[instruction(args: MarketInitArgs)]
pub struct MarketInit<'info> {
    /// Becomes the market's authority; pays the market account's rent.
    #[account(mut)]
    pub authority: Signer<'info>,
    /// The new market: `["market", authority, market_id LE]`.
    #[account(
        init,
        payer = authority,
        space = Market::SPACE,
        seeds = [MARKET_SEED, authority.key().as_ref(), &args.market_id.to_le_bytes()],
        bump,
    )]
    pub market: Account<'info, Market>,
    pub system_program: Program<'info, System>,
}

impl MarketInit<'_> {
    fn validate(&self, args: &MarketInitArgs) -> Result<()> {
        args.params.validate()
    }

    #[access_control(ctx.accounts.validate(&args))]
    pub fn handler(ctx: Context<Self>, args: MarketInitArgs) -> Result<()> {
        let market = &mut ctx.accounts.market;
        market.set_inner(Market {
            authority: ctx.accounts.authority.key(),
            market_id: args.market_id,
            params: args.params,
            fees_unclaimed: 0,
            fees_withdrawn: 0,
            jobs_posted: 0,
            paused: false,
            bump: ctx.bumps.market,
        });
        market.invariant(&market.to_account_info())?;
        emit_event!(
            ctx,
            MarketInitialized {
                market: market.key(),
                authority: market.authority,
                market_id: market.market_id,
                params: market.params,
            }
        );
        Ok(())
    }
}
