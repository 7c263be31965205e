//! [`XApi::upload_media`](xdm_core::ports::XApi::upload_media): X media upload v2, chunked
//! (docs/protocols.md A5; never the retired v1.1 endpoint, docs/aws.md, Migrating from the AWS sample):
//!
//! 1. `POST {api}/2/media/upload/initialize` JSON `{media_type, total_bytes, media_category}` → id;
//! 2. `POST {api}/2/media/upload/{id}/append`, `multipart/form-data` with `segment_index` and
//!    `media` (the bytes), one request per [`MEDIA_CHUNK_BYTES`] chunk, in order;
//! 3. `POST {api}/2/media/upload/{id}/finalize`;
//! 4. while `processing_info` says pending / in progress: wait `check_after_secs`, then
//!    `GET {api}/2/media/upload?command=STATUS&media_id={id}`, until `succeeded` (the id is
//!    returned) or `failed` (`Invalid` with X's message), within a bounded total wait
//!    (`Unavailable` after it).
//!
//! Every request is OAuth 1.0a-signed as the business account (the JSON and multipart bodies are
//! not signed; the STATUS query is). HTTP errors are classified by
//! [`error_from_response`](crate::error_from_response).
//!
//! Memory: the file is read from its stream one chunk at a time; a chunk is filled, sent, and
//! dropped before the next is read, so one chunk (plus at most one piece of the source stream)
//! is in memory, whatever the size of the file. The stream's length must be exact: a stream that
//! fails, ends early or runs long is `Unavailable` (the download side failed; retried).

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::Method;
use reqwest::multipart::{Form, Part};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use xdm_core::ids::XUserId;
use xdm_core::media::{ByteStream, MediaStream, XMediaCategory, content_type_for, essence};
use xdm_core::ports::XError;

use crate::client::XClient;
use crate::error::unexpected_body;
use crate::lenient;
use crate::transport::Answer;

/// The size of each `append` segment: 1 MiB.
///
/// * It is the size X's v2 chunked-upload docs use (docs/protocols.md A5); X documents no v2 maximum,
///   so going above the documented example risks a limit nobody can check offline.
/// * Memory: the upload keeps one chunk in memory, so concurrent uploads cost ~1 MiB each.
/// * Each `append` is one request with its own timeout (60 s by default): 1 MiB passes in that
///   time even at ~140 kbit/s, and a failed segment costs little to resend.
/// * Segment indexes go 0–999: 1,000 MiB, above the largest DM file (video, 512 MB); and the
///   append rate limit (1,875 / 15 min per user) is no concern for Connect attachments (≤ 20 MB,
///   so ≤ 20 appends).
pub const MEDIA_CHUNK_BYTES: usize = 1024 * 1024;

/// X accepts `segment_index` 0–999.
const MAX_SEGMENTS: u64 = 1000;
/// When `processing_info` has no `check_after_secs`.
const DEFAULT_CHECK_AFTER: Duration = Duration::from_secs(1);
/// The shortest wait between two STATUS polls, even if X says `check_after_secs: 0`.
const MIN_CHECK_AFTER: Duration = Duration::from_millis(250);

#[derive(Debug, Serialize)]
struct InitializeBody<'a> {
    media_type: &'a str,
    total_bytes: u64,
    media_category: &'a str,
}

/// The `{"data":{…}}` answers of initialize, finalize and STATUS.
#[derive(Debug, Deserialize)]
struct MediaAnswer {
    #[serde(default, deserialize_with = "lenient::object")]
    data: Option<MediaData>,
}

#[derive(Debug, Deserialize)]
struct MediaData {
    #[serde(default, deserialize_with = "lenient::string")]
    id: Option<String>,
    #[serde(default, deserialize_with = "lenient::object")]
    processing_info: Option<ProcessingInfo>,
}

#[derive(Debug, Clone, Deserialize)]
struct ProcessingInfo {
    #[serde(default, deserialize_with = "lenient::string")]
    state: Option<String>,
    #[serde(default, deserialize_with = "lenient::unsigned")]
    check_after_secs: Option<u64>,
    #[serde(default, deserialize_with = "lenient::unsigned")]
    progress_percent: Option<u64>,
    #[serde(default, deserialize_with = "lenient::object")]
    error: Option<ProcessingError>,
}

