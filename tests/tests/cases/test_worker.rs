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
        (w.stake, w.hardware.clone(), w.active(), w.registered),
        (3 * SOL, cuda(24_576), None, true)
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
    assert_err(
        env.send(&[ix], &[&w.operator]),
        TensorgridError::WorkerAlreadyRegistered,
    );
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
    // Withdrawing more than the stake is refused the same way, not clamped.
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
        TensorgridError::WithdrawBelowMinimum,
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
fn deregister_returns_stake_and_earnings_and_keeps_the_record() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::submitted(&mut env);
    env.send(&[ix::job_accept(lc.settle_keys())], &[&lc.poster])
        .unwrap();
    let w = &lc.worker;
    let payout = lc.reward - lc.reward * 250 / 10_000;
    let rent = env.rent_exempt(Worker::SPACE);
    assert_eq!(env.lamports(&w.address), rent + 2 * SOL + payout);
    let before = env.lamports(&w.operator.pubkey());
    let tx = env
        .send(
            &[ix::worker_deregister(
                w.operator.pubkey(),
                w.market,
                w.address,
            )],
            &[&w.operator],
        )
        .unwrap();
    assert_eq!(
        env.lamports(&w.operator.pubkey()),
        before + 2 * SOL + payout - 5_000
    );
    assert!(matches!(&tx.events()[..], [Event::WorkerDeregistered(e)]
        if e.stake_returned == 2 * SOL && e.earnings_returned == payout));
    // The account and its record stay; only the rent is left in it.
    assert_eq!(env.lamports(&w.address), rent);
    let s = w.state(&env);
    assert_eq!((s.registered, s.stake, s.earnings), (false, 0, 0));
    assert_eq!(s.record.jobs_completed, 1);

    // Deregistered: no claims, no updates, no second deregistration.
    let job = lc.market.post(&mut env, &lc.poster, job_args(SOL));
    assert_err(w.claim(&mut env, &job), TensorgridError::WorkerDeregistered);
    let top_up = ix::worker_update(
        w.operator.pubkey(),
        lc.market.address,
        w.address,
        WorkerUpdateArgs {
            add_stake: SOL,
            ..Default::default()
        },
    );
    assert_err(
        env.send(&[top_up], &[&w.operator]),
        TensorgridError::WorkerDeregistered,
    );
    assert_err(
        env.send(
            &[ix::worker_deregister(
                w.operator.pubkey(),
                w.market,
                w.address,
            )],
            &[&w.operator],
        ),
        TensorgridError::WorkerDeregistered,
    );
}

/// Review finding 10: `[deregister, register]` in one transaction used to wipe the record.
#[test]
fn deregister_and_register_in_one_transaction_keeps_the_record() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    let w = &lc.worker;
    env.send(&[ix::job_abandon(w.keys(), lc.job.address)], &[&w.operator])
        .unwrap();
    let registered_at = w.state(&env).registered_at;
    env.warp(100);
    let again = ix::worker_register(
        w.operator.pubkey(),
        lc.market.address,
        WorkerRegisterArgs {
            stake: 3 * SOL,
            hardware: cuda(16_384),
        },
    );
    let before = env.lamports(&w.operator.pubkey());
    let tx = env
        .send(
            &[
                ix::worker_deregister(w.operator.pubkey(), w.market, w.address),
                again,
            ],
            &[&w.operator],
        )
        .unwrap();
    let s = w.state(&env);
    assert_eq!(s.record.jobs_abandoned, 1, "the record survived");
    assert_eq!(s.registered_at, registered_at, "first registration kept");
    assert_eq!(
        (s.registered, s.stake, s.hardware),
        (true, 3 * SOL, cuda(16_384))
    );
    let stake_before = 2 * SOL - SOL * 2 * 500 / 10_000;
    assert_eq!(
        env.lamports(&w.operator.pubkey()),
        before + stake_before - 3 * SOL - 5_000,
        "no second rent charged"
    );
    assert!(
        matches!(&tx.events()[..], [Event::WorkerDeregistered(_), Event::WorkerRegistered(e)] if e.rent_paid == 0)
    );
}

#[test]
fn earnings_can_be_withdrawn_at_any_time_up_to_the_balance() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::submitted(&mut env);
    env.send(&[ix::job_accept(lc.settle_keys())], &[&lc.poster])
        .unwrap();
    let w = &lc.worker;
    let earnings = w.state(&env).earnings;
    assert_eq!(earnings, lc.reward - lc.reward * 250 / 10_000);
    // Busy again: stake is locked, earnings are not.
    let next = lc.market.post(&mut env, &lc.poster, job_args(SOL));
    w.claim(&mut env, &next).unwrap();
    let up = |amount| {
        ix::worker_update(
            w.operator.pubkey(),
            lc.market.address,
            w.address,
            WorkerUpdateArgs {
                withdraw_earnings: amount,
                ..Default::default()
            },
        )
    };
    assert_err(
        env.send(&[up(earnings + 1)], &[&w.operator]),
        TensorgridError::InsufficientEarnings,
    );
    let before = env.lamports(&w.operator.pubkey());
    let tx = env.send(&[up(earnings)], &[&w.operator]).unwrap();
    assert_eq!(
        env.lamports(&w.operator.pubkey()),
        before + earnings - 5_000
    );
    assert_eq!(w.state(&env).earnings, 0);
    assert!(matches!(&tx.events()[..], [Event::WorkerUpdated(e)]
        if e.earnings_withdrawn == earnings && e.earnings == 0 && e.stake == 2 * SOL));
}

#[test]
fn deregister_with_active_job_is_refused() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::submitted(&mut env);
    let w = &lc.worker;
    assert_err(
        env.send(
            &[ix::worker_deregister(
                w.operator.pubkey(),
                w.market,
                w.address,
            )],
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
            &[ix::worker_deregister(thief.pubkey(), w.market, w.address)],
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
            &[ix::worker_deregister(w.operator.pubkey(), w.market, fake)],
            &[&w.operator],
        ),
        Anchor::ConstraintSeeds,
    );
    assert_anchor_err(
        env.send(
            &[ix::worker_deregister(
                w.operator.pubkey(),
                w.market,
                foreign,
            )],
            &[&w.operator],
        ),
        Anchor::AccountOwnedByWrongProgram,
    );
}
