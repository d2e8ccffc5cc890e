//! openclaw-token-sync: keeps one long-lived Anthropic token from AWS Secrets Manager in sync on a
//! host that runs an OpenClaw gateway. See README.md for the operator's view and DESIGN notes in
//! each module for what it owns.

pub mod anthropic_probe;
pub mod aws;
pub mod cli;
pub mod error;
pub mod forked;
pub mod fsutil;
pub mod locks;
pub mod managed_files;
pub mod metrics;
pub mod openclaw;
pub mod privileges;
pub mod promote;
pub mod put;
pub mod secret;
pub mod session;
pub mod ssm_document;
pub mod state;
pub mod status;
pub mod stores;
pub mod sync;
pub mod systemd;
pub mod trigger;
