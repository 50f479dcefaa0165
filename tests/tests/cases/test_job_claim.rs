use anchor_lang::error::ErrorCode as Anchor;
use solana_signer::Signer;
use tensorgrid::instructions::{JobPostArgs, MarketUpdateArgs};
use tensorgrid_client::{
    events::Event,
    instructions as ix,
    state::{DeviceKind, DeviceRequirement, Hardware, JobRequirements, JobState, MarketParams},
    TensorgridError,
};
use tensorgrid_harness::{fixtures::*, TestEnv};

#[test]
fn claim_assigns_worker_and_sets_deadline() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::new(&mut env);
    let tx = lc.worker.claim(&mut env, &lc.job).unwrap();
    let j = lc.job.state(&env).unwrap();
    assert_eq!(j.state, JobState::Claimed);
    assert_eq!(j.holder(), Some(lc.worker.address));
    assert_eq!((j.claimed_at, j.deadline), (env.now(), env.now() + 3_600));
    assert_eq!(
        j.collateral, lc.reward,
        "collateral_bps 10000: 1 x the reward"
    );
    assert_eq!(lc.worker.state(&env).active(), Some(lc.job.address));
    assert!(matches!(&tx.events()[..], [Event::JobClaimed(e)]
        if e.deadline == j.deadline && e.worker == lc.worker.address && e.collateral == lc.reward));
}

fn gpu_job(requirements: JobRequirements) -> JobPostArgs {
    JobPostArgs {
        requirements,
        ..job_args(SOL)
    }
}

#[test]
fn claim_checks_device_kind() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let poster = env.funded(10 * SOL);
    let cpu_worker = m.worker(&mut env, cpu(), SOL);
    let metal = m.worker(
        &mut env,
        Hardware {
            device: DeviceKind::Metal,
            vram_mib: 32_768,
            label: "m2".into(),
        },
        SOL,
    );
    let gpu = m.post(
        &mut env,
        &poster,
        gpu_job(JobRequirements {
            device: DeviceRequirement::Gpu,
            min_vram_mib: 0,
        }),
    );
    let cuda_only = m.post(
        &mut env,
        &poster,
        gpu_job(JobRequirements {
            device: DeviceRequirement::Cuda,
            min_vram_mib: 0,
        }),
    );
    assert_err(
        cpu_worker.claim(&mut env, &gpu),
        TensorgridError::DeviceMismatch,
    );
    assert_err(
        metal.claim(&mut env, &cuda_only),
        TensorgridError::DeviceMismatch,
    );
    metal.claim(&mut env, &gpu).unwrap();
}

#[test]
fn claim_checks_vram() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let poster = env.funded(10 * SOL);
    let small = m.worker(&mut env, cuda(8_192), SOL);
    let big = m.worker(&mut env, cuda(24_576), SOL);
    let job = m.post(
        &mut env,
        &poster,
        gpu_job(JobRequirements {
            device: DeviceRequirement::Cuda,
            min_vram_mib: 16_384,
        }),
    );
    assert_err(
        small.claim(&mut env, &job),
        TensorgridError::InsufficientVram,
    );
    big.claim(&mut env, &job).unwrap();
}

#[test]
fn claim_of_claimed_job_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    let rival = lc.market.worker(&mut env, cpu(), SOL);
    assert_err(rival.claim(&mut env, &lc.job), TensorgridError::JobNotOpen);
    // The same worker claiming twice is refused too.
    assert_err(
        lc.worker.claim(&mut env, &lc.job),
        TensorgridError::JobNotOpen,
    );
}

#[test]
fn second_active_job_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    let second = lc.market.post(&mut env, &lc.poster, job_args(SOL));
    assert_err(
        lc.worker.claim(&mut env, &second),
        TensorgridError::WorkerHasActiveJob,
    );
    // Still active while submitted: the stake backs the result until it settles.
    lc.worker.submit(&mut env, &lc.job).unwrap();
    assert_err(
        lc.worker.claim(&mut env, &second),
        TensorgridError::WorkerHasActiveJob,
    );
    env.send(&[ix::job_accept(lc.settle_keys())], &[&lc.poster])
        .unwrap();
    lc.worker.claim(&mut env, &second).unwrap();
}

#[test]
fn claim_with_stake_below_raised_minimum_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::new(&mut env);
    let params = MarketParams {
        min_stake: 5 * SOL,
        ..default_params()
    };
    let up = ix::market_update(
        lc.market.authority.pubkey(),
        lc.market.address,
        MarketUpdateArgs {
            params: Some(params),
            paused: None,
        },
    );
    env.send(&[up], &[&lc.market.authority]).unwrap();
    assert_err(
        lc.worker.claim(&mut env, &lc.job),
        TensorgridError::InsufficientStake,
    );
}

#[test]
fn claim_needs_stake_covering_the_jobs_collateral() {
    let mut env = TestEnv::new();
    let params = MarketParams {
        collateral_bps: 30_000,
        ..default_params()
    };
    let m = MarketFx::create(&mut env, params);
    let poster = env.funded(10 * SOL);
    let job = m.post(&mut env, &poster, job_args(SOL));
    let thin = m.worker(&mut env, cpu(), 3 * SOL - 1);
    assert_err(
        thin.claim(&mut env, &job),
        TensorgridError::InsufficientStake,
    );
    let enough = m.worker(&mut env, cpu(), 3 * SOL);
    enough.claim(&mut env, &job).unwrap();
    assert_eq!(job.state(&env).unwrap().collateral, 3 * SOL);
}

#[test]
fn claim_by_non_operator_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::new(&mut env);
    let thief = env.funded(SOL);
    let mut keys = lc.worker.keys();
    keys.operator = thief.pubkey();
    assert_err(
        env.send(
            &[ix::job_claim(keys, lc.job.address, lc.job.offer(&env))],
            &[&thief],
        ),
        TensorgridError::NotOperator,
    );
}

#[test]
fn claim_of_another_markets_job_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::new(&mut env);
    let other = MarketFx::create_with_id(&mut env, default_params(), 9);
    let foreign_job = other.post(&mut env, &lc.poster, job_args(SOL));
    assert_err(
        lc.worker.claim(&mut env, &foreign_job),
        TensorgridError::MarketMismatch,
    );
    // Naming the other market with our worker fails on the worker instead.
    let mut keys = lc.worker.keys();
    keys.market = other.address;
    assert_err(
        env.send(
            &[ix::job_claim(
                keys,
                foreign_job.address,
                foreign_job.offer(&env),
            )],
            &[&lc.worker.operator],
        ),
        TensorgridError::MarketMismatch,
    );
}

#[test]
fn claim_of_forged_job_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::new(&mut env);
    let (fake, foreign) = forged_copies(&mut env, &lc.job.address);
    let fake_job = JobFx {
        address: fake,
        ..lc.job.clone()
    };
    assert_anchor_err(
        lc.worker.claim(&mut env, &fake_job),
        Anchor::ConstraintSeeds,
    );
    let foreign_job = JobFx {
        address: foreign,
        ..lc.job.clone()
    };
    assert_anchor_err(
        lc.worker.claim(&mut env, &foreign_job),
        Anchor::AccountOwnedByWrongProgram,
    );
}
