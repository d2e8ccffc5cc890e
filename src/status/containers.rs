//! `status` of the Docker Compose gateways (README "Containers"), as root: one report per
//! container gateway of root's Docker (those whose state dir `--user` owns, with `--user`),
//! from Docker's own view of the container and root's record of what `sync` applied. Root reads
//! nothing under the container's state dir; the gateway itself answers through OpenClaw's CLI
//! inside the container (`models.probe`).
//!
//! Checks: `container` (running), `container-environment` (its configuration sets a token
//! variable that OpenClaw's `.env` can never override), `state-dir` (a directory of a non-root
//! user), `state` (root's record, and with `--check-secret` whether it is AWSCURRENT's version),
//! `gateway-auth` (the running gateway's `models.probe`).

use super::{Findings, FixContext, Severity, StatusOptions, StatusReport};
use crate::anthropic_probe::Verdict;
use crate::aws::FetchedSecret;
use crate::host::docker::Docker;
use crate::host::podman::Podman;
use crate::host::privileges::TargetUser;
use crate::host::state;
use crate::openclaw::containers::ContainerGateway;
use crate::sync::containers::{found, owned_by};
use crate::sync::in_container::{probe_once, record_path, Runtime};
use std::os::unix::fs::MetadataExt;

/// What root gathered about one container gateway before the secret is read.
pub struct Gathered {
    gateway: ContainerGateway,
    /// Where `sync` records what it applied (root's for Docker, the user's for Quadlet).
    record: std::path::PathBuf,
    /// A Quadlet gateway's own facts; `None` for Docker.
    quadlet: Option<QuadletFacts>,
    owner: Option<(String, u32)>,
    /// The gateway's `models.probe` (only for a running container).
    probe: Option<std::result::Result<(String, crate::anthropic_probe::Finding), String>>,
}

/// What only a Quadlet gateway has.
pub struct QuadletFacts {
    /// The user whose unit it is (its state dir must be theirs).
    user: u32,
    /// Why the user's manager does not run the file's unit.
    unit_problem: Option<String>,
    /// How the fix lines are pasted (as root, they act in the user's manager).
    fixes: FixContext,
}

/// Root's container gateways for this status (none when not root or no Docker).
pub fn gather(options: &StatusOptions) -> Vec<Gathered> {
    if !nix::unistd::geteuid().is_root() || !options.discover {
        return Vec::new();
    }
    let Some(docker) = Docker::find() else {
        return Vec::new();
    };
    let gateways = match found(&docker) {
        Ok(found) => found,
        Err(err) => {
            tracing::warn!(error = %err, "Docker could not be asked for container gateways");
            return Vec::new();
        }
    };
    gateways
        .into_iter()
        .filter(|g| owned_by(g, options.user.as_deref()))
        .map(|gateway| {
            let owner = std::fs::symlink_metadata(&gateway.state_dir)
                .ok()
                .filter(|m| m.is_dir())
                .map(|m| (user_name(m.uid()), m.uid()));
            let probe = gateway.running.then(|| {
                probe_once(Runtime::Docker(&docker), &gateway).unwrap_or_else(|e| Err(e.message()))
            });
            Gathered {
                record: record_path(&gateway),
                quadlet: None,
                gateway,
                owner,
                probe,
            }
        })
        .collect()
}

/// The user's Quadlet gateways (with `--unit`, the one it names), gathered in the user's own
/// world (this process acts as `target`; `as_user` when root diagnoses them, for the fix
/// lines).
pub fn gather_quadlets(
    target: &TargetUser,
    options: &StatusOptions,
    as_user: Option<u32>,
) -> Vec<Gathered> {
    let systemctl = crate::host::systemd::Systemctl::new(target.clone());
    let mut found = crate::sync::quadlets::found(target, &systemctl).gateways;
    // A named unit: only that one (when it is a Quadlet's).
    found.retain(|q| options.discover || q.gateway.unit.as_deref() == Some(options.unit.as_str()));
    let podman = Podman::find(&target.home, target.uid).ok();
    found
        .into_iter()
        .map(|q| {
            let gateway = q.gateway;
            let unit = gateway.unit.clone().unwrap_or_default();
            let owner = std::fs::symlink_metadata(&gateway.state_dir)
                .ok()
                .filter(|m| m.is_dir())
                .map(|m| (user_name(m.uid()), m.uid()));
            let runtime = Runtime::Quadlet {
                systemctl: &systemctl,
                podman: podman.as_ref(),
            };
            let probe = (gateway.running && q.unit_problem.is_none())
                .then(|| probe_once(runtime, &gateway).unwrap_or_else(|e| Err(e.message())));
            Gathered {
                record: crate::sync::quadlets::record_path(target, &unit),
                quadlet: Some(QuadletFacts {
                    user: target.uid,
                    unit_problem: q.unit_problem,
                    fixes: FixContext {
                        user: target.name.clone(),
                        home: options.home.clone(),
                        unit: Some(unit),
                        secret: options.check_secret.clone(),
                        as_user,
                        system: false,
                    },
                }),
                gateway,
                owner,
                probe,
            }
        })
        .collect()
}

fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(uid.into())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// One report per gathered gateway.
pub fn reports(
    gathered: Vec<Gathered>,
    secret: Option<&crate::error::Result<FetchedSecret>>,
) -> Vec<StatusReport> {
    gathered
        .into_iter()
        .map(|one| report(one, secret))
        .collect()
}

fn report(one: Gathered, secret: Option<&crate::error::Result<FetchedSecret>>) -> StatusReport {
    let gateway = &one.gateway;
    let label = gateway.label();
    let mut findings = Findings(Vec::new());
    if gateway.running {
        findings.ok("container", format!("{label} is running"));
    } else {
        findings.add(
            "container",
            Severity::Problem,
            format!("{label} is not running"),
            "a stopped gateway answers no agent; a sync writes its files and it takes them when it starts",
            start_fix(gateway),
        );
    }
    for variable in &gateway.sets_variables {
        findings.add(
            "container-environment",
            Severity::Problem,
            format!("the container's own configuration sets {variable}"),
            format!("OpenClaw's {}/.env never overrides a variable the process already has, so the synced token cannot reach the gateway", gateway.state_in_container.display()),
            match &gateway.unit {
                Some(unit) => format!("remove {variable} from the Quadlet file's `Environment=` (or its other `EnvironmentFile=`), then `systemctl --user daemon-reload && systemctl --user restart {unit}`"),
                None => format!("remove {variable} from the compose file's `environment:`/`env_file:`, then `docker compose up -d {}` once", gateway.service.as_deref().unwrap_or(&gateway.name)),
            },
        );
    }
    if let Some(problem) = one.quadlet.as_ref().and_then(|q| q.unit_problem.as_ref()) {
        findings.add(
            "quadlet-unit",
            Severity::Problem,
            problem.clone(),
            "the user's manager runs no unit made from this file, so nothing can restart it onto a new token",
            "systemctl --user daemon-reload",
        );
    }
    match &one.quadlet {
        Some(quadlet) => check_quadlet_state_dir(&mut findings, &one, quadlet),
        None => check_state_dir(&mut findings, &one),
    }
    check_record(&mut findings, gateway, &one.record, secret);
    check_probe(&mut findings, &one);
    if let Some(quadlet) = &one.quadlet {
        findings.apply_fixes(&quadlet.fixes);
    }
    let owner = match &one.quadlet {
        Some(quadlet) => Some((quadlet.fixes.user.clone(), quadlet.user)),
        None => one.owner.clone(),
    };
    let (user, home) = match &owner {
        Some((name, _)) => (
            name.clone(),
            gateway
                .state_dir
                .parent()
                .unwrap_or(&gateway.state_dir)
                .to_path_buf(),
        ),
        None => (String::new(), gateway.state_dir.clone()),
    };
    findings.into_report(
        TargetUser {
            name: user,
            uid: owner.as_ref().map(|o| o.1).unwrap_or(0),
            gid: 0,
            home,
        },
        &label,
    )
}

fn start_fix(gateway: &ContainerGateway) -> String {
    if let Some(unit) = &gateway.unit {
        return format!("systemctl --user start {unit}");
    }
    match (&gateway.project, &gateway.service) {
        (Some(project), Some(service)) => format!("docker compose -p {project} up -d {service}"),
        _ => format!("docker start {}", gateway.name),
    }
}

