//! Typed reads of the program's accounts.

use anchor_lang::{prelude::Pubkey, AccountDeserialize, Discriminator};
use solana_account::Account;

use super::{ChainClient, ChainError};
use crate::{
    post::PostContext,
    program_id,
    state::{Dispute, Job, Market, Poster, VerifierPool, Worker},
};

/// The clock sysvar.
const CLOCK: Pubkey = Pubkey::from_str_const("SysvarC1ock11111111111111111111111111111111");

/// `Clock::unix_timestamp` from the sysvar's data (slot u64, epoch_start_timestamp i64,
/// epoch u64, leader_schedule_epoch u64, unix_timestamp i64).
fn clock_time(account: &Account) -> Result<i64, ChainError> {
    let bytes: [u8; 8] = account
        .data
        .get(32..40)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ChainError::Rpc("the clock sysvar is too short".into()))?;
    Ok(i64::from_le_bytes(bytes))
}

/// `getMultipleAccounts` takes at most this many keys.
const MULTIPLE_ACCOUNTS_MAX: usize = 100;

/// An account type of the program, named for error messages.
pub trait ProgramAccount: AccountDeserialize + Discriminator {
    const NAME: &'static str;
}

impl ProgramAccount for Market {
    const NAME: &'static str = "Market";
}
impl ProgramAccount for Worker {
    const NAME: &'static str = "Worker";
}
impl ProgramAccount for Job {
    const NAME: &'static str = "Job";
}
impl ProgramAccount for Poster {
    const NAME: &'static str = "Poster";
}
impl ProgramAccount for Dispute {
    const NAME: &'static str = "Dispute";
}
impl ProgramAccount for VerifierPool {
    const NAME: &'static str = "VerifierPool";
}

/// Decodes a fetched account as `T`, refusing accounts the program does not own (anyone can
/// create an account with the right discriminator under another owner).
pub fn decode<T: ProgramAccount>(pubkey: &Pubkey, account: &Account) -> Result<T, ChainError> {
    let bad = |reason: String| ChainError::Decode {
        pubkey: *pubkey,
        expected: T::NAME,
        reason,
    };
    if account.owner != program_id() {
        return Err(bad(format!("owned by {}, not the program", account.owner)));
    }
    T::try_deserialize(&mut &account.data[..]).map_err(|e| bad(e.to_string()))
}

impl ChainClient {
    /// The raw account, `None` when it does not exist.
    pub async fn account(&self, pubkey: &Pubkey) -> Result<Option<Account>, ChainError> {
        let key = *pubkey;
        let commitment = self.config.commitment_config();
        let response = self
            .endpoints
            .call("getAccountInfo", move |c| async move {
                c.get_account_with_commitment(&key, commitment).await
            })
            .await?;
        Ok(response.value)
    }

    /// A program account decoded as `T`, `None` when it does not exist.
    pub async fn fetch<T: ProgramAccount>(&self, pubkey: &Pubkey) -> Result<Option<T>, ChainError> {
        match self.account(pubkey).await? {
            Some(account) => decode(pubkey, &account).map(Some),
            None => Ok(None),
        }
    }

    /// A program account that must exist.
    pub async fn require<T: ProgramAccount>(&self, pubkey: &Pubkey) -> Result<T, ChainError> {
        self.fetch(pubkey)
            .await?
            .ok_or(ChainError::AccountNotFound(*pubkey))
    }

    pub async fn market(&self, pubkey: &Pubkey) -> Result<Market, ChainError> {
        self.require(pubkey).await
    }

    pub async fn worker(&self, pubkey: &Pubkey) -> Result<Option<Worker>, ChainError> {
        self.fetch(pubkey).await
    }

    pub async fn job(&self, pubkey: &Pubkey) -> Result<Option<Job>, ChainError> {
        self.fetch(pubkey).await
    }

    /// `wallet`'s poster account in `market`, `None` before its first post.
    pub async fn poster(
        &self,
        market: &Pubkey,
        wallet: &Pubkey,
    ) -> Result<Option<Poster>, ChainError> {
        self.fetch(&crate::pda::poster(market, wallet).0).await
    }

    /// The instructions that post `args` from `wallet` as given: `poster_init` first when
    /// the wallet has no poster account in `market` yet.
    pub async fn post_instructions(
        &self,
        wallet: &Pubkey,
        market: &Pubkey,
        args: tensorgrid::instructions::JobPostArgs,
    ) -> Result<Vec<crate::instructions::Instruction>, ChainError> {
        Ok(self
            .post_context(market, wallet)
            .await?
            .instructions(*wallet, *market, args))
    }

    /// The market and `wallet`'s poster account, read together: what a post agrees to and
    /// where its ids start.
    pub async fn post_context(
        &self,
        market: &Pubkey,
        wallet: &Pubkey,
    ) -> Result<PostContext, ChainError> {
        let keys = [*market, crate::pda::poster(market, wallet).0];
        let mut read = self.accounts(&keys).await?.into_iter();
        let market_account = read
            .next()
            .flatten()
            .ok_or(ChainError::AccountNotFound(*market))?;
        let market_state = decode::<Market>(market, &market_account)?;
        let poster = read
            .next()
            .flatten()
            .map(|a| decode::<Poster>(&keys[1], &a))
            .transpose()?;
        Ok(PostContext {
            market: market_state,
            poster,
        })
    }

