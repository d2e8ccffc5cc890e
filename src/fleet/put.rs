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

use crate::anthropic_probe::Verdict;
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
    /// Put the version under this staging label instead of AWSCURRENT (a canary).
    pub label: Option<String>,
    /// Prove with one request that Anthropic accepts the token before storing it.
    pub probe: bool,
    /// Where that request goes (default: the public API).
    pub anthropic_base_url: Option<String>,
    pub aws: AwsSettings,
}

/// How long the probe before storing (or before moving AWSCURRENT) may take.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Serialize, Debug)]
pub struct PutReport {
    pub arn: String,
    /// The version that carries `stage` now (confirmed through the staging labels).
    pub version_id: String,
    /// AWSCURRENT, or the label given with `--label`.
    pub stage: String,
    pub action: PutAction,
    /// Where the stage was before, when it moved.
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
    Token::parse(Zeroizing::new(text)).map_err(|e| match e {
        // Not "the secret holds no token yet": this is what is being stored.
        secret::SecretError::Placeholder(length) => Error::failed(format!(
            "standard input: a {length}-character value without the sk-ant- prefix is not a token (a `claude setup-token` token starts with {}, an API key with {})",
            secret::OAUTH_PREFIX,
            secret::API_KEY_PREFIX
        )),
        other => Error::failed(format!("standard input: {other}")),
    })
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
///
/// Without `--json-key` the secret keeps its shape: a plain value stays plain, and a JSON
/// object gets its `token` key updated, every other key kept (a sync reads `token` by default).
/// An object without a `token` key is refused (exit 2) naming its keys: which one holds the
/// token is the operator's to say (`--json-key`).
pub fn value_to_store(
    token: &Token,
    json_key: Option<&str>,
    current: Option<&str>,
) -> Result<Zeroizing<String>> {
    let current_object = match current.map(serde_json::from_str::<serde_json::Value>) {
        Some(Ok(serde_json::Value::Object(object))) => Some(object),
        _ => None,
    };
    let key = match (json_key, &current_object) {
        (Some(key), _) => key,
        (None, Some(object)) if object.get("token").is_some_and(|v| v.is_string()) => "token",
        (None, Some(object)) => {
            let keys: Vec<&str> = object.keys().map(String::as_str).collect();
            return Err(Error::config(format!(
                "the secret holds a JSON object without a \"token\" key (its keys: {}); pass --json-key KEY for the key that holds the token, and the other keys are kept; nothing was stored",
                keys.join(", ")
            )));
        }
        (None, None) => return Ok(Zeroizing::new(token.expose().to_owned())),
    };
    let mut object = current_object.unwrap_or_default();
    object.insert(
        key.to_owned(),
        serde_json::Value::String(token.expose().to_owned()),
    );
    let text = Zeroizing::new(serde_json::Value::Object(object).to_string());
    // The map held copies of the token and of the old one; the text is what leaves.
    Ok(text)
}

/// The `expires_at` a JSON secret keeps from the token it held before, when the token changes
/// (that date was the old token's).
fn kept_expiry(current: Option<&str>, desired: &str) -> Option<String> {
    let current: serde_json::Value = serde_json::from_str(current?).ok()?;
    let desired: serde_json::Value = serde_json::from_str(desired).ok()?;
    let kept = desired.get("expires_at")?;
    (current != desired && current.get("expires_at") == Some(kept)).then(|| {
        kept.as_str()
            .map_or_else(|| kept.to_string(), str::to_owned)
    })
}

/// A runtime and a Secrets Manager client for the operator-side commands.
pub(crate) fn secrets_client(
    settings: &AwsSettings,
    secret_id: &str,
) -> Result<(tokio::runtime::Runtime, aws_sdk_secretsmanager::Client)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::failed(format!("cannot start the async runtime: {e}")))?;
    let config = runtime.block_on(aws::load_config(settings, secret_id, true))?;
    Ok((runtime, aws_sdk_secretsmanager::Client::new(&config)))
}

/// A failed call, by its error code and message, or what kept it from an answer (never the
/// request, which may hold the token).
pub(crate) fn sdk_failure<E: aws_sdk_secretsmanager::error::ProvideErrorMetadata, R>(
    what: &str,
    secret_id: &str,
    err: aws_sdk_secretsmanager::error::SdkError<E, R>,
) -> Error {
    Error::failed(aws::describe_failure(
        &format!("{what} for {secret_id}"),
        "secretsmanager",
        &err,
    ))
}

/// Every version that has a staging label, with its labels.
pub(crate) async fn labelled_versions(
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

/// The version among `versions` (from [`labelled_versions`]) that carries `label`.
pub(crate) fn holder_of(versions: &[(String, Vec<String>)], label: &str) -> Option<String> {
    versions
        .iter()
        .find(|(_, stages)| stages.iter().any(|s| s == label))
        .map(|(id, _)| id.clone())
}

/// The version a staging label is on.
pub(crate) async fn stage_version(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    stage: &str,
) -> Result<Option<String>> {
    let described = client
        .describe_secret()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| sdk_failure("DescribeSecret", secret_id, e))?;
    Ok(described.version_ids_to_stages().and_then(|map| {
        map.iter()
            .find(|(_, stages)| stages.iter().any(|s| s == stage))
            .map(|(id, _)| id.clone())
    }))
}

