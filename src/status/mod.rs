//! `status`: the runbook's troubleshooting table, automated. Read-only diagnosis of one host for
//! one user: the gateway unit and our drop-in, the variable in the running gateway (compared by
//! fingerprint with the files and the state), environment files that override the drop-in, stale
//! or cooling-down profiles in every agent's store, leftover JSON beside SQLite, modes, owners and
//! symlinks of every managed path, the state file, token age and expiry, a legacy
//! `fetch-claude-token` timer, Claude Code credentials that old OpenClaw releases import, and,
//! with a running gateway, the gateway's own view through its RPC and a live token probe
//! (`openclaw::proof`, the same proof `sync` runs after applying).
//!
//! Each finding has a check id, a severity, what was seen, why it matters and the exact fix.
//! Exit codes: 0 healthy, 1 at least one problem, 3 warnings only (2 stays usage/config).
//! No AWS call is made unless `--check-secret` is given; nothing of the user's is written (asking
//! the gateway's RPC keeps OpenClaw's CLI state in our own state dir).

mod containers;
mod reference;

use crate::anthropic_probe::Verdict;
use crate::aws::{self, AwsSettings};
use crate::error::Result;
use crate::host::fsutil;
use crate::host::managed_files::{self, ManagedPaths};
use crate::host::privileges::TargetUser;
use crate::host::session;
use crate::host::state::{self, GatewayOutcome};
use crate::host::systemd::{self, Manager, Systemctl};
use crate::openclaw::proof::{self, ProofMethod, ProofOptions};
use crate::openclaw::stores::{self, document};
use crate::secret::Token;
use crate::secret::{Fingerprint, MANAGED_VARIABLES};
use serde::Serialize;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

/// Exit code for "warnings only".
pub const EXIT_WARNINGS: u8 = 3;
const DAY_MS: u64 = 86_400_000;

#[derive(Clone, Debug)]
pub struct StatusOptions {
    pub user: Option<String>,
    pub home: Option<PathBuf>,
    pub unit: String,
    /// No unit was named: every gateway of the user.
    pub discover: bool,
    pub state_dir: Option<PathBuf>,
    /// `Some(secret id)`: also compare with AWSCURRENT (one GetSecretValue).
    pub check_secret: Option<String>,
    pub json_key: String,
    pub aws: AwsSettings,
    /// Assumed lifetime of a token whose secret has no `expires_at` (setup tokens: 365 days).
    pub token_lifetime_days: u64,
    /// Warn when the token expires within this many days.
    pub expiry_warning_days: u64,
    /// Send a live probe that Anthropic accepts the token.
    pub probe: bool,
    /// Where a direct probe goes instead of the gateway's configured base URL.
    pub anthropic_base_url: Option<String>,
}

#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    Warning,
    Problem,
}

#[derive(Serialize, Debug, Clone)]
pub struct Finding {
    pub check: &'static str,
    pub severity: Severity,
    pub seen: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// What `seen` says in numbers and ids, for scripts (`days_left`, `main_pid`, …).
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub facts: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize, Debug)]
pub struct StatusReport {
    pub user: String,
    pub home: PathBuf,
    pub unit: String,
    pub healthy: bool,
    pub problems: usize,
    pub warnings: usize,
    pub findings: Vec<Finding>,
}

impl StatusReport {
    pub fn exit_code(&self) -> u8 {
        if self.problems > 0 {
            1
        } else if self.warnings > 0 {
            EXIT_WARNINGS
        } else {
            0
        }
    }
}

/// A monitoring plugin's UNKNOWN: `status --nagios` could not run at all.
pub const NAGIOS_UNKNOWN: u8 = 3;

/// `status`'s own exit code (0 healthy, 1 problems, 3 warnings only) as a monitoring plugin's:
/// 0 OK, 1 WARNING, 2 CRITICAL.
pub fn nagios_code(code: u8) -> u8 {
    match code {
        0 => 0,
        EXIT_WARNINGS => 1,
        _ => 2,
    }
}

struct Findings(Vec<Finding>);

impl Findings {
    fn ok(&mut self, check: &'static str, seen: impl Into<String>) {
        self.0.push(Finding {
            check,
            severity: Severity::Ok,
            seen: seen.into(),
            why: None,
            fix: None,
            facts: serde_json::Map::new(),
        });
    }

    fn add(
        &mut self,
        check: &'static str,
        severity: Severity,
        seen: impl Into<String>,
        why: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.0.push(Finding {
            check,
            severity,
            seen: seen.into(),
            why: Some(why.into()),
            fix: Some(fix.into()),
            facts: serde_json::Map::new(),
        });
    }

