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

use super::{GatewayAction, GatewayReport, GatewayRun, Outcome, SyncOptions, SyncReport};
use crate::anthropic_probe::{self, Verdict};
use crate::aws::FetchedSecret;
use crate::error::{Error, Result};
use crate::host::docker::Docker;
use crate::host::fsutil;
use crate::host::managed_files::{self as files, FileAction, FileRole};
use crate::host::privileges::{self, TargetUser};
use crate::host::state::{self, AppliedState, GatewayOutcome};
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

/// How long a worker in the owner's world may take.
const WORKER_LIMIT: Duration = Duration::from_secs(120);

/// What the owner's worker found (and, when told to, did) under the state dir.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct OwnerWork {
    /// `.env` does not (did not) hold the token with mode 0600.
    env_changed: bool,
    env_created: bool,
    stores: Vec<super::StoreReport>,
    /// Anthropic entries found (or removed) in the stores.
    stores_dirty: bool,
    /// `models.providers.anthropic.baseUrl` of the gateway's `openclaw.json`.
    base_url: Option<String>,
    warnings: Vec<String>,
}

/// What to do with a container, from what was found (pure).
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Nothing,
    DryRun,
    /// Write; no restart (`--no-restart`, or a container that is not running).
    WriteOnly(GatewayAction),
    WriteAndRestart,
}

/// What the run is allowed to do.
#[derive(Clone, Copy)]
struct Allowed {
    dry_run: bool,
    no_restart: bool,
}

fn decide(allowed: Allowed, running: bool, recorded: bool, work: &OwnerWork) -> Step {
    let changed = work.env_changed || work.stores_dirty;
    if allowed.dry_run {
        return Step::DryRun;
    }
    if !changed && recorded {
        return Step::Nothing;
    }
    if !running {
        return Step::WriteOnly(GatewayAction::Inactive);
    }
    if allowed.no_restart {
        return Step::WriteOnly(GatewayAction::NotRestarted);
    }
    Step::WriteAndRestart
}

/// Syncs one container gateway; its failure is its own.
pub fn sync(
    options: &SyncOptions,
    docker: &Docker,
    gateway: &ContainerGateway,
    secret: &FetchedSecret,
) -> GatewayRun {
    let owner = owner_of(&gateway.state_dir);
    let user = owner
        .as_ref()
        .map(|o| o.name.clone())
        .unwrap_or_else(|_| "?".to_owned());
    GatewayRun {
        user,
        unit: gateway.label(),
        result: owner.and_then(|owner| sync_as(options, docker, gateway, secret, &owner)),
    }
}

fn sync_as(
    options: &SyncOptions,
    docker: &Docker,
    gateway: &ContainerGateway,
    secret: &FetchedSecret,
    owner: &TargetUser,
) -> Result<SyncReport> {
    if let Some(variable) = gateway.sets_variables.first() {
        return Err(Error::config(format!(
            "{}: the container's own configuration sets {variable} (compose `environment:` or `env_file:`), which OpenClaw's {}/.env never overrides; remove it there (the token goes into {}/.env) and recreate the container once (`docker compose up -d`)",
            gateway.label(),
            gateway.state_in_container.display(),
            gateway.state_dir.display()
        )));
    }
    let token = &secret.token;
    let record_path = record_path(gateway);
    let (record, _) = state::load(&record_path);
    let recorded = record.as_ref().is_some_and(|r| {
        r.version_id == secret.version_id
            && &r.fingerprint == token.fingerprint()
            && r.gateway == GatewayOutcome::Verified
    });
    let found = in_owner_world(owner, gateway, token, false)?;
    let mut report = report(owner, gateway, secret, &found);
    let allowed = Allowed {
        dry_run: options.dry_run,
        no_restart: options.no_restart,
    };
    let step = decide(allowed, gateway.running, recorded, &found);
    match step {
        Step::Nothing => return Ok(report),
        Step::DryRun => {
            report.result = Outcome::DryRun;
            if gateway.running && (!recorded || found.env_changed || found.stores_dirty) {
                report.gateway.action = GatewayAction::WouldRestart;
            }
            return Ok(report);
        }
        _ => {}
    }
    if !recorded {
        pre_probe(options, &found, secret, &mut report.warnings)?;
    }
    let done = in_owner_world(owner, gateway, token, true)?;
    report.stores = done.stores;
    report.result = Outcome::Applied;
    let outcome = match step {
        Step::WriteOnly(action) => {
            report.gateway.action = action;
            match action {
                GatewayAction::Inactive => GatewayOutcome::Inactive,
                _ => GatewayOutcome::NotRestarted,
            }
        }
        _ => {
            restart(options, docker, gateway)?;
            let proof = prove(options, docker, gateway, token)?;
            report.gateway.action = GatewayAction::Restarted;
            report.gateway.proof = Some(proof);
            GatewayOutcome::Verified
        }
    };
    record_applied(&record_path, gateway, secret, outcome)?;
    Ok(report)
}

/// The owner of the state dir, which must be a real directory of a user other than root.
fn owner_of(state_dir: &Path) -> Result<TargetUser> {
    let meta = std::fs::symlink_metadata(state_dir).map_err(|e| {
        Error::failed(format!(
            "{}: the container's state dir cannot be read: {e}",
            state_dir.display()
        ))
    })?;
    if !meta.is_dir() {
        return Err(Error::failed(format!(
            "{}: the container's state dir is not a directory (a link is refused)",
            state_dir.display()
        )));
    }
    if meta.uid() == 0 {
        return Err(Error::failed(format!(
            "{}: the container's state dir belongs to root; the tool acts only as a gateway's own (non-root) user: give it to the container's user (`chown -R 1000:1000 {}` for OpenClaw's image)",
            state_dir.display(),
            state_dir.display()
        )));
    }
    let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(meta.uid()))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("uid {}", meta.uid()));
    Ok(TargetUser {
        name,
        uid: meta.uid(),
        gid: meta.gid(),
        home: state_dir.parent().unwrap_or(state_dir).to_path_buf(),
    })
}

