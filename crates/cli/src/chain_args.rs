//! The chain options every chain command flattens in (`-u`, `-k`, `--commitment`,
//! `--program-id`, `--market`, `-C`), their resolution with the Solana CLI's config file, and
//! the context a command runs in.

use std::{
    io::{BufRead, IsTerminal, Write},
    path::PathBuf,
};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use solana_signer::Signer;
use tensorgrid_client::{
    anchor_lang::prelude::Pubkey,
    rpc::{ChainClient, ChainConfig, CommitmentLevel},
    state::Market,
};

use crate::{
    output::OutputFormat,
    solana_config::{self, Resolved, SolanaConfig},
};

#[derive(Args, Debug, Clone, Default)]
pub struct ChainArgs {
    /// RPC URL or moniker: mainnet-beta, devnet, testnet, localhost (m, d, t, l). Repeat (or
    /// separate with commas) for failover. Default: the Solana CLI config's json_rpc_url.
    #[arg(
        short = 'u',
        long = "url",
        env = "TENSORGRID_URL",
        value_delimiter = ','
    )]
    pub url: Vec<String>,
    /// Websocket URL. Default: the config's websocket_url, or derived from the RPC URL.
    #[arg(long = "ws-url", env = "TENSORGRID_WS_URL")]
    pub ws_url: Option<String>,
    /// The signer: a keypair file, prompt:// (a seed phrase), stdin, or usb://ledger (builds
    /// with the `ledger` feature). Default: the config's keypair_path, else
    /// ~/.config/solana/id.json.
    #[arg(short = 'k', long, env = "TENSORGRID_KEYPAIR")]
    pub keypair: Option<PathBuf>,
    /// processed, confirmed or finalized. Default: the config's, else confirmed.
    #[arg(long, env = "TENSORGRID_COMMITMENT")]
    pub commitment: Option<String>,
    /// The tensorgrid program (a copy deployed under another address).
    #[arg(long, env = "TENSORGRID_PROGRAM_ID", value_parser = crate::chain_args::address)]
    pub program_id: Option<Pubkey>,
    /// The market. Default: the only market of the program, if there is exactly one.
    #[arg(long, env = "TENSORGRID_MARKET", value_parser = crate::chain_args::address)]
    pub market: Option<Pubkey>,
    /// Solana CLI config file. Default: ~/.config/solana/cli/config.yml.
    #[arg(short = 'C', long = "config", env = "TENSORGRID_SOLANA_CONFIG")]
    pub config_file: Option<PathBuf>,
}

impl ChainArgs {
    /// The settings after applying the config file and the defaults.
    pub fn resolve(&self) -> Result<Resolved> {
        let home = dirs::home_dir().ok_or_else(|| anyhow!("no home directory (set HOME)"))?;
        let path = self
            .config_file
            .clone()
            .unwrap_or_else(|| solana_config::default_config_path(&home));
        let file = SolanaConfig::load(&path)?;
        Ok(solana_config::resolve(
            &self.url,
            self.ws_url.as_deref(),
            self.keypair.as_deref(),
            self.commitment.as_deref(),
            &file,
            &home,
        )?)
    }
}

/// How `wallet` gets SOL on the cluster at `url`: an airdrop on a local chain, devnet or
/// testnet; a transfer on mainnet.
pub fn funding_hint(url: &str, wallet: &Pubkey) -> String {
    if tensorgrid_client::rpc::config::is_local(url) {
        format!("fund it with `tensorgrid airdrop 10 {wallet} -u {url}`")
    } else if url.contains("devnet") || url.contains("testnet") {
        format!(
            "fund it with `tensorgrid airdrop 2 {wallet} -u {url}` (rate-limited) or at https://faucet.solana.com"
        )
    } else {
        format!("send SOL to {wallet}")
    }
}

/// An address given on the command line: a base58 public key, or a one-line error that says
/// so (the default parser's is "String is the wrong size").
pub fn address(s: &str) -> std::result::Result<Pubkey, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{s:?} is not an address (a base58 public key, 32 bytes)"))
}

/// `-y/--yes`, for the commands that send a transaction after asking.
#[derive(Args, Debug, Clone, Default)]
pub struct Confirm {
    /// Do not ask before sending (prompts are skipped anyway when stdin is not a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
}

