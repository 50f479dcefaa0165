use anchor_lang::prelude::*;

use crate::{
    constants::MARKET_SEED,
    errors::TensorgridError,
    events::MarketFeesWithdrawn,
    state::{move_lamports, Market},
};

use super::vault;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct MarketWithdrawFeesArgs {
    /// Amount to withdraw, in the market's unit; at most the market's `fees_unclaimed`.
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
    /// Any account the authority chooses to receive the fees (in a token market: the owner of
    /// `recipient_token`).
    /// CHECK: only credited.
    #[account(mut)]
    pub recipient: UncheckedAccount<'info>,
    /// Token market only: the market's mint.
    pub mint: Option<InterfaceAccount<'info, Mint>>,
    /// Token market only: the market's vault.
    #[account(mut)]
    pub vault: Option<InterfaceAccount<'info, TokenAccount>>,
    /// Token market only: the token account receiving the fees, owned by `recipient`.
    #[account(mut)]
    pub recipient_token: Option<InterfaceAccount<'info, TokenAccount>>,
    /// Token market only: the mint's token program.
    pub token_program: Option<Interface<'info, TokenInterface>>,
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
        // The rule (at most the unclaimed fees) first, then the transfer.
        ctx.accounts.market.withdraw_fees(args.amount)?;
        let a = &ctx.accounts;
        let market_info = a.market.to_account_info();
        match vault::vault(&a.market, &a.mint, &a.vault, &a.token_program)? {
            None => {
                vault::no_party(&a.recipient_token)?;
                move_lamports(&market_info, &a.recipient, args.amount)?;
            }
            Some(v) => {
                let to = vault::party(&a.recipient_token, &a.market)?;
                require_keys_eq!(
                    to.owner,
                    a.recipient.key(),
                    TensorgridError::TokenAccountMismatch
                );
                v.withdraw(&market_info, to, args.amount)?;
            }
        }
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
