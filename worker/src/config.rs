//! The worker's settings: a TOML file (see `worker.toml` at the repository root, annotated),
//! each field overridable by an environment variable `TENSORGRID_WORKER_<FIELD>` and by a
//! command-line flag, in that order of precedence (flag > env > file > default). Everything
//! wrong is reported at once.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use serde::Deserialize;
use tensorgrid_client::anchor_lang::prelude::Pubkey;

use crate::money::AmountsText;

/// Prefix of the environment variables that override file settings.
pub const ENV_PREFIX: &str = "TENSORGRID_WORKER_";

/// Where the status and metrics port listens unless told otherwise: this machine only.
pub const DEFAULT_STATUS_LISTEN: &str = "127.0.0.1:8990";

/// As written in the file (every field optional; defaults fill the rest).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub rpc_urls: Option<Vec<String>>,
    pub ws_url: Option<String>,
    pub keypair: Option<PathBuf>,
    pub commitment: Option<String>,
    pub market: Option<String>,
    pub device: Option<String>,
    pub work_dir: Option<PathBuf>,
    pub store: Option<String>,
    pub stake_sol: Option<String>,
    pub min_reward_per_hour_sol: Option<String>,
    pub max_dataset_bytes: Option<u64>,
    pub max_concurrent_jobs: Option<u32>,
    pub poll_interval: Option<String>,
    pub priority_fee_cap: Option<u64>,
    pub log_format: Option<String>,
    pub allow_http: Option<bool>,
    pub verify_disputes: Option<bool>,
    pub verifier_pledge_sol: Option<String>,
    pub status_listen: Option<String>,
    pub max_collateral_bps: Option<u32>,
    pub max_slash_bps: Option<u32>,
    pub max_abandon_penalty_bps: Option<u32>,
    pub max_challenge_window: Option<String>,
    pub min_resolve_window: Option<String>,
    pub max_resolve_window: Option<String>,
    pub max_verify_window: Option<String>,
    pub max_stake_topup_per_day_sol: Option<String>,
    pub max_job_memory_mib: Option<u64>,
    pub min_free_disk_mib: Option<u64>,
    pub max_parallel_checks: Option<u32>,
    /// Amounts for markets priced in a mint, by the mint's address, in the mint's units.
    pub mint: Option<BTreeMap<String, AmountsText>>,
    /// The command line's `--stake` / `--min-reward-per-hour`: in the unit of the market the
    /// daemon works (SOL, or its mint's tokens), over the file's.
    #[serde(skip)]
    pub market_unit_flags: AmountsText,
}

/// The money terms this worker accepts a job under: what its operator is willing to sign.
/// A job outside them is refused with the reason, before anything is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermsPolicy {
    /// Most collateral a claim may lock, in bps of the reward (10 000 = 1 × the reward).
    pub max_collateral_bps: u32,
    /// Largest share of the collateral a missed deadline or a lost dispute may take, in bps.
    pub max_slash_bps: u32,
    /// Largest share of the collateral giving a job back may cost, in bps.
    pub max_abandon_penalty_bps: u32,
    /// Longest the poster may take to dispute (the stake stays locked, the pay waits).
    pub max_challenge_window_s: i64,
    /// Least time the arbiter must have to rule on a dispute the verifiers could not settle,
    /// so it can rule for the worker (the default after it, the result standing, pays the
    /// worker too, but only once the window is over).
    pub min_resolve_window_s: i64,
    /// Longest an escalated dispute may keep the stake locked.
    pub max_resolve_window_s: i64,
    /// Longest the verifiers of a dispute may take to commit, and again to reveal, while the
    /// stake stays locked.
    pub max_verify_window_s: i64,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// For a person at a terminal.
    Human,
    /// One JSON object per line, for a log collector.
    Json,
}

