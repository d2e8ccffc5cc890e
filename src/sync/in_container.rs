//! `sync` of an OpenClaw gateway in a Docker Compose container (README "Containers"): the token
//! goes into the bind-mounted `<state>/.env`, which OpenClaw itself loads when the gateway
//! starts; the stores are cleaned through the same mount; the container is restarted (`docker
//! restart`) only when the secret version or the file changed; the proof is the gateway's own
//! `models.probe`, asked through OpenClaw's CLI inside the container (`docker exec`).
//!
//! Who does what: root asks Docker (its own daemon) and restarts; everything under the state dir
//! is read and written by a forked worker acting as the state dir's owner (the container's
//! user, hostile like any gateway user), so a link or a file of theirs can only lead to what
//! they could touch anyway. A state dir owned by root is refused. Root keeps its own record of
//! what was applied and proven per container under `/var/lib/openclaw-token-sync/containers/`,
//! out of the container's reach. Decided here (the README says why):
//! - `docker restart`, not a Compose recreate: the token is in a file OpenClaw reads at start,
//!   not in the container's configuration, so the container needs no recreate, and root never
//!   runs Compose on a project file someone else may have written.
//! - A container whose own configuration sets `ANTHROPIC_OAUTH_TOKEN`/`ANTHROPIC_API_KEY`
//!   (compose `environment:`/`env_file:`) is refused before anything is written: OpenClaw's
//!   `.env` never overrides a variable the process already has.
//! - A container that is not running is not started: its files are written and it takes them at
//!   its next start (as `docker compose up` or its restart policy starts it).
//!
//! A Podman Quadlet gateway (`super::quadlets`) takes the same steps through [`Runtime::Quadlet`]:
//! the process already is the user, so the owner's part runs in place; the restart is one job
//! queued with the user's manager; `podman exec` asks the gateway, and the container's
//! environment is checked for a token set elsewhere; the record is the user's own and a start
//! after the write is told by the unit's `InvocationID`.

use super::{Delivery, GatewayAction, GatewayReport, GatewayRun, Outcome, SyncOptions, SyncReport};
use crate::anthropic_probe::{self, Verdict};
use crate::aws::FetchedSecret;
use crate::error::{Error, Result};
use crate::host::docker::{Docker, Output};
use crate::host::fsutil;
use crate::host::managed_files::{self as files, FileAction, FileRole};
use crate::host::podman::Podman;
use crate::host::privileges::{self, TargetUser};
use crate::host::state::{self, AppliedState, GatewayOutcome};
use crate::host::systemd::Systemctl;
use crate::openclaw::containers::ContainerGateway;
use crate::openclaw::gateway_rpc::{interpret, Call};
use crate::openclaw::proof::{
    self, GatewayProof, ProbeReading, ProbeReport, ProbeVia, ProofMethod,
};
use crate::openclaw::stores::{self, document::ProfileSelector};
use crate::secret::Token;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Root's records of what was applied to each container.
pub const RECORDS: &str = "/var/lib/openclaw-token-sync/containers";

/// How long a container's gateway may take to start, beyond `--verify-timeout`.
const CONTAINER_START: Duration = Duration::from_secs(120);

/// After a restart, the wait before the gateway is first asked, and between two questions.
const FIRST_QUESTION: Duration = Duration::from_secs(6);
const BETWEEN_QUESTIONS: Duration = Duration::from_secs(2);

/// How long a worker in the owner's world may take.
const WORKER_LIMIT: Duration = Duration::from_secs(120);

/// What runs a container gateway, and so how it is restarted and asked.
#[derive(Clone, Copy)]
pub(crate) enum Runtime<'a> {
    /// Root's Docker Engine (a Compose service): root restarts, a forked worker acts as the
    /// state dir's owner.
    Docker(&'a Docker),
    /// The user's rootless Podman, run by their Quadlet unit: this process already is the user
    /// (a sync worker that dropped root, or the user's own run), so it restarts the unit through
    /// the user's manager and asks the container through the user's `podman`.
    Quadlet {
        systemctl: &'a Systemctl,
        /// The user's Podman; only the proof needs it.
        podman: Option<&'a Podman>,
    },
}

