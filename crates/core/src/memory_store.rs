//! An in-memory `Store`: for unit tests of the core and as the reference the conformance suite
//! holds the real backends to. Not durable.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::ids::{InitialContactId, XUserId};
use crate::jobs::{FinalState, Job, JobKey, JobQueue, JobState, NewJob};
use crate::ports::{SessionInsert, Store, StoreError};
use crate::profile::{CachedProfile, XProfile};
use crate::records::{Expect, Record};
use crate::session::{ConnectionCredentials, Session, SessionStatus};

#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// `lane_heads` calls so far (tests of how often the engine reads every lane).
    lane_heads_reads: AtomicU64,
    /// Tests of the engine: every claim (deferred ones too) waits here until the barrier's number
    /// of claims are being made at once.
    #[cfg(test)]
    claim_gate: Option<tokio::sync::Barrier>,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<InitialContactId, Session>,
    profiles: HashMap<XUserId, CachedProfile>,
    jobs: BTreeMap<(JobQueue, JobKey), Job>,
    records: BTreeMap<String, Record>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store whose claims go through only once `claims` of them are being made at once.
    #[cfg(test)]
    pub(crate) fn with_claim_gate(claims: usize) -> Self {
        Self {
            claim_gate: Some(tokio::sync::Barrier::new(claims)),
            ..Self::default()
        }
    }

    /// How many times every lane's head was read (`lane_heads`).
    pub fn lane_heads_reads(&self) -> u64 {
        self.lane_heads_reads.load(Ordering::Relaxed)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::Unavailable("memory store poisoned".into()))
    }
}

impl Inner {
    fn open_session(&self, business: &XUserId, customer: &XUserId) -> Option<&Session> {
        self.sessions
            .values()
            .find(|s| s.status.is_open() && &s.business == business && &s.customer == customer)
    }

    /// The job if it is still held by the claim numbered `attempt` (the fence of `renew_lease`,
    /// `reschedule` and `finish`).
    fn claimed_mut(&mut self, queue: JobQueue, key: &JobKey, attempt: u32) -> Option<&mut Job> {
        self.jobs
            .get_mut(&(queue, key.clone()))
            .filter(|j| j.state == JobState::Processing && j.attempts == attempt)
    }

    /// True when `job` is the first open job of its lane.
    fn is_head(&self, job: &Job) -> bool {
        !self.jobs.values().any(|o| {
            o.queue == job.queue
                && o.lane == job.lane
                && o.state.is_open()
                && (o.order_key, &o.key) < (job.order_key, &job.key)
        })
    }
}

impl Store for MemoryStore {
    async fn open_session(
        &self,
        business: &XUserId,
        customer: &XUserId,
    ) -> Result<Option<Session>, StoreError> {
        Ok(self.lock()?.open_session(business, customer).cloned())
    }

    async fn session_by_initial_contact(
        &self,
        id: &InitialContactId,
    ) -> Result<Option<Session>, StoreError> {
        Ok(self.lock()?.sessions.get(id).cloned())
    }

    async fn insert_session(&self, session: &Session) -> Result<SessionInsert, StoreError> {
        let mut inner = self.lock()?;
        if let Some(open) = inner.open_session(&session.business, &session.customer) {
            return Ok(SessionInsert::OpenExists(open.clone()));
        }
        if let Some(same) = inner.sessions.get(&session.initial_contact_id) {
            // The same contact, already ended: it cannot be reopened.
            return Err(StoreError::Corrupt(format!(
                "session {} exists with status {}",
                same.initial_contact_id,
                same.status.as_str()
            )));
        }
        inner
            .sessions
            .insert(session.initial_contact_id.clone(), session.clone());
        Ok(SessionInsert::Inserted)
    }

    async fn set_session_connection(
        &self,
        id: &InitialContactId,
        connection: &ConnectionCredentials,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        if let Some(s) = inner.sessions.get_mut(id) {
            s.connection = Some(connection.clone());
            if s.status != SessionStatus::Ended {
                s.status = SessionStatus::Live;
            }
            s.updated_at_ms = now_ms;
        }
        Ok(())
    }

