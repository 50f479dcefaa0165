//! Whole-chain invariants over every account the program owns, checked from the host.

use std::collections::HashMap;

use anchor_lang::{prelude::Pubkey, Discriminator};
use tensorgrid_client::{
    decode_account, pda,
    state::{Dispute, DisputePhase, Job, JobState, Market, Poster, VerifierPool, Worker},
    PROGRAM_ID,
};

use crate::env::TestEnv;

/// Checks, over all program accounts:
/// - each market's parameters are valid and its lamports back rent + unclaimed fees;
/// - each worker holds rent + stake + earnings; a deregistered one holds neither stake nor job;
/// - each job holds rent + reward + compensation (escrow fully backed) and its fields fit its
///   state, and its id is below its poster's `next_job_id` (so no later post can take its
///   address);
/// - in a token market, those amounts are not lamports (each account holds its rent) but
///   shares of the vault: the vault holds at least the sum of every account's share (fees,
///   stakes, earnings, escrows, bonds, forfeits, poster refunds), see `token_liabilities`;
/// - each poster account sits at its PDA and has posted no more jobs than ids it used;
/// - a worker's `active_job` and a job's `worker` point at each other (so a worker holds at
///   most one active job, and every non-open job is held by exactly one worker), and a held
///   job's collateral is covered by its worker's stake.
pub fn check_program_accounts(env: &TestEnv) -> Result<(), String> {
    let mut workers: HashMap<Pubkey, Worker> = HashMap::new();
    let mut jobs: HashMap<Pubkey, Job> = HashMap::new();
    let mut posters: HashMap<Pubkey, Poster> = HashMap::new();
    let mut disputes: HashMap<Pubkey, Dispute> = HashMap::new();
    let mut pools: Vec<VerifierPool> = Vec::new();
    let accounts = env.svm.get_program_accounts(&PROGRAM_ID);
    let markets: HashMap<Pubkey, Market> = accounts
        .iter()
        .filter(|(_, a)| a.data.get(..8) == Some(Market::DISCRIMINATOR))
        .filter_map(|(k, a)| decode_account::<Market>(&a.data).ok().map(|m| (*k, m)))
        .collect();
    // Lamports an account must hold above rent for `held`: all of it in a SOL market, none in
    // a token market (the vault holds it).
    let in_lamports = |market: &Pubkey, held: u128| match markets.get(market) {
        Some(m) if m.mint != Pubkey::default() => 0,
        _ => held,
    };
    let mut dispute_markets: HashMap<Pubkey, Pubkey> = HashMap::new();
    for (key, acc) in accounts {
        let rent = env.rent_exempt(acc.data.len()) as u128;
        let lamports = acc.lamports as u128;
        let disc = &acc.data[..8.min(acc.data.len())];
        if disc == Market::DISCRIMINATOR {
            let m: Market = decode_account(&acc.data).map_err(|e| format!("{key}: {e}"))?;
            m.params
                .validate()
                .map_err(|e| format!("market {key}: invalid params: {e}"))?;
            if lamports < rent + in_lamports(&key, m.fees_unclaimed as u128) {
                return Err(format!(
                    "market {key}: {lamports} lamports < rent {rent} + fees {}",
                    m.fees_unclaimed
                ));
            }
        } else if disc == Worker::DISCRIMINATOR {
            let w: Worker = decode_account(&acc.data).map_err(|e| format!("{key}: {e}"))?;
            if lamports < rent + in_lamports(&w.market, w.stake as u128 + w.earnings as u128) {
                return Err(format!(
                    "worker {key}: {lamports} lamports < rent {rent} + stake {} + earnings {}",
                    w.stake, w.earnings
                ));
            }
            if !w.registered && (w.stake != 0 || w.active().is_some()) {
                return Err(format!(
                    "worker {key}: deregistered but holds stake or a job"
                ));
            }
            workers.insert(key, w);
        } else if disc == Job::DISCRIMINATOR {
            let j: Job = decode_account(&acc.data).map_err(|e| format!("{key}: {e}"))?;
            if j.terms.mint != markets.get(&j.market).map_or(Pubkey::default(), |m| m.mint) {
                return Err(format!("job {key}: its mint is not its market's"));
            }
            if lamports < rent + in_lamports(&j.market, j.reward as u128 + j.compensation as u128) {
                return Err(format!(
                    "job {key}: escrow {lamports} lamports < rent {rent} + reward {} + compensation {}",
                    j.reward, j.compensation
                ));
            }
            if j.reward == 0 {
                return Err(format!("job {key}: zero reward"));
            }
            let held = j.state != JobState::Open;
            if held != j.holder().is_some() || (!held && j.collateral != 0) {
                return Err(format!(
                    "job {key}: state {:?} with worker {} and collateral {}",
                    j.state, j.worker, j.collateral
                ));
            }
            jobs.insert(key, j);
        } else if disc == Dispute::DISCRIMINATOR {
            let d: Dispute = decode_account(&acc.data).map_err(|e| format!("{key}: {e}"))?;
            let market = env
                .get::<Job>(&d.job)
                .map_or(Pubkey::default(), |j| j.market);
            dispute_markets.insert(key, market);
            if lamports < rent + in_lamports(&market, d.bond as u128 + d.forfeits as u128) {
                return Err(format!(
                    "dispute {key}: {lamports} lamports < rent {rent} + bond {} + forfeits {}",
                    d.bond, d.forfeits
                ));
            }
            if key != pda::dispute(&d.job) {
                return Err(format!("dispute {key}: not at its job's address"));
            }
            disputes.insert(key, d);
        } else if disc == VerifierPool::DISCRIMINATOR {
            let p: VerifierPool = decode_account(&acc.data).map_err(|e| format!("{key}: {e}"))?;
            let used = p
                .entries
                .iter()
                .filter(|e| e.worker != Pubkey::default())
                .count();
            if used != usize::from(p.count) || key != pda::verifier_pool(&p.market) {
                return Err(format!("pool {key}: count {} for {used} entries", p.count));
            }
            pools.push(p);
        } else if disc == Poster::DISCRIMINATOR {
            let p: Poster = decode_account(&acc.data).map_err(|e| format!("{key}: {e}"))?;
            let sol = in_lamports(&p.market, 1) == 1;
            if key != pda::poster(&p.market, &p.wallet).0
                || p.jobs_posted > p.next_job_id
                || (sol && (p.refunds != 0 || p.refunds_withdrawn != 0))
            {
                return Err(format!("poster {key}: {p:?}"));
            }
            posters.insert(key, p);
        }
    }
    for (mkey, m) in &markets {
        if m.mint == Pubkey::default() {
            continue;
        }
        let owed = token_liabilities(
            mkey,
            m,
            &workers,
            &jobs,
            &disputes,
            &dispute_markets,
            &posters,
        );
        let held = crate::tokens::token_balance(env, &m.vault) as u128;
        if held < owed {
            return Err(format!(
                "market {mkey}: vault holds {held} < {owed} owed to the market's accounts"
            ));
        }
    }
    for (jkey, j) in &jobs {
        let poster = posters
            .get(&pda::poster(&j.market, &j.poster).0)
            .ok_or_else(|| format!("job {jkey}: its poster has no poster account"))?;
        if j.job_id >= poster.next_job_id {
            return Err(format!(
                "job {jkey}: id {} not below its poster's next id {}",
                j.job_id, poster.next_job_id
            ));
        }
    }
    // Disputes and disputed jobs match one to one.
    for (dkey, d) in &disputes {
        let job = jobs
            .get(&d.job)
            .ok_or_else(|| format!("dispute {dkey}: its job is gone"))?;
        if job.state != JobState::Disputed || job.worker != d.worker {
            return Err(format!("dispute {dkey}: job {} is {:?}", d.job, job.state));
        }
    }
    for (jkey, j) in &jobs {
        if j.state == JobState::Disputed && !disputes.contains_key(&pda::dispute(jkey)) {
            return Err(format!("job {jkey}: disputed without a dispute account"));
        }
    }
    // Seats, reserves and pledges add up.
    for (wkey, w) in &workers {
        let held: Vec<_> = disputes
            .values()
            .filter(|d| d.phase == DisputePhase::Voting)
            .flat_map(|d| d.seats.iter().filter(|s| s.worker == *wkey))
            .collect();
        let reserved: u64 = held.iter().map(|s| s.reserve).sum();
        if held.len() != w.open_seats as usize || reserved != w.seat_reserve {
            return Err(format!(
                "worker {wkey}: {} open seats reserving {} vs {} seats reserving {reserved} in disputes",
                w.open_seats, w.seat_reserve, held.len()
            ));
        }
        if (w.stake as u128) < w.locked_collateral as u128 + w.seat_reserve as u128 {
            return Err(format!("worker {wkey}: stake below its locks"));
        }
        let locked = w
            .active()
            .and_then(|j| jobs.get(&j))
            .map_or(0, |j| j.collateral);
        if w.locked_collateral != locked {
            return Err(format!(
                "worker {wkey}: locked {} vs its job's collateral {locked}",
                w.locked_collateral
            ));
        }
    }
    for p in &pools {
        for e in p.entries.iter().filter(|e| e.worker != Pubkey::default()) {
            let w = workers
                .get(&e.worker)
                .ok_or_else(|| format!("pool entry {} is no worker", e.worker))?;
            if !w.registered || w.pooled_stake != e.weight {
                return Err(format!(
                    "pool entry {}: weight {} vs pledge {}",
                    e.worker, e.weight, w.pooled_stake
                ));
            }
        }
    }
    for (wkey, w) in &workers {
        if let Some(jkey) = w.active() {
            let job = jobs
                .get(&jkey)
                .ok_or_else(|| format!("worker {wkey}: active job {jkey} does not exist"))?;
            if job.holder() != Some(*wkey) {
                return Err(format!(
                    "worker {wkey}: active job {jkey} is held by {}",
                    job.worker
                ));
            }
        }
    }
    for (jkey, j) in &jobs {
        if let Some(wkey) = j.holder() {
            let w = workers
                .get(&wkey)
                .ok_or_else(|| format!("job {jkey}: worker {wkey} does not exist"))?;
            if w.active() != Some(*jkey) {
                return Err(format!(
                    "job {jkey}: held by {wkey} whose active job is {}",
                    w.active_job
                ));
            }
            if w.stake < j.collateral {
                return Err(format!(
                    "job {jkey}: collateral {} above its worker's stake {}",
                    j.collateral, w.stake
                ));
            }
        }
    }
    Ok(())
}

