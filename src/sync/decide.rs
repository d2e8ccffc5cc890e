//! The sync's one decision, pure: from the facts gathered about the host (what the plan would
//! write, which stores hold Anthropic profiles, the state file, the restart-pending marker, the
//! gateway unit and what systemd would hand it) and the options, exactly one [`Action`]. No I/O
//! here; `sync::run` gathers the facts, calls [`decide`] and applies what it returns.
//!
//! The rules, in the order they are applied (README "Decisions" states each):
//! 1. `--dry-run` reports; nothing else happens.
//! 2. A gateway this tool stopped and never started again (the `restart-pending` marker of a
//!    killed run) is stopped-written-cleaned-started before anything else, whatever the other
//!    facts say, `--no-restart` included: no path leaves a gateway down.
//! 3. A file that must be written but cannot be (its directory is read-only or not ours) is a
//!    refusal before the gateway is touched.
//! 4. A store problem that a restart already cleaned for this secret version and that came back
//!    (the same profile ids in the same stores) is held: no second restart for it, the stores are
//!    reported (exit 1) until the secret version, the problem or `--force` changes.
//! 5. Nothing to write, nothing to clean, the state says this version was verified: "unchanged".
//! 6. `--no-restart` writes and records "not restarted".
//! 7. A missing unit, or one stopped on purpose, gets the files and is left as it is.
//! 8. When systemd would hand the gateway another token, or a credential OpenClaw prefers over
//!    ours, a restart cannot help: refuse before stopping (exit 1) and name the source.
//! 9. A running gateway with nothing to change is verified, not restarted; anything that changes
//!    what the gateway reads (files, stores, `--force`, a pending daemon-reload, a gateway that is
//!    not running) is a restart.

use super::outcome::{GatewayAction, Outcome};
use crate::host::state::{GatewayOutcome, StoreEntry};

/// The options that steer the decision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    pub dry_run: bool,
    pub force: bool,
    pub no_restart: bool,
}

/// What the plan would do to the managed files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileFacts {
    /// A file the gateway reads changes content: only a restart brings it to the gateway.
    pub gateway_content: bool,
    /// The drop-in changes: systemd must reload before the start.
    pub dropin: bool,
    /// Any file is written (content, mode or owner).
    pub any_write: bool,
    /// A file that must be written cannot be: what and why.
    pub unwritable: Option<String>,
}

/// The stores' Anthropic entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreFacts {
    /// Entries that are there now and can be removed.
    pub dirty: Vec<StoreEntry>,
    /// Entries a restart already removed for this secret version (`None`: no restart did).
    pub cleaned_before: Option<Vec<StoreEntry>>,
}

impl StoreFacts {
    /// Everything dirty now was already cleaned once for this version: it came back.
    pub fn recurring(&self) -> bool {
        !self.dirty.is_empty()
            && self
                .cleaned_before
                .as_ref()
                .is_some_and(|before| self.dirty.iter().all(|entry| before.contains(entry)))
    }
}

/// What the state file says about the last applied version.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateFacts {
    /// It records this secret version, token, variable and unit.
    pub current: bool,
    pub previous: Option<GatewayOutcome>,
}

/// What systemd would hand the gateway on its next start, when that can be known before any
/// change (nothing the gateway reads changes and no daemon-reload is pending).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Credentials {
    #[default]
    Unknown,
    Good,
    /// Another token, or a variable OpenClaw prefers over ours: why, naming the source.
    Bad(String),
}

/// The gateway unit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum UnitFacts {
    /// Not looked at yet (looking costs a `systemctl` call; the decision asks when it matters).
    #[default]
    NotAsked,
    Missing,
    /// Stopped on purpose (`inactive`).
    Inactive {
        need_daemon_reload: bool,
    },
    Active {
        need_daemon_reload: bool,
        credentials: Credentials,
    },
    /// Failed, or on its way up or down.
    NotRunning {
        need_daemon_reload: bool,
        credentials: Credentials,
    },
}

/// Everything the decision depends on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    pub flags: Flags,
    pub files: FileFacts,
    pub stores: StoreFacts,
    pub state: StateFacts,
    /// A run of this tool stopped the gateway and did not start it again.
    pub restart_pending: bool,
    pub unit: UnitFacts,
}

