//! The Amazon Connect emulator: the contact control plane, the participant service (with the
//! pre-signed "S3" attachment URLs), and the agent-side control operations, over one set of chats;
//! the instance and its contact flows (DescribeInstance, DescribeContactFlow).

pub(crate) mod admission;
pub(crate) mod agent;
pub(crate) mod attachments;
pub(crate) mod chat;
pub(crate) mod contact;
pub(crate) mod contact_attributes;
pub(crate) mod controls;
pub(crate) mod errors;
pub mod flows;
pub(crate) mod instance;
pub mod model;
pub(crate) mod participant;
pub(crate) mod s3;
pub(crate) mod state;

use std::sync::Arc;

use axum::Router;

use crate::state::Shared;

/// Every Connect route: control plane, instance, participant service, attachments and their URLs.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .merge(contact::routes())
        .merge(contact_attributes::routes())
        .merge(instance::routes())
        .merge(participant::routes())
        .merge(attachments::routes())
        .merge(s3::routes())
}
