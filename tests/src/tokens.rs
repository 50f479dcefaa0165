//! Token markets on the test chain: SPL Token and Token-2022 mints (with or without
//! extensions), funded associated token accounts, and balances.

use anchor_lang::{
    prelude::Pubkey,
    solana_program::{instruction::Instruction, program_pack::Pack, system_instruction},
};
use anchor_spl::token_2022::spl_token_2022::{
    self,
    extension::{
        confidential_transfer, default_account_state, metadata_pointer, pausable, transfer_fee,
        transfer_hook, ExtensionType,
    },
    state::{Account as TokenAccountState, AccountState, Mint},
};
use solana_keypair::Keypair;
use solana_signer::Signer;
use tensorgrid_client::{
    currency::{
        associated_token_address, create_token_account_idempotent, TOKEN_2022_PROGRAM_ID,
        TOKEN_PROGRAM_ID,
    },
    Currency,
};

use crate::env::{TestEnv, TxResult};

/// What a market is priced in, for tests run in every unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitKind {
    Sol,
    /// SPL Token, 6 decimals (like USDC).
    Spl,
    /// Token-2022 with a metadata pointer (an accepted extension), 6 decimals.
    Token2022,
}

/// Every unit a market can be priced in.
pub const UNITS: [UnitKind; 3] = [UnitKind::Sol, UnitKind::Spl, UnitKind::Token2022];

/// A Token-2022 mint extension a test mint can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ext {
    TransferFee,
    TransferHook,
    PermanentDelegate,
    ConfidentialTransfers,
    DefaultFrozen,
    DefaultInitialized,
    NonTransferable,
    Pausable,
    MetadataPointer,
    MintCloseAuthority,
}

impl Ext {
    fn kind(self) -> ExtensionType {
        match self {
            Ext::TransferFee => ExtensionType::TransferFeeConfig,
            Ext::TransferHook => ExtensionType::TransferHook,
            Ext::PermanentDelegate => ExtensionType::PermanentDelegate,
            Ext::ConfidentialTransfers => ExtensionType::ConfidentialTransferMint,
            Ext::DefaultFrozen | Ext::DefaultInitialized => ExtensionType::DefaultAccountState,
            Ext::NonTransferable => ExtensionType::NonTransferable,
            Ext::Pausable => ExtensionType::Pausable,
            Ext::MetadataPointer => ExtensionType::MetadataPointer,
            Ext::MintCloseAuthority => ExtensionType::MintCloseAuthority,
        }
    }

    fn init(self, mint: &Pubkey, authority: &Pubkey) -> Instruction {
        let p = &TOKEN_2022_PROGRAM_ID;
        let a = Some(*authority);
        match self {
            Ext::TransferFee => transfer_fee::instruction::initialize_transfer_fee_config(
                p,
                mint,
                Some(authority),
                Some(authority),
                100,
                u64::MAX,
            ),
            Ext::TransferHook => transfer_hook::instruction::initialize(p, mint, a, a),
            Ext::PermanentDelegate => {
                spl_token_2022::instruction::initialize_permanent_delegate(p, mint, authority)
            }
            Ext::ConfidentialTransfers => {
                confidential_transfer::instruction::initialize_mint(p, mint, a, true, None)
            }
            Ext::DefaultFrozen => {
                default_account_state::instruction::initialize_default_account_state(
                    p,
                    mint,
                    &AccountState::Frozen,
                )
            }
            Ext::DefaultInitialized => {
                default_account_state::instruction::initialize_default_account_state(
                    p,
                    mint,
                    &AccountState::Initialized,
                )
            }
            Ext::NonTransferable => {
                spl_token_2022::instruction::initialize_non_transferable_mint(p, mint)
            }
            Ext::Pausable => pausable::instruction::initialize(p, mint, authority),
            Ext::MetadataPointer => metadata_pointer::instruction::initialize(p, mint, a, None),
            Ext::MintCloseAuthority => {
                spl_token_2022::instruction::initialize_mint_close_authority(
                    p,
                    mint,
                    Some(authority),
                )
            }
        }
        .expect("extension instruction")
    }
}

/// A mint on the test chain and its authority (mint and freeze).
pub struct MintFx {
    pub address: Pubkey,
    pub program: Pubkey,
    pub decimals: u8,
    pub authority: Keypair,
}

