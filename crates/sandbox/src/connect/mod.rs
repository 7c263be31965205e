//! The Amazon Connect emulator: the contact control plane, the participant service (with the
//! pre-signed "S3" attachment URLs), and the agent-side control operations, over one set of chats;
//! the instance and its contact flows (DescribeInstance, DescribeContactFlow).

pub(crate) mod agent;
pub mod attachments;
pub(crate) mod chat;
pub(crate) mod contact;
pub(crate) mod errors;
pub mod flows;
pub mod model;
pub(crate) mod participant;
pub mod s3;
