//! The limits of one request on a connection, beyond hyper's idle timer (see `listener.rs`):
//!
//! * [`HeadTimed`]: from a request's first byte to the end of its headers
//!   (`XDM_HTTP_HEADER_TIMEOUT_MS`), against clients that trickle headers (slowloris). The
//!   reader sees the bytes and [`LimitedService`] sees the headers complete, so they share a
//!   [`ConnectionState`], which also tells the listener whether the connection is idle (waiting
//!   for a request, none begun), and so may be closed to make room for a new one;
//! * [`LimitedBody`]: from the end of the headers to the end of the body
//!   (`XDM_HTTP_BODY_TIMEOUT_MS`), and the memory bodies may hold at once over the listener
//!   (`XDM_HTTP_MAX_BUFFERED_BYTES`), on top of the size of one body (`XDM_MAX_BODY_BYTES`,
//!   axum's `DefaultBodyLimit`). tower-http's `RequestBodyTimeout` restarts its timer at every
//!   frame, so a client sending a byte now and then would never meet it: this deadline is fixed;
//! * [`LimitedService`]: from the end of the headers to the response
//!   (`XDM_HTTP_REQUEST_TIMEOUT_MS`), and the answers to a body that broke a limit: 408 when it
//!   was too slow, 503 when bodies already fill the memory allowed (the platforms retry a 5xx).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt as _;

use super::reject::reject;

/// Where a connection is: shared by its reader ([`HeadTimed`]), its service and the listener.
#[derive(Debug, Default)]
pub(super) struct ConnectionState {
    /// Requests whose headers were complete so far.
    started: AtomicU64,
    /// A request is being answered (its body may be read: no header timer then).
    active: AtomicBool,
    /// Bytes of a request's headers have arrived, not all of them yet.
    reading_head: AtomicBool,
    /// The listener wants this idle connection closed to make room.
    evict: Notify,
}

impl ConnectionState {
    /// Waiting for a request, none begun: closing it loses nothing.
    pub(super) fn is_idle(&self) -> bool {
        !self.active.load(Ordering::Acquire) && !self.reading_head.load(Ordering::Acquire)
    }

    /// Asks the connection to close (see [`ConnectionState::evicted`]).
    pub(super) fn evict(&self) {
        self.evict.notify_one();
    }

    /// Resolves once the listener asked this connection to close.
    pub(super) async fn evicted(&self) {
        self.evict.notified().await;
    }
}

/// Marks a request as being answered until dropped.
struct Active(Arc<ConnectionState>);

impl Active {
    fn start(count: &Arc<ConnectionState>) -> Self {
        count.started.fetch_add(1, Ordering::AcqRel);
        count.active.store(true, Ordering::Release);
        Self(Arc::clone(count))
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.store(false, Ordering::Release);
    }
}

/// The connection's socket, with a timer from the first byte of a request to the end of its
/// headers: when it fires, reading fails with `TimedOut` and hyper closes the connection.
#[derive(Debug)]
pub(super) struct HeadTimed<T> {
    inner: T,
    timeout: Duration,
    requests: Arc<ConnectionState>,
    /// The running timer, with the number of requests started when it was armed.
    timer: Option<(u64, Pin<Box<Sleep>>)>,
}

