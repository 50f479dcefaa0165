//! The Solana CLI's settings file (`~/.config/solana/cli/config.yml`) and its resolution rules,
//! so `tensorgrid` finds the same cluster, keypair and commitment as `solana` does: an explicit
//! value (flag, then our environment variable) wins, then the config file, then the default.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A settings problem, said in one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

type Result<T> = std::result::Result<T, ConfigError>;

macro_rules! bail {
    ($($t:tt)*) => { return Err(ConfigError(format!($($t)*))) };
}

pub const DEFAULT_RPC_URL: &str = "https://api.mainnet-beta.solana.com";

/// The fields of `config.yml` we read; the file may hold others.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct SolanaConfig {
    #[serde(default)]
    pub json_rpc_url: String,
    #[serde(default)]
    pub websocket_url: String,
    #[serde(default)]
    pub keypair_path: String,
    #[serde(default)]
    pub commitment: String,
}

/// `~/.config/solana/cli/config.yml` under `home`.
pub fn default_config_path(home: &Path) -> PathBuf {
    home.join(".config")
        .join("solana")
        .join("cli")
        .join("config.yml")
}

/// `~/.config/solana/id.json` under `home`.
pub fn default_keypair_path(home: &Path) -> PathBuf {
    home.join(".config").join("solana").join("id.json")
}

impl SolanaConfig {
    /// Reads `path`; a missing file is the defaults (as for the Solana CLI), an unreadable
    /// one is an error (silently using mainnet instead would be worse).
    pub fn load(path: &Path) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) if text.trim().is_empty() => Ok(Self::default()),
            Ok(text) => serde_yaml::from_str(&text).map_err(|e| {
                ConfigError(format!(
                    "Solana CLI config {} is not valid YAML: {e}",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(ConfigError(format!("reading {}: {e}", path.display()))),
        }
    }
}

/// `mainnet-beta|devnet|testnet|localhost` (or `m|d|t|l`) to their URL; anything else as is.
pub fn normalize_moniker(url_or_moniker: &str) -> String {
    match url_or_moniker {
        "m" | "mainnet-beta" => "https://api.mainnet-beta.solana.com",
        "t" | "testnet" => "https://api.testnet.solana.com",
        "d" | "devnet" => "https://api.devnet.solana.com",
        "l" | "localhost" => "http://localhost:8899",
        url => url,
    }
    .to_string()
}

/// The websocket URL the Solana CLI derives from an RPC URL: ws(s), port + 1 when explicit.
pub fn websocket_for(rpc_url: &str) -> String {
    let Ok(mut ws) = url::Url::parse(rpc_url) else {
        return String::new();
    };
    let secure = ws.scheme().eq_ignore_ascii_case("https");
    if ws.set_scheme(if secure { "wss" } else { "ws" }).is_err() {
        return String::new();
    }
    if let Some(port) = ws.port() {
        let _ = ws.set_port(Some(port.saturating_add(1)));
    }
    ws.to_string()
}

/// The first non-empty of an explicit value, the config file's, and the default.
pub fn first_set(explicit: Option<&str>, file: &str, default: &str) -> String {
    explicit
        .filter(|v| !v.is_empty())
        .or(Some(file).filter(|v| !v.is_empty()))
        .unwrap_or(default)
        .to_string()
}

/// What the settings resolve to.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// One or more RPC URLs (failover order).
    pub rpc_urls: Vec<String>,
    pub ws_url: String,
    pub keypair_path: PathBuf,
    pub commitment: String,
}

/// Explicit values (flags or their environment variables), the config file, and `home` for
/// the defaults → the settings, with the Solana CLI's precedence.
pub fn resolve(
    urls: &[String],
    ws_url: Option<&str>,
    keypair: Option<&Path>,
    commitment: Option<&str>,
    file: &SolanaConfig,
    home: &Path,
) -> Result<Resolved> {
    // A value the user gave and that cannot be used is an error, never a fallback.
    if urls.iter().any(|u| u.trim().is_empty()) {
        bail!("an RPC URL given (-u/--url or its environment variable) is empty");
    }
    if commitment.is_some_and(str::is_empty) {
        bail!("the commitment given (--commitment or its environment variable) is empty");
    }
    let rpc_urls: Vec<String> = if !urls.is_empty() {
        urls.iter().map(|u| normalize_moniker(u.trim())).collect()
    } else {
        vec![normalize_moniker(&first_set(
            None,
            &file.json_rpc_url,
            DEFAULT_RPC_URL,
        ))]
    };
    for u in &rpc_urls {
        let parsed = url::Url::parse(u)
            .ok()
            .filter(|p| matches!(p.scheme(), "http" | "https"));
        if parsed.is_none() {
            bail!("RPC URL {u:?} is not an http(s) URL or one of mainnet-beta, devnet, testnet, localhost (m, d, t, l)");
        }
    }
    // An explicit RPC URL outranks the config file's websocket URL, which belongs to the
    // file's RPC URL (the Solana CLI derives it in that case too).
    let ws_url = match ws_url.filter(|w| !w.is_empty()) {
        Some(w) => w.to_string(),
        None if !urls.is_empty() => websocket_for(&rpc_urls[0]),
        None if !file.websocket_url.is_empty() => file.websocket_url.clone(),
        None => websocket_for(&rpc_urls[0]),
    };
    // A keypair the user named is used as named, or refused: never replaced by the config
    // file's (that would spend from a wallet the user did not choose).
    let keypair_path = match keypair {
        Some(k) if k.as_os_str().is_empty() => {
            bail!("the keypair given (-k/--keypair or its environment variable) is empty")
        }
        Some(k) => k.to_path_buf(),
        None if !file.keypair_path.is_empty() => PathBuf::from(&file.keypair_path),
        None => default_keypair_path(home),
    };
    let commitment = first_set(commitment, &file.commitment, "confirmed");
    if !matches!(commitment.as_str(), "processed" | "confirmed" | "finalized") {
        bail!("commitment {commitment:?} is not processed, confirmed or finalized");
    }
    Ok(Resolved {
        rpc_urls,
        ws_url,
        keypair_path: expand_home(&keypair_path, home),
        commitment,
    })
}

