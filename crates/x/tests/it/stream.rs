//! The activity stream through the fake: line framing across chunks, keep-alives, the silence
//! timeout, in-stream disconnects, the line-length bound and the opening errors.

use std::io;

use axum::body::Body;
use xdm_x::manage::AppClient;
use xdm_x::stream::{MAX_LINE_BYTES, StreamError};

use super::*;

/// A streamed answer: each piece after its delay; then the body ends (or hangs for `hang`).
fn streamed(pieces: Vec<(u64, Vec<u8>)>, hang: Duration) -> Responder {
    Arc::new(move |_: &Seen| {
        let pieces = pieces.clone();
        let body = futures_util::stream::unfold(
            (pieces.into_iter(), false),
            move |(mut rest, hung)| async move {
                match rest.next() {
                    Some((delay, bytes)) => {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                        Some((Ok::<_, io::Error>(Bytes::from(bytes)), (rest, hung)))
                    }
                    None if !hung && !hang.is_zero() => {
                        tokio::time::sleep(hang).await;
                        None
                    }
                    None => None,
                }
            },
        );
        (StatusCode::OK, Body::from_stream(body)).into_response()
    })
}

fn app(server: &Server) -> AppClient {
    AppClient::new(&server.url(), "app-bearer").unwrap()
}

const LONG: Duration = Duration::from_secs(5);

#[tokio::test]
async fn lines_split_and_shared_across_chunks_with_keepalives() {
    let pieces = vec![
        (0, b"\r\n{\"data\":{\"n\":1}}\n{\"da".to_vec()),
        (20, b"ta\":{\"n\":2}}\r".to_vec()),
        (
            20,
            b"\n\r\n\r\n{\"data\":{\"n\":3}}\r\n{\"data\":{\"n\":4}}".to_vec(),
        ),
    ];
    let server = Server::routed(vec![(
        "/2/activity/stream",
        streamed(pieces, Duration::ZERO),
    )])
    .await;
    let mut stream = app(&server).open_activity_stream(2).await.unwrap();
    for n in 1..=4 {
        let event = stream.next_event(LONG).await.unwrap();
        assert_eq!(event, format!("{{\"data\":{{\"n\":{n}}}}}").as_bytes());
    }
    assert_eq!(stream.next_event(LONG).await, Err(StreamError::Closed));
    let req = server.only_request();
    assert_eq!(req.target, "/2/activity/stream?backfill_minutes=2");
    assert_eq!(req.headers["authorization"], "Bearer app-bearer");
}

#[tokio::test]
async fn keepalives_hold_the_line_and_silence_ends_it() {
    // Keep-alives every 100 ms for 0.5 s, then an event, then nothing.
    let mut pieces: Vec<(u64, Vec<u8>)> = (0..5).map(|_| (100, b"\r\n".to_vec())).collect();
    pieces.push((100, b"{\"data\":{\"n\":1}}\r\n".to_vec()));
    let server = Server::routed(vec![("/2/activity/stream", streamed(pieces, LONG))]).await;
    let mut stream = app(&server).open_activity_stream(0).await.unwrap();
    let silence = Duration::from_millis(400);
    let event = stream.next_event(silence).await.unwrap();
    assert_eq!(event, b"{\"data\":{\"n\":1}}".as_slice());
    let started = std::time::Instant::now();
    assert_eq!(stream.next_event(silence).await, Err(StreamError::Silent));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(server.only_request().target, "/2/activity/stream");
}

#[tokio::test]
async fn an_error_object_in_the_stream_is_a_disconnect() {
    let pieces = vec![
        (0, b"{\"data\":{\"n\":1}}\r\n".to_vec()),
        (0, br#"{"errors":[{"title":"operational-disconnect","disconnect_type":"UpstreamOperationalDisconnect","detail":"This stream has been disconnected upstream for operational reasons.","type":"https://api.x.com/2/problems/operational-disconnect"}]}"#.to_vec()),
        (0, b"\r\n".to_vec()),
    ];
    let server = Server::routed(vec![(
        "/2/activity/stream",
        streamed(pieces, Duration::ZERO),
    )])
    .await;
    let mut stream = app(&server).open_activity_stream(0).await.unwrap();
    stream.next_event(LONG).await.unwrap();
    let e = stream.next_event(LONG).await.unwrap_err();
    assert_eq!(
        e,
        StreamError::Disconnect(
            "operational-disconnect: This stream has been disconnected upstream for operational reasons.".into()
        )
    );
}

#[tokio::test]
async fn an_endless_line_is_refused() {
    let chunk = vec![b'a'; 256 * 1024];
    let pieces: Vec<(u64, Vec<u8>)> = (0..6).map(|_| (0, chunk.clone())).collect();
    let server = Server::routed(vec![("/2/activity/stream", streamed(pieces, LONG))]).await;
    let mut stream = app(&server).open_activity_stream(0).await.unwrap();
    assert_eq!(
        stream.next_event(LONG).await,
        Err(StreamError::LineTooLong {
            limit: MAX_LINE_BYTES
        })
    );
}

#[tokio::test]
async fn opening_errors_are_classified() {
    let mut too_many = answer(
        429,
        r#"{"title":"ConnectionException","detail":"This stream is currently at the maximum allowed connection limit.","connection_issue":"TooManyConnections","type":"https://api.x.com/2/problems/streaming-connection"}"#,
    );
    too_many
        .headers
        .push(("x-rate-limit-reset", "1775080999".to_owned()));
    let server = Server::start(too_many).await;
    assert_eq!(
        app(&server).open_activity_stream(0).await.unwrap_err(),
        StreamError::TooManyConnections {
            reset_at_s: Some(1_775_080_999)
        }
    );
    let server = Server::start(answer(429, r#"{"title":"Too Many Requests"}"#)).await;
    assert_eq!(
        app(&server).open_activity_stream(0).await.unwrap_err(),
        StreamError::RateLimited { reset_at_s: None }
    );
    let server = Server::start(answer(
        401,
        r#"{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}"#,
    ))
    .await;
    assert_eq!(
        app(&server).open_activity_stream(0).await.unwrap_err(),
        StreamError::Unauthorized("Unauthorized".into())
    );
    let server = Server::start(answer(503, "")).await;
    assert!(matches!(
        app(&server).open_activity_stream(0).await.unwrap_err(),
        StreamError::Http { status: 503, .. }
    ));
    let e = app(&server).open_activity_stream(6).await.unwrap_err();
    assert!(matches!(e, StreamError::Invalid(_)), "{e:?}");
    assert_eq!(server.requests().len(), 1);
}
