//! OpenClaw's advisory lock on a JSON store: `<file>.lock` holding `{pid, createdAt}`, stale after
//! 30 seconds or once its process is gone. We wait a bounded time for a live lock, take it
//! ourselves while we edit, and remove it afterwards (only if it is still ours).

use crate::error::{Error, Result};
use nix::libc;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
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
        loop {
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
                    if holder_is_stale(&path) {
                        // Another cleaner may race us to it; either way the next create decides.
                        let _ = if path.is_dir() {
                            fs::remove_dir(&path)
                        } else {
                            fs::remove_file(&path)
                        };
                        continue;
                    }
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
        if fs::read_to_string(&self.path).is_ok_and(|c| c == self.content) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[derive(serde::Deserialize)]
struct LockBody {
    pid: Option<i64>,
    #[serde(rename = "createdAt")]
    created_at: Option<serde_json::Value>,
}

fn holder_is_stale(path: &Path) -> bool {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return true;
    };
    let age_by_mtime = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .unwrap_or_default();
    let body = fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str::<LockBody>(&text).ok());
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
}
