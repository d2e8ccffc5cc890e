//! Where the gateway keeps its state (`~/.openclaw` unless told otherwise): OpenClaw's own rule
//! (`resolveStateDir`, measured on 2026.9.6) applied to the *gateway's* environment, not to this
//! tool's. Under the timer or SSM this process never sees the `OPENCLAW_STATE_DIR`,
//! `OPENCLAW_PROFILE` or `OPENCLAW_HOME` the gateway runs with; cleaning `~/.openclaw` while the
//! gateway reads another directory would leave its stale profiles (which beat the variable) in
//! place.
//!
//! Where the variables are looked up: `--state-dir` wins; else the environment the unit's next
//! start hands the gateway, merged variable by variable as systemd does (the user manager's
//! environment from `set-environment` and `environment.d`, then `Environment=` of the unit and
//! its drop-ins, then its `EnvironmentFile=`s); when that sets none of them, the running
//! gateway's own environment (`/proc/<MainPID>/environ`); then this process's environment; then
//! OpenClaw's default. A relative path is taken from the user's home, the working directory of a
//! user unit unless it sets another.
//!
//! OpenClaw's rule for one environment: `OPENCLAW_STATE_DIR` (a leading `~` is the effective
//! home); else `OPENCLAW_PROFILE` → `<home>/.openclaw-<profile>` (`default` → `.openclaw`); else
//! `<home>/.openclaw`, or the legacy `<home>/.clawdbot` when only that exists. The effective home
//! is `OPENCLAW_HOME` when set, else the user's home.

use crate::host::systemd::env_value;
use std::path::{Path, PathBuf};

/// The variables OpenClaw derives its state dir from.
pub const STATE_VARIABLES: [&str; 3] = ["OPENCLAW_STATE_DIR", "OPENCLAW_PROFILE", "OPENCLAW_HOME"];

/// The state dir and where it came from (shown by `status` and in the sync report).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StateDir {
    pub path: PathBuf,
    pub source: String,
    /// Whether the manager knows the unit (`None`: it could not be asked, or an explicit
    /// `--state-dir` left it unasked). Not part of reports.
    #[serde(skip)]
    pub unit_found: Option<bool>,
}

/// One environment the variables may come from, and what to call it in `source`.
pub struct Environment<'a> {
    pub name: String,
    pub variables: &'a [(String, String)],
}

/// Resolves the state dir (see the module docs).
pub fn resolve(home: &Path, explicit: Option<&Path>, environments: &[Environment]) -> StateDir {
    if let Some(dir) = explicit {
        return StateDir {
            path: dir.to_path_buf(),
            source: "--state-dir".to_owned(),
            unit_found: None,
        };
    }
    for environment in environments {
        if let Some((path, variable)) = from_environment(environment.variables, home) {
            return StateDir {
                path,
                source: format!("{variable} of {}", environment.name),
                unit_found: None,
            };
        }
    }
    StateDir {
        path: default_dir(home),
        source: "OpenClaw's default".to_owned(),
        unit_found: None,
    }
}

