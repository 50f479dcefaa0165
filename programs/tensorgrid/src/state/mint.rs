//! Which mints a market may be priced in: those whose every transfer moves exactly the amount
//! asked, that nobody but an account's owner can move out of the vault, and that cannot stop
//! every exit at once. Token-2022 mints carry extensions; each refused one has its own error.

use anchor_lang::prelude::*;
use anchor_spl::token_2022::spl_token_2022::{
    extension::{
        default_account_state::DefaultAccountState, BaseStateWithExtensions, ExtensionType,
        StateWithExtensions,
    },
    state::{AccountState, Mint},
};

use crate::errors::TensorgridError;

/// Refuses a mint whose extensions would let amounts arrive short, let a third party move the
/// vault's tokens, hide amounts, stop every transfer at once (a pause, non-transferable tokens,
/// frozen new accounts), or let the mint be closed and created again with other extensions.
/// Extensions that only describe the mint (metadata, groups, interest or a UI scale shown by
/// wallets; amounts stay exact in base units) are accepted; any other is refused, so a future
/// extension is refused until it has been looked at. A mint's freeze authority (USDC's issuer
/// has one) is accepted: it can freeze the vault and so delay every exit, but not move or take
/// an amount; the README's trust model says so.
pub fn check_extensions(types: &[ExtensionType], default_frozen: bool) -> Result<()> {
    for kind in types {
        let refusal = match kind {
            ExtensionType::TransferFeeConfig => Some(TensorgridError::MintTransferFee),
            ExtensionType::TransferHook => Some(TensorgridError::MintTransferHook),
            ExtensionType::PermanentDelegate => Some(TensorgridError::MintPermanentDelegate),
            ExtensionType::ConfidentialTransferMint
            | ExtensionType::ConfidentialTransferFeeConfig
            | ExtensionType::ConfidentialMintBurn => {
                Some(TensorgridError::MintConfidentialTransfers)
            }
            ExtensionType::NonTransferable => Some(TensorgridError::MintNonTransferable),
            ExtensionType::Pausable => Some(TensorgridError::MintPausable),
            // A closable mint could be closed at zero supply and created again at its address
            // with any extension: the checks here would no longer describe it.
            ExtensionType::MintCloseAuthority => Some(TensorgridError::MintCloseable),
            ExtensionType::DefaultAccountState if default_frozen => {
                Some(TensorgridError::MintDefaultFrozen)
            }
            ExtensionType::DefaultAccountState
            | ExtensionType::InterestBearingConfig
            | ExtensionType::MetadataPointer
            | ExtensionType::TokenMetadata
            | ExtensionType::GroupPointer
            | ExtensionType::TokenGroup
            | ExtensionType::GroupMemberPointer
            | ExtensionType::TokenGroupMember
            | ExtensionType::ScaledUiAmount => None,
            _ => Some(TensorgridError::MintExtensionUnsupported),
        };
        if let Some(err) = refusal {
            return Err(crate::errors::fail(err));
        }
    }
    Ok(())
}

/// Reads a mint account's data (SPL Token or Token-2022) and applies `check_extensions`.
/// Returns the mint's decimals.
pub fn check_mint(data: &[u8]) -> Result<u8> {
    let mint = StateWithExtensions::<Mint>::unpack(data)?;
    let types = mint.get_extension_types()?;
    let default_frozen = mint
        .get_extension::<DefaultAccountState>()
        .map(|d| d.state == AccountState::Frozen as u8)
        .unwrap_or(false);
    check_extensions(&types, default_frozen)?;
    Ok(mint.base.decimals)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn code(r: Result<()>) -> Option<u32> {
        match r {
            Ok(()) => None,
            Err(anchor_lang::error::Error::AnchorError(e)) => Some(e.error_code_number),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_refused_extension_has_its_own_error() {
        let cases = [
            (
                ExtensionType::TransferFeeConfig,
                TensorgridError::MintTransferFee,
            ),
            (
                ExtensionType::TransferHook,
                TensorgridError::MintTransferHook,
            ),
            (
                ExtensionType::PermanentDelegate,
                TensorgridError::MintPermanentDelegate,
            ),
            (
                ExtensionType::ConfidentialTransferMint,
                TensorgridError::MintConfidentialTransfers,
            ),
            (
                ExtensionType::NonTransferable,
                TensorgridError::MintNonTransferable,
            ),
            (ExtensionType::Pausable, TensorgridError::MintPausable),
            (
                ExtensionType::MintCloseAuthority,
                TensorgridError::MintCloseable,
            ),
            (
                ExtensionType::Uninitialized,
                TensorgridError::MintExtensionUnsupported,
            ),
        ];
        for (kind, err) in cases {
            let want = anchor_lang::error::Error::from(err);
            let want = match want {
                anchor_lang::error::Error::AnchorError(e) => e.error_code_number,
                _ => unreachable!(),
            };
            assert_eq!(
                code(check_extensions(&[kind], false)),
                Some(want),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn descriptive_extensions_pass_and_a_frozen_default_does_not() {
        let fine = [
            ExtensionType::MetadataPointer,
            ExtensionType::TokenMetadata,
            ExtensionType::InterestBearingConfig,
            ExtensionType::DefaultAccountState,
        ];
        assert_eq!(code(check_extensions(&fine, false)), None);
        assert!(code(check_extensions(
            &[ExtensionType::DefaultAccountState],
            true
        ))
        .is_some());
        assert_eq!(code(check_extensions(&[], false)), None);
    }
}
