//! The amounts the daemon stakes, pledges, tops up and asks for, in the unit of the market it
//! works: SOL (the `*_sol` settings) or a mint's tokens (the `[mint.<address>]` table of
//! `worker.toml`, written in the mint's units: `stake = "25"` is 25 USDC). A setting for one
//! unit is never read as another: 25 USDC of stake never becomes 25 SOL.

use tensorgrid_client::{
    anchor_lang::prelude::Pubkey,
    currency::{check_amount_text, format_units, parse_units},
    state::Market,
    Currency,
};

/// The amount settings of one unit as written (`"12.5"`), each checked for its form when the
/// settings are read and converted once the market's decimals are known.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmountsText {
    /// Staked when registering (required for a mint: no default fits every token's price).
    pub stake: Option<String>,
    /// Per estimated hour of training, below which a job is not taken [default: 0].
    pub min_reward_per_hour: Option<String>,
    /// Of the stake, pledged to the verifier pool when serving disputes [default: the stake].
    pub verifier_pledge: Option<String>,
    /// Most moved from the operator's token account into the stake in any 24 h
    /// [default: the stake].
    pub max_stake_topup_per_day: Option<String>,
}

impl AmountsText {
    /// Problems with the form of each amount set (`where_` names the table or flag).
    pub fn check(&self, where_: &str, problems: &mut Vec<String>) {
        for (name, v) in self.fields() {
            if let Some(v) = v {
                if let Err(e) = check_amount_text(v.trim()) {
                    problems.push(format!("{where_}{name}: {e}"));
                }
            }
        }
    }

    fn fields(&self) -> [(&'static str, &Option<String>); 4] {
        [
            ("stake", &self.stake),
            ("min_reward_per_hour", &self.min_reward_per_hour),
            ("verifier_pledge", &self.verifier_pledge),
            ("max_stake_topup_per_day", &self.max_stake_topup_per_day),
        ]
    }
}

/// What a market's amounts are counted in, as logs and the status show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    pub currency: Currency,
    pub decimals: u8,
}

impl Unit {
    pub const SOL: Unit = Unit {
        currency: Currency::Sol,
        decimals: 9,
    };

    /// The unit of a market as its account records it.
    pub fn of(market: &Market) -> Self {
        match Currency::of(market) {
            Currency::Sol => Unit::SOL,
            currency => Unit {
                currency,
                decimals: market.decimals,
            },
        }
    }

    /// `SOL`, or `tokens` (the mint has no symbol on chain without metadata).
    pub fn name(&self) -> &'static str {
        match self.currency {
            Currency::Sol => "SOL",
            Currency::Token { .. } => "tokens",
        }
    }

    /// `0.5 SOL`, `12.5 tokens`.
    pub fn show(&self, amount: u64) -> String {
        format!("{} {}", format_units(amount, self.decimals), self.name())
    }
}

/// The daemon's amounts in the market's base units (lamports in a SOL market).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    pub unit: Unit,
    pub stake: u64,
    pub min_reward_per_hour: u64,
    pub verifier_pledge: u64,
    pub max_stake_topup_per_day: u64,
}

impl Money {
    /// The SOL settings (already lamports).
    pub fn sol(config: &crate::Config) -> Self {
        Money {
            unit: Unit::SOL,
            stake: config.stake,
            min_reward_per_hour: config.min_reward_per_hour,
            verifier_pledge: config.verifier_pledge,
            max_stake_topup_per_day: config.max_stake_topup_per_day,
        }
    }

