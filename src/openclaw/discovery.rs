//! What gateway discovery found, remembered between runs so that the timer's common case (a
//! no-op sync on a host whose units have not changed) starts no process at all: discovery asks
//! systemd (`list-unit-files`, `show` per unit, the unit's environment for OpenClaw's state
//! dir), five `systemctl` processes that cost a no-op 4–5× the one API call it needs.
//!
//! A memo (one JSON file per manager: `discovery-user.json` / `discovery-system.json` in the
//! user's own state dir, written as the user; root's `system-gateways.json` in root's
//! `/run/openclaw-token-sync`) holds the gateway units found and each unit's OpenClaw state dir,
//! with a *stamp* of everything the answer was read from, taken before it was read:
//! - every directory of the manager's unit search path (`UnitPath`: a unit file added, removed or
//!   renamed changes its directory), every `openclaw*` entry in it with the files of its drop-in
//!   directory (an edit in place), `service.d/` (drop-ins for every service), and every
//!   `*.wants`/`*.requires`/`*.upholds` directory (enabling or disabling a unit); not the
//!   `transient` directory, where every `systemd-run` (the proof's too) comes and goes;
//! - each unit's `EnvironmentFile=`s;
//! - each running gateway's process (PID and start time): a restart, by anyone, re-discovers.
//!
//! A stamp is `lstat`'s device, inode, mode, links, owner, size, mtime and ctime (and the
//! target's, for a symlink). The memo is used only while every stamp still matches and it is
//! younger than [`MEMO_TTL`]: what no file shows (`systemctl set-environment`, a disabled unit
//! started by hand) is seen at the latest an hour later, or at once with `--force`. `status`
//! never uses it. A memo that does not parse, is from another release, is too large or is older
//! than its TTL is discovered afresh and rewritten.
//!
//! Trust: a user's memo is read and written as that user, so it can only steer what the user's
//! own units can steer already (which of their units are gateways and where their state is);
//! unit names from it are checked like `list-unit-files` output before they reach an argv.

use crate::error::Result;
use crate::host::systemd::{FoundGateway, Systemctl};
use crate::openclaw::state_dir::{self, StateDir};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a memo is trusted when every stamp matches.
pub const MEMO_TTL: Duration = Duration::from_secs(3600);
/// Bumped whenever the memo's meaning changes: another release's memo is ignored.
const FORMAT: u32 = 1;
/// More stamps than this (a unit path of thousands of entries) and nothing is remembered.
const MAX_STAMPS: usize = 4096;
/// A memo file larger than this is not read.
const MAX_BYTES: u64 = 1 << 20;

/// What a memo holds.
#[derive(Serialize, Deserialize, Default, Debug)]
struct Record {
    format: u32,
    written_unix: u64,
    stamps: Vec<Stamp>,
    gateways: Option<Vec<FoundGateway>>,
    state_dirs: BTreeMap<String, StateDirMemo>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
struct StateDirMemo {
    path: PathBuf,
    source: String,
    unit_found: Option<bool>,
}

/// One input of the remembered answer, as it was when the answer was read.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Stamp {
    /// `lstat` (and the target's `stat` for a symlink) of a path read as the acting user.
    Path {
        path: PathBuf,
        stat: String,
    },
    /// The same, of a path only root can read (a system unit's root-only env file), taken as
    /// root as it is read ([`crate::host::systemd::read_env_file`]'s rule).
    RootPath {
        path: PathBuf,
        stat: String,
    },
    /// Only whether a path exists (OpenClaw's default state dir `~/.openclaw` or the legacy
    /// `~/.clawdbot`, whose contents change all the time).
    Exists {
        path: PathBuf,
        exists: bool,
    },
    Process {
        pid: u32,
        start: String,
    },
    /// This process's own `OPENCLAW_STATE_DIR`/`_PROFILE`/`_HOME` (a last resort of the state
    /// dir's rule: a run by hand with one exported is not the timer's run).
    OwnEnvironment {
        values: Vec<(String, String)>,
    },
}

impl Stamp {
    fn of_path(path: &Path) -> Stamp {
        Stamp::Path {
            path: path.to_path_buf(),
            stat: stat_line(path),
        }
    }

    fn of_root_path(path: &Path) -> Stamp {
        Stamp::RootPath {
            path: path.to_path_buf(),
            stat: root_stat_line(path),
        }
    }

    fn of_existence(path: &Path) -> Stamp {
        Stamp::Exists {
            path: path.to_path_buf(),
            exists: std::fs::symlink_metadata(path).is_ok(),
        }
    }

