//! Ready-made markets, workers and jobs, and error assertions, so each test case states only
//! what it is about.

use anchor_lang::{error::ErrorCode as AnchorErrorCode, prelude::Pubkey};
use solana_instruction_error::InstructionError;
use solana_keypair::Keypair;
use solana_signer::Signer;
use solana_transaction_error::TransactionError;
use tensorgrid::instructions::{
    DisputeVoteArgs, JobDisputeArgs, JobPostArgs, JobSubmitArgs, MarketInitArgs, WorkerRegisterArgs,
};
use tensorgrid_client::{
    error_code,
    instructions::{self as ix, SettleKeys, WorkerKeys},
    pda,
    state::{
        vote_commitment, DeviceKind, DeviceRequirement, Dispute, Hardware, Job, JobOffer,
        JobRequirements, Market, MarketParams, VerifierPool,
    },
    TensorgridError,
};

use crate::{
    env::{TestEnv, TxResult},
    tokens::{MintFx, UnitKind},
};
use std::sync::Arc;
use tensorgrid_client::Currency;

pub const SOL: u64 = 1_000_000_000;

/// A job id no other fixture job uses (ids are the poster's choice; tests only need them
/// distinct).
pub fn fresh_job_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Economics used unless a test says otherwise.
pub fn default_params() -> MarketParams {
    tensorgrid_client::defaults::market_params()
}

pub fn cpu() -> Hardware {
    Hardware {
        device: DeviceKind::Cpu,
        vram_mib: 0,
        label: "test cpu".into(),
    }
}

pub fn cuda(vram_mib: u32) -> Hardware {
    Hardware {
        device: DeviceKind::Cuda,
        vram_mib,
        label: "test gpu".into(),
    }
}

pub fn any_device() -> JobRequirements {
    JobRequirements {
        device: DeviceRequirement::Any,
        min_vram_mib: 0,
    }
}

/// A job posted in a market with the default parameters (the terms agreed to are those).
pub fn job_args(reward: u64) -> JobPostArgs {
    JobPostArgs {
        job_id: fresh_job_id(),
        reward,
        spec_hash: [7; 32],
        spec_uri: "file:///jobs/digits-mlp.json".into(),
        requirements: any_device(),
        max_duration_s: 3_600,
        terms: default_params().job_terms(),
    }
}

pub fn submit_args() -> JobSubmitArgs {
    JobSubmitArgs {
        result_hash: [9; 32],
        result_uri: "file:///results/0/manifest.json".into(),
        reported_metric: 972_000,
    }
}

pub struct MarketFx {
    pub authority: Keypair,
    pub address: Pubkey,
    pub id: u64,
    /// The mint of a token market (`None` for SOL); the fixtures fund parties' token
    /// accounts from it before they pay anything in.
    pub mint: Option<Arc<MintFx>>,
}

impl MarketFx {
    pub fn create(env: &mut TestEnv, params: MarketParams) -> Self {
        Self::create_with_id(env, params, 0)
    }

    pub fn create_with_id(env: &mut TestEnv, params: MarketParams, id: u64) -> Self {
        Self::create_priced(env, params, id, None)
    }

    /// A market with `params` priced in `unit` (a new mint for a token unit).
    pub fn create_in(env: &mut TestEnv, params: MarketParams, unit: UnitKind) -> Self {
        let mint = MintFx::for_unit(env, unit);
        Self::create_priced(env, params, 0, mint)
    }

    /// A market with `params` priced in `mint` (SOL when `None`).
    pub fn create_priced(
        env: &mut TestEnv,
        params: MarketParams,
        id: u64,
        mint: Option<MintFx>,
    ) -> Self {
        let authority = env.funded(100 * SOL);
        let currency = mint.as_ref().map_or(Currency::Sol, MintFx::currency);
        let ix = ix::market_init_in(
            &currency,
            authority.pubkey(),
            MarketInitArgs {
                market_id: id,
                params,
            },
        );
        env.send(&[ix], &[&authority]).expect("market_init");
        Self {
            address: pda::market(&authority.pubkey(), id).0,
            authority,
            id,
            mint: mint.map(Arc::new),
        }
    }

