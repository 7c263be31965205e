//! Files the sandbox serves and receives: literal bytes, or a deterministic generator (size + seed
//! → bytes computed on the fly, never materialised), with the pure functions tests use to know a
//! generated file's bytes and SHA-256 without holding it.

use std::collections::HashMap;
use std::io;
use std::sync::{Mutex, OnceLock};

use aws_lc_rs::digest;
use bytes::Bytes;
use futures_util::Stream;
use serde::{Deserialize, Serialize};

use crate::sync::lock;

/// Generated content repeats a per-seed 64 KiB block whose first 8 bytes are replaced by a
/// per-block value, so every block differs and any reordering, loss or duplication changes the hash.
const BLOCK: usize = 64 * 1024;
/// Size of the chunks a served file is streamed in.
pub(crate) const CHUNK: usize = 64 * 1024;

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The bytes of generated files of one seed, at any offset.
#[derive(Debug, Clone)]
pub struct Generator {
    seed: u64,
    base: Box<[u8]>,
}

impl Generator {
    pub fn new(seed: u64) -> Self {
        let mut base = vec![0u8; BLOCK].into_boxed_slice();
        for (i, word) in base.chunks_exact_mut(8).enumerate() {
            word.copy_from_slice(&splitmix64(seed ^ splitmix64(i as u64)).to_le_bytes());
        }
        Self { seed, base }
    }

    fn block_tag(&self, block: u64) -> [u8; 8] {
        splitmix64(self.seed.rotate_left(29) ^ block.wrapping_mul(0xA076_1D64_78BD_642F))
            .to_le_bytes()
    }

    /// Fills `buf` with the bytes at `offset..offset + buf.len()` of any generated file of this seed
    /// (a file of size `n` is the first `n` bytes of an endless sequence).
    pub fn fill(&self, offset: u64, buf: &mut [u8]) {
        let mut pos = offset;
        let mut out = buf;
        while !out.is_empty() {
            let block = pos / BLOCK as u64;
            // `pos % BLOCK` is below BLOCK, which fits any usize.
            let within = usize::try_from(pos % BLOCK as u64).unwrap_or(0);
            let take = (BLOCK - within).min(out.len());
            let (head, rest) = out.split_at_mut(take);
            head.copy_from_slice(&self.base[within..within + take]);
            if within < 8 {
                let tag = self.block_tag(block);
                for (i, b) in head.iter_mut().enumerate().take(8 - within) {
                    *b = tag[within + i];
                }
            }
            pos += take as u64;
            out = rest;
        }
    }
}

/// The whole content of the generated file `(size, seed)`. Only for small files: large ones are
/// meant to be streamed ([`generated_stream`]) or hashed ([`generated_sha256`]).
pub fn generated_bytes(size: u64, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; usize::try_from(size).unwrap_or(usize::MAX)];
    Generator::new(seed).fill(0, &mut out);
    out
}

/// The generated file `(size, seed)` as a stream of 64 KiB chunks computed on the fly.
pub fn generated_stream(
    size: u64,
    seed: u64,
) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
    generated_range_stream(Generator::new(seed), 0, size)
}

pub(crate) fn generated_range_stream(
    generator: Generator,
    start: u64,
    end: u64,
) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
    futures_util::stream::unfold((generator, start), move |(generator, pos)| async move {
        if pos >= end {
            return None;
        }
        let len = usize::try_from((end - pos).min(CHUNK as u64)).unwrap_or(CHUNK);
        let mut chunk = vec![0u8; len];
        generator.fill(pos, &mut chunk);
        Some((Ok(Bytes::from(chunk)), (generator, pos + len as u64)))
    })
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, bytes).as_ref())
}

/// SHA-256 (lower-case hex) of the generated file `(size, seed)`, computed by streaming it through
/// the hash (remembered per `(size, seed)` for the life of the process).
pub fn generated_sha256(size: u64, seed: u64) -> String {
    static MEMO: OnceLock<Mutex<HashMap<(u64, u64), String>>> = OnceLock::new();
    let memo = MEMO.get_or_init(Mutex::default);
    if let Some(known) = lock(memo).get(&(size, seed)) {
        return known.clone();
    }
    let generator = Generator::new(seed);
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut buf = vec![0u8; 1024 * 1024];
    let mut pos = 0u64;
    while pos < size {
        let len = usize::try_from((size - pos).min(buf.len() as u64)).unwrap_or(buf.len());
        let chunk = &mut buf[..len];
        generator.fill(pos, chunk);
        ctx.update(chunk);
        pos += len as u64;
    }
    let sha = hex(ctx.finish().as_ref());
    lock(memo).insert((size, seed), sha.clone());
    sha
}

