//! The proof that the running gateway's agents use the synced token, with the strongest means
//! the installed release offers (README "How a sync proves the gateway"):
//!
//! 1. `models.authStatus` (every supported release): the gateway sees no Anthropic profile, so
//!    nothing outranks the environment variable.
//! 2. `models.probe` (2026.8.1 and later): a live request made *inside* the gateway; its answer
//!    names the credential it used (`env: ANTHROPIC_OAUTH_TOKEN`) and whether Anthropic took it.
//!    It must be our variable, from the environment, and no profile.
//! 3. Where `models.probe` does not exist (2026.5.28), our own minimal request
//!    (`anthropic_probe`) to where the gateway sends its requests (`models.providers.anthropic.
//!    baseUrl` in its `openclaw.json`, else the public API), with the token whose fingerprint the
//!    gateway's process environment was shown to carry.
//!
//! Where the RPC cannot be reached the report says so and rests on the process environment and
//! the direct probe. A rejected token (401/403) is a failure; a probe that proves nothing (5xx,
//! network, timeout) is a warning. The interpretation of each answer is pure and tested here.

use super::gateway_rpc::{Call, GatewayCli, Release};
use crate::anthropic_probe::{self, Finding, Verdict};
use crate::error::{Error, Result};
use crate::host::managed_files;
use crate::host::systemd::{env_value, Systemctl};
use crate::secret::{Fingerprint, Token};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Which proof a report rests on, strongest first.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ProofMethod {
    /// `models.probe` inside the gateway named our variable and Anthropic's answer.
    GatewayProbe,
    /// `models.authStatus` showed no Anthropic profile; the variable's fingerprint was read from
    /// the gateway's process environment (releases without `models.probe`).
    GatewayAuthStatus,
    /// The gateway's RPC could not be used: the process environment alone.
    ProcessEnvironment,
}

/// Where the live probe ran.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeVia {
    /// `models.probe`, inside the gateway, with the gateway's own credential.
    Gateway,
    /// Our own request, to `target`.
    Direct,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    pub via: ProbeVia,
    /// The base URL of a direct probe; "gateway" otherwise.
    pub target: String,
    #[serde(flatten)]
    pub finding: Finding,
}

/// What the proof established. Contains no token.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct GatewayProof {
    pub method: ProofMethod,
    /// The credential the gateway says it uses, e.g. "env: ANTHROPIC_OAUTH_TOKEN".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// For a key the unit manages: the dotenv file the gateway takes its value from, with that
    /// value's fingerprint (it overrides the process environment on 2026.8.1+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeReport>,
    /// Why a weaker proof was used, or what was inconclusive.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The gateway runs OpenClaw's CLI but its RPC could not be used: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpc_error: Option<String>,
}

impl GatewayProof {
    /// Nothing established yet: the weakest method, no notes.
    pub fn empty() -> GatewayProof {
        GatewayProof {
            method: ProofMethod::ProcessEnvironment,
            source: None,
            value_from: None,
            probe: None,
            notes: Vec::new(),
            rpc_error: None,
        }
    }

    pub fn rejected(&self) -> bool {
        self.probe
            .as_ref()
            .is_some_and(|p| p.finding.verdict == Verdict::Rejected)
    }

    /// One line for the text report.
    pub fn describe(&self) -> String {
        let method = match self.method {
            ProofMethod::GatewayProbe => "the gateway's models.probe",
            ProofMethod::GatewayAuthStatus => {
                "the gateway's models.authStatus and its process environment"
            }
            ProofMethod::ProcessEnvironment => "the gateway's process environment only",
        };
        let mut out = method.to_owned();
        if let Some(source) = &self.source {
            out.push_str(&format!(", credential from {source}"));
        }
        if let Some(from) = &self.value_from {
            out.push_str(&format!(", value in {from}"));
        }
        if let Some(probe) = &self.probe {
            let verdict = match probe.finding.verdict {
                Verdict::Accepted => "accepted",
                Verdict::Rejected => "REJECTED",
                Verdict::Inconclusive => "inconclusive",
            };
            let via = match probe.via {
                ProbeVia::Gateway => "by the gateway's probe".to_owned(),
                ProbeVia::Direct => format!("at {}", probe.target),
            };
            out.push_str(&format!(
                ", token {verdict} {via}: {}",
                probe.finding.detail
            ));
        }
        out
    }
}

