//! The shared SQLite generation (OpenClaw ≥ 2026.8): the main agent's credentials live in
//! `<state>/state/openclaw.sqlite`, table `config_machine_state(state_key, value_json,
//! updated_at_ms)`, rows `authProfiles.store` and `authProfiles.state` (and
//! `auth.sharedStore` = `{"location":"state-db"}`, which we leave alone).

use super::sqlite_common::{RowLocation, SqliteLayout, SqliteStore};
use std::path::{Path, PathBuf};

pub const RELATIVE_PATH: &str = "state/openclaw.sqlite";

pub static LAYOUT: SqliteLayout = SqliteLayout {
    name: "sqlite-shared",
    profiles: RowLocation {
        table: "config_machine_state",
        key_column: "state_key",
        key: "authProfiles.store",
        json_column: "value_json",
        updated_column: "updated_at_ms",
    },
    state: RowLocation {
        table: "config_machine_state",
        key_column: "state_key",
        key: "authProfiles.state",
        json_column: "value_json",
        updated_column: "updated_at_ms",
    },
};

pub fn path_in(state_dir: &Path) -> PathBuf {
    state_dir.join(RELATIVE_PATH)
}

pub fn store(path: PathBuf) -> SqliteStore {
    SqliteStore::new(path, &LAYOUT)
}
