use anchor_lang::prelude::*;

use super::{bps_of, check_backed, checked_add, checked_sub, Unit};
use crate::{
    constants::{
        BPS_DENOMINATOR, MAX_BOND_BPS, MAX_COLLATERAL_BPS, MAX_CRANK_BOUNTY_BPS, MAX_FEE_BPS,
        MAX_WINDOW_S, VERIFIER_SEATS,
    },
    errors::TensorgridError,
};

/// Tunable economics of a market, set by its authority. They apply to jobs posted after they
/// are set: each job keeps a copy of the money terms (`JobTerms`) from the moment it is posted.
#[derive(AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarketParams {
    /// Share of each paid reward kept by the market, in bps (at most 2000).
    pub fee_bps: u16,
    /// Least stake, in lamports, a worker must hold to register and to claim.
    pub min_stake: u64,
    /// Collateral a claim locks from the worker's stake, in bps of the job's reward
    /// (1 to 50000, i.e. up to 5 × the reward). Slashes and penalties are shares of it.
    pub collateral_bps: u16,
    /// Share of the collateral taken on a missed deadline or a lost dispute, in bps.
    pub slash_bps: u16,
    /// Share of the collateral taken when a worker abandons a claimed job, in bps; must cost
    /// less than a missed deadline (`slash_bps` minus the crank bounty).
    pub abandon_penalty_bps: u16,
    /// Share of a deadline slash paid to whoever cranks `job_reclaim`, in bps (at most 5000);
    /// the rest goes to the poster.
    pub crank_bounty_bps: u16,
    /// Seconds after a submission during which the poster may dispute (1 s to 30 days).
    pub challenge_window_s: i64,
    /// Seconds the authority has to rule on a dispute the verifiers could not settle, before
    /// anyone may apply the timeout
    /// default (1 s to 30 days).
    pub resolve_window_s: i64,
    /// Longest `max_duration_s` a job may ask for (1 s to 30 days).
    pub max_claim_s: i64,
    /// How disputes are settled by re-execution.
    pub dispute: DisputeTerms,
}

/// The terms of a dispute settled by re-execution, fixed for each job when it is posted.
#[derive(AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Copy, Debug, PartialEq, Eq)]
pub struct DisputeTerms {
    /// Bond the poster posts with a dispute, in bps of the reward (1 to 10000). A frivolous
    /// dispute's bond pays the verifiers and the rest goes to the worker.
    pub bond_bps: u16,
    /// Fee each verifier of the majority earns, in bps of the reward (at least 1; three fees
    /// fit in the bond and in the fraud slash). A drawn verifier that does not reveal, or
    /// reveals against the majority, forfeits as much of its stake.
    pub verifier_fee_bps: u16,
    /// Share of the collateral taken when the verifiers' majority finds the disputed segment
    /// does not re-run to the worker's committed state, in bps.
    pub fraud_slash_bps: u16,
    /// Seconds the drawn verifiers have to commit their end-state hashes, then again to reveal
    /// them (1 s to 30 days each).
    pub verify_window_s: i64,
}

impl DisputeTerms {
    /// Within the program's bounds, and the verifiers' fees covered by whichever side loses:
    /// three fees fit in the bond (a frivolous dispute) and in the fraud slash (a cheat).
    pub fn validate(&self, collateral_bps: u16) -> Result<()> {
        let seats = u64::from(VERIFIER_SEATS);
        let fees = u64::from(self.verifier_fee_bps).saturating_mul(seats);
        // The slash in bps of the reward, times 10^4: collateral_bps × fraud_slash_bps.
        let slash = u64::from(collateral_bps).saturating_mul(u64::from(self.fraud_slash_bps));
        let ok = self.bond_bps > 0
            && self.bond_bps <= MAX_BOND_BPS
            && self.fraud_slash_bps <= BPS_DENOMINATOR
            && self.verifier_fee_bps > 0
            && fees <= u64::from(self.bond_bps)
            && fees.saturating_mul(u64::from(BPS_DENOMINATOR)) <= slash;
        ensure!(ok, TensorgridError::InvalidDisputeTerms);
        ensure!(self.verify_window_s > 0, TensorgridError::InvalidWindow);
        ensure!(
            self.verify_window_s <= MAX_WINDOW_S,
            TensorgridError::WindowTooLong
        );
        Ok(())
    }

    /// The bond a dispute of a job with this reward posts.
    pub fn bond(&self, reward: u64) -> Result<u64> {
        bps_of(reward, self.bond_bps)
    }

    /// Each verifier's fee (and forfeit) for a job with this reward.
    pub fn verifier_fee(&self, reward: u64) -> Result<u64> {
        bps_of(reward, self.verifier_fee_bps)
    }

    /// Taken from the worker when the re-execution finds its result does not reproduce.
    pub fn fraud_slash(&self, collateral: u64) -> Result<u64> {
        bps_of(collateral, self.fraud_slash_bps)
    }
}

