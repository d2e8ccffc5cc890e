//! `put`: store a new token as the secret's AWSCURRENT version, from standard input (never from
//! an argument, where it would show in `ps` and shell history). On a terminal the input is not
//! echoed. The token is validated exactly as `sync` validates it before anything is sent.
//!
//! `put` is idempotent and can roll back: it first looks for a labelled version that already
//! holds the token. AWSCURRENT there: nothing to do. An older version: AWSCURRENT is moved back to
//! it (`UpdateSecretVersionStage`), no duplicate version. Otherwise a new version is stored with a
//! fresh `ClientRequestToken` (a token derived from the value would make Secrets Manager return an
//! older version silently: `put A`, `put B`, `put A` left B current). Either way the staging
//! labels are read back and AWSCURRENT is moved onto the version when it is not there. With
//! `--json-key` the current JSON object keeps its other keys (e.g. `expires_at`).

use crate::aws::{self, AwsSettings};
use crate::error::{Error, Result};
use crate::secret::{self, Token};
use serde::Serialize;
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
    /// The version that is AWSCURRENT now (confirmed through its staging labels).
    pub version_id: String,
    pub action: PutAction,
    /// Where AWSCURRENT was before, when it moved.
    pub previous_version_id: Option<String>,
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

/// What `put` did to the secret.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PutAction {
    /// A new version holds the token and is AWSCURRENT.
    Created,
    /// An older version already held the token: AWSCURRENT was moved back to it (a rollback).
    Moved,
    /// AWSCURRENT already held the token.
    Unchanged,
}

