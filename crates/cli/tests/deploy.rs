//! Deploying as on devnet: the program built for an address of our own
//! (`scripts/build-sbf.sh --program-id`) goes onto the embedded chain through the upgradeable
//! loader's own instructions over JSON-RPC — a buffer written in transaction-sized chunks, the
//! deploy, the upgrade authority set to the deployer and then handed to another key — and
//! `migrations/deploy.ts` creates the market against it. No cheatcode on that path: the only
//! privileged step is the chain's genesis funding of the wallets.
//!
//! Devnet's exact feature set cannot be read offline; devnet activates each feature gate
//! before mainnet does, so the test runs under mainnet's set (the floor) and under every gate
//! this agave version knows (the ceiling). The rent it measures is printed for the README.

mod common;

use std::process::Command;

use futures_util::{stream, StreamExt, TryStreamExt};
use solana_keypair::Keypair;
use solana_loader_v3_interface::{
    get_program_data_address, instruction as loader, state::UpgradeableLoaderState,
};
use solana_signer::Signer;
use tensorgrid_client::{
    anchor_lang::prelude::Pubkey, decode_account, instructions::Instruction, rpc::ChainClient,
    state::Market,
};
use tensorgrid_localnet::{default_market_params, Features, LocalnetBuilder};

/// The throwaway program keypair the test deploys under: derived from a public seed, worth
/// nothing anywhere. `scripts/test.sh` builds `target/deploy/tensorgrid-<its address>.so`.
fn program_keypair() -> Keypair {
    Keypair::new_from_array([42; 32])
}
const PROGRAM_ADDRESS: &str = "2iXtA8oeZqUU5pofxK971TCEvFGfems2AcDRaZHKD2pQ";

/// What a deploy cost the deployer, in lamports.
#[derive(Debug, PartialEq, Eq)]
struct Costs {
    program_rent: u64,
    program_data_rent: u64,
    buffer_rent: u64,
    fees: u64,
    writes: usize,
    chunk: usize,
}

/// The largest write that fits one transaction with its fee payer, its authority and the
/// compute-budget instructions every send adds: measured on the serialized transaction.
fn chunk_size(buffer: &Pubkey, payer: &Keypair, authority: &Keypair) -> usize {
    use solana_compute_budget_interface::ComputeBudgetInstruction;
    let instructions = [
        ComputeBudgetInstruction::set_compute_unit_limit(u32::MAX),
        ComputeBudgetInstruction::set_compute_unit_price(u64::MAX),
        loader::write(buffer, &authority.pubkey(), 0, Vec::new()),
    ];
    let message = solana_message::Message::new(&instructions, Some(&payer.pubkey()));
    let signatures = usize::from(message.header.num_required_signatures);
    let empty = 1 + 64 * signatures + wire_len(&message);
    // The data's length prefix grows from one byte to two once the data passes 127 bytes.
    PACKET_DATA_SIZE - empty - 1
}

/// The most bytes a transaction may take on the wire.
const PACKET_DATA_SIZE: usize = 1232;

/// A legacy message's serialized length: header, keys, blockhash, instructions, each list
/// behind a compact-u16 length.
fn wire_len(m: &solana_message::Message) -> usize {
    let compact = |n: usize| match n {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        _ => 3,
    };
    let instructions: usize = m
        .instructions
        .iter()
        .map(|ix| {
            1 + compact(ix.accounts.len())
                + ix.accounts.len()
                + compact(ix.data.len())
                + ix.data.len()
        })
        .sum();
    3 + compact(m.account_keys.len())
        + 32 * m.account_keys.len()
        + 32
        + compact(m.instructions.len())
        + instructions
}

async fn send(client: &ChainClient, instructions: &[Instruction], signers: &[&Keypair]) -> u64 {
    client
        .send_and_fetch(instructions, signers)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .fee
}

