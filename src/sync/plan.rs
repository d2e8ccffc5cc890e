//! The desired state next to what is on disk: every managed file's content for the token (one
//! [`render`] per role, used again right before a write so an edit made meanwhile is kept), the
//! stores and what each holds, and the facts the decision needs from them (what changes, what
//! cannot be written, which store entries are there).

use super::decide::FileFacts;
use crate::error::Result;
use crate::host::fsutil;
use crate::host::managed_files::{self as files, FileAction, FilePlan, FileRole, ManagedPaths};
use crate::host::state::StoreEntry;
use crate::openclaw::stores::{
    self, document::Cleaning, document::ProfileSelector, Agent, CredentialStore,
};
use crate::secret::Token;
use std::path::Path;
use zeroize::Zeroizing;

/// The desired state next to what is on disk.
pub struct Plan {
    pub files: Vec<FilePlan>,
    pub stores: Vec<PlannedStore>,
    /// Files of ours that only hold a token where nothing reads it: removed.
    pub stray: Vec<std::path::PathBuf>,
}

/// One credential store and what it holds (or why it is skipped).
pub struct PlannedStore {
    pub agent: Agent,
    pub store: Box<dyn CredentialStore>,
    pub inspected: std::result::Result<Cleaning, String>,
}

impl PlannedStore {
    /// The Anthropic entries to remove, when the store can be cleaned.
    pub fn entries(&self) -> Vec<StoreEntry> {
        let Ok(cleaning) = &self.inspected else {
            return Vec::new();
        };
        let path = self.store.location().to_path_buf();
        let mut entries: Vec<StoreEntry> = cleaning
            .removed_profiles
            .iter()
            .map(|profile| StoreEntry {
                path: path.clone(),
                profile: profile.clone(),
            })
            .collect();
        if entries.is_empty() && cleaning.removed_references > 0 {
            entries.push(StoreEntry {
                path,
                profile: "#references".to_owned(),
            });
        }
        entries
    }
}

impl Plan {
    pub fn file_facts(&self) -> FileFacts {
        FileFacts {
            gateway_content: self
                .files
                .iter()
                .any(|f| f.content_changes() && f.role.affects_gateway()),
            dropin: self
                .files
                .iter()
                .any(|f| f.role == FileRole::DropIn && f.content_changes()),
            any_write: !self.stray.is_empty()
                || self.files.iter().any(|f| f.action != FileAction::Unchanged),
            unwritable: self
                .files
                .iter()
                .filter(|f| f.action != FileAction::Unchanged)
                .find_map(|f| {
                    if f.privileged {
                        crate::host::privileges::as_root(|| {
                            Ok(fsutil::unwritable_reason(&f.path, false))
                        })
                        .unwrap_or_else(|e| Some(e.to_string()))
                    } else {
                        fsutil::unwritable_reason(&f.path, false)
                    }
                }),
        }
    }

    /// Every Anthropic entry the stores hold that can be removed, sorted.
    pub fn store_entries(&self) -> Vec<StoreEntry> {
        let mut entries: Vec<StoreEntry> =
            self.stores.iter().flat_map(PlannedStore::entries).collect();
        entries.sort();
        entries
    }
}

/// The content a file of `role` must have for `token`, given what it holds now (`None`: it does
/// not exist), and the number of literal tokens removed (shell profile). `None` when the file is
/// not ours to write (an OpenClaw env file that sets no managed variable, or is missing).
pub fn render(
    role: FileRole,
    existing: Option<&[u8]>,
    token: &Token,
) -> Option<(Zeroizing<Vec<u8>>, usize)> {
    match role {
        FileRole::DropIn => Some((files::dropin_content(token), 0)),
        FileRole::LegacyEnv | FileRole::SystemEnv => Some((files::legacy_env_content(token), 0)),
        FileRole::DotEnv => Some((files::dot_env_content(existing, token), 0)),
        FileRole::GatewayEnv | FileRole::GlobalGatewayEnv => {
            files::edit_env_file(existing?, token).map(|edited| (edited, 0))
        }
        FileRole::ShellProfile => Some(files::edit_shell_profile(existing, token.kind())),
        FileRole::SecretRef => None,
    }
}

/// Whether a role's file is edited in place (its other bytes belong to someone else) rather
/// than rendered from the token alone.
pub fn edited_in_place(role: FileRole) -> bool {
    !matches!(
        role,
        FileRole::DropIn | FileRole::LegacyEnv | FileRole::SystemEnv
    )
}

/// Reads everything the plan depends on and computes the desired state.
pub fn build(
    paths: &ManagedPaths,
    openclaw_state: &Path,
    token: &Token,
    shell_profile: bool,
    selector: &ProfileSelector,
    warnings: &mut Vec<String>,
) -> Result<Plan> {
    // The drop-in's directory is ours: a symlink there is refused before anything is read.
    fsutil::refuse_symlink(&paths.dropin_dir)?;
    let wanted = wanted_files(paths, openclaw_state, shell_profile, warnings);
    let files = plan_files(paths, wanted, token, warnings)?;
    let stores = plan_stores(paths, openclaw_state, selector, warnings);
    let stray = stray_dropins(paths, warnings);
    Ok(Plan {
        files,
        stores,
        stray,
    })
}