/// Why the gateway is restarted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartReason {
    /// A killed run left it stopped.
    Resume,
    Force,
    /// A file it reads changes.
    Files,
    /// A store holds Anthropic profiles to remove.
    Stores,
    /// The unit has a daemon-reload pending.
    Reload,
    /// It is failed or half started.
    NotRunning,
}

impl RestartReason {
    /// In words, for logs.
    pub fn describe(self) -> &'static str {
        match self {
            RestartReason::Resume => "a killed run left the gateway stopped",
            RestartReason::Force => "--force",
            RestartReason::Files => "a file the gateway reads changes",
            RestartReason::Stores => "a store holds Anthropic profiles to remove",
            RestartReason::Reload => "the unit needs a daemon-reload",
            RestartReason::NotRunning => "the gateway is failed or half started",
        }
    }
}

/// What to do with stores that hold Anthropic entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreStep {
    Clean,
    /// They came back after a restart for this version: leave them and report them.
    Hold,
}

/// The one thing a sync does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The decision depends on the unit: look at it and decide again.
    AskUnit,
    /// Write nothing, touch nothing; the gateway is reported as given.
    Report(GatewayAction),
    /// `--dry-run`.
    DryRun {
        result: Outcome,
        would_restart: bool,
    },
    /// Change nothing and fail (exit 1).
    Refuse(String),
    /// Write files and clean stores, leave the gateway alone, record `outcome`.
    WriteOnly {
        outcome: GatewayOutcome,
        daemon_reload: bool,
    },
    /// Prove the running gateway carries the token (restart only if it does not), fix metadata.
    Verify,
    /// Stop, write, clean, reload when needed, start, verify.
    Restart {
        reason: RestartReason,
        daemon_reload: bool,
    },
}

impl Action {
    /// In words, for logs (`-vv`): never a `Debug` form.
    pub fn describe(&self) -> String {
        match self {
            Action::AskUnit => "look at the unit first".to_owned(),
            Action::Report(action) => format!(
                "nothing to do, report {}",
                serde_json::to_string(action)
                    .unwrap_or_default()
                    .trim_matches('"')
            ),
            Action::DryRun { would_restart, .. } => format!(
                "dry run{}",
                if *would_restart {
                    ", would restart"
                } else {
                    ""
                }
            ),
            Action::Refuse(why) => format!("refuse: {why}"),
            Action::WriteOnly {
                outcome,
                daemon_reload,
            } => format!(
                "write the files, leave the gateway ({}){}",
                serde_json::to_string(outcome)
                    .unwrap_or_default()
                    .trim_matches('"'),
                if *daemon_reload {
                    ", daemon-reload"
                } else {
                    ""
                }
            ),
            Action::Verify => {
                "prove the running gateway, restart only if it lacks the token".to_owned()
            }
            Action::Restart { reason, .. } => format!("restart: {}", reason.describe()),
        }
    }
}

/// The action and what becomes of dirty stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    pub stores: StoreStep,
}