/// The settings after resolution and validation.
#[derive(Debug, Clone)]
pub struct Config {
    pub rpc_urls: Vec<String>,
    pub ws_url: Option<String>,
    pub keypair: PathBuf,
    /// processed, confirmed or finalized: how settled a read must be.
    pub commitment: String,
    pub market: Option<String>,
    pub device: String,
    pub work_dir: PathBuf,
    pub store: String,
    /// Lamports staked when registering.
    pub stake: u64,
    /// Lamports per estimated hour of training below which a job is not taken.
    pub min_reward_per_hour: u64,
    pub max_dataset_bytes: u64,
    pub max_concurrent_jobs: u32,
    pub poll_interval: Duration,
    /// µlamports per compute unit at most.
    pub priority_fee_cap: u64,
    pub log_format: LogFormat,
    pub allow_http: bool,
    /// Serve as a dispute verifier: join the market's verifier pool with the stake, re-run
    /// the disputed segments this worker is drawn for, commit and reveal, earn the fee.
    pub verify_disputes: bool,
    /// Lamports of the stake pledged to the verifier pool: the weight in draws, out of which
    /// seats' forfeits come; claims use only the stake beyond it.
    pub verifier_pledge: u64,
    /// `host:port` of the status and metrics port; `None`: not served.
    pub status_listen: Option<String>,
    /// The terms a job must be within to be claimed.
    pub terms: TermsPolicy,
    /// Most lamports the daemon moves from the operator's wallet into the stake in any 24 h
    /// (topping it up after penalties); past it, claims wait for the operator.
    pub max_stake_topup_per_day: u64,
    /// A cap on the memory one job may use, below what the device has (`None`: the device's).
    pub max_job_memory: Option<u64>,
    /// Disk space kept free beyond what a job needs; with less, claiming pauses.
    pub min_free_disk: u64,
    /// Jobs checked at once before claiming (downloads and rehearsals).
    pub max_parallel_checks: u32,
    /// The amounts for markets priced in a mint (its units, as written: converted with the
    /// mint's decimals once the market is read; see [`crate::money::Money::for_market`]).
    pub mints: BTreeMap<Pubkey, AmountsText>,
    /// `--stake` / `--min-reward-per-hour`, for a token market (a SOL market's are already in
    /// `stake` and `min_reward_per_hour`).
    pub market_unit_flags: AmountsText,
}

/// Every problem with the settings, listed.
#[derive(Debug, thiserror::Error)]
#[error("invalid worker configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigErrors(pub Vec<String>);

impl FileConfig {
    pub fn parse(text: &str) -> Result<Self, ConfigErrors> {
        toml::from_str(text)
            .map_err(|e| ConfigErrors(vec![e.to_string().trim().replace('\n', " ")]))
    }

    /// Overrides each field set in `env` (`TENSORGRID_WORKER_RPC_URLS=a,b`, …).
    pub fn apply_env(&mut self, env: &BTreeMap<String, String>, problems: &mut Vec<String>) {
        let get = |k: &str| {
            env.get(&format!("{ENV_PREFIX}{k}"))
                .filter(|v| !v.is_empty())
                .cloned()
        };
        // A variable set but empty is a mistake, not "unset": for the keypair, the endpoints and
        // the commitment, falling back to another value (the Solana CLI's wallet, its cluster)
        // would stake or send from something the operator did not name.
        for key in ["KEYPAIR", "RPC_URLS", "COMMITMENT", "WS_URL"] {
            let name = format!("{ENV_PREFIX}{key}");
            if env.get(&name).is_some_and(|v| v.trim().is_empty()) {
                problems.push(format!("{name} is set but empty: unset it or give a value"));
            }
        }
        if let Some(v) = get("RPC_URLS") {
            self.rpc_urls = Some(v.split(',').map(|s| s.trim().to_string()).collect());
            // The file's websocket belongs to the file's endpoints.
            self.ws_url = None;
        }
        macro_rules! string {
            ($field:ident, $key:literal) => {
                if let Some(v) = get($key) {
                    self.$field = Some(v.into());
                }
            };
        }
        string!(ws_url, "WS_URL");
        string!(keypair, "KEYPAIR");
        string!(commitment, "COMMITMENT");
        string!(market, "MARKET");
        string!(device, "DEVICE");
        string!(work_dir, "WORK_DIR");
        string!(store, "STORE");
        string!(stake_sol, "STAKE_SOL");
        string!(verifier_pledge_sol, "VERIFIER_PLEDGE_SOL");
        string!(min_reward_per_hour_sol, "MIN_REWARD_PER_HOUR_SOL");
        string!(poll_interval, "POLL_INTERVAL");
        string!(log_format, "LOG_FORMAT");
        if let Some(v) = env.get(&format!("{ENV_PREFIX}STATUS_LISTEN")) {
            // Set but empty: the port is turned off.
            self.status_listen = Some(v.clone());
        }
        macro_rules! number {
            ($field:ident, $key:literal) => {
                if let Some(v) = get($key) {
                    match v.parse() {
                        Ok(n) => self.$field = Some(n),
                        Err(_) => {
                            problems.push(format!("{ENV_PREFIX}{}={v:?} is not a number", $key))
                        }
                    }
                }
            };
        }
        number!(max_dataset_bytes, "MAX_DATASET_BYTES");
        number!(max_concurrent_jobs, "MAX_CONCURRENT_JOBS");
        number!(priority_fee_cap, "PRIORITY_FEE_CAP");
        number!(max_collateral_bps, "MAX_COLLATERAL_BPS");
        number!(max_slash_bps, "MAX_SLASH_BPS");
        number!(max_abandon_penalty_bps, "MAX_ABANDON_PENALTY_BPS");
        number!(max_job_memory_mib, "MAX_JOB_MEMORY_MIB");
        number!(min_free_disk_mib, "MIN_FREE_DISK_MIB");
        number!(max_parallel_checks, "MAX_PARALLEL_CHECKS");
        string!(max_challenge_window, "MAX_CHALLENGE_WINDOW");
        string!(min_resolve_window, "MIN_RESOLVE_WINDOW");
        string!(max_resolve_window, "MAX_RESOLVE_WINDOW");
        string!(max_verify_window, "MAX_VERIFY_WINDOW");
        string!(max_stake_topup_per_day_sol, "MAX_STAKE_TOPUP_PER_DAY_SOL");
        for (key, field) in [
            ("ALLOW_HTTP", &mut self.allow_http),
            ("VERIFY_DISPUTES", &mut self.verify_disputes),
        ] {
            if let Some(v) = get(key) {
                match v.as_str() {
                    "1" | "true" | "yes" => *field = Some(true),
                    "0" | "false" | "no" => *field = Some(false),
                    _ => problems.push(format!("{ENV_PREFIX}{key}={v:?} is not true or false")),
                }
            }
        }
    }

