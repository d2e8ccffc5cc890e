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
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use serde::{de::DeserializeOwned, Serialize};
use std::io::{Read as _, Write};
use std::time::{Duration, Instant};

/// Runs `work` in a child process and returns its answer, or why there is none (the outer
/// error: the fork itself failed; the inner one: the child died without answering, or did not
/// answer within `limit` and was killed).
///
/// The child may run as a gateway's user, who can stop it (SIGSTOP) or make it wait forever on
/// something of theirs: the parent never waits on it unbounded. Past `limit` it kills the child
/// (SIGKILL works on a stopped process too; the parent is root, or the child's own user).
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
            let (text, read) = read_until(std::fs::File::from(reader), Instant::now() + limit);
            if read == Read::TimedOut {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                let _ = waitpid(child, None);
                return Ok(Err(format!(
                    "did not finish within {} s and was killed",
                    limit.as_secs()
                )));
            }
            let status = waitpid(child, None);
            if let Read::Failed(e) = read {
                return Ok(Err(format!("could not be read from: {e}")));
            }
            Ok(
                serde_json::from_slice::<T>(&text).map_err(|_| match status {
                    Ok(WaitStatus::Exited(_, code)) => format!("exited with {code}"),
                    Ok(WaitStatus::Signaled(_, signal, _)) => format!("was killed by {signal}"),
                    Ok(other) => format!("ended as {other:?}"),
                    Err(e) => format!("could not be waited for: {e}"),
                }),
            )
        }
    }
}

/// How reading a child's answer ended.
#[derive(Debug, PartialEq)]
enum Read {
    /// End of file: the child closed the pipe (answered, or died).
    Done,
    TimedOut,
    Failed(String),
}

/// Reads the non-blocking pipe until its end or `deadline`.
fn read_until(mut pipe: std::fs::File, deadline: Instant) -> (Vec<u8>, Read) {
    let mut text = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match pipe.read(&mut chunk) {
            Ok(0) => return (text, Read::Done),
            Ok(n) => text.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return (text, Read::TimedOut);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (text, Read::Failed(e.to_string())),
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
