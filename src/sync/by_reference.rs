//! `sync` in `secret-ref` delivery (README "Delivery: env or secret-ref", DESIGN.md section 10):
//! the token goes into one file the gateway's agents reference, and the gateway reloads it in
//! place. Gather → [`decide`] (pure) → apply → prove → state, like the `env` path:
//!
//! 1. Gathered without starting a process: the secret file, the stores (our reference profile in
//!    every agent, stale Anthropic profiles beside it), what `env` delivery left (drop-in,
//!    `~/.openclaw-env`, Anthropic lines in `<state>/.env` and the unit's env files), the state.
//! 2. Nothing to do when the file holds the token, every agent references it, nothing stale is
//!    left and the state records this version in this delivery.
//! 3. A new token is probed before it is written (one Anthropic rejects changes nothing).
//! 4. Apply: the file (atomically, 0600, 0700 directory, one link); stale profiles removed
//!    and, when the token changed, the reference's cooldown cleared; OpenClaw's own `secrets
//!    apply` sets the reference up when an agent lacks it; then `secrets.reload` (or, once after
//!    set-up on releases before [`RELOADS_NEW_PROVIDER`], a restart).
//! 5. Proof: the reload's `warningCount` is 0, `openclaw secrets audit` has no finding about the
//!    Anthropic credential, `models.probe` names the reference (2026.8.1+; before, the gateway's
//!    `models.authStatus` and our own probe), the PID is unchanged.
//! 6. Any failure after the write puts the last good token back and reloads (a rejected token is
//!    never left in place; at the first set-up there is none, and the file stays, since a
//!    reference to nothing would outrank the environment); only with `--restart-fallback` a failed reload is retried as a
//!    restart. The files `env` delivery left (our drop-in, with a daemon-reload;
//!    `~/.openclaw-env`; Anthropic lines of `<state>/.env` and the unit's env files) go once the
//!    gateway took the reference, before the proof; the state is written after it.
//!
//! Gateways of the system manager keep `env` delivery (their drop-in and root-only env file are
//! root's; the reference file would be the service user's): asked for `secret-ref`, the run says
//! so and fails before writing.

use super::report::{self, GatewayAction, Outcome, SyncReport};
use super::SyncOptions;
use crate::anthropic_probe::{self, Verdict};
use crate::aws::FetchedSecret;
use crate::error::{Error, Result};
use crate::host::fsutil;
use crate::host::managed_files::{self as files, FileAction, FileRole, ManagedPaths};
use crate::host::privileges::TargetUser;
use crate::host::state::{self, AppliedState, GatewayOutcome};
use crate::host::systemd::{Manager, Systemctl};
use crate::openclaw::gateway_rpc::{Call, GatewayCli, Release};
use crate::openclaw::proof::{self, GatewayProof, ProbeReport, ProbeVia, ProofMethod};
use crate::openclaw::secret_ref::{self, Delivery, ProviderConfig};
use crate::openclaw::stores::document::{Cleaning, ProfileSelector};
use crate::openclaw::stores::{self, Agent, CredentialStore};
use crate::secret::Token;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// The first release measured to pick up a provider `secrets apply` added without a restart
/// (2026.9.6; 2026.5.28 answers "Secret provider … is not configured" until one restart, and
/// releases between were not measured, so they get that one restart too).
pub const RELOADS_NEW_PROVIDER: Release = Release(2026, 9, 6);

/// How long one OpenClaw CLI command may take (a Node start is 3–5 s on two cores).
const CLI_LIMIT: Duration = Duration::from_secs(90);
const RPC_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything the decision needs, gathered without starting a process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    pub dry_run: bool,
    pub force: bool,
    /// The file holds the token, 0600, ours, one link.
    pub file_current: bool,
    /// Every agent's store has our reference.
    pub every_agent_refers: bool,
    /// Anthropic profiles other than the reference are left in some store.
    pub stale_profiles: bool,
    /// `env` delivery's files or lines are left.
    pub env_leftovers: bool,
    /// The state records this version, applied in this delivery, to this unit, and proven.
    pub state_current: bool,
    /// `openclaw.json` (where the state recorded it) names our provider as we set it up.
    pub provider_current: bool,
    /// A run of this tool stopped the gateway and did not start it again.
    pub restart_pending: bool,
}

impl Facts {
    /// The token in the file is not the one this tool last proved: probe it first, and clear
    /// the reference's cooldown.
    pub fn token_changed(&self) -> bool {
        !(self.file_current && self.state_current)
    }
}

/// What the run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Unchanged,
    DryRun,
    Apply,
}

