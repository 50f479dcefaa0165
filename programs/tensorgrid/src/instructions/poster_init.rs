use anchor_lang::prelude::*;

use crate::{
    constants::{MARKET_SEED, POSTER_SEED},
    events::PosterInitialized,
    state::{rent_exempt_minimum, Market, Poster},
};

#[event_cpi]
#[derive(Accounts)]
pub struct PosterInit<'info> {
    /// The poster's wallet: pays the account's rent (once per market; it is never closed).
    #[account(mut)]
    pub poster: Signer<'info>,
    /// The market the poster will post in.
    #[account(
        seeds = [MARKET_SEED, market.authority.as_ref(), &market.market_id.to_le_bytes()],
        bump = market.bump,
    )]
    pub market: Account<'info, Market>,
    /// The new poster account: `["poster", market, poster]`.
    #[account(
        init,
        payer = poster,
        space = Poster::SPACE,
        seeds = [POSTER_SEED, market.key().as_ref(), poster.key().as_ref()],
        bump,
    )]
    pub poster_account: Account<'info, Poster>,
    pub system_program: Program<'info, System>,
}

impl PosterInit<'_> {
    pub fn handler(ctx: Context<Self>) -> Result<()> {
        let account = &mut ctx.accounts.poster_account;
        account.set_inner(Poster {
            market: ctx.accounts.market.key(),
            wallet: ctx.accounts.poster.key(),
            next_job_id: 0,
            jobs_posted: 0,
            refunds: 0,
            refunds_withdrawn: 0,
            bump: ctx.bumps.poster_account,
        });
        account.invariant()?;
        emit_event!(
            ctx,
            PosterInitialized {
                market: account.market,
                poster: account.wallet,
                account: account.key(),
                rent_paid: rent_exempt_minimum(Poster::SPACE)?,
            }
        );
        Ok(())
    }
}