impl Runtime<'_> {
    /// Whether the container runs now (re-asked just before a restart).
    fn running(&self, gateway: &ContainerGateway) -> Result<bool> {
        match self {
            Runtime::Docker(docker) => {
                let still = docker.inspect(std::slice::from_ref(&gateway.id))?;
                Ok(still[0]["State"]["Running"] == true)
            }
            Runtime::Quadlet { systemctl, .. } => {
                Ok(systemctl.active_state_of(unit_of(gateway)) == "active")
            }
        }
    }

    /// Restarts the gateway the way its runtime applies new files; one that did not come back
    /// is started again (never left stopped by us).
    fn restart(&self, options: &SyncOptions, gateway: &ContainerGateway) -> Result<()> {
        let restarted = match self {
            Runtime::Docker(docker) => docker.restart(&gateway.id, options.verify.stop),
            Runtime::Quadlet { systemctl, .. } => {
                let limit = options.verify.stop + options.verify.timeout + CONTAINER_START;
                restart_unit(systemctl, unit_of(gateway), limit)
            }
        };
        let Err(err) = restarted else {
            return Ok(());
        };
        let started_again = match self {
            Runtime::Docker(docker) => docker.start(&gateway.id),
            Runtime::Quadlet { systemctl, .. } => systemctl.start(unit_of(gateway)),
        };
        match started_again {
            Ok(()) => Err(Error::failed(format!(
                "{}: {err}; it was asked to start again (on the files this run wrote); the next run proves it without a restart",
                gateway.label()
            ))),
            Err(start) => Err(Error::failed(format!(
                "{}: {err}, and starting it failed too: {start}",
                gateway.label()
            ))),
        }
    }

    /// That no token variable of the container's environment holds anything but `token`.
    /// A Quadlet's `EnvironmentFile=<state>/.env` puts the synced token there, and anything
    /// else that sets the variable (`PodmanArgs=`, the image, a drop-in) would win over the
    /// file; a Compose container whose configuration sets one is refused before anything is
    /// written, so there is nothing more to ask Docker.
    fn check_environment(&self, gateway: &ContainerGateway, token: &Token) -> Result<()> {
        let Runtime::Quadlet {
            podman: Some(podman),
            ..
        } = self
        else {
            return Ok(());
        };
        let found = podman.token_environment(&gateway.name)?;
        match found.iter().find(|(_, fp)| fp != token.fingerprint()) {
            Some((variable, fp)) => Err(Error::failed(format!(
                "{}: the container's environment gives {variable} another value ({fp}, the synced token is {}): something besides {}/.env sets it (the Quadlet file's `PodmanArgs=`, a drop-in, the image); remove it there",
                gateway.label(),
                token.fingerprint(),
                gateway.state_dir.display()
            ))),
            None => Ok(()),
        }
    }

    /// A command inside the running container, as the container's user.
    fn exec(&self, gateway: &ContainerGateway, argv: &[String], limit: Duration) -> Result<Output> {
        match self {
            Runtime::Docker(docker) => docker.exec(&gateway.id, argv, limit),
            Runtime::Quadlet {
                podman: Some(podman),
                ..
            } => podman.exec(&gateway.name, argv, limit),
            Runtime::Quadlet { podman: None, .. } => Err(Error::failed(format!(
                "{}: no root-controlled podman ({}) to ask the gateway with",
                gateway.label(),
                crate::host::podman::CANDIDATES.join(", ")
            ))),
        }
    }
}