/// Inspects (or, with `apply`, writes `.env` and cleans the stores) as the state dir's owner,
/// in a forked worker bounded by [`WORKER_LIMIT`].
fn in_owner_world(
    owner: &TargetUser,
    gateway: &ContainerGateway,
    token: &Token,
    apply: bool,
) -> Result<OwnerWork> {
    let answer = crate::host::forked::answer_of(WORKER_LIMIT, || {
        privileges::drop_to(owner)
            .map_err(|e| e.message())
            .and_then(|()| owner_work(&gateway.state_dir, &owner.home, token, apply))
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

/// The owner's part, already acting as the owner.
fn owner_work(
    state_dir: &Path,
    home: &Path,
    token: &Token,
    apply: bool,
) -> std::result::Result<OwnerWork, String> {
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
    let selector = ProfileSelector::default();
    let (agents, warnings) = stores::discover_agents(state_dir, home);
    work.warnings = warnings;
    for agent in agents {
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
    work.base_url = std::fs::read_to_string(state_dir.join("openclaw.json"))
        .ok()
        .and_then(|text| proof::configured_base_url(&text));
    Ok(work)
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

/// A new version is checked with Anthropic (or `--anthropic-base-url`, else the gateway's own
/// `baseUrl`) before anything is written.
fn pre_probe(
    options: &SyncOptions,
    found: &OwnerWork,
    secret: &FetchedSecret,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let base = options
        .anthropic_base_url
        .clone()
        .or_else(|| found.base_url.clone())
        .unwrap_or_else(|| anthropic_probe::PUBLIC_BASE_URL.to_owned());
    let finding = anthropic_probe::probe(&base, &secret.token, super::PRE_PROBE_TIMEOUT);
    match finding.verdict {
        Verdict::Rejected => Err(Error::TokenRejected(format!(
            "{base} rejected the token {} of version {} ({}): nothing was changed, the container keeps its current token",
            secret.token.fingerprint(),
            secret.version_id,
            finding.detail
        ))),
        Verdict::Inconclusive => {
            warnings.push(format!(
                "could not check the new token {} with {base} before applying it ({}); applied anyway",
                secret.token.fingerprint(),
                finding.detail
            ));
            Ok(())
        }
        Verdict::Accepted => Ok(()),
    }
}

/// `docker restart`; a container that did not come back is started (never left stopped by us).
fn restart(options: &SyncOptions, docker: &Docker, gateway: &ContainerGateway) -> Result<()> {
    if let Err(err) = docker.restart(&gateway.id, options.verify.stop) {
        return match docker.start(&gateway.id) {
            Ok(()) => Err(Error::failed(format!(
                "{}: {err}; it was started again with its previous token files",
                gateway.label()
            ))),
            Err(start) => Err(Error::failed(format!(
                "{}: {err}, and starting it failed too: {start}",
                gateway.label()
            ))),
        };
    }
    Ok(())
}

/// Asks the restarted gateway's `models.probe` (OpenClaw's CLI inside the container) until it
/// answers or the verify timeout passes: the gateway must name the token's variable and
/// Anthropic must accept it.
fn prove(
    options: &SyncOptions,
    docker: &Docker,
    gateway: &ContainerGateway,
    token: &Token,
) -> Result<GatewayProof> {
    let deadline = Instant::now() + options.verify.timeout;
    let expected = token.kind().variable();
    loop {
        let why = match probe_once(docker, gateway)? {
            Ok((variable, finding)) if variable == expected => {
                return proven(gateway, variable, finding, token);
            }
            Ok((variable, _)) => format!("the gateway uses {variable}, not {expected}"),
            Err(why) => why,
        };
        if Instant::now() >= deadline {
            return Err(Error::failed(format!(
                "{}: restarted, but not proven within {} s: {why}",
                gateway.label(),
                options.verify.timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// One `models.probe` through OpenClaw's CLI inside the container: the environment variable
/// the gateway uses for Anthropic and Anthropic's verdict, or why there is none.
pub(crate) fn probe_once(
    docker: &Docker,
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
    let out = docker.exec(&gateway.id, &argv, Duration::from_secs(60))?;
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
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_restarts_only_for_a_change_and_never_when_stopped() {
        let run = Allowed {
            dry_run: false,
            no_restart: false,
        };
        let clean = OwnerWork::default();
        let dirty = OwnerWork {
            env_changed: true,
            ..OwnerWork::default()
        };
        assert_eq!(decide(run, true, true, &clean), Step::Nothing);
        assert_eq!(decide(run, true, false, &clean), Step::WriteAndRestart);
        assert_eq!(decide(run, true, true, &dirty), Step::WriteAndRestart);
        assert_eq!(
            decide(run, false, false, &dirty),
            Step::WriteOnly(GatewayAction::Inactive)
        );
        let no_restart = Allowed {
            no_restart: true,
            ..run
        };
        assert_eq!(
            decide(no_restart, true, true, &dirty),
            Step::WriteOnly(GatewayAction::NotRestarted)
        );
        let dry = Allowed {
            dry_run: true,
            ..run
        };
        assert_eq!(decide(dry, true, false, &dirty), Step::DryRun);
    }
}
