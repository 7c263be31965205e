//! Media upload v2 through a fake X: segments in order, finalize, STATUS polling, error classes,
//! and flat memory for a large file.

use super::*;

// ---------------------------------------------------------------- uploads

/// One part of a `multipart/form-data` body.
struct FormPart<'a> {
    name: String,
    file_name: Option<String>,
    data: &'a [u8],
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn quoted(headers: &str, key: &str) -> Option<String> {
    let at = headers.find(&format!("{key}=\""))? + key.len() + 2;
    let len = headers[at..].find('"')?;
    Some(headers[at..at + len].to_owned())
}

/// A strict little RFC 7578 reader: the fake's own, independent of the client's library.
fn multipart_parts<'a>(content_type: &str, body: &'a [u8]) -> Result<Vec<FormPart<'a>>, String> {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .ok_or("no boundary")?
        .trim_matches('"');
    let delimiter = format!("\r\n--{boundary}");
    let mut rest = body
        .strip_prefix(format!("--{boundary}").as_bytes())
        .ok_or("the body does not start with the boundary")?;
    let mut parts = Vec::new();
    while !rest.starts_with(b"--") {
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or("no CRLF after a boundary")?;
        let head_end = find(rest, b"\r\n\r\n").ok_or("no end of part headers")?;
        let head = std::str::from_utf8(&rest[..head_end]).map_err(|e| e.to_string())?;
        let disposition = head
            .lines()
            .find(|l| {
                l.to_ascii_lowercase()
                    .starts_with("content-disposition: form-data")
            })
            .ok_or("a part without form-data disposition")?;
        let after = &rest[head_end + 4..];
        let end = find(after, delimiter.as_bytes()).ok_or("no closing boundary")?;
        parts.push(FormPart {
            name: quoted(disposition, "name").ok_or("a part without a name")?,
            file_name: quoted(disposition, "filename"),
            data: &after[..end],
        });
        rest = &after[end + delimiter.len()..];
    }
    Ok(parts)
}

/// How the fake X media upload behaves, and what it saw.
struct UploadFake {
    /// `processing_info` of the finalize answer (`None`: ready at once).
    finalize_info: Option<Value>,
    /// Successive STATUS `processing_info`s (the last one repeats).
    status_infos: Vec<Value>,
    /// Keep the bytes (else only check them against [`pattern`]).
    keep: bool,
    append_status: u16,
    state: Mutex<UploadState>,
}

#[derive(Default)]
struct UploadState {
    initialize: Option<Value>,
    /// (segment_index, size, file name of the `media` part).
    segments: Vec<(u64, usize, Option<String>)>,
    data: Vec<u8>,
    received: u64,
    /// The first segment whose bytes were not the pattern's at their offset.
    bad_content: Option<u64>,
    finalized_at: Option<Instant>,
    polls: Vec<Instant>,
    errors: Vec<String>,
}

impl UploadFake {
    fn new(finalize_info: Option<Value>, status_infos: Vec<Value>) -> Arc<Self> {
        Arc::new(Self {
            finalize_info,
            status_infos,
            keep: true,
            append_status: 200,
            state: Mutex::default(),
        })
    }

