//! The one integration-test binary: one link, one moto and one Anthropic stand-in for the whole
//! run, and the slow serial chains (the real OpenClaw gateways) running beside the rest. One
//! module per area; the helpers every area shares are in `common`.

mod common;

// libtest starts tests in the order of their names as threads free up: the real-gateway chain,
// the longest (three OpenClaw releases, one at a time), is named to start first, so the other
// areas run beside it instead of after it.
mod a_real_gateway;
mod adversarial;
mod config;
mod containers;
mod decisions;
mod deploy;
mod fleet;
mod hosts;
mod observability;
mod packaging;
mod properties;
mod quadlet;
mod reliability;
mod status;
mod stores;
mod sync_gateway;
