//! Calls the running gateway's RPC through OpenClaw's own CLI (`openclaw gateway call <method>
//! --json`), the same release the gateway runs: node and script come from the unit's
//! `ExecStart=` (everything before its `gateway` argument), the environment from the unit's
//! `Environment=` (credentials removed) and `EnvironmentFile=`s, so the CLI resolves the gateway's
//! own state dir, config, port and `gateway.auth.token` exactly as the gateway does. No secret is
//! passed on a command line.
//!
//! The CLI runs as a transient service of the user's manager (see `Systemctl::run_transient`):
//! under `deploy/openclaw-token-sync.service` every direct child inherits
//! `MemoryDenyWriteExecute=yes`, which kills Node's JIT at start.
//!
//! The CLI runs with a state dir of our own (`~/.local/state/openclaw-token-sync/openclaw-cli/
//! <method>`) and the gateway's config (`OPENCLAW_CONFIG_PATH`): OpenClaw keeps the CLI's device
//! identity in its state dir and pairs it with the gateway on first use with the least scopes the
//! method needs; a scope the pairing lacks later needs an operator's approval. Our own identity,
//! one per method, leaves the operator's CLI pairing untouched and never asks for an upgrade
//! (measured with 2026.5.28: a `models.authStatus` call from the user's own identity left it
//! paired read-only, and the operator's next `openclaw agent` waited for "scope upgrade pending
//! approval").

use crate::error::Result;
use crate::host::fsutil;
use crate::host::systemd::{ExecContext, Systemctl};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What one RPC call came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// The method's JSON answer.
    Answer(Value),
    /// The release does not have this method.
    UnknownMethod,
    /// The gateway does not (yet) accept connections.
    Unreachable(String),
    /// Anything else (auth refused, the CLI failed, output that is not JSON).
    Failed(String),
}

/// In words, for messages (a `Debug` form never reaches an operator).
impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Call::Answer(_) => f.write_str("answered"),
            Call::UnknownMethod => f.write_str("this release does not have the method"),
            Call::Unreachable(why) => write!(f, "the gateway is not reachable: {why}"),
            Call::Failed(why) => write!(f, "the call failed: {why}"),
        }
    }
}

/// OpenClaw's CLI as the gateway unit runs it.
pub struct GatewayCli<'a> {
    prefix: Vec<String>,
    context: ExecContext,
    systemctl: &'a Systemctl,
    /// The gateway's `openclaw.json`.
    config: PathBuf,
    /// Where our per-method CLI state dirs live.
    private_state: PathBuf,
    /// The port the gateway listens on (`super::listening`).
    port: u16,
    /// How many agents the gateway's `openclaw.json` lists (`agents.list`, `agents.entries`).
    configured_agents: usize,
}

/// The number of agents an `openclaw.json` (JSON5) lists.
fn configured_agents(config_text: &str) -> usize {
    let Ok(config) = json5::from_str::<Value>(config_text) else {
        return 0;
    };
    ["list", "entries"]
        .iter()
        .map(|key| match &config["agents"][key] {
            Value::Array(items) => items.len(),
            Value::Object(items) => items.len(),
            _ => 0,
        })
        .sum()
}

/// An OpenClaw release number (`2026.9.6`; a pre-release suffix is ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Release(pub u32, pub u32, pub u32);

impl Release {
    /// The first release whose gateway has `models.probe`.
    pub const MODELS_PROBE: Release = Release(2026, 8, 1);

    pub fn parse(version: &str) -> Option<Release> {
        let mut parts = version.split(['.', '-', '+']).map(str::parse::<u32>);
        Some(Release(
            parts.next()?.ok()?,
            parts.next()?.ok()?,
            parts.next()?.ok()?,
        ))
    }
}

/// The part of an `ExecStart=` argv that runs OpenClaw's CLI: everything before the `gateway`
/// subcommand (`node [flags] …/dist/index.js`, or an `openclaw` launcher). `None` when the unit
/// does not run `… gateway`.
pub fn cli_prefix(argv: &[String]) -> Option<Vec<String>> {
    let at = argv.iter().skip(1).position(|a| a == "gateway")? + 1;
    Some(argv[..at].to_vec())
}

/// Reads what the CLI printed for one call. `--json` prints the answer (or, from 2026.8 on, an
/// `{"ok":false,"error":…}` object) on stdout; 2026.5.28 prints errors on stderr.
pub fn interpret(success: bool, stdout: &str, stderr: &str) -> Call {
    let json = first_json(stdout);
    let refused = json
        .as_ref()
        .is_some_and(|v| v["ok"] == false || v.get("error").is_some_and(|e| !e.is_null()));
    if success && !refused {
        if let Some(value) = json {
            return Call::Answer(value);
        }
    }
    let message = json
        .as_ref()
        .and_then(|v| v.pointer("/error/message").and_then(Value::as_str))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            last_line(stderr)
                .or_else(|| last_line(stdout))
                .unwrap_or_default()
        });
    let all = format!("{stdout}\n{stderr}").to_ascii_lowercase();
    if all.contains("unknown method") || all.contains("method not found") {
        Call::UnknownMethod
    } else if all.contains("econnrefused")
        || all.contains("not reachable")
        || all.contains("connection closed")
        || all.contains("socket hang up")
        || all.contains("gateway closed")
        || all.contains("timed out")
        || all.contains("timeout")
    {
        Call::Unreachable(short(&message))
    } else {
        Call::Failed(short(&message))
    }
}

