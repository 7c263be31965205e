//! Serving a router on a TCP listener within limits (docs/setup.md, The HTTP listeners).
//! `axum::serve` has no timeouts and no connection cap: idle or slow clients could hold every
//! file descriptor of the process and buffer bodies without end. This accept loop:
//!
//! * caps the connections served at once with a semaphore. When the cap is reached, a new
//!   connection takes the place of the longest-open idle one (connected, no request begun:
//!   closing it loses nothing; nginx reuses idle keep-alive connections the same way), so that a
//!   flood of idle connections cannot keep the platforms or a health check out. With no idle
//!   connection to close, the new one is closed as soon as it is accepted, never kept waiting: a
//!   waiting connection would hold the file descriptor and memory the cap protects, and the
//!   platforms (X, SNS) retry. Counted in `xdm_http_connections_evicted_total` and
//!   `xdm_http_connections_refused_total`, refusals warned about at most once a minute;
//! * serves each connection with hyper's HTTP/1 server. Its header read timer starts whenever the
//!   connection is ready for a request (accepted, or its previous response written) and stops
//!   when the request's headers are in (hyper 1.12, `proto/h1/conn.rs`): that is the idle timeout
//!   (`XDM_HTTP_IDLE_TIMEOUT_MS`). The shorter limits of one request — headers, body, memory for
//!   bodies, the whole request — are in [`super::connection`];
//! * caps what hyper buffers per connection (`MAX_BUF_BYTES`: the largest header block);
//! * on stop, stops accepting, lets each connection finish the request in hand (hyper's graceful
//!   shutdown closes idle connections at once), and waits for them at most the request timeout.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::connection::{ConnectionState, HeadTimed, LimitedService};
use crate::config::HttpSettings;

/// What hyper buffers per connection, and so the largest header block (431 beyond). X's and
/// SNS's headers are a few KiB; the body is read in frames of at most this size.
const MAX_BUF_BYTES: usize = 64 * 1024;
/// The admin listener serves a few monitoring clients: it needs no more than this.
const ADMIN_MAX_CONNECTIONS: usize = 64;
/// After an accept error (out of file descriptors, …), the pause before the next accept.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(200);
/// How long a new connection waits for the slot of the idle one closed for it (which closes at
/// once: it has nothing in progress).
const EVICTION_WAIT: Duration = Duration::from_millis(250);
/// Refused connections and accept errors are warned about at most once per this.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// Beyond the request timeout, how long a stopping listener waits for its connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// The limits of one listener, from [`HttpSettings`].
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_timeout: Duration,
    pub request_timeout: Duration,
    pub max_buffered_bytes: usize,
}

impl Limits {
    /// The public listener's limits: the settings as they are.
    pub fn public(http: &HttpSettings) -> Self {
        Self {
            max_connections: http.max_connections,
            header_timeout: Duration::from_millis(http.header_timeout_ms),
            idle_timeout: Duration::from_millis(http.idle_timeout_ms),
            body_timeout: Duration::from_millis(http.body_timeout_ms),
            request_timeout: Duration::from_millis(http.request_timeout_ms),
            max_buffered_bytes: http.max_buffered_bytes,
        }
    }

    /// The admin listener's: the same timeouts, at most [`ADMIN_MAX_CONNECTIONS`] connections.
    pub fn admin(http: &HttpSettings) -> Self {
        Self {
            max_connections: http.max_connections.min(ADMIN_MAX_CONNECTIONS),
            ..Self::public(http)
        }
    }
}

/// Serves `router` on `listener` within `limits` until `stop` turns true (or its sender is
/// dropped), then lets the requests in hand finish. `name` labels the listener's metrics
/// (`public`, `admin`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    name: &'static str,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let budget = Arc::new(Semaphore::new(limits.max_buffered_bytes));
    let open = Arc::new(OpenConnections::default());
    let mut refusals = Throttled::default();
    let mut accept_errors = Throttled::default();
    loop {
        let accepted = tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                // A connection reset before it was accepted concerns that connection only; the
                // rest (EMFILE, ENFILE, ENOBUFS) clear up when connections close.
                if !is_connection_error(&e) {
                    if let Some(errors) = accept_errors.due() {
                        tracing::warn!(listener = name, error = %e, errors, "cannot accept connections");
                    }
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
                continue;
            }
        };
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => Some(slot),
            Err(_) if open.evict_oldest_idle() => {
                metrics::counter!("xdm_http_connections_evicted_total", "listener" => name)
                    .increment(1);
                tokio::time::timeout(EVICTION_WAIT, Arc::clone(&slots).acquire_owned())
                    .await
                    .ok()
                    .and_then(Result::ok)
            }
            Err(_) => None,
        };
        let Some(slot) = slot else {
            drop(stream);
            metrics::counter!("xdm_http_connections_refused_total", "listener" => name)
                .increment(1);
            if let Some(refused) = refusals.due() {
                tracing::warn!(
                    listener = name,
                    refused,
                    max_connections = limits.max_connections,
                    "connections refused: the listener serves its maximum (XDM_HTTP_MAX_CONNECTIONS), none of them idle"
                );
            }
            continue;
        };
        let (id, state) = open.add();
        tokio::spawn(serve_connection(
            stream,
            router.clone(),
            limits.clone(),
            Arc::clone(&budget),
            Connection {
                name,
                id,
                state,
                open: Arc::clone(&open),
                _slot: slot,
                stop: stop.clone(),
            },
        ));
    }
    drop(listener);
    // Every slot back means every connection closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let wait = limits.request_timeout + SHUTDOWN_GRACE;
    if tokio::time::timeout(wait, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            listener = name,
            "connections still open after the request timeout: no longer waiting for them"
        );
    }
}

