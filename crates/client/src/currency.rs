//! What a market's amounts are counted in, as instruction builders need it: SOL, or a mint
//! with its token program. Token markets name the market's mint, its vault and the party's
//! token account in every instruction that moves tokens in or out of the market.

use anchor_lang::prelude::Pubkey;
use tensorgrid::{constants::VAULT_SEED, state::Market};

use crate::program_id;

/// The associated token account program (its addresses are the default token accounts).
pub const ASSOCIATED_TOKEN_PROGRAM_ID: Pubkey =
    Pubkey::from_str_const("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL");
/// SPL Token.
pub const TOKEN_PROGRAM_ID: Pubkey =
    Pubkey::from_str_const("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA");
/// Token-2022.
pub const TOKEN_2022_PROGRAM_ID: Pubkey =
    Pubkey::from_str_const("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb");

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Currency {
    /// Lamports.
    #[default]
    Sol,
    /// Base units of `mint`, owned by `token_program` (SPL Token or Token-2022).
    Token { mint: Pubkey, token_program: Pubkey },
}

impl Currency {
    /// The currency of a market as its account records it.
    pub fn of(market: &Market) -> Self {
        if market.mint == Pubkey::default() {
            Currency::Sol
        } else {
            Currency::Token {
                mint: market.mint,
                token_program: market.token_program,
            }
        }
    }

    pub fn mint(&self) -> Option<Pubkey> {
        match self {
            Currency::Sol => None,
            Currency::Token { mint, .. } => Some(*mint),
        }
    }

    pub fn token_program(&self) -> Option<Pubkey> {
        match self {
            Currency::Sol => None,
            Currency::Token { token_program, .. } => Some(*token_program),
        }
    }

    /// `owner`'s associated token account for this mint (`None` for SOL).
    pub fn token_account(&self, owner: &Pubkey) -> Option<Pubkey> {
        match self {
            Currency::Sol => None,
            Currency::Token {
                mint,
                token_program,
            } => Some(associated_token_address(owner, mint, token_program)),
        }
    }

    /// The market's vault (`None` for SOL).
    pub fn vault(&self, market: &Pubkey) -> Option<Pubkey> {
        match self {
            Currency::Sol => None,
            Currency::Token { .. } => Some(vault(market)),
        }
    }
}

/// A token market's vault: `["vault", market]`.
pub fn vault(market: &Pubkey) -> Pubkey {
    Pubkey::find_program_address(&[VAULT_SEED, market.as_ref()], &program_id()).0
}

/// The associated token account of `owner` for `mint` under `token_program`.
pub fn associated_token_address(owner: &Pubkey, mint: &Pubkey, token_program: &Pubkey) -> Pubkey {
    Pubkey::find_program_address(
        &[owner.as_ref(), token_program.as_ref(), mint.as_ref()],
        &ASSOCIATED_TOKEN_PROGRAM_ID,
    )
    .0
}

/// Creates `owner`'s associated token account for `mint` unless it exists (the associated
/// token program's `CreateIdempotent`), `payer` paying its rent: put before an instruction
/// that pays into it.
pub fn create_token_account_idempotent(
    payer: &Pubkey,
    owner: &Pubkey,
    mint: &Pubkey,
    token_program: &Pubkey,
) -> anchor_lang::solana_program::instruction::Instruction {
    use anchor_lang::solana_program::instruction::{AccountMeta, Instruction};
    Instruction {
        program_id: ASSOCIATED_TOKEN_PROGRAM_ID,
        accounts: vec![
            AccountMeta::new(*payer, true),
            AccountMeta::new(associated_token_address(owner, mint, token_program), false),
            AccountMeta::new_readonly(*owner, false),
            AccountMeta::new_readonly(*mint, false),
            AccountMeta::new_readonly(anchor_lang::system_program::ID, false),
            AccountMeta::new_readonly(*token_program, false),
        ],
        // 1 = CreateIdempotent.
        data: vec![1],
    }
}

impl Currency {
    /// `create_token_account_idempotent` for `owner` in a token market; nothing for SOL.
    pub fn ensure_token_account(
        &self,
        payer: &Pubkey,
        owner: &Pubkey,
    ) -> Option<anchor_lang::solana_program::instruction::Instruction> {
        match self {
            Currency::Sol => None,
            Currency::Token {
                mint,
                token_program,
            } => Some(create_token_account_idempotent(
                payer,
                owner,
                mint,
                token_program,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sol_names_no_token_account() {
        let k = Pubkey::new_unique();
        assert_eq!(Currency::Sol.token_account(&k), None);
        assert_eq!(Currency::Sol.vault(&k), None);
        let usdc = Currency::Token {
            mint: Pubkey::new_unique(),
            token_program: TOKEN_PROGRAM_ID,
        };
        assert_ne!(usdc.token_account(&k), usdc.vault(&k));
        assert!(usdc.token_account(&k).is_some());
    }
}
