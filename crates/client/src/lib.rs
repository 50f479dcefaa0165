//! Client side of the tensorgrid program: PDA derivation, instruction builders, account and
//! event decoding. Used by the test harness, the worker and the CLI alike, so there is one
//! definition of every seed and account list.

pub mod defaults;
pub mod errors;
pub mod events;
pub mod instructions;
pub mod layout;
pub mod pda;
#[cfg(feature = "rpc")]
pub mod rpc;

pub use errors::error_code;

/// The program crate (account, argument and event types).
pub use anchor_lang;
pub use tensorgrid;
pub use tensorgrid::{
    constants, errors::TensorgridError, events as event_types, state, ID as PROGRAM_ID,
};

use anchor_lang::AccountDeserialize;

/// Decodes an account's data (discriminator checked) into one of the program's account types.
pub fn decode_account<T: AccountDeserialize>(data: &[u8]) -> anchor_lang::Result<T> {
    T::try_deserialize(&mut &data[..])
}
