//! Jobs: the durable units of work of the job engine ([`crate::engine`]), and their names.
//!
//! Every accepted event becomes a job before the platform that sent it gets its 200, so a crash
//! loses nothing. A job belongs to a [`JobQueue`] (its kind: the handler that runs it), is
//! deduplicated by its [`JobKey`], and runs one at a time per [`Lane`] in `order_key` order (a
//! lane is one customer of one business account inbound, one chat outbound).

use serde::{Deserialize, Serialize};

use crate::ids::{ChatItemId, ChatMessageId, InitialContactId, XEventId, XUserId};

/// Why a stored or typed job key or lane was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobNameError {
    #[error("a job {0} is empty")]
    Empty(&'static str),
    #[error("a job {0} is longer than {MAX_NAME_BYTES} bytes")]
    TooLong(&'static str),
    #[error("a job {0} contains a control character")]
    ControlCharacter(&'static str),
}

/// The longest job key or lane accepted (DynamoDB keys, SQS message group ids stay far below
/// their limits).
pub const MAX_NAME_BYTES: usize = 512;

fn check_name(what: &'static str, s: &str) -> Result<(), JobNameError> {
    if s.is_empty() {
        Err(JobNameError::Empty(what))
    } else if s.len() > MAX_NAME_BYTES {
        Err(JobNameError::TooLong(what))
    } else if s.chars().any(char::is_control) {
        Err(JobNameError::ControlCharacter(what))
    } else {
        Ok(())
    }
}

/// A job's deduplication key, unique within its queue: a second job with the same key is
/// dropped. Built here and nowhere else; read back from a store or an operator with
/// [`JobKey::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobKey(String);

impl JobKey {
    /// The inbound job of a DM: X delivers the same event once per subscribed account, so the
    /// account is part of the key (`<business>:<event id>`).
    pub fn inbound_dm(business: &XUserId, event: &XEventId) -> Self {
        Self(format!("{business}:{event}"))
    }

    /// The inbound job of an X Chat message: `<business>:chat:<message id>` (the message id is
    /// the sender's UUID, so it cannot be mistaken for a DM's numeric event id).
    pub fn inbound_chat(business: &XUserId, message: &ChatMessageId) -> Self {
        Self(format!("{business}:chat:{message}"))
    }

    /// The outbound job of a chat item (`<item id>`), or of its `n`-th file when the item
    /// carries several (`<item id>#<n>`), so that a retry of one file never sends another twice.
    pub fn chat_item(item: &ChatItemId, file: Option<usize>) -> Self {
        match file {
            None => Self(item.to_string()),
            Some(n) => Self(format!("{item}#{n}")),
        }
    }

    /// A key as a store holds it or an operator typed it.
    pub fn parse(s: impl Into<String>) -> Result<Self, JobNameError> {
        let s = s.into();
        check_name("key", &s)?;
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for JobKey {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for JobKey {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl AsRef<str> for JobKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for JobKey {
    type Error = JobNameError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl From<JobKey> for String {
    fn from(name: JobKey) -> Self {
        name.0
    }
}

impl std::fmt::Display for JobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A lane: the jobs that must run one at a time, in order — one customer of one business
/// account inbound, one chat outbound. Built here and nowhere else; read back from a store with
/// [`Lane::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Lane(String);

impl Lane {
    /// An inbound lane: one customer of one business account (`<business>:<customer>`).
    pub fn customer(business: &XUserId, customer: &XUserId) -> Self {
        Self(format!("{business}:{customer}"))
    }

    /// An outbound lane: one chat, named by its initial contact (transfers keep it).
    pub fn chat(chat: &InitialContactId) -> Self {
        Self(chat.to_string())
    }

    /// A lane as a store (or a wake-up message) holds it.
    pub fn parse(s: impl Into<String>) -> Result<Self, JobNameError> {
        let s = s.into();
        check_name("lane", &s)?;
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Lane {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Lane {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl AsRef<str> for Lane {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Lane {
    type Error = JobNameError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl From<Lane> for String {
    fn from(name: Lane) -> Self {
        name.0
    }
}

impl std::fmt::Display for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobQueue {
    /// X → Connect: customers' DMs into their chats.
    Inbound,
    /// Connect → X: chat items (agent messages, files, the chat's end) to the customer.
    Outbound,
}

impl JobQueue {
    /// Every queue, in the order dispatchers are started and stores are swept.
    pub const ALL: [JobQueue; 2] = [JobQueue::Inbound, JobQueue::Outbound];

    pub fn as_str(self) -> &'static str {
        match self {
            JobQueue::Inbound => "inbound",
            JobQueue::Outbound => "outbound",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "inbound" => Some(JobQueue::Inbound),
            "outbound" => Some(JobQueue::Outbound),
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

/// One open job of a lane, as [`Store::lane_jobs`](crate::ports::Store::lane_jobs) lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneEntry {
    pub order_key: i64,
    pub key: JobKey,
}

/// A job to accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub queue: JobQueue,
    /// Deduplication key: a second job with the same key is dropped.
    pub key: JobKey,
    pub lane: Lane,
    pub order_key: i64,
    /// The event, serialised by the core.
    pub payload: String,
    pub accepted_at_ms: i64,
    /// Not to be started before this time (lets events that arrive slightly out of order settle).
    pub not_before_ms: i64,
}

/// How long done and failed jobs are kept (deduplication, inspection) before they are purged
/// (`serve` purges hourly, DynamoDB's TTL expires them). An event offered again after that is
/// new to the store, so every bound on how old an accepted event may be
/// ([`BridgeConfig::max_event_age_ms`](crate::BridgeConfig::max_event_age_ms), the app's SNS
/// message age) stays well inside it (docs/delivery.md, Replays).
pub const JOB_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub queue: JobQueue,
    pub key: JobKey,
    pub lane: Lane,
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

/// How much work a job queue holds ([`Store::backlog`](crate::ports::Store::backlog)): the
/// jobs per state that matters to an operator, each count at most the limit asked for, and when
/// the oldest open job was accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    pub pending: u64,
    pub processing: u64,
    pub failed: u64,
    /// `accepted_at_ms` of the oldest pending or processing job; `None` when there is none.
    pub oldest_open_accepted_ms: Option<i64>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_lanes_are_spelled_in_one_place() {
        let business = XUserId::parse("10").unwrap();
        let customer = XUserId::parse("20").unwrap();
        let event = XEventId::parse("30").unwrap();
        assert_eq!(JobKey::inbound_dm(&business, &event).as_str(), "10:30");
        assert_eq!(Lane::customer(&business, &customer).as_str(), "10:20");
        let item = ChatItemId::parse("i-1").unwrap();
        assert_eq!(JobKey::chat_item(&item, None).as_str(), "i-1");
        assert_eq!(JobKey::chat_item(&item, Some(2)).as_str(), "i-1#2");
        let chat = InitialContactId::parse("c-1").unwrap();
        assert_eq!(Lane::chat(&chat).as_str(), "c-1");
    }

    #[test]
    fn stored_names_are_checked() {
        assert_eq!(JobKey::parse("10:30").unwrap().to_string(), "10:30");
        assert_eq!(JobKey::parse(""), Err(JobNameError::Empty("key")));
        assert_eq!(
            Lane::parse("a\nb"),
            Err(JobNameError::ControlCharacter("lane"))
        );
        assert_eq!(
            Lane::parse("x".repeat(MAX_NAME_BYTES + 1)),
            Err(JobNameError::TooLong("lane"))
        );
        assert!(
            JobQueue::ALL
                .iter()
                .all(|q| JobQueue::parse(q.as_str()) == Some(*q))
        );
    }
}