    /// What the market's amounts are counted in.
    pub fn currency(&self) -> Currency {
        self.mint.as_ref().map_or(Currency::Sol, |m| m.currency())
    }

    /// In a token market, mints `amount` to `owner`'s token account (so it can pay it in); a
    /// no-op in SOL.
    pub fn fund_tokens(&self, env: &mut TestEnv, owner: &Pubkey, amount: u64) {
        if let Some(mint) = &self.mint {
            mint.fund(env, owner, amount);
        }
    }

    /// What `owner` holds outside the program in the market's unit: its wallet's lamports in
    /// SOL, its associated token account's balance in a token market.
    pub fn balance(&self, env: &TestEnv, owner: &Pubkey) -> u64 {
        match &self.mint {
            None => env.lamports(owner),
            Some(mint) => mint.balance_of(env, owner),
        }
    }

    pub fn state(&self, env: &TestEnv) -> Market {
        env.get(&self.address).expect("market exists")
    }

    /// Registers a new operator with `stake` and `hardware`.
    pub fn worker(&self, env: &mut TestEnv, hardware: Hardware, stake: u64) -> WorkerFx {
        let operator = env.funded(stake + 10 * SOL);
        self.register(env, operator, hardware, stake)
    }

    /// Registers `operator` (say a poster's own wallet) as a worker too.
    pub fn worker_for(
        &self,
        env: &mut TestEnv,
        operator: &Keypair,
        hardware: Hardware,
        stake: u64,
    ) -> WorkerFx {
        self.register(env, operator.insecure_clone(), hardware, stake)
    }

    fn register(
        &self,
        env: &mut TestEnv,
        operator: Keypair,
        hardware: Hardware,
        stake: u64,
    ) -> WorkerFx {
        self.fund_tokens(env, &operator.pubkey(), stake);
        let ix = ix::worker_register_in(
            &self.currency(),
            operator.pubkey(),
            self.address,
            WorkerRegisterArgs { stake, hardware },
        );
        env.send(&[ix], &[&operator]).expect("worker_register");
        WorkerFx {
            address: pda::worker(&self.address, &operator.pubkey()).0,
            market: self.address,
            operator,
            currency: self.currency(),
        }
    }

    /// A wallet funded with `lamports` whose poster account in this market exists (its rent
    /// and fee paid from another wallet, so the balance is exactly `lamports`).
    pub fn poster(&self, env: &mut TestEnv, lamports: u64) -> Keypair {
        let poster = env.funded(lamports + SOL);
        self.init_poster(env, &poster);
        let extra = env.lamports(&poster.pubkey()) - lamports;
        let sink = Keypair::new().pubkey();
        env.send(
            &[anchor_lang::solana_program::system_instruction::transfer(
                &poster.pubkey(),
                &sink,
                extra - 5_000,
            )],
            &[&poster],
        )
        .expect("trim the poster's balance");
        assert_eq!(env.lamports(&poster.pubkey()), lamports);
        poster
    }

    /// Creates `poster`'s account in this market unless it exists.
    pub fn init_poster(&self, env: &mut TestEnv, poster: &Keypair) {
        let account = pda::poster(&self.address, &poster.pubkey()).0;
        if env.account(&account).is_none() {
            env.send(&[ix::poster_init(poster.pubkey(), self.address)], &[poster])
                .expect("poster_init");
        }
    }

    /// A `job_post` of `args` as given (terms included), the poster's account created first.
    pub fn post_ix(
        &self,
        env: &mut TestEnv,
        poster: &Keypair,
        args: JobPostArgs,
    ) -> ix::Instruction {
        self.init_poster(env, poster);
        self.fund_tokens(env, &poster.pubkey(), args.reward);
        ix::job_post_in(&self.currency(), poster.pubkey(), self.address, args)
    }