/// Writes `bytes` into a new buffer, deploys it at `program` with `deployer` as upgrade
/// authority and returns what it cost `payer`.
async fn deploy(
    client: &ChainClient,
    payer: &Keypair,
    deployer: &Keypair,
    program: &Keypair,
    bytes: &[u8],
) -> Costs {
    let buffer = Keypair::new();
    let buffer_len = UpgradeableLoaderState::size_of_buffer(bytes.len());
    let buffer_rent = client.rent_exempt(buffer_len).await.unwrap();
    let mut fees = send(
        client,
        &loader::create_buffer(
            &payer.pubkey(),
            &buffer.pubkey(),
            &deployer.pubkey(),
            buffer_rent,
            bytes.len(),
        )
        .unwrap(),
        &[payer, &buffer],
    )
    .await;
    let chunk = chunk_size(&buffer.pubkey(), payer, deployer);
    let writes: Vec<u64> = stream::iter(bytes.chunks(chunk).enumerate())
        .map(|(i, data)| {
            let ix = loader::write(
                &buffer.pubkey(),
                &deployer.pubkey(),
                u32::try_from(i * chunk).unwrap(),
                data.to_vec(),
            );
            async move {
                Ok::<_, std::convert::Infallible>(send(client, &[ix], &[payer, deployer]).await)
            }
        })
        .buffer_unordered(16)
        .try_collect()
        .await
        .unwrap();
    fees += writes.iter().sum::<u64>();
    let written = client.account(&buffer.pubkey()).await.unwrap().unwrap();
    assert_eq!(
        &written.data[UpgradeableLoaderState::size_of_buffer_metadata()..],
        bytes,
        "the buffer holds the .so"
    );

    let program_rent = client
        .rent_exempt(UpgradeableLoaderState::size_of_program())
        .await
        .unwrap();
    let program_data_rent = client
        .rent_exempt(UpgradeableLoaderState::size_of_programdata(bytes.len()))
        .await
        .unwrap();
    #[allow(deprecated)] // the upgradeable loader's deploy, as `solana program deploy` sends it
    let deploy_ixs = loader::deploy_with_max_program_len(
        &payer.pubkey(),
        &program.pubkey(),
        &buffer.pubkey(),
        &deployer.pubkey(),
        program_rent,
        bytes.len(),
    )
    .unwrap();
    fees += send(client, &deploy_ixs, &[payer, program, deployer]).await;
    assert!(
        client.account(&buffer.pubkey()).await.unwrap().is_none(),
        "the deploy closes the buffer and returns its rent"
    );
    Costs {
        program_rent,
        program_data_rent,
        buffer_rent,
        fees,
        writes: writes.len(),
        chunk,
    }
}

/// The upgrade authority recorded in the program's data account.
async fn upgrade_authority(client: &ChainClient, program: &Pubkey) -> Option<Pubkey> {
    let data = client
        .account(&get_program_data_address(program))
        .await
        .unwrap()
        .expect("program data account");
    // ProgramData: u32 tag 3, u64 slot, then an Option<Pubkey> (one byte, then the key).
    let d = &data.data;
    assert_eq!(d[..4], 3u32.to_le_bytes(), "not a program data account");
    match d[12] {
        0 => None,
        1 => Some(Pubkey::try_from(&d[13..45]).unwrap()),
        tag => panic!("option tag {tag}"),
    }
}

fn so_path() -> std::path::PathBuf {
    common::repo().join(format!("target/deploy/tensorgrid-{PROGRAM_ADDRESS}.so"))
}

