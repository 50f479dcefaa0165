use anchor_lang::prelude::*;

use super::settle::*;
use crate::{
    errors::TensorgridError,
    events::{JobPaid, Settlement},
    state::JobState,
};

#[event_cpi]
#[derive(Accounts)]
pub struct JobAccept<'info> {
    /// `settle.poster` must sign: only the poster may accept early.
    pub settle: SettleAccounts<'info>,
}

impl JobAccept<'_> {
    fn validate(&self) -> Result<()> {
        require!(self.settle.poster.is_signer, TensorgridError::NotPoster);
        require!(
            self.settle.job.state == JobState::Submitted,
            TensorgridError::JobNotSubmitted
        );
        self.settle.check_assigned()
    }

    #[access_control(ctx.accounts.validate())]
    pub fn handler(ctx: Context<Self>) -> Result<()> {
        let (payout, fee) = ctx.accounts.settle.pay_worker()?;
        let s = &ctx.accounts.settle;
        emit_cpi!(JobPaid {
            job: s.job.key(),
            job_id: s.job.job_id,
            worker: s.worker.key(),
            settlement: Settlement::AcceptedByPoster,
            payout,
            fee,
        });
        Ok(())
    }
}
