//! `job post`: everything checked first (spec, dataset, market, money), then the spec (and a
//! local dataset) uploaded, then one transaction. Any failure before the send leaves nothing
//! on chain.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde_json::Value;
use tensorgrid_artifacts::{fetch, sha256_hex};
use tensorgrid_client::{
    anchor_lang::prelude::Pubkey,
    constants::MAX_URI_LEN,
    pda,
    rpc::config::is_local,
    state::{DeviceRequirement, Job, JobRequirements, Market, Poster},
    tensorgrid::instructions::JobPostArgs,
};
use tensorgrid_train::spec::JobSpec;

use crate::{
    chain_args::{ChainArgs, Ctx},
    output::OutputFormat,
    store_args::StoreArgs,
    tx,
    units::{duration, parse_duration, sol, Unit},
};

/// A spec is a small JSON document.
pub const MAX_SPEC_BYTES: u64 = 1 << 20;
/// Room for the transaction fee (and a priority fee) on top of reward and rent.
const FEE_HEADROOM: u64 = 100_000;

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum DeviceArg {
    Any,
    Gpu,
    Cuda,
    Metal,
}

#[derive(Args)]
#[command(
    after_help = "Examples:\n  tensorgrid job post --spec jobs/digits-mlp.json --reward 0.5 --max-duration 2h\n  tensorgrid job post --spec my.json --reward 2 --max-duration 1d --device cuda --min-vram 16384 --wait -u devnet"
)]
pub struct PostArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    confirm: crate::chain_args::Confirm,
    #[command(flatten)]
    store: StoreArgs,
    /// The job spec (JSON). A local (file:) dataset is uploaded with it.
    #[arg(long)]
    spec: PathBuf,
    /// The spec is already hosted at this URI: its bytes must equal --spec's; nothing is uploaded.
    #[arg(long)]
    spec_uri: Option<String>,
    /// Reward in the market's unit, the market's fee included: SOL, or the mint's tokens
    /// (`12.5`) in a token market (raw units with --lamports).
    #[arg(long)]
    reward: String,
    /// The reward is in raw units: lamports, or the mint's base units.
    #[arg(long)]
    lamports: bool,
    /// Time a worker has from its claim to its result: 90m, 2h, 3600.
    #[arg(long)]
    max_duration: String,
    /// The device a worker needs.
    #[arg(long, value_enum, default_value = "any")]
    device: DeviceArg,
    /// The device memory a worker needs, in MiB.
    #[arg(long, default_value_t = 0)]
    min_vram: u32,
    /// The job's id (default: the next one your poster account allows; ids only grow, so a
    /// job address is never reused).
    #[arg(long)]
    job_id: Option<u64>,
    /// Follow the job until it ends.
    #[arg(long)]
    wait: bool,
}

