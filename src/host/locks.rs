//! Every flock this tool takes, and the one place that waits for one: a bounded wait that names
//! the holder (process id, name and owner, from `/proc/locks`) when it gives up.
//!
//! Root's runs lock only files in [`RUN_DIR`] (`/run/openclaw-token-sync`), a directory root
//! creates 0700 and checks before every use (a real directory, owned by root, writable by no one
//! else; nobody else can create it either, since `/run` is root's). So no other user can open,
//! let alone hold, a lock of root's: not the multi-user run lock (once a flock on the 0755
//! executable, which any user could hold) and not the metrics lock (once a flock on the
//! world-readable node_exporter directory). The tarball binary (`/usr/local/bin`) and the packaged
//! one (`/usr/bin`) share these locks, since they are not per executable.
//!
//! A user's own run (without root) locks files in its own state directory; the user can hold
//! those, which only ever stalls that user's own sync, and every wait is bounded.

use crate::error::{Error, Result};
use nix::libc;
use std::fs::{DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Root's directory for its locks and the short-lived files it hands systemd.
pub const RUN_DIR: &str = "/run/openclaw-token-sync";

/// A held flock, released when dropped (or when the process ends).
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Closes this process's descriptor of the lock without releasing it: for a forked worker
    /// that inherited root's lock and goes on as a user (the parent still holds it). The child
    /// must end with `_exit`, never running this value's destructor.
    pub fn forget_in_child(&self) {
        use std::os::fd::AsRawFd;
        let _ = nix::unistd::close(self._file.as_raw_fd());
    }
}

/// Root's private directory, created 0700 when missing and checked every time: a real directory
/// (never a symlink), owned by root, with no access for group or others. Root only.
pub fn run_dir() -> Result<PathBuf> {
    let dir = PathBuf::from(RUN_DIR);
    match DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(Error::failed(format!(
                "{}: cannot create root's lock directory: {e}",
                dir.display()
            )))
        }
    }
    let meta = std::fs::symlink_metadata(&dir)
        .map_err(|e| Error::failed(format!("{}: cannot inspect: {e}", dir.display())))?;
    if !meta.is_dir() || meta.uid() != 0 {
        return Err(Error::failed(format!(
            "{}: not a directory owned by root; refusing to use it for root's locks",
            dir.display()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::failed(format!("{}: cannot set mode 0700: {e}", dir.display())))?;
    }
    Ok(dir)
}

/// Prefix of the files root hands systemd for OpenClaw's CLI (`cli-<pid>-<n>.env`).
pub const HAND_OVER_PREFIX: &str = "cli-";

/// Removes hand-over files of processes that are gone (a worker killed in the middle of a call
/// leaves its file behind).
pub fn sweep_hand_overs(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(HAND_OVER_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Takes root's lock `name` in [`RUN_DIR`], waiting up to `wait`.
pub fn root_lock(name: &str, wait: Duration) -> Result<Lock> {
    let path = run_dir()?.join(name);
    let file = open_lock_file(&path)?;
    wait_for(file, &path, wait)
}

/// Takes the lock file at `path` (created 0600 when missing, never through a symlink), waiting
/// up to `wait`.
pub fn file_lock(path: &Path, wait: Duration) -> Result<Lock> {
    let file = open_lock_file(path)?;
    wait_for(file, path, wait)
}

/// Takes a flock on a directory, waiting up to `wait` (for a directory only this user or root
/// can write; see the module docs).
pub fn dir_lock(dir: &Path, wait: Duration) -> Result<Lock> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|e| Error::failed(format!("{}: cannot open to lock: {e}", dir.display())))?;
    wait_for(file, dir, wait)
}

fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                crate::host::fsutil::symlink_refused(path)
            } else {
                Error::failed(format!("{}: cannot open lock: {e}", path.display()))
            }
        })
        .and_then(|file| {
            let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
            if regular {
                Ok(file)
            } else {
                Err(Error::failed(format!(
                    "{}: the lock is not a regular file; refusing it",
                    path.display()
                )))
            }
        })
}

/// Why [`flock_until`] came back without the lock.
pub enum NotTaken {
    /// Still held at the deadline, by this holder when `/proc/locks` names one.
    Held(Option<String>),
    /// flock itself failed.
    Failed(std::io::Error),
}

/// Tries the flock on `file` every 50 ms until `deadline` (the one bounded wait every flock of
/// this tool goes through); `first_wait` runs once, when the lock is found held.
pub fn flock_until(
    file: File,
    deadline: Instant,
    first_wait: impl FnOnce(&File),
) -> std::result::Result<Lock, NotTaken> {
    let mut first_wait = Some(first_wait);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Lock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                if let Some(said) = first_wait.take() {
                    said(&file);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => return Err(NotTaken::Held(holder_of(&file))),
            Err(std::fs::TryLockError::Error(e)) => return Err(NotTaken::Failed(e)),
        }
    }
}

/// A run lock, waited for up to `wait`: a waiting run says so at once (not only at the
/// timeout: a run that waits is not a hung one), and fails past `wait` naming the holder.
fn wait_for(file: File, path: &Path, wait: Duration) -> Result<Lock> {
    let said = |file: &File| {
        let holder = holder_of(file)
            .map(|h| format!(", held by {h}"))
            .unwrap_or_default();
        tracing::warn!(
            "waiting for another run: {}{holder}; waiting up to {} s",
            path.display(),
            wait.as_secs_f32().ceil()
        );
    };
    flock_until(file, Instant::now() + wait, said).map_err(|not_taken| match not_taken {
        NotTaken::Held(holder) => Error::failed(format!(
            "{} is held{} (waited {} s); try again later",
            path.display(),
            holder.map(|h| format!(" by {h}")).unwrap_or_default(),
            wait.as_secs_f32().ceil()
        )),
        NotTaken::Failed(e) => Error::failed(format!("{}: cannot lock: {e}", path.display())),
    })
}

/// Who holds a flock on `file`, from `/proc/locks`: "process 1234 (flock, uid 1001)".
pub fn holder_of(file: &File) -> Option<String> {
    let meta = file.metadata().ok()?;
    let id = format!(
        "{:02x}:{:02x}:{}",
        libc::major(meta.dev()),
        libc::minor(meta.dev()),
        meta.ino()
    );
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let pid = locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // "1: FLOCK  ADVISORY  WRITE 1234 00:2a:5678 0 EOF"; blocked waiters are "-> ...".
        let at = fields.iter().position(|f| *f == "FLOCK")?;
        (fields.get(at + 4) == Some(&id.as_str()))
            .then(|| fields.get(at + 3)?.parse::<u32>().ok())
            .flatten()
    })?;
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|n| n.trim().to_owned())
        .unwrap_or_else(|_| "?".to_owned());
    let uid = std::fs::metadata(format!("/proc/{pid}"))
        .map(|m| m.uid().to_string())
        .unwrap_or_else(|_| "?".to_owned());
    Some(format!(
        "process {pid} ({}, uid {uid})",
        crate::error::short(&name)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_times_out_naming_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let held = file_lock(&path, Duration::from_millis(10)).unwrap();
        let err = file_lock(&path, Duration::from_millis(200))
            .err()
            .expect("the second taker waits, then fails");
        let message = err.message();
        assert!(
            message.contains(&format!("process {}", std::process::id())),
            "{message}"
        );
        drop(held);
        file_lock(&path, Duration::from_millis(10)).unwrap();
    }

    #[test]
    fn a_fifo_is_never_opened_as_a_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = file_lock(&path, Duration::from_millis(10)).err().unwrap();
        assert!(err.message().contains("not a regular file"), "{err}");
    }
}
