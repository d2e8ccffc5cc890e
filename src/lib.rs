//! openclaw-token-sync: keeps one long-lived Anthropic token from AWS Secrets Manager in sync on a
//! host that runs an OpenClaw gateway. See README.md for the operator's view and DESIGN notes in
//! each module for what it owns.
//!
//! The layout (README "Architecture"): `cli` (arguments, layering, rendering) → `sync` (facts,
//! the pure decision, apply, report) and `status` (checks returning findings) → `openclaw` (the
//! gateway as OpenClaw sees it: state dir, discovery, stores, RPC, proof) and `host` (files,
//! privileges, systemd, locks and state); `fleet` (put, promote/rollback, trigger, the SSM
//! document) works on AWS across hosts; `aws`, `secret`, `anthropic_probe`, `metrics` and `error`
//! serve them all.

pub mod anthropic_probe;
pub mod aws;
pub mod cli;
pub mod error;
pub mod fleet;
pub mod host;
pub mod metrics;
pub mod openclaw;
pub mod secret;
pub mod status;
pub mod sync;
