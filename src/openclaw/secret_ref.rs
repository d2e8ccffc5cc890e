//! The token as an OpenClaw secret reference (`--delivery secret-ref`, DESIGN.md section 10):
//! what is set up where, and how OpenClaw's answers are read. Pure but for reading
//! `openclaw.json` ([`provider_in`]); the CLI calls are in `GatewayCli` and the flow in
//! `sync::by_reference`.
//!
//! - The token lives in one file, [`secret_file`] (`<state>/secrets/openclaw-token-sync.token`,
//!   0600 in a 0700 directory, owned by the gateway's user, one link, the token and a newline).
//! - `openclaw.json` names it as the file provider [`PROVIDER`] (`mode: singleValue`), and every
//!   agent's store has the profile [`PROFILE`] `{type: token, provider: anthropic, tokenRef:
//!   {source: file, provider: openclaw-token-sync, id: value}}`. Both are written by OpenClaw's
//!   own `openclaw secrets apply` with the plan of [`setup_plan`], never behind its back.
//! - A rotation rewrites the file and asks the gateway to `secrets.reload`; the gateway keeps
//!   its PID. Switching back to `env` removes the provider ([`removal_plan`]) once the stores no
//!   longer hold the profile (a profile outranks the environment, so a forgotten reference
//!   would silently win).

use serde_json::{json, Value};
use std::path::{Path, PathBuf};

pub use crate::host::state::Delivery;

/// The alias of our file provider in `secrets.providers`.
pub const PROVIDER: &str = "openclaw-token-sync";
/// The profile every agent gets.
pub const PROFILE: &str = "anthropic:default";

/// The secret file in the gateway's state dir.
pub fn secret_file(state_dir: &Path) -> PathBuf {
    state_dir.join("secrets").join("openclaw-token-sync.token")
}

fn reference() -> Value {
    json!({"source": "file", "provider": PROVIDER, "id": "value"})
}

/// The `openclaw secrets apply` plan that sets the reference up: our provider, and the profile
/// in every agent's store.
pub fn setup_plan(file: &Path, agents: &[String]) -> Value {
    let targets: Vec<Value> = agents
        .iter()
        .map(|agent| {
            json!({
                "type": "auth-profiles.token.token",
                "path": format!("profiles.{PROFILE}.token"),
                "pathSegments": ["profiles", PROFILE, "token"],
                "agentId": agent,
                "authProfileProvider": "anthropic",
                "ref": reference(),
            })
        })
        .collect();
    json!({
        "version": 1,
        "protocolVersion": 1,
        "providerUpserts": {
            PROVIDER: {"source": "file", "path": file.display().to_string(), "mode": "singleValue"}
        },
        "targets": targets,
    })
}

/// The plan that removes our provider (the profiles must be gone first: OpenClaw refuses a plan
/// that leaves a reference to a provider it deletes).
pub fn removal_plan() -> Value {
    json!({"version": 1, "protocolVersion": 1, "providerDeletes": [PROVIDER], "targets": []})
}

/// What a gateway's `openclaw.json` (JSON5) says about our provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderConfig {
    Missing,
    /// Ours, pointing at the expected file.
    Ours,
    /// Our alias, but not as we set it up (another path, mode or source): set up again.
    Different,
}

pub fn provider_config(config_text: Option<&str>, file: &Path) -> ProviderConfig {
    let Some(config) = config_text.and_then(|text| json5::from_str::<Value>(text).ok()) else {
        return ProviderConfig::Missing;
    };
    let provider = &config["secrets"]["providers"][PROVIDER];
    if provider.is_null() {
        ProviderConfig::Missing
    } else if provider["source"] == "file"
        && provider["mode"] == "singleValue"
        && provider["path"].as_str() == Some(&file.display().to_string())
    {
        ProviderConfig::Ours
    } else {
        ProviderConfig::Different
    }
}

