//! Client side of the tensorgrid program: PDA derivation, instruction builders, account and
//! event decoding. Used by the test harness, the worker and the CLI alike, so there is one
//! definition of every seed and account list.

pub mod events;
pub mod instructions;
pub mod layout;
pub mod pda;

pub use tensorgrid::{
    constants, errors::TensorgridError, events as event_types, state, ID as PROGRAM_ID,
};

use anchor_lang::{error::ERROR_CODE_OFFSET, AccountDeserialize};

/// The on-chain code of a program error (what a failed transaction reports as `Custom(code)`).
pub fn error_code(e: TensorgridError) -> u32 {
    ERROR_CODE_OFFSET + e as u32
}

/// Decodes an account's data (discriminator checked) into one of the program's account types.
pub fn decode_account<T: AccountDeserialize>(data: &[u8]) -> anchor_lang::Result<T> {
    T::try_deserialize(&mut &data[..])
}
