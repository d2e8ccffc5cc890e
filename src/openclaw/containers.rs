//! OpenClaw gateways in containers: which of a host's Docker Compose containers run an OpenClaw
//! gateway, read from `docker inspect` (pure: JSON in, [`ContainerGateway`]s out).
//!
//! A container is a gateway when it bind-mounts a host directory at a `.openclaw` directory
//! (OpenClaw's state dir; the official compose file mounts `$OPENCLAW_CONFIG_DIR` at
//! `/home/node/.openclaw`) and the program it runs is OpenClaw's `gateway` command (`node
//! dist/index.js gateway --bind lan --port 18789`; a `gateway call …` or any other command is
//! not a gateway). Everything read here comes from the container's configuration, which its
//! compose file (and so whoever wrote it) decides: only names of variables are kept, never a
//! value.

use serde_json::Value;
use std::path::PathBuf;

/// The variables through which a token reaches OpenClaw.
pub const TOKEN_VARIABLES: [&str; 2] = ["ANTHROPIC_OAUTH_TOKEN", "ANTHROPIC_API_KEY"];

/// One container that runs an OpenClaw gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerGateway {
    pub id: String,
    /// Docker's name, without the leading `/`.
    pub name: String,
    /// Compose's project and service, from the labels Compose sets.
    pub project: Option<String>,
    /// The systemd unit that runs it: a Podman Quadlet gateway's generated service (run by its
    /// user's manager); `None` for a Docker container.
    pub unit: Option<String>,
    pub service: Option<String>,
    pub running: bool,
    /// Docker's `State.StartedAt` (RFC 3339, UTC).
    pub started_at: String,
    /// A Quadlet unit's current `InvocationID` (a new one with every start); `None` for Docker.
    pub invocation: Option<String>,
    /// The state dir on the host (the bind mount's source).
    pub state_dir: PathBuf,
    /// Where the container sees it.
    pub state_in_container: PathBuf,
    /// The container's program up to `gateway`: OpenClaw's CLI inside it.
    pub cli: Vec<String>,
    /// Token variables the container's own configuration sets (compose `environment:` or an
    /// `env_file:`): names only. OpenClaw's `<state>/.env` never overrides them.
    pub sets_variables: Vec<String>,
}

impl ContainerGateway {
    /// How reports and `--container` name it: `compose PROJECT/SERVICE (NAME)`, `quadlet UNIT
    /// (NAME)` or `container NAME`.
    pub fn label(&self) -> String {
        if let Some(unit) = &self.unit {
            return format!("quadlet {unit} ({})", self.name);
        }
        match (&self.project, &self.service) {
            (Some(project), Some(service)) => {
                format!("compose {project}/{service} ({})", self.name)
            }
            _ => format!("container {}", self.name),
        }
    }

    /// Whether `wanted` names this gateway: its container name, its service, or
    /// `PROJECT/SERVICE`.
    pub fn is_named(&self, wanted: &str) -> bool {
        let composed = self
            .project
            .as_ref()
            .zip(self.service.as_ref())
            .map(|(p, s)| format!("{p}/{s}"));
        wanted == self.name
            || Some(wanted) == self.unit.as_deref()
            || Some(wanted) == self.service.as_deref()
            || Some(wanted) == composed.as_deref()
    }
}

/// The gateways among `docker inspect`'s containers, in Docker's order.
pub fn gateways_in(inspected: &Value) -> Vec<ContainerGateway> {
    inspected
        .as_array()
        .map(|all| all.iter().filter_map(gateway_of).collect())
        .unwrap_or_default()
}

