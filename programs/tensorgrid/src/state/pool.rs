use anchor_lang::prelude::*;

use super::DeviceKind;
use crate::{constants::POOL_SIZE, errors::TensorgridError};

/// One worker in the verifier pool.
#[zero_copy]
#[derive(Debug, PartialEq, Eq, Default)]
pub struct PoolEntry {
    /// The `Worker` account; `Pubkey::default()` marks a free slot.
    pub worker: Pubkey,
    /// Its operator's wallet (a poster's own workers never verify its disputes).
    pub operator: Pubkey,
    /// Its weight in the draw: the stake it pledged on joining.
    pub weight: u64,
    /// The device class it re-runs segments on, as `DeviceKind as u8` (0 CPU, 1 CUDA,
    /// 2 Metal): results agree bit for bit only within one.
    pub device: u8,
    /// Alignment padding.
    pub padding: [u8; 7],
}

/// The workers of a market that serve as dispute verifiers. A dispute draws its verifiers
/// from here, weighted by pledged stake, from a slot hash neither party knew when it acted:
/// taking a majority of the seats takes a majority of the pool's stake, not a race or a
/// number of keys. Created by the first `verifier_join`; it is never closed. Zero-copy: read
/// in place (it is larger than the program's stack).
#[account(zero_copy)]
#[derive(Debug)]
pub struct VerifierPool {
    /// The market.
    pub market: Pubkey,
    /// The pool; free slots have `worker == Pubkey::default()`.
    pub entries: [PoolEntry; 32],
    /// Disputes opened since the pool last changed whose verifiers are not drawn yet: while
    /// any is pending the pool is frozen (no join, leave or forfeit changes it), so nobody can
    /// reshape it after a draw's slot hash is known.
    pub pending_draws: u32,
    /// Entries in use.
    pub count: u8,
    /// The PDA's bump.
    pub bump: u8,
    /// Alignment padding.
    pub padding: [u8; 2],
}

const _: () = assert!(POOL_SIZE == 32, "VerifierPool::entries has 32 slots");

impl PoolEntry {
    pub fn new(worker: Pubkey, operator: Pubkey, weight: u64, device: DeviceKind) -> Self {
        Self {
            worker,
            operator,
            weight,
            device: device as u8,
            padding: [0; 7],
        }
    }
}

/// Runs `f` on the pool at `info` in place, if this program's pool is there (`None` if the
/// account does not exist yet). For instructions where the pool is optional.
pub fn with_pool_mut<R>(
    info: &AccountInfo,
    f: impl FnOnce(&mut VerifierPool) -> Result<R>,
) -> Result<Option<R>> {
    if info.owner != &crate::ID || info.data_is_empty() {
        return Ok(None);
    }
    let mut data = info.try_borrow_mut_data()?;
    let malformed = || crate::errors::fail(TensorgridError::PoolMalformed);
    if data.get(..8) != Some(VerifierPool::DISCRIMINATOR) {
        return Err(malformed());
    }
    let body = data.get_mut(8..VerifierPool::SPACE).ok_or_else(malformed)?;
    let pool: &mut VerifierPool =
        anchor_lang::__private::bytemuck::try_from_bytes_mut(body).map_err(|_| malformed())?;
    f(pool).map(Some)
}

impl VerifierPool {
    pub const SPACE: usize = 8 + std::mem::size_of::<VerifierPool>();

    fn position(&self, worker: &Pubkey) -> Option<usize> {
        self.entries.iter().position(|e| e.worker == *worker)
    }

    /// Adds `entry`'s worker, or updates its entry. A full pool gives the slot of its lightest
    /// entry to a heavier joiner; returns the worker evicted, if any.
    pub fn join(&mut self, entry: PoolEntry) -> Result<Option<Pubkey>> {
        if let Some(slot) = self
            .position(&entry.worker)
            .and_then(|i| self.entries.get_mut(i))
        {
            *slot = entry;
            return Ok(None);
        }
        if let Some(free) = self
            .entries
            .iter_mut()
            .find(|e| e.worker == Pubkey::default())
        {
            *free = entry;
            self.count = self.count.saturating_add(1);
            return Ok(None);
        }
        let lightest = self
            .entries
            .iter_mut()
            .min_by_key(|e| e.weight)
            .ok_or(TensorgridError::VerifierPoolFull)?;
        ensure!(
            lightest.weight < entry.weight,
            TensorgridError::VerifierPoolFull
        );
        let evicted = lightest.worker;
        *lightest = entry;
        Ok(Some(evicted))
    }

    /// Removes `worker` if it is in the pool (an evicted worker is not); true if it was.
    pub fn leave(&mut self, worker: &Pubkey) -> bool {
        match self.position(worker).and_then(|i| self.entries.get_mut(i)) {
            Some(slot) => {
                *slot = PoolEntry::default();
                self.count = self.count.saturating_sub(1);
                true
            }
            None => false,
        }
    }

    /// Whether `worker` has an entry.
    pub fn contains(&self, worker: &Pubkey) -> bool {
        self.position(worker).is_some()
    }

    /// The pool may change: no draw is pending.
    pub fn require_thawed(&self) -> Result<()> {
        ensure!(self.pending_draws == 0, TensorgridError::PoolFrozen);
        Ok(())
    }

    /// A forfeit lowered `worker`'s pledge to `weight` (no-op if it is not in the pool).
    pub fn reweigh(&mut self, worker: &Pubkey, weight: u64) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.worker == *worker) {
            e.weight = weight;
        }
    }

    pub fn invariant(&self) -> Result<()> {
        let used = self
            .entries
            .iter()
            .filter(|e| e.worker != Pubkey::default())
            .count();
        ensure!(
            used == usize::from(self.count),
            TensorgridError::InvariantViolated
        );
        Ok(())
    }
}
