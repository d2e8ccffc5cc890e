//! What works across hosts through AWS: storing a new token (`put`), moving the AWSCURRENT label
//! for a canary rollout and back (`promote`), fanning `sync` out over SSM Run Command
//! (`trigger`), and the SSM document those runs use (`ssm_document`).

pub mod promote;
pub mod put;
pub mod ssm_document;
pub mod trigger;
