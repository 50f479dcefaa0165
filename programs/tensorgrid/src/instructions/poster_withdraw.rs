use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

use super::vault;
use crate::{
    errors::TensorgridError,
    events::PosterWithdrew,
    state::{Market, Poster, Unit},
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct PosterWithdrawArgs {
    /// Base units of the mint to withdraw; at most the poster account's `refunds`.
    pub amount: u64,
}

/// Token market only: the poster withdraws refunds, compensation and returned bonds that
/// settlements credited to its poster account, to any token account of the mint it names.
#[event_cpi]
#[derive(Accounts)]
pub struct PosterWithdraw<'info> {
    /// The poster.
    pub poster: Signer<'info>,
    /// The market (the vault's owner).
    pub market: Account<'info, Market>,
    /// The poster's account in this market, holding the refunds.
    #[account(
        mut,
        constraint = poster_account.wallet == poster.key() @ TensorgridError::NotPoster,
        has_one = market @ TensorgridError::MarketMismatch,
    )]
    pub poster_account: Account<'info, Poster>,
    /// The market's mint.
    pub mint: Option<InterfaceAccount<'info, Mint>>,
    /// The market's vault.
    #[account(mut)]
    pub vault: Option<InterfaceAccount<'info, TokenAccount>>,
    /// The token account receiving the refunds (any account of the mint the poster names).
    #[account(mut)]
    pub poster_token: Option<InterfaceAccount<'info, TokenAccount>>,
    /// The mint's token program.
    pub token_program: Option<Interface<'info, TokenInterface>>,
}

impl PosterWithdraw<'_> {
    fn validate(&self) -> Result<()> {
        // A SOL market never credits refunds: its posters are paid in their wallets.
        ensure!(
            self.market.unit() == Unit::Token,
            TensorgridError::NotTokenMarket
        );
        self.poster_account.invariant()
    }

    #[access_control(ctx.accounts.validate())]
    pub fn handler(ctx: Context<Self>, args: PosterWithdrawArgs) -> Result<()> {
        ctx.accounts.poster_account.withdraw(args.amount)?;
        let a = &ctx.accounts;
        let v = vault::vault(&a.market, &a.mint, &a.vault, &a.token_program)?
            .ok_or_else(|| crate::errors::fail(TensorgridError::TokenAccountsMissing))?;
        let to = vault::party(&a.poster_token, &a.market)?;
        v.withdraw(&a.market.to_account_info(), to, args.amount)?;
        let account = &ctx.accounts.poster_account;
        emit_event!(
            ctx,
            PosterWithdrew {
                market: account.market,
                poster: account.wallet,
                amount: args.amount,
                refunds: account.refunds,
            }
        );
        Ok(())
    }
}