/// The decision (see the module docs for the rules).
pub fn decide(facts: &Facts) -> Decision {
    let Facts {
        flags,
        files,
        stores,
        state,
        restart_pending,
        unit,
    } = facts;
    // A resumed run finishes what the killed one started, store cleaning included.
    let hold = !flags.force && !restart_pending && !files.gateway_content && stores.recurring();
    let store_step = if hold {
        StoreStep::Hold
    } else {
        StoreStep::Clean
    };
    let decision = |action| Decision {
        action,
        stores: store_step,
    };
    let stores_work = !stores.dirty.is_empty() && !hold;
    let restart_needed = files.gateway_content || stores_work || flags.force;
    let settled = state.current && state.previous == Some(GatewayOutcome::Verified);
    let nothing_on_disk = !files.any_write && !stores_work;

    if flags.dry_run {
        let unchanged = nothing_on_disk && settled && !flags.force && !restart_pending;
        return decision(dry_run(flags, *restart_pending, unchanged, restart_needed));
    }
    if *restart_pending {
        return decision(resume(unit, files.dropin));
    }
    if let Some(why) = &files.unwritable {
        return decision(Action::Refuse(why.clone()));
    }
    if nothing_on_disk && settled && !flags.force {
        return decision(Action::Report(GatewayAction::Unchanged));
    }
    let quiet = nothing_on_disk && state.current && !flags.force;
    if flags.no_restart {
        return decision(no_restart(quiet));
    }
    let action = match unit {
        UnitFacts::NotAsked => Action::AskUnit,
        UnitFacts::Missing if quiet && state.previous == Some(GatewayOutcome::UnitNotFound) => {
            Action::Report(GatewayAction::UnitNotFound)
        }
        UnitFacts::Missing => Action::WriteOnly {
            outcome: GatewayOutcome::UnitNotFound,
            daemon_reload: false,
        },
        UnitFacts::Inactive { .. } if quiet && state.previous == Some(GatewayOutcome::Inactive) => {
            Action::Report(GatewayAction::Inactive)
        }
        UnitFacts::Inactive { need_daemon_reload } => Action::WriteOnly {
            outcome: GatewayOutcome::Inactive,
            daemon_reload: files.dropin || *need_daemon_reload,
        },
        UnitFacts::Active {
            credentials: Credentials::Bad(why),
            ..
        }
        | UnitFacts::NotRunning {
            credentials: Credentials::Bad(why),
            ..
        } => Action::Refuse(why.clone()),
        UnitFacts::Active {
            need_daemon_reload: false,
            ..
        } if !restart_needed => Action::Verify,
        UnitFacts::Active {
            need_daemon_reload, ..
        }
        | UnitFacts::NotRunning {
            need_daemon_reload, ..
        } => Action::Restart {
            reason: restart_reason(flags, files, stores_work, unit),
            daemon_reload: files.dropin || *need_daemon_reload,
        },
    };
    decision(action)
}

/// Rule 1, `--dry-run`: what a run would do (`unchanged`: nothing at all), touching nothing.
fn dry_run(flags: &Flags, restart_pending: bool, unchanged: bool, restart_needed: bool) -> Action {
    Action::DryRun {
        result: if unchanged {
            Outcome::Unchanged
        } else {
            Outcome::DryRun
        },
        would_restart: restart_pending || (restart_needed && !flags.no_restart),
    }
}

/// Rule 2, a gateway a killed run left stopped: restarted whatever the other facts say (the
/// files alone when the unit is gone).
fn resume(unit: &UnitFacts, dropin: bool) -> Action {
    match unit {
        UnitFacts::NotAsked => Action::AskUnit,
        UnitFacts::Missing => Action::WriteOnly {
            outcome: GatewayOutcome::UnitNotFound,
            daemon_reload: false,
        },
        UnitFacts::Inactive { need_daemon_reload }
        | UnitFacts::Active {
            need_daemon_reload, ..
        }
        | UnitFacts::NotRunning {
            need_daemon_reload, ..
        } => Action::Restart {
            reason: RestartReason::Resume,
            daemon_reload: dropin || *need_daemon_reload,
        },
    }
}

/// Rule 6, `--no-restart`: the files written (nothing to write when `quiet`), "not restarted".
fn no_restart(quiet: bool) -> Action {
    if quiet {
        Action::Report(GatewayAction::NotRestarted)
    } else {
        Action::WriteOnly {
            outcome: GatewayOutcome::NotRestarted,
            daemon_reload: false,
        }
    }
}