impl<T> HeadTimed<T> {
    pub(super) fn new(inner: T, timeout: Duration, requests: Arc<ConnectionState>) -> Self {
        Self {
            inner,
            timeout,
            requests,
            timer: None,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for HeadTimed<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let started = this.requests.started.load(Ordering::Acquire);
        let active = this.requests.active.load(Ordering::Acquire);
        // A request whose headers completed since the timer was armed: its bytes are in.
        if this.timer.is_some()
            && (active || this.timer.as_ref().is_some_and(|(n, _)| *n != started))
        {
            this.timer = None;
            this.requests.reading_head.store(false, Ordering::Release);
        }
        if let Some((_, sleep)) = &mut this.timer
            && sleep.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the request's headers did not arrive in time",
            )));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if buf.filled().len() > before && !active && this.timer.is_none() {
            // The first byte of a request's head. Polled once so that the deadline wakes the
            // connection even if nothing more arrives.
            let mut sleep = Box::pin(tokio::time::sleep(this.timeout));
            let _ = sleep.as_mut().poll(cx);
            this.timer = Some((started, sleep));
            this.requests.reading_head.store(true, Ordering::Release);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for HeadTimed<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Why a body was cut short (what the service answers instead of the router); 0 while it was
/// not.
#[derive(Debug, Default)]
struct BodyVerdict(AtomicU8);

const BODY_TOO_SLOW: u8 = 1;
const BODIES_FULL: u8 = 2;

impl BodyVerdict {
    fn set(&self, v: u8) {
        self.0.store(v, Ordering::Release);
    }
    fn get(&self) -> u8 {
        self.0.load(Ordering::Acquire)
    }
}

/// A body cut short by a limit.
#[derive(Debug, thiserror::Error)]
pub(super) enum BodyError {
    #[error("the request body did not arrive in time")]
    TooSlow,
    #[error("request bodies fill the memory allowed for them")]
    BodiesFull,
    #[error(transparent)]
    Transport(#[from] hyper::Error),
}

/// A request body with a fixed deadline, whose bytes are counted against the listener's memory
/// for bodies until the request is answered (the handler holds the bytes it read until then).
#[derive(Debug)]
pub(super) struct LimitedBody {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
    budget: Arc<Semaphore>,
    /// The bytes read so far, counted; shared with the request's future, which releases them.
    held: Arc<Mutex<Option<OwnedSemaphorePermit>>>,
    verdict: Arc<BodyVerdict>,
}

impl http_body::Body for LimitedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.verdict.set(BODY_TOO_SLOW);
            return Poll::Ready(Some(Err(BodyError::TooSlow)));
        }
        let frame = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
            None => return Poll::Ready(None),
        };
        let n = frame.data_ref().map_or(0, Bytes::len);
        if n > 0 {
            let permit = u32::try_from(n)
                .ok()
                .and_then(|n| Arc::clone(&this.budget).try_acquire_many_owned(n).ok());
            let Some(permit) = permit else {
                this.verdict.set(BODIES_FULL);
                return Poll::Ready(Some(Err(BodyError::BodiesFull)));
            };
            if let Ok(mut held) = this.held.lock() {
                match held.as_mut() {
                    Some(held) => held.merge(permit),
                    None => *held = Some(permit),
                }
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The router as one connection's hyper service, within the request limits.
#[derive(Debug, Clone)]
pub(super) struct LimitedService {
    router: Router,
    body_timeout: Duration,
    request_timeout: Duration,
    budget: Arc<Semaphore>,
    requests: Arc<ConnectionState>,
}

impl LimitedService {
    /// `budget`: the listener's memory for bodies, in bytes; `requests`: shared with the
    /// connection's [`HeadTimed`].
    pub(super) fn new(
        router: Router,
        body_timeout: Duration,
        request_timeout: Duration,
        budget: Arc<Semaphore>,
        requests: Arc<ConnectionState>,
    ) -> Self {
        Self {
            router,
            body_timeout,
            request_timeout,
            budget,
            requests,
        }
    }
}

impl hyper::service::Service<Request<Incoming>> for LimitedService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let active = Active::start(&self.requests);
        let verdict = Arc::new(BodyVerdict::default());
        let held = Arc::new(Mutex::new(None));
        let deadline = Instant::now() + self.body_timeout;
        let req = req.map(|inner| {
            Body::new(LimitedBody {
                inner,
                deadline: Box::pin(tokio::time::sleep_until(deadline)),
                budget: Arc::clone(&self.budget),
                held: Arc::clone(&held),
                verdict: Arc::clone(&verdict),
            })
        });
        let answer = tokio::time::timeout(self.request_timeout, self.router.clone().oneshot(req));
        Box::pin(async move {
            let _active = active;
            // The body's bytes count until the answer is made, not only while they arrive.
            let _held = held;
            let response = match answer.await {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(_) => {
                    return Ok(reject(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the request took too long; try again",
                    ));
                }
            };
            Ok(match verdict.get() {
                BODY_TOO_SLOW => reject(
                    StatusCode::REQUEST_TIMEOUT,
                    "the request body did not arrive in time",
                ),
                BODIES_FULL => reject(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many request bodies in progress; try again",
                ),
                _ => response,
            })
        })
    }
}
