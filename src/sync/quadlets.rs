//! A user's Podman Quadlet gateways (README "Containers"): found and synced inside the user's
//! own part of a run, as the user (a worker that dropped root, or the user's own run), beside
//! the gateways of the user's systemd units.
//!
//! Found from the Quadlet files the user's manager generates units from:
//! `~/.config/containers/systemd/*.container`, then the administrator's
//! `/etc/containers/systemd/users/UID/` and `/etc/containers/systemd/users/` (a name found
//! earlier wins, as Quadlet's own search order has it). Each file is read as the user, never
//! through a link, never blocking, size-bounded ([`fsutil::read_regular`]); which of them run a
//! gateway is [`quadlet::gateway_in`]'s pure judgement. Whether its unit runs, and since when,
//! is the user's manager's answer (`systemctl --user show`).
//!
//! Synced like a Compose gateway ([`in_container`]): `<state dir>/.env` (which OpenClaw's
//! Quadlet file also passes to Podman as `EnvironmentFile=`), the stores through the mount, a
//! restart of the unit (stop, start: a new container from the new file) only when the version
//! or the file changed, the proof by `models.probe` through `podman exec`. The record of what
//! was applied is the user's own (`~/.local/state/openclaw-token-sync/quadlet-UNIT.json`).

use super::in_container::{self, Runtime};
use super::{GatewayRun, SyncOptions, SyncReport};
use crate::aws::FetchedSecret;
use crate::error::{Error, Result};
use crate::host::fsutil;
use crate::host::managed_files::{self, ManagedPaths};
use crate::host::podman::Podman;
use crate::host::privileges::TargetUser;
use crate::host::systemd::Systemctl;
use crate::openclaw::containers::TOKEN_VARIABLES;
pub(crate) use crate::openclaw::quadlet::QuadletGateway;
use crate::openclaw::quadlet::{self, Specifiers};
use std::path::PathBuf;

/// At most this many Quadlet files are looked at per user (each costs a `systemctl` call).
pub const MAX_QUADLET_FILES: usize = 64;

/// The directories Quadlet reads a user's files from, in its order (a file name found in an
/// earlier one hides the same name in a later one).
fn search_dirs(target: &TargetUser) -> [PathBuf; 4] {
    [
        PathBuf::from(format!("/run/user/{}/containers/systemd", target.uid)),
        target.home.join(".config/containers/systemd"),
        PathBuf::from(format!("/etc/containers/systemd/users/{}", target.uid)),
        PathBuf::from("/etc/containers/systemd/users"),
    ]
}

/// What the user's Quadlet directories hold.
#[derive(Default)]
pub(crate) struct Found {
    pub gateways: Vec<QuadletGateway>,
    /// The units of the other `.container` files, with the file: a `--unit` naming one is told
    /// why it is not taken for a gateway.
    pub others: Vec<(String, PathBuf)>,
}

/// The user's Quadlet gateways, with their unit's state (asked of the user's manager). None for
/// root: OpenClaw's Quadlet is rootless, and Podman is never run as root.
pub(crate) fn found(target: &TargetUser, systemctl: &Systemctl) -> Found {
    let mut found = Found::default();
    if target.uid == 0 {
        return found;
    }
    let who = Specifiers {
        home: &target.home,
        user: &target.name,
        uid: target.uid,
        gid: target.gid,
    };
    let mut seen: Vec<std::ffi::OsString> = Vec::new();
    for dir in search_dirs(target) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "container"))
            .collect();
        files.sort();
        for file in files {
            let name = file.file_name().unwrap_or_default().to_owned();
            if seen.contains(&name) || seen.len() >= MAX_QUADLET_FILES {
                continue;
            }
            seen.push(name);
            let Ok(Some(text)) = fsutil::read_regular(&file) else {
                continue;
            };
            let text = String::from_utf8_lossy(&text);
            match quadlet::gateway_in(&file, &text, &who) {
                Some(mut gateway) => {
                    add_file_variables(&mut gateway);
                    with_unit_state(&mut gateway, systemctl);
                    found.gateways.push(gateway);
                }
                None => found
                    .others
                    .extend(quadlet::unit_of(&file, &text).map(|unit| (unit, file.clone()))),
            }
        }
    }
    found
}

