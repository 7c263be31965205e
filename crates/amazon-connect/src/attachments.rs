//! Chat attachments through the participant API (docs/protocols.md B2), as the customer.
//!
//! * Upload: `StartAttachmentUpload` (exact size, name, type, client token) → `PUT` of the file
//!   to the pre-signed S3 URL with **every** `HeadersToInclude` header verbatim and an explicit
//!   `Content-Length` (S3 pre-signed PUTs refuse chunked bodies) → `CompleteAttachmentUpload`.
//! * Download: `GetAttachment` → `GET` of the pre-signed URL, handed on as a stream of exactly
//!   the announced size.
//!
//! Files are streamed both ways, never collected. The S3 transfers use a plain reqwest client
//! (no AWS signing: the URL is the credential, so only its host is ever logged; no redirects).
//! Instead of a total timeout (big files take time) every transfer has an *idle* timeout: it
//! fails when no byte moves for [`ConnectConfig::transfer_read_timeout`](crate::ConnectConfig).
//! reqwest's own `read_timeout` is not used: before the response head it is a single deadline
//! from the start of the request, so it would also cap the time spent sending the body.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use aws_sdk_connectparticipant::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use xdm_core::chat_item::AttachmentRef;
use xdm_core::ids::ConnectionToken;
use xdm_core::media::{ByteStream, MediaStream, essence, extension_for};
use xdm_core::metric_names::{self, PLATFORM_CONNECT};
use xdm_core::ports::ConnectError;

use crate::config::ConfigError;
use crate::errors::{Plane, from_sdk_error, sanitize_error_code, truncate};

/// `UrlExpiryInSeconds` of GetAttachment (the API's maximum, 5..=300).
pub const URL_EXPIRY_SECONDS: i32 = 300;
/// `AttachmentName` is 1..=256 characters.
pub const MAX_ATTACHMENT_NAME_CHARS: usize = 256;
/// Connect timeout of the S3 transfers.
pub const TRANSFER_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest extension kept when a long name is shortened.
const MAX_KEPT_EXTENSION_CHARS: usize = 16;
/// Largest S3 response body read (error documents, the empty PUT answer).
const MAX_S3_RESPONSE_BYTES: usize = 64 * 1024;

/// The attachment operations: the participant SDK client plus one plain HTTP client for the
/// pre-signed S3 URLs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Attachments {
    sdk: aws_sdk_connectparticipant::Client,
    http: reqwest::Client,
    idle_timeout: Duration,
}

impl Attachments {
    /// `idle_timeout`: how long a transfer may go without moving a byte (and how long S3 may take
    /// to answer once the body is sent).
    pub fn new(
        sdk: aws_sdk_connectparticipant::Client,
        idle_timeout: Duration,
    ) -> Result<Self, ConfigError> {
        let http = reqwest::Client::builder()
            .connect_timeout(TRANSFER_CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .tcp_keepalive(Duration::from_secs(30))
            .build()
            .map_err(|e| ConfigError::HttpClient(e.to_string()))?;
        Ok(Self {
            sdk,
            http,
            idle_timeout,
        })
    }

    /// Attaches `file` to the chat as the customer; returns the attachment id.
    ///
    /// Errors: ServiceQuotaExceededException (35 per chat) and a ValidationException from
    /// StartAttachmentUpload (type, size) are [`ConnectError::AttachmentRefused`]; AccessDenied is
    /// `ChatEnded`; any failure of the S3 PUT (non-2xx, transport, the file's own stream failing
    /// or not matching `file.length`) is `Unavailable` — a retry gets a fresh URL; a
    /// ConflictException from CompleteAttachmentUpload is `Unavailable`.
    pub async fn upload_attachment(
        &self,
        connection: &ConnectionToken,
        file: MediaStream,
        client_token: &str,
    ) -> Result<String, ConnectError> {
        const START: &str = "StartAttachmentUpload";
        const COMPLETE: &str = "CompleteAttachmentUpload";
        if file.length == 0 {
            return Err(ConnectError::AttachmentRefused("the file is empty".into()));
        }
        let size = i64::try_from(file.length).map_err(|_| {
            ConnectError::AttachmentRefused(format!(
                "the file is too large ({} bytes)",
                file.length
            ))
        })?;
        let name = attachment_name(&file.file_name, &file.content_type);

        let out = self
            .sdk
            .start_attachment_upload()
            .connection_token(connection.expose())
            .content_type(&file.content_type)
            .attachment_size_in_bytes(size)
            .attachment_name(&name)
            .client_token(client_token)
            .send()
            .await
            .map_err(|e| attachment_error(START, &e, true))?;
        let attachment_id = out
            .attachment_id()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                ConnectError::Unavailable(format!("{START}: no AttachmentId in the response"))
            })?
            .to_owned();
        let meta = out.upload_metadata().ok_or_else(|| {
            ConnectError::Unavailable(format!("{START}: no UploadMetadata in the response"))
        })?;
        let url = meta.url().filter(|u| !u.is_empty()).ok_or_else(|| {
            ConnectError::Unavailable(format!("{START}: no UploadMetadata.Url in the response"))
        })?;
        let headers = upload_headers(meta.headers_to_include(), &file)?;

