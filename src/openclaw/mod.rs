//! The running OpenClaw gateway as OpenClaw itself sees it: where it keeps its state, by
//! OpenClaw's own rule applied to the gateway's environment (`state_dir`); its own CLI, found
//! through the unit's `ExecStart=`, asked over the gateway's RPC (`gateway_rpc`); and the proof
//! built from its answers that the gateway's agents run on the synced token (`proof`), once its
//! port listens (`listening`); which gateways a manager has, remembered between runs so a no-op
//! starts no process (`discovery`); the agents' credential stores, one module per generation
//! (`stores`); and the token as a secret reference (`secret_ref`).

pub mod containers;
pub mod discovery;
pub mod gateway_rpc;
pub mod listening;
pub mod proof;
pub mod quadlet;
pub mod secret_ref;
pub mod state_dir;
pub mod stores;
