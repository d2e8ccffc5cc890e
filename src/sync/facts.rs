//! Gathering the facts the decision needs: everything `decide` reads, from the plan, the state
//! file, the `restart-pending` marker and the store cleanings of this version, and (only when the
//! decision asks) the unit: its state, a pending reload, and whether what systemd would hand the
//! gateway lets OpenClaw use our token.

use super::decide::{Credentials, Facts, Flags, StateFacts, StoreFacts, UnitFacts};
use super::plan::Plan;
use super::SyncOptions;
use crate::aws::FetchedSecret;
use crate::error::Result;
use crate::host::managed_files::ManagedPaths;
use crate::host::state::{AppliedState, StoreCleanings};
use crate::host::systemd::{CredentialSource, Systemctl, UnitStatus};
use crate::secret::{Fingerprint, Token};
use std::path::Path;

/// The facts that cost no `systemctl` call (the unit is left `NotAsked`).
pub fn gather(
    options: &SyncOptions,
    secret: &FetchedSecret,
    plan: &Plan,
    previous: Option<&AppliedState>,
    cleaned_before: Option<&StoreCleanings>,
    marker: &Path,
) -> Facts {
    let token = &secret.token;
    Facts {
        flags: Flags {
            dry_run: options.dry_run,
            force: options.force,
            no_restart: options.no_restart,
        },
        files: plan.file_facts(),
        stores: StoreFacts {
            dirty: plan.store_entries(),
            cleaned_before: cleaned_before.map(|r| r.cleaned.clone()),
        },
        state: StateFacts {
            current: previous.is_some_and(|p| {
                p.secret_arn == secret.arn
                    && p.version_id == secret.version_id
                    && p.fingerprint == *token.fingerprint()
                    && p.unit == options.unit
                    && p.variable == token.kind().variable()
                    && p.delivery == crate::openclaw::secret_ref::Delivery::Env
            }),
            previous: previous.map(|p| p.gateway),
        },
        restart_pending: std::fs::symlink_metadata(marker).is_ok(),
        unit: UnitFacts::NotAsked,
    }
}

/// The unit's facts; what systemd would hand the gateway is judged only when it is already what
/// the next start gets (nothing the gateway reads changes, no daemon-reload pending).
pub fn unit_facts(
    systemctl: &Systemctl,
    unit: &str,
    status: &mut UnitStatus,
    facts: &Facts,
    token: &Token,
    paths: &ManagedPaths,
) -> Result<UnitFacts> {
    if !status.exists() {
        return Ok(UnitFacts::Missing);
    }
    let on_disk = paths.dropin.exists();
    let unloaded = |status: &UnitStatus| {
        on_disk
            && !facts.files.dropin
            && !status.need_daemon_reload
            && !dropin_loaded(status, &paths.dropin)
    };
    if unloaded(status) {
        // Our drop-in is on disk and current, yet systemd neither loaded it nor flags a reload
        // (it does not notice a `<unit>.d/` it has never seen, e.g. after a `--no-restart` run):
        // reload (which restarts nothing) and look again.
        systemctl.daemon_reload()?;
        *status = systemctl.show(unit)?;
    }
    let never_loads = unloaded(status);
    let need_daemon_reload = status.need_daemon_reload
        || (on_disk && !never_loads && !dropin_loaded(status, &paths.dropin));
    if status.is_inactive() {
        return Ok(UnitFacts::Inactive { need_daemon_reload });
    }
    let credentials = if never_loads {
        Credentials::Bad(format!(
            "systemd does not load {} for {unit}, even after a daemon-reload: the user manager reads its units from elsewhere (XDG_CONFIG_HOME, or --home {} is not the manager's home); point --home and --unit at the unit the manager runs",
            paths.dropin.display(),
            paths.home.display()
        ))
    } else if facts.files.gateway_content || need_daemon_reload {
        Credentials::Unknown
    } else {
        judge_credentials(
            &systemctl.unit_credentials(unit)?,
            token.kind().variable(),
            token.fingerprint(),
        )
    };
    Ok(if status.is_active() {
        UnitFacts::Active {
            need_daemon_reload,
            credentials,
        }
    } else {
        UnitFacts::NotRunning {
            need_daemon_reload,
            credentials,
        }
    })
}