pub async fn run(a: PostArgs, out: OutputFormat) -> Result<std::process::ExitCode> {
    let ctx = Ctx::new(&a.chain, out, a.confirm.yes)?;
    let poster = ctx.keypair()?;
    let (spec_bytes, spec) = read_spec(&a.spec)?;
    let local = local_files(&a.spec, &spec)?;
    if let (Some(f), Some(_)) = (local.first(), &a.spec_uri) {
        bail!(
            "{}: the {} is a local file ({}) that workers cannot read; host it (s3:// or https://) or post without --spec-uri to upload it",
            a.spec.display(),
            f.role,
            f.uri
        );
    }
    let max_duration_s = parse_duration(&a.max_duration).context("--max-duration")?;

    let (market_key, market_state) = ctx.market().await?;
    let unit = Unit::of(&market_state);
    let reward = unit.parse(&a.reward, a.lamports).context("--reward")?;
    // The market and this wallet's poster account read together: the terms this post agrees
    // to (the program refuses it if the market's change before it lands) and where ids start.
    let posting = ctx
        .chain
        .post_context(&market_key, &poster.pubkey())
        .await?;
    let market = &posting.market;
    if market.paused {
        bail!("market {market_key} is paused: it takes no new jobs");
    }
    if max_duration_s > market.params.max_claim_s {
        bail!(
            "--max-duration {} is longer than market {market_key} allows ({})",
            duration(max_duration_s),
            duration(market.params.max_claim_s)
        );
    }
    // An empty account's rent: the least reward a worker can receive, and what the wallet
    // keeps after paying.
    let keep = ctx.chain.rent_exempt(0).await?;
    check_reward(reward, keep, market, unit)?;
    let rent = ctx.chain.rent_exempt(Job::SPACE).await?;
    // The first post in a market creates the poster account (its rent is kept: it holds the
    // counter that keeps job addresses unique).
    let account_rent = match posting.poster {
        Some(_) => 0,
        None => ctx.chain.rent_exempt(Poster::SPACE).await?,
    };
    let balance = ctx.chain.balance(&poster.pubkey()).await?;
    // In a token market the reward is paid in tokens, from the poster's token account.
    let in_lamports = if unit.mint.is_none() { reward } else { 0 };
    if let Some(account) = tensorgrid_client::Currency::of(market).token_account(&poster.pubkey()) {
        let held = ctx.chain.token_balance(&account).await?.unwrap_or(0);
        if held < reward {
            bail!(
                "token account {account} of wallet {} holds {}; the reward is {}",
                poster.pubkey(),
                unit.show(held),
                unit.show(reward)
            );
        }
    }
    let needed = in_lamports
        .saturating_add(rent)
        .saturating_add(account_rent)
        .saturating_add(keep)
        .saturating_add(FEE_HEADROOM);
    if balance < needed {
        bail!(
            "wallet {} has {} SOL; posting needs {} SOL (reward {} + refundable rent {}{} + fees, and the wallet's own rent reserve); {}",
            poster.pubkey(),
            sol(balance),
            sol(needed),
            sol(in_lamports),
            sol(rent),
            if account_rent > 0 {
                format!(" + {} for your poster account in this market, once", sol(account_rent))
            } else {
                String::new()
            },
            ctx.funding_hint(&poster.pubkey())
        );
    }
    let next = posting.next_job_id();
    let job_id = match a.job_id {
        Some(id) if id < next => bail!(
            "job id {id}: your ids in market {market_key} continue from {next} (ids only grow, so a job address is never reused)"
        ),
        // Every id skipped is gone for good: a typo near u64::MAX would end this wallet's
        // posting in the market.
        Some(id) if id - next > 1 << 32 => bail!(
            "job id {id} skips more than 2^32 ids past your next one ({next}) in market {market_key}; ids only grow, so the skipped ones are gone for good"
        ),
        Some(id) => id,
        // The next id: ids go 0, 1, 2, … in each market, so a person can follow them (every
        // id costs the program the same: the client names the address's bump).
        None => next,
    };
    let confirm = |ctx: &Ctx| confirm(ctx, job_id, &market_key, reward, rent, account_rent, market);
    let requirements = JobRequirements {
        device: match a.device {
            DeviceArg::Any => DeviceRequirement::Any,
            DeviceArg::Gpu => DeviceRequirement::Gpu,
            DeviceArg::Cuda => DeviceRequirement::Cuda,
            DeviceArg::Metal => DeviceRequirement::Metal,
        },
        min_vram_mib: a.min_vram,
    };

    // The spec as workers will read it, and where.
    let (spec_uri, posted_bytes) = match &a.spec_uri {
        Some(uri) => {
            check_uri(uri)?;
            let hosted = fetch(uri, MAX_SPEC_BYTES, &a.store.read_policy())
                .await
                .with_context(|| format!("--spec-uri {uri}"))?;
            if hosted[..] != spec_bytes[..] {
                bail!(
                    "--spec-uri {uri}: its content (sha256 {}) is not {} (sha256 {})",
                    sha256_hex(&hosted),
                    a.spec.display(),
                    sha256_hex(&spec_bytes)
                );
            }
            (uri.clone(), spec_bytes)
        }
        None => {
            let store = a.store.open()?;
            if store.local_dir().is_some() && !is_local(ctx.chain.active_url()) {
                bail!(
                    "--store {}: a local directory is readable on this machine only; workers need s3:// (a local store is for a localhost chain)",
                    store.root()
                );
            }
            // Every URI and the spec as posted are known and checked before anything is
            // uploaded or sent.
            let bytes = if local.is_empty() {
                spec_bytes
            } else {
                let mut uris = Vec::new();
                // A shard is named relative to its index: nothing in the spec to rewrite.
                for f in local.iter().filter(|f| !f.at.is_empty()) {
                    let uri = store.uri(&f.key);
                    check_uri(&uri)?;
                    uris.push((f.at, uri));
                }
                let rewritten = with_uris(&spec_bytes, &uris)?;
                JobSpec::from_json(&rewritten).map_err(|e| crate::local::spec_error(&a.spec, e))?;
                rewritten
            };
            let spec_key = format!("specs/{}.json", sha256_hex(&bytes));
            let uri = store.uri(&spec_key);
            check_uri(&uri)?;
            confirm(&ctx)?;
            for f in &local {
                let data = std::fs::read(&f.path)
                    .with_context(|| format!("reading {}", f.path.display()))?;
                let uploaded = store.put(&f.key, data).await?;
                ctx.out.note(format!("{} uploaded: {uploaded}", f.role));
            }
            store.put(&spec_key, bytes.clone()).await?;
            ctx.out.note(format!("spec uploaded: {uri}"));
            (uri, bytes)
        }
    };
    if a.spec_uri.is_some() {
        confirm(&ctx)?;
    }
    let spec_hash: [u8; 32] = JobSpec::hash_bytes(&posted_bytes);
    let ixs = posting.instructions(
        poster.pubkey(),
        market_key,
        JobPostArgs {
            job_id,
            reward,
            spec_hash,
            spec_uri: spec_uri.clone(),
            requirements,
            max_duration_s,
            terms: market.job_terms(),
        },
    );
    let address = pda::job(&market_key, &poster.pubkey(), job_id).0;
    let sent = tx::send(&ctx, &ixs, &poster, "job posted")
        .await?
        .with("job", address)
        .with_number("job id", job_id)
        .with("spec", &spec_uri)
        .with("spec hash", hex::encode(spec_hash))
        .next(format!("tensorgrid job watch {address}"));
    if a.wait {
        if !ctx.out.is_json() {
            ctx.out.emit(&sent)?;
        }
        let (code, watched) = super::watch::follow(&ctx, address, None).await?;
        if ctx.out.is_json() {
            ctx.out.emit(&PostedAndFollowed {
                posted: sent,
                followed: watched,
            })?;
        } else {
            ctx.out.emit(&watched)?;
        }
        return Ok(code);
    }
    ctx.out.emit(&sent)?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// `job post --wait --output json`: one document.
#[derive(serde::Serialize)]
struct PostedAndFollowed {
    posted: tx::Sent,
    followed: super::watch::Watched,
}

impl crate::output::Report for PostedAndFollowed {
    fn display(&self) -> String {
        format!("{}{}", self.posted.display(), self.followed.display())
    }
}

/// Asks before spending, naming the money and the terms the post agrees to.
fn confirm(
    ctx: &Ctx,
    job_id: u64,
    market_key: &Pubkey,
    reward: u64,
    rent: u64,
    account_rent: u64,
    market: &Market,
) -> Result<()> {
    let t = market.job_terms();
    let once = if account_rent > 0 {
        format!(
            ", + {} SOL once for your poster account in this market",
            sol(account_rent)
        )
    } else {
        String::new()
    };
    ctx.confirm(&format!(
        "Post job {job_id} to market {market_key}, escrowing {} (+ {} SOL rent, refunded when it closes{once}) on its terms: fee {}, challenge window {}, dispute ruling within {}?",
        Unit::of(market).show(reward),
        sol(rent),
        bps(t.fee_bps),
        duration(t.challenge_window_s),
        duration(t.resolve_window_s),
    ))
}

/// Basis points as a percentage.
fn bps(v: u16) -> String {
    format!("{}%", f64::from(v) / 100.0)
}

/// The spec's bytes, parsed and validated (every problem listed).
fn read_spec(path: &Path) -> Result<(Vec<u8>, JobSpec)> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("spec {}", path.display()))?
        .len();
    if len > MAX_SPEC_BYTES {
        bail!(
            "spec {}: {len} bytes, more than a spec may have ({MAX_SPEC_BYTES})",
            path.display()
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("spec {}", path.display()))?;
    let spec = JobSpec::from_json(&bytes).map_err(|e| crate::local::spec_error(path, e))?;
    Ok((bytes, spec))
}

