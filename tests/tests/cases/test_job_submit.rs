use solana_signer::Signer;
use tensorgrid::instructions::JobSubmitArgs;
use tensorgrid_client::{events::Event, instructions as ix, state::JobState, TensorgridError};
use tensorgrid_harness::{fixtures::*, TestEnv};

#[test]
fn submit_records_result_and_opens_window() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    env.warp(600);
    let tx = lc.worker.submit(&mut env, &lc.job).unwrap();
    let j = lc.job.state(&env).unwrap();
    assert_eq!(j.state, JobState::Submitted);
    assert_eq!((j.result_hash, j.reported_metric), ([9; 32], 972_000));
    assert_eq!(j.result_uri, "file:///results/0/manifest.json");
    assert_eq!(
        (j.submitted_at, j.challenge_ends_at),
        (env.now(), env.now() + 3_600)
    );
    assert!(
        matches!(&tx.events()[..], [Event::JobSubmitted(e)] if e.result_hash == [9; 32] && e.challenge_ends_at == j.challenge_ends_at)
    );
}

#[test]
fn submit_at_the_deadline_is_accepted_and_after_it_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    env.warp(3_600);
    lc.worker.submit(&mut env, &lc.job).unwrap();

    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    env.warp(3_601);
    assert_err(
        lc.worker.submit(&mut env, &lc.job),
        TensorgridError::DeadlinePassed,
    );
}

#[test]
fn submit_by_unassigned_worker_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    let other = lc.market.worker(&mut env, cpu(), SOL);
    assert_err(
        other.submit(&mut env, &lc.job),
        TensorgridError::NotAssignedWorker,
    );
}

#[test]
fn submit_on_open_job_and_double_submit_are_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::new(&mut env);
    assert_err(
        lc.worker.submit(&mut env, &lc.job),
        TensorgridError::JobNotClaimed,
    );
    lc.worker.claim(&mut env, &lc.job).unwrap();
    lc.worker.submit(&mut env, &lc.job).unwrap();
    assert_err(
        lc.worker.submit(&mut env, &lc.job),
        TensorgridError::JobNotClaimed,
    );
}

#[test]
fn submit_validates_result_fields() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    let send = |env: &mut TestEnv, args| {
        env.send(
            &[ix::job_submit(lc.worker.keys(), lc.job.address, args)],
            &[&lc.worker.operator],
        )
    };
    for uri in [String::new(), "r".repeat(201)] {
        assert_err(
            send(
                &mut env,
                JobSubmitArgs {
                    result_uri: uri,
                    ..submit_args()
                },
            ),
            TensorgridError::ResultUriInvalid,
        );
    }
    assert_err(
        send(
            &mut env,
            JobSubmitArgs {
                result_hash: [0; 32],
                ..submit_args()
            },
        ),
        TensorgridError::ZeroResultHash,
    );
    send(
        &mut env,
        JobSubmitArgs {
            result_uri: "r".repeat(200),
            ..submit_args()
        },
    )
    .unwrap();
}

#[test]
fn submit_by_non_operator_is_rejected() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    let thief = env.funded(SOL);
    let mut keys = lc.worker.keys();
    keys.operator = thief.pubkey();
    assert_err(
        env.send(
            &[ix::job_submit(keys, lc.job.address, submit_args())],
            &[&thief],
        ),
        TensorgridError::NotOperator,
    );
}
