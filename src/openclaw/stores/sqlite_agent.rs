//! The per-agent SQLite generation (OpenClaw ≥ 2026.6.5): `<agentDir>/openclaw-agent.sqlite` with
//! `auth_profile_store(store_key, store_json, updated_at)` and
//! `auth_profile_state(state_key, state_json, updated_at)`, both in row `primary`.

use super::sqlite_common::{RowLocation, SqliteLayout, SqliteStore};
use std::path::PathBuf;

pub const FILE_NAME: &str = "openclaw-agent.sqlite";

pub static LAYOUT: SqliteLayout = SqliteLayout {
    name: "sqlite-agent",
    profiles: RowLocation {
        table: "auth_profile_store",
        key_column: "store_key",
        key: "primary",
        json_column: "store_json",
        updated_column: "updated_at",
    },
    state: RowLocation {
        table: "auth_profile_state",
        key_column: "state_key",
        key: "primary",
        json_column: "state_json",
        updated_column: "updated_at",
    },
};

pub fn store(path: PathBuf) -> SqliteStore {
    SqliteStore::new(path, &LAYOUT)
}
