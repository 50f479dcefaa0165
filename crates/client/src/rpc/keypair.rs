//! Solana CLI keypair files (a JSON array of 64 bytes), read with errors that say what to do.
//! The wallet CLI and the worker read the operator's and the poster's keys this way.

use std::path::Path;

use solana_keypair::Keypair;

/// Why a keypair could not be read. The message never contains key material.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeypairError(String);

/// Reads the keypair file at `path`.
pub fn read_keypair(path: &Path) -> Result<Keypair, KeypairError> {
    let shown = path.display();
    let s = path.to_string_lossy();
    let fail = |m: String| Err(KeypairError(m));
    if s.starts_with("usb://") || s.starts_with("prompt:") || s == "stdin" || s == "ASK" {
        return fail(format!(
            "keypair {shown}: only keypair files are supported (not hardware wallets or prompts)"
        ));
    }
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
        assert!(read_keypair(Path::new("usb://ledger")).is_err());
    }
}
