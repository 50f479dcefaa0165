//! Reading public `http(s)://` URLs from strangers. Not object_store's HTTP store: that one
//! reads a failing server's whole error body into memory (and into its error message) and
//! follows redirects anywhere. Here error bodies are never read, the body is capped while it
//! streams, redirects are followed only to https (at most 5), and names resolving to private,
//! loopback or link-local addresses are refused unless the policy allows a local server.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use reqwest::{
    dns::{Addrs, Name, Resolve, Resolving},
    redirect, StatusCode,
};
use url::{Host, Url};

use crate::{
    error::root_causes,
    fetch::{is_public, Capped},
    ArtifactError, ReadPolicy, Result,
};

const MAX_REDIRECTS: usize = 5;

/// Resolves names, keeping only addresses the policy may reach.
struct Guarded {
    allow_private: bool,
}

impl Resolve for Guarded {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(
                    format!("{host} resolves only to private or loopback addresses").into(),
                );
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Refuses URLs the policy does not allow, before any connection.
fn check(url: &Url, policy: &ReadPolicy) -> Result<(), String> {
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http => {}
        "http" => return Err("plain http:// is not allowed here (use https://)".into()),
        other => return Err(format!("{other}:// is not an HTTP URL")),
    }
    let private = match url.host() {
        Some(Host::Ipv4(ip)) => !is_public(ip.into()),
        Some(Host::Ipv6(ip)) => !is_public(ip.into()),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost"),
        None => return Err("no host".into()),
    };
    if private && !policy.allow_private {
        return Err("a private, loopback or link-local address".into());
    }
    Ok(())
}

fn client(policy: &ReadPolicy) -> Result<reqwest::Client> {
    let p = policy.clone();
    let redirects = redirect::Policy::custom(move |attempt| {
        // `previous()` includes the first URL.
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        match check(attempt.url(), &p) {
            Ok(()) => attempt.follow(),
            Err(why) => {
                let to = attempt.url().to_string();
                attempt.error(format!("redirect to {to}: {why}"))
            }
        }
    });
    reqwest::Client::builder()
        // A proxy would resolve names itself, past the address filter.
        .no_proxy()
        .redirect(redirects)
        .dns_resolver(Arc::new(Guarded {
            allow_private: policy.allow_private,
        }))
        .connect_timeout(Duration::from_secs(10))
        // Silence, not size, ends a transfer: a large file on a slow link is not an error.
        .read_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| ArtifactError::Config(format!("HTTP client: {e}")))
}

/// Sends `method` to `url` under the policy; a non-success answer becomes its error (its body
/// is never read: it is the server's, not ours to print).
async fn request(
    method: reqwest::Method,
    url: &Url,
    uri: &str,
    policy: &ReadPolicy,
) -> Result<reqwest::Response> {
    check(url, policy).map_err(|reason| ArtifactError::Forbidden {
        uri: uri.into(),
        reason,
    })?;
    let resp = client(policy)?
        .request(method, url.clone())
        .send()
        .await
        .map_err(transport(uri))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    Err(match status {
        StatusCode::NOT_FOUND | StatusCode::GONE => ArtifactError::NotFound { uri: uri.into() },
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ArtifactError::Denied {
            uri: uri.into(),
            reason: format!("HTTP {status}"),
        },
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
            ArtifactError::Unreachable {
                uri: uri.into(),
                reason: format!("HTTP {status}"),
            }
        }
        s => ArtifactError::Store {
            uri: uri.into(),
            reason: format!("HTTP {s}"),
        },
    })
}

fn transport(uri: &str) -> impl Fn(reqwest::Error) -> ArtifactError + '_ {
    move |e| ArtifactError::Unreachable {
        uri: uri.into(),
        reason: crate::error::sanitize(&root_causes(&e)),
    }
}

/// GETs `url` into `out` (which enforces the size cap).
pub(crate) async fn get(
    url: &Url,
    uri: &str,
    policy: &ReadPolicy,
    out: &mut Capped<'_>,
) -> Result<()> {
    let mut resp = request(reqwest::Method::GET, url, uri, policy).await?;
    if resp.content_length().is_some_and(|n| n > out.limit) {
        return Err(ArtifactError::TooLarge {
            uri: uri.into(),
            limit: out.limit,
        });
    }
    while let Some(chunk) = resp.chunk().await.map_err(transport(uri))? {
        out.push(&chunk).await?;
    }
    Ok(())
}