    /// Fields not set here from the Solana CLI's `config.yml` (its RPC URL, websocket URL,
    /// keypair and commitment), as `solana` itself would use them.
    pub fn fill_from_solana_config(
        &mut self,
        solana: &tensorgrid_client::rpc::solana_config::SolanaConfig,
    ) {
        if self.rpc_urls.is_none() && !solana.json_rpc_url.is_empty() {
            self.rpc_urls = Some(vec![solana.json_rpc_url.clone()]);
            if self.ws_url.is_none() && !solana.websocket_url.is_empty() {
                self.ws_url = Some(solana.websocket_url.clone());
            }
        }
        if self.keypair.is_none() && !solana.keypair_path.is_empty() {
            self.keypair = Some(solana.keypair_path.clone().into());
        }
        if self.commitment.is_none() && !solana.commitment.is_empty() {
            self.commitment = Some(solana.commitment.clone());
        }
    }

    /// Fills defaults (relative to `home`) and checks every field, for running the daemon.
    pub fn resolve(self, home: &std::path::Path) -> Result<Config, ConfigErrors> {
        self.resolve_for(home, true)
    }

    /// As [`resolve`](Self::resolve); `publishing: false` for commands that only read (the
    /// status), which need no store.
    pub fn resolve_for(
        self,
        home: &std::path::Path,
        publishing: bool,
    ) -> Result<Config, ConfigErrors> {
        let mut problems = Vec::new();
        // The Solana CLI's monikers are accepted too.
        let rpc_urls: Vec<String> = self
            .rpc_urls
            .unwrap_or_else(|| vec!["http://127.0.0.1:8899".into()])
            .into_iter()
            .map(|u| match u.as_str() {
                // 127.0.0.1 rather than the Solana CLI's `localhost`: a local validator
                // listens on IPv4, and `localhost` may resolve to ::1 first.
                "l" | "localhost" => "http://127.0.0.1:8899".into(),
                _ => tensorgrid_client::rpc::solana_config::normalize_moniker(&u),
            })
            .collect();
        if rpc_urls.is_empty() {
            problems.push("rpc_urls: at least one RPC URL".into());
        }
        for u in &rpc_urls {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                problems.push(format!("rpc_urls: {u:?} is not an http(s) URL"));
            }
        }
        let ws_url = self.ws_url.filter(|w| !w.is_empty());
        if let Some(w) = &ws_url {
            if !(w.starts_with("ws://") || w.starts_with("wss://")) {
                problems.push(format!("ws_url: {w:?} is not a ws(s) URL"));
            }
        }
        let device = self.device.unwrap_or_else(|| "auto".into());
        if !matches!(device.as_str(), "auto" | "cpu" | "cuda" | "metal") {
            problems.push(format!(
                "device: {device:?} is not auto, cpu, cuda or metal"
            ));
        }
        let commitment = self.commitment.unwrap_or_else(|| "confirmed".into());
        if !matches!(commitment.as_str(), "processed" | "confirmed" | "finalized") {
            problems.push(format!(
                "commitment: {commitment:?} is not processed, confirmed or finalized"
            ));
        }
        let store = self.store.unwrap_or_default();
        if store.is_empty() && !publishing {
            // Commands that only read need no store.
        } else if store.is_empty() {
            problems
                .push("store: where results are published (s3://bucket/prefix) is required".into());
        } else if store.starts_with("http://") || store.starts_with("https://") {
            problems.push(format!(
                "store: {store:?} is read-only; publish to s3://bucket/prefix"
            ));
        }
        let mut sol = |field: &str, v: Option<String>, default: &str| -> u64 {
            let v = v.unwrap_or_else(|| default.into());
            match parse_sol(&v) {
                Some(l) => l,
                None => {
                    problems.push(format!("{field}: {v:?} is not an amount of SOL"));
                    0
                }
            }
        };
        let stake = sol("stake_sol", self.stake_sol, "1");
        let verifier_pledge = sol("verifier_pledge_sol", self.verifier_pledge_sol, "1");
        let min_reward_per_hour = sol("min_reward_per_hour_sol", self.min_reward_per_hour_sol, "0");
        let max_stake_topup_per_day = sol(
            "max_stake_topup_per_day_sol",
            self.max_stake_topup_per_day_sol,
            "1",
        );
        let max_concurrent_jobs = self.max_concurrent_jobs.unwrap_or(1);
        if max_concurrent_jobs != 1 {
            problems.push(format!(
                "max_concurrent_jobs: {max_concurrent_jobs}; a worker account holds one job at a time, so it must be 1"
            ));
        }
        let max_dataset_bytes = self.max_dataset_bytes.unwrap_or(1 << 30);
        if max_dataset_bytes == 0 {
            problems.push("max_dataset_bytes: must be positive".into());
        }
        let poll = self.poll_interval.unwrap_or_else(|| "10s".into());
        let poll_interval = match humantime_secs(&poll) {
            Some(d) if d >= Duration::from_millis(100) => d,
            _ => {
                problems.push(format!(
                    "poll_interval: {poll:?} is not a duration of at least 100ms (e.g. 10s)"
                ));
                Duration::from_secs(10)
            }
        };
        let log_format = match self.log_format.as_deref().unwrap_or("human") {
            "human" => LogFormat::Human,
            "json" => LogFormat::Json,
            other => {
                problems.push(format!("log_format: {other:?} is not human or json"));
                LogFormat::Human
            }
        };
        let status_listen = match self.status_listen.as_deref() {
            None => Some(DEFAULT_STATUS_LISTEN.to_string()),
            Some("") => None,
            Some(a) => match a.parse::<std::net::SocketAddr>() {
                Ok(_) => Some(a.to_string()),
                Err(_) => {
                    problems.push(format!(
                        "status_listen: {a:?} is not host:port (e.g. 127.0.0.1:8990), or empty for none"
                    ));
                    None
                }
            },
        };
        let terms = resolve_terms(
            TermsFile {
                max_collateral_bps: self.max_collateral_bps,
                max_slash_bps: self.max_slash_bps,
                max_abandon_penalty_bps: self.max_abandon_penalty_bps,
                max_challenge_window: self.max_challenge_window,
                min_resolve_window: self.min_resolve_window,
                max_resolve_window: self.max_resolve_window,
                max_verify_window: self.max_verify_window,
            },
            &mut problems,
        );
        let max_parallel_checks = self.max_parallel_checks.unwrap_or(4);
        if !(1..=64).contains(&max_parallel_checks) {
            problems.push(format!(
                "max_parallel_checks: {max_parallel_checks}; 1 to 64"
            ));
        }
        for (flag, v) in [
            ("--stake", &self.market_unit_flags.stake),
            (
                "--min-reward-per-hour",
                &self.market_unit_flags.min_reward_per_hour,
            ),
        ] {
            if let Some(Err(e)) = v
                .as_deref()
                .map(|v| tensorgrid_client::currency::check_amount_text(v.trim()))
            {
                problems.push(format!("{flag}: {e}"));
            }
        }
        let mut mints = BTreeMap::new();
        for (key, amounts) in self.mint.unwrap_or_default() {
            match key.parse::<Pubkey>() {
                Ok(mint) => {
                    amounts.check(&format!("mint.{key}."), &mut problems);
                    mints.insert(mint, amounts);
                }
                Err(_) => problems.push(format!("mint.{key}: not a mint address")),
            }
        }
        if self.max_job_memory_mib == Some(0) {
            problems.push("max_job_memory_mib: must be positive (or left out)".into());
        }
        let expand = |p: PathBuf| match p.strip_prefix("~") {
            Ok(rest) => home.join(rest),
            Err(_) => p,
        };
        if !problems.is_empty() {
            return Err(ConfigErrors(problems));
        }
        Ok(Config {
            rpc_urls,
            ws_url,
            keypair: expand(
                self.keypair
                    .unwrap_or_else(|| home.join(".config/solana/id.json")),
            ),
            commitment,
            market: self.market.filter(|m| !m.is_empty()),
            device,
            work_dir: expand(
                self.work_dir
                    .unwrap_or_else(|| home.join(".tensorgrid/worker")),
            ),
            store,
            stake,
            min_reward_per_hour,
            max_dataset_bytes,
            max_concurrent_jobs,
            poll_interval,
            priority_fee_cap: self.priority_fee_cap.unwrap_or(100_000),
            log_format,
            allow_http: self.allow_http.unwrap_or(false),
            verify_disputes: self.verify_disputes.unwrap_or(false),
            verifier_pledge,
            status_listen,
            terms,
            max_stake_topup_per_day,
            max_job_memory: self.max_job_memory_mib.map(|m| m.saturating_mul(1 << 20)),
            min_free_disk: self
                .min_free_disk_mib
                .unwrap_or(1_024)
                .saturating_mul(1 << 20),
            max_parallel_checks,
            mints,
            market_unit_flags: self.market_unit_flags,
        })
    }
}