    /// Adds a fact to the finding added last.
    fn fact(&mut self, key: &str, value: impl Into<serde_json::Value>) {
        if let Some(last) = self.0.last_mut() {
            last.facts.insert(key.to_owned(), value.into());
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(crate) fn parse_time_ms(text: &str) -> Option<u64> {
    aws_smithy_types::DateTime::from_str(text, aws_smithy_types::date_time::Format::DateTime)
        .ok()
        .and_then(|d| d.to_millis().ok())
        .and_then(|ms| u64::try_from(ms).ok())
}

fn fingerprint_of_assignment(content: &[u8], variable: &str) -> Option<Fingerprint> {
    managed_files::assigned_value(content, variable).map(Fingerprint::of)
}

/// What `status` found: one report per gateway.
#[derive(Debug)]
pub struct StatusRun {
    pub reports: Vec<StatusReport>,
    /// AWSCURRENT as `--check-secret` read it (once), for the container reports too.
    secret: Option<Result<crate::aws::FetchedSecret>>,
}

impl StatusRun {
    /// 1 when any gateway has a problem, else 3 when any has a warning, else 0.
    pub fn exit_code(&self) -> u8 {
        let codes: Vec<u8> = self.reports.iter().map(StatusReport::exit_code).collect();
        if codes.contains(&1) {
            1
        } else {
            codes.into_iter().max().unwrap_or(0)
        }
    }
}

/// Diagnoses the host: the named unit, else every gateway of the user (user units of its
/// manager, and as root the system units that run as it), each with its own report. Errors only
/// for usage problems; everything else is a finding.
pub fn run(options: &StatusOptions) -> Result<StatusRun> {
    // Root's Docker is asked as root, before anything acts as a user.
    let containers = containers::gather(options);
    if !containers.is_empty() && !crate::sync::containers::manager_to_ask(options.user.as_deref()) {
        let secret = options.check_secret.as_deref().map(|id| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| crate::error::Error::failed(e.to_string()))?;
            runtime.block_on(async {
                let config = aws::load_config(&options.aws, id, true).await?;
                aws::fetch_secret(&config, id, &options.json_key, "AWSCURRENT").await
            })
        });
        return Ok(StatusRun {
            reports: containers::reports(containers, secret.as_ref()),
            secret: None,
        });
    }
    let mut run = systemd_run(options)?;
    if !containers.is_empty() {
        let secret = run.secret.take();
        let mut reports = containers::reports(containers, secret.as_ref());
        // Root's default status on a host whose gateways are containers: the default unit that
        // does not exist (or root's manager that is not running) is not a finding.
        if options.user.is_none() {
            run.reports.retain(|r| !no_unit_here(r));
        }
        reports.append(&mut run.reports);
        run.reports = reports;
    }
    Ok(run)
}

/// A report that only says there is no gateway unit (or no manager to ask).
fn no_unit_here(report: &StatusReport) -> bool {
    report.findings.iter().any(|f| {
        f.check == "gateway-unit"
            && f.severity == Severity::Problem
            && (f.seen.ends_with(&format!("not found for {}", report.user))
                || f.why
                    .as_deref()
                    .is_some_and(|w| w.contains("cannot be reached")))
    })
}

/// [`run`] for the systemd gateways.
fn systemd_run(options: &StatusOptions) -> Result<StatusRun> {
    let resolved =
        crate::host::privileges::resolve(options.user.as_deref(), options.home.as_deref())?;
    // Root diagnosing another user: fix lines are pasted as root (see `FixContext`).
    let as_user = (nix::unistd::geteuid().is_root() && resolved.uid != 0).then_some(resolved.uid);
    let system_units: Vec<String> = if nix::unistd::geteuid().is_root() && resolved.uid != 0 {
        Systemctl::system(resolved.clone())
            .gateways()
            .unwrap_or_default()
            .into_iter()
            .filter(|g| g.user == resolved.name)
            .map(|g| g.unit)
            .collect()
    } else {
        Vec::new()
    };
    let aws = options.check_secret.as_deref().map(|id| (&options.aws, id));
    let session = session::enter_keeping_root(
        options.user.as_deref(),
        options.home.as_deref(),
        aws,
        !system_units.is_empty(),
    )?;
    let target = session.target.clone();
    // The user's Quadlet gateways (asked as the user: their files, manager and Podman).
    let quadlets = containers::gather_quadlets(&target, options, as_user);
    let units: Vec<(String, Manager)> = if options.discover {
        let mut units: Vec<(String, Manager)> = Systemctl::new(target.clone())
            .gateways()
            .unwrap_or_default()
            .into_iter()
            .map(|g| (g.unit, Manager::User))
            .collect();
        units.extend(system_units.iter().map(|u| (u.clone(), Manager::System)));
        if units.is_empty() && quadlets.is_empty() {
            units.push((options.unit.clone(), Manager::User));
        }
        units
    } else if !quadlets.is_empty() {
        Vec::new()
    } else if system_units.contains(&options.unit) {
        vec![(options.unit.clone(), Manager::System)]
    } else {
        vec![(options.unit.clone(), Manager::User)]
    };
    // The secret is read once, whatever the number of gateways.
    let secret =
        match (&options.check_secret, &session.aws) {
            (Some(secret_id), Some((runtime, config))) => Some(runtime.block_on(
                aws::fetch_secret(config, secret_id, &options.json_key, "AWSCURRENT"),
            )),
            _ => None,
        };
    let mut reports = containers::reports(quadlets, secret.as_ref());
    reports.extend(units.iter().map(|(unit, manager)| {
        let one = StatusOptions {
            unit: unit.clone(),
            // --state-dir names one gateway's directory.
            state_dir: options.state_dir.clone().filter(|_| units.len() == 1),
            ..options.clone()
        };
        let systemctl = Systemctl::for_manager(target.clone(), *manager);
        check_unit(&one, &target, &systemctl, secret.as_ref(), as_user)
    }));
    Ok(StatusRun { reports, secret })
}

/// One gateway unit under check: its options, user, manager and paths.
struct UnitUnderCheck<'a> {
    options: &'a StatusOptions,
    target: &'a TargetUser,
    systemctl: &'a Systemctl,
    paths: &'a ManagedPaths,
    openclaw_state: &'a Path,
}

/// Every check of one gateway.
fn check_unit(
    options: &StatusOptions,
    target: &TargetUser,
    systemctl: &Systemctl,
    secret: Option<&Result<aws::FetchedSecret>>,
    as_user: Option<u32>,
) -> StatusReport {
    let target = target.clone();
    let state_dir = crate::openclaw::state_dir::for_unit(
        systemctl,
        &options.unit,
        &target.home,
        options.state_dir.as_deref(),
    );
    let openclaw_state = state_dir.path.clone();
    let paths = crate::host::systemd::managed_paths(
        &target.home,
        &options.unit,
        &openclaw_state,
        systemctl.manager(),
    );
    let mut findings = Findings(Vec::new());
    let unit = options.unit.as_str();
    check_state_dir(&mut findings, &state_dir, unit);

    // The state file and the drop-in say which variable and token we expect.
    let (applied, state_warning) = state::load(&paths.state_file());
    let dropin = read_dropin(&paths);

    // Asked once: the gateway checks and the OpenClaw version lookup both use it.
    let shown = systemctl.show(unit);
    let by_reference = reference::in_use(applied.as_ref(), &openclaw_state);
    if by_reference {
        let running = shown
            .as_ref()
            .is_ok_and(|s| s.is_active() && s.main_pid != 0);
        reference::check(
            &mut findings,
            systemctl,
            unit,
            &paths,
            &openclaw_state,
            target.uid,
            running,
        );
    } else {
        let checked = UnitUnderCheck {
            options,
            target: &target,
            systemctl,
            paths: &paths,
            openclaw_state: &openclaw_state,
        };
        check_env_delivery(
            &mut findings,
            &checked,
            &shown,
            applied.as_ref(),
            dropin.as_ref(),
        );
    }
    check_stores(&mut findings, &openclaw_state, &paths.home, by_reference);
    check_files(&mut findings, &paths, target.uid);
    check_state(&mut findings, applied.as_ref(), state_warning, unit);
    let expires_at =
        check_secret_current(&mut findings, options, &target, secret, applied.as_ref());
    check_expiry(
        &mut findings,
        options,
        applied.as_ref(),
        expires_at.as_deref(),
    );
    check_legacy_timer(&mut findings, &target, &paths.home);
    // Linger matters for a user manager only.
    let unattended = ["INVOCATION_ID", "AWS_SSM_INSTANCE_ID"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()));
    if systemctl.manager() == Manager::User {
        check_linger(
            &mut findings,
            &target.name,
            Path::new(LINGER_DIR),
            // Unattended: under systemd (the timer) or SSM Run Command.
            unattended,
        );
    }
    let fragment_path = shown.as_ref().ok().map(|s| s.fragment_path.as_str());
    check_claude_credentials(&mut findings, fragment_path, &paths.home);
    let context = FixContext::for_unit(options, &target, &paths, systemctl, as_user);
    findings.apply_fixes(&context);
    findings.into_report(target, unit)
}