/// What the user's manager says of the gateway's unit: loaded from this very file, running,
/// its invocation, and whether it is older than the file.
fn with_unit_state(found: &mut QuadletGateway, systemctl: &Systemctl) {
    let unit = found.gateway.unit.clone().unwrap_or_default();
    let names = [
        "LoadState",
        "SourcePath",
        "ActiveState",
        "InvocationID",
        "NeedDaemonReload",
    ];
    let props = match systemctl.properties(&unit, &names) {
        Ok(props) => props,
        Err(err) => {
            found.unit_problem = Some(err.to_string());
            return;
        }
    };
    let prop = |name: &str| props.get(name).map(String::as_str).unwrap_or_default();
    let source = found.source.display().to_string();
    if prop("LoadState") != "loaded" || prop("SourcePath") != source {
        found.unit_problem = Some(format!(
            "{unit} of the user's manager is not generated from {source} (LoadState={}, SourcePath={}): run `systemctl --user daemon-reload` (Quadlet needs Podman 4.4 or later)",
            prop("LoadState"),
            prop("SourcePath")
        ));
    }
    found.gateway.running = prop("ActiveState") == "active";
    found.gateway.invocation = Some(prop("InvocationID").to_owned()).filter(|i| !i.is_empty());
    found.needs_reload = prop("NeedDaemonReload") == "yes";
}

/// The token variables another `EnvironmentFile=` of the Quadlet sets (names only; read as the
/// user, never through a link).
fn add_file_variables(found: &mut QuadletGateway) {
    for file in &found.other_env_files {
        let Ok(Some(content)) = fsutil::read_regular(file) else {
            continue;
        };
        for (key, _) in managed_files::assignments(&content) {
            let key = String::from_utf8_lossy(key);
            if TOKEN_VARIABLES.contains(&key.as_ref())
                && !found.gateway.sets_variables.iter().any(|v| *v == key)
            {
                found.gateway.sets_variables.push(key.into_owned());
            }
        }
    }
}

/// The user's own record of what was applied to a Quadlet gateway.
pub(crate) fn record_path(target: &TargetUser, unit: &str) -> PathBuf {
    let state = ManagedPaths::new(&target.home, unit, &target.home).state_dir;
    state.join(format!("quadlet-{unit}.json"))
}

/// Syncs the user's Quadlet gateways with `secret`, each failing alone.
pub(crate) fn sync_all(
    options: &SyncOptions,
    target: &TargetUser,
    systemctl: &Systemctl,
    gateways: &[QuadletGateway],
    secret: &FetchedSecret,
) -> Vec<GatewayRun> {
    // Only the proof needs Podman: a dry run, `--no-restart` or a stopped unit do without.
    let podman = Podman::find(&target.home, target.uid);
    gateways
        .iter()
        .map(|found| GatewayRun {
            user: target.name.clone(),
            unit: found.gateway.label(),
            result: sync_one(
                options,
                target,
                systemctl,
                podman.as_ref().ok(),
                found,
                secret,
            ),
        })
        .collect()
}

fn sync_one(
    options: &SyncOptions,
    target: &TargetUser,
    systemctl: &Systemctl,
    podman: Option<&Podman>,
    found: &QuadletGateway,
    secret: &FetchedSecret,
) -> Result<SyncReport> {
    let gateway = &found.gateway;
    if let Some(problem) = &found.unit_problem {
        return Err(Error::config(format!(
            "{}: {problem}",
            found.source.display()
        )));
    }
    // The manager's unit is older than the file: the restart must run the file as it is now.
    let reloaded = found.needs_reload && !options.dry_run;
    if reloaded {
        systemctl.daemon_reload()?;
    }
    let unit = gateway.unit.as_deref().unwrap_or_default();
    let record = record_path(target, unit);
    let runtime = Runtime::Quadlet { systemctl, podman };
    let mut report =
        in_container::sync_quadlet(options, runtime, gateway, secret, target, &record)?;
    if reloaded {
        report.warnings.push(format!(
            "{}: the user's manager had not read {} since it changed; ran `systemctl --user daemon-reload`",
            gateway.label(),
            found.source.display()
        ));
    }
    Ok(report)
}

/// The refusal of a `--unit` that names a Quadlet file which runs no gateway of ours.
pub(crate) fn not_a_gateway(unit: &str, file: &std::path::Path) -> Error {
    Error::config(format!(
        "{unit} comes from the Quadlet file {}, which this tool does not take for an OpenClaw gateway: its `Exec=` must run OpenClaw's `gateway` command and a `Volume=` must mount a host directory at the gateway's state dir (OpenClaw's own openclaw.container does both)",
        file.display()
    ))
}
