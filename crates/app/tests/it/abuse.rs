//! Hostile clients on loopback, bounded (a few seconds, a hundred connections): idle
//! connections beyond the cap, a slowloris trickling its headers, bodies that stall, bodies
//! that fill the memory allowed for them. The listener keeps to its cap, closes each of them
//! after its timeout, and keeps answering (docs/setup.md, The HTTP listeners).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use xdm_app::config::Config;
use xdm_sandbox::SandboxConfig;

use crate::helpers::*;

const CAP: usize = 64;
/// More idle connections than the cap.
const IDLE: usize = 100;
const STALLED: usize = 4;
const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
const IDLE_TIMEOUT: Duration = Duration::from_secs(4);
const BODY_TIMEOUT: Duration = Duration::from_secs(1);
/// Whatever the server does, a client gives up after this: the test stays bounded.
const GIVE_UP: Duration = Duration::from_secs(10);

fn small_limits(c: &mut Config) {
    c.http.max_connections = CAP;
    c.http.header_timeout_ms = HEADER_TIMEOUT.as_millis() as u64;
    c.http.idle_timeout_ms = IDLE_TIMEOUT.as_millis() as u64;
    c.http.body_timeout_ms = BODY_TIMEOUT.as_millis() as u64;
    c.http.request_timeout_ms = 5_000;
}

fn addr(base: &str) -> String {
    base.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (EOF or reset); returns what it sent and when
/// it closed, or `None` if it was still open after [`GIVE_UP`].
async fn until_closed(stream: &mut TcpStream, since: Instant) -> Option<(Vec<u8>, Duration)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(GIVE_UP, read_all).await.ok()?;
    Some((got, since.elapsed()))
}

