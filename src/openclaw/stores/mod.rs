//! OpenClaw's per-agent credential stores: finding the state directory and every agent, detecting
//! which store generation each agent has, and removing stale Anthropic profiles so that OpenClaw
//! falls through to the environment variable (DESIGN.md section 4).
//!
//! Each generation is its own module behind [`CredentialStore`]:
//! - [`json_single`]: `auth-profiles.json` with profiles, order, lastGood and usageStats (≤ 2026.4.21);
//! - [`json_split`]: `auth-profiles.json` + `auth-state.json` (2026.4.22 – 2026.5.x);
//! - [`sqlite_agent`]: `openclaw-agent.sqlite` per agent (≥ 2026.6.5);
//! - [`sqlite_shared`]: the main agent's rows in `<state>/state/openclaw.sqlite` (≥ 2026.8).
//!
//! A JSON store left beside a SQLite one makes OpenClaw refuse to start until `openclaw doctor
//! --fix`; it is cleaned in place (never created) and reported.
//!
//! The edits themselves are pure functions in [`document`]. A store that cannot be read or
//! understood is reported and left untouched; the run goes on and exits non-zero.

pub mod document;
pub mod json_lock;
pub mod json_single;
pub mod json_split;
pub mod sqlite_agent;
pub mod sqlite_common;
pub mod sqlite_shared;

use crate::error::Error;
use document::{Cleaning, ProfileSelector};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub const AUTH_PROFILES_FILE: &str = "auth-profiles.json";
pub const AUTH_STATE_FILE: &str = "auth-state.json";

/// The raw documents of one store: profiles, and (where the layout keeps them apart) state.
pub struct StoreDocuments {
    pub profiles: zeroize::Zeroizing<Vec<u8>>,
    pub state: Option<zeroize::Zeroizing<Vec<u8>>>,
}

/// One store generation found in one agent directory.
pub trait CredentialStore {
    /// Short name of the layout, for reports ("json-single", "json-split", ...).
    fn layout(&self) -> &'static str;
    /// The file that identifies the store.
    fn location(&self) -> &Path;
    /// Reads the store's documents; `None` when it holds no credentials at all. Reads only.
    fn documents(&self) -> Result<Option<StoreDocuments>, Error>;
    /// Removes the selected entries (re-reading under the store's own lock or transaction, so a
    /// change made since `inspect` is not lost) and says what was removed.
    fn clean(&self, selector: &ProfileSelector) -> Result<Cleaning, Error>;

    /// Whether its profiles hold our secret reference (`--delivery secret-ref`); reads only.
    fn holds_reference(&self) -> bool {
        let Ok(Some(documents)) = self.documents() else {
            return false;
        };
        document::Document::parse(&documents.profiles)
            .and_then(|document| document.reference_profile_ids())
            .is_ok_and(|ids| ids.contains(crate::openclaw::secret_ref::PROFILE))
    }

    /// What cleaning would remove; reads only.
    fn inspect(&self, selector: &ProfileSelector) -> Result<Cleaning, Error> {
        let Some(documents) = self.documents()? else {
            return Ok(Cleaning::default());
        };
        document::clean_documents(
            &documents.profiles,
            documents.state.as_deref().map(|s| s.as_slice()),
            selector,
        )
        .map(|cleaned| cleaned.cleaning)
        .map_err(|problem| Error::failed(format!("{}: {problem}", self.location().display())))
    }
}

/// An agent and where its credentials live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    pub id: String,
    pub dir: PathBuf,
}

impl Agent {
    /// The id as the gateway knows it: an `agentDir` that `openclaw.json` names beside the
    /// agent's directory on disk is listed as `<id> (agentDir)`, a second directory of `<id>`.
    pub fn gateway_id(&self) -> &str {
        self.id.trim_end_matches(" (agentDir)")
    }
}

/// Every agent: `main` always, each `<state>/agents/<id>/agent/`, and each `agentDir` named in
/// `openclaw.json`. Problems reading `openclaw.json` come back as warnings; the agents found on
/// disk are returned regardless.
pub fn discover_agents(state_dir: &Path, home: &Path) -> (Vec<Agent>, Vec<String>) {
    let mut agents = vec![Agent {
        id: "main".into(),
        dir: state_dir.join("agents/main/agent"),
    }];
    let mut warnings = Vec::new();
    let agents_root = state_dir.join("agents");
    match std::fs::read_dir(&agents_root) {
        Ok(entries) => {
            let mut found: Vec<Agent> = entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| Agent {
                    id: e.file_name().to_string_lossy().into_owned(),
                    dir: e.path().join("agent"),
                })
                .filter(|a| a.id != "main" && a.dir.is_dir())
                .collect();
            found.sort_by(|a, b| a.id.cmp(&b.id));
            agents.extend(found);
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => warnings.push(format!(
            "{}: cannot list agents: {err}",
            agents_root.display()
        )),
    }
    let config_path = state_dir.join("openclaw.json");
    match config_agent_dirs(&config_path, state_dir, home) {
        Ok(configured) => {
            for agent in configured {
                if let Some(existing) = agents.iter_mut().find(|a| a.id == agent.id) {
                    if existing.dir != agent.dir && !existing.dir.is_dir() {
                        existing.dir = agent.dir;
                    } else if existing.dir != agent.dir {
                        agents.push(Agent {
                            id: format!("{} (agentDir)", agent.id),
                            dir: agent.dir,
                        });
                    }
                } else {
                    agents.push(agent);
                }
            }
        }
        Err(Some(problem)) => warnings.push(format!(
            "{}: {problem}; agents found on disk are still handled",
            config_path.display()
        )),
        Err(None) => {}
    }
    let mut seen = BTreeSet::new();
    agents.retain(|a| seen.insert(a.dir.clone()));
    (agents, warnings)
}

