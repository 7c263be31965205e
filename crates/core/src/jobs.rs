//! Durable work items: the inbox (X → Connect) and the outbox (Connect → X).
//!
//! Every accepted event becomes a job before the platform that sent it gets its 200, so a crash
//! loses nothing. Jobs are deduplicated by `key`, and run one at a time per `lane` in `order_key`
//! order (a lane is one X user for the inbox, one chat for the outbox).

use serde::{Deserialize, Serialize};

use crate::ids::{InitialContactId, XEventId, XUserId};

/// How job keys and lanes are spelled: built here and nowhere else.
pub mod names {
    use super::{InitialContactId, XEventId, XUserId};

    /// The inbox job of a DM: X delivers the same event once per subscribed account, so the
    /// account is part of the key (`<business>:<event id>`).
    pub fn inbound_key(business: &XUserId, event: &XEventId) -> String {
        format!("{business}:{event}")
    }

    /// An inbox lane: one customer of one business account (`<business>:<customer>`).
    pub fn inbound_lane(business: &XUserId, customer: &XUserId) -> String {
        format!("{business}:{customer}")
    }

    /// An outbox lane: one chat, named by its initial contact (transfers keep it).
    pub fn outbound_lane(chat: &InitialContactId) -> String {
        chat.to_string()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Queue {
    /// X → Connect.
    Inbound,
    /// Connect → X.
    Outbound,
}

impl Queue {
    pub fn as_str(self) -> &'static str {
        match self {
            Queue::Inbound => "inbound",
            Queue::Outbound => "outbound",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "inbound" => Some(Queue::Inbound),
            "outbound" => Some(Queue::Outbound),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its turn (or for its retry time).
    Pending,
    /// Claimed by a worker until `lease_until_ms`.
    Processing,
    /// Finished; kept for deduplication until the retention period ends.
    Done,
    /// Gave up; kept for inspection and manual retry. Does not block its lane.
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Processing => "processing",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(JobState::Pending),
            "processing" => Some(JobState::Processing),
            "done" => Some(JobState::Done),
            "failed" => Some(JobState::Failed),
            _ => None,
        }
    }

    /// Pending and processing jobs hold their lane.
    pub fn is_open(self) -> bool {
        matches!(self, JobState::Pending | JobState::Processing)
    }
}

/// The state a claimed job ends in ([`Store::finish`](crate::ports::Store::finish)): only the
/// two final states, so a finish can never reopen a job or fake a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FinalState {
    Done,
    Failed,
}

impl FinalState {
    pub fn state(self) -> JobState {
        match self {
            FinalState::Done => JobState::Done,
            FinalState::Failed => JobState::Failed,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.state().as_str()
    }
}

impl From<FinalState> for JobState {
    fn from(state: FinalState) -> Self {
        state.state()
    }
}

/// A job to accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub queue: Queue,
    /// Deduplication key: a second job with the same key is dropped.
    pub key: String,
    pub lane: String,
    pub order_key: i64,
    /// The event, serialised by the core.
    pub payload: String,
    pub accepted_at_ms: i64,
    /// Not to be started before this time (lets events that arrive slightly out of order settle).
    pub not_before_ms: i64,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub queue: Queue,
    pub key: String,
    pub lane: String,
    pub order_key: i64,
    pub payload: String,
    pub state: JobState,
    pub attempts: u32,
    pub accepted_at_ms: i64,
    pub not_before_ms: i64,
    pub lease_until_ms: i64,
    pub updated_at_ms: i64,
    pub last_error: Option<String>,
    /// When the job was first claimed: set by the first [`claim`](crate::ports::Store::claim)
    /// and kept by later ones (and by `reschedule` and `release_claims`); `None` until then,
    /// and again after the operator's [`retry_failed`](crate::ports::Store::retry_failed).
    /// As read before a claim, `Some` means an earlier attempt ran (and may have sent part of
    /// the job): an outbound job then reads back what X already has from this time on.
    pub first_claimed_at_ms: Option<i64>,
}

impl Job {
    /// When a worker may take this job: its retry time if pending, its lease end if processing.
    pub fn due_at_ms(&self) -> i64 {
        match self.state {
            JobState::Processing => self.lease_until_ms,
            _ => self.not_before_ms,
        }
    }
}
