//! A token market's transfers: into its vault from a party's token account (signed by the
//! party), and out of the vault to a token account the party names (signed by the market PDA,
//! the vault's owner). Between the program's own accounts an amount moves by their records
//! alone (`state::shift`), so a settlement never needs a party's token account.

use anchor_lang::prelude::*;
use anchor_spl::token_interface::{
    transfer_checked, Mint, TokenAccount, TokenInterface, TransferChecked,
};

use crate::{
    constants::MARKET_SEED,
    errors::TensorgridError,
    state::{Market, Unit},
};

// Accounts structs spell these types out: Anchor's derive reads `Option<…>` literally.
type MintAccount<'info> = Option<InterfaceAccount<'info, Mint>>;
type TokenAcct<'info> = Option<InterfaceAccount<'info, TokenAccount>>;
type TokenProgram<'info> = Option<Interface<'info, TokenInterface>>;

/// The market's mint, vault and token program, checked to be the market's.
pub(crate) struct Vault<'a, 'info> {
    market: &'a Market,
    mint: &'a InterfaceAccount<'info, Mint>,
    vault: &'a InterfaceAccount<'info, TokenAccount>,
    program: &'a Interface<'info, TokenInterface>,
}

/// The token accounts an instruction was given, as its market requires: none in a SOL market
/// (`None`), the market's own mint, vault and token program in a token market.
pub(crate) fn vault<'a, 'info>(
    market: &'a Market,
    mint: &'a MintAccount<'info>,
    vault: &'a TokenAcct<'info>,
    program: &'a TokenProgram<'info>,
) -> Result<Option<Vault<'a, 'info>>> {
    match (market.unit(), mint, vault, program) {
        (Unit::Lamports, None, None, None) => Ok(None),
        (Unit::Lamports, ..) => Err(crate::errors::fail(
            TensorgridError::TokenAccountsUnexpected,
        )),
        (Unit::Token, Some(mint), Some(vault), Some(program)) => {
            require_keys_eq!(mint.key(), market.mint, TensorgridError::MintMismatch);
            require_keys_eq!(vault.key(), market.vault, TensorgridError::VaultMismatch);
            require_keys_eq!(
                program.key(),
                market.token_program,
                TensorgridError::TokenProgramMismatch
            );
            Ok(Some(Vault {
                market,
                mint,
                vault,
                program,
            }))
        }
        (Unit::Token, ..) => Err(crate::errors::fail(TensorgridError::TokenAccountsMissing)),
    }
}

/// The party's token account of a token market: required, of the market's mint, and not the
/// vault.
pub(crate) fn party<'a, 'info>(
    account: &'a TokenAcct<'info>,
    market: &Market,
) -> Result<&'a InterfaceAccount<'info, TokenAccount>> {
    let account = account
        .as_ref()
        .ok_or_else(|| crate::errors::fail(TensorgridError::TokenAccountsMissing))?;
    // The vault itself would take a withdrawal back as tokens nobody is owed.
    ensure!(
        account.mint == market.mint && account.key() != market.vault,
        TensorgridError::TokenAccountMismatch
    );
    Ok(account)
}

/// A SOL job's instruction that has no market account: no token account may be given.
pub(crate) fn none(
    mint: &MintAccount,
    vault: &TokenAcct,
    party: &TokenAcct,
    program: &TokenProgram,
) -> Result<()> {
    ensure!(
        mint.is_none() && vault.is_none() && party.is_none() && program.is_none(),
        TensorgridError::TokenAccountsUnexpected
    );
    Ok(())
}

/// A SOL market's instruction must not be given a party token account either.
pub(crate) fn no_party(account: &TokenAcct) -> Result<()> {
    ensure!(account.is_none(), TensorgridError::TokenAccountsUnexpected);
    Ok(())
}

impl<'info> Vault<'_, 'info> {
    /// `amount` from `from` into the vault, signed by `owner` (the account's owner or
    /// delegate).
    pub fn deposit(
        &self,
        from: &InterfaceAccount<'info, TokenAccount>,
        owner: &AccountInfo<'info>,
        amount: u64,
    ) -> Result<()> {
        if amount == 0 {
            return Ok(());
        }
        let accounts = TransferChecked {
            from: from.to_account_info(),
            mint: self.mint.to_account_info(),
            to: self.vault.to_account_info(),
            authority: owner.clone(),
        };
        transfer_checked(
            CpiContext::new(self.program.key(), accounts),
            amount,
            self.market.decimals,
        )
    }

    /// `amount` out of the vault into `to`, signed by the market PDA. `market_info` is the
    /// market's account (the vault's owner).
    pub fn withdraw(
        &self,
        market_info: &AccountInfo<'info>,
        to: &InterfaceAccount<'info, TokenAccount>,
        amount: u64,
    ) -> Result<()> {
        if amount == 0 {
            return Ok(());
        }
        let m = self.market;
        let id = m.market_id.to_le_bytes();
        let bump = [m.bump];
        let seeds: &[&[u8]] = &[MARKET_SEED, m.authority.as_ref(), &id, &bump];
        let signer = &[seeds];
        let accounts = TransferChecked {
            from: self.vault.to_account_info(),
            mint: self.mint.to_account_info(),
            to: to.to_account_info(),
            authority: market_info.clone(),
        };
        transfer_checked(
            CpiContext::new_with_signer(self.program.key(), accounts, signer),
            amount,
            m.decimals,
        )
    }
}