/// Where OpenClaw's state directory is, and whether that is a guess.
fn check_state_dir(
    findings: &mut Findings,
    state_dir: &crate::openclaw::state_dir::StateDir,
    unit: &str,
) {
    let seen = format!(
        "OpenClaw's state directory {} (from {})",
        state_dir.path.display(),
        state_dir.source
    );
    if state_dir.source.contains("could not be read") {
        findings.add(
            "state-dir",
            Severity::Warning,
            seen,
            "the gateway's environment decides where OpenClaw keeps its state; without it this is a guess",
            format!("make the user manager reachable (linger), or pass --state-dir; see `systemctl --user show {unit}`"),
        );
    } else {
        findings.ok("state-dir", seen);
    }
}

/// The variable we expect the gateway to get: the state file's, else the one the drop-in sets,
/// else `ANTHROPIC_OAUTH_TOKEN`.
fn expected_variable(
    applied: Option<&state::AppliedState>,
    dropin: Option<&fsutil::ExistingFile>,
) -> String {
    applied
        .map(|s| s.variable.clone())
        .or_else(|| {
            dropin.and_then(|d| {
                MANAGED_VARIABLES
                    .iter()
                    .find(|v| managed_files::assigned_value(&d.content, v).is_some())
                    .map(|v| v.to_string())
            })
        })
        .unwrap_or_else(|| "ANTHROPIC_OAUTH_TOKEN".to_owned())
}

/// The checks of `env` delivery: the unit and our drop-in, the running gateway's environment
/// and its own view, and environment files that override the drop-in.
fn check_env_delivery(
    findings: &mut Findings,
    checked: &UnitUnderCheck,
    shown: &Result<crate::host::systemd::UnitStatus>,
    applied: Option<&state::AppliedState>,
    dropin: Option<&fsutil::ExistingFile>,
) {
    let variable = expected_variable(applied, dropin);
    let dropin_fingerprint = dropin.and_then(|d| fingerprint_of_assignment(&d.content, &variable));
    check_gateway(
        findings,
        checked.target,
        shown,
        &checked.options.unit,
        checked.paths,
        &variable,
        dropin_fingerprint.as_ref(),
        applied,
    );
    if let Some(status) = shown
        .as_ref()
        .ok()
        .filter(|s| s.is_active() && s.main_pid != 0)
    {
        check_gateway_runtime(
            findings,
            status,
            checked.options,
            checked.paths,
            checked.openclaw_state,
            checked.systemctl,
        );
    }
    check_environment_files(
        findings,
        checked.paths,
        &variable,
        dropin_fingerprint.as_ref(),
    );
}

/// With `--check-secret`: whether AWSCURRENT is the version applied. Returns the secret's
/// `expires_at`, for the expiry check.
fn check_secret_current(
    findings: &mut Findings,
    options: &StatusOptions,
    target: &TargetUser,
    secret: Option<&Result<aws::FetchedSecret>>,
    applied: Option<&state::AppliedState>,
) -> Option<String> {
    let (Some(secret_id), Some(fetched)) = (&options.check_secret, secret) else {
        return None;
    };
    let secret = match fetched {
        Ok(secret) => secret,
        Err(e) => {
            let (why, fix) = secret_error_advice(&e.to_string(), secret_id);
            findings.add("secret-current", Severity::Problem, e.to_string(), why, fix);
            return None;
        }
    };
    match applied {
        Some(state)
            if state.version_id == secret.version_id
                && state.fingerprint == *secret.token.fingerprint() =>
        {
            findings.ok(
                "secret-current",
                format!(
                    "AWSCURRENT {} ({}) is applied",
                    secret.version_id,
                    secret.token.fingerprint()
                ),
            )
        }
        _ => findings.add(
            "secret-current",
            Severity::Warning,
            format!(
                "AWSCURRENT is {} ({}); applied: {}",
                secret.version_id,
                secret.token.fingerprint(),
                applied.map_or("nothing".into(), |s| format!(
                    "{} ({})",
                    s.version_id, s.fingerprint
                ))
            ),
            "the host runs an older token than Secrets Manager holds",
            format!(
                "openclaw-token-sync sync --secret-id {secret_id} --user {}",
                target.name
            ),
        ),
    }
    findings.fact("current_version_id", secret.version_id.as_str());
    findings.fact("applied_version_id", applied.map(|s| s.version_id.clone()));
    secret.metadata.expires_at.clone()
}

impl Findings {
    /// Makes every fix line a command to paste as it is on this host.
    fn apply_fixes(&mut self, context: &FixContext) {
        for finding in &mut self.0 {
            if let Some(fix) = &mut finding.fix {
                *fix = context.apply(fix);
            }
        }
    }

    /// One gateway's report: the findings and their counts.
    fn into_report(self, target: TargetUser, unit: &str) -> StatusReport {
        let problems = self
            .0
            .iter()
            .filter(|f| f.severity == Severity::Problem)
            .count();
        let warnings = self
            .0
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count();
        StatusReport {
            user: target.name,
            home: target.home,
            unit: unit.to_owned(),
            healthy: problems == 0 && warnings == 0,
            problems,
            warnings,
            findings: self.0,
        }
    }
}

/// OpenClaw's default gateway unit, which needs no `--unit`.
const DEFAULT_UNIT: &str = "openclaw-gateway.service";

/// What makes a fix line a command to paste as it is on this host: the user it was for (pasted
/// as root, a bare `sync` would sync root's gateways), an explicit home, a unit other than the
/// default, and the secret (from `--secret-id`, else the state file's ARN) for `<secret>`.
/// When root diagnoses another user (`as_user`, their uid), the commands that act in the
/// user's world run in it: `systemctl --user` through the user's own manager
/// (`sudo -u U XDG_RUNTIME_DIR=/run/user/UID`), their journal by uid, `openclaw` in their login
/// shell; as root, bare, they would act on root's manager and root's OpenClaw.
struct FixContext {
    user: String,
    home: Option<PathBuf>,
    unit: Option<String>,
    secret: Option<String>,
    as_user: Option<u32>,
    /// The gateway is a unit of the system manager: `systemctl`/`journalctl` without `--user`.
    system: bool,
}

