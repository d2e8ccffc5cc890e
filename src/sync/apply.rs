//! The only side effects of a sync: writing the managed files (files that belong partly to
//! someone else are read again right before the write, so an edit made since the plan is kept),
//! cleaning stores, and the gateway's stop → write → clean → reload → start → verify, with the
//! `restart-pending` marker that lets the next run start a gateway a killed run left stopped.

use super::decide::StoreStep;
use super::plan::{self, Plan};
use crate::aws;
use crate::error::{Error, Result};
use crate::host::fsutil;
use crate::host::managed_files::{FileAction, FileRole};
use crate::host::state::{self, StoreCleanings, StoreEntry};
use crate::host::systemd::{Expectation, Systemctl, UnitStatus, VerifyLimits};
use crate::openclaw::stores::document::{Cleaning, ProfileSelector};
use crate::secret::Token;
use std::path::Path;

/// What cleaning did to each planned store, aligned with `Plan::stores`: `None` when the store
/// was not touched.
pub type StoreResults = Vec<Option<std::result::Result<Cleaning, String>>>;

/// What the apply step needs.
pub struct Applier<'a> {
    pub plan: &'a Plan,
    pub token: &'a Token,
    pub selector: &'a ProfileSelector,
    pub store_step: StoreStep,
    pub systemctl: &'a Systemctl,
    pub unit: &'a str,
    pub expect: &'a Expectation<'a>,
    pub verify: VerifyLimits,
    pub marker: &'a Path,
    /// Where the store entries a restart removed are recorded, with what earlier restarts of
    /// this version removed.
    pub cleanings: Cleanings<'a>,
    /// Run after the files are written and the stores cleaned, before the start: what switching
    /// back from `secret-ref` delivery removes (`super::undo_reference`).
    pub after_clean: Option<&'a dyn Fn() -> Result<()>>,
}

/// The record of store entries removed by restarts of one secret version.
pub struct Cleanings<'a> {
    pub file: &'a Path,
    pub before: Option<&'a StoreCleanings>,
    pub secret: &'a aws::FetchedSecret,
}

/// A gateway proven to run with the token, after a restart or without one.
pub struct Running {
    pub restarted: bool,
    pub old_pid: Option<u32>,
    pub new_pid: u32,
    pub stores: StoreResults,
}

