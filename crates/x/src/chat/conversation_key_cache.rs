//! Conversation keys already opened, by business account and key change: a customer's messages
//! all name the same key change, and opening it (its signature checked, one ECDH) costs ~170 µs
//! of the ~225 µs an X Chat message takes to open (docs/performance.md, "X Chat"). Bounded; a full
//! cache starts over. The keys are zeroed when dropped.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use xdm_core::ids::XUserId;
use xdm_core::inbound::ChatKeyChange;
use xdm_xchat::ConversationKey;

/// Most conversation keys kept (a few hundred bytes each).
const MAX_KEYS: usize = 10_000;

type Entry = (ConversationKey, ChatKeyChange);

#[derive(Default)]
pub(crate) struct ConversationKeyCache {
    keys: Mutex<HashMap<(XUserId, [u8; 32]), Entry>>,
}

impl std::fmt::Debug for ConversationKeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConversationKeyCache")
            .finish_non_exhaustive()
    }
}

fn id(business: &XUserId, encoded: &str) -> (XUserId, [u8; 32]) {
    (business.clone(), Sha256::digest(encoded.as_bytes()).into())
}

impl ConversationKeyCache {
    /// The key `business` opened from the key change `encoded` before, if any.
    pub(crate) fn get(&self, business: &XUserId, encoded: &str) -> Option<Entry> {
        self.keys.lock().ok()?.get(&id(business, encoded)).cloned()
    }

    pub(crate) fn put(&self, business: &XUserId, encoded: &str, entry: Entry) {
        if let Ok(mut keys) = self.keys.lock() {
            if keys.len() >= MAX_KEYS {
                keys.clear();
            }
            keys.insert(id(business, encoded), entry);
        }
    }
}