/// The size a HEAD answer announces, when it announces one.
pub(crate) async fn head(url: &Url, uri: &str, policy: &ReadPolicy) -> Result<Option<u64>> {
    let resp = request(reqwest::Method::HEAD, url, uri, policy).await?;
    Ok(resp
        .headers()
        .get(reqwest::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok()))
}

#[cfg(test)]
mod tests {
    use std::{io::Write, net::TcpListener};

    use crate::{fetch, ArtifactError, ReadPolicy};

    /// Answers each connection with the next of `responses` (raw HTTP), then stops.
    fn serve(responses: Vec<String>) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for (stream, resp) in listener.incoming().zip(responses) {
                let mut s = stream.unwrap();
                let mut buf = [0u8; 4096];
                let _ = std::io::Read::read(&mut s, &mut buf);
                let _ = s.write_all(resp.as_bytes());
            }
        });
        port
    }

    fn ok(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    fn status(line: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {line}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    fn local() -> ReadPolicy {
        ReadPolicy::default().with_http(true).with_private(true)
    }

    #[tokio::test]
    async fn a_head_probe_reads_the_announced_size_under_the_policy() {
        let port = serve(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 123456\r\nConnection: close\r\n\r\n".into(),
            status("404 Not Found", ""),
        ]);
        let url = |p: &str| format!("http://127.0.0.1:{port}/{p}");
        assert_eq!(
            crate::probe_size(&url("a"), &local()).await.unwrap(),
            Some(123_456)
        );
        let e = crate::probe_size(&url("b"), &local()).await.unwrap_err();
        assert!(matches!(e, ArtifactError::NotFound { .. }), "{e}");
        let e = crate::probe_size(&url("c"), &ReadPolicy::default())
            .await
            .unwrap_err();
        assert!(matches!(e, ArtifactError::Forbidden { .. }), "{e}");
    }

    #[tokio::test]
    async fn a_local_server_answers_within_the_policy() {
        let port = serve(vec![
            ok("hello"),
            status("404 Not Found", "nope"),
            status(
                "503 Service Unavailable",
                "<Error><Code>SlowDown</Code></Error>",
            ),
            ok("0123456789"),
            status("403 Forbidden", &"x".repeat(10_000)),
        ]);
        let url = |p: &str| format!("http://127.0.0.1:{port}/{p}");
        assert_eq!(
            &fetch(&url("a"), 100, &local()).await.unwrap()[..],
            b"hello"
        );
        let e = fetch(&url("b"), 100, &local()).await.unwrap_err();
        assert!(matches!(e, ArtifactError::NotFound { .. }), "{e}");
        let e = fetch(&url("c"), 100, &local()).await.unwrap_err();
        assert!(e.is_transient() && e.to_string().contains("503"), "{e}");
        let e = fetch(&url("d"), 5, &local()).await.unwrap_err();
        assert!(matches!(e, ArtifactError::TooLarge { .. }), "{e}");
        let e = fetch(&url("e"), 100, &local()).await.unwrap_err();
        assert!(
            matches!(e, ArtifactError::Denied { .. }) && e.to_string().len() < 200,
            "{e}"
        );
    }

    /// The rule every hop (the first and each redirect) must pass.
    #[test]
    fn each_hop_is_checked() {
        use super::check;
        let public = ReadPolicy::default();
        let u = |s: &str| url::Url::parse(s).unwrap();
        assert!(check(&u("https://example.com/a"), &public).is_ok());
        assert!(check(&u("http://example.com/a"), &public)
            .unwrap_err()
            .contains("plain http"));
        for private in [
            "https://169.254.169.254/latest",
            "https://10.0.0.1/",
            "https://[fe80::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://localhost/",
            "https://metadata.localhost/",
        ] {
            assert!(
                check(&u(private), &public).unwrap_err().contains("private"),
                "{private}"
            );
        }
        assert!(check(&u("http://127.0.0.1:9000/x"), &local()).is_ok());
        assert!(check(&u("ftp://example.com/x"), &local()).is_err());
    }

    #[tokio::test]
    async fn a_refused_connection_says_so() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = fetch(&format!("http://127.0.0.1:{port}/data.bin"), 10, &local())
            .await
            .unwrap_err();
        assert!(e.is_transient(), "{e}");
        assert!(
            e.to_string().to_lowercase().contains("connection refused"),
            "{e}"
        );
    }
}
