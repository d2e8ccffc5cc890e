//! The live probe: one minimal Messages API request that proves Anthropic (or the endpoint the
//! gateway is configured to use) accepts the token. It mirrors what OpenClaw's own auth probe
//! sends, so a token this probe accepts is one the gateway's requests will carry successfully:
//!
//! - `sk-ant-oat01-…` (OAuth): `Authorization: Bearer <token>` plus the OAuth beta header;
//! - `sk-ant-api03-…` (API key): `x-api-key: <token>`;
//! - `POST <base>/v1/messages`, `anthropic-version: 2023-06-01`, `max_tokens: 1`, not streamed.
//!
//! The verdict is pure ([`classify`]): 2xx accepted; 401/403 rejected (a failure); anything else,
//! a timeout or a network error is inconclusive (a warning). The token only ever travels in the
//! request header; errors and the verdict carry the status, Anthropic's error type and the base
//! URL, never a header or a body we sent.

use crate::secret::{Token, TokenKind};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde::Serialize;
use std::time::Duration;

/// Where the public API lives when the gateway has no `baseUrl` of its own.
pub const PUBLIC_BASE_URL: &str = "https://api.anthropic.com";
/// The beta flag Anthropic requires on requests authenticated with an OAuth token.
pub const OAUTH_BETA: &str = "oauth-2025-04-20";
const API_VERSION: &str = "2023-06-01";
/// A small current model; the probe asks for one output token.
pub const PROBE_MODEL: &str = "claude-haiku-4-5";

/// What a probe found: the token works, is refused, or neither could be shown.
#[derive(Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// 2xx: the token works.
    Accepted,
    /// 401 or 403: the token is refused.
    Rejected,
    /// No answer that proves either (5xx, 429, a network error, a timeout).
    Inconclusive,
}

/// A verdict and what it rests on ("HTTP 401 authentication_error", "connection refused").
#[derive(Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub verdict: Verdict,
    pub detail: String,
}

impl Finding {
    pub fn new(verdict: Verdict, detail: impl Into<String>) -> Finding {
        Finding {
            verdict,
            detail: detail.into(),
        }
    }
}

/// The verdict for an HTTP answer. `body` is only searched for Anthropic's error type.
pub fn classify(status: u16, body: &[u8]) -> Finding {
    let detail = format!(
        "HTTP {status}{}",
        error_type(body)
            .map(|t| format!(" {t}"))
            .unwrap_or_default()
    );
    let verdict = match status {
        200..=299 => Verdict::Accepted,
        401 | 403 => Verdict::Rejected,
        _ => Verdict::Inconclusive,
    };
    Finding::new(verdict, detail)
}

/// `error.type` of Anthropic's error body (`{"type":"error","error":{"type":…}}`), when it is a
/// short identifier (never echo arbitrary text from the other side).
fn error_type(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let kind = value.get("error")?.get("type")?.as_str()?;
    (kind.len() <= 64 && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then(|| kind.to_owned())
}

/// The Messages endpoint under a base URL (`https://api.anthropic.com` →
/// `https://api.anthropic.com/v1/messages`; a base that already ends in `/v1` is kept).
pub fn messages_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/v1") {
        format!("{base}/messages")
    } else {
        format!("{base}/v1/messages")
    }
}

/// The header that carries the credential, per kind: (name, value prefix).
pub fn auth_header(kind: TokenKind) -> (&'static str, &'static str) {
    match kind {
        TokenKind::OAuth => ("authorization", "Bearer "),
        TokenKind::ApiKey => ("x-api-key", ""),
    }
}

/// Sends the probe to `base` and returns the verdict. Never fails: trouble is "inconclusive".
pub fn probe(base: &str, token: &Token, timeout: Duration) -> Finding {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            return Finding::new(
                Verdict::Inconclusive,
                format!("cannot start the async runtime: {e}"),
            )
        }
    };
    runtime.block_on(async {
        match tokio::time::timeout(timeout, send(base, token)).await {
            Ok(Ok((status, body))) => classify(status, &body),
            Ok(Err(reason)) => Finding::new(Verdict::Inconclusive, reason),
            Err(_) => Finding::new(
                Verdict::Inconclusive,
                format!("no answer from {base} within {} s", timeout.as_secs()),
            ),
        }
    })
}

async fn send(base: &str, token: &Token) -> Result<(u16, Vec<u8>), String> {
    let url = messages_url(base);
    let uri: hyper::Uri = url
        .parse()
        .map_err(|_| format!("{base} is not a valid URL"))?;
    let body = serde_json::json!({
        "model": PROBE_MODEL,
        "max_tokens": 1,
        "messages": [{ "role": "user", "content": "ping" }],
    })
    .to_string();
    let (name, prefix) = auth_header(token.kind());
    let mut secret = zeroize::Zeroizing::new(String::with_capacity(prefix.len() + 128));
    secret.push_str(prefix);
    secret.push_str(token.expose());
    let mut value = hyper::header::HeaderValue::from_str(&secret)
        .map_err(|_| "the token cannot be sent as a header".to_owned())?;
    value.set_sensitive(true);
    let mut request = hyper::Request::post(uri)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .header("anthropic-version", API_VERSION)
        .header(
            "user-agent",
            concat!("openclaw-token-sync/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::from(body)))
        .map_err(|_| format!("cannot build a request for {base}"))?;
    request.headers_mut().insert(name, value);
    if token.kind() == TokenKind::OAuth {
        request.headers_mut().insert(
            "anthropic-beta",
            hyper::header::HeaderValue::from_static(OAUTH_BETA),
        );
    }
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
        .map_err(|e| format!("no TLS trust roots: {}", e.kind()))?
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Full<Bytes>>(connector);
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("{base} unreachable: {}", connect_reason(&e)))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|_| format!("{base}: the answer broke off"))?
        .to_bytes();
    Ok((status, body.to_vec()))
}

/// A short cause for a failed request (connect refused, DNS, TLS), without request details.
fn connect_reason(error: &hyper_util::client::legacy::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    let mut last = if error.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    while let Some(inner) = source {
        last = inner.to_string();
        source = inner.source();
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_separates_rejection_from_inconclusive_answers() {
        let unauthorized =
            br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#;
        assert_eq!(
            classify(401, unauthorized),
            Finding::new(Verdict::Rejected, "HTTP 401 authentication_error")
        );
        assert_eq!(classify(403, b"").verdict, Verdict::Rejected);
        assert_eq!(
            classify(200, b"{}"),
            Finding::new(Verdict::Accepted, "HTTP 200")
        );
        for status in [429, 500, 529, 404] {
            assert_eq!(
                classify(status, b"").verdict,
                Verdict::Inconclusive,
                "{status}"
            );
        }
        // An error "type" that is not an identifier is not echoed.
        let odd = br#"{"error":{"type":"sk-ant-oat01 something"}}"#;
        assert_eq!(classify(401, odd).detail, "HTTP 401");
    }

    #[test]
    fn messages_url_appends_the_path_once() {
        assert_eq!(
            messages_url("https://api.anthropic.com"),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(
            messages_url("http://127.0.0.1:9/"),
            "http://127.0.0.1:9/v1/messages"
        );
        assert_eq!(
            messages_url("http://proxy/anthropic/v1"),
            "http://proxy/anthropic/v1/messages"
        );
    }
}
