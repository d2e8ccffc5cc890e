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
        let program = CANDIDATES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file() && crate::host::fsutil::root_controlled(p))?;
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

/// Runs a prepared command (its environment already set by the caller) with no input, its
/// output collected, killed past `limit`; `what` names it in errors.
pub(crate) fn run_bounded(mut command: Command, what: &str, limit: Duration) -> Result<Output> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| Error::failed(format!("cannot run {what}: {e}")))?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let readers = [stdout.map(drain), stderr.map(drain)];
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| Error::failed(e.to_string()))? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let [stdout, stderr] = readers.map(|r| r.map(|h| h.join().unwrap_or_default()));
    let Some(status) = status else {
        return Err(Error::failed(format!(
            "{what} did not finish within {} s",
            limit.as_secs()
        )));
    };
    Ok(Output {
        success: status.success(),
        stdout: stdout.unwrap_or_default(),
        stderr: stderr.unwrap_or_default(),
    })
}

/// Reads a pipe to its end on a thread (so a full pipe never stalls the child).
fn drain(pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.take(16 << 20).read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}