impl FixContext {
    /// The context of one gateway's fix lines.
    fn for_unit(
        options: &StatusOptions,
        target: &TargetUser,
        paths: &ManagedPaths,
        systemctl: &Systemctl,
        as_user: Option<u32>,
    ) -> FixContext {
        FixContext {
            user: target.name.clone(),
            home: options.home.clone(),
            unit: (!options.discover || options.unit != DEFAULT_UNIT).then(|| options.unit.clone()),
            secret: options.check_secret.clone().or_else(|| {
                crate::host::state::load(&paths.state_file())
                    .0
                    .map(|s| s.secret_arn)
            }),
            as_user,
            system: systemctl.manager() == Manager::System,
        }
    }

    fn apply(&self, fix: &str) -> String {
        const SYNC: &str = "openclaw-token-sync sync";
        let mut fixed = self.in_users_world(fix);
        if let Some(at) = fixed.find(SYNC) {
            let mut flags = String::new();
            if !fixed.contains("--user ") {
                flags.push_str(&format!(" --user {}", self.user));
            }
            if let Some(home) = self.home.as_ref().filter(|_| !fixed.contains("--home ")) {
                flags.push_str(&format!(" --home {}", home.display()));
            }
            if let Some(unit) = self.unit.as_ref().filter(|_| !fixed.contains("--unit ")) {
                flags.push_str(&format!(" --unit {unit}"));
            }
            fixed.insert_str(at + SYNC.len(), &flags);
        }
        match &self.secret {
            Some(secret) => fixed.replace("<secret>", secret),
            None => fixed,
        }
    }

    /// The user's own commands, as root pastes them (see the type's docs); a system unit's
    /// through the system manager.
    fn in_users_world(&self, fix: &str) -> String {
        let user = &self.user;
        if self.system {
            let fix = fix
                .replace("systemctl --user ", "systemctl ")
                .replace("journalctl --user -u ", "journalctl -u ");
            return match self.as_user {
                Some(_) => fix.replace(
                    "openclaw doctor --fix",
                    &format!("sudo -iu {user} openclaw doctor --fix"),
                ),
                None => fix,
            };
        }
        let Some(uid) = self.as_user else {
            return fix.to_owned();
        };
        fix.replace(
            "systemctl --user ",
            &format!("sudo -u {user} XDG_RUNTIME_DIR=/run/user/{uid} systemctl --user "),
        )
        // As root, `--user-unit` would also match `_UID=0`: the fields, spelled out.
        .replace(
            "journalctl --user -u ",
            &format!("journalctl _UID={uid} _SYSTEMD_USER_UNIT="),
        )
        .replace(
            "openclaw doctor --fix",
            &format!("sudo -iu {user} openclaw doctor --fix"),
        )
    }
}

/// Where the token of the drop-in is: the drop-in itself, or for a system unit root's 0600
/// environment file its drop-in names (read as root).
fn read_dropin(paths: &ManagedPaths) -> Option<fsutil::ExistingFile> {
    if let Some(env_file) = &paths.system_env {
        crate::host::privileges::as_root(|| fsutil::read_managed(env_file))
            .ok()
            .flatten()
    } else {
        fsutil::read_managed(&paths.dropin).ok().flatten()
    }
}

/// The unit, our drop-in and the running gateway's process environment (`env` delivery).
#[allow(clippy::too_many_arguments)]
fn check_gateway(
    findings: &mut Findings,
    target: &TargetUser,
    shown: &Result<crate::host::systemd::UnitStatus>,
    unit: &str,
    paths: &ManagedPaths,
    variable: &str,
    dropin_fingerprint: Option<&Fingerprint>,
    applied: Option<&state::AppliedState>,
) {
    let Some(status) = check_gateway_unit(findings, target, shown, unit) else {
        return;
    };
    check_dropin_loaded(findings, status, unit, paths, variable, dropin_fingerprint);
    if !status.is_active() || status.main_pid == 0 {
        return;
    }
    check_gateway_environment(
        findings,
        status,
        unit,
        variable,
        dropin_fingerprint,
        applied,
    );
}

/// Whether the unit exists and runs, with its state and main PID as facts; its status when the
/// gateway can be checked further.
fn check_gateway_unit<'a>(
    findings: &mut Findings,
    target: &TargetUser,
    shown: &'a Result<crate::host::systemd::UnitStatus>,
    unit: &str,
) -> Option<&'a crate::host::systemd::UnitStatus> {
    let status = match shown {
        Ok(status) => status,
        Err(e) => {
            findings.add("gateway-unit", Severity::Problem, e.to_string(), "the user's systemd manager cannot be reached, so the gateway cannot be checked or restarted", format!("start the user manager: `loginctl enable-linger {}`", target.name));
            return None;
        }
    };
    if !status.exists() {
        findings.add("gateway-unit", Severity::Problem, format!("{unit} not found for {}", target.name), "without the unit no gateway runs for this user", format!("install the gateway (`openclaw gateway install`) or pass --unit; check `systemctl --user list-unit-files '{unit}'`"));
        return None;
    }
    match status.active_state.as_str() {
        "active" => findings.ok(
            "gateway-unit",
            format!("{unit} active, MainPID {}", status.main_pid),
        ),
        "inactive" => findings.add(
            "gateway-unit",
            Severity::Warning,
            format!("{unit} is stopped"),
            "no gateway is running",
            format!("systemctl --user start {unit}"),
        ),
        other => findings.add(
            "gateway-unit",
            Severity::Problem,
            format!("{unit} is {other}"),
            "the gateway is not running properly",
            format!("journalctl --user -u {unit} -n 50; then systemctl --user restart {unit}"),
        ),
    }

    findings.fact("active_state", status.active_state.as_str());
    findings.fact("main_pid", status.main_pid);
    Some(status)
}

/// Whether our drop-in sets the variable and systemd loaded it as it is on disk.
fn check_dropin_loaded(
    findings: &mut Findings,
    status: &crate::host::systemd::UnitStatus,
    unit: &str,
    paths: &ManagedPaths,
    variable: &str,
    dropin_fingerprint: Option<&Fingerprint>,
) {
    let dropin_name = paths.dropin.display().to_string();
    if dropin_fingerprint.is_none() {
        findings.add(
            "drop-in",
            Severity::Problem,
            format!("{dropin_name} is missing or sets no {variable}"),
            "the gateway gets no token from this tool",
            "openclaw-token-sync sync --secret-id <secret>",
        );
    } else if !status.drop_in_paths.iter().any(|p| p == &dropin_name) {
        findings.add("drop-in", Severity::Problem, format!("{dropin_name} exists but {unit} has not loaded it"), "systemd uses the unit as it was loaded; the token in the drop-in does not reach the gateway", format!("systemctl --user daemon-reload && systemctl --user restart {unit}"));
    } else if status.need_daemon_reload {
        findings.add(
            "drop-in",
            Severity::Warning,
            format!("{unit} needs a daemon-reload"),
            "a unit file or drop-in changed on disk after systemd loaded it",
            format!("systemctl --user daemon-reload && systemctl --user restart {unit}"),
        );
    } else {
        findings.ok("drop-in", format!("{dropin_name} loaded"));
    }
}