/// A local (`file:`) file of the spec, checked, to upload before posting.
struct LocalFile {
    role: &'static str,
    /// Where its URI is in the spec's JSON.
    at: &'static [&'static str],
    uri: String,
    path: PathBuf,
    /// Its key in the store: by content, so a file posted twice is stored once (a shard
    /// index in a folder of its own, its shards beside it under their relative names).
    key: String,
}

/// The spec's local files (the dataset, a tokenizer, initial weights), each checked against
/// the spec's size limit and hash now rather than by a worker after it claimed.
fn local_files(spec_path: &Path, spec: &JobSpec) -> Result<Vec<LocalFile>> {
    use tensorgrid_train::spec::{INIT_ROLE, TOKENIZER_ROLE};
    let d = &spec.dataset;
    let mut wanted = vec![(
        "dataset",
        &["dataset", "uri"][..],
        &d.uri,
        &d.sha256,
        spec.limits.max_dataset_bytes,
        false,
    )];
    let sharded = d.format.each_file() != &d.format;
    for (role, f) in spec.files() {
        let at: &'static [&'static str] = match role {
            TOKENIZER_ROLE if sharded => &["dataset", "format", "shard_format", "tokenizer", "uri"],
            TOKENIZER_ROLE => &["dataset", "format", "tokenizer", "uri"],
            INIT_ROLE => &["model", "init", "uri"],
            _ => bail!("{role}: a file this CLI does not know how to upload"),
        };
        wanted.push((role, at, &f.uri, &f.sha256, f.bytes, true));
    }
    let mut out = Vec::new();
    for (role, at, uri, sha256, cap, exact) in wanted {
        let Some(rest) = uri.strip_prefix("file:") else {
            continue;
        };
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let p = Path::new(rest);
        let path = if p.is_absolute() {
            p.to_path_buf()
        } else {
            spec_path.parent().unwrap_or(Path::new(".")).join(p)
        };
        let meta =
            std::fs::metadata(&path).with_context(|| format!("{role} {}", path.display()))?;
        if meta.len() > cap || exact && meta.len() != cap {
            bail!(
                "{role} {}: {} bytes, {} ({cap})",
                path.display(),
                meta.len(),
                if exact {
                    "not the size the spec states"
                } else {
                    "over the spec's limits.max_dataset_bytes"
                }
            );
        }
        let bytes = std::fs::read(&path).with_context(|| format!("{role} {}", path.display()))?;
        let actual = sha256_hex(&bytes);
        if actual != sha256.to_ascii_lowercase() {
            bail!(
                "{role} {}: sha256 is {actual}, the spec says {sha256}",
                path.display()
            );
        }
        let key = match (role, sharded && role == "dataset") {
            ("dataset", true) => format!("datasets/{actual}/index.json"),
            ("dataset", false) => format!("datasets/{actual}"),
            _ => format!("files/{actual}"),
        };
        if sharded && role == "dataset" {
            out.extend(local_shards(spec, &path, &bytes, &actual)?);
        }
        out.push(LocalFile {
            role,
            at,
            uri: uri.clone(),
            path,
            key,
        });
    }
    Ok(out)
}

