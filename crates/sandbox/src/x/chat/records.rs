//! What the X Chat emulator reports to tests (`SandboxHandle::chat_*`, `/_sandbox/x/chat/…`):
//! the relayed events, the registered public keys, the uploaded media and the typing / read
//! calls. Everything here is public material or ciphertext.

use serde::{Deserialize, Serialize};

/// What a relayed event carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatEventKind {
    /// A message (`MessageEventDetail` variant 1).
    Message,
    /// A conversation key change (variant 3).
    KeyChange,
}

/// One event the backend relayed, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatEventRecord {
    /// 19 digits, increasing over the sandbox.
    pub sequence_id: String,
    /// The client's id (UUID) of the message or key change.
    pub message_id: String,
    pub sender_id: String,
    /// Canonical `lower:higher`.
    pub conversation_id: String,
    pub kind: ChatEventKind,
    /// The conversation key version the message uses, or the key change introduces.
    pub conversation_key_version: String,
    /// Standard padded base64 of the Thrift `MessageEvent`.
    pub encoded_event: String,
    pub created_at_msec: i64,
}

/// One registered version of a user's public keys, as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatPublicKeyRecord {
    pub user_id: String,
    pub public_key_version: String,
    /// Base64 of the identity key as registered (SPKI, or SEC1 when the client sent that).
    pub public_key: String,
    pub signing_public_key: String,
    pub identity_public_key_signature: String,
    pub signing_public_key_signature: String,
    pub public_key_fingerprint: Option<String>,
    pub registration_method: Option<String>,
    pub registered_at: String,
}

/// One X Chat media upload (ciphertext only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMediaRecord {
    pub session_id: String,
    pub media_hash_key: String,
    /// Canonical `lower:higher`.
    pub conversation_id: String,
    pub uploader_id: String,
    /// The size announced at `initialize`.
    pub total_bytes: u64,
    /// Bytes appended so far.
    pub size: u64,
    /// Segments appended so far.
    pub segments: u32,
    pub finalized: bool,
    /// SHA-256 (lower-case hex) of the stored bytes, once finalized.
    pub sha256: Option<String>,
    pub created_at: String,
}

/// A typing or read call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatIndicatorKind {
    Typing,
    Read,
}

/// One accepted `POST …/typing` or `POST …/read`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatIndicatorRecord {
    pub kind: ChatIndicatorKind,
    pub user_id: String,
    /// Canonical `lower:higher`.
    pub conversation_id: String,
    /// `read` only.
    pub seen_until_sequence_id: Option<String>,
    pub at: String,
}