/// Rule 9, why a gateway that runs (or should) is restarted: the first reason that applies.
fn restart_reason(
    flags: &Flags,
    files: &FileFacts,
    stores_work: bool,
    unit: &UnitFacts,
) -> RestartReason {
    if flags.force {
        RestartReason::Force
    } else if files.gateway_content {
        RestartReason::Files
    } else if stores_work {
        RestartReason::Stores
    } else if matches!(unit, UnitFacts::NotRunning { .. }) {
        RestartReason::NotRunning
    } else {
        RestartReason::Reload
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn entry(profile: &str) -> StoreEntry {
        StoreEntry {
            path: PathBuf::from("/h/.openclaw/agents/main/agent/auth-profiles.json"),
            profile: profile.to_owned(),
        }
    }

    fn active() -> UnitFacts {
        UnitFacts::Active {
            need_daemon_reload: false,
            credentials: Credentials::Good,
        }
    }

    /// The state after a verified run of this version, files and stores clean.
    fn settled() -> Facts {
        Facts {
            state: StateFacts {
                current: true,
                previous: Some(GatewayOutcome::Verified),
            },
            ..Facts::default()
        }
    }

    fn new_version() -> Facts {
        Facts {
            files: FileFacts {
                gateway_content: true,
                dropin: true,
                any_write: true,
                unwritable: None,
            },
            state: StateFacts {
                current: false,
                previous: Some(GatewayOutcome::Verified),
            },
            ..Facts::default()
        }
    }

    fn restart(reason: RestartReason, daemon_reload: bool) -> Action {
        Action::Restart {
            reason,
            daemon_reload,
        }
    }

    #[test]
    fn the_table() {
        let bad = Credentials::Bad("zz-operator.conf overrides".to_owned());
        let recurring = StoreFacts {
            dirty: vec![entry("anthropic:default")],
            cleaned_before: Some(vec![entry("anthropic:default"), entry("anthropic:x")]),
        };
        #[rustfmt::skip]
        let cases: Vec<(&str, Facts, Action, StoreStep)> = vec![
            ("settled: nothing to do, no systemctl", settled(), Action::Report(GatewayAction::Unchanged), StoreStep::Clean),
            ("settled + --force asks for the unit", Facts { flags: Flags { force: true, ..Flags::default() }, ..settled() }, Action::AskUnit, StoreStep::Clean),
            ("settled + --force restarts", Facts { flags: Flags { force: true, ..Flags::default() }, unit: active(), ..settled() }, restart(RestartReason::Force, false), StoreStep::Clean),
            // 1: a run killed while the gateway was stopped; the next run must not say "unchanged".
            ("killed run, files and state current: ask", Facts { restart_pending: true, ..settled() }, Action::AskUnit, StoreStep::Clean),
            ("killed run, gateway inactive: start it", Facts { restart_pending: true, unit: UnitFacts::Inactive { need_daemon_reload: false }, ..settled() }, restart(RestartReason::Resume, false), StoreStep::Clean),
            ("killed run + --no-restart still starts it", Facts { restart_pending: true, flags: Flags { no_restart: true, ..Flags::default() }, unit: UnitFacts::Inactive { need_daemon_reload: true }, ..settled() }, restart(RestartReason::Resume, true), StoreStep::Clean),
            ("killed run + bad credentials still starts it", Facts { restart_pending: true, unit: UnitFacts::NotRunning { need_daemon_reload: false, credentials: bad.clone() }, ..settled() }, restart(RestartReason::Resume, false), StoreStep::Clean),
            ("killed run with a recurring store problem: clean it", Facts { restart_pending: true, stores: recurring.clone(), unit: active(), ..settled() }, restart(RestartReason::Resume, false), StoreStep::Clean),
            ("killed run, unit gone", Facts { restart_pending: true, unit: UnitFacts::Missing, ..settled() }, Action::WriteOnly { outcome: GatewayOutcome::UnitNotFound, daemon_reload: false }, StoreStep::Clean),
            ("killed run, dry run says it would restart", Facts { restart_pending: true, flags: Flags { dry_run: true, ..Flags::default() }, ..settled() }, Action::DryRun { result: Outcome::DryRun, would_restart: true }, StoreStep::Clean),
            // A new version.
            ("new version, running: restart with reload", Facts { unit: active(), ..new_version() }, restart(RestartReason::Files, true), StoreStep::Clean),
            ("new version, --no-restart", Facts { flags: Flags { no_restart: true, ..Flags::default() }, ..new_version() }, Action::WriteOnly { outcome: GatewayOutcome::NotRestarted, daemon_reload: false }, StoreStep::Clean),
            ("new version, unit missing", Facts { unit: UnitFacts::Missing, ..new_version() }, Action::WriteOnly { outcome: GatewayOutcome::UnitNotFound, daemon_reload: false }, StoreStep::Clean),
            ("new version, stopped on purpose", Facts { unit: UnitFacts::Inactive { need_daemon_reload: false }, ..new_version() }, Action::WriteOnly { outcome: GatewayOutcome::Inactive, daemon_reload: true }, StoreStep::Clean),
            ("new version, failed gateway: restart", Facts { unit: UnitFacts::NotRunning { need_daemon_reload: false, credentials: Credentials::Unknown }, ..new_version() }, restart(RestartReason::Files, true), StoreStep::Clean),
            ("new version, dry run", Facts { flags: Flags { dry_run: true, ..Flags::default() }, ..new_version() }, Action::DryRun { result: Outcome::DryRun, would_restart: true }, StoreStep::Clean),
            ("new version, dry run + --no-restart", Facts { flags: Flags { dry_run: true, no_restart: true, ..Flags::default() }, ..new_version() }, Action::DryRun { result: Outcome::DryRun, would_restart: false }, StoreStep::Clean),
            // 3 and the pre-flight: nothing is stopped when a write would fail.
            ("unwritable file: refuse before the stop", Facts { files: FileFacts { unwritable: Some("/h/x: read-only".into()), ..new_version().files }, unit: active(), ..new_version() }, Action::Refuse("/h/x: read-only".into()), StoreStep::Clean),
            // Store cleaning.
            ("dirty store, first time: restart", Facts { stores: StoreFacts { dirty: vec![entry("anthropic:default")], cleaned_before: None }, unit: active(), ..settled() }, restart(RestartReason::Stores, false), StoreStep::Clean),
            // 2: it came back after the restart for this version: hold, no restart, no unit call.
            ("recurring store problem, settled: held", Facts { stores: recurring.clone(), ..settled() }, Action::Report(GatewayAction::Unchanged), StoreStep::Hold),
            ("recurring store problem, state behind: verify only", Facts { stores: recurring.clone(), unit: active(), state: StateFacts { current: false, previous: None }, ..settled() }, Action::Verify, StoreStep::Hold),
            ("recurring + a new profile: one more restart", Facts { stores: StoreFacts { dirty: vec![entry("anthropic:default"), entry("anthropic:new")], ..recurring.clone() }, unit: active(), ..settled() }, restart(RestartReason::Stores, false), StoreStep::Clean),
            ("recurring + --force: restart", Facts { stores: recurring.clone(), flags: Flags { force: true, ..Flags::default() }, unit: active(), ..settled() }, restart(RestartReason::Force, false), StoreStep::Clean),
            ("recurring + new version: restart and clean", Facts { stores: recurring.clone(), unit: active(), ..new_version() }, restart(RestartReason::Files, true), StoreStep::Clean),
            ("recurring, dry run: no restart promised", Facts { stores: recurring.clone(), flags: Flags { dry_run: true, ..Flags::default() }, ..settled() }, Action::DryRun { result: Outcome::Unchanged, would_restart: false }, StoreStep::Hold),
            // State behind (a run killed after writing): a check, not a restart.
            ("state behind, running: verify", Facts { unit: active(), state: StateFacts { current: false, previous: None }, ..settled() }, Action::Verify, StoreStep::Clean),
            ("state behind, daemon-reload pending: restart", Facts { unit: UnitFacts::Active { need_daemon_reload: true, credentials: Credentials::Unknown }, state: StateFacts { current: false, previous: None }, ..settled() }, restart(RestartReason::Reload, true), StoreStep::Clean),
            ("mode fix only: verify, no restart", Facts { files: FileFacts { any_write: true, ..FileFacts::default() }, unit: active(), ..settled() }, Action::Verify, StoreStep::Clean),
            // 5: systemd would hand the gateway another token or a preferred variable.
            ("override or preferred variable: refuse, no restart", Facts { unit: UnitFacts::Active { need_daemon_reload: false, credentials: bad.clone() }, state: StateFacts { current: false, previous: None }, ..settled() }, Action::Refuse("zz-operator.conf overrides".into()), StoreStep::Clean),
            ("override + --force: still refused", Facts { flags: Flags { force: true, ..Flags::default() }, unit: UnitFacts::Active { need_daemon_reload: false, credentials: bad.clone() }, ..settled() }, Action::Refuse("zz-operator.conf overrides".into()), StoreStep::Clean),
            ("override on a failed gateway: refuse", Facts { unit: UnitFacts::NotRunning { need_daemon_reload: false, credentials: bad.clone() }, state: StateFacts { current: false, previous: None }, ..settled() }, Action::Refuse("zz-operator.conf overrides".into()), StoreStep::Clean),
            ("failed gateway, nothing else: restart", Facts { unit: UnitFacts::NotRunning { need_daemon_reload: false, credentials: Credentials::Good }, state: StateFacts { current: false, previous: None }, ..settled() }, restart(RestartReason::NotRunning, false), StoreStep::Clean),
            // Repeat runs after a run that could not prove anything write nothing.
            ("repeat --no-restart", Facts { flags: Flags { no_restart: true, ..Flags::default() }, state: StateFacts { current: true, previous: Some(GatewayOutcome::NotRestarted) }, ..settled() }, Action::Report(GatewayAction::NotRestarted), StoreStep::Clean),
            ("after --no-restart, a plain run verifies (and restarts if the token is not there)", Facts { unit: active(), state: StateFacts { current: true, previous: Some(GatewayOutcome::NotRestarted) }, ..settled() }, Action::Verify, StoreStep::Clean),
            ("repeat, unit still missing", Facts { unit: UnitFacts::Missing, state: StateFacts { current: true, previous: Some(GatewayOutcome::UnitNotFound) }, ..settled() }, Action::Report(GatewayAction::UnitNotFound), StoreStep::Clean),
            ("repeat, still stopped on purpose", Facts { unit: UnitFacts::Inactive { need_daemon_reload: false }, state: StateFacts { current: true, previous: Some(GatewayOutcome::Inactive) }, ..settled() }, Action::Report(GatewayAction::Inactive), StoreStep::Clean),
            ("was stopped, now running: verify", Facts { unit: active(), state: StateFacts { current: true, previous: Some(GatewayOutcome::Inactive) }, ..settled() }, Action::Verify, StoreStep::Clean),
        ];
        assert_eq!(
            cases.len(),
            37,
            "README \"Guarantees\" gives the size of this table"
        );
        for (name, facts, action, stores) in cases {
            let got = decide(&facts);
            assert_eq!(got.action, action, "{name}");
            assert_eq!(got.stores, stores, "{name}");
        }
    }

    #[test]
    fn no_fact_combination_stops_a_gateway_without_a_start_or_leaves_one_down() {
        // Every Restart is stop+start by construction; here: with the marker set, the decision
        // is always a start (or asks first), and a refusal never happens while it is set.
        let units = [
            UnitFacts::Missing,
            UnitFacts::Inactive {
                need_daemon_reload: false,
            },
            active(),
            UnitFacts::NotRunning {
                need_daemon_reload: true,
                credentials: Credentials::Bad("x".into()),
            },
        ];
        for unit in units {
            for bits in 0..64u8 {
                let facts = Facts {
                    restart_pending: true,
                    flags: Flags {
                        force: bits & 1 != 0,
                        no_restart: bits & 2 != 0,
                        dry_run: false,
                    },
                    files: FileFacts {
                        unwritable: (bits & 4 != 0).then(|| "ro".to_owned()),
                        gateway_content: bits & 16 != 0,
                        dropin: bits & 16 != 0,
                        any_write: bits & 16 != 0,
                    },
                    stores: if bits & 32 != 0 {
                        StoreFacts {
                            dirty: vec![entry("anthropic:default")],
                            cleaned_before: Some(vec![entry("anthropic:default")]),
                        }
                    } else {
                        StoreFacts::default()
                    },
                    state: StateFacts {
                        current: bits & 8 != 0,
                        previous: Some(GatewayOutcome::Verified),
                    },
                    unit: unit.clone(),
                };
                let decision = decide(&facts);
                assert_eq!(decision.stores, StoreStep::Clean, "{facts:?}");
                let action = decision.action;
                let ok = match unit {
                    UnitFacts::Missing => matches!(action, Action::WriteOnly { .. }),
                    _ => matches!(
                        action,
                        Action::Restart {
                            reason: RestartReason::Resume,
                            ..
                        }
                    ),
                };
                assert!(ok, "{facts:?} -> {action:?}");
            }
        }
    }
}
