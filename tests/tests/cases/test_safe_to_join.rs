//! Safe to join: a worker's claim and a poster's post state what their signer agreed to, a
//! job address names one job forever, and no group of up to eight workers can pass a job
//! between them. Each test is an attack from the outside review, refused.

use anchor_lang::prelude::Pubkey;
use solana_signer::Signer;
use tensorgrid::instructions::{JobPostArgs, MarketUpdateArgs};
use tensorgrid_client::{
    constants::REOPEN_COOLDOWN_S,
    events::Event,
    instructions as ix, pda,
    state::{DeviceRequirement, Job, JobOffer, JobRequirements, MarketParams, Poster},
    TensorgridError,
};
use tensorgrid_harness::{fixtures::*, TestEnv};

/// The harshest terms the program accepts: what a hostile authority would switch to.
fn harsh() -> MarketParams {
    MarketParams {
        fee_bps: 2_000,
        min_stake: SOL,
        collateral_bps: 50_000,
        slash_bps: 10_000,
        abandon_penalty_bps: 4_999,
        crank_bounty_bps: 5_000,
        challenge_window_s: 1,
        resolve_window_s: 1,
        max_claim_s: 86_400,
        dispute: tensorgrid_client::defaults::dispute_terms(),
    }
}

fn update(env: &mut TestEnv, m: &MarketFx, params: MarketParams) {
    let up = ix::market_update(
        m.authority.pubkey(),
        m.address,
        MarketUpdateArgs {
            params: Some(params),
            paused: None,
        },
    );
    env.send(&[up], &[&m.authority]).unwrap();
}

/// Review: a worker reads a job (1 SOL, 1 h) and sends `job_claim`; before it lands the poster
/// sends `[job_cancel, job_post]` at the same id with 10 SOL (so 10 SOL of collateral) and
/// 1 s to train, then reclaims and takes half the worker's stake. The re-post is refused (the
/// id is used), so the claim lands on the job the worker read, and the worker's stake is
/// untouched.
#[test]
fn the_swap_under_a_pending_claim_is_refused() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let poster = env.funded(100 * SOL);
    let worker = m.worker(&mut env, cpu(), 20 * SOL);
    let read = m.post(&mut env, &poster, job_args(SOL));
    let pending_claim = worker.claim_ix(&env, &read);
    let stake = worker.state(&env).stake;
    let poster_before = env.lamports(&poster.pubkey());

    let bait = JobPostArgs {
        job_id: read.id,
        max_duration_s: 1,
        ..job_args(10 * SOL)
    };
    let swap = [
        ix::job_cancel(poster.pubkey(), read.address),
        ix::job_post(poster.pubkey(), m.address, bait),
    ];
    assert_err(env.send(&swap, &[&poster]), TensorgridError::JobIdUsed);
    assert_eq!(env.lamports(&poster.pubkey()), poster_before - 5_000);

    env.send(&[pending_claim], &[&worker.operator]).unwrap();
    let j = read.state(&env).unwrap();
    assert_eq!(
        (j.reward, j.max_duration_s, j.collateral),
        (SOL, 3_600, SOL)
    );
    env.warp(3);
    assert_err(
        env.send(
            &[ix::job_reclaim(
                poster.pubkey(),
                worker.address,
                read.address,
            )],
            &[&poster],
        ),
        TensorgridError::DeadlineNotReached,
    );
    assert_eq!(worker.state(&env).stake, stake);
}

/// The same swap when the poster cancels first and posts the bait at the next id: the
/// worker's claim names the old address, which no longer holds a job, so nothing is claimed.
#[test]
fn a_claim_after_a_cancel_finds_no_job() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let poster = env.funded(100 * SOL);
    let worker = m.worker(&mut env, cpu(), 20 * SOL);
    let read = m.post(&mut env, &poster, job_args(SOL));
    let pending_claim = worker.claim_ix(&env, &read);
    env.send(&[ix::job_cancel(poster.pubkey(), read.address)], &[&poster])
        .unwrap();
    m.post(&mut env, &poster, job_args(10 * SOL));
    assert_anchor_err(
        env.send(&[pending_claim], &[&worker.operator]),
        anchor_lang::error::ErrorCode::AccountNotInitialized,
    );
    assert_eq!(worker.state(&env).active(), None);
    assert_eq!(worker.state(&env).stake, 20 * SOL);
}

