//! Starting, using and stopping the embedded chain.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    sync::Arc,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anchor_lang::prelude::Pubkey;
use crossbeam_channel::{Receiver, Sender};
use solana_keypair::Keypair;
use solana_signer::Signer;
use surfpool_core::surfnet::{
    locker::SurfnetSvmLocker,
    svm::{SurfnetSvm, SurfnetSvmConfig},
};
use surfpool_types::{
    features::SvmFeatureConfig, BlockProductionMode, RpcConfig, SimnetCommand, SimnetConfig,
    SimnetEvent, SurfpoolConfig,
};
use tensorgrid_client::{
    instructions,
    rpc::{ChainClient, ChainConfig, ChainError},
    state::MarketParams,
    tensorgrid::instructions::MarketInitArgs,
    PROGRAM_ID,
};

use crate::{cheatcodes, keypairs, program::ProgramSource, SOL};

#[derive(Debug, thiserror::Error)]
pub enum LocalnetError {
    #[error("local chain failed to start: {0}")]
    Startup(String),
    #[error("program: {0}")]
    Program(String),
    #[error("keypair file {path}: {source}")]
    Keypair {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("local S3 server: {0}")]
    Store(String),
    #[error("this chain has no test mint (started without `usdc`)")]
    NoTestMint,
    #[error(transparent)]
    Chain(#[from] ChainError),
}

/// The economics of the market a local chain creates ([`tensorgrid_client::defaults`]).
pub fn default_market_params() -> MarketParams {
    tensorgrid_client::defaults::market_params()
}

/// A funded keypair of the local chain, and its file when one was written.
pub struct NamedAccount {
    pub name: String,
    pub keypair: Keypair,
    pub path: Option<PathBuf>,
}

/// How to start a [`Localnet`].
#[derive(Clone)]
pub struct LocalnetBuilder {
    rpc_port: u16,
    ws_port: u16,
    slot_time_ms: u64,
    block_production: BlockProductionMode,
    program: ProgramSource,
    ledger: Option<PathBuf>,
    keypair_dir: Option<PathBuf>,
    accounts: Vec<String>,
    lamports_each: u64,
    market: Option<MarketParams>,
    /// Price the default market in a test USDC mint rather than SOL.
    usdc: bool,
    features: Features,
}

/// Which of agave's feature gates the chain runs with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Features {
    /// Mainnet-beta's active set as litesvm 0.16 lists it (taken from the cluster on
    /// 2026-08-24): surfpool's default.
    #[default]
    Mainnet,
    /// Every feature gate this agave version knows, active. Devnet and testnet activate each
    /// feature before mainnet does, so their sets lie between [`Features::Mainnet`] and this.
    All,
}

impl Features {
    fn config(self) -> SvmFeatureConfig {
        match self {
            Self::Mainnet => SvmFeatureConfig::default(),
            Self::All => SvmFeatureConfig::all_features_enabled(),
        }
    }
}

impl Default for LocalnetBuilder {
    fn default() -> Self {
        Self {
            rpc_port: 0,
            ws_port: 0,
            slot_time_ms: 400,
            block_production: BlockProductionMode::Clock,
            program: ProgramSource::Workspace,
            ledger: None,
            keypair_dir: None,
            accounts: Vec::new(),
            lamports_each: 1_000 * SOL,
            market: None,
            usdc: false,
            features: Features::Mainnet,
        }
    }
}

impl LocalnetBuilder {
    /// A configuration for tests: free ports, 20 ms slots (a blockhash lives ~3 s), the
    /// workspace's program.
    pub fn for_tests() -> Self {
        Self::default().slot_time_ms(20)
    }

    /// 0 (the default) picks a free port.
    pub fn rpc_port(mut self, port: u16) -> Self {
        self.rpc_port = port;
        self
    }

    pub fn ws_port(mut self, port: u16) -> Self {
        self.ws_port = port;
        self
    }

    pub fn slot_time_ms(mut self, ms: u64) -> Self {
        self.slot_time_ms = ms.max(1);
        self
    }

    pub fn block_production(mut self, mode: BlockProductionMode) -> Self {
        self.block_production = mode;
        self
    }

    pub fn program(mut self, source: ProgramSource) -> Self {
        self.program = source;
        self
    }

    /// Keep the chain's state in `dir` (SQLite), so a restart continues where it stopped.
    pub fn ledger(mut self, dir: impl Into<PathBuf>) -> Self {
        self.ledger = Some(dir.into());
        self
    }