fn first_json(text: &str) -> Option<Value> {
    let start = text.find('{')?;
    serde_json::Deserializer::from_str(&text[start..])
        .into_iter::<Value>()
        .next()?
        .ok()
}

fn last_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(str::to_owned)
}

pub use crate::error::short;

impl<'a> GatewayCli<'a> {
    /// The CLI of the release `unit` runs, or `None` when its `ExecStart=` is not OpenClaw's
    /// `… gateway` command. `config` picks the gateway's `openclaw.json` from the unit's
    /// environment; `private_state` is a directory of ours for the CLI's own state.
    pub fn for_unit(
        systemctl: &'a Systemctl,
        unit: &str,
        config: impl FnOnce(&ExecContext) -> PathBuf,
        private_state: &Path,
    ) -> Result<Option<GatewayCli<'a>>> {
        let context = systemctl.exec_context(unit)?;
        let Some(prefix) = cli_prefix(&context.argv) else {
            return Ok(None);
        };
        let config = config(&context);
        let config_text = crate::host::fsutil::read_regular(&config)
            .ok()
            .flatten()
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
        let port = super::listening::gateway_port(
            &context.argv,
            &context.start_environment(),
            config_text.as_deref(),
        );
        let configured_agents = config_text.as_deref().map_or(0, configured_agents);
        Ok(Some(GatewayCli {
            prefix,
            config,
            context,
            systemctl,
            private_state: private_state.to_path_buf(),
            port,
            configured_agents,
        }))
    }

    /// The unit's environment (credentials removed): where its state dir and config are.
    pub fn context(&self) -> &ExecContext {
        &self.context
    }

    /// How many agents the gateway's `openclaw.json` lists.
    pub fn configured_agents(&self) -> usize {
        self.configured_agents
    }

    /// The OpenClaw release the CLI (and so the gateway) is: `version` of the `package.json` of
    /// the package whose script the unit runs (`…/openclaw/dist/index.js`), read as the acting
    /// user. `None` for a launcher or anything unreadable.
    pub fn release(&self) -> Option<Release> {
        let script = self
            .prefix
            .iter()
            .rev()
            .find(|a| a.ends_with(".js") || a.ends_with(".mjs"))?;
        Path::new(script)
            .ancestors()
            .skip(1)
            .take(3)
            .find_map(|dir| {
                let text = fsutil::read_regular(&dir.join("package.json")).ok()??;
                let json: Value = serde_json::from_slice(&text).ok()?;
                (json["name"] == "openclaw").then_some(())?;
                Release::parse(json["version"].as_str()?)
            })
    }

    /// One `gateway call`, allowed `timeout` inside the gateway.
    pub fn call(&self, method: &str, params: &Value, timeout: Duration) -> Result<Call> {
        let mut argv = self.prefix.clone();
        argv.extend(
            [
                "gateway",
                "call",
                method,
                "--json",
                "--params",
                &params.to_string(),
                "--timeout",
                &timeout.as_millis().to_string(),
            ]
            .map(str::to_owned),
        );
        let limit = timeout + Duration::from_secs(30);
        let state = self.private_state.join(method);
        fsutil::ensure_dir(&state, true)?;
        let own = [
            ("OPENCLAW_STATE_DIR".to_owned(), state.display().to_string()),
            (
                "OPENCLAW_CONFIG_PATH".to_owned(),
                self.config.display().to_string(),
            ),
        ];
        let (success, stdout, stderr) = self.systemctl.run_transient(
            "openclaw-token-sync-rpc",
            &argv,
            &self.context,
            &own,
            limit,
        )?;
        tracing::debug!(method, success, "gateway call");
        Ok(interpret(success, &stdout, &stderr))
    }

    /// One of OpenClaw's local commands (`secrets apply`, `secrets audit`) on the gateway's own
    /// state dir and config, as the gateway's user: they read and write the gateway's files, not
    /// its RPC. Returns (success, stdout, stderr).
    pub fn run_local(
        &self,
        args: &[&str],
        state_dir: &Path,
        limit: Duration,
    ) -> Result<(bool, String, String)> {
        let mut argv = self.prefix.clone();
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        let own = [
            (
                "OPENCLAW_STATE_DIR".to_owned(),
                state_dir.display().to_string(),
            ),
            (
                "OPENCLAW_CONFIG_PATH".to_owned(),
                self.config.display().to_string(),
            ),
        ];
        let result = self.systemctl.run_transient(
            "openclaw-token-sync-cli",
            &argv,
            &self.context,
            &own,
            limit,
        )?;
        tracing::debug!(command = args.join(" "), success = result.0, "openclaw");
        Ok(result)
    }

    /// `openclaw secrets audit --json` on the gateway's own state dir: its report, or why there
    /// is none.
    pub fn secrets_audit(&self, state_dir: &Path) -> Result<std::result::Result<Value, String>> {
        let (_, stdout, stderr) = self.run_local(
            &["secrets", "audit", "--json"],
            state_dir,
            Duration::from_secs(90),
        )?;
        Ok(first_json(&stdout).ok_or_else(|| {
            format!(
                "openclaw secrets audit printed no report: {}",
                short(&stderr)
            )
        }))
    }

    /// The gateway's `openclaw.json`.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Waits (until `deadline`) for the gateway's port to listen; no process is started.
    pub fn wait_listening(&self, deadline: Instant) {
        if super::listening::wait_listening(self.port, deadline) {
            tracing::debug!(port = self.port, "the gateway listens");
        } else {
            tracing::debug!(
                port = self.port,
                "the gateway's port does not listen; asking anyway"
            );
        }
    }

    /// Calls `method` until the gateway answers or `deadline` passes: a restarted gateway takes
    /// seconds to listen (2026.9.6: 13–16 s). The first call waits until its port listens
    /// (no process is started before); then calls are retried while it is unreachable. Returns
    /// the last result.
    pub fn call_when_up(
        &self,
        method: &str,
        params: &Value,
        timeout: Duration,
        deadline: Instant,
    ) -> Result<Call> {
        self.wait_listening(deadline);
        loop {
            let result = self.call(method, params, timeout)?;
            match result {
                Call::Unreachable(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(500));
                }
                other => return Ok(other),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn cli_prefix_is_everything_before_the_gateway_subcommand() {
        assert_eq!(
            cli_prefix(&argv(&[
                "/usr/bin/node",
                "--max-old-space-size=8192",
                "/usr/lib/node_modules/openclaw/dist/index.js",
                "gateway",
                "--port",
                "18789"
            ])),
            Some(argv(&[
                "/usr/bin/node",
                "--max-old-space-size=8192",
                "/usr/lib/node_modules/openclaw/dist/index.js"
            ]))
        );
        assert_eq!(
            cli_prefix(&argv(&["/usr/local/bin/openclaw", "gateway"])),
            Some(argv(&["/usr/local/bin/openclaw"]))
        );
        assert_eq!(cli_prefix(&argv(&["/bin/sleep", "infinity"])), None);
        assert_eq!(cli_prefix(&argv(&["gateway"])), None);
    }

    #[test]
    fn agents_are_counted_from_the_config_in_either_shape() {
        assert_eq!(configured_agents("{}"), 0);
        assert_eq!(configured_agents("{agents: {list: [{id: 'main'}]}}"), 1);
        assert_eq!(
            configured_agents(r#"{"agents": {"list": [{"id": "main"}, {"id": "work"}]}}"#),
            2
        );
        assert_eq!(
            configured_agents("{agents: {entries: {main: {}, work: {}}}}"),
            2
        );
        assert_eq!(configured_agents("not json"), 0);
    }

    #[test]
    fn releases_are_compared_by_number() {
        assert_eq!(Release::parse("2026.9.6"), Some(Release(2026, 9, 6)));
        assert_eq!(Release::parse("2026.8.1-beta.1"), Some(Release(2026, 8, 1)));
        assert_eq!(Release::parse("latest"), None);
        assert!(Release::parse("2026.10.1").unwrap() >= Release::MODELS_PROBE);
        assert!(Release::parse("2026.5.28").unwrap() < Release::MODELS_PROBE);
    }

    #[test]
    fn interpret_tells_answers_missing_methods_and_a_gateway_not_up_apart() {
        assert_eq!(
            interpret(true, "{\n  \"ts\": 1,\n  \"providers\": []\n}\n", ""),
            Call::Answer(serde_json::json!({"ts": 1, "providers": []}))
        );
        assert_eq!(
            interpret(
                false,
                "",
                "Gateway call failed: Error: unknown method: models.probe"
            ),
            Call::UnknownMethod
        );
        let refused = "{\"ok\":false,\"error\":{\"type\":\"cli_error\",\"message\":\"Gateway not reachable at ws://127.0.0.1:1 (ECONNREFUSED).\"}}";
        assert!(
            matches!(interpret(false, refused, ""), Call::Unreachable(m) if m.contains("ECONNREFUSED"))
        );
        assert!(matches!(
            interpret(false, "", "Gateway call failed: unauthorized: gateway token mismatch"),
            Call::Failed(m) if m.contains("unauthorized")
        ));
        assert!(matches!(interpret(true, "not json", ""), Call::Failed(_)));
        // An error envelope is never an answer, whatever the exit status.
        assert!(matches!(
            interpret(true, r#"{"ok":false,"error":{"message":"denied"}}"#, ""),
            Call::Failed(m) if m == "denied"
        ));
        assert_eq!(
            short("bad token sk-ant-oat01-SECRETSECRET here"),
            "bad token sk-ant-[redacted] here"
        );
    }
}
