//! What can go wrong with X Chat material. Never carries key bytes or plaintext.

/// A refused key, wrapped key, sealed message, signature or Thrift structure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XChatError {
    #[error("the key blob is not X Chat's export (64 bytes: identity then signing scalar): {0}")]
    KeyBlob(String),
    #[error("not a P-256 public key: {0}")]
    PublicKey(String),
    #[error("the wrapped conversation key cannot be opened with this identity key")]
    Unwrap,
    #[error("the sealed contents cannot be opened with this conversation key")]
    Open,
    #[error("the signature does not verify")]
    Signature,
    #[error("a signed field contains a comma: {0}")]
    Comma(&'static str),
    #[error("malformed Thrift structure: {0}")]
    Thrift(String),
}