/// Any field of the job that differs from what the claim states refuses the claim: the
/// reward, the spec, the requirements, the duration, each of the terms. (The program never
/// changes these on an open job; the check is what makes that a promise to the signer.)
#[test]
fn a_claim_agreeing_to_anything_else_is_refused() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::new(&mut env);
    let actual = lc.job.offer(&env);
    let mut variants: Vec<JobOffer> = Vec::new();
    let mut vary = |f: &dyn Fn(&mut JobOffer)| {
        let mut o = actual;
        f(&mut o);
        variants.push(o);
    };
    vary(&|o| o.reward += 1);
    vary(&|o| o.spec_hash[31] ^= 1);
    vary(&|o| o.requirements.device = DeviceRequirement::Gpu);
    vary(&|o| o.requirements.min_vram_mib = 1);
    vary(&|o| o.max_duration_s -= 1);
    vary(&|o| o.terms.fee_bps += 1);
    vary(&|o| o.terms.collateral_bps -= 1);
    vary(&|o| o.terms.slash_bps += 1);
    vary(&|o| o.terms.abandon_penalty_bps += 1);
    vary(&|o| o.terms.crank_bounty_bps += 1);
    vary(&|o| o.terms.challenge_window_s -= 1);
    vary(&|o| o.terms.resolve_window_s -= 1);
    assert_eq!(variants.len(), 12);
    for offer in variants {
        let claim = ix::job_claim(lc.worker.keys(), lc.job.address, offer);
        assert_err(
            env.send(&[claim], &[&lc.worker.operator]),
            TensorgridError::OfferChanged,
        );
    }
    let claim = ix::job_claim(lc.worker.keys(), lc.job.address, actual);
    env.send(&[claim], &[&lc.worker.operator]).unwrap();
}

/// A job account whose fields were changed under a pending claim (written directly here,
/// standing for any future path that edits an open job) is not claimed.
#[test]
fn a_job_changed_under_a_pending_claim_is_not_claimed() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::new(&mut env);
    let pending = lc.worker.claim_ix(&env, &lc.job);
    let mut account = env.account(&lc.job.address).unwrap();
    let mut job: Job = lc.job.state(&env).unwrap();
    job.max_duration_s = 1;
    let mut data = Vec::new();
    anchor_lang::AccountSerialize::try_serialize(&job, &mut data).unwrap();
    account.data[..data.len()].copy_from_slice(&data);
    env.svm.set_account(lc.job.address, account).unwrap();
    assert_err(
        env.send(&[pending], &[&lc.worker.operator]),
        TensorgridError::OfferChanged,
    );
    assert_eq!(lc.worker.state(&env).active(), None);
}

/// Review: the authority raised the fee to 20 % and shortened the windows to 1 s just before
/// a pending post landed, then restored them. The post states the terms its signer read and
/// is refused on any difference; nothing moves.
#[test]
fn a_terms_change_between_signing_and_landing_refuses_the_post() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let poster = env.funded(100 * SOL);
    let read = default_params().job_terms();
    let args = JobPostArgs {
        terms: read,
        ..job_args(SOL)
    };
    let pending = m.post_ix(&mut env, &poster, args.clone());
    update(&mut env, &m, harsh());
    let before = env.lamports(&poster.pubkey());
    assert_err(
        env.send(std::slice::from_ref(&pending), &[&poster]),
        TensorgridError::TermsChanged,
    );
    assert_eq!(env.lamports(&poster.pubkey()), before - 5_000);
    assert!(env
        .account(&pda::job(&m.address, &poster.pubkey(), args.job_id).0)
        .is_none());
    // Restored: the same signed intent lands, with the terms it stated.
    update(&mut env, &m, default_params());
    let tx = env.send(&[pending], &[&poster]).unwrap();
    assert!(matches!(&tx.events()[..], [Event::JobPosted(e)] if e.terms == read));
    // A poster who read the harsh terms and agrees to them may post under them.
    update(&mut env, &m, harsh());
    let agreed = JobPostArgs {
        terms: harsh().job_terms(),
        ..job_args(SOL)
    };
    let post = m.post_ix(&mut env, &poster, agreed);
    env.send(&[post], &[&poster]).unwrap();
}

/// Each term on its own: a post stating any other value than the market's is refused.
#[test]
fn every_term_is_part_of_the_agreement() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let poster = env.funded(100 * SOL);
    let t = default_params().job_terms();
    let changes: [&dyn Fn(&mut tensorgrid_client::state::JobTerms); 7] = [
        &|t| t.fee_bps -= 1,
        &|t| t.collateral_bps += 1,
        &|t| t.slash_bps -= 1,
        &|t| t.abandon_penalty_bps -= 1,
        &|t| t.crank_bounty_bps -= 1,
        &|t| t.challenge_window_s += 1,
        &|t| t.resolve_window_s += 1,
    ];
    for change in changes {
        let mut terms = t;
        change(&mut terms);
        let post = m.post_ix(
            &mut env,
            &poster,
            JobPostArgs {
                terms,
                ..job_args(SOL)
            },
        );
        assert_err(env.send(&[post], &[&poster]), TensorgridError::TermsChanged);
    }
}