#[derive(Debug, Clone, Deserialize)]
struct ProcessingError {
    #[serde(default, deserialize_with = "lenient::string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    message: Option<String>,
}

impl ProcessingInfo {
    fn failure(&self) -> String {
        let why = self
            .error
            .as_ref()
            .and_then(|e| e.message.clone().or_else(|| e.name.clone()))
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| "no reason given".to_owned());
        format!("X could not process the file: {why}")
    }
}

/// The media id in a URL path and in a DM body: 1–19 digits (X's OpenAPI).
fn valid_media_id(id: &str) -> bool {
    (1..=19).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit())
}

pub(crate) async fn upload(
    client: &XClient,
    business: &XUserId,
    category: XMediaCategory,
    file: MediaStream,
) -> Result<String, XError> {
    let MediaStream {
        file_name,
        content_type,
        length,
        body,
    } = file;
    let media_type = Some(essence(&content_type))
        .filter(|t| !t.is_empty())
        .or_else(|| content_type_for(&file_name).map(str::to_owned))
        .ok_or_else(|| XError::Invalid("the file to upload has no content type".into()))?;
    if length == 0 {
        return Err(XError::Invalid("the file to upload is empty".into()));
    }
    let limit = category.max_bytes();
    if length > limit {
        return Err(XError::TooLarge {
            size: Some(length),
            limit,
        });
    }
    if length.div_ceil(MEDIA_CHUNK_BYTES as u64) > MAX_SEGMENTS {
        return Err(XError::TooLarge {
            size: Some(length),
            limit: MAX_SEGMENTS * MEDIA_CHUNK_BYTES as u64,
        });
    }

    let id = initialize(client, business, &media_type, length, category).await?;
    tracing::debug!(media_id = %id, bytes = length, category = category.as_str(), "media upload initialized");
    let segments = append_all(client, business, &id, body, length).await?;
    let processing = finalize(client, business, &id).await?;
    tracing::debug!(media_id = %id, segments, processing = processing.is_some(), "media upload finalized");
    wait_until_processed(client, business, &id, processing).await?;
    tracing::debug!(media_id = %id, "media ready on X");
    Ok(id)
}

async fn initialize(
    client: &XClient,
    business: &XUserId,
    media_type: &str,
    total_bytes: u64,
    category: XMediaCategory,
) -> Result<String, XError> {
    let url = client.endpoint("/2/media/upload/initialize")?;
    let body = InitializeBody {
        media_type,
        total_bytes,
        media_category: category.as_str(),
    };
    let answer = client
        .call(Method::POST, url, business, Some(&body))
        .await?
        .success()?;
    serde_json::from_slice::<MediaAnswer>(&answer.body)
        .ok()
        .and_then(|a| a.data)
        .and_then(|d| d.id)
        .filter(|id| valid_media_id(id))
        .ok_or_else(|| unexpected_body("a media upload initialize", &answer.body))
}

/// Sends the file in order, one chunk at a time; returns the number of segments.
async fn append_all(
    client: &XClient,
    business: &XUserId,
    id: &str,
    body: ByteStream,
    length: u64,
) -> Result<u64, XError> {
    let mut chunks = Chunks::new(body, length);
    let mut index = 0_u64;
    while let Some(chunk) = chunks
        .next_chunk()
        .await
        .map_err(|e| XError::Unavailable(format!("the file to upload could not be read: {e}")))?
    {
        append(client, business, id, index, chunk).await?;
        index += 1;
    }
    Ok(index)
}