/// Knobs for one proof.
#[derive(Clone, Debug)]
pub struct ProofOptions {
    /// The gateway's user (named in the messages' next command).
    pub user_name: String,
    /// A directory of ours where OpenClaw's CLI keeps its own state (device identity).
    pub cli_state: PathBuf,
    /// The user's home (for `~/.config/openclaw/gateway.env`, profiles).
    pub home: PathBuf,
    /// The gateway's agent ids, for releases that want one per `models.authStatus` call.
    pub agents: Vec<String>,
    /// Send a live probe.
    pub probe: bool,
    /// Where a direct probe goes instead of the gateway's `baseUrl` (`--anthropic-base-url`).
    pub base_url: Option<String>,
    /// Until when a gateway that does not answer yet is waited for.
    pub deadline: Instant,
    /// A probe of this token this run already made (`sync` checks a new token before writing
    /// it): reused when it went to the same place, so one run sends one probe.
    pub already_probed: Option<(String, anthropic_probe::Finding)>,
}

/// OpenClaw's CLI as the gateway `unit` runs it, with the `openclaw.json` the unit's environment
/// names for `state_dir`, keeping its own state in `cli_state`; `None` when the unit does not
/// run OpenClaw's `gateway` command.
pub fn gateway_cli<'a>(
    systemctl: &'a Systemctl,
    unit: &str,
    state_dir: &Path,
    cli_state: &Path,
) -> Result<Option<GatewayCli<'a>>> {
    GatewayCli::for_unit(
        systemctl,
        unit,
        |context| config_path(&context.environment, state_dir),
        cli_state,
    )
}

/// Anthropic profile ids in a `models.authStatus` answer (any release's shape).
pub fn anthropic_profiles(auth_status: &Value) -> Vec<String> {
    auth_status["providers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["provider"] == "anthropic" || p["authProvider"] == "anthropic")
        .flat_map(|p| p["profiles"].as_array().into_iter().flatten())
        .filter_map(|profile| profile["profileId"].as_str().map(str::to_owned))
        .collect()
}

/// What `models.probe` said about the Anthropic credential the gateway uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeReading {
    /// The environment credential `variable` was probed, with this result.
    Environment { variable: String, finding: Finding },
    /// A stored profile (or the config's key) is probed: it outranks the environment.
    Other { labels: Vec<String> },
    /// No Anthropic credential at all inside the gateway.
    Nothing { status: String },
}

