//! Builders for test values.

use xdm_core::ids::{ConnectionToken, InitialContactId, ParticipantToken, XUserId};
use xdm_core::jobs::{Job, JobKey, JobQueue, JobState, Lane, NewJob};
use xdm_core::profile::XProfile;
use xdm_core::session::{ConnectionCredentials, Session, SessionStatus};

pub fn uid(s: &str) -> XUserId {
    XUserId::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

pub fn cid(s: &str) -> InitialContactId {
    InitialContactId::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// A starting session opened at `at_ms`.
pub fn session(business: &str, customer: &str, contact: &str, at_ms: i64) -> Session {
    Session {
        business: uid(business),
        customer: uid(customer),
        initial_contact_id: cid(contact),
        participant_token: ParticipantToken::new(format!("participant-{contact}")),
        opened_by: format!("client-token-{contact}"),
        connection: None,
        status: SessionStatus::Starting,
        created_at_ms: at_ms,
        updated_at_ms: at_ms,
    }
}

pub fn connection(token: &str, expires_at_ms: Option<i64>) -> ConnectionCredentials {
    ConnectionCredentials {
        token: ConnectionToken::new(token),
        expires_at_ms,
    }
}

pub fn full_profile(id: &str, name: &str) -> XProfile {
    XProfile {
        id: uid(id),
        name: Some(name.to_owned()),
        username: Some(format!("user{id}")),
        profile_image_url: Some(format!(
            "https://pbs.twimg.com/profile_images/{id}/a_normal.jpg"
        )),
        verified: Some(false),
        followers_count: Some(u64::MAX),
    }
}

/// A job key from a test's literal.
pub fn k(key: &str) -> JobKey {
    JobKey::parse(key).unwrap_or_else(|e| panic!("{key}: {e}"))
}

/// A lane from a test's literal.
pub fn l(lane: &str) -> Lane {
    Lane::parse(lane).unwrap_or_else(|e| panic!("{lane}: {e}"))
}

/// A job accepted at `accepted_at_ms`, due at `not_before_ms`.
pub fn new_job(
    queue: JobQueue,
    key: &str,
    lane: &str,
    order_key: i64,
    accepted_at_ms: i64,
    not_before_ms: i64,
) -> NewJob {
    NewJob {
        queue,
        key: k(key),
        lane: l(lane),
        order_key,
        payload: format!("{{\"event\":\"{key}\",\"text\":\"héllo ✓\"}}"),
        accepted_at_ms,
        not_before_ms,
    }
}

/// A simple inbound job: accepted and due at 0.
pub fn job_in(key: &str, lane: &str, order_key: i64) -> NewJob {
    new_job(JobQueue::Inbound, key, lane, order_key, 0, 0)
}

/// The job `new` becomes once enqueued.
pub fn stored(new: &NewJob) -> Job {
    Job {
        queue: new.queue,
        key: new.key.clone(),
        lane: new.lane.clone(),
        order_key: new.order_key,
        payload: new.payload.clone(),
        state: JobState::Pending,
        attempts: 0,
        accepted_at_ms: new.accepted_at_ms,
        not_before_ms: new.not_before_ms,
        lease_until_ms: 0,
        updated_at_ms: new.accepted_at_ms,
        last_error: None,
        first_claimed_at_ms: None,
    }
}

pub fn keys(jobs: &[Job]) -> Vec<&str> {
    jobs.iter().map(|j| j.key.as_str()).collect()
}