pub(crate) const CURRENT: &str = "AWSCURRENT";

/// Proves with one request (to `base_url`, else the public API) that Anthropic accepts the token
/// before a command makes the gateways use it: `put` before storing it, `promote` and `rollback`
/// before moving AWSCURRENT onto it. A 401/403 is [`Error::TokenRejected`]; no answer either way
/// is a failure that names `--no-probe`. `subject` names the token (by fingerprint, never its
/// value), `unchanged` says what did not happen, `bypass` what `--no-probe` does instead.
pub(crate) fn require_accepted(
    token: &Token,
    base_url: Option<&str>,
    subject: &str,
    unchanged: &str,
    bypass: &str,
) -> Result<()> {
    let base = base_url.unwrap_or(crate::anthropic_probe::PUBLIC_BASE_URL);
    let finding = crate::anthropic_probe::probe(base, token, PROBE_TIMEOUT);
    match finding.verdict {
        Verdict::Accepted => Ok(()),
        Verdict::Rejected => Err(Error::TokenRejected(format!(
            "{base} rejected {subject} ({}); {unchanged}",
            finding.detail
        ))),
        Verdict::Inconclusive => Err(Error::failed(format!(
            "could not show that {base} accepts {subject} ({}); {unchanged} (--no-probe {bypass} without this check)",
            finding.detail
        ))),
    }
}

/// Validates and stores the token, or moves AWSCURRENT back to the older version that holds it.
/// Returns the version that is now AWSCURRENT, confirmed through the staging labels.
pub fn run(options: &PutOptions, token: Token) -> Result<PutReport> {
    let (runtime, client) = secrets_client(&options.aws, &options.secret_id)?;
    let secret_id = options.secret_id.as_str();
    if options.probe {
        let subject = format!("the token {}", token.fingerprint());
        require_accepted(
            &token,
            options.anthropic_base_url.as_deref(),
            &subject,
            "nothing was stored",
            "stores it",
        )?;
    }
    let stage = options.label.as_deref().unwrap_or(CURRENT);
    runtime.block_on(async {
        let versions = labelled_versions(&client, secret_id).await?;
        let holder_of = |label: &str| holder_of(&versions, label);
        let current = holder_of(CURRENT);
        let before = holder_of(stage);
        let mut arn = secret_id.to_owned();
        // AWSCURRENT's value first: with --json-key the new value keeps its other keys.
        let values =
            read_versions(&client, secret_id, &versions, current.as_ref(), &mut arn).await?;
        let current_value = values
            .iter()
            .find(|(id, _)| Some(id) == current.as_ref())
            .and_then(|(_, text)| text.as_deref().map(String::as_str));
        let desired = value_to_store(&token, options.json_key.as_deref(), current_value)?;
        if let Some(kept) = kept_expiry(current_value, &desired) {
            tracing::warn!(
                "the secret's expires_at ({kept}) was kept from the token before; `status` reports it as this token's expiry: if the new token expires at another date, set expires_at in the secret to it, or remove it (then `status` counts --token-lifetime-days from this version's creation)"
            );
        }
        let holder = version_holding(
            &values,
            &desired,
            before.as_ref(),
            holder_of("AWSPREVIOUS").as_ref(),
        );
        let (version_id, action) = match holder {
            Some(version) if Some(&version) == before.as_ref() => (version, PutAction::Unchanged),
            Some(version) => {
                move_stage(&client, secret_id, stage, &version, before.as_deref()).await?;
                (version, PutAction::Moved)
            }
            None => {
                let version = create_version(&client, secret_id, stage, &desired, &mut arn).await?;
                (version, PutAction::Created)
            }
        };
        confirm_stage(&client, secret_id, stage, &version_id, &token).await?;
        Ok(PutReport {
            arn,
            version_id,
            stage: stage.to_owned(),
            previous_version_id: before.filter(|_| action != PutAction::Unchanged),
            action,
            fingerprint: token.fingerprint().to_string(),
            kind: token.kind().label(),
        })
    })
}