fn check_state_dir(findings: &mut Findings, one: &Gathered) {
    let dir = one.gateway.state_dir.display();
    match &one.owner {
        Some((name, uid)) if *uid != 0 => findings.ok(
            "state-dir",
            format!("{dir} (mounted at {}), owned by {name}", one.gateway.state_in_container.display()),
        ),
        Some(_) => findings.add(
            "state-dir",
            Severity::Problem,
            format!("{dir} belongs to root"),
            "the tool acts only as a gateway's own (non-root) user, so it never writes there",
            format!("chown -R 1000:1000 {dir} (the uid of OpenClaw's image user `node`)"),
        ),
        None => findings.add(
            "state-dir",
            Severity::Problem,
            format!("{dir} is not a directory (missing, or a link)"),
            "the bind mount's source is where the gateway's state and the token file live",
            "create it as a directory of the container's user and recreate the container (`docker compose up -d`)",
        ),
    }
}

/// A Quadlet's state dir must be a directory of the unit's own user (the sync runs as them).
fn check_quadlet_state_dir(findings: &mut Findings, one: &Gathered, quadlet: &QuadletFacts) {
    let dir = one.gateway.state_dir.display();
    let user = &quadlet.fixes.user;
    match &one.owner {
        Some((name, uid)) if *uid == quadlet.user => findings.ok(
            "state-dir",
            format!(
                "{dir} (mounted at {}), owned by {name}",
                one.gateway.state_in_container.display()
            ),
        ),
        Some((name, _)) => findings.add(
            "state-dir",
            Severity::Problem,
            format!("{dir} belongs to {name}, not to {user}"),
            "the tool writes a Quadlet gateway's files as the unit's own user only",
            format!("chown -R {user}: {dir}"),
        ),
        None => findings.add(
            "state-dir",
            Severity::Problem,
            format!("{dir} is not a directory (missing, or a link)"),
            "the mounted state dir is where the gateway's state and the token file live",
            format!(
                "mkdir -m 700 {dir} as {user}, then systemctl --user restart {}",
                one.gateway.unit.as_deref().unwrap_or_default()
            ),
        ),
    }
}

fn check_record(
    findings: &mut Findings,
    gateway: &ContainerGateway,
    record: &std::path::Path,
    secret: Option<&crate::error::Result<FetchedSecret>>,
) {
    let sync = match &gateway.unit {
        Some(unit) => format!("openclaw-token-sync sync --unit {unit}"),
        None => format!("openclaw-token-sync sync --container {}", gateway.name),
    };
    let Some(record) = state::load(record).0 else {
        findings.add(
            "state",
            Severity::Warning,
            format!("{} was never synced by this tool", gateway.label()),
            "no token of this tool's reached the gateway yet",
            sync,
        );
        return;
    };
    findings.ok(
        "state",
        format!(
            "version {} ({}) applied ({}) at {}",
            record.version_id,
            record.fingerprint,
            record.gateway.describe(),
            record.applied_at
        ),
    );
    match secret {
        Some(Ok(current)) if current.version_id != record.version_id => findings.add(
            "secret-current",
            Severity::Problem,
            format!(
                "AWSCURRENT is {}, the container has {}",
                current.version_id, record.version_id
            ),
            "the gateway runs an older token than the secret holds",
            sync,
        ),
        Some(Ok(current)) => findings.ok(
            "secret-current",
            format!("AWSCURRENT {} is applied", current.version_id),
        ),
        _ => {}
    }
}

fn check_probe(findings: &mut Findings, one: &Gathered) {
    match &one.probe {
        None => {}
        Some(Ok((variable, finding))) if finding.verdict == Verdict::Accepted => findings.ok(
            "gateway-auth",
            format!(
                "the gateway's models.probe: env {variable}, {}",
                finding.detail
            ),
        ),
        Some(Ok((variable, finding))) => findings.add(
            "gateway-auth",
            Severity::Problem,
            format!(
                "the gateway's models.probe: env {variable}, {}",
                finding.detail
            ),
            "the token the gateway runs on is not accepted",
            "store a valid token (`openclaw-token-sync put`) and sync",
        ),
        Some(Err(why)) => findings.add(
            "gateway-auth",
            Severity::Problem,
            format!("the gateway's models.probe: {why}"),
            "the gateway could not show that it runs on an Anthropic token from its environment",
            match &one.gateway.unit {
                Some(unit) => format!("journalctl --user -u {unit}"),
                None => format!("docker logs {}", one.gateway.name),
            },
        ),
    }
}