/// The decision, pure.
pub fn decide(facts: &Facts) -> Action {
    let current = facts.file_current
        && facts.every_agent_refers
        && !facts.stale_profiles
        && !facts.env_leftovers
        && facts.state_current
        && facts.provider_current
        && !facts.restart_pending;
    if current && !facts.force {
        Action::Unchanged
    } else if facts.dry_run {
        Action::DryRun
    } else {
        Action::Apply
    }
}

/// What the gateway did with the reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Taken {
    Reloaded,
    /// Restarted once (a release that needs it after set-up, or `--restart-fallback`).
    Restarted,
    /// Not running: it reads the reference when started.
    NotRunning,
    /// `--no-restart` where the release needs a restart after set-up.
    NotRestarted,
}

/// A file `env` delivery wrote or edited, and what becomes of it.
struct Leftover {
    path: PathBuf,
    role: FileRole,
    /// `None`: removed (ours entirely); `Some`: the file without its Anthropic lines.
    stripped: Option<Zeroizing<Vec<u8>>>,
}

/// The stores of every agent, and what the run would remove from them.
struct Stores {
    agents: Vec<Agent>,
    found: Vec<(Agent, Box<dyn CredentialStore>)>,
}

/// Syncs one gateway of a user manager in `secret-ref` delivery.
pub(super) fn sync(
    options: &SyncOptions,
    target: &TargetUser,
    systemctl: &Systemctl,
    secret: &FetchedSecret,
    paths: &ManagedPaths,
    state_dir: crate::openclaw::state_dir::StateDir,
) -> Result<SyncReport> {
    if systemctl.manager() == Manager::System {
        return Err(Error::config(format!(
            "{} runs in the system manager: --delivery secret-ref serves gateways of a user manager (README \"Delivery: env or secret-ref\"); use --delivery env for it",
            options.unit
        )));
    }
    let openclaw = state_dir.path.clone();
    let token = &secret.token;
    let file = secret_ref::secret_file(&openclaw);
    let mut warnings = Vec::new();
    let stores = find_stores(&openclaw, &paths.home, &mut warnings);
    let leftovers = leftovers(paths)?;
    let (previous, state_warning) = state::load(&paths.state_file());
    warnings.extend(state_warning);
    // What this tool last proved in this delivery: the only token worth going back to.
    let proven = previous
        .as_ref()
        .filter(|p| p.delivery == Delivery::SecretRef && p.gateway == GatewayOutcome::Verified);
    let facts = Facts {
        dry_run: options.dry_run,
        force: options.force,
        file_current: file_holds(&file, token),
        every_agent_refers: stores.every_agent_refers(),
        stale_profiles: stores.stale(&selector(false))?,
        env_leftovers: !leftovers.is_empty(),
        state_current: proven.is_some_and(|p| {
            p.secret_arn == secret.arn
                && p.version_id == secret.version_id
                && &p.fingerprint == token.fingerprint()
                && p.unit == options.unit
        }),
        provider_current: proven
            .and_then(|p| p.config_path.as_deref())
            .is_some_and(|config| secret_ref::provider_in(config, &file) == ProviderConfig::Ours),
        restart_pending: std::fs::symlink_metadata(paths.restart_marker()).is_ok(),
    };
    let action = decide(&facts);
    tracing::debug!(?facts, ?action, "secret-ref decided");
    let empty = super::plan::Plan {
        files: Vec::new(),
        stores: Vec::new(),
        stray: Vec::new(),
    };
    let mut report = report::new(target, options, secret, &empty, warnings);
    report.state_dir = Some(state_dir);
    report.files = file_reports(&file, facts.file_current, &leftovers);
    match action {
        Action::Unchanged => return Ok(report),
        Action::DryRun => {
            report.result = Outcome::DryRun;
            return Ok(report);
        }
        Action::Apply => {}
    }
    if facts.restart_pending {
        // A gateway a killed run left stopped is started before anything else (even a token
        // Anthropic rejects must not keep it down).
        resume(systemctl, options, paths)?;
    }
    let already_probed = if options.probe && facts.token_changed() {
        super::probe_new_token(options, systemctl, &openclaw, secret, &mut report.warnings)?
    } else {
        None
    };
    let last_good = proven.and_then(|p| last_good(&file, &p.fingerprint));
    let run = Run {
        options,
        systemctl,
        secret,
        paths,
        openclaw: &openclaw,
        file: &file,
        last_good,
        // Never set up in this delivery: a failure takes the reference down again (the `env`
        // files are still there).
        first_setup: previous
            .as_ref()
            .is_none_or(|p| p.delivery != Delivery::SecretRef),
        proven_before: proven.is_some(),
        reload_failed: std::cell::Cell::new(false),
    };
    let applied = run.apply(&facts, &stores, &leftovers, already_probed, &mut report)?;
    report.result = Outcome::Applied;
    state::save(&paths.state_file(), &applied)?;
    Ok(report)
}

