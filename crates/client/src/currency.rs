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

/// Why a written amount is not one: shown to the person who wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AmountError {
    /// Not digits with at most one `.` (a sign, an exponent, a comma, nothing).
    NotAnAmount(String),
    /// More decimals than the unit has.
    TooManyDecimals { text: String, decimals: u8 },
    /// More base units than a u64 holds.
    TooLarge(String),
}

impl std::fmt::Display for AmountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AmountError::NotAnAmount(t) => write!(f, "{t:?} is not an amount (e.g. 12.5)"),
            AmountError::TooManyDecimals { text, decimals } => {
                write!(f, "{text:?}: this unit has {decimals} decimals")
            }
            AmountError::TooLarge(t) => write!(f, "{t:?} is more than an amount can hold"),
        }
    }
}

impl std::error::Error for AmountError {}

/// Checks that `text` is written as an amount (`12.5`, `.25`, `7`) without knowing the unit's
/// decimals yet: digits with at most one `.`.
pub fn check_amount_text(text: &str) -> Result<(), AmountError> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if (whole.is_empty() && frac.is_empty())
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return Err(AmountError::NotAnAmount(text.to_string()));
    }
    Ok(())
}

/// `12.5` of a unit with `decimals` decimals → base units, exactly (no floating point); too
/// many decimals, a sign or an overflow is an error.
pub fn parse_units(text: &str, decimals: u8) -> Result<u64, AmountError> {
    check_amount_text(text)?;
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    // Trailing zeros past the unit's decimals say nothing (`7.0` of a 0-decimal mint is 7).
    let frac = frac.trim_end_matches('0');
    if frac.len() > usize::from(decimals) {
        return Err(AmountError::TooManyDecimals {
            text: text.to_string(),
            decimals,
        });
    }
    // The base units as digits: the whole part, then the fraction padded to `decimals`.
    let digits = format!("{whole}{frac:0<width$}", width = usize::from(decimals));
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Ok(0);
    }
    digits
        .parse()
        .map_err(|_| AmountError::TooLarge(text.to_string()))
}

/// Base units as a decimal with `decimals` decimals, trailing zeros trimmed (`12.5`, `7`).
pub fn format_units(amount: u64, decimals: u8) -> String {
    let width = usize::from(decimals);
    let digits = format!("{amount:0>width$}", width = width + 1);
    let (whole, frac) = digits.split_at(digits.len() - width);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        whole.to_string()
    } else {
        format!("{whole}.{frac}")
    }
}

/// The amount a token account (SPL Token or Token-2022 layout: mint, owner, amount) holds;
/// `None` when `data` is too short to be one.
pub fn token_account_amount(data: &[u8]) -> Option<u64> {
    data.get(64..72)?.try_into().ok().map(u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact_in_their_decimals() {
        assert_eq!(parse_units("12.5", 6), Ok(12_500_000));
        assert_eq!(parse_units(".25", 9), Ok(250_000_000));
        assert_eq!(parse_units("0.000001", 6), Ok(1));
        assert!(matches!(
            parse_units("0.0000001", 6),
            Err(AmountError::TooManyDecimals { decimals: 6, .. })
        ));
        assert_eq!(parse_units("7.0", 0), Ok(7));
        assert!(parse_units("7.5", 0).is_err());
        assert_eq!(parse_units("18446744073.709551615", 9), Ok(u64::MAX));
        assert!(matches!(
            parse_units("18446744073.709551616", 9),
            Err(AmountError::TooLarge(_))
        ));
        assert!(parse_units("1", 20).is_err(), "10^20 base units do not fit");
        assert_eq!(parse_units("0", 30), Ok(0));
        for bad in ["", ".", "-1", "1e9", "1,5", " 1", "1.2.3", "+1"] {
            assert!(
                matches!(parse_units(bad, 9), Err(AmountError::NotAnAmount(_))),
                "{bad:?}"
            );
        }
        for (amount, decimals, text) in [
            (0, 6, "0"),
            (1_000_000, 6, "1"),
            (1, 9, "0.000000001"),
            (12_500_000, 6, "12.5"),
            (u64::MAX, 0, "18446744073709551615"),
            (5, 20, "0.00000000000000000005"),
        ] {
            assert_eq!(format_units(amount, decimals), text);
            assert_eq!(parse_units(text, decimals), Ok(amount));
        }
    }

    #[test]
    fn a_token_accounts_amount_is_read_from_its_layout() {
        let mut data = vec![0u8; 165];
        data[64..72].copy_from_slice(&42u64.to_le_bytes());
        assert_eq!(token_account_amount(&data), Some(42));
        assert_eq!(token_account_amount(&data[..71]), None);
    }

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