        self.put_to_s3(url, headers, file.body, file.length).await?;

        self.sdk
            .complete_attachment_upload()
            .connection_token(connection.expose())
            .attachment_ids(&attachment_id)
            .client_token(client_token)
            .send()
            .await
            .map_err(|e| attachment_error(COMPLETE, &e, false))?;
        tracing::debug!(%attachment_id, bytes = file.length, "attachment uploaded to the chat");
        Ok(attachment_id)
    }

    /// Opens an approved attachment of the chat: GetAttachment (URL valid 300 s) → GET, as a
    /// stream that errors if the body is shorter or longer than `AttachmentSizeInBytes`.
    ///
    /// Errors: AccessDenied is `ChatEnded`; ValidationException (e.g. not approved) is
    /// `Invalid`; any failure of the GET is `Unavailable`.
    pub async fn open_attachment(
        &self,
        connection: &ConnectionToken,
        attachment: &AttachmentRef,
    ) -> Result<MediaStream, ConnectError> {
        const OP: &str = "GetAttachment";
        const GET: &str = "attachment download";
        let out = self
            .sdk
            .get_attachment()
            .connection_token(connection.expose())
            .attachment_id(&attachment.attachment_id)
            .url_expiry_in_seconds(URL_EXPIRY_SECONDS)
            .send()
            .await
            .map_err(|e| from_sdk_error(Plane::Participant, OP, &e))?;
        let url = out
            .url()
            .filter(|u| !u.is_empty())
            .ok_or_else(|| ConnectError::Unavailable(format!("{OP}: no Url in the response")))?;
        let length = u64::try_from(out.attachment_size_in_bytes()).map_err(|_| {
            ConnectError::Unavailable(format!(
                "{OP}: negative AttachmentSizeInBytes ({})",
                out.attachment_size_in_bytes()
            ))
        })?;
        let (url, host) = presigned_url(GET, url)?;
        tracing::debug!(
            attachment_id = %attachment.attachment_id,
            host = %host,
            bytes = length,
            "downloading an attachment"
        );

        let send = self.http.get(url).send();
        let response = match tokio::time::timeout(self.idle_timeout, send).await {
            Err(_) => {
                return Err(ConnectError::Unavailable(format!(
                    "{GET} ({host}): no answer within {:?}",
                    self.idle_timeout
                )));
            }
            Ok(Err(e)) => return Err(transport_error(GET, &host, e)),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if !status.is_success() {
            return Err(self.s3_failure(GET, &host, response).await);
        }
        if let Some(announced) = response.content_length()
            && announced != length
        {
            return Err(ConnectError::Unavailable(format!(
                "{GET} ({host}): Content-Length {announced} but GetAttachment announced {length} bytes"
            )));
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|ct| is_specific_content_type(ct))
            .map_or_else(|| attachment.content_type.clone(), str::to_owned);
        let body = ExactLength::new(download_stream(response), "the download", length)
            .with_idle_timeout(self.idle_timeout);
        Ok(MediaStream {
            file_name: attachment.name.clone(),
            content_type,
            length,
            body: Box::pin(body),
        })
    }

    /// PUTs the body to the pre-signed URL, with `headers` exactly.
    async fn put_to_s3(
        &self,
        url: &str,
        headers: HeaderMap,
        body: ByteStream,
        length: u64,
    ) -> Result<(), ConnectError> {
        const PUT: &str = "attachment upload";
        let (url, host) = presigned_url(PUT, url)?;
        let progress = Arc::new(AtomicU64::new(0));
        let source_error = Arc::new(Mutex::new(None));
        let body = ExactLength::new(body, "the file", length)
            .with_progress(progress.clone())
            .with_failure_slot(source_error.clone());
        let mut request = self
            .http
            .put(url)
            .body(reqwest::Body::wrap_stream(body))
            .build()
            .map_err(|e| transport_error(PUT, &host, e))?;
        *request.headers_mut() = headers;
        tracing::debug!(host = %host, bytes = length, "uploading an attachment");

        let sent =
            with_idle_timeout(self.http.execute(request), &progress, self.idle_timeout).await;
        // The file's own stream failing (or not matching its length) explains whatever S3 or
        // hyper said next.
        let source_failure = source_error.lock().ok().and_then(|mut slot| slot.take());
        if let Some(why) = source_failure {
            return Err(ConnectError::Unavailable(format!("{PUT} ({host}): {why}")));
        }
        let response = match sent {
            None => {
                return Err(ConnectError::Unavailable(format!(
                    "{PUT} ({host}): no progress for {:?} (after {} of {length} bytes)",
                    self.idle_timeout,
                    progress.load(Ordering::Relaxed)
                )));
            }
            Some(Err(e)) => return Err(transport_error(PUT, &host, e)),
            Some(Ok(response)) => response,
        };
        if !response.status().is_success() {
            return Err(self.s3_failure(PUT, &host, response).await);
        }
        // S3's answer is empty; reading it lets the connection be reused.
        read_limited(response, self.idle_timeout).await;
        Ok(())
    }

    /// A non-2xx answer of S3: `Unavailable` with S3's error `Code` (and `Message`).
    async fn s3_failure(
        &self,
        what: &str,
        host: &str,
        response: reqwest::Response,
    ) -> ConnectError {
        let status = response.status().as_u16();
        metric_names::platform_error(PLATFORM_CONNECT, format!("s3_{status}"));
        let body = read_limited(response, self.idle_timeout).await;
        let (code, message) = parse_s3_error(&body);
        let mut text = format!("{what} ({host}): HTTP {status}");
        if let Some(code) = &code {
            text.push_str(&format!(" {code}"));
        }
        if let Some(message) = &message {
            text.push_str(&format!(": {message}"));
        }
        tracing::debug!(
            host,
            status,
            code = code.as_deref().unwrap_or("-"),
            "S3 refused an attachment transfer"
        );
        ConnectError::Unavailable(text)
    }
}

