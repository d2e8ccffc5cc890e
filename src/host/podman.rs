//! A gateway user's own rootless Podman, for a Quadlet gateway's proof (`podman exec` of
//! OpenClaw's CLI inside the user's container, and which token its environment holds).
//!
//! It is only ever run by a process that already is the user (a sync worker that dropped root,
//! or the user's own run): root never runs it. The program is the first of [`CANDIDATES`] that
//! root controls, never one found on a `PATH`; its environment is cleared down to `PATH`, the
//! user's `HOME` and `XDG_RUNTIME_DIR` (where rootless Podman keeps its storage and runtime
//! state); every call is bounded and killed past its bound. The user's own Podman configuration
//! (`~/.config/containers`) is theirs to choose, as is everything else that runs as them.

use crate::error::{Error, Result};
use crate::host::docker::{root_controlled_program, run_bounded, Output};
use crate::host::privileges::{self, ChildIdentity};
use crate::openclaw::containers::TOKEN_VARIABLES;
use crate::secret::Fingerprint;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use zeroize::Zeroizing;

/// Where Debian's `podman` (and Podman's own packages) put the CLI.
pub const CANDIDATES: [&str; 2] = ["/usr/bin/podman", "/usr/local/bin/podman"];

/// The user's Podman CLI.
#[derive(Clone, Debug)]
pub struct Podman {
    program: PathBuf,
    home: PathBuf,
    uid: u32,
}

impl Podman {
    /// The CLI for the user `uid` with home `home`, or why there is none.
    pub fn find(home: &Path, uid: u32) -> Result<Podman> {
        let program = root_controlled_program(&CANDIDATES).ok_or_else(|| {
            Error::failed(format!(
                "no root-controlled podman ({}) to prove a Quadlet gateway with",
                CANDIDATES.join(", ")
            ))
        })?;
        Ok(Podman {
            program,
            home: home.to_path_buf(),
            uid,
        })
    }

    /// A command inside the user's running container `name`, bounded by `limit`.
    pub fn exec(&self, name: &str, argv: &[String], limit: Duration) -> Result<Output> {
        let mut args = vec!["exec".to_owned(), name.to_owned()];
        args.extend_from_slice(argv);
        self.run(&args, "podman exec", limit)
    }

    /// The token variables of the container's environment as Podman gave it at its start (the
    /// image's, `Environment=`, every `EnvironmentFile=`, `PodmanArgs=` flags), each as its
    /// fingerprint; the values are zeroized as soon as they are read.
    pub fn token_environment(&self, name: &str) -> Result<Vec<(String, Fingerprint)>> {
        let args = [
            "inspect",
            "--type",
            "container",
            "--format",
            "{{json .Config.Env}}",
            name,
        ]
        .map(str::to_owned);
        let mut out = self.run(&args, "podman inspect", Duration::from_secs(30))?;
        let stdout = Zeroizing::new(std::mem::take(&mut out.stdout));
        if !out.success {
            return Err(Error::failed(format!(
                "podman inspect {name} failed: {}",
                crate::error::short(out.stderr.trim())
            )));
        }
        let env: Zeroizing<Vec<String>> =
            Zeroizing::new(serde_json::from_str(stdout.trim()).map_err(|e| {
                Error::failed(format!("podman inspect printed no environment: {e}"))
            })?);
        Ok(env
            .iter()
            .filter_map(|entry| {
                let (variable, value) = entry.split_once('=')?;
                TOKEN_VARIABLES
                    .contains(&variable)
                    .then(|| (variable.to_owned(), Fingerprint::of(value.as_bytes())))
            })
            .collect())
    }

    /// Runs the CLI as the user with a cleared environment, killed past `limit`.
    fn run(&self, args: &[String], what: &str, limit: Duration) -> Result<Output> {
        let mut command = Command::new(&self.program);
        command
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", &self.home)
            .env("XDG_RUNTIME_DIR", format!("/run/user/{}", self.uid))
            // The user's manager, which rootless Podman asks for its cgroup on a systemd host.
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                format!("unix:path=/run/user/{}/bus", self.uid),
            );
        if nix::unistd::geteuid().is_root() {
            return Err(Error::failed(
                "internal error: podman is only run as the gateway's user, never as root",
            ));
        }
        // Acting as the user with root kept back: the child is the user through and through.
        privileges::child_identity(&mut command, ChildIdentity::User);
        run_bounded(command, what, limit)
    }
}
