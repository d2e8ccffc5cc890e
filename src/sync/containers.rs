//! Which container gateways a `sync` covers (README "Containers"), and whether its systemd part
//! runs beside them.
//!
//! - Only root syncs containers: the Docker daemon is root's.
//! - `--container NAME` (repeatable, or `container = [...]` in the config file): exactly those,
//!   and no systemd gateway; a name that matches no gateway is a usage error (exit 2).
//! - Otherwise root syncs every Compose gateway Docker runs beside the systemd ones; `--user U`
//!   keeps the containers whose state dir U owns. `--unit` or `[[target]]`s (without
//!   `container`) name systemd gateways only.
//! - On a host with container gateways, the systemd part is skipped when the manager it would
//!   ask is not there (a Docker host without systemd, or a user without a manager), instead of
//!   failing the run for a gateway that does not exist.

use super::in_container;
use super::targets::SecretRef;
use super::{GatewayRun, Secrets, SyncOptions};
use crate::error::{Error, Result};
use crate::host::docker::Docker;
use crate::openclaw::containers::{self, ContainerGateway};
use std::os::unix::fs::MetadataExt;

/// Root's Docker and the container gateways this run covers; `None` when there are none.
pub(super) fn selected(
    options: &SyncOptions,
    root: bool,
) -> Result<Option<(Docker, Vec<ContainerGateway>)>> {
    let named = !options.containers.is_empty();
    if !root {
        return match named {
            true => Err(Error::config(
                "--container needs root: the Docker daemon is root's",
            )),
            false => Ok(None),
        };
    }
    if !named && (!options.targets.is_empty() || !options.discover) {
        return Ok(None);
    }
    let Some(docker) = Docker::find() else {
        return match named {
            true => Err(Error::config(
                "--container: no Docker here (no root-owned docker CLI in /usr/bin or /usr/local/bin, or no daemon socket at DOCKER_HOST or /var/run/docker.sock)",
            )),
            false => Ok(None),
        };
    };
    let found = match found(&docker) {
        Ok(found) => found,
        Err(err) if named => return Err(err),
        Err(err) => {
            tracing::warn!(error = %err, "Docker could not be asked for container gateways");
            return Ok(None);
        }
    };
    let gateways = pick(options, found)?;
    Ok((!gateways.is_empty()).then_some((docker, gateways)))
}

/// Every Compose container of root's Docker that runs an OpenClaw gateway.
pub(crate) fn found(docker: &Docker) -> Result<Vec<ContainerGateway>> {
    docker
        .compose_containers()
        .and_then(|ids| docker.inspect(&ids))
        .map(|inspected| containers::gateways_in(&inspected))
}

/// Whether the gateway's state dir belongs to `user` (any when `None`).
pub(crate) fn owned_by(gateway: &ContainerGateway, user: Option<&str>) -> bool {
    let Some(name) = user else {
        return true;
    };
    let uid = nix::unistd::User::from_name(name)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw());
    uid.is_some_and(|uid| {
        std::fs::symlink_metadata(&gateway.state_dir).is_ok_and(|m| m.uid() == uid)
    })
}

/// The gateways `--container` names, or those of `--user`, or all.
fn pick(options: &SyncOptions, found: Vec<ContainerGateway>) -> Result<Vec<ContainerGateway>> {
    if let Some(missing) = options
        .containers
        .iter()
        .find(|name| !found.iter().any(|g| g.is_named(name)))
    {
        let known: Vec<String> = found.iter().map(ContainerGateway::label).collect();
        return Err(Error::config(format!(
            "--container {missing}: no Docker Compose container runs an OpenClaw gateway of that name (found: {})",
            if known.is_empty() { "none".to_owned() } else { known.join(", ") }
        )));
    }
    Ok(found
        .into_iter()
        .filter(|g| match options.containers.is_empty() {
            false => options.containers.iter().any(|name| g.is_named(name)),
            true => owned_by(g, options.user.as_deref()),
        })
        .collect())
}

/// The secret container gateways get: the command line's (or the config file's top-level one).
pub(super) fn default_secret(options: &SyncOptions) -> SecretRef {
    SecretRef {
        secret_id: options.secret_id.clone(),
        json_key: options.json_key.clone(),
        version_stage: options.version_stage.clone(),
    }
}

/// Syncs each container gateway; a failed fetch fails each of them with its message.
pub(super) fn sync_all(
    options: &SyncOptions,
    docker: &Docker,
    gateways: &[ContainerGateway],
    secrets: &Secrets,
) -> Vec<GatewayRun> {
    let fetched = secrets.get(&default_secret(options));
    gateways
        .iter()
        .map(|gateway| match fetched {
            Some(Ok(secret)) => in_container::sync(options, docker, gateway, secret),
            Some(Err((message, code))) => GatewayRun {
                user: String::new(),
                unit: gateway.label(),
                result: Err(Error::Reported {
                    message: message.clone(),
                    exit_code: *code,
                }),
            },
            None => GatewayRun {
                user: String::new(),
                unit: gateway.label(),
                result: Err(Error::failed("the secret was not fetched")),
            },
        })
        .collect()
}

/// Whether the run also syncs systemd gateways (see the module docs).
pub(super) fn systemd_part_wanted(
    options: &SyncOptions,
    containers: Option<&(Docker, Vec<ContainerGateway>)>,
) -> bool {
    if !options.containers.is_empty() {
        return false;
    }
    containers.is_none() || !options.targets.is_empty() || manager_to_ask(options.user.as_deref())
}

/// Whether the systemd side of a host with container gateways has a manager to ask for `user`
/// (root's when `None`): the user's bus, or for root the system manager too. An unknown user
/// counts as having one (the systemd side then names the mistake). `sync` and `status` alike.
pub(crate) fn manager_to_ask(user: Option<&str>) -> bool {
    let uid = match user {
        Some(name) => match nix::unistd::User::from_name(name).ok().flatten() {
            Some(user) => user.uid.as_raw(),
            None => return true,
        },
        None => 0,
    };
    let user_manager = std::path::Path::new(&format!("/run/user/{uid}/bus")).exists();
    user_manager || (uid == 0 && crate::host::systemd::system_manager_present())
}
