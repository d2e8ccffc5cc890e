//! `sync`, in the order DESIGN.md section 2 fixes: lock → one GetSecretValue → validate → plan
//! (pure) → nothing differs: done, no write → stop gateway, write files, clean stores, reload,
//! start → verify the new process's environment → prove through the gateway's own RPC that its
//! agents use the token, with a live probe (`openclaw::proof`) → only then write the state file
//! → report.
//!
//! Decisions where the design is silent (also in the README):
//! - `daemon-reload` runs after the drop-in is written (it must see the new file), before start.
//! - Once the gateway was stopped it is always started again, even when a write failed; the run
//!   then exits 1 without writing the state, so the next run retries.
//! - A gateway that was stopped on purpose (`inactive`) is not started; the files are written and
//!   the state records it. A later run verifies it once it runs. A gateway this tool stopped (the
//!   `restart-pending` marker, written before the stop and removed after the start, survives a
//!   run killed in between) is always started again by the next run.
//! - `--no-restart` writes the files and records "not restarted"; the next run without it
//!   restarts and verifies.
//! - A store that cannot be read or understood is left untouched and reported; the rest of the
//!   run goes on and the exit code is 1.

use crate::aws::{self, AwsSettings, FetchedSecret};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::managed_files::{self as files, FileAction, FilePlan, FileRole, ManagedPaths};
use crate::openclaw::proof::{self, GatewayProof, ProofOptions};
use crate::session;
use crate::state::{self, AppliedState, GatewayOutcome, RunLock};
use crate::stores::{self, document::ProfileSelector, Agent, CredentialStore};
use crate::systemd::{Expectation, Systemctl, UnitStatus, VerifyLimits};
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Everything `sync` needs, after flags, environment and config file were layered.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    pub secret_id: String,
    pub json_key: String,
    pub user: Option<String>,
    pub home: Option<PathBuf>,
    pub unit: String,
    pub state_dir: Option<PathBuf>,
    pub profile_ids: Option<Vec<String>>,
    pub shell_profile: bool,
    pub dry_run: bool,
    pub force: bool,
    pub no_restart: bool,
    /// After applying, prove with a live request that Anthropic accepts the token.
    pub probe: bool,
    /// Where a direct probe goes instead of the gateway's configured `baseUrl`.
    pub anthropic_base_url: Option<String>,
    pub lock_timeout: Duration,
    pub verify: VerifyLimits,
    pub aws: AwsSettings,
}

#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Applied,
    Unchanged,
    DryRun,
}

#[derive(Serialize, Debug)]
pub struct SecretReport {
    pub arn: String,
    pub version_id: String,
    pub fingerprint: String,
    pub kind: &'static str,
    pub variable: &'static str,
    pub created_date: Option<String>,
}

#[derive(Serialize, Debug)]
pub struct FileReport {
    pub path: PathBuf,
    pub role: FileRole,
    pub action: FileAction,
    #[serde(skip_serializing_if = "is_zero")]
    pub removed_literal_tokens: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Serialize, Debug)]
pub struct StoreReport {
    pub agent: String,
    pub layout: &'static str,
    pub path: PathBuf,
    pub removed_profiles: Vec<String>,
    pub removed_references: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum GatewayAction {
    /// Stopped, files written, started, environment verified.
    Restarted,
    /// Already running with the token; proven without a restart.
    Verified,
    /// Nothing to do.
    Unchanged,
    NotRestarted,
    UnitNotFound,
    /// Stopped on purpose; left stopped.
    Inactive,
    /// Dry run: a restart would happen.
    WouldRestart,
}

#[derive(Serialize, Debug)]
pub struct GatewayReport {
    pub unit: String,
    pub action: GatewayAction,
    pub old_pid: Option<u32>,
    pub new_pid: Option<u32>,
    /// How the running gateway was shown to use the token (after a restart or a verification).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof: Option<GatewayProof>,
}

/// What a sync did (or, with `--dry-run`, would do). Contains no token, only fingerprints.
#[derive(Serialize, Debug)]
pub struct SyncReport {
    pub result: Outcome,
    pub user: String,
    pub home: PathBuf,
    pub secret: SecretReport,
    pub files: Vec<FileReport>,
    pub stores: Vec<StoreReport>,
    pub gateway: GatewayReport,
    pub warnings: Vec<String>,
}

impl SyncReport {
    /// Exit code: 0, or 1 when a store was skipped.
    pub fn exit_code(&self) -> u8 {
        if self.stores.iter().any(|s| s.error.is_some()) {
            1
        } else {
            0
        }
    }
}

/// The desired state next to what is on disk.
struct Plan {
    files: Vec<FilePlan>,
    stores: Vec<PlannedStore>,
}

struct PlannedStore {
    agent: Agent,
    store: Box<dyn CredentialStore>,
    inspected: std::result::Result<stores::document::Cleaning, String>,
}

impl Plan {
    fn gateway_files_change(&self) -> bool {
        self.files
            .iter()
            .any(|f| f.content_changes() && f.role.affects_gateway())
    }