    /// Write the payer and every named account as Solana-CLI keypair files here.
    pub fn keypair_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.keypair_dir = Some(dir.into());
        self
    }

    /// Funded keypairs to create, by name (`poster`, `worker`, ...).
    pub fn accounts<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.accounts = names.into_iter().map(Into::into).collect();
        self
    }

    /// Lamports given to the payer and to each named account (default 1,000 SOL).
    pub fn lamports_each(mut self, lamports: u64) -> Self {
        self.lamports_each = lamports;
        self
    }

    /// The feature gates active from the first slot (default: mainnet's).
    pub fn features(mut self, features: Features) -> Self {
        self.features = features;
        self
    }

    /// Create a market (market id 0, the payer its authority) with these parameters.
    pub fn market(mut self, params: MarketParams) -> Self {
        self.market = Some(params);
        self
    }

    /// Price the default market ([`LocalnetBuilder::market`]) in a test stablecoin: an SPL
    /// Token mint with 6 decimals, the payer its authority, a million of it in a token account
    /// of the payer and of every named account (`crate::usdc`).
    pub fn usdc(mut self, usdc: bool) -> Self {
        self.usdc = usdc;
        self
    }

    /// Starts the chain. With free ports chosen here, a start that loses a port to another
    /// process in the instant between choosing and binding is retried (three times).
    pub async fn start(self) -> Result<Localnet, LocalnetError> {
        let retry = self.rpc_port == 0 || self.ws_port == 0;
        let mut tries = 0;
        loop {
            tries += 1;
            match Localnet::start(self.clone()).await {
                Err(LocalnetError::Startup(m)) if retry && tries < 3 && m.contains("in use") => {
                    tracing::warn!("local chain start failed ({m}); retrying on other ports");
                }
                other => return other,
            }
        }
    }
}

/// A running local chain. Stops when dropped.
pub struct Localnet {
    rpc_url: String,
    ws_url: String,
    payer: NamedAccount,
    accounts: Vec<NamedAccount>,
    market: Option<Pubkey>,
    /// The default market's mint, when it is priced in the test stablecoin.
    mint: Option<Pubkey>,
    client: ChainClient,
    program_path: PathBuf,
    commands: Sender<SimnetCommand>,
    shutdowns: Receiver<()>,
    runloop: Option<JoinHandle<()>>,
    stopped: bool,
    started_in: Duration,
}

/// The ports to bind: the ones asked for, free ones for 0 (both listeners are held until
/// both are chosen, so the two cannot be the same port).
fn choose_ports(rpc: u16, ws: u16) -> Result<(u16, u16), LocalnetError> {
    let bind = |port: u16| {
        TcpListener::bind(("127.0.0.1", port))
            .map_err(|e| LocalnetError::Startup(format!("port {port}: {e}")))
    };
    let pick = |asked: u16, held: &mut Vec<TcpListener>| -> Result<u16, LocalnetError> {
        if asked != 0 {
            return Ok(asked);
        }
        let l = bind(0)?;
        let port = l
            .local_addr()
            .map_err(|e| LocalnetError::Startup(e.to_string()))?
            .port();
        held.push(l);
        Ok(port)
    };
    let mut held = Vec::new();
    let rpc = pick(rpc, &mut held)?;
    let ws = pick(ws, &mut held)?;
    Ok((rpc, ws))
}

/// Sends surfpool's Terminate when dropped unless disarmed: a start-up that fails half-way
/// must not leave servers running.
struct TerminateGuard(Option<Sender<SimnetCommand>>);

impl Drop for TerminateGuard {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(SimnetCommand::Terminate(None));
        }
    }
}

/// Keeps reading surfpool's event channel (its only error channel, and it must not fill up):
/// errors and warnings go to the log, shutdown acknowledgements to `stop`.
fn drain_events(events: Receiver<SimnetEvent>, shutdowns: Sender<()>) {
    for event in events {
        match event {
            SimnetEvent::ErrorLog(_, m) => tracing::error!(target: "surfpool", "{m}"),
            SimnetEvent::WarnLog(_, m) => tracing::warn!(target: "surfpool", "{m}"),
            SimnetEvent::InfoLog(_, m) => tracing::debug!(target: "surfpool", "{m}"),
            SimnetEvent::Aborted(m) => tracing::error!(target: "surfpool", "aborted: {m}"),
            SimnetEvent::Shutdown => {
                let _ = shutdowns.send(());
            }
            _ => {}
        }
    }
}