/// The README's promise, tested: an address names one job forever. A closed id cannot be
/// posted again, nor can any id below the poster's next one; the poster account cannot be
/// created again to reset the counter.
#[test]
fn a_job_address_is_never_reused() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let poster = env.funded(100 * SOL);
    let first = m.post(
        &mut env,
        &poster,
        JobPostArgs {
            job_id: 5,
            ..job_args(SOL)
        },
    );
    env.send(
        &[ix::job_cancel(poster.pubkey(), first.address)],
        &[&poster],
    )
    .unwrap();
    for id in [5, 4, 0] {
        let post = m.post_ix(
            &mut env,
            &poster,
            JobPostArgs {
                job_id: id,
                ..job_args(SOL)
            },
        );
        assert_err(env.send(&[post], &[&poster]), TensorgridError::JobIdUsed);
    }
    // Creating the poster account again (to start the counter over) fails: it exists.
    assert_eq!(
        custom_code(&env.send(&[ix::poster_init(poster.pubkey(), m.address)], &[&poster])),
        Some(0)
    );
    let account: Poster = env
        .get(&pda::poster(&m.address, &poster.pubkey()).0)
        .unwrap();
    assert_eq!((account.next_job_id, account.jobs_posted), (6, 1));
    m.post(
        &mut env,
        &poster,
        JobPostArgs {
            job_id: 6,
            ..job_args(SOL)
        },
    );
    // The last id: a post at u64::MAX − 1 is the poster's last; u64::MAX itself is refused.
    let post = m.post_ix(
        &mut env,
        &poster,
        JobPostArgs {
            job_id: u64::MAX,
            ..job_args(SOL)
        },
    );
    assert_err(
        env.send(&[post], &[&poster]),
        TensorgridError::ArithmeticOverflow,
    );
    // Another poster's ids are its own: the same id is a different address.
    let other = env.funded(10 * SOL);
    let theirs = m.post(
        &mut env,
        &other,
        JobPostArgs {
            job_id: 5,
            ..job_args(SOL)
        },
    );
    assert_ne!(theirs.address, first.address);
}

/// `poster_init` records the wallet and market, emits its event, and the rent is all it
/// costs; a post naming another wallet's poster account is refused.
#[test]
fn poster_init_creates_the_counter_once() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let poster = env.funded(10 * SOL);
    let rent = env.rent_exempt(Poster::SPACE);
    let before = env.lamports(&poster.pubkey());
    let tx = env
        .send(&[ix::poster_init(poster.pubkey(), m.address)], &[&poster])
        .unwrap();
    let address = pda::poster(&m.address, &poster.pubkey()).0;
    assert_eq!(before - env.lamports(&poster.pubkey()), rent + 5_000);
    assert_eq!(env.lamports(&address), rent);
    let p: Poster = env.get(&address).unwrap();
    assert_eq!(
        (p.market, p.wallet, p.next_job_id, p.jobs_posted),
        (m.address, poster.pubkey(), 0, 0)
    );
    assert!(matches!(&tx.events()[..], [Event::PosterInitialized(e)]
        if e.account == address && e.poster == poster.pubkey() && e.rent_paid == rent));
    // Posting through someone else's counter.
    let other = env.funded(10 * SOL);
    let mut post = ix::job_post(other.pubkey(), m.address, job_args(SOL));
    post.accounts[2].pubkey = address;
    assert_anchor_err(
        env.send(&[post], &[&other]),
        anchor_lang::error::ErrorCode::ConstraintSeeds,
    );
    // A post before the account exists is refused by the framework (account not initialised).
    let post = ix::job_post(other.pubkey(), m.address, job_args(SOL));
    assert_anchor_err(
        env.send(&[post], &[&other]),
        anchor_lang::error::ErrorCode::AccountNotInitialized,
    );
}

/// Passes the job from worker to worker: each claims after the cooldown and abandons.
fn hold(env: &mut TestEnv, lc: &Lifecycle, w: &WorkerFx) -> u64 {
    env.warp(REOPEN_COOLDOWN_S + 1);
    w.claim(env, &lc.job).unwrap();
    let tx = env
        .send(&[ix::job_abandon(w.keys(), lc.job.address)], &[&w.operator])
        .unwrap();
    match &tx.events()[..] {
        [Event::JobAbandoned(e)] => e.penalty,
        other => panic!("{other:?}"),
    }
}