    fn dropin_changes(&self) -> bool {
        self.files
            .iter()
            .any(|f| f.role == FileRole::DropIn && f.content_changes())
    }

    fn any_file_action(&self) -> bool {
        self.files.iter().any(|f| f.action != FileAction::Unchanged)
    }

    fn stores_dirty(&self) -> bool {
        self.stores
            .iter()
            .any(|s| s.inspected.as_ref().is_ok_and(|c| !c.is_empty()))
    }
}

/// Runs a sync. Returns the report, or the error that stopped it.
pub fn run(options: &SyncOptions) -> Result<SyncReport> {
    let session = session::enter(
        options.user.as_deref(),
        options.home.as_deref(),
        Some((&options.aws, &options.secret_id)),
    )?;
    let target = session.target;
    let (runtime, config) = session.aws.expect("sync always talks to AWS");

    let openclaw_state = stores::resolve_state_dir(&target.home, options.state_dir.as_deref());
    let paths = ManagedPaths::new(&target.home, &options.unit, &openclaw_state);
    let _lock = if options.dry_run {
        None
    } else {
        fsutil::ensure_dir(&paths.state_dir, true)?;
        Some(RunLock::acquire(&paths.lock_file(), options.lock_timeout)?)
    };

    let secret = runtime.block_on(aws::fetch_secret(
        &config,
        &options.secret_id,
        &options.json_key,
    ))?;
    drop(runtime);

    let mut warnings = Vec::new();
    let selector = ProfileSelector {
        only_ids: options.profile_ids.clone(),
    };
    let plan = build_plan(
        options,
        &paths,
        &openclaw_state,
        &secret,
        &selector,
        &mut warnings,
    )?;
    let (previous, state_warning) = state::load(&paths.state_file());
    warnings.extend(state_warning);
    let state_current = previous.as_ref().is_some_and(|p| {
        p.secret_arn == secret.arn
            && p.version_id == secret.version_id
            && p.fingerprint == *secret.token.fingerprint()
            && p.unit == options.unit
            && p.variable == secret.token.kind().variable()
    });
    let previous_outcome = previous.as_ref().map(|p| p.gateway);

    let mut report = SyncReport {
        result: Outcome::Unchanged,
        user: target.name.clone(),
        home: target.home.clone(),
        secret: SecretReport {
            arn: secret.arn.clone(),
            version_id: secret.version_id.clone(),
            fingerprint: secret.token.fingerprint().to_string(),
            kind: secret.token.kind().label(),
            variable: secret.token.kind().variable(),
            created_date: secret.created_date.clone(),
        },
        files: plan
            .files
            .iter()
            .map(|f| FileReport {
                path: f.path.clone(),
                role: f.role,
                action: f.action,
                removed_literal_tokens: f.removed_literal_tokens,
            })
            .collect(),
        stores: Vec::new(),
        gateway: GatewayReport {
            unit: options.unit.clone(),
            action: GatewayAction::Unchanged,
            old_pid: None,
            new_pid: None,
            proof: None,
        },
        warnings,
    };

    let content_work = plan.gateway_files_change() || plan.stores_dirty() || !state_current;
    let nothing_on_disk = !plan.any_file_action() && !plan.stores_dirty();
    let settled = state_current && previous_outcome == Some(GatewayOutcome::Verified);

    if options.dry_run {
        report.result = if nothing_on_disk && settled && !options.force {
            Outcome::Unchanged
        } else {
            Outcome::DryRun
        };
        report.stores = store_reports(&plan.stores, None);
        if (content_work || options.force) && !options.no_restart {
            report.gateway.action = GatewayAction::WouldRestart;
        }
        return Ok(report);
    }

    if nothing_on_disk && settled && !options.force {
        report.stores = store_reports(&plan.stores, None);
        return Ok(report);
    }
    // Files and state are current but the gateway was never proven (no restart wanted, unit
    // missing, or stopped): a repeat run writes nothing unless the gateway's situation changed.
    let quiet = nothing_on_disk && state_current && !options.force;
    if quiet && options.no_restart {
        report.stores = store_reports(&plan.stores, None);
        report.gateway.action = GatewayAction::NotRestarted;
        return Ok(report);
    }

    let systemctl = Systemctl::new(target.clone());
    let expect = Expectation {
        variable: secret.token.kind().variable(),
        fingerprint: secret.token.fingerprint(),
    };
    let status = if options.no_restart {
        None
    } else {
        Some(systemctl.show(&options.unit)?)
    };
    // A state file that is merely behind (a run killed after writing) needs a check, not a restart.
    let restart_needed = plan.gateway_files_change() || plan.stores_dirty() || options.force;
    if let Some(status) = status.as_ref().filter(|_| quiet) {
        let unchanged_as =
            if !status.exists() && previous_outcome == Some(GatewayOutcome::UnitNotFound) {
                Some(GatewayAction::UnitNotFound)
            } else if status.is_inactive() && previous_outcome == Some(GatewayOutcome::Inactive) {
                Some(GatewayAction::Inactive)
            } else {
                None
            };
        if let Some(action) = unchanged_as {
            report.stores = store_reports(&plan.stores, None);
            report.gateway.action = action;
            return Ok(report);
        }
    }

    let marker = restart_marker(&paths);
    let restart = Restart {
        options,
        plan: &plan,
        selector: &selector,
        systemctl: &systemctl,
        expect: &expect,
        marker: &marker,
    };
    let outcome = match status {
        None => {
            let cleanings = apply_changes(&plan, &selector)?;
            report.stores = store_reports(&plan.stores, Some(&cleanings));
            report.gateway.action = GatewayAction::NotRestarted;
            GatewayOutcome::NotRestarted
        }
        Some(status) if !status.exists() => {
            let cleanings = apply_changes(&plan, &selector)?;
            report.stores = store_reports(&plan.stores, Some(&cleanings));
            report.gateway.action = GatewayAction::UnitNotFound;
            report.warnings.push(format!(
                "gateway unit {} not found for {}: files written, nothing restarted",
                options.unit, target.name
            ));
            GatewayOutcome::UnitNotFound
        }
        Some(status) if status.is_inactive() && !restart_pending(&paths) => {
            let cleanings = apply_changes(&plan, &selector)?;
            report.stores = store_reports(&plan.stores, Some(&cleanings));
            if plan.dropin_changes() || status.need_daemon_reload {
                systemctl.daemon_reload()?;
            }
            report.gateway.action = GatewayAction::Inactive;
            report.warnings.push(format!(
                "{} is stopped; left stopped (it reads the new token when started)",
                options.unit
            ));
            GatewayOutcome::Inactive
        }
        Some(status) if !restart_needed && status.is_active() && !status.need_daemon_reload => {
            // Files are current; only metadata fixes or a verification are owed.
            match systemctl.confirm_running(&options.unit, status.main_pid, &expect, options.verify)
            {
                Ok(()) => {
                    let cleanings = apply_changes(&plan, &selector)?;
                    report.stores = store_reports(&plan.stores, Some(&cleanings));
                    report.gateway.action = GatewayAction::Verified;
                    report.gateway.new_pid = Some(status.main_pid);
                    report.gateway.old_pid = Some(status.main_pid);
                    GatewayOutcome::Verified
                }
                Err(_) => restart_and_verify(&restart, &status, &mut report)?,
            }
        }
        Some(status) => restart_and_verify(&restart, &status, &mut report)?,
    };

    if outcome == GatewayOutcome::Verified {
        // The process environment is right; now the gateway's own view, and a live probe.
        let proof = proof::prove(
            &systemctl,
            &options.unit,
            &secret.token,
            &openclaw_state,
            ProofOptions {
                cli_state: paths.state_dir.join("openclaw-cli"),
                home: paths.home.clone(),
                agents: proof::agent_ids(plan.stores.iter().map(|s| &s.agent)),
                probe: options.probe,
                base_url: options.anthropic_base_url.clone(),
                deadline: Instant::now() + options.verify.timeout,
            },
        )?;
        if let Some(rejected) = proof::rejection(&proof, &secret.token) {
            return Err(rejected);
        }
        tracing::info!(proof = %proof.describe(), "gateway proven");
        report.warnings.extend(proof.notes.iter().cloned());
        report.gateway.proof = Some(proof);
    }
    if outcome == GatewayOutcome::Verified && restart_pending(&paths) {
        // Left by a run killed after its start: the gateway runs, so the marker is obsolete.
        std::fs::remove_file(&marker)
            .map_err(|e| Error::failed(format!("{}: cannot remove: {e}", marker.display())))?;
    }
    let new_state = AppliedState {
        secret_arn: secret.arn.clone(),
        version_id: secret.version_id.clone(),
        fingerprint: secret.token.fingerprint().clone(),
        variable: secret.token.kind().variable().to_owned(),
        unit: options.unit.clone(),
        gateway: outcome,
        gateway_pid: report.gateway.new_pid,
        applied_at: state::now_rfc3339(),
        version_created_at: secret.created_date.clone(),
    };
    state::save(&paths.state_file(), &new_state)?;
    report.result = Outcome::Applied;
    Ok(report)
}

/// What a restart needs besides the unit's current status.
struct Restart<'a> {
    options: &'a SyncOptions,
    plan: &'a Plan,
    selector: &'a ProfileSelector,
    systemctl: &'a Systemctl,
    expect: &'a Expectation<'a>,
    marker: &'a std::path::Path,
}