fn wait_until_started(events: &Receiver<SimnetEvent>) -> Result<(), LocalnetError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut errors = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(SimnetEvent::CoreStarted(_)) => return Ok(()),
            Ok(SimnetEvent::Aborted(m)) => {
                errors.push(m);
                return Err(LocalnetError::Startup(errors.join("; ")));
            }
            Ok(SimnetEvent::ErrorLog(_, m)) => errors.push(m),
            Ok(SimnetEvent::Shutdown) => {
                errors.push("shut down during start-up".into());
                return Err(LocalnetError::Startup(errors.join("; ")));
            }
            Ok(_) => {}
            Err(_) => {
                errors.push("not started within 60 s".into());
                return Err(LocalnetError::Startup(errors.join("; ")));
            }
        }
    }
}

impl Localnet {
    pub fn builder() -> LocalnetBuilder {
        LocalnetBuilder::default()
    }

    async fn start(b: LocalnetBuilder) -> Result<Self, LocalnetError> {
        let started = Instant::now();
        let program_path =
            crate::program::find_program(&b.program).map_err(LocalnetError::Program)?;
        let bytecode = std::fs::read(&program_path)
            .map_err(|e| LocalnetError::Program(format!("{}: {e}", program_path.display())))?;
        let (rpc_port, ws_port) = choose_ports(b.rpc_port, b.ws_port)?;
        let host = "127.0.0.1".to_string();

        let payer = named("payer", Keypair::new(), b.keypair_dir.as_deref())?;
        let accounts = b
            .accounts
            .iter()
            .map(|name| named(name, Keypair::new(), b.keypair_dir.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut airdrops = vec![payer.keypair.pubkey()];
        airdrops.extend(accounts.iter().map(|a| a.keypair.pubkey()));

        let simnet = SimnetConfig {
            offline_mode: true,
            remote_rpc_url: None,
            slot_time: b.slot_time_ms,
            block_production_mode: b.block_production.clone(),
            airdrop_addresses: airdrops,
            airdrop_token_amount: b.lamports_each,
            instruction_profiling_enabled: false,
            ..SimnetConfig::default()
        };
        let config = SurfpoolConfig {
            rpc: RpcConfig {
                bind_host: host.clone(),
                bind_port: rpc_port,
                ws_port,
                ..RpcConfig::default()
            },
            simnets: vec![simnet.clone()],
            ..SurfpoolConfig::default()
        };
        let svm_config = SurfnetSvmConfig {
            surfnet_id: simnet.surfnet_id.clone(),
            slot_time: simnet.slot_time,
            instruction_profiling_enabled: false,
            max_profiles: simnet.max_profiles,
            log_bytes_limit: simnet.log_bytes_limit,
            feature_config: b.features.config(),
            ..SurfnetSvmConfig::default()
        };
        let database = match &b.ledger {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    LocalnetError::Startup(format!("ledger {}: {e}", dir.display()))
                })?;
                Some(dir.join("surfnet.sqlite").to_string_lossy().into_owned())
            }
            None => None,
        };
        let (svm, events, geyser) = SurfnetSvm::new_with_db(database.as_deref(), svm_config)
            .map_err(|e| LocalnetError::Startup(e.to_string()))?;
        let locker = SurfnetSvmLocker::new(svm);
        let (commands, commands_rx) = crossbeam_channel::unbounded();
        let runloop = {
            let (locker, commands) = (locker.clone(), commands.clone());
            std::thread::Builder::new()
                .name("surfnet".into())
                .spawn(move || {
                    // The runloop blocks on channels: its own thread and runtime.
                    let runtime = match tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .enable_all()
                        .build()
                    {
                        Ok(r) => r,
                        Err(e) => return tracing::error!("surfnet runtime: {e}"),
                    };
                    let run = surfpool_core::runloops::start_local_surfnet_runloop(
                        locker,
                        config,
                        commands,
                        commands_rx,
                        geyser,
                    );
                    if let Err(e) = runtime.block_on(run) {
                        tracing::error!("surfnet stopped: {e}");
                    }
                })
                .map_err(|e| LocalnetError::Startup(e.to_string()))?
        };
        let mut guard = TerminateGuard(Some(commands.clone()));
        let events = Arc::new(events);
        {
            let events = events.clone();
            tokio::task::spawn_blocking(move || wait_until_started(&events))
                .await
                .map_err(|e| LocalnetError::Startup(e.to_string()))??;
        }
        let (shutdown_tx, shutdowns) = crossbeam_channel::unbounded();
        {
            let events = (*events).clone();
            std::thread::Builder::new()
                .name("surfnet-events".into())
                .spawn(move || drain_events(events, shutdown_tx))
                .map_err(|e| LocalnetError::Startup(e.to_string()))?;
        }

