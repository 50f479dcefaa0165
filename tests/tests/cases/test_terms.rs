//! Trust: the terms a job was posted under are the terms it settles under, and what the
//! market authority can do to a job in flight is bounded by the job itself.
use solana_signer::Signer;
use tensorgrid::instructions::MarketUpdateArgs;
use tensorgrid_client::{
    constants::MAX_WINDOW_S, events::Event, instructions as ix, state::MarketParams,
};
use tensorgrid_harness::{fixtures::*, TestEnv};

/// The harshest parameters the program accepts.
fn harshest() -> MarketParams {
    MarketParams {
        fee_bps: 2_000,
        min_stake: SOL,
        collateral_bps: 50_000,
        slash_bps: 10_000,
        abandon_penalty_bps: 4_999,
        crank_bounty_bps: 5_000,
        challenge_window_s: MAX_WINDOW_S,
        resolve_window_s: MAX_WINDOW_S,
        max_claim_s: MAX_WINDOW_S,
        dispute: tensorgrid_client::defaults::dispute_terms(),
    }
}

fn set_params(env: &mut TestEnv, lc: &Lifecycle, params: MarketParams) {
    let up = ix::market_update(
        lc.market.authority.pubkey(),
        lc.market.address,
        MarketUpdateArgs {
            params: Some(params),
            paused: None,
        },
    );
    env.send(&[up], &[&lc.market.authority]).unwrap();
}

/// Review finding 3: after a submission the authority set the fee to 100 % and took the
/// whole reward. The job now settles at the fee it was posted with.
#[test]
fn a_fee_raised_after_posting_does_not_apply() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::submitted(&mut env);
    set_params(&mut env, &lc, harshest());
    let tx = env
        .send(&[ix::job_accept(lc.settle_keys())], &[&lc.poster])
        .unwrap();
    let fee = lc.reward * 250 / 10_000;
    assert!(matches!(&tx.events()[..], [Event::JobPaid(e)] if e.fee == fee));
    assert_eq!(lc.market.state(&env).fees_unclaimed, fee);
}

/// Review finding 3: raising the abandon penalty mid-job took an in-flight worker's stake.
#[test]
fn a_penalty_raised_after_posting_does_not_apply() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    set_params(&mut env, &lc, harshest());
    let tx = env
        .send(
            &[ix::job_abandon(lc.worker.keys(), lc.job.address)],
            &[&lc.worker.operator],
        )
        .unwrap();
    let penalty = lc.reward * 500 / 10_000;
    assert!(matches!(&tx.events()[..], [Event::JobAbandoned(e)] if e.penalty == penalty));
}

/// Review finding 3: raising the challenge window to years on a claimed job kept it from
/// ever finalizing. The window and the deadline come from the job.
#[test]
fn windows_raised_after_posting_do_not_apply() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::claimed(&mut env);
    set_params(&mut env, &lc, harshest());
    lc.worker.submit(&mut env, &lc.job).unwrap();
    let job = lc.job.state(&env).unwrap();
    assert_eq!(job.challenge_ends_at, env.now() + 3_600);
    assert_eq!(job.terms, default_params().job_terms());
    env.warp(3_601);
    let cranker = env.funded(SOL);
    env.send(&[ix::job_finalize(lc.settle_keys())], &[&cranker])
        .unwrap();
}

/// Review finding 3, the other way: a new job takes the new terms.
#[test]
fn jobs_posted_after_an_update_take_the_new_terms() {
    let mut env = TestEnv::new();
    let lc = Lifecycle::new(&mut env);
    set_params(&mut env, &lc, harshest());
    let job = lc.market.post(&mut env, &lc.poster, job_args(SOL));
    assert_eq!(job.state(&env).unwrap().terms, harshest().job_terms());
    assert_eq!(
        lc.job.state(&env).unwrap().terms,
        default_params().job_terms()
    );
}

/// Review finding 4: an authority that posted a 1,000-lamport job and ruled against the
/// worker took half of its 5 SOL stake. What a ruling can take is now a share of the job's
/// collateral — here at most 5 × 1,000 lamports even under the harshest terms.
#[test]
fn an_authority_ruling_for_itself_takes_at_most_the_jobs_collateral() {
    let mut env = TestEnv::new();
    let m = MarketFx::create(&mut env, harshest());
    let authority = &m.authority;
    let job = m.post(&mut env, authority, job_args(1_000));
    let worker = m.worker(&mut env, cpu(), 5 * SOL);
    worker.claim(&mut env, &job).unwrap();
    worker.submit(&mut env, &job).unwrap();
    env.send(
        &[ix::job_dispute(
            m.settle_keys(&job, &worker),
            dispute_args(&env, &job),
        )],
        &[authority],
    )
    .unwrap();
    env.next_slot();
    env.send(
        &[ix::dispute_draw(m.address, job.address, &[])],
        &[authority],
    )
    .unwrap();
    let before = env.lamports(&authority.pubkey());
    let stake_before = worker.state(&env).stake;
    env.send(
        &[ix::job_resolve(
            authority.pubkey(),
            m.settle_keys(&job, &worker),
            false,
        )],
        &[authority],
    )
    .unwrap();
    let taken = stake_before - worker.state(&env).stake;
    assert_eq!(taken, 5 * 1_000, "collateral x 100 % slash");
    let rent = env.rent_exempt(tensorgrid_client::state::Job::SPACE);
    let dispute_rent = env.rent_exempt(tensorgrid_client::state::Dispute::SPACE);
    let bond = 1_000 * 1_000 / 10_000;
    assert_eq!(
        env.lamports(&authority.pubkey()) - before,
        1_000 + rent + taken + bond + dispute_rent - 5_000,
        "its own reward, bond and rents back, plus the slash"
    );
}
