//! An X event on its way to the subscriptions it matches ([`crate::x::dispatch`]): plain data,
//! so that queues of them can live in the X state.

use crate::x::dm_spec::PayloadShape;
use crate::x::payloads::Activity;
use crate::x::records::{DeliveredMedia, DeliveryKind};

/// An event to route.
pub(crate) struct Outgoing {
    pub kind: DeliveryKind,
    /// The user whose subscriptions match (the receiver of a DM, the sender of a sent DM).
    pub user_id: String,
    pub activity: Activity,
    pub event_id: Option<String>,
    /// Envelope for Account Activity subscriptions.
    pub aaa_shape: PayloadShape,
    pub include_users: bool,
    pub media: Option<DeliveredMedia>,
}
