use anchor_lang::prelude::*;

use super::checked_add;
use crate::errors::TensorgridError;

/// A poster's presence in one market: the counter that keeps its job addresses unique. It is
/// never closed (its rent, about 0.0015 SOL, is paid once per market): a closed counter could
/// start again and hand out an address a job already had.
#[account]
#[derive(InitSpace, Debug)]
pub struct Poster {
    /// The market.
    pub market: Pubkey,
    /// The poster's wallet.
    pub wallet: Pubkey,
    /// The least job id the poster may post next: ids only grow, so a job address is never
    /// used twice, even after its job closed.
    pub next_job_id: u64,
    /// Jobs posted so far.
    pub jobs_posted: u64,
    /// The PDA's bump.
    pub bump: u8,
}

impl Poster {
    pub const SPACE: usize = 8 + Poster::INIT_SPACE;

    /// Takes `job_id` for a new job: it must not be below `next_job_id`.
    pub fn take_job_id(&mut self, job_id: u64) -> Result<()> {
        ensure!(job_id >= self.next_job_id, TensorgridError::JobIdUsed);
        self.next_job_id = checked_add(job_id, 1)?;
        self.jobs_posted = checked_add(self.jobs_posted, 1)?;
        Ok(())
    }

    pub fn invariant(&self) -> Result<()> {
        ensure!(
            self.jobs_posted <= self.next_job_id,
            TensorgridError::InvariantViolated
        );
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_only_grow() {
        let mut p = Poster {
            market: Pubkey::default(),
            wallet: Pubkey::default(),
            next_job_id: 0,
            jobs_posted: 0,
            bump: 255,
        };
        p.take_job_id(0).unwrap();
        assert!(p.take_job_id(0).is_err(), "an id is used once");
        p.take_job_id(7).unwrap();
        assert!(p.take_job_id(5).is_err(), "skipped ids are gone too");
        assert_eq!((p.next_job_id, p.jobs_posted), (8, 2));
        assert!(p.take_job_id(u64::MAX).is_err(), "no id after the last");
        p.invariant().unwrap();
    }
}