/// Stop, write, clean, reload, start, verify. The gateway is started again even when a write
/// failed, and the first error is returned after that.
fn restart_and_verify(
    restart: &Restart,
    status: &UnitStatus,
    report: &mut SyncReport,
) -> Result<GatewayOutcome> {
    let Restart {
        options,
        plan,
        selector,
        systemctl,
        expect,
        marker,
    } = *restart;
    let unit = &options.unit;
    let old_pid = (status.main_pid != 0).then_some(status.main_pid);
    report.gateway.old_pid = old_pid;
    fsutil::write_atomic(marker, format!("{unit}\n").as_bytes(), 0o600)?;
    tracing::info!(unit, "stopping the gateway");
    systemctl.stop(unit)?;
    let applied = apply_changes(plan, selector);
    let reloaded = if plan.dropin_changes() || status.need_daemon_reload {
        systemctl.daemon_reload()
    } else {
        Ok(())
    };
    tracing::info!(unit, "starting the gateway");
    let started = systemctl.start(unit);
    if started.is_ok() {
        std::fs::remove_file(marker)
            .map_err(|e| Error::failed(format!("{}: cannot remove: {e}", marker.display())))?;
        fsutil::sync_dir(fsutil::parent_of(marker)?)?;
    }
    let cleanings = applied?;
    reloaded?;
    started?;
    report.stores = store_reports(&plan.stores, Some(&cleanings));
    let new_pid = systemctl.verify(unit, old_pid, expect, options.verify)?;
    report.gateway.action = GatewayAction::Restarted;
    report.gateway.new_pid = Some(new_pid);
    Ok(GatewayOutcome::Verified)
}