async fn append(
    client: &XClient,
    business: &XUserId,
    id: &str,
    index: u64,
    chunk: Bytes,
) -> Result<(), XError> {
    let url = client.endpoint(&format!("/2/media/upload/{id}/append"))?;
    let size = chunk.len() as u64;
    let timeout = client.media_timeouts().append;
    // Built per attempt from the chunk held in memory: a 401 retried with a fresh OAuth 2.0
    // token re-sends this segment whole.
    client
        .call_with(Method::POST, url, business, move |request| {
            let media = Part::stream_with_length(reqwest::Body::from(chunk.clone()), size)
                .file_name("media")
                .mime_str("application/octet-stream")
                .map_err(|e| {
                    XError::Invalid(format!("cannot build the media upload request: {e}"))
                })?;
            let form = Form::new()
                .text("segment_index", index.to_string())
                .part("media", media);
            Ok(request.multipart(form).timeout(timeout))
        })
        .await?
        .success()?;
    tracing::trace!(media_id = %id, segment_index = index, bytes = size, "media segment sent");
    Ok(())
}

async fn finalize(
    client: &XClient,
    business: &XUserId,
    id: &str,
) -> Result<Option<ProcessingInfo>, XError> {
    let url = client.endpoint(&format!("/2/media/upload/{id}/finalize"))?;
    let answer = client.call::<()>(Method::POST, url, business, None).await?;
    processing_info(answer, "a media upload finalize")
}

async fn status(
    client: &XClient,
    business: &XUserId,
    id: &str,
) -> Result<Option<ProcessingInfo>, XError> {
    let mut url = client.endpoint("/2/media/upload")?;
    url.query_pairs_mut()
        .append_pair("command", "STATUS")
        .append_pair("media_id", id);
    let answer = client.call::<()>(Method::GET, url, business, None).await?;
    processing_info(answer, "a media upload STATUS")
}

fn processing_info(answer: Answer, what: &str) -> Result<Option<ProcessingInfo>, XError> {
    let answer = answer.success()?;
    match serde_json::from_slice::<MediaAnswer>(&answer.body)
        .ok()
        .and_then(|a| a.data)
    {
        Some(data) => Ok(data.processing_info),
        None => Err(unexpected_body(what, &answer.body)),
    }
}

/// Polls STATUS as long as X says the file is being processed, waiting `check_after_secs`
/// between polls, within the configured total wait.
async fn wait_until_processed(
    client: &XClient,
    business: &XUserId,
    id: &str,
    mut info: Option<ProcessingInfo>,
) -> Result<(), XError> {
    let limit = client.media_timeouts().processing;
    let deadline = Instant::now() + limit;
    loop {
        let Some(current) = info else {
            return Ok(());
        };
        match current.state.as_deref() {
            Some("succeeded") => return Ok(()),
            Some("failed") => {
                let why = current.failure();
                tracing::info!(media_id = %id, reason = %why, "X failed to process the media");
                return Err(XError::Invalid(why));
            }
            // `pending`, `in_progress`, or a state this code does not know yet: wait.
            _ => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(XError::Unavailable(format!(
                "X was still processing media {id} after {} s",
                limit.as_secs()
            )));
        }
        let wait = current
            .check_after_secs
            .map_or(DEFAULT_CHECK_AFTER, Duration::from_secs)
            .max(MIN_CHECK_AFTER)
            .min(deadline - now);
        tracing::debug!(
            media_id = %id,
            state = current.state.as_deref().unwrap_or("?"),
            progress = current.progress_percent,
            wait_ms = wait.as_millis() as u64,
            "X is processing the media"
        );
        tokio::time::sleep(wait).await;
        info = status(client, business, id).await?;
    }
}

/// The file's stream, cut into [`MEDIA_CHUNK_BYTES`] chunks, checked against its announced
/// length.
struct Chunks {
    body: ByteStream,
    /// The rest of a source piece that did not fit in the previous chunk.
    pending: Option<Bytes>,
    length: u64,
    read: u64,
}

impl Chunks {
    fn new(body: ByteStream, length: u64) -> Self {
        Self {
            body,
            pending: None,
            length,
            read: 0,
        }
    }