    fn of_process(pid: u32) -> Stamp {
        Stamp::Process {
            pid,
            start: process_start(pid),
        }
    }

    fn of_own_environment() -> Stamp {
        Stamp::OwnEnvironment {
            values: state_dir::own_environment(),
        }
    }

    /// Whether the stamp still describes the world; one that could not be taken never does.
    fn holds(&self) -> bool {
        match self {
            Stamp::Path { stat, .. } | Stamp::RootPath { stat, .. } if stat == UNREADABLE => false,
            Stamp::Path { path, stat } => stat_line(path) == *stat,
            Stamp::RootPath { path, stat } => root_stat_line(path) == *stat,
            Stamp::Exists { path, exists } => std::fs::symlink_metadata(path).is_ok() == *exists,
            Stamp::Process { pid, start } => process_start(*pid) == *start,
            Stamp::OwnEnvironment { values } => state_dir::own_environment() == *values,
        }
    }
}

/// What a stamp says of a path that exists but cannot be `stat`ed (never trusted).
const UNREADABLE: &str = "unreadable";
/// Where a unit's `ControlGroup` may be mounted (cgroup v2; the hybrid and legacy layouts).
const CGROUP_MOUNTS: [&str; 3] = [
    "/sys/fs/cgroup",
    "/sys/fs/cgroup/unified",
    "/sys/fs/cgroup/systemd",
];

/// The remembered discovery of one manager, for one run.
pub struct Memo {
    file: Option<PathBuf>,
    record: Record,
    /// The record came from the file and every stamp holds.
    trusted: bool,
    /// The unit search path is stamped (done once, before the first question asked afresh).
    dirs_stamped: bool,
    changed: bool,
    /// What this run asked (for [`Memo::refresh`]): the gateways, and state dirs by unit.
    asked_gateways: bool,
    asked_state_dirs: Vec<(String, PathBuf)>,
}

impl Memo {
    /// The memo in `file`, trusted when it is current; `None` (or `bypass`, for `--force`)
    /// remembers nothing from before (and `file: None` writes nothing either).
    pub fn load(file: Option<PathBuf>, bypass: bool) -> Memo {
        let record = file
            .as_deref()
            .filter(|_| !bypass)
            .and_then(read_record)
            .filter(current);
        let trusted = record.is_some();
        tracing::debug!(
            memo = ?file.as_deref().map(Path::display).map(|d| d.to_string()),
            trusted,
            "discovery memo"
        );
        Memo {
            file,
            record: record.unwrap_or_default(),
            trusted,
            dirs_stamped: trusted,
            changed: false,
            asked_gateways: false,
            asked_state_dirs: Vec::new(),
        }
    }

    /// A memo that neither reads nor writes (asks systemd every time).
    pub fn none() -> Memo {
        Memo::load(None, true)
    }

    /// The manager's gateway units (`Systemctl::gateways`), remembered.
    pub fn gateways(&mut self, systemctl: &Systemctl) -> Result<Vec<FoundGateway>> {
        self.asked_gateways = true;
        if let (true, Some(found)) = (self.trusted, &self.record.gateways) {
            return Ok(found.clone());
        }
        self.stamp_unit_dirs(systemctl);
        let found = systemctl.gateways()?;
        self.record.gateways = Some(found.clone());
        self.changed = true;
        Ok(found)
    }

    /// The OpenClaw state dir of `unit` (`state_dir::for_unit`), remembered; an explicit
    /// `--state-dir` is taken as it is.
    pub fn state_dir(
        &mut self,
        systemctl: &Systemctl,
        unit: &str,
        home: &Path,
        explicit: Option<&Path>,
    ) -> StateDir {
        if explicit.is_some() {
            return state_dir::resolve(home, explicit, &[]);
        }
        self.asked_state_dirs
            .push((unit.to_owned(), home.to_path_buf()));
        if let (true, Some(known)) = (self.trusted, self.record.state_dirs.get(unit)) {
            return StateDir {
                path: known.path.clone(),
                source: known.source.clone(),
                unit_found: known.unit_found,
            };
        }
        self.stamp_unit_dirs(systemctl);
        let mut inputs = vec![Stamp::of_own_environment()];
        let mut pending_reload = false;
        let found = state_dir::for_unit_noting(systemctl, unit, home, &mut |context| {
            pending_reload = context.need_daemon_reload;
            inputs.extend(context_stamps(context));
        });
        if found.source == "OpenClaw's default" {
            inputs.push(Stamp::of_existence(&home.join(".openclaw")));
            inputs.push(Stamp::of_existence(&home.join(".clawdbot")));
        }
        // An answer from a manager that could not be asked, or from units it has not loaded
        // yet, is not remembered.
        if found.unit_found.is_some() && !pending_reload {
            self.record.stamps.extend(inputs);
            self.record.state_dirs.insert(
                unit.to_owned(),
                StateDirMemo {
                    path: found.path.clone(),
                    source: found.source.clone(),
                    unit_found: found.unit_found,
                },
            );
            self.changed = true;
        }
        found
    }