/// Reads a `models.probe` answer: `{provider, status, error?, results: [{profileId?, label,
/// status, error?}]}`, where an environment credential's label reads
/// `Environment credential (env: VAR) · model`.
pub fn read_probe(answer: &Value) -> ProbeReading {
    let results = answer["results"].as_array().cloned().unwrap_or_default();
    let label = |r: &Value| r["label"].as_str().unwrap_or_default().to_owned();
    let others: Vec<String> = results
        .iter()
        .filter(|r| r["profileId"].is_string() || env_variable(&label(r)).is_none())
        .map(|r| {
            r["profileId"]
                .as_str()
                .map(|id| format!("profile {id}"))
                .unwrap_or_else(|| label(r))
        })
        .collect();
    if !others.is_empty() {
        return ProbeReading::Other { labels: others };
    }
    match results.iter().find_map(|r| {
        let variable = env_variable(&label(r))?;
        Some((variable, r))
    }) {
        Some((variable, result)) => ProbeReading::Environment {
            variable,
            finding: probe_status(result),
        },
        None => ProbeReading::Nothing {
            status: format!(
                "{}{}",
                answer["status"].as_str().unwrap_or("no result"),
                answer["error"]
                    .as_str()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
        },
    }
}

/// `ANTHROPIC_OAUTH_TOKEN` from "Environment credential (env: ANTHROPIC_OAUTH_TOKEN) · model"
/// (or "shell env: …").
fn env_variable(label: &str) -> Option<String> {
    let start = label.find("env: ")? + "env: ".len();
    let rest = &label[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    (end > 0).then(|| rest[..end].to_owned())
}

/// `ok` → accepted, `auth` → rejected, anything else → inconclusive.
fn probe_status(result: &Value) -> Finding {
    let status = result["status"].as_str().unwrap_or("unknown");
    let detail = format!(
        "models.probe status {status}{}",
        result["error"]
            .as_str()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    );
    let verdict = match status {
        "ok" => Verdict::Accepted,
        "auth" => Verdict::Rejected,
        _ => Verdict::Inconclusive,
    };
    Finding::new(verdict, detail)
}

/// Agent ids as the gateway knows them, from the agents this tool found (disk and
/// `openclaw.json`), `main` first, each once.
pub fn agent_ids<'a>(
    agents: impl IntoIterator<Item = &'a crate::openclaw::stores::Agent>,
) -> Vec<String> {
    let mut ids: Vec<String> = vec!["main".to_owned()];
    for agent in agents {
        let id = agent.gateway_id().to_owned();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// `models.providers.anthropic.baseUrl` of an `openclaw.json` (JSON5), if set.
pub fn configured_base_url(config_text: &str) -> Option<String> {
    let config: Value = json5::from_str(config_text).ok()?;
    config
        .pointer("/models/providers/anthropic/baseUrl")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The gateway's `openclaw.json`: `OPENCLAW_CONFIG_PATH`, else `<state>/openclaw.json` (the state
/// dir is the gateway's, resolved by `openclaw::state_dir` from its environment).
pub fn config_path(unit_env: &[(String, String)], state_dir: &Path) -> PathBuf {
    unit_value(unit_env, "OPENCLAW_CONFIG_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| state_dir.join("openclaw.json"))
}

/// A variable the unit sets to something (an empty assignment counts as unset).
fn unit_value<'a>(unit_env: &'a [(String, String)], key: &str) -> Option<&'a str> {
    env_value(unit_env, key).filter(|v| !v.is_empty())
}

const RPC_TIMEOUT: Duration = Duration::from_secs(20);
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Proves, through the running gateway of `unit`, that its agents use `token` (see the module
/// docs). `Err` when the gateway demonstrably does not (a profile outranks the variable, the
/// variable is gone inside the gateway, another variable is used). A token Anthropic rejects is
/// in the proof (`rejected()`); [`rejection`] turns it into the error a sync fails with.
pub fn prove(
    systemctl: &Systemctl,
    unit: &str,
    token: &Token,
    state_dir: &Path,
    options: ProofOptions,
) -> Result<GatewayProof> {
    let variable = token.kind().variable();
    let mut proof = GatewayProof::empty();
    let cli = gateway_cli(systemctl, unit, state_dir, &options.cli_state)?;
    let unit_env = cli
        .as_ref()
        .map(|c| c.context().environment.clone())
        .unwrap_or_default();

    // Where the gateway's value of the variable comes from. For a key its unit manages, the
    // first global dotenv file holding it overrides the process environment (2026.8.1+): that
    // file must hold our token.
    if managed_keys(&unit_env).iter().any(|k| k == variable) {
        let files = dotenv_files(&unit_env, state_dir, &options.home);
        match dotenv_value(&files, variable) {
            Some((path, found)) if &found != token.fingerprint() => {
                return Err(Error::failed(format!(
                    "the gateway takes {variable} from {} ({found}), not the synced token {}: that file overrides its environment (OpenClaw 2026.8.1+); if it is not the state dir this tool writes, pass --state-dir",
                    path.display(),
                    token.fingerprint()
                )));
            }
            Some((path, found)) => proof.value_from = Some(format!("{} = {found}", path.display())),
            None => proof.notes.push(format!(
                "no dotenv file the gateway reads holds {variable}: OpenClaw 2026.8.1+ drops it at start (checked below through the gateway)"
            )),
        }
    }

    let Some(cli) = cli else {
        proof.notes.push(format!(
            "{unit}'s ExecStart= does not run OpenClaw's `gateway` command: its RPC was not asked"
        ));
        direct_probe(&mut proof, token, &unit_env, state_dir, &options);
        return Ok(proof);
    };

    ask_gateway(&cli, &mut proof, variable, &options)?;
    if let Some(why) = &proof.rpc_error {
        proof.notes.push(format!(
            "the gateway's RPC did not answer ({why}): the proof rests on its process environment and its dotenv files"
        ));
    }
    if !options.probe && proof.value_from.is_some() {
        proof.notes.push(
            "--no-probe: the gateway's own use of the variable was not asked (only models.probe shows it on this release)".to_owned(),
        );
    }
    direct_probe(&mut proof, token, &unit_env, state_dir, &options);
    Ok(proof)
}

/// The gateway's own view, through its RPC: `models.authStatus` (no Anthropic profile may
/// outrank the variable) and, when probing, `models.probe` (the credential it really uses, and
/// Anthropic's answer to it).
///
/// On a release with `models.probe` and a gateway of one agent, the probe comes first and alone
/// is the proof: its answer names every credential the gateway would use for Anthropic,
/// profiles included, so `models.authStatus` (a second Node start of the CLI, 1–3 s right after
/// a restart, on a machine whose cores the starting gateway wants) would add nothing. One
/// agent: the stores found on disk and the gateway's `openclaw.json` both know no other. Anything
/// but an answer falls back to the full sequence.
fn ask_gateway(
    cli: &GatewayCli<'_>,
    proof: &mut GatewayProof,
    variable: &str,
    options: &ProofOptions,
) -> Result<()> {
    let probe_params = serde_json::json!({
        "provider": "anthropic",
        "agentId": "main",
        "timeoutMs": PROBE_TIMEOUT.as_millis() as u64,
    });
    let probe_timeout = PROBE_TIMEOUT + Duration::from_secs(10);
    let probe_alone = options.probe
        && options.agents.len() <= 1
        && cli.configured_agents() <= 1
        && cli.release().is_some_and(|r| r >= Release::MODELS_PROBE);
    if probe_alone {
        // One live request once the port listens; anything but an answer (a CLI starved of
        // CPU, a gateway still warming up) falls back to the full sequence below.
        cli.wait_listening(options.deadline);
        match cli.call("models.probe", &probe_params, probe_timeout)? {
            Call::Answer(answer) => {
                return apply_probe_reading(proof, read_probe(&answer), variable);
            }
            other => tracing::debug!(?other, "models.probe alone did not answer; asking in full"),
        }
    }
    let reached = ask_auth_status(cli, proof, variable, options)?;
    if options.probe && reached {
        match cli.call("models.probe", &probe_params, probe_timeout)? {
            Call::Answer(answer) => apply_probe_reading(proof, read_probe(&answer), variable)?,
            Call::UnknownMethod => {}
            Call::Unreachable(why) | Call::Failed(why) => {
                proof.rpc_error.get_or_insert_with(|| why.clone());
                proof
                    .notes
                    .push(format!("models.probe did not answer ({why})"));
            }
        }
    }
    Ok(())
}

/// `models.authStatus` (per agent where the release wants an agent id): an Anthropic profile
/// that outranks the variable is an error. Returns whether the gateway was reached.
fn ask_auth_status(
    cli: &GatewayCli<'_>,
    proof: &mut GatewayProof,
    variable: &str,
    options: &ProofOptions,
) -> Result<bool> {
    // Releases from 2026.8.1 want an agent id once several agents are configured: then each
    // agent is asked (an agent the gateway does not know is noted and skipped).
    let mut answers = Vec::new();
    let mut reached = true;
    match cli.call_when_up(
        "models.authStatus",
        &serde_json::json!({}),
        RPC_TIMEOUT,
        options.deadline,
    )? {
        Call::Answer(answer) => answers.push(answer),
        Call::Failed(why) if why.contains("agentId") => {
            for agent in &options.agents {
                match cli.call(
                    "models.authStatus",
                    &serde_json::json!({ "agentId": agent }),
                    RPC_TIMEOUT,
                )? {
                    Call::Answer(answer) => answers.push(answer),
                    Call::Unreachable(why) | Call::Failed(why) => proof
                        .notes
                        .push(format!("models.authStatus for agent {agent}: {why}")),
                    Call::UnknownMethod => {}
                }
            }
        }
        Call::UnknownMethod => proof
            .notes
            .push("the gateway has no models.authStatus".to_owned()),
        Call::Unreachable(why) => {
            reached = false;
            proof.rpc_error = Some(why);
        }
        Call::Failed(why) => proof.rpc_error = Some(why),
    }
    if !answers.is_empty() {
        let profiles: Vec<String> = answers.iter().flat_map(anthropic_profiles).collect();
        if !profiles.is_empty() {
            return Err(Error::failed(format!(
                "the running gateway still has Anthropic profile(s) {}: they outrank {variable}; `openclaw-token-sync status --user {}` names the store that holds them",
                profiles.join(", "),
                options.user_name
            )));
        }
        proof.method = ProofMethod::GatewayAuthStatus;
    }

    Ok(reached)
}

/// Where our own probe goes: the override (`--anthropic-base-url`), else the gateway's
/// configured `models.providers.anthropic.baseUrl`, else the public API.
pub fn probe_target(
    unit_env: &[(String, String)],
    state_dir: &Path,
    override_url: Option<&str>,
) -> String {
    override_url
        .map(str::to_owned)
        .or_else(|| {
            crate::host::fsutil::read_regular(&config_path(unit_env, state_dir))
                .ok()
                .flatten()
                .and_then(|bytes| configured_base_url(&String::from_utf8_lossy(&bytes)))
        })
        .unwrap_or_else(|| anthropic_probe::PUBLIC_BASE_URL.to_owned())
}

/// Our own probe, when the gateway's could not be used and probing is on.
fn direct_probe(
    proof: &mut GatewayProof,
    token: &Token,
    unit_env: &[(String, String)],
    state_dir: &Path,
    options: &ProofOptions,
) {
    if options.probe && proof.probe.is_none() {
        let base = probe_target(unit_env, state_dir, options.base_url.as_deref());
        let finding = match &options.already_probed {
            Some((target, finding)) if *target == base => finding.clone(),
            _ => anthropic_probe::probe(&base, token, PROBE_TIMEOUT),
        };
        proof.probe = Some(ProbeReport {
            via: ProbeVia::Direct,
            target: base,
            finding,
        });
    }
    if let Some(probe) = &proof.probe {
        if probe.finding.verdict == Verdict::Inconclusive {
            proof.notes.push(format!(
                "the live probe was inconclusive ({}); the token is in place but not proven to work",
                probe.finding.detail
            ));
        }
    }
}

/// The keys the unit's `OPENCLAW_SERVICE_MANAGED_ENV_KEYS` lists (comma-separated, upper case).
pub fn managed_keys(unit_env: &[(String, String)]) -> Vec<String> {
    unit_value(unit_env, "OPENCLAW_SERVICE_MANAGED_ENV_KEYS")
        .map(|v| {
            v.split(',')
                .map(|k| k.trim().to_ascii_uppercase())
                .filter(|k| !k.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// The global dotenv files the gateway reads, first one wins for a managed key (OpenClaw
/// 2026.8.1+): `<state>/.env` (the gateway's state dir, as `openclaw::state_dir` resolved it),
/// the config dir's `.env` when it is elsewhere, then `~/.config/openclaw/gateway.env`.
pub fn dotenv_files(unit_env: &[(String, String)], state_dir: &Path, home: &Path) -> Vec<PathBuf> {
    let mut files = vec![state_dir.join(".env")];
    if let Some(config_dir) = config_path(unit_env, state_dir).parent() {
        let config_env = config_dir.join(".env");
        if !files.contains(&config_env) {
            files.push(config_env);
        }
    }
    files.push(home.join(".config/openclaw/gateway.env"));
    files
}

/// The first of `files` that assigns `variable`, with the fingerprint of its value.
fn dotenv_value(files: &[PathBuf], variable: &str) -> Option<(PathBuf, Fingerprint)> {
    files.iter().find_map(|path| {
        let file = crate::host::fsutil::read_managed(path).ok().flatten()?;
        let value = managed_files::assigned_value(&file.content, variable)?;
        Some((path.clone(), Fingerprint::of(value)))
    })
}

/// The failure for a proof whose live probe was rejected, naming what rejected it.
pub fn rejection(proof: &GatewayProof, token: &Token) -> Option<Error> {
    let probe = proof.probe.as_ref().filter(|_| proof.rejected())?;
    Some(Error::TokenRejected(format!(
        "the token {} was rejected ({}, {}): the gateway runs with a token Anthropic refuses; store a valid one (`openclaw-token-sync put`), then sync again",
        token.fingerprint(),
        probe.finding.detail,
        match probe.via {
            ProbeVia::Gateway => "by the gateway's models.probe".to_owned(),
            ProbeVia::Direct => format!("by {}", probe.target),
        }
    )))
}

fn apply_probe_reading(
    proof: &mut GatewayProof,
    reading: ProbeReading,
    variable: &str,
) -> Result<()> {
    match reading {
        ProbeReading::Environment {
            variable: used,
            finding,
        } if used == variable => {
            proof.method = ProofMethod::GatewayProbe;
            proof.source = Some(format!("env: {used}"));
            proof.probe = Some(ProbeReport {
                via: ProbeVia::Gateway,
                target: "gateway".to_owned(),
                finding,
            });
            Ok(())
        }
        ProbeReading::Environment { variable: used, .. } => Err(Error::failed(format!(
            "the running gateway uses {used}, not {variable}: remove {used} from its environment files and drop-ins"
        ))),
        ProbeReading::Other { labels } => Err(Error::failed(format!(
            "the running gateway uses {} for Anthropic, which outranks {variable}",
            labels.join(", ")
        ))),
        ProbeReading::Nothing { status } => Err(Error::failed(format!(
            "the running gateway has no Anthropic credential ({status}): {variable} did not survive its start (OpenClaw 2026.8.1+ drops a managed key that no dotenv file holds; is <state>/.env writable and the one the gateway reads?)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn auth_status_profiles_are_found_in_both_release_shapes() {
        let newest = json!({"ts": 1, "providers": [
            {"provider": "anthropic", "authProvider": "anthropic", "profiles": [{"profileId": "anthropic:claude-code", "type": "token"}]},
            {"provider": "openai", "profiles": [{"profileId": "openai:default"}]}
        ]});
        assert_eq!(anthropic_profiles(&newest), ["anthropic:claude-code"]);
        let seed = json!({"ts": 1, "providers": [{"provider": "openai", "profiles": [{"profileId": "openai:default"}]}]});
        assert!(anthropic_profiles(&seed).is_empty());
        assert!(anthropic_profiles(&json!({"ts": 1, "providers": []})).is_empty());
    }

    #[test]
    fn probe_answers_are_read_as_environment_profile_or_nothing() {
        let env_ok = json!({"provider": "anthropic", "status": "ok", "results": [
            {"label": "Environment credential (env: ANTHROPIC_OAUTH_TOKEN) · anthropic/claude-sonnet-5", "status": "ok", "latencyMs": 20}
        ]});
        assert_eq!(
            read_probe(&env_ok),
            ProbeReading::Environment {
                variable: "ANTHROPIC_OAUTH_TOKEN".into(),
                finding: Finding::new(Verdict::Accepted, "models.probe status ok")
            }
        );
        let env_rejected = json!({"provider": "anthropic", "status": "auth", "results": [
            {"label": "Environment credential (env: ANTHROPIC_API_KEY)", "status": "auth", "error": "Authentication failed."}
        ]});
        assert!(matches!(
            read_probe(&env_rejected),
            ProbeReading::Environment { variable, finding }
                if variable == "ANTHROPIC_API_KEY" && finding.verdict == Verdict::Rejected
                    && finding.detail == "models.probe status auth: Authentication failed."
        ));
        let profile = json!({"provider": "anthropic", "status": "ok", "results": [
            {"profileId": "anthropic:claude-code", "label": "Profile anthropic:claude-code", "status": "ok"},
            {"label": "Environment credential (env: ANTHROPIC_OAUTH_TOKEN)", "status": "ok"}
        ]});
        assert_eq!(
            read_probe(&profile),
            ProbeReading::Other {
                labels: vec!["profile anthropic:claude-code".into()]
            }
        );
        let nothing = json!({"provider": "anthropic", "status": "unknown", "error": "No credentials found.", "results": []});
        assert_eq!(
            read_probe(&nothing),
            ProbeReading::Nothing {
                status: "unknown: No credentials found.".into()
            }
        );
        let timeout = json!({"results": [{"label": "Environment credential (shell env: ANTHROPIC_OAUTH_TOKEN)", "status": "timeout"}]});
        assert!(matches!(
            read_probe(&timeout),
            ProbeReading::Environment { finding, .. } if finding.verdict == Verdict::Inconclusive
        ));
    }

    #[test]
    fn the_probe_reading_decides_pass_or_failure() {
        let mut proof = GatewayProof {
            method: ProofMethod::GatewayAuthStatus,
            source: None,
            value_from: None,
            probe: None,
            notes: vec![],
            rpc_error: None,
        };
        let other_variable = ProbeReading::Environment {
            variable: "ANTHROPIC_OAUTH_TOKEN".into(),
            finding: Finding::new(Verdict::Accepted, "x"),
        };
        let err = apply_probe_reading(&mut proof, other_variable.clone(), "ANTHROPIC_API_KEY")
            .unwrap_err();
        assert!(err
            .message()
            .contains("uses ANTHROPIC_OAUTH_TOKEN, not ANTHROPIC_API_KEY"));
        apply_probe_reading(&mut proof, other_variable, "ANTHROPIC_OAUTH_TOKEN").unwrap();
        assert_eq!(proof.method, ProofMethod::GatewayProbe);
        assert_eq!(proof.source.as_deref(), Some("env: ANTHROPIC_OAUTH_TOKEN"));
        assert!(apply_probe_reading(
            &mut proof,
            ProbeReading::Nothing {
                status: "unknown".into()
            },
            "ANTHROPIC_OAUTH_TOKEN"
        )
        .unwrap_err()
        .message()
        .contains("did not survive"));
    }

    #[test]
    fn managed_keys_and_dotenv_files_follow_the_unit() {
        let home = Path::new("/home/u");
        let state = home.join(".openclaw");
        let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            managed_keys(&env(&[(
                "OPENCLAW_SERVICE_MANAGED_ENV_KEYS",
                "anthropic_oauth_token, OPENAI_API_KEY"
            )])),
            ["ANTHROPIC_OAUTH_TOKEN", "OPENAI_API_KEY"]
        );
        assert!(managed_keys(&[]).is_empty());
        assert_eq!(
            dotenv_files(&[], &state, home),
            [
                state.join(".env"),
                home.join(".config/openclaw/gateway.env")
            ]
        );
        assert_eq!(
            dotenv_files(
                &env(&[("OPENCLAW_CONFIG_PATH", "/etc/oc/openclaw.json")]),
                Path::new("/srv/oc"),
                home
            ),
            [
                PathBuf::from("/srv/oc/.env"),
                PathBuf::from("/etc/oc/.env"),
                home.join(".config/openclaw/gateway.env")
            ]
        );
    }

    #[test]
    fn the_config_path_and_base_url_follow_the_unit() {
        let state = Path::new("/home/u/.openclaw");
        assert_eq!(config_path(&[], state), state.join("openclaw.json"));
        let env = vec![
            ("OPENCLAW_STATE_DIR".to_owned(), "/srv/oc".to_owned()),
            ("OPENCLAW_CONFIG_PATH".to_owned(), "/etc/oc.json".to_owned()),
        ];
        assert_eq!(config_path(&env, state), Path::new("/etc/oc.json"));
        assert_eq!(
            configured_base_url("{ // json5\n models: { providers: { anthropic: { baseUrl: 'http://127.0.0.1:9' } } } }"),
            Some("http://127.0.0.1:9".into())
        );
        assert_eq!(configured_base_url("{}"), None);
    }
}