/// The shards a local index (at `index`, whose bytes hash to `sha`) names relative to itself,
/// each checked against the index now, to upload beside it. A shard given by `file:` URI is
/// refused: a worker resolves names relative to the uploaded index, and reads no local file.
fn local_shards(spec: &JobSpec, index: &Path, bytes: &[u8], sha: &str) -> Result<Vec<LocalFile>> {
    // Every rule a worker applies to the index, now: a job no worker can take would hold
    // the reward until it expires.
    tensorgrid_train::data::shards::Index::parse(spec, bytes)
        .with_context(|| format!("{}", index.display()))?;
    let parsed: tensorgrid_train::data::shards::Index = serde_json::from_slice(bytes)
        .with_context(|| format!("shard index {}", index.display()))?;
    let dir = index.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for (i, s) in parsed.shards.iter().enumerate() {
        if ["s3://", "https://", "http://"]
            .iter()
            .any(|p| s.uri.starts_with(p))
        {
            continue;
        }
        // Beside the index in the store, under the name the index gives it (never the
        // index's own). `Index::parse` above refused every other name a worker would; a
        // local file it allows in a local index, a worker never reads.
        if s.uri.starts_with("file:") || s.uri == "index.json" {
            bail!(
                "shard {i} ({}) of {}: name a shard relative to its index (uploaded beside it) or by s3:// / https:// URI",
                s.uri,
                index.display()
            );
        }
        let path = dir.join(&s.uri);
        let data = std::fs::read(&path).with_context(|| format!("shard {}", path.display()))?;
        let actual = sha256_hex(&data);
        if data.len() as u64 != s.bytes || !actual.eq_ignore_ascii_case(&s.sha256) {
            bail!(
                "shard {}: {} bytes, sha256 {actual}; the index says {} bytes, {}",
                path.display(),
                data.len(),
                s.bytes,
                s.sha256
            );
        }
        out.push(LocalFile {
            role: "dataset shard",
            at: &[],
            uri: s.uri.clone(),
            path,
            key: format!("datasets/{sha}/{}", s.uri),
        });
    }
    Ok(out)
}

