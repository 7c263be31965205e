//! Chat attachments against the fake of `connect_client.rs` playing both Connect's participant
//! API and S3 (pre-signed PUT / GET).

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use xdm_amazon_connect::{ConnectClient, ConnectConfig};
use xdm_core::chat_item::{AttachmentRef, AttachmentStatus};
use xdm_core::ids::ConnectionToken;
use xdm_core::media::{ByteStream, MediaStream};
use xdm_core::ports::{ConnectApi, ConnectError};

use crate::connect_client::{
    Download, FLOW, Fake, Framing, INSTANCE, PRESIGNED_SECRET, TOPIC, UPLOAD_ID, client, no_env,
    sdk_config,
};

const START: &str = "/participant/start-attachment-upload";
const COMPLETE: &str = "/participant/complete-attachment-upload";
const GET_ATTACHMENT: &str = "/participant/attachment";

fn connection() -> ConnectionToken {
    ConnectionToken::new("connection-token-secret")
}

fn client_with_idle_timeout(fake: &Fake, idle: Duration) -> ConnectClient {
    let mut config = ConnectConfig::new(INSTANCE, FLOW, TOPIC);
    config.transfer_read_timeout = idle;
    ConnectClient::with_env(config, &sdk_config(Some(&fake.base)), no_env).unwrap()
}

/// Deterministic bytes for `offset..offset+len` of a generated file (xorshift per 8 bytes).
fn pattern(seed: u64, offset: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut word = offset / 8;
    let mut skip = (offset % 8) as usize;
    while out.len() < len {
        let mut x = seed ^ word.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD6E8_FEB8_6659_FD93;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bytes = x.to_le_bytes();
        let take = (8 - skip).min(len - out.len());
        out.extend_from_slice(&bytes[skip..skip + take]);
        skip = 0;
        word += 1;
    }
    out
}

/// A generated file of `total` bytes as a stream of `chunk`-sized pieces, produced lazily.
fn generated(seed: u64, total: u64, chunk: usize) -> ByteStream {
    Box::pin(futures_util::stream::unfold(
        0u64,
        move |offset| async move {
            if offset >= total {
                return None;
            }
            let len = chunk.min((total - offset) as usize);
            let bytes = Bytes::from(pattern(seed, offset, len));
            Some((Ok(bytes), offset + len as u64))
        },
    ))
}

/// SHA-256 of the generated file, computed piecewise too.
fn generated_sha256(seed: u64, total: u64) -> Vec<u8> {
    let mut hasher = Sha256::new();
    let mut offset = 0;
    while offset < total {
        let len = (1 << 20).min(total - offset) as usize;
        hasher.update(pattern(seed, offset, len));
        offset += len as u64;
    }
    hasher.finalize().to_vec()
}

fn media(name: &str, content_type: &str, length: u64, body: ByteStream) -> MediaStream {
    MediaStream {
        file_name: name.into(),
        content_type: content_type.into(),
        length,
        body,
    }
}

/// The eight headers of a real StartAttachmentUpload answer (amazon-connect-chatjs#188),
/// in mixed case, for a file of `length` bytes.
fn real_headers(length: u64, content_type: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "x-amz-meta-contact_id".to_owned(),
            "da81f813-70b0-496e-91ed-70f48771c522".to_owned(),
        ),
        (
            "x-amz-meta-initial_contact_id".to_owned(),
            "da81f813-70b0-496e-91ed-70f48771c522".to_owned(),
        ),
        (
            "x-amz-acl".to_owned(),
            "bucket-owner-full-control".to_owned(),
        ),
        (
            "Content-Disposition".to_owned(),
            "attachment; filename=\"56102_photo.png\"".to_owned(),
        ),
        (
            "x-amz-meta-account_id".to_owned(),
            "643504311277".to_owned(),
        ),
        ("Content-Length".to_owned(), length.to_string()),
        ("Content-Type".to_owned(), content_type.to_owned()),
        (
            "x-amz-meta-organization_id".to_owned(),
            "30b0e238-b3bd-4f61-9f04-c0b24e4a2f74".to_owned(),
        ),
    ])
}

