//! What this tool remembers between runs, in `~/.local/state/openclaw-token-sync/`: `state.json`
//! (the secret ARN, version id, token fingerprint and what became of the gateway; never the
//! token), written only after a run has finished its work, and `lock`, the flock that keeps timer
//! and SSM runs from interleaving (taken through `crate::host::locks`).

use crate::error::{Error, Result};
use crate::host::fsutil;
use std::path::Path;

/// What became of the gateway when a version was applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GatewayOutcome {
    /// Running with the token, proven through `/proc/<pid>/environ`.
    Verified,
    /// `--no-restart`: files written, the gateway still runs the previous environment.
    NotRestarted,
    /// The unit does not exist (yet); files written.
    UnitNotFound,
    /// The unit was stopped on purpose and left stopped; it picks up the files when started.
    Inactive,
    /// A container gateway restarted with the token, whose proof failed or was inconclusive: the
    /// next run proves it again without a restart.
    Unproven,
}

impl GatewayOutcome {
    /// How a message says it.
    pub fn describe(self) -> &'static str {
        match self {
            GatewayOutcome::Verified => "verified running with it",
            GatewayOutcome::NotRestarted => "not restarted (--no-restart)",
            GatewayOutcome::UnitNotFound => "not found (files only)",
            GatewayOutcome::Inactive => "stopped, left stopped",
            GatewayOutcome::Unproven => "restarted, not proven yet",
        }
    }
}

/// Contents of `state.json`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppliedState {
    pub secret_arn: String,
    pub version_id: String,
    pub fingerprint: crate::secret::Fingerprint,
    pub variable: String,
    pub unit: String,
    pub gateway: GatewayOutcome,
    pub gateway_pid: Option<u32>,
    /// RFC 3339 time the version was applied.
    pub applied_at: String,
    /// RFC 3339 creation time of the secret version, when Secrets Manager said.
    pub version_created_at: Option<String>,
    /// How it was delivered (`env` in states written before `--delivery` existed).
    #[serde(default)]
    pub delivery: Delivery,
    /// `secret-ref`: the gateway's `openclaw.json`, where a no-op checks that our provider is
    /// still there without asking systemd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_path: Option<std::path::PathBuf>,
    /// A Quadlet gateway's unit invocation (`InvocationID`) when the files were written: a
    /// different one later is a start that read them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation: Option<String>,
}

/// Loads `state.json`. A missing file is `None`; an unreadable or corrupt one is `None` plus a
/// warning (the next apply rewrites it).
pub fn load(path: &Path) -> (Option<AppliedState>, Option<String>) {
    match fsutil::read_managed(path) {
        Ok(None) => (None, None),
        Ok(Some(file)) => match serde_json::from_slice(&file.content) {
            Ok(state) => (Some(state), None),
            Err(e) => (
                None,
                Some(format!(
                    "{}: ignoring an unreadable state file ({e}); it will be rewritten",
                    path.display()
                )),
            ),
        },
        Err(e) => (None, Some(format!("{e}; treating the state as unknown"))),
    }
}

pub fn save(path: &Path, state: &AppliedState) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(state)
        .map_err(|e| Error::failed(format!("cannot serialise state: {e}")))?;
    bytes.push(b'\n');
    fsutil::write_atomic(path, &bytes, 0o600)
}

/// Current time as RFC 3339.
pub fn now_rfc3339() -> String {
    aws_smithy_types::DateTime::from(std::time::SystemTime::now())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

/// One Anthropic entry in one store: the store's path and the profile id (`#references` when
/// only dangling references to removed profiles were left).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct StoreEntry {
    pub path: std::path::PathBuf,
    pub profile: String,
}

/// `store-cleanings.json`: the store entries a restart removed for one secret version. Written
/// before the gateway is stopped for them, so that an entry that comes back (re-imported on every
/// start) costs one restart per version, not one per run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoreCleanings {
    pub secret_arn: String,
    pub version_id: String,
    pub fingerprint: crate::secret::Fingerprint,
    pub cleaned: Vec<StoreEntry>,
}

/// The entries cleaned before for this version, if the record is about it. A missing or
/// unreadable record counts as none (the worst case is one more restart).
pub fn load_cleanings(
    path: &Path,
    arn: &str,
    version_id: &str,
    fingerprint: &crate::secret::Fingerprint,
) -> Option<StoreCleanings> {
    let file = fsutil::read_managed(path).ok()??;
    let record: StoreCleanings = serde_json::from_slice(&file.content).ok()?;
    (record.secret_arn == arn
        && record.version_id == version_id
        && record.fingerprint == *fingerprint)
        .then_some(record)
}

pub fn save_cleanings(path: &Path, record: &StoreCleanings) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(record)
        .map_err(|e| Error::failed(format!("cannot serialise store cleanings: {e}")))?;
    bytes.push(b'\n');
    fsutil::write_atomic(path, &bytes, 0o600)
}

/// How the token reaches the gateway.
#[derive(
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    /// The gateway's environment (drop-in, `<state>/.env`), profiles removed, a restart.
    #[default]
    Env,
    /// A file secret reference, reloaded in place: no restart.
    SecretRef,
}

impl Delivery {
    pub fn name(self) -> &'static str {
        match self {
            Delivery::Env => "env",
            Delivery::SecretRef => "secret-ref",
        }
    }
}
