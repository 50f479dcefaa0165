use anchor_lang::{error::ErrorCode as Anchor, prelude::Pubkey};
use solana_signer::Signer;
use tensorgrid::instructions::JobPostArgs;
use tensorgrid_client::{
    events::Event,
    instructions as ix, pda,
    state::{DeviceRequirement, Job, JobRequirements, JobState, Poster},
    TensorgridError,
};
use tensorgrid_harness::{fixtures::*, TestEnv};

#[test]
fn post_escrows_reward_at_the_posters_id_fixes_terms_and_emits_event() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let poster = env.funded(100 * SOL);
    let rent = env.rent_exempt(Job::SPACE);
    m.init_poster(&mut env, &poster);
    // Ids only grow, with gaps allowed (clients pick ids whose address is cheapest to post at).
    for (n, id) in [3u64, 10, u64::MAX - 1].into_iter().enumerate() {
        let before = env.lamports(&poster.pubkey());
        let args = JobPostArgs {
            job_id: id,
            ..job_args(SOL + n as u64)
        };
        let post = m.post_ix(&mut env, &poster, args);
        let tx = env.send(&[post], &[&poster]).unwrap();
        let address = pda::job(&m.address, &poster.pubkey(), id).0;
        let reward = SOL + n as u64;
        assert_eq!(env.lamports(&address), rent + reward);
        assert_eq!(
            before - env.lamports(&poster.pubkey()),
            rent + reward + 5_000
        );
        let j: Job = env.get(&address).unwrap();
        assert_eq!(
            (j.job_id, j.state, j.reward, j.poster, j.holder()),
            (id, JobState::Open, reward, poster.pubkey(), None)
        );
        assert_eq!(
            (j.spec_hash, j.spec_uri.as_str()),
            ([7; 32], "file:///jobs/digits-mlp.json")
        );
        assert_eq!(j.terms, default_params().job_terms());
        assert_eq!(j.created_at, env.now());
        match &tx.events()[..] {
            [Event::JobPosted(e)] => {
                assert_eq!(
                    (e.job, e.job_id, e.reward, e.rent_paid, e.terms),
                    (address, id, reward, rent, j.terms)
                )
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(m.state(&env).jobs_posted, 3);
    let account: Poster = env
        .get(&pda::poster(&m.address, &poster.pubkey()).0)
        .unwrap();
    assert_eq!((account.next_job_id, account.jobs_posted), (u64::MAX, 3));
}

/// Review finding 9: with ids from a market counter, a griefer's `[post, cancel]` made every
/// prepared `job_post` fail. A poster's address now depends only on the poster's own choice.
#[test]
fn a_third_party_cannot_preempt_a_prepared_post() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let poster = env.funded(10 * SOL);
    let griefer = env.funded(10 * SOL);
    let args = job_args(SOL);
    let id = args.job_id;
    let prepared = m.post_ix(&mut env, &poster, args.clone());
    let grief = m.post_ix(&mut env, &griefer, args.clone());
    let griefed = pda::job(&m.address, &griefer.pubkey(), id).0;
    env.send(
        &[grief, ix::job_cancel(griefer.pubkey(), griefed)],
        &[&griefer],
    )
    .unwrap();
    env.send(&[prepared], &[&poster]).unwrap();
    let job: Job = env
        .get(&pda::job(&m.address, &poster.pubkey(), id).0)
        .unwrap();
    assert_eq!(job.poster, poster.pubkey());
    // The same poster cannot post at a live id, and nothing is taken but the fee.
    let before = env.lamports(&poster.pubkey());
    let again = m.post_ix(&mut env, &poster, args);
    assert_err(env.send(&[again], &[&poster]), TensorgridError::JobIdUsed);
    assert_eq!(env.lamports(&poster.pubkey()), before - 5_000);
}

/// The job account is created by hand (no bump search on chain): lamports a stranger sent to
/// the address beforehand do not block the post (the system program's `create_account` would
/// refuse it), and they stay with the job, returned to the poster with the escrow.
#[test]
fn lamports_sent_to_a_job_address_beforehand_do_not_block_its_post() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let poster = env.funded(10 * SOL);
    let stranger = env.funded(SOL);
    let args = job_args(SOL);
    // Less than the job's rent (the least a system account may hold), and more.
    let least = env.rent_exempt(0);
    for gift in [least, 5 * SOL / 10] {
        let args = JobPostArgs {
            job_id: args.job_id + u64::from(gift > least),
            ..args.clone()
        };
        let address = pda::job(&m.address, &poster.pubkey(), args.job_id).0;
        env.send(
            &[anchor_lang::solana_program::system_instruction::transfer(
                &stranger.pubkey(),
                &address,
                gift,
            )],
            &[&stranger],
        )
        .unwrap();
        let args = JobPostArgs {
            terms: m.state(&env).params.job_terms(),
            ..args
        };
        let post = m.post_ix(&mut env, &poster, args);
        let tx = env.send(&[post], &[&poster]).unwrap();
        let rent = env.rent_exempt(tensorgrid::state::Job::SPACE);
        assert_eq!(env.lamports(&address), rent.max(gift) + SOL, "gift {gift}");
        // The poster paid only the rest of the rent, and the event says so.
        match &tx.events()[..] {
            [Event::JobPosted(e)] => {
                assert_eq!((e.job, e.rent_paid), (address, rent.saturating_sub(gift)))
            }
            other => panic!("{other:?}"),
        }
        // Three system calls instead of one (figures on the .so: BENCHMARKS.md).
        println!(
            "job_post at an address funded beforehand ({gift} lamports): {} CU",
            tx.meta.compute_units_consumed
        );
        let before = env.lamports(&poster.pubkey());
        env.send(&[ix::job_cancel(poster.pubkey(), address)], &[&poster])
            .unwrap();
        assert_eq!(
            env.lamports(&poster.pubkey()),
            before + rent.max(gift) + SOL - 5_000,
            "everything the job held goes to the poster"
        );
    }
}