    async fn end_session(&self, id: &InitialContactId, now_ms: i64) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        match inner.sessions.get_mut(id) {
            Some(s) if s.status != SessionStatus::Ended => {
                s.status = SessionStatus::Ended;
                s.updated_at_ms = now_ms;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn cached_profile(
        &self,
        id: &XUserId,
        now_ms: i64,
    ) -> Result<Option<XProfile>, StoreError> {
        Ok(self
            .lock()?
            .profiles
            .get(id)
            .filter(|c| c.expires_at_ms > now_ms)
            .map(|c| c.profile.clone()))
    }

    async fn cache_profile(
        &self,
        profile: &XProfile,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        self.lock()?.profiles.insert(
            profile.id.clone(),
            CachedProfile {
                profile: profile.clone(),
                expires_at_ms,
            },
        );
        Ok(())
    }

    async fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<bool>, StoreError> {
        let mut inner = self.lock()?;
        Ok(jobs
            .iter()
            .map(|j| {
                let key = (j.queue, j.key.clone());
                if inner.jobs.contains_key(&key) {
                    return false;
                }
                inner.jobs.insert(
                    key,
                    Job {
                        queue: j.queue,
                        key: j.key.clone(),
                        lane: j.lane.clone(),
                        order_key: j.order_key,
                        payload: j.payload.clone(),
                        state: JobState::Pending,
                        attempts: 0,
                        accepted_at_ms: j.accepted_at_ms,
                        not_before_ms: j.not_before_ms,
                        lease_until_ms: 0,
                        updated_at_ms: j.accepted_at_ms,
                        last_error: None,
                        first_claimed_at_ms: None,
                    },
                );
                true
            })
            .collect())
    }

    async fn lane_heads(
        &self,
        queue: JobQueue,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        self.lane_heads_reads.fetch_add(1, Ordering::Relaxed);
        let inner = self.lock()?;
        let mut heads: Vec<Job> = inner
            .jobs
            .values()
            .filter(|j| j.queue == queue && j.state.is_open() && inner.is_head(j))
            .filter(|j| !(j.state == JobState::Processing && j.lease_until_ms > now_ms))
            .cloned()
            .collect();
        heads.sort_by(|a, b| (a.due_at_ms(), &a.key).cmp(&(b.due_at_ms(), &b.key)));
        heads.truncate(limit);
        Ok(heads)
    }

    async fn claim(
        &self,
        queue: JobQueue,
        key: &JobKey,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        #[cfg(test)]
        if let Some(gate) = &self.claim_gate {
            gate.wait().await;
        }
        let mut inner = self.lock()?;
        let Some(job) = inner.jobs.get(&(queue, key.clone())) else {
            return Ok(false);
        };
        let due = match job.state {
            JobState::Pending => job.not_before_ms <= now_ms,
            JobState::Processing => job.lease_until_ms <= now_ms,
            JobState::Done | JobState::Failed => false,
        };
        if !due || !inner.is_head(job) {
            return Ok(false);
        }
        if let Some(job) = inner.jobs.get_mut(&(queue, key.clone())) {
            job.state = JobState::Processing;
            job.attempts += 1;
            job.lease_until_ms = lease_until_ms;
            job.updated_at_ms = now_ms;
            job.first_claimed_at_ms.get_or_insert(now_ms);
        }
        Ok(true)
    }

    async fn renew_lease(
        &self,
        queue: JobQueue,
        key: &JobKey,
        attempt: u32,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        let Some(job) = inner.claimed_mut(queue, key, attempt) else {
            return Ok(false);
        };
        job.lease_until_ms = lease_until_ms;
        job.updated_at_ms = now_ms;
        Ok(true)
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
        let mut inner = self.lock()?;
        let Some(job) = inner.claimed_mut(queue, key, attempt) else {
            return Ok(false);
        };
        job.state = JobState::Pending;
        job.not_before_ms = not_before_ms;
        job.lease_until_ms = 0;
        job.last_error = Some(error.to_owned());
        job.updated_at_ms = now_ms;
        Ok(true)
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
        let mut inner = self.lock()?;
        let Some(job) = inner.claimed_mut(queue, key, attempt) else {
            return Ok(false);
        };
        job.state = state.state();
        job.lease_until_ms = 0;
        job.last_error = error.map(str::to_owned).or(job.last_error.take());
        job.updated_at_ms = now_ms;
        Ok(true)
    }

    async fn job(&self, queue: JobQueue, key: &JobKey) -> Result<Option<Job>, StoreError> {
        Ok(self.lock()?.jobs.get(&(queue, key.clone())).cloned())
    }

    async fn jobs(
        &self,
        queue: JobQueue,
        state: Option<JobState>,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        let inner = self.lock()?;
        let mut jobs: Vec<Job> = inner
            .jobs
            .values()
            .filter(|j| j.queue == queue && state.is_none_or(|s| j.state == s))
            .cloned()
            .collect();
        jobs.sort_by(|a, b| (a.accepted_at_ms, &a.key).cmp(&(b.accepted_at_ms, &b.key)));
        jobs.truncate(limit);
        Ok(jobs)
    }

    async fn retry_failed(
        &self,
        queue: JobQueue,
        key: &JobKey,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        match self.lock()?.jobs.get_mut(&(queue, key.clone())) {
            Some(job) if job.state == JobState::Failed => {
                job.state = JobState::Pending;
                job.attempts = 0;
                job.not_before_ms = now_ms;
                job.updated_at_ms = now_ms;
                // A new start: see `Store::retry_failed`.
                job.first_claimed_at_ms = None;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release_claims(&self, queue: JobQueue, now_ms: i64) -> Result<u64, StoreError> {
        let mut n = 0;
        for job in self.lock()?.jobs.values_mut() {
            if job.queue == queue && job.state == JobState::Processing {
                job.state = JobState::Pending;
                job.lease_until_ms = 0;
                job.not_before_ms = now_ms;
                job.updated_at_ms = now_ms;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn purge(
        &self,
        jobs_before_ms: i64,
        sessions_before_ms: i64,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let mut inner = self.lock()?;
        let before = inner.jobs.len() + inner.sessions.len() + inner.profiles.len();
        inner
            .jobs
            .retain(|_, j| j.state.is_open() || j.updated_at_ms >= jobs_before_ms);
        inner.sessions.retain(|_, s| {
            s.status != SessionStatus::Ended || s.updated_at_ms >= sessions_before_ms
        });
        inner.profiles.retain(|_, p| p.expires_at_ms > now_ms);
        let after = inner.jobs.len() + inner.sessions.len() + inner.profiles.len();
        Ok(u64::try_from(before - after).unwrap_or(0))
    }

    async fn record(&self, key: &str) -> Result<Option<Record>, StoreError> {
        Ok(self.lock()?.records.get(key).cloned())
    }

    async fn put_record(
        &self,
        key: &str,
        value: &str,
        expect: Expect,
        now_ms: i64,
    ) -> Result<Option<u64>, StoreError> {
        let mut inner = self.lock()?;
        let current = inner.records.get(key).map(|r| r.version);
        if !expect.holds(current) {
            return Ok(None);
        }
        let version = current.unwrap_or(0) + 1;
        inner.records.insert(
            key.to_owned(),
            Record {
                key: key.to_owned(),
                value: value.to_owned(),
                version,
                updated_at_ms: now_ms,
            },
        );
        Ok(Some(version))
    }

    async fn delete_record(&self, key: &str, expect: Expect) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        let current = inner.records.get(key).map(|r| r.version);
        if current.is_none() || expect == Expect::Absent || !expect.holds(current) {
            return Ok(false);
        }
        Ok(inner.records.remove(key).is_some())
    }

    async fn records(&self, prefix: &str) -> Result<Vec<Record>, StoreError> {
        Ok(self
            .lock()?
            .records
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, r)| r.clone())
            .collect())
    }
}
