//! Whole-chain invariants over every account the program owns, checked from the host.

use std::collections::HashMap;

use anchor_lang::{prelude::Pubkey, Discriminator};
use tensorgrid_client::{
    decode_account, pda,
    state::{Job, JobState, Market, Worker},
    PROGRAM_ID,
};

use crate::env::TestEnv;

/// Checks, over all program accounts:
/// - each market's parameters are valid;
/// - each worker holds rent + its recorded stake;
/// - each job holds rent + its reward (escrow fully backed) and its fields fit its state;
/// - a worker's `active_job` and a job's `worker` point at each other (so a worker holds at
///   most one active job, and every non-open job is held by exactly one worker).
pub fn check_program_accounts(env: &TestEnv) -> Result<(), String> {
    let mut workers: HashMap<Pubkey, Worker> = HashMap::new();
    let mut jobs: HashMap<Pubkey, Job> = HashMap::new();
    for (key, acc) in env.svm.get_program_accounts(&PROGRAM_ID) {
        let rent = env.rent_exempt(acc.data.len());
        let disc = &acc.data[..8.min(acc.data.len())];
        if disc == Market::DISCRIMINATOR {
            let m: Market = decode_account(&acc.data).map_err(|e| format!("{key}: {e}"))?;
            m.params
                .validate()
                .map_err(|e| format!("market {key}: invalid params: {e}"))?;
        } else if disc == Worker::DISCRIMINATOR {
            let w: Worker = decode_account(&acc.data).map_err(|e| format!("{key}: {e}"))?;
            if acc.lamports < rent + w.stake {
                return Err(format!(
                    "worker {key}: {} lamports < rent {rent} + stake {}",
                    acc.lamports, w.stake
                ));
            }
            workers.insert(key, w);
        } else if disc == Job::DISCRIMINATOR {
            let j: Job = decode_account(&acc.data).map_err(|e| format!("{key}: {e}"))?;
            if acc.lamports < rent + j.reward {
                return Err(format!(
                    "job {key}: escrow {} lamports < rent {rent} + reward {}",
                    acc.lamports, j.reward
                ));
            }
            if j.reward == 0 {
                return Err(format!("job {key}: zero reward"));
            }
            let held = j.state != JobState::Open;
            if held != j.worker.is_some() {
                return Err(format!(
                    "job {key}: state {:?} with worker {:?}",
                    j.state, j.worker
                ));
            }
            jobs.insert(key, j);
        }
    }
    for (wkey, w) in &workers {
        if let Some(id) = w.active_job {
            let jkey = pda::job(&w.market, id).0;
            let job = jobs
                .get(&jkey)
                .ok_or_else(|| format!("worker {wkey}: active job {id} does not exist"))?;
            if job.worker != Some(*wkey) {
                return Err(format!(
                    "worker {wkey}: active job {id} is held by {:?}",
                    job.worker
                ));
            }
        }
    }
    for (jkey, j) in &jobs {
        if let Some(wkey) = j.worker {
            let w = workers
                .get(&wkey)
                .ok_or_else(|| format!("job {jkey}: worker {wkey} does not exist"))?;
            if w.active_job != Some(j.job_id) {
                return Err(format!(
                    "job {jkey}: held by {wkey} whose active job is {:?}",
                    w.active_job
                ));
            }
        }
    }
    Ok(())
}
