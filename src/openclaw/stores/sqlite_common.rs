//! What the two SQLite generations share: a store is two JSON rows (profiles and state) that live
//! somewhere in a database OpenClaw owns. [`SqliteStore`] reads them read-only to plan, and edits
//! them in one `BEGIN IMMEDIATE` transaction with a busy timeout, re-reading inside it so a
//! concurrent OpenClaw write is never lost. The schema is checked before anything is read; an
//! unexpected one is reported and left alone. No JSON file is ever created beside a database.

use super::document::{clean_documents, Cleaning, ProfileSelector};
use super::{CredentialStore, StoreDocuments};
use crate::error::{Error, Result};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

/// How long a write waits for OpenClaw's own transactions.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Where one JSON document lives: a row of a table.
#[derive(Debug)]
pub struct RowLocation {
    pub table: &'static str,
    pub key_column: &'static str,
    pub key: &'static str,
    pub json_column: &'static str,
    /// Milliseconds since the epoch, set on every update.
    pub updated_column: &'static str,
}

/// A SQLite store generation: its name and where its two documents live.
#[derive(Debug)]
pub struct SqliteLayout {
    pub name: &'static str,
    pub profiles: RowLocation,
    pub state: RowLocation,
}

pub struct SqliteStore {
    path: PathBuf,
    layout: &'static SqliteLayout,
}

impl SqliteStore {
    pub fn new(path: PathBuf, layout: &'static SqliteLayout) -> SqliteStore {
        SqliteStore { path, layout }
    }

    fn fail(&self, what: impl std::fmt::Display) -> Error {
        Error::failed(format!("{}: {what}", self.path.display()))
    }

    fn open(&self, writable: bool) -> Result<Connection> {
        let meta = std::fs::symlink_metadata(&self.path)
            .map_err(|e| self.fail(format!("cannot inspect: {e}")))?;
        if meta.file_type().is_symlink() {
            return Err(crate::host::fsutil::symlink_refused(&self.path));
        }
        if !meta.is_file() {
            return Err(self.fail("not a regular file"));
        }
        // SQLite opens its side files blocking and through links: a FIFO there would hold the
        // run for ever, a link would redirect our writes. Refused before SQLite sees them.
        for suffix in ["-wal", "-journal", "-shm"] {
            let mut side = self.path.as_os_str().to_owned();
            side.push(suffix);
            if let Ok(side_meta) = std::fs::symlink_metadata(&side) {
                if !side_meta.is_file() {
                    return Err(self.fail(format!(
                        "its {suffix} file is not a regular file (a symlink, FIFO or directory); store left untouched"
                    )));
                }
            }
        }
        let access = if writable {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        } else {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        };
        // Never SQLITE_OPEN_CREATE: a missing database is not ours to create.
        let flags = access | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let connection = Connection::open_with_flags(&self.path, flags)
            .map_err(|e| self.fail(format!("cannot open: {e}")))?;
        connection
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| self.fail(format!("cannot set busy timeout: {e}")))?;
        Ok(connection)
    }

    fn check_schema(&self, connection: &Connection) -> Result<()> {
        for location in [&self.layout.profiles, &self.layout.state] {
            let mut statement = connection
                .prepare("SELECT name FROM pragma_table_info(?1)")
                .map_err(|e| self.fail(format!("not a readable SQLite database: {e}")))?;
            let columns: Vec<String> = statement
                .query_map([location.table], |row| row.get(0))
                .and_then(|rows| rows.collect())
                .map_err(|e| self.fail(format!("not a readable SQLite database: {e}")))?;
            if columns.is_empty() {
                return Err(self.fail(format!(
                    "unknown schema: no table {} (not the {} layout this tool knows); left untouched",
                    location.table, self.layout.name
                )));
            }
            for column in [
                location.key_column,
                location.json_column,
                location.updated_column,
            ] {
                if !columns.iter().any(|c| c == column) {
                    return Err(self.fail(format!(
                        "unknown schema: table {} has no column {column}; left untouched",
                        location.table
                    )));
                }
            }
        }
        Ok(())
    }

    fn read_row(&self, connection: &Connection, location: &RowLocation) -> Result<Option<String>> {
        let sql = format!(
            "SELECT {} FROM {} WHERE {} = ?1",
            location.json_column, location.table, location.key_column
        );
        connection
            .query_row(&sql, [location.key], |row| row.get::<_, String>(0))
            .optional()
            .map_err(|e| {
                self.fail(format!(
                    "cannot read {}.{}: {e}",
                    location.table, location.key
                ))
            })
    }

    /// Checks the schema and reads both rows. `None`: no profiles row, nothing stored.
    fn read_documents(&self, connection: &Connection) -> Result<Option<StoreDocuments>> {
        self.check_schema(connection)?;
        let Some(profiles) = self.read_row(connection, &self.layout.profiles)? else {
            return Ok(None);
        };
        let state = self.read_row(connection, &self.layout.state)?;
        Ok(Some(StoreDocuments {
            profiles: Zeroizing::new(profiles.into_bytes()),
            state: state.map(|s| Zeroizing::new(s.into_bytes())),
        }))
    }

    /// Reads both rows and computes the edit. `None`: nothing stored, nothing to do.
    fn compute(
        &self,
        connection: &Connection,
        selector: &ProfileSelector,
    ) -> Result<Option<super::document::CleanedDocuments>> {
        let Some(documents) = self.read_documents(connection)? else {
            return Ok(None);
        };
        let state = documents.state.as_deref().map(|s| s.as_slice());
        let cleaned = clean_documents(&documents.profiles, state, selector).map_err(|problem| {
            self.fail(format!(
                "row {}.{}: {problem}",
                self.layout.profiles.table, self.layout.profiles.key
            ))
        })?;
        Ok(Some(cleaned))
    }

    fn update_row(
        &self,
        transaction: &rusqlite::Transaction,
        location: &RowLocation,
        json: &[u8],
    ) -> Result<()> {
        let text = std::str::from_utf8(json).map_err(|_| self.fail("edited JSON is not UTF-8"))?;
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let sql = format!(
            "UPDATE {} SET {} = ?1, {} = ?2 WHERE {} = ?3",
            location.table, location.json_column, location.updated_column, location.key_column
        );
        let changed = transaction
            .execute(&sql, rusqlite::params![text, now_ms, location.key])
            .map_err(|e| {
                self.fail(format!(
                    "cannot update {}.{}: {e}",
                    location.table, location.key
                ))
            })?;
        if changed != 1 {
            return Err(self.fail(format!(
                "row {}.{} vanished during the update",
                location.table, location.key
            )));
        }
        Ok(())
    }
}

impl CredentialStore for SqliteStore {
    fn layout(&self) -> &'static str {
        self.layout.name
    }

    fn location(&self) -> &Path {
        &self.path
    }

    fn documents(&self) -> Result<Option<StoreDocuments>> {
        let connection = self.open(false)?;
        self.read_documents(&connection)
    }

    fn clean(&self, selector: &ProfileSelector) -> Result<Cleaning> {
        let mut connection = self.open(true)?;
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.fail(format!("cannot begin a write transaction: {e}")))?;
        let Some(cleaned) = self.compute(&transaction, selector)? else {
            return Ok(Cleaning::default());
        };
        if let Some(json) = &cleaned.profiles {
            self.update_row(&transaction, &self.layout.profiles, json)?;
        }
        if let Some(json) = &cleaned.state {
            self.update_row(&transaction, &self.layout.state, json)?;
        }
        transaction
            .commit()
            .map_err(|e| self.fail(format!("cannot commit: {e}")))?;
        Ok(cleaned.cleaning)
    }
}