/// The `AttachmentName` for a file name: verbatim when it has 1..=256 characters; longer names
/// are shortened keeping their extension; an empty name becomes `attachment[.ext]`.
pub fn attachment_name(file_name: &str, content_type: &str) -> String {
    if file_name.trim().is_empty() {
        return match extension_for(content_type) {
            Some(ext) => format!("attachment.{ext}"),
            None => "attachment".to_owned(),
        };
    }
    if file_name.chars().count() <= MAX_ATTACHMENT_NAME_CHARS {
        return file_name.to_owned();
    }
    match file_name.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty()
                && !ext.is_empty()
                && ext.chars().count() <= MAX_KEPT_EXTENSION_CHARS =>
        {
            let keep = MAX_ATTACHMENT_NAME_CHARS - ext.chars().count() - 1;
            let stem: String = stem.chars().take(keep).collect();
            format!("{stem}.{ext}")
        }
        _ => file_name.chars().take(MAX_ATTACHMENT_NAME_CHARS).collect(),
    }
}

/// The PUT's headers: every `HeadersToInclude` header verbatim (names are case-insensitive,
/// values are bytes as given), plus `Content-Length` (and `Content-Type`) when Connect did not
/// include them. Header values are never logged: they are part of a signature.
fn upload_headers(
    include: Option<&std::collections::HashMap<String, String>>,
    file: &MediaStream,
) -> Result<HeaderMap, ConnectError> {
    const OP: &str = "StartAttachmentUpload";
    let mut headers = HeaderMap::new();
    for (name, value) in include.into_iter().flatten() {
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            ConnectError::Unavailable(format!(
                "{OP}: unusable header name {:?} in HeadersToInclude",
                truncate(name)
            ))
        })?;
        let value = HeaderValue::from_bytes(value.as_bytes()).map_err(|_| {
            ConnectError::Unavailable(format!(
                "{OP}: unusable value for header {header} in HeadersToInclude"
            ))
        })?;
        if let Some(previous) = headers.insert(header.clone(), value.clone())
            && previous != value
        {
            return Err(ConnectError::Unavailable(format!(
                "{OP}: HeadersToInclude has conflicting values for {header}"
            )));
        }
    }
    match headers.get(CONTENT_LENGTH) {
        Some(signed) => {
            let signed = signed
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok());
            if signed != Some(file.length) {
                return Err(ConnectError::Invalid(format!(
                    "{OP}: HeadersToInclude Content-Length {} does not match the file's {} bytes",
                    signed.map_or_else(|| "(unreadable)".to_owned(), |n| n.to_string()),
                    file.length
                )));
            }
        }
        None => {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(file.length));
        }
    }
    if !headers.contains_key(CONTENT_TYPE) {
        // What a browser sends for a typed Blob when Connect did not sign a type.
        if let Ok(value) = HeaderValue::from_str(&file.content_type) {
            headers.insert(CONTENT_TYPE, value);
        }
    }
    Ok(headers)
}

