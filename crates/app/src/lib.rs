//! The `xdm-connect` application: configuration, wiring of the adapters into the core, the
//! HTTP server of `serve`, and the commands of the binary.

pub mod async_runtime;
pub mod commands;
pub mod config;
pub mod configured;
pub mod lambda;
pub mod monitoring;
#[cfg(feature = "sandbox")]
pub mod sandbox_link;
pub mod server;
pub mod shutdown;
pub mod startup;
pub mod telemetry;
pub mod wiring;
pub mod x_events;
pub mod x_link;
pub mod x_tokens;
