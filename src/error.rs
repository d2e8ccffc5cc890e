//! The one error type the command line turns into an exit code: configuration and usage problems
//! exit 2, everything else 1. Each kind of failure a caller may want to tell apart is a variant of
//! its own (a file that cannot be read, a gateway that runs another token, a credential another
//! source sets, a refusal before any change, a token Anthropic rejects); the rest carry a message.
//! Messages say what failed and where, and never carry a token (they are built from paths, ids,
//! fingerprints and error kinds only).

use crate::secret::Fingerprint;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad usage or configuration: exit code 2.
    #[error("{0}")]
    Config(String),
    /// The run failed for a reason no caller needs to tell apart: exit code 1.
    #[error("{0}")]
    Failed(String),
    /// A file or directory could not be read, written or inspected.
    #[error("{}: cannot {action}: {detail}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        detail: String,
        #[source]
        source: std::io::Error,
    },
    /// The running gateway carries our variable with another value.
    #[error("{unit} (pid {pid}) runs with {variable} = {found}, not the synced token {expected}: an EnvironmentFile= or another drop-in overrides ours (check ~/.openclaw/gateway.systemd.env and `systemctl --user cat {unit}`)")]
    GatewayRunsOtherToken {
        unit: String,
        pid: u32,
        variable: String,
        found: Fingerprint,
        expected: Fingerprint,
    },
    /// The running gateway does not carry our variable at all.
    #[error("{unit} (pid {pid}) runs without {variable}: the drop-in was not loaded or an UnsetEnvironment= removes it (check `systemctl --user cat {unit}`)")]
    GatewayLacksToken {
        unit: String,
        pid: u32,
        variable: String,
    },
    /// Another source hands the gateway a credential variable OpenClaw prefers over ours.
    #[error("{unit} also gets {variable} ({found}) from {origin}; OpenClaw prefers it over {ours}, so the synced token would not be used: remove that assignment, then sync again")]
    CompetingCredential {
        unit: String,
        variable: String,
        found: Fingerprint,
        origin: String,
        ours: String,
    },
    /// A process's environment could not be read (it exited, or /proc is restricted).
    #[error("/proc/{pid}/environ: cannot read: {source}")]
    ProcUnreadable {
        pid: u32,
        #[source]
        source: std::io::Error,
    },
    /// The gateway did not come up, or did not stay up, after a start.
    #[error("{0}")]
    GatewayDown(String),
    /// `systemctl` or `systemd-run` failed or could not reach the user's manager.
    #[error("{0}")]
    Systemd(String),
    /// Checked before anything changed: the run refused to write or restart anything.
    #[error("refusing to touch {unit} (nothing was changed): {reason}")]
    Refused { unit: String, reason: String },
    /// Anthropic (directly or through the gateway) rejected the token.
    #[error("{0}")]
    TokenRejected(String),
    /// A gateway's failure as another process reported it (a per-user worker of a run that
    /// syncs several users), or one failure shared by several gateways (their secret could not
    /// be fetched): the message and exit code as they were.
    #[error("{message}")]
    Reported { message: String, exit_code: u8 },
    /// A failure, and the credential stores that need attention too (often its cause).
    #[error("{error}; the stores need attention: {stores}")]
    WithStores {
        #[source]
        error: Box<Error>,
        stores: String,
    },
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
            Error::WithStores { error, .. } => error.exit_code(),
            Error::Reported { exit_code, .. } => *exit_code,
            _ => 1,
        }
    }

    /// The message as printed (the same text as `Display`).
    pub fn message(&self) -> String {
        self.to_string()
    }
}

/// At most 200 characters of a message, on one line, with anything shaped like an Anthropic
/// credential (`sk-ant-…`) blanked: the text comes from another program.
pub fn short(message: &str) -> String {
    let one_line = message
        .split_whitespace()
        .map(|word| match word.find("sk-ant-") {
            Some(at) => format!("{}sk-ant-[redacted]", &word[..at]),
            None => word.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ");
    if one_line.chars().count() > 200 {
        format!("{}…", one_line.chars().take(200).collect::<String>())
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_keep_their_exit_codes_and_io_errors_their_source() {
        use std::error::Error as _;
        assert_eq!(Error::config("x").exit_code(), 2);
        let io = Error::Io {
            path: "/tmp/f".into(),
            action: "read",
            detail: "permission denied".into(),
            source: std::io::Error::from_raw_os_error(13),
        };
        assert_eq!(io.exit_code(), 1);
        assert_eq!(io.to_string(), "/tmp/f: cannot read: permission denied");
        assert!(io.source().is_some());
        let refused = Error::Refused {
            unit: "u.service".into(),
            reason: "why".into(),
        };
        assert_eq!(
            refused.to_string(),
            "refusing to touch u.service (nothing was changed): why"
        );
    }
}