/// A Quadlet unit's restart, queued with the user's manager in one job (so a run killed midway
/// leaves the manager to finish it), then waited for: a new invocation, active, within `limit`.
fn restart_unit(systemctl: &Systemctl, unit: &str, limit: Duration) -> Result<()> {
    let invocation = |props: &std::collections::BTreeMap<String, String>| {
        props.get("InvocationID").cloned().unwrap_or_default()
    };
    let before = invocation(&systemctl.properties(unit, &["InvocationID"])?);
    systemctl.restart_queued(unit)?;
    let deadline = Instant::now() + limit;
    loop {
        let props = systemctl.properties(unit, &["ActiveState", "InvocationID"])?;
        let state = props.get("ActiveState").cloned().unwrap_or_default();
        let new = invocation(&props) != before;
        match state.as_str() {
            "active" if new => return Ok(()),
            "failed" if new => {
                return Err(Error::GatewayDown(format!(
                    "{unit} failed to start after the restart; see `journalctl --user -u {unit}`"
                )))
            }
            _ if Instant::now() >= deadline => {
                return Err(Error::GatewayDown(format!(
                    "{unit} did not come back within {} s of its restart (state {state}); the restart stays queued with the user's manager",
                    limit.as_secs()
                )))
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// A Quadlet gateway's unit (every Quadlet gateway has one).
fn unit_of(gateway: &ContainerGateway) -> &str {
    gateway.unit.as_deref().unwrap_or_default()
}

/// What the owner's worker found (and, when told to, did) under the state dir.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct OwnerWork {
    /// `.env` does not (did not) hold the token with mode 0600.
    env_changed: bool,
    env_created: bool,
    stores: Vec<super::StoreReport>,
    /// Anthropic entries found (or removed) in the stores.
    stores_dirty: bool,
    /// The new token checked with Anthropic (or the gateway's `baseUrl`), from the owner's world.
    probe: Option<(String, anthropic_probe::Finding)>,
    warnings: Vec<String>,
}

/// What to do with a container, from what was found (pure).
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Nothing,
    DryRun,
    /// Write; no restart (`--no-restart`, or a container that is not running).
    WriteOnly(GatewayAction),
    /// Write what changed, restart, prove.
    WriteAndRestart,
    /// The gateway already runs on the written files (it restarted since, or the last proof
    /// failed): prove it, restart nothing.
    ProveOnly,
    /// This version is proven, yet Anthropic entries are back in a store (OpenClaw or something
    /// in the container re-creates them): cleaned, reported, never restarted for.
    CleanOnly,
}

/// Everything the decision looks at.
#[derive(Clone, Copy)]
struct Facts {
    dry_run: bool,
    no_restart: bool,
    force: bool,
    running: bool,
    /// `.env` (or, for a version not yet applied, a store) differs from what it wants.
    changed: bool,
    /// A store holds Anthropic entries.
    stores_dirty: bool,
    /// Root's record of this version: what became of the gateway, and whether the container
    /// started after it was written.
    recorded: Option<(GatewayOutcome, bool)>,
}

fn decide(f: Facts) -> Step {
    if f.dry_run {
        return Step::DryRun;
    }
    let apply = || match (f.running, f.no_restart) {
        (false, _) => Step::WriteOnly(GatewayAction::Inactive),
        (true, true) => Step::WriteOnly(GatewayAction::NotRestarted),
        (true, false) => Step::WriteAndRestart,
    };
    let Some((outcome, started_after)) = f.recorded.filter(|_| !f.changed && !f.force) else {
        return apply();
    };
    match outcome {
        GatewayOutcome::Verified if f.stores_dirty => Step::CleanOnly,
        GatewayOutcome::Verified => Step::Nothing,
        _ if !f.running => Step::Nothing,
        GatewayOutcome::Unproven | GatewayOutcome::UnitNotFound => Step::ProveOnly,
        GatewayOutcome::Inactive | GatewayOutcome::NotRestarted if started_after => Step::ProveOnly,
        GatewayOutcome::Inactive | GatewayOutcome::NotRestarted if f.no_restart => Step::Nothing,
        GatewayOutcome::Inactive | GatewayOutcome::NotRestarted => Step::WriteAndRestart,
    }
}

/// Syncs one Compose container gateway; its failure is its own.
pub fn sync(
    options: &SyncOptions,
    docker: &Docker,
    gateway: &ContainerGateway,
    secret: &FetchedSecret,
) -> GatewayRun {
    let owner = owner_of(&gateway.state_dir);
    GatewayRun {
        user: owner_label(&gateway.state_dir),
        unit: gateway.label(),
        result: owner.and_then(|owner| {
            let record = record_path(gateway);
            sync_as(
                options,
                Runtime::Docker(docker),
                gateway,
                secret,
                &owner,
                &record,
            )
        }),
    }
}

/// Syncs one of `owner`'s Quadlet gateways, as `owner` (this process already is the user);
/// `record` is the user's own record of it.
pub(crate) fn sync_quadlet(
    options: &SyncOptions,
    runtime: Runtime,
    gateway: &ContainerGateway,
    secret: &FetchedSecret,
    owner: &TargetUser,
    record: &Path,
) -> Result<SyncReport> {
    sync_as(options, runtime, gateway, secret, owner, record)
}

/// The name a run and its metrics give the gateway's user, whatever else fails.
pub fn owner_label(state_dir: &Path) -> String {
    match owner_of(state_dir) {
        Ok(owner) => owner.name,
        Err(_) => "?".to_owned(),
    }
}

fn sync_as(
    options: &SyncOptions,
    runtime: Runtime,
    gateway: &ContainerGateway,
    secret: &FetchedSecret,
    owner: &TargetUser,
    record_path: &Path,
) -> Result<SyncReport> {
    if let Some(variable) = gateway.sets_variables.first() {
        return Err(sets_variable(runtime, gateway, variable));
    }
    let token = &secret.token;
    let recorded = state::load(record_path)
        .0
        .filter(|r| r.version_id == secret.version_id && &r.fingerprint == token.fingerprint());
    let probe_base = (recorded.is_none() && !options.dry_run && options.probe)
        .then(|| options.anthropic_base_url.clone().unwrap_or_default());
    let found = in_owner_world(runtime, owner, gateway, token, false, probe_base)?;
    let mut report = report(owner, gateway, secret, &found);
    if options.delivery == Delivery::SecretRef {
        report.warnings.push(format!(
            "{}: --delivery secret-ref is not built for containers yet; the token went into {}/.env (env delivery)",
            gateway.label(),
            gateway.state_dir.display()
        ));
    }
    let facts = Facts {
        dry_run: options.dry_run,
        no_restart: options.no_restart,
        force: options.force,
        running: gateway.running,
        changed: found.env_changed || (found.stores_dirty && recorded.is_none()),
        stores_dirty: found.stores_dirty,
        recorded: recorded
            .as_ref()
            .map(|r| (r.gateway, started_after(runtime, gateway, r))),
    };
    let step = decide(facts);
    checked_probe(&found, secret, &mut report.warnings)?;
    let run = ContainerRun {
        options,
        runtime,
        gateway,
        secret,
        owner,
        record_path,
    };
    apply_step(&run, step, facts, report)
}

/// One container's run, for the steps after the decision.
struct ContainerRun<'a> {
    options: &'a SyncOptions,
    runtime: Runtime<'a>,
    gateway: &'a ContainerGateway,
    secret: &'a FetchedSecret,
    owner: &'a TargetUser,
    record_path: &'a Path,
}

/// Whether the running gateway started after the record was written, so it read the files:
/// Docker's start time against the record's; a Quadlet unit's invocation against the one the
/// record saw (a start in progress while the files were written is the same invocation).
fn started_after(runtime: Runtime, gateway: &ContainerGateway, record: &AppliedState) -> bool {
    match runtime {
        Runtime::Docker(_) => utc_instant(&gateway.started_at) > utc_instant(&record.applied_at),
        Runtime::Quadlet { .. } => gateway.running && gateway.invocation != record.invocation,
    }
}

/// A UTC RFC 3339 time (`2026-12-03T17:02:07.74Z`, Docker's and the record's, which the state
/// file writes with the same SDK type), ordered to the nanosecond; `None` for anything else.
fn utc_instant(text: &str) -> Option<aws_smithy_types::DateTime> {
    aws_smithy_types::DateTime::from_str(text, aws_smithy_types::date_time::Format::DateTime).ok()
}

/// Carries out the decision and records it.
fn apply_step(
    run: &ContainerRun,
    step: Step,
    facts: Facts,
    mut report: SyncReport,
) -> Result<SyncReport> {
    let ContainerRun {
        options,
        gateway,
        secret,
        owner,
        record_path,
        ..
    } = *run;
    let token = &secret.token;
    match step {
        Step::Nothing => return Ok(report),
        Step::DryRun => {
            report.result = Outcome::DryRun;
            let needed = facts.changed || facts.force || facts.recorded.is_none();
            if gateway.running && needed && !options.no_restart {
                report.gateway.action = GatewayAction::WouldRestart;
            }
            return Ok(report);
        }
        Step::CleanOnly => {
            let done = in_owner_world(run.runtime, owner, gateway, token, true, None)?;
            report.stores = done.stores;
            report.result = Outcome::Applied;
            report.warnings.push(format!(
                "{}: Anthropic entries came back in a store after the gateway was proven on this version; cleaned again, not restarted for (something in the container re-creates them)",
                gateway.label()
            ));
            return Ok(report);
        }
        Step::WriteOnly(_) | Step::WriteAndRestart
            if facts.changed || facts.force || facts.stores_dirty =>
        {
            let done = in_owner_world(run.runtime, owner, gateway, token, true, None)?;
            report.stores = done.stores;
            report.result = Outcome::Applied;
        }
        _ => {}
    }
    let outcome = match step {
        Step::WriteOnly(action) => {
            report.gateway.action = action;
            match action {
                GatewayAction::Inactive => GatewayOutcome::Inactive,
                _ => GatewayOutcome::NotRestarted,
            }
        }
        _ => restart_and_prove(run, step == Step::WriteAndRestart, &mut report)?,
    };
    record_applied(record_path, gateway, secret, outcome)?;
    Ok(report)
}

/// Restarts (when told to) and proves; a failure is recorded as unproven, so the next run
/// proves again before it restarts anything.
fn restart_and_prove(
    run: &ContainerRun,
    restarting: bool,
    report: &mut SyncReport,
) -> Result<GatewayOutcome> {
    let ContainerRun {
        options,
        runtime,
        gateway,
        secret,
        record_path,
        ..
    } = *run;
    let unproven = |err: Error| {
        record_applied(record_path, gateway, secret, GatewayOutcome::Unproven)?;
        Err(err)
    };
    if restarting {
        if let Err(err) = restart(options, runtime, gateway) {
            return unproven(err);
        }
        report.result = Outcome::Applied;
        report.gateway.action = GatewayAction::Restarted;
    } else {
        report.gateway.action = GatewayAction::Verified;
    }
    let proof = match prove(options, runtime, gateway, &secret.token, restarting) {
        Ok(proof) => proof,
        Err(err) => return unproven(err),
    };
    let accepted = proof
        .probe
        .as_ref()
        .is_some_and(|p| p.finding.verdict == Verdict::Accepted);
    if !accepted {
        report.warnings.push(format!(
            "{}: the gateway's models.probe was inconclusive; the next run proves it again (without a restart)",
            gateway.label()
        ));
    }
    report.gateway.proof = Some(proof);
    Ok(match accepted {
        true => GatewayOutcome::Verified,
        false => GatewayOutcome::Unproven,
    })
}

/// The refusal of a gateway whose container configuration sets a token variable itself.
fn sets_variable(runtime: Runtime, gateway: &ContainerGateway, variable: &str) -> Error {
    let (where_, recreate) = match runtime {
        Runtime::Docker(_) => (
            "compose `environment:` or `env_file:`",
            "recreate the container once (`docker compose up -d`)".to_owned(),
        ),
        Runtime::Quadlet { .. } => (
            "the Quadlet file's `Environment=` or another `EnvironmentFile=`",
            format!(
                "restart it once (`systemctl --user daemon-reload && systemctl --user restart {}`)",
                unit_of(gateway)
            ),
        ),
    };
    Error::config(format!(
        "{}: the container's own configuration sets {variable} ({where_}), which OpenClaw's {}/.env never overrides; remove it there (the token goes into {}/.env) and {recreate}",
        gateway.label(),
        gateway.state_in_container.display(),
        gateway.state_dir.display()
    ))
}

/// The owner of the state dir as root sees it: the directory's owner, or where root cannot
/// look (a home without search permission for a root without `CAP_DAC_READ_SEARCH`), the owner
/// of the deepest directory above it root can see. The worker checks, as that user, that the
/// state dir is really theirs. Never root; the group is the user's own.
fn owner_of(state_dir: &Path) -> Result<TargetUser> {
    let uid = std::iter::successors(Some(state_dir), |p| p.parent())
        .find_map(|p| std::fs::symlink_metadata(p).ok().map(|m| (p, m)))
        .filter(|(p, m)| m.is_dir() || *p != state_dir)
        .map(|(_, m)| m.uid())
        .ok_or_else(|| {
            Error::failed(format!(
                "{}: the container's state dir is not a directory (a link is refused)",
                state_dir.display()
            ))
        })?;
    let refuse = |why: &str| {
        Error::failed(format!(
            "{}: {why}; the tool acts only as a gateway's own (non-root) user: give the state dir to the container's user (`chown -R 1000:1000 {}` for OpenClaw's image)",
            state_dir.display(),
            state_dir.display()
        ))
    };
    if uid == 0 {
        return Err(refuse("the container's state dir belongs to root"));
    }
    let entry = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten();
    let Some(user) = entry else {
        return Err(refuse(&format!(
            "its owner uid {uid} is no user of this host (create one: `useradd -u {uid} ...`)"
        )));
    };
    let (name, gid) = (user.name.clone(), user.gid.as_raw());
    if gid == 0 {
        return Err(refuse("its owner's group is root's"));
    }
    Ok(TargetUser {
        name,
        uid,
        gid,
        home: state_dir.parent().unwrap_or(state_dir).to_path_buf(),
    })
}

/// Inspects (or, with `apply`, writes `.env` and cleans the stores) as the state dir's owner,
/// in a forked worker bounded by [`WORKER_LIMIT`]; with `probe_base`, also checks the token
/// with Anthropic there (`""`: the gateway's own `baseUrl`, else the public API).
fn in_owner_world(
    runtime: Runtime,
    owner: &TargetUser,
    gateway: &ContainerGateway,
    token: &Token,
    apply: bool,
    probe_base: Option<String>,
) -> Result<OwnerWork> {
    if let Runtime::Quadlet { .. } = runtime {
        // Already the user (a Quadlet runs in its user's own manager).
        return owned_state_dir(&gateway.state_dir, owner.uid)
            .and_then(|()| owner_work(gateway, token, apply, probe_base.as_deref()))
            .map_err(|message| Error::failed(format!("{}: {message}", gateway.label())));
    }
    let answer = crate::host::forked::answer_of(WORKER_LIMIT, || {
        privileges::drop_to(owner)
            .map_err(|e| e.message())
            .and_then(|()| owned_state_dir(&gateway.state_dir, owner.uid))
            .and_then(|()| owner_work(gateway, token, apply, probe_base.as_deref()))
    })?;
    match answer {
        Ok(Ok(work)) => Ok(work),
        Ok(Err(message)) => Err(Error::failed(format!("{}: {message}", gateway.label()))),
        Err(why) => Err(Error::failed(format!(
            "{}: the worker acting as {} {why}",
            gateway.label(),
            owner.name
        ))),
    }
}

/// As the owner: the state dir is a directory of theirs, reached without any link.
fn owned_state_dir(state_dir: &Path, uid: u32) -> std::result::Result<(), String> {
    let meta = std::fs::symlink_metadata(state_dir)
        .map_err(|e| format!("{}: cannot be read: {e}", state_dir.display()))?;
    let canonical = std::fs::canonicalize(state_dir)
        .map_err(|e| format!("{}: cannot be resolved: {e}", state_dir.display()))?;
    if !meta.is_dir() || meta.uid() != uid || canonical != state_dir {
        return Err(format!(
            "{}: not a directory of uid {uid} reached without links (refused)",
            state_dir.display()
        ));
    }
    Ok(())
}

/// The owner's part, already acting as the owner.
fn owner_work(
    gateway: &ContainerGateway,
    token: &Token,
    apply: bool,
    probe_base: Option<&str>,
) -> std::result::Result<OwnerWork, String> {
    let state_dir = gateway.state_dir.as_path();
    let mut work = OwnerWork::default();
    let env = state_dir.join(".env");
    let existing = fsutil::read_managed(&env).map_err(|e| e.message())?;
    let wanted = files::dot_env_content(existing.as_ref().map(|f| f.content.as_slice()), token);
    work.env_created = existing.is_none();
    work.env_changed = existing
        .as_ref()
        .is_none_or(|f| f.content.as_slice() != wanted.as_slice() || f.mode & 0o7777 != 0o600);
    if apply && work.env_changed {
        fsutil::write_atomic(&env, &wanted, 0o600).map_err(|e| e.message())?;
    }
    clean_stores(gateway, apply, &mut work);
    if let Some(explicit) = probe_base {
        let configured = fsutil::read_regular(&state_dir.join("openclaw.json"))
            .ok()
            .flatten()
            .and_then(|text| proof::configured_base_url(&String::from_utf8_lossy(&text)));
        let base = Some(explicit.to_owned())
            .filter(|b| !b.is_empty())
            .or(configured)
            .unwrap_or_else(|| anthropic_probe::PUBLIC_BASE_URL.to_owned());
        let finding = anthropic_probe::probe(&base, token, super::PRE_PROBE_TIMEOUT);
        work.probe = Some((base, finding));
    }
    Ok(work)
}

/// The stores of the agents under the state dir (an `agentDir` the container names is mapped
/// from the container's path to the mount; one elsewhere is skipped, named in a warning).
fn clean_stores(gateway: &ContainerGateway, apply: bool, work: &mut OwnerWork) {
    let state_dir = gateway.state_dir.as_path();
    let inside = gateway.state_in_container.as_path();
    let selector = ProfileSelector::default();
    let home = inside.parent().unwrap_or(inside);
    let (agents, warnings) = stores::discover_agents(state_dir, home);
    work.warnings = warnings;
    for mut agent in agents {
        if let Ok(rest) = agent.dir.strip_prefix(inside) {
            agent.dir = state_dir.join(rest);
        } else if !agent.dir.starts_with(state_dir) {
            work.warnings.push(format!(
                "agent {}: its directory {} is outside the mounted state dir; not cleaned",
                agent.id,
                agent.dir.display()
            ));
            continue;
        }
        for detected in stores::stores_in(&agent, state_dir) {
            work.warnings.extend(detected.note);
            let store = detected.store;
            let result = match apply {
                true => store.clean(&selector),
                false => store.inspect(&selector),
            };
            let (removed, references, error) = match result {
                Ok(c) => (c.removed_profiles, c.removed_references, None),
                Err(e) => (Vec::new(), 0, Some(e.message())),
            };
            work.stores_dirty |= !removed.is_empty() || references > 0;
            work.stores.push(super::StoreReport {
                agent: agent.gateway_id().to_owned(),
                layout: store.layout().to_owned(),
                path: store.location().to_path_buf(),
                removed_profiles: removed,
                removed_references: references,
                error,
            });
        }
    }
}

fn report(
    owner: &TargetUser,
    gateway: &ContainerGateway,
    secret: &FetchedSecret,
    found: &OwnerWork,
) -> SyncReport {
    let action = match (found.env_created, found.env_changed) {
        (true, _) => Some(FileAction::Create),
        (false, true) => Some(FileAction::Update),
        _ => None,
    };
    SyncReport {
        result: Outcome::Unchanged,
        user: owner.name.clone(),
        home: owner.home.clone(),
        state_dir: None,
        secret: super::report::secret_report(secret),
        files: action
            .map(|action| super::FileReport {
                path: gateway.state_dir.join(".env"),
                role: FileRole::DotEnv,
                action,
                removed_literal_tokens: 0,
            })
            .into_iter()
            .collect(),
        stores: found.stores.clone(),
        gateway: GatewayReport {
            unit: gateway.label(),
            action: GatewayAction::Unchanged,
            old_pid: None,
            new_pid: None,
            proof: None,
        },
        warnings: found.warnings.clone(),
    }
}

/// A new version's check (made in the owner's world before anything was written).
fn checked_probe(
    found: &OwnerWork,
    secret: &FetchedSecret,
    warnings: &mut Vec<String>,
) -> Result<()> {
    match &found.probe {
        Some((base, finding)) => {
            super::judge_new_token(base, finding, secret, "container", warnings)
        }
        None => Ok(()),
    }
}

/// The restart, unless the container stopped since discovery (on purpose, by someone): then it
/// is left stopped.
fn restart(options: &SyncOptions, runtime: Runtime, gateway: &ContainerGateway) -> Result<()> {
    if !runtime.running(gateway)? {
        return Err(Error::failed(format!(
            "{}: stopped while this run looked at it; left stopped (it takes the new files when it starts)",
            gateway.label()
        )));
    }
    runtime.restart(options, gateway)
}

/// Asks the restarted gateway's `models.probe` (OpenClaw's CLI inside the container) until it
/// answers or the verify timeout passes: the gateway must name the token's variable and
/// Anthropic must accept it.
fn prove(
    options: &SyncOptions,
    runtime: Runtime,
    gateway: &ContainerGateway,
    token: &Token,
    restarted: bool,
) -> Result<GatewayProof> {
    // The container's own start comes first (a new container, then Node): the verify bound
    // plus the time a gateway may take to come up.
    let limit = options.verify.timeout + CONTAINER_START;
    let deadline = Instant::now() + limit;
    let expected = token.kind().variable();
    // Each question is a Node start inside the container, taking CPU from the gateway's own
    // start: none while a restarted gateway cannot answer yet (its start takes 10-15 s on two
    // cores), then spaced.
    if restarted {
        std::thread::sleep(FIRST_QUESTION);
    }
    loop {
        let why = match probe_once(runtime, gateway)? {
            Ok((variable, finding)) if variable == expected => {
                runtime.check_environment(gateway, token)?;
                return proven(gateway, variable, finding, token);
            }
            Ok((variable, _)) => format!("the gateway uses {variable}, not {expected}"),
            Err(why) => why,
        };
        if Instant::now() >= deadline {
            return Err(Error::failed(format!(
                "{}: restarted, but not proven within {} s: {why}",
                gateway.label(),
                limit.as_secs()
            )));
        }
        std::thread::sleep(BETWEEN_QUESTIONS);
    }
}

/// One `models.probe` through OpenClaw's CLI inside the container: the environment variable
/// the gateway uses for Anthropic and Anthropic's verdict, or why there is none.
pub(crate) fn probe_once(
    runtime: Runtime,
    gateway: &ContainerGateway,
) -> Result<std::result::Result<(String, anthropic_probe::Finding), String>> {
    let params = serde_json::json!({"provider": "anthropic", "timeoutMs": 20000});
    let mut argv = gateway.cli.clone();
    argv.extend(
        [
            "gateway",
            "call",
            "models.probe",
            "--json",
            "--params",
            &params.to_string(),
        ]
        .map(str::to_owned),
    );
    let out = runtime.exec(gateway, &argv, Duration::from_secs(60))?;
    Ok(match interpret(out.success, &out.stdout, &out.stderr) {
        Call::Answer(answer) => match proof::read_probe(&answer) {
            ProbeReading::Environment { variable, finding } => Ok((variable, finding)),
            ProbeReading::Other { labels } => Err(format!(
                "the gateway uses {} for Anthropic",
                labels.join(", ")
            )),
            ProbeReading::Nothing { status } => Err(format!("models.probe: {status}")),
        },
        other => Err(other.to_string()),
    })
}

fn proven(
    gateway: &ContainerGateway,
    variable: String,
    finding: anthropic_probe::Finding,
    token: &Token,
) -> Result<GatewayProof> {
    if finding.verdict == Verdict::Rejected {
        return Err(Error::TokenRejected(format!(
            "{}: the gateway's models.probe says Anthropic rejected {variable}: {}",
            gateway.label(),
            finding.detail
        )));
    }
    let mut proof = GatewayProof::empty();
    proof.method = ProofMethod::GatewayProbe;
    proof.source = Some(format!("env: {variable}"));
    proof.value_from = Some(format!(
        "{}/.env = {}",
        gateway.state_in_container.display(),
        token.fingerprint()
    ));
    proof.probe = Some(ProbeReport {
        via: ProbeVia::Gateway,
        target: "gateway".to_owned(),
        finding,
    });
    Ok(proof)
}

/// Root's record of what was applied to this container.
pub(crate) fn record_path(gateway: &ContainerGateway) -> PathBuf {
    let name: String = gateway
        .name
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() || "-_.".contains(c) {
            true => c,
            false => '_',
        })
        .collect();
    Path::new(RECORDS).join(format!("{name}.json"))
}

