use anchor_lang::prelude::*;

use crate::{
    constants::{MARKET_SEED, VERIFIER_POOL_SEED, WORKER_SEED},
    errors::TensorgridError,
    events::VerifierPoolChanged,
    state::{checked_add, Market, PoolEntry, VerifierPool, Worker},
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct VerifierJoinArgs {
    /// Lamports of stake to pledge: the worker's weight in draws and what its seats' forfeits
    /// come out of. At least the market's minimum stake, and backed by stake no job holds; no
    /// claim's collateral may use it until the worker leaves the pool.
    pub pledge: u64,
}

#[event_cpi]
#[derive(Accounts)]
pub struct VerifierJoin<'info> {
    /// The worker's operator; pays the pool's rent if this is the market's first verifier.
    #[account(mut)]
    pub operator: Signer<'info>,
    /// The market (for its minimum stake).
    #[account(
        seeds = [MARKET_SEED, market.authority.as_ref(), &market.market_id.to_le_bytes()],
        bump = market.bump,
    )]
    pub market: Box<Account<'info, Market>>,
    /// The worker joining (or changing its pledge).
    #[account(
        mut,
        has_one = operator @ TensorgridError::NotOperator,
        has_one = market @ TensorgridError::MarketMismatch,
        seeds = [WORKER_SEED, worker.market.as_ref(), worker.operator.as_ref()],
        bump = worker.bump,
    )]
    pub worker: Box<Account<'info, Worker>>,
    /// The market's verifier pool, created on first use.
    #[account(
        init_if_needed,
        payer = operator,
        space = VerifierPool::SPACE,
        seeds = [VERIFIER_POOL_SEED, market.key().as_ref()],
        bump,
    )]
    pub pool: AccountLoader<'info, VerifierPool>,
    pub system_program: Program<'info, System>,
}

impl VerifierJoin<'_> {
    fn validate(&self, args: &VerifierJoinArgs) -> Result<()> {
        let w = &self.worker;
        w.require_registered()?;
        // A pledge changes only without seats (a seat's reserve is part of it).
        ensure!(w.open_seats == 0, TensorgridError::VerifierSeated);
        let backed = checked_add(w.locked_collateral, args.pledge)? <= w.stake;
        ensure!(
            args.pledge >= self.market.params.min_stake && args.pledge > 0 && backed,
            TensorgridError::PledgeNotBacked
        );
        Ok(())
    }

    /// Joins the pool, or changes this worker's entry (pledge and device class).
    #[access_control(ctx.accounts.validate(&args))]
    pub fn handler(ctx: Context<Self>, args: VerifierJoinArgs) -> Result<()> {
        let a = &mut *ctx.accounts;
        // A pool created by this instruction has no discriminator yet.
        let mut pool = match a.pool.load_mut() {
            Ok(pool) => pool,
            Err(_) => a.pool.load_init()?,
        };
        pool.require_thawed()?;
        pool.market = a.market.key();
        pool.bump = ctx.bumps.pool;
        let weight = args.pledge;
        let entry = PoolEntry::new(
            a.worker.key(),
            a.operator.key(),
            weight,
            a.worker.hardware.device,
        );
        let evicted = pool.join(entry)?;
        pool.invariant()?;
        let count = pool.count;
        drop(pool);
        a.worker.pooled_stake = weight;
        let event = VerifierPoolChanged {
            worker: a.worker.key(),
            joined: true,
            weight,
            evicted,
            count,
        };
        emit_event!(ctx, event);
        Ok(())
    }
}