/// Starts a gateway a killed run left stopped, and drops the marker once it runs.
fn resume(systemctl: &Systemctl, options: &SyncOptions, paths: &ManagedPaths) -> Result<()> {
    let status = systemctl.show(&options.unit)?;
    if !status.is_active() {
        tracing::info!(
            unit = options.unit,
            "starting the gateway a killed run left stopped"
        );
        systemctl.start(&options.unit)?;
        systemctl.wait_started(&options.unit, options.verify.timeout)?;
    }
    super::apply::remove_marker(&paths.restart_marker())
}

fn selector(reset: bool) -> ProfileSelector {
    ProfileSelector {
        only_ids: None,
        keep_reference: true,
        reset_reference: reset,
        references_only: false,
    }
}

fn find_stores(openclaw: &Path, home: &Path, warnings: &mut Vec<String>) -> Stores {
    let (agents, agent_warnings) = stores::discover_agents(openclaw, home);
    warnings.extend(agent_warnings);
    let mut found = Vec::new();
    for agent in &agents {
        for detected in stores::stores_in(agent, openclaw) {
            warnings.extend(detected.note);
            found.push((agent.clone(), detected.store));
        }
    }
    Stores { agents, found }
}

impl Stores {
    /// Every agent id has a store whose profiles include our reference (an id may have two
    /// directories: OpenClaw's `<state>/agents/<id>/agent/` and the `agentDir` its config names).
    fn every_agent_refers(&self) -> bool {
        self.agents.iter().all(|agent| {
            self.found
                .iter()
                .filter(|(a, _)| a.gateway_id() == agent.gateway_id())
                .any(|(_, store)| store.holds_reference())
        })
    }

