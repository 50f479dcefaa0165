use anchor_lang::prelude::*;

use super::settle::*;
use crate::{
    errors::TensorgridError,
    events::{JobPaid, JobRefunded, Settlement},
    state::JobState,
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct JobResolveArgs {
    /// true: the result stands and the worker is paid. false: the poster is refunded and the
    /// worker's stake slashed.
    pub worker_wins: bool,
}

#[event_cpi]
#[derive(Accounts)]
pub struct JobResolve<'info> {
    pub authority: Signer<'info>,
    pub settle: SettleAccounts<'info>,
}

impl JobResolve<'_> {
    fn validate(&self) -> Result<()> {
        require_keys_eq!(
            self.authority.key(),
            self.settle.market.authority,
            TensorgridError::NotMarketAuthority
        );
        require!(
            self.settle.job.state == JobState::Disputed,
            TensorgridError::JobNotDisputed
        );
        self.settle.check_assigned()
    }

    #[access_control(ctx.accounts.validate())]
    pub fn handler(ctx: Context<Self>, args: JobResolveArgs) -> Result<()> {
        let s = &mut ctx.accounts.settle;
        let (job, job_id, worker) = (s.job.key(), s.job.job_id, s.worker.key());
        if args.worker_wins {
            let (payout, fee) = s.pay_worker()?;
            emit_cpi!(JobPaid {
                job,
                job_id,
                worker,
                settlement: Settlement::ResolvedForWorker,
                payout,
                fee,
            });
        } else {
            let (refunded, slashed) = s.refund_poster()?;
            emit_cpi!(JobRefunded {
                job,
                job_id,
                worker,
                refunded,
                slashed,
            });
        }
        Ok(())
    }
}
