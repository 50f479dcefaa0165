//! Amounts, durations and times the way people write and read them: SOL with up to nine
//! decimals (exact, no floating point), `90m` / `2h`, local times with "in 12 min".

use anyhow::{bail, Context, Result};
use chrono::{Local, TimeZone};

pub const LAMPORTS_PER_SOL: u64 = 1_000_000_000;

/// What a market's amounts are counted in, as people read and type them: SOL (9 decimals,
/// raw units are lamports) or a token mint's units (its decimals; raw units are base units).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unit {
    pub decimals: u8,
    /// `None` for SOL.
    pub mint: Option<tensorgrid_client::anchor_lang::prelude::Pubkey>,
}

impl Unit {
    pub const SOL: Unit = Unit {
        decimals: 9,
        mint: None,
    };

    /// The unit of a market as its account records it.
    pub fn of(market: &tensorgrid_client::state::Market) -> Self {
        if market.mint == Default::default() {
            Unit::SOL
        } else {
            Unit {
                decimals: market.decimals,
                mint: Some(market.mint),
            }
        }
    }

    /// What the amounts are called: `SOL`, or `tokens` (with the mint in `describe`).
    pub fn name(&self) -> &'static str {
        if self.mint.is_none() {
            "SOL"
        } else {
            "tokens"
        }
    }

    /// An amount as typed: whole units with up to `decimals` decimals (`12.5`), or raw units
    /// (lamports, base units) when `raw` is set.
    pub fn parse(&self, text: &str, raw: bool) -> Result<u64> {
        if self.mint.is_none() {
            return parse_amount(text, raw);
        }
        let t = text.trim();
        if raw {
            return t
                .parse::<u64>()
                .with_context(|| format!("{t:?} is not a whole number of base units"));
        }
        parse_decimal(t, self.decimals)
    }

    /// An amount as people read it, trailing zeros trimmed, with its unit: `0.5 SOL`,
    /// `12.5 tokens`.
    pub fn show(&self, amount: u64) -> String {
        format!("{} {}", decimal(amount, self.decimals), self.name())
    }
}

static MARKET_UNIT: std::sync::OnceLock<Unit> = std::sync::OnceLock::new();

/// Shows this invocation's market amounts (rewards, stakes, bonds, fees, events) in `unit`: set
/// when the command first reads its market, or a job's; SOL until then. One invocation works
/// one market, so the first unit set stays.
pub fn use_market_unit(unit: Unit) {
    let _ = MARKET_UNIT.set(unit);
}

/// An amount of the market's unit as people read it (`12.5 tokens`, `0.5 SOL`).
pub fn money(amount: u64) -> String {
    MARKET_UNIT.get().copied().unwrap_or(Unit::SOL).show(amount)
}

/// `12.5` with `decimals` decimals → base units, exactly; too many decimals, a sign or an
/// overflow is an error.
pub fn parse_decimal(text: &str, decimals: u8) -> Result<u64> {
    tensorgrid_client::currency::parse_units(text, decimals).map_err(|e| match e {
        tensorgrid_client::currency::AmountError::NotAnAmount(_) => {
            anyhow::anyhow!("{text:?} is not an amount (e.g. 12.5, or raw units)")
        }
        tensorgrid_client::currency::AmountError::TooManyDecimals { .. } => {
            anyhow::anyhow!("{text:?}: this mint has {decimals} decimals")
        }
        e => anyhow::anyhow!(e),
    })
}

/// Base units as a decimal with `decimals` decimals, trailing zeros trimmed.
pub fn decimal(amount: u64, decimals: u8) -> String {
    tensorgrid_client::currency::format_units(amount, decimals)
}

/// An amount as typed: SOL (`0.5`), or lamports when `lamports` is set (`500000000`).
pub fn parse_amount(text: &str, lamports: bool) -> Result<u64> {
    let t = text.trim();
    if lamports {
        return t
            .parse::<u64>()
            .with_context(|| format!("{t:?} is not a whole number of lamports"));
    }
    parse_sol(t)
}

/// `1`, `0.5`, `.25`, `0.000000001` SOL → lamports, exactly; more than nine decimals, a sign
/// or an overflow is an error.
pub fn parse_sol(text: &str) -> Result<u64> {
    let bad = || anyhow::anyhow!("{text:?} is not an amount of SOL (e.g. 0.5, or use --lamports)");
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if (whole.is_empty() && frac.is_empty())
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    if frac.len() > 9 {
        bail!("{text:?}: SOL has at most 9 decimals (1 lamport = 0.000000001 SOL)");
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let frac_lamports: u64 = format!("{frac:0<9}").parse().map_err(|_| bad())?;
    whole
        .checked_mul(LAMPORTS_PER_SOL)
        .and_then(|w| w.checked_add(frac_lamports))
        .ok_or_else(|| anyhow::anyhow!("{text:?} SOL is more lamports than exist"))
}

/// Lamports as SOL with the trailing zeros trimmed: `0.5`, `1`, `0.000005`.
pub fn sol(lamports: u64) -> String {
    let whole = lamports / LAMPORTS_PER_SOL;
    let frac = lamports % LAMPORTS_PER_SOL;
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:09}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// `90m`, `2h`, `1h30m`, `45s`, or plain seconds → seconds.
pub fn parse_duration(text: &str) -> Result<i64> {
    let t = text.trim();
    let secs = match t.parse::<u64>() {
        Ok(s) => s,
        Err(_) => humantime::parse_duration(t)
            .map_err(|e| anyhow::anyhow!("{t:?} is not a duration like 90m, 2h or 3600: {e}"))?
            .as_secs(),
    };
    if secs == 0 {
        bail!("{t:?}: a duration must be at least one second");
    }
    i64::try_from(secs).context("duration too long")
}

/// Seconds as `1d 2h`, `1h 30m`, `45s` (the two largest units).
pub fn duration(secs: i64) -> String {
    let s = secs.unsigned_abs();
    let parts = [
        (s / 86_400, "d"),
        (s % 86_400 / 3_600, "h"),
        (s % 3_600 / 60, "m"),
        (s % 60, "s"),
    ];
    let text: Vec<String> = parts
        .iter()
        .skip_while(|(n, _)| *n == 0)
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| format!("{n}{u}"))
        .collect();
    if text.is_empty() {
        "0s".into()
    } else {
        text.join(" ")
    }
}

