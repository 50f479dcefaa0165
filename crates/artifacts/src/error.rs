use std::error::Error as StdError;

/// What can go wrong reading or writing an artifact. Messages name the URI and the root cause
/// ("connection refused", "403 Forbidden"), never a credential.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("{uri}: unsupported URI (expected s3://bucket/key, https://…, or a local path)")]
    UnsupportedScheme { uri: String },
    #[error("{uri}: not allowed: {reason}")]
    Forbidden { uri: String, reason: String },
    #[error("{uri}: not found")]
    NotFound { uri: String },
    #[error("{uri}: larger than the limit of {limit} bytes")]
    TooLarge { uri: String, limit: u64 },
    #[error("{uri}: {reason}")]
    Unreachable { uri: String, reason: String },
    #[error("{uri}: access denied: {reason}")]
    Denied { uri: String, reason: String },
    #[error("{uri}: {reason}")]
    Store { uri: String, reason: String },
    #[error("{0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{uri}: bad manifest: {reason}")]
    Manifest { uri: String, reason: String },
}

pub type Result<T, E = ArtifactError> = std::result::Result<T, E>;

impl ArtifactError {
    /// Worth retrying later (network, a store's 5xx); the rest will fail the same way again.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
            || matches!(self, Self::Store { reason, .. } if server_side(reason))
    }

    pub(crate) fn io(path: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_string();
        move |source| Self::Io { path, source }
    }

    /// Maps an object_store error for `uri` to the variant a caller can act on, with a
    /// reason fit to print (see [`sanitize`]).
    pub(crate) fn from_store(uri: &str, e: object_store::Error) -> Self {
        let uri = uri.to_string();
        match e {
            object_store::Error::NotFound { .. } => Self::NotFound { uri },
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => {
                let hint = s3_hint(&uri, false);
                Self::Denied {
                    uri,
                    reason: sanitize(&root_causes(&e)) + &hint,
                }
            }
            other => {
                let reason = sanitize(&root_causes(&other));
                if is_connection_fault(&other) {
                    let hint = s3_hint(&uri, true);
                    Self::Unreachable {
                        uri,
                        reason: reason + &hint,
                    }
                } else {
                    Self::Store { uri, reason }
                }
            }
        }
    }
}

/// What to check when an S3 store cannot be reached (`unreachable`) or refuses the
/// credentials: which endpoint was used and where the settings come from.
fn s3_hint(uri: &str, unreachable: bool) -> String {
    if !uri.starts_with("s3://") {
        return String::new();
    }
    let endpoint = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .find_map(|k| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.is_empty())
                .map(|v| (k, v))
        });
    match (unreachable, endpoint) {
        (true, Some((key, url))) => format!(
            " (the S3 endpoint {url}, from {key}, did not answer: is the store running there?)"
        ),
        (true, None) => " (the S3 endpoint is AWS's: set AWS_ENDPOINT_URL for another S3 \
             service, e.g. the one `tensorgrid localnet` prints)"
            .into(),
        (false, _) => " (credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
             AWS_PROFILE, or ~/.aws/credentials)"
            .into(),
    }
}

/// An error text fit for one log line: an S3 error document (whose canonical request can
/// carry a session token) is reduced to its `Code` and `Message`, control characters are
/// replaced, and the length is bounded.
pub(crate) fn sanitize(reason: &str) -> String {
    let tag = |name: &str| -> Option<&str> {
        let open = format!("<{name}>");
        let start = reason.find(&open)? + open.len();
        let len = reason[start..].find(&format!("</{name}>"))?;
        Some(&reason[start..start + len])
    };
    let text = match (reason.find('<'), tag("Code")) {
        (Some(at), Some(code)) => format!(
            "{}{code}{}",
            &reason[..at],
            tag("Message").map_or(String::new(), |m| format!(": {m}"))
        ),
        (Some(at), None) if reason[at..].contains("</") => {
            format!("{}(response body omitted)", &reason[..at])
        }
        _ => reason.to_string(),
    };
    let text = condense(&text);
    let mut clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if clean.len() > 300 {
        let mut end = 300;
        while !clean.is_char_boundary(end) {
            end -= 1;
        }
        clean.truncate(end);
        clean.push('…');
    }
    clean
}

/// object_store's retry wrapper, reduced to the request and its cause:
/// "Generic S3 error: Error performing PUT URL in 267ms, after 2 retries, max_retries: 2,
/// retry_timeout: 20s - HTTP error: error sending request: client error (Connect): tcp
/// connect error: …" → "PUT URL: tcp connect error: …".
fn condense(text: &str) -> String {
    let text = text.replace("Generic S3 error: ", "");
    let Some(start) = text.find("Error performing ") else {
        return text;
    };
    let request_at = start + "Error performing ".len();
    let Some(dash) = text[request_at..].find(" - ").map(|d| request_at + d) else {
        return text;
    };
    let request = &text[request_at..dash];
    let request = request.split(" in ").next().unwrap_or(request);
    let mut cause = &text[dash + 3..];
    for noise in [
        "HTTP error: ",
        "error sending request: ",
        "client error (Connect): ",
    ] {
        cause = cause.strip_prefix(noise).unwrap_or(cause);
    }
    format!("{}{request}: {cause}", &text[..start])
}

/// A store's answer that says the fault is on its side (HTTP 5xx, throttling) or a timeout.
fn server_side(reason: &str) -> bool {
    ["500", "502", "503", "504", "SlowDown", "timed out"]
        .iter()
        .any(|m| reason.contains(m))
}

/// The error and its sources as one line, without repeating a message its source already
/// says ("error sending request: … : connection refused").
pub fn root_causes(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        let msg = err.to_string();
        if !parts.iter().any(|p| p.contains(&msg)) {
            // A wrapper that repeats its source in full adds nothing.
            parts.retain(|p| !msg.contains(p.as_str()));
            parts.push(msg);
        }
        cur = err.source();
    }
    parts.join(": ")
}

/// A transport fault (the store never answered) rather than an answer.
fn is_connection_fault(e: &(dyn StdError + 'static)) -> bool {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionRefused
                    | ConnectionReset
                    | ConnectionAborted
                    | TimedOut
                    | NotConnected
                    | BrokenPipe
                    | UnexpectedEof
                    | HostUnreachable
                    | NetworkUnreachable
            ) {
                return true;
            }
        }
        let msg = err.to_string().to_ascii_lowercase();
        if [
            "connection refused",
            "error sending request",
            "timed out",
            "dns error",
            "connection reset",
            "connection closed",
        ]
        .iter()
        .any(|m| msg.contains(m))
        {
            return true;
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("error sending request")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn s3_error_documents_are_reduced_to_their_code() {
        let body = "Client error with status 403 Forbidden: <?xml version=\"1.0\"?>\n<Error><Code>SignatureDoesNotMatch</Code><Message>The signature does not match</Message><CanonicalRequest>GET\nx-amz-security-token:SECRET</CanonicalRequest></Error>";
        let s = sanitize(body);
        assert_eq!(s, "Client error with status 403 Forbidden: SignatureDoesNotMatch: The signature does not match");
        assert!(!s.contains("SECRET"));
        let long = "x\u{1b}[31m".repeat(200);
        let s = sanitize(&long);
        assert!(s.chars().count() <= 301 && !s.contains('\u{1b}'), "{s}");
    }

    #[test]
    fn root_causes_reach_the_io_error() {
        let e = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        ));
        assert_eq!(root_causes(&e), "error sending request: connection refused");
        assert!(is_connection_fault(&e));
    }
}
