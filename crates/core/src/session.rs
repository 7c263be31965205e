//! A chat session: the one live Amazon Connect chat of an (business account, X user) pair.

use serde::{Deserialize, Serialize};

use crate::ids::{ConnectionToken, ContactId, InitialContactId, ParticipantToken, XUserId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub business: XUserId,
    pub customer: XUserId,
    /// Key of the session on the Connect side: stable across transfers.
    pub initial_contact_id: InitialContactId,
    pub participant_token: ParticipantToken,
    /// The StartChatContact ClientToken that opened the chat (tells a retry of the opening
    /// message that its first part is already in the chat).
    pub opened_by: String,
    /// Present once CreateParticipantConnection succeeded.
    pub connection: Option<ConnectionCredentials>,
    pub status: SessionStatus,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl Session {
    /// When the chat ended, if it did: `updated_at_ms` of an ended session, which
    /// [`Store::end_session`](crate::ports::Store::end_session) sets. Only the bridge's own
    /// writes move it afterwards, and only later (a connection recorded by a set-up that raced
    /// the end), never earlier.
    pub fn ended_at_ms(&self) -> Option<i64> {
        (self.status == SessionStatus::Ended).then_some(self.updated_at_ms)
    }

    /// The customer's connection token if the chat's set-up finished and it has not expired at
    /// `now_ms`. Typing and receipts use it as it is: they never set one up or renew it (the
    /// deliveries of messages do).
    pub fn current_connection(&self, now_ms: i64) -> Option<&ConnectionToken> {
        self.connection
            .as_ref()
            .filter(|c| c.expires_at_ms.is_none_or(|exp| exp > now_ms))
            .map(|c| &c.token)
    }

    /// The first contact of the chat (the one StartChatContact returned).
    pub fn initial_contact(&self) -> ContactId {
        ContactId::from(self.initial_contact_id.clone())
    }
}

/// The customer's connection to the chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionCredentials {
    pub token: ConnectionToken,
    /// When Connect stops accepting the token (ms since the epoch); `None` if Connect did not say.
    pub expires_at_ms: Option<i64>,
}

/// The life of a session.
///
/// `Starting`: StartChatContact succeeded and the row is written (so items streamed by the
/// contact flow already find it), streaming or the customer's connection are not set up yet.
/// `Live`: the customer is connected; messages go through SendMessage.
/// `Ended`: Connect ended the chat (chat.ended, or AccessDenied on a participant call).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Starting,
    Live,
    Ended,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Starting => "starting",
            SessionStatus::Live => "live",
            SessionStatus::Ended => "ended",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "starting" => Some(Self::Starting),
            "live" => Some(Self::Live),
            "ended" => Some(Self::Ended),
            _ => None,
        }
    }

    /// Starting and live sessions both count as "the one chat" of a customer.
    pub fn is_open(self) -> bool {
        !matches!(self, SessionStatus::Ended)
    }
}
