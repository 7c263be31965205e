//! Integration tests of the sandbox over real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod attachments;
mod connect_api;
mod control;
mod customer_profiles;
mod dm_events;
mod doctor_aws;
mod faults;
mod media_x;
mod message_receipts;
mod sns_stream;
mod support;
mod x_activity;
mod x_api;
mod x_chat;
mod x_oauth2;
mod x_stream;
mod x_webhook;