    /// Posts a job from `poster`, agreeing to the market's current terms (whatever
    /// `args.terms` says), as a client that reads the market first does; panics if it fails.
    pub fn post(&self, env: &mut TestEnv, poster: &Keypair, args: JobPostArgs) -> JobFx {
        let id = args.job_id;
        let args = JobPostArgs {
            terms: self.state(env).job_terms(),
            ..args
        };
        let ix = self.post_ix(env, poster, args);
        env.send(&[ix], &[poster]).expect("job_post");
        JobFx {
            address: pda::job(&self.address, &poster.pubkey(), id).0,
            id,
            poster: poster.pubkey(),
        }
    }

    pub fn settle_keys(&self, job: &JobFx, worker: &WorkerFx) -> SettleKeys {
        SettleKeys {
            market: self.address,
            worker: worker.address,
            job: job.address,
            poster: job.poster,
        }
    }
}

pub struct WorkerFx {
    pub operator: Keypair,
    pub address: Pubkey,
    pub market: Pubkey,
    /// The market's unit.
    pub currency: Currency,
}

impl WorkerFx {
    pub fn keys(&self) -> WorkerKeys {
        WorkerKeys {
            operator: self.operator.pubkey(),
            market: self.market,
            worker: self.address,
        }
    }

    pub fn state(&self, env: &TestEnv) -> tensorgrid_client::state::Worker {
        env.get(&self.address).expect("worker exists")
    }

    /// Claims `job`, agreeing to the job as the chain shows it now.
    pub fn claim(&self, env: &mut TestEnv, job: &JobFx) -> TxResult {
        let ix = self.claim_ix(env, job);
        env.send(&[ix], &[&self.operator])
    }

    /// A `job_claim` agreeing to `job` as the chain shows it now.
    pub fn claim_ix(&self, env: &TestEnv, job: &JobFx) -> ix::Instruction {
        ix::job_claim(self.keys(), job.address, job.offer(env))
    }

    pub fn submit(&self, env: &mut TestEnv, job: &JobFx) -> TxResult {
        env.send(
            &[ix::job_submit(self.keys(), job.address, submit_args())],
            &[&self.operator],
        )
    }
}

#[derive(Clone, Debug)]
pub struct JobFx {
    pub address: Pubkey,
    pub id: u64,
    pub poster: Pubkey,
}

impl JobFx {
    pub fn state(&self, env: &TestEnv) -> Option<Job> {
        env.get(&self.address)
    }

    /// What a claim agrees to: the job as the chain shows it now (the job must exist).
    pub fn offer(&self, env: &TestEnv) -> JobOffer {
        self.state(env).expect("the job exists").offer()
    }
}

/// A market, a poster with a posted job and a registered CPU worker.
pub struct Lifecycle {
    pub market: MarketFx,
    pub poster: Keypair,
    pub worker: WorkerFx,
    pub job: JobFx,
    pub reward: u64,
}

impl Lifecycle {
    pub fn new(env: &mut TestEnv) -> Self {
        Self::new_in(env, UnitKind::Sol)
    }

    /// A market priced in `unit`, a poster with a posted job and a registered CPU worker.
    pub fn new_in(env: &mut TestEnv, unit: UnitKind) -> Self {
        let market = MarketFx::create_in(env, default_params(), unit);
        let poster = env.funded(100 * SOL);
        let reward = 2 * SOL;
        let job = market.post(env, &poster, job_args(reward));
        let worker = market.worker(env, cpu(), 2 * SOL);
        Self {
            market,
            poster,
            worker,
            job,
            reward,
        }
    }

    /// Posted, then claimed by `worker`.
    pub fn claimed(env: &mut TestEnv) -> Self {
        let lc = Self::new(env);
        lc.worker.claim(env, &lc.job).expect("job_claim");
        lc
    }

    /// Claimed, then submitted.
    pub fn submitted(env: &mut TestEnv) -> Self {
        let lc = Self::claimed(env);
        lc.worker.submit(env, &lc.job).expect("job_submit");
        lc
    }

    /// Submitted, then disputed by the poster (verifiers not drawn yet).
    pub fn disputed(env: &mut TestEnv) -> Self {
        let lc = Self::submitted(env);
        lc.dispute(env).expect("job_dispute");
        lc
    }

