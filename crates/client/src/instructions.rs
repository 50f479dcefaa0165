//! One builder per program instruction. Account lists come from Anchor's generated client
//! structs, so they cannot drift from the program, and signer / writable flags are exactly
//! what the accounts structs (and therefore the IDL) declare.
//!
//! Builders that move an amount in or out of a market come in two forms: `x(…)` for a SOL
//! market, and `x_in(&currency, …)` for any market, which names a token market's mint, vault,
//! token program and the party's associated token account.

use anchor_lang::{prelude::Pubkey, system_program, InstructionData, ToAccountMetas};
use tensorgrid::{accounts as acc, instruction as data, instructions::*, state::JobOffer};

pub use anchor_lang::solana_program::instruction::Instruction;

use crate::{pda, program_id, Currency};

/// A token market's accounts for one instruction (all `None` in a SOL market).
struct Tokens {
    mint: Option<Pubkey>,
    vault: Option<Pubkey>,
    party: Option<Pubkey>,
    token_program: Option<Pubkey>,
}

/// The accounts `party` moves tokens with in `market`.
fn tokens(currency: &Currency, market: &Pubkey, party: &Pubkey) -> Tokens {
    Tokens {
        mint: currency.mint(),
        vault: currency.vault(market),
        party: currency.token_account(party),
        token_program: currency.token_program(),
    }
}

/// The poster account in a token market (`None` in SOL, where it is not needed).
fn poster_account_in(currency: &Currency, market: &Pubkey, poster: &Pubkey) -> Option<Pubkey> {
    currency.mint().map(|_| pda::poster(market, poster).0)
}

fn build(accounts: impl ToAccountMetas, data: impl InstructionData) -> Instruction {
    Instruction {
        program_id: program_id(),
        accounts: accounts.to_account_metas(None),
        data: data.data(),
    }
}

pub fn market_init(authority: Pubkey, args: MarketInitArgs) -> Instruction {
    market_init_in(&Currency::Sol, authority, args)
}