        let rpc_url = format!("http://{host}:{rpc_port}");
        let ws_url = format!("ws://{host}:{ws_port}");
        let mut chain_config = ChainConfig::new(rpc_url.clone());
        chain_config.ws_url = Some(ws_url.clone());
        chain_config.poll_interval = Duration::from_millis(b.slot_time_ms.clamp(5, 200));
        let client = ChainClient::new(chain_config)?;

        let mut net = Localnet {
            rpc_url,
            ws_url,
            payer,
            accounts,
            market: None,
            mint: None,
            client,
            program_path,
            commands,
            shutdowns,
            runloop: Some(runloop),
            stopped: false,
            started_in: Duration::ZERO,
        };
        // From here `net`'s own Drop terminates the chain.
        guard.0 = None;
        cheatcodes::write_program(&net.client, &PROGRAM_ID, &bytecode).await?;
        net.wait_for_first_block().await?;
        if let Some(params) = b.market {
            let existing = tensorgrid_client::pda::market(&net.payer.keypair.pubkey(), 0).0;
            // A restarted ledger already has it.
            net.market = Some(match net.client.account(&existing).await? {
                Some(_) => existing,
                None if b.usdc => {
                    let mut owners = vec![net.payer.keypair.pubkey()];
                    owners.extend(net.accounts.iter().map(|a| a.keypair.pubkey()));
                    let currency =
                        crate::usdc::create(&net.client, &net.payer.keypair, &owners).await?;
                    // One whole token, as the SOL default is one SOL.
                    let params = MarketParams {
                        min_stake: 10u64.pow(u32::from(crate::usdc::DECIMALS)),
                        ..params
                    };
                    net.create_market_in(0, params, &currency).await?
                }
                None => net.create_market(0, params).await?,
            });
            let mint = net.client.market(&existing).await?.mint;
            net.mint = (mint != Pubkey::default()).then_some(mint);
        }
        net.started_in = started.elapsed();
        Ok(net)
    }

    /// Until the first block, surfpool hands out a placeholder blockhash that no transaction
    /// can use.
    async fn wait_for_first_block(&self) -> Result<(), LocalnetError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let hash: serde_json::Value = self
                .client
                .raw("getLatestBlockhash", serde_json::json!([]))
                .await?;
            // Blockhashes are synthetic (`SURFNETxSAFEHASHxxx…5a6`); the placeholder is all x.
            let value = hash["value"]["blockhash"].as_str().unwrap_or_default();
            let suffix = value.trim_start_matches("SURFNETxSAFEHASH");
            if !value.is_empty() && suffix.chars().any(|c| c != 'x') {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(LocalnetError::Startup(format!(
                    "no block produced within 30 s (latest blockhash: {hash})"
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Creates a market with the payer as its authority; returns its address.
    pub async fn create_market(
        &self,
        market_id: u64,
        params: MarketParams,
    ) -> Result<Pubkey, LocalnetError> {
        self.create_market_in(market_id, params, &tensorgrid_client::Currency::Sol)
            .await
    }

    /// Creates a market priced in `currency` with the payer as its authority; returns its
    /// address.
    pub async fn create_market_in(
        &self,
        market_id: u64,
        params: MarketParams,
        currency: &tensorgrid_client::Currency,
    ) -> Result<Pubkey, LocalnetError> {
        let authority = &self.payer.keypair;
        let ix = instructions::market_init_in(
            currency,
            authority.pubkey(),
            MarketInitArgs { market_id, params },
        );
        self.client.send(&[ix], &[authority]).await?;
        Ok(tensorgrid_client::pda::market(&authority.pubkey(), market_id).0)
    }

    /// The default market's mint when it is priced in the test stablecoin ([`LocalnetBuilder::usdc`]).
    pub fn mint(&self) -> Option<Pubkey> {
        self.mint
    }

    pub fn rpc_url(&self) -> &str {
        &self.rpc_url
    }

    pub fn ws_url(&self) -> &str {
        &self.ws_url
    }

    /// A client for this chain (confirmed commitment, no priority fee).
    pub fn client(&self) -> &ChainClient {
        &self.client
    }

    /// The funded payer (the default market's authority).
    pub fn payer(&self) -> &NamedAccount {
        &self.payer
    }

    /// The named funded accounts, in the order given to the builder.
    pub fn accounts(&self) -> &[NamedAccount] {
        &self.accounts
    }

    /// The named account `name`. Panics if there is none: a test's own typo.
    pub fn account(&self, name: &str) -> &Keypair {
        &self
            .accounts
            .iter()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("no local account named {name}"))
            .keypair
    }

    /// The market created at start-up, if one was asked for.
    pub fn market(&self) -> Option<Pubkey> {
        self.market
    }

    pub fn program_path(&self) -> &Path {
        &self.program_path
    }

    /// From the builder's start to a usable chain (program loaded, market created).
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// A new keypair holding `lamports` (set directly, no transaction).
    pub async fn funded(&self, lamports: u64) -> Result<Keypair, LocalnetError> {
        let kp = Keypair::new();
        self.set_lamports(&kp.pubkey(), lamports).await?;
        Ok(kp)
    }

    /// Mints `amount` base units of the test USDC ([`LocalnetBuilder::usdc`]) into `owner`'s
    /// token account, created when missing; an error on a chain without it.
    pub async fn fund_tokens(&self, owner: &Pubkey, amount: u64) -> Result<(), LocalnetError> {
        let mint = self.mint.ok_or(LocalnetError::NoTestMint)?;
        crate::usdc::fund(&self.client, &self.payer.keypair, &mint, owner, amount).await
    }

    /// Sets an account's lamports directly (no transaction), creating it if needed.
    pub async fn set_lamports(&self, pubkey: &Pubkey, lamports: u64) -> Result<(), LocalnetError> {
        cheatcodes::set_lamports(&self.client, pubkey, lamports).await?;
        Ok(())
    }

    /// Moves the chain's clock to `unix_s`.
    pub async fn warp_to(&self, unix_s: i64) -> Result<(), LocalnetError> {
        cheatcodes::time_travel_to(&self.client, unix_s).await?;
        Ok(())
    }

    /// Moves the chain's clock `secs` forward and waits until the chain reports the new time.
    pub async fn warp(&self, secs: i64) -> Result<i64, LocalnetError> {
        let target = self.client.chain_time().await?.saturating_add(secs);
        self.warp_to(target).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = self.client.chain_time().await?;
            if now >= target {
                return Ok(now);
            }
            if Instant::now() > deadline {
                return Err(LocalnetError::Startup(format!(
                    "clock at {now} after travelling to {target}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Writes an account directly (for scans over many accounts).
    pub async fn set_account(
        &self,
        pubkey: &Pubkey,
        lamports: u64,
        owner: &Pubkey,
        data: &[u8],
    ) -> Result<(), LocalnetError> {
        cheatcodes::set_account(&self.client, pubkey, lamports, owner, data).await?;
        Ok(())
    }

    /// Stops the RPC and websocket servers and waits (up to 5 s) until both have closed.
    pub fn stop(&mut self) -> Result<(), LocalnetError> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let _ = self.commands.send(SimnetCommand::Terminate(None));
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut acknowledged = 0;
        while acknowledged < 2 {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.shutdowns.recv_timeout(left) {
                Ok(()) => acknowledged += 1,
                Err(_) => break,
            }
        }
        // The runloop thread ends on its own once the servers are down; not joined, so a
        // stuck surfpool cannot hang the caller.
        self.runloop.take();
        if acknowledged < 2 {
            return Err(LocalnetError::Startup(format!(
                "shutdown not confirmed within 5 s ({acknowledged} of 2 servers)"
            )));
        }
        Ok(())
    }
}

impl Drop for Localnet {
    fn drop(&mut self) {
        if !self.stopped {
            self.stopped = true;
            // surfpool's Terminate handler shuts the servers and the storage down.
            let _ = self.commands.send(SimnetCommand::Terminate(None));
        }
    }
}

/// A named keypair: read from `dir/name.json` when that file exists (so a restarted chain
/// keeps its accounts), else `keypair`, written there.
fn named(name: &str, keypair: Keypair, dir: Option<&Path>) -> Result<NamedAccount, LocalnetError> {
    let mut keypair = keypair;
    let path = match dir {
        Some(dir) => {
            let path = dir.join(format!("{name}.json"));
            let keypair_error = |source| LocalnetError::Keypair {
                path: path.clone(),
                source,
            };
            if path.is_file() {
                keypair = keypairs::read(&path).map_err(keypair_error)?;
            } else {
                keypairs::write(&keypair, &path).map_err(keypair_error)?;
            }
            Some(path)
        }
        None => None,
    };
    Ok(NamedAccount {
        name: name.to_string(),
        keypair,
        path,
    })
}
