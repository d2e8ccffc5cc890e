//! `sync`, in the order DESIGN.md section 2 fixes, as one pass of gather → decide → apply →
//! report: lock → one GetSecretValue → validate → plan (`plan`: desired files and store edits
//! next to what is on disk) → the facts (plan, state file, `restart-pending` marker, store
//! cleanings of this version, and, only when the decision needs it, the unit and what systemd
//! would hand it) → one [`decide::Action`] (`decide`, pure and table-tested) → `apply` (the only
//! side effects) → prove through the gateway's own RPC that its agents use the token, with a live
//! probe (`openclaw::proof`) → write the state file only when everything succeeded → `report`.
//!
//! The rules the decision follows are in `decide`'s docs and the README's "Decisions"; what is
//! decided here, around the action:
//! - `daemon-reload` runs after the drop-in is written (it must see the new file), before start.
//! - Once the gateway was stopped it is always started again, even when a write failed; the run
//!   then exits 1 without writing the state, so the next run retries.
//! - A store that cannot be read, understood or written is left untouched and reported; the rest
//!   of the run goes on, the exit code is 1 and the state is not written (DESIGN.md 2.7).
//! - Store entries cleaned before a restart are recorded (`store-cleanings.json`) before the
//!   stop; entries that are back right after the start, or on a later run of the same version,
//!   are reported with what probably re-creates them and are not restarted for again.

pub mod apply;
pub mod decide;
pub mod facts;
pub mod plan;
pub mod report;

pub use report::{
    FileReport, GatewayAction, GatewayReport, Outcome, SecretReport, StoreReport, SyncReport,
};

use crate::aws::{self, AwsSettings};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::managed_files::ManagedPaths;
use crate::openclaw::proof::{self, ProofOptions};
use crate::openclaw::state_dir;
use crate::session;
use crate::state::{self, AppliedState, GatewayOutcome, RunLock};
use crate::stores::document::ProfileSelector;
use crate::systemd::{Expectation, Systemctl, UnitStatus, VerifyLimits};
use apply::{Applier, Running, StoreResults};
use decide::Action;
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
    /// The staging label whose version is applied (AWSCURRENT unless a canary).
    pub version_stage: String,
    /// No unit was named: sync every OpenClaw gateway unit of the user (`unit` when none is
    /// found).
    pub discover: bool,
    pub lock_timeout: Duration,
    pub verify: VerifyLimits,
    pub aws: AwsSettings,
}

/// How long the check of a new token before it is applied may take.
const PRE_PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// What one `sync` did: one entry per gateway, in the order they were found.
#[derive(Debug)]
pub struct SyncRun {
    pub gateways: Vec<(String, Result<SyncReport>)>,
}

impl SyncRun {
    /// The worst of the gateways' exit codes.
    pub fn exit_code(&self) -> u8 {
        self.gateways
            .iter()
            .map(|(_, result)| match result {
                Ok(report) => report.exit_code(),
                Err(err) => err.exit_code(),
            })
            .max()
            .unwrap_or(0)
    }
}

