//! The gateway's unit, driven through `systemctl --user` as the target user (or, for a system
//! unit with `User=`, through the system manager as root): reading its state, reload/stop/start,
//! and proving that the running process carries the token (by comparing the SHA-256 fingerprint
//! of the variable in `/proc/<MainPID>/environ`; the value is never printed or passed on a
//! command line).
//!
//! The unit, its drop-ins and environment files, its processes and its manager's answers are the
//! gateway user's, and that user is hostile (README "Security model"). So: `systemctl` and
//! `systemd-run` start with a cleared environment (only `PATH`, `LANG`, `HOME` and the manager's
//! address, set here), nothing of the user's ever goes into root's environment, argv or a unit
//! property ([`Systemctl::run_transient`]), a stop is queued and waited for at most
//! `--stop-timeout`, a start is queued and waited for by `verify` at most `--verify-timeout`, and
//! discovery looks at no more than [`MAX_LISTED_UNITS`] unit files.
//!
//! Test seam: `OPENCLAW_TOKEN_SYSTEM_MANAGER_RUNTIME_DIR` (read only when set) makes "the system
//! manager" root's *user* manager listening in that runtime directory, with system drop-ins under
//! root's `~/.config/systemd/user`: a test machine whose PID 1 is not systemd has no system
//! manager, and root's user manager runs `User=` units the same way.

use crate::error::{Error, Result};
use crate::host::managed_files;
use crate::host::privileges::TargetUser;
use crate::secret::{Fingerprint, CREDENTIAL_VARIABLES, MANAGED_VARIABLES};
use std::process::Command;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// How `systemctl` is invoked for one user's gateway.
pub struct Systemctl {
    user: TargetUser,
    manager: Manager,
}

/// Which systemd manager runs a gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Manager {
    /// The user's own manager (`systemctl --user`, drop-ins in `~/.config/systemd/user`).
    User,
    /// The system manager, the unit running as its `User=` (drop-ins in `/etc/systemd/system`).
    System,
}

/// The most `openclaw*` unit files discovery looks at for one manager (see `Systemctl::gateways`).
pub const MAX_LISTED_UNITS: usize = 64;

/// The test seam's variable (module docs).
pub const SYSTEM_MANAGER_SEAM: &str = "OPENCLAW_TOKEN_SYSTEM_MANAGER_RUNTIME_DIR";

fn system_seam() -> Option<std::path::PathBuf> {
    std::env::var_os(SYSTEM_MANAGER_SEAM)
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
}

/// Whether there is a system manager to ask: PID 1 is systemd (`sd_booted()`'s test, the
/// directory `/run/systemd/system`, which only a systemd boot creates and a reboot alone
/// removes), or the test seam names one. Without one nothing is asked (no process started).
pub fn system_manager_present() -> bool {
    system_seam().is_some() || std::path::Path::new("/run/systemd/system").is_dir()
}

/// Where drop-ins for system units go: `/etc/systemd/system` (or, under the test seam, root's
/// user unit directory).
pub fn system_unit_dir() -> std::path::PathBuf {
    match system_seam() {
        Some(_) => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(0))
            .ok()
            .flatten()
            .map_or_else(|| "/root".into(), |root| root.dir)
            .join(".config/systemd/user"),
        None => "/etc/systemd/system".into(),
    }
}