    /// Disputed in a market without verifiers: the draw hands it to the authority.
    pub fn escalated(env: &mut TestEnv) -> Self {
        let lc = Self::disputed(env);
        env.next_slot();
        lc.draw(env).expect("dispute_draw");
        lc
    }

    /// The poster disputes segment 0 with the job's bond.
    pub fn dispute(&self, env: &mut TestEnv) -> TxResult {
        let args = dispute_args(env, &self.job);
        self.market
            .fund_tokens(env, &self.poster.pubkey(), args.bond);
        env.send(
            &[ix::job_dispute_in(
                &self.market.currency(),
                self.settle_keys(),
                args,
            )],
            &[&self.poster],
        )
    }

    /// Anyone draws, passing the seats the client computes.
    pub fn draw(&self, env: &mut TestEnv) -> TxResult {
        let seats = expected_seats(env, &self.job);
        let cranker = env.funded(SOL);
        env.send(
            &[ix::dispute_draw(
                self.market.address,
                self.job.address,
                &seats,
            )],
            &[&cranker],
        )
    }

    /// Anyone settles the voting, naming the drawn seats.
    pub fn settle_dispute(&self, env: &mut TestEnv) -> TxResult {
        let seats = self.dispute_state(env).seats.map(|s| s.worker);
        let cranker = env.funded(SOL);
        env.send(
            &[ix::dispute_settle(self.settle_keys(), seats)],
            &[&cranker],
        )
    }

    pub fn dispute_state(&self, env: &TestEnv) -> Dispute {
        env.get(&pda::dispute(&self.job.address))
            .expect("dispute exists")
    }

    pub fn settle_keys(&self) -> SettleKeys {
        self.market.settle_keys(&self.job, &self.worker)
    }
}

/// The hashes a dispute of segment 0 quotes (the test chain has no manifest to read).
pub const START_HASH: [u8; 32] = [0x51; 32];
pub const END_HASH: [u8; 32] = [0xe1; 32];

/// Disputes segment 0 of `job`, with the bond its terms set.
pub fn dispute_args(env: &TestEnv, job: &JobFx) -> JobDisputeArgs {
    let j = job.state(env).expect("the job exists");
    JobDisputeArgs {
        segment: 0,
        start_hash: START_HASH,
        end_hash: END_HASH,
        bond: j.terms.dispute.bond(j.reward).expect("bond"),
    }
}

/// The seats `dispute_draw` would give `job`'s dispute now (none: it escalates).
pub fn expected_seats(env: &TestEnv, job: &JobFx) -> Vec<Pubkey> {
    let j: Job = job.state(env).expect("the job exists");
    let d: Dispute = env
        .get(&pda::dispute(&job.address))
        .expect("dispute exists");
    let pool: Option<VerifierPool> = env.get(&pda::verifier_pool(&j.market));
    tensorgrid_client::draw::expected_seats(
        pool.as_ref(),
        &d,
        &j,
        &job.address,
        &env.slot_hashes_data(),
    )
    .ok()
    .flatten()
    .map(|s| s.to_vec())
    .unwrap_or_default()
}

impl WorkerFx {
    /// Joins the market's verifier pool pledging all the stake no job holds.
    pub fn join_pool(&self, env: &mut TestEnv) -> TxResult {
        let w = self.state(env);
        self.join_pool_with(env, w.stake - w.locked_collateral)
    }

    /// Joins the market's verifier pool pledging `pledge`.
    pub fn join_pool_with(&self, env: &mut TestEnv, pledge: u64) -> TxResult {
        env.send(&[ix::verifier_join(self.keys(), pledge)], &[&self.operator])
    }

    /// Commits to `hash` with a salt derived from this worker (tests reveal it later).
    pub fn commit(&self, env: &mut TestEnv, dispute: Pubkey, hash: [u8; 32]) -> TxResult {
        let commitment = vote_commitment(&hash, &self.salt(), &self.address);
        env.send(
            &[ix::dispute_vote(
                self.keys(),
                dispute,
                DisputeVoteArgs::Commit { commitment },
            )],
            &[&self.operator],
        )
    }

