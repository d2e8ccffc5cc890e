//! OpenClaw gateways run by Podman Quadlet (pure: a `.container` file in, a
//! [`ContainerGateway`] out). OpenClaw's own `scripts/podman/openclaw.container.in` is the model:
//! `~/.config/containers/systemd/openclaw.container`, from which Quadlet generates the user unit
//! `openclaw.service` (`podman run` of the image), with `Volume=<state dir>:/home/node/.openclaw`,
//! `EnvironmentFile=<state dir>/.env` and `Exec=node dist/index.js gateway …`.
//!
//! The file is its user's words (hostile, like every gateway user's file): it is read for the
//! mounts, the environment's names (and `HOME`/`OPENCLAW_STATE_DIR`, to place the state dir), the
//! container's name and the command; never a value of a token variable. The gateway test is the
//! one for Compose containers ([`containers`](super::containers)): the file is turned into the
//! shape of `podman inspect` and judged by the same rule. Decided here:
//! - The command must be in the file's `Exec=` (OpenClaw's file has it): an image's default
//!   command is not known without asking Podman, and a file that runs something else is not a
//!   gateway of ours.
//! - `EnvironmentFile=<state dir>/.env` is the file this tool writes, so its token variable is
//!   not "set by the container's configuration"; a token variable in `Environment=` is, and
//!   refuses the gateway like a Compose `environment:` entry (another `EnvironmentFile=` is
//!   listed in [`QuadletGateway::other_env_files`] for the caller to read as the user).
//! - Specifiers: `%h`, `%u`, `%U`, `%G`, `%t`, `%N`/`%n` and `%%` are expanded; a path still
//!   holding `%` after that is not used.

use super::containers::{self, ContainerGateway};
use std::path::{Path, PathBuf};

/// The user a Quadlet file is expanded for.
pub struct Specifiers<'a> {
    pub home: &'a Path,
    pub user: &'a str,
    pub uid: u32,
    pub gid: u32,
}

/// A gateway a Quadlet file runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuadletGateway {
    /// The `.container` file.
    pub source: PathBuf,
    /// What it reads besides `<state dir>/.env` (`EnvironmentFile=`s, host paths).
    pub other_env_files: Vec<PathBuf>,
    /// The gateway: `unit` is the generated service, `name` the container's.
    pub gateway: ContainerGateway,
    /// Why the user's manager does not run this file's unit (not generated, or generated from
    /// another file), as the manager said; `None` when it does.
    pub unit_problem: Option<String>,
    /// The manager's unit is older than the file (`NeedDaemonReload`).
    pub needs_reload: bool,
}

/// The generated unit's name: `ServiceName=` or the file's stem + `.service` (Quadlet's rule).
pub fn unit_of(source: &Path, text: &str) -> Option<String> {
    let stem = source.file_stem()?.to_str()?;
    // A template (`name@.container`) has no unit of its own to ask or restart.
    if stem.ends_with('@') {
        return None;
    }
    let named = entries(text, "Container")
        .into_iter()
        .rev()
        .find(|(k, _)| *k == "ServiceName")
        .map(|(_, v)| v.to_owned());
    let unit = named.unwrap_or_else(|| stem.to_owned());
    let unit = match unit.ends_with(".service") {
        true => unit,
        false => format!("{unit}.service"),
    };
    unit.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.@:".contains(&b))
        .then_some(unit)
}

/// The gateway `text` (the `.container` file at `source`) runs, or `None` when it runs none.
pub fn gateway_in(source: &Path, text: &str, who: &Specifiers) -> Option<QuadletGateway> {
    let unit = unit_of(source, text)?;
    let unit_base = unit.trim_end_matches(".service").to_owned();
    let expand = |value: &str| expand(value, who, &unit_base);
    let container = entries(text, "Container");
    let last = |key: &str| {
        container
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| expand(v))
    };
    let name = last("ContainerName").unwrap_or_else(|| format!("systemd-{unit_base}"));
    // Podman's own rule for a name; anything else (`--privileged`, say) never reaches an argv.
    let valid = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !valid {
        return None;
    }
    let argv = split_words(&last("Exec")?);
    let mut env: Vec<String> = Vec::new();
    for (_, value) in container.iter().filter(|(k, _)| *k == "Environment") {
        // A token variable's value is never kept: its name is what counts.
        env.extend(split_words(&expand(value)).into_iter().map(
            |word| match word.split_once('=') {
                Some((name, _)) if containers::TOKEN_VARIABLES.contains(&name) => {
                    format!("{name}=")
                }
                _ => word,
            },
        ));
    }
    let mounts: Vec<serde_json::Value> = container
        .iter()
        .filter(|(k, _)| *k == "Volume")
        .filter_map(|(_, v)| bind_mount(&expand(v)))
        .collect();
    let inspected = serde_json::json!([{
        "Id": name,
        "Name": name,
        "Path": argv.first()?,
        "Args": argv[1..],
        "State": {"Running": false},
        "Config": {"Env": env, "Labels": {}},
        "Mounts": mounts,
    }]);
    let mut gateway = containers::gateways_in(&inspected).pop()?;
    gateway.unit = Some(unit);
    let ours = normalized(&gateway.state_dir.join(".env"));
    // Quadlet resolves a relative `EnvironmentFile=` against the file's own directory.
    let base = source.parent().unwrap_or(Path::new("/"));
    let other_env_files = container
        .iter()
        .filter(|(k, _)| *k == "EnvironmentFile")
        .map(|(_, v)| normalized(&base.join(expand(v))))
        .filter(|p| *p != ours)
        .collect();
    Some(QuadletGateway {
        source: source.to_path_buf(),
        other_env_files,
        gateway,
        unit_problem: None,
        needs_reload: false,
    })
}

