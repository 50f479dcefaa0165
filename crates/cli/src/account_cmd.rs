//! `tensorgrid address | balance | airdrop | keygen`: what a newcomer needs before the first
//! job, on a machine without the Solana CLI (the same names and conventions as `solana` and
//! `solana-keygen`).

use std::{path::PathBuf, time::Duration};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;
use serde_json::json;
use solana_keypair::Keypair;
use solana_signer::Signer;
use tensorgrid_client::anchor_lang::prelude::Pubkey;

use crate::{
    chain_args::{ChainArgs, Ctx},
    output::{fields, OutputFormat, Report},
    solana_config,
    units::{parse_amount, sol},
};

#[derive(Args)]
#[command(after_help = "Example:\n  tensorgrid address -k ~/.config/solana/id.json")]
pub struct AddressArgs {
    #[command(flatten)]
    chain: ChainArgs,
}

#[derive(Args)]
#[command(after_help = "Examples:\n  tensorgrid balance\n  tensorgrid balance 7xKX…3fQe -u devnet")]
pub struct BalanceArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// The address (default: the keypair's).
    #[arg(value_parser = crate::chain_args::address)]
    address: Option<Pubkey>,
}

#[derive(Args)]
#[command(
    after_help = "Examples:\n  tensorgrid airdrop 10 -u localhost\n  tensorgrid airdrop 2 -u devnet"
)]
pub struct AirdropArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// SOL to request (lamports with --lamports).
    amount: String,
    /// Who receives it (default: the keypair's address).
    #[arg(value_parser = crate::chain_args::address)]
    address: Option<Pubkey>,
    /// The amount is in lamports.
    #[arg(long)]
    lamports: bool,
}

#[derive(Args)]
#[command(
    after_help = "Examples:\n  tensorgrid keygen                 # ~/.config/solana/id.json\n  tensorgrid keygen -o worker.json"
)]
pub struct KeygenArgs {
    /// Where to write the keypair file [default: ~/.config/solana/id.json].
    #[arg(short = 'o', long)]
    outfile: Option<PathBuf>,
    /// Replace an existing file (its key is lost unless it is kept elsewhere).
    #[arg(long)]
    force: bool,
}

#[derive(Serialize)]
struct AddressReport {
    address: String,
}

impl Report for AddressReport {
    fn display(&self) -> String {
        self.address.clone()
    }
}

#[derive(Serialize)]
struct BalanceReport {
    address: String,
    lamports: u64,
    sol: String,
}

impl Report for BalanceReport {
    fn display(&self) -> String {
        format!("{} SOL", self.sol)
    }
}

#[derive(Serialize)]
struct AirdropReport {
    address: String,
    requested_lamports: u64,
    signature: String,
    balance_lamports: u64,
}

impl Report for AirdropReport {
    fn display(&self) -> String {
        format!(
            "airdropped {} SOL\n{}",
            sol(self.requested_lamports),
            fields(&[
                ("address", self.address.clone()),
                ("balance", format!("{} SOL", sol(self.balance_lamports))),
                ("signature", self.signature.clone()),
            ])
        )
    }
}

#[derive(Serialize)]
struct KeygenReport {
    address: String,
    keypair_file: String,
}

impl Report for KeygenReport {
    fn display(&self) -> String {
        format!(
            "wrote a new keypair to {}\naddress: {}\nKeep this file safe and private: whoever has it controls the address.",
            self.keypair_file, self.address
        )
    }
}

pub async fn address(a: AddressArgs, out: OutputFormat) -> Result<std::process::ExitCode> {
    let settings = a.chain.resolve()?;
    let signer = crate::chain_args::read_signer(&settings.keypair_path)?;
    out.emit(&AddressReport {
        address: signer.pubkey().to_string(),
    })?;
    Ok(std::process::ExitCode::SUCCESS)
}

pub async fn balance(a: BalanceArgs, out: OutputFormat) -> Result<std::process::ExitCode> {
    let ctx = Ctx::new(&a.chain, out, true)?;
    let address = match a.address {
        Some(a) => a,
        None => ctx.keypair()?.pubkey(),
    };
    let lamports = ctx.chain.balance(&address).await?;
    out.emit(&BalanceReport {
        address: address.to_string(),
        lamports,
        sol: sol(lamports),
    })?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// Requests an airdrop (local chains, devnet and testnet hand them out; mainnet does not)
/// and waits until the balance shows it.
pub async fn airdrop(a: AirdropArgs, out: OutputFormat) -> Result<std::process::ExitCode> {
    let ctx = Ctx::new(&a.chain, out, true)?;
    let url = ctx.chain.active_url().to_string();
    if url.contains("mainnet") {
        bail!("{url} is mainnet: there are no airdrops; send SOL to the address instead");
    }
    let lamports = parse_amount(&a.amount, a.lamports).context("the amount")?;
    if lamports == 0 {
        bail!("the amount must be more than 0");
    }
    let address = match a.address {
        Some(a) => a,
        None => ctx.keypair()?.pubkey(),
    };
    let before = ctx.chain.balance(&address).await?;
    let signature: String = ctx
        .chain
        .raw("requestAirdrop", json!([address.to_string(), lamports]))
        .await
        .with_context(|| {
            format!("requesting {} SOL from {url} (faucets limit how much and how often; devnet also has https://faucet.solana.com)", sol(lamports))
        })?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let balance = loop {
        let now = ctx.chain.balance(&address).await?;
        if now >= before.saturating_add(lamports) {
            break now;
        }
        if std::time::Instant::now() > deadline {
            bail!("airdrop {signature} requested, but the balance of {address} has not changed after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    out.emit(&AirdropReport {
        address: address.to_string(),
        requested_lamports: lamports,
        signature,
        balance_lamports: balance,
    })?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// Writes a new keypair file (Solana CLI format, readable by its owner only).
pub fn keygen(a: KeygenArgs, out: OutputFormat) -> Result<std::process::ExitCode> {
    let path = match a.outfile {
        Some(p) => p,
        None => {
            let home = dirs::home_dir().context("no home directory (set HOME, or pass -o FILE)")?;
            solana_config::default_keypair_path(&home)
        }
    };
    if path.exists() && !a.force {
        bail!(
            "{} exists: it may hold the only copy of a key; pass --force to replace it, or -o another file",
            path.display()
        );
    }
    let force = a.force && path.exists();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let keypair = Keypair::new();
    write_private(&path, &keypair, force).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!("{} exists: pass --force to replace it", path.display())
        } else {
            anyhow::anyhow!("writing {}: {e}", path.display())
        }
    })?;
    out.emit(&KeygenReport {
        address: keypair.pubkey().to_string(),
        keypair_file: path.display().to_string(),
    })?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// The keypair as the Solana CLI writes it, readable by its owner only. Without `force` the
/// file must not exist (checked by the create itself, no race); with it, the new key is written
/// to a temporary file beside it and renamed over the old one, so a failure leaves the old key.
fn write_private(path: &std::path::Path, keypair: &Keypair, force: bool) -> std::io::Result<()> {
    use std::io::Write;
    let text = serde_json::to_string(&keypair.to_bytes().to_vec())?;
    let target = if force {
        let name = path
            .file_name()
            .map(|n| format!(".{}.new", n.to_string_lossy()))
            .unwrap_or_else(|| ".keypair.new".into());
        path.with_file_name(name)
    } else {
        path.to_path_buf()
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    if force {
        // A temporary file left by an earlier failed run.
        let _ = std::fs::remove_file(&target);
    }
    let mut file = options.open(&target)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    if force {
        std::fs::rename(&target, path)?;
    }
    Ok(())
}