/// How a file's bytes are given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileContent {
    /// Literal bytes (JSON: standard base64, `{"bytes":"aGk="}`).
    Bytes(#[serde(with = "base64_bytes")] Vec<u8>),
    /// UTF-8 text (`{"text":"…"}`).
    Text(String),
    /// `size` bytes computed from `seed` whenever they are needed (`{"generated":{"size":…,"seed":…}}`).
    Generated { size: u64, seed: u64 },
}

mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// How the sandbox serves a file (knobs for download tests).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServeOptions {
    /// Send the body chunked, without `Content-Length` (tests spooling of unknown-length downloads).
    pub omit_content_length: bool,
    /// X media URLs answer `302 Found` with `Location: {redirect_to}/{file_id}/{name}` instead of
    /// the bytes (e.g. `redirect_to = "http://localhost:PORT/redirected"` — another host name).
    /// When that location is on this listener it serves the file (without auth) and its GETs are
    /// recorded too (kind `redirected`).
    pub redirect_to: Option<String>,
}

/// A file to register (`SandboxHandle::add_file`, `POST /_sandbox/media/files`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaFile {
    /// File name (`receipt.jpg`): the last path segment of the URLs serving it.
    pub name: String,
    /// MIME type sent as `Content-Type`.
    pub content_type: String,
    pub content: FileContent,
    #[serde(default)]
    pub serve: ServeOptions,
}

impl MediaFile {
    pub fn bytes(
        name: impl Into<String>,
        content_type: impl Into<String>,
        bytes: impl Into<Vec<u8>>,
    ) -> Self {
        Self {
            name: name.into(),
            content_type: content_type.into(),
            content: FileContent::Bytes(bytes.into()),
            serve: ServeOptions::default(),
        }
    }

    pub fn text(
        name: impl Into<String>,
        content_type: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            content_type: content_type.into(),
            content: FileContent::Text(text.into()),
            serve: ServeOptions::default(),
        }
    }

    /// `size` deterministic bytes from `seed` (see [`generated_bytes`], [`generated_sha256`]).
    pub fn generated(
        name: impl Into<String>,
        content_type: impl Into<String>,
        size: u64,
        seed: u64,
    ) -> Self {
        Self {
            name: name.into(),
            content_type: content_type.into(),
            content: FileContent::Generated { size, seed },
            serve: ServeOptions::default(),
        }
    }

    pub fn with_serve(mut self, serve: ServeOptions) -> Self {
        self.serve = serve;
        self
    }
}

/// Where a stored file came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FileOrigin {
    /// `add_file`.
    Registered,
    /// Made up by the sandbox for a DM's other URLs (low-bitrate variant, playlist, preview).
    Decoy,
    /// Received by X media upload v2.
    XUpload { media_id: String },
    /// Received by a Connect attachment PUT.
    ConnectUpload { attachment_id: String },
}

/// A stored file as the sandbox reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub file_id: String,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    /// SHA-256 of the content, lower-case hex (computed while streaming for uploads).
    pub sha256: String,
    pub origin: FileOrigin,
    /// `(size, seed)` when the content is generated (also when an upload's content turned out to
    /// be a generated file's: same size and SHA-256).
    pub generated: Option<(u64, u64)>,
    /// The sandbox can serve the bytes (false for large uploads it only hashed).
    pub retained: bool,
    pub serve: ServeOptions,
}

/// Where a stored file's bytes are.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Bytes(Bytes),
    Generated {
        size: u64,
        seed: u64,
    },
    /// Only size and hash are known.
    HashOnly,
}

#[derive(Debug, Clone)]
pub(crate) struct StoredFile {
    pub info: FileInfo,
    pub source: Source,
}

impl StoredFile {
    /// The file `spec` describes, hashed (generated content by streaming it once); its id is given
    /// when the registry stores it ([`crate::media::registry::MediaState::add`]).
    pub(crate) fn from_spec(spec: MediaFile, origin: FileOrigin) -> Self {
        let (source, size, sha256, generated) = match spec.content {
            FileContent::Bytes(bytes) => {
                let sha = sha256_hex(&bytes);
                let size = bytes.len() as u64;
                (Source::Bytes(Bytes::from(bytes)), size, sha, None)
            }
            FileContent::Text(text) => {
                let sha = sha256_hex(text.as_bytes());
                let size = text.len() as u64;
                (Source::Bytes(Bytes::from(text)), size, sha, None)
            }
            FileContent::Generated { size, seed } => (
                Source::Generated { size, seed },
                size,
                generated_sha256(size, seed),
                Some((size, seed)),
            ),
        };
        Self {
            info: FileInfo {
                file_id: String::new(),
                name: spec.name,
                content_type: spec.content_type,
                size,
                sha256,
                origin,
                generated,
                retained: true,
                serve: spec.serve,
            },
            source,
        }
    }
}