    fn respond(&self, seen: &Seen) -> Response {
        let json_answer = |status: u16, v: Value| {
            let mut r = (StatusCode::from_u16(status).unwrap(), v.to_string()).into_response();
            r.headers_mut()
                .insert("content-type", HeaderValue::from_static("application/json"));
            r
        };
        let mut state = self.state.lock().unwrap();
        if !seen.signed_by(&default_token()) {
            state
                .errors
                .push(format!("unsigned {} {}", seen.method, seen.target));
            return json_answer(401, json!({"title": "Unauthorized", "status": 401}));
        }
        let path = seen.target.split('?').next().unwrap_or_default();
        match (seen.method.as_str(), path) {
            ("POST", "/2/media/upload/initialize") => {
                state.initialize = Some(seen.json());
                json_answer(
                    200,
                    json!({"data": {"id": MEDIA_ID, "media_key": format!("13_{MEDIA_ID}"), "expires_after_secs": 1_295_999}}),
                )
            }
            ("POST", p) if p == format!("/2/media/upload/{MEDIA_ID}/append") => {
                if self.append_status != 200 {
                    return json_answer(
                        self.append_status,
                        json!({"title": "Service Unavailable"}),
                    );
                }
                let content_type = seen.headers["content-type"].to_str().unwrap_or_default();
                let parts = match multipart_parts(content_type, &seen.body) {
                    Ok(parts) => parts
                        .into_iter()
                        .map(|p| (p.name, p.file_name, p.data.to_vec()))
                        .collect::<Vec<_>>(),
                    Err(e) => {
                        state.errors.push(e);
                        return json_answer(400, json!({"title": "Invalid Request"}));
                    }
                };
                let names: Vec<&str> = parts.iter().map(|p| p.0.as_str()).collect();
                if names != ["segment_index", "media"] {
                    state.errors.push(format!("parts {names:?}"));
                }
                let index: u64 = std::str::from_utf8(&parts[0].2).unwrap().parse().unwrap();
                let data = &parts[1].2;
                if !self.keep
                    && state.bad_content.is_none()
                    && *data != pattern_bytes(state.received, data.len())
                {
                    state.bad_content = Some(index);
                }
                if self.keep {
                    state.data.extend_from_slice(data);
                }
                state.received += data.len() as u64;
                state.segments.push((index, data.len(), parts[1].1.clone()));
                json_answer(200, json!({"data": {"expires_at": 1_775_080_934}}))
            }
            ("POST", p) if p == format!("/2/media/upload/{MEDIA_ID}/finalize") => {
                state.finalized_at = Some(Instant::now());
                let mut data = json!({"id": MEDIA_ID, "media_key": format!("13_{MEDIA_ID}"), "size": state.received, "expires_after_secs": 86_400});
                if let Some(info) = &self.finalize_info {
                    data["processing_info"] = info.clone();
                }
                json_answer(200, json!({"data": data}))
            }
            ("GET", "/2/media/upload") => {
                if seen.target != format!("/2/media/upload?command=STATUS&media_id={MEDIA_ID}") {
                    state.errors.push(format!("STATUS target {}", seen.target));
                }
                state.polls.push(Instant::now());
                let n = state.polls.len() - 1;
                let info = self.status_infos[n.min(self.status_infos.len() - 1)].clone();
                json_answer(
                    200,
                    json!({"data": {"id": MEDIA_ID, "media_key": format!("13_{MEDIA_ID}"), "processing_info": info}}),
                )
            }
            _ => {
                state
                    .errors
                    .push(format!("unexpected {} {}", seen.method, seen.target));
                json_answer(404, json!({"title": "Not Found"}))
            }
        }
    }
}

async fn upload_server(fake: &Arc<UploadFake>) -> Server {
    let fake = fake.clone();
    Server::routed(vec![(
        "/2/media/upload",
        route(move |seen| fake.respond(seen)),
    )])
    .await
}

fn file(name: &str, content_type: &str, length: u64, body: ByteStream) -> MediaStream {
    MediaStream {
        file_name: name.into(),
        content_type: content_type.into(),
        length,
        body,
    }
}

#[tokio::test]
async fn a_9_mb_video_goes_up_in_ordered_segments_and_waits_for_processing() {
    let fake = UploadFake::new(
        Some(json!({"state": "pending", "check_after_secs": 1})),
        vec![
            json!({"state": "in_progress", "check_after_secs": 1, "progress_percent": 40}),
            json!({"state": "succeeded", "progress_percent": 100}),
        ],
    );
    let server = upload_server(&fake).await;
    let length = 9 * MB + 12_345;
    // The source stream comes in odd-sized pieces, unrelated to the chunk size.
    let body = pattern_stream(length, 100_003);
    let id = server
        .client()
        .upload_media(
            &uid(BUSINESS),
            XMediaCategory::DmVideo,
            file("clip.mp4", "video/mp4", length, body),
        )
        .await
        .unwrap();
    assert_eq!(id, MEDIA_ID);

    let state = fake.state.lock().unwrap();
    assert!(state.errors.is_empty(), "{:?}", state.errors);
    assert_eq!(
        state.initialize,
        Some(
            json!({"media_type": "video/mp4", "total_bytes": length, "media_category": "dm_video"})
        )
    );
    let chunk = MEDIA_CHUNK_BYTES;
    let expected: Vec<(u64, usize, Option<String>)> = (0..10)
        .map(|i| {
            (
                i,
                if i < 9 { chunk } else { 12_345 },
                Some("media".to_owned()),
            )
        })
        .collect();
    assert_eq!(state.segments, expected);
    assert_eq!(
        state.data,
        pattern_bytes(0, length as usize),
        "concatenation = file"
    );

    // finalize once, then STATUS twice, each after check_after_secs.
    let finalized = state.finalized_at.unwrap();
    assert_eq!(state.polls.len(), 2);
    assert!(state.polls[0] - finalized >= Duration::from_millis(950));
    assert!(state.polls[1] - state.polls[0] >= Duration::from_millis(950));

    let requests = server.requests();
    let order: Vec<String> = requests
        .iter()
        .map(|r| format!("{} {}", r.method, r.target.replace(MEDIA_ID, "ID")))
        .collect();
    let mut want = vec!["POST /2/media/upload/initialize".to_owned()];
    want.extend((0..10).map(|_| "POST /2/media/upload/ID/append".to_owned()));
    want.push("POST /2/media/upload/ID/finalize".to_owned());
    want.extend((0..2).map(|_| "GET /2/media/upload?command=STATUS&media_id=ID".to_owned()));
    assert_eq!(order, want);
    for r in &requests {
        r.assert_signed_by(&default_token());
    }
    assert!(
        requests[1].headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("multipart/form-data; boundary=")
    );
}