/// The running gateway's process environment: the variable set, to the token synced, and not
/// next to the other managed variable.
fn check_gateway_environment(
    findings: &mut Findings,
    status: &crate::host::systemd::UnitStatus,
    unit: &str,
    variable: &str,
    dropin_fingerprint: Option<&Fingerprint>,
    applied: Option<&state::AppliedState>,
) {
    match systemd::environ_fingerprint(status.main_pid, variable) {
        Err(e) => findings.add(
            "gateway-environment",
            Severity::Problem,
            e.to_string(),
            "the gateway's environment cannot be read",
            "run status as root with --user, or as the gateway's user",
        ),
        Ok(None) => findings.add(
            "gateway-environment",
            Severity::Problem,
            format!("pid {} runs without {variable}", status.main_pid),
            "OpenClaw falls back to cached profiles, which is what fails after a rotation",
            format!("systemctl --user daemon-reload && systemctl --user restart {unit}"),
        ),
        Ok(Some(running)) => {
            let expected = applied.map(|s| &s.fingerprint).or(dropin_fingerprint);
            match expected {
                Some(expected) if &running != expected => findings.add(
                    "gateway-environment",
                    Severity::Problem,
                    format!("pid {} has {variable} = {running}; the drop-in/state say {expected}", status.main_pid),
                    "the running gateway uses another token than the one synced",
                    "openclaw-token-sync sync --force --secret-id <secret> (and check the environment-file findings)",
                ),
                _ => findings.ok("gateway-environment", format!("pid {} has {variable} = {running}", status.main_pid)),
            }
        }
    }
    let other = MANAGED_VARIABLES
        .iter()
        .find(|v| **v != variable)
        .copied()
        .unwrap_or_default();
    if let Ok(Some(_)) = systemd::environ_fingerprint(status.main_pid, other) {
        findings.add("both-variables", Severity::Warning, format!("the gateway has both {variable} and {other}"), "OpenClaw prefers ANTHROPIC_OAUTH_TOKEN; a stale second variable hides which one is in use", format!("remove {other} from the unit's Environment=/EnvironmentFile= and restart"));
    }
}

/// The token the gateway is meant to run with: the managed assignment in `<state>/.env`, else
/// in our drop-in (the file the gateway reads first on every supported release).
fn token_on_disk(paths: &ManagedPaths) -> Option<Token> {
    [&paths.dot_env, &paths.dropin]
        .into_iter()
        .find_map(|path| {
            let file = if path == &paths.dropin {
                read_dropin(paths)?
            } else {
                fsutil::read_managed(path).ok().flatten()?
            };
            MANAGED_VARIABLES.iter().find_map(|variable| {
                let value = managed_files::assigned_value(&file.content, variable)?;
                let text = Zeroizing::new(String::from_utf8(value.to_vec()).ok()?);
                Token::parse(text).ok()
            })
        })
}

/// The gateway's own view (its RPC) and a live probe, as `sync` proves it after applying.
fn check_gateway_runtime(
    findings: &mut Findings,
    status: &crate::host::systemd::UnitStatus,
    options: &StatusOptions,
    paths: &ManagedPaths,
    state_dir: &Path,
    systemctl: &Systemctl,
) {
    let unit = options.unit.as_str();
    let Some(token) = token_on_disk(paths) else {
        return; // the drop-in finding already says there is no token
    };
    let proof_options = ProofOptions {
        user_name: systemctl.user_name().to_owned(),
        cli_state: paths.cli_state(),
        home: paths.home.clone(),
        agents: proof::agent_ids(&stores::discover_agents(state_dir, &paths.home).0),
        probe: options.probe,
        base_url: options.anthropic_base_url.clone(),
        deadline: std::time::Instant::now() + std::time::Duration::from_secs(10),
        already_probed: None,
    };
    let proof = match proof::prove(systemctl, unit, &token, state_dir, proof_options) {
        Ok(proof) => proof,
        Err(e) => {
            findings.add(
                "gateway-auth",
                Severity::Problem,
                format!("pid {}: {}", status.main_pid, e.message()),
                "the gateway's agents do not run on the synced token, whatever its process environment says",
                "openclaw-token-sync sync --force --secret-id <secret>, then check `journalctl --user -u UNIT`".replace("UNIT", unit),
            );
            return;
        }
    };
    match &proof.rpc_error {
        Some(why) => findings.add(
            "gateway-auth",
            Severity::Warning,
            format!("the gateway's RPC was not usable: {why}"),
            "without the gateway's own view only its process environment is known",
            "check `openclaw gateway call health --json` as the gateway's user",
        ),
        None if proof.method == ProofMethod::ProcessEnvironment => findings.ok(
            "gateway-auth",
            format!("{} ({})", proof.describe(), proof.notes.join("; ")),
        ),
        None => findings.ok("gateway-auth", proof.describe()),
    }
    let Some(probe) = &proof.probe else {
        return;
    };
    let seen = format!(
        "{} {}: {}",
        token.fingerprint(),
        match probe.finding.verdict {
            Verdict::Accepted => "accepted",
            Verdict::Rejected => "rejected",
            Verdict::Inconclusive => "inconclusive",
        },
        proof.describe()
    );
    match probe.finding.verdict {
        Verdict::Accepted => findings.ok("token-probe", seen),
        Verdict::Rejected => findings.add(
            "token-probe",
            Severity::Problem,
            seen,
            "Anthropic refuses the token the gateway runs with: every agent turn fails",
            "store a valid token (`claude setup-token`, then `openclaw-token-sync put`) and sync",
        ),
        Verdict::Inconclusive => findings.add(
            "token-probe",
            Severity::Warning,
            seen,
            "the probe got no answer that proves the token works or not",
            "check the host's route to Anthropic (or the configured baseUrl) and run status again",
        ),
    }
}

/// Why a secret could not be read, and the next command, from what AWS answered.
fn secret_error_advice(error: &str, secret_id: &str) -> (&'static str, String) {
    if error.contains("marked for deletion") || error.contains("marked deleted") {
        (
            "the secret is scheduled for deletion: Secrets Manager refuses to read it",
            format!("from an account that may manage the secret (not this host's role): aws secretsmanager restore-secret --secret-id {secret_id}; then openclaw-token-sync sync --secret-id {secret_id}"),
        )
    } else if error.contains("ResourceNotFoundException") {
        (
            "no such secret in the region and account this host asked (see the error)",
            format!("check the secret id and the region (from an account that may list secrets: aws secretsmanager describe-secret --secret-id {secret_id}); with the secret's ARN the right region is used"),
        )
    } else if error.contains("AccessDenied") || error.contains("no AWS credentials found") {
        (
            "this host's credentials may not read the secret",
            "attach the permissions in `man openclaw-token-sync` (IAM) to the instance role"
                .to_owned(),
        )
    } else {
        (
            "Secrets Manager could not be asked (see the error)",
            "fix what the error names, then run status again".to_owned(),
        )
    }
}

