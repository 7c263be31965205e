//! The SNS emulator: signing identity, message bodies, subscriptions (with their filter policies,
//! `filter_policy`) and deliveries, the three
//! URLs SNS hands to subscribers (`endpoints`), and the Query API calls doctor makes (`POST /`:
//! GetTopicAttributes, ListSubscriptionsByTopic — `query`) over its topics ([`topics`]).

pub(crate) mod controls;
pub(crate) mod delivery;
pub(crate) mod endpoints;
pub mod filter_policy;
pub mod message;
pub(crate) mod query;
pub mod signer;
pub(crate) mod state;
pub mod topics;
pub(crate) mod xml;

use std::sync::Arc;

use axum::Router;

use crate::state::Shared;

/// Every SNS route: the subscriber URLs and the Query API.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .merge(endpoints::routes())
        .merge(query::routes())
}