    /// Some store holds an Anthropic entry the selector removes. A store that cannot be read is
    /// an error naming it: the run would not know what the gateway uses.
    fn stale(&self, selector: &ProfileSelector) -> Result<bool> {
        for (_, store) in &self.found {
            if !store.inspect(selector)?.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Cleans every store; what each removed.
    /// Cleans every store: (agent, layout, store, what was removed) for each that changed.
    fn clean(
        &self,
        selector: &ProfileSelector,
    ) -> Result<Vec<(String, String, PathBuf, Cleaning)>> {
        let mut done = Vec::new();
        for (agent, store) in &self.found {
            let cleaning = store.clean(selector)?;
            if !cleaning.is_empty() {
                done.push((
                    agent.id.clone(),
                    store.layout().to_owned(),
                    store.location().to_path_buf(),
                    cleaning,
                ));
            }
        }
        Ok(done)
    }

    fn agent_ids(&self) -> Vec<String> {
        proof::agent_ids(self.agents.iter())
    }
}

/// The file's content for `token`.
fn file_content(token: &Token) -> Zeroizing<Vec<u8>> {
    let mut content = Zeroizing::new(token.expose().as_bytes().to_vec());
    content.push(b'\n');
    content
}

/// Whether the secret file holds `token` as OpenClaw accepts it (regular, 0600, ours, one link,
/// in a 0700 directory). Anything else, a link included, is "not current": the write replaces it
/// by a rename, which never follows a link.
fn file_holds(file: &Path, token: &Token) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(Some(found)) = fsutil::read_managed(file) else {
        return false;
    };
    let uid = nix::unistd::geteuid().as_raw();
    let single = std::fs::symlink_metadata(file).is_ok_and(|m| m.nlink() == 1);
    let dir_private = file
        .parent()
        .and_then(|dir| std::fs::symlink_metadata(dir).ok())
        .is_some_and(|m| m.mode() & 0o777 == 0o700 && m.uid() == uid);
    found.content.as_slice() == file_content(token).as_slice()
        && found.mode & 0o777 == 0o600
        && found.uid == uid
        && single
        && dir_private
}

/// The file's content when it holds the token this tool last proved (`fingerprint`).
fn last_good(file: &Path, fingerprint: &crate::secret::Fingerprint) -> Option<Zeroizing<Vec<u8>>> {
    let found = fsutil::read_managed(file).ok()??;
    let text = Zeroizing::new(String::from_utf8(found.content.to_vec()).ok()?);
    let token = Token::parse(Zeroizing::new(text.trim_end().to_owned())).ok()?;
    (token.fingerprint() == fingerprint).then_some(found.content)
}

/// What `env` delivery left: our drop-in and `~/.openclaw-env` (removed), Anthropic lines in
/// `<state>/.env` and the unit's env files (stripped, every other line kept).
fn leftovers(paths: &ManagedPaths) -> Result<Vec<Leftover>> {
    let mut found = Vec::new();
    for (role, path) in [
        (FileRole::DropIn, &paths.dropin),
        (FileRole::LegacyEnv, &paths.legacy_env),
    ] {
        if let Some(existing) = fsutil::read_managed(path)? {
            if role == FileRole::LegacyEnv || files::written_by_us(&existing.content) {
                found.push(Leftover {
                    path: path.clone(),
                    role,
                    stripped: None,
                });
            }
        }
    }
    for (role, path) in [
        (FileRole::DotEnv, &paths.dot_env),
        (FileRole::GatewayEnv, &paths.gateway_env),
        (FileRole::GlobalGatewayEnv, &paths.global_gateway_env),
    ] {
        if let Some(existing) = fsutil::read_managed(path)? {
            if let Some(stripped) = files::strip_env_file(&existing.content) {
                found.push(Leftover {
                    path: path.clone(),
                    role,
                    stripped: Some(stripped),
                });
            }
        }
    }
    Ok(found)
}

fn file_reports(file: &Path, current: bool, leftovers: &[Leftover]) -> Vec<report::FileReport> {
    let mut reports = vec![report::FileReport {
        path: file.to_path_buf(),
        role: FileRole::SecretRef,
        action: if current {
            FileAction::Unchanged
        } else {
            FileAction::Update
        },
        removed_literal_tokens: 0,
    }];
    reports.extend(leftovers.iter().map(|left| report::FileReport {
        path: left.path.clone(),
        role: left.role,
        action: if left.stripped.is_some() {
            FileAction::Update
        } else {
            FileAction::Remove
        },
        removed_literal_tokens: 0,
    }));
    reports
}

/// One applying run's context.
struct Run<'a> {
    options: &'a SyncOptions,
    systemctl: &'a Systemctl,
    secret: &'a FetchedSecret,
    paths: &'a ManagedPaths,
    openclaw: &'a Path,
    file: &'a Path,
    /// The file's content when it holds the token this tool last proved.
    last_good: Option<Zeroizing<Vec<u8>>>,
    /// No earlier run set this gateway up in this delivery.
    first_setup: bool,
    /// An earlier run proved the reference on this gateway (so a release that needs one
    /// restart after set-up has had it).
    proven_before: bool,
    /// The failure came from `secrets.reload` itself (the only one a restart can cure).
    reload_failed: std::cell::Cell<bool>,
}