/// `--threads`, for the commands that train or evaluate a model.
#[derive(Args, Debug, Clone, Default)]
pub struct Threads {
    /// CPU threads for training (sets RAYON_NUM_THREADS; results are identical for any count).
    #[arg(long, env = "TENSORGRID_THREADS")]
    pub threads: Option<usize>,
}

impl Threads {
    /// Must run before candle's first operation (its thread pools read their size once).
    pub fn apply(&self) {
        tensorgrid_train::threads::configure(self.threads);
    }
}

/// What a chain command runs with.
pub struct Ctx {
    pub chain: ChainClient,
    pub settings: Resolved,
    pub out: OutputFormat,
    /// Skip confirmation prompts.
    pub yes: bool,
    market: Option<Pubkey>,
    /// The signer, read once: `stdin` can be read once, and a prompt or a hardware wallet
    /// should ask once.
    signer: std::cell::OnceCell<Box<dyn Signer>>,
    /// The market of the job the command works on, read once (for its unit, then its
    /// currency): the unit and mint a market is created with never change.
    job_market: std::cell::OnceCell<(Pubkey, Market)>,
}

impl Ctx {
    pub fn new(args: &ChainArgs, out: OutputFormat, yes: bool) -> Result<Self> {
        let settings = args.resolve()?;
        if let Some(id) = args.program_id {
            tensorgrid_client::use_program_id(id)
                .map_err(|cur| anyhow!("program id already set to {cur}"))?;
        }
        let mut config = ChainConfig::with_urls(settings.rpc_urls.clone())?;
        config.ws_url = Some(settings.ws_url.clone()).filter(|w| !w.is_empty());
        config.commitment = match settings.commitment.as_str() {
            "processed" => CommitmentLevel::Processed,
            "finalized" => CommitmentLevel::Finalized,
            _ => CommitmentLevel::Confirmed,
        };
        Ok(Self {
            chain: ChainClient::new(config)?,
            settings,
            out,
            yes,
            market: args.market,
            signer: std::cell::OnceCell::new(),
            job_market: std::cell::OnceCell::new(),
        })
    }

    /// The signer the settings name (a keypair file, a prompt, stdin or a hardware wallet),
    /// read on first use only.
    pub fn keypair(&self) -> Result<&dyn Signer> {
        if let Some(s) = self.signer.get() {
            return Ok(s.as_ref());
        }
        let signer = read_signer(&self.settings.keypair_path)?;
        Ok(self.signer.get_or_init(|| signer).as_ref())
    }

    /// The market given, or the program's only one.
    pub async fn market(&self) -> Result<(Pubkey, Market)> {
        let (key, market) = self.market_unshown().await?;
        crate::units::use_market_unit(crate::units::Unit::of(&market));
        Ok((key, market))
    }

    /// Shows amounts in the unit of `job`'s market from now on (reads the market only for a
    /// token market's job: a SOL job's terms say it all).
    pub async fn use_job_unit(&self, job: &tensorgrid_client::state::Job) -> Result<()> {
        if job.terms.mint != Pubkey::default() {
            let market = self.market_of(job).await?;
            crate::units::use_market_unit(crate::units::Unit::of(&market));
        }
        Ok(())
    }

    /// The market of `job`, read from the chain once per command.
    pub async fn market_of(&self, job: &tensorgrid_client::state::Job) -> Result<Market> {
        if let Some((key, market)) = self.job_market.get() {
            if *key == job.market {
                return Ok(market.clone());
            }
        }
        let market = self.chain.market(&job.market).await?;
        let _ = self.job_market.set((job.market, market.clone()));
        Ok(market)
    }