/// A POST announcing `content_length` bytes of which it sends `sent`, then nothing.
async fn stalled_body(addr: &str, content_length: usize, sent: usize) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /webhooks/x HTTP/1.1\r\nHost: bridge\r\nContent-Type: application/json\r\nContent-Length: {content_length}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&vec![b'a'; sent]).await.unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_slow_and_stalled_clients_are_capped_and_closed_while_health_answers() {
    let app = spawn_app_with(SandboxConfig::default(), small_limits).await;
    let addr = addr(&app.base);
    let start = Instant::now();

    // A slowloris: a byte of its headers every 200 ms, never the end of them.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"POST /webhooks/x HTTP/1.1\r\nHost: bridge\r\nX-Slow: ")
        .await
        .unwrap();
    let (mut slow_read, mut slow_write) = slow.into_split();
    let trickle = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if slow_write.write_all(b"a").await.is_err() {
                return;
            }
        }
    });
    let slowloris = tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        let read_all = async {
            loop {
                match slow_read.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        };
        tokio::time::timeout(GIVE_UP, read_all)
            .await
            .ok()
            .map(|()| start.elapsed())
    });

    // Bodies announced as 1 MiB, 1 KiB sent, then nothing.
    let mut stalled = JoinSet::new();
    for _ in 0..STALLED {
        let mut s = stalled_body(&addr, 1024 * 1024, 1024).await;
        stalled.spawn(async move { until_closed(&mut s, start).await });
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // More idle connections than the cap, all at once.
    let flood = Instant::now();
    let mut idle = JoinSet::new();
    for _ in 0..IDLE {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        idle.spawn(async move { until_closed(&mut s, flood).await });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The cap is reached, mostly by idle connections: a health check on a fresh connection
    // takes the place of one of them and is answered, with the status only.
    let health = reqwest::Client::new()
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status": "ok"})
    );
    // The admin listener has its own cap: the operator's health check answers too.
    let health = app.admin_get("/healthz").await;
    assert_eq!(health.status(), 200);

    // The slowloris is closed by the header timeout, well before the idle timeout.
    let slow_closed = slowloris
        .await
        .unwrap()
        .expect("the slowloris was never closed");
    trickle.abort();
    assert!(
        slow_closed < IDLE_TIMEOUT - Duration::from_millis(500),
        "the slowloris was closed after {slow_closed:?}, not by the header timeout"
    );

    // Each stalled body gets 408 and its connection closed, after the body timeout.
    while let Some(closed) = stalled.join_next().await {
        let (answer, _) = closed.unwrap().expect("a stalled body was never closed");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }

    // Idle connections: those beyond the cap were closed at once (the oldest idle ones to make
    // room for newer ones), the others after the idle timeout; never more served at once than
    // the cap.
    let (mut refused, mut held) = (0, 0);
    while let Some(closed) = idle.join_next().await {
        let (_, after) = closed
            .unwrap()
            .expect("an idle connection was never closed");
        if after < IDLE_TIMEOUT / 2 {
            refused += 1;
        } else {
            held += 1;
        }
    }
    println!(
        "idle connections: {refused} closed at once, {held} held until the idle timeout; slowloris closed after {slow_closed:?}"
    );
    assert!(
        held + 1 + STALLED <= CAP,
        "{held} idle connections held beside the slowloris and {STALLED} stalled bodies"
    );
    assert!(
        refused >= IDLE + 1 + STALLED - CAP,
        "only {refused} refused"
    );

    // Everything closed, the public listener answers as before.
    let fresh = reqwest::Client::new();
    let health = fresh
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status": "ok"})
    );

    // Counted, with HELP lines.
    let metrics = app.admin_get("/metrics").await.text().await.unwrap();
    for help in [
        "# HELP xdm_http_connections_evicted_total",
        "# HELP xdm_http_connections_timed_out_total",
    ] {
        assert!(metrics.contains(help), "{metrics}");
    }
    let counter = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}{{listener=\"public\"}} ")))
            .map_or(0.0, |v| v.parse().unwrap())
    };
    let closed = counter("xdm_http_connections_refused_total")
        + counter("xdm_http_connections_evicted_total");
    assert!(closed >= refused as f64, "{closed} < {refused}\n{metrics}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bodies_beyond_the_memory_allowed_for_them_get_503() {
    const BODY: usize = 16 * 1024;
    let app = spawn_app_with(SandboxConfig::default(), |c| {
        small_limits(c);
        c.max_body_bytes = BODY;
        c.http.max_buffered_bytes = 2 * BODY;
    })
    .await;
    let addr = addr(&app.base);
    let start = Instant::now();
    // Two bodies nearly whole, stalled: they hold nearly all the memory allowed.
    let mut first = stalled_body(&addr, BODY, BODY - 1024).await;
    let mut second = stalled_body(&addr, BODY, BODY - 1024).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A third is refused as soon as its bytes do not fit, without waiting for the timeout.
    let mut third = stalled_body(&addr, BODY, BODY - 1024).await;
    let (answer, _) = until_closed(&mut third, start).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    for s in [&mut first, &mut second] {
        let (answer, _) = until_closed(s, start).await.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    // Their memory is back: a whole body is accepted (and refused for its missing signature).
    let res = app
        .http
        .post(format!("{}/webhooks/x", app.base))
        .body(vec![b'a'; BODY - 1])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stopping_finishes_the_request_in_progress_and_closes_idle_connections() {
    let app = spawn_app().await;
    let addr = addr(&app.base);
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    // A request whose body is half sent when the bridge is asked to stop.
    let mut busy = stalled_body(&addr, 2048, 1024).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let since = Instant::now();
    let stopping = tokio::spawn(app.stop());
    // The idle connection is closed at once, not after the idle timeout.
    let (_, after) = until_closed(&mut idle, since).await.expect("still open");
    assert!(after < Duration::from_secs(5), "closed after {after:?}");
    // The busy one is answered (unsigned: 401) once its body is complete, then closed.
    busy.write_all(&[b'a'; 1024]).await.unwrap();
    let (answer, _) = until_closed(&mut busy, since).await.expect("still open");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    stopping.await.unwrap();
    assert!(TcpStream::connect(&addr).await.is_err(), "still listening");
}