/// What a token market owes, in base units of its mint: its unclaimed fees, every worker's
/// stake and earnings, every job's escrow, every dispute's bond and forfeits and every poster's
/// refunds. Its vault must hold at least this (exactly this, unless someone sent tokens to it).
pub fn token_liabilities(
    market_key: &Pubkey,
    market: &Market,
    workers: &HashMap<Pubkey, Worker>,
    jobs: &HashMap<Pubkey, Job>,
    disputes: &HashMap<Pubkey, Dispute>,
    dispute_markets: &HashMap<Pubkey, Pubkey>,
    posters: &HashMap<Pubkey, Poster>,
) -> u128 {
    let mut owed = market.fees_unclaimed as u128;
    owed += workers
        .values()
        .filter(|w| w.market == *market_key)
        .map(|w| w.stake as u128 + w.earnings as u128)
        .sum::<u128>();
    owed += jobs
        .values()
        .filter(|j| j.market == *market_key)
        .map(|j| j.reward as u128 + j.compensation as u128)
        .sum::<u128>();
    owed += disputes
        .iter()
        .filter(|(k, _)| dispute_markets.get(*k) == Some(market_key))
        .map(|(_, d)| d.bond as u128 + d.forfeits as u128)
        .sum::<u128>();
    owed += posters
        .values()
        .filter(|p| p.market == *market_key)
        .map(|p| p.refunds as u128)
        .sum::<u128>();
    owed
}