fn set_upload_headers(fake: &Fake, headers: BTreeMap<String, String>) {
    *fake.state.upload_headers.lock().unwrap() = headers;
}

fn assert_no_secrets(err: &ConnectError) {
    let text = format!("{err} {err:?}");
    assert!(!text.contains(PRESIGNED_SECRET), "{text}");
    assert!(!text.contains("X-Amz-Credential"), "{text}");
    assert!(!text.contains("connection-token-secret"), "{text}");
}

/// Resident anonymous memory of this process in bytes (`None` off Linux). `RssAnon` rather
/// than `VmRSS` (or statm's `resident`): code and debug info paged in by the other tests of this
/// binary running meanwhile are file-backed and would add noise; the heap is what a buffered
/// body would grow. Falls back to `VmRSS` on kernels without `RssAnon` (< 4.5).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    };
    field("RssAnon:").or_else(|| field("VmRSS:"))
}

#[tokio::test]
async fn upload_is_start_put_with_every_header_then_complete() {
    let fake = Fake::start().await;
    let client = client(&fake);
    let total = 300_001;
    set_upload_headers(&fake, real_headers(total, "image/png"));

    let id = client
        .upload_attachment(
            &connection(),
            media("photo.png", "image/png", total, generated(7, total, 17_000)),
            "x-dm-1-part-1",
        )
        .await
        .unwrap();
    assert_eq!(id, UPLOAD_ID);

    // StartAttachmentUpload: exact size, name, type and token, with the connection token.
    let r = fake.last(START);
    assert_eq!(r.header("x-amz-bearer"), "connection-token-secret");
    assert_eq!(
        r.json(),
        serde_json::json!({
            "ContentType": "image/png",
            "AttachmentSizeInBytes": total,
            "AttachmentName": "photo.png",
            "ClientToken": "x-dm-1-part-1",
        })
    );

    // The PUT: every header verbatim and once, a Content-Length, no chunking, no AWS auth.
    let puts = fake.puts();
    assert_eq!(puts.len(), 1);
    let put = &puts[0];
    assert_eq!(put.status, 200, "{put:?}");
    for (name, value) in real_headers(total, "image/png") {
        let values: Vec<_> = put.headers.get_all(name.as_str()).iter().collect();
        assert_eq!(values.len(), 1, "{name}");
        assert_eq!(values[0].as_bytes(), value.as_bytes(), "{name}");
    }
    assert_eq!(put.headers["content-length"], total.to_string().as_str());
    assert!(!put.headers.contains_key("transfer-encoding"));
    assert!(!put.headers.contains_key("authorization"));
    assert!(!put.headers.contains_key("x-amz-bearer"));
    assert!(!put.aborted);
    assert_eq!(put.length, total);
    assert_eq!(put.sha256, generated_sha256(7, total));

    // CompleteAttachmentUpload with the id, after the PUT.
    let r = fake.last(COMPLETE);
    assert_eq!(r.header("x-amz-bearer"), "connection-token-secret");
    assert_eq!(
        r.json(),
        serde_json::json!({"AttachmentIds": [UPLOAD_ID], "ClientToken": "x-dm-1-part-1"})
    );
    let order: Vec<String> = fake
        .requests()
        .into_iter()
        .map(|r| r.path)
        .filter(|p| p.contains("attachment") || p.starts_with("/s3/"))
        .collect();
    assert_eq!(
        order,
        [
            START.to_owned(),
            format!("/s3/connect-bucket/attachments/{UPLOAD_ID}"),
            COMPLETE.to_owned()
        ]
    );
}

