use anchor_lang::prelude::*;

use super::settle::*;
use crate::{
    errors::TensorgridError,
    events::{JobPaid, Settlement},
    state::JobState,
};

/// Permissionless crank: anyone may finalize once the challenge window has passed.
#[event_cpi]
#[derive(Accounts)]
pub struct JobFinalize<'info> {
    pub settle: SettleAccounts<'info>,
}

impl JobFinalize<'_> {
    fn validate(&self) -> Result<()> {
        let job = &self.settle.job;
        require!(
            job.state == JobState::Submitted,
            TensorgridError::JobNotSubmitted
        );
        require!(
            Clock::get()?.unix_timestamp > job.challenge_ends_at,
            TensorgridError::ChallengeWindowOpen
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
            settlement: Settlement::FinalizedAfterWindow,
            payout,
            fee,
        });
        Ok(())
    }
}
