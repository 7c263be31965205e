//! X Chat conversation ids (docs/xchat.md §2.1): the forms a path or body may use — the peer's
//! user id, `A-B`, the canonical `A:B`, a group `g…` — and the canonical 1:1 id every event and
//! signed string carries (the two ids in numeric order, joined by `:`).

use axum::http::StatusCode;

use crate::x::calls::is_x_id;
use crate::x::problem::{self, XReply};
use crate::x::state::RateInfo;

/// A 1:1 conversation seen from one of its participants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Conversation {
    /// `lower:higher`.
    pub id: String,
    /// The caller.
    pub me: String,
    /// The other participant.
    pub peer: String,
}

impl Conversation {
    pub(crate) fn has_participant(&self, user_id: &str) -> bool {
        self.me == user_id || self.peer == user_id
    }
}

/// Why an id names no conversation of the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConversationError {
    /// Not one of the id forms (400).
    Invalid(String),
    /// A 1:1 conversation the caller is not in (403).
    NotParticipant(String),
    /// A group: groups are not emulated, so none exists (404).
    UnknownGroup(String),
}

impl ConversationError {
    /// X's answer, naming `parameter` (a path or body field).
    pub(crate) fn reply(self, rate: RateInfo, parameter: &str) -> XReply {
        match self {
            Self::Invalid(id) => XReply::invalid_param(
                rate,
                parameter,
                &id,
                format!(
                    "The `{parameter}` value [{id}] is not a conversation id (a user id, `A-B`, `A:B` or `g…`)"
                ),
            ),
            Self::NotParticipant(id) => XReply::new(
                StatusCode::FORBIDDEN,
                problem::forbidden(&format!("You are not a participant of conversation {id}.")),
                rate,
            )
            .rejected("caller is not a participant of the conversation"),
            Self::UnknownGroup(id) => XReply::new(
                StatusCode::NOT_FOUND,
                serde_json::json!({
                    "title": "Not Found Error",
                    "type": problem::RESOURCE_NOT_FOUND,
                    "status": 404,
                    "detail": format!("Could not find conversation with id: [{id}]."),
                }),
                rate,
            )
            .rejected("group conversations are not emulated"),
        }
    }
}

/// Numeric order of decimal ids: by length, then lexicographically (what the SDK does).
fn numeric_le(a: &str, b: &str) -> bool {
    (a.len(), a) <= (b.len(), b)
}

/// The canonical 1:1 id of `a` and `b`.
pub(crate) fn canonical(a: &str, b: &str) -> String {
    if numeric_le(a, b) {
        format!("{a}:{b}")
    } else {
        format!("{b}:{a}")
    }
}

/// The conversation `id` names for `caller`: the peer's user id, `A-B` or `A:B` (either order,
/// the caller one of them). A conversation with oneself is invalid.
pub(crate) fn resolve(caller: &str, id: &str) -> Result<Conversation, ConversationError> {
    let invalid = || ConversationError::Invalid(id.to_owned());
    if let Some(digits) = id.strip_prefix('g') {
        return if is_x_id(digits) {
            Err(ConversationError::UnknownGroup(id.to_owned()))
        } else {
            Err(invalid())
        };
    }
    let (a, b) = match id.split_once(['-', ':']) {
        Some((a, b)) => (a, b),
        None => (caller, id),
    };
    if !is_x_id(a) || !is_x_id(b) || a == b {
        return Err(invalid());
    }
    let peer = if a == caller {
        b
    } else if b == caller {
        a
    } else {
        return Err(ConversationError::NotParticipant(canonical(a, b)));
    };
    Ok(Conversation {
        id: canonical(a, b),
        me: caller.to_owned(),
        peer: peer.to_owned(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111";
    const B: &str = "2222222222222222222";

    #[test]
    fn every_form_names_the_canonical_conversation() {
        for id in [
            B,
            &format!("{A}-{B}"),
            &format!("{B}-{A}"),
            &format!("{B}:{A}"),
        ] {
            let conv = resolve(A, id).unwrap();
            assert_eq!(conv.id, format!("{A}:{B}"));
            assert_eq!(conv.peer, B);
        }
        assert_eq!(resolve(B, A).unwrap().id, format!("{A}:{B}"));
        // Numeric, not lexicographic, order.
        assert_eq!(canonical("9", "10"), "9:10");
        assert_eq!(canonical("10", "9"), "9:10");
    }

    #[test]
    fn other_ids_are_refused() {
        assert_eq!(
            resolve(A, "3-4"),
            Err(ConversationError::NotParticipant("3:4".into()))
        );
        assert!(matches!(
            resolve(A, "g123"),
            Err(ConversationError::UnknownGroup(_))
        ));
        for bad in [
            A,
            "",
            "x",
            "1-",
            "g",
            "1-2-3",
            "12345678901234567890",
            "1:a",
        ] {
            assert!(
                matches!(resolve(A, bad), Err(ConversationError::Invalid(_))),
                "{bad}"
            );
        }
    }
}