#[tokio::test]
async fn an_image_ready_at_finalize_needs_no_status() {
    let fake = UploadFake::new(None, vec![]);
    let server = upload_server(&fake).await;
    let id = server
        .client()
        .upload_media(
            &uid(BUSINESS),
            XMediaCategory::DmImage,
            file(
                "receipt.png",
                "image/png",
                5_000,
                pattern_stream(5_000, 4_096),
            ),
        )
        .await
        .unwrap();
    assert_eq!(id, MEDIA_ID);
    let state = fake.state.lock().unwrap();
    assert!(state.errors.is_empty(), "{:?}", state.errors);
    assert_eq!(
        state.initialize,
        Some(
            json!({"media_type": "image/png", "total_bytes": 5_000, "media_category": "dm_image"})
        )
    );
    assert_eq!(state.segments.len(), 1);
    assert!(state.polls.is_empty());
}

#[tokio::test]
async fn processing_that_fails_is_invalid() {
    let fake = UploadFake::new(
        Some(json!({"state": "in_progress", "check_after_secs": 0})),
        vec![json!({"state": "failed", "progress_percent": 0,
            "error": {"code": 1, "name": "InvalidMedia", "message": "Unsupported video format"}})],
    );
    let server = upload_server(&fake).await;
    let e = server
        .client()
        .upload_media(
            &uid(BUSINESS),
            XMediaCategory::DmGif,
            file("a.gif", "image/gif", 2_000, pattern_stream(2_000, 512)),
        )
        .await
        .unwrap_err();
    assert_eq!(
        e,
        XError::Invalid("X could not process the file: Unsupported video format".into())
    );
    assert_eq!(fake.state.lock().unwrap().polls.len(), 1);
}

#[tokio::test]
async fn processing_that_never_ends_gives_up() {
    let fake = UploadFake::new(
        Some(json!({"state": "pending", "check_after_secs": 0})),
        vec![json!({"state": "in_progress", "check_after_secs": 0})],
    );
    let server = upload_server(&fake).await;
    let client = media_client_with(&server.url(), "ton.twitter.com", |c| {
        c.with_media_processing_limit(Duration::from_secs(1))
    });
    let e = client
        .upload_media(
            &uid(BUSINESS),
            XMediaCategory::DmVideo,
            file("v.mp4", "video/mp4", 10, pattern_stream(10, 10)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, XError::Unavailable(m) if m.contains("still processing")),
        "{e:?}"
    );
    // Polled, but not in a hot loop (at least 250 ms apart).
    let polls = fake.state.lock().unwrap().polls.len();
    assert!((1..=5).contains(&polls), "{polls} polls");
}

