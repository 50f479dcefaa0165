use anchor_lang::{
    prelude::*,
    system_program::{transfer, Transfer},
};

use crate::{
    constants::{MARKET_SEED, WORKER_SEED},
    errors::TensorgridError,
    events::WorkerRegistered,
    state::{Hardware, Market, Worker},
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct WorkerRegisterArgs {
    /// Lamports to stake; at least the market's `min_stake`.
    pub stake: u64,
    pub hardware: Hardware,
}

#[event_cpi]
#[derive(Accounts)]
pub struct WorkerRegister<'info> {
    #[account(mut)]
    pub operator: Signer<'info>,
    #[account(
        seeds = [MARKET_SEED, market.authority.as_ref(), &market.market_id.to_le_bytes()],
        bump = market.bump,
    )]
    pub market: Account<'info, Market>,
    #[account(
        init,
        payer = operator,
        space = Worker::SPACE,
        seeds = [WORKER_SEED, market.key().as_ref(), operator.key().as_ref()],
        bump,
    )]
    pub worker: Account<'info, Worker>,
    pub system_program: Program<'info, System>,
}

impl WorkerRegister<'_> {
    fn validate(&self, args: &WorkerRegisterArgs) -> Result<()> {
        require!(
            args.stake >= self.market.params.min_stake,
            TensorgridError::StakeBelowMinimum
        );
        args.hardware.validate()
    }

    #[access_control(ctx.accounts.validate(&args))]
    pub fn handler(ctx: Context<Self>, args: WorkerRegisterArgs) -> Result<()> {
        transfer(
            CpiContext::new(
                ctx.accounts.system_program.key(),
                Transfer {
                    from: ctx.accounts.operator.to_account_info(),
                    to: ctx.accounts.worker.to_account_info(),
                },
            ),
            args.stake,
        )?;
        let worker = &mut ctx.accounts.worker;
        worker.set_inner(Worker {
            market: ctx.accounts.market.key(),
            operator: ctx.accounts.operator.key(),
            stake: args.stake,
            hardware: args.hardware,
            active_job: None,
            jobs_completed: 0,
            jobs_abandoned: 0,
            jobs_slashed: 0,
            total_earned: 0,
            registered_at: Clock::get()?.unix_timestamp,
            bump: ctx.bumps.worker,
        });
        worker.invariant(&worker.to_account_info())?;
        emit_cpi!(WorkerRegistered {
            market: worker.market,
            worker: worker.key(),
            operator: worker.operator,
            stake: worker.stake,
            hardware: worker.hardware.clone(),
        });
        Ok(())
    }
}