#[tokio::test]
async fn upload_sets_length_and_type_when_connect_does_not_and_shortens_long_names() {
    let fake = Fake::start().await;
    let client = client(&fake);
    // Only metadata to include: Content-Length and Content-Type come from the file.
    set_upload_headers(
        &fake,
        BTreeMap::from([("x-amz-meta-contact_id".to_owned(), "c-1".to_owned())]),
    );
    let long_name = format!("{}.pdf", "informe-".repeat(40));
    client
        .upload_attachment(
            &connection(),
            media(&long_name, "application/pdf", 5000, generated(1, 5000, 999)),
            "t-2",
        )
        .await
        .unwrap();
    let name = fake.last(START).json()["AttachmentName"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(name.chars().count(), 256);
    assert!(
        name.starts_with("informe-informe-") && name.ends_with(".pdf"),
        "{name}"
    );

    let put = &fake.puts()[0];
    assert_eq!(put.status, 200);
    assert_eq!(put.headers["content-length"], "5000");
    assert_eq!(put.headers["content-type"], "application/pdf");
    assert_eq!(put.headers.get_all("content-type").iter().count(), 1);
    assert!(!put.headers.contains_key("transfer-encoding"));
    assert_eq!(put.sha256, generated_sha256(1, 5000));
}

#[tokio::test]
async fn start_refusals_are_attachment_refused_and_nothing_is_put() {
    let fake = Fake::start().await;
    let client = client(&fake);
    set_upload_headers(&fake, real_headers(10, "image/png"));
    let conn = connection();
    let upload = |token: &'static str| {
        client.upload_attachment(
            &conn,
            media("a.png", "image/png", 10, generated(2, 10, 10)),
            token,
        )
    };

    fake.script(
        START,
        (
            402,
            Some("ServiceQuotaExceededException"),
            r#"{"message":"The number of attachments per contact exceeds the quota."}"#,
        ),
    );
    let err = upload("q").await.unwrap_err();
    match &err {
        ConnectError::AttachmentRefused(why) => {
            assert!(why.contains("attachment limit"), "{why}");
            assert!(why.contains("exceeds the quota"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_retryable());

    fake.script(
        START,
        (
            400,
            Some("ValidationException"),
            r#"{"message":"Unsupported attachment file type"}"#,
        ),
    );
    let err = upload("v").await.unwrap_err();
    assert!(
        matches!(&err, ConnectError::AttachmentRefused(why) if why.contains("Unsupported attachment file type")),
        "{err:?}"
    );

    fake.script(
        START,
        (
            403,
            Some("AccessDeniedException"),
            r#"{"message":"Access denied"}"#,
        ),
    );
    let err = upload("d").await.unwrap_err();
    assert!(matches!(err, ConnectError::ChatEnded(_)), "{err:?}");

    fake.script(
        START,
        (
            429,
            Some("ThrottlingException"),
            r#"{"message":"Rate exceeded"}"#,
        ),
    );
    let err = upload("t").await.unwrap_err();
    assert!(matches!(err, ConnectError::Throttled(_)), "{err:?}");

    fake.script(START, (500, Some("InternalServerException"), "{}"));
    let err = upload("i").await.unwrap_err();
    assert!(matches!(err, ConnectError::Unavailable(_)), "{err:?}");

    assert!(fake.puts().is_empty());
    assert_eq!(fake.count(COMPLETE), 0);

    // An empty file never reaches Connect.
    let err = client
        .upload_attachment(
            &connection(),
            media("e.txt", "text/plain", 0, generated(0, 0, 1)),
            "e",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::AttachmentRefused(_)), "{err:?}");
}

#[tokio::test]
async fn s3_refusals_are_unavailable_with_the_s3_code_and_no_url() {
    let fake = Fake::start().await;
    let client = client(&fake);
    set_upload_headers(&fake, real_headers(4096, "image/png"));

    // S3 wants a header Connect did not list: the signature does not match.
    fake.state
        .s3_also_requires
        .lock()
        .unwrap()
        .push(("x-amz-meta-extra".to_owned(), "1".to_owned()));
    let err = client
        .upload_attachment(
            &connection(),
            media("a.png", "image/png", 4096, generated(3, 4096, 1000)),
            "s-1",
        )
        .await
        .unwrap_err();
    match &err {
        ConnectError::Unavailable(why) => {
            assert!(why.contains("HTTP 403 SignatureDoesNotMatch"), "{why}");
            assert!(why.contains("127.0.0.1"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_retryable());
    assert_no_secrets(&err);
    assert_eq!(fake.puts()[0].status, 403);
    assert_eq!(fake.count(COMPLETE), 0);
    fake.state.s3_also_requires.lock().unwrap().clear();

    // Any other S3 refusal (e.g. an expired URL).
    *fake.state.s3_put_error.lock().unwrap() = Some((403, "AccessDenied"));
    let err = client
        .upload_attachment(
            &connection(),
            media("a.png", "image/png", 4096, generated(3, 4096, 1000)),
            "s-2",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ConnectError::Unavailable(why) if why.contains("HTTP 403 AccessDenied")),
        "{err:?}"
    );
    assert_no_secrets(&err);
    assert_eq!(fake.count(COMPLETE), 0);
}

#[tokio::test]
async fn complete_failures() {
    let fake = Fake::start().await;
    let client = client(&fake);
    set_upload_headers(&fake, real_headers(100, "text/plain"));
    let conn = connection();
    let upload = |token: &'static str| {
        client.upload_attachment(
            &conn,
            media("a.txt", "text/plain", 100, generated(4, 100, 30)),
            token,
        )
    };

    fake.script(
        COMPLETE,
        (
            409,
            Some("ConflictException"),
            r#"{"message":"The upload is not finished"}"#,
        ),
    );
    let err = upload("c-1").await.unwrap_err();
    assert!(matches!(err, ConnectError::Unavailable(_)), "{err:?}");

    fake.script(
        COMPLETE,
        (
            402,
            Some("ServiceQuotaExceededException"),
            r#"{"message":"too many attachments"}"#,
        ),
    );
    let err = upload("c-2").await.unwrap_err();
    assert!(matches!(err, ConnectError::AttachmentRefused(_)), "{err:?}");

    fake.script(
        COMPLETE,
        (
            403,
            Some("AccessDeniedException"),
            r#"{"message":"denied"}"#,
        ),
    );
    let err = upload("c-3").await.unwrap_err();
    assert!(matches!(err, ConnectError::ChatEnded(_)), "{err:?}");

    fake.unscript(COMPLETE);
    assert_eq!(upload("c-4").await.unwrap(), UPLOAD_ID);
}

#[tokio::test]
async fn a_failing_or_wrong_sized_source_is_unavailable() {
    let fake = Fake::start().await;
    let client = client_with_idle_timeout(&fake, Duration::from_millis(400));
    set_upload_headers(&fake, real_headers(50_000, "image/png"));

    // The source breaks off half-way.
    let broken: ByteStream = Box::pin(generated(5, 20_000, 10_000).chain(
        futures_util::stream::once(async {
            Err(io::Error::new(io::ErrorKind::ConnectionReset, "X hung up"))
        }),
    ));
    let err = client
        .upload_attachment(
            &connection(),
            media("a.png", "image/png", 50_000, broken),
            "b-1",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ConnectError::Unavailable(why) if why.contains("reading the file failed after 20000 of 50000 bytes") && why.contains("X hung up")),
        "{err:?}"
    );
    assert_no_secrets(&err);

    // Shorter than announced.
    let err = client
        .upload_attachment(
            &connection(),
            media("a.png", "image/png", 50_000, generated(5, 49_999, 10_000)),
            "b-2",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ConnectError::Unavailable(why) if why.contains("the file ended after 49999 of the announced 50000 bytes")),
        "{err:?}"
    );

    // Longer than announced.
    let err = client
        .upload_attachment(
            &connection(),
            media("a.png", "image/png", 50_000, generated(5, 50_001, 10_000)),
            "b-3",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ConnectError::Unavailable(why) if why.contains("the file is longer than the announced 50000 bytes")),
        "{err:?}"
    );

    // Stalls: the idle timeout ends it.
    let stalled: ByteStream =
        Box::pin(generated(5, 10_000, 10_000).chain(futures_util::stream::pending()));
    let started = std::time::Instant::now();
    let err = client
        .upload_attachment(
            &connection(),
            media("a.png", "image/png", 50_000, stalled),
            "b-4",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ConnectError::Unavailable(why) if why.contains("no progress")),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    assert_eq!(fake.count(COMPLETE), 0);
    assert!(fake.puts().iter().all(|p| p.status != 200));
}

