//! Keypair files in the Solana CLI's format: a JSON array of the 64 secret-key bytes, readable
//! only by the owner.

use std::{fs, io::Write, path::Path};

use solana_keypair::Keypair;

pub fn write(keypair: &Keypair, path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let json = serde_json::to_string(&keypair.to_bytes().to_vec())?;
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(json.as_bytes())?;
    file.sync_all()
}

pub fn read(path: &Path) -> std::io::Result<Keypair> {
    let text = fs::read_to_string(path)?;
    let bytes: Vec<u8> = serde_json::from_str(&text)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    Keypair::try_from(&bytes[..])
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
}

#[cfg(test)]
mod tests {
    use solana_signer::Signer;

    use super::*;

    #[test]
    fn a_written_keypair_reads_back_private_to_its_owner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b.json");
        let kp = Keypair::new();
        write(&kp, &path).unwrap();
        assert_eq!(read(&path).unwrap().pubkey(), kp.pubkey());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }
}
