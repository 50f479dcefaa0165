//! Client side of the tensorgrid program: PDA derivation, instruction builders, account and
//! event decoding. Used by the test harness, the worker and the CLI alike, so there is one
//! definition of every seed and account list.

pub mod currency;
pub mod defaults;
pub mod draw;
pub mod errors;
pub mod events;
pub mod instructions;
pub mod layout;
pub mod pda;
pub mod post;
pub mod process;
#[cfg(feature = "rpc")]
pub mod rpc;
pub mod state_requests;

pub use currency::Currency;
pub use errors::error_code;

/// The program crate (account, argument and event types).
pub use anchor_lang;
pub use tensorgrid;
pub use tensorgrid::{
    constants, errors::TensorgridError, events as event_types, state, ID as PROGRAM_ID,
};

use std::sync::OnceLock;

use anchor_lang::{prelude::Pubkey, AccountDeserialize};

static PROGRAM_ID_OVERRIDE: OnceLock<Pubkey> = OnceLock::new();

/// The program this process talks to: [`PROGRAM_ID`] (the id the program was built with)
/// unless [`use_program_id`] chose another deployment, e.g. a copy deployed to devnet under
/// the deployer's own program keypair (built with `scripts/build-sbf.sh --program-id`).
pub fn program_id() -> Pubkey {
    // The first use fixes it: a later `use_program_id` with another id is refused.
    *PROGRAM_ID_OVERRIDE.get_or_init(|| PROGRAM_ID)
}

/// Points every address, instruction and account check of this process at `id`. Set once,
/// before the first use of [`program_id`]; a different id afterwards is refused (addresses
/// already derived would silently disagree).
pub fn use_program_id(id: Pubkey) -> Result<(), Pubkey> {
    let current = *PROGRAM_ID_OVERRIDE.get_or_init(|| id);
    if current == id {
        Ok(())
    } else {
        Err(current)
    }
}

/// Decodes an account's data (discriminator checked) into one of the program's account types.
pub fn decode_account<T: AccountDeserialize>(data: &[u8]) -> anchor_lang::Result<T> {
    T::try_deserialize(&mut &data[..])
}
