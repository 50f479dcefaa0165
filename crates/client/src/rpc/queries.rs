//! `getProgramAccounts` queries over jobs, built on the fixed offsets of
//! [`layout`](crate::layout): each filter is defined once here and used by the scans below and
//! by the subscriptions.

use anchor_lang::{prelude::Pubkey, Discriminator};
use solana_account_decoder_client_types::{UiAccountEncoding, UiDataSliceConfig};
use solana_rpc_client_api::{
    config::{RpcAccountInfoConfig, RpcProgramAccountsConfig},
    filter::{Memcmp, RpcFilterType},
};

use super::{ChainClient, ChainError};
use crate::{
    layout, program_id,
    state::{Job, JobState, Market, Worker},
};

/// One condition on a job account's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobFilter {
    Market(Pubkey),
    Poster(Pubkey),
    /// The holding Worker account (jobs in Claimed, Submitted or Disputed).
    Worker(Pubkey),
    State(JobState),
}

impl JobFilter {
    fn memcmp(&self) -> Memcmp {
        match self {
            JobFilter::Market(k) => {
                Memcmp::new_raw_bytes(layout::job::MARKET, k.to_bytes().to_vec())
            }
            JobFilter::Poster(k) => {
                Memcmp::new_raw_bytes(layout::job::POSTER, k.to_bytes().to_vec())
            }
            JobFilter::Worker(k) => {
                Memcmp::new_raw_bytes(layout::job::WORKER, k.to_bytes().to_vec())
            }
            JobFilter::State(s) => Memcmp::new_raw_bytes(layout::job::STATE, vec![*s as u8]),
        }
    }
}

/// A set of job filters, all of which must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobQuery {
    pub filters: Vec<JobFilter>,
}

impl JobQuery {
    /// Every job of the program.
    pub fn all() -> Self {
        Self::default()
    }

    pub fn and(mut self, filter: JobFilter) -> Self {
        self.filters.push(filter);
        self
    }

    /// The jobs a worker may claim in `market`.
    pub fn open_in(market: Pubkey) -> Self {
        Self::all()
            .and(JobFilter::Market(market))
            .and(JobFilter::State(JobState::Open))
    }

    /// A poster's jobs in every state.
    pub fn of_poster(poster: Pubkey) -> Self {
        Self::all().and(JobFilter::Poster(poster))
    }

    /// The job (at most one) a Worker account holds.
    pub fn held_by(worker: Pubkey) -> Self {
        Self::all().and(JobFilter::Worker(worker))
    }

    pub fn in_state(market: Pubkey, state: JobState) -> Self {
        Self::all()
            .and(JobFilter::Market(market))
            .and(JobFilter::State(state))
    }

    /// The filters as sent: the Job discriminator, then each condition.
    pub fn rpc_filters(&self) -> Vec<RpcFilterType> {
        let mut out = vec![RpcFilterType::Memcmp(Memcmp::new_raw_bytes(
            layout::DISCRIMINATOR,
            Job::DISCRIMINATOR.to_vec(),
        ))];
        out.extend(
            self.filters
                .iter()
                .map(|f| RpcFilterType::Memcmp(f.memcmp())),
        );
        out
    }
}

/// A job found by a scan.
#[derive(Debug, Clone)]
pub struct JobEntry {
    pub pubkey: Pubkey,
    pub job: Job,
}

impl ChainClient {
    /// Raw `getProgramAccounts`: each matching account's key and its data, or only the
    /// `slice` of it (`(offset, length)`) when a scan needs a few fields.
    pub async fn program_accounts(
        &self,
        filters: Vec<RpcFilterType>,
        slice: Option<(usize, usize)>,
    ) -> Result<Vec<(Pubkey, Vec<u8>)>, ChainError> {
        let config = RpcProgramAccountsConfig {
            filters: Some(filters),
            account_config: RpcAccountInfoConfig {
                encoding: Some(UiAccountEncoding::Base64),
                data_slice: slice.map(|(offset, length)| UiDataSliceConfig { offset, length }),
                commitment: Some(self.config.commitment_config()),
                min_context_slot: None,
            },
            with_context: None,
            sort_results: None,
        };
        let accounts = self
            .endpoints
            .call("getProgramAccounts", move |c| {
                let config = config.clone();
                async move {
                    c.get_program_ui_accounts_with_config(&program_id(), config)
                        .await
                }
            })
            .await?;
        accounts
            .into_iter()
            .map(|(pubkey, ui)| {
                ui.data
                    .decode()
                    .map(|data| (pubkey, data))
                    .ok_or_else(|| ChainError::Rpc(format!("account {pubkey}: undecodable data")))
            })
            .collect()
    }

