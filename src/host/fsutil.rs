//! Safe file access for every path this program manages: reads that refuse symlinks and
//! hard-linked files, atomic writes (temp file in the same directory created with `O_EXCL` and the
//! final mode, fsync, rename, fsync of the directory), and private directories (0700, never a
//! symlink). Umask never decides a mode: modes are set explicitly with `fchmod`.
//!
//! Temp files are named `.<name>.ocsync-tmp.<pid>.<n>`; a write removes leftovers of its own file
//! from earlier runs that were killed (the caller holds the run lock, so none is in use).

use crate::error::{Error, Result};
use nix::libc;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use zeroize::Zeroizing;

/// Largest managed file we read; anything bigger is not ours and is refused.
pub const MAX_MANAGED_FILE: u64 = 16 * 1024 * 1024;

/// A managed file as found on disk. Its content may hold a token, so it is zeroized on drop.
pub struct ExistingFile {
    pub content: Zeroizing<Vec<u8>>,
    pub mode: u32,
    pub uid: u32,
}

impl std::fmt::Debug for ExistingFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExistingFile")
            .field("len", &self.content.len())
            .field("mode", &format_args!("{:o}", self.mode))
            .field("uid", &self.uid)
            .finish()
    }
}

const SYMLINK_REFUSED: &str = "it is a symlink, which this tool refuses to follow";

/// The error for a symlink found at a managed path.
pub fn symlink_refused(path: &Path) -> Error {
    Error::failed(format!("{}: {SYMLINK_REFUSED}", path.display()))
}

/// Fails when `path` is a symlink; a missing path or any other kind of file passes.
pub fn refuse_symlink(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(symlink_refused(path)),
        _ => Ok(()),
    }
}

fn io_error(path: &Path, what: &'static str, err: std::io::Error) -> Error {
    let detail = match err.raw_os_error() {
        Some(libc::ELOOP) => SYMLINK_REFUSED.to_string(),
        Some(libc::EACCES) | Some(libc::EPERM) => "permission denied".to_string(),
        Some(libc::EISDIR) => "it is a directory".to_string(),
        _ => err.to_string(),
    };
    Error::Io {
        path: path.to_path_buf(),
        action: what,
        detail,
        source: err,
    }
}

/// Reads a managed file without following a symlink. `Ok(None)` when it does not exist.
pub fn read_managed(path: &Path) -> Result<Option<ExistingFile>> {
    let Some((mut file, meta)) = open_regular(path)? else {
        return Ok(None);
    };
    if meta.nlink() > 1 {
        return Err(Error::failed(format!(
            "{}: refusing a file with {} hard links (it may be linked to a file outside this user's control)",
            path.display(),
            meta.nlink()
        )));
    }
    let mut content = Zeroizing::new(Vec::with_capacity(meta.len() as usize));
    file.read_to_end(&mut content)
        .map_err(|e| io_error(path, "read", e))?;
    Ok(Some(ExistingFile {
        content,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
    }))
}

/// Reads a file someone else controls (a gateway user's config, unit file or lock) that we only
/// read: never through a symlink, never blocking (a FIFO or device is refused without being
/// read), at most [`MAX_MANAGED_FILE`] bytes. `Ok(None)` when it does not exist.
pub fn read_regular(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let Some((file, meta)) = open_regular(path)? else {
        return Ok(None);
    };
    let mut content = Zeroizing::new(Vec::with_capacity(meta.len() as usize));
    file.take(MAX_MANAGED_FILE)
        .read_to_end(&mut content)
        .map_err(|e| io_error(path, "read", e))?;
    Ok(Some(content))
}

/// Opens `path` for reading without following a symlink and without blocking (`O_NONBLOCK`: a
/// FIFO opens at once and is then refused), and checks that it is a regular file of at most
/// [`MAX_MANAGED_FILE`] bytes.
fn open_regular(path: &Path) -> Result<Option<(File, fs::Metadata)>> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(file) => file,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(io_error(path, "read", err)),
    };
    let meta = file.metadata().map_err(|e| io_error(path, "stat", e))?;
    if !meta.file_type().is_file() {
        return Err(Error::failed(format!(
            "{}: cannot read: it is not a regular file",
            path.display()
        )));
    }
    if meta.len() > MAX_MANAGED_FILE {
        return Err(Error::failed(format!(
            "{}: refusing a file of {} bytes (larger than {} bytes)",
            path.display(),
            meta.len(),
            MAX_MANAGED_FILE
        )));
    }
    Ok(Some((file, meta)))
}

/// Whether only root can change what `path` names: the file (if it exists) and every directory
/// above it are owned by root, not symlinks, and not writable by group or others. A directory
/// above it may be a sticky one (`/tmp`): there nobody else can remove or rename root's entry
/// below, which exists and is root's too. Such a file may be read as root; anything else is a
/// user's and is read as the user.
///
/// Judged as root (a process acting as a user keeps root back for this; one that dropped for
/// good judges as itself, and a file it cannot see is not root-controlled), from `/` down,
/// stopping at the first directory that is not root's: nothing inside a user's directory is
/// looked at as root.
pub fn root_controlled(path: &Path) -> bool {
    if !path.is_absolute() {
        return false;
    }
    crate::host::privileges::as_root(|| Ok(root_controlled_here(path))).unwrap_or(false)
}

