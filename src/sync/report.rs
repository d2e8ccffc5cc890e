//! What a sync tells the operator: the report (text is rendered by `cli::output`, JSON is this
//! structure serialised). It holds fingerprints, paths, ids and counts, never a token.

use super::apply::StoreResults;
use super::decide::StoreStep;
pub use super::outcome::{GatewayAction, Outcome};
use super::plan::Plan;
use crate::host::managed_files::{FileAction, FileRole, ManagedPaths};
use crate::openclaw::proof::GatewayProof;
use crate::openclaw::stores::document::{Cleaning, ProfileSelector};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Serialize, Deserialize, Debug)]
pub struct SecretReport {
    pub arn: String,
    pub version_id: String,
    /// The staging label applied (AWSCURRENT, or a canary label).
    pub stage: String,
    /// The label asked for that no version carries (AWSCURRENT was applied instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_from: Option<String>,
    pub fingerprint: String,
    pub kind: String,
    pub variable: String,
    pub created_date: Option<String>,
    /// `expires_at` from a JSON secret, as written there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct FileReport {
    pub path: PathBuf,
    pub role: FileRole,
    pub action: FileAction,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub removed_literal_tokens: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct StoreReport {
    pub agent: String,
    pub layout: String,
    pub path: PathBuf,
    pub removed_profiles: Vec<String>,
    pub removed_references: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct GatewayReport {
    pub unit: String,
    pub action: GatewayAction,
    pub old_pid: Option<u32>,
    pub new_pid: Option<u32>,
    /// How the running gateway was shown to use the token (after a restart or a verification).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof: Option<GatewayProof>,
}

/// What a sync did (or, with `--dry-run`, would do). Contains no token, only fingerprints.
#[derive(Serialize, Deserialize, Debug)]
pub struct SyncReport {
    pub result: Outcome,
    pub user: String,
    pub home: PathBuf,
    /// OpenClaw's state directory and where that came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<crate::openclaw::state_dir::StateDir>,
    pub secret: SecretReport,
    pub files: Vec<FileReport>,
    pub stores: Vec<StoreReport>,
    pub gateway: GatewayReport,
    pub warnings: Vec<String>,
}

impl SyncReport {
    /// Exit code: 0, or 1 when a store was skipped or holds a profile that keeps coming back.
    pub fn exit_code(&self) -> u8 {
        if self.stores_failed() {
            1
        } else {
            0
        }
    }

    pub fn stores_failed(&self) -> bool {
        self.stores.iter().any(|s| s.error.is_some())
    }
}

/// The report before anything is applied: the secret, the planned file actions, the warnings.
pub fn new(
    target: &crate::host::privileges::TargetUser,
    options: &super::SyncOptions,
    secret: &crate::aws::FetchedSecret,
    plan: &Plan,
    mut warnings: Vec<String>,
) -> SyncReport {
    if let Some(label) = &secret.fallback_from {
        warnings.push(format!(
            "no version of {} carries the label {label}: applied AWSCURRENT instead. Right after a `promote` that is expected; otherwise check the name (`aws secretsmanager describe-secret --secret-id {}` lists the labels)",
            secret.arn, secret.arn
        ));
    }
    for stray in &plan.stray {
        warnings.push(format!(
            "{}: a drop-in an earlier run wrote for a unit name without `.service`, where systemd never reads it; it holds a token, so it is removed",
            stray.display()
        ));
    }
    SyncReport {
        result: Outcome::Unchanged,
        user: target.name.clone(),
        home: target.home.clone(),
        state_dir: None,
        secret: secret_report(secret),
        files: plan
            .files
            .iter()
            .map(|f| FileReport {
                path: f.path.clone(),
                role: f.role,
                action: f.action,
                removed_literal_tokens: f.removed_literal_tokens,
            })
            .collect(),
        stores: Vec::new(),
        gateway: GatewayReport {
            unit: options.unit.clone(),
            action: GatewayAction::Unchanged,
            old_pid: None,
            new_pid: None,
            proof: None,
        },
        warnings,
    }
}

/// The secret's part of a report: ids, fingerprint, kind, dates.
pub fn secret_report(secret: &crate::aws::FetchedSecret) -> SecretReport {
    SecretReport {
        arn: secret.arn.clone(),
        version_id: secret.version_id.clone(),
        stage: secret.stage.clone(),
        fallback_from: secret.fallback_from.clone(),
        fingerprint: secret.token.fingerprint().to_string(),
        kind: secret.token.kind().label().to_owned(),
        variable: secret.token.kind().variable().to_owned(),
        created_date: secret.created_date.clone(),
        expires_at: secret.metadata.expires_at.clone(),
    }
}

/// One line per store that was (or would be) cleaned, skipped, or is held. `applied` is what
/// cleaning did (aligned with the plan); without it the inspection is reported. With `recheck`,
/// a store this run cleaned is inspected again and reported held when its entries are back.
pub fn stores(
    plan: &Plan,
    applied: Option<&StoreResults>,
    step: StoreStep,
    held_reason: &str,
    recheck: Option<&ProfileSelector>,
) -> Vec<StoreReport> {
    plan.stores
        .iter()
        .enumerate()
        .map(|(index, planned)| {
            let done = applied.and_then(|a| a.get(index)).and_then(Option::as_ref);
            let (cleaning, mut error) = match done.unwrap_or(&planned.inspected) {
                Ok(c) => (c.clone(), None),
                Err(e) => (Default::default(), Some(e.clone())),
            };
            let mut report = StoreReport {
                agent: planned.agent.id.clone(),
                layout: planned.store.layout().to_owned(),
                path: planned.store.location().to_path_buf(),
                removed_profiles: cleaning.removed_profiles.clone(),
                removed_references: cleaning.removed_references,
                error: None,
            };
            if done.is_none() && step == StoreStep::Hold && !cleaning.is_empty() {
                // Held: nothing was removed.
                report.removed_profiles.clear();
                report.removed_references = 0;
                error = Some(format!(
                    "Anthropic entries ({}) {held_reason}",
                    entry_names(&cleaning)
                ));
            }
            if let (Some(selector), Some(Ok(removed))) = (recheck, done) {
                if !removed.is_empty() {
                    if let Ok(now) = planned.store.inspect(selector) {
                        if !now.is_empty() {
                            error = Some(format!(
                                "Anthropic entries ({}) were back right after the gateway started; they {held_reason}",
                                entry_names(&now)
                            ));
                        }
                    }
                }
            }
            report.error = error;
            report
        })
        .filter(|r| r.error.is_some() || !r.removed_profiles.is_empty() || r.removed_references > 0)
        .collect()
}

/// The stores that need attention, in one line for an error message.
pub fn store_problems(stores: &[StoreReport]) -> String {
    stores
        .iter()
        .filter_map(|store| {
            let error = store.error.as_deref()?;
            Some(format!(
                "store of agent {} ({}): {error}",
                store.agent,
                store.path.display()
            ))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn entry_names(cleaning: &Cleaning) -> String {
    if cleaning.removed_profiles.is_empty() {
        format!("{} dangling reference(s)", cleaning.removed_references)
    } else {
        cleaning.removed_profiles.join(", ")
    }
}

/// The text for store entries that keep coming back: what probably re-creates them, the fix.
pub fn held_reason(paths: &ManagedPaths) -> String {
    let claude = paths.home.join(".claude/.credentials.json");
    let source = if claude.exists() {
        format!(
            "OpenClaw importing another CLI's login from {} (it exists)",
            claude.display()
        )
    } else {
        "OpenClaw importing another CLI's login (e.g. ~/.claude/.credentials.json), an auth profile in openclaw.json, or another process writing the store".to_owned()
    };
    format!(
        "came back after a restart removed them for this secret version: probably {source}; remove that source, then run `openclaw-token-sync sync --force` (no further restart for them until the secret version or the entries change)"
    )
}
