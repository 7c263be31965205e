//! xdm-xchat: the client side of X's end-to-end encrypted **X Chat** protocol, as
//! docs/xchat.md describes it — no HTTP, no I/O:
//!
//! * [`keys`]: the business account's identity and signing key pairs, the key blob X's Chat SDK
//!   exports and imports, and the public keys as X serves them;
//! * [`registration`]: the public keys a business account registers, bound to each other;
//! * [`wrap`]: conversation keys wrapped for a participant (ECIES: P-256 ECDH, X9.63 KDF,
//!   AES-128-GCM with a 16-byte IV);
//! * [`seal`]: message contents sealed with the conversation key (NaCl secretbox);
//! * [`media`]: files sealed with the conversation key (secretstream), piece by piece;
//! * [`signatures`]: the comma-joined strings X Chat signs and ECDSA P-256 over them;
//! * [`thrift`]: the Thrift binary structures the bridge writes and reads;
//! * [`events`]: events as X delivers them, checked then opened, and the messages the bridge sends.
//!
//! Correctness is pinned by vectors made with X's own SDK (`testdata/xchat-vectors.json`).

pub mod errors;
pub mod events;
pub mod keys;
pub mod media;
pub mod registration;
pub mod seal;
pub mod signatures;
pub mod thrift;
pub mod wrap;

pub use errors::XChatError;
pub use keys::ChatKeys;
/// A P-256 public key (identity or signing), as the other modules take it.
pub use p256::PublicKey;
pub use seal::ConversationKey;
