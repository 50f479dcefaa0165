//! Defaults shared by the local chain, the tests and the tools, defined once.

use crate::state::{
    DeviceKind, DeviceRequirement, DisputeTerms, Hardware, JobRequirements, MarketParams,
};

/// One SOL in lamports.
pub const SOL: u64 = 1_000_000_000;

/// The economics of a default market: a 2.5 % fee, 1 SOL minimum stake, collateral equal to the
/// reward, half of it slashed for a missed deadline or a lost dispute (10 % of that to the
/// crank), a 5 % abandon penalty, a one-hour challenge window, a day to rule on a dispute and
/// claims of up to a day; disputes settled by re-execution as [`dispute_terms`] says.
pub fn market_params() -> MarketParams {
    MarketParams {
        fee_bps: 250,
        min_stake: SOL,
        collateral_bps: 10_000,
        slash_bps: 5_000,
        abandon_penalty_bps: 500,
        crank_bounty_bps: 1_000,
        challenge_window_s: 3_600,
        resolve_window_s: 86_400,
        max_claim_s: 86_400,
        dispute: dispute_terms(),
    }
}

/// A dispute posts a bond of 10 % of the reward; each of the three verifiers of the majority
/// earns 3 % of the reward (paid by the losing side), and a verifier that fails its seat
/// forfeits as much; a result the verifiers find a fraud loses its whole collateral (the
/// reward's worth, more than cheating could gain); verifiers have an hour to commit and an
/// hour to reveal.
pub fn dispute_terms() -> DisputeTerms {
    DisputeTerms {
        bond_bps: 1_000,
        verifier_fee_bps: 300,
        fraud_slash_bps: 10_000,
        verify_window_s: 3_600,
    }
}

/// Any device, CPU included.
pub fn any_device() -> JobRequirements {
    JobRequirements {
        device: DeviceRequirement::Any,
        min_vram_mib: 0,
    }
}

/// A CPU worker's hardware record.
pub fn cpu(label: &str) -> Hardware {
    Hardware {
        device: DeviceKind::Cpu,
        vram_mib: 0,
        label: label.into(),
    }
}