/// What a connection's task holds besides the socket: its slot (given back when the task
/// ends), its state and its entry among the open connections, the stop signal and the
/// listener's name.
struct Connection {
    name: &'static str,
    id: u64,
    state: Arc<ConnectionState>,
    open: Arc<OpenConnections>,
    _slot: OwnedSemaphorePermit,
    stop: watch::Receiver<bool>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.open.remove(self.id);
    }
}

/// A listener's open connections, oldest first, for choosing one to close when the cap is
/// reached.
#[derive(Default)]
struct OpenConnections {
    inner: Mutex<(u64, BTreeMap<u64, Arc<ConnectionState>>)>,
}

impl OpenConnections {
    fn add(&self) -> (u64, Arc<ConnectionState>) {
        let state = Arc::new(ConnectionState::default());
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (next, open) = &mut *guard;
        let id = *next;
        *next += 1;
        open.insert(id, Arc::clone(&state));
        (id, state)
    }

    fn remove(&self, id: u64) {
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        guard.1.remove(&id);
    }

    /// Asks the longest-open idle connection to close (and forgets it, so that it is not asked
    /// twice); false when none is idle.
    fn evict_oldest_idle(&self) -> bool {
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let open = &mut guard.1;
        let Some(id) = open
            .iter()
            .find_map(|(id, state)| state.is_idle().then_some(*id))
        else {
            return false;
        };
        if let Some(state) = open.remove(&id) {
            state.evict();
        }
        true
    }
}

async fn serve_connection(
    stream: TcpStream,
    router: Router,
    limits: Limits,
    budget: Arc<Semaphore>,
    mut connection: Connection,
) {
    let name = connection.name;
    metrics::gauge!("xdm_http_connections_open", "listener" => name).increment(1.0);
    // Small answers to small requests: do not wait to fill a segment.
    let _ = stream.set_nodelay(true);
    let requests = Arc::clone(&connection.state);
    let io = HeadTimed::new(stream, limits.header_timeout, Arc::clone(&requests));
    let service = LimitedService::new(
        router,
        limits.body_timeout,
        limits.request_timeout,
        budget,
        requests,
    );
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout)
        .keep_alive(true)
        .max_buf_size(MAX_BUF_BYTES);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let state = Arc::clone(&connection.state);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        // Idle when chosen: hyper closes it at once.
        () = state.evicted() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
        () = stopped(&mut connection.stop) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        if let Some(phase) = timed_out(&e) {
            metrics::counter!(
                "xdm_http_connections_timed_out_total",
                "listener" => name,
                "phase" => phase
            )
            .increment(1);
        }
        tracing::debug!(listener = name, error = %e, "connection closed");
    }
    metrics::gauge!("xdm_http_connections_open", "listener" => name).decrement(1.0);
}

/// Which wait a connection error ended: `idle` (hyper's header read timer, see the module
/// docs) or `headers` (a request's headers too slow, [`HeadTimed`]).
fn timed_out(e: &hyper::Error) -> Option<&'static str> {
    if e.is_timeout() {
        return Some("idle");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return Some("headers");
        }
        source = s.source();
    }
    None
}

/// Resolves once `stop` is true or its sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// Something that may happen thousands of times a second under attack, logged at most once per
/// [`WARN_EVERY`] with how often it happened since.
#[derive(Default)]
struct Throttled {
    since_warning: u64,
    warned_at: Option<Instant>,
}

impl Throttled {
    /// Counts one more; `Some(count)` when it is time to log (the count is then reset).
    fn due(&mut self) -> Option<u64> {
        self.since_warning += 1;
        if self.warned_at.is_some_and(|t| t.elapsed() < WARN_EVERY) {
            return None;
        }
        self.warned_at = Some(Instant::now());
        Some(std::mem::take(&mut self.since_warning))
    }
}