/// `~/x` → `$HOME/x` (config files written by hand often use it).
fn expand_home(p: &Path, home: &Path) -> PathBuf {
    match p.strip_prefix("~") {
        Ok(rest) => home.join(rest),
        Err(_) => p.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_config(home: &Path, text: &str) -> SolanaConfig {
        let path = default_config_path(home);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        SolanaConfig::load(&path).unwrap()
    }

    #[test]
    fn defaults_without_a_config_file() {
        let home = tempfile::tempdir().unwrap();
        let file = SolanaConfig::load(&default_config_path(home.path())).unwrap();
        let r = resolve(&[], None, None, None, &file, home.path()).unwrap();
        assert_eq!(r.rpc_urls, vec![DEFAULT_RPC_URL.to_string()]);
        assert_eq!(r.ws_url, "wss://api.mainnet-beta.solana.com/");
        assert_eq!(r.keypair_path, home.path().join(".config/solana/id.json"));
        assert_eq!(r.commitment, "confirmed");
    }

    #[test]
    fn config_file_then_explicit_values() {
        let home = tempfile::tempdir().unwrap();
        let file = write_config(
            home.path(),
            "---\njson_rpc_url: \"d\"\nwebsocket_url: \"wss://ws.example.com/\"\nkeypair_path: ~/keys/me.json\naddress_labels:\n  \"11111111111111111111111111111111\": System Program\ncommitment: finalized\n",
        );
        let r = resolve(&[], None, None, None, &file, home.path()).unwrap();
        assert_eq!(
            r.rpc_urls,
            vec!["https://api.devnet.solana.com".to_string()]
        );
        assert_eq!(r.ws_url, "wss://ws.example.com/");
        assert_eq!(r.keypair_path, home.path().join("keys/me.json"));
        assert_eq!(r.commitment, "finalized");

        let kp = PathBuf::from("/tmp/other.json");
        let r = resolve(
            &["http://127.0.0.1:8899".into(), "l".into()],
            None,
            Some(&kp),
            Some("processed"),
            &file,
            home.path(),
        )
        .unwrap();
        assert_eq!(
            r.rpc_urls,
            vec![
                "http://127.0.0.1:8899".to_string(),
                "http://localhost:8899".to_string()
            ]
        );
        // The file's websocket URL belongs to the file's RPC URL: derived from the flag's.
        assert_eq!(r.ws_url, "ws://127.0.0.1:8900/");
        assert_eq!(r.keypair_path, kp);
        assert_eq!(r.commitment, "processed");
        let r = resolve(
            &["t".into()],
            Some("ws://x:1/"),
            None,
            None,
            &file,
            home.path(),
        )
        .unwrap();
        assert_eq!(r.ws_url, "ws://x:1/");
    }

    #[test]
    fn bad_values_are_named() {
        let home = tempfile::tempdir().unwrap();
        let file = SolanaConfig::default();
        let e = resolve(&["ftp://x".into()], None, None, None, &file, home.path()).unwrap_err();
        assert!(e.to_string().contains("ftp://x"), "{e}");
        let e = resolve(&[], None, None, Some("final"), &file, home.path()).unwrap_err();
        assert!(e.to_string().contains("final"), "{e}");
        let path = default_config_path(home.path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "json_rpc_url: [unclosed").unwrap();
        let e = SolanaConfig::load(&path).unwrap_err();
        assert!(e.to_string().contains("not valid YAML"), "{e}");
    }

    #[test]
    fn websocket_urls_follow_the_solana_cli() {
        assert_eq!(
            websocket_for("http://api.devnet.solana.com"),
            "ws://api.devnet.solana.com/"
        );
        assert_eq!(
            websocket_for("https://example.com:1234"),
            "wss://example.com:1235/"
        );
        assert_eq!(websocket_for("garbage"), "");
    }
}