#[tokio::test]
async fn a_32_mb_upload_streams_in_bounded_memory() {
    const MB: u64 = 1024 * 1024;
    let fake = Fake::start().await;
    let client = client(&fake);

    // Warm-up: connection pool, TLS-less HTTP machinery, allocator arenas.
    set_upload_headers(&fake, real_headers(MB, "application/pdf"));
    client
        .upload_attachment(
            &connection(),
            media("w.pdf", "application/pdf", MB, generated(8, MB, 64 * 1024)),
            "w",
        )
        .await
        .unwrap();

    let total = 32 * MB;
    set_upload_headers(&fake, real_headers(total, "application/pdf"));
    let before = rss_bytes();
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(rss_bytes().unwrap_or(0));
                std::thread::sleep(Duration::from_millis(5));
            }
            peak.max(rss_bytes().unwrap_or(0))
        })
    };
    let id = client
        .upload_attachment(
            &connection(),
            media(
                "big.pdf",
                "application/pdf",
                total,
                generated(9, total, 64 * 1024),
            ),
            "big",
        )
        .await
        .unwrap();
    done.store(true, Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    assert_eq!(id, UPLOAD_ID);

    let put = fake.puts().pop().unwrap();
    assert_eq!(put.status, 200);
    assert_eq!(put.length, total);
    assert_eq!(put.headers["content-length"], total.to_string().as_str());
    assert!(!put.headers.contains_key("transfer-encoding"));
    assert_eq!(put.sha256, generated_sha256(9, total));

    match before {
        Some(before) => {
            let grown = peak.saturating_sub(before);
            assert!(
                grown < 16 * MB,
                "RSS grew by {} MB while streaming 32 MB",
                grown / MB
            );
        }
        None => eprintln!("no /proc/self/status: RSS not checked"),
    }
}

