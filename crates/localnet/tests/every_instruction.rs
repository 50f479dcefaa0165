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
    state::{vote_commitment, DeviceKind, Dispute, Hardware, Job, VerifierPool, Worker},
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
    /// Workers that join the verifier pool and settle job 8's dispute.
    verifiers: [Keypair; 3],
}

impl Parties {
    fn new() -> Self {
        Self {
            authority: Keypair::new_from_array([1; 32]),
            poster: Keypair::new_from_array([2; 32]),
            operator: Keypair::new_from_array([3; 32]),
            cranker: Keypair::new_from_array([4; 32]),
            verifiers: [5, 6, 7].map(|n| Keypair::new_from_array([n; 32])),
        }
    }

    fn all(&self) -> [(&'static str, &Keypair); 7] {
        [
            ("authority", &self.authority),
            ("poster", &self.poster),
            ("operator", &self.operator),
            ("cranker", &self.cranker),
            ("verifier 0", &self.verifiers[0]),
            ("verifier 1", &self.verifiers[1]),
            ("verifier 2", &self.verifiers[2]),
        ]
    }

    fn vk(&self, i: usize) -> WorkerKeys {
        let operator = self.verifiers[i].pubkey();
        WorkerKeys {
            operator,
            market: self.market(),
            worker: pda::worker(&self.market(), &operator).0,
        }
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
    Verifier(usize),
}

enum Step {
    Tx(&'static str, Instruction, Who),
    /// Wait for the next slot (a draw needs a slot after its dispute's).
    NextSlot,
    /// Draw the verifiers of this job's dispute, with the seats the chain gives.
    Draw(u64),
    /// Settle this job's dispute, naming its seats as drawn.
    Settle(u64),
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

/// All 23 instructions: each path of a job from post to a closed account.
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
        dispute(p, 5),
        Step::NextSlot,
        // No verifiers in the pool yet: the authority rules.
        Step::Draw(5),
        Step::Tx(
            "job_resolve",
            ix::job_resolve(p.authority.pubkey(), p.settle(5), true),
            Who::Authority,
        ),
        // 6: disputed, the authority silent: the default after the resolution window.
        post(p, 6),
        claim(p, 6),
        submit(p, 6),
        dispute(p, 6),
        Step::NextSlot,
        Step::Draw(6),
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
    ]
    .into_iter()
    .chain(verified(p))
    .chain([
        Step::WithdrawEarnings,
        Step::Tx(
            "worker_deregister",
            ix::worker_deregister(p.operator.pubkey(), p.market(), p.worker()),
            Who::Operator,
        ),
    ])
    .collect()
}

fn dispute(p: &Parties, id: u64) -> Step {
    Step::Tx(
        "job_dispute",
        ix::job_dispute(
            p.settle(id),
            JobDisputeArgs {
                segment: 3,
                start_hash: [0x51; 32],
                end_hash: END_HASH,
                bond: updated_params().dispute.bond(SOL).unwrap(),
            },
        ),
        Who::Poster,
    )
}

/// The end state job 8's disputed segment re-runs to (the worker was honest).
const END_HASH: [u8; 32] = [0xe1; 32];

/// 8: three verifiers join the pool (the worker's device class), re-run the disputed segment
/// to the worker's committed state, and the dispute settles for the worker; one leaves.
fn verified(p: &Parties) -> Vec<Step> {
    let mut steps = Vec::new();
    for i in 0..3 {
        steps.push(Step::Tx(
            "worker_register",
            ix::worker_register(
                p.verifiers[i].pubkey(),
                p.market(),
                WorkerRegisterArgs {
                    stake: 2 * SOL,
                    hardware: Hardware {
                        device: DeviceKind::Cuda,
                        vram_mib: 8_192,
                        label: format!("verifier {i}"),
                    },
                },
            ),
            Who::Verifier(i),
        ));
        steps.push(Step::Tx(
            "verifier_join",
            ix::verifier_join(p.vk(i), 2 * SOL),
            Who::Verifier(i),
        ));
    }
    steps.extend([
        post(p, 8),
        claim(p, 8),
        submit(p, 8),
        dispute(p, 8),
        Step::NextSlot,
        Step::Draw(8),
    ]);
    let salt = [8u8; 32];
    let dispute = pda::dispute(&p.job(8));
    for i in 0..3 {
        let commitment = vote_commitment(&END_HASH, &salt, &p.vk(i).worker);
        let vote = DisputeVoteArgs::Commit { commitment };
        steps.push(Step::Tx(
            "dispute_vote",
            ix::dispute_vote(p.vk(i), dispute, vote),
            Who::Verifier(i),
        ));
    }
    for i in 0..3 {
        let vote = DisputeVoteArgs::Reveal {
            hash: END_HASH,
            salt,
        };
        steps.push(Step::Tx(
            "dispute_vote",
            ix::dispute_vote(p.vk(i), dispute, vote),
            Who::Verifier(i),
        ));
    }
    steps.push(Step::Settle(8));
    steps.push(Step::Tx(
        "verifier_leave",
        ix::verifier_leave(p.vk(0)),
        Who::Verifier(0),
    ));
    steps
}

fn signer(p: &Parties, who: Who) -> &Keypair {
    match who {
        Who::Authority => &p.authority,
        Who::Poster => &p.poster,
        Who::Operator => &p.operator,
        Who::Cranker => &p.cranker,
        Who::Verifier(i) => &p.verifiers[i],
    }
}

fn settle_ix(p: &Parties, id: u64, seats: [Pubkey; 3]) -> Instruction {
    ix::dispute_settle(p.settle(id), seats)
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
            Event::JobDisputed(d) => d.disputed_slot = 0,
            // The seats depend on the slot hash, which each chain makes its own.
            Event::DisputeDrawn(d) => {
                (d.drawn_slot, d.commit_ends_at, d.reveal_ends_at) = (0, 0, 0);
                d.dispute_ends_at = i64::from(d.dispute_ends_at > 0);
                d.seats.sort();
            }
            Event::DisputeTallied(t) => {
                t.seats.sort();
                t.dispute_ends_at = 0;
            }
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
            Step::NextSlot => {
                env.next_slot();
                continue;
            }
            Step::WithdrawEarnings => {
                let w: Worker = env.get(&p.worker()).unwrap();
                ("worker_update", withdraw_ix(p, w.earnings), Who::Operator)
            }
            Step::Draw(id) => {
                let job: Job = env.get(&p.job(id)).unwrap();
                let dispute: Dispute = env.get(&pda::dispute(&p.job(id))).unwrap();
                let pool: Option<VerifierPool> = env.get(&pda::verifier_pool(&p.market()));
                let seats = tensorgrid_client::draw::expected_seats(
                    pool.as_ref(),
                    &dispute,
                    &job,
                    &p.job(id),
                    &env.slot_hashes_data(),
                )
                .unwrap();
                let seats = seats.as_ref().map(|s| &s[..]).unwrap_or(&[]);
                (
                    "dispute_draw",
                    ix::dispute_draw(p.market(), p.job(id), seats),
                    Who::Cranker,
                )
            }
            Step::Settle(id) => {
                let d: Dispute = env.get(&pda::dispute(&p.job(id))).unwrap();
                let seats = d.seats.map(|s| s.worker);
                ("dispute_settle", settle_ix(p, id, seats), Who::Cranker)
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
    tracked.extend((1..=8).map(|id| p.job(id)));
    tracked.extend([5, 6, 8].map(|id| pda::dispute(&p.job(id))));
    tracked.extend((0..3).map(|i| p.vk(i).worker));
    tracked.push(pda::verifier_pool(&p.market()));
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
            Step::NextSlot => {
                let now = client.slot().await.unwrap();
                while client.slot().await.unwrap() <= now {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                continue;
            }
            Step::WithdrawEarnings => {
                let w = client.worker(&p.worker()).await.unwrap().unwrap();
                ("worker_update", withdraw_ix(&p, w.earnings), Who::Operator)
            }
            Step::Draw(id) => {
                let ix = loop {
                    match client.draw(&p.job(id)).await.unwrap() {
                        tensorgrid_client::rpc::Draw::Ready(ix) => break ix,
                        tensorgrid_client::rpc::Draw::TooEarly => {
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await
                        }
                        tensorgrid_client::rpc::Draw::Done => panic!("job {id}: already drawn"),
                    }
                };
                ("dispute_draw", ix, Who::Cranker)
            }
            Step::Settle(id) => {
                let d: Dispute = client.require(&pda::dispute(&p.job(id))).await.unwrap();
                let seats = d.seats.map(|s| s.worker);
                ("dispute_settle", settle_ix(&p, id, seats), Who::Cranker)
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
    assert_eq!(events.len(), 57);
    for ((name, got), (_, want)) in events.iter().zip(&expected.events) {
        assert!(!got.is_empty(), "{name} emitted no event");
        assert_eq!(got, want, "{name}: events differ between RPC and LiteSVM");
    }
    let names: std::collections::BTreeSet<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 23, "every instruction sent: {names:?}");
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
    for id in 1..=8 {
        assert_eq!(
            client.balance(&p.job(id)).await.unwrap(),
            0,
            "job {id} closed"
        );
    }
}