/// Classifies an attachment operation's SDK failure. `start`: StartAttachmentUpload, where a
/// ValidationException is a refusal of the file (type, size).
fn attachment_error<E>(op: &str, err: &SdkError<E, HttpResponse>, start: bool) -> ConnectError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let SdkError::ServiceError(ctx) = err {
        let status = ctx.raw().status().as_u16();
        let code = ctx.err().code().map(sanitize_error_code);
        let message = ctx
            .err()
            .message()
            .map(|m| truncate(m.trim().trim_end_matches('.')))
            .filter(|m| !m.is_empty());
        let with_message = |what: &str| match &message {
            Some(m) => format!("{what} ({m})"),
            None => what.to_owned(),
        };
        let quota =
            code == Some("ServiceQuotaExceededException") || (code.is_none() && status == 402);
        if quota {
            return ConnectError::AttachmentRefused(with_message(
                "the chat has reached Amazon Connect's attachment limit",
            ));
        }
        if start && code == Some("ValidationException") {
            return ConnectError::AttachmentRefused(with_message("Amazon Connect refused it"));
        }
        if code == Some("ConflictException") {
            // CompleteAttachmentUpload before S3 has the file, or a concurrent completion: the
            // whole upload is retried (with a fresh URL).
            return ConnectError::Unavailable(format!(
                "{op}: ConflictException (HTTP {status}){}",
                message.map(|m| format!(": {m}")).unwrap_or_default()
            ));
        }
    }
    from_sdk_error(Plane::Participant, op, err)
}

/// Parses a pre-signed URL; errors and logs name only its host (the query is a credential).
fn presigned_url(what: &str, raw: &str) -> Result<(url::Url, String), ConnectError> {
    let url = url::Url::parse(raw)
        .map_err(|_| ConnectError::Unavailable(format!("{what}: unusable pre-signed URL")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(ConnectError::Unavailable(format!(
            "{what}: pre-signed URL with scheme {:?}",
            url.scheme()
        )));
    }
    let host = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => {
            return Err(ConnectError::Unavailable(format!(
                "{what}: pre-signed URL without a host"
            )));
        }
    };
    Ok((url, host))
}