fn attachment(id: &str, name: &str, content_type: &str) -> AttachmentRef {
    AttachmentRef {
        attachment_id: id.into(),
        name: name.into(),
        content_type: content_type.into(),
        status: AttachmentStatus::Approved,
    }
}

fn serve(fake: &Fake, id: &str, download: Download) {
    fake.state
        .downloads
        .lock()
        .unwrap()
        .insert(id.to_owned(), download);
}

fn download(announced: i64, body: Vec<u8>, framing: Framing) -> Download {
    Download {
        announced,
        body: Bytes::from(body),
        content_type: None,
        framing,
        error: None,
    }
}

async fn read_all(file: MediaStream) -> (Vec<u8>, Option<io::Error>) {
    let mut body = file.body;
    let mut out = Vec::new();
    while let Some(item) = body.next().await {
        match item {
            Ok(chunk) => out.extend_from_slice(&chunk),
            Err(e) => {
                assert!(body.next().await.is_none(), "items after an error");
                return (out, Some(e));
            }
        }
    }
    (out, None)
}

#[tokio::test]
async fn open_attachment_streams_exactly_the_announced_bytes() {
    let fake = Fake::start().await;
    let client = client(&fake);
    let bytes = pattern(11, 0, 123_457);
    serve(
        &fake,
        "a-1",
        Download {
            content_type: Some("image/png"),
            ..download(123_457, bytes.clone(), Framing::Length)
        },
    );
    let file = client
        .open_attachment(
            &connection(),
            &attachment("a-1", "Screenshot.png", "image/jpeg"),
        )
        .await
        .unwrap();
    let r = fake.last(GET_ATTACHMENT);
    assert_eq!(r.header("x-amz-bearer"), "connection-token-secret");
    assert_eq!(
        r.json(),
        serde_json::json!({"AttachmentId": "a-1", "UrlExpiryInSeconds": 300})
    );
    assert_eq!(file.file_name, "Screenshot.png");
    assert_eq!(file.content_type, "image/png");
    assert_eq!(file.length, 123_457);
    let (got, err) = read_all(file).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(Sha256::digest(&got), Sha256::digest(&bytes));

    // A generic type from S3: the chat item's type is kept. Chunked framing works too.
    serve(
        &fake,
        "a-2",
        Download {
            content_type: Some("application/octet-stream"),
            ..download(20_000, pattern(12, 0, 20_000), Framing::Chunked)
        },
    );
    let file = client
        .open_attachment(
            &connection(),
            &attachment("a-2", "doc.pdf", "application/pdf"),
        )
        .await
        .unwrap();
    assert_eq!(file.content_type, "application/pdf");
    let (got, err) = read_all(file).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(got, pattern(12, 0, 20_000));
}