impl MintFx {
    /// A mint for `kind` (`None` for SOL).
    pub fn for_unit(env: &mut TestEnv, kind: UnitKind) -> Option<Self> {
        match kind {
            UnitKind::Sol => None,
            UnitKind::Spl => Some(Self::spl(env, 6)),
            UnitKind::Token2022 => {
                Some(Self::token_2022(env, 6, &[Ext::MetadataPointer]).expect("a plain mint"))
            }
        }
    }

    /// An SPL Token mint with `decimals`.
    pub fn spl(env: &mut TestEnv, decimals: u8) -> Self {
        Self::create(env, TOKEN_PROGRAM_ID, decimals, &[]).expect("an SPL mint")
    }

    /// A Token-2022 mint with `decimals` and `extensions`.
    pub fn token_2022(env: &mut TestEnv, decimals: u8, extensions: &[Ext]) -> Result<Self, String> {
        Self::create(env, TOKEN_2022_PROGRAM_ID, decimals, extensions)
    }

    fn create(
        env: &mut TestEnv,
        program: Pubkey,
        decimals: u8,
        extensions: &[Ext],
    ) -> Result<Self, String> {
        let authority = env.funded(10_000_000_000);
        let mint = Keypair::new();
        let space = if extensions.is_empty() {
            Mint::LEN
        } else {
            let kinds: Vec<_> = extensions.iter().map(|e| e.kind()).collect();
            ExtensionType::try_calculate_account_len::<Mint>(&kinds).map_err(|e| e.to_string())?
        };
        let mut ixs = vec![system_instruction::create_account(
            &authority.pubkey(),
            &mint.pubkey(),
            env.rent_exempt(space),
            space as u64,
            &program,
        )];
        ixs.extend(
            extensions
                .iter()
                .map(|e| e.init(&mint.pubkey(), &authority.pubkey())),
        );
        ixs.push(
            spl_token_2022::instruction::initialize_mint2(
                &program,
                &mint.pubkey(),
                &authority.pubkey(),
                Some(&authority.pubkey()),
                decimals,
            )
            .expect("initialize_mint2"),
        );
        env.send(&ixs, &[&authority, &mint])
            .map_err(|f| format!("{:?} {:?}", f.err, f.logs))?;
        Ok(Self {
            address: mint.pubkey(),
            program,
            decimals,
            authority,
        })
    }

    pub fn currency(&self) -> Currency {
        Currency::Token {
            mint: self.address,
            token_program: self.program,
        }
    }

    /// `owner`'s associated token account (created if missing).
    pub fn account(&self, env: &mut TestEnv, owner: &Pubkey) -> Pubkey {
        let ata = associated_token_address(owner, &self.address, &self.program);
        if env.account(&ata).is_none() {
            let create = create_token_account_idempotent(
                &self.authority.pubkey(),
                owner,
                &self.address,
                &self.program,
            );
            env.send(&[create], &[&self.authority])
                .expect("create the ATA");
        }
        ata
    }

    /// Mints `amount` to `owner`'s associated token account; returns the account.
    pub fn fund(&self, env: &mut TestEnv, owner: &Pubkey, amount: u64) -> Pubkey {
        let ata = self.account(env, owner);
        if amount > 0 {
            let ix = spl_token_2022::instruction::mint_to_checked(
                &self.program,
                &self.address,
                &ata,
                &self.authority.pubkey(),
                &[],
                amount,
                self.decimals,
            )
            .expect("mint_to");
            env.send(&[ix], &[&self.authority]).expect("mint to");
        }
        ata
    }

    /// Freezes (or thaws) a token account with the mint's freeze authority.
    pub fn set_frozen(&self, env: &mut TestEnv, account: &Pubkey, frozen: bool) -> TxResult {
        let f = if frozen {
            spl_token_2022::instruction::freeze_account
        } else {
            spl_token_2022::instruction::thaw_account
        };
        let ix = f(
            &self.program,
            account,
            &self.address,
            &self.authority.pubkey(),
            &[],
        )
        .expect("freeze");
        env.send(&[ix], &[&self.authority])
    }

    /// The balance of `owner`'s associated token account (0 if it does not exist).
    pub fn balance_of(&self, env: &TestEnv, owner: &Pubkey) -> u64 {
        token_balance(
            env,
            &associated_token_address(owner, &self.address, &self.program),
        )
    }
}

/// The amount a token account holds (0 if it does not exist).
pub fn token_balance(env: &TestEnv, account: &Pubkey) -> u64 {
    env.account(account)
        .map(|a| {
            TokenAccountState::unpack_from_slice(&a.data[..TokenAccountState::LEN])
                .expect("a token account")
                .amount
        })
        .unwrap_or(0)
}