/// A job's address takes the bump the client found; any bump that gives a valid address is
/// taken (the poster's counter, not the bump, keeps an id to one post), and the job keeps it
/// for every later instruction. A bump that does not give the account passed is refused.
#[test]
fn a_job_is_posted_at_the_bump_its_client_names() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let poster = env.funded(10 * SOL);
    m.init_poster(&mut env, &poster);
    let args = JobPostArgs {
        terms: m.state(&env).params.job_terms(),
        ..job_args(SOL)
    };
    let (canonical, bump) = pda::job(&m.address, &poster.pubkey(), args.job_id);
    // The bump byte is the instruction data's last.
    let mut wrong = ix::job_post(poster.pubkey(), m.address, args.clone());
    *wrong.data.last_mut().unwrap() = bump.wrapping_sub(1);
    assert_anchor_err(env.send(&[wrong], &[&poster]), Anchor::ConstraintSeeds);
    // Another valid bump, with its own address: posted there, and used later.
    let seeds = |b: u8| {
        Pubkey::create_program_address(
            &[
                tensorgrid::constants::JOB_SEED,
                m.address.as_ref(),
                poster.pubkey().as_ref(),
                &args.job_id.to_le_bytes(),
                &[b],
            ],
            &tensorgrid_client::program_id(),
        )
    };
    let (other_bump, other) = (0..bump)
        .rev()
        .find_map(|b| seeds(b).ok().map(|a| (b, a)))
        .unwrap();
    let mut post = ix::job_post(poster.pubkey(), m.address, args.clone());
    post.accounts[3].pubkey = other;
    *post.data.last_mut().unwrap() = other_bump;
    env.send(&[post], &[&poster]).unwrap();
    let job: Job = env.get(&other).unwrap();
    assert_eq!((job.bump, job.job_id), (other_bump, args.job_id));
    // The id is spent: its canonical address cannot be posted at any more.
    let again = ix::job_post(poster.pubkey(), m.address, args);
    assert_err(env.send(&[again], &[&poster]), TensorgridError::JobIdUsed);
    assert!(env.get::<Job>(&canonical).is_none());
    env.send(&[ix::job_cancel(poster.pubkey(), other)], &[&poster])
        .unwrap();
}

