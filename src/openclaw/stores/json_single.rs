//! The oldest store generation (OpenClaw ≤ 2026.4.21): one `auth-profiles.json` per agent holding
//! `{version, profiles, order, lastGood, usageStats}`.

use super::document::{clean_documents, Cleaning, ProfileSelector};
use super::json_lock::{StoreLock, WAIT_FOR_LOCK};
use super::{CredentialStore, StoreDocuments};
use crate::error::{Error, Result};
use crate::host::fsutil;
use std::path::{Path, PathBuf};

/// Mode OpenClaw gives its stores, kept on every write.
pub const STORE_MODE: u32 = 0o600;

pub struct SingleJsonStore {
    path: PathBuf,
}

impl SingleJsonStore {
    pub fn new(path: PathBuf) -> SingleJsonStore {
        SingleJsonStore { path }
    }

    fn compute(&self, selector: &ProfileSelector) -> Result<(Cleaning, Option<Vec<u8>>)> {
        let file = read_store(&self.path)?;
        let cleaned = clean_documents(&file, None, selector)
            .map_err(|problem| Error::failed(format!("{}: {problem}", self.path.display())))?;
        Ok((cleaned.cleaning, cleaned.profiles))
    }
}

/// Reads a JSON store, refusing symlinks, and calls a missing file an error (it was detected).
pub fn read_store(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    match fsutil::read_managed(path)? {
        Some(file) => Ok(file.content),
        None => Err(Error::failed(format!(
            "{}: disappeared while being read",
            path.display()
        ))),
    }
}

impl CredentialStore for SingleJsonStore {
    fn layout(&self) -> &'static str {
        "json-single"
    }

    fn location(&self) -> &Path {
        &self.path
    }

    fn documents(&self) -> Result<Option<StoreDocuments>> {
        Ok(Some(StoreDocuments {
            profiles: read_store(&self.path)?,
            state: None,
        }))
    }

    fn clean(&self, selector: &ProfileSelector) -> Result<Cleaning> {
        let _lock = StoreLock::acquire(&self.path, WAIT_FOR_LOCK)?;
        let (cleaning, new_profiles) = self.compute(selector)?;
        if let Some(bytes) = new_profiles {
            fsutil::write_atomic(&self.path, &bytes, STORE_MODE)?;
        }
        Ok(cleaning)
    }
}