fn root_controlled_here(path: &Path) -> bool {
    let roots = |meta: &fs::Metadata| !meta.file_type().is_symlink() && meta.uid() == 0;
    let mut top_down: Vec<&Path> = path.ancestors().collect();
    top_down.reverse();
    for pair in top_down.windows(2) {
        let (dir, below) = (pair[0], pair[1]);
        let Ok(meta) = fs::symlink_metadata(dir) else {
            return false;
        };
        if !roots(&meta) {
            return false;
        }
        // A sticky directory (root's) only above an entry of root's that exists: anyone may
        // create a missing one.
        let writable = meta.mode() & 0o022 != 0;
        if writable
            && !(meta.mode() & 0o1000 != 0 && fs::symlink_metadata(below).is_ok_and(|b| roots(&b)))
        {
            return false;
        }
    }
    match fs::symlink_metadata(path) {
        Ok(meta) => roots(&meta) && meta.mode() & 0o022 == 0,
        // Missing below root's directories: only root could create it.
        Err(err) => err.kind() == ErrorKind::NotFound,
    }
}

/// Makes sure `dir` is a real directory (not a symlink), creating it and any missing parents with
/// mode 0700. When `private` is set, an existing `dir` is also tightened to 0700.
pub fn ensure_dir(dir: &Path, private: bool) -> Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() => Err(symlink_refused(dir)),
        Ok(meta) if !meta.is_dir() => Err(Error::failed(format!(
            "{}: expected a directory, found a file",
            dir.display()
        ))),
        Ok(meta) => {
            if private && meta.mode() & 0o777 != 0o700 {
                fs::set_permissions(dir, Permissions::from_mode(0o700))
                    .map_err(|e| io_error(dir, "set mode 0700 on", e))?;
            }
            Ok(())
        }
        Err(err) if err.kind() == ErrorKind::NotFound => {
            if let Some(parent) = dir.parent() {
                ensure_dir(parent, false)?;
            }
            match fs::create_dir(dir) {
                Ok(()) => {}
                Err(err) if err.kind() == ErrorKind::AlreadyExists => {
                    return ensure_dir(dir, private)
                }
                Err(err) => return Err(io_error(dir, "create directory", err)),
            }
            fs::set_permissions(dir, Permissions::from_mode(0o700))
                .map_err(|e| io_error(dir, "set mode 0700 on", e))?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
            Ok(())
        }
        Err(err) => Err(io_error(dir, "inspect", err)),
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_prefix(path: &Path) -> Result<OsString> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::failed(format!("{}: not a file path", path.display())))?;
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(".ocsync-tmp.");
    Ok(prefix)
}

/// The directory a managed path lives in.
pub fn parent_of(path: &Path) -> Result<&Path> {
    path.parent()
        .ok_or_else(|| Error::failed(format!("{}: has no parent directory", path.display())))
}

/// Why this process could not write `path` (checked before the gateway is stopped), or `None`.
/// An atomic write needs write access to the directory (the nearest existing one, which the write
/// would create the rest below); an `in_place` write (SQLite stores) needs the file too. Checked
/// with the effective ids, so it answers for the user the privileges were dropped to, and a
/// read-only mount (the hardened service's sandbox) shows as such.
pub fn unwritable_reason(path: &Path, in_place: bool) -> Option<String> {
    use nix::unistd::{faccessat, AccessFlags};
    let check = |target: &Path, mode: AccessFlags| {
        faccessat(
            nix::fcntl::AT_FDCWD,
            target,
            mode,
            nix::fcntl::AtFlags::AT_EACCESS,
        )
    };
    let explain = |target: &Path, errno: nix::errno::Errno| {
        let hint = match errno {
            nix::errno::Errno::EROFS => {
                " (read-only here; under the hardened service, add it to ReadWritePaths=)"
            }
            nix::errno::Errno::EACCES | nix::errno::Errno::EPERM => {
                " (owned by another user; fix the owner, e.g. `chown -R <user>:` it)"
            }
            _ => "",
        };
        format!(
            "{}: cannot write {}: {}{hint}",
            path.display(),
            if target == path {
                "it"
            } else {
                "in its directory"
            },
            errno.desc()
        )
    };
    let mut dir = path.parent()?;
    while fs::symlink_metadata(dir).is_err() {
        dir = dir.parent()?;
    }
    if let Err(errno) = check(dir, AccessFlags::W_OK | AccessFlags::X_OK) {
        return Some(explain(dir, errno));
    }
    if in_place && fs::symlink_metadata(path).is_ok() {
        if let Err(errno) = check(path, AccessFlags::W_OK) {
            return Some(explain(path, errno));
        }
    }
    None
}