    /// Asks again, afresh, everything this run asked: after a run that changed the world (our
    /// drop-in written, a gateway restarted), so the memo describes it as the next run finds it
    /// and that run, a no-op, neither starts a process nor writes.
    pub fn refresh(&mut self, systemctl: &Systemctl) {
        if !self.asked_gateways && self.asked_state_dirs.is_empty() {
            return;
        }
        self.trusted = false;
        self.dirs_stamped = false;
        let asked = std::mem::take(&mut self.asked_state_dirs);
        if self.asked_gateways {
            if let Err(err) = self.gateways(systemctl) {
                tracing::debug!(error = %err, "discovery failed again; no memo");
                self.forget();
            }
        }
        // Also stamps the unit path for a run that named its units.
        self.stamp_unit_dirs(systemctl);
        for (unit, home) in asked {
            self.state_dir(systemctl, &unit, &home, None);
        }
        self.changed = true;
    }

    /// Writes the memo when this run learnt something (best effort: a memo that cannot be
    /// written only costs the next run its shortcut).
    pub fn save(&mut self) {
        let Some(file) = self.file.as_deref().filter(|_| self.changed) else {
            return;
        };
        if self.record.stamps.len() > MAX_STAMPS || !self.record.stamps.iter().all(Stamp::holds) {
            // Too many to check cheaply, or the world moved while it was read (or something
            // could not be stamped): the next run asks afresh.
            tracing::debug!(stamps = self.record.stamps.len(), "no memo");
            let _ = std::fs::remove_file(file);
            return;
        }
        self.record.format = FORMAT;
        if !self.trusted {
            self.record.written_unix = now_unix();
        }
        let written = serde_json::to_vec(&self.record)
            .map_err(|e| crate::error::Error::failed(e.to_string()))
            .and_then(|bytes| crate::host::fsutil::write_atomic(file, &bytes, 0o600));
        if let Err(err) = written {
            tracing::debug!(error = %err, "discovery memo not written");
        }
        self.changed = false;
    }

    /// Nothing of this run is remembered, and the memo on disk goes (it may describe a world
    /// that changed).
    fn forget(&mut self) {
        if let Some(file) = self.file.take() {
            let _ = std::fs::remove_file(file);
        }
    }

    /// Starts a fresh record (once per run): what was trusted no longer is, and the unit search
    /// path is stamped before anything is read from the manager.
    fn stamp_unit_dirs(&mut self, systemctl: &Systemctl) {
        if self.dirs_stamped {
            return;
        }
        self.dirs_stamped = true;
        self.trusted = false;
        self.record = Record::default();
        match systemctl.unit_path() {
            Ok(dirs) => {
                // Transient units (`systemd-run`, as the proof uses) come and go without being
                // gateways. (Generator directories stay: they change with a daemon-reload.)
                for dir in dirs.iter().filter(|d| !d.ends_with("transient")) {
                    stamp_unit_dir(dir, &mut self.record.stamps);
                }
            }
            Err(err) => {
                tracing::debug!(error = %err, "no unit path; nothing is remembered");
                self.forget();
            }
        }
    }
}

/// What a unit's state dir was read from, stamped before it is read: its unit file and drop-ins
/// (wherever they are: an alias's drop-ins need not be named `openclaw*`), its env files (as root
/// only where root reads them), its main process and its cgroup (a start or restart, by anyone,
/// makes a new one).
fn context_stamps(context: &crate::host::systemd::ExecContext) -> Vec<Stamp> {
    let mut stamps: Vec<Stamp> = context
        .unit_files
        .iter()
        .map(|f| Stamp::of_path(Path::new(f)))
        .collect();
    for file in &context.environment_files {
        let path = Path::new(file.trim_start_matches('-'));
        stamps.push(
            if context.system && crate::host::fsutil::root_controlled(path) {
                Stamp::of_root_path(path)
            } else {
                Stamp::of_path(path)
            },
        );
    }
    if context.main_pid != 0 {
        stamps.push(Stamp::of_process(context.main_pid));
    }
    let group = context.control_group.trim_start_matches('/');
    if !group.is_empty() {
        stamps.extend(
            CGROUP_MOUNTS
                .iter()
                .map(|mount| Stamp::of_path(&Path::new(mount).join(group))),
        );
    }
    stamps
}