    /// Raw accounts for many keys, in order (batched by 100).
    pub async fn accounts(&self, keys: &[Pubkey]) -> Result<Vec<Option<Account>>, ChainError> {
        let commitment = self.config.commitment_config();
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(MULTIPLE_ACCOUNTS_MAX) {
            let chunk_len = chunk.len();
            let chunk = chunk.to_vec();
            let response = self
                .endpoints
                .call("getMultipleAccounts", move |c| {
                    let chunk = chunk.clone();
                    async move {
                        c.get_multiple_accounts_with_commitment(&chunk, commitment)
                            .await
                    }
                })
                .await?;
            if response.value.len() != chunk_len {
                return Err(ChainError::Rpc(format!(
                    "getMultipleAccounts answered {} accounts for {chunk_len} keys",
                    response.value.len()
                )));
            }
            out.extend(response.value);
        }
        Ok(out)
    }

    /// Program accounts for many keys, in order; `None` for those that do not exist.
    pub async fn fetch_many<T: ProgramAccount>(
        &self,
        keys: &[Pubkey],
    ) -> Result<Vec<Option<T>>, ChainError> {
        let raw = self.accounts(keys).await?;
        keys.iter()
            .zip(raw)
            .map(|(k, a)| a.map(|a| decode(k, &a)).transpose())
            .collect()
    }

    /// The amount the token account `pubkey` holds, `None` when it does not exist (an
    /// account that is not a token account is an error: it names a wrong address).
    pub async fn token_balance(&self, pubkey: &Pubkey) -> Result<Option<u64>, ChainError> {
        use crate::currency::{token_account_amount, TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID};
        let Some(account) = self.account(pubkey).await? else {
            return Ok(None);
        };
        if account.owner != TOKEN_PROGRAM_ID && account.owner != TOKEN_2022_PROGRAM_ID {
            return Err(ChainError::Decode {
                pubkey: *pubkey,
                expected: "token account",
                reason: format!("owned by {}, not a token program", account.owner),
            });
        }
        token_account_amount(&account.data)
            .map(Some)
            .ok_or_else(|| ChainError::Decode {
                pubkey: *pubkey,
                expected: "token account",
                reason: "too short for a token account".into(),
            })
    }

    /// Lamports held by `pubkey` (0 when it does not exist).
    pub async fn balance(&self, pubkey: &Pubkey) -> Result<u64, ChainError> {
        let key = *pubkey;
        let commitment = self.config.commitment_config();
        let response = self
            .endpoints
            .call("getBalance", move |c| async move {
                c.get_balance_with_commitment(&key, commitment).await
            })
            .await?;
        Ok(response.value)
    }

    /// The chain's clock (`Clock::unix_timestamp`): what deadlines and windows are compared
    /// with, which may differ from this machine's clock.
    pub async fn chain_time(&self) -> Result<i64, ChainError> {
        let account = self
            .account(&CLOCK)
            .await?
            .ok_or(ChainError::AccountNotFound(CLOCK))?;
        clock_time(&account)
    }

    /// The account as each configured endpoint shows it (one request each, no failover):
    /// what a caller compares before acting on one node's word.
    pub async fn account_each(&self, pubkey: &Pubkey) -> Vec<Result<Option<Account>, ChainError>> {
        let key = *pubkey;
        let commitment = self.config.commitment_config();
        self.endpoints
            .call_each(move |c| async move {
                c.get_account_with_commitment(&key, commitment)
                    .await
                    .map(|r| r.value)
            })
            .await
    }

    /// The chain's clock as each endpoint shows it.
    pub async fn chain_time_each(&self) -> Vec<Result<i64, ChainError>> {
        self.account_each(&CLOCK)
            .await
            .into_iter()
            .map(|r| r.and_then(|a| clock_time(&a.ok_or(ChainError::AccountNotFound(CLOCK))?)))
            .collect()
    }

    /// The job as each endpoint shows it.
    pub async fn job_each(&self, pubkey: &Pubkey) -> Vec<Result<Option<Job>, ChainError>> {
        self.account_each(pubkey)
            .await
            .into_iter()
            .map(|r| r.and_then(|a| a.map(|a| decode::<Job>(pubkey, &a)).transpose()))
            .collect()
    }

    /// How many endpoints answer `*_each` reads.
    pub fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }

    /// The current slot at the configured commitment.
    pub async fn slot(&self) -> Result<u64, ChainError> {
        let commitment = self.config.commitment_config();
        self.endpoints
            .call("getSlot", move |c| async move {
                c.get_slot_with_commitment(commitment).await
            })
            .await
    }

    /// Lamports an account of `len` data bytes needs to be rent-exempt.
    pub async fn rent_exempt(&self, len: usize) -> Result<u64, ChainError> {
        self.endpoints
            .call("getMinimumBalanceForRentExemption", move |c| async move {
                c.get_minimum_balance_for_rent_exemption(len).await
            })
            .await
    }
}