impl Run<'_> {
    fn cli(&self) -> Result<GatewayCli<'_>> {
        proof::gateway_cli(
            self.systemctl,
            &self.options.unit,
            self.openclaw,
            &self.paths.cli_state(),
        )?
        .ok_or_else(|| {
            Error::config(format!(
                "{}'s ExecStart= does not run OpenClaw's `gateway` command: --delivery secret-ref needs OpenClaw's own CLI to set up and reload the reference",
                self.options.unit
            ))
        })
    }

    /// Write, clean, set up, reload (or restart once), prove, then remove what `env` delivery
    /// left; the last good token goes back on any failure after the write. Returns the state to
    /// record.
    fn apply(
        &self,
        facts: &Facts,
        stores: &Stores,
        leftovers: &[Leftover],
        already_probed: Option<(String, anthropic_probe::Finding)>,
        report: &mut SyncReport,
    ) -> Result<AppliedState> {
        let cli = self.cli()?;
        let status = self.systemctl.show(&self.options.unit)?;
        let old_pid = (status.main_pid != 0).then_some(status.main_pid);
        self.write_file(&file_content(&self.secret.token))?;
        let outcome = self
            .set_up_and_reload(&cli, facts, stores, report)
            .and_then(|taken| match taken {
                Taken::Reloaded | Taken::Restarted => self
                    .prove(
                        &cli,
                        old_pid,
                        taken == Taken::Restarted,
                        already_probed.clone(),
                        leftovers,
                    )
                    .map(|proof| (taken, Some(proof))),
                Taken::NotRunning | Taken::NotRestarted => Ok((taken, None)),
            });
        let (taken, proof) = match outcome {
            Ok(done) => done,
            Err(error) => {
                let proof = self.recover(&cli, stores, error, already_probed, leftovers, report)?;
                (Taken::Restarted, Some(proof))
            }
        };
        // Only a gateway proven on the reference loses what `env` delivery left (one still on
        // its environment token, or stopped, keeps it until a run proves it); and a marker a
        // killed run left is obsolete once it runs.
        if matches!(taken, Taken::Reloaded | Taken::Restarted) {
            self.remove_leftovers(leftovers)?;
            super::apply::remove_marker(&self.paths.restart_marker())?;
        }
        let new_pid = self.systemctl.show(&self.options.unit)?.main_pid;
        let (action, gateway) = match taken {
            Taken::Reloaded => (GatewayAction::Reloaded, GatewayOutcome::Verified),
            Taken::Restarted => (GatewayAction::Restarted, GatewayOutcome::Verified),
            Taken::NotRunning => (GatewayAction::Inactive, GatewayOutcome::Inactive),
            Taken::NotRestarted => (GatewayAction::NotRestarted, GatewayOutcome::NotRestarted),
        };
        report.gateway.action = action;
        report.gateway.old_pid = old_pid;
        report.gateway.new_pid = (new_pid != 0).then_some(new_pid);
        report.gateway.proof = proof;
        Ok(self.applied(new_pid, gateway, cli.config_path()))
    }

    fn applied(&self, pid: u32, gateway: GatewayOutcome, config: &Path) -> AppliedState {
        let token = &self.secret.token;
        AppliedState {
            secret_arn: self.secret.arn.clone(),
            version_id: self.secret.version_id.clone(),
            fingerprint: token.fingerprint().clone(),
            variable: token.kind().variable().to_owned(),
            unit: self.options.unit.clone(),
            gateway,
            gateway_pid: (pid != 0).then_some(pid),
            applied_at: state::now_rfc3339(),
            version_created_at: self.secret.created_date.clone(),
            delivery: Delivery::SecretRef,
            config_path: Some(config.to_path_buf()),
            invocation: None,
        }
    }

    fn write_file(&self, content: &[u8]) -> Result<()> {
        let dir = fsutil::parent_of(self.file)?;
        fsutil::ensure_dir(dir, true)?;
        fsutil::write_atomic(self.file, content, 0o600)
    }

    /// Stores, OpenClaw's `secrets apply` where needed, then the reload (or the one restart a
    /// release needs after set-up).
    fn set_up_and_reload(
        &self,
        cli: &GatewayCli<'_>,
        facts: &Facts,
        stores: &Stores,
        report: &mut SyncReport,
    ) -> Result<Taken> {
        let cleaned = stores.clean(&selector(facts.token_changed() || facts.force))?;
        report.stores = cleaned
            .into_iter()
            .map(|(agent, layout, path, cleaning)| report::StoreReport {
                agent,
                layout,
                path,
                removed_profiles: cleaning.removed_profiles,
                removed_references: cleaning.removed_references,
                error: None,
            })
            .collect();
        let provider = secret_ref::provider_in(cli.config_path(), self.file);
        let set_up = provider != ProviderConfig::Ours || !stores.every_agent_refers();
        if set_up {
            self.secrets_apply(cli, &secret_ref::setup_plan(self.file, &stores.agent_ids()))?;
        }
        // The one restart an older release needs after set-up, until a run proved the reference
        // (a `--no-restart` run, or one killed before its restart, still owes it).
        let needs_restart = (set_up || !self.proven_before)
            && cli
                .release()
                .is_none_or(|release| release < RELOADS_NEW_PROVIDER);
        let unit = self.systemctl.show(&self.options.unit)?;
        let stopped_on_purpose = unit.active_state == "inactive" && !facts.restart_pending;
        if stopped_on_purpose {
            report.warnings.push(format!(
                "{} is stopped; left stopped (the reference is set up and it reads the token when started)",
                self.options.unit
            ));
            return Ok(Taken::NotRunning);
        }
        let down = !unit.is_active() || unit.main_pid == 0;
        if (needs_restart || down) && self.options.no_restart {
            report.warnings.push(format!(
                "{}: this release picks a new secret provider up only at start, and --no-restart was given: the next run without it restarts the gateway once",
                self.options.unit
            ));
            return Ok(Taken::NotRestarted);
        }
        // A release that needs it after set-up, a gateway a killed run left stopped, or one
        // that is failed or on its way up: a start reads the reference.
        if needs_restart || down {
            tracing::info!(
                unit = self.options.unit,
                "restarting the gateway: it reads the reference at start"
            );
            self.restart_unit()?;
            return Ok(Taken::Restarted);
        }
        self.reload(cli)?;
        Ok(Taken::Reloaded)
    }

    fn remove_leftovers(&self, leftovers: &[Leftover]) -> Result<()> {
        let mut dropin = false;
        for left in leftovers {
            match &left.stripped {
                Some(content) => fsutil::write_atomic(&left.path, content, 0o600)?,
                None => {
                    super::apply::remove_file(&left.path)?;
                    dropin |= left.role == FileRole::DropIn;
                }
            }
        }
        if dropin {
            // The drop-in's variable must not come back at the next start.
            self.systemctl.daemon_reload()?;
        }
        Ok(())
    }

    /// `openclaw secrets apply --from <plan>` as the gateway's user; the plan holds no token.
    fn secrets_apply(&self, cli: &GatewayCli<'_>, plan: &serde_json::Value) -> Result<()> {
        apply_plan(cli, self.paths, self.openclaw, plan)
    }

    fn reload(&self, cli: &GatewayCli<'_>) -> Result<()> {
        let deadline = Instant::now() + self.options.verify.timeout;
        let answer = cli.call_when_up(
            "secrets.reload",
            &serde_json::json!({}),
            RPC_TIMEOUT,
            deadline,
        )?;
        self.reload_failed
            .set(matches!(answer, Call::Unreachable(_) | Call::Failed(_)));
        match answer {
            Call::Answer(answer) => secret_ref::reload_verdict(&answer).map_err(Error::failed),
            Call::UnknownMethod => Err(Error::failed(
                "the gateway has no secrets.reload (OpenClaw before 2026.2.26): use --delivery env",
            )),
            Call::Unreachable(why) | Call::Failed(why) => Err(Error::failed(format!(
                "the gateway's secrets.reload did not answer: {why}"
            ))),
        }
    }

    /// The proof: the PID (unless restarted), the audit, and the gateway's own view.
    fn prove(
        &self,
        cli: &GatewayCli<'_>,
        old_pid: Option<u32>,
        restarted: bool,
        already_probed: Option<(String, anthropic_probe::Finding)>,
        leftovers: &[Leftover],
    ) -> Result<GatewayProof> {
        let pid = self.systemctl.show(&self.options.unit)?.main_pid;
        if pid == 0 {
            return Err(Error::GatewayDown(format!(
                "{} is not running after the {}",
                self.options.unit,
                if restarted { "restart" } else { "reload" }
            )));
        }
        if !restarted && old_pid.is_some_and(|old| old != pid) {
            return Err(Error::failed(format!(
                "the gateway's PID changed during the reload ({} -> {pid}): it restarted",
                old_pid.unwrap_or(0)
            )));
        }
        let removed: Vec<&Path> = leftovers.iter().map(|l| l.path.as_path()).collect();
        audit(cli, self.openclaw, &removed)?;
        self.gateway_view(cli, already_probed)
    }

    /// `models.probe` naming the reference (2026.8.1+); before that, `models.authStatus` showing
    /// it and our own probe of the token.
    fn gateway_view(
        &self,
        cli: &GatewayCli<'_>,
        already_probed: Option<(String, anthropic_probe::Finding)>,
    ) -> Result<GatewayProof> {
        let mut proof = GatewayProof::empty();
        let deadline = Instant::now() + self.options.verify.timeout;
        let has_probe = cli.release().is_some_and(|r| r >= Release::MODELS_PROBE);
        if has_probe && self.options.probe {
            let params =
                serde_json::json!({"provider": "anthropic", "agentId": "main", "timeoutMs": 20000});
            match cli.call_when_up("models.probe", &params, RPC_TIMEOUT, deadline)? {
                Call::Answer(answer) => {
                    let status = secret_ref::probe_names_profile(&answer).map_err(Error::failed)?;
                    let finding = probe_finding(&status);
                    if finding.verdict == Verdict::Rejected {
                        return Err(Error::TokenRejected(format!(
                            "the gateway's models.probe: Anthropic rejected the token {} behind {}",
                            self.secret.token.fingerprint(),
                            secret_ref::PROFILE
                        )));
                    }
                    proof.method = ProofMethod::GatewayProbe;
                    proof.source = Some(format!(
                        "profile {} (secret reference)",
                        secret_ref::PROFILE
                    ));
                    proof.probe = Some(ProbeReport {
                        via: ProbeVia::Gateway,
                        target: "gateway".to_owned(),
                        finding,
                    });
                    return Ok(proof);
                }
                other => proof
                    .notes
                    .push(format!("models.probe did not answer: {other}")),
            }
        }
        self.auth_status_view(cli, &mut proof, deadline)?;
        if let Some((target, finding)) = already_probed {
            proof.probe = Some(ProbeReport {
                via: ProbeVia::Direct,
                target,
                finding,
            });
        }
        Ok(proof)
    }

    fn auth_status_view(
        &self,
        cli: &GatewayCli<'_>,
        proof: &mut GatewayProof,
        deadline: Instant,
    ) -> Result<()> {
        let answer = match cli.call_when_up(
            "models.authStatus",
            &serde_json::json!({}),
            RPC_TIMEOUT,
            deadline,
        )? {
            Call::Answer(answer) => answer,
            Call::Failed(why) if why.contains("agentId") => match cli.call(
                "models.authStatus",
                &serde_json::json!({"agentId": "main"}),
                RPC_TIMEOUT,
            )? {
                Call::Answer(answer) => answer,
                other => return Err(Error::failed(format!("models.authStatus: {other}"))),
            },
            other => return Err(Error::failed(format!("models.authStatus: {other}"))),
        };
        let profiles = proof::anthropic_profiles(&answer);
        if profiles != [secret_ref::PROFILE] {
            return Err(Error::failed(format!(
                "the running gateway's Anthropic profiles are [{}], not the reference {} alone",
                profiles.join(", "),
                secret_ref::PROFILE
            )));
        }
        proof.method = ProofMethod::GatewayAuthStatus;
        proof.source = Some(format!(
            "profile {} (secret reference)",
            secret_ref::PROFILE
        ));
        Ok(())
    }

    /// After a failure with the new token in the file. With `--restart-fallback`, when the
    /// reload itself failed (unreachable, or refused), the new token is applied by a restart
    /// (a success, with a warning). Otherwise, or when that fails too: the last good token (the
    /// one this tool last proved) goes back and the gateway reloads it (or restarts, when it
    /// was restarted); with none (the first set-up), the reference is taken down again, so the
    /// gateway keeps its environment token. Either way the run fails.
    fn recover(
        &self,
        cli: &GatewayCli<'_>,
        stores: &Stores,
        error: Error,
        already_probed: Option<(String, anthropic_probe::Finding)>,
        leftovers: &[Leftover],
        report: &mut SyncReport,
    ) -> Result<GatewayProof> {
        let mut restarted = false;
        if self.options.restart_fallback && self.reload_failed.get() && !self.options.no_restart {
            tracing::warn!(%error, "the reload failed; restarting the gateway (--restart-fallback)");
            restarted = true;
            match self
                .restart_unit()
                .and_then(|()| self.prove(cli, None, true, already_probed, leftovers))
            {
                Ok(proof) => {
                    report.warnings.push(format!(
                        "the reload failed ({error}); applied by a restart (--restart-fallback)"
                    ));
                    return Ok(proof);
                }
                Err(also) => tracing::warn!(%also, "the restart did not apply the token either"),
            }
        }
        let restored = match &self.last_good {
            Some(content) => self.write_file(content).and_then(|()| {
                if restarted {
                    self.restart_unit()
                } else {
                    self.reload(cli)
                }
            }),
            None if self.first_setup => self.take_down(cli, stores, restarted),
            // Set up before, but no token of it proven on disk (a run killed before its proof,
            // a gateway set up while stopped): nothing better to go back to, and the `env`
            // files are gone. The file stays; the state is not written; the next run retries.
            None => Err(Error::failed(format!(
                "no token this tool proved is left to go back to; {} keeps the new one",
                self.file.display()
            ))),
        };
        let outcome = match (&self.last_good, &restored) {
            (Some(_), Ok(())) => format!(
                "the last good token is back in {} and the gateway runs on it",
                self.file.display()
            ),
            (None, Ok(())) => {
                "the reference was taken down again: the gateway keeps its environment token"
                    .to_owned()
            }
            (_, Err(also)) => format!("putting the last good state back failed: {also}"),
        };
        Err(Error::failed(format!("{error}; {outcome}")))
    }

    /// Undoes a set-up that failed: the reference profiles go from every store (with every
    /// other Anthropic profile), OpenClaw's `secrets apply` removes our provider, the file goes,
    /// and the gateway drops the reference (reload, or restart).
    fn take_down(&self, cli: &GatewayCli<'_>, stores: &Stores, restarted: bool) -> Result<()> {
        stores.clean(&ProfileSelector::default())?;
        if secret_ref::provider_in(cli.config_path(), self.file) != ProviderConfig::Missing {
            apply_plan(cli, self.paths, self.openclaw, &secret_ref::removal_plan())?;
        }
        super::apply::remove_file(self.file)?;
        if restarted {
            self.restart_unit()
        } else {
            // A gateway that cannot reload keeps the reference in memory until its next start.
            self.reload(cli).or_else(|_| self.restart_unit())
        }
    }

    /// Stop and start, bounded; once stopped it is always started again, and the
    /// `restart-pending` marker lets the next run start a gateway a killed run left stopped.
    fn restart_unit(&self) -> Result<()> {
        let unit = &self.options.unit;
        let marker = self.paths.restart_marker();
        fsutil::write_atomic(&marker, format!("{unit}\n").as_bytes(), 0o600)?;
        let stopped = self.systemctl.stop(unit, self.options.verify.stop);
        let started = self.systemctl.start(unit).and_then(|()| {
            self.systemctl
                .wait_started(unit, self.options.verify.timeout)
        });
        if stopped.is_ok() && started.is_ok() {
            super::apply::remove_marker(&marker)?;
        }
        stopped?;
        started
    }
}

