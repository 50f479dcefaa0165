use anchor_lang::error::ErrorCode as Anchor;
use solana_signer::Signer;
use tensorgrid::instructions::{WorkerRegisterArgs, WorkerUpdateArgs};
use tensorgrid_client::{
    events::Event, instructions as ix, pda, state::Hardware, state::Worker, TensorgridError,
};
use tensorgrid_harness::{fixtures::*, TestEnv};

#[test]
fn register_escrows_stake_and_records_hardware() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let op = env.funded(10 * SOL);
    let before = env.lamports(&op.pubkey());
    let ix = ix::worker_register(
        op.pubkey(),
        m.address,
        WorkerRegisterArgs {
            stake: 3 * SOL,
            hardware: cuda(24_576),
        },
    );
    let tx = env.send(&[ix], &[&op]).unwrap();
    let address = pda::worker(&m.address, &op.pubkey()).0;
    let rent = env.rent_exempt(Worker::SPACE);
    assert_eq!(env.lamports(&address), rent + 3 * SOL);
    assert_eq!(before - env.lamports(&op.pubkey()), rent + 3 * SOL + 5_000);
    let w: Worker = env.get(&address).unwrap();
    assert_eq!(
        (w.stake, w.hardware.clone(), w.active_job),
        (3 * SOL, cuda(24_576), None)
    );
    assert_eq!(w.registered_at, env.now());
    assert!(
        matches!(&tx.events()[..], [Event::WorkerRegistered(e)] if e.stake == 3 * SOL && e.worker == address)
    );
}

#[test]
fn register_below_min_stake_is_rejected() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let op = env.funded(10 * SOL);
    let ix = ix::worker_register(
        op.pubkey(),
        m.address,
        WorkerRegisterArgs {
            stake: SOL - 1,
            hardware: cpu(),
        },
    );
    assert_err(env.send(&[ix], &[&op]), TensorgridError::StakeBelowMinimum);
    assert!(env
        .account(&pda::worker(&m.address, &op.pubkey()).0)
        .is_none());
}

#[test]
fn register_with_oversize_label_is_rejected() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let op = env.funded(10 * SOL);
    let hardware = Hardware {
        label: "x".repeat(33),
        ..cpu()
    };
    let ix = ix::worker_register(
        op.pubkey(),
        m.address,
        WorkerRegisterArgs {
            stake: SOL,
            hardware,
        },
    );
    // Anchor sizes the account for 32 bytes, so the label check must fire before serialisation.
    assert_err(env.send(&[ix], &[&op]), TensorgridError::LabelTooLong);
    let hardware = Hardware {
        label: "x".repeat(32),
        ..cpu()
    };
    let ix = ix::worker_register(
        op.pubkey(),
        m.address,
        WorkerRegisterArgs {
            stake: SOL,
            hardware,
        },
    );
    env.send(&[ix], &[&op]).unwrap();
}

#[test]
fn register_twice_fails() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let w = m.worker(&mut env, cpu(), SOL);
    let ix = ix::worker_register(
        w.operator.pubkey(),
        m.address,
        WorkerRegisterArgs {
            stake: SOL,
            hardware: cpu(),
        },
    );
    assert!(env.send(&[ix], &[&w.operator]).is_err());
    assert_eq!(w.state(&env).stake, SOL);
}

#[test]
fn update_tops_up_withdraws_and_changes_hardware() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let w = m.worker(&mut env, cpu(), 2 * SOL);
    let rent = env.rent_exempt(Worker::SPACE);
    let up = |args| ix::worker_update(w.operator.pubkey(), m.address, w.address, args);
    let tx = env
        .send(
            &[up(WorkerUpdateArgs {
                add_stake: 3 * SOL,
                ..Default::default()
            })],
            &[&w.operator],
        )
        .unwrap();
    assert_eq!(w.state(&env).stake, 5 * SOL);
    assert_eq!(env.lamports(&w.address), rent + 5 * SOL);
    assert!(matches!(&tx.events()[..], [Event::WorkerUpdated(e)] if e.stake == 5 * SOL));
    let op_before = env.lamports(&w.operator.pubkey());
    env.send(
        &[up(WorkerUpdateArgs {
            withdraw_stake: 4 * SOL,
            ..Default::default()
        })],
        &[&w.operator],
    )
    .unwrap();
    assert_eq!(w.state(&env).stake, SOL);
    assert_eq!(
        env.lamports(&w.operator.pubkey()),
        op_before + 4 * SOL - 5_000
    );
    env.send(
        &[up(WorkerUpdateArgs {
            hardware: Some(cuda(8_192)),
            ..Default::default()
        })],
        &[&w.operator],
    )
    .unwrap();
    assert_eq!(w.state(&env).hardware, cuda(8_192));
}

