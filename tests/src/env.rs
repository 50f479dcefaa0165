//! `TestEnv`: a LiteSVM chain with the program loaded, a clock you can move, and checks that
//! run after every transaction (lamport conservation and account invariants).

use std::path::PathBuf;

use anchor_lang::{
    prelude::{Clock, Pubkey},
    solana_program::instruction::Instruction,
    AccountDeserialize,
};
use litesvm::{
    types::{FailedTransactionMetadata, TransactionMetadata},
    LiteSVM,
};
use solana_account::Account;
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_message::Message;
use solana_signer::Signer;
use solana_slot_hashes::SlotHashes;
use solana_transaction::Transaction;
use solana_transaction_error::TransactionError;
use tensorgrid_client::{
    events::{decode_events, Event},
    PROGRAM_ID,
};

use crate::{invariants, native};

/// A slot's hash on this test chain: fixed by the slot number, so draws repeat.
pub fn slot_hash(slot: u64) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::new()
        .chain_update(b"slot")
        .chain_update(slot.to_le_bytes())
        .finalize()
        .into()
}

/// Unix time the chain starts at.
pub const GENESIS_UNIX_TIME: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

/// A failed transaction: the runtime's error and the program logs.
#[derive(Debug)]
pub struct TxFailure {
    pub err: TransactionError,
    pub logs: Vec<String>,
    /// The fee is charged even when the transaction fails.
    pub fee: u64,
}

/// A transaction that executed: its metadata and the message's account keys.
#[derive(Debug)]
pub struct Executed {
    pub meta: TransactionMetadata,
    pub account_keys: Vec<Pubkey>,
}

impl Executed {
    /// The program's events, in order, read from the inner instructions addressed to it.
    pub fn events(&self) -> Vec<Event> {
        decode_events(
            &self.account_keys,
            self.meta.inner_instructions.iter().flatten().map(|inner| {
                (
                    usize::from(inner.instruction.program_id_index),
                    &inner.instruction.data[..],
                )
            }),
        )
    }
}

pub type TxResult = Result<Executed, TxFailure>;

/// How the program is executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runtime {
    /// Compiled into the test binary, run as a builtin with real CPIs (see `native`).
    Native,
    /// The SBF bytecode at this path, run by LiteSVM's VM: compute units, stack, heap and
    /// alignment are enforced as on a cluster.
    Sbf(PathBuf),
}

impl Runtime {
    /// Chosen by `TENSORGRID_RUNTIME` (`native`, the default, or `sbf`); the `.so` path comes
    /// from `TENSORGRID_SO`, else `target/deploy/tensorgrid.so`.
    pub fn from_env() -> Self {
        match std::env::var("TENSORGRID_RUNTIME").as_deref() {
            Ok("sbf") => Runtime::Sbf(so_path()),
            Ok("native") | Err(_) => Runtime::Native,
            Ok(other) => panic!("TENSORGRID_RUNTIME={other}: expected `native` or `sbf`"),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Runtime::Native => {
                "native (program compiled into this binary, CPIs routed to the runtime)".into()
            }
            Runtime::Sbf(p) => format!("SBF bytecode {}", p.display()),
        }
    }
}

/// Where `scripts/build-sbf.sh` puts the program (or `TENSORGRID_SO`).
pub fn so_path() -> PathBuf {
    std::env::var_os("TENSORGRID_SO")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::idl::workspace_root().join("target/deploy/tensorgrid.so"))
}

#[derive(Clone)]
pub struct TestEnv {
    pub svm: LiteSVM,
    pub runtime: Runtime,
    /// Run lamport-conservation and invariant checks after every transaction.
    pub check_each_tx: bool,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    /// A chain with the program loaded the way `TENSORGRID_RUNTIME` says (native by default).
    pub fn new() -> Self {
        Self::with_runtime(Runtime::from_env())
    }

    pub fn with_runtime(runtime: Runtime) -> Self {
        let mut svm = LiteSVM::new();
        match &runtime {
            Runtime::Native => svm.add_builtin(PROGRAM_ID, native::tensorgrid_builtin()),
            Runtime::Sbf(path) => {
                let bytes = std::fs::read(path).unwrap_or_else(|e| {
                    panic!(
                        "{}: {e}; build it with scripts/build-sbf.sh",
                        path.display()
                    )
                });
                svm.add_program(PROGRAM_ID, &bytes)
                    .unwrap_or_else(|e| panic!("loading {}: {e:?}", path.display()));
            }
        }
        let mut clock: Clock = svm.get_sysvar();
        clock.unix_timestamp = GENESIS_UNIX_TIME;
        svm.set_sysvar(&clock);
        Self {
            svm,
            runtime,
            check_each_tx: true,
        }
    }

    /// A new keypair holding `lamports`.
    pub fn funded(&mut self, lamports: u64) -> Keypair {
        self.fund(Keypair::new(), lamports)
    }

