//! Root's Docker Engine, through its own `docker` CLI: the containers a host runs (`docker
//! inspect`), a container's restart, and a command inside a container (`docker exec`).
//!
//! The rules (README "Containers"): the `docker` program is the first of [`CANDIDATES`] that
//! root controls (root-owned, not writable by anyone else, from `/` down), never one found on a
//! `PATH`; its environment is cleared down to `PATH`, `HOME` and root's own `DOCKER_HOST` (the
//! daemon root talks to), so nothing of a container or its user reaches it; every call is
//! bounded and killed past its bound (a daemon or a container that hangs fails that gateway
//! alone). A container's output (an `exec`'s stdout) is its user's words: parsed, never trusted.

use crate::error::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's `docker.io` and Docker's own packages put the CLI.
pub const CANDIDATES: [&str; 2] = ["/usr/bin/docker", "/usr/local/bin/docker"];

/// How long `docker inspect`/`ps` may take.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(20);

/// Root's Docker CLI, when this host has one that root controls and a daemon socket to ask.
#[derive(Clone, Debug)]
pub struct Docker {
    program: PathBuf,
    host: Option<String>,
}

/// What one bounded call produced.
pub struct Output {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Docker {
    /// The CLI and the daemon root would use, or `None` when there is no Docker here: no
    /// root-controlled CLI, or no daemon socket (`DOCKER_HOST` as root set it, else
    /// `/var/run/docker.sock`).
    pub fn find() -> Option<Docker> {
        let program = root_controlled_program(&CANDIDATES)?;
        let host = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty());
        let socket = match &host {
            Some(h) => h.strip_prefix("unix://").map(PathBuf::from),
            None => Some(PathBuf::from("/var/run/docker.sock")),
        };
        if let Some(socket) = socket {
            if !is_socket(&socket) {
                return None;
            }
        }
        Some(Docker { program, host })
    }

    /// The IDs of the running and stopped containers Docker Compose made.
    pub fn compose_containers(&self) -> Result<Vec<String>> {
        let out = self.run(
            &[
                "ps",
                "--all",
                "--quiet",
                "--no-trunc",
                "--filter",
                "label=com.docker.compose.service",
            ],
            QUERY_TIMEOUT,
        )?;
        if !out.success {
            return Err(self.failure("ps", &out));
        }
        Ok(out
            .stdout
            .lines()
            .map(str::trim)
            .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_owned)
            .collect())
    }

    /// `docker inspect` of these containers: Docker's JSON array.
    pub fn inspect(&self, ids: &[String]) -> Result<serde_json::Value> {
        if ids.is_empty() {
            return Ok(serde_json::Value::Array(Vec::new()));
        }
        let mut args = vec!["inspect", "--type", "container"];
        args.extend(ids.iter().map(String::as_str));
        let out = self.run(&args, QUERY_TIMEOUT)?;
        if !out.success {
            return Err(self.failure("inspect", &out));
        }
        serde_json::from_str(&out.stdout)
            .map_err(|e| Error::failed(format!("docker inspect printed no JSON array: {e}")))
    }

    /// Restarts a container, its processes given `stop` to end (then killed by Docker).
    pub fn restart(&self, id: &str, stop: Duration) -> Result<()> {
        let seconds = stop.as_secs().to_string();
        let out = self.run(
            &["restart", "--time", &seconds, id],
            stop + Duration::from_secs(60),
        )?;
        if out.success {
            Ok(())
        } else {
            Err(self.failure("restart", &out))
        }
    }

    /// Starts a container that is not running (a gateway is never left stopped by us).
    pub fn start(&self, id: &str) -> Result<()> {
        let out = self.run(&["start", id], QUERY_TIMEOUT + Duration::from_secs(40))?;
        if out.success {
            Ok(())
        } else {
            Err(self.failure("start", &out))
        }
    }

    /// A command inside a running container, as the container's own user and in its own
    /// working directory, bounded by `limit`.
    pub fn exec(&self, id: &str, argv: &[String], limit: Duration) -> Result<Output> {
        let mut args = vec!["exec", id];
        args.extend(argv.iter().map(String::as_str));
        self.run(&args, limit)
    }

    fn failure(&self, what: &str, out: &Output) -> Error {
        Error::failed(format!(
            "docker {what} failed: {}",
            crate::error::short(out.stderr.trim())
        ))
    }

    /// Runs the CLI with a cleared environment, killed past `limit`.
    fn run(&self, args: &[&str], limit: Duration) -> Result<Output> {
        let mut command = Command::new(&self.program);
        command
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", "/root");
        if let Some(host) = &self.host {
            command.env("DOCKER_HOST", host);
        }
        let what = format!("docker {}", args.first().copied().unwrap_or_default());
        run_bounded(command, &what, limit)
    }
}

/// The first of `candidates` that is a file root controls (never one found on a `PATH`): the
/// container CLIs' one rule, for Docker and Podman alike.
pub(crate) fn root_controlled_program(candidates: &[&str]) -> Option<PathBuf> {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file() && crate::host::fsutil::root_controlled(p))
}

/// Runs a prepared command (its environment already set by the caller) with no input, its
/// output collected, killed past `limit`; `what` names it in errors. The command gets a process
/// group of its own, killed whole at the limit (rootless Podman runs its work in a child that
/// would otherwise keep the pipes open), and output still held open by something it left
/// behind is waited for only briefly.
pub(crate) fn run_bounded(mut command: Command, what: &str, limit: Duration) -> Result<Output> {
    use std::os::unix::process::CommandExt;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command
        .spawn()
        .map_err(|e| Error::failed(format!("cannot run {what}: {e}")))?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let readers = [stdout.map(drain), stderr.map(drain)];
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| Error::failed(e.to_string()))? {
            break status;
        }
        if Instant::now() >= deadline {
            let group = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::failed(format!(
                "{what} did not finish within {} s",
                limit.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let until = Instant::now() + Duration::from_secs(5);
    let [stdout, stderr] = readers.map(|r| r.and_then(|h| joined_by(h, until)));
    Ok(Output {
        success: status.success(),
        stdout: stdout.unwrap_or_default(),
        stderr: stderr.unwrap_or_default(),
    })
}

/// A reader's text once its pipe closed, or `None` when it is still open at `until` (the
/// thread is left to end with the pipe).
fn joined_by(handle: std::thread::JoinHandle<String>, until: Instant) -> Option<String> {
    while !handle.is_finished() {
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    handle.join().ok()
}

/// Reads a pipe to its end on a thread (so a full pipe never stalls the child).
fn drain(pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        // A container's output may hold a token (`podman inspect` of its environment): the
        // buffer is wiped once copied.
        let mut bytes = zeroize::Zeroizing::new(Vec::new());
        let _ = pipe.take(16 << 20).read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}
