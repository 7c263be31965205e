//! The async runtime every command runs on, and how many worker threads it has.
//!
//! One worker unless `TOKIO_WORKER_THREADS` asks for more. With two workers on two cores, tokio
//! hands work from a busy worker to a parked one, and most of those hand-offs find nothing left
//! to do: at 100 DMs a second the bridge's threads woke ~7 times per DM against ~4 with one, and
//! one worker spent 6–18 % less CPU per DM, per agent reply and per acknowledgement at every rate
//! measured, for a peak inbound rate 5 % lower (docs/performance.md, "One async worker by
//! default"). SQLite writes run on the worker but never wait there for a lock (a busy write goes
//! to the store's own thread), and checkpoints and deferred commits have threads of their own,
//! so the store does not stall the one worker. Tokio reads the same variable when the builder is
//! given no count; it is read here instead so that a bad value is an error message, not tokio's
//! panic.

use std::ffi::OsString;

use tokio::runtime::Runtime;

/// The environment variable that sets the number of worker threads (tokio's own name).
pub const WORKER_THREADS_ENV: &str = "TOKIO_WORKER_THREADS";

/// Worker threads when [`WORKER_THREADS_ENV`] is not set.
pub const DEFAULT_WORKER_THREADS: usize = 1;

/// More than any machine this runs on has cores; a typo such as `20000` is refused.
const MAX_WORKER_THREADS: usize = 1_024;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "{WORKER_THREADS_ENV} must be a whole number from 1 to {MAX_WORKER_THREADS}, not {0:?}"
    )]
    WorkerThreads(String),
    #[error("cannot start the async runtime: {0}")]
    Build(#[source] std::io::Error),
}

/// The number of worker threads `value` (the variable's value, if set) asks for.
pub fn worker_threads(value: Option<OsString>) -> Result<usize, RuntimeError> {
    let Some(value) = value else {
        return Ok(DEFAULT_WORKER_THREADS);
    };
    let text = value.to_string_lossy();
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_WORKER_THREADS).contains(&n) => Ok(n),
        _ => Err(RuntimeError::WorkerThreads(text.into_owned())),
    }
}

/// Builds the runtime with the worker threads the environment asks for (default one).
pub fn build() -> Result<Runtime, RuntimeError> {
    let workers = worker_threads(std::env::var_os(WORKER_THREADS_ENV))?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(RuntimeError::Build)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(value: &str) -> Result<usize, RuntimeError> {
        worker_threads(Some(OsString::from(value)))
    }

    #[test]
    fn one_worker_unless_the_environment_asks_for_more() {
        assert_eq!(worker_threads(None).ok(), Some(1));
        assert_eq!(of("2").ok(), Some(2));
        assert_eq!(of(" 4 ").ok(), Some(4));
        assert_eq!(of("1024").ok(), Some(1_024));
    }

    #[test]
    fn a_count_that_is_not_one_to_1024_is_refused_with_its_value() {
        for bad in ["0", "-1", "two", "", "1.5", "1025", "99999999999999999999"] {
            match of(bad) {
                Err(e @ RuntimeError::WorkerThreads(_)) => {
                    let message = e.to_string();
                    assert!(message.contains(WORKER_THREADS_ENV), "{message}");
                    assert!(message.contains(&format!("{bad:?}")), "{message}");
                }
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }
}
