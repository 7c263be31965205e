//! The Amazon Connect emulator: the contact control plane, the participant service, and the
//! agent-side control operations, over one set of chats.

pub(crate) mod agent;
pub mod attachments;
pub(crate) mod chat;
pub(crate) mod contact;
pub(crate) mod errors;
pub mod model;
pub(crate) mod participant;