    /// Airdrops `lamports` to `kp` and hands it back.
    pub fn fund(&mut self, kp: Keypair, lamports: u64) -> Keypair {
        self.svm
            .airdrop(&kp.pubkey(), lamports)
            .expect("airdrop to a fresh keypair");
        kp
    }

    /// Signs with `signers` (the first pays the fee) and sends. Each call gets a fresh
    /// blockhash, so identical transactions are not deduplicated.
    pub fn send(&mut self, ixs: &[Instruction], signers: &[&Keypair]) -> TxResult {
        let payer = signers.first().expect("at least one signer").pubkey();
        self.svm.expire_blockhash();
        let msg = Message::new(ixs, Some(&payer));
        let keys = msg.account_keys.clone();
        let tx = Transaction::new(signers, msg, self.svm.latest_blockhash());
        let before = self.total_lamports(&keys);
        let result = self.svm.send_transaction(tx);
        let fee = match &result {
            Ok(meta) => meta.fee,
            Err(FailedTransactionMetadata { meta, .. }) => meta.fee,
        };
        if self.check_each_tx {
            let after = self.total_lamports(&keys);
            let lost = before as i128 - after as i128;
            assert_eq!(
                lost, fee as i128,
                "lamports not conserved: the accounts of the transaction lost {lost} but the fee was {fee}"
            );
            invariants::check_program_accounts(self).unwrap_or_else(|e| panic!("{e}"));
        }
        match result {
            Ok(meta) => Ok(Executed {
                meta,
                account_keys: keys,
            }),
            Err(f) => Err(TxFailure {
                err: f.err,
                logs: f.meta.logs,
                fee: f.meta.fee,
            }),
        }
    }

    /// Sum of the lamports of `keys` (closed accounts count 0).
    pub fn total_lamports(&self, keys: &[Pubkey]) -> u128 {
        keys.iter().map(|k| self.lamports(k) as u128).sum()
    }

    pub fn lamports(&self, key: &Pubkey) -> u64 {
        self.svm.get_balance(key).unwrap_or(0)
    }

    pub fn account(&self, key: &Pubkey) -> Option<Account> {
        self.svm.get_account(key).filter(|a| a.lamports > 0)
    }

    /// Decodes a program account, `None` when it does not exist.
    pub fn get<T: AccountDeserialize>(&self, key: &Pubkey) -> Option<T> {
        let acc = self.account(key)?;
        Some(T::try_deserialize(&mut &acc.data[..]).expect("account decodes"))
    }

    pub fn rent_exempt(&self, data_len: usize) -> u64 {
        self.svm.minimum_balance_for_rent_exemption(data_len)
    }

    pub fn now(&self) -> i64 {
        self.svm.get_sysvar::<Clock>().unix_timestamp
    }

    /// Moves the clock forward `secs` seconds (and the slot with it, adding its hash).
    pub fn warp(&mut self, secs: i64) {
        let mut clock: Clock = self.svm.get_sysvar();
        clock.unix_timestamp += secs;
        clock.slot += (secs.max(0) as u64) * 5 / 2;
        self.svm.set_sysvar(&clock);
        self.push_slot_hash(clock.slot, slot_hash(clock.slot));
        self.svm.expire_blockhash();
    }

    /// The next slot (same second), with a hash of its own in `SlotHashes`.
    pub fn next_slot(&mut self) {
        self.next_slot_with_hash(None);
    }

    /// The next slot, whose `SlotHashes` entry is `hash` (a test's chosen draw) or else a
    /// deterministic one.
    pub fn next_slot_with_hash(&mut self, hash: Option<[u8; 32]>) {
        let mut clock: Clock = self.svm.get_sysvar();
        clock.slot += 1;
        self.svm.set_sysvar(&clock);
        self.push_slot_hash(clock.slot, hash.unwrap_or_else(|| slot_hash(clock.slot)));
        self.svm.expire_blockhash();
    }

    pub fn slot(&self) -> u64 {
        self.svm.get_sysvar::<Clock>().slot
    }

    /// The raw `SlotHashes` sysvar data (what `dispute_draw` reads).
    pub fn slot_hashes_data(&self) -> Vec<u8> {
        self.account(&tensorgrid::instructions::SLOT_HASHES_ID)
            .map(|a| a.data)
            .unwrap_or_default()
    }

    fn push_slot_hash(&mut self, slot: u64, hash: [u8; 32]) {
        let mut hashes: SlotHashes = self.svm.get_sysvar();
        let mut entries: Vec<(u64, Hash)> = hashes.iter().copied().collect();
        entries.retain(|(s, _)| *s < slot);
        entries.insert(0, (slot, Hash::new_from_array(hash)));
        entries.truncate(512);
        hashes = SlotHashes::new(&entries);
        self.svm.set_sysvar(&hashes);
    }
}
