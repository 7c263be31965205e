//! The signing keys seen on X, per user, reused for [`CACHE_TTL`] (X Chat: every message's
//! signature is checked against its sender's signing key).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use xdm_core::ids::XUserId;
use xdm_xchat::PublicKey;

/// How long a user's served keys are reused before X is asked again.
pub const CACHE_TTL: Duration = Duration::from_secs(600);

/// When a user's keys were read, and their signing keys by version.
type Served = (Instant, Vec<(String, PublicKey)>);

/// Signing keys seen on X, per user.
#[derive(Debug, Default)]
pub(crate) struct SigningKeyCache {
    users: Mutex<HashMap<XUserId, Served>>,
}

impl SigningKeyCache {
    pub(crate) fn cached(&self, user: &XUserId, version: &str) -> Option<PublicKey> {
        let users = self.users.lock().ok()?;
        let (at, keys) = users.get(user)?;
        if at.elapsed() > CACHE_TTL {
            return None;
        }
        keys.iter().find(|(v, _)| v == version).map(|(_, k)| *k)
    }

    pub(crate) fn store(&self, user: &XUserId, keys: Vec<(String, PublicKey)>) {
        if let Ok(mut users) = self.users.lock() {
            users.insert(user.clone(), (Instant::now(), keys));
        }
    }
}