/// A fresh idempotency token for one `put` call: 32 hex digits from the kernel's random source.
/// The SDK's retries inside the call reuse it; a second call never does (Secrets Manager would
/// silently return an older version for a token and value it has seen).
pub fn fresh_request_token() -> Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Error::failed(format!("/dev/urandom: cannot read: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The value to store: the plain token, or (with a JSON key) the current AWSCURRENT object with
/// that key set, every other key kept (e.g. `expires_at`).
pub fn value_to_store(
    token: &Token,
    json_key: Option<&str>,
    current: Option<&str>,
) -> Result<Zeroizing<String>> {
    let Some(key) = json_key else {
        return Ok(Zeroizing::new(token.expose().to_owned()));
    };
    let mut object = match current.map(serde_json::from_str::<serde_json::Value>) {
        Some(Ok(serde_json::Value::Object(object))) => object,
        _ => serde_json::Map::new(),
    };
    object.insert(
        key.to_owned(),
        serde_json::Value::String(token.expose().to_owned()),
    );
    let text = Zeroizing::new(serde_json::Value::Object(object).to_string());
    // The map held copies of the token and of the old one; the text is what leaves.
    Ok(text)
}

/// A failed call, by its error code and message (never the request, which may hold the token).
fn sdk_failure(
    what: &str,
    secret_id: &str,
    err: impl aws_sdk_secretsmanager::error::ProvideErrorMetadata,
) -> Error {
    Error::failed(format!(
        "{what} for {secret_id} failed: {}: {}",
        err.code()
            .unwrap_or("no usable answer (network, timeout or malformed response)"),
        err.message().unwrap_or("")
    ))
}

/// Every version that has a staging label, with its labels.
async fn labelled_versions(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<Vec<(String, Vec<String>)>> {
    let mut versions = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = client
            .list_secret_version_ids()
            .secret_id(secret_id)
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| sdk_failure("ListSecretVersionIds", secret_id, e))?;
        for version in page.versions() {
            let stages = version.version_stages().to_vec();
            if let (Some(id), false) = (version.version_id(), stages.is_empty()) {
                versions.push((id.to_owned(), stages));
            }
        }
        match page.next_token() {
            Some(token) if !token.is_empty() => next = Some(token.to_owned()),
            _ => return Ok(versions),
        }
    }
}

/// The version AWSCURRENT is on.
async fn current_version(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<Option<String>> {
    let described = client
        .describe_secret()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| sdk_failure("DescribeSecret", secret_id, e))?;
    Ok(described.version_ids_to_stages().and_then(|map| {
        map.iter()
            .find(|(_, stages)| stages.iter().any(|s| s == CURRENT))
            .map(|(id, _)| id.clone())
    }))
}

const CURRENT: &str = "AWSCURRENT";

/// Validates and stores the token, or moves AWSCURRENT back to the older version that holds it.
/// Returns the version that is now AWSCURRENT, confirmed through the staging labels.
pub fn run(options: &PutOptions, token: Token) -> Result<PutReport> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::failed(format!("cannot start the async runtime: {e}")))?;
    let config = runtime.block_on(aws::load_config(&options.aws, &options.secret_id))?;
    let client = aws_sdk_secretsmanager::Client::new(&config);
    let secret_id = options.secret_id.as_str();
    runtime.block_on(async {
        let versions = labelled_versions(&client, secret_id).await?;
        let current = versions
            .iter()
            .find(|(_, stages)| stages.iter().any(|s| s == CURRENT))
            .map(|(id, _)| id.clone());
        let mut arn = secret_id.to_owned();
        let mut current_value: Option<Zeroizing<String>> = None;
        let mut holder: Option<String> = None;
        for (version_id, _) in &versions {
            let mut got = client
                .get_secret_value()
                .secret_id(secret_id)
                .version_id(version_id)
                .send()
                .await
                .map_err(|e| sdk_failure("GetSecretValue", secret_id, e))?;
            if let Some(found) = got.arn.take() {
                arn = found;
            }
            let Some(text) = got.secret_string.take().map(Zeroizing::new) else {
                continue;
            };
            let key = options.json_key.as_deref().unwrap_or("token");
            let holds = secret::parse_secret_string(text.clone(), key)
                .is_ok_and(|(stored, _)| stored.expose() == token.expose());
            if holds && holder.is_none() {
                holder = Some(version_id.clone());
            }
            if Some(version_id) == current.as_ref() {
                current_value = Some(text);
            }
        }
        let (version_id, action) = match holder {
            Some(version) if Some(&version) == current.as_ref() => (version, PutAction::Unchanged),
            Some(version) => {
                move_current(&client, secret_id, &version, current.as_deref()).await?;
                (version, PutAction::Moved)
            }
            None => {
                let value = value_to_store(
                    &token,
                    options.json_key.as_deref(),
                    current_value.as_deref().map(String::as_str),
                )?;
                let output = client
                    .put_secret_value()
                    .secret_id(secret_id)
                    .secret_string(value.as_str())
                    .client_request_token(fresh_request_token()?)
                    .send()
                    .await
                    .map_err(|e| sdk_failure("PutSecretValue", secret_id, e))?;
                if let Some(found) = output.arn() {
                    arn = found.to_owned();
                }
                let version = output.version_id().unwrap_or_default().to_owned();
                (version, PutAction::Created)
            }
        };
        // Trust the labels, not the answer: AWSCURRENT must be on that version now.
        let now = current_version(&client, secret_id).await?;
        if now.as_deref() != Some(version_id.as_str()) {
            move_current(&client, secret_id, &version_id, now.as_deref()).await?;
            let again = current_version(&client, secret_id).await?;
            if again.as_deref() != Some(version_id.as_str()) {
                return Err(Error::failed(format!(
                    "{secret_id}: AWSCURRENT is on version {} after moving it to {version_id}; another writer may be rotating the secret",
                    again.as_deref().unwrap_or("none")
                )));
            }
        }
        Ok(PutReport {
            arn,
            version_id,
            previous_version_id: current.filter(|_| action != PutAction::Unchanged),
            action,
            fingerprint: token.fingerprint().to_string(),
            kind: token.kind().label(),
        })
    })
}

/// Moves AWSCURRENT to `version` (Secrets Manager then labels the old one AWSPREVIOUS).
async fn move_current(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    version: &str,
    from: Option<&str>,
) -> Result<()> {
    client
        .update_secret_version_stage()
        .secret_id(secret_id)
        .version_stage(CURRENT)
        .move_to_version_id(version)
        .set_remove_from_version_id(from.map(str::to_owned))
        .send()
        .await
        .map_err(|e| sdk_failure("UpdateSecretVersionStage", secret_id, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(fill: &str) -> Token {
        Token::parse(Zeroizing::new(format!("sk-ant-oat01-{}", fill.repeat(90)))).unwrap()
    }

    #[test]
    fn request_tokens_are_fresh_per_call() {
        let a = fresh_request_token().unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, fresh_request_token().unwrap());
    }

    #[test]
    fn a_json_value_keeps_the_other_keys() {
        let t = token("A");
        let stored = value_to_store(
            &t,
            Some("token"),
            Some(r#"{"token":"sk-ant-oat01-old","expires_at":"2027-01-01"}"#),
        )
        .unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&stored).unwrap();
        assert_eq!(parsed["expires_at"], "2027-01-01");
        assert_eq!(parsed["token"], t.expose());
        assert_eq!(
            value_to_store(&t, None, Some("{}")).unwrap().as_str(),
            t.expose()
        );
        let fresh = value_to_store(&t, Some("k"), Some("not json")).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&fresh).unwrap(),
            serde_json::json!({ "k": t.expose() })
        );
    }
}
