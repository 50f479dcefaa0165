//! Finding the program's `.so`, and building it when it is missing.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

/// Where the bytecode comes from.
#[derive(Debug, Clone)]
pub enum ProgramSource {
    /// This file.
    Path(PathBuf),
    /// `TENSORGRID_SO`, else `target/deploy/tensorgrid.so` of the checkout found from the
    /// current directory upwards, else of the checkout the running program sits in (its
    /// `target/…/tensorgrid`), built by `scripts/build-sbf.sh` when missing. Never a path
    /// fixed when this crate was compiled: that would be another checkout's.
    Workspace,
}

const SO: &str = "target/deploy/tensorgrid.so";
const BUILD_SCRIPT: &str = "scripts/build-sbf.sh";

/// The tensorgrid checkout holding `dir`, if any: a workspace with the program's crate whose
/// build script belongs to this user and nobody else may change (it is run when the `.so` is
/// missing: a script another user planted above the working directory must never be).
fn checkout_of(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| d.join(BUILD_SCRIPT).is_file() && d.join(PROGRAM_CRATE).is_file())
        .filter(|d| ours(&d.join(BUILD_SCRIPT)))
        .map(Path::to_path_buf)
}

const PROGRAM_CRATE: &str = "programs/tensorgrid/Cargo.toml";

/// Owned by the user running this, and writable by nobody else.
#[cfg(unix)]
fn ours(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    std::fs::metadata(path).is_ok_and(|m| m.uid() == uid && m.mode() & 0o022 == 0)
}

#[cfg(not(unix))]
fn ours(_: &Path) -> bool {
    true
}

fn workspace_root() -> Option<PathBuf> {
    let from_cwd = std::env::current_dir().ok().and_then(|d| checkout_of(&d));
    from_cwd.or_else(|| {
        let exe = std::env::current_exe().ok()?;
        checkout_of(exe.parent()?)
    })
}

/// The `.so` to load, building it first if it is the workspace's and missing.
pub fn find_program(source: &ProgramSource) -> Result<PathBuf, String> {
    match source {
        ProgramSource::Path(p) if p.is_file() => Ok(p.clone()),
        ProgramSource::Path(p) => Err(format!("{}: no such program file", p.display())),
        ProgramSource::Workspace => {
            if let Some(p) = std::env::var_os("TENSORGRID_SO") {
                return find_program(&ProgramSource::Path(p.into()));
            }
            let root = workspace_root().ok_or_else(|| {
                format!(
                    "no tensorgrid.so: run this from a tensorgrid checkout (its {SO} is used, \
                     built with `bash {BUILD_SCRIPT}` when missing), or pass --program PATH or \
                     set TENSORGRID_SO=PATH"
                )
            })?;
            let so = root.join(SO);
            if so.is_file() {
                return Ok(so);
            }
            build(&root)?;
            if so.is_file() {
                Ok(so)
            } else {
                Err(format!(
                    "{BUILD_SCRIPT} finished but {} is missing",
                    so.display()
                ))
            }
        }
    }
}

fn build(root: &Path) -> Result<(), String> {
    eprintln!(
        "{SO} is missing: building it with {BUILD_SCRIPT} (the first build installs a pinned \
         nightly toolchain and sbpf-linker: about 4 minutes on two cores; later builds take about one)"
    );
    let started = Instant::now();
    let status = Command::new("bash")
        .arg(root.join(BUILD_SCRIPT))
        .current_dir(root)
        .status()
        .map_err(|e| format!("running {BUILD_SCRIPT}: {e}"))?;
    if !status.success() {
        return Err(format!("{BUILD_SCRIPT} failed ({status})"));
    }
    eprintln!("built {SO} in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}
