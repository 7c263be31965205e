//! Identifier generators: X snowflakes, UUIDs and opaque bearer tokens.

use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::clock;

/// Twitter's snowflake epoch (2010-11-04T01:42:54.657Z) in Unix milliseconds.
const TWEPOCH_MS: u64 = 1_288_834_974_657;

/// Strictly increasing X-style ids: `(ms since TWEPOCH) << 22 | sequence`, 19 digits today.
#[derive(Debug, Default)]
pub(crate) struct Snowflake {
    last: AtomicU64,
}

impl Snowflake {
    pub(crate) fn next(&self) -> String {
        let ms = u64::try_from(clock::now_unix_ms()).unwrap_or(0);
        let candidate = ms.saturating_sub(TWEPOCH_MS) << 22;
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = candidate.max(last + 1);
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next.to_string(),
                Err(seen) => last = seen,
            }
        }
    }
}

pub(crate) fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `n` × 16 random bytes (UUIDv4 randomness: 122 bits per block).
fn random_bytes(blocks: usize) -> Vec<u8> {
    (0..blocks)
        .flat_map(|_| *uuid::Uuid::new_v4().as_bytes())
        .collect()
}

/// An opaque token shaped like Connect's participant/connection tokens (standard base64).
pub(crate) fn bearer_token() -> String {
    STANDARD.encode(random_bytes(6))
}

/// A short URL-safe random code (t.co paths, SNS confirmation tokens, media file names).
pub(crate) fn short_code(blocks: usize) -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(blocks))
}

/// Lower-case hex of random bytes (SNS subscription tokens are long hex strings).
pub(crate) fn hex_token(blocks: usize) -> String {
    random_bytes(blocks)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn snowflakes_increase_and_have_19_digits() {
        let ids = Snowflake::default();
        let a: u64 = ids.next().parse().unwrap();
        let b: u64 = ids.next().parse().unwrap();
        assert!(b > a);
        assert_eq!(a.to_string().len(), 19);
    }
}