/// OpenClaw's rule for one environment, when it sets any of the variables: the directory and the
/// variable that decided it.
pub fn from_environment(
    variables: &[(String, String)],
    home: &Path,
) -> Option<(PathBuf, &'static str)> {
    let value = |key: &str| {
        env_value(variables, key)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let effective_home = value("OPENCLAW_HOME")
        .map(|h| expand_home(h, home))
        .unwrap_or_else(|| home.to_path_buf());
    if let Some(dir) = value("OPENCLAW_STATE_DIR") {
        return Some((expand_home(dir, &effective_home), "OPENCLAW_STATE_DIR"));
    }
    if let Some(profile) = value("OPENCLAW_PROFILE") {
        let name = if profile.eq_ignore_ascii_case("default") {
            ".openclaw".to_owned()
        } else {
            format!(".openclaw-{profile}")
        };
        return Some((effective_home.join(name), "OPENCLAW_PROFILE"));
    }
    value("OPENCLAW_HOME").map(|_| (default_dir(&effective_home), "OPENCLAW_HOME"))
}

/// `<home>/.openclaw`, or the legacy `<home>/.clawdbot` when only that exists.
pub fn default_dir(home: &Path) -> PathBuf {
    let current = home.join(".openclaw");
    let legacy = home.join(".clawdbot");
    if !current.exists() && legacy.is_dir() {
        legacy
    } else {
        current
    }
}

/// `~` and `~/…` from the effective home; a relative path from the user's home (a user unit's
/// working directory); `~user/…` is not expanded by OpenClaw either and stays relative.
fn expand_home(path: &str, home: &Path) -> PathBuf {
    match path.strip_prefix('~') {
        Some("") => home.to_path_buf(),
        Some(rest) if rest.starts_with('/') => home.join(rest.trim_start_matches('/')),
        _ if Path::new(path).is_absolute() => PathBuf::from(path),
        _ => home.join(path),
    }
}

/// The state dir for the gateway of `unit` (see the module docs). When the unit cannot be asked
/// (no user manager), the source says so.
pub fn for_unit(
    systemctl: &crate::host::systemd::Systemctl,
    unit: &str,
    home: &Path,
    explicit: Option<&Path>,
) -> StateDir {
    if explicit.is_some() {
        return resolve(home, explicit, &[]);
    }
    for_unit_noting(systemctl, unit, home, &mut |_| {})
}

/// [`for_unit`] without `--state-dir`, showing `note` what systemd said about the unit before
/// anything it names is read (what the discovery memo stamps).
pub fn for_unit_noting(
    systemctl: &crate::host::systemd::Systemctl,
    unit: &str,
    home: &Path,
    note: &mut dyn FnMut(&crate::host::systemd::ExecContext),
) -> StateDir {
    let own = own_environment();
    let own_environment = Environment {
        name: "this process".to_owned(),
        variables: &own,
    };
    match systemctl.exec_context(unit) {
        Ok(context) => {
            note(&context);
            // Manager, then Environment=, then the files: later assignments win.
            let mut configured = systemctl
                .manager_environment(&STATE_VARIABLES)
                .unwrap_or_default();
            configured.extend(context.start_environment());
            let running = if context.main_pid != 0 {
                crate::host::systemd::process_environment(context.main_pid, &STATE_VARIABLES)
            } else {
                Vec::new()
            };
            let environments = [
                Environment {
                    name: unit.to_owned(),
                    variables: &configured,
                },
                Environment {
                    name: format!("the gateway process (pid {})", context.main_pid),
                    variables: &running,
                },
                own_environment,
            ];
            let mut found = resolve(home, None, &environments);
            found.unit_found = Some(context.exists());
            found
        }
        Err(err) => {
            tracing::info!(unit, error = %err, "the unit's environment could not be read");
            let mut found = resolve(home, None, &[own_environment]);
            found.source = format!("{} ({unit}'s environment could not be read)", found.source);
            found
        }
    }
}

/// This process's own values of the variables.
pub fn own_environment() -> Vec<(String, String)> {
    STATE_VARIABLES
        .iter()
        .filter_map(|key| Some(((*key).to_owned(), std::env::var(key).ok()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn openclaw_s_rule_per_environment() {
        let home = Path::new("/home/u");
        let dir = |pairs: &[(&str, &str)]| from_environment(&env(pairs), home);
        assert_eq!(dir(&[]), None);
        assert_eq!(
            dir(&[
                ("OPENCLAW_STATE_DIR", "/srv/oc"),
                ("OPENCLAW_PROFILE", "work")
            ]),
            Some((PathBuf::from("/srv/oc"), "OPENCLAW_STATE_DIR"))
        );
        assert_eq!(
            dir(&[("OPENCLAW_STATE_DIR", "~/state")]),
            Some((PathBuf::from("/home/u/state"), "OPENCLAW_STATE_DIR"))
        );
        assert_eq!(
            dir(&[("OPENCLAW_PROFILE", "work")]),
            Some((PathBuf::from("/home/u/.openclaw-work"), "OPENCLAW_PROFILE"))
        );
        assert_eq!(
            dir(&[("OPENCLAW_PROFILE", "Default")]),
            Some((PathBuf::from("/home/u/.openclaw"), "OPENCLAW_PROFILE"))
        );
        assert_eq!(
            dir(&[("OPENCLAW_HOME", "/data"), ("OPENCLAW_PROFILE", "x")]),
            Some((PathBuf::from("/data/.openclaw-x"), "OPENCLAW_PROFILE"))
        );
        assert_eq!(
            dir(&[("OPENCLAW_HOME", "/data")]),
            Some((PathBuf::from("/data/.openclaw"), "OPENCLAW_HOME"))
        );
        assert_eq!(dir(&[("OPENCLAW_STATE_DIR", "  ")]), None, "blank is unset");
        assert_eq!(
            dir(&[("OPENCLAW_STATE_DIR", "oc-state")]),
            Some((PathBuf::from("/home/u/oc-state"), "OPENCLAW_STATE_DIR")),
            "relative to the user unit's working directory, the home"
        );
        // One merged environment: a later OPENCLAW_STATE_DIR beats an earlier profile.
        assert_eq!(
            dir(&[("OPENCLAW_PROFILE", "work"), ("OPENCLAW_STATE_DIR", "/x")]),
            Some((PathBuf::from("/x"), "OPENCLAW_STATE_DIR"))
        );
    }

    #[test]
    fn the_flag_then_the_unit_then_the_process_then_the_default() {
        let home = Path::new("/home/u");
        let unit = env(&[("OPENCLAW_PROFILE", "work")]);
        let process = env(&[("OPENCLAW_STATE_DIR", "/proc-state")]);
        let environments = [
            Environment {
                name: "gw.service".into(),
                variables: &unit,
            },
            Environment {
                name: "the gateway process (pid 7)".into(),
                variables: &process,
            },
        ];
        let flag = resolve(home, Some(Path::new("/flag")), &environments);
        assert_eq!(flag.path, PathBuf::from("/flag"));
        let from_unit = resolve(home, None, &environments);
        assert_eq!(from_unit.path, PathBuf::from("/home/u/.openclaw-work"));
        assert_eq!(from_unit.source, "OPENCLAW_PROFILE of gw.service");
        let from_process = resolve(home, None, &environments[1..]);
        assert_eq!(
            from_process.source,
            "OPENCLAW_STATE_DIR of the gateway process (pid 7)"
        );
        let default = resolve(home, None, &[]);
        assert_eq!(
            (default.path, default.source.as_str()),
            (PathBuf::from("/home/u/.openclaw"), "OpenClaw's default")
        );
    }
}