/// The marker that says "this tool stopped the gateway and has not started it yet".
fn restart_marker(paths: &ManagedPaths) -> PathBuf {
    paths.state_dir.join("restart-pending")
}

fn restart_pending(paths: &ManagedPaths) -> bool {
    std::fs::symlink_metadata(restart_marker(paths)).is_ok()
}

/// Reads everything the plan depends on and computes the desired state.
fn build_plan(
    options: &SyncOptions,
    paths: &ManagedPaths,
    openclaw_state: &std::path::Path,
    secret: &FetchedSecret,
    selector: &ProfileSelector,
    warnings: &mut Vec<String>,
) -> Result<Plan> {
    let token = &secret.token;
    let uid = nix::unistd::geteuid().as_raw();
    // The drop-in's directory is ours: a symlink there is refused before anything is read.
    fsutil::refuse_symlink(&paths.dropin_dir)?;
    let dropin_existing = fsutil::read_managed(&paths.dropin)?;
    let legacy_existing = fsutil::read_managed(&paths.legacy_env)?;
    let mut file_plans = vec![
        FilePlan::compare(
            FileRole::DropIn,
            paths.dropin.clone(),
            files::dropin_content(token),
            0o600,
            dropin_existing.as_ref(),
            uid,
        ),
        FilePlan::compare(
            FileRole::LegacyEnv,
            paths.legacy_env.clone(),
            files::legacy_env_content(token),
            0o600,
            legacy_existing.as_ref(),
            uid,
        ),
    ];
    // `<state>/.env` always carries the token (releases from 2026.8.1 drop a managed key that no
    // global dotenv file holds). It lives in OpenClaw's state dir, which this tool never creates.
    if openclaw_state.is_dir() {
        let existing = fsutil::read_managed(&paths.dot_env)?;
        file_plans.push(FilePlan::compare(
            FileRole::DotEnv,
            paths.dot_env.clone(),
            files::dot_env_content(existing.as_ref().map(|f| f.content.as_slice()), token),
            0o600,
            existing.as_ref(),
            uid,
        ));
    } else {
        warnings.push(format!(
            "no OpenClaw state directory at {}: {} not written (OpenClaw 2026.8.1 and later need it; run `openclaw onboard` or pass --state-dir)",
            openclaw_state.display(),
            paths.dot_env.display()
        ));
    }
    for (role, path) in [
        (FileRole::GatewayEnv, &paths.gateway_env),
        (FileRole::GlobalGatewayEnv, &paths.global_gateway_env),
    ] {
        if let Some(existing) = fsutil::read_managed(path)? {
            if let Some(desired) = files::edit_env_file(&existing.content, token) {
                file_plans.push(FilePlan::compare(
                    role,
                    path.clone(),
                    desired,
                    0o600,
                    Some(&existing),
                    uid,
                ));
            }
        }
    }
    if options.shell_profile {
        let existing = fsutil::read_managed(&paths.shell_profile)?;
        let (desired, removed) = files::edit_shell_profile(
            existing.as_ref().map(|f| f.content.as_slice()),
            token.kind(),
        );
        // The profile holds no token; keep the mode the user gave it (0600 when we create it).
        let mode = existing.as_ref().map_or(0o600, |f| f.mode);
        let mut plan = FilePlan::compare(
            FileRole::ShellProfile,
            paths.shell_profile.clone(),
            desired,
            mode,
            existing.as_ref(),
            uid,
        );
        plan.removed_literal_tokens = removed;
        file_plans.push(plan);
    }

    let (agents, agent_warnings) = stores::discover_agents(openclaw_state, &paths.home);
    warnings.extend(agent_warnings);
    let mut planned = Vec::new();
    for agent in agents {
        for detected in stores::stores_in(&agent, openclaw_state) {
            warnings.extend(detected.note);
            let inspected = detected.store.inspect(selector).map_err(|e| e.to_string());
            planned.push(PlannedStore {
                agent: agent.clone(),
                store: detected.store,
                inspected,
            });
        }
    }
    Ok(Plan {
        files: file_plans,
        stores: planned,
    })
}

