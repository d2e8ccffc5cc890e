//! `status` of a gateway in `secret-ref` delivery (README "Delivery: env or secret-ref"): the
//! secret file as OpenClaw's file provider accepts it, our provider in `openclaw.json`, the
//! reference in every agent's store, what `env` delivery left, and, with the gateway running,
//! whether OpenClaw resolves the reference (`openclaw secrets audit`) and what Anthropic says of
//! the token behind it (`models.probe`, 2026.8.1+). The env-delivery checks (drop-in, process
//! environment) do not apply and are not run.

use super::{Findings, Severity};
use crate::host::managed_files::{self, ManagedPaths};
use crate::host::systemd::Systemctl;
use crate::openclaw::gateway_rpc::{Call, GatewayCli, Release};
use crate::openclaw::proof;
use crate::openclaw::secret_ref::{self, ProviderConfig};
use crate::openclaw::stores;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

/// Whether the gateway is in `secret-ref` delivery: the state says so, or the secret file is
/// there.
pub fn in_use(applied: Option<&crate::host::state::AppliedState>, openclaw_state: &Path) -> bool {
    applied.is_some_and(|s| s.delivery == secret_ref::Delivery::SecretRef)
        || secret_ref::secret_file(openclaw_state).exists()
}

/// The checks of a gateway in `secret-ref` delivery.
pub(super) fn check(
    findings: &mut Findings,
    systemctl: &Systemctl,
    unit: &str,
    paths: &ManagedPaths,
    openclaw_state: &Path,
    uid: u32,
    running: bool,
) {
    let file = secret_ref::secret_file(openclaw_state);
    findings.ok(
        "delivery",
        format!("secret-ref: the agents reference {}", file.display()),
    );
    check_file(findings, &file, uid);
    check_profiles(findings, openclaw_state, &paths.home);
    check_leftovers(findings, paths);
    let cli = proof::gateway_cli(systemctl, unit, openclaw_state, &paths.cli_state())
        .ok()
        .flatten();
    let Some(cli) = cli else {
        findings.add(
            "reference-provider",
            Severity::Problem,
            format!("{unit}'s ExecStart= does not run OpenClaw's `gateway` command"),
            "without OpenClaw's CLI the reference can neither be set up nor reloaded",
            "openclaw-token-sync sync --delivery env --secret-id <secret>",
        );
        return;
    };
    match secret_ref::provider_in(cli.config_path(), &file) {
        ProviderConfig::Ours => findings.ok(
            "reference-provider",
            format!(
                "{} names {} in {}",
                secret_ref::PROVIDER,
                file.display(),
                cli.config_path().display()
            ),
        ),
        other => findings.add(
            "reference-provider",
            Severity::Problem,
            format!(
                "{}: secrets.providers.{} is {}",
                cli.config_path().display(),
                secret_ref::PROVIDER,
                if other == ProviderConfig::Missing {
                    "missing"
                } else {
                    "not the file this tool writes"
                }
            ),
            "the agents' reference resolves through this provider; without it every turn fails",
            "openclaw-token-sync sync --force --delivery secret-ref --secret-id <secret>",
        ),
    }
    if running {
        check_resolves(findings, &cli, openclaw_state, paths);
    }
}

fn check_file(findings: &mut Findings, file: &Path, uid: u32) {
    let mut bad = Vec::new();
    match std::fs::symlink_metadata(file) {
        Err(_) => bad.push(format!("{} is missing", file.display())),
        Ok(meta) if meta.file_type().is_symlink() => bad.push(
            "a symlink (this tool refuses to write through it: remove it, then sync)".to_owned(),
        ),
        Ok(meta) if !meta.is_file() => {
            bad.push(format!("{} is not a regular file", file.display()))
        }
        Ok(meta) => {
            if meta.mode() & 0o777 != 0o600 {
                bad.push(format!(
                    "mode {:o} (OpenClaw wants 600)",
                    meta.mode() & 0o777
                ));
            }
            if meta.uid() != uid {
                bad.push(format!("owned by uid {} (want {uid})", meta.uid()));
            }
            if meta.nlink() > 1 {
                bad.push(format!("{} hard links", meta.nlink()));
            }
            if meta.len() <= 1 {
                bad.push("empty".to_owned());
            }
        }
    }
    if bad.is_empty() {
        findings.ok(
            "reference-file",
            format!("{}: 0600, the user's, one link", file.display()),
        );
    } else {
        findings.add(
            "reference-file",
            Severity::Problem,
            format!("{}: {}", file.display(), bad.join(", ")),
            "OpenClaw refuses such a file and keeps serving the last token it read (or none after a restart)",
            "openclaw-token-sync sync --force --delivery secret-ref --secret-id <secret>",
        );
    }
}

