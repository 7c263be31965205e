//! Integration tests of the sandbox over real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod connect_api;
mod control;
mod sns_stream;
mod support;
mod x_api;
mod x_webhook;
