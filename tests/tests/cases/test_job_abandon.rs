use solana_signer::Signer;
use tensorgrid_client::{events::Event, instructions as ix, state::JobState, TensorgridError};
use tensorgrid_harness::{fixtures::*, TestEnv};

#[test]
fn abandon_pays_penalty_to_poster_and_reopens() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    let poster_before = env.lamports(&lc.poster.pubkey());
    let worker_before = env.lamports(&lc.worker.address);
    let tx = env
        .send(
            &[ix::job_abandon(
                lc.worker.keys(),
                lc.job.address,
                lc.poster.pubkey(),
            )],
            &[&lc.worker.operator],
        )
        .unwrap();
    let penalty = 2 * SOL * 500 / 10_000;
    assert_eq!(env.lamports(&lc.poster.pubkey()) - poster_before, penalty);
    assert_eq!(worker_before - env.lamports(&lc.worker.address), penalty);
    let w = lc.worker.state(&env);
    assert_eq!(
        (w.stake, w.active_job, w.jobs_abandoned),
        (2 * SOL - penalty, None, 1)
    );
    let j = lc.job.state(&env).unwrap();
    assert_eq!((j.state, j.worker, j.deadline), (JobState::Open, None, 0));
    assert!(matches!(&tx.events()[..], [Event::JobAbandoned(e)] if e.penalty == penalty));
    // Someone else can take it now.
    let next = lc.market.worker(&mut env, cpu(), SOL);
    next.claim(&mut env, &lc.job).unwrap();
}

#[test]
fn abandon_after_deadline_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    env.warp(3_601);
    assert_err(
        env.send(
            &[ix::job_abandon(
                lc.worker.keys(),
                lc.job.address,
                lc.poster.pubkey(),
            )],
            &[&lc.worker.operator],
        ),
        TensorgridError::DeadlinePassed,
    );
}

#[test]
fn abandon_by_unassigned_worker_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    let other = lc.market.worker(&mut env, cpu(), SOL);
    assert_err(
        env.send(
            &[ix::job_abandon(
                other.keys(),
                lc.job.address,
                lc.poster.pubkey(),
            )],
            &[&other.operator],
        ),
        TensorgridError::NotAssignedWorker,
    );
}

#[test]
fn abandon_of_open_or_submitted_job_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::new(&mut env);
    let abandon = ix::job_abandon(lc.worker.keys(), lc.job.address, lc.poster.pubkey());
    assert_err(
        env.send(std::slice::from_ref(&abandon), &[&lc.worker.operator]),
        TensorgridError::JobNotClaimed,
    );
    lc.worker.claim(&mut env, &lc.job).unwrap();
    lc.worker.submit(&mut env, &lc.job).unwrap();
    assert_err(
        env.send(&[abandon], &[&lc.worker.operator]),
        TensorgridError::JobNotClaimed,
    );
}

#[test]
fn abandon_with_wrong_poster_or_signer_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    let decoy = env.funded(SOL);
    assert_err(
        env.send(
            &[ix::job_abandon(
                lc.worker.keys(),
                lc.job.address,
                decoy.pubkey(),
            )],
            &[&lc.worker.operator],
        ),
        TensorgridError::RecipientMismatch,
    );
    let mut keys = lc.worker.keys();
    keys.operator = decoy.pubkey();
    assert_err(
        env.send(
            &[ix::job_abandon(keys, lc.job.address, lc.poster.pubkey())],
            &[&decoy],
        ),
        TensorgridError::NotOperator,
    );
}