/// A transport failure of an S3 transfer, without the URL reqwest would print.
fn transport_error(what: &str, host: &str, err: reqwest::Error) -> ConnectError {
    let (kind, code) = if err.is_timeout() {
        ("timed out", "timeout")
    } else if err.is_connect() {
        ("could not connect", "connect")
    } else {
        ("failed", "transport")
    };
    metric_names::platform_error(PLATFORM_CONNECT, code);
    let text = format!("{what} ({host}) {kind}: {}", error_chain(err.without_url()));
    ConnectError::Unavailable(text)
}

/// Runs a request whose body bumps `progress`; `None` when neither the request nor the body
/// moved for `idle`.
async fn with_idle_timeout<F: Future>(
    request: F,
    progress: &AtomicU64,
    idle: Duration,
) -> Option<F::Output> {
    let mut request = std::pin::pin!(request);
    let mut seen = progress.load(Ordering::Relaxed);
    loop {
        match tokio::time::timeout(idle, request.as_mut()).await {
            Ok(out) => return Some(out),
            Err(_) => {
                let now = progress.load(Ordering::Relaxed);
                if now == seen {
                    return None;
                }
                seen = now;
            }
        }
    }
}

/// Up to [`MAX_S3_RESPONSE_BYTES`] of a (small) S3 response body; whatever arrived when it
/// fails or stalls.
async fn read_limited(mut response: reqwest::Response, idle: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout(idle, response.chunk()).await {
        let room = MAX_S3_RESPONSE_BYTES.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= MAX_S3_RESPONSE_BYTES {
            break;
        }
    }
    out
}

/// `Code` and `Message` of an S3 error document (`<Error><Code>…</Code><Message>…`). Nothing
/// else is kept: other elements (`StringToSign`, `CanonicalRequest`) echo the signed request.
pub fn parse_s3_error(body: &[u8]) -> (Option<String>, Option<String>) {
    let text = String::from_utf8_lossy(body);
    let element = |name: &str| -> Option<String> {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = text.find(&open)? + open.len();
        let len = text[start..].find(&close)?;
        Some(text[start..start + len].trim().to_owned())
    };
    let code = element("Code").filter(|c| {
        !c.is_empty() && c.len() <= 64 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
    });
    let message = element("Message")
        .map(|m| m.chars().filter(|c| !c.is_control()).collect::<String>())
        .filter(|m| !m.is_empty())
        .map(|m| truncate(&m));
    (code, message)
}

/// Whether a download's `Content-Type` says more than "some bytes".
fn is_specific_content_type(content_type: &str) -> bool {
    let ct = essence(content_type);
    !ct.is_empty()
        && ct.contains('/')
        && !matches!(
            ct.as_str(),
            "application/octet-stream" | "binary/octet-stream" | "application/binary"
        )
}

/// A stream of exactly `length` bytes: an error item if the inner stream fails, ends early or
/// goes on past `length`. The chunk that completes `length` is held back until the inner
/// stream has ended, so that a longer source is noticed even by a reader (hyper with a
/// `Content-Length`, an uploader that counts) that stops at `length`. After an error, the
/// stream ends.
struct ExactLength {
    inner: ByteStream,
    /// "the file", "the download": for messages.
    label: &'static str,
    length: u64,
    remaining: u64,
    held: Option<Bytes>,
    /// Bumped by every chunk taken from `inner` (the upload's idle detection).
    progress: Option<Arc<AtomicU64>>,
    /// Why the stream failed, for the caller that only sees hyper's error.
    failure: Option<Arc<Mutex<Option<String>>>>,
    /// Idle timeout of the consumer's waits: (limit, timer, armed).
    idle: Option<(Duration, Pin<Box<tokio::time::Sleep>>, bool)>,
    done: bool,
}

impl ExactLength {
    fn new(inner: ByteStream, label: &'static str, length: u64) -> Self {
        Self {
            inner,
            label,
            length,
            remaining: length,
            held: None,
            progress: None,
            failure: None,
            idle: None,
            done: false,
        }
    }

    fn with_progress(mut self, progress: Arc<AtomicU64>) -> Self {
        self.progress = Some(progress);
        self
    }

    fn with_failure_slot(mut self, slot: Arc<Mutex<Option<String>>>) -> Self {
        self.failure = Some(slot);
        self
    }

