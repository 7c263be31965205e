//! The per-request side of fault injection: a middleware around every route notes which operation
//! a request turned out to be (the handlers say, via a task-local), counts its answer, and replaces
//! the answer of a dropped call with a connection abort.
//!
//! The abort: a response whose body fails before its first frame. hyper has then only buffered the
//! head, and on the body error it closes the connection without flushing it, so the client sees the
//! connection close with no response at all (a transport error, not an HTTP status).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::events::SandboxEvent;
use crate::faults::FaultOp;
use crate::state::Shared;
use crate::sync::lock;

#[derive(Debug, Default)]
struct CallNote {
    op: Option<FaultOp>,
    drop: bool,
}

tokio::task_local! {
    static CALL: Arc<Mutex<CallNote>>;
}

/// Marks the current request as a call of `op` (counted in the stats whatever it answers).
pub(crate) fn note_call(op: FaultOp) {
    let _ = CALL.try_with(|note| lock(note).op = Some(op));
}

/// Asks for the current request's connection to be closed without an answer. False outside a
/// request (the caller then answers normally).
pub(crate) fn flag_drop() -> bool {
    CALL.try_with(|note| lock(note).drop = true).is_ok()
}

/// Middleware over every route (`axum::middleware::from_fn_with_state`).
pub(crate) async fn layer(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let note = Arc::new(Mutex::new(CallNote::default()));
    let response = CALL.scope(Arc::clone(&note), next.run(request)).await;
    let CallNote { op, drop } = std::mem::take(&mut *lock(&note));
    let Some(op) = op else {
        return response;
    };
    let status = (!drop).then(|| response.status().as_u16());
    lock(&shared.faults).stats.answered(op, status);
    shared.events.emit(SandboxEvent::ApiCall {
        op,
        side: op.side(),
        method,
        path,
        status,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
    });
    if drop {
        return aborted();
    }
    response
}

/// A response that makes hyper abort the connection before sending anything.
fn aborted() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "connection dropped by sandbox fault injection",
        ))
    });
    Response::new(Body::from_stream(failing))
}