#[tokio::test]
async fn a_download_of_the_wrong_size_is_a_stream_error() {
    let fake = Fake::start().await;
    let client = client_with_idle_timeout(&fake, Duration::from_millis(400));

    // Shorter than announced.
    serve(
        &fake,
        "short",
        download(30_000, pattern(1, 0, 29_000), Framing::Chunked),
    );
    let file = client
        .open_attachment(&connection(), &attachment("short", "a.png", "image/png"))
        .await
        .unwrap();
    assert_eq!(file.length, 30_000);
    let (got, err) = read_all(file).await;
    assert_eq!(got.len(), 29_000);
    assert_eq!(err.unwrap().kind(), io::ErrorKind::UnexpectedEof);

    // Longer than announced.
    serve(
        &fake,
        "long",
        download(30_000, pattern(1, 0, 31_000), Framing::Chunked),
    );
    let file = client
        .open_attachment(&connection(), &attachment("long", "a.png", "image/png"))
        .await
        .unwrap();
    let (got, err) = read_all(file).await;
    assert!(got.len() <= 30_000);
    assert_eq!(err.unwrap().kind(), io::ErrorKind::InvalidData);

    // A Content-Length that contradicts GetAttachment: refused before the first byte.
    serve(
        &fake,
        "mismatch",
        download(30_000, pattern(1, 0, 10), Framing::Length),
    );
    let err = client
        .open_attachment(&connection(), &attachment("mismatch", "a.png", "image/png"))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Unavailable(_)), "{err:?}");

    // Stalls mid-body: the idle timeout ends the stream.
    serve(
        &fake,
        "stall",
        download(30_000, pattern(1, 0, 14_000), Framing::Stall),
    );
    let file = client
        .open_attachment(&connection(), &attachment("stall", "a.png", "image/png"))
        .await
        .unwrap();
    let (got, err) = tokio::time::timeout(Duration::from_secs(5), read_all(file))
        .await
        .unwrap();
    assert_eq!(got.len(), 14_000);
    let err = err.unwrap();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(!err.to_string().contains(PRESIGNED_SECRET), "{err}");
}

#[tokio::test]
async fn open_attachment_errors() {
    let fake = Fake::start().await;
    let client = client(&fake);
    let a = attachment("a-9", "a.png", "image/png");
    serve(&fake, "a-9", download(10, vec![1; 10], Framing::Length));

    fake.script(
        GET_ATTACHMENT,
        (
            403,
            Some("AccessDeniedException"),
            r#"{"message":"the chat has already been terminated"}"#,
        ),
    );
    let err = client.open_attachment(&connection(), &a).await.unwrap_err();
    assert!(matches!(err, ConnectError::ChatEnded(_)), "{err:?}");

    fake.script(
        GET_ATTACHMENT,
        (
            400,
            Some("ValidationException"),
            r#"{"message":"Attachment is not approved"}"#,
        ),
    );
    let err = client.open_attachment(&connection(), &a).await.unwrap_err();
    assert!(matches!(err, ConnectError::Invalid(_)), "{err:?}");
    fake.unscript(GET_ATTACHMENT);

    // S3 refuses the GET (expired URL …): Unavailable with its code, no URL.
    serve(
        &fake,
        "a-9",
        Download {
            error: Some((403, "AccessDenied")),
            ..download(10, vec![1; 10], Framing::Length)
        },
    );
    let err = client.open_attachment(&connection(), &a).await.unwrap_err();
    assert!(
        matches!(&err, ConnectError::Unavailable(why) if why.contains("HTTP 403 AccessDenied")),
        "{err:?}"
    );
    assert_no_secrets(&err);

    // Connect unreachable.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = ConnectClient::with_env(
        ConnectConfig::new(INSTANCE, FLOW, TOPIC),
        &sdk_config(Some(&dead)),
        no_env,
    )
    .unwrap();
    let err = client.open_attachment(&connection(), &a).await.unwrap_err();
    assert!(matches!(err, ConnectError::Unavailable(_)), "{err:?}");
}