/// Removes temp files of `path` that an earlier, killed run left behind.
pub fn remove_stale_temps(path: &Path) -> Result<()> {
    let dir = parent_of(path)?;
    let prefix = temp_prefix(path)?.into_vec();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(io_error(dir, "list", err)),
    };
    for entry in entries.flatten() {
        if entry.file_name().into_vec().starts_with(&prefix) {
            let stale = entry.path();
            fs::remove_file(&stale).map_err(|e| io_error(&stale, "remove stale temp file", e))?;
        }
    }
    Ok(())
}

/// Replaces `path` with `content` atomically, with exactly `mode`. The parent directory must
/// exist. A symlink at `path` is refused (and would only be replaced, never followed, by rename).
pub fn write_atomic(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    let dir = parent_of(path)?;
    refuse_symlink(path)?;
    if let Ok(meta) = fs::symlink_metadata(path) {
        if meta.is_dir() {
            return Err(Error::failed(format!(
                "{}: expected a file, found a directory",
                path.display()
            )));
        }
    }
    remove_stale_temps(path)?;
    let mut temp_name = temp_prefix(path)?;
    temp_name.push(format!(
        "{}.{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let temp_path = dir.join(temp_name);
    let result = write_temp_then_rename(&temp_path, path, content, mode);
    if result.is_err() {
        let _ = fs::remove_file(&temp_path);
    }
    result
}

fn write_temp_then_rename(temp_path: &Path, path: &Path, content: &[u8], mode: u32) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(temp_path)
        .map_err(|e| io_error(temp_path, "create temp file", e))?;
    file.set_permissions(Permissions::from_mode(mode))
        .map_err(|e| io_error(temp_path, "set mode on", e))?;
    file.write_all(content)
        .map_err(|e| io_error(temp_path, "write", e))?;
    file.sync_all()
        .map_err(|e| io_error(temp_path, "fsync", e))?;
    drop(file);
    fs::rename(temp_path, path).map_err(|e| io_error(path, "rename temp file onto", e))?;
    sync_dir(parent_of(path)?)
}

/// fsyncs a directory so a rename or create in it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, "fsync directory", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_sets_mode_regardless_of_umask_and_cleans_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("env");
        let leftover = dir.path().join(".env.ocsync-tmp.1.0");
        fs::write(&leftover, b"stale").unwrap();
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0));
        write_atomic(&target, b"A=1\n", 0o600).unwrap();
        nix::sys::stat::umask(old);
        let meta = fs::metadata(&target).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(fs::read(&target).unwrap(), b"A=1\n");
        assert!(!leftover.exists());
    }

    #[test]
    fn symlinks_and_hard_links_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let err = read_managed(&link).unwrap_err();
        assert!(err.message().contains("symlink"), "{err}");
        let err = write_atomic(&link, b"x", 0o600).unwrap_err();
        assert!(err.message().contains("symlink"), "{err}");
        let hard = dir.path().join("hard");
        fs::hard_link(&victim, &hard).unwrap();
        let err = read_managed(&hard).unwrap_err();
        assert!(err.message().contains("hard links"), "{err}");
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        let dir_link = dir.path().join("dirlink");
        std::os::unix::fs::symlink(dir.path(), &dir_link).unwrap();
        assert!(ensure_dir(&dir_link, true).is_err());
    }

    #[test]
    fn root_controlled_takes_root_s_entries_below_a_sticky_directory_and_nothing_a_user_can_swap() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: ownership needs root");
            return;
        }
        // A root-owned 0700 directory under /tmp (sticky, world-writable), as the tests' system
        // unit directory is.
        let dir = tempfile::tempdir_in("/tmp").unwrap();
        let file = dir.path().join("anthropic.env");
        fs::write(&file, b"A=1\n").unwrap();
        // Explicit modes: another test sets the process's umask to 0 for a moment.
        fs::set_permissions(&file, Permissions::from_mode(0o600)).unwrap();
        fs::set_permissions(dir.path(), Permissions::from_mode(0o700)).unwrap();
        assert!(root_controlled(&file));
        // Missing below a root directory: only root could create it.
        assert!(root_controlled(&dir.path().join("missing")));
        // Missing right below the sticky directory: anyone could create it.
        assert!(!root_controlled(Path::new(
            "/tmp/ocsync-nobody-has-made-this"
        )));
        // Group-writable file, or a directory of another user's above it.
        fs::set_permissions(&file, Permissions::from_mode(0o620)).unwrap();
        assert!(!root_controlled(&file));
        fs::set_permissions(&file, Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(dir.path(), Some(65534), None).unwrap();
        assert!(!root_controlled(&file));
        std::os::unix::fs::chown(dir.path(), Some(0), None).unwrap();
        // A symlink to the file is not the file.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(!root_controlled(&link));
        assert!(!root_controlled(Path::new("relative/path")));
    }

    #[test]
    fn ensure_dir_creates_private_parents() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        ensure_dir(&deep, true).unwrap();
        for d in ["a", "a/b", "a/b/c"] {
            assert_eq!(
                fs::metadata(dir.path().join(d)).unwrap().mode() & 0o777,
                0o700,
                "{d}"
            );
        }
    }
}