/// Stamps one directory of the unit search path (see the module docs).
fn stamp_unit_dir(dir: &Path, stamps: &mut Vec<Stamp>) {
    stamps.push(Stamp::of_path(dir));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    for name in names {
        let ours = name.starts_with("openclaw") || name == "service.d";
        let enablement = [".wants", ".requires", ".upholds"]
            .iter()
            .any(|suffix| name.ends_with(suffix));
        if !ours && !enablement {
            continue;
        }
        let path = dir.join(&name);
        stamps.push(Stamp::of_path(&path));
        let real_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        if ours && real_dir {
            if let Ok(inner) = std::fs::read_dir(&path) {
                let mut files: Vec<PathBuf> = inner.filter_map(|e| Some(e.ok()?.path())).collect();
                files.sort();
                stamps.extend(files.iter().map(|f| Stamp::of_path(f)));
            }
        }
        if stamps.len() > MAX_STAMPS {
            return;
        }
    }
}

fn read_record(file: &Path) -> Option<Record> {
    let meta = std::fs::symlink_metadata(file).ok()?;
    if !meta.is_file() || meta.len() > MAX_BYTES {
        return None;
    }
    let found = crate::host::fsutil::read_managed(file).ok()??;
    let record: Record = serde_json::from_slice(&found.content).ok()?;
    let names_ok = record
        .gateways
        .iter()
        .flatten()
        .all(|g| valid_unit(&g.unit))
        && record.state_dirs.keys().all(|u| valid_unit(u));
    names_ok.then_some(record)
}

/// Whether a remembered record still describes the world.
fn current(record: &Record) -> bool {
    let now = now_unix();
    record.format == FORMAT
        && record.written_unix <= now
        && now - record.written_unix < MEMO_TTL.as_secs()
        && !record.stamps.is_empty()
        && record.stamps.len() <= MAX_STAMPS
        && record.stamps.iter().all(Stamp::holds)
}

/// A unit name as systemd prints it (what `list-unit-files` could have listed).
fn valid_unit(name: &str) -> bool {
    name.ends_with(".service")
        && !name.starts_with('-')
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.@\\".contains(&b))
}

/// `lstat` of `path` as one line, "absent" when there is nothing, [`UNREADABLE`] when it cannot
/// be told. A symlink's target is `stat`ed too, except by root when the target is not root's
/// alone (root never looks into a user's paths: a link in `/etc/systemd/system` may point into a
/// home).
fn stat_line(path: &Path) -> String {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return "absent".to_owned(),
        Err(_) => return UNREADABLE.to_owned(),
    };
    let line = |m: &std::fs::Metadata| {
        format!(
            "{}:{}:{:o}:{}:{}:{}:{}.{}:{}.{}",
            m.dev(),
            m.ino(),
            m.mode(),
            m.nlink(),
            m.uid(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec()
        )
    };
    if !meta.file_type().is_symlink() {
        return line(&meta);
    }
    let as_root = nix::unistd::geteuid().is_root();
    let target = match std::fs::canonicalize(path) {
        Ok(target) if as_root && !crate::host::fsutil::root_controlled(&target) => {
            format!("not followed: {}", target.display())
        }
        Ok(target) => std::fs::metadata(&target)
            .map(|m| line(&m))
            .unwrap_or_else(|_| "dangling".to_owned()),
        Err(_) => "dangling".to_owned(),
    };
    format!("{} -> {target}", line(&meta))
}

/// [`stat_line`] taken as root (for a process acting as a user: see [`Stamp::RootPath`]).
fn root_stat_line(path: &Path) -> String {
    crate::host::privileges::as_root(|| Ok(stat_line(path)))
        .unwrap_or_else(|_| UNREADABLE.to_owned())
}

