use anchor_lang::prelude::*;

use super::{checked_add, checked_sub};
use crate::errors::TensorgridError;

/// A poster's presence in one market: the counter that keeps its job addresses unique, and in a
/// token market what the market owes the poster (refunds, compensation, returned bonds) until
/// the poster withdraws it (`poster_withdraw`): crediting an account of the program, rather than
/// paying the poster's token account, means no settlement can fail on a token account the
/// poster closed or had frozen. It is never closed (its rent, about 0.0015 SOL, is paid once per market): a closed counter could
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
    /// Token market only: refunds, compensation and bonds returned to the poster and not yet
    /// withdrawn, in base units of the mint (held by the market's vault). Always 0 in a SOL
    /// market, where they go straight to the poster's wallet.
    pub refunds: u64,
    /// Token market only: refunds the poster has withdrawn so far.
    pub refunds_withdrawn: u64,
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

    /// `amount` returned to the poster in a token market (the vault holds it).
    pub fn credit(&mut self, amount: u64) -> Result<()> {
        self.refunds = checked_add(self.refunds, amount)?;
        Ok(())
    }

    /// `amount` of the refunds leaves (the caller transfers it out of the vault).
    pub fn withdraw(&mut self, amount: u64) -> Result<()> {
        ensure!(amount <= self.refunds, TensorgridError::InsufficientRefunds);
        self.refunds = checked_sub(self.refunds, amount)?;
        // A running total for readers: it saturates rather than fail a withdrawal.
        self.refunds_withdrawn = self.refunds_withdrawn.saturating_add(amount);
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
            refunds: 0,
            refunds_withdrawn: 0,
        };
        p.take_job_id(0).unwrap();
        assert!(p.take_job_id(0).is_err(), "an id is used once");
        p.take_job_id(7).unwrap();
        assert!(p.take_job_id(5).is_err(), "skipped ids are gone too");
        assert_eq!((p.next_job_id, p.jobs_posted), (8, 2));
        assert!(p.take_job_id(u64::MAX).is_err(), "no id after the last");
        p.invariant().unwrap();
    }

    #[test]
    fn refunds_leave_at_most_what_came_in() {
        let mut p = Poster {
            market: Pubkey::default(),
            wallet: Pubkey::default(),
            next_job_id: 0,
            jobs_posted: 0,
            bump: 255,
            refunds: 0,
            refunds_withdrawn: 0,
        };
        p.credit(10).unwrap();
        assert!(p.withdraw(11).is_err());
        p.withdraw(4).unwrap();
        assert_eq!((p.refunds, p.refunds_withdrawn), (6, 4));
        assert!(p.credit(u64::MAX).is_err());
    }
}