/// The terms fields as written.
struct TermsFile {
    max_collateral_bps: Option<u32>,
    max_slash_bps: Option<u32>,
    max_abandon_penalty_bps: Option<u32>,
    max_challenge_window: Option<String>,
    min_resolve_window: Option<String>,
    max_resolve_window: Option<String>,
    max_verify_window: Option<String>,
}

/// The defaults are terms a provider can sign without reading each market: collateral up to
/// twice the reward, at most half of it slashed, at most a tenth of it for giving a job back,
/// a week at most for the poster to dispute and for a ruling, an hour at least for the
/// arbiter to rule, and a day at most for the verifiers to commit (and again to reveal).
fn resolve_terms(f: TermsFile, problems: &mut Vec<String>) -> TermsPolicy {
    let mut bps = |field: &str, v: Option<u32>, default: u32, max: u32| {
        let v = v.unwrap_or(default);
        if v > max {
            problems.push(format!("{field}: {v} is above {max}"));
        }
        v
    };
    let max_collateral_bps = bps("max_collateral_bps", f.max_collateral_bps, 20_000, 50_000);
    let max_slash_bps = bps("max_slash_bps", f.max_slash_bps, 5_000, 10_000);
    let max_abandon_penalty_bps = bps(
        "max_abandon_penalty_bps",
        f.max_abandon_penalty_bps,
        1_000,
        10_000,
    );
    let mut secs = |field: &str, v: Option<String>, default: &str| {
        let v = v.unwrap_or_else(|| default.into());
        match humantime_secs(&v).and_then(|d| i64::try_from(d.as_secs()).ok()) {
            Some(s) => s,
            None => {
                problems.push(format!("{field}: {v:?} is not a duration (e.g. 1h, 7d)"));
                0
            }
        }
    };
    let max_challenge_window_s = secs("max_challenge_window", f.max_challenge_window, "7d");
    let min_resolve_window_s = secs("min_resolve_window", f.min_resolve_window, "1h");
    let max_resolve_window_s = secs("max_resolve_window", f.max_resolve_window, "7d");
    let max_verify_window_s = secs("max_verify_window", f.max_verify_window, "1d");
    if min_resolve_window_s > max_resolve_window_s {
        problems.push("min_resolve_window: longer than max_resolve_window".into());
    }
    TermsPolicy {
        max_collateral_bps,
        max_slash_bps,
        max_abandon_penalty_bps,
        max_challenge_window_s,
        min_resolve_window_s,
        max_resolve_window_s,
        max_verify_window_s,
    }
}

