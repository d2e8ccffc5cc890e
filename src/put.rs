//! `put`: store a new token as the secret's AWSCURRENT version, from standard input (never from
//! an argument, where it would show in `ps` and shell history). On a terminal the input is not
//! echoed. The token is validated exactly as `sync` validates it before anything is sent.
//!
//! The `ClientRequestToken` (which becomes the version id) is derived from the token with a
//! domain-separated SHA-256, so running `put` twice with the same token is idempotent: Secrets
//! Manager returns the existing version instead of creating a second one.

use crate::aws::{self, AwsSettings};
use crate::error::{Error, Result};
use crate::secret::{self, Token};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::{IsTerminal, Read};
use zeroize::Zeroizing;

#[derive(Clone, Debug)]
pub struct PutOptions {
    pub secret_id: String,
    /// Store `{"<key>": "<token>"}` instead of the plain token.
    pub json_key: Option<String>,
    pub aws: AwsSettings,
}

#[derive(Serialize, Debug)]
pub struct PutReport {
    pub arn: String,
    pub version_id: String,
    pub fingerprint: String,
    pub kind: &'static str,
}

/// Reads the token from stdin: at most 64 KiB, one trailing line break removed, echo off on a
/// terminal.
pub fn read_token_from_stdin() -> Result<Token> {
    let stdin = std::io::stdin();
    let echo_guard = if stdin.is_terminal() {
        eprint!("Paste the token (input is hidden), then press Enter: ");
        EchoOff::new()
    } else {
        None
    };
    let mut raw = Zeroizing::new(Vec::with_capacity(256));
    let mut limited = stdin.lock().take(secret::MAX_SECRET_BYTES as u64 + 1);
    if echo_guard.is_some() {
        // One line from a terminal.
        let mut byte = [0u8; 1];
        while limited
            .read(&mut byte)
            .map_err(|e| Error::failed(format!("cannot read stdin: {e}")))?
            == 1
            && byte[0] != b'\n'
        {
            raw.push(byte[0]);
        }
        eprintln!();
    } else {
        limited
            .read_to_end(&mut raw)
            .map_err(|e| Error::failed(format!("cannot read stdin: {e}")))?;
    }
    drop(echo_guard);
    if raw.len() > secret::MAX_SECRET_BYTES {
        return Err(Error::failed(format!(
            "standard input: {}",
            secret::SecretError::TooLarge(raw.len())
        )));
    }
    if raw.ends_with(b"\n") {
        raw.pop();
        if raw.ends_with(b"\r") {
            raw.pop();
        }
    }
    let text = String::from_utf8(std::mem::take(&mut *raw))
        .map_err(|_| Error::failed("standard input: the token is not UTF-8 text"))?;
    Token::parse(Zeroizing::new(text)).map_err(|e| Error::failed(format!("standard input: {e}")))
}

/// Turns terminal echo off while alive.
struct EchoOff {
    saved: nix::sys::termios::Termios,
}

impl EchoOff {
    fn new() -> Option<EchoOff> {
        use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok()?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        quiet.local_flags.insert(LocalFlags::ECHONL);
        tcsetattr(&stdin, SetArg::TCSANOW, &quiet).ok()?;
        Some(EchoOff { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            std::io::stdin(),
            nix::sys::termios::SetArg::TCSANOW,
            &self.saved,
        );
    }
}

/// The idempotency token for a token: 32 hex digits of SHA-256 over a domain-separated input.
pub fn client_request_token(token: &Token) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"openclaw-token-sync put v1\0");
    hasher.update(token.expose().as_bytes());
    hasher.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Validates and stores the token. Returns the version that is now AWSCURRENT.
pub fn run(options: &PutOptions, token: Token) -> Result<PutReport> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::failed(format!("cannot start the async runtime: {e}")))?;
    let config = runtime.block_on(aws::load_config(&options.aws, &options.secret_id))?;
    let client = aws_sdk_secretsmanager::Client::new(&config);
    let value: Zeroizing<String> = match &options.json_key {
        None => Zeroizing::new(token.expose().to_owned()),
        Some(key) => Zeroizing::new(serde_json::json!({ key: token.expose() }).to_string()),
    };
    let output = runtime
        .block_on(
            client
                .put_secret_value()
                .secret_id(&options.secret_id)
                .secret_string(value.as_str())
                .client_request_token(client_request_token(&token))
                .send(),
        )
        .map_err(|e| {
            use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
            let e = e.into_service_error();
            Error::failed(format!(
                "PutSecretValue for {} failed: {}: {}",
                options.secret_id,
                e.code()
                    .unwrap_or("no usable answer (network, timeout or malformed response)"),
                e.message().unwrap_or("")
            ))
        })?;
    Ok(PutReport {
        arn: output.arn().unwrap_or(&options.secret_id).to_owned(),
        version_id: output.version_id().unwrap_or_default().to_owned(),
        fingerprint: token.fingerprint().to_string(),
        kind: token.kind().label(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_token_is_stable_per_token_and_reveals_nothing() {
        let a = Token::parse(Zeroizing::new(format!("sk-ant-oat01-{}", "A".repeat(90)))).unwrap();
        let a2 = Token::parse(Zeroizing::new(format!("sk-ant-oat01-{}", "A".repeat(90)))).unwrap();
        let b = Token::parse(Zeroizing::new(format!("sk-ant-oat01-{}", "B".repeat(90)))).unwrap();
        assert_eq!(client_request_token(&a), client_request_token(&a2));
        assert_ne!(client_request_token(&a), client_request_token(&b));
        assert_eq!(client_request_token(&a).len(), 32);
        assert!(!a
            .fingerprint()
            .as_str()
            .contains(&client_request_token(&a)[..12]));
    }
}
