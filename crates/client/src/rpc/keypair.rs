//! Keys as the Solana CLI names them: a keypair file (a JSON array of 64 bytes), `prompt://`
//! (a seed phrase typed at the terminal, `?key=0/0` for a derivation path), `stdin` (a keypair
//! file's contents piped in) and `usb://ledger` (a hardware wallet, with the `ledger` feature).
//! The wallet CLI and the worker read the poster's, authority's and operator's keys this way,
//! with errors that say what to do. Parsing is the Solana CLI's own
//! (`solana-clap-v3-utils`), so a source that works with `solana` works here.

use std::path::Path;

use solana_clap_v3_utils::input_parsers::signer::{SignerSource, SignerSourceKind};
use solana_keypair::Keypair;
use solana_signer::Signer;

/// Why a keypair could not be read. The message never contains key material.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeypairError(String);

/// What a keypair source names.
enum Source {
    File(std::path::PathBuf),
    Prompt(SignerSource),
    Stdin,
    Usb(SignerSource),
}

/// `source` as the Solana CLI reads it: `prompt:`, `usb:`, `file:` and `stdin:` URIs, `ASK`
/// (a legacy prompt), `stdin` or `-`, else a file path. A path that is not UTF-8 can only be a
/// file. Never echoes the text back when it could be a secret.
fn parse(source: &Path) -> Result<Source, KeypairError> {
    let Some(text) = source.to_str() else {
        return Ok(Source::File(source.to_path_buf()));
    };
    if text.is_empty() {
        return Err(KeypairError(
            "the keypair is empty: name a keypair file, prompt://, stdin or usb://ledger".into(),
        ));
    }
    if matches!(text, "stdin" | "-") {
        return Ok(Source::Stdin);
    }
    let lower = text.to_ascii_lowercase();
    let uri = ["prompt:", "usb:", "file:", "stdin:"]
        .iter()
        .any(|s| lower.starts_with(s))
        || text == "ASK";
    if !uri {
        if std::fs::metadata(text).is_err() {
            let mut bytes = [0u8; 64];
            if bs58::decode(text.trim()).onto(&mut bytes[..]).ok() == Some(64) {
                return Err(KeypairError(
                    "the keypair looks like a secret key written out: a key on the command line \
                     or in the environment is visible to other users of this machine; put it in \
                     a keypair file"
                        .into(),
                ));
            }
            if text.parse::<anchor_lang::prelude::Pubkey>().is_ok() {
                return Err(KeypairError(format!(
                    "keypair {text}: a public key cannot sign; name a keypair file, prompt://, \
                     stdin or usb://ledger"
                )));
            }
        }
        return Ok(Source::File(source.to_path_buf()));
    }
    let parsed =
        SignerSource::parse(text).map_err(|e| KeypairError(format!("keypair {text:?}: {e}")))?;
    Ok(match &parsed.kind {
        SignerSourceKind::Filepath(p) => Source::File(p.into()),
        SignerSourceKind::Prompt => Source::Prompt(parsed),
        SignerSourceKind::Stdin => Source::Stdin,
        SignerSourceKind::Usb(_) => Source::Usb(parsed),
        SignerSourceKind::Pubkey(_) | SignerSourceKind::Base58Keypair(_) => {
            return Err(KeypairError(format!("keypair {text:?} is not a signer")))
        }
    })
}

/// A signer from `source` (any of the Solana CLI's sources); `name` says whose key it is when
/// a prompt or a hardware wallet asks.
pub fn read_signer(source: &Path, name: &str) -> Result<Box<dyn Signer>, KeypairError> {
    match parse(source)? {
        Source::Usb(s) => usb_signer(s, name),
        _ => Ok(Box::new(read_keypair_named(source, name)?)),
    }
}

/// A keypair (its secret in this process) from a file, `prompt://` or `stdin`. A hardware
/// wallet is refused: it signs each transaction only when a person confirms it.
pub fn read_keypair(source: &Path) -> Result<Keypair, KeypairError> {
    read_keypair_named(source, "keypair")
}

fn read_keypair_named(source: &Path, name: &str) -> Result<Keypair, KeypairError> {
    match parse(source)? {
        Source::File(path) => read_keypair_file(&path),
        Source::Prompt(s) => solana_clap_v3_utils::keypair::keypair_from_seed_phrase(
            name,
            false,
            false,
            s.derivation_path,
            s.legacy,
        )
        .map_err(|e| KeypairError(format!("{name} from prompt://: {e}"))),
        Source::Stdin => {
            let mut stdin = std::io::stdin();
            solana_keypair::read_keypair(&mut stdin).map_err(|_| {
                KeypairError(
                    "keypair from stdin: expected a keypair file's contents (a JSON array of 64 bytes)"
                        .into(),
                )
            })
        }
        Source::Usb(_) => Err(KeypairError(format!(
            "keypair {}: a hardware wallet cannot be used here (it asks a person to confirm each \
             transaction); use a keypair file",
            shown(source)
        ))),
    }
}