async fn deploy_and_create_market(features: Features) {
    assert_eq!(program_keypair().pubkey().to_string(), PROGRAM_ADDRESS);
    let so = so_path();
    let bytes = std::fs::read(&so).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: build it with `bash scripts/build-sbf.sh --program-id {PROGRAM_ADDRESS}` \
             (scripts/test.sh does)",
            so.display()
        )
    });
    let script = common::repo().join(".tsbuild/migrations/deploy.js");
    assert!(
        script.exists(),
        "{} is missing: run `npm ci && npm run build` (scripts/test.sh does)",
        script.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let net = LocalnetBuilder::for_tests()
        .features(features)
        .keypair_dir(dir.path().join("keys"))
        .accounts(["deployer", "authority"])
        .start()
        .await
        .unwrap();
    let client = net.client();
    let (deployer, authority) = (net.account("deployer"), net.account("authority"));
    let program = program_keypair();
    assert!(client.account(&program.pubkey()).await.unwrap().is_none());
    let before = client.balance(&deployer.pubkey()).await.unwrap();

    let costs = deploy(client, deployer, deployer, &program, &bytes).await;
    let account = client.account(&program.pubkey()).await.unwrap().unwrap();
    assert!(account.executable);
    assert_eq!(
        account.owner.to_string(),
        "BPFLoaderUpgradeab1e11111111111111111111111"
    );
    assert_eq!(
        upgrade_authority(client, &program.pubkey()).await,
        Some(deployer.pubkey())
    );

    // Handed over: the new authority signs too (the checked form), so it cannot be a typo.
    let handover = loader::set_upgrade_authority_checked(
        &program.pubkey(),
        &deployer.pubkey(),
        &authority.pubkey(),
    );
    let fee = send(client, &[handover], &[deployer, authority]).await;
    assert_eq!(
        upgrade_authority(client, &program.pubkey()).await,
        Some(authority.pubkey())
    );
    let again = loader::set_upgrade_authority(
        &program.pubkey(),
        &deployer.pubkey(),
        Some(&deployer.pubkey()),
    );
    let refused = client.send(&[again], &[deployer]).await.unwrap_err();
    assert!(
        refused.to_string().contains("Incorrect authority")
            || refused.to_string().contains("IncorrectAuthority"),
        "the old authority is refused: {refused}"
    );
    let after = client.balance(&deployer.pubkey()).await.unwrap();
    // Exact: the deploy cost the program's two accounts' rent and the fees; the buffer's rent
    // came back. (The refused transaction was refused in simulation: nothing was charged.)
    assert_eq!(
        before - after,
        costs.program_rent + costs.program_data_rent + costs.fees + fee,
        "{costs:?}"
    );

    // The migration script creates the market against the deployed program.
    let out = Command::new("node")
        .arg(&script)
        .env("ANCHOR_PROVIDER_URL", net.rpc_url())
        .env("ANCHOR_WS_URL", net.ws_url())
        .env("ANCHOR_WALLET", keyfile(&net, "authority"))
        .env("TENSORGRID_PROGRAM_ID", PROGRAM_ADDRESS)
        .output()
        .expect("node must be installed to run migrations/deploy.ts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let market = Pubkey::find_program_address(
        &[b"market", authority.pubkey().as_ref(), &0u64.to_le_bytes()],
        &program.pubkey(),
    )
    .0;
    assert!(
        stdout.contains(&format!("market {market} created")),
        "{stdout}"
    );
    let market_account = client.account(&market).await.unwrap().unwrap();
    assert_eq!(market_account.owner, program.pubkey());
    let decoded: Market = decode_account(&market_account.data).unwrap();
    assert_eq!(decoded.authority, authority.pubkey());
    assert_eq!(decoded.params, default_market_params());

    let sol = |l: u64| l as f64 / 1e9;
    println!(
        "{features:?}: {} bytes written in {} transactions of ≤{} bytes; program rent {:.9} SOL + \
         program data {:.9} SOL; buffer {:.9} SOL returned on deploy; fees {:.9} SOL",
        bytes.len(),
        costs.writes,
        costs.chunk,
        sol(costs.program_rent),
        sol(costs.program_data_rent),
        sol(costs.buffer_rent),
        sol(costs.fees + fee)
    );
}

fn keyfile(net: &tensorgrid_localnet::Localnet, name: &str) -> std::path::PathBuf {
    net.accounts()
        .iter()
        .find(|a| a.name == name)
        .and_then(|a| a.path.clone())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_through_the_loader_under_mainnet_features_and_creates_the_market() {
    deploy_and_create_market(Features::Mainnet).await;
}

/// Why the build takes the address: tensorgrid's own `.so`, deployed elsewhere, refuses every
/// instruction (Anchor's entrypoint checks the program id it runs at).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_build_deployed_at_another_address_refuses_to_run() {
    let so = common::so_path();
    let bytes = std::fs::read(&so).unwrap_or_else(|e| panic!("{}: {e}", so.display()));
    let net = LocalnetBuilder::for_tests()
        .accounts(["deployer"])
        .start()
        .await
        .unwrap();
    let (client, deployer) = (net.client(), net.account("deployer"));
    let elsewhere = Keypair::new_from_array([43; 32]);
    deploy(client, deployer, deployer, &elsewhere, &bytes).await;
    let mut ix = tensorgrid_client::instructions::market_init(
        deployer.pubkey(),
        tensorgrid_client::tensorgrid::instructions::MarketInitArgs {
            market_id: 0,
            params: default_market_params(),
        },
    );
    ix.program_id = elsewhere.pubkey();
    let refused = client
        .send(&[ix], &[deployer])
        .await
        .unwrap_err()
        .to_string();
    // DeclaredProgramIdMismatch: Anchor's error 4100.
    assert!(
        refused.contains("0x1004") || refused.contains("DeclaredProgramIdMismatch"),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_through_the_loader_under_every_feature_and_creates_the_market() {
    deploy_and_create_market(Features::All).await;
}