#[test]
fn post_rejects_zero_reward() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let poster = env.funded(10 * SOL);
    let post = m.post_ix(&mut env, &poster, job_args(0));
    assert_err(env.send(&[post], &[&poster]), TensorgridError::ZeroReward);
}

#[test]
fn post_rejects_reward_that_overflows_with_rent() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let poster = env.funded(10 * SOL);
    for reward in [u64::MAX, u64::MAX - 1_000] {
        let post = m.post_ix(&mut env, &poster, job_args(reward));
        assert_err(
            env.send(&[post], &[&poster]),
            TensorgridError::ArithmeticOverflow,
        );
    }
    assert_eq!(m.state(&env).jobs_posted, 0);
}

#[test]
fn post_rejects_reward_whose_collateral_overflows() {
    let mut env = TestEnv::new();
    let params = tensorgrid_client::state::MarketParams {
        collateral_bps: 50_000,
        ..default_params()
    };
    let m = MarketFx::create(&mut env, params);
    let poster = env.funded(10 * SOL);
    let args = JobPostArgs {
        terms: params.job_terms(),
        ..job_args(u64::MAX / 4)
    };
    let post = m.post_ix(&mut env, &poster, args);
    assert_err(
        env.send(&[post], &[&poster]),
        TensorgridError::ArithmeticOverflow,
    );
}

/// Review (second round): a reward so small that its collateral rounds to zero would put
/// nothing at risk for the worker.
#[test]
fn post_rejects_reward_whose_collateral_rounds_to_zero() {
    let mut env = TestEnv::new();
    // The least collateral whose fraud slash still covers three verifier fees of 1 bps.
    let params = tensorgrid_client::state::MarketParams {
        collateral_bps: 3,
        dispute: tensorgrid_client::state::DisputeTerms {
            verifier_fee_bps: 1,
            ..default_params().dispute
        },
        ..default_params()
    };
    let m = MarketFx::create(&mut env, params);
    let poster = env.funded(10 * SOL);
    // A collateral that rounds to zero, then a verifier fee that does: either way nothing
    // would be at risk for somebody.
    for reward in [3_333, 9_999] {
        let args = JobPostArgs {
            terms: params.job_terms(),
            ..job_args(reward)
        };
        let post = m.post_ix(&mut env, &poster, args);
        assert_err(
            env.send(&[post], &[&poster]),
            TensorgridError::RewardTooSmall,
        );
    }
    let args = JobPostArgs {
        terms: params.job_terms(),
        ..job_args(10_000)
    };
    m.post(&mut env, &poster, args);
}

#[test]
fn post_with_unaffordable_reward_fails_and_loses_nothing() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let poster = m.poster(&mut env, SOL);
    let args = job_args(5 * SOL);
    let id = args.job_id;
    let post = m.post_ix(&mut env, &poster, args);
    let res = env.send(&[post], &[&poster]);
    // The system program refuses the escrow transfer (insufficient funds); only the fee is spent.
    assert_eq!(custom_code(&res), Some(1));
    assert_eq!(env.lamports(&poster.pubkey()), SOL - 5_000);
    assert!(env
        .account(&pda::job(&m.address, &poster.pubkey(), id).0)
        .is_none());
}

#[test]
fn post_rejects_bad_spec_uri() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let poster = env.funded(10 * SOL);
    for uri in [String::new(), "h".repeat(201)] {
        let post = m.post_ix(
            &mut env,
            &poster,
            tensorgrid::instructions::JobPostArgs {
                spec_uri: uri,
                ..job_args(SOL)
            },
        );
        assert_err(
            env.send(&[post], &[&poster]),
            TensorgridError::SpecUriInvalid,
        );
    }
    let post = m.post_ix(
        &mut env,
        &poster,
        tensorgrid::instructions::JobPostArgs {
            spec_uri: "h".repeat(200),
            ..job_args(SOL)
        },
    );
    env.send(&[post], &[&poster]).unwrap();
}

#[test]
fn post_rejects_zero_spec_hash() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let poster = env.funded(10 * SOL);
    let post = m.post_ix(
        &mut env,
        &poster,
        tensorgrid::instructions::JobPostArgs {
            spec_hash: [0; 32],
            ..job_args(SOL)
        },
    );
    assert_err(env.send(&[post], &[&poster]), TensorgridError::ZeroSpecHash);
}

