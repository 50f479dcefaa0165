//! Every program instruction sent over JSON-RPC to the embedded chain; the same flow run on
//! LiteSVM (the program suite's harness) must produce the same events and move the same
//! lamports, to the lamport.

use std::collections::BTreeMap;

use anchor_lang::prelude::Pubkey;
use solana_keypair::Keypair;
use solana_signer::Signer;
use tensorgrid_client::{
    events::Event,
    instructions::{self as ix, Instruction, SettleKeys, WorkerKeys},
    pda,
    state::{DeviceKind, Hardware, Worker},
    tensorgrid::instructions::*,
};
use tensorgrid_harness::env::TestEnv;
use tensorgrid_localnet::{default_market_params, testing::job_post_args, LocalnetBuilder, SOL};

const MARKET_ID: u64 = 7;
const FUNDS: u64 = 100 * SOL;

/// The parties, from fixed seeds so both chains see the same addresses.
struct Parties {
    authority: Keypair,
    poster: Keypair,
    operator: Keypair,
    cranker: Keypair,
}

impl Parties {
    fn new() -> Self {
        Self {
            authority: Keypair::new_from_array([1; 32]),
            poster: Keypair::new_from_array([2; 32]),
            operator: Keypair::new_from_array([3; 32]),
            cranker: Keypair::new_from_array([4; 32]),
        }
    }

