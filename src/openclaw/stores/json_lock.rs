//! OpenClaw's advisory lock on a JSON store: `<file>.lock` holding `{pid, createdAt}`, stale after
//! 30 seconds or once its process is gone. We wait a bounded time for a live lock, take it
//! ourselves while we edit, and remove it afterwards (only if it is still ours).
//!
//! Taking over a stale lock never removes another taker's fresh one: the lock judged stale is
//! renamed aside (atomic) and removed only when the file moved is that very lock (same device and
//! inode); a fresh lock caught instead is put back with `renameat2(RENAME_NOREPLACE)`, which never
//! replaces a newer one. Then the exclusive create decides who holds it. Our own takers also take
//! turns on the directory's flock for each attempt, so none of them creates a lock inside another
//! one's takeover (where the put-back could fail and leave two holders).

use crate::error::{Error, Result};
use nix::libc;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A lock older than this is abandoned (OpenClaw's own rule).
pub const STALE_AFTER: Duration = Duration::from_secs(30);
/// How long we wait for a live lock before giving up on that store.
pub const WAIT_FOR_LOCK: Duration = Duration::from_secs(10);

pub struct StoreLock {
    path: PathBuf,
    content: String,
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

impl StoreLock {
    /// Takes `<file>.lock`, waiting up to `wait` for a live holder.
    pub fn acquire(file: &Path, wait: Duration) -> Result<StoreLock> {
        let mut path = file.as_os_str().to_owned();
        path.push(".lock");
        let path = PathBuf::from(path);
        let content = format!(
            "{{\"pid\":{},\"createdAt\":{}}}",
            std::process::id(),
            now_ms()
        );
        let deadline = Instant::now() + wait;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        loop {
            // Our takers (threads, or a second sync) take turns on the directory's flock for one
            // attempt each: none creates a lock while another has a judged-stale lock renamed
            // aside, so a takeover's put-back never meets a lock made in that window. OpenClaw
            // does not take this flock; against it, the rename-aside rule alone holds.
            let turn = take_turn(&dir, &path, deadline, wait)?;
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
            {
                Ok(mut handle) => {
                    handle
                        .write_all(content.as_bytes())
                        .and_then(|()| handle.sync_all())
                        .map_err(|e| {
                            Error::failed(format!("{}: cannot write lock: {e}", path.display()))
                        })?;
                    return Ok(StoreLock { path, content });
                }
                Err(err) if err.kind() == ErrorKind::AlreadyExists => {
                    if let Some(judged) = stale_lock(&path) {
                        take_over(&path, judged)?;
                        if Instant::now() < deadline {
                            continue;
                        }
                    }
                    drop(turn);
                    if Instant::now() >= deadline {
                        return Err(Error::failed(format!(
                            "{}: held by a running OpenClaw process for more than {} s; store left untouched",
                            path.display(),
                            wait.as_secs()
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(err) => {
                    return Err(Error::failed(format!(
                        "{}: cannot create lock: {err}",
                        path.display()
                    )))
                }
            }
        }
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        if read_lock(&self.path).is_some_and(|c| c == self.content.as_bytes()) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Our turn on the directory's flock for one attempt (module docs), waited for until `deadline`
/// at most: the agent directory is the user's, who may hold its flock forever. Opened without
/// blocking (`O_DIRECTORY`: a FIFO in its place is refused at once).
fn take_turn(
    dir: &Path,
    lock: &Path,
    deadline: Instant,
    wait: Duration,
) -> Result<crate::host::locks::Lock> {
    let handle = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|e| Error::failed(format!("{}: cannot open: {e}", dir.display())))?;
    crate::host::locks::flock_until(handle, deadline, |_| {}).map_err(|not_taken| match not_taken {
        crate::host::locks::NotTaken::Held(holder) => Error::failed(format!(
            "{}: its directory is locked{} for more than {} s; store left untouched",
            lock.display(),
            holder.map(|h| format!(" by {h}")).unwrap_or_default(),
            wait.as_secs_f32().ceil()
        )),
        crate::host::locks::NotTaken::Failed(e) => {
            Error::failed(format!("{}: cannot lock: {e}", dir.display()))
        }
    })
}

/// A lock file's bytes, read without blocking and never through a symlink; `None` when it is
/// gone, unreadable, or not a regular file (a FIFO in its place is never read).
fn read_lock(path: &Path) -> Option<Vec<u8>> {
    crate::host::fsutil::read_regular(path)
        .ok()
        .flatten()
        .map(|bytes| bytes.to_vec())
}

#[derive(serde::Deserialize)]
struct LockBody {
    pid: Option<i64>,
    #[serde(rename = "createdAt")]
    created_at: Option<serde_json::Value>,
}

/// What identifies one lock: device, inode (which a new file may reuse at once), and its body
/// (a fresh lock has another pid or time) or, for a directory lock, its modification time (which
/// a rename leaves alone).
#[derive(Debug, PartialEq, Eq)]
struct LockIdentity {
    dev: u64,
    ino: u64,
    body: Vec<u8>,
    mtime_ns: i128,
}

fn identity(path: &Path) -> Option<LockIdentity> {
    let meta = fs::symlink_metadata(path).ok()?;
    Some(LockIdentity {
        dev: meta.dev(),
        ino: meta.ino(),
        // An unreadable lock (root-owned, left by the legacy root script) still has an identity.
        body: if meta.is_file() {
            read_lock(path).unwrap_or_default()
        } else {
            Vec::new()
        },
        mtime_ns: if meta.is_dir() {
            i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
        } else {
            0
        },
    })
}

/// The identity of the lock at `path` when it is stale, `None` when it is live. A lock that
/// vanished meanwhile is "stale" with an identity nothing matches.
fn stale_lock(path: &Path) -> Option<Option<LockIdentity>> {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return Some(None);
    };
    let judged = identity(path);
    holder_is_stale(path, &meta).then_some(judged)
}

static ASIDE: AtomicU64 = AtomicU64::new(0);

/// Removes the stale lock `judged` without ever removing a fresh one (see the module docs).
fn take_over(path: &Path, judged: Option<LockIdentity>) -> Result<()> {
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(
        ".ocsync-stale.{}.{}",
        std::process::id(),
        ASIDE.fetch_add(1, Ordering::Relaxed)
    ));
    let aside = PathBuf::from(aside);
    match fs::rename(path, &aside) {
        Ok(()) => {}
        // Gone already: someone else took it over; the next create decides.
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(()),
        Err(err) => {
            return Err(Error::failed(format!(
                "{}: cannot take over a stale lock: {err}",
                path.display()
            )))
        }
    }
    if judged.is_none() || identity(&aside) != judged {
        // A fresh lock of another taker: put it back, unless an even newer one is there (then
        // two takers believe they hold it whatever we do; the window is one rename long).
        if put_back(&aside, path) {
            return Ok(());
        }
    }
    let _ = if aside.is_dir() {
        fs::remove_dir_all(&aside)
    } else {
        fs::remove_file(&aside)
    };
    Ok(())
}

/// Moves `aside` back to `path` without replacing anything there: `renameat2(RENAME_NOREPLACE)`,
/// or, on filesystems without it (NFS), a hard link (which never replaces either) and an unlink.
fn put_back(aside: &Path, path: &Path) -> bool {
    let renamed = nix::fcntl::renameat2(
        nix::fcntl::AT_FDCWD,
        aside,
        nix::fcntl::AT_FDCWD,
        path,
        nix::fcntl::RenameFlags::RENAME_NOREPLACE,
    );
    match renamed {
        Ok(()) => true,
        Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS) if !aside.is_dir() => {
            fs::hard_link(aside, path).is_ok() && fs::remove_file(aside).is_ok()
        }
        Err(_) => false,
    }
}

fn holder_is_stale(path: &Path, meta: &fs::Metadata) -> bool {
    let age_by_mtime = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .unwrap_or_default();
    let body = read_lock(path).and_then(|bytes| serde_json::from_slice::<LockBody>(&bytes).ok());
    let Some(body) = body else {
        return age_by_mtime > STALE_AFTER;
    };
    if let Some(pid) = body.pid.filter(|p| *p > 0 && *p <= i64::from(i32::MAX)) {
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None)
            .map_or_else(|e| e != nix::errno::Errno::ESRCH, |()| true);
        if !alive {
            return true;
        }
    }
    let created_ms: Option<u128> = match body.created_at {
        Some(serde_json::Value::Number(n)) => n.as_u64().map(u128::from),
        Some(serde_json::Value::String(s)) => {
            aws_smithy_types::DateTime::from_str(&s, aws_smithy_types::date_time::Format::DateTime)
                .ok()
                .and_then(|d| u128::try_from(d.to_millis().ok()?).ok())
        }
        _ => None,
    };
    match created_ms {
        Some(created) => now_ms().saturating_sub(created) > STALE_AFTER.as_millis(),
        None => age_by_mtime > STALE_AFTER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_and_dead_locks_are_taken_over_and_live_ones_wait() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("auth-profiles.json");
        let lock_path = dir.path().join("auth-profiles.json.lock");
        fs::write(&lock_path, r#"{"pid":1,"createdAt":1000}"#).unwrap();
        drop(StoreLock::acquire(&store, Duration::from_millis(300)).unwrap());
        assert!(!lock_path.exists(), "our lock is removed on drop");
        let live = format!(
            r#"{{"pid":{},"createdAt":{}}}"#,
            std::process::id(),
            now_ms()
        );
        fs::write(&lock_path, &live).unwrap();
        let err = StoreLock::acquire(&store, Duration::from_millis(300))
            .err()
            .unwrap();
        assert!(
            err.message().contains("held by a running OpenClaw process"),
            "{err}"
        );
        assert_eq!(fs::read_to_string(&lock_path).unwrap(), live);
    }

    #[test]
    fn a_fresh_lock_that_replaced_the_stale_one_survives_a_takeover() {
        let dir = tempfile::tempdir().unwrap();
        let lock_path = dir.path().join("auth-profiles.json.lock");
        fs::write(&lock_path, r#"{"pid":1,"createdAt":1000}"#).unwrap();
        let judged = stale_lock(&lock_path).expect("stale");
        // Meanwhile another taker removed it and created its own.
        fs::remove_file(&lock_path).unwrap();
        let fresh = format!(
            r#"{{"pid":{},"createdAt":{}}}"#,
            std::process::id(),
            now_ms()
        );
        fs::write(&lock_path, &fresh).unwrap();
        take_over(&lock_path, judged).unwrap();
        assert_eq!(fs::read_to_string(&lock_path).unwrap(), fresh);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "nothing left aside"
        );
        // The stale one itself is removed.
        fs::write(&lock_path, r#"{"pid":1,"createdAt":1000}"#).unwrap();
        let judged = stale_lock(&lock_path).unwrap();
        take_over(&lock_path, judged).unwrap();
        assert!(!lock_path.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