    /// The settings for `market` (at `address`): the SOL ones, or its mint's table; the
    /// command line's `--stake` / `--min-reward-per-hour` over either, in the market's unit.
    /// A token market without a stake set is refused (the daemon does not guess what a token
    /// is worth), and so is one without a pay floor for its mint when a SOL floor is set (the
    /// operator asked for one).
    pub fn for_market(
        config: &crate::Config,
        address: &Pubkey,
        market: &Market,
    ) -> Result<Self, String> {
        let unit = Unit::of(market);
        let flags = &config.market_unit_flags;
        let flag = |name: &str, v: &Option<String>| {
            v.as_deref()
                .map(|v| {
                    parse_units(v.trim(), unit.decimals).map_err(|e| {
                        format!("--{name}: {e} (in the market's unit, {})", unit.name())
                    })
                })
                .transpose()
        };
        let flag_stake = flag("stake", &flags.stake)?;
        let flag_floor = flag("min-reward-per-hour", &flags.min_reward_per_hour)?;
        let Some(mint) = unit.currency.mint() else {
            let sol = Money::sol(config);
            return Ok(Money {
                stake: flag_stake.unwrap_or(sol.stake),
                min_reward_per_hour: flag_floor.unwrap_or(sol.min_reward_per_hour),
                ..sol
            });
        };
        let table = config.mints.get(&mint).cloned().unwrap_or_default();
        let amount = |name: &str, v: &str| {
            parse_units(v.trim(), unit.decimals).map_err(|e| format!("mint.{mint}.{name}: {e}"))
        };
        let stake = match (flag_stake, &table.stake) {
            (Some(s), _) => s,
            (None, Some(v)) => amount("stake", v)?,
            (None, None) => {
                return Err(format!(
                    "market {address} is priced in the token mint {mint} ({} decimals): set the worker's amounts in its units under [mint.{mint}] in worker.toml (stake = \"…\", min_reward_per_hour = \"…\"), or pass --stake",
                    unit.decimals
                ))
            }
        };
        let min_reward_per_hour = match (flag_floor, &table.min_reward_per_hour) {
            (Some(f), _) => f,
            (None, Some(v)) => amount("min_reward_per_hour", v)?,
            (None, None) if config.min_reward_per_hour > 0 => {
                return Err(format!(
                    "min_reward_per_hour_sol is set ({}), but market {address} is priced in the token mint {mint}: its pay floor is mint.{mint}.min_reward_per_hour, in the mint's units (or --min-reward-per-hour); set it (\"0\" for none)",
                    Unit::SOL.show(config.min_reward_per_hour)
                ))
            }
            (None, None) => 0,
        };
        let or_stake = |name: &str, v: &Option<String>| match v {
            Some(v) => amount(name, v),
            None => Ok(stake),
        };
        Ok(Money {
            unit,
            stake,
            min_reward_per_hour,
            verifier_pledge: or_stake("verifier_pledge", &table.verifier_pledge)?,
            max_stake_topup_per_day: or_stake(
                "max_stake_topup_per_day",
                &table.max_stake_topup_per_day,
            )?,
        })
    }

    /// The setting that caps the day's top-ups, as the operator wrote it.
    pub fn topup_cap_field(&self) -> String {
        match self.unit.currency.mint() {
            None => "max_stake_topup_per_day_sol".into(),
            Some(m) => format!("mint.{m}.max_stake_topup_per_day"),
        }
    }