    /// The next chunk (full-sized but for the last), `None` after the announced length.
    async fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        let remaining = self.length - self.read;
        if remaining == 0 {
            return self.expect_end().await.map(|()| None);
        }
        let want = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(MEDIA_CHUNK_BYTES);
        let mut chunk = BytesMut::with_capacity(want);
        while chunk.len() < want {
            let piece = match self.pending.take() {
                Some(piece) => piece,
                None => match self.body.next().await {
                    Some(piece) => piece?,
                    None => {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!(
                                "it ended after {} of the {} bytes announced",
                                self.read + chunk.len() as u64,
                                self.length
                            ),
                        ));
                    }
                },
            };
            let room = want - chunk.len();
            if piece.len() > room {
                chunk.extend_from_slice(&piece[..room]);
                self.pending = Some(piece.slice(room..));
            } else {
                chunk.extend_from_slice(&piece);
            }
        }
        self.read += chunk.len() as u64;
        Ok(Some(chunk.freeze()))
    }

    /// After the announced length, the stream must end.
    async fn expect_end(&mut self) -> io::Result<()> {
        let extra = match self.pending.take() {
            Some(piece) if !piece.is_empty() => true,
            _ => loop {
                match self.body.next().await {
                    None => break false,
                    Some(Ok(piece)) if piece.is_empty() => continue,
                    Some(Ok(_)) => break true,
                    Some(Err(e)) => return Err(e),
                }
            },
        };
        if extra {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("it is longer than the {} bytes announced", self.length),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn stream(pieces: Vec<Vec<u8>>) -> ByteStream {
        Box::pin(futures_util::stream::iter(
            pieces.into_iter().map(|p| Ok(Bytes::from(p))),
        ))
    }

    async fn all_chunks(body: ByteStream, length: u64) -> io::Result<Vec<Bytes>> {
        let mut chunks = Chunks::new(body, length);
        let mut out = Vec::new();
        while let Some(c) = chunks.next_chunk().await? {
            out.push(c);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn chunks_are_full_sized_but_the_last_whatever_the_source_pieces() {
        let data: Vec<u8> = (0..(2 * MEDIA_CHUNK_BYTES + 10))
            .map(|i| (i % 251) as u8)
            .collect();
        // Pieces of odd sizes, one larger than a chunk.
        let mut pieces = Vec::new();
        let mut at = 0;
        for size in [7, MEDIA_CHUNK_BYTES + 3, 100_000, usize::MAX] {
            let end = at + size.min(data.len() - at);
            pieces.push(data[at..end].to_vec());
            at = end;
        }
        let chunks = all_chunks(stream(pieces), data.len() as u64).await.unwrap();
        let sizes: Vec<usize> = chunks.iter().map(Bytes::len).collect();
        assert_eq!(sizes, [MEDIA_CHUNK_BYTES, MEDIA_CHUNK_BYTES, 10]);
        assert_eq!(chunks.concat(), data);
    }

    #[tokio::test]
    async fn a_stream_shorter_longer_or_failing_is_an_error() {
        let e = all_chunks(stream(vec![vec![1; 10]]), 11).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let e = all_chunks(stream(vec![vec![1; 10], vec![2]]), 10)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        let e = all_chunks(stream(vec![vec![1; 12]]), 10).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        let failing: ByteStream = Box::pin(futures_util::stream::iter([
            Ok(Bytes::from_static(b"abc")),
            Err(io::Error::other("connection reset")),
        ]));
        let e = all_chunks(failing, 10).await.unwrap_err();
        assert_eq!(e.to_string(), "connection reset");
        // Empty pieces are harmless.
        let chunks = all_chunks(stream(vec![vec![], vec![5; 3], vec![]]), 3)
            .await
            .unwrap();
        assert_eq!(chunks.concat(), [5, 5, 5]);
    }

    #[test]
    fn media_ids_are_digits() {
        assert!(valid_media_id("1880028106020515840"));
        assert!(!valid_media_id(""));
        assert!(!valid_media_id("12345678901234567890"));
        assert!(!valid_media_id("1/../2"));
    }

    #[test]
    fn failures_carry_x_message() {
        let info: ProcessingInfo = serde_json::from_str(
            r#"{"state":"failed","progress_percent":0,"error":{"code":1,"name":"InvalidMedia","message":"Unsupported video format"}}"#,
        )
        .unwrap();
        assert_eq!(
            info.failure(),
            "X could not process the file: Unsupported video format"
        );
        let info: ProcessingInfo = serde_json::from_str(r#"{"state":"failed"}"#).unwrap();
        assert_eq!(
            info.failure(),
            "X could not process the file: no reason given"
        );
    }
}