    fn with_idle_timeout(mut self, idle: Duration) -> Self {
        self.idle = Some((idle, Box::pin(tokio::time::sleep(idle)), false));
        self
    }

    fn received(&self) -> u64 {
        self.length - self.remaining
    }

    fn fail(&mut self, kind: io::ErrorKind, why: String) -> Poll<Option<io::Result<Bytes>>> {
        self.done = true;
        self.held = None;
        if let Some(slot) = &self.failure
            && let Ok(mut slot) = slot.lock()
        {
            slot.get_or_insert_with(|| why.clone());
        }
        Poll::Ready(Some(Err(io::Error::new(kind, why))))
    }

    fn pending(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        let stalled = match &mut self.idle {
            Some((limit, timer, armed)) => {
                if !*armed {
                    timer.as_mut().reset(tokio::time::Instant::now() + *limit);
                    *armed = true;
                }
                timer.as_mut().poll(cx).is_ready().then_some(*limit)
            }
            None => None,
        };
        match stalled {
            Some(limit) => {
                let why = format!(
                    "{} stalled for {limit:?} after {} of {} bytes",
                    self.label,
                    self.received(),
                    self.length
                );
                self.fail(io::ErrorKind::TimedOut, why)
            }
            None => Poll::Pending,
        }
    }
}

impl Stream for ExactLength {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            let item = match self.inner.as_mut().poll_next(cx) {
                Poll::Pending => return self.pending(cx),
                Poll::Ready(item) => item,
            };
            if let Some((_, _, armed)) = &mut self.idle {
                *armed = false;
            }
            match item {
                Some(Ok(chunk)) => {
                    let n = chunk.len() as u64;
                    if let Some(progress) = &self.progress {
                        progress.fetch_add(n.max(1), Ordering::Relaxed);
                    }
                    if n == 0 {
                        continue;
                    }
                    if n > self.remaining || self.held.is_some() {
                        let why = format!(
                            "{} is longer than the announced {} bytes",
                            self.label, self.length
                        );
                        return self.fail(io::ErrorKind::InvalidData, why);
                    }
                    self.remaining -= n;
                    if self.remaining > 0 {
                        return Poll::Ready(Some(Ok(chunk)));
                    }
                    // The last chunk: handed on once the inner stream has ended.
                    self.held = Some(chunk);
                }
                Some(Err(e)) => {
                    let why = format!(
                        "reading {} failed after {} of {} bytes: {e}",
                        self.label,
                        self.received(),
                        self.length
                    );
                    return self.fail(e.kind(), why);
                }
                None if self.remaining > 0 => {
                    let why = format!(
                        "{} ended after {} of the announced {} bytes",
                        self.label,
                        self.received(),
                        self.length
                    );
                    return self.fail(io::ErrorKind::UnexpectedEof, why);
                }
                None => {
                    self.done = true;
                    return Poll::Ready(self.held.take().map(Ok));
                }
            }
        }
    }
}

/// reqwest's body stream as `io::Result`s, its errors without the URL.
fn download_stream(response: reqwest::Response) -> ByteStream {
    Box::pin(response.bytes_stream().map(|item| {
        item.map_err(|e| {
            let kind = if e.is_timeout() {
                io::ErrorKind::TimedOut
            } else {
                io::ErrorKind::Other
            };
            io::Error::new(kind, error_chain(e.without_url()))
        })
    }))
}