    async fn market_unshown(&self) -> Result<(Pubkey, Market)> {
        if let Some(m) = self.market {
            let market = self
                .chain
                .market(&m)
                .await
                .with_context(|| format!("market {m}"))?;
            return Ok((m, market));
        }
        let mut markets = self.chain.markets().await?;
        match markets.len() {
            1 => Ok(markets.remove(0)),
            0 => bail!(
                "no market exists on {} (create one with `tensorgrid market create`)",
                self.chain.active_url()
            ),
            n => bail!(
                "{n} markets exist on {}: choose one with --market (list: {})",
                self.chain.active_url(),
                markets
                    .iter()
                    .map(|(k, _)| k.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// How `wallet` gets SOL on the cluster this command talks to.
    pub fn funding_hint(&self, wallet: &Pubkey) -> String {
        funding_hint(self.chain.active_url(), wallet)
    }

    /// Asks before spending, unless `--yes` or stdin is not a terminal.
    pub fn confirm(&self, what: &str) -> Result<()> {
        if self.yes || !std::io::stdin().is_terminal() {
            return Ok(());
        }
        eprint!("{what} [y/N] ");
        std::io::stderr().flush().ok();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if matches!(answer.trim(), "y" | "Y" | "yes" | "Yes") {
            Ok(())
        } else {
            bail!("cancelled, nothing sent")
        }
    }
}

/// A signer from any of the Solana CLI's sources, with errors that say what to do.
pub fn read_signer(source: &std::path::Path) -> Result<Box<dyn Signer>> {
    Ok(tensorgrid_client::rpc::read_signer(source, "keypair")?)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Probe {
        #[command(flatten)]
        chain: ChainArgs,
    }

    /// flag > environment > config.yml > default, for the URL, keypair and commitment, with a
    /// temporary HOME holding the config file. One test: it sets process environment.
    #[test]
    fn flag_beats_env_beats_config_file_beats_default() {
        let home = tempfile::tempdir().unwrap();
        std::env::set_var("HOME", home.path());
        for k in [
            "TENSORGRID_URL",
            "TENSORGRID_KEYPAIR",
            "TENSORGRID_COMMITMENT",
            "TENSORGRID_WS_URL",
            "TENSORGRID_SOLANA_CONFIG",
        ] {
            std::env::remove_var(k);
        }
        let resolve = |args: &[&str]| {
            let mut argv = vec!["probe"];
            argv.extend_from_slice(args);
            Probe::try_parse_from(argv)
                .unwrap()
                .chain
                .resolve()
                .unwrap()
        };

        let r = resolve(&[]);
        assert_eq!(r.rpc_urls, vec![solana_config::DEFAULT_RPC_URL.to_string()]);
        assert_eq!(r.keypair_path, home.path().join(".config/solana/id.json"));

        let cfg = solana_config::default_config_path(home.path());
        std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
        std::fs::write(&cfg, "json_rpc_url: devnet\nwebsocket_url: ''\nkeypair_path: /cfg/id.json\ncommitment: finalized\n").unwrap();
        let r = resolve(&[]);
        assert_eq!(
            r.rpc_urls,
            vec!["https://api.devnet.solana.com".to_string()]
        );
        assert_eq!(r.ws_url, "wss://api.devnet.solana.com/");
        assert_eq!(r.keypair_path, PathBuf::from("/cfg/id.json"));
        assert_eq!(r.commitment, "finalized");

        std::env::set_var("TENSORGRID_URL", "testnet");
        std::env::set_var("TENSORGRID_KEYPAIR", "/env/id.json");
        std::env::set_var("TENSORGRID_COMMITMENT", "processed");
        let r = resolve(&[]);
        assert_eq!(
            r.rpc_urls,
            vec!["https://api.testnet.solana.com".to_string()]
        );
        assert_eq!(r.keypair_path, PathBuf::from("/env/id.json"));
        assert_eq!(r.commitment, "processed");

        let r = resolve(&[
            "-u",
            "l",
            "-k",
            "/flag/id.json",
            "--commitment",
            "confirmed",
        ]);
        assert_eq!(r.rpc_urls, vec!["http://localhost:8899".to_string()]);
        assert_eq!(r.ws_url, "ws://localhost:8900/");
        assert_eq!(r.keypair_path, PathBuf::from("/flag/id.json"));
        assert_eq!(r.commitment, "confirmed");

        // Another config file, named by -C.
        let other = home.path().join("other.yml");
        std::fs::write(
            &other,
            "json_rpc_url: http://10.0.0.1:8899\nwebsocket_url: ''\nkeypair_path: ''\n",
        )
        .unwrap();
        std::env::remove_var("TENSORGRID_URL");
        let r = resolve(&["-C", other.to_str().unwrap()]);
        assert_eq!(r.rpc_urls, vec!["http://10.0.0.1:8899".to_string()]);
        assert_eq!(r.ws_url, "ws://10.0.0.1:8900/");
        for k in ["TENSORGRID_KEYPAIR", "TENSORGRID_COMMITMENT"] {
            std::env::remove_var(k);
        }
    }
}