#[cfg(feature = "ledger")]
fn usb_signer(s: SignerSource, name: &str) -> Result<Box<dyn Signer>, KeypairError> {
    use solana_remote_wallet::remote_wallet::maybe_wallet_manager;
    let SignerSourceKind::Usb(locator) = s.kind else {
        unreachable!("parse() gives Usb only for usb:// sources")
    };
    let fail = |e: &dyn std::fmt::Display| KeypairError(format!("{name} on usb://: {e}"));
    let manager = maybe_wallet_manager()
        .map_err(|e| fail(&e))?
        .ok_or_else(|| fail(&"no hardware wallet found (plug it in and open the Solana app)"))?;
    let keypair = solana_remote_wallet::remote_keypair::generate_remote_keypair(
        locator,
        s.derivation_path.unwrap_or_default(),
        &manager,
        false,
        name,
    )
    .map_err(|e| fail(&e))?;
    Ok(Box::new(keypair))
}

#[cfg(not(feature = "ledger"))]
fn usb_signer(_: SignerSource, _: &str) -> Result<Box<dyn Signer>, KeypairError> {
    Err(KeypairError(
        "usb:// hardware wallets need a build with the `ledger` feature \
         (cargo install --path crates/cli --features ledger)"
            .into(),
    ))
}

/// `path` as an error message may show it: not at all when it could be key material typed
/// where a file name belongs (a keypair file's JSON array, a seed phrase, a base58 key).
fn shown(path: &Path) -> String {
    let text = path.to_string_lossy();
    let secret_like = text.contains('[')
        || text.contains(',')
        || text.trim().contains(char::is_whitespace)
        || text.len() > 120;
    if secret_like {
        format!(
            "(a {}-character value, not shown: it may be a key)",
            text.chars().count()
        )
    } else {
        path.display().to_string()
    }
}

/// Reads the keypair file at `path`.
fn read_keypair_file(path: &Path) -> Result<Keypair, KeypairError> {
    let shown = shown(path);
    let fail = |m: String| Err(KeypairError(m));
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return fail(format!(
            "keypair file {shown} does not exist (create one with `solana-keygen new -o {shown}`, or pass -k FILE)"
        ))
        }
        Err(e) => return fail(format!("reading keypair file {shown}: {e}")),
    };
    let Some(bytes) = serde_json::from_str::<Vec<u8>>(&text)
        .ok()
        .filter(|b| b.len() == 64)
    else {
        return fail(format!(
            "keypair file {shown} is not a Solana keypair (a JSON array of 64 bytes)"
        ));
    };
    Keypair::try_from(&bytes[..])
        .map_err(|_| KeypairError(format!("keypair file {shown} holds an invalid keypair")))
}

#[cfg(test)]
mod tests {
    use solana_signer::Signer;

    use super::*;

    #[test]
    fn a_keypair_file_reads_and_bad_ones_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let kp = Keypair::new();
        let good = dir.path().join("id.json");
        std::fs::write(
            &good,
            serde_json::to_string(&kp.to_bytes().to_vec()).unwrap(),
        )
        .unwrap();
        assert_eq!(read_keypair(&good).unwrap().pubkey(), kp.pubkey());
        let missing = read_keypair(&dir.path().join("none.json")).unwrap_err();
        assert!(
            missing.to_string().contains("solana-keygen new"),
            "{missing}"
        );
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "[1,2,3]").unwrap();
        assert!(read_keypair(&bad)
            .unwrap_err()
            .to_string()
            .contains("64 bytes"));
        // A hardware wallet cannot give a keypair (the worker's need), nor a signer without
        // the `ledger` feature; a public key is not a signer; none of them falls back.
        let usb = read_keypair(Path::new("usb://ledger")).unwrap_err();
        assert!(usb.to_string().contains("hardware wallet"), "{usb}");
        #[cfg(not(feature = "ledger"))]
        assert!(read_signer(Path::new("usb://ledger?key=0/0"), "poster")
            .err()
            .unwrap()
            .to_string()
            .contains("ledger"));
        let pubkey = read_keypair(Path::new("11111111111111111111111111111111")).unwrap_err();
        assert!(pubkey.to_string().contains("cannot sign"), "{pubkey}");
        // Key material typed where a file name belongs is never echoed.
        let kp_json = serde_json::to_string(&kp.to_bytes().to_vec()).unwrap();
        let e = read_keypair(Path::new(&kp_json)).unwrap_err().to_string();
        assert!(
            !e.contains(&kp_json[..12]) && e.contains("not shown"),
            "{e}"
        );
        let phrase =
            "abandon ability able about above absent absorb abstract absurd abuse access accident";
        let e = read_keypair(Path::new(phrase)).unwrap_err().to_string();
        assert!(!e.contains("abandon"), "{e}");
        let b58 = format!(" {} ", bs58::encode(kp.to_bytes()).into_string());
        let e = read_keypair(Path::new(&b58)).unwrap_err().to_string();
        assert!(!e.contains(b58.trim()), "{e}");
        // `file:` names a file.
        let uri = format!("file:{}", good.display());
        assert_eq!(read_keypair(Path::new(&uri)).unwrap().pubkey(), kp.pubkey());
        assert!(read_keypair(Path::new("")).is_err());
    }
}