impl MarketParams {
    /// Each parameter within the program's bounds, and the parameters consistent with each
    /// other: missing a deadline always costs a worker at least as much as abandoning.
    pub fn validate(&self) -> Result<()> {
        for bps in [
            self.slash_bps,
            self.abandon_penalty_bps,
            self.crank_bounty_bps,
        ] {
            ensure!(bps <= BPS_DENOMINATOR, TensorgridError::InvalidBps);
        }
        ensure!(self.fee_bps <= MAX_FEE_BPS, TensorgridError::FeeTooHigh);
        ensure!(
            self.collateral_bps > 0 && self.collateral_bps <= MAX_COLLATERAL_BPS,
            TensorgridError::InvalidCollateral
        );
        ensure!(
            self.crank_bounty_bps <= MAX_CRANK_BOUNTY_BPS,
            TensorgridError::BountyTooHigh
        );
        for window in [
            self.challenge_window_s,
            self.resolve_window_s,
            self.max_claim_s,
        ] {
            ensure!(window > 0, TensorgridError::InvalidWindow);
            ensure!(window <= MAX_WINDOW_S, TensorgridError::WindowTooLong);
        }
        // abandon < slash × (1 − bounty), in bps², exact in u64 (each factor ≤ 10^4).
        let penalty =
            u64::from(self.abandon_penalty_bps).saturating_mul(u64::from(BPS_DENOMINATOR));
        let miss = u64::from(self.slash_bps).saturating_mul(u64::from(
            BPS_DENOMINATOR.saturating_sub(self.crank_bounty_bps),
        ));
        ensure!(penalty < miss, TensorgridError::PenaltyNotBelowSlash);
        self.dispute.validate(self.collateral_bps)
    }

    /// The money terms a job posted now in a SOL market is bound by (`Market::job_terms` for
    /// any market).
    pub fn job_terms(&self) -> JobTerms {
        JobTerms {
            fee_bps: self.fee_bps,
            collateral_bps: self.collateral_bps,
            slash_bps: self.slash_bps,
            abandon_penalty_bps: self.abandon_penalty_bps,
            crank_bounty_bps: self.crank_bounty_bps,
            challenge_window_s: self.challenge_window_s,
            resolve_window_s: self.resolve_window_s,
            dispute: self.dispute,
            mint: Pubkey::default(),
        }
    }
}

/// The terms that decide a job's money, copied from the market when the job is posted. A
/// later `market_update` does not change them.
#[derive(AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobTerms {
    /// Market fee on the reward, in bps.
    pub fee_bps: u16,
    /// Collateral locked from the worker's stake by a claim, in bps of the reward.
    pub collateral_bps: u16,
    /// Share of the collateral taken on a missed deadline or a lost dispute, in bps.
    pub slash_bps: u16,
    /// Share of the collateral taken on an abandon, in bps.
    pub abandon_penalty_bps: u16,
    /// Share of a deadline slash paid to the cranker, in bps.
    pub crank_bounty_bps: u16,
    /// Seconds the poster has to dispute a submitted result.
    pub challenge_window_s: i64,
    /// Seconds the authority has to resolve a dispute the verifiers could not settle.
    pub resolve_window_s: i64,
    /// How a dispute is settled by re-execution.
    pub dispute: DisputeTerms,
    /// The mint every amount of the job is counted in: the reward, the collateral, the bond,
    /// every fee and penalty; `Pubkey::default()` for lamports. The market's, stated by the
    /// poster and by the claiming worker like every other term.
    pub mint: Pubkey,
}

/// How a reward splits when it is paid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payout {
    /// Reward minus fee, to the worker.
    pub to_worker: u64,
    /// Fee, to the market.
    pub fee: u64,
}

/// How a missed-deadline slash splits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReclaimSplit {
    /// Into the job's escrow, owed to the poster.
    pub to_poster: u64,
    /// To the cranker.
    pub bounty: u64,
}

impl JobTerms {
    pub fn payout(&self, reward: u64) -> Result<Payout> {
        let fee = bps_of(reward, self.fee_bps)?;
        Ok(Payout {
            to_worker: checked_sub(reward, fee)?,
            fee,
        })
    }

    pub fn collateral(&self, reward: u64) -> Result<u64> {
        bps_of(reward, self.collateral_bps)
    }

    pub fn abandon_penalty(&self, collateral: u64) -> Result<u64> {
        bps_of(collateral, self.abandon_penalty_bps)
    }

    /// Taken from the worker on a lost dispute (all to the poster) or a missed deadline.
    pub fn slash(&self, collateral: u64) -> Result<u64> {
        bps_of(collateral, self.slash_bps)
    }

    pub fn reclaim_split(&self, collateral: u64) -> Result<ReclaimSplit> {
        let slashed = self.slash(collateral)?;
        let bounty = bps_of(slashed, self.crank_bounty_bps)?;
        Ok(ReclaimSplit {
            to_poster: checked_sub(slashed, bounty)?,
            bounty,
        })
    }
}