fn probe_finding(status: &str) -> anthropic_probe::Finding {
    let verdict = match status {
        "ok" => Verdict::Accepted,
        "auth" => Verdict::Rejected,
        _ => Verdict::Inconclusive,
    };
    anthropic_probe::Finding::new(verdict, format!("models.probe status {status}"))
}

/// `openclaw secrets audit --json`: a finding about the reference fails the proof. Plaintext
/// findings in the env files about to lose their Anthropic lines (`removed`) are not.
fn audit(cli: &GatewayCli<'_>, openclaw: &Path, removed: &[&Path]) -> Result<()> {
    let report = cli.secrets_audit(openclaw)?.map_err(Error::failed)?;
    let problems = secret_ref::audit_problems(&report, removed);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::failed(format!(
            "openclaw secrets audit: {}",
            problems.join("; ")
        )))
    }
}

/// Writes `plan` for OpenClaw's `secrets apply` into our state dir (0600; it holds no token) and
/// runs it as the gateway's user.
pub(super) fn apply_plan(
    cli: &GatewayCli<'_>,
    paths: &ManagedPaths,
    openclaw: &Path,
    plan: &serde_json::Value,
) -> Result<()> {
    let plan_file = paths.state_dir.join("secret-ref-plan.json");
    fsutil::ensure_dir(&paths.state_dir, true)?;
    fsutil::write_atomic(&plan_file, plan.to_string().as_bytes(), 0o600)?;
    let plan_arg = plan_file.display().to_string();
    let ran = cli.run_local(
        &["secrets", "apply", "--from", &plan_arg, "--json"],
        openclaw,
        CLI_LIMIT,
    );
    let _ = std::fs::remove_file(&plan_file);
    let (success, stdout, stderr) = ran?;
    if success {
        Ok(())
    } else {
        Err(Error::failed(format!(
            "openclaw secrets apply failed: {}",
            crate::openclaw::gateway_rpc::short(if stderr.trim().is_empty() {
                &stdout
            } else {
                &stderr
            })
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current() -> Facts {
        Facts {
            file_current: true,
            every_agent_refers: true,
            state_current: true,
            provider_current: true,
            ..Facts::default()
        }
    }

    #[test]
    fn only_a_complete_proven_reference_of_this_version_is_unchanged() {
        assert_eq!(decide(&current()), Action::Unchanged);
        let broken = [
            Facts {
                file_current: false,
                ..current()
            },
            Facts {
                every_agent_refers: false,
                ..current()
            },
            Facts {
                stale_profiles: true,
                ..current()
            },
            Facts {
                env_leftovers: true,
                ..current()
            },
            Facts {
                state_current: false,
                ..current()
            },
            Facts {
                provider_current: false,
                ..current()
            },
            Facts {
                restart_pending: true,
                ..current()
            },
            Facts {
                force: true,
                ..current()
            },
        ];
        for facts in broken {
            assert_eq!(decide(&facts), Action::Apply, "{facts:?}");
            let dry = Facts {
                dry_run: true,
                ..facts
            };
            assert_eq!(decide(&dry), Action::DryRun, "{dry:?}");
        }
        let dry = Facts {
            dry_run: true,
            ..current()
        };
        assert_eq!(decide(&dry), Action::Unchanged);
    }

    #[test]
    fn a_token_is_new_until_this_tool_proved_it() {
        assert!(!current().token_changed());
        // A file written by a run killed before its proof holds the token, unproven.
        assert!(Facts {
            state_current: false,
            ..current()
        }
        .token_changed());
        assert!(Facts {
            file_current: false,
            ..current()
        }
        .token_changed());
    }
}