/// What the `openclaw.json` at `config` says about our provider (unreadable: missing).
pub fn provider_in(config: &Path, file: &Path) -> ProviderConfig {
    let text = crate::host::fsutil::read_regular(config)
        .ok()
        .flatten()
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
    provider_config(text.as_deref(), file)
}

/// Whether a store's profile body is our reference.
pub fn is_our_reference(profile: &Value) -> bool {
    profile["type"] == "token"
        && profile["provider"] == "anthropic"
        && profile["tokenRef"] == reference()
        && profile.get("token").is_none_or(Value::is_null)
}

/// Reads a `secrets.reload` answer: `{ok: true, warningCount: 0}` is the only success. With
/// warnings OpenClaw keeps the last good value (a file it refused: mode, owner, link).
pub fn reload_verdict(answer: &Value) -> Result<(), String> {
    match (answer["ok"].as_bool(), answer["warningCount"].as_u64()) {
        (Some(true), Some(0) | None) => Ok(()),
        (Some(true), Some(n)) => Err(format!(
            "the gateway reloaded with {n} warning(s) and kept its last good token (`openclaw secrets audit` names the cause)"
        )),
        _ => Err(format!(
            "the gateway refused the reload: {}",
            crate::openclaw::gateway_rpc::short(&answer.to_string())
        )),
    }
}

/// The findings of `openclaw secrets audit --json` that concern our reference: anything about
/// our provider (a reference that does not resolve), the reference shadowed for Anthropic, and
/// a plaintext Anthropic profile beside it. Plaintext Anthropic variables in an env file are
/// `env` delivery's leftovers (sync removes them, `status` names them), except in a file not in
/// `leftovers` (one this tool does not manage); other providers' findings are not ours to judge.
/// Each as "CODE file: message", shortened.
pub fn audit_problems(report: &Value, leftovers: &[&Path]) -> Vec<String> {
    report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|finding| {
            let text = |key: &str| finding[key].as_str().unwrap_or_default().to_owned();
            let code = text("code");
            let ours = text("message").contains(&format!(":{PROVIDER}:"))
                || text("jsonPath").contains(PROVIDER)
                || (code.starts_with("REF_") && text("jsonPath").contains(PROFILE));
            let shadowed = code == "REF_SHADOWED" && finding["provider"] == "anthropic";
            let plaintext_profile =
                code == "PLAINTEXT_FOUND" && text("jsonPath").contains("anthropic:");
            let plaintext_env = code == "PLAINTEXT_FOUND"
                && text("jsonPath").starts_with("$env.ANTHROPIC_")
                && !leftovers.iter().any(|l| Path::new(&text("file")) == *l);
            ours || shadowed || plaintext_profile || plaintext_env
        })
        .map(|finding| {
            crate::openclaw::gateway_rpc::short(&format!(
                "{} {}: {}",
                finding["code"].as_str().unwrap_or("finding"),
                finding["file"].as_str().unwrap_or_default(),
                finding["message"].as_str().unwrap_or_default()
            ))
        })
        .collect()
}

