//! One builder per program instruction. Account lists come from Anchor's generated client
//! structs, so they cannot drift from the program, and signer / writable flags are exactly
//! what the accounts structs (and therefore the IDL) declare.

use anchor_lang::{prelude::Pubkey, system_program, InstructionData, ToAccountMetas};
use tensorgrid::{accounts as acc, instruction as data, instructions::*, state::JobOffer};

pub use anchor_lang::solana_program::instruction::Instruction;

use crate::{pda, program_id};

fn build(accounts: impl ToAccountMetas, data: impl InstructionData) -> Instruction {
    Instruction {
        program_id: program_id(),
        accounts: accounts.to_account_metas(None),
        data: data.data(),
    }
}

pub fn market_init(authority: Pubkey, args: MarketInitArgs) -> Instruction {
    let market = pda::market(&authority, args.market_id).0;
    build(
        acc::MarketInit {
            authority,
            market,
            system_program: system_program::ID,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::MarketInit { args },
    )
}

pub fn market_update(authority: Pubkey, market: Pubkey, args: MarketUpdateArgs) -> Instruction {
    build(
        acc::MarketUpdate {
            authority,
            market,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::MarketUpdate { args },
    )
}

pub fn market_withdraw_fees(
    authority: Pubkey,
    market: Pubkey,
    recipient: Pubkey,
    amount: u64,
) -> Instruction {
    build(
        acc::MarketWithdrawFees {
            authority,
            market,
            recipient,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::MarketWithdrawFees {
            args: MarketWithdrawFeesArgs { amount },
        },
    )
}

pub fn worker_register(operator: Pubkey, market: Pubkey, args: WorkerRegisterArgs) -> Instruction {
    build(
        acc::WorkerRegister {
            operator,
            market,
            worker: pda::worker(&market, &operator).0,
            system_program: system_program::ID,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::WorkerRegister { args },
    )
}

pub fn worker_update(
    operator: Pubkey,
    market: Pubkey,
    worker: Pubkey,
    args: WorkerUpdateArgs,
) -> Instruction {
    build(
        acc::WorkerUpdate {
            operator,
            market,
            worker,
            system_program: system_program::ID,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::WorkerUpdate { args },
    )
}

pub fn worker_deregister(operator: Pubkey, worker: Pubkey) -> Instruction {
    build(
        acc::WorkerDeregister {
            operator,
            worker,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::WorkerDeregister {},
    )
}

/// Creates `poster`'s account in `market` (once, before its first post).
pub fn poster_init(poster: Pubkey, market: Pubkey) -> Instruction {
    build(
        acc::PosterInit {
            poster,
            market,
            poster_account: pda::poster(&market, &poster).0,
            system_program: system_program::ID,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::PosterInit {},
    )
}

/// Posts at `pda::job(market, poster, args.job_id)`; the poster account must exist
/// ([`poster_init`]).
pub fn job_post(poster: Pubkey, market: Pubkey, args: JobPostArgs) -> Instruction {
    let (job, job_bump) = pda::job(&market, &poster, args.job_id);
    build(
        acc::JobPost {
            poster,
            market,
            poster_account: pda::poster(&market, &poster).0,
            job,
            system_program: system_program::ID,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::JobPost { args, job_bump },
    )
}

pub fn job_cancel(poster: Pubkey, job: Pubkey) -> Instruction {
    build(
        acc::JobCancel {
            poster,
            job,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::JobCancel {},
    )
}

/// The accounts a worker-side instruction names.
#[derive(Clone, Copy, Debug)]
pub struct WorkerKeys {
    pub operator: Pubkey,
    pub market: Pubkey,
    pub worker: Pubkey,
}

/// Claims `job` agreeing to `expected` (`Job::offer()` of the account as read); the program
/// refuses the claim if the job differs when it lands.
pub fn job_claim(w: WorkerKeys, job: Pubkey, expected: JobOffer) -> Instruction {
    build(
        acc::JobClaim {
            operator: w.operator,
            market: w.market,
            worker: w.worker,
            job,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::JobClaim {
            args: JobClaimArgs { expected },
        },
    )
}

pub fn job_abandon(w: WorkerKeys, job: Pubkey) -> Instruction {
    build(
        acc::JobAbandon {
            operator: w.operator,
            worker: w.worker,
            job,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::JobAbandon {},
    )
}

pub fn job_submit(w: WorkerKeys, job: Pubkey, args: JobSubmitArgs) -> Instruction {
    build(
        acc::JobSubmit {
            operator: w.operator,
            worker: w.worker,
            job,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::JobSubmit { args },
    )
}

/// The accounts that ending a job (accept, finalize, resolve, dispute timeout) names.
#[derive(Clone, Copy, Debug)]
pub struct SettleKeys {
    pub market: Pubkey,
    pub worker: Pubkey,
    pub job: Pubkey,
    pub poster: Pubkey,
}

impl SettleKeys {
    /// The keys of `job` (at `address`) as its account records them.
    pub fn for_job(address: Pubkey, job: &tensorgrid::state::Job) -> Self {
        Self {
            market: job.market,
            worker: job.worker,
            job: address,
            poster: job.poster,
        }
    }
}

/// The poster signs.
pub fn job_accept(s: SettleKeys) -> Instruction {
    build(
        acc::JobAccept {
            poster: s.poster,
            market: s.market,
            worker: s.worker,
            job: s.job,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::JobAccept {},
    )
}

pub fn job_finalize(s: SettleKeys) -> Instruction {
    build(
        acc::JobFinalize {
            market: s.market,
            worker: s.worker,
            job: s.job,
            poster: s.poster,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::JobFinalize {},
    )
}

/// The poster signs and posts `args.bond`.
pub fn job_dispute(s: SettleKeys, args: JobDisputeArgs) -> Instruction {
    build(
        acc::JobDispute {
            poster: s.poster,
            job: s.job,
            worker: s.worker,
            dispute: pda::dispute(&s.job),
            pool: pda::verifier_pool(&s.market),
            system_program: system_program::ID,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::JobDispute { args },
    )
}

/// Anyone; `seats` are the drawn verifiers' worker accounts in seat order (empty when fewer
/// than three are eligible: see `crate::draw`).
pub fn dispute_draw(market: Pubkey, job: Pubkey, seats: &[Pubkey]) -> Instruction {
    let mut ix = build(
        acc::DisputeDraw {
            job,
            dispute: pda::dispute(&job),
            pool: pda::verifier_pool(&market),
            slot_hashes: tensorgrid::instructions::SLOT_HASHES_ID,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::DisputeDraw {},
    );
    ix.accounts.extend(
        seats
            .iter()
            .map(|s| anchor_lang::prelude::AccountMeta::new(*s, false)),
    );
    ix
}

/// A seated verifier's operator signs.
pub fn dispute_vote(w: WorkerKeys, dispute: Pubkey, args: DisputeVoteArgs) -> Instruction {
    build(
        acc::DisputeVote {
            operator: w.operator,
            worker: w.worker,
            dispute,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::DisputeVote { args },
    )
}

/// Anyone, once voting is over; `seats` in seat order.
pub fn dispute_settle(s: SettleKeys, seats: [Pubkey; 3]) -> Instruction {
    build(
        acc::DisputeSettle {
            market: s.market,
            worker: s.worker,
            job: s.job,
            dispute: pda::dispute(&s.job),
            poster: s.poster,
            seat0: seats[0],
            seat1: seats[1],
            seat2: seats[2],
            pool: pda::verifier_pool(&s.market),
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::DisputeSettle {},
    )
}

/// The worker's operator signs (and pays the pool's rent if it is the market's first),
/// pledging `pledge` lamports of its stake.
pub fn verifier_join(w: WorkerKeys, pledge: u64) -> Instruction {
    build(
        acc::VerifierJoin {
            operator: w.operator,
            market: w.market,
            worker: w.worker,
            pool: pda::verifier_pool(&w.market),
            system_program: system_program::ID,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::VerifierJoin {
            args: VerifierJoinArgs { pledge },
        },
    )
}

/// The worker's operator signs.
pub fn verifier_leave(w: WorkerKeys) -> Instruction {
    build(
        acc::VerifierLeave {
            operator: w.operator,
            worker: w.worker,
            pool: pda::verifier_pool(&w.market),
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::VerifierLeave {},
    )
}

pub fn job_resolve(authority: Pubkey, s: SettleKeys, worker_wins: bool) -> Instruction {
    build(
        acc::JobResolve {
            authority,
            market: s.market,
            worker: s.worker,
            job: s.job,
            dispute: pda::dispute(&s.job),
            poster: s.poster,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::JobResolve {
            args: JobResolveArgs { worker_wins },
        },
    )
}

pub fn job_dispute_timeout(s: SettleKeys) -> Instruction {
    build(
        acc::JobDisputeTimeout {
            market: s.market,
            worker: s.worker,
            job: s.job,
            dispute: pda::dispute(&s.job),
            poster: s.poster,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::JobDisputeTimeout {},
    )
}

pub fn job_reclaim(cranker: Pubkey, worker: Pubkey, job: Pubkey) -> Instruction {
    build(
        acc::JobReclaim {
            cranker,
            worker,
            job,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::JobReclaim {},
    )
}

/// The SPL Memo program (v2): every cluster has it.
pub const MEMO_PROGRAM_ID: Pubkey =
    anchor_lang::pubkey!("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr");

/// A memo signed by `signer`: text carried in a transaction for readers of its logs (the
/// worker names its progress file this way in its claim).
pub fn memo(signer: Pubkey, text: &str) -> Instruction {
    Instruction {
        program_id: MEMO_PROGRAM_ID,
        accounts: vec![anchor_lang::prelude::AccountMeta::new_readonly(
            signer, true,
        )],
        data: text.as_bytes().to_vec(),
    }
}