/// A market: its authority, its unit (lamports or an SPL mint), its parameters for new jobs,
/// and the fees it has earned. In a SOL market the fees are held as lamports in this account
/// above rent until the authority withdraws them; in a token market every amount is held by
/// the market's vault, a token account this account owns.
#[account]
#[derive(InitSpace, Debug)]
pub struct Market {
    /// Sets parameters, pauses, resolves disputes, withdraws fees.
    pub authority: Pubkey,
    /// The authority's id for this market.
    pub market_id: u64,
    /// Parameters for jobs posted from now on.
    pub params: MarketParams,
    /// Fees earned and not yet withdrawn, in the market's unit.
    pub fees_unclaimed: u64,
    /// Fees withdrawn by the authority so far, in the market's unit.
    pub fees_withdrawn: u64,
    /// Number of jobs ever posted in this market.
    pub jobs_posted: u64,
    /// Blocks new posts and claims; everything in flight can still finish.
    pub paused: bool,
    /// The PDA's bump.
    pub bump: u8,
    /// The mint amounts are counted in: `Pubkey::default()` for lamports (SOL), else an SPL
    /// Token or Token-2022 mint, fixed when the market is created.
    pub mint: Pubkey,
    /// The mint's decimals (9 for SOL): amounts are in base units, shown divided by 10^decimals.
    pub decimals: u8,
    /// The mint's token program; `Pubkey::default()` for SOL.
    pub token_program: Pubkey,
    /// The token account `["vault", market]` holding every amount of a token market;
    /// `Pubkey::default()` for SOL.
    pub vault: Pubkey,
}

impl Market {
    pub const SPACE: usize = 8 + Market::INIT_SPACE;

    /// Where and how the market's amounts are held.
    pub fn unit(&self) -> Unit {
        Unit::of(&self.mint)
    }

    /// The money terms a job posted now is bound by, in this market's mint.
    pub fn job_terms(&self) -> JobTerms {
        JobTerms {
            mint: self.mint,
            ..self.params.job_terms()
        }
    }

    pub fn invariant(&self, info: &AccountInfo) -> Result<()> {
        self.params
            .validate()
            .map_err(|_| crate::errors::fail(TensorgridError::InvariantViolated))?;
        check_backed(info, self.fees_unclaimed, self.unit())
    }

    pub fn record_post(&mut self) -> Result<()> {
        self.jobs_posted = checked_add(self.jobs_posted, 1)?;
        Ok(())
    }

    /// A fee arrived in this account.
    pub fn accrue_fee(&mut self, fee: u64) -> Result<()> {
        self.fees_unclaimed = checked_add(self.fees_unclaimed, fee)?;
        Ok(())
    }

    /// `amount` of the unclaimed fees leaves (the caller moves the lamports).
    pub fn withdraw_fees(&mut self, amount: u64) -> Result<()> {
        ensure!(
            amount <= self.fees_unclaimed,
            TensorgridError::InsufficientFees
        );
        self.fees_unclaimed = checked_sub(self.fees_unclaimed, amount)?;
        // A running total for readers: it saturates rather than fail a withdrawal.
        self.fees_withdrawn = self.fees_withdrawn.saturating_add(amount);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params(slash: u16, abandon: u16, bounty: u16) -> MarketParams {
        MarketParams {
            fee_bps: 250,
            min_stake: 1,
            collateral_bps: 20_000,
            slash_bps: slash,
            abandon_penalty_bps: abandon,
            crank_bounty_bps: bounty,
            challenge_window_s: 60,
            resolve_window_s: 60,
            max_claim_s: 60,
            dispute: DisputeTerms {
                bond_bps: 1_000,
                verifier_fee_bps: 300,
                fraud_slash_bps: 10_000,
                verify_window_s: 60,
            },
        }
    }

    proptest! {
        /// Whatever valid parameters and collateral, a worker that misses its deadline and
        /// cranks its own reclaim (collecting the bounty) loses at least the abandon penalty.
        #[test]
        fn missing_a_deadline_never_costs_less_than_abandoning(
            (slash, bounty, abandon) in (1u16..=10_000, 0u16..=5_000).prop_flat_map(|(s, b)| {
                // The largest abandon penalty the program accepts with this slash and bounty.
                let max = (u64::from(s) * u64::from(10_000 - b) - 1) / 10_000;
                (Just(s), Just(b), 0..=max as u16)
            }),
            collateral in 0u64..=u64::MAX / 2,
        ) {
            let p = params(slash, abandon, bounty);
            prop_assert!(p.validate().is_ok());
            let t = p.job_terms();
            let split = t.reclaim_split(collateral).unwrap();
            prop_assert!(split.to_poster >= t.abandon_penalty(collateral).unwrap());
        }
    }

    #[test]
    fn inconsistent_parameters_are_refused() {
        assert!(params(5_000, 500, 1_000).validate().is_ok());
        // A missed deadline self-cranked with a 100 % bounty would cost nothing.
        assert!(params(5_000, 500, 5_000).validate().is_ok());
        assert!(params(1_000, 500, 5_000).validate().is_err());
        assert!(params(0, 0, 0).validate().is_err());
        assert!(params(1_000, 1_000, 0).validate().is_err());
    }
}
