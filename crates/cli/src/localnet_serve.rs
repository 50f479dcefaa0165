//! `tensorgrid localnet` itself: the embedded chain and S3 store kept up until Ctrl-C (the
//! default feature `localnet`; a lean wallet build leaves it out).

use anyhow::{Context, Result};
use solana_signer::Signer;
use tensorgrid_client::program_id;
use tensorgrid_localnet::{default_market_params, s3, LocalS3, LocalnetBuilder, ProgramSource};

use crate::localnet_cmd::LocalnetArgs;

pub async fn serve(a: LocalnetArgs) -> Result<()> {
    if a.reset {
        if let Some(ledger) = &a.ledger {
            let db = ledger.join("surfnet.sqlite");
            for file in [
                db.clone(),
                db.with_extension("sqlite-wal"),
                db.with_extension("sqlite-shm"),
            ] {
                if file.exists() {
                    std::fs::remove_file(&file)
                        .with_context(|| format!("removing {}", file.display()))?;
                }
            }
        }
    }
    let mut builder = LocalnetBuilder::default()
        .rpc_port(a.rpc_port)
        .ws_port(a.ws_port)
        .slot_time_ms(a.slot_ms)
        .keypair_dir(&a.keypair_dir)
        .accounts(a.accounts.clone())
        .lamports_each(a.sol_each.saturating_mul(tensorgrid_localnet::SOL));
    if let Some(p) = &a.program {
        builder = builder.program(ProgramSource::Path(p.clone()));
    }
    if let Some(l) = &a.ledger {
        builder = builder.ledger(l);
    }
    if !a.no_market {
        builder = builder.market(default_market_params()).usdc(a.usdc);
    }
    let mut s3 = LocalS3::start(&a.s3_dir, s3::LOCAL_BUCKET, a.s3_port)?;
    let mut net = builder.start().await?;
    print_summary(&net, &s3);
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    eprintln!("\nstopping the local chain...");
    net.stop()?;
    s3.stop();
    eprintln!("stopped");
    Ok(())
}

/// The commands to run next, in other terminals, with this chain's URL and keypair files.
fn print_next(net: &tensorgrid_localnet::Localnet, s3: &LocalS3) {
    let (cli, worker) = (crate::hints::cli(), crate::hints::worker());
    let url = net.rpc_url();
    let key = |name: &str| {
        net.accounts()
            .iter()
            .find(|a| a.name == name)
            .and_then(|a| a.path.as_ref())
            .map(|p| p.display().to_string())
    };
    println!("Next, in other terminals (after the exports above):");
    if let Some(w) = key("worker") {
        // In the test USDC market the stake is in its units (the worker has no default for a
        // token): one, the market's minimum.
        let stake = if net.mint().is_some() {
            " --stake 1"
        } else {
            ""
        };
        println!(
            "  {worker} -u {url} -k {w} --store {}{stake}     # a worker",
            s3.store_url()
        );
    }
    if let Some(p) = key("poster") {
        println!("  {cli} job post --spec jobs/digits-mlp.json --reward 1 --max-duration 1h -u {url} -k {p}");
        println!("  {cli} job watch 0 -u {url} -k {p}     # then job verify 0, job accept 0");
    }
    println!("  {cli} keygen -o me.json && {cli} airdrop 10 -u {url} -k me.json     # a wallet of your own");
    println!("  {cli} localnet warp 1h -u {url}     # move the chain's clock (deadlines, windows)");
}

fn print_summary(net: &tensorgrid_localnet::Localnet, s3: &LocalS3) {
    let payer = net.payer();
    let file = |a: &tensorgrid_localnet::NamedAccount| {
        a.path
            .as_ref()
            .map_or_else(|| "(in memory)".to_string(), |p| p.display().to_string())
    };
    println!("tensorgrid local chain up in {:.0?}", net.started_in());
    println!("  JSON-RPC   {}", net.rpc_url());
    println!("  websocket  {}", net.ws_url());
    println!(
        "  program    {}  ({})",
        program_id(),
        net.program_path().display()
    );
    if let Some(market) = net.market() {
        println!("  market     {market}  (authority: payer)");
        if let Some(mint) = net.mint() {
            println!("  test USDC  {mint}  (6 decimals; 1,000,000 in each wallet's token account)");
        }
    }
    println!("  payer      {}  {}", payer.keypair.pubkey(), file(payer));
    for a in net.accounts() {
        println!("  {:<10} {}  {}", a.name, a.keypair.pubkey(), file(a));
    }
    println!();
    println!("Solana CLI:   solana config set --url {}", net.rpc_url());
    if let Some(a) = net.accounts().first() {
        println!(
            "              solana balance --url {} --keypair {}",
            net.rpc_url(),
            file(a)
        );
    }
    println!(
        "Other tools:  --url {} (websocket {}){}",
        net.rpc_url(),
        net.ws_url(),
        net.market()
            .map_or(String::new(), |m| format!(" --market {m}"))
    );
    println!(
        "Artifacts:    S3 at {} (bucket {}, objects in {})",
        s3.endpoint(),
        s3::LOCAL_BUCKET,
        s3.dir().display()
    );
    println!("              for tensorgrid and any S3 client, in your shell:");
    for (k, v) in s3.env() {
        println!("              export {k}={v}");
    }
    println!("              export TENSORGRID_STORE={}", s3.store_url());
    print_next(net, s3);
    println!("Ctrl-C stops the chain.");
}