/// The spec with the URIs at these JSON paths replaced, everything else as written.
fn with_uris(spec_bytes: &[u8], uris: &[(&[&str], String)]) -> Result<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(spec_bytes)?;
    for (at, uri) in uris {
        let mut node = &mut v;
        for key in *at {
            node = &mut node[*key];
        }
        *node = Value::String(uri.clone());
    }
    let mut out = serde_json::to_vec_pretty(&v)?;
    out.push(b'\n');
    Ok(out)
}

fn check_uri(uri: &str) -> Result<()> {
    if uri.is_empty() || uri.len() > MAX_URI_LEN {
        bail!("spec URI {uri:?}: must be 1 to {MAX_URI_LEN} bytes");
    }
    Ok(())
}

/// A reward the program accepts and a worker can be paid from.
fn check_reward(reward: u64, min: u64, market: &Market, unit: Unit) -> Result<()> {
    // Paid into a wallet, less than an empty account's rent could not even be received (a
    // token market's worker is paid in tokens, withdrawn to its own token account).
    if unit.mint.is_none() && reward < min {
        bail!(
            "reward {} SOL is below the rent-exempt minimum of {} SOL: a worker could not receive it",
            sol(reward),
            sol(min)
        );
    }
    let terms = market.job_terms();
    if terms.collateral(reward).map_or(true, |c| c == 0) {
        bail!(
            "reward {} is too small for this market's collateral rule",
            unit.show(reward)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_uri_rewrite_keeps_the_rest() {
        let spec = std::fs::read("../../jobs/digits-mlp.json").unwrap();
        let out = with_uris(&spec, &[(&["dataset", "uri"], "s3://b/datasets/x".into())]).unwrap();
        let a: Value = serde_json::from_slice(&spec).unwrap();
        let mut b: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(b["dataset"]["uri"], "s3://b/datasets/x");
        b["dataset"]["uri"] = a["dataset"]["uri"].clone();
        assert_eq!(a, b);
        JobSpec::from_json(&out).unwrap();
    }

    /// A sharded dataset's local index goes to a folder of its own with its shards beside
    /// it under their names (so the names it gives resolve there), its tokenizer is rewritten
    /// where the shard format holds it; a shard named outside the index's folder, or not the
    /// bytes the index says, is refused before anything is uploaded.
    #[test]
    fn a_sharded_datasets_index_goes_up_with_its_shards_beside_it() {
        let path = Path::new("../../jobs/kjv-gpt2-shards.json");
        let bytes = std::fs::read(path).unwrap();
        let spec = JobSpec::from_json(&bytes).unwrap();
        let local = local_files(path, &spec).unwrap();
        let index_sha = spec.dataset.sha256.clone();
        let shards: Vec<&LocalFile> = local.iter().filter(|f| f.role == "dataset shard").collect();
        assert_eq!(shards.len(), 9);
        assert_eq!(
            shards[3].key,
            format!("datasets/{index_sha}/part-00003.bin")
        );
        assert!(shards.iter().all(|f| f.at.is_empty()));
        let index = local.iter().find(|f| f.role == "dataset").unwrap();
        assert_eq!(index.key, format!("datasets/{index_sha}/index.json"));
        let tk = local
            .iter()
            .find(|f| f.role == "dataset.format.tokenizer")
            .unwrap();
        let uris: Vec<(&[&str], String)> = local
            .iter()
            .filter(|f| !f.at.is_empty())
            .map(|f| (f.at, format!("s3://b/{}", f.key)))
            .collect();
        let out = with_uris(&bytes, &uris).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v["dataset"]["format"]["shard_format"]["tokenizer"]["uri"],
            format!("s3://b/{}", tk.key)
        );
        assert_eq!(
            v["dataset"]["uri"],
            format!("s3://b/datasets/{index_sha}/index.json")
        );
        JobSpec::from_json(&out).unwrap();

        // An index naming a shard outside its folder; one whose shard changed.
        let dir = tempfile::tempdir().unwrap();
        let shard: Vec<u8> = (0..200u16).flat_map(|i| (i % 50).to_le_bytes()).collect();
        std::fs::write(dir.path().join("s.bin"), &shard).unwrap();
        let write = |uri: &str, bytes: usize| {
            let index = serde_json::json!({"shards": [
                {"uri": uri, "sha256": sha256_hex(&shard), "bytes": bytes},
                {"uri": "s.bin", "sha256": sha256_hex(&shard), "bytes": 400},
            ]})
            .to_string();
            std::fs::write(dir.path().join("index.json"), &index).unwrap();
            let mut v: Value = serde_json::from_slice(&bytes_of(path)).unwrap();
            v["dataset"]["uri"] = "file:index.json".into();
            v["dataset"]["sha256"] = sha256_hex(index.as_bytes()).into();
            v["dataset"]["format"]["shard_format"]
                .as_object_mut()
                .unwrap()
                .remove("tokenizer");
            let p = dir.path().join("spec.json");
            std::fs::write(&p, v.to_string()).unwrap();
            let spec = JobSpec::from_json(v.to_string().as_bytes()).unwrap();
            local_files(&p, &spec)
                .map(|l| l.len())
                .map_err(|e| format!("{e:#}"))
        };
        assert_eq!(write("s.bin", 400), Ok(3));
        let e = write("../s.bin", 400).unwrap_err();
        assert!(
            e.contains("not a URI (s3://, https://) nor a plain relative path"),
            "{e}"
        );
        let e = write("index.json", 400).unwrap_err();
        assert!(e.contains("name a shard relative to its index"), "{e}");
        let e = write("s.bin", 402).unwrap_err();
        assert!(e.contains("the index says 402 bytes"), "{e}");
        // What a worker would refuse, refused here: a shard too short to train on.
        let e = write("s.bin", 20).unwrap_err();
        assert!(e.contains("too short for one training sample"), "{e}");
    }

    fn bytes_of(p: &Path) -> Vec<u8> {
        std::fs::read(p).unwrap()
    }

    /// A fine-tune's local files are found, checked and rewritten with the dataset: three
    /// uploads, each by content, and a spec naming them; a file that is not the size or hash
    /// its spec states is refused before anything is uploaded.
    #[test]
    fn a_finetunes_local_files_are_checked_and_rewritten() {
        let path = Path::new("../../jobs/kjv-gpt2-web.json");
        let bytes = std::fs::read(path).unwrap();
        let spec = JobSpec::from_json(&bytes).unwrap();
        let local = local_files(path, &spec).unwrap();
        let roles: Vec<&str> = local.iter().map(|f| f.role).collect();
        assert_eq!(roles, ["dataset", "dataset.format.tokenizer", "model.init"]);
        assert!(local[2].key.starts_with("files/05c3c77f"));
        let uris: Vec<(&[&str], String)> = local
            .iter()
            .map(|f| (f.at, format!("s3://b/{}", f.key)))
            .collect();
        let out: Value = serde_json::from_slice(&with_uris(&bytes, &uris).unwrap()).unwrap();
        assert_eq!(
            out["model"]["init"]["uri"],
            format!("s3://b/{}", local[2].key)
        );
        assert_eq!(
            out["dataset"]["format"]["tokenizer"]["uri"],
            format!("s3://b/{}", local[1].key)
        );
        assert_eq!(out["model"]["init"]["bytes"], 6_965_320);

        let mut v: Value = serde_json::from_slice(&bytes).unwrap();
        v["model"]["init"]["bytes"] = 6_965_319.into();
        let dir = tempfile::tempdir().unwrap();
        let moved = dir.path().join("jobs/x.json");
        std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
        for d in ["data/kjv-gpt2", "data"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        for f in [
            "data/web-nt.txt",
            "data/kjv-gpt2/tokenizer.json",
            "data/kjv-gpt2/model.safetensors",
        ] {
            std::fs::copy(Path::new("../..").join(f), dir.path().join(f)).unwrap();
        }
        let spec = JobSpec::from_json(&serde_json::to_vec(&v).unwrap()).unwrap();
        let e = local_files(&moved, &spec).err().unwrap().to_string();
        assert!(
            e.contains("model.init") && e.contains("not the size"),
            "{e}"
        );
        v["model"]["init"]["bytes"] = 6_965_320.into();
        v["model"]["init"]["sha256"] = "ab".repeat(32).into();
        let spec = JobSpec::from_json(&serde_json::to_vec(&v).unwrap()).unwrap();
        let e = local_files(&moved, &spec).err().unwrap().to_string();
        assert!(
            e.contains("model.init") && e.contains("sha256 is 05c3c77f"),
            "{e}"
        );
    }
}
