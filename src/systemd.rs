//! The gateway's user unit, driven through `systemctl --user` as the target user: reading its
//! state, reload/stop/start, and proving that the running process carries the token (by comparing
//! the SHA-256 fingerprint of the variable in `/proc/<MainPID>/environ`; the value is never
//! printed or passed on a command line).

use crate::error::{Error, Result};
use crate::privileges::TargetUser;
use crate::secret::Fingerprint;
use std::process::Command;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// How `systemctl --user` is invoked for one user.
pub struct Systemctl {
    user: TargetUser,
}

/// What `systemctl show` says about the unit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitStatus {
    pub load_state: String,
    pub active_state: String,
    pub main_pid: u32,
    pub need_daemon_reload: bool,
    pub drop_in_paths: Vec<String>,
    pub fragment_path: String,
}

impl UnitStatus {
    pub fn exists(&self) -> bool {
        self.load_state != "not-found" && !self.load_state.is_empty()
    }

    pub fn is_active(&self) -> bool {
        self.active_state == "active"
    }

    /// Stopped on purpose (not failed, not on its way up or down).
    pub fn is_inactive(&self) -> bool {
        self.active_state == "inactive"
    }
}

impl Systemctl {
    pub fn new(user: TargetUser) -> Systemctl {
        Systemctl { user }
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        let (output, stdout, stderr) = self.output(args)?;
        if !output.status.success() {
            return Err(Error::failed(format!(
                "systemctl --user {} failed for {} ({}): {}",
                args.join(" "),
                self.user.name,
                output.status,
                stderr.trim()
            )));
        }
        Ok(stdout)
    }

