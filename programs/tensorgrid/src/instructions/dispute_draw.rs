use anchor_lang::prelude::*;

use crate::{
    constants::{DISPUTE_SEED, JOB_SEED, VERIFIER_POOL_SEED},
    errors::TensorgridError,
    events::DisputeDrawn,
    state::{
        draw_seats, draw_seed, slot_hash_after, with_pool_mut, Dispute, DisputePhase, Job,
        PoolEntry, SlotDraw, Unit, Worker,
    },
};

/// The `SlotHashes` sysvar's address.
pub const SLOT_HASHES_ID: Pubkey =
    Pubkey::from_str_const("SysvarS1otHashes111111111111111111111111111");

/// Permissionless crank, in any slot after the dispute's: seats three verifiers from the
/// market's pool, weighted by pledged stake, from the hash of the first slot after the
/// dispute (which neither party knew when it acted, and which the caller cannot choose; the
/// pool cannot change between the dispute and the draw). If nobody draws within the
/// `SlotHashes` window (about 512 slots) the dispute goes to the authority.
/// The seated workers' accounts follow as remaining accounts, in seat order (a client
/// computes the draw with `draw_seats`); each is locked (`open_seats`) until the dispute
/// ends. With fewer than three eligible verifiers (of the disputed worker's device class,
/// other than the worker and any worker the poster operates) the dispute goes to the
/// authority.
#[event_cpi]
#[derive(Accounts)]
pub struct DisputeDraw<'info> {
    /// The disputed job.
    #[account(
        mut,
        seeds = [JOB_SEED, job.market.as_ref(), job.poster.as_ref(), &job.job_id.to_le_bytes()],
        bump = job.bump,
    )]
    pub job: Box<Account<'info, Job>>,
    /// The job's dispute, waiting for its draw.
    #[account(
        mut,
        has_one = job @ TensorgridError::DisputeJobMismatch,
        seeds = [DISPUTE_SEED, job.key().as_ref()],
        bump = dispute.bump,
    )]
    pub dispute: Box<Account<'info, Dispute>>,
    /// The market's verifier pool, frozen since the dispute; thawed by this draw. (It may not
    /// exist: then nobody can be drawn.)
    /// CHECK: the PDA is checked by its seeds; its data is used only if the dispute froze it.
    #[account(mut, seeds = [VERIFIER_POOL_SEED, job.market.as_ref()], bump)]
    pub pool: UncheckedAccount<'info>,
    /// The `SlotHashes` sysvar.
    /// CHECK: its address is checked.
    #[account(address = SLOT_HASHES_ID)]
    pub slot_hashes: UncheckedAccount<'info>,
}

impl DisputeDraw<'_> {
    fn validate(&self) -> Result<()> {
        self.dispute.require_phase(DisputePhase::Drawing)
    }

    /// The pool's entries, and the pool thawed (its pending draw done). Nothing when the
    /// dispute found no pool.
    fn take_pool(&self) -> Result<Vec<PoolEntry>> {
        if !self.dispute.pool_frozen {
            return Ok(Vec::new());
        }
        with_pool_mut(&self.pool.to_account_info(), |pool| {
            pool.pending_draws = pool
                .pending_draws
                .checked_sub(1)
                .ok_or(TensorgridError::InvariantViolated)?;
            Ok(pool.entries.to_vec())
        })?
        .ok_or_else(|| crate::errors::fail(TensorgridError::PoolMalformed))
    }

    #[access_control(ctx.accounts.validate())]
    pub fn handler(ctx: Context<Self>) -> Result<()> {
        let read = {
            let data = ctx.accounts.slot_hashes.try_borrow_data()?;
            slot_hash_after(&data, ctx.accounts.dispute.disputed_slot)
        };
        let (slot, slot_hash) = match read {
            Some(SlotDraw::Hash(slot, hash)) => (slot, Some(hash)),
            Some(SlotDraw::Expired) => (0, None),
            Some(SlotDraw::TooEarly) | None => {
                return Err(crate::errors::fail(TensorgridError::DrawTooEarly))
            }
        };
        let now = Clock::get()?.unix_timestamp;
        let job_key = ctx.accounts.job.key();
        let entries = ctx.accounts.take_pool()?;
        let d = &ctx.accounts.dispute;
        let drawn = slot_hash.and_then(|h| {
            let seed = draw_seed(&h, &job_key);
            draw_seats(&entries, d.device, &d.worker, &d.poster, &seed)
        });
        let window = ctx.accounts.job.terms.dispute.verify_window_s;
        match drawn {
            Some(seats) => {
                let fee = ctx.accounts.dispute.verifier_fee;
                let unit = ctx.accounts.job.unit();
                let seated = lock_seats(&seats, fee, unit, ctx.remaining_accounts)?;
                ctx.accounts.dispute.seat(seated, slot, now, window)?;
            }
            None => {
                ctx.accounts.dispute.drawn_slot = slot;
                ctx.accounts.dispute.escalate();
                ctx.accounts.job.escalate(now)?;
            }
        }
        let d = &ctx.accounts.dispute;
        let event = DisputeDrawn {
            job: job_key,
            dispute: d.key(),
            drawn_slot: slot,
            seats: d.seats.map(|s| s.worker),
            commit_ends_at: d.commit_ends_at,
            reveal_ends_at: d.reveal_ends_at,
            dispute_ends_at: ctx.accounts.job.dispute_ends_at,
        };
        emit_event!(ctx, event);
        Ok(())
    }
}

/// Each seat's `Worker` account, passed in seat order, takes its seat and reserves up to
/// `fee` of its free stake for a forfeit; returns each seat with its reserve.
fn lock_seats<'info>(
    seats: &[Pubkey; 3],
    fee: u64,
    unit: Unit,
    accounts: &'info [AccountInfo<'info>],
) -> Result<[(Pubkey, u64); 3]> {
    ensure!(accounts.len() == seats.len(), TensorgridError::SeatCount);
    let mut seated = [(Pubkey::default(), 0); 3];
    for ((seat, info), out) in seats.iter().zip(accounts).zip(seated.iter_mut()) {
        ensure!(
            info.key == seat && info.is_writable,
            TensorgridError::SeatMismatch
        );
        let mut worker = Box::new(Account::<Worker>::try_from(info)?);
        *out = (*seat, worker.take_seat(fee)?);
        worker.invariant(info, unit)?;
        worker.exit(&crate::ID)?;
    }
    Ok(seated)
}
