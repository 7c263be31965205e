//! Media sealed with a conversation key (docs/xchat.md §4): libsodium's secretstream
//! (XChaCha20-Poly1305) keyed with the conversation key itself, no associated data. The sealed
//! file is a 24-byte header, then one frame per 1024 bytes of the file — each the chunk plus 17
//! bytes (the encrypted tag byte and a 16-byte MAC) — the last frame tagged FINAL and every
//! other MESSAGE. An empty file is the header alone; a stream that ends without its FINAL frame
//! is refused as cut short.
//!
//! Both directions work on pieces as they come ([`MediaSealer`], [`MediaOpener`]): a file is
//! never held whole.

use crypto_secretstream::{Header, Key, PullStream, PushStream, Tag};

use crate::errors::XChatError;
use crate::seal::ConversationKey;

/// Plaintext bytes per frame.
pub const FRAME_PLAINTEXT: usize = 1024;
/// What a frame adds to its plaintext.
pub const FRAME_OVERHEAD: usize = 17;
/// The header's length.
pub const HEADER_LEN: usize = 24;
const FRAME_SEALED: usize = FRAME_PLAINTEXT + FRAME_OVERHEAD;

/// The sealed size of a file of `len` bytes (X's `encrypted_stream_size`).
pub fn sealed_len(len: u64) -> u64 {
    let frames = len.div_ceil(FRAME_PLAINTEXT as u64);
    HEADER_LEN as u64 + len + FRAME_OVERHEAD as u64 * frames
}

fn stream_key(key: &ConversationKey) -> Key {
    Key::from(*key.as_bytes())
}

/// Seals a file piece by piece.
pub struct MediaSealer {
    stream: PushStream,
    /// Plaintext not sealed yet: the last frame is only known at [`MediaSealer::finish`].
    pending: Vec<u8>,
}

impl std::fmt::Debug for MediaSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSealer").finish_non_exhaustive()
    }
}

impl MediaSealer {
    /// A sealer and the header that starts the sealed file.
    pub fn new(key: &ConversationKey) -> (Self, [u8; HEADER_LEN]) {
        let (header, stream) = PushStream::init(rand_core::OsRng, &stream_key(key));
        let sealer = Self {
            stream,
            pending: Vec::with_capacity(2 * FRAME_PLAINTEXT),
        };
        (sealer, *header.as_ref())
    }

    /// Takes the next piece of the file; returns the frames it completed (every frame but the
    /// last one, which [`MediaSealer::finish`] writes).
    pub fn push(&mut self, piece: &[u8]) -> Result<Vec<u8>, XChatError> {
        self.pending.extend_from_slice(piece);
        let mut out = Vec::new();
        // Keep at least one byte back: a frame is sealed only once it is known not to be last.
        let full = self.pending.len().saturating_sub(1) / FRAME_PLAINTEXT;
        for chunk in self.pending.chunks(FRAME_PLAINTEXT).take(full) {
            let mut frame = chunk.to_vec();
            self.stream
                .push(&mut frame, &[], Tag::Message)
                .map_err(|_| XChatError::Open)?;
            out.extend_from_slice(&frame);
        }
        self.pending.drain(..full * FRAME_PLAINTEXT);
        Ok(out)
    }

    /// The last frame (FINAL); nothing for an empty file.
    pub fn finish(mut self) -> Result<Vec<u8>, XChatError> {
        if self.pending.is_empty() {
            return Ok(Vec::new());
        }
        let mut frame = std::mem::take(&mut self.pending);
        self.stream
            .push(&mut frame, &[], Tag::Final)
            .map_err(|_| XChatError::Open)?;
        Ok(frame)
    }
}

/// Opens a sealed file piece by piece, refusing anything altered, reordered or cut short.
pub struct MediaOpener {
    key: Key,
    stream: Option<PullStream>,
    pending: Vec<u8>,
    finished: bool,
}

