//! Market parameters as flags: each one optional, applied over a base (the defaults for a new
//! market, the current values for an update).

use anyhow::Result;
use clap::Args;
use serde::Serialize;
use tensorgrid_client::state::MarketParams;

use crate::{
    output::fields,
    units::{duration, parse_duration},
};

#[derive(Args, Debug, Clone, Default)]
pub struct ParamArgs {
    /// Fee on each paid reward, in bps (at most 2000).
    #[arg(long)]
    fee_bps: Option<u16>,
    /// Least stake a worker must hold, in the market's unit: SOL or the mint's tokens (raw
    /// units with --lamports).
    #[arg(long)]
    min_stake: Option<String>,
    /// Amounts are in raw units: lamports, or the mint's base units.
    #[arg(long)]
    lamports: bool,
    /// Collateral a claim locks, in bps of the reward (1 to 50000).
    #[arg(long)]
    collateral_bps: Option<u16>,
    /// Share of the collateral slashed for a missed deadline or a lost dispute, in bps.
    #[arg(long)]
    slash_bps: Option<u16>,
    /// Share of the collateral an abandon costs, in bps (below the slash net of the bounty).
    #[arg(long)]
    abandon_penalty_bps: Option<u16>,
    /// Share of a deadline slash paid to the crank, in bps (at most 5000).
    #[arg(long)]
    crank_bounty_bps: Option<u16>,
    /// How long a poster may dispute a result (e.g. 1h).
    #[arg(long)]
    challenge_window: Option<String>,
    /// How long the authority has to rule on a dispute (e.g. 24h).
    #[arg(long)]
    resolve_window: Option<String>,
    /// The longest time from claim to result a job may ask for (e.g. 24h).
    #[arg(long)]
    max_claim: Option<String>,
}

impl ParamArgs {
    /// `--min-stake` was given.
    pub fn min_stake_given(&self) -> bool {
        self.min_stake.is_some()
    }

    pub fn any(&self) -> bool {
        self.fee_bps.is_some()
            || self.min_stake.is_some()
            || self.collateral_bps.is_some()
            || self.slash_bps.is_some()
            || self.abandon_penalty_bps.is_some()
            || self.crank_bounty_bps.is_some()
            || self.challenge_window.is_some()
            || self.resolve_window.is_some()
            || self.max_claim.is_some()
    }

    /// `p` with the parameters given; amounts in `unit` (the market's).
    pub fn apply(&self, mut p: MarketParams, unit: crate::units::Unit) -> Result<MarketParams> {
        if let Some(v) = self.fee_bps {
            p.fee_bps = v;
        }
        if let Some(v) = &self.min_stake {
            p.min_stake = unit.parse(v, self.lamports)?;
        }
        if let Some(v) = self.collateral_bps {
            p.collateral_bps = v;
        }
        if let Some(v) = self.slash_bps {
            p.slash_bps = v;
        }
        if let Some(v) = self.abandon_penalty_bps {
            p.abandon_penalty_bps = v;
        }
        if let Some(v) = self.crank_bounty_bps {
            p.crank_bounty_bps = v;
        }
        if let Some(v) = &self.challenge_window {
            p.challenge_window_s = parse_duration(v)?;
        }
        if let Some(v) = &self.resolve_window {
            p.resolve_window_s = parse_duration(v)?;
        }
        if let Some(v) = &self.max_claim {
            p.max_claim_s = parse_duration(v)?;
        }
        Ok(p)
    }
}

/// Parameters as reported (JSON: raw numbers).
#[derive(Debug, Clone, Serialize)]
pub struct ParamsView {
    pub fee_bps: u16,
    pub min_stake: u64,
    pub collateral_bps: u16,
    pub slash_bps: u16,
    pub abandon_penalty_bps: u16,
    pub crank_bounty_bps: u16,
    pub challenge_window_s: i64,
    pub resolve_window_s: i64,
    pub max_claim_s: i64,
    /// The market's unit (amounts above are raw units of it).
    #[serde(skip)]
    pub unit: crate::units::Unit,
}

impl ParamsView {
    /// The parameters of a market whose amounts are in `unit`.
    pub fn of(p: &MarketParams, unit: crate::units::Unit) -> Self {
        Self {
            unit,
            ..Self::from(p)
        }
    }
}

impl From<&MarketParams> for ParamsView {
    fn from(p: &MarketParams) -> Self {
        Self {
            unit: crate::units::Unit::SOL,
            fee_bps: p.fee_bps,
            min_stake: p.min_stake,
            collateral_bps: p.collateral_bps,
            slash_bps: p.slash_bps,
            abandon_penalty_bps: p.abandon_penalty_bps,
            crank_bounty_bps: p.crank_bounty_bps,
            challenge_window_s: p.challenge_window_s,
            resolve_window_s: p.resolve_window_s,
            max_claim_s: p.max_claim_s,
        }
    }
}

impl ParamsView {
    pub fn display(&self) -> String {
        let pct = |bps: u16| format!("{}%", f64::from(bps) / 100.0);
        fields(&[
            ("fee", pct(self.fee_bps)),
            ("min stake", self.unit.show(self.min_stake)),
            (
                "collateral",
                format!("{} of the reward", pct(self.collateral_bps)),
            ),
            (
                "slash",
                format!("{} of the collateral", pct(self.slash_bps)),
            ),
            (
                "abandon penalty",
                format!("{} of the collateral", pct(self.abandon_penalty_bps)),
            ),
            (
                "crank bounty",
                format!("{} of a slash", pct(self.crank_bounty_bps)),
            ),
            ("challenge window", duration(self.challenge_window_s)),
            ("resolve window", duration(self.resolve_window_s)),
            ("max claim", duration(self.max_claim_s)),
        ])
    }
}
