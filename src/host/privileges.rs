//! Who a sync acts for, and becoming that user. Run as root with `--user NAME`, the process drops
//! its supplementary groups, gid and uid to the target user before the first file operation, so
//! every file is created by the user and no root write ever lands in a path the user controls.
//!
//! Root without `--user` acts as the owner of the home it was given (`--home`, the config file's
//! `home`, else `$HOME`): a home that belongs to a user is that user's, whatever the invoking
//! identity, so root never leaves a root-owned file in it. Only a home root owns (`/root`) is
//! worked on as root. With `--user`, a `--home` owned by anyone else is refused (exit 2); the
//! user's own passwd home is taken as it is (a root-owned home of a chroot or service account).
//!
//! A gateway run by the *system* manager (`User=` in a system unit) needs root twice: its drop-in
//! lives in `/etc/systemd/system/<unit>.d/`, and only root may stop and start it. For such a
//! gateway the process acts as the user with the way back kept ([`act_as`]: effective ids of the
//! user, real and saved ids root), so every file in the user's world is still created and checked
//! as the user; [`as_root`] brackets the two root-only steps, and every child process is started
//! with one consistent identity ([`child_identity`]), never with mixed ids.
//!
//! Once it acts as a user, the process runs under that user's uid, and the user is hostile
//! (README "Security model"): it is never dumpable ([`forbid_core_dumps`], set again after every
//! change of ids), so the user can neither ptrace it nor get a core of it, and a worker that user
//! stops or stalls is killed by the root parent at its deadline (`crate::host::forked`).

use crate::error::{Error, Result};
use nix::unistd::{self, Gid, Uid, User};
use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct TargetUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

impl TargetUser {
    /// `/run/user/<uid>`, where the user's systemd manager listens.
    pub fn runtime_dir(&self) -> PathBuf {
        PathBuf::from(format!("/run/user/{}", self.uid))
    }
}

/// Resolves the target user: `--user NAME` (which needs root unless it names the invoking user),
/// else the invoking user. `--home` overrides the home directory.
pub fn resolve(user: Option<&str>, home_override: Option<&Path>) -> Result<TargetUser> {
    let euid = unistd::geteuid();
    let entry = match user {
        Some(name) => User::from_name(name)
            .map_err(|e| Error::config(format!("cannot look up user {name}: {e}")))?
            .ok_or_else(|| Error::config(format!("no such user: {name}")))?,
        None => User::from_uid(euid)
            .map_err(|e| Error::config(format!("cannot look up uid {euid}: {e}")))?
            .ok_or_else(|| Error::config(format!("uid {euid} has no passwd entry; use --user")))?,
    };
    if !euid.is_root() && entry.uid != euid {
        return Err(Error::config(format!(
            "acting for user {} needs root (running as uid {euid})",
            entry.name
        )));
    }
    let home = match home_override {
        Some(home) => home.to_path_buf(),
        None if user.is_none() => std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .unwrap_or(entry.dir.clone()),
        None => entry.dir.clone(),
    };
    if !home.is_absolute() {
        return Err(Error::config(format!(
            "home directory {} is not absolute",
            home.display()
        )));
    }
    // The home is looked at only when its owner decides something (no --user, or a --home to
    // check against it): the passwd home of a named user is taken as it is, never stat'ed as
    // root (the user can make that fail, e.g. with a FUSE mount over it, and so fail a run over
    // several users).
    let entry = if euid.is_root() && (user.is_none() || home_override.is_some()) {
        let owner = std::fs::metadata(&home)
            .map_err(|e| {
                Error::config(format!(
                    "home directory {}: cannot inspect: {e}",
                    home.display()
                ))
            })?
            .uid();
        match user {
            None if owner != 0 => User::from_uid(Uid::from_raw(owner))
                .map_err(|e| Error::config(format!("cannot look up uid {owner}: {e}")))?
                .ok_or_else(|| {
                    Error::config(format!(
                        "home directory {} belongs to uid {owner}, which has no passwd entry; pass --user",
                        home.display()
                    ))
                })?,
            Some(name) if home_override.is_some() && owner != entry.uid.as_raw() => {
                return Err(Error::config(format!(
                    "home directory {} belongs to uid {owner}, not to {name} (uid {}); pass the right --user or --home",
                    home.display(),
                    entry.uid
                )))
            }
            _ => entry,
        }
    } else {
        entry
    };
    if user.is_none() && entry.uid != euid {
        tracing::info!(
            user = entry.name,
            home = %home.display(),
            "acting as the owner of the home"
        );
    }
    Ok(TargetUser {
        name: entry.name,
        uid: entry.uid.as_raw(),
        gid: entry.gid.as_raw(),
        home,
    })
}

/// Whether this process will switch users before touching files.
pub fn must_drop(target: &TargetUser) -> bool {
    unistd::geteuid().is_root() && target.uid != 0
}