    fn all(&self) -> [(&'static str, &Keypair); 4] {
        [
            ("authority", &self.authority),
            ("poster", &self.poster),
            ("operator", &self.operator),
            ("cranker", &self.cranker),
        ]
    }

    fn market(&self) -> Pubkey {
        pda::market(&self.authority.pubkey(), MARKET_ID).0
    }

    fn worker(&self) -> Pubkey {
        pda::worker(&self.market(), &self.operator.pubkey()).0
    }

    fn wk(&self) -> WorkerKeys {
        WorkerKeys {
            operator: self.operator.pubkey(),
            market: self.market(),
            worker: self.worker(),
        }
    }

    fn job(&self, id: u64) -> Pubkey {
        pda::job(&self.market(), &self.poster.pubkey(), id).0
    }

    fn settle(&self, id: u64) -> SettleKeys {
        SettleKeys {
            market: self.market(),
            worker: self.worker(),
            job: self.job(id),
            poster: self.poster.pubkey(),
        }
    }
}

/// Who signs a step (the first pays the fee).
#[derive(Clone, Copy)]
enum Who {
    Authority,
    Poster,
    Operator,
    Cranker,
}

enum Step {
    Tx(&'static str, Instruction, Who),
    /// Move the clock forward this many seconds.
    Warp(i64),
    /// Withdraw whatever the worker has earned (read from the chain).
    WithdrawEarnings,
}

/// The market's parameters after the flow's `market_update`: what every job agrees to.
fn updated_params() -> tensorgrid_client::state::MarketParams {
    tensorgrid_client::state::MarketParams {
        fee_bps: 300,
        ..default_market_params()
    }
}

fn post_args(id: u64) -> JobPostArgs {
    JobPostArgs {
        terms: updated_params().job_terms(),
        ..job_post_args(id, SOL)
    }
}

fn post(p: &Parties, id: u64) -> Step {
    Step::Tx(
        "job_post",
        ix::job_post(p.poster.pubkey(), p.market(), post_args(id)),
        Who::Poster,
    )
}

/// A claim agreeing to the job exactly as `post` made it.
fn claim(p: &Parties, id: u64) -> Step {
    let a = post_args(id);
    let offer = tensorgrid_client::state::JobOffer {
        reward: a.reward,
        spec_hash: a.spec_hash,
        requirements: a.requirements,
        max_duration_s: a.max_duration_s,
        terms: a.terms,
    };
    Step::Tx(
        "job_claim",
        ix::job_claim(p.wk(), p.job(id), offer),
        Who::Operator,
    )
}

fn submit(p: &Parties, id: u64) -> Step {
    Step::Tx(
        "job_submit",
        ix::job_submit(
            p.wk(),
            p.job(id),
            JobSubmitArgs {
                result_hash: [9; 32],
                result_uri: format!("https://example.org/results/{id}/manifest.json"),
                reported_metric: 970_000,
            },
        ),
        Who::Operator,
    )
}

/// All 18 instructions: each path of a job from post to a closed account.
fn flow(p: &Parties) -> Vec<Step> {
    let params = default_market_params();
    let hardware = |device, vram_mib, label: &str| Hardware {
        device,
        vram_mib,
        label: label.into(),
    };
    vec![
        Step::Tx(
            "market_init",
            ix::market_init(
                p.authority.pubkey(),
                MarketInitArgs {
                    market_id: MARKET_ID,
                    params,
                },
            ),
            Who::Authority,
        ),
        Step::Tx(
            "market_update",
            ix::market_update(
                p.authority.pubkey(),
                p.market(),
                MarketUpdateArgs {
                    params: Some(updated_params()),
                    paused: None,
                },
            ),
            Who::Authority,
        ),
        Step::Tx(
            "worker_register",
            ix::worker_register(
                p.operator.pubkey(),
                p.market(),
                WorkerRegisterArgs {
                    stake: 3 * SOL,
                    hardware: hardware(DeviceKind::Cpu, 0, "cpu"),
                },
            ),
            Who::Operator,
        ),
        Step::Tx(
            "worker_update",
            ix::worker_update(
                p.operator.pubkey(),
                p.market(),
                p.worker(),
                WorkerUpdateArgs {
                    hardware: Some(hardware(DeviceKind::Cuda, 8_192, "RTX 4070")),
                    add_stake: SOL,
                    withdraw_stake: 0,
                    withdraw_earnings: 0,
                },
            ),
            Who::Operator,
        ),
        Step::Tx(
            "poster_init",
            ix::poster_init(p.poster.pubkey(), p.market()),
            Who::Poster,
        ),
        // 1: accepted by the poster.
        post(p, 1),
        claim(p, 1),
        submit(p, 1),
        Step::Tx("job_accept", ix::job_accept(p.settle(1)), Who::Poster),
        Step::Tx(
            "market_withdraw_fees",
            ix::market_withdraw_fees(
                p.authority.pubkey(),
                p.market(),
                p.authority.pubkey(),
                30_000_000,
            ),
            Who::Authority,
        ),
        // 2: cancelled before anyone claims it.
        post(p, 2),
        Step::Tx(
            "job_cancel",
            ix::job_cancel(p.poster.pubkey(), p.job(2)),
            Who::Poster,
        ),
        // 3: abandoned by the worker, then cancelled (the penalty goes to the poster).
        post(p, 3),
        claim(p, 3),
        Step::Tx(
            "job_abandon",
            ix::job_abandon(p.wk(), p.job(3)),
            Who::Operator,
        ),
        Step::Tx(
            "job_cancel",
            ix::job_cancel(p.poster.pubkey(), p.job(3)),
            Who::Poster,
        ),
        // 4: finalized by a crank after the challenge window.
        post(p, 4),
        claim(p, 4),
        submit(p, 4),
        Step::Warp(params.challenge_window_s + 1),
        Step::Tx("job_finalize", ix::job_finalize(p.settle(4)), Who::Cranker),
        // 5: disputed, resolved for the worker.
        post(p, 5),
        claim(p, 5),
        submit(p, 5),
        Step::Tx(
            "job_dispute",
            ix::job_dispute(p.poster.pubkey(), p.job(5)),
            Who::Poster,
        ),
        Step::Tx(
            "job_resolve",
            ix::job_resolve(p.authority.pubkey(), p.settle(5), true),
            Who::Authority,
        ),
        // 6: disputed, the authority silent: the default after the resolution window.
        post(p, 6),
        claim(p, 6),
        submit(p, 6),
        Step::Tx(
            "job_dispute",
            ix::job_dispute(p.poster.pubkey(), p.job(6)),
            Who::Poster,
        ),
        Step::Warp(params.resolve_window_s + 1),
        Step::Tx(
            "job_dispute_timeout",
            ix::job_dispute_timeout(p.settle(6)),
            Who::Cranker,
        ),
        // 7: deadline missed, reclaimed by a third party, then cancelled.
        post(p, 7),
        claim(p, 7),
        Step::Warp(3_601),
        Step::Tx(
            "job_reclaim",
            ix::job_reclaim(p.cranker.pubkey(), p.worker(), p.job(7)),
            Who::Cranker,
        ),
        Step::Tx(
            "job_cancel",
            ix::job_cancel(p.poster.pubkey(), p.job(7)),
            Who::Poster,
        ),
        Step::WithdrawEarnings,
        Step::Tx(
            "worker_deregister",
            ix::worker_deregister(p.operator.pubkey(), p.worker()),
            Who::Operator,
        ),
    ]
}

fn signer(p: &Parties, who: Who) -> &Keypair {
    match who {
        Who::Authority => &p.authority,
        Who::Poster => &p.poster,
        Who::Operator => &p.operator,
        Who::Cranker => &p.cranker,
    }
}

fn withdraw_ix(p: &Parties, earnings: u64) -> Instruction {
    ix::worker_update(
        p.operator.pubkey(),
        p.market(),
        p.worker(),
        WorkerUpdateArgs {
            hardware: None,
            add_stake: 0,
            withdraw_stake: 0,
            withdraw_earnings: earnings,
        },
    )
}

/// Time fields depend on each chain's clock; everything else must match.
fn normalise(mut events: Vec<Event>) -> Vec<Event> {
    for e in &mut events {
        match e {
            Event::JobClaimed(c) => c.deadline = 0,
            Event::JobSubmitted(s) => s.challenge_ends_at = 0,
            Event::JobDisputed(d) => d.dispute_ends_at = 0,
            _ => {}
        }
    }
    events
}

struct Run {
    /// (step name, its events), in order.
    events: Vec<(String, Vec<Event>)>,
    /// Balance change of each party.
    deltas: BTreeMap<&'static str, i128>,
    fees: u64,
}

fn run_litesvm(p: &Parties) -> Run {
    let mut env = TestEnv::new();
    for (_, kp) in p.all() {
        env.svm.airdrop(&kp.pubkey(), FUNDS).unwrap();
    }
    let before: Vec<u64> = p
        .all()
        .iter()
        .map(|(_, k)| env.lamports(&k.pubkey()))
        .collect();
    let mut events = Vec::new();
    let mut fees = 0;
    for step in flow(p) {
        let (name, instruction, who) = match step {
            Step::Warp(s) => {
                env.warp(s);
                continue;
            }
            Step::WithdrawEarnings => {
                let w: Worker = env.get(&p.worker()).unwrap();
                ("worker_update", withdraw_ix(p, w.earnings), Who::Operator)
            }
            Step::Tx(name, ix, who) => (name, ix, who),
        };
        let done = env
            .send(&[instruction], &[signer(p, who)])
            .unwrap_or_else(|f| panic!("{name} on LiteSVM: {:?} {:#?}", f.err, f.logs));
        fees += done.meta.fee;
        events.push((name.to_string(), normalise(done.events())));
    }
    let deltas = p
        .all()
        .iter()
        .zip(before)
        .map(|((n, k), b)| (*n, env.lamports(&k.pubkey()) as i128 - b as i128))
        .collect();
    Run {
        events,
        deltas,
        fees,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_instruction_over_rpc_matches_litesvm_to_the_lamport() {
    let p = Parties::new();
    let expected = run_litesvm(&p);

    let net = LocalnetBuilder::for_tests()
        .start()
        .await
        .expect("local chain");
    let client = net.client();
    for (_, kp) in p.all() {
        net.set_lamports(&kp.pubkey(), FUNDS).await.unwrap();
    }
    let mut tracked: Vec<Pubkey> = p.all().iter().map(|(_, k)| k.pubkey()).collect();
    tracked.extend([
        p.market(),
        p.worker(),
        pda::poster(&p.market(), &p.poster.pubkey()).0,
    ]);
    tracked.extend((1..=7).map(|id| p.job(id)));
    let total = |balances: &[u64]| balances.iter().map(|b| *b as i128).sum::<i128>();
    let mut before = Vec::new();
    for k in &tracked {
        before.push(client.balance(k).await.unwrap());
    }

    let mut events = Vec::new();
    let mut fees = 0;
    for step in flow(&p) {
        let (name, instruction, who) = match step {
            Step::Warp(s) => {
                net.warp(s).await.unwrap();
                continue;
            }
            Step::WithdrawEarnings => {
                let w = client.worker(&p.worker()).await.unwrap().unwrap();
                ("worker_update", withdraw_ix(&p, w.earnings), Who::Operator)
            }
            Step::Tx(name, ix, who) => (name, ix, who),
        };
        let outcome = client
            .send_and_fetch(&[instruction], &[signer(&p, who)])
            .await
            .unwrap_or_else(|e| panic!("{name} over RPC: {e} {:#?}", e.logs()));
        fees += outcome.fee;
        events.push((name.to_string(), normalise(outcome.events)));
    }

    let mut after = Vec::new();
    for k in &tracked {
        after.push(client.balance(k).await.unwrap());
    }
    assert_eq!(
        events.len(),
        expected.events.len(),
        "one entry per transaction"
    );
    assert_eq!(events.len(), 36);
    for ((name, got), (_, want)) in events.iter().zip(&expected.events) {
        assert!(!got.is_empty(), "{name} emitted no event");
        assert_eq!(got, want, "{name}: events differ between RPC and LiteSVM");
    }
    let names: std::collections::BTreeSet<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 18, "every instruction sent: {names:?}");
    assert_eq!(fees, expected.fees, "the same fees");
    for (i, (name, _)) in p.all().iter().enumerate() {
        let delta = after[i] as i128 - before[i] as i128;
        assert_eq!(delta, expected.deltas[name], "{name}'s balance change");
    }
    assert_eq!(
        total(&before) - total(&after),
        fees as i128,
        "lamports conserved: everything that left the parties and program accounts is fees"
    );
    for id in 1..=7 {
        assert_eq!(
            client.balance(&p.job(id)).await.unwrap(),
            0,
            "job {id} closed"
        );
    }
}