/// A path with `.` and repeated `/` taken out (lexically; `..` is kept as it is).
fn normalized(path: &Path) -> PathBuf {
    path.components().collect()
}

/// A `Volume=SOURCE:DEST[:OPTIONS]` with an absolute host path, as `podman inspect` shows a bind
/// mount; a named volume or a path still holding `%` is none.
fn bind_mount(value: &str) -> Option<serde_json::Value> {
    let mut parts = value.split(':');
    let (source, destination) = (parts.next()?, parts.next()?);
    let usable = |p: &str| p.starts_with('/') && !p.contains('%');
    (usable(source) && usable(destination))
        .then(|| serde_json::json!({"Type": "bind", "Source": source, "Destination": destination}))
}

/// The `KEY=value` entries of one section, in order (comments, blank lines and other sections
/// skipped; a line ending in `\` continues on the next).
fn entries<'a>(text: &'a str, section: &str) -> Vec<(&'a str, String)> {
    let mut out: Vec<(&str, String)> = Vec::new();
    let mut current = "";
    let mut continuing = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if continuing {
            if let Some((_, value)) = out.last_mut() {
                value.push(' ');
                value.push_str(trimmed.trim_end_matches('\\').trim());
            }
            continuing = trimmed.ends_with('\\');
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            current = name;
            continue;
        }
        if current != section {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            continuing = trimmed.ends_with('\\');
            let value = value.trim().trim_end_matches('\\').trim().to_owned();
            out.push((key.trim(), value));
        }
    }
    out
}