/// Runs a sync: enters the user, takes the lock, fetches the secret once, then syncs each
/// gateway (`--unit`, else every OpenClaw gateway unit of the user: `Systemctl::gateways`). With
/// one gateway its error is the run's error; with several, a gateway that fails does not stop the
/// others and the exit code is the worst.
pub fn run(options: &SyncOptions) -> Result<SyncRun> {
    let session = session::enter(
        options.user.as_deref(),
        options.home.as_deref(),
        Some((&options.aws, &options.secret_id)),
    )?;
    let target = session.target;
    let (runtime, config) = session.aws.expect("sync always talks to AWS");
    let systemctl = Systemctl::new(target.clone());
    let own_state = ManagedPaths::new(&target.home, &options.unit, &target.home).state_dir;
    let _lock = if options.dry_run {
        None
    } else {
        fsutil::ensure_dir(&own_state, true)?;
        Some(RunLock::acquire(
            &own_state.join("lock"),
            options.lock_timeout,
        )?)
    };
    let secret = runtime.block_on(aws::fetch_secret(
        &config,
        &options.secret_id,
        &options.json_key,
        &options.version_stage,
    ))?;
    drop(runtime);

    let units = if options.discover {
        match systemctl.gateways() {
            Ok(found) if !found.is_empty() => found,
            Ok(_) => vec![options.unit.clone()],
            Err(err) => {
                tracing::info!(error = %err, "gateway discovery failed; using the default unit");
                vec![options.unit.clone()]
            }
        }
    } else {
        vec![options.unit.clone()]
    };
    if units.len() > 1 && options.state_dir.is_some() {
        return Err(Error::config(format!(
            "--state-dir names one OpenClaw state directory, but this user runs {} gateways ({}): name the gateway with --unit",
            units.len(),
            units.join(", ")
        )));
    }
    if let [unit] = units.as_slice() {
        let one = SyncOptions {
            unit: unit.clone(),
            ..options.clone()
        };
        let report = sync_unit(&one, &target, &systemctl, &secret)?;
        return Ok(SyncRun {
            gateways: vec![(unit.clone(), Ok(report))],
        });
    }
    let gateways = units
        .into_iter()
        .map(|unit| {
            let one = SyncOptions {
                unit: unit.clone(),
                ..options.clone()
            };
            let result = sync_unit(&one, &target, &systemctl, &secret);
            (unit, result)
        })
        .collect();
    Ok(SyncRun { gateways })
}