    /// The setting that names the stake, as the operator wrote it.
    pub fn stake_field(&self) -> String {
        match self.unit.currency.mint() {
            None => "stake_sol".into(),
            Some(m) => format!("mint.{m}.stake"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FileConfig;

    const MINT: &str = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v";

    fn market(mint: Option<Pubkey>, decimals: u8) -> Market {
        Market {
            authority: Pubkey::new_unique(),
            market_id: 0,
            params: tensorgrid_client::defaults::market_params(),
            fees_unclaimed: 0,
            fees_withdrawn: 0,
            jobs_posted: 0,
            paused: false,
            bump: 255,
            mint: mint.unwrap_or_default(),
            decimals,
            token_program: mint.map_or_else(Pubkey::default, |_| {
                tensorgrid_client::currency::TOKEN_PROGRAM_ID
            }),
            vault: Pubkey::default(),
        }
    }

    fn config(text: &str, flags: AmountsText) -> Result<crate::Config, Vec<String>> {
        let mut f = FileConfig::parse(&format!("store = \"s3://b\"\n{text}")).map_err(|e| e.0)?;
        f.market_unit_flags = flags;
        f.resolve(std::path::Path::new("/h")).map_err(|e| e.0)
    }

    fn usdc() -> (Pubkey, Market) {
        let mint: Pubkey = MINT.parse().unwrap();
        (mint, market(Some(mint), 6))
    }

    #[test]
    fn a_mints_amounts_are_in_its_units_with_the_stake_as_default() {
        let (_, m) = usdc();
        let c = config(
            &format!(
                "stake_sol = \"3\"\n[mint.{MINT}]\nstake = \"25\"\nmin_reward_per_hour = \"0.5\"\n"
            ),
            AmountsText::default(),
        )
        .unwrap();
        let money = Money::for_market(&c, &Pubkey::new_unique(), &m).unwrap();
        assert_eq!(money.stake, 25_000_000, "25 USDC, not 25 SOL");
        assert_eq!(money.min_reward_per_hour, 500_000);
        assert_eq!(money.verifier_pledge, 25_000_000);
        assert_eq!(money.max_stake_topup_per_day, 25_000_000);
        assert_eq!(money.unit.show(money.stake), "25 tokens");
        assert_eq!(
            money.topup_cap_field(),
            format!("mint.{MINT}.max_stake_topup_per_day")
        );
        // The same settings in a SOL market: the SOL ones, never the mint's.
        let sol = Money::for_market(&c, &Pubkey::new_unique(), &market(None, 0)).unwrap();
        assert_eq!(sol.stake, 3_000_000_000);
        assert_eq!(sol.unit, Unit::SOL);
    }

    #[test]
    fn a_token_market_without_a_stake_for_its_mint_is_refused_by_name() {
        let (_, m) = usdc();
        let c = config("stake_sol = \"3\"\n", AmountsText::default()).unwrap();
        let why = Money::for_market(&c, &Pubkey::new_unique(), &m).unwrap_err();
        assert!(why.contains(&format!("[mint.{MINT}]")), "{why}");
        // Another mint's table does not count.
        let other = Pubkey::new_unique();
        let c = config(
            &format!("[mint.{other}]\nstake = \"1\"\n"),
            AmountsText::default(),
        )
        .unwrap();
        assert!(Money::for_market(&c, &Pubkey::new_unique(), &m).is_err());
    }

    #[test]
    fn the_command_lines_amounts_are_in_the_markets_unit() {
        let (_, m) = usdc();
        let flags = AmountsText {
            stake: Some("7.5".into()),
            ..AmountsText::default()
        };
        let c = config(&format!("[mint.{MINT}]\nstake = \"25\"\n"), flags.clone()).unwrap();
        let money = Money::for_market(&c, &Pubkey::new_unique(), &m).unwrap();
        assert_eq!(money.stake, 7_500_000);
        // The flag alone is enough.
        let c = config("", flags).unwrap();
        assert_eq!(
            Money::for_market(&c, &Pubkey::new_unique(), &m)
                .unwrap()
                .stake,
            7_500_000
        );
    }

    /// The flags are read in the market's unit in a SOL market too (9 decimals), and named
    /// when wrong.
    #[test]
    fn the_flags_are_in_the_markets_unit_in_a_sol_market_too() {
        let flags = AmountsText {
            stake: Some("2.5".into()),
            min_reward_per_hour: Some("0.1".into()),
            ..AmountsText::default()
        };
        let c = config("stake_sol = \"3\"\n", flags).unwrap();
        let m = Money::for_market(&c, &Pubkey::new_unique(), &market(None, 0)).unwrap();
        assert_eq!(
            (m.stake, m.min_reward_per_hour),
            (2_500_000_000, 100_000_000)
        );
        // 1.0000001 is fine for an 18-decimal mint, too fine for USDC: named as the flag.
        let (_, usdc) = usdc();
        let fine = AmountsText {
            stake: Some("1.0000001".into()),
            ..AmountsText::default()
        };
        let c = config("", fine).unwrap();
        let why = Money::for_market(&c, &Pubkey::new_unique(), &usdc).unwrap_err();
        assert!(
            why.starts_with("--stake:") && why.contains("6 decimals"),
            "{why}"
        );
        let eighteen = market(Some(Pubkey::new_unique()), 18);
        assert_eq!(
            Money::for_market(&c, &Pubkey::new_unique(), &eighteen)
                .unwrap()
                .stake,
            1_000_000_100_000_000_000
        );
    }

    /// A SOL pay floor the operator set is not silently dropped in a token market.
    #[test]
    fn a_sol_pay_floor_without_the_mints_is_refused() {
        let (_, m) = usdc();
        let c = config(
            &format!("min_reward_per_hour_sol = \"0.5\"\n[mint.{MINT}]\nstake = \"25\"\n"),
            AmountsText::default(),
        )
        .unwrap();
        let why = Money::for_market(&c, &Pubkey::new_unique(), &m).unwrap_err();
        assert!(
            why.contains(&format!("mint.{MINT}.min_reward_per_hour")),
            "{why}"
        );
        let c = config(
            &format!("min_reward_per_hour_sol = \"0.5\"\n[mint.{MINT}]\nstake = \"25\"\nmin_reward_per_hour = \"0\"\n"),
            AmountsText::default(),
        )
        .unwrap();
        assert_eq!(
            Money::for_market(&c, &Pubkey::new_unique(), &m)
                .unwrap()
                .min_reward_per_hour,
            0
        );
    }

    #[test]
    fn amounts_finer_than_the_mint_or_badly_written_are_refused() {
        let (_, m) = usdc();
        let c = config(
            &format!("[mint.{MINT}]\nstake = \"1.0000001\"\n"),
            AmountsText::default(),
        )
        .unwrap();
        let why = Money::for_market(&c, &Pubkey::new_unique(), &m).unwrap_err();
        assert!(why.contains("stake") && why.contains("6 decimals"), "{why}");
        // The form is checked when the settings are read, every problem at once.
        let problems = config(
            &format!("[mint.{MINT}]\nstake = \"-1\"\nmin_reward_per_hour = \"1e3\"\n[mint.nope]\nstake = \"1\"\n"),
            AmountsText::default(),
        )
        .unwrap_err();
        for want in [
            format!("mint.{MINT}.stake"),
            format!("mint.{MINT}.min_reward_per_hour"),
            "mint.nope".to_string(),
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(&want)),
                "{want}: {problems:?}"
            );
        }
        assert!(
            FileConfig::parse(&format!("[mint.{MINT}]\nstake_sol = \"1\"\n")).is_err(),
            "a SOL setting in a mint's table is a mistake"
        );
    }
}
