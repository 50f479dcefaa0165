use anchor_lang::prelude::*;

use crate::{
    constants::MARKET_SEED,
    errors::TensorgridError,
    events::MarketFeesWithdrawn,
    state::{move_lamports, Market},
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct MarketWithdrawFeesArgs {
    /// Lamports to withdraw; at most the market's `fees_unclaimed`.
    pub amount: u64,
}

#[event_cpi]
#[derive(Accounts)]
pub struct MarketWithdrawFees<'info> {
    /// The market's authority.
    pub authority: Signer<'info>,
    /// The market holding the fees.
    #[account(
        mut,
        has_one = authority @ TensorgridError::NotMarketAuthority,
        seeds = [MARKET_SEED, market.authority.as_ref(), &market.market_id.to_le_bytes()],
        bump = market.bump,
    )]
    pub market: Account<'info, Market>,
    /// Any account the authority chooses to receive the fees.
    /// CHECK: only credited.
    #[account(mut)]
    pub recipient: UncheckedAccount<'info>,
}

impl MarketWithdrawFees<'_> {
    fn validate(&self) -> Result<()> {
        // Paid to itself the fees would become lamports nobody accounts for.
        require_keys_neq!(
            self.recipient.key(),
            self.market.key(),
            TensorgridError::RecipientMismatch
        );
        Ok(())
    }

    #[access_control(ctx.accounts.validate())]
    pub fn handler(ctx: Context<Self>, args: MarketWithdrawFeesArgs) -> Result<()> {
        // The rule (at most the unclaimed fees) first, then the lamports.
        ctx.accounts.market.withdraw_fees(args.amount)?;
        let market_info = ctx.accounts.market.to_account_info();
        move_lamports(&market_info, &ctx.accounts.recipient, args.amount)?;
        let market = &ctx.accounts.market;
        market.invariant(&market_info)?;
        emit_event!(
            ctx,
            MarketFeesWithdrawn {
                market: market.key(),
                recipient: ctx.accounts.recipient.key(),
                amount: args.amount,
                fees_unclaimed: market.fees_unclaimed,
            }
        );
        Ok(())
    }
}