    /// Runs systemctl and returns its output whatever its exit status (but refuses the chroot
    /// no-op, where systemctl exits 0 having done nothing).
    fn output(&self, args: &[&str]) -> Result<(std::process::Output, String, String)> {
        let runtime_dir = self.user.runtime_dir();
        let output = Command::new("systemctl")
            .arg("--user")
            .arg("--no-ask-password")
            .args(args)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("HOME", &self.user.home)
            .env("USER", &self.user.name)
            .env("LOGNAME", &self.user.name)
            .env("LANG", "C")
            .env("SYSTEMD_PAGER", "")
            .env("XDG_RUNTIME_DIR", &runtime_dir)
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                format!("unix:path={}/bus", runtime_dir.display()),
            )
            .output()
            .map_err(|e| Error::failed(format!("cannot run systemctl: {e}")))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if stderr.contains("Running in chroot, ignoring")
            || stdout.contains("Running in chroot, ignoring")
        {
            return Err(Error::failed(format!(
                "systemctl --user {} was ignored (\"Running in chroot\"): no user manager reachable for {}",
                args.join(" "),
                self.user.name
            )));
        }
        Ok((output, stdout, stderr))
    }

    pub fn show(&self, unit: &str) -> Result<UnitStatus> {
        let text = self.run(&[
            "show",
            "-p",
            "LoadState,ActiveState,MainPID,NeedDaemonReload,DropInPaths,FragmentPath",
            "--",
            unit,
        ])?;
        let mut status = UnitStatus::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match key {
                "LoadState" => status.load_state = value.to_owned(),
                "ActiveState" => status.active_state = value.to_owned(),
                "MainPID" => status.main_pid = value.parse().unwrap_or(0),
                "NeedDaemonReload" => status.need_daemon_reload = value == "yes",
                "FragmentPath" => status.fragment_path = value.to_owned(),
                "DropInPaths" => {
                    status.drop_in_paths = value.split_whitespace().map(str::to_owned).collect()
                }
                _ => {}
            }
        }
        Ok(status)
    }

    /// `systemctl --user is-active UNIT`: "active", "inactive", "failed", ... or "unknown" when
    /// the manager cannot be asked.
    pub fn active_state_of(&self, unit: &str) -> String {
        match self.output(&["is-active", "--", unit]) {
            Ok((_, stdout, _)) if !stdout.trim().is_empty() => stdout.trim().to_owned(),
            _ => "unknown".to_owned(),
        }
    }

    pub fn daemon_reload(&self) -> Result<()> {
        self.run(&["daemon-reload"]).map(drop)
    }

    pub fn stop(&self, unit: &str) -> Result<()> {
        self.run(&["stop", "--", unit]).map(drop)
    }

    pub fn start(&self, unit: &str) -> Result<()> {
        // A unit that hit its start limit or failed stays "failed" until reset.
        let _ = self.run(&["reset-failed", "--", unit]);
        self.run(&["start", "--", unit]).map(drop)
    }

    /// Waits for the unit to run a new main process carrying `variable` with the expected
    /// fingerprint, then checks that it is still running after `settle`.
    pub fn verify(
        &self,
        unit: &str,
        old_pid: Option<u32>,
        expect: &Expectation,
        limits: VerifyLimits,
    ) -> Result<u32> {
        let deadline = Instant::now() + limits.timeout;
        let pid = loop {
            let status = self.show(unit)?;
            if status.is_active() && status.main_pid != 0 && Some(status.main_pid) != old_pid {
                break status.main_pid;
            }
            if status.active_state == "failed" || Instant::now() >= deadline {
                return Err(Error::failed(format!(
                    "{unit} did not come up with a new main process within {} s (state {}, MainPID {}); see `journalctl --user -u {unit}`",
                    limits.timeout.as_secs(),
                    status.active_state,
                    status.main_pid
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        self.confirm_running(unit, pid, expect, limits)?;
        Ok(pid)
    }

    /// Proves that `pid` carries the token and is still the unit's main process, active, after
    /// `settle`: a crash-looping gateway is briefly "active" with the right environment.
    pub fn confirm_running(
        &self,
        unit: &str,
        pid: u32,
        expect: &Expectation,
        limits: VerifyLimits,
    ) -> Result<()> {
        check_environment(unit, pid, expect)?;
        std::thread::sleep(limits.settle);
        let after = self.show(unit)?;
        if !after.is_active() || after.main_pid != pid {
            return Err(Error::failed(format!(
                "{unit} stopped running within {} ms of starting (state {}, MainPID {} instead of {pid}); see `journalctl --user -u {unit}`",
                limits.settle.as_millis(),
                after.active_state,
                after.main_pid
            )));
        }
        Ok(())
    }
}

/// The variable a verified gateway must carry.
pub struct Expectation<'a> {
    pub variable: &'a str,
    pub fingerprint: &'a Fingerprint,
}

#[derive(Clone, Copy, Debug)]
pub struct VerifyLimits {
    pub timeout: Duration,
    pub settle: Duration,
}

/// Compares the variable in a running process's environment with the expected fingerprint.
pub fn check_environment(unit: &str, pid: u32, expect: &Expectation) -> Result<()> {
    match environ_fingerprint(pid, expect.variable)? {
        Some(found) if &found == expect.fingerprint => Ok(()),
        Some(found) => Err(Error::failed(format!(
            "{unit} (pid {pid}) runs with {} = {found}, not the synced token {}: an EnvironmentFile= or another drop-in overrides ours (check ~/.openclaw/gateway.systemd.env and `systemctl --user cat {unit}`)",
            expect.variable, expect.fingerprint
        ))),
        None => Err(Error::failed(format!(
            "{unit} (pid {pid}) runs without {}: the drop-in was not loaded or an UnsetEnvironment= removes it (check `systemctl --user cat {unit}`)",
            expect.variable
        ))),
    }
}

/// Fingerprint of `variable` in `/proc/<pid>/environ`, or `None` when it is not set.
pub fn environ_fingerprint(pid: u32, variable: &str) -> Result<Option<Fingerprint>> {
    let path = format!("/proc/{pid}/environ");
    let environ = Zeroizing::new(
        std::fs::read(&path).map_err(|e| Error::failed(format!("{path}: cannot read: {e}")))?,
    );
    let prefix = format!("{variable}=");
    Ok(environ
        .split(|b| *b == 0)
        .find_map(|entry| entry.strip_prefix(prefix.as_bytes()))
        .map(Fingerprint::of))
}
