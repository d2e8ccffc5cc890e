//! The one error type the command line turns into an exit code: configuration and usage problems
//! exit 2, everything else 1. Messages say what failed and where, and never carry a token
//! (callers build them from paths, ids, fingerprints and error kinds only).

use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// Bad usage or configuration: exit code 2.
    Config(String),
    /// The run failed: exit code 1.
    Failed(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn config(message: impl Into<String>) -> Error {
        Error::Config(message.into())
    }

    pub fn failed(message: impl Into<String>) -> Error {
        Error::Failed(message.into())
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) => 2,
            Error::Failed(_) => 1,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Error::Config(m) | Error::Failed(m) => m,
        }
    }

    /// Prefixes the message with context, keeping the kind.
    pub fn context(self, context: impl fmt::Display) -> Error {
        match self {
            Error::Config(m) => Error::Config(format!("{context}: {m}")),
            Error::Failed(m) => Error::Failed(format!("{context}: {m}")),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}
