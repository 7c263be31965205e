//! End-to-end tests of the bridge against the sandbox emulators, over real sockets, with the
//! real clients. One binary for the crate (each links hundreds of MB).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod bridge_process;
mod helpers;

mod abuse;
mod admin;
mod async_workers;
mod business_accounts;
mod connect_participant;
mod crash;
mod demo;
mod faults;
mod inbound;
mod lambda;
mod lifecycle;
mod media;
mod metrics_endpoint;
mod new_chats;
mod outbound;
mod restart;
mod second_process;
mod sns_endpoint;
mod x_activity;
mod x_chat;
mod x_webhook;
