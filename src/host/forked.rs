//! Work done in a forked child whose answer comes back to the parent as JSON through a pipe.
//! For work that gives up root for good while its caller needs root afterwards: one child per
//! user in a multi-user sync (`sync::workers`), and a whole `sync` run by root that must still
//! write its metrics file as root after the run dropped to the gateway's user (`cli`).
//!
//! The fork happens while the process is single-threaded (checked through `/proc/self/task`,
//! waiting briefly for the threads of a runtime that was just shut down), and the child never
//! returns into the parent's code: it ends with `_exit` (a release build aborts on a panic; a
//! debug build's unwinding panic is caught and ends the child too). The pipe is close-on-exec,
//! so no process the child starts holds it open. The answer is whatever the caller serialises:
//! never a token.

use crate::error::{Error, Result};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use serde::{de::DeserializeOwned, Serialize};
use std::io::{Read as _, Write};
use std::time::{Duration, Instant};

/// Runs `work` in a child process and returns its answer, or why there is none (the outer
/// error: the fork itself failed; the inner one: the child died without answering, or did not
/// answer within `limit` and was killed).
///
/// The child may run as a gateway's user, who can stop it (SIGSTOP) or make it wait forever on
/// something of theirs: the parent never waits on it unbounded. Past `limit`, a child that acts
/// as a user is killed (SIGKILL ends a stopped process too; the packaged service keeps
/// `CAP_KILL` for this), and the parent reaps it with a bound as well. A child still running as
/// root (the coordinator of a run over several users, each of whose workers has its own bound)
/// is waited for. The programs a killed child started end on their own bounds (`systemctl`'s
/// D-Bus timeout, `RuntimeMaxSec=` of a transient unit). The child stays in the parent's process
/// group, so a Ctrl-C reaches it too.
pub fn answer_of<T: Serialize + DeserializeOwned>(
    limit: Duration,
    work: impl FnOnce() -> T,
) -> Result<std::result::Result<T, String>> {
    wait_single_threaded()?;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    let (reader, writer) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
            .map_err(|e| Error::failed(format!("cannot create a pipe: {e}")))?;
    // SAFETY: the process is single-threaded (checked above), so the child owns a consistent
    // copy of every lock and allocator state; it leaves through `_exit` only.
    match unsafe { fork() }.map_err(|e| Error::failed(format!("cannot fork: {e}")))? {
        ForkResult::Child => {
            drop(reader);
            let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
                Ok(answer) => {
                    let mut out = std::fs::File::from(writer);
                    // Written blocking: the parent reads as it comes.
                    let _ = nix::fcntl::fcntl(
                        &out,
                        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
                    );
                    match serde_json::to_writer(&mut out, &answer) {
                        Ok(()) => 0,
                        Err(_) => 70,
                    }
                }
                Err(_) => 101,
            };
            let _ = std::io::stdout().flush();
            let _ = std::io::stderr().flush();
            // SAFETY: `_exit` ends the child at once, without the parent's exit handlers.
            unsafe { nix::libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(writer);
            Ok(parent_side(child, reader, limit))
        }
    }
}

/// The parent's half of [`answer_of`]: the answer, read and reaped within `limit` (extended while
/// the child still runs as root).
fn parent_side<T: DeserializeOwned>(
    child: Pid,
    reader: std::os::fd::OwnedFd,
    limit: Duration,
) -> std::result::Result<T, String> {
    let mut deadline = Instant::now() + limit;
    let mut pipe = std::fs::File::from(reader);
    let mut text = Vec::new();
    let read = loop {
        match read_until(&mut pipe, &mut text, deadline) {
            Read::TimedOut if runs_as_root(child) => deadline = Instant::now() + limit,
            other => break other,
        }
    };
    let status = match read {
        Read::TimedOut => None,
        _ => reap_within(child, deadline.max(Instant::now() + Duration::from_secs(5))),
    };
    let Some(status) = status else {
        return Err(match kill_child(child) {
            Ok(()) => format!("did not finish within {} s and was killed", limit.as_secs()),
            Err(e) => format!(
                "did not finish within {} s and could not be killed ({e}); it was left behind",
                limit.as_secs()
            ),
        });
    };
    if let Read::Failed(e) = read {
        return Err(format!("could not be read from: {e}"));
    }
    serde_json::from_slice::<T>(&text).map_err(|_| match status {
        WaitStatus::Exited(_, code) => format!("exited with {code}"),
        WaitStatus::Signaled(_, signal, _) => format!("was killed by {signal}"),
        _ => "ended without an exit status".to_owned(),
    })
}

/// Kills the child and reaps it (a SIGKILL always ends a process, so the wait is short; it is
/// bounded all the same).
fn kill_child(child: Pid) -> std::result::Result<(), nix::errno::Errno> {
    nix::sys::signal::kill(child, Signal::SIGKILL)?;
    let _ = reap_within(child, Instant::now() + Duration::from_secs(10));
    Ok(())
}

/// `waitpid` without blocking until `deadline`: a child its user stopped between closing the
/// pipe and exiting would otherwise hold the parent for ever. `None` when it has not ended.
fn reap_within(child: Pid, deadline: Instant) -> Option<WaitStatus> {
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::EINTR) => {}
            Ok(status) => return Some(status),
            Err(_) => return Some(WaitStatus::Exited(child, -1)),
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether the child still runs as root (real and effective uid 0), from `/proc/<pid>/status`.
fn runs_as_root(child: Pid) -> bool {
    std::fs::read_to_string(format!("/proc/{child}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Uid:"))?.to_owned();
            let ids: Vec<&str> = line.split_whitespace().skip(1).take(2).collect();
            Some(ids == ["0", "0"])
        })
        .unwrap_or(false)
}

/// How reading a child's answer ended.
#[derive(Debug, PartialEq)]
enum Read {
    /// End of file: the child closed the pipe (answered, or died).
    Done,
    TimedOut,
    Failed(String),
}

/// Reads the non-blocking pipe into `text` until its end or `deadline`.
fn read_until(pipe: &mut std::fs::File, text: &mut Vec<u8>, deadline: Instant) -> Read {
    let mut chunk = [0u8; 8192];
    loop {
        match pipe.read(&mut chunk) {
            Ok(0) => return Read::Done,
            Ok(n) => text.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Read::TimedOut;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Read::Failed(e.to_string()),
        }
    }
}

/// Waits (briefly) until this process has one thread: helper threads of a runtime that was just
/// shut down may take a moment to go.
fn wait_single_threaded() -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let threads = std::fs::read_dir("/proc/self/task")
            .map(|entries| entries.count())
            .unwrap_or(1);
        if threads <= 1 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::failed(format!(
                "cannot start a worker process: this process still runs {threads} threads"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