#[test]
fn update_withdraw_below_minimum_is_rejected() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let w = m.worker(&mut env, cpu(), 2 * SOL);
    let ix = ix::worker_update(
        w.operator.pubkey(),
        m.address,
        w.address,
        WorkerUpdateArgs {
            withdraw_stake: SOL + 1,
            ..Default::default()
        },
    );
    assert_err(
        env.send(&[ix], &[&w.operator]),
        TensorgridError::WithdrawBelowMinimum,
    );
    // Withdrawing more than the stake is an overflow, not a silent clamp.
    let ix = ix::worker_update(
        w.operator.pubkey(),
        m.address,
        w.address,
        WorkerUpdateArgs {
            withdraw_stake: 3 * SOL,
            ..Default::default()
        },
    );
    assert_err(
        env.send(&[ix], &[&w.operator]),
        TensorgridError::ArithmeticOverflow,
    );
    assert_eq!(w.state(&env).stake, 2 * SOL);
}

#[test]
fn update_during_active_job_is_limited() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    let w = &lc.worker;
    let up = |args| ix::worker_update(w.operator.pubkey(), lc.market.address, w.address, args);
    assert_err(
        env.send(
            &[up(WorkerUpdateArgs {
                withdraw_stake: 1,
                ..Default::default()
            })],
            &[&w.operator],
        ),
        TensorgridError::WorkerHasActiveJob,
    );
    assert_err(
        env.send(
            &[up(WorkerUpdateArgs {
                hardware: Some(cuda(80_000)),
                ..Default::default()
            })],
            &[&w.operator],
        ),
        TensorgridError::WorkerHasActiveJob,
    );
    // Topping up is always welcome.
    env.send(
        &[up(WorkerUpdateArgs {
            add_stake: SOL,
            ..Default::default()
        })],
        &[&w.operator],
    )
    .unwrap();
}

#[test]
fn update_validates_label_signer_and_market() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let w = m.worker(&mut env, cpu(), SOL);
    let hw = Hardware {
        label: "y".repeat(40),
        ..cpu()
    };
    let ix = ix::worker_update(
        w.operator.pubkey(),
        m.address,
        w.address,
        WorkerUpdateArgs {
            hardware: Some(hw),
            ..Default::default()
        },
    );
    assert_err(
        env.send(&[ix], &[&w.operator]),
        TensorgridError::LabelTooLong,
    );

    let stranger = env.funded(5 * SOL);
    let ix = ix::worker_update(
        stranger.pubkey(),
        m.address,
        w.address,
        WorkerUpdateArgs {
            add_stake: SOL,
            ..Default::default()
        },
    );
    assert_err(env.send(&[ix], &[&stranger]), TensorgridError::NotOperator);

    let other = MarketFx::create_with_id(&mut env, default_params(), 1);
    let ix = ix::worker_update(
        w.operator.pubkey(),
        other.address,
        w.address,
        WorkerUpdateArgs {
            add_stake: SOL,
            ..Default::default()
        },
    );
    assert_err(
        env.send(&[ix], &[&w.operator]),
        TensorgridError::MarketMismatch,
    );
}

#[test]
fn deregister_returns_stake_and_rent() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let w = m.worker(&mut env, cpu(), 2 * SOL);
    let held = env.lamports(&w.address);
    let before = env.lamports(&w.operator.pubkey());
    let tx = env
        .send(
            &[ix::worker_deregister(w.operator.pubkey(), w.address)],
            &[&w.operator],
        )
        .unwrap();
    assert!(env.account(&w.address).is_none());
    assert_eq!(env.lamports(&w.operator.pubkey()), before + held - 5_000);
    assert!(matches!(&tx.events()[..], [Event::WorkerDeregistered(e)] if e.returned == held));
}

#[test]
fn deregister_with_active_job_is_refused() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::submitted(&mut env);
    let w = &lc.worker;
    assert_err(
        env.send(
            &[ix::worker_deregister(w.operator.pubkey(), w.address)],
            &[&w.operator],
        ),
        TensorgridError::WorkerHasActiveJob,
    );
}

#[test]
fn deregister_by_non_operator_is_rejected() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let w = m.worker(&mut env, cpu(), SOL);
    let thief = env.funded(SOL);
    assert_err(
        env.send(
            &[ix::worker_deregister(thief.pubkey(), w.address)],
            &[&thief],
        ),
        TensorgridError::NotOperator,
    );
    assert_eq!(w.state(&env).stake, SOL);
}

#[test]
fn forged_worker_accounts_are_rejected() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, default_params());
    let w = m.worker(&mut env, cpu(), SOL);
    let (fake, foreign) = forged_copies(&mut env, &w.address);
    assert_anchor_err(
        env.send(
            &[ix::worker_deregister(w.operator.pubkey(), fake)],
            &[&w.operator],
        ),
        Anchor::ConstraintSeeds,
    );
    assert_anchor_err(
        env.send(
            &[ix::worker_deregister(w.operator.pubkey(), foreign)],
            &[&w.operator],
        ),
        Anchor::AccountOwnedByWrongProgram,
    );
}