#[test]
fn post_rejects_duration_outside_market_limit() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let poster = env.funded(10 * SOL);
    for d in [0, -1, default_params().max_claim_s + 1] {
        let post = m.post_ix(
            &mut env,
            &poster,
            tensorgrid::instructions::JobPostArgs {
                max_duration_s: d,
                ..job_args(SOL)
            },
        );
        assert_err(
            env.send(&[post], &[&poster]),
            TensorgridError::InvalidMaxDuration,
        );
    }
    let post = m.post_ix(
        &mut env,
        &poster,
        tensorgrid::instructions::JobPostArgs {
            max_duration_s: default_params().max_claim_s,
            ..job_args(SOL)
        },
    );
    env.send(&[post], &[&poster]).unwrap();
}

#[test]
fn post_at_wrong_job_address_is_rejected() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let poster = env.funded(10 * SOL);
    m.init_poster(&mut env, &poster);
    let other = env.funded(SOL);
    let args = job_args(SOL);
    // Another id's address, and the right id under another poster's key.
    for wrong in [
        pda::job(&m.address, &poster.pubkey(), args.job_id + 1).0,
        pda::job(&m.address, &other.pubkey(), args.job_id).0,
    ] {
        let mut post = ix::job_post(poster.pubkey(), m.address, args.clone());
        post.accounts[3].pubkey = wrong;
        assert_anchor_err(env.send(&[post], &[&poster]), Anchor::ConstraintSeeds);
    }
}

#[test]
fn post_records_requirements() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let poster = env.funded(10 * SOL);
    let requirements = JobRequirements {
        device: DeviceRequirement::Cuda,
        min_vram_mib: 16_000,
    };
    let job = m.post(
        &mut env,
        &poster,
        tensorgrid::instructions::JobPostArgs {
            requirements,
            ..job_args(SOL)
        },
    );
    assert_eq!(job.state(&env).unwrap().requirements, requirements);
}

#[test]
fn cancel_refunds_everything_and_closes() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let poster = m.poster(&mut env, 10 * SOL);
    let start = env.lamports(&poster.pubkey());
    let job = m.post(&mut env, &poster, job_args(3 * SOL));
    let held = env.lamports(&job.address);
    let tx = env
        .send(&[ix::job_cancel(poster.pubkey(), job.address)], &[&poster])
        .unwrap();
    assert!(env.account(&job.address).is_none());
    assert_eq!(
        env.lamports(&poster.pubkey()),
        start - 2 * 5_000,
        "only fees spent"
    );
    assert!(matches!(&tx.events()[..], [Event::JobCancelled(e)]
        if e.reward_refunded == 3 * SOL && e.reward_refunded + e.rent_refunded == held
            && e.compensation == 0 && e.job_id == job.id));
}

#[test]
fn cancel_by_non_poster_is_rejected() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let poster = env.funded(10 * SOL);
    let job = m.post(&mut env, &poster, job_args(SOL));
    let thief = env.funded(SOL);
    assert_err(
        env.send(&[ix::job_cancel(thief.pubkey(), job.address)], &[&thief]),
        TensorgridError::NotPoster,
    );
    assert!(job.state(&env).is_some());
}

#[test]
fn cancel_after_claim_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    assert_err(
        env.send(
            &[ix::job_cancel(lc.poster.pubkey(), lc.job.address)],
            &[&lc.poster],
        ),
        TensorgridError::JobNotOpen,
    );
}

#[test]
fn forged_job_accounts_are_rejected() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let poster = env.funded(10 * SOL);
    let job = m.post(&mut env, &poster, job_args(SOL));
    let (fake, foreign) = forged_copies(&mut env, &job.address);
    assert_anchor_err(
        env.send(&[ix::job_cancel(poster.pubkey(), fake)], &[&poster]),
        Anchor::ConstraintSeeds,
    );
    assert_anchor_err(
        env.send(&[ix::job_cancel(poster.pubkey(), foreign)], &[&poster]),
        Anchor::AccountOwnedByWrongProgram,
    );
}
