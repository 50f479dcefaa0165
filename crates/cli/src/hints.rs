//! Commands suggested to the user, spelled the way this program was started: `tensorgrid` when
//! installed, `cargo run -p …` when it runs from a checkout's `target/`.

use std::path::Path;

/// Whether this executable is a build inside a checkout (`…/target/{debug,release}/…` next to
/// a `Cargo.toml`).
fn from_checkout() -> bool {
    let Ok(exe) = std::env::current_exe() else {
        return false;
    };
    exe.ancestors()
        .find(|d| d.file_name().is_some_and(|n| n == "target"))
        .and_then(Path::parent)
        .is_some_and(|root| root.join("Cargo.toml").is_file())
}

/// How to run the wallet CLI.
pub fn cli() -> &'static str {
    if from_checkout() {
        "cargo run -q -p tensorgrid-cli --"
    } else {
        "tensorgrid"
    }
}

/// How to run the worker daemon.
pub fn worker() -> &'static str {
    if from_checkout() {
        "cargo run -q -p tensorgrid-worker --"
    } else {
        "tensorgrid-worker"
    }
}