/// The managed files this gateway gets, in the order they are written, by role.
fn wanted_files(
    paths: &ManagedPaths,
    openclaw_state: &Path,
    shell_profile: bool,
    warnings: &mut Vec<String>,
) -> Vec<(FileRole, std::path::PathBuf)> {
    // A system unit's environment file comes before its drop-in: the drop-in never names a
    // file that is not there yet.
    let mut wanted: Vec<(FileRole, std::path::PathBuf)> = paths
        .system_env
        .iter()
        .map(|path| (FileRole::SystemEnv, path.clone()))
        .collect();
    wanted.push((FileRole::DropIn, paths.dropin.clone()));
    wanted.push((FileRole::LegacyEnv, paths.legacy_env.clone()));
    // `<state>/.env` always carries the token (releases from 2026.8.1 drop a managed key that no
    // global dotenv file holds). It lives in OpenClaw's state dir, which this tool never creates.
    if openclaw_state.is_dir() {
        wanted.push((FileRole::DotEnv, paths.dot_env.clone()));
    } else {
        warnings.push(format!(
            "no OpenClaw state directory at {}: {} not written (OpenClaw 2026.8.1 and later need it; run `openclaw onboard` or pass --state-dir)",
            openclaw_state.display(),
            paths.dot_env.display()
        ));
    }
    wanted.push((FileRole::GatewayEnv, paths.gateway_env.clone()));
    wanted.push((FileRole::GlobalGatewayEnv, paths.global_gateway_env.clone()));
    if shell_profile {
        wanted.push((FileRole::ShellProfile, paths.shell_profile.clone()));
    }
    wanted
}

/// Each wanted file's plan: what it holds next to what it must hold (a file that is not ours to
/// write is left out).
fn plan_files(
    paths: &ManagedPaths,
    wanted: Vec<(FileRole, std::path::PathBuf)>,
    token: &Token,
    warnings: &mut Vec<String>,
) -> Result<Vec<FilePlan>> {
    let uid = nix::unistd::geteuid().as_raw();
    let mut file_plans = Vec::new();
    for (role, path) in wanted {
        let privileged =
            matches!(role, FileRole::DropIn | FileRole::SystemEnv) && paths.system_dropin;
        let read = if privileged {
            crate::host::privileges::as_root(|| fsutil::read_managed(&path))
        } else {
            fsutil::read_managed(&path)
        };
        let existing = match read {
            Ok(existing) => existing,
            Err(crate::error::Error::Io { source, .. })
                if !edited_in_place(role)
                    && source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                // Ours entirely (e.g. `~/.openclaw-env` left root-owned 0600 by the legacy root
                // script): nothing in it is needed, so it is replaced.
                if let Some((desired, _)) = render(role, None, token) {
                    warnings.push(format!(
                        "{}: this user cannot read it (left root-owned by the legacy root script?); replacing it",
                        path.display()
                    ));
                    file_plans.push(FilePlan::replace_unreadable(role, path, desired, 0o600));
                }
                continue;
            }
            Err(err) => return Err(err),
        };
        let rendered = match (&paths.system_env, role) {
            (Some(env_file), FileRole::DropIn) => Some((files::system_dropin_content(env_file), 0)),
            _ => render(role, existing.as_ref().map(|f| f.content.as_slice()), token),
        };
        let Some((desired, removed)) = rendered else {
            continue;
        };
        // The shell profile holds no token; it keeps the mode the user gave it.
        let mode = match role {
            FileRole::ShellProfile => existing.as_ref().map_or(0o600, |f| f.mode),
            _ => 0o600,
        };
        let owner = if privileged { 0 } else { uid };
        let mut plan = FilePlan::compare(role, path, desired, mode, existing.as_ref(), owner);
        plan.removed_literal_tokens = removed;
        plan.privileged = privileged;
        file_plans.push(plan);
    }
    Ok(file_plans)
}

/// Every agent's credential stores and what each holds (or why it is skipped).
fn plan_stores(
    paths: &ManagedPaths,
    openclaw_state: &Path,
    selector: &ProfileSelector,
    warnings: &mut Vec<String>,
) -> Vec<PlannedStore> {
    let (agents, agent_warnings) = stores::discover_agents(openclaw_state, &paths.home);
    warnings.extend(agent_warnings);
    let mut planned = Vec::new();
    for agent in agents {
        for detected in stores::stores_in(&agent, openclaw_state) {
            warnings.extend(detected.note);
            let inspected = detected
                .store
                .inspect(selector)
                .map_err(|e| e.to_string())
                .and_then(|cleaning| {
                    // A store that needs cleaning but cannot be written is skipped now, before
                    // anything is stopped for it.
                    match fsutil::unwritable_reason(detected.store.location(), true) {
                        Some(why) if !cleaning.is_empty() => Err(why),
                        _ => Ok(cleaning),
                    }
                });
            planned.push(PlannedStore {
                agent: agent.clone(),
                store: detected.store,
                inspected,
            });
        }
    }
    planned
}

/// Drop-ins of ours systemd never reads (removed), when they can be removed.
fn stray_dropins(paths: &ManagedPaths, warnings: &mut Vec<String>) -> Vec<std::path::PathBuf> {
    // A drop-in an earlier `--unit NAME` run wrote to `NAME.d/`: a copy of a token no one reads.
    let mut stray = Vec::new();
    let ours = |path: &&std::path::PathBuf| matches!(fsutil::read_managed(path), Ok(Some(found)) if files::written_by_us(&found.content));
    if let Some(path) = paths.stray_dropin.as_ref().filter(ours) {
        match fsutil::unwritable_reason(path, false) {
            None => stray.push(path.clone()),
            Some(why) => warnings.push(format!(
                "a drop-in systemd never reads still holds a token and cannot be removed: {why}"
            )),
        }
    }
    stray
}
