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
use super::{GatewayRun, SyncOptions};
use crate::aws::FetchedSecret;
use crate::host::fsutil;
use crate::host::managed_files::{self, ManagedPaths};
use crate::host::podman::Podman;
use crate::host::privileges::TargetUser;
use crate::host::systemd::Systemctl;
use crate::openclaw::containers::TOKEN_VARIABLES;
pub(crate) use crate::openclaw::quadlet::QuadletGateway;
use crate::openclaw::quadlet::{self, Specifiers};
use std::path::PathBuf;

/// The directories Quadlet reads a user's files from, in its order.
fn search_dirs(target: &TargetUser) -> [PathBuf; 3] {
    [
        target.home.join(".config/containers/systemd"),
        PathBuf::from(format!("/etc/containers/systemd/users/{}", target.uid)),
        PathBuf::from("/etc/containers/systemd/users"),
    ]
}

/// The user's Quadlet gateways, with their unit's state (asked of the user's manager).
pub(crate) fn found(target: &TargetUser, systemctl: &Systemctl) -> Vec<QuadletGateway> {
    let who = Specifiers {
        home: &target.home,
        user: &target.name,
        uid: target.uid,
        gid: target.gid,
    };
    let mut gateways: Vec<QuadletGateway> = Vec::new();
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
            let Ok(Some(text)) = fsutil::read_regular(&file) else {
                continue;
            };
            let Some(mut found) = quadlet::gateway_in(&file, &String::from_utf8_lossy(&text), &who)
            else {
                continue;
            };
            if gateways
                .iter()
                .any(|g| g.gateway.unit == found.gateway.unit)
            {
                continue;
            }
            add_file_variables(&mut found);
            let unit = found.gateway.unit.clone().unwrap_or_default();
            found.gateway.running = systemctl.active_state_of(&unit) == "active";
            found.gateway.started_at = systemctl.active_since(&unit).unwrap_or_default();
            gateways.push(found);
        }
    }
    gateways
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
    let podman = Podman::find(&target.home, target.uid);
    gateways
        .iter()
        .map(|found| {
            let gateway = &found.gateway;
            let unit = gateway.unit.as_deref().unwrap_or_default();
            let record = record_path(target, unit);
            let result = match &podman {
                Ok(podman) => {
                    let runtime = Runtime::Quadlet { systemctl, podman };
                    in_container::sync_quadlet(options, runtime, gateway, secret, target, &record)
                }
                Err(err) => Err(crate::error::Error::failed(err.message())),
            };
            GatewayRun {
                user: target.name.clone(),
                unit: gateway.label(),
                result,
            }
        })
        .collect()
}
