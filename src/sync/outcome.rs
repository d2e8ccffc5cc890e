//! The words a sync's result is told in: the run's [`Outcome`] and what became of the gateway
//! ([`GatewayAction`]). `decide` settles them for the runs that only report, the apply step for
//! the others, and `report` carries them; this module imports neither, so the steps import one
//! way only (facts → decide → plan → apply → report).

use serde::{Deserialize, Serialize};

/// What a run did, as a whole, for one gateway.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Applied,
    Unchanged,
    DryRun,
}

/// What became of the gateway.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum GatewayAction {
    /// Stopped, files written, started, environment verified.
    Restarted,
    /// Already running with the token; proven without a restart.
    Verified,
    /// `secret-ref` delivery: the gateway reloaded the reference in place (same PID) and was
    /// proven to use it.
    Reloaded,
    /// Nothing to do.
    Unchanged,
    NotRestarted,
    UnitNotFound,
    /// Stopped on purpose; left stopped.
    Inactive,
    /// Dry run: a restart would happen.
    WouldRestart,
}
