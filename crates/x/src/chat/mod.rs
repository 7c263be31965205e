//! X Chat, X's end-to-end encrypted messages, as a business account (docs/xchat.md): the
//! account's keys ([`identity`]), everyone's public keys as X serves them ([`public_keys`]),
//! a customer's message checked then opened ([`open`]) and a reply sealed, signed and sent
//! ([`send`]), files both ways ([`media`]). The cryptography is `xdm_xchat`'s; this module adds the HTTP and the trust
//! decisions: whose signing key a signature is checked against (the one X lists for the sender,
//! its binding to the sender's identity key verified), and that the conversation key is one
//! wrapped for this account.

pub(crate) mod conversation_key_cache;
pub mod identity;
pub(crate) mod key_change;
pub(crate) mod media;
pub(crate) mod open;
pub mod public_keys;
pub(crate) mod send;
pub(crate) mod signing_key_cache;

pub use identity::ChatIdentity;
pub use public_keys::{UserPublicKey, register_public_keys, user_public_keys};

use xdm_core::ports::XError;
use xdm_xchat::XChatError;

/// A check that failed on a message: never retried, and the reason names no content.
pub(crate) fn unreadable(what: &str, e: &XChatError) -> XError {
    XError::Unreadable(format!("{what}: {e}"))
}