impl Applier<'_> {
    /// Writes every file that differs and cleans every store that needs it (unless held). Store
    /// failures are collected (the store is left as it was); a file failure stops the run.
    pub fn write_and_clean(&self) -> Result<StoreResults> {
        for stray in &self.plan.stray {
            tracing::info!(path = %stray.display(), "removing a drop-in systemd never reads");
            remove_file(stray)?;
            // The directory goes too when that left it empty; anything else in it stays.
            if let Some(dir) = stray.parent() {
                let _ = std::fs::remove_dir(dir);
            }
        }
        for file in &self.plan.files {
            if file.action == FileAction::Unchanged {
                continue;
            }
            if file.privileged {
                tracing::info!(path = %file.path.display(), action = ?file.action, "writing as root");
                crate::host::privileges::as_root(|| {
                    write_system_dropin(&file.path, &file.desired)
                })?;
                continue;
            }
            let dir = fsutil::parent_of(&file.path)?;
            fsutil::ensure_dir(dir, file.role == FileRole::DropIn)?;
            let fresh;
            let desired = if plan::edited_in_place(file.role) {
                // Someone else's bytes: render again from what is there now.
                let now = fsutil::read_managed(&file.path)?;
                match plan::render(
                    file.role,
                    now.as_ref().map(|f| f.content.as_slice()),
                    self.token,
                ) {
                    Some((content, _)) => {
                        fresh = content;
                        &fresh
                    }
                    // The managed line went away meanwhile: nothing of ours is left there.
                    None => continue,
                }
            } else {
                &file.desired
            };
            tracing::info!(path = %file.path.display(), action = ?file.action, "writing");
            fsutil::write_atomic(&file.path, desired, file.mode)?;
        }
        Ok(self
            .plan
            .stores
            .iter()
            .map(|planned| match &planned.inspected {
                Ok(cleaning) if cleaning.is_empty() => None,
                Ok(_) if self.store_step == StoreStep::Hold => None,
                Ok(_) => Some(
                    planned
                        .store
                        .clean(self.selector)
                        .map_err(|e| e.to_string()),
                ),
                Err(_) => None,
            })
            .collect())
    }

    /// Stop, write, clean, reload, start, verify. Once stopped, the gateway is started again
    /// whatever failed in between; the first error is returned after that.
    pub fn restart(&self, status: &UnitStatus, daemon_reload: bool) -> Result<Running> {
        let unit = self.unit;
        let old_pid = (status.main_pid != 0).then_some(status.main_pid);
        fsutil::write_atomic(self.marker, format!("{unit}\n").as_bytes(), 0o600)?;
        tracing::info!(unit, "stopping the gateway");
        let stopped = self.systemctl.stop(unit, self.verify.stop);
        let applied = if stopped.is_ok() {
            self.write_and_clean().and_then(|results| {
                self.after_clean.map_or(Ok(()), |undo| undo())?;
                Ok(results)
            })
        } else {
            Ok(Vec::new())
        };
        // Before the start (a kill after it must not cost a second restart), and only for what
        // was really removed: a clean that failed or never ran is not a store that "came back".
        let recorded = match &applied {
            Ok(results) => self.record(results),
            Err(_) => Ok(()),
        };
        let reloaded = if daemon_reload && stopped.is_ok() {
            self.systemctl.daemon_reload()
        } else {
            Ok(())
        };
        tracing::info!(unit, "starting the gateway");
        // The start is queued; the marker goes only once the unit is seen up (a start that
        // fails later leaves it, so the next run starts the gateway again). After a stop that
        // did not end, the start waits behind it and the marker stays.
        let started = self.systemctl.start(unit).and_then(|()| match &stopped {
            Ok(()) => self.systemctl.wait_started(unit, self.verify.timeout),
            Err(_) => Ok(()),
        });
        if started.is_ok() && stopped.is_ok() {
            remove_file(self.marker)?;
        }
        stopped?;
        let stores = applied?;
        reloaded?;
        started?;
        recorded?;
        let new_pid = self
            .systemctl
            .verify(unit, old_pid, self.expect, self.verify)?;
        Ok(Running {
            restarted: true,
            old_pid,
            new_pid,
            stores,
        })
    }

    /// Adds the entries `results` removed to the record of this version.
    fn record(&self, results: &StoreResults) -> Result<()> {
        let removed: Vec<StoreEntry> = self
            .plan
            .stores
            .iter()
            .zip(results)
            .filter(|(_, result)| matches!(result, Some(Ok(done)) if !done.is_empty()))
            .flat_map(|(planned, _)| planned.entries())
            .collect();
        if removed.is_empty() {
            return Ok(());
        }
        let Cleanings {
            file,
            before,
            secret,
        } = &self.cleanings;
        let mut cleaned: Vec<StoreEntry> = before.map(|r| r.cleaned.clone()).unwrap_or_default();
        cleaned.extend(removed);
        cleaned.sort();
        cleaned.dedup();
        state::save_cleanings(
            file,
            &StoreCleanings {
                secret_arn: secret.arn.clone(),
                version_id: secret.version_id.clone(),
                fingerprint: secret.token.fingerprint().clone(),
                cleaned,
            },
        )
    }

    /// Proves the running gateway carries the token, then writes what only needs a rewrite
    /// (mode, owner). When the gateway runs another token or none (a run killed after writing),
    /// it is restarted; an error about reading the process is returned as it is.
    pub fn verify_or_restart(&self, status: &UnitStatus) -> Result<Running> {
        match self
            .systemctl
            .confirm_running(self.unit, status.main_pid, self.expect, self.verify)
        {
            Ok(()) => Ok(Running {
                restarted: false,
                old_pid: Some(status.main_pid),
                new_pid: status.main_pid,
                stores: self.write_and_clean()?,
            }),
            Err(
                err @ (Error::GatewayRunsOtherToken { .. }
                | Error::GatewayLacksToken { .. }
                | Error::CompetingCredential { .. }
                | Error::GatewayDown(_)),
            ) => {
                tracing::info!(unit = self.unit, reason = %err, "the running gateway is not proven; restarting it");
                self.restart(status, status.need_daemon_reload)
            }
            Err(err) => Err(err),
        }
    }
}

/// A system unit's drop-in, as root: its `<unit>.d/` is created 0755 like the rest of
/// `/etc/systemd/system` (so the user can see the file exists), the file 0600, never through a
/// symlink.
fn write_system_dropin(path: &Path, content: &[u8]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = fsutil::parent_of(path)?;
    if std::fs::symlink_metadata(dir).is_err() {
        std::fs::create_dir(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            action: "create directory",
            detail: source.to_string(),
            source,
        })?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).map_err(
            |source| Error::Io {
                path: dir.to_path_buf(),
                action: "set mode 0755 on",
                detail: source.to_string(),
                source,
            },
        )?;
        fsutil::sync_dir(fsutil::parent_of(dir)?)?;
    }
    fsutil::ensure_dir(dir, false)?;
    fsutil::write_atomic(path, content, 0o600)
}

pub fn remove_marker(marker: &Path) -> Result<()> {
    remove_file(marker)
}

/// Removes a file (a missing one is fine) and makes the removal durable.
pub(super) fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => fsutil::sync_dir(fsutil::parent_of(path)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io {
            path: path.to_path_buf(),
            action: "remove",
            detail: source.to_string(),
            source,
        }),
    }
}