fn gateway_of(container: &Value) -> Option<ContainerGateway> {
    let argv: Vec<String> = std::iter::once(&container["Path"])
        .chain(container["Args"].as_array().into_iter().flatten())
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    let cli = gateway_cli(&argv)?;
    let expected = state_dir_inside(container);
    let (state_dir, state_in_container) = container["Mounts"]
        .as_array()?
        .iter()
        .filter(|m| m["Type"] == "bind")
        .find_map(|m| {
            let destination = PathBuf::from(m["Destination"].as_str()?);
            let is_state = match &expected {
                Some(expected) => destination == *expected,
                None => destination.file_name()? == ".openclaw",
            };
            is_state.then(|| Some((PathBuf::from(m["Source"].as_str()?), destination)))?
        })?;
    let labels = &container["Config"]["Labels"];
    let label = |key: &str| labels[key].as_str().map(str::to_owned);
    let sets_variables = container["Config"]["Env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str()?.split_once('=').map(|(name, _)| name))
        .filter(|name| TOKEN_VARIABLES.contains(name))
        .map(str::to_owned)
        .collect();
    Some(ContainerGateway {
        id: container["Id"].as_str()?.to_owned(),
        name: container["Name"]
            .as_str()?
            .trim_start_matches('/')
            .to_owned(),
        project: label("com.docker.compose.project"),
        unit: None,
        service: label("com.docker.compose.service"),
        running: container["State"]["Running"] == true,
        started_at: container["State"]["StartedAt"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        invocation: None,
        state_dir,
        state_in_container,
        cli,
        sets_variables,
    })
}

/// Where the gateway keeps its state inside the container, from its environment:
/// `OPENCLAW_STATE_DIR`, else `$HOME/.openclaw` (OpenClaw's default); `None` when neither is set.
fn state_dir_inside(container: &Value) -> Option<PathBuf> {
    let env: Vec<&str> = container["Config"]["Env"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let value = |name: &str| {
        env.iter()
            .find_map(|e| e.strip_prefix(name)?.strip_prefix('='))
            .filter(|v| v.starts_with('/'))
    };
    value("OPENCLAW_STATE_DIR")
        .map(PathBuf::from)
        .or_else(|| value("HOME").map(|home| PathBuf::from(home).join(".openclaw")))
}

/// The CLI prefix of a gateway's argv (everything before `gateway`), when the argv runs the
/// gateway itself: `gateway` followed by nothing, an option, or `run`.
fn gateway_cli(argv: &[String]) -> Option<Vec<String>> {
    let at = argv.iter().position(|a| a == "gateway")?;
    let runs_gateway = match argv.get(at + 1) {
        None => true,
        Some(next) => next.starts_with('-') || next == "run",
    };
    (runs_gateway && at > 0).then(|| argv[..at].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(args: &[&str], destination: &str, env: &[&str]) -> Value {
        serde_json::json!({
            "Id": "0123abcd",
            "Name": "/openclaw-openclaw-gateway-1",
            "Path": "node",
            "Args": args,
            "State": {"Running": true},
            "Config": {
                "Env": env,
                "Labels": {
                    "com.docker.compose.project": "openclaw",
                    "com.docker.compose.service": "openclaw-gateway"
                }
            },
            "Mounts": [
                {"Type": "volume", "Source": "/var/lib/docker/volumes/x", "Destination": "/data"},
                {"Type": "bind", "Source": "/srv/openclaw/config", "Destination": destination}
            ]
        })
    }

    #[test]
    fn the_official_compose_gateway_is_found_with_its_state_dir_and_cli() {
        let found = gateways_in(&Value::Array(vec![container(
            &[
                "dist/index.js",
                "gateway",
                "--bind",
                "lan",
                "--port",
                "18789",
            ],
            "/home/node/.openclaw",
            &[
                "HOME=/home/node",
                "ANTHROPIC_API_KEY=sk-ant-api03-x",
                "TERM=xterm",
            ],
        )]));
        assert_eq!(found.len(), 1);
        let gateway = &found[0];
        assert_eq!(gateway.state_dir, PathBuf::from("/srv/openclaw/config"));
        assert_eq!(
            gateway.state_in_container,
            PathBuf::from("/home/node/.openclaw")
        );
        assert_eq!(gateway.cli, ["node", "dist/index.js"]);
        assert_eq!(gateway.sets_variables, ["ANTHROPIC_API_KEY"]);
        assert_eq!(
            gateway.label(),
            "compose openclaw/openclaw-gateway (openclaw-openclaw-gateway-1)"
        );
        assert!(gateway.is_named("openclaw/openclaw-gateway"));
        assert!(gateway.is_named("openclaw-gateway"));
        assert!(gateway.is_named("openclaw-openclaw-gateway-1"));
        assert!(!gateway.is_named("openclaw"));
        // No value of the variable is kept anywhere.
        assert!(!format!("{gateway:?}").contains("sk-ant"));
    }

    #[test]
    fn other_commands_and_other_mounts_are_not_gateways() {
        let cases = [
            container(
                &["dist/index.js", "gateway", "call", "health"],
                "/home/node/.openclaw",
                &[],
            ),
            container(&["dist/index.js", "agent"], "/home/node/.openclaw", &[]),
            container(&["dist/index.js", "gateway"], "/home/node/state", &[]),
        ];
        for case in cases {
            assert!(
                gateways_in(&Value::Array(vec![case.clone()])).is_empty(),
                "{case}"
            );
        }
        let run = container(&["dist/index.js", "gateway", "run"], "/root/.openclaw", &[]);
        assert_eq!(gateways_in(&Value::Array(vec![run])).len(), 1);
        // A `.openclaw` mount that is not where the gateway's HOME says its state is.
        let elsewhere = container(
            &["dist/index.js", "gateway"],
            "/data/.openclaw",
            &["HOME=/home/node"],
        );
        assert!(gateways_in(&Value::Array(vec![elsewhere])).is_empty());
        let named = container(
            &["dist/index.js", "gateway"],
            "/data/.openclaw",
            &["HOME=/home/node", "OPENCLAW_STATE_DIR=/data/.openclaw"],
        );
        assert_eq!(gateways_in(&Value::Array(vec![named])).len(), 1);
    }
}