    /// Every job matching `query`, decoded, sorted by address.
    pub async fn jobs(&self, query: &JobQuery) -> Result<Vec<JobEntry>, ChainError> {
        let mut out = Vec::new();
        for (pubkey, data) in self.program_accounts(query.rpc_filters(), None).await? {
            // Owned by the program: getProgramAccounts returns nothing else.
            let job = decode_named::<Job>(pubkey, &data, "Job")?;
            out.push(JobEntry { pubkey, job });
        }
        out.sort_by_key(|e| e.pubkey);
        Ok(out)
    }

    /// The addresses of the jobs matching `query`, without their data (a zero-length slice).
    pub async fn job_keys(&self, query: &JobQuery) -> Result<Vec<Pubkey>, ChainError> {
        let mut keys: Vec<Pubkey> = self
            .program_accounts(query.rpc_filters(), Some((0, 0)))
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// Jobs of `query` whose i64 field at `offset` is below `before`. Only that field is
    /// transferred by the scan; the matching jobs are then fetched in full.
    async fn jobs_with_time_before(
        &self,
        query: JobQuery,
        offset: usize,
        before: i64,
    ) -> Result<Vec<JobEntry>, ChainError> {
        let hits: Vec<Pubkey> = self
            .program_accounts(query.rpc_filters(), Some((offset, 8)))
            .await?
            .into_iter()
            .filter(|(_, d)| {
                <[u8; 8]>::try_from(&d[..]).is_ok_and(|b| i64::from_le_bytes(b) < before)
            })
            .map(|(k, _)| k)
            .collect();
        let jobs = self.fetch_many::<Job>(&hits).await?;
        let mut out: Vec<JobEntry> = hits
            .into_iter()
            .zip(jobs)
            .filter_map(|(pubkey, job)| job.map(|job| JobEntry { pubkey, job }))
            .collect();
        out.sort_by_key(|e| e.pubkey);
        Ok(out)
    }

    /// Claimed jobs of `market` whose deadline is before `now`: `job_reclaim` candidates.
    pub async fn jobs_past_deadline(
        &self,
        market: Pubkey,
        now: i64,
    ) -> Result<Vec<JobEntry>, ChainError> {
        let q = JobQuery::in_state(market, JobState::Claimed);
        self.jobs_with_time_before(q, layout::job::DEADLINE, now)
            .await
    }

    /// Submitted jobs of `market` whose challenge window ended before `now`: `job_finalize`
    /// candidates.
    pub async fn jobs_past_challenge(
        &self,
        market: Pubkey,
        now: i64,
    ) -> Result<Vec<JobEntry>, ChainError> {
        let q = JobQuery::in_state(market, JobState::Submitted);
        self.jobs_with_time_before(q, layout::job::CHALLENGE_ENDS_AT, now)
            .await
    }

    /// Every market of the program.
    pub async fn markets(&self) -> Result<Vec<(Pubkey, Market)>, ChainError> {
        self.decode_all(Market::DISCRIMINATOR, "Market").await
    }

    /// Every Worker account of `market`.
    pub async fn workers_in(&self, market: Pubkey) -> Result<Vec<(Pubkey, Worker)>, ChainError> {
        let filters = vec![
            RpcFilterType::Memcmp(Memcmp::new_raw_bytes(0, Worker::DISCRIMINATOR.to_vec())),
            RpcFilterType::Memcmp(Memcmp::new_raw_bytes(
                layout::worker::MARKET,
                market.to_bytes().to_vec(),
            )),
        ];
        self.program_accounts(filters, None)
            .await?
            .into_iter()
            .map(|(k, d)| decode_named::<Worker>(k, &d, "Worker").map(|w| (k, w)))
            .collect()
    }

    async fn decode_all<T: anchor_lang::AccountDeserialize>(
        &self,
        discriminator: &[u8],
        name: &'static str,
    ) -> Result<Vec<(Pubkey, T)>, ChainError> {
        let filters = vec![RpcFilterType::Memcmp(Memcmp::new_raw_bytes(
            0,
            discriminator.to_vec(),
        ))];
        self.program_accounts(filters, None)
            .await?
            .into_iter()
            .map(|(k, d)| decode_named::<T>(k, &d, name).map(|v| (k, v)))
            .collect()
    }
}

fn decode_named<T: anchor_lang::AccountDeserialize>(
    pubkey: Pubkey,
    data: &[u8],
    expected: &'static str,
) -> Result<T, ChainError> {
    crate::decode_account::<T>(data).map_err(|e| ChainError::Decode {
        pubkey,
        expected,
        reason: e.to_string(),
    })
}