/// Every agent has the reference profile in one of its stores.
fn check_profiles(findings: &mut Findings, openclaw_state: &Path, home: &Path) {
    let (agents, _) = stores::discover_agents(openclaw_state, home);
    // An id may have two directories (`<state>/agents/<id>/agent/` and its `agentDir`).
    let refers = |agent: &stores::Agent| {
        stores::stores_in(agent, openclaw_state)
            .iter()
            .any(|d| d.store.holds_reference())
    };
    let mut ids: Vec<&str> = agents.iter().map(stores::Agent::gateway_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let missing: Vec<String> = ids
        .into_iter()
        .filter(|id| !agents.iter().filter(|a| a.gateway_id() == *id).any(refers))
        .map(str::to_owned)
        .collect();
    if missing.is_empty() {
        findings.ok(
            "reference-profiles",
            format!("every agent references the file as {}", secret_ref::PROFILE),
        );
    } else {
        findings.add(
            "reference-profiles",
            Severity::Problem,
            format!(
                "agent(s) {} have no {} reference",
                missing.join(", "),
                secret_ref::PROFILE
            ),
            "those agents fall back to whatever credential they find, or none",
            "openclaw-token-sync sync --force --delivery secret-ref --secret-id <secret>",
        );
    }
}

/// Anthropic variables left in the files `env` delivery writes: a copy of an old token.
fn check_leftovers(findings: &mut Findings, paths: &ManagedPaths) {
    let left: Vec<String> = [
        &paths.dropin,
        &paths.legacy_env,
        &paths.dot_env,
        &paths.gateway_env,
    ]
    .into_iter()
    .filter(|path| {
        crate::host::fsutil::read_managed(path)
            .ok()
            .flatten()
            .is_some_and(|f| {
                managed_files::env_file_holds_managed_key(&f.content)
                    || managed_files::written_by_us(&f.content)
            })
    })
    .map(|path| path.display().to_string())
    .collect();
    if !left.is_empty() {
        findings.add(
            "env-leftovers",
            Severity::Warning,
            format!("Anthropic variables left in {}", left.join(", ")),
            "the reference outranks them, but they are copies of a token that outlive its rotation",
            "openclaw-token-sync sync --force --delivery secret-ref --secret-id <secret>",
        );
    }
}

/// OpenClaw's own audit of the reference, and Anthropic's answer to the token behind it.
fn check_resolves(
    findings: &mut Findings,
    cli: &GatewayCli<'_>,
    openclaw_state: &Path,
    paths: &ManagedPaths,
) {
    let report = cli
        .secrets_audit(openclaw_state)
        .ok()
        .and_then(|report| report.ok());
    // Anthropic lines left in the files `env` delivery writes are the env-leftovers finding.
    let managed = [
        paths.dot_env.as_path(),
        paths.gateway_env.as_path(),
        paths.global_gateway_env.as_path(),
        paths.legacy_env.as_path(),
    ];
    match report
        .as_ref()
        .map(|r| secret_ref::audit_problems(r, &managed))
    {
        None => findings.add(
            "reference-resolves",
            Severity::Warning,
            "openclaw secrets audit printed no report",
            "whether OpenClaw resolves the reference is unknown",
            "openclaw secrets audit (as the gateway's user)",
        ),
        Some(problems) if problems.is_empty() => findings.ok(
            "reference-resolves",
            "openclaw secrets audit: no finding about the Anthropic credential",
        ),
        Some(problems) => findings.add(
            "reference-resolves",
            Severity::Problem,
            problems.join("; "),
            "OpenClaw cannot use the token file as it is",
            "openclaw-token-sync sync --force --delivery secret-ref --secret-id <secret>",
        ),
    }
    if cli.release().is_none_or(|r| r < Release::MODELS_PROBE) {
        return;
    }
    let params =
        serde_json::json!({"provider": "anthropic", "agentId": "main", "timeoutMs": 20000});
    let answer = cli.call("models.probe", &params, Duration::from_secs(30));
    let status = match answer {
        Ok(Call::Answer(answer)) => secret_ref::probe_names_profile(&answer),
        Ok(other) => Err(format!("models.probe did not answer: {other}")),
        Err(error) => Err(error.to_string()),
    };
    match status.as_deref() {
        Ok("ok") => findings.ok(
            "token-probe",
            format!("models.probe: {} accepted", secret_ref::PROFILE),
        ),
        Ok("auth") => findings.add(
            "token-probe",
            Severity::Problem,
            format!(
                "models.probe: Anthropic rejects the token behind {}",
                secret_ref::PROFILE
            ),
            "every agent turn fails",
            "store a valid token (`claude setup-token`, then `openclaw-token-sync put`) and sync",
        ),
        Ok(other) => findings.add(
            "token-probe",
            Severity::Warning,
            format!("models.probe: {} status {other}", secret_ref::PROFILE),
            "the probe got no answer that proves the token works or not",
            "check the host's route to Anthropic (or the configured baseUrl) and run status again",
        ),
        Err(why) => findings.add(
            "token-probe",
            Severity::Problem,
            why,
            "the gateway does not use the reference",
            "openclaw-token-sync sync --force --delivery secret-ref --secret-id <secret>",
        ),
    }
}