/// Whether systemd loaded our drop-in (paths compared as written and resolved, so a symlinked
/// home still matches).
fn dropin_loaded(status: &UnitStatus, dropin: &Path) -> bool {
    let resolved = std::fs::canonicalize(dropin).ok();
    status.drop_in_paths.iter().any(|loaded| {
        let loaded = Path::new(loaded);
        loaded == dropin
            || resolved
                .as_deref()
                .is_some_and(|r| std::fs::canonicalize(loaded).is_ok_and(|l| l == r))
    })
}

/// Whether what systemd hands the gateway lets OpenClaw use our token: our variable with our
/// fingerprint, and no variable OpenClaw takes first.
pub fn judge_credentials(
    sources: &[CredentialSource],
    variable: &str,
    fingerprint: &Fingerprint,
) -> Credentials {
    match sources.iter().find(|s| s.variable == variable) {
        Some(ours) if ours.fingerprint != *fingerprint => {
            return Credentials::Bad(format!(
                "{} sets {variable} = {}, not the synced token {fingerprint}, and overrides our drop-in; a restart cannot fix that: remove or correct that assignment, then sync again",
                ours.origin, ours.fingerprint
            ))
        }
        Some(_) => {}
        None => {
            return Credentials::Bad(format!(
                "systemd hands the gateway no {variable} although our drop-in sets it (an UnsetEnvironment= or a later empty assignment?); check `systemctl --user cat` for the unit"
            ))
        }
    }
    match sources
        .iter()
        .find(|s| crate::host::systemd::preferred_over(&s.variable, variable))
    {
        Some(other) => Credentials::Bad(format!(
            "{} sets {} ({}), which OpenClaw uses before {variable}, so the synced token would not be used: remove that assignment, then sync again",
            other.origin, other.variable, other.fingerprint
        )),
        None => Credentials::Good,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(variable: &str, value: &str, origin: &str) -> CredentialSource {
        CredentialSource {
            variable: variable.to_owned(),
            fingerprint: Fingerprint::of(value.as_bytes()),
            origin: origin.to_owned(),
        }
    }

    #[test]
    fn what_systemd_hands_the_gateway_is_judged_by_openclaw_s_preference() {
        let ours = Fingerprint::of(b"key");
        let api = "ANTHROPIC_API_KEY";
        let oauth = "ANTHROPIC_OAUTH_TOKEN";
        assert_eq!(
            judge_credentials(&[source(api, "key", "drop-in")], api, &ours),
            Credentials::Good
        );
        // An OAuth token next to our API key: OpenClaw takes it first.
        let both = [
            source(api, "key", "drop-in"),
            source(oauth, "old", "Environment= in /h/zz-operator.conf"),
        ];
        let Credentials::Bad(why) = judge_credentials(&both, api, &ours) else {
            panic!("both variables judged good");
        };
        assert!(
            why.contains("zz-operator.conf") && why.contains(oauth),
            "{why}"
        );
        // An API key next to our OAuth token is harmless.
        let ours_oauth = Fingerprint::of(b"tok");
        let harmless = [source(oauth, "tok", "drop-in"), source(api, "old", "x")];
        assert_eq!(
            judge_credentials(&harmless, oauth, &ours_oauth),
            Credentials::Good
        );
        // Another value of our variable, from a file that overrides the drop-in.
        let overridden = [source(api, "other", "/h/.openclaw/extra.env")];
        let Credentials::Bad(why) = judge_credentials(&overridden, api, &ours) else {
            panic!("an override judged good");
        };
        assert!(
            why.contains("extra.env") && why.contains("overrides"),
            "{why}"
        );
        assert!(matches!(
            judge_credentials(&[], api, &ours),
            Credentials::Bad(_)
        ));
    }
}