/// Agents with an explicit `agentDir` in `openclaw.json` (JSON5): `agents.list[]` (2026.5) and
/// `agents.entries{}` (2026.9). `Err(None)` when there is no such file.
fn config_agent_dirs(
    path: &Path,
    state_dir: &Path,
    home: &Path,
) -> Result<Vec<Agent>, Option<String>> {
    let text = match crate::host::fsutil::read_managed(path) {
        Ok(Some(file)) => file.content,
        Ok(None) => return Err(None),
        Err(err) => return Err(Some(err.to_string())),
    };
    let text = std::str::from_utf8(&text).map_err(|_| Some("not UTF-8 text".to_string()))?;
    let config: serde_json::Value =
        json5::from_str(text).map_err(|e| Some(format!("cannot parse as JSON5: {e}")))?;
    let resolve = |dir: &str| -> PathBuf {
        if let Some(rest) = dir.strip_prefix("~/") {
            home.join(rest)
        } else if dir == "~" {
            home.to_path_buf()
        } else if Path::new(dir).is_absolute() {
            PathBuf::from(dir)
        } else {
            state_dir.join(dir)
        }
    };
    let mut agents = Vec::new();
    let section = config.get("agents");
    if let Some(list) = section
        .and_then(|a| a.get("list"))
        .and_then(|l| l.as_array())
    {
        for entry in list {
            if let (Some(id), Some(dir)) = (
                entry.get("id").and_then(|v| v.as_str()),
                entry.get("agentDir").and_then(|v| v.as_str()),
            ) {
                agents.push(Agent {
                    id: id.into(),
                    dir: resolve(dir),
                });
            }
        }
    }
    if let Some(entries) = section
        .and_then(|a| a.get("entries"))
        .and_then(|e| e.as_object())
    {
        for (id, entry) in entries {
            if let Some(dir) = entry.get("agentDir").and_then(|v| v.as_str()) {
                agents.push(Agent {
                    id: id.clone(),
                    dir: resolve(dir),
                });
            }
        }
    }
    Ok(agents)
}

/// A store found on disk, with anything the operator should hear about it.
pub struct DetectedStore {
    pub store: Box<dyn CredentialStore>,
    pub note: Option<String>,
}

/// The stores present for one agent, newest generation first. The shared database counts for
/// `main` only.
pub fn stores_in(agent: &Agent, state_dir: &Path) -> Vec<DetectedStore> {
    let mut found = Vec::new();
    let database = agent.dir.join(sqlite_agent::FILE_NAME);
    let has_database = is_present(&database);
    if has_database {
        found.push(DetectedStore {
            store: Box::new(sqlite_agent::store(database)),
            note: None,
        });
    }
    let shared = sqlite_shared::path_in(state_dir);
    let has_shared = agent.id == "main" && is_present(&shared);
    if has_shared {
        found.push(DetectedStore {
            store: Box::new(sqlite_shared::store(shared)),
            note: None,
        });
    }
    let profiles = agent.dir.join(AUTH_PROFILES_FILE);
    let state = agent.dir.join(AUTH_STATE_FILE);
    let json: Option<Box<dyn CredentialStore>> = if is_present(&state) {
        Some(Box::new(json_split::SplitJsonStore::new(
            profiles.clone(),
            state,
        )))
    } else if is_present(&profiles) {
        Some(Box::new(json_single::SingleJsonStore::new(
            profiles.clone(),
        )))
    } else {
        None
    };
    if let Some(store) = json {
        let note = (has_database || has_shared).then(|| {
            format!(
                "{}: a JSON store beside OpenClaw's SQLite store; OpenClaw refuses to run until `openclaw doctor --fix` imports or removes it (its Anthropic entries were cleaned in place)",
                profiles.display()
            )
        });
        found.push(DetectedStore { store, note });
    }
    found
}

/// Whether something (a file, a symlink, anything) stands at `path`; symlinks count so that they
/// are reported rather than silently skipped.
fn is_present(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}