/// `10s`, `500ms`, `2m`, `1h`, `7d`.
fn humantime_secs(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3_600)?),
        "d" => Duration::from_secs(n.checked_mul(86_400)?),
        _ => return None,
    })
}

/// SOL as written (`1`, `0.5`) → lamports, exactly.
fn parse_sol(s: &str) -> Option<u64> {
    let (whole, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    if (whole.is_empty() && frac.is_empty())
        || frac.len() > 9
        || !whole
            .chars()
            .chain(frac.chars())
            .all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let w: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let f: u64 = format!("{frac:0<9}").parse().ok()?;
    w.checked_mul(1_000_000_000)?.checked_add(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_listed_at_once() {
        let file = FileConfig::parse(
            "rpc_urls = [\"ftp://x\"]\ndevice = \"tpu\"\nstake_sol = \"lots\"\nmax_concurrent_jobs = 4\npoll_interval = \"soon\"\nlog_format = \"xml\"\n",
        )
        .unwrap();
        let ConfigErrors(problems) = file.resolve(std::path::Path::new("/home/p")).unwrap_err();
        for want in [
            "rpc_urls",
            "device",
            "store",
            "stake_sol",
            "max_concurrent_jobs",
            "poll_interval",
            "log_format",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(want)),
                "{want} missing from {problems:#?}"
            );
        }
        assert!(FileConfig::parse("no_such_field = 1").is_err());
    }

    #[test]
    fn env_overrides_the_file_and_defaults_fill_the_rest() {
        let mut file = FileConfig::parse(
            "store = \"s3://b/p\"\nrpc_urls = [\"http://a:8899\"]\nstake_sol = \"2\"\n",
        )
        .unwrap();
        let env = BTreeMap::from([
            (
                format!("{ENV_PREFIX}RPC_URLS"),
                "https://x, https://y".to_string(),
            ),
            (format!("{ENV_PREFIX}MAX_DATASET_BYTES"), "1000".to_string()),
            (format!("{ENV_PREFIX}ALLOW_HTTP"), "true".to_string()),
        ]);
        let mut problems = Vec::new();
        file.apply_env(&env, &mut problems);
        assert!(problems.is_empty());
        let c = file.resolve(std::path::Path::new("/home/p")).unwrap();
        assert_eq!(c.rpc_urls, vec!["https://x", "https://y"]);
        let mut monikers =
            FileConfig::parse("store = \"s3://b\"\nrpc_urls = [\"d\", \"l\"]").unwrap();
        monikers.apply_env(&BTreeMap::new(), &mut Vec::new());
        assert_eq!(
            monikers
                .resolve(std::path::Path::new("/h"))
                .unwrap()
                .rpc_urls,
            vec!["https://api.devnet.solana.com", "http://127.0.0.1:8899"]
        );
        assert_eq!(c.max_dataset_bytes, 1000);
        assert_eq!(c.stake, 2_000_000_000);
        assert!(c.allow_http);
        assert_eq!(c.keypair, PathBuf::from("/home/p/.config/solana/id.json"));
        assert_eq!(c.work_dir, PathBuf::from("/home/p/.tensorgrid/worker"));
        assert_eq!(c.poll_interval, Duration::from_secs(10));
        assert_eq!(c.max_concurrent_jobs, 1);

        let mut bad = FileConfig::default();
        let env = BTreeMap::from([(format!("{ENV_PREFIX}PRIORITY_FEE_CAP"), "high".to_string())]);
        let mut problems = Vec::new();
        bad.apply_env(&env, &mut problems);
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../worker.toml"))
            .unwrap();
        FileConfig::parse(&text)
            .unwrap()
            .resolve(std::path::Path::new("/home/p"))
            .unwrap();
    }
}