/// Review: two sybils alternating claim → abandon kept a job from its poster indefinitely,
/// since the job remembered only the last worker. Every worker that gave the job up is
/// barred now (the eight latest): two sybils hold it once each, and the poster collects each
/// penalty.
#[test]
fn two_sybils_cannot_hold_a_job() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::new(&mut env);
    let a = lc.market.worker(&mut env, cpu(), 2 * SOL);
    let b = lc.market.worker(&mut env, cpu(), 2 * SOL);
    let penalties = hold(&mut env, &lc, &a) + hold(&mut env, &lc, &b);
    env.warp(REOPEN_COOLDOWN_S + 1);
    for sybil in [&a, &b] {
        assert_err(sybil.claim(&mut env, &lc.job), TensorgridError::ClaimBarred);
    }
    let j = lc.job.state(&env).unwrap();
    assert_eq!(j.reopens, 2);
    assert!(j.is_barred(&a.address) && j.is_barred(&b.address));
    assert_eq!(j.compensation, penalties);
    assert_eq!(
        penalties,
        2 * lc.reward * 500 / 10_000,
        "5 % of 1 × reward each"
    );
    // An honest worker takes it; the poster still gets every penalty when the job closes.
    lc.worker.claim(&mut env, &lc.job).unwrap();
    lc.worker.submit(&mut env, &lc.job).unwrap();
    let before = env.lamports(&lc.poster.pubkey());
    let tx = env
        .send(&[ix::job_accept(lc.settle_keys())], &[&lc.poster])
        .unwrap();
    let rent = env.rent_exempt(Job::SPACE);
    assert!(matches!(&tx.events()[..], [Event::JobPaid(e)] if e.compensation == penalties));
    assert_eq!(
        env.lamports(&lc.poster.pubkey()),
        before + penalties + rent - 5_000
    );
}

/// Eight workers are remembered; a ninth replaces the oldest, which may then claim again.
#[test]
fn the_barred_list_keeps_the_eight_latest() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::new(&mut env);
    let sybils: Vec<WorkerFx> = (0..9)
        .map(|_| lc.market.worker(&mut env, cpu(), 3 * SOL))
        .collect();
    let mut penalties = 0;
    for s in &sybils[..8] {
        penalties += hold(&mut env, &lc, s);
    }
    let j = lc.job.state(&env).unwrap();
    let barred: Vec<Pubkey> = sybils[..8].iter().map(|s| s.address).collect();
    assert_eq!(j.barred_workers.to_vec(), barred);
    penalties += hold(&mut env, &lc, &sybils[8]);
    let j = lc.job.state(&env).unwrap();
    assert_eq!(j.reopens, 9);
    assert_eq!(
        j.barred_workers[0], sybils[8].address,
        "the oldest replaced"
    );
    assert!(!j.is_barred(&sybils[0].address));
    assert_eq!(j.compensation, penalties);
    env.warp(REOPEN_COOLDOWN_S + 1);
    for s in &sybils[1..] {
        assert_err(s.claim(&mut env, &lc.job), TensorgridError::ClaimBarred);
    }
    sybils[0].claim(&mut env, &lc.job).unwrap();
}

/// A missed deadline bars the worker too, next to abandons.
#[test]
fn a_reclaimed_worker_joins_the_barred_list() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::new(&mut env);
    let other = lc.market.worker(&mut env, cpu(), 2 * SOL);
    hold(&mut env, &lc, &other);
    env.warp(REOPEN_COOLDOWN_S + 1);
    lc.worker.claim(&mut env, &lc.job).unwrap();
    env.warp(3_601);
    let cranker = env.funded(SOL);
    env.send(
        &[ix::job_reclaim(
            cranker.pubkey(),
            lc.worker.address,
            lc.job.address,
        )],
        &[&cranker],
    )
    .unwrap();
    let j = lc.job.state(&env).unwrap();
    assert_eq!(
        (j.barred_workers[0], j.barred_workers[1], j.reopens),
        (other.address, lc.worker.address, 2)
    );
    env.warp(REOPEN_COOLDOWN_S + 1);
    for w in [&other, &lc.worker] {
        assert_err(w.claim(&mut env, &lc.job), TensorgridError::ClaimBarred);
    }
}

/// What a claim agrees to is exactly the job's own fields (the helper clients use).
#[test]
fn the_offer_is_the_jobs_own_fields() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let poster = env.funded(10 * SOL);
    let requirements = JobRequirements {
        device: DeviceRequirement::Cuda,
        min_vram_mib: 8_000,
    };
    let job = m.post(
        &mut env,
        &poster,
        JobPostArgs {
            requirements,
            max_duration_s: 1_234,
            ..job_args(3 * SOL)
        },
    );
    let j = job.state(&env).unwrap();
    assert_eq!(
        j.offer(),
        JobOffer {
            reward: 3 * SOL,
            spec_hash: [7; 32],
            requirements,
            max_duration_s: 1_234,
            terms: default_params().job_terms(),
        }
    );
}