/// A gateway unit found by discovery, and the user it runs as (`User=`; empty for a user unit).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FoundGateway {
    pub unit: String,
    pub user: String,
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
        Systemctl {
            user,
            manager: Manager::User,
        }
    }

    /// The system manager, for units that run as `user` (`User=`).
    /// The manager `manager` of `user`'s gateway.
    pub fn for_manager(user: TargetUser, manager: Manager) -> Systemctl {
        match manager {
            Manager::User => Systemctl::new(user),
            Manager::System => Systemctl::system(user),
        }
    }

    pub fn system(user: TargetUser) -> Systemctl {
        Systemctl {
            user,
            manager: Manager::System,
        }
    }

    /// The user whose gateway this is.
    pub fn user_name(&self) -> &str {
        &self.user.name
    }

    pub fn manager(&self) -> Manager {
        self.manager
    }

    /// How an operator reaches this manager: `systemctl --user` or `systemctl`.
    pub fn cli(&self) -> &'static str {
        match self.manager {
            Manager::User => "systemctl --user",
            Manager::System => "systemctl",
        }
    }

    /// `journalctl --user` or `journalctl`, for messages.
    pub fn journal(&self) -> &'static str {
        match self.manager {
            Manager::User => "journalctl --user",
            Manager::System => "journalctl",
        }
    }

    /// The environment every systemctl/systemd-run call gets: nothing of ours, just what is
    /// needed to reach the manager (the user's, as the user; the system's, as root), and the
    /// scope flag (`--user` for a user manager).
    fn user_command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("LANG", "C")
            .env("SYSTEMD_PAGER", "");
        let runtime_dir = match (self.manager, system_seam()) {
            (Manager::User, _) => Some(self.user.runtime_dir()),
            (Manager::System, seam) => seam,
        };
        match self.manager {
            Manager::User => {
                command
                    .env("HOME", &self.user.home)
                    .env("USER", &self.user.name)
                    .env("LOGNAME", &self.user.name);
                crate::host::privileges::child_identity(
                    &mut command,
                    crate::host::privileges::ChildIdentity::User,
                );
            }
            Manager::System => {
                command.env("HOME", "/root");
                crate::host::privileges::child_identity(
                    &mut command,
                    crate::host::privileges::ChildIdentity::Root,
                );
            }
        }
        if let Some(runtime_dir) = runtime_dir {
            command
                .env("XDG_RUNTIME_DIR", &runtime_dir)
                .env(
                    "DBUS_SESSION_BUS_ADDRESS",
                    format!("unix:path={}/bus", runtime_dir.display()),
                )
                .arg("--user");
        }
        command
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        let (output, stdout, stderr) = self.output(args)?;
        if !output.status.success() {
            return Err(self.failure(args, &output.status, &stderr));
        }
        Ok(stdout)
    }

    /// A failed call: the cause and what to do first when the manager cannot be reached at
    /// all, systemctl's own words after.
    fn failure(&self, args: &[&str], status: &std::process::ExitStatus, stderr: &str) -> Error {
        let call = format!("{} {}", self.cli(), args.join(" "));
        Error::Systemd(match self.unreachable_hint(stderr) {
            Some(hint) => format!("{hint} ({call}: {})", stderr.trim()),
            None => format!(
                "{call} failed for {} ({status}): {}",
                self.user.name,
                stderr.trim()
            ),
        })
    }

    /// What to do when the manager cannot be reached at all (no bus).
    fn unreachable_hint(&self, stderr: &str) -> Option<String> {
        if !stderr.contains("Failed to connect to bus") && !stderr.contains("No medium found") {
            return None;
        }
        let name = &self.user.name;
        let runtime = self.user.runtime_dir();
        Some(match self.manager {
            // Root's own manager: the operator most likely meant a gateway user's.
            Manager::User if self.user.uid == 0 => format!(
                "the user manager of root is not running (nothing listens on {}/bus): to act for another user's gateway as root, pass --user NAME; for a gateway of root's own, `sudo loginctl enable-linger root` starts root's manager at boot and now",
                runtime.display()
            ),
            Manager::User => format!(
                "the user manager of {name} is not running (nothing listens on {}/bus): `sudo loginctl enable-linger {name}` starts it at boot and now",
                runtime.display()
            ),
            Manager::System => {
                "the system manager cannot be reached (is PID 1 systemd?)".to_owned()
            }
        })
    }

    /// Runs systemctl and returns its output whatever its exit status (but refuses the chroot
    /// no-op, where systemctl exits 0 having done nothing).
    fn output(&self, args: &[&str]) -> Result<(std::process::Output, String, String)> {
        let output = self
            .user_command("systemctl")
            .arg("--no-ask-password")
            .args(args)
            .output()
            .map_err(|e| Error::Systemd(format!("cannot run systemctl: {e}")))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if stderr.contains("Running in chroot, ignoring")
            || stdout.contains("Running in chroot, ignoring")
        {
            return Err(Error::Systemd(format!(
                "{} {} was ignored (\"Running in chroot\"): no manager reachable for {}",
                self.cli(),
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

    /// Properties of a unit (`systemctl show -p A,B -- UNIT`), by name; a property systemd does
    /// not print is absent.
    pub fn properties(
        &self,
        unit: &str,
        names: &[&str],
    ) -> Result<std::collections::BTreeMap<String, String>> {
        let text = self.run(&["show", "-p", &names.join(","), "--", unit])?;
        Ok(text
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect())
    }

    /// Queues a restart the manager carries out whatever becomes of this process
    /// (`--no-block`): a run killed between the stop and the start leaves no gateway stopped.
    pub fn restart_queued(&self, unit: &str) -> Result<()> {
        // A unit that hit its start limit or failed stays "failed" until reset.
        let _ = self.run(&["reset-failed", "--", unit]);
        self.run(&["restart", "--no-block", "--", unit]).map(drop)
    }

    /// How the unit starts its main process and what environment it gets: `ExecStart=`'s argv,
    /// the `Environment=` assignments minus the Anthropic credentials (never held longer than
    /// this call), and the `EnvironmentFile=` paths (with systemd's `-` prefix when optional).
    pub fn exec_context(&self, unit: &str) -> Result<ExecContext> {
        let text = Zeroizing::new(self.run(&[
            "show",
            "-p",
            "ExecStart,Environment,EnvironmentFiles,FragmentPath,DropInPaths,MainPID,LoadState,ControlGroup,NeedDaemonReload",
            "--",
            unit,
        ])?);
        let mut context = ExecContext::parse(&text);
        context.system = self.manager == Manager::System;
        Ok(context)
    }

    /// Runs `argv` as a transient service of the gateway's manager, as the gateway's user, and
    /// waits for it (at most `limit`, `RuntimeMaxSec=`): the child starts outside whatever
    /// sandbox this process runs in (the hardened service forbids the writable-executable memory
    /// Node's JIT needs) and in the same manager as the gateway. The child gets the gateway's
    /// environment (credentials left out), then `own` (ours, which win). Returns (success,
    /// stdout, stderr).
    ///
    /// For the system manager `systemd-run` runs as root, so nothing of the gateway user's
    /// reaches it (README "Security model"): its own environment is only what
    /// [`Self::user_command`] sets; the unit's `Environment=` (root's unit files, shown to
    /// everyone by the manager already) is passed with `--setenv`; the values of the unit's
    /// `EnvironmentFile=`s (read here as the user, never through a link or a FIFO; as root only
    /// where root controls the file), then `own`, then blanked credentials, go to the child in a
    /// 0600 file of root's ([`crate::host::locks::RUN_DIR`]) that systemd reads for it. They never
    /// pass through an argv, a root process's environment or a unit property; an
    /// `EnvironmentFile=` property naming the user's file would have systemd read it as root,
    /// following the user's symlinks. For the user's own manager the process already is the user, and the values
    /// travel in systemd-run's environment (`--setenv=NAME`), never in an argv.
    pub fn run_transient(
        &self,
        name: &str,
        argv: &[String],
        context: &ExecContext,
        own: &[(String, String)],
        limit: Duration,
    ) -> Result<(bool, String, String)> {
        let mut command = self.user_command("systemd-run");
        command
            .arg("--no-ask-password")
            .arg("--quiet")
            .arg("--wait")
            .arg("--pipe")
            .arg("--collect")
            .arg("--service-type=exec")
            .arg(format!(
                "--unit={name}-{}-{}",
                std::process::id(),
                next_transient()
            ))
            .arg("--description=openclaw-token-sync: check the OpenClaw gateway")
            .arg(format!("--working-directory={}", self.user.home.display()))
            .arg(format!(
                "--property=RuntimeMaxSec={}",
                limit.as_secs().max(1)
            ));
        let own_file = match self.manager {
            Manager::System => {
                Some(self.system_transient_environment(&mut command, context, own)?)
            }
            Manager::User => {
                // The gateway's variables: its `Environment=` (credentials already removed),
                // then its `EnvironmentFile=`s read here (credentials left out; an
                // `EnvironmentFile=` of the transient unit would override our `--setenv`s and
                // hand the child a token), then ours.
                let mut environment = context.start_environment();
                environment.extend(own.iter().cloned());
                environment.push(("NO_COLOR".to_owned(), "1".to_owned()));
                for (key, value) in &environment {
                    command.arg(format!("--setenv={key}"));
                    command.env(key, value);
                }
                None
            }
        };
        command.arg("--").args(argv);
        let output = command
            .output()
            .map_err(|e| Error::Systemd(format!("cannot run systemd-run: {e}")));
        if let Some(file) = own_file {
            let _ = crate::host::privileges::as_root(|| {
                let _ = std::fs::remove_file(&file);
                Ok(())
            });
        }
        let output = output?;
        Ok((
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ))
    }

    /// The system manager's transient unit: the user's ids, the gateway unit's `Environment=`
    /// and `EnvironmentFile=`s as properties, and `own` in a root-owned file read last (see
    /// [`Self::run_transient`]). Returns that file, to be removed after the run.
    fn system_transient_environment(
        &self,
        command: &mut Command,
        context: &ExecContext,
        own: &[(String, String)],
    ) -> Result<std::path::PathBuf> {
        command
            .arg(format!("--uid={}", self.user.uid))
            .arg(format!("--gid={}", self.user.gid));
        for (key, value) in &context.environment {
            command.arg(format!("--setenv={key}={value}"));
        }
        // The unit's env files, in order, read here (as the user unless root controls the
        // file), credentials left out: an `EnvironmentFile=` property would have systemd read a
        // user's path as root, following their symlinks into files of root's or another user's.
        let mut values = Vec::new();
        for file in &context.environment_files {
            match read_env_file(file, true) {
                Ok(Some(found)) => values.extend(env_file_assignments(&found.content)),
                Ok(None) => {}
                Err(err) => {
                    tracing::info!(error = %err, "an environment file of the gateway was left out")
                }
            }
        }
        let mut content = Zeroizing::new(String::new());
        let ours = [("NO_COLOR".to_owned(), "1".to_owned())];
        for (key, value) in values.iter().chain(own).chain(&ours) {
            if value.contains(['\'', '\n', '\r', '\0']) || !valid_variable_name(key) {
                // systemd could not read it back as one assignment: left out, as systemd leaves
                // out a line it cannot parse.
                tracing::info!(variable = %key, "a variable of the gateway was left out for OpenClaw's CLI");
                continue;
            }
            content.push_str(&format!("{key}='{value}'\n"));
        }
        // Blank, not unset: the gateway's files may hold a token, and the CLI needs none.
        for variable in CREDENTIAL_VARIABLES {
            content.push_str(&format!("{variable}=\n"));
        }
        let path = crate::host::privileges::as_root(|| {
            let dir = crate::host::locks::run_dir()?;
            crate::host::locks::sweep_hand_overs(&dir);
            let path = dir.join(format!(
                "{}{}-{}.env",
                crate::host::locks::HAND_OVER_PREFIX,
                std::process::id(),
                next_transient()
            ));
            crate::host::fsutil::write_atomic(&path, content.as_bytes(), 0o600)?;
            Ok(path)
        })?;
        command.arg(format!("--property=EnvironmentFile={}", path.display()));
        Ok(path)
    }

    /// The credential variables the unit's next start hands the gateway, with where each comes
    /// from: `Environment=` (unit file and drop-ins), then each `EnvironmentFile=` in order, a
    /// later assignment overriding an earlier one, as systemd does.
    pub fn unit_credentials(&self, unit: &str) -> Result<Vec<CredentialSource>> {
        let context = self.exec_context(unit)?;
        let mut found: Vec<CredentialSource> = context
            .credentials
            .iter()
            .map(|(variable, fingerprint)| CredentialSource {
                variable: variable.clone(),
                fingerprint: fingerprint.clone(),
                origin: unit_file_setting(&context.unit_files, variable).unwrap_or_else(|| {
                    format!("Environment= of {unit} (`{} cat {unit}`)", self.cli())
                }),
            })
            .collect();
        for file in &context.environment_files {
            let path = std::path::Path::new(file.trim_start_matches('-'));
            let Ok(Some(content)) = read_env_file(file, self.manager == Manager::System) else {
                continue;
            };
            let path = path.display().to_string();
            for (key, value) in managed_files::assignments(&content.content) {
                let Some(variable) = CREDENTIAL_VARIABLES.iter().find(|v| v.as_bytes() == key)
                else {
                    continue;
                };
                found.retain(|c| c.variable != *variable);
                if unquote(value).is_empty() {
                    continue;
                }
                found.push(CredentialSource {
                    variable: (*variable).to_owned(),
                    fingerprint: Fingerprint::of(unquote(value)),
                    origin: path.clone(),
                });
            }
        }
        Ok(found)
    }

    /// The manager's OpenClaw gateway units: service unit files named `openclaw*` whose
    /// environment says `OPENCLAW_SERVICE_KIND=gateway` (every OpenClaw release marks its gateway
    /// units so, one per profile), neither masked nor templates, and enabled or running (a
    /// disabled unit left failed is not restarted on every run), sorted, each with its `User=`
    /// (empty in a user manager). A unit OpenClaw was told to name otherwise
    /// (`OPENCLAW_SYSTEMD_UNIT`) is found as long as its name starts with `openclaw`; name any
    /// other with `--unit`.
    pub fn gateways(&self) -> Result<Vec<FoundGateway>> {
        let args = [
            "list-unit-files",
            "--type=service",
            "--no-legend",
            "--plain",
            "openclaw*",
        ];
        let (output, listed, stderr) = self.output(&args)?;
        if !output.status.success() {
            // No unit file matches: systemctl says nothing and exits 1.
            if listed.trim().is_empty() && stderr.trim().is_empty() {
                return Ok(Vec::new());
            }
            return Err(self.failure(&args, &output.status, &stderr));
        }
        let listed_units = listed.lines().filter(|l| !l.trim().is_empty()).count();
        if listed_units > MAX_LISTED_UNITS {
            // Each is asked about in turn: a user with thousands of them would make the run
            // (and every user after them) wait.
            return Err(Error::Systemd(format!(
                "{} lists {listed_units} unit files named openclaw* for {} (more than {MAX_LISTED_UNITS}); name the gateway with --unit or a [[target]]",
                self.cli(),
                self.user.name
            )));
        }
        let mut found = Vec::new();
        for line in listed.lines() {
            let mut columns = line.split_whitespace();
            let (Some(name), file_state) = (columns.next(), columns.next().unwrap_or("")) else {
                continue;
            };
            if !name.ends_with(".service") || name.contains("@.") || file_state == "masked" {
                continue;
            }
            // The environment may hold a token (our drop-in): parsed and zeroized like
            // `exec_context`, the credentials kept as fingerprints only.
            let shown = Zeroizing::new(self.run(&[
                "show",
                "-p",
                "ActiveState,Environment,User",
                "--",
                name,
            ])?);
            let context = ExecContext::parse(&shown);
            let property = |key: &str| {
                shown
                    .lines()
                    .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                    .unwrap_or("")
                    .to_owned()
            };
            let active_state = property("ActiveState");
            let wanted = file_state.starts_with("enabled")
                || matches!(file_state, "linked" | "linked-runtime" | "alias" | "static")
                || matches!(active_state.as_str(), "active" | "activating" | "reloading");
            if wanted && context.get("OPENCLAW_SERVICE_KIND") == Some("gateway") {
                found.push(FoundGateway {
                    unit: name.to_owned(),
                    user: property("User"),
                });
            }
        }
        found.sort_by(|a, b| a.unit.cmp(&b.unit));
        found.dedup_by(|a, b| a.unit == b.unit);
        Ok(found)
    }

    /// Whether the manager answers at all (`list-unit-files` also fails when nothing matches,
    /// and reads unit files from disk without a manager): the error says why not, with the
    /// hint for a manager that is not running.
    pub fn manager_reachable(&self) -> Result<()> {
        self.run(&["show", "-p", "Version"]).map(|_| ())
    }

    /// The manager's unit search path (`UnitPath`), in systemd's order.
    pub fn unit_path(&self) -> Result<Vec<std::path::PathBuf>> {
        let text = self.run(&["show", "-p", "UnitPath"])?;
        Ok(text
            .lines()
            .find_map(|l| l.strip_prefix("UnitPath="))
            .unwrap_or("")
            .split_whitespace()
            .map(std::path::PathBuf::from)
            .collect())
    }

    /// The user manager's own environment (`systemctl --user show-environment`: what
    /// `set-environment` and `environment.d` give every unit), only the `keys` asked for.
    pub fn manager_environment(&self, keys: &[&str]) -> Result<Vec<(String, String)>> {
        let text = self.run(&["show-environment"])?;
        Ok(text
            .lines()
            .filter_map(|line| {
                let (key, value) = line.split_once('=')?;
                keys.contains(&key).then(|| {
                    // Values with special characters come as $'...'.
                    let value = value
                        .strip_prefix("$'")
                        .and_then(|v| v.strip_suffix('\''))
                        .unwrap_or(value);
                    (key.to_owned(), value.to_owned())
                })
            })
            .collect())
    }

    pub fn daemon_reload(&self) -> Result<()> {
        self.run(&["daemon-reload"]).map(drop)
    }

    /// Stops the unit and waits up to `limit` for it to be down. The job is queued without
    /// blocking on it (`--no-block`): the unit is the user's, and a drop-in of theirs can make a
    /// stop last forever (`ExecStop=/bin/sleep infinity`, `TimeoutStopSec=infinity`). Past the
    /// limit this fails; the caller writes nothing and queues a start, which runs once the stop
    /// has ended (until then the gateway keeps running: ExecStop= runs beside it).
    pub fn stop(&self, unit: &str, limit: Duration) -> Result<()> {
        self.run(&["stop", "--no-block", "--", unit])?;
        let deadline = Instant::now() + limit;
        loop {
            let status = self.show(unit)?;
            if matches!(status.active_state.as_str(), "inactive" | "failed") {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::GatewayDown(format!(
                    "{unit} did not stop within {} s (state {}); nothing was written and it was asked to start again once its stop ends; see `{} -u {unit}` and the unit's ExecStop=/TimeoutStopSec=",
                    limit.as_secs(),
                    status.active_state,
                    self.journal()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Queues a start without waiting for the job (`--no-block`; `verify` waits, bounded): a
    /// start queued behind a stop that never ends must not hold the run.
    pub fn start(&self, unit: &str) -> Result<()> {
        // A unit that hit its start limit or failed stays "failed" until reset.
        let _ = self.run(&["reset-failed", "--", unit]);
        self.run(&["start", "--no-block", "--", unit]).map(drop)
    }

    /// Waits (at most `limit`) until a queued start has brought the unit up: `active`, as a
    /// blocking `systemctl start` would have waited for; `failed`, or still down at the limit,
    /// is an error.
    pub fn wait_started(&self, unit: &str, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let status = self.show(unit)?;
            match status.active_state.as_str() {
                "active" | "reloading" => return Ok(()),
                "failed" => {
                    return Err(Error::GatewayDown(format!(
                        "{unit} failed to start; see `{} -u {unit}`",
                        self.journal()
                    )))
                }
                state if Instant::now() >= deadline => {
                    return Err(Error::GatewayDown(format!(
                        "{unit} did not start within {} s (state {state}); see `{} -u {unit}`",
                        limit.as_secs(),
                        self.journal()
                    )))
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
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
                return Err(Error::GatewayDown(format!(
                    "{unit} did not come up with a new main process within {} s (state {}, MainPID {}); see `{} -u {unit}`",
                    limits.timeout.as_secs(),
                    status.active_state,
                    status.main_pid,
                    self.journal()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        self.confirm_running(unit, pid, expect, limits)?;
        Ok(pid)
    }

    /// Proves that `pid` is still the unit's main process, active, after `settle` (a
    /// crash-looping gateway is briefly "active"), and carries the token.
    pub fn confirm_running(
        &self,
        unit: &str,
        pid: u32,
        expect: &Expectation,
        limits: VerifyLimits,
    ) -> Result<()> {
        // The environment is read only after `settle`: systemd reports a simple service's
        // MainPID right after the fork, and until the child has exec'd, its
        // `/proc/<pid>/environ` is still the manager's, without the unit's variables.
        std::thread::sleep(limits.settle);
        let after = self.show(unit)?;
        if !after.is_active() || after.main_pid != pid {
            return Err(Error::GatewayDown(format!(
                "{unit} stopped running within {} ms of starting (state {}, MainPID {} instead of {pid}); see `{} -u {unit}`",
                limits.settle.as_millis(),
                after.active_state,
                after.main_pid,
                self.journal()
            )));
        }
        check_environment(unit, pid, expect)
    }
}

/// What `systemctl show` says about how a unit runs its main process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecContext {
    /// argv of the first `ExecStart=` command.
    pub argv: Vec<String>,
    /// `Environment=` assignments, Anthropic credentials removed.
    pub environment: Vec<(String, String)>,
    /// `EnvironmentFile=` paths, `-`-prefixed when missing files are ignored.
    pub environment_files: Vec<String>,
    /// The Anthropic credentials `Environment=` sets, as fingerprints (the last one of each wins).
    pub credentials: Vec<(String, Fingerprint)>,
    /// The unit file and its drop-ins, in the order systemd applies them.
    pub unit_files: Vec<String>,
    /// The running main process, 0 when none.
    pub main_pid: u32,
    /// systemd's `LoadState` ("loaded", "not-found", …; empty when not asked).
    pub load_state: String,
    /// A unit of the system manager (its root-only env files may be read as root); a user
    /// unit's env files are always read as the user, whatever they name.
    pub system: bool,
    /// The running unit's cgroup (relative to the cgroup mount; empty when it is not running).
    pub control_group: String,
    /// A unit file or drop-in changed on disk since the manager loaded it.
    pub need_daemon_reload: bool,
}

impl ExecContext {
    /// What the unit's next start hands its process on top of the manager's environment
    /// (credentials left out): `Environment=`, then the `EnvironmentFile=`s read here, which
    /// override it as in systemd; later assignments win.
    pub fn start_environment(&self) -> Vec<(String, String)> {
        let mut environment: Vec<(String, String)> = self.environment.clone();
        for file in &self.environment_files {
            if let Ok(Some(found)) = read_env_file(file, self.system) {
                environment.extend(env_file_assignments(&found.content));
            }
        }
        environment
    }
}

/// One of a unit's `EnvironmentFile=`s (`-` prefix allowed), read the one way every caller reads
/// them: for a unit of the system manager (`system`) as root only when root alone controls the
/// file (`fsutil::root_controlled`: a system unit's root-only files, our own drop-in's env
/// file), else as the acting user, whose it may be; a user unit's files always as the user (a
/// user's own unit may name any file: root reading it for them would hand them root's files);
/// never through a link or a FIFO. (For a process that dropped to the user for good, `as_root`
/// is a plain call.)
pub fn read_env_file(
    file: &str,
    system: bool,
) -> Result<Option<crate::host::fsutil::ExistingFile>> {
    let path = std::path::Path::new(file.trim_start_matches('-'));
    if system && crate::host::fsutil::root_controlled(path) {
        crate::host::privileges::as_root(|| crate::host::fsutil::read_managed(path))
    } else {
        crate::host::fsutil::read_managed(path)
    }
}

/// The values of `keys` in a running process's environment (never a credential: only the keys
/// asked for are kept).
pub fn process_environment(pid: u32, keys: &[&str]) -> Vec<(String, String)> {
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")).map(Zeroizing::new) else {
        return Vec::new();
    };
    environ
        .split(|b| *b == 0)
        .filter_map(|entry| {
            let text = std::str::from_utf8(entry).ok()?;
            let (key, value) = text.split_once('=')?;
            keys.contains(&key)
                .then(|| (key.to_owned(), value.to_owned()))
        })
        .collect()
}

/// Where the unit's start hands the gateway a credential variable, as systemd resolves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialSource {
    pub variable: String,
    pub fingerprint: Fingerprint,
    /// "Environment= of <unit>" or the environment file's path.
    pub origin: String,
}

/// A name systemd accepts for an environment variable.
fn valid_variable_name(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A number per transient unit of this process, so names never collide with one systemd is
/// still collecting.
fn next_transient() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// `KEY=VALUE` lines of an environment file (read with `managed_files::assignments`), one
/// level of quotes removed, credentials left out.
pub fn env_file_assignments(content: &[u8]) -> Vec<(String, String)> {
    managed_files::assignments(content)
        .filter_map(|(key, value)| {
            let key = std::str::from_utf8(key).ok()?;
            if CREDENTIAL_VARIABLES.contains(&key) {
                return None;
            }
            let value = String::from_utf8_lossy(value);
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            Some((key.to_owned(), value.to_owned()))
        })
        .collect()
}

/// The last of the unit's files whose `Environment=` lines assign `variable`, as
/// "Environment= in PATH".
fn unit_file_setting(unit_files: &[String], variable: &str) -> Option<String> {
    let needle = format!("{variable}=");
    unit_files.iter().rev().find_map(|path| {
        let content = crate::host::fsutil::read_managed(std::path::Path::new(path)).ok()??;
        let sets = content.content.split(|b| *b == b'\n').any(|line| {
            let line = line.trim_ascii_start();
            line.starts_with(b"Environment=")
                && line
                    .windows(needle.len())
                    .any(|window| window == needle.as_bytes())
        });
        sets.then(|| format!("Environment= in {path}"))
    })
}

/// A value with one level of surrounding quotes and whitespace removed, as systemd reads an
/// environment file.
fn unquote(value: &[u8]) -> &[u8] {
    let value = value.trim_ascii();
    for quote in [b'"', b'\''] {
        if value.len() >= 2 && value[0] == quote && value[value.len() - 1] == quote {
            return &value[1..value.len() - 1];
        }
    }
    value
}

/// The value the last assignment of `key` in an environment list gives it (later ones win, as
/// in systemd).
pub fn env_value<'a>(environment: &'a [(String, String)], key: &str) -> Option<&'a str> {
    environment
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

impl ExecContext {
    /// Parses `systemctl show -p ExecStart,Environment,EnvironmentFiles` output.
    pub fn parse(text: &str) -> ExecContext {
        let mut context = ExecContext::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match key {
                "ExecStart" if context.argv.is_empty() => {
                    if let Some(start) = value.find("argv[]=") {
                        let rest = &value[start + "argv[]=".len()..];
                        let end = rest.find(" ; ").unwrap_or(rest.len());
                        context.argv = split_quoted(&rest[..end]);
                    }
                }
                "Environment" => {
                    let mut entries = split_quoted(value);
                    for entry in &entries {
                        let Some((k, v)) = entry.split_once('=') else {
                            continue;
                        };
                        if CREDENTIAL_VARIABLES.contains(&k) {
                            // An empty value is how an operator blanks a variable: unset.
                            context.credentials.retain(|(name, _)| name != k);
                            if !v.is_empty() {
                                context
                                    .credentials
                                    .push((k.to_owned(), Fingerprint::of(v.as_bytes())));
                            }
                        } else {
                            context.environment.push((k.to_owned(), v.to_owned()));
                        }
                    }
                    entries.iter_mut().for_each(zeroize::Zeroize::zeroize);
                }
                "MainPID" => context.main_pid = value.trim().parse().unwrap_or(0),
                "LoadState" => context.load_state = value.trim().to_owned(),
                "ControlGroup" => context.control_group = value.trim().to_owned(),
                "NeedDaemonReload" => context.need_daemon_reload = value.trim() == "yes",
                "FragmentPath" if !value.is_empty() => {
                    context.unit_files.insert(0, value.to_owned())
                }
                "DropInPaths" => context
                    .unit_files
                    .extend(value.split_whitespace().map(str::to_owned)),
                "EnvironmentFiles" => {
                    // One per line: "/path (ignore_errors=yes)".
                    let (path, flags) = value.rsplit_once(" (").unwrap_or((value, ""));
                    if !path.is_empty() {
                        let optional = flags.contains("ignore_errors=yes");
                        context
                            .environment_files
                            .push(format!("{}{path}", if optional { "-" } else { "" }));
                    }
                }
                _ => {}
            }
        }
        context
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        env_value(&self.environment, key)
    }

    /// Whether the manager knows the unit (asked with `LoadState`; a unit systemd could not
    /// find says "not-found").
    pub fn exists(&self) -> bool {
        self.load_state != "not-found"
    }
}

/// Splits systemd's space-separated list, where an entry with spaces is in double quotes and
/// `\"` / `\\` are escaped.
fn split_quoted(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut started = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                started = true;
            }
            '\\' => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
                started = true;
            }
            ' ' if !in_quotes => {
                if started {
                    out.push(std::mem::take(&mut current));
                    started = false;
                }
            }
            _ => {
                current.push(c);
                started = true;
            }
        }
    }
    if started {
        out.push(current);
    }
    out
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
    /// How long a stop may take before the run gives up on it.
    pub stop: Duration,
}

/// Compares the variable in a running process's environment with the expected fingerprint.
pub fn check_environment(unit: &str, pid: u32, expect: &Expectation) -> Result<()> {
    let found = environ_fingerprints(pid)?;
    let ours = found.iter().find(|(name, _)| name == expect.variable);
    match ours {
        Some((_, fingerprint)) if fingerprint == expect.fingerprint => {}
        Some((_, fingerprint)) => {
            return Err(Error::GatewayRunsOtherToken {
                unit: unit.to_owned(),
                pid,
                variable: expect.variable.to_owned(),
                found: fingerprint.clone(),
                expected: expect.fingerprint.clone(),
            })
        }
        None => {
            return Err(Error::GatewayLacksToken {
                unit: unit.to_owned(),
                pid,
                variable: expect.variable.to_owned(),
            })
        }
    }
    match found
        .iter()
        .find(|(name, _)| preferred_over(name, expect.variable))
    {
        Some((variable, fingerprint)) => Err(Error::CompetingCredential {
            unit: unit.to_owned(),
            variable: variable.clone(),
            found: fingerprint.clone(),
            origin: format!("its environment (pid {pid}; another drop-in or EnvironmentFile=)"),
            ours: expect.variable.to_owned(),
        }),
        None => Ok(()),
    }
}

/// Whether OpenClaw takes `other` before `ours` when both are set: it reads
/// `ANTHROPIC_OAUTH_TOKEN` before `ANTHROPIC_API_KEY`, so a leftover OAuth token hides an API key
/// (the reverse is harmless).
pub fn preferred_over(other: &str, ours: &str) -> bool {
    let rank = |name: &str| MANAGED_VARIABLES.iter().position(|v| *v == name);
    matches!((rank(other), rank(ours)), (Some(a), Some(b)) if a < b)
}

/// Fingerprints of every credential variable in `/proc/<pid>/environ`.
pub fn environ_fingerprints(pid: u32) -> Result<Vec<(String, Fingerprint)>> {
    let environ = Zeroizing::new(std::fs::read(format!("/proc/{pid}/environ")).map_err(
        |source| {
            if source.kind() == std::io::ErrorKind::NotFound
                || source.raw_os_error() == Some(nix::libc::ESRCH)
            {
                Error::GatewayDown(format!(
                    "the gateway's process {pid} exited before its environment could be read"
                ))
            } else {
                Error::ProcUnreadable { pid, source }
            }
        },
    )?);
    Ok(environ
        .split(|b| *b == 0)
        .filter_map(|entry| {
            CREDENTIAL_VARIABLES.iter().find_map(|variable| {
                entry
                    .strip_prefix(variable.as_bytes())
                    .and_then(|rest| rest.strip_prefix(b"="))
                    .filter(|value| !value.is_empty())
                    .map(|value| ((*variable).to_owned(), Fingerprint::of(value)))
            })
        })
        .collect())
}

/// Fingerprint of `variable` in `/proc/<pid>/environ`, or `None` when it is not set.
pub fn environ_fingerprint(pid: u32, variable: &str) -> Result<Option<Fingerprint>> {
    Ok(environ_fingerprints(pid)?
        .into_iter()
        .find(|(name, _)| name == variable)
        .map(|(_, fingerprint)| fingerprint))
}

/// The managed paths for a gateway unit of `manager`: [`ManagedPaths::new`] for a user unit,
/// [`ManagedPaths::in_system_manager`] (in [`system_unit_dir`]) for a system unit.
pub fn managed_paths(
    home: &std::path::Path,
    unit: &str,
    openclaw_state_dir: &std::path::Path,
    manager: Manager,
) -> managed_files::ManagedPaths {
    let paths = managed_files::ManagedPaths::new(home, unit, openclaw_state_dir);
    match manager {
        Manager::User => paths,
        Manager::System => paths.in_system_manager(&system_unit_dir()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_context_reads_argv_environment_and_files_without_credentials() {
        let text = "ExecStart={ path=/opt/node/bin/node ; argv[]=/opt/node/bin/node --max-old-space-size=8192 /opt/oc/dist/index.js gateway --port 18789 ; ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }\n\
Environment=HOME=/home/u \"OPENCLAW_WINDOWS_TASK_NAME=OpenClaw Gateway\" OPENCLAW_STATE_DIR=/srv/oc ANTHROPIC_OAUTH_TOKEN=sk-ant-oat01-SECRET\n\
EnvironmentFiles=/home/u/.openclaw/gateway.systemd.env (ignore_errors=yes)\n\
EnvironmentFiles=/etc/oc.env (ignore_errors=no)\n";
        let context = ExecContext::parse(text);
        assert_eq!(
            context.argv,
            [
                "/opt/node/bin/node",
                "--max-old-space-size=8192",
                "/opt/oc/dist/index.js",
                "gateway",
                "--port",
                "18789"
            ]
        );
        assert_eq!(context.get("OPENCLAW_STATE_DIR"), Some("/srv/oc"));
        assert_eq!(
            context.get("OPENCLAW_WINDOWS_TASK_NAME"),
            Some("OpenClaw Gateway")
        );
        assert_eq!(context.get("ANTHROPIC_OAUTH_TOKEN"), None);
        assert!(!format!("{context:?}").contains("SECRET"));
        assert_eq!(
            context.environment_files,
            ["-/home/u/.openclaw/gateway.systemd.env", "/etc/oc.env"]
        );
    }

    #[test]
    fn env_file_assignments_skip_comments_and_credentials() {
        let file = b"# c\nOPENCLAW_GATEWAY_TOKEN=\"gw tok\"\nexport A='1'\nANTHROPIC_OAUTH_TOKEN=sk-ant-oat01-x\nbad line\n";
        assert_eq!(
            env_file_assignments(file),
            [
                ("OPENCLAW_GATEWAY_TOKEN".to_owned(), "gw tok".to_owned()),
                ("A".to_owned(), "1".to_owned())
            ]
        );
    }
}
