//! Checked arithmetic on amounts, and moving amounts between the program's accounts.

use anchor_lang::prelude::*;

use crate::{constants::BPS_DENOMINATOR, errors::TensorgridError};

/// `amount * bps / 10_000`, rounded down, computed without overflow. `bps` may exceed 10_000
/// (collateral is a multiple of a reward); the result must fit in a `u64`.
pub fn bps_of(amount: u64, bps: u16) -> Result<u64> {
    let v = u128::from(amount)
        .checked_mul(u128::from(bps))
        .and_then(|v| v.checked_div(u128::from(BPS_DENOMINATOR)))
        .ok_or(TensorgridError::ArithmeticOverflow)?;
    u64::try_from(v).map_err(|_| crate::errors::fail(TensorgridError::ArithmeticOverflow))
}

pub fn checked_add(a: u64, b: u64) -> Result<u64> {
    a.checked_add(b)
        .ok_or_else(|| crate::errors::fail(TensorgridError::ArithmeticOverflow))
}

pub fn checked_sub(a: u64, b: u64) -> Result<u64> {
    a.checked_sub(b)
        .ok_or_else(|| crate::errors::fail(TensorgridError::ArithmeticOverflow))
}

pub fn checked_add_i64(a: i64, b: i64) -> Result<i64> {
    a.checked_add(b)
        .ok_or_else(|| crate::errors::fail(TensorgridError::ArithmeticOverflow))
}

/// What a market's amounts are counted in, which decides where they are held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Lamports: each account holds what it records above its rent.
    Lamports,
    /// Tokens of an SPL Token or Token-2022 mint: the market's vault holds them all and each
    /// account records its share, so moving an amount between two of the program's accounts
    /// is a change of records, and only what enters or leaves the market is a transfer.
    Token,
}

impl Unit {
    /// The unit of a market (or a job's terms) whose mint is `mint`: `Pubkey::default()`
    /// stands for lamports.
    pub fn of(mint: &Pubkey) -> Self {
        if *mint == Pubkey::default() {
            Unit::Lamports
        } else {
            Unit::Token
        }
    }
}

/// Moves `amount` from one of the program's accounts to another: lamports in a SOL market;
/// nothing to move in a token market (the records moving is the whole transfer).
pub fn shift(unit: Unit, from: &AccountInfo, to: &AccountInfo, amount: u64) -> Result<()> {
    match unit {
        Unit::Lamports => move_lamports(from, to, amount),
        Unit::Token => Ok(()),
    }
}

/// Moves lamports out of an account this program owns (no CPI needed: the runtime lets an
/// owner debit its accounts and anyone credit any writable account).
pub fn move_lamports(from: &AccountInfo, to: &AccountInfo, amount: u64) -> Result<()> {
    if amount == 0 {
        return Ok(());
    }
    // Both balances are read before either is written: the same account on both sides
    // would mint lamports.
    require_keys_neq!(*from.key, *to.key, TensorgridError::InvariantViolated);
    let from_balance = checked_sub(from.lamports(), amount)?;
    let to_balance = checked_add(to.lamports(), amount)?;
    **from.try_borrow_mut_lamports()? = from_balance;
    **to.try_borrow_mut_lamports()? = to_balance;
    Ok(())
}

/// Lamports an account of `data_len` bytes must keep to stay rent-exempt.
pub fn rent_exempt_minimum(data_len: usize) -> Result<u64> {
    Ok(Rent::get()?.minimum_balance(data_len))
}

/// `info` holds at least its rent-exempt minimum plus, in a SOL market, `held` (escrow, stake,
/// fees…); a token market's amounts are in its vault.
pub fn check_backed(info: &AccountInfo, held: u64, unit: Unit) -> Result<()> {
    let held = match unit {
        Unit::Lamports => held,
        Unit::Token => 0,
    };
    let needed = checked_add(rent_exempt_minimum(info.data_len())?, held)?;
    ensure!(
        info.lamports() >= needed,
        TensorgridError::InvariantViolated
    );
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn bps_share_never_exceeds_amount_and_splits_exactly(amount: u64, bps in 0u16..=10_000) {
            let share = bps_of(amount, bps).unwrap();
            prop_assert!(share <= amount);
            prop_assert_eq!(share as u128, amount as u128 * bps as u128 / 10_000);
            // The two sides of a split always add back to the whole.
            prop_assert_eq!(checked_add(share, checked_sub(amount, share).unwrap()).unwrap(), amount);
        }

        #[test]
        fn multiples_above_the_denominator_are_exact_or_refused(amount: u64, bps in 10_001u16..) {
            let exact = amount as u128 * bps as u128 / 10_000;
            match bps_of(amount, bps) {
                Ok(v) => prop_assert_eq!(v as u128, exact),
                Err(_) => prop_assert!(exact > u64::MAX as u128),
            }
        }
    }

    #[test]
    fn bps_extremes() {
        assert_eq!(bps_of(u64::MAX, 10_000).unwrap(), u64::MAX);
        assert_eq!(bps_of(u64::MAX, 0).unwrap(), 0);
        assert!(bps_of(u64::MAX, 10_001).is_err());
        assert_eq!(bps_of(9_999, 1).unwrap(), 0, "rounds down");
        assert!(checked_add(u64::MAX, 1).is_err());
        assert!(checked_sub(0, 1).is_err());
        assert!(checked_add_i64(i64::MAX, 1).is_err());
    }
}