/// A running SHA-256 and length of bytes as they stream by, keeping the bytes while they stay
/// under `keep_limit`.
#[derive(Clone)]
pub(crate) struct HashSink {
    ctx: digest::Context,
    len: u64,
    keep_limit: u64,
    kept: Option<Vec<u8>>,
}

impl std::fmt::Debug for HashSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashSink")
            .field("len", &self.len)
            .field("kept", &self.kept.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

/// What a [`HashSink`] saw.
#[derive(Debug, Clone)]
pub(crate) struct Hashed {
    pub size: u64,
    pub sha256: String,
    pub bytes: Option<Bytes>,
}

impl HashSink {
    pub(crate) fn new(keep_limit: u64) -> Self {
        Self {
            ctx: digest::Context::new(&digest::SHA256),
            len: 0,
            keep_limit,
            kept: (keep_limit > 0).then(Vec::new),
        }
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.ctx.update(chunk);
        self.len += chunk.len() as u64;
        if self.len > self.keep_limit {
            self.kept = None;
        } else if let Some(kept) = &mut self.kept {
            kept.extend_from_slice(chunk);
        }
    }

    pub(crate) fn finish(self) -> Hashed {
        Hashed {
            size: self.len,
            sha256: hex(self.ctx.finish().as_ref()),
            bytes: self.kept.map(Bytes::from),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use futures_util::StreamExt as _;

    #[test]
    fn generation_is_deterministic_random_access_and_seeded() {
        let all = generated_bytes(300_000, 7);
        assert_eq!(all, generated_bytes(300_000, 7));
        assert_ne!(all, generated_bytes(300_000, 8));
        let g = Generator::new(7);
        for (offset, len) in [
            (0u64, 10usize),
            (5, 20),
            (65_530, 20),
            (131_072, 8),
            (299_990, 10),
        ] {
            let mut buf = vec![0u8; len];
            g.fill(offset, &mut buf);
            let at = usize::try_from(offset).unwrap();
            assert_eq!(buf, all[at..at + len], "offset {offset}");
        }
        // Blocks differ from each other.
        assert_ne!(all[..BLOCK], all[BLOCK..2 * BLOCK]);
        assert_eq!(all[8..BLOCK], all[BLOCK + 8..2 * BLOCK]);
    }

    #[test]
    fn generated_sha256_is_the_hash_of_the_bytes() {
        for size in [0u64, 1, 65_536, 65_537, 1_000_003] {
            assert_eq!(
                generated_sha256(size, 42),
                sha256_hex(&generated_bytes(size, 42))
            );
        }
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[tokio::test]
    async fn streams_and_sinks_agree() {
        let mut sink = HashSink::new(1024);
        let mut stream = std::pin::pin!(generated_stream(200_000, 3));
        let mut chunks = 0;
        while let Some(chunk) = stream.next().await {
            sink.push(&chunk.unwrap());
            chunks += 1;
        }
        assert_eq!(chunks, 4);
        let hashed = sink.finish();
        assert_eq!(hashed.size, 200_000);
        assert_eq!(hashed.sha256, generated_sha256(200_000, 3));
        assert!(hashed.bytes.is_none(), "over the keep limit");
        let mut small = HashSink::new(1024);
        small.push(b"hello ");
        small.push(b"world");
        let small = small.finish();
        assert_eq!(small.bytes.as_deref(), Some(&b"hello world"[..]));
    }

    #[test]
    fn content_serialises_as_documented() {
        let file = MediaFile::bytes("a.png", "image/png", b"hi".to_vec());
        let json = serde_json::to_value(&file).unwrap();
        assert_eq!(json["content"], serde_json::json!({"bytes": "aGk="}));
        let back: MediaFile = serde_json::from_value(json).unwrap();
        assert_eq!(back, file);
        let generated: FileContent =
            serde_json::from_str(r#"{"generated":{"size":10,"seed":1}}"#).unwrap();
        assert_eq!(generated, FileContent::Generated { size: 10, seed: 1 });
    }
}
