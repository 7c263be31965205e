//! The operator's re-drive of failed jobs (`inbox retry`, the operator page's *Retry*): each named
//! failed job, or every failed job of a queue, back to pending through
//! [`Store::retry_failed`]. A job that is no longer failed is left alone.

use crate::jobs::{JobKey, JobQueue, JobState};
use crate::ports::{Store, StoreError};

/// Which failed jobs to put back in line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailedJobs {
    /// Every failed job of the queue.
    All,
    /// These (jobs among them that are not failed are left alone).
    Keys(Vec<JobKey>),
}

/// What [`retry_failed_jobs`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retried {
    /// Back to pending.
    pub retried: Vec<JobKey>,
    /// Not failed (any more): untouched.
    pub left_alone: Vec<JobKey>,
}

/// Puts `which` failed jobs of `queue` back to pending at `now_ms`. A running dispatcher finds
/// them at its next look at the store; in its own process, wake it ([`super::JobEngine::wake`]).
pub async fn retry_failed_jobs<S: Store>(
    store: &S,
    queue: JobQueue,
    which: FailedJobs,
    now_ms: i64,
) -> Result<Retried, StoreError> {
    let keys = match which {
        FailedJobs::All => store
            .jobs(queue, Some(JobState::Failed), usize::MAX)
            .await?
            .into_iter()
            .map(|j| j.key)
            .collect(),
        FailedJobs::Keys(keys) => keys,
    };
    let mut done = Retried::default();
    for key in keys {
        if store.retry_failed(queue, &key, now_ms).await? {
            done.retried.push(key);
        } else {
            done.left_alone.push(key);
        }
    }
    Ok(done)
}
