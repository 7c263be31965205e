//! Pipeline behaviour against in-memory fakes of X, Connect and the store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fakes;

mod buffering;
mod handoff;
mod inbound;
mod leases;
mod media;
mod new_chats;
mod outbound;
mod receipts;
mod typing;
mod x_chat;