/// A market priced in `currency`: a token market creates its vault.
pub fn market_init_in(currency: &Currency, authority: Pubkey, args: MarketInitArgs) -> Instruction {
    let market = pda::market(&authority, args.market_id).0;
    build(
        acc::MarketInit {
            authority,
            market,
            mint: currency.mint(),
            vault: currency.vault(&market),
            token_program: currency.token_program(),
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
    market_withdraw_fees_in(&Currency::Sol, authority, market, recipient, amount)
}

/// In a token market the fees go to `recipient`'s associated token account.
pub fn market_withdraw_fees_in(
    currency: &Currency,
    authority: Pubkey,
    market: Pubkey,
    recipient: Pubkey,
    amount: u64,
) -> Instruction {
    let t = tokens(currency, &market, &recipient);
    build(
        acc::MarketWithdrawFees {
            authority,
            market,
            recipient,
            mint: t.mint,
            vault: t.vault,
            recipient_token: t.party,
            token_program: t.token_program,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::MarketWithdrawFees {
            args: MarketWithdrawFeesArgs { amount },
        },
    )
}

pub fn worker_register(operator: Pubkey, market: Pubkey, args: WorkerRegisterArgs) -> Instruction {
    worker_register_in(&Currency::Sol, operator, market, args)
}

pub fn worker_register_in(
    currency: &Currency,
    operator: Pubkey,
    market: Pubkey,
    args: WorkerRegisterArgs,
) -> Instruction {
    let t = tokens(currency, &market, &operator);
    build(
        acc::WorkerRegister {
            operator,
            market,
            worker: pda::worker(&market, &operator).0,
            system_program: system_program::ID,
            mint: t.mint,
            vault: t.vault,
            operator_token: t.party,
            token_program: t.token_program,
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
    worker_update_in(&Currency::Sol, operator, market, worker, args)
}

pub fn worker_update_in(
    currency: &Currency,
    operator: Pubkey,
    market: Pubkey,
    worker: Pubkey,
    args: WorkerUpdateArgs,
) -> Instruction {
    let t = tokens(currency, &market, &operator);
    build(
        acc::WorkerUpdate {
            operator,
            market,
            worker,
            system_program: system_program::ID,
            mint: t.mint,
            vault: t.vault,
            operator_token: t.party,
            token_program: t.token_program,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::WorkerUpdate { args },
    )
}

pub fn worker_deregister(operator: Pubkey, market: Pubkey, worker: Pubkey) -> Instruction {
    worker_deregister_in(&Currency::Sol, operator, market, worker)
}

pub fn worker_deregister_in(
    currency: &Currency,
    operator: Pubkey,
    market: Pubkey,
    worker: Pubkey,
) -> Instruction {
    let t = tokens(currency, &market, &operator);
    build(
        acc::WorkerDeregister {
            operator,
            market,
            worker,
            mint: t.mint,
            vault: t.vault,
            operator_token: t.party,
            token_program: t.token_program,
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
    job_post_in(&Currency::Sol, poster, market, args)
}

pub fn job_post_in(
    currency: &Currency,
    poster: Pubkey,
    market: Pubkey,
    args: JobPostArgs,
) -> Instruction {
    let (job, job_bump) = pda::job(&market, &poster, args.job_id);
    let t = tokens(currency, &market, &poster);
    build(
        acc::JobPost {
            poster,
            market,
            poster_account: pda::poster(&market, &poster).0,
            job,
            system_program: system_program::ID,
            mint: t.mint,
            vault: t.vault,
            poster_token: t.party,
            token_program: t.token_program,
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
            poster_account: None,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::JobCancel {},
    )
}

/// In a token market the reward and compensation are credited to the poster account: follow
/// with [`poster_withdraw`] to take them out in the same transaction.
pub fn job_cancel_in(
    currency: &Currency,
    poster: Pubkey,
    market: Pubkey,
    job: Pubkey,
) -> Instruction {
    build(
        acc::JobCancel {
            poster,
            job,
            poster_account: poster_account_in(currency, &market, &poster),
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
            poster_account: pda::poster(&s.market, &s.poster).0,
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
            poster_account: pda::poster(&s.market, &s.poster).0,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::JobFinalize {},
    )
}

/// The poster signs and posts `args.bond`.
pub fn job_dispute(s: SettleKeys, args: JobDisputeArgs) -> Instruction {
    job_dispute_in(&Currency::Sol, s, args)
}

pub fn job_dispute_in(currency: &Currency, s: SettleKeys, args: JobDisputeArgs) -> Instruction {
    let t = tokens(currency, &s.market, &s.poster);
    build(
        acc::JobDispute {
            poster: s.poster,
            market: s.market,
            job: s.job,
            worker: s.worker,
            dispute: pda::dispute(&s.job),
            pool: pda::verifier_pool(&s.market),
            system_program: system_program::ID,
            mint: t.mint,
            vault: t.vault,
            poster_token: t.party,
            token_program: t.token_program,
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
            poster_account: pda::poster(&s.market, &s.poster).0,
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
            poster_account: pda::poster(&s.market, &s.poster).0,
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
            poster_account: pda::poster(&s.market, &s.poster).0,
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
            market: None,
            worker,
            job,
            mint: None,
            vault: None,
            cranker_token: None,
            token_program: None,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::JobReclaim {},
    )
}

/// In a token market the bounty goes to the cranker's associated token account.
pub fn job_reclaim_in(
    currency: &Currency,
    cranker: Pubkey,
    market: Pubkey,
    worker: Pubkey,
    job: Pubkey,
) -> Instruction {
    let t = tokens(currency, &market, &cranker);
    build(
        acc::JobReclaim {
            cranker,
            market: currency.mint().map(|_| market),
            worker,
            job,
            mint: t.mint,
            vault: t.vault,
            cranker_token: t.party,
            token_program: t.token_program,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::JobReclaim {},
    )
}

/// Token market only: the poster withdraws `amount` of its credited refunds to its
/// associated token account.
pub fn poster_withdraw(
    currency: &Currency,
    poster: Pubkey,
    market: Pubkey,
    amount: u64,
) -> Instruction {
    let t = tokens(currency, &market, &poster);
    build(
        acc::PosterWithdraw {
            poster,
            market,
            poster_account: pda::poster(&market, &poster).0,
            mint: t.mint,
            vault: t.vault,
            poster_token: t.party,
            token_program: t.token_program,
            event_authority: pda::event_authority(),
            program: program_id(),
        },
        data::PosterWithdraw {
            args: PosterWithdrawArgs { amount },
        },
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
