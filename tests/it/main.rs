//! The one integration-test binary: one link, one moto and one Anthropic stand-in for the whole
//! run, and the slow serial chains (the real OpenClaw gateways) running beside the rest. One
//! module per area; the helpers every area shares are in `common`.

mod common;

mod adversarial;
mod config;
mod decisions;
mod deploy;
mod fleet;
mod hosts;
mod observability;
mod packaging;
mod properties;
mod real_gateway;
mod reliability;
mod status;
mod stores;
mod sync_gateway;