/// A unix time as a local time with how far it is from `now` (chain time): `2026-11-28
/// 10:32:05 +01:00 (in 12 min)`.
pub fn when(unix: i64, now: i64) -> String {
    if unix == 0 {
        return "-".into();
    }
    let local = Local
        .timestamp_opt(unix, 0)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S %:z").to_string())
        .unwrap_or_else(|| unix.to_string());
    // Times come from the chain (or a node): saturating, never a panic on hostile values.
    format!("{local} ({})", relative(unix.saturating_sub(now)))
}

/// `in 12 min`, `3 h ago`, `now`.
pub fn relative(delta: i64) -> String {
    let a = delta.unsigned_abs();
    let span = if a < 60 {
        format!("{a} s")
    } else if a < 3_600 {
        format!("{} min", a / 60)
    } else if a < 86_400 {
        format!("{} h {} min", a / 3_600, (a % 3_600) / 60)
    } else {
        format!("{} d {} h", a / 86_400, (a % 86_400) / 3_600)
    };
    match delta {
        0 => "now".into(),
        d if d > 0 => format!("in {span}"),
        _ => format!("{span} ago"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_times_do_not_panic() {
        for (a, b) in [
            (i64::MIN, i64::MAX),
            (i64::MAX, i64::MIN),
            (i64::MIN, 1),
            (1, i64::MIN),
        ] {
            assert!(!when(a, b).is_empty());
            assert!(!relative(a.saturating_sub(b)).is_empty());
        }
    }

    #[test]
    fn token_amounts_are_exact_in_their_decimals() {
        let usdc = Unit {
            decimals: 6,
            mint: Some(Default::default()),
        };
        assert_eq!(usdc.parse("12.5", false).unwrap(), 12_500_000);
        assert_eq!(usdc.parse("0.000001", false).unwrap(), 1);
        assert!(usdc.parse("0.0000001", false).is_err(), "7 decimals");
        assert_eq!(usdc.parse("12500000", true).unwrap(), 12_500_000);
        assert!(usdc.parse("-1", false).is_err());
        assert!(usdc.parse("18446744073710", false).is_err(), "overflow");
        assert_eq!(usdc.show(12_500_000), "12.5 tokens");
        assert_eq!(decimal(u64::MAX, 0), u64::MAX.to_string());
        assert_eq!(parse_decimal("7", 0).unwrap(), 7);
        assert_eq!(parse_decimal("7.0", 0).unwrap(), 7);
        assert!(parse_decimal("7.5", 0).is_err());
        assert_eq!(decimal(5, 20), "0.00000000000000000005");
        assert_eq!(parse_decimal("0.00000000000000000005", 20).unwrap(), 5);
        assert!(
            parse_decimal("1", 20).is_err(),
            "10^20 base units do not fit"
        );
        assert_eq!(parse_decimal("0", 30).unwrap(), 0);
        assert_eq!(decimal(0, 6), "0");
        assert_eq!(decimal(1_000_000, 6), "1");
        assert_eq!(decimal(1, 9), "0.000000001");
        assert_eq!(Unit::SOL.show(500_000_000), "0.5 SOL");
        assert_eq!(Unit::SOL.parse("0.5", false).unwrap(), 500_000_000);
    }

    #[test]
    fn sol_amounts_are_exact() {
        assert_eq!(parse_sol("0.5").unwrap(), 500_000_000);
        assert_eq!(parse_sol("1").unwrap(), LAMPORTS_PER_SOL);
        assert_eq!(parse_sol(".25").unwrap(), 250_000_000);
        assert_eq!(parse_sol("0.000000001").unwrap(), 1);
        assert_eq!(parse_sol("18446744073.709551615").unwrap(), u64::MAX);
        for bad in [
            "",
            ".",
            "-1",
            "1e9",
            "0.0000000001",
            "18446744074",
            "1,5",
            " 1",
        ] {
            assert!(parse_sol(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_amount("42", true).unwrap(), 42);
        assert!(parse_amount("0.5", true).is_err());
        for l in [0, 1, 5_000, 500_000_000, 1_234_567_891, u64::MAX] {
            assert_eq!(parse_sol(&sol(l)).unwrap(), l, "{}", sol(l));
        }
        assert_eq!(sol(500_000_000), "0.5");
        assert_eq!(sol(2 * LAMPORTS_PER_SOL), "2");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90m").unwrap(), 5_400);
        assert_eq!(parse_duration("2h").unwrap(), 7_200);
        assert_eq!(parse_duration("1h 30m").unwrap(), 5_400);
        assert_eq!(parse_duration("3600").unwrap(), 3_600);
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("soon").is_err());
        assert_eq!(relative(720), "in 12 min");
        assert_eq!(duration(86_400), "1d");
        assert_eq!(duration(5_400), "1h 30m");
        assert_eq!(duration(90_061), "1d 1h");
        assert_eq!(duration(45), "45s");
        assert_eq!(relative(-7_260), "2 h 1 min ago");
        assert_eq!(relative(0), "now");
    }
}
