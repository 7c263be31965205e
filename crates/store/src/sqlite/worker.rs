//! The thread that owns the SQLite connection.
//!
//! Every call is a closure sent over a bounded channel to one dedicated OS thread, which runs it
//! against the connection and sends the result back. Chosen over `spawn_blocking` + `Mutex`:
//!
//! * SQLite takes one writer at a time anyway, so one connection loses no write throughput;
//! * a burst of N concurrent calls costs N queued closures, not N blocking-pool threads parked
//!   on a mutex (tokio lets that pool grow to 512 threads);
//! * calls run in arrival order (a std `Mutex` is not fair), and the bounded channel pushes back
//!   on callers when the disk cannot keep up;
//! * the connection never changes threads, and closing it (which checkpoints the WAL) happens
//!   on that thread when the last handle is dropped, never on an executor thread.

use std::panic::{AssertUnwindSafe, catch_unwind};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};
use tracing::Span;
use xdm_core::ports::StoreError;

use super::rows::DbError;
use crate::OpenError;

/// Calls waiting for the connection before callers wait to enqueue more.
const QUEUE_DEPTH: usize = 1024;

type Task = Box<dyn FnOnce(&mut Connection) + Send + 'static>;

/// Handle to the connection thread. Dropping the last handle stops the thread once the calls
/// already queued have run.
pub(crate) struct Worker {
    tx: mpsc::Sender<Task>,
    location: String,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("location", &self.location)
            .field("queued", &(QUEUE_DEPTH - self.tx.capacity()))
            .finish()
    }
}

impl Worker {
    /// Starts the thread and opens the connection on it with `open`.
    pub(crate) async fn start<F>(location: String, open: F) -> Result<Self, OpenError>
    where
        F: FnOnce() -> Result<Connection, OpenError> + Send + 'static,
    {
        let (tx, mut rx) = mpsc::channel::<Task>(QUEUE_DEPTH);
        let (ready_tx, ready_rx) = oneshot::channel::<Result<(), OpenError>>();
        let thread_location = location.clone();
        std::thread::Builder::new()
            .name("xdm-sqlite".into())
            .spawn(move || {
                let mut conn = match open() {
                    Ok(conn) => {
                        let _ = ready_tx.send(Ok(()));
                        conn
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Some(task) = rx.blocking_recv() {
                    // A panicking call drops its reply sender (the caller sees an error) and its
                    // transaction (rolled back); the connection stays usable for the next call.
                    if catch_unwind(AssertUnwindSafe(|| task(&mut conn))).is_err() {
                        tracing::error!(location = %thread_location, "a SQLite store call panicked; its transaction was rolled back");
                    }
                }
                // Refreshes planner statistics where SQLite thinks they are stale (cheap).
                if let Err(e) = conn.execute_batch("PRAGMA optimize") {
                    tracing::debug!(location = %thread_location, error = %e, "PRAGMA optimize failed");
                }
                if let Err((_, e)) = conn.close() {
                    tracing::warn!(location = %thread_location, error = %e, "closing the SQLite store failed");
                } else {
                    tracing::debug!(location = %thread_location, "SQLite store closed");
                }
            })
            .map_err(|source| OpenError::Thread {
                location: location.clone(),
                source,
            })?;
        match ready_rx.await {
            Ok(Ok(())) => Ok(Self { tx, location }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(OpenError::ThreadStopped { location }),
        }
    }

    /// Runs `f` on the connection thread. `op` names the operation in errors.
    ///
    /// Dropping the returned future does not cancel a call the thread has already received:
    /// its transaction still commits (or rolls back) as a whole.
    pub(crate) async fn call<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
    {
        let (reply_tx, reply_rx) = oneshot::channel();
        let span = Span::current();
        let task: Task = Box::new(move |conn| {
            let _entered = span.enter();
            let _ = reply_tx.send(f(conn));
        });
        self.tx.send(task).await.map_err(|_| self.stopped(op))?;
        match reply_rx.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                let e = e.into_store_error(op);
                tracing::debug!(location = %self.location, op, error = %e, "SQLite store call failed");
                Err(e)
            }
            Err(_) => Err(StoreError::Unavailable(format!(
                "sqlite {op}: the call was aborted on the store thread ({})",
                self.location
            ))),
        }
    }

    fn stopped(&self, op: &str) -> StoreError {
        StoreError::Unavailable(format!(
            "sqlite {op}: the store thread for {} has stopped",
            self.location
        ))
    }

    pub(crate) fn location(&self) -> &str {
        &self.location
    }
}
