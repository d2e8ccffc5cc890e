//! One process per user when a run syncs gateways of several users: acting as a user is for
//! good (or, for system units, keeps only root's real id), so each user's gateways are synced in
//! a forked child that becomes the user, and its results come back to the root parent through a
//! pipe as JSON (reports and error messages, never a token: the child inherits the fetched
//! secret in memory, nothing of it is written).
//!
//! The fork happens while the parent is single-threaded (the async runtime is gone by then;
//! checked through `/proc/self/task`), and the child never returns into the parent's code: it
//! ends with `_exit` (a release build aborts on a panic; a debug build's unwinding panic is
//! caught and ends the child too). The pipe is close-on-exec, so no `systemctl` the child starts
//! holds it open.

use super::{GatewayRun, SyncReport};
use crate::error::{Error, Result};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// What a child sends back for one gateway.
#[derive(serde::Serialize, serde::Deserialize)]
struct Wire {
    user: String,
    unit: String,
    report: Option<SyncReport>,
    error: Option<String>,
    exit_code: u8,
}

/// Runs `work` in a child process and returns what it produced. `user` names the child in
/// errors (a child that dies without an answer is one failed gateway of that user).
pub fn in_child(user: &str, work: impl FnOnce() -> Vec<GatewayRun>) -> Result<Vec<GatewayRun>> {
    wait_single_threaded()?;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::failed(format!("cannot create a pipe: {e}")))?;
    // SAFETY: the process is single-threaded (checked above), so the child owns a consistent
    // copy of every lock and allocator state; it leaves through `_exit` only.
    match unsafe { fork() }.map_err(|e| Error::failed(format!("cannot fork: {e}")))? {
        ForkResult::Child => {
            drop(reader);
            let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
                Ok(runs) => {
                    let wire: Vec<Wire> = runs.into_iter().map(to_wire).collect();
                    let mut out = std::fs::File::from(writer);
                    match serde_json::to_writer(&mut out, &wire) {
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
            let mut text = Vec::new();
            let read = std::fs::File::from(reader).read_to_end(&mut text);
            let status = waitpid(child, None);
            let failed = |why: String| {
                Ok(vec![GatewayRun {
                    user: user.to_owned(),
                    unit: "(every gateway of the user)".to_owned(),
                    result: Err(Error::failed(format!(
                        "the worker process for {user} {why}; its gateways were not all synced"
                    ))),
                }])
            };
            if let Err(e) = read {
                return failed(format!("could not be read from: {e}"));
            }
            match serde_json::from_slice::<Vec<Wire>>(&text) {
                Ok(wire) => Ok(wire.into_iter().map(from_wire).collect()),
                Err(_) => failed(match status {
                    Ok(WaitStatus::Exited(_, code)) => format!("exited with {code}"),
                    Ok(WaitStatus::Signaled(_, signal, _)) => format!("was killed by {signal}"),
                    Ok(other) => format!("ended as {other:?}"),
                    Err(e) => format!("could not be waited for: {e}"),
                }),
            }
        }
    }
}

fn to_wire(run: GatewayRun) -> Wire {
    let (report, error, exit_code) = match run.result {
        Ok(report) => {
            let code = report.exit_code();
            (Some(report), None, code)
        }
        Err(err) => (None, Some(err.message()), err.exit_code()),
    };
    Wire {
        user: run.user,
        unit: run.unit,
        report,
        error,
        exit_code,
    }
}

fn from_wire(wire: Wire) -> GatewayRun {
    let result = match (wire.report, wire.error) {
        (Some(report), _) => Ok(report),
        (None, error) => Err(Error::Reported {
            message: error.unwrap_or_else(|| "failed without a message".to_owned()),
            exit_code: wire.exit_code.max(1),
        }),
    };
    GatewayRun {
        user: wire.user,
        unit: wire.unit,
        result,
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
                "cannot start a per-user worker: the process still runs {threads} threads"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
