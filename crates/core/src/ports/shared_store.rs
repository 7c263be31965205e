//! A store shared behind an `Arc` is a store: the bridge, the OAuth 2.0 token keeper and the
//! catch-up's records use one backend (one SQLite connection, one DynamoDB client) together.

use std::sync::Arc;

use crate::ids::{InitialContactId, XUserId};
use crate::jobs::{Backlog, FinalState, Job, JobKey, JobQueue, JobState, Lane, LaneEntry, NewJob};
use crate::ports::{Expect, Record, SessionInsert, Store, StoreError};
use crate::profile::XProfile;
use crate::session::{ConnectionCredentials, Session};

impl<T: Store> Store for Arc<T> {
    async fn open_session(
        &self,
        business: &XUserId,
        customer: &XUserId,
    ) -> Result<Option<Session>, StoreError> {
        T::open_session(self, business, customer).await
    }

    async fn session_by_initial_contact(
        &self,
        id: &InitialContactId,
    ) -> Result<Option<Session>, StoreError> {
        T::session_by_initial_contact(self, id).await
    }

    async fn insert_session(&self, session: &Session) -> Result<SessionInsert, StoreError> {
        T::insert_session(self, session).await
    }

    async fn set_session_connection(
        &self,
        id: &InitialContactId,
        connection: &ConnectionCredentials,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        T::set_session_connection(self, id, connection, now_ms).await
    }

    async fn end_session(&self, id: &InitialContactId, now_ms: i64) -> Result<bool, StoreError> {
        T::end_session(self, id, now_ms).await
    }

    async fn cached_profile(
        &self,
        id: &XUserId,
        now_ms: i64,
    ) -> Result<Option<XProfile>, StoreError> {
        T::cached_profile(self, id, now_ms).await
    }

    async fn cache_profile(
        &self,
        profile: &XProfile,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        T::cache_profile(self, profile, expires_at_ms).await
    }

    async fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<bool>, StoreError> {
        T::enqueue(self, jobs).await
    }

    async fn lane_heads(
        &self,
        queue: JobQueue,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        T::lane_heads(self, queue, now_ms, limit).await
    }

    async fn lane_head(
        &self,
        queue: JobQueue,
        lane: &Lane,
        now_ms: i64,
    ) -> Result<Option<Job>, StoreError> {
        T::lane_head(self, queue, lane, now_ms).await
    }

    async fn lane_jobs(
        &self,
        queue: JobQueue,
        lane: &Lane,
        limit: usize,
    ) -> Result<Vec<LaneEntry>, StoreError> {
        T::lane_jobs(self, queue, lane, limit).await
    }

    async fn claim(
        &self,
        queue: JobQueue,
        key: &JobKey,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        T::claim(self, queue, key, lease_until_ms, now_ms).await
    }

    async fn claim_deferred(
        &self,
        queue: JobQueue,
        key: &JobKey,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        T::claim_deferred(self, queue, key, lease_until_ms, now_ms).await
    }

    async fn renew_lease(
        &self,
        queue: JobQueue,
        key: &JobKey,
        attempt: u32,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        T::renew_lease(self, queue, key, attempt, lease_until_ms, now_ms).await
    }

    async fn reschedule(
        &self,
        queue: JobQueue,
        key: &JobKey,
        attempt: u32,
        not_before_ms: i64,
        error: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        T::reschedule(self, queue, key, attempt, not_before_ms, error, now_ms).await
    }

    async fn finish(
        &self,
        queue: JobQueue,
        key: &JobKey,
        attempt: u32,
        state: FinalState,
        error: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        T::finish(self, queue, key, attempt, state, error, now_ms).await
    }

    async fn job(&self, queue: JobQueue, key: &JobKey) -> Result<Option<Job>, StoreError> {
        T::job(self, queue, key).await
    }

    async fn jobs(
        &self,
        queue: JobQueue,
        state: Option<JobState>,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        T::jobs(self, queue, state, limit).await
    }

    async fn backlog(&self, queue: JobQueue, limit: usize) -> Result<Backlog, StoreError> {
        T::backlog(self, queue, limit).await
    }

    async fn retry_failed(
        &self,
        queue: JobQueue,
        key: &JobKey,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        T::retry_failed(self, queue, key, now_ms).await
    }

    async fn release_claims(&self, queue: JobQueue, now_ms: i64) -> Result<u64, StoreError> {
        T::release_claims(self, queue, now_ms).await
    }

    async fn purge(
        &self,
        jobs_before_ms: i64,
        sessions_before_ms: i64,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        T::purge(self, jobs_before_ms, sessions_before_ms, now_ms).await
    }

    async fn record(&self, key: &str) -> Result<Option<Record>, StoreError> {
        T::record(self, key).await
    }

    async fn put_record(
        &self,
        key: &str,
        value: &str,
        expect: Expect,
        now_ms: i64,
    ) -> Result<Option<u64>, StoreError> {
        T::put_record(self, key, value, expect, now_ms).await
    }

    async fn put_record_deferred(
        &self,
        key: &str,
        value: &str,
        expect: Expect,
        now_ms: i64,
    ) -> Result<Option<u64>, StoreError> {
        T::put_record_deferred(self, key, value, expect, now_ms).await
    }

    async fn delete_record(&self, key: &str, expect: Expect) -> Result<bool, StoreError> {
        T::delete_record(self, key, expect).await
    }

    async fn records(&self, prefix: &str) -> Result<Vec<Record>, StoreError> {
        T::records(self, prefix).await
    }
}