fn check_environment_files(
    findings: &mut Findings,
    paths: &ManagedPaths,
    variable: &str,
    dropin: Option<&Fingerprint>,
) {
    let mut overriding = Vec::new();
    for path in [&paths.gateway_env, &paths.dot_env] {
        let Ok(Some(file)) = fsutil::read_managed(path) else {
            continue;
        };
        if let Some(found) = fingerprint_of_assignment(&file.content, variable) {
            if dropin.is_some_and(|d| d != &found) {
                overriding.push((
                    path,
                    format!("{} sets {variable} = {found}", path.display()),
                ));
            }
        }
    }
    let why = overriding
        .iter()
        .map(|(path, _)| {
            if *path == &paths.gateway_env {
                format!("{} is the unit's EnvironmentFile= and overrides Environment= lines of every drop-in", path.display())
            } else {
                format!("OpenClaw 2026.8.1+ reads {} at start and lets it override the process environment for the keys its unit manages", path.display())
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
        + ", so a stale token there wins";
    let overriding: Vec<String> = overriding.into_iter().map(|(_, seen)| seen).collect();
    if overriding.is_empty() {
        findings.ok(
            "environment-file-override",
            "no environment file overrides the drop-in",
        );
    } else {
        findings.add(
            "environment-file-override",
            Severity::Problem,
            overriding.join("; "),
            why,
            "openclaw-token-sync sync --force --secret-id <secret> (rewrites those lines), or delete them",
        );
    }
}

/// Stale Anthropic profiles and cooldowns in every agent's store (`by_reference`: our reference
/// profile is expected, not stale).
fn check_stores(findings: &mut Findings, state_dir: &Path, home: &Path, by_reference: bool) {
    let selector = document::ProfileSelector {
        keep_reference: by_reference,
        ..document::ProfileSelector::default()
    };
    let (agents, warnings) = stores::discover_agents(state_dir, home);
    for warning in warnings {
        findings.add(
            "agents",
            Severity::Warning,
            warning,
            "agents named only in openclaw.json are not found",
            "fix openclaw.json (`openclaw doctor`)",
        );
    }
    let mut clean_stores = 0;
    let now = now_ms();
    for agent in &agents {
        for detected in stores::stores_in(agent, state_dir) {
            if check_store(findings, agent, &detected, &selector, now) {
                clean_stores += 1;
            }
        }
    }
    let without = if by_reference {
        "without stale Anthropic profiles (the reference aside)"
    } else {
        "without Anthropic profiles"
    };
    findings.ok(
        "stores",
        format!(
            "{} agent(s), {clean_stores} store(s) {without}",
            agents.len()
        ),
    );
}

/// One agent's store: a JSON leftover beside SQLite, whether it can be read and understood, stale
/// profiles, cooldowns. Whether it holds no Anthropic profile to remove.
fn check_store(
    findings: &mut Findings,
    agent: &stores::Agent,
    detected: &stores::DetectedStore,
    selector: &document::ProfileSelector,
    now: u64,
) -> bool {
    let store = &detected.store;
    let place = format!(
        "agent {} ({} {})",
        agent.id,
        store.layout(),
        store.location().display()
    );
    if let Some(note) = &detected.note {
        findings.add(
            "leftover-json",
            Severity::Problem,
            note.clone(),
            "OpenClaw refuses to run while a JSON store stands beside its SQLite store",
            "openclaw doctor --fix",
        );
    }
    let documents = match store.documents() {
        Ok(Some(documents)) => documents,
        Ok(None) => return false,
        Err(e) => {
            findings.add(
                "store-unreadable",
                Severity::Problem,
                e.to_string(),
                "a store this tool cannot read is one it cannot clean",
                "fix or remove the file (`openclaw doctor --fix`)",
            );
            return false;
        }
    };
    let mut clean = false;
    let state_text = documents.state.as_deref().map(|s| s.as_slice());
    match document::clean_documents(&documents.profiles, state_text, selector) {
        Err(problem) => findings.add("store-unreadable", Severity::Problem, format!("{place}: {problem}"), "a store this tool cannot understand is left as it is", "fix or remove the file (`openclaw doctor --fix`)"),
        Ok(cleaned) if !cleaned.cleaning.removed_profiles.is_empty() => findings.add(
            "stale-profiles",
            Severity::Problem,
            format!("{place}: {}", cleaned.cleaning.removed_profiles.join(", ")),
            "any Anthropic profile wins over ANTHROPIC_OAUTH_TOKEN; a stale one fails with `OAuth token refresh failed for anthropic`",
            "openclaw-token-sync sync --force --secret-id <secret>",
        ),
        Ok(_) => clean = true,
    }
    let stats = state_text.unwrap_or(&documents.profiles);
    if let Ok(cooling) = document::cooldowns(stats, now) {
        for c in cooling {
            let minutes = (c.until_ms - now).div_ceil(60_000);
            findings.add(
                "cooldown",
                Severity::Warning,
                format!(
                    "{place}: {} cooling down for {minutes} more minute(s){}",
                    c.profile,
                    c.reason.map(|r| format!(" ({r})")).unwrap_or_default()
                ),
                "OpenClaw skips a profile in cooldown; requests fall to the next profile or fail",
                "wait, or reset its usageStats entry with OpenClaw (`openclaw models auth`)",
            );
        }
    }
    clean
}

fn check_files(findings: &mut Findings, paths: &ManagedPaths, uid: u32) {
    let mut bad = Vec::new();
    let files = [
        &paths.dropin,
        &paths.legacy_env,
        &paths.gateway_env,
        &paths.dot_env,
        &paths.state_file(),
    ];
    // A system unit's drop-in is root's, in a 0755 directory of the system's.
    let dirs: &[&PathBuf] = if paths.system_dropin {
        &[&paths.state_dir]
    } else {
        &[&paths.dropin_dir, &paths.state_dir]
    };
    for (path, want_mode) in files
        .iter()
        .map(|p| (*p, 0o600))
        .chain(dirs.iter().map(|p| (*p, 0o700)))
    {
        let uid = if paths.system_dropin && *path == paths.dropin {
            0
        } else {
            uid
        };
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            bad.push(format!("{} is a symlink", path.display()));
            continue;
        }
        let mode = meta.mode() & 0o777;
        if mode & !want_mode != 0 {
            bad.push(format!(
                "{} has mode {mode:o} (want {want_mode:o})",
                path.display()
            ));
        }
        if meta.uid() != uid {
            bad.push(format!(
                "{} is owned by uid {} (want {uid})",
                path.display(),
                meta.uid()
            ));
        }
        if meta.is_file() && meta.nlink() > 1 {
            bad.push(format!(
                "{} has {} hard links",
                path.display(),
                meta.nlink()
            ));
        }
    }
    if bad.is_empty() {
        findings.ok(
            "file-permissions",
            "managed files 0600, directories 0700, owned by the user, no links",
        );
    } else {
        findings.add("file-permissions", Severity::Problem, bad.join("; "), "these files hold the token; other users must not read them, and sync refuses links", "openclaw-token-sync sync --force (rewrites with the right mode and owner); remove links by hand");
    }
}

fn check_state(
    findings: &mut Findings,
    applied: Option<&state::AppliedState>,
    warning: Option<String>,
    unit: &str,
) {
    if let Some(warning) = warning {
        findings.add(
            "state",
            Severity::Warning,
            warning,
            "the last applied version is unknown",
            "the next sync rewrites it",
        );
        return;
    }
    match applied {
        None => findings.add(
            "state",
            Severity::Warning,
            "no state file: this host was never synced",
            "without a sync the gateway may run a stale token",
            "openclaw-token-sync sync --secret-id <secret>",
        ),
        Some(s) if s.gateway != GatewayOutcome::Verified => findings.add(
            "state",
            Severity::Warning,
            format!(
                "version {} ({}) applied at {}; the gateway was {}",
                s.version_id,
                s.fingerprint,
                s.applied_at,
                s.gateway.describe()
            ),
            "the files hold the token but the gateway was not proven to run with it",
            format!(
                "openclaw-token-sync sync --secret-id {} (restarts {unit} and verifies)",
                s.secret_arn
            ),
        ),
        Some(s) => findings.ok(
            "state",
            format!(
                "version {} ({}) applied and verified at {}",
                s.version_id, s.fingerprint, s.applied_at
            ),
        ),
    }
}

fn check_expiry(
    findings: &mut Findings,
    options: &StatusOptions,
    applied: Option<&state::AppliedState>,
    expires_at: Option<&str>,
) {
    let (expiry, source) = match expires_at.and_then(parse_time_ms) {
        Some(ms) => (ms, "expires_at in the secret".to_owned()),
        None => match applied
            .and_then(|s| s.version_created_at.as_deref())
            .and_then(parse_time_ms)
        {
            Some(created) => (
                created + options.token_lifetime_days * DAY_MS,
                format!("version created + {} days", options.token_lifetime_days),
            ),
            None => return,
        },
    };
    let now = now_ms();
    // Whole days, negative from the moment it expired (floor division).
    let days_left = (expiry as i64 - now as i64).div_euclid(DAY_MS as i64);
    if expiry <= now {
        findings.add("token-expiry", Severity::Problem, format!("the token expired {} day(s) ago ({source})", (now - expiry) / DAY_MS), "an expired token fails every request", "create a new token (`claude setup-token`), then `openclaw-token-sync put --secret-id <secret>` or update the secret in the console");
    } else if expiry - now <= options.expiry_warning_days * DAY_MS {
        findings.add(
            "token-expiry",
            Severity::Warning,
            format!(
                "the token expires in {} day(s) ({source})",
                (expiry - now) / DAY_MS
            ),
            "after that every agent fails",
            "create a new token (`claude setup-token`) and rotate the secret before then",
        );
    } else {
        findings.ok(
            "token-expiry",
            format!("{} day(s) left ({source})", (expiry - now) / DAY_MS),
        );
    }
    findings.fact("days_left", days_left);
}

const LEGACY_NAMES: [&str; 2] = ["fetch-claude-token.timer", "fetch-claude-token.service"];

/// Where logind keeps one flag file per user with lingering enabled.
const LINGER_DIR: &str = "/var/lib/systemd/linger";

/// A user gateway runs without a login session only when the user lingers: otherwise its manager
/// (and the gateway) stops at logout and does not start at boot, and `systemctl --user` from SSM
/// or the timer finds no manager. A problem when this runs unattended (under the timer or SSM
/// Run Command), a warning otherwise (the operator's own session keeps the manager alive).
fn check_linger(findings: &mut Findings, user: &str, linger_dir: &Path, unattended: bool) {
    if linger_dir.join(user).exists() {
        findings.ok(
            "linger",
            format!("lingering is enabled for {user}: its gateway runs without a login session"),
        );
        return;
    }
    findings.add(
        "linger",
        if unattended {
            Severity::Problem
        } else {
            Severity::Warning
        },
        format!("lingering is not enabled for {user}"),
        "without it the user's systemd manager, and the gateway with it, stops at logout and does not start at boot; `systemctl --user` from SSM or the timer then finds no manager",
        format!("sudo loginctl enable-linger {user}"),
    );
}

fn check_legacy_timer(findings: &mut Findings, target: &TargetUser, home: &Path) {
    let systemctl = Systemctl::new(target.clone());
    let timer_state = systemctl.active_state_of(LEGACY_NAMES[0]);
    let mut leftovers: Vec<String> = Vec::new();
    for dir in [
        home.join(".config/systemd/user"),
        PathBuf::from("/etc/systemd/system"),
    ] {
        for name in LEGACY_NAMES {
            let path = dir.join(name);
            if path.exists() {
                leftovers.push(path.display().to_string());
            }
        }
    }
    for script in [
        "/usr/local/bin/fetch-claude-token.sh",
        "/usr/local/bin/fetch-claude-token",
    ] {
        if Path::new(script).exists() {
            leftovers.push(script.to_owned());
        }
    }
    if timer_state == "active" {
        findings.add(
            "legacy-timer",
            Severity::Problem,
            format!(
                "fetch-claude-token.timer is active ({})",
                leftovers.join(", ")
            ),
            "the old script rewrites the token files on its own schedule and fights this tool",
            "systemctl --user disable --now fetch-claude-token.timer (or the system timer)",
        );
    } else if !leftovers.is_empty() {
        findings.add(
            "legacy-timer",
            Severity::Warning,
            format!(
                "leftovers of the old fetch-claude-token script: {}",
                leftovers.join(", ")
            ),
            "an inactive leftover can be re-enabled by mistake",
            "remove them once this tool runs from its own timer",
        );
    } else {
        findings.ok("legacy-timer", "no fetch-claude-token timer");
    }
}

/// The OpenClaw version the unit runs: `OPENCLAW_SERVICE_VERSION=` in the unit file (its
/// `FragmentPath`), else the `package.json` beside the `openclaw/dist/index.js` its `ExecStart=`
/// names.
fn installed_openclaw_version(fragment_path: &str) -> Option<String> {
    let bytes = crate::host::fsutil::read_regular(Path::new(fragment_path)).ok()??;
    let text = String::from_utf8_lossy(&bytes);
    if let Some(start) = text.find("OPENCLAW_SERVICE_VERSION=") {
        let rest = &text[start + "OPENCLAW_SERVICE_VERSION=".len()..];
        return rest
            .split_whitespace()
            .next()
            .map(|v| v.trim_matches('"').to_owned());
    }
    let exec = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("ExecStart="))?;
    let script = exec
        .split_whitespace()
        .find(|w| w.ends_with("openclaw/dist/index.js"))?;
    let package = Path::new(script).parent()?.parent()?.join("package.json");
    let manifest: serde_json::Value =
        serde_json::from_slice(&crate::host::fsutil::read_regular(&package).ok()??).ok()?;
    manifest["version"].as_str().map(str::to_owned)
}

/// Releases before the SQLite stores (2026.6) import Claude Code's credentials as an
/// `anthropic:claude-cli` profile on every load; later ones do not (see README).
fn imports_claude_credentials(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (year, month) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (year, month) < (2026, 6)
}

fn check_claude_credentials(findings: &mut Findings, fragment_path: Option<&str>, home: &Path) {
    let credentials = home.join(".claude/.credentials.json");
    if std::fs::symlink_metadata(&credentials).is_err() {
        findings.ok("claude-credentials", "no ~/.claude/.credentials.json");
        return;
    }
    let version = fragment_path.and_then(installed_openclaw_version);
    let shown = version.clone().unwrap_or_else(|| "unknown".into());
    let severity = match version.as_deref() {
        Some(v) if !imports_claude_credentials(v) => Severity::Ok,
        _ => Severity::Warning,
    };
    if severity == Severity::Ok {
        findings.ok(
            "claude-credentials",
            format!(
                "{} exists; OpenClaw {shown} does not import it",
                credentials.display()
            ),
        );
        return;
    }
    findings.add(
        "claude-credentials",
        severity,
        format!("{} exists; installed OpenClaw: {shown}", credentials.display()),
        "older OpenClaw releases copy Claude Code's credentials into an anthropic:claude-cli profile on every load, which then wins over ANTHROPIC_OAUTH_TOKEN",
        "upgrade OpenClaw, or move ~/.claude/.credentials.json away from the gateway user's home",
    );
}

#[cfg(test)]
mod tests {
    use super::FixContext;

    #[test]
    fn a_deleted_secret_is_not_blamed_on_the_role_in_either_of_aws_wordings() {
        for message in [
            "InvalidRequestException: You can't perform this operation on the secret because it was marked for deletion.",
            "InvalidRequestException: You tried to perform the operation on a secret that's currently marked deleted.",
        ] {
            let (why, fix) = super::secret_error_advice(message, "prod/anthropic");
            assert!(why.contains("scheduled for deletion"), "{why}");
            assert!(fix.contains("restore-secret --secret-id prod/anthropic"), "{fix}");
        }
        let (why, _) = super::secret_error_advice("AccessDeniedException: no", "x");
        assert!(why.contains("credentials"), "{why}");
    }
    use std::path::PathBuf;

    #[test]
    fn fix_lines_carry_the_user_home_unit_and_secret_they_are_for() {
        let context = FixContext {
            user: "ubuntu".into(),
            home: Some(PathBuf::from("/srv/oc")),
            unit: Some("openclaw-gateway-work.service".into()),
            secret: Some("arn:aws:secretsmanager:eu-west-1:1:secret:prod/anthropic-AbCd".into()),
            as_user: None,
            system: false,
        };
        assert_eq!(
            context.apply("openclaw-token-sync sync --force --secret-id <secret> (rewrites it)"),
            "openclaw-token-sync sync --user ubuntu --home /srv/oc --unit openclaw-gateway-work.service --force --secret-id arn:aws:secretsmanager:eu-west-1:1:secret:prod/anthropic-AbCd (rewrites it)"
        );
        // Flags a template already has are not doubled.
        assert_eq!(
            FixContext {
                home: None,
                unit: None,
                ..context
            }
            .apply("openclaw-token-sync sync --secret-id x --user ubuntu"),
            "openclaw-token-sync sync --secret-id x --user ubuntu"
        );
    }

    #[test]
    fn fix_lines_for_another_user_run_in_that_users_world() {
        let context = FixContext {
            user: "ubuntu".into(),
            home: None,
            unit: None,
            secret: None,
            as_user: Some(1000),
            system: false,
        };
        assert_eq!(
            context.apply("journalctl --user -u openclaw-gateway.service -n 50; then systemctl --user restart openclaw-gateway.service"),
            "journalctl _UID=1000 _SYSTEMD_USER_UNIT=openclaw-gateway.service -n 50; then sudo -u ubuntu XDG_RUNTIME_DIR=/run/user/1000 systemctl --user restart openclaw-gateway.service"
        );
        assert_eq!(
            context.apply("fix or remove the file (`openclaw doctor --fix`)"),
            "fix or remove the file (`sudo -iu ubuntu openclaw doctor --fix`)"
        );
        // A system unit goes through the system manager, whoever pastes it.
        let system = FixContext {
            system: true,
            ..context
        };
        assert_eq!(
            system.apply(
                "journalctl --user -u gw.service -n 50; then systemctl --user restart gw.service"
            ),
            "journalctl -u gw.service -n 50; then systemctl restart gw.service"
        );
        // The user's own status (no `as_user`) keeps them as they are.
        let own = FixContext {
            as_user: None,
            system: false,
            ..system
        };
        assert_eq!(
            own.apply("systemctl --user start openclaw-gateway.service"),
            "systemctl --user start openclaw-gateway.service"
        );
    }

    #[test]
    fn linger_is_a_problem_only_when_unattended() {
        let dir = tempfile::tempdir().unwrap();
        let severity = |unattended| {
            let mut findings = Findings(Vec::new());
            check_linger(&mut findings, "ubuntu", dir.path(), unattended);
            findings.0[0].severity
        };
        assert_eq!(severity(true), Severity::Problem);
        assert_eq!(severity(false), Severity::Warning);
        std::fs::write(dir.path().join("ubuntu"), "").unwrap();
        assert_eq!(severity(true), Severity::Ok);
    }

    use super::*;

    #[test]
    fn claude_credential_import_is_assumed_before_2026_6() {
        assert!(imports_claude_credentials("2026.5.28"));
        assert!(imports_claude_credentials("2026.4.21"));
        assert!(!imports_claude_credentials("2026.6.5"));
        assert!(!imports_claude_credentials("2026.9.6"));
        assert!(!imports_claude_credentials("2027.1.1"));
    }
}
