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
//!   on that thread when the last handle is dropped, never on an executor thread;
//! * group commit: writes queued back to back ([`Worker::write`]) share one transaction, each in
//!   its own savepoint, so a burst of webhook acceptances pays for one commit, not one each.
//!   Each write stays atomic on its own, and no caller hears "done" before the commit.

use std::panic::{AssertUnwindSafe, catch_unwind};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};
use tracing::Span;
use xdm_core::ports::StoreError;

use super::rows::DbError;
use crate::OpenError;

/// Calls waiting for the connection before callers wait to enqueue more.
const QUEUE_DEPTH: usize = 1024;

/// Writes committed together at most (bounds the time the first of them waits).
const MAX_GROUP: usize = 64;

/// A write run inside a group transaction: it reports whether it succeeded (else its savepoint
/// is rolled back) and returns the reply to send once the group's commit is known.
/// Given `Err`, the write is not run and replies with that error at once.
type Write = Box<dyn FnOnce(Result<&Connection, &str>) -> (bool, Reply) + Send + 'static>;
/// Sends a write's result; given the commit's error, if the commit failed.
type Reply = Box<dyn FnOnce(Option<&str>) + Send + 'static>;

enum Task {
    Call(Box<dyn FnOnce(&mut Connection) + Send + 'static>),
    Write(Write),
}

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
                let mut next: Option<Task> = None;
                loop {
                    let task = match next.take() {
                        Some(task) => task,
                        None => match rx.blocking_recv() {
                            Some(task) => task,
                            None => break,
                        },
                    };
                    match task {
                        Task::Call(call) => {
                            // A panicking call drops its reply sender (the caller sees an
                            // error) and its transaction (rolled back); the connection stays
                            // usable for the next call.
                            if catch_unwind(AssertUnwindSafe(|| call(&mut conn))).is_err() {
                                tracing::error!(location = %thread_location, "a SQLite store call panicked; its transaction was rolled back");
                            }
                        }
                        Task::Write(first) => {
                            let mut group = vec![first];
                            while group.len() < MAX_GROUP {
                                match rx.try_recv() {
                                    Ok(Task::Write(w)) => group.push(w),
                                    Ok(other) => {
                                        next = Some(other);
                                        break;
                                    }
                                    Err(_) => break,
                                }
                            }
                            commit_group(&conn, group, &thread_location);
                        }
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
        let task = Task::Call(Box::new(move |conn| {
            let _entered = span.enter();
            let _ = reply_tx.send(f(conn));
        }));
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

    /// Runs the write `f` on the connection thread inside a transaction, possibly shared with
    /// other writes queued at the same time (group commit). `f` must not open a transaction
    /// itself; its effects are all applied or, if it fails, none. The result is returned once
    /// the transaction is committed. `op` names the operation in errors.
    pub(crate) async fn write<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, DbError> + Send + 'static,
    {
        let (reply_tx, reply_rx) = oneshot::channel::<Result<T, StoreError>>();
        let span = Span::current();
        let location = self.location.clone();
        let task = Task::Write(Box::new(move |conn| {
            let conn = match conn {
                Ok(conn) => conn,
                Err(e) => {
                    let _ = reply_tx.send(Err(StoreError::Unavailable(format!(
                        "sqlite {op}: cannot start a transaction: {e}"
                    ))));
                    let nothing: Reply = Box::new(|_| {});
                    return (false, nothing);
                }
            };
            let result = {
                let _entered = span.enter();
                f(conn)
            };
            let ok = result.is_ok();
            let reply: Reply = Box::new(move |commit_error| {
                let result = match (result, commit_error) {
                    (Ok(value), None) => Ok(value),
                    (Ok(_), Some(e)) => Err(StoreError::Unavailable(format!(
                        "sqlite {op}: commit failed: {e}"
                    ))),
                    (Err(e), _) => Err(e.into_store_error(op)),
                };
                if let Err(e) = &result {
                    tracing::debug!(location = %location, op, error = %e, "SQLite store write failed");
                }
                let _ = reply_tx.send(result);
            });
            (ok, reply)
        }));
        self.tx.send(task).await.map_err(|_| self.stopped(op))?;
        reply_rx.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(format!(
                "sqlite {op}: the call was aborted on the store thread ({})",
                self.location
            )))
        })
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

/// Runs `group` in one transaction, each write in a savepoint, then commits and replies to all.
fn commit_group(conn: &Connection, group: Vec<Write>, location: &str) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let msg = e.to_string();
        for write in group {
            let _ = write(Err(&msg));
        }
        return;
    }
    let mut replies = Vec::with_capacity(group.len());
    for write in group {
        if let Err(e) = conn.execute_batch("SAVEPOINT xdm_write") {
            let _ = write(Err(&e.to_string()));
            continue;
        }
        match catch_unwind(AssertUnwindSafe(|| write(Ok(conn)))) {
            Ok((true, reply)) => {
                let _ = conn.execute_batch("RELEASE xdm_write");
                replies.push(reply);
            }
            Ok((false, reply)) => {
                let _ = conn.execute_batch("ROLLBACK TO xdm_write; RELEASE xdm_write");
                // It failed on its own: its error is the answer, whatever the commit does.
                reply(None);
            }
            Err(_) => {
                // Its reply sender is gone with the panic: the caller sees an aborted call.
                tracing::error!(
                    location,
                    "a SQLite store write panicked; it was rolled back"
                );
                let _ = conn.execute_batch("ROLLBACK TO xdm_write; RELEASE xdm_write");
            }
        }
    }
    let commit_error = conn.execute_batch("COMMIT").err().map(|e| {
        let _ = conn.execute_batch("ROLLBACK");
        e.to_string()
    });
    for reply in replies {
        reply(commit_error.as_deref());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn worker(path: &std::path::Path) -> Worker {
        let p = path.to_owned();
        Worker::start("unit".into(), move || {
            let conn = Connection::open(&p).unwrap();
            conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (x INTEGER UNIQUE);")
                .unwrap();
            Ok(conn)
        })
        .await
        .unwrap()
    }

    fn insert(conn: &Connection, x: i64) -> Result<(), DbError> {
        conn.execute("INSERT INTO t (x) VALUES (?1)", [x])?;
        Ok(())
    }

    /// Writes queued together share one commit, yet each is applied whole or not at all, and
    /// none is reported before the commit.
    #[tokio::test]
    async fn queued_writes_share_a_commit_and_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("group.db");
        let w = worker(&path).await;
        let reader_path = path.clone();
        let (blocked, a, b, c) = tokio::join!(
            // Holds the thread so that the three writes queue up behind it.
            w.call("block", |_| {
                std::thread::sleep(Duration::from_millis(200));
                Ok(())
            }),
            w.write("a", |conn| insert(conn, 1)),
            w.write("b", |conn| {
                insert(conn, 2)?;
                Err::<(), _>(DbError::Corrupt("b fails after writing".into()))
            }),
            w.write("c", move |conn| {
                insert(conn, 3)?;
                // Another connection does not see `a` yet: it is in this very transaction.
                let reader = Connection::open(&reader_path).unwrap();
                let seen: i64 = reader
                    .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                    .unwrap();
                Ok(seen)
            }),
        );
        blocked.unwrap();
        a.unwrap();
        assert!(matches!(b, Err(StoreError::Corrupt(_))), "{b:?}");
        assert_eq!(
            c.unwrap(),
            0,
            "a was committed before c ran: no group commit"
        );
        let rows: Vec<i64> = w
            .call("read", |conn| {
                let mut stmt = conn.prepare("SELECT x FROM t ORDER BY x")?;
                let rows = stmt
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<Vec<i64>, _>>()?;
                Ok(rows)
            })
            .await
            .unwrap();
        assert_eq!(rows, vec![1, 3]);
    }

    /// A write that cannot be applied (constraint) fails alone; a lone write commits.
    #[tokio::test]
    async fn a_failing_statement_rolls_back_only_its_write() {
        let dir = tempfile::tempdir().unwrap();
        let w = worker(&dir.path().join("alone.db")).await;
        w.write("first", |conn| insert(conn, 7)).await.unwrap();
        let dup = w
            .write("dup", |conn| {
                insert(conn, 8)?;
                insert(conn, 7)
            })
            .await;
        assert!(matches!(dup, Err(StoreError::Corrupt(_))), "{dup:?}");
        let n: i64 = w
            .call("count", |conn| {
                Ok(conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?)
            })
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
}