/// Syncs one gateway unit with the secret already fetched.
fn sync_unit(
    options: &SyncOptions,
    target: &crate::privileges::TargetUser,
    systemctl: &Systemctl,
    secret: &aws::FetchedSecret,
) -> Result<SyncReport> {
    let state_dir = state_dir::for_unit(
        systemctl,
        &options.unit,
        &target.home,
        options.state_dir.as_deref(),
    );
    let openclaw_state = state_dir.path.clone();
    let paths = ManagedPaths::new(&target.home, &options.unit, &openclaw_state);
    let token = &secret.token;
    if !options.dry_run {
        migrate_legacy_records(&paths)?;
    }

    // Gather.
    let mut warnings = Vec::new();
    let selector = ProfileSelector {
        only_ids: options.profile_ids.clone(),
    };
    let plan = plan::build(
        &paths,
        &openclaw_state,
        token,
        options.shell_profile,
        &selector,
        &mut warnings,
    )?;
    let (previous, state_warning) = state::load(&paths.state_file());
    warnings.extend(state_warning);
    let marker = paths.restart_marker();
    let cleanings_file = paths.cleanings_file();
    let cleaned_before = state::load_cleanings(
        &cleanings_file,
        &secret.arn,
        &secret.version_id,
        token.fingerprint(),
    );
    let mut facts = facts::gather(
        options,
        secret,
        &plan,
        previous.as_ref(),
        cleaned_before.as_ref(),
        &marker,
    );

    // Decide (twice when the unit matters: looking at it costs a systemctl call).
    let mut decision = decide::decide(&facts);
    let mut status = UnitStatus::default();
    if decision.action == Action::AskUnit {
        status = systemctl.show(&options.unit)?;
        facts.unit =
            facts::unit_facts(systemctl, &options.unit, &mut status, &facts, token, &paths)?;
        decision = decide::decide(&facts);
    }
    tracing::debug!(action = ?decision.action, stores = ?decision.stores, "decided");

    let mut report = report::new(target, options, secret, &plan, warnings);
    report.state_dir = Some(state_dir);
    let expect = Expectation {
        variable: token.kind().variable(),
        fingerprint: token.fingerprint(),
    };
    // A new token goes to Anthropic before it goes anywhere else: one it rejects changes nothing
    // (the gateway keeps running on its current token), so neither the timer nor a push can
    // roll a revoked or mistyped token out (the push's brake counts this exit 1).
    // (A resumed run is the exception: the gateway is down and must be started whatever.)
    let writes_token = facts.files.gateway_content
        && match decision.action {
            Action::WriteOnly { .. } => true,
            Action::Restart { reason, .. } => reason != decide::RestartReason::Resume,
            _ => false,
        };
    let mut already_probed = None;
    if options.probe && writes_token {
        let unit_env = systemctl
            .exec_context(&options.unit)
            .map(|c| c.start_environment())
            .unwrap_or_default();
        let base = proof::probe_target(
            &unit_env,
            &openclaw_state,
            options.anthropic_base_url.as_deref(),
        );
        let finding = crate::anthropic_probe::probe(&base, token, PRE_PROBE_TIMEOUT);
        match finding.verdict {
            crate::anthropic_probe::Verdict::Rejected => {
                return Err(Error::TokenRejected(format!(
                    "{base} rejected the token {} of version {} ({}): nothing was changed, the gateway keeps its current token; store a valid one (`openclaw-token-sync put`) or roll back (`openclaw-token-sync rollback`)",
                    token.fingerprint(),
                    secret.version_id,
                    finding.detail
                )))
            }
            crate::anthropic_probe::Verdict::Inconclusive => report.warnings.push(format!(
                "could not check the new token {} with {base} before applying it ({}); applied anyway",
                token.fingerprint(),
                finding.detail
            )),
            crate::anthropic_probe::Verdict::Accepted => already_probed = Some((base, finding)),
        }
    }
    let applier = Applier {
        plan: &plan,
        token,
        selector: &selector,
        store_step: decision.stores,
        systemctl,
        unit: &options.unit,
        expect: &expect,
        verify: options.verify,
        marker: &marker,
        cleanings: apply::Cleanings {
            file: &cleanings_file,
            before: cleaned_before.as_ref(),
            secret,
        },
    };

    // Apply.
    let untouched_stores = || {
        report::stores(
            &plan,
            None,
            decision.stores,
            &report::held_reason(&paths),
            None,
        )
    };
    let cleaned: Option<StoreResults>;
    let outcome = match decision.action {
        Action::AskUnit => {
            return Err(Error::failed(
                "internal error: the decision still needs the unit's status",
            ))
        }
        Action::DryRun {
            result,
            would_restart,
        } => {
            report.result = result;
            if would_restart {
                report.gateway.action = GatewayAction::WouldRestart;
            }
            report.stores = untouched_stores();
            return Ok(report);
        }
        Action::Report(action) => {
            report.gateway.action = action;
            report.stores = untouched_stores();
            return Ok(report);
        }
        Action::Refuse(reason) => {
            return Err(Error::Refused {
                unit: options.unit.clone(),
                reason,
            })
        }
        Action::WriteOnly {
            outcome,
            daemon_reload,
        } => {
            cleaned = Some(applier.write_and_clean()?);
            if daemon_reload {
                systemctl.daemon_reload()?;
            }
            report.gateway.action = match outcome {
                GatewayOutcome::UnitNotFound => {
                    report.warnings.push(format!(
                        "gateway unit {} not found for {}: files written, nothing restarted",
                        options.unit, target.name
                    ));
                    // A unit that vanished while stopped by us cannot be started.
                    apply::remove_marker(&marker)?;
                    GatewayAction::UnitNotFound
                }
                GatewayOutcome::Inactive => {
                    report.warnings.push(format!(
                        "{} is stopped; left stopped (it reads the new token when started)",
                        options.unit
                    ));
                    GatewayAction::Inactive
                }
                _ => GatewayAction::NotRestarted,
            };
            outcome
        }
        Action::Verify | Action::Restart { .. } => {
            let running = match decision.action {
                Action::Restart {
                    reason,
                    daemon_reload,
                } => {
                    tracing::info!(unit = options.unit, ?reason, "restarting the gateway");
                    applier.restart(&status, daemon_reload)?
                }
                _ => applier.verify_or_restart(&status)?,
            };
            let Running {
                restarted,
                old_pid,
                new_pid,
                stores,
            } = running;
            report.gateway.action = if restarted {
                GatewayAction::Restarted
            } else {
                GatewayAction::Verified
            };
            report.gateway.old_pid = old_pid;
            report.gateway.new_pid = Some(new_pid);
            cleaned = Some(stores);
            GatewayOutcome::Verified
        }
    };

    // Entries this restart removed that the start brought straight back are reported as held.
    let recheck = (report.gateway.action == GatewayAction::Restarted).then_some(&selector);
    report.stores = report::stores(
        &plan,
        cleaned.as_ref(),
        decision.stores,
        &report::held_reason(&paths),
        recheck,
    );
    if outcome == GatewayOutcome::Verified {
        // The process environment is right; now the gateway's own view, and a live probe.
        let proven = proof::prove(
            systemctl,
            &options.unit,
            token,
            &openclaw_state,
            ProofOptions {
                cli_state: paths.state_dir.join("openclaw-cli"),
                home: paths.home.clone(),
                agents: proof::agent_ids(plan.stores.iter().map(|s| &s.agent)),
                probe: options.probe,
                base_url: options.anthropic_base_url.clone(),
                deadline: Instant::now() + options.verify.timeout,
                already_probed: already_probed.clone(),
            },
        )
        .and_then(|proof| match proof::rejection(&proof, token) {
            Some(rejected) => Err(rejected),
            None => Ok(proof),
        });
        let proof = match proven {
            Ok(proof) => proof,
            // A store that needs attention is often why (the gateway uses a re-imported
            // profile): the error names it too, since the report is not printed.
            Err(error) if report.stores_failed() => {
                return Err(Error::WithStores {
                    error: Box::new(error),
                    stores: report::store_problems(&report.stores),
                })
            }
            Err(error) => return Err(error),
        };
        tracing::info!(proof = %proof.describe(), "gateway proven");
        report.warnings.extend(proof.notes.iter().cloned());
        report.gateway.proof = Some(proof);
        // Left by a run killed after its start: the gateway runs, so the marker is obsolete.
        apply::remove_marker(&marker)?;
    }

    report.result = Outcome::Applied;
    if report.stores_failed() {
        report.warnings.push(
            "state not recorded: a store needs attention (see above); the next run checks again"
                .to_owned(),
        );
        return Ok(report);
    }
    let new_state = AppliedState {
        secret_arn: secret.arn.clone(),
        version_id: secret.version_id.clone(),
        fingerprint: token.fingerprint().clone(),
        variable: token.kind().variable().to_owned(),
        unit: options.unit.clone(),
        gateway: outcome,
        gateway_pid: report.gateway.new_pid,
        applied_at: state::now_rfc3339(),
        version_created_at: secret.created_date.clone(),
    };
    state::save(&paths.state_file(), &new_state)?;
    Ok(report)
}
/// Releases before per-gateway records kept one `state.json` and one `restart-pending` for
/// whatever `--unit` was synced. For a gateway other than the default one, a record that names it
/// moves to that gateway's own file, so neither its state nor a killed run's marker is lost.
fn migrate_legacy_records(paths: &ManagedPaths) -> Result<()> {
    if paths.unit == crate::managed_files::DEFAULT_UNIT {
        return Ok(());
    }
    let legacy_state = paths.state_dir.join("state.json");
    let legacy_marker = paths.state_dir.join("restart-pending");
    let state_is_ours = || {
        state::load(&legacy_state)
            .0
            .is_some_and(|recorded| recorded.unit == paths.unit)
    };
    let marker_is_ours = || {
        fsutil::read_managed(&legacy_marker)
            .ok()
            .flatten()
            .is_some_and(|found| found.content.trim_ascii() == paths.unit.as_bytes())
    };
    for (legacy, ours, is_ours) in [
        (
            &legacy_state,
            paths.state_file(),
            &state_is_ours as &dyn Fn() -> bool,
        ),
        (&legacy_marker, paths.restart_marker(), &marker_is_ours),
    ] {
        if !ours.exists() && is_ours() {
            std::fs::rename(legacy, &ours).map_err(|source| Error::Io {
                path: legacy.clone(),
                action: "move to the gateway's own record",
                detail: source.to_string(),
                source,
            })?;
            fsutil::sync_dir(&paths.state_dir)?;
        }
    }
    Ok(())
}