/// Whether a `models.probe` answer shows the gateway using our profile, and Anthropic's verdict
/// on it: `Ok(status)` with the probe's status of the profile (`ok`, `auth`, …), `Err(why)` when
/// the profile is not what the gateway uses.
pub fn probe_names_profile(answer: &Value) -> Result<String, String> {
    let results = answer["results"].as_array().cloned().unwrap_or_default();
    match results.iter().find(|r| r["profileId"] == PROFILE) {
        Some(result) => Ok(result["status"].as_str().unwrap_or("unknown").to_owned()),
        None => Err(format!(
            "models.probe does not name {PROFILE}: {}",
            crate::openclaw::gateway_rpc::short(&answer.to_string())
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setup_plan_names_every_agent_and_the_file() {
        let plan = setup_plan(
            Path::new("/home/u/.openclaw/secrets/openclaw-token-sync.token"),
            &["main".into(), "work".into()],
        );
        assert_eq!(plan["targets"].as_array().unwrap().len(), 2);
        assert_eq!(plan["targets"][1]["agentId"], "work");
        assert_eq!(plan["targets"][0]["ref"]["provider"], PROVIDER);
        assert_eq!(
            plan["providerUpserts"][PROVIDER]["path"],
            "/home/u/.openclaw/secrets/openclaw-token-sync.token"
        );
        assert_eq!(removal_plan()["providerDeletes"][0], PROVIDER);
    }

    #[test]
    fn the_provider_is_ours_only_as_we_set_it_up() {
        let file = Path::new("/s/secrets/openclaw-token-sync.token");
        let ours = r#"{secrets: {providers: {"openclaw-token-sync": {source: "file", path: "/s/secrets/openclaw-token-sync.token", mode: "singleValue"}}}}"#;
        assert_eq!(provider_config(Some(ours), file), ProviderConfig::Ours);
        let moved = ours.replace("/s/secrets", "/elsewhere");
        assert_eq!(
            provider_config(Some(&moved), file),
            ProviderConfig::Different
        );
        assert_eq!(
            provider_config(Some("{gateway: {}}"), file),
            ProviderConfig::Missing
        );
        assert_eq!(provider_config(None, file), ProviderConfig::Missing);
    }

    #[test]
    fn only_a_token_profile_pointing_at_our_provider_is_our_reference() {
        let ours = json!({"type": "token", "provider": "anthropic", "tokenRef": reference()});
        assert!(is_our_reference(&ours));
        let mut plain = ours.clone();
        plain["token"] = json!("sk-ant-oat01-x");
        assert!(!is_our_reference(&plain));
        let mut other = ours.clone();
        other["tokenRef"]["provider"] = json!("vault");
        assert!(!is_our_reference(&other));
        assert!(!is_our_reference(
            &json!({"type": "oauth", "provider": "anthropic"})
        ));
    }

    #[test]
    fn a_reload_counts_only_without_warnings() {
        assert!(reload_verdict(&json!({"ok": true, "warningCount": 0})).is_ok());
        assert!(reload_verdict(&json!({"ok": true, "warningCount": 2}))
            .unwrap_err()
            .contains("2 warning"));
        assert!(reload_verdict(&json!({"ok": false})).is_err());
    }

    #[test]
    fn audit_findings_of_other_providers_and_of_leftovers_are_not_ours() {
        let report = json!({"findings": [
            {"code": "PLAINTEXT_FOUND", "file": "/a/auth-profiles.json", "jsonPath": "profiles.openai:default.key", "message": "plaintext", "provider": "openai"},
            {"code": "REF_UNRESOLVED", "file": "/a/x", "jsonPath": "profiles.anthropic:default.tokenRef", "message": "Failed to resolve file:openclaw-token-sync:value (mode)"},
            {"code": "PLAINTEXT_FOUND", "file": "/s/.env", "jsonPath": "$env.ANTHROPIC_OAUTH_TOKEN", "message": "Potential secret"},
            {"code": "PLAINTEXT_FOUND", "file": "/other/.env", "jsonPath": "$env.ANTHROPIC_API_KEY", "message": "Potential secret"},
            {"code": "PLAINTEXT_FOUND", "file": "/a/openclaw.json", "jsonPath": "models.providers.anthropic.apiKey", "message": "plaintext"},
        ]});
        let problems = audit_problems(&report, &[Path::new("/s/.env")]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("REF_UNRESOLVED"));
        assert!(problems[1].contains("/other/.env"));
        assert_eq!(audit_problems(&report, &[]).len(), 3);
    }

    #[test]
    fn the_probe_must_name_our_profile() {
        let answer = json!({"results": [{"profileId": "anthropic:default", "status": "ok"}]});
        assert_eq!(probe_names_profile(&answer).unwrap(), "ok");
        let env = json!({"results": [{"label": "Environment credential (env: ANTHROPIC_OAUTH_TOKEN)", "status": "ok"}]});
        assert!(probe_names_profile(&env).is_err());
    }
}
