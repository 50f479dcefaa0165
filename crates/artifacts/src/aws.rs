//! S3 settings the way the AWS tools find them: the environment first (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`, …), then the
//! profile `AWS_PROFILE` (or `default`) of `~/.aws/credentials` and `~/.aws/config`. Without
//! any credentials the store is read anonymously (public buckets), unless the environment
//! names a role source (web identity, container credentials) that object_store resolves.

use std::{collections::HashMap, path::PathBuf, time::Duration};

use object_store::{
    aws::{AmazonS3, AmazonS3Builder},
    BackoffConfig, ClientOptions, RetryConfig,
};

use crate::{ArtifactError, Result};

/// Retries inside one request: short, so that a dead endpoint is reported in seconds and the
/// caller's own backoff (the worker's) decides what happens next.
pub(crate) fn retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 2,
        retry_timeout: Duration::from_secs(20),
    }
}

pub(crate) fn client_options(allow_http: bool) -> ClientOptions {
    ClientOptions::new()
        .with_allow_http(allow_http)
        .with_connect_timeout(Duration::from_secs(10))
        .with_timeout(Duration::from_secs(300))
}

/// An S3 client for `bucket` with the settings of this environment.
pub(crate) fn s3(bucket: &str) -> Result<AmazonS3> {
    s3_with(bucket, false)
}

/// The same, and with `anonymous` without the credentials (endpoint and region kept).
pub(crate) fn s3_with(bucket: &str, anonymous: bool) -> Result<AmazonS3> {
    let env: HashMap<String, String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("AWS_"))
        .collect();
    let profile = env
        .get("AWS_PROFILE")
        .cloned()
        .unwrap_or_else(|| "default".into());
    let creds = read_profile(
        file_path(&env, "AWS_SHARED_CREDENTIALS_FILE", "credentials"),
        &profile,
        false,
    );
    let config = read_profile(file_path(&env, "AWS_CONFIG_FILE", "config"), &profile, true);
    let setting = |env_key: &str, file_key: &str| -> Option<String> {
        env.get(env_key)
            .cloned()
            .or_else(|| creds.get(file_key).cloned())
            .or_else(|| config.get(file_key).cloned())
            .filter(|v| !v.is_empty())
    };

    let endpoint = setting("AWS_ENDPOINT_URL_S3", "endpoint_url")
        .or_else(|| setting("AWS_ENDPOINT_URL", "endpoint_url"))
        .or_else(|| env.get("AWS_ENDPOINT").cloned());
    let allow_http = endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"));
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_retry(retry())
        .with_client_options(client_options(allow_http))
        .with_region(
            setting("AWS_REGION", "region")
                .or_else(|| env.get("AWS_DEFAULT_REGION").cloned())
                .unwrap_or_else(|| "us-east-1".into()),
        );
    if let Some(e) = endpoint {
        b = b.with_endpoint(e);
    }
    if anonymous {
        return b
            .with_skip_signature(true)
            .build()
            .map_err(|e| ArtifactError::Config(format!("S3 bucket {bucket}: {e}")));
    }
    let key = setting("AWS_ACCESS_KEY_ID", "aws_access_key_id");
    let secret = setting("AWS_SECRET_ACCESS_KEY", "aws_secret_access_key");
    match (key, secret) {
        (Some(k), Some(s)) => {
            b = b.with_access_key_id(k).with_secret_access_key(s);
            if let Some(t) = setting("AWS_SESSION_TOKEN", "aws_session_token") {
                b = b.with_token(t);
            }
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(ArtifactError::Config(
                "AWS credentials: an access key id needs its secret access key (and the reverse)"
                    .into(),
            ))
        }
        (None, None) => {
            let role = [
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            ]
            .iter()
            .any(|k| env.contains_key(*k));
            if !role {
                b = b.with_skip_signature(true);
            }
        }
    }
    b.build()
        .map_err(|e| ArtifactError::Config(format!("S3 bucket {bucket}: {e}")))
}

fn file_path(env: &HashMap<String, String>, var: &str, name: &str) -> Option<PathBuf> {
    env.get(var)
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".aws").join(name)))
}

/// The `key = value` pairs of one profile of an AWS INI file (empty when absent). In
/// `~/.aws/config` profiles other than `default` are written `[profile NAME]`.
fn read_profile(
    path: Option<PathBuf>,
    profile: &str,
    config_file: bool,
) -> HashMap<String, String> {
    let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) else {
        return HashMap::new();
    };
    parse_profile(&text, profile, config_file)
}

fn parse_profile(text: &str, profile: &str, config_file: bool) -> HashMap<String, String> {
    let wanted = [
        profile.to_string(),
        if config_file && profile != "default" {
            format!("profile {profile}")
        } else {
            profile.to_string()
        },
    ];
    let mut out = HashMap::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = wanted.iter().any(|w| w == section.trim());
            continue;
        }
        if inside {
            if let Some((k, v)) = line.split_once('=') {
                out.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_read_by_section() {
        let creds = "[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s1\n\n[dev]\naws_access_key_id=AKIA2\n";
        assert_eq!(
            parse_profile(creds, "default", false)["aws_access_key_id"],
            "AKIA1"
        );
        assert_eq!(
            parse_profile(creds, "dev", false)["aws_access_key_id"],
            "AKIA2"
        );
        assert!(parse_profile(creds, "prod", false).is_empty());
        let config = "[default]\nregion = eu-west-1\n[profile dev]\nregion = us-west-2\nendpoint_url = http://127.0.0.1:9000\n";
        assert_eq!(parse_profile(config, "dev", true)["region"], "us-west-2");
        assert_eq!(
            parse_profile(config, "default", true)["region"],
            "eu-west-1"
        );
    }
}
