//! `cargo run -p tensorgrid-harness --bin idl` regenerates `idl/tensorgrid.json`;
//! with `--check` it only reports whether the committed file is stale.

use anyhow::{bail, Context};
use tensorgrid_harness::idl::{build_idl_json, idl_path};

fn main() -> anyhow::Result<()> {
    let check = std::env::args().any(|a| a == "--check");
    let fresh = build_idl_json()?;
    let path = idl_path();
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if check {
        if committed != fresh {
            bail!(
                "{} is stale: run `cargo run -p tensorgrid-harness --bin idl`",
                path.display()
            );
        }
        println!("{} is up to date", path.display());
        return Ok(());
    }
    std::fs::create_dir_all(path.parent().expect("idl/ dir"))?;
    std::fs::write(&path, fresh).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}
