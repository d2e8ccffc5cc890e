//! The split store generation (OpenClaw 2026.4.22 – 2026.5.x): `auth-profiles.json` holds
//! `{version, profiles}` and `auth-state.json` holds `{version, order, lastGood, usageStats}`.
//! Profiles are written first; a run killed between the two writes leaves references to missing
//! profiles, which the next run removes as dangling references.

use super::document::{clean_documents, CleanedDocuments, Cleaning, ProfileSelector};
use super::json_lock::{StoreLock, WAIT_FOR_LOCK};
use super::json_single::{read_store, STORE_MODE};
use super::{CredentialStore, StoreDocuments};
use crate::error::{Error, Result};
use crate::host::fsutil;
use std::path::{Path, PathBuf};

/// `auth-state.json` without `auth-profiles.json`: nothing to remove but references.
const EMPTY_PROFILES: &[u8] = b"{\"version\":1,\"profiles\":{}}";

pub struct SplitJsonStore {
    profiles: PathBuf,
    state: PathBuf,
}

impl SplitJsonStore {
    pub fn new(profiles: PathBuf, state: PathBuf) -> SplitJsonStore {
        SplitJsonStore { profiles, state }
    }

    fn compute(&self, selector: &ProfileSelector) -> Result<CleanedDocuments> {
        let state = read_store(&self.state)?;
        let profiles = match fsutil::read_managed(&self.profiles)? {
            Some(file) => file.content,
            // auth-state.json alone: nothing to remove but references.
            None => zeroize::Zeroizing::new(b"{\"version\":1,\"profiles\":{}}".to_vec()),
        };
        let profiles_exist = self.profiles.exists();
        let mut cleaned =
            clean_documents(&profiles, Some(&state), selector).map_err(|problem| {
                Error::failed(format!(
                    "{} / {}: {problem}",
                    self.profiles.display(),
                    self.state.display()
                ))
            })?;
        if !profiles_exist {
            cleaned.profiles = None;
        }
        Ok(cleaned)
    }
}

impl CredentialStore for SplitJsonStore {
    fn layout(&self) -> &'static str {
        "json-split"
    }

    fn location(&self) -> &Path {
        &self.profiles
    }

    fn documents(&self) -> Result<Option<StoreDocuments>> {
        let state = read_store(&self.state)?;
        let profiles = match fsutil::read_managed(&self.profiles)? {
            Some(file) => file.content,
            None => zeroize::Zeroizing::new(EMPTY_PROFILES.to_vec()),
        };
        Ok(Some(StoreDocuments {
            profiles,
            state: Some(state),
        }))
    }

    fn clean(&self, selector: &ProfileSelector) -> Result<Cleaning> {
        let _profiles_lock = StoreLock::acquire(&self.profiles, WAIT_FOR_LOCK)?;
        let _state_lock = StoreLock::acquire(&self.state, WAIT_FOR_LOCK)?;
        let cleaned = self.compute(selector)?;
        if let Some(bytes) = cleaned.profiles {
            fsutil::write_atomic(&self.profiles, &bytes, STORE_MODE)?;
        }
        if let Some(bytes) = cleaned.state {
            fsutil::write_atomic(&self.state, &bytes, STORE_MODE)?;
        }
        Ok(cleaned.cleaning)
    }
}