/// The value of every version that may be a rollback target (`None`: not readable), in the order
/// listed; `arn` becomes the secret's ARN as Secrets Manager answers it.
async fn read_versions(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    versions: &[(String, Vec<String>)],
    current: Option<&String>,
    arn: &mut String,
) -> Result<Vec<(String, Option<Zeroizing<String>>)>> {
    let mut values: Vec<(String, Option<Zeroizing<String>>)> = Vec::new();
    for (version_id, stages) in versions {
        // Mid-rotation versions (AWSPENDING only) are never a rollback target.
        if stages.iter().all(|s| s == "AWSPENDING") {
            continue;
        }
        let got = client
            .get_secret_value()
            .secret_id(secret_id)
            .version_id(version_id)
            .send()
            .await;
        let text = match got {
            Ok(mut got) => {
                if let Some(found) = got.arn.take() {
                    *arn = found;
                }
                got.secret_string.take().map(Zeroizing::new)
            }
            // AWSCURRENT's value decides the shape of the new one (a JSON secret keeps
            // its other keys): not reading it is a failure, never a plain-token rewrite.
            Err(err) if Some(version_id) == current => {
                return Err(sdk_failure("GetSecretValue", secret_id, err));
            }
            // An old version this caller may not read (another KMS key, a condition on
            // the stage) is simply not a candidate.
            Err(err) => {
                tracing::info!(version_id, error = %sdk_failure("GetSecretValue", secret_id, err), "skipping a version");
                None
            }
        };
        values.push((version_id.clone(), text));
    }
    Ok(values)
}

/// A version holding exactly the value we would store: the one carrying the stage, else
/// AWSPREVIOUS, else any.
fn version_holding(
    values: &[(String, Option<Zeroizing<String>>)],
    desired: &str,
    before: Option<&String>,
    previous: Option<&String>,
) -> Option<String> {
    let holders: Vec<&String> = values
        .iter()
        .filter(|(_, text)| text.as_deref().is_some_and(|t| same_value(t, desired)))
        .map(|(id, _)| id)
        .collect();
    holders
        .iter()
        .find(|id| Some(**id) == before)
        .or_else(|| holders.iter().find(|id| Some(**id) == previous))
        .or_else(|| holders.first())
        .map(|id| (*id).clone())
}

/// Stores `desired` as a new version carrying `stage` (for a canary only the label: AWSCURRENT
/// stays where it is); its version id.
async fn create_version(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    stage: &str,
    desired: &str,
    arn: &mut String,
) -> Result<String> {
    let mut request = client
        .put_secret_value()
        .secret_id(secret_id)
        .secret_string(desired)
        .client_request_token(fresh_request_token()?);
    if stage != CURRENT {
        // Only the label: AWSCURRENT stays where it is (a canary).
        request = request.version_stages(stage);
    }
    let output = request
        .send()
        .await
        .map_err(|e| sdk_failure("PutSecretValue", secret_id, e))?;
    if let Some(found) = output.arn() {
        *arn = found.to_owned();
    }
    Ok(output.version_id().unwrap_or_default().to_owned())
}

/// Trust the labels, not the answer: `stage` must now be on `version_id`. A version of another
/// writer that took the stage meanwhile is not overridden: that is a conflict for the operators.
async fn confirm_stage(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    stage: &str,
    version_id: &str,
    token: &Token,
) -> Result<()> {
    let now = stage_version(client, secret_id, stage).await?;
    if now.as_deref() != Some(version_id) {
        return Err(Error::failed(format!(
            "{secret_id}: {stage} is on version {} instead of {version_id} ({}): another writer changed the secret meanwhile; check with `aws secretsmanager list-secret-version-ids`, then put again",
            now.as_deref().unwrap_or("none"),
            token.fingerprint()
        )));
    }
    Ok(())
}

/// Whether a stored value is the one we would store: the same text, or the same JSON object.
fn same_value(stored: &str, desired: &str) -> bool {
    if stored == desired {
        return true;
    }
    match (
        serde_json::from_str::<serde_json::Value>(stored),
        serde_json::from_str::<serde_json::Value>(desired),
    ) {
        (Ok(a @ serde_json::Value::Object(_)), Ok(b)) => a == b,
        _ => false,
    }
}

/// Moves a staging label to `version` (for AWSCURRENT, Secrets Manager then labels the old one
/// AWSPREVIOUS); `from` is the version that has it now.
pub(crate) async fn move_stage(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    stage: &str,
    version: &str,
    from: Option<&str>,
) -> Result<()> {
    client
        .update_secret_version_stage()
        .secret_id(secret_id)
        .version_stage(stage)
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
        // Without --json-key the secret keeps its shape.
        let kept = value_to_store(
            &t,
            None,
            Some(r#"{"token":"sk-ant-oat01-old","expires_at":"2027-01-01"}"#),
        )
        .unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&kept).unwrap();
        assert_eq!(parsed["expires_at"], "2027-01-01");
        assert_eq!(parsed["token"], t.expose());
        assert_eq!(
            value_to_store(&t, None, Some("sk-ant-oat01-old"))
                .unwrap()
                .as_str(),
            t.expose()
        );
        let refused = value_to_store(&t, None, Some(r#"{"anthropic":"x","note":"y"}"#))
            .err()
            .unwrap();
        assert_eq!(refused.exit_code(), 2);
        assert!(
            refused.message().contains("its keys: anthropic, note")
                && refused.message().contains("--json-key"),
            "{refused}"
        );
        let fresh = value_to_store(&t, Some("k"), Some("not json")).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&fresh).unwrap(),
            serde_json::json!({ "k": t.expose() })
        );
    }
}