/// Acts as the target user (effective and file-system ids, supplementary groups) while keeping
/// root as the real and saved id, so [`as_root`] can come back for the system manager's steps.
/// Only for a gateway of the system manager; every other sync drops for good ([`drop_to`]).
pub fn act_as(target: &TargetUser) -> Result<()> {
    if !must_drop(target) {
        return Ok(());
    }
    let fail = |what: &str, e: nix::Error| {
        Error::failed(format!("cannot act as {} ({what}): {e}", target.name))
    };
    let name = CString::new(target.name.as_bytes())
        .map_err(|_| Error::config(format!("user name {} has a NUL byte", target.name)))?;
    let root = (Gid::from_raw(0), Uid::from_raw(0));
    unistd::initgroups(&name, Gid::from_raw(target.gid)).map_err(|e| fail("initgroups", e))?;
    unistd::setresgid(root.0, Gid::from_raw(target.gid), root.0)
        .map_err(|e| fail("setresgid", e))?;
    unistd::setresuid(root.1, Uid::from_raw(target.uid), root.1)
        .map_err(|e| fail("setresuid", e))?;
    forbid_core_dumps();
    Ok(())
}

/// Whether this process acts as a user with root kept back ([`act_as`]).
pub fn acting() -> bool {
    unistd::getuid().is_root() && !unistd::geteuid().is_root()
}

/// Runs `step` as root and returns to the acting user afterwards; a plain call when the process
/// is root or dropped for good (then `step` runs with the process's own ids, and a root-only
/// step fails with its own permission error).
pub fn as_root<T>(step: impl FnOnce() -> Result<T>) -> Result<T> {
    if !acting() {
        return step();
    }
    let (uid, gid) = (unistd::geteuid(), unistd::getegid());
    let back = |e: nix::Error| Error::failed(format!("cannot switch identity: {e}"));
    unistd::seteuid(Uid::from_raw(0)).map_err(back)?;
    unistd::setegid(Gid::from_raw(0)).map_err(back)?;
    forbid_core_dumps();
    let result = step();
    if unistd::setegid(gid).is_err() || unistd::seteuid(uid).is_err() {
        // Going on as root would create root's files in the user's home: stop here.
        eprintln!("openclaw-token-sync: error: cannot return to the acting user; aborting");
        std::process::abort();
    }
    forbid_core_dumps();
    result
}

/// Who a child process runs as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildIdentity {
    /// The acting user, real, effective and saved ids alike.
    User,
    /// Root (the system manager's `systemctl` and `systemd-run`).
    Root,
}

/// Gives `command` one consistent identity when this process acts as a user with root kept back
/// (mixed ids would put the child in secure-execution mode, where systemctl ignores
/// `XDG_RUNTIME_DIR`); does nothing otherwise.
pub fn child_identity(command: &mut std::process::Command, who: ChildIdentity) {
    use std::os::unix::process::CommandExt;
    if !acting() {
        return;
    }
    let (uid, gid) = (unistd::geteuid(), unistd::getegid());
    // SAFETY: the closure runs in the forked child before exec and only makes raw id syscalls
    // (async-signal-safe); it allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(move || {
            let root_uid = Uid::from_raw(0);
            let root_gid = Gid::from_raw(0);
            unistd::seteuid(root_uid)?;
            match who {
                ChildIdentity::Root => {
                    unistd::setgroups(&[])?;
                    unistd::setresgid(root_gid, root_gid, root_gid)?;
                    unistd::setresuid(root_uid, root_uid, root_uid)?;
                }
                ChildIdentity::User => {
                    unistd::setresgid(gid, gid, gid)?;
                    unistd::setresuid(uid, uid, uid)?;
                }
            }
            // The id change made the child dumpable again until its exec, with a copy of our
            // memory: not for the user's eyes.
            nix::sys::prctl::set_dumpable(false)?;
            Ok(())
        });
    }
}

/// Becomes the target user for good (real, effective and saved ids), then checks that root cannot
/// be regained.
pub fn drop_to(target: &TargetUser) -> Result<()> {
    if !must_drop(target) {
        return Ok(());
    }
    let fail = |what: &str, e: nix::Error| {
        Error::failed(format!(
            "cannot drop privileges to {} ({what}): {e}",
            target.name
        ))
    };
    let name = CString::new(target.name.as_bytes())
        .map_err(|_| Error::config(format!("user name {} has a NUL byte", target.name)))?;
    let gid = Gid::from_raw(target.gid);
    let uid = Uid::from_raw(target.uid);
    unistd::initgroups(&name, gid).map_err(|e| fail("initgroups", e))?;
    unistd::setresgid(gid, gid, gid).map_err(|e| fail("setresgid", e))?;
    unistd::setresuid(uid, uid, uid).map_err(|e| fail("setresuid", e))?;
    if unistd::setuid(Uid::from_raw(0)).is_ok()
        || unistd::geteuid() != uid
        || unistd::getegid() != gid
    {
        return Err(Error::failed(format!(
            "privilege drop to {} did not hold; refusing to go on",
            target.name
        )));
    }
    forbid_core_dumps();
    Ok(())
}

/// Makes this process undumpable: no core file (whatever `fs.suid_dumpable` says), no ptrace
/// by the user it acts as, `/proc/<pid>/` owned by root. The process holds tokens, and after a
/// drop to a gateway's user it runs under that (hostile) user's uid. The kernel resets the flag
/// to `fs.suid_dumpable` at every change of ids (to 2, "suidsafe", on some hosts), so it is set
/// again after each one; called first thing in `main` too.
pub fn forbid_core_dumps() {
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        tracing::warn!(error = %e, "cannot make the process undumpable");
    }
}

/// No core files from this process or the programs it starts (`RLIMIT_CORE` 0, inherited), on
/// top of [`forbid_core_dumps`]: called first thing in `main`.
pub fn no_core_files() {
    use nix::sys::resource::{setrlimit, Resource};
    let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
}
