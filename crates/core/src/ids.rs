//! Identifiers that cross the bridge, validated on construction (parse, don't validate).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a value could not become an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason}")]
pub struct IdError {
    kind: &'static str,
    reason: &'static str,
}

fn is_x_id(s: &str) -> bool {
    (1..=19).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_connect_id(s: &str) -> bool {
    // Connect ids are UUIDs in practice; the API models them as 1..256 chars. Accept any
    // printable ASCII without whitespace so emulators with other formats still work.
    (1..=256).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic())
}

/// A string newtype that only holds values `$valid` accepts.
macro_rules! validated_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $valid:path, $reason:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            #[doc = concat!("Accepts ", $reason, ".")]
            pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                if $valid(&s) {
                    Ok(Self(s))
                } else {
                    Err(IdError { kind: $kind, reason: $reason })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

macro_rules! numeric_x_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        validated_id!($(#[$doc])* $name, $kind, is_x_id, "1 to 19 ASCII digits (X's `^[0-9]{1,19}$`)");
    };
}

/// X Chat message ids are UUIDs chosen by the sender; accept what such an id is made of (letters,
/// digits, `-`), bounded, so that it is safe in job keys and logs.
fn is_chat_message_id(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

macro_rules! connect_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        validated_id!($(#[$doc])* $name, $kind, is_connect_id, "1 to 256 printable ASCII characters without whitespace");
    };
}

numeric_x_id!(
    /// An X user id (a customer, or the business account a webhook subscription belongs to).
    XUserId,
    "X user id"
);
numeric_x_id!(
    /// The id of an X DM event (`direct_message_events[].id`).
    XEventId,
    "X event id"
);

validated_id!(
    /// The id of an X Chat message (`payload.id`; the sender's UUID, covered by its signature).
    ChatMessageId,
    "X Chat message id",
    is_chat_message_id,
    "1 to 64 ASCII letters, digits and hyphens (a UUID)"
);

connect_id!(
    /// An Amazon Connect contact id (changes on transfer).
    ContactId,
    "contact id"
);
connect_id!(
    /// The id of the first contact of a chat; stable across transfers, so sessions are keyed by it.
    InitialContactId,
    "initial contact id"
);
connect_id!(
    /// The `Id` of a chat item streamed by Connect (dedup key for outbound delivery).
    ChatItemId,
    "chat item id"
);

impl InitialContactId {
    /// The contact StartChatContact just created: a new chat's first contact is its initial
    /// contact. Only that answer may make one; any other contact id (after a transfer, from a
    /// streamed item's `ContactId`) is not the chat's initial contact.
    pub fn of_new_chat(started: ContactId) -> Self {
        Self(started.0)
    }
}

impl From<InitialContactId> for ContactId {
    fn from(id: InitialContactId) -> Self {
        Self(id.0)
    }
}

macro_rules! secret_token {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(s: impl Into<String>) -> Self {
                Self(s.into())
            }

            /// The token itself: only for the wire, never for logs.
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(…)", stringify!($name))
            }
        }
    };
}

secret_token!(
    /// Token returned by StartChatContact; authorises CreateParticipantConnection.
    ParticipantToken
);
secret_token!(
    /// Token returned by CreateParticipantConnection; authorises SendMessage and friends.
    ConnectionToken
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_ids_are_digits_only() {
        assert!(XUserId::parse("55125386").is_ok());
        assert!(XUserId::parse("1234567890123456789").is_ok());
        assert!(XUserId::parse("12345678901234567890").is_err());
        assert!(XUserId::parse("").is_err());
        assert!(XUserId::parse("12a").is_err());
        assert!(XUserId::parse(" 12").is_err());
    }

    #[test]
    fn x_ids_deserialize_through_validation() {
        let ok: XEventId =
            serde_json::from_str("\"2039459599745679612\"").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok.as_str(), "2039459599745679612");
        assert!(serde_json::from_str::<XEventId>("\"x1\"").is_err());
    }

    #[test]
    fn connect_ids_reject_whitespace_and_empty() {
        assert!(ContactId::parse("da81f813-70b0-496e-91ed-70f48771c522").is_ok());
        assert!(ContactId::parse("").is_err());
        assert!(ContactId::parse("a b").is_err());
        assert!(ContactId::parse("x".repeat(257)).is_err());
    }

    #[test]
    fn tokens_do_not_leak_through_debug() {
        let t = ConnectionToken::new("super-secret");
        assert_eq!(format!("{t:?}"), "ConnectionToken(…)");
        assert_eq!(t.expose(), "super-secret");
    }
}