/// Writes every file that differs and cleans every store that needs it. Store failures are
/// collected (the store is left as it was); file failures stop the run.
fn apply_changes(
    plan: &Plan,
    selector: &ProfileSelector,
) -> Result<Vec<Option<std::result::Result<stores::document::Cleaning, String>>>> {
    for file in &plan.files {
        if file.action == FileAction::Unchanged {
            continue;
        }
        let dir = fsutil::parent_of(&file.path)?;
        fsutil::ensure_dir(dir, file.role == FileRole::DropIn)?;
        tracing::info!(path = %file.path.display(), action = ?file.action, "writing");
        fsutil::write_atomic(&file.path, &file.desired, file.mode)?;
    }
    Ok(plan
        .stores
        .iter()
        .map(|planned| match &planned.inspected {
            Ok(cleaning) if cleaning.is_empty() => None,
            Ok(_) => Some(planned.store.clean(selector).map_err(|e| e.to_string())),
            Err(_) => None,
        })
        .collect())
}

fn store_reports(
    planned: &[PlannedStore],
    applied: Option<&Vec<Option<std::result::Result<stores::document::Cleaning, String>>>>,
) -> Vec<StoreReport> {
    planned
        .iter()
        .enumerate()
        .map(|(index, p)| {
            let result = match applied.and_then(|a| a[index].as_ref()) {
                Some(done) => done.clone(),
                None => p.inspected.clone(),
            };
            let (cleaning, error) = match result {
                Ok(c) => (c, None),
                Err(e) => (Default::default(), Some(e)),
            };
            StoreReport {
                agent: p.agent.id.clone(),
                layout: p.store.layout(),
                path: p.store.location().to_path_buf(),
                removed_profiles: cleaning.removed_profiles,
                removed_references: cleaning.removed_references,
                error,
            }
        })
        .filter(|r| r.error.is_some() || !r.removed_profiles.is_empty() || r.removed_references > 0)
        .collect()
}
