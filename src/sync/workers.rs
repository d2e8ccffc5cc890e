//! One process per user when a run syncs gateways of several users: acting as a user is for
//! good (or, for system units, keeps only root's real id), so each user's gateways are synced in
//! a forked child that becomes the user (`crate::host::forked`), and its results come back to the root
//! parent as JSON (reports and error messages, never a token: the child inherits the fetched
//! secret in memory, nothing of it is written).
//!
//! The user is hostile (README "Security model"): the child runs as that user, who can stop it
//! or make it wait on something of theirs. The root parent gives each child `--user-timeout`
//! and kills it past that; the user's gateways are reported failed and the next user is synced.
//! A gateway such a kill left stopped is started by that user's next run (the
//! `restart-pending` marker).

use super::{GatewayRun, SyncReport};
use crate::error::{Error, Result};

/// What a child sends back for one gateway.
#[derive(serde::Serialize, serde::Deserialize)]
struct Wire {
    user: String,
    unit: String,
    report: Option<SyncReport>,
    error: Option<String>,
    exit_code: u8,
    /// The error was Anthropic refusing the token (kept for the metrics' probe result).
    #[serde(default)]
    rejected: bool,
}

/// Runs `work` in a child process and returns what it produced. `user` names the child in
/// errors (a child that dies without an answer is one failed gateway of that user).
pub fn in_child(
    user: &str,
    limit: std::time::Duration,
    work: impl FnOnce() -> Vec<GatewayRun>,
) -> Result<Vec<GatewayRun>> {
    let answer = crate::host::forked::answer_of(limit, || {
        work().into_iter().map(to_wire).collect::<Vec<_>>()
    })?;
    match answer {
        Ok(wire) => Ok(wire.into_iter().map(from_wire).collect()),
        Err(why) => Ok(vec![GatewayRun {
            user: user.to_owned(),
            unit: super::EVERY_GATEWAY_OF_THE_USER.to_owned(),
            result: Err(Error::failed(format!(
                "the worker process for {user} {why}; its gateways were not all synced"
            ))),
        }]),
    }
}

fn to_wire(run: GatewayRun) -> Wire {
    let rejected = matches!(run.result, Err(Error::TokenRejected(_)));
    let (report, error, exit_code) = match run.result {
        Ok(report) => {
            let code = report.exit_code();
            (Some(report), None, code)
        }
        Err(err) => (None, Some(err.message()), err.exit_code()),
    };
    Wire {
        user: run.user,
        unit: run.unit,
        report,
        error,
        exit_code,
        rejected,
    }
}

fn from_wire(wire: Wire) -> GatewayRun {
    let result = match (wire.report, wire.error) {
        (Some(report), _) => Ok(report),
        (None, Some(message)) if wire.rejected => Err(Error::TokenRejected(message)),
        (None, error) => Err(Error::Reported {
            message: error.unwrap_or_else(|| "failed without a message".to_owned()),
            exit_code: wire.exit_code.max(1),
        }),
    };
    GatewayRun {
        user: wire.user,
        unit: wire.unit,
        result,
    }
}