/// The process's start time in clock ticks since boot (`/proc/<pid>/stat`, field 22), or
/// "gone".
fn process_start(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // The command name may hold spaces and parentheses: fields start after the last ')'.
            let rest = &stat[stat.rfind(')')? + 1..];
            rest.split_whitespace().nth(19).map(str::to_owned)
        })
        .unwrap_or_else(|| "gone".to_owned())
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record_with(stamps: Vec<Stamp>, written_unix: u64) -> Record {
        Record {
            format: FORMAT,
            written_unix,
            stamps,
            gateways: Some(vec![FoundGateway {
                unit: "openclaw-gateway.service".to_owned(),
                user: String::new(),
            }]),
            state_dirs: BTreeMap::new(),
        }
    }

    #[test]
    fn a_stamp_holds_until_its_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let unit = dir.path().join("openclaw-gateway.service");
        std::fs::write(&unit, "[Service]\n").unwrap();
        let mut stamps = Vec::new();
        stamp_unit_dir(dir.path(), &mut stamps);
        let record = record_with(stamps.clone(), now_unix());
        assert!(current(&record));
        // An edit in place (same directory entries) is seen through the file's own stamp.
        std::fs::write(&unit, "[Service]\nEnvironment=A=1\n").unwrap();
        assert!(!current(&record));
        // A new unit file is seen through the directory's stamp.
        let mut stamps = Vec::new();
        stamp_unit_dir(dir.path(), &mut stamps);
        let record = record_with(stamps, now_unix());
        std::fs::write(dir.path().join("other.service"), "").unwrap();
        assert!(!current(&record));
    }

    #[test]
    fn enabling_and_drop_ins_are_stamped_and_other_units_are_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("default.target.wants")).unwrap();
        std::fs::create_dir(dir.path().join("openclaw-gateway.service.d")).unwrap();
        std::fs::write(dir.path().join("openclaw-gateway.service.d/a.conf"), "").unwrap();
        std::fs::write(dir.path().join("nginx.service"), "").unwrap();
        let mut stamps = Vec::new();
        stamp_unit_dir(dir.path(), &mut stamps);
        let paths: Vec<String> = stamps
            .iter()
            .map(|s| match s {
                Stamp::Path { path, .. } => {
                    path.strip_prefix(dir.path()).unwrap().display().to_string()
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            paths,
            [
                "",
                "default.target.wants",
                "openclaw-gateway.service.d",
                "openclaw-gateway.service.d/a.conf"
            ]
        );
        let record = record_with(stamps, now_unix());
        std::os::unix::fs::symlink(
            "/dev/null",
            dir.path().join("default.target.wants/x.service"),
        )
        .unwrap();
        assert!(
            !current(&record),
            "enabling a unit changes the .wants directory"
        );
    }

    #[test]
    fn a_memo_expires_and_a_restarted_process_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let stamps = vec![Stamp::of_path(dir.path())];
        assert!(!current(&record_with(
            stamps.clone(),
            now_unix() - MEMO_TTL.as_secs()
        )));
        assert!(!current(&record_with(stamps.clone(), now_unix() + 60)));
        let own = Stamp::of_process(std::process::id());
        assert!(current(&record_with(vec![own], now_unix())));
        let other = Stamp::Process {
            pid: std::process::id(),
            start: "1".to_owned(),
        };
        assert!(!current(&record_with(vec![other], now_unix())));
        assert_eq!(process_start(u32::MAX), "gone");
    }

    #[test]
    fn what_cannot_be_stamped_is_never_trusted_and_existence_is_only_existence() {
        let unreadable = Stamp::Path {
            path: PathBuf::from("/"),
            stat: UNREADABLE.to_owned(),
        };
        assert!(!unreadable.holds());
        let dir = tempfile::tempdir().unwrap();
        let openclaw = dir.path().join(".openclaw");
        let exists = Stamp::of_existence(&openclaw);
        std::fs::create_dir(&openclaw).unwrap();
        assert!(!exists.holds(), "~/.openclaw appearing is a change");
        let exists = Stamp::of_existence(&openclaw);
        std::fs::write(openclaw.join("openclaw.json"), "{}").unwrap();
        assert!(exists.holds(), "what OpenClaw writes inside is not");
        let own = Stamp::of_own_environment();
        assert!(own.holds());
        let other = Stamp::OwnEnvironment {
            values: vec![("OPENCLAW_STATE_DIR".to_owned(), "/elsewhere".to_owned())],
        };
        assert!(!other.holds());
    }

    #[test]
    fn unit_names_from_a_memo_are_checked() {
        assert!(valid_unit("openclaw-gateway-work.service"));
        assert!(valid_unit("openclaw-gateway@a\\x2db.service"));
        assert!(!valid_unit("--help.service"));
        assert!(!valid_unit("openclaw gateway.service"));
        assert!(!valid_unit("openclaw-gateway.socket"));
    }
}
