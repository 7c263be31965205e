//! A business account's X Chat identity: its key pairs (from the key blob X's Chat SDK exports)
//! and the version X registered their public keys under. Never shown: `Debug` prints the
//! fingerprint and version only.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use xdm_xchat::ChatKeys;
use xdm_xchat::keys::public_key_der;
use xdm_xchat::registration::fingerprint;

/// Why a key blob or version cannot be used (names no key material).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatIdentityError {
    #[error("the X Chat key blob is not base64")]
    NotBase64,
    #[error(transparent)]
    Blob(#[from] xdm_xchat::XChatError),
    #[error(
        "the X Chat key version is not X's (a decimal number, as X returned it when the keys were registered)"
    )]
    Version,
}

/// The keys and their registered version. Cheap to clone.
#[derive(Clone)]
pub struct ChatIdentity {
    keys: Arc<ChatKeys>,
    key_version: String,
}

impl std::fmt::Debug for ChatIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatIdentity")
            .field("fingerprint", &self.fingerprint())
            .field("key_version", &self.key_version)
            .finish()
    }
}

impl ChatIdentity {
    pub fn new(keys: ChatKeys, key_version: impl Into<String>) -> Result<Self, ChatIdentityError> {
        let key_version = key_version.into();
        if key_version.is_empty()
            || key_version.len() > 20
            || !key_version.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(ChatIdentityError::Version);
        }
        Ok(Self {
            keys: Arc::new(keys),
            key_version,
        })
    }

    /// From the key blob in base64 (what `xdm-connect x chat-keys` stores and X's SDK exports).
    pub fn from_blob_base64(
        blob: &str,
        key_version: impl Into<String>,
    ) -> Result<Self, ChatIdentityError> {
        let bytes = xdm_xchat::keys::Zeroizing::new(
            STANDARD
                .decode(blob.trim())
                .map_err(|_| ChatIdentityError::NotBase64)?,
        );
        Self::new(ChatKeys::from_blob(&bytes)?, key_version)
    }

    pub fn keys(&self) -> &ChatKeys {
        &self.keys
    }

    /// The version X registered the public keys under: stamped on every signature.
    pub fn key_version(&self) -> &str {
        &self.key_version
    }

    /// The identity key's fingerprint as X Chat computes it (safe to show).
    pub fn fingerprint(&self) -> String {
        fingerprint(&public_key_der(&self.keys.identity_public()))
    }
}