    pub fn reveal(&self, env: &mut TestEnv, dispute: Pubkey, hash: [u8; 32]) -> TxResult {
        env.send(
            &[ix::dispute_vote(
                self.keys(),
                dispute,
                DisputeVoteArgs::Reveal {
                    hash,
                    salt: self.salt(),
                },
            )],
            &[&self.operator],
        )
    }

    fn salt(&self) -> [u8; 32] {
        let mut salt = self.address.to_bytes();
        salt[0] ^= 0x5a;
        salt
    }
}

/// `ix` with `keys`' poster account replaced by `real`'s: a test that substitutes the poster
/// or the market of a settlement still names the job's real poster account (as a client that
/// reads the job does), so the check it is about is the one that refuses.
pub fn with_poster_account_of(
    mut ix: ix::Instruction,
    keys: &SettleKeys,
    real: &SettleKeys,
) -> ix::Instruction {
    let (from, to) = (
        pda::poster(&keys.market, &keys.poster).0,
        pda::poster(&real.market, &real.poster).0,
    );
    for meta in ix.accounts.iter_mut().filter(|m| m.pubkey == from) {
        meta.pubkey = to;
    }
    ix
}

/// Sends everything `who` holds elsewhere, leaving its wallet at 0 lamports (the fee paid).
pub fn drain_wallet(env: &mut TestEnv, who: &Keypair) {
    let sink = env.funded(SOL).pubkey();
    let all = env.lamports(&who.pubkey()) - 5_000;
    let drain =
        anchor_lang::solana_program::system_instruction::transfer(&who.pubkey(), &sink, all);
    env.send(&[drain], &[who]).expect("drain");
    assert_eq!(env.lamports(&who.pubkey()), 0);
}

/// Copies of a program account at two addresses that are not its PDA: one still owned by the
/// program (a forged PDA, which the seeds checks must refuse) and one owned by the system
/// program (which the owner check must refuse).
pub fn forged_copies(env: &mut TestEnv, original: &Pubkey) -> (Pubkey, Pubkey) {
    let acc = env.account(original).expect("account to forge exists");
    let (fake, foreign) = (Keypair::new().pubkey(), Keypair::new().pubkey());
    env.svm
        .set_account(fake, acc.clone())
        .expect("set forged account");
    let foreign_acc = solana_account::Account {
        owner: anchor_lang::system_program::ID,
        ..acc
    };
    env.svm
        .set_account(foreign, foreign_acc)
        .expect("set foreign account");
    (fake, foreign)
}

/// The custom error code a failed transaction carries, if any.
pub fn custom_code(res: &TxResult) -> Option<u32> {
    match res {
        Err(f) => match &f.err {
            TransactionError::InstructionError(_, InstructionError::Custom(code)) => Some(*code),
            _ => None,
        },
        Ok(_) => None,
    }
}

/// Asserts the transaction failed with the program's error `expected`.
#[track_caller]
pub fn assert_err(res: TxResult, expected: TensorgridError) {
    let want = error_code(expected);
    let got = custom_code(&res);
    assert_eq!(
        got,
        Some(want),
        "expected {expected:?} ({want}), got {:?}",
        res.as_ref()
            .map(|_| "success")
            .map_err(|f| (&f.err, &f.logs))
    );
}

/// Asserts the transaction failed with Anchor's framework error `expected`.
#[track_caller]
pub fn assert_anchor_err(res: TxResult, expected: AnchorErrorCode) {
    let want = expected as u32;
    let got = custom_code(&res);
    assert_eq!(
        got,
        Some(want),
        "expected anchor {expected:?} ({want}), got {:?}",
        res.as_ref()
            .map(|_| "success")
            .map_err(|f| (&f.err, &f.logs))
    );
}

/// Asserts the transaction failed in the runtime with `expected` (not a program error code).
#[track_caller]
pub fn assert_ix_err(res: TxResult, expected: InstructionError) {
    match res {
        Err(f) => assert_eq!(
            f.err,
            TransactionError::InstructionError(0, expected),
            "logs: {:?}",
            f.logs
        ),
        Ok(_) => panic!("expected {expected:?}, got success"),
    }
}
