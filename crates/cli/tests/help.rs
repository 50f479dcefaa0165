//! Every command's help is complete: each flag and argument says what it is, each command
//! that does something shows an example, and commands that neither spend nor train do not
//! offer --yes or --threads; output into a closed pipe ends quietly.

use clap::CommandFactory;
use tensorgrid_cli::Cli;

/// (path, command) for every command in the tree.
fn walk(cmd: &clap::Command, path: String, out: &mut Vec<(String, clap::Command)>) {
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let p = format!("{path} {}", sub.get_name());
        out.push((p.clone(), sub.clone()));
        walk(sub, p, out);
    }
}

fn commands() -> Vec<(String, clap::Command)> {
    let mut root = Cli::command();
    root.build();
    let mut out = Vec::new();
    walk(&root, "tensorgrid".into(), &mut out);
    out
}

#[test]
fn every_flag_and_argument_is_described() {
    let mut missing = Vec::new();
    for (path, cmd) in commands() {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path}: {id}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "no description:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_command_that_runs_shows_an_example() {
    let mut missing = Vec::new();
    for (path, cmd) in commands() {
        // A group of subcommands (job, market, worker) is not run itself.
        if cmd.has_subcommands() && cmd.is_subcommand_required_set() {
            continue;
        }
        let after = cmd
            .get_after_help()
            .map(|h| h.to_string())
            .unwrap_or_default();
        if !after.contains("Example") {
            missing.push(path);
        }
    }
    assert!(missing.is_empty(), "no example:\n{}", missing.join("\n"));
}

#[test]
fn only_commands_that_spend_or_train_offer_yes_or_threads() {
    // The commands that ask before sending a transaction.
    const SPEND: [&str; 16] = [
        "job post",
        "job refunds",
        "job accept",
        "job dispute",
        "job cancel",
        "job finalize",
        "job reclaim",
        "job resolve",
        "market create",
        "market update",
        "market pause",
        "market resume",
        "market withdraw-fees",
        "worker register",
        "worker update",
        "worker deregister",
    ];
    const TRAIN: [&str; 5] = ["train", "verify", "bench", "demo", "job verify"];
    let mut wrong = Vec::new();
    for (path, cmd) in commands() {
        let name = path.trim_start_matches("tensorgrid ");
        let has = |flag: &str| cmd.get_arguments().any(|a| a.get_long() == Some(flag));
        if has("yes") != SPEND.contains(&name) && !cmd.is_subcommand_required_set() {
            wrong.push(format!(
                "{name}: --yes {}",
                if has("yes") { "offered" } else { "missing" }
            ));
        }
        if has("threads") != TRAIN.contains(&name) && !cmd.is_subcommand_required_set() {
            wrong.push(format!(
                "{name}: --threads {}",
                if has("threads") { "offered" } else { "missing" }
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The examples are real command lines: each parses (addresses and hashes shortened with
/// "…" in the text stand for real ones).
#[test]
fn every_example_parses() {
    use clap::Parser;
    let mut bad = Vec::new();
    let mut seen = 0;
    for (path, cmd) in commands() {
        let after = cmd
            .get_after_help()
            .map(|h| h.to_string())
            .unwrap_or_default();
        for line in after.lines().map(str::trim) {
            let Some(rest) = line.strip_prefix("tensorgrid ") else {
                continue;
            };
            let command = rest.split('#').next().unwrap_or_default();
            let mut argv = vec!["tensorgrid".to_string()];
            for word in command.split_whitespace() {
                argv.push(match word {
                    w if w.contains('…') && w.len() < 20 && w.starts_with("5e0c") => {
                        "ab".repeat(32)
                    }
                    w if w.contains('…') => "11111111111111111111111111111111".into(),
                    w => w.into(),
                });
            }
            seen += 1;
            if let Err(e) = Cli::try_parse_from(&argv) {
                bad.push(format!(
                    "{path}: {line}: {}",
                    e.to_string().lines().next().unwrap_or("")
                ));
            }
        }
    }
    assert!(seen >= 30, "only {seen} examples");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// Output piped into a reader that stopped (`tensorgrid … | head -1`) ends the command
/// quietly with the shell's code for it (141), not a panic with a backtrace.
#[test]
fn a_reader_that_stops_ends_the_command_quietly() {
    let home = tempfile::tempdir().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tensorgrid"))
        .args(["keygen", "-o"])
        .arg(home.path().join("k.json"))
        .env("HOME", home.path())
        .env("RUST_BACKTRACE", "1")
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The work before the write was done: the keypair is there.
    assert!(home.path().join("k.json").is_file());
}
