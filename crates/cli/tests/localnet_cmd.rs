//! `tensorgrid localnet`: serves JSON-RPC on the ports asked for, prints where everything is,
//! stops cleanly on Ctrl-C (SIGINT), and with `--ledger` a restart keeps the chain's state.

mod common;

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use solana_keypair::Keypair;
use solana_signer::Signer;
use tensorgrid_client::{
    instructions as ix, pda,
    rpc::ChainClient,
    state::{DeviceKind, Hardware},
    tensorgrid::instructions::WorkerRegisterArgs,
};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the command and reads its stdout until the "Ctrl-C" line; returns the lines.
fn start(dir: &Path, rpc: u16, ws: u16, extra: &[&str]) -> (Child, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tensorgrid"))
        .current_dir(dir)
        .args([
            "localnet",
            "--rpc-port",
            &rpc.to_string(),
            "--ws-port",
            &ws.to_string(),
            "--slot-ms",
            "50",
            "--s3-port",
            "0",
        ])
        .args(extra)
        // Run from outside the checkout, the binary may sit in a target directory elsewhere
        // (CI's CARGO_TARGET_DIR): name this checkout's bytecode rather than rely on finding it.
        .env("TENSORGRID_SO", common::so_path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    loop {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "exited early; printed {lines:#?}"
        );
        let done = line.contains("Ctrl-C");
        lines.push(line.trim_end().to_string());
        if done {
            break;
        }
    }
    (child, lines)
}

fn interrupt_and_wait(mut child: Child) {
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status after Ctrl-C: {status}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "did not stop within 20 s of Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn field<'a>(lines: &'a [String], name: &str) -> &'a str {
    lines
        .iter()
        .find_map(|l| l.trim_start().strip_prefix(name))
        .map(|rest| rest.split_whitespace().next().unwrap())
        .unwrap_or_else(|| panic!("no {name} line in {lines:#?}"))
}

#[test]
fn serves_prints_where_everything_is_and_stops_on_ctrl_c_keeping_state_in_its_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let (rpc, ws) = (free_port(), free_port());
    let (child, lines) = start(dir.path(), rpc, ws, &["--ledger", "ledger"]);
    let url = format!("http://127.0.0.1:{rpc}");
    assert_eq!(field(&lines, "JSON-RPC"), url);
    assert_eq!(field(&lines, "websocket"), format!("ws://127.0.0.1:{ws}"));
    let market = field(&lines, "market").parse().unwrap();
    assert!(lines.iter().any(|l| l.contains("solana config set --url")));
    for name in ["payer", "poster", "worker"] {
        assert!(
            dir.path()
                .join(format!(".tensorgrid/localnet/keys/{name}.json"))
                .is_file(),
            "{name} keypair file"
        );
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = ChainClient::for_url(&url).unwrap();
    let params = runtime
        .block_on(client.market(&market))
        .expect("the market exists")
        .params;
    // The worker's keypair file is funded: it registers, a state change to survive restarts.
    let bytes: Vec<u8> = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(".tensorgrid/localnet/keys/worker.json")).unwrap(),
    )
    .unwrap();
    let operator = Keypair::try_from(&bytes[..]).unwrap();
    assert_eq!(field(&lines, "worker"), operator.pubkey().to_string());
    let args = WorkerRegisterArgs {
        stake: 2_000_000_000,
        hardware: Hardware {
            device: DeviceKind::Cpu,
            vram_mib: 0,
            label: "cpu".into(),
        },
    };
    runtime
        .block_on(client.send(
            &[ix::worker_register(operator.pubkey(), market, args)],
            &[&operator],
        ))
        .unwrap();
    let worker = pda::worker(&market, &operator.pubkey()).0;
    interrupt_and_wait(child);
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", rpc)).is_ok(),
        "the RPC port is free again"
    );

    // Same ledger: the same market (not created twice), the same keys.
    let (child, lines) = start(dir.path(), rpc, ws, &["--ledger", "ledger"]);
    assert_eq!(
        field(&lines, "market")
            .parse::<tensorgrid_client::anchor_lang::prelude::Pubkey>()
            .unwrap(),
        market
    );
    assert_eq!(
        runtime.block_on(client.market(&market)).unwrap().params,
        params
    );
    let registered = runtime
        .block_on(client.worker(&worker))
        .unwrap()
        .expect("the worker survived the restart");
    assert_eq!(registered.stake, 2_000_000_000);
    interrupt_and_wait(child);

    // --reset: an empty chain again (only the market, created anew at the same address).
    let (child, lines) = start(dir.path(), rpc, ws, &["--ledger", "ledger", "--reset"]);
    assert_eq!(field(&lines, "market"), market.to_string());
    assert!(
        runtime.block_on(client.worker(&worker)).unwrap().is_none(),
        "reset: no worker"
    );
    interrupt_and_wait(child);
}