#[tokio::test]
async fn upload_errors_are_classified() {
    // X refuses a segment: its classification, and no finalize.
    let fake = Arc::new(UploadFake {
        finalize_info: None,
        status_infos: vec![],
        keep: true,
        append_status: 503,
        state: Mutex::default(),
    });
    let server = upload_server(&fake).await;
    let e = server
        .client()
        .upload_media(
            &uid(BUSINESS),
            XMediaCategory::DmImage,
            file("a.jpg", "image/jpeg", 10, pattern_stream(10, 10)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, XError::Unavailable(m) if m.contains("503")),
        "{e:?}"
    );
    assert!(fake.state.lock().unwrap().finalized_at.is_none());

    // The source stream fails halfway (the download side): Unavailable, no finalize.
    let fake = UploadFake::new(None, vec![]);
    let server = upload_server(&fake).await;
    let failing: ByteStream = Box::pin(pattern_stream(MB + 10, 65_536).take(20).chain(
        futures_util::stream::iter([Err(io::Error::other("connection reset by Connect"))]),
    ));
    let e = server
        .client()
        .upload_media(
            &uid(BUSINESS),
            XMediaCategory::DmVideo,
            file("v.mp4", "video/mp4", 3 * MB, failing),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, XError::Unavailable(m) if m.contains("connection reset by Connect")),
        "{e:?}"
    );
    {
        let state = fake.state.lock().unwrap();
        assert_eq!(state.segments.len(), 1, "the full first chunk was sent");
        assert!(state.finalized_at.is_none());
    }

    // A stream shorter than announced: Unavailable, no finalize.
    let fake = UploadFake::new(None, vec![]);
    let server = upload_server(&fake).await;
    let e = server
        .client()
        .upload_media(
            &uid(BUSINESS),
            XMediaCategory::DmImage,
            file("a.jpg", "image/jpeg", 1_000, pattern_stream(900, 100)),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, XError::Unavailable(_)), "{e:?}");
    assert!(fake.state.lock().unwrap().finalized_at.is_none());

    // initialize refused by X; and a file over the category's limit never reaches X.
    let server = Server::start(answer(
        400,
        r#"{"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","type":"https://api.x.com/2/problems/invalid-request"}"#,
    ))
    .await;
    let e = server
        .client()
        .upload_media(
            &uid(BUSINESS),
            XMediaCategory::DmImage,
            file("a.jpg", "image/jpeg", 10, pattern_stream(10, 10)),
        )
        .await
        .unwrap_err();
    assert_eq!(
        e,
        XError::Invalid("One or more parameters to your request was invalid.".into())
    );
    let before = server.requests().len();
    let e = server
        .client()
        .upload_media(
            &uid(BUSINESS),
            XMediaCategory::DmImage,
            file(
                "big.jpg",
                "image/jpeg",
                6 * MB,
                pattern_stream(6 * MB, 65_536),
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(
        e,
        XError::TooLarge {
            size: Some(6 * MB),
            limit: 5 * MB
        }
    );
    assert_eq!(server.requests().len(), before);
}

// ---------------------------------------------------------------- memory

const MEMORY_CHILD: &str = "XDM_X_TEST_MEMORY_CHILD";
const MEMORY_MARKER: &str = "upload memory:";

/// Resident set size in bytes (`VmRSS`: the `resident` field of /proc/self/statm, but in kB,
/// so independent of the page size).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs [`upload_memory_child`] alone in a fresh process of this test binary, so that no other
/// test's allocations blur the measurement.
#[test]
fn uploading_64_mb_keeps_memory_flat() {
    if rss_bytes().is_none() {
        eprintln!("no /proc/self/status: memory test skipped");
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "media::upload::upload_memory_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(MEMORY_CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stderr.contains(MEMORY_MARKER),
        "the child did not measure:\n{stdout}\n{stderr}"
    );
}

#[tokio::test]
async fn upload_memory_child() {
    if std::env::var_os(MEMORY_CHILD).is_none() {
        return; // run by `uploading_64_mb_keeps_memory_flat` in its own process
    }
    let fake = Arc::new(UploadFake {
        finalize_info: None,
        status_infos: vec![],
        keep: false,
        append_status: 200,
        state: Mutex::default(),
    });
    let server = upload_server(&fake).await;
    let client = server.client();
    let upload = |length: u64| {
        let client = client.clone();
        async move {
            client
                .upload_media(
                    &uid(BUSINESS),
                    XMediaCategory::DmVideo,
                    file(
                        "big.mp4",
                        "video/mp4",
                        length,
                        pattern_stream(length, 64 * 1024),
                    ),
                )
                .await
        }
    };
    // Warm up: connection pool, allocator arenas, buffers of every size the upload uses.
    upload(4 * MB).await.unwrap();
    fake.state.lock().unwrap().received = 0;

    let baseline = rss_bytes().unwrap();
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(baseline));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(rss) = rss_bytes() {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let length = 64 * MB;
    let id = upload(length).await.unwrap();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let after = rss_bytes().unwrap();
    let peak = peak.load(Ordering::Relaxed).max(after);
    assert_eq!(id, MEDIA_ID);

    let state = fake.state.lock().unwrap();
    assert!(state.errors.is_empty(), "{:?}", state.errors);
    assert_eq!(state.received, length);
    assert_eq!(
        state.bad_content, None,
        "segments arrived in order and intact"
    );
    assert_eq!(state.segments.len() as u64, 4 + length / MB);

    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "{MEMORY_MARKER} baseline {} KiB, peak {} KiB, after {} KiB, growth {} KiB",
        baseline / 1024,
        peak / 1024,
        after / 1024,
        growth / 1024
    );
    assert!(
        growth <= 16 * MB,
        "uploading 64 MB grew the RSS by {} KiB",
        growth / 1024
    );
}
