//! Builds the program's IDL on the host (Anchor's `idl-build` feature, no Anchor CLI needed).

use std::path::{Path, PathBuf};

use anchor_lang_idl::build::IdlBuilder;
use anyhow::Context;

/// Workspace root (this crate lives in `<root>/tests`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Where the committed IDL lives.
pub fn idl_path() -> PathBuf {
    workspace_root().join("idl/tensorgrid.json")
}

/// Builds the IDL and renders it as the committed file is written: pretty JSON plus a newline.
pub fn build_idl_json() -> anyhow::Result<String> {
    let root = workspace_root();
    // anchor-lang-idl turns a set RUSTUP_TOOLCHAIN into a broken `cargo +{toolchain}` argument;
    // the toolchain rustup picks from the workspace is the right one anyway.
    std::env::remove_var("RUSTUP_TOOLCHAIN");
    // A separate target dir: the `idl-build` feature rebuilds anchor-lang differently, and a
    // nested cargo must not wait on the outer one's build lock.
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"))
        .join("idl-build");
    let idl = IdlBuilder::new()
        .program_path(root.join("programs/tensorgrid"))
        .cargo_args(vec!["--target-dir".into(), target.display().to_string()])
        .build()
        .context("building the IDL (cargo test --features idl-build in programs/tensorgrid)")?;
    Ok(serde_json::to_string_pretty(&idl)? + "\n")
}