/// An error and its sources, `: `-separated.
fn error_chain(err: impl std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn file(length: u64, content_type: &str) -> MediaStream {
        MediaStream {
            file_name: "f.png".into(),
            content_type: content_type.into(),
            length,
            body: Box::pin(futures_util::stream::empty()),
        }
    }

    #[test]
    fn names_are_kept_or_shortened_keeping_the_extension() {
        assert_eq!(
            attachment_name("T7xt1pvd.jpg", "image/jpeg"),
            "T7xt1pvd.jpg"
        );
        assert_eq!(attachment_name("", "image/jpeg"), "attachment.jpg");
        assert_eq!(attachment_name("  ", "application/x-unknown"), "attachment");
        let exact = format!("{}.pdf", "a".repeat(252));
        assert_eq!(attachment_name(&exact, "application/pdf"), exact);

        let long = format!("{}.pdf", "ñ".repeat(300));
        let short = attachment_name(&long, "application/pdf");
        assert_eq!(short.chars().count(), MAX_ATTACHMENT_NAME_CHARS);
        assert!(short.ends_with("ñ.pdf"), "{short}");

        let no_ext = "x".repeat(400);
        assert_eq!(attachment_name(&no_ext, "text/plain").chars().count(), 256);
        let silly_ext = format!("a.{}", "e".repeat(300));
        assert_eq!(
            attachment_name(&silly_ext, "text/plain").chars().count(),
            256
        );
    }

    #[test]
    fn headers_are_verbatim_with_an_explicit_length() {
        let include = HashMap::from([
            ("x-amz-meta-contact_id".to_owned(), "c-1".to_owned()),
            (
                "x-amz-acl".to_owned(),
                "bucket-owner-full-control".to_owned(),
            ),
            (
                "Content-Disposition".to_owned(),
                "attachment; filename=\"56102_file.txt\"".to_owned(),
            ),
            ("Content-Length".to_owned(), "9".to_owned()),
            ("Content-Type".to_owned(), "text/plain".to_owned()),
        ]);
        let h = upload_headers(Some(&include), &file(9, "text/plain; charset=utf-8")).unwrap();
        assert_eq!(h.len(), 5);
        assert_eq!(
            h["content-disposition"],
            "attachment; filename=\"56102_file.txt\""
        );
        assert_eq!(h["content-type"], "text/plain");
        assert_eq!(h["content-length"], "9");

        // Nothing to include: length and type are still sent.
        let h = upload_headers(None, &file(12, "image/png")).unwrap();
        assert_eq!(h["content-length"], "12");
        assert_eq!(h["content-type"], "image/png");

        // A signed length that is not the file's is a bug somewhere: never sent.
        let err = upload_headers(Some(&include), &file(10, "text/plain")).unwrap_err();
        assert!(matches!(err, ConnectError::Invalid(_)), "{err:?}");

        // Same header twice (case) with different values.
        let conflicting = HashMap::from([
            ("Content-Type".to_owned(), "text/plain".to_owned()),
            ("content-type".to_owned(), "image/png".to_owned()),
        ]);
        let err = upload_headers(Some(&conflicting), &file(1, "text/plain")).unwrap_err();
        assert!(matches!(err, ConnectError::Unavailable(_)), "{err:?}");

        let bad = HashMap::from([("x-amz-meta-a".to_owned(), "line\nbreak".to_owned())]);
        let err = upload_headers(Some(&bad), &file(1, "text/plain")).unwrap_err();
        assert!(!err.to_string().contains("line"), "{err}");
    }

    #[test]
    fn s3_errors_keep_code_and_message_only() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided. Check your key and signing method.</Message><AWSAccessKeyId>ASIAXXX</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256 secret</StringToSign></Error>"#;
        let (code, message) = parse_s3_error(body);
        assert_eq!(code.as_deref(), Some("SignatureDoesNotMatch"));
        assert!(message.unwrap().starts_with("The request signature"));
        assert_eq!(parse_s3_error(b"<html>nope</html>"), (None, None));
        assert_eq!(parse_s3_error(b"<Code>a b<script></Code>").0, None);
    }

    #[test]
    fn generic_content_types_are_not_specific() {
        assert!(is_specific_content_type("image/png"));
        assert!(is_specific_content_type("Text/Plain; charset=utf-8"));
        assert!(!is_specific_content_type("application/octet-stream"));
        assert!(!is_specific_content_type("binary/octet-stream"));
        assert!(!is_specific_content_type(""));
        assert!(!is_specific_content_type("nonsense"));
    }

    #[test]
    fn presigned_urls_are_reported_by_host_only() {
        let (_, host) =
            presigned_url("x", "https://b.s3.amazonaws.com/k?X-Amz-Signature=abc").unwrap();
        assert_eq!(host, "b.s3.amazonaws.com");
        let err = presigned_url("x", "not a url ?X-Amz-Signature=abc").unwrap_err();
        assert!(!err.to_string().contains("abc"), "{err}");
    }
}