fn record_applied(
    path: &Path,
    gateway: &ContainerGateway,
    secret: &FetchedSecret,
    outcome: GatewayOutcome,
) -> Result<()> {
    fsutil::ensure_dir(fsutil::parent_of(path)?, true)?;
    state::save(
        path,
        &AppliedState {
            secret_arn: secret.arn.clone(),
            version_id: secret.version_id.clone(),
            fingerprint: secret.token.fingerprint().clone(),
            variable: secret.token.kind().variable().to_owned(),
            unit: gateway.label(),
            gateway: outcome,
            gateway_pid: None,
            applied_at: state::now_rfc3339(),
            version_created_at: secret.created_date.clone(),
            delivery: Default::default(),
            config_path: None,
            invocation: gateway.invocation.clone(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            dry_run: false,
            no_restart: false,
            force: false,
            running: true,
            changed: false,
            stores_dirty: false,
            recorded: Some((GatewayOutcome::Verified, false)),
        }
    }

    #[test]
    fn a_container_restarts_only_for_a_change_and_never_when_stopped() {
        let f = facts();
        assert_eq!(decide(f), Step::Nothing);
        assert_eq!(
            decide(Facts {
                recorded: None,
                ..f
            }),
            Step::WriteAndRestart
        );
        assert_eq!(decide(Facts { changed: true, ..f }), Step::WriteAndRestart);
        assert_eq!(decide(Facts { force: true, ..f }), Step::WriteAndRestart);
        assert_eq!(
            decide(Facts {
                running: false,
                changed: true,
                ..f
            }),
            Step::WriteOnly(GatewayAction::Inactive)
        );
        assert_eq!(
            decide(Facts {
                no_restart: true,
                changed: true,
                ..f
            }),
            Step::WriteOnly(GatewayAction::NotRestarted)
        );
        assert_eq!(decide(Facts { dry_run: true, ..f }), Step::DryRun);
        // Entries back in a store of a proven version: cleaned, never restarted for.
        assert_eq!(
            decide(Facts {
                stores_dirty: true,
                ..f
            }),
            Step::CleanOnly
        );
    }

    #[test]
    fn times_order_to_the_nanosecond() {
        let record = utc_instant("2026-12-03T17:02:07.440177Z");
        let started = utc_instant("2026-12-03T17:02:07.740621718Z");
        assert!(record.is_some() && started > record);
        assert!(utc_instant("2026-12-03T17:02:07Z") < record);
        assert_eq!(utc_instant("2026-12-03T17:02:07+01:00"), None);
    }

    #[test]
    fn a_failed_proof_or_a_stopped_container_is_never_restarted_again_for_the_same_version() {
        let f = facts();
        let unproven = Some((GatewayOutcome::Unproven, false));
        assert_eq!(
            decide(Facts {
                recorded: unproven,
                ..f
            }),
            Step::ProveOnly
        );
        assert_eq!(
            decide(Facts {
                recorded: unproven,
                running: false,
                ..f
            }),
            Step::Nothing
        );
        let inactive = Some((GatewayOutcome::Inactive, false));
        assert_eq!(
            decide(Facts {
                recorded: inactive,
                running: false,
                ..f
            }),
            Step::Nothing
        );
        // Started by its owner since: it read the file at start.
        let started = Some((GatewayOutcome::Inactive, true));
        assert_eq!(
            decide(Facts {
                recorded: started,
                ..f
            }),
            Step::ProveOnly
        );
        // Running but not since the write (`--no-restart` earlier): one restart, unless again
        // told not to.
        let held = Some((GatewayOutcome::NotRestarted, false));
        assert_eq!(
            decide(Facts {
                recorded: held,
                ..f
            }),
            Step::WriteAndRestart
        );
        assert_eq!(
            decide(Facts {
                recorded: held,
                no_restart: true,
                ..f
            }),
            Step::Nothing
        );
    }
}