/// `token_liabilities` of `market` read from the chain now.
pub fn market_token_liabilities(env: &TestEnv, market_key: &Pubkey) -> u128 {
    let mut workers = HashMap::new();
    let mut jobs = HashMap::new();
    let mut disputes = HashMap::new();
    let mut dispute_markets = HashMap::new();
    let mut posters = HashMap::new();
    let mut market = None;
    for (key, acc) in env.svm.get_program_accounts(&PROGRAM_ID) {
        let disc = &acc.data[..8.min(acc.data.len())];
        if disc == Market::DISCRIMINATOR && key == *market_key {
            market = decode_account::<Market>(&acc.data).ok();
        } else if disc == Worker::DISCRIMINATOR {
            workers.insert(key, decode_account::<Worker>(&acc.data).expect("worker"));
        } else if disc == Job::DISCRIMINATOR {
            jobs.insert(key, decode_account::<Job>(&acc.data).expect("job"));
        } else if disc == Dispute::DISCRIMINATOR {
            let d = decode_account::<Dispute>(&acc.data).expect("dispute");
            if let Some(j) = env.get::<Job>(&d.job) {
                dispute_markets.insert(key, j.market);
            }
            disputes.insert(key, d);
        } else if disc == Poster::DISCRIMINATOR {
            posters.insert(key, decode_account::<Poster>(&acc.data).expect("poster"));
        }
    }
    let market = market.expect("the market exists");
    token_liabilities(
        market_key,
        &market,
        &workers,
        &jobs,
        &disputes,
        &dispute_markets,
        &posters,
    )
}