impl std::fmt::Debug for MediaOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaOpener")
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl MediaOpener {
    pub fn new(key: &ConversationKey) -> Self {
        Self {
            key: stream_key(key),
            stream: None,
            pending: Vec::with_capacity(2 * FRAME_SEALED),
            finished: false,
        }
    }

    /// Takes the next piece of the sealed file; returns the plaintext of the frames it completed.
    pub fn push(&mut self, piece: &[u8]) -> Result<Vec<u8>, XChatError> {
        self.pending.extend_from_slice(piece);
        if self.stream.is_none() {
            if self.pending.len() < HEADER_LEN {
                return Ok(Vec::new());
            }
            let header =
                Header::try_from(&self.pending[..HEADER_LEN]).map_err(|_| XChatError::Open)?;
            self.stream = Some(PullStream::init(header, &self.key));
            self.pending.drain(..HEADER_LEN);
        }
        // A full-size frame may still be the last: open frames only once more bytes follow
        // them, so that the last one is opened by `finish`.
        let full = self.pending.len().saturating_sub(1) / FRAME_SEALED;
        let mut out = Vec::new();
        let frames: Vec<u8> = self.pending.drain(..full * FRAME_SEALED).collect();
        for frame in frames.chunks(FRAME_SEALED) {
            if self.open_frame(frame, &mut out)? == Tag::Final {
                // Bytes after the FINAL frame.
                return Err(XChatError::Open);
            }
        }
        Ok(out)
    }

    fn open_frame(&mut self, frame: &[u8], out: &mut Vec<u8>) -> Result<Tag, XChatError> {
        if self.finished {
            return Err(XChatError::Open);
        }
        let stream = self.stream.as_mut().ok_or(XChatError::Open)?;
        let mut buffer = frame.to_vec();
        let tag = stream
            .pull(&mut buffer, &[])
            .map_err(|_| XChatError::Open)?;
        if tag == Tag::Final {
            self.finished = true;
        }
        out.extend_from_slice(&buffer);
        Ok(tag)
    }

    /// The plaintext of the last frame; an error when the file was cut short or did not end
    /// with its FINAL frame (an empty file — the header alone — is fine).
    pub fn finish(mut self) -> Result<Vec<u8>, XChatError> {
        if self.stream.is_none() {
            return Err(XChatError::Open);
        }
        let mut out = Vec::new();
        if self.pending.is_empty() {
            return Ok(out);
        }
        let frame = std::mem::take(&mut self.pending);
        if frame.len() > FRAME_SEALED || self.open_frame(&frame, &mut out)? != Tag::Final {
            return Err(XChatError::Open);
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn seal_all(key: &ConversationKey, data: &[u8], piece: usize) -> Vec<u8> {
        let (mut sealer, header) = MediaSealer::new(key);
        let mut out = header.to_vec();
        for p in data.chunks(piece.max(1)) {
            out.extend(sealer.push(p).unwrap());
        }
        out.extend(sealer.finish().unwrap());
        out
    }

    fn open_all(key: &ConversationKey, sealed: &[u8], piece: usize) -> Result<Vec<u8>, XChatError> {
        let mut opener = MediaOpener::new(key);
        let mut out = Vec::new();
        for p in sealed.chunks(piece.max(1)) {
            out.extend(opener.push(p)?);
        }
        out.extend(opener.finish()?);
        Ok(out)
    }

    #[test]
    fn any_size_round_trips_in_any_pieces_and_has_the_documented_size() {
        let key = ConversationKey::generate();
        for len in [0usize, 1, 1023, 1024, 1025, 2048, 2500, 5000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            for piece in [1, 17, 1024, 1041, 4096] {
                let sealed = seal_all(&key, &data, piece);
                assert_eq!(sealed.len() as u64, sealed_len(len as u64), "len {len}");
                for opened_piece in [1, 100, 1041, 9000] {
                    assert_eq!(open_all(&key, &sealed, opened_piece).unwrap(), data);
                }
            }
        }
    }

    #[test]
    fn cut_altered_or_extended_files_are_refused() {
        let key = ConversationKey::generate();
        let data = vec![9u8; 2500];
        let sealed = seal_all(&key, &data, 500);
        // Cut after the second frame: no FINAL.
        assert!(open_all(&key, &sealed[..HEADER_LEN + 2 * FRAME_SEALED], 300).is_err());
        let mut altered = sealed.clone();
        altered[HEADER_LEN + 10] ^= 1;
        assert!(open_all(&key, &altered, 300).is_err());
        let mut extended = sealed.clone();
        extended.extend_from_slice(&[0u8; 40]);
        assert!(open_all(&key, &extended, 300).is_err());
        assert!(open_all(&ConversationKey::generate(), &sealed, 300).is_err());
        assert!(open_all(&key, &sealed[..10], 300).is_err());
    }
}