/// systemd's specifiers a Quadlet file commonly uses; an unknown one is left as it is.
fn expand(value: &str, who: &Specifiers, unit_base: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('h') => out.push_str(&who.home.to_string_lossy()),
            Some('u') => out.push_str(who.user),
            Some('U') => out.push_str(&who.uid.to_string()),
            Some('G') => out.push_str(&who.gid.to_string()),
            Some('t') => out.push_str(&format!("/run/user/{}", who.uid)),
            Some('N') => out.push_str(unit_base),
            Some('n') => out.push_str(&format!("{unit_base}.service")),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Words as systemd splits a command line or an `Environment=` value: by whitespace, with
/// double or single quotes around a word (or part of one) and `\` escaping the next character.
fn split_words(value: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                word.extend(chars.next());
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OpenClaw's own template (scripts/podman/openclaw.container.in), filled in as its
    /// `setup.sh` fills it.
    const OPENCLAW: &str = "\
# OpenClaw gateway — Podman Quadlet (rootless)
[Unit]
Description=OpenClaw gateway (rootless Podman)

[Container]
Image=openclaw:local
ContainerName=openclaw
UserNS=keep-id
# Keep container UID/GID aligned with the invoking user so mounted config is readable.
User=%U:%G
Volume=%h/.openclaw:/home/node/.openclaw:Z
Volume=%h/.openclaw/workspace:/home/node/.openclaw/workspace:Z
EnvironmentFile=%h/.openclaw/.env
Environment=HOME=/home/node
Environment=TERM=xterm-256color
Environment=NPM_CONFIG_CACHE=/home/node/.openclaw/.npm
Environment=OPENCLAW_NO_RESPAWN=1
PublishPort=127.0.0.1:18789:18789
Pull=never
Exec=node dist/index.js gateway --bind lan --port 18789 --published-port 18789

[Service]
TimeoutStartSec=300
Restart=on-failure

[Install]
WantedBy=default.target
";

    fn who() -> Specifiers<'static> {
        Specifiers {
            home: Path::new("/home/claw"),
            user: "claw",
            uid: 1001,
            gid: 1001,
        }
    }

    fn source() -> PathBuf {
        PathBuf::from("/home/claw/.config/containers/systemd/openclaw.container")
    }

    #[test]
    fn openclaws_own_file_is_a_gateway_with_its_unit_state_dir_and_cli() {
        let found = gateway_in(&source(), OPENCLAW, &who()).expect("a gateway");
        let g = &found.gateway;
        assert_eq!(g.unit.as_deref(), Some("openclaw.service"));
        assert_eq!(g.name, "openclaw");
        assert_eq!(g.state_dir, Path::new("/home/claw/.openclaw"));
        assert_eq!(g.state_in_container, Path::new("/home/node/.openclaw"));
        assert_eq!(g.cli, ["node", "dist/index.js"]);
        assert!(
            g.sets_variables.is_empty(),
            "its own .env is the tool's file"
        );
        assert!(found.other_env_files.is_empty());
        assert_eq!(g.label(), "quadlet openclaw.service (openclaw)");
    }

    #[test]
    fn a_token_in_environment_or_another_env_file_is_reported_by_name() {
        let text = OPENCLAW.replace(
            "Environment=OPENCLAW_NO_RESPAWN=1",
            "Environment=\"ANTHROPIC_API_KEY=sk-ant-api03-x\" OPENCLAW_NO_RESPAWN=1\nEnvironmentFile=%h/secrets.env",
        );
        let found = gateway_in(&source(), &text, &who()).expect("a gateway");
        assert_eq!(found.gateway.sets_variables, ["ANTHROPIC_API_KEY"]);
        assert_eq!(
            found.other_env_files,
            [PathBuf::from("/home/claw/secrets.env")]
        );
        assert!(!format!("{found:?}").contains("sk-ant"), "no value is kept");
    }

    #[test]
    fn the_unit_and_container_names_follow_quadlets_defaults_and_service_name() {
        let text = OPENCLAW.replace("ContainerName=openclaw\n", "");
        let found = gateway_in(Path::new("/x/claw-gw.container"), &text, &who()).unwrap();
        assert_eq!(found.gateway.unit.as_deref(), Some("claw-gw.service"));
        assert_eq!(found.gateway.name, "systemd-claw-gw");
        let named = OPENCLAW.replace("Pull=never", "ServiceName=gw-one");
        assert_eq!(
            unit_of(&source(), &named).as_deref(),
            Some("gw-one.service")
        );
        let hostile = OPENCLAW.replace("Pull=never", "ServiceName=a;rm -rf /");
        assert_eq!(unit_of(&source(), &hostile), None);
        let option = OPENCLAW.replace("ContainerName=openclaw", "ContainerName=--privileged");
        assert_eq!(gateway_in(&source(), &option, &who()), None);
        // Quadlet's default container name follows the unit's name.
        let renamed = named.replace("ContainerName=openclaw\n", "");
        let found = gateway_in(&source(), &renamed, &who()).unwrap();
        assert_eq!(found.gateway.name, "systemd-gw-one");
        let template = gateway_in(Path::new("/x/claw@.container"), OPENCLAW, &who());
        assert_eq!(template, None, "a template has no unit of its own");
    }

    #[test]
    fn files_that_run_no_gateway_are_not_gateways() {
        for (from, to) in [
            (
                "Exec=node dist/index.js gateway --bind",
                "Exec=node dist/index.js agent --bind",
            ),
            (
                "Exec=node dist/index.js gateway --bind lan --port 18789 --published-port 18789\n",
                "",
            ),
            (
                "Volume=%h/.openclaw:/home/node/.openclaw:Z",
                "Volume=claw-state:/home/node/.openclaw",
            ),
        ] {
            let text = OPENCLAW.replace(from, to);
            assert!(gateway_in(&source(), &text, &who()).is_none(), "{to}");
        }
    }

    #[test]
    fn state_dir_env_quotes_continuations_and_unknown_specifiers() {
        let text = OPENCLAW
            .replace(
                "Environment=HOME=/home/node",
                "Environment=HOME=/home/node 'OPENCLAW_STATE_DIR=/state'",
            )
            .replace(
                "Volume=%h/.openclaw:/home/node/.openclaw:Z",
                "Volume=/srv/%u/state:/state:Z\nVolume=%E/x:/home/node/.openclaw",
            )
            .replace(
                "Exec=node dist/index.js gateway",
                "Exec=node \"dist/index.js\" \\\n  gateway",
            );
        let found = gateway_in(&source(), &text, &who()).expect("a gateway");
        assert_eq!(found.gateway.state_dir, Path::new("/srv/claw/state"));
        assert_eq!(found.gateway.state_in_container, Path::new("/state"));
        assert_eq!(found.gateway.cli, ["node", "dist/index.js"]);
        assert_eq!(
            split_words(r#"a "b c" d\ e 'f"g'"#),
            ["a", "b c", "d e", "f\"g"]
        );
        assert_eq!(
            expand("%t/%n:%N:%%h:%q", &who(), "openclaw"),
            "/run/user/1001/openclaw.service:openclaw:%h:%q"
        );
    }

    #[test]
    fn its_own_env_file_is_recognised_however_spelt_and_a_relative_one_is_the_files_neighbour() {
        let text = OPENCLAW.replace(
            "EnvironmentFile=%h/.openclaw/.env",
            "EnvironmentFile=%h//.openclaw/./.env\nEnvironmentFile=extra.env",
        );
        let found = gateway_in(&source(), &text, &who()).expect("a gateway");
        assert_eq!(
            found.other_env_files,
            [PathBuf::from(
                "/home/claw/.config/containers/systemd/extra.env"
            )]
        );
    }
}
