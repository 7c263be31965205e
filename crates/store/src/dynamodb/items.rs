//! Items ⇄ core types, and the key encodings of the table design (see `mod.rs`).
//!
//! Written by hand rather than through serde: a dozen attributes per item, several of them
//! derived (index keys, lane members, TTL) and present only in some states, which a serde shape
//! would hide rather than state.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use xdm_core::ids::{ConnectionToken, InitialContactId, ParticipantToken, XUserId};
use xdm_core::jobs::{Job, JobKey, JobQueue, JobState, Lane, NewJob};
use xdm_core::ports::StoreError;
use xdm_core::profile::XProfile;
use xdm_core::records::Record;
use xdm_core::session::{ConnectionCredentials, Session, SessionStatus};

pub(crate) type Item = HashMap<String, AttributeValue>;

// -- attribute names -------------------------------------------------------------------------
// Every table's partition key is a string; they are named in `tables.rs` (PK / USER_ID).

pub(crate) const PK: &str = "pk";
/// TTL attribute of every table: epoch seconds, set only on items that may expire.
pub(crate) const EXPIRES_AT: &str = "expires_at";

// sessions
pub(crate) const INITIAL_CONTACT_ID: &str = "initial_contact_id";
pub(crate) const BUSINESS: &str = "business";
pub(crate) const CUSTOMER: &str = "customer";
pub(crate) const PARTICIPANT_TOKEN: &str = "participant_token";
pub(crate) const OPENED_BY: &str = "opened_by";
pub(crate) const CONNECTION_TOKEN: &str = "connection_token";
pub(crate) const CONNECTION_EXPIRES_AT_MS: &str = "connection_expires_at_ms";
pub(crate) const STATUS: &str = "status";
pub(crate) const CREATED_AT_MS: &str = "created_at_ms";
pub(crate) const UPDATED_AT_MS: &str = "updated_at_ms";
/// `ended_by_age` hash key: `"ended"` on ended sessions, absent otherwise.
pub(crate) const ENDED_GROUP: &str = "ended_group";
pub(crate) const ENDED_GROUP_VALUE: &str = "ended";

// profiles
pub(crate) const USER_ID: &str = "user_id";
pub(crate) const PROFILE: &str = "profile";
pub(crate) const EXPIRES_AT_MS: &str = "expires_at_ms";
/// `by_expiry` hash key: `"profile"` on every profile.
pub(crate) const EXPIRY_GROUP: &str = "expiry_group";
pub(crate) const EXPIRY_GROUP_VALUE: &str = "profile";

// jobs
pub(crate) const QUEUE: &str = "queue";
pub(crate) const KEY: &str = "key";
pub(crate) const LANE: &str = "lane";
pub(crate) const ORDER_KEY: &str = "order_key";
pub(crate) const PAYLOAD: &str = "payload";
pub(crate) const STATE: &str = "state";
pub(crate) const ATTEMPTS: &str = "attempts";
pub(crate) const ACCEPTED_AT_MS: &str = "accepted_at_ms";
pub(crate) const NOT_BEFORE_MS: &str = "not_before_ms";
pub(crate) const LEASE_UNTIL_MS: &str = "lease_until_ms";
pub(crate) const LAST_ERROR: &str = "last_error";
/// Absent until the job's first claim (and again after `retry_failed`).
pub(crate) const FIRST_CLAIMED_AT_MS: &str = "first_claimed_at_ms";
/// `by_state` hash key: `{queue}#open`, `{queue}#done` or `{queue}#failed` ([`queue_state`]).
pub(crate) const QUEUE_STATE: &str = "queue_state";
/// `by_state` range key: `{accepted_at_ms as sortable hex}#{key}`.
pub(crate) const ACCEPTED_KEY: &str = "accepted_key";
/// `finished_by_age` hash key: the queue, on done and failed jobs only.
pub(crate) const FINISHED_QUEUE: &str = "finished_queue";

// lanes
/// The lane's open jobs: a string set of [`member`]s.
pub(crate) const OPEN: &str = "open";
/// Bumped by every change of `open`; `claim` conditions on it.
pub(crate) const VER: &str = "ver";
/// `open_lanes` hash key: the queue, while the lane may have open jobs.
pub(crate) const OPEN_QUEUE: &str = "open_queue";

// records (partition key: `key`, [`KEY`]; `updated_at_ms`: [`UPDATED_AT_MS`])
/// The record's value: may hold secrets, never logged.
pub(crate) const VALUE: &str = "value";
pub(crate) const VERSION: &str = "version";

// -- keys ------------------------------------------------------------------------------------

pub(crate) fn session_pk(id: &InitialContactId) -> String {
    format!("contact#{id}")
}

/// The guard item that exists exactly while the pair has an open session. X ids are digits,
/// so `#` cannot be part of them.
pub(crate) fn guard_pk(business: &XUserId, customer: &XUserId) -> String {
    format!("open#{business}#{customer}")
}

pub(crate) fn job_pk(queue: JobQueue, key: &str) -> String {
    format!("{}#{key}", queue.as_str())
}

pub(crate) fn lane_pk(queue: JobQueue, lane: &str) -> String {
    format!("{}#{lane}", queue.as_str())
}

/// The `by_state` partition of a job in `state`: `{queue}#open` while it is pending or
/// processing — one partition, so that a claim, a retry later and a claim given back leave the
/// index alone (a changed index key is a delete and a put, each billed) — then `{queue}#done`
/// or `{queue}#failed`.
pub(crate) fn queue_state(queue: JobQueue, state: JobState) -> String {
    let partition = if state.is_open() {
        "open"
    } else {
        state.as_str()
    };
    format!("{}#{partition}", queue.as_str())
}

/// The partition an open job in `state` had in `by_state` before open jobs shared one
/// ([`queue_state`]): a job written by an earlier version keeps it until its next state change,
/// so the listings read these partitions too.
pub(crate) fn former_queue_state(queue: JobQueue, state: JobState) -> Option<String> {
    state
        .is_open()
        .then(|| format!("{}#{}", queue.as_str(), state.as_str()))
}

/// An i64 as 16 hex digits whose string order is the numeric order (offset binary).
pub(crate) fn sortable(n: i64) -> String {
    format!("{:016x}", n.cast_unsigned() ^ (1 << 63))
}

fn unsortable(s: &str) -> Option<i64> {
    if s.len() != 16 {
        return None;
    }
    let raw = u64::from_str_radix(s, 16).ok()?;
    Some((raw ^ (1 << 63)).cast_signed())
}

/// A job's entry in its lane's `open` set: string order is `(order_key, key)` order, the order
/// the lane runs in (keys compare bytewise, as SQLite's BINARY collation and Rust's `str` do).
pub(crate) fn member(order_key: i64, key: &str) -> String {
    format!("{}#{key}", sortable(order_key))
}

/// `(order_key, key)` of a lane member.
pub(crate) fn parse_member(member: &str) -> Option<(i64, &str)> {
    let (order, key) = member.split_at_checked(16)?;
    let key = key.strip_prefix('#')?;
    Some((unsortable(order)?, key))
}

pub(crate) fn accepted_key(accepted_at_ms: i64, key: &str) -> String {
    format!("{}#{key}", sortable(accepted_at_ms))
}

/// The `accepted_at_ms` an [`accepted_key`] starts with.
pub(crate) fn accepted_at_of(accepted_key: &str) -> Option<i64> {
    accepted_key
        .split_once('#')
        .and_then(|(at, _)| unsortable(at))
}

/// Epoch seconds for the TTL attribute: rounded up, so DynamoDB never deletes an item before
/// the millisecond it expires at.
pub(crate) fn ttl_seconds(at_ms: i64) -> i64 {
    at_ms.div_euclid(1000) + i64::from(at_ms.rem_euclid(1000) != 0)
}

// -- attribute values ------------------------------------------------------------------------

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn key_of(name: &str, value: impl Into<String>) -> Item {
    HashMap::from([(name.to_owned(), s(value))])
}

/// Reads typed attributes of one item, naming the item in errors.
pub(crate) struct Reader<'a> {
    item: &'a Item,
    what: &'a str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(item: &'a Item, what: &'a str) -> Self {
        Self { item, what }
    }

    fn corrupt(&self, attr: &str, problem: &str) -> StoreError {
        StoreError::Corrupt(format!("dynamodb {}: {attr}: {problem}", self.what))
    }

    pub(crate) fn opt_s(&self, attr: &str) -> Result<Option<&'a str>, StoreError> {
        match self.item.get(attr) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v.as_str())),
            Some(_) => Err(self.corrupt(attr, "not a string")),
        }
    }

    pub(crate) fn s(&self, attr: &str) -> Result<&'a str, StoreError> {
        self.opt_s(attr)?
            .ok_or_else(|| self.corrupt(attr, "missing"))
    }

    pub(crate) fn opt_n(&self, attr: &str) -> Result<Option<i64>, StoreError> {
        match self.item.get(attr) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(v)) => v
                .parse()
                .map(Some)
                .map_err(|_| self.corrupt(attr, "not a 64-bit integer")),
            Some(_) => Err(self.corrupt(attr, "not a number")),
        }
    }

    pub(crate) fn n(&self, attr: &str) -> Result<i64, StoreError> {
        self.opt_n(attr)?
            .ok_or_else(|| self.corrupt(attr, "missing"))
    }

    /// A string set; absent means empty (DynamoDB removes a set whose last member is deleted).
    pub(crate) fn ss(&self, attr: &str) -> Result<&'a [String], StoreError> {
        match self.item.get(attr) {
            None => Ok(&[]),
            Some(AttributeValue::Ss(v)) => Ok(v.as_slice()),
            Some(_) => Err(self.corrupt(attr, "not a string set")),
        }
    }
}

/// The string partition keys (`key_attr`) of the items of a KEYS_ONLY index query.
pub(crate) fn keys_of(items: &[Item], key_attr: &str) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| match i.get(key_attr) {
            Some(AttributeValue::S(k)) => Some(k.clone()),
            _ => None,
        })
        .collect()
}

/// True when the item carries a TTL that has passed at `now_s`: DynamoDB may not have deleted
/// it yet (it takes up to about two days; emulators never do), but it no longer exists.
pub(crate) fn is_expired(item: &Item, now_s: i64) -> bool {
    match item.get(EXPIRES_AT) {
        Some(AttributeValue::N(v)) => v.parse::<i64>().is_ok_and(|at| at <= now_s),
        _ => false,
    }
}

// -- sessions --------------------------------------------------------------------------------

/// The session item. `ended_ttl_s` is the TTL given to an ended session.
pub(crate) fn session_item(session: &Session, ended_ttl_s: i64) -> Item {
    let mut item = HashMap::from([
        (PK.to_owned(), s(session_pk(&session.initial_contact_id))),
        (
            INITIAL_CONTACT_ID.to_owned(),
            s(session.initial_contact_id.as_str()),
        ),
        (BUSINESS.to_owned(), s(session.business.as_str())),
        (CUSTOMER.to_owned(), s(session.customer.as_str())),
        (
            PARTICIPANT_TOKEN.to_owned(),
            s(session.participant_token.expose()),
        ),
        (OPENED_BY.to_owned(), s(session.opened_by.as_str())),
        (STATUS.to_owned(), s(session.status.as_str())),
        (CREATED_AT_MS.to_owned(), n(session.created_at_ms)),
        (UPDATED_AT_MS.to_owned(), n(session.updated_at_ms)),
    ]);
    if let Some(connection) = &session.connection {
        item.insert(CONNECTION_TOKEN.to_owned(), s(connection.token.expose()));
        if let Some(at) = connection.expires_at_ms {
            item.insert(CONNECTION_EXPIRES_AT_MS.to_owned(), n(at));
        }
    }
    if !session.status.is_open() {
        item.insert(ENDED_GROUP.to_owned(), s(ENDED_GROUP_VALUE));
        item.insert(EXPIRES_AT.to_owned(), n(ended_ttl_s));
    }
    item
}

pub(crate) fn guard_item(session: &Session) -> Item {
    HashMap::from([
        (
            PK.to_owned(),
            s(guard_pk(&session.business, &session.customer)),
        ),
        (
            INITIAL_CONTACT_ID.to_owned(),
            s(session.initial_contact_id.as_str()),
        ),
        (BUSINESS.to_owned(), s(session.business.as_str())),
        (CUSTOMER.to_owned(), s(session.customer.as_str())),
        (CREATED_AT_MS.to_owned(), n(session.created_at_ms)),
    ])
}

/// The initial contact id a guard item points at.
pub(crate) fn guard_target(item: &Item) -> Result<InitialContactId, StoreError> {
    let r = Reader::new(item, "session guard");
    let id = r.s(INITIAL_CONTACT_ID)?;
    InitialContactId::parse(id)
        .map_err(|e| StoreError::Corrupt(format!("dynamodb session guard: {e}")))
}

pub(crate) fn session_from_item(item: &Item) -> Result<Session, StoreError> {
    let r = Reader::new(item, "session");
    let id = r.s(INITIAL_CONTACT_ID)?;
    let corrupt = |what: &str, e: &dyn std::fmt::Display| {
        StoreError::Corrupt(format!("dynamodb session {id:?}: {what}: {e}"))
    };
    let initial_contact_id = InitialContactId::parse(id).map_err(|e| corrupt("id", &e))?;
    let business = XUserId::parse(r.s(BUSINESS)?).map_err(|e| corrupt(BUSINESS, &e))?;
    let customer = XUserId::parse(r.s(CUSTOMER)?).map_err(|e| corrupt(CUSTOMER, &e))?;
    let connection = match (
        r.opt_s(CONNECTION_TOKEN)?,
        r.opt_n(CONNECTION_EXPIRES_AT_MS)?,
    ) {
        (Some(token), expires_at_ms) => Some(ConnectionCredentials {
            token: ConnectionToken::new(token),
            expires_at_ms,
        }),
        (None, None) => None,
        (None, Some(_)) => {
            return Err(corrupt(
                CONNECTION_EXPIRES_AT_MS,
                &"a connection expiry without a connection token",
            ));
        }
    };
    let status = r.s(STATUS)?;
    let status = SessionStatus::parse(status)
        .ok_or_else(|| corrupt(STATUS, &format_args!("unknown status {status:?}")))?;
    Ok(Session {
        business,
        customer,
        initial_contact_id,
        participant_token: ParticipantToken::new(r.s(PARTICIPANT_TOKEN)?),
        opened_by: r.s(OPENED_BY)?.to_owned(),
        connection,
        status,
        created_at_ms: r.n(CREATED_AT_MS)?,
        updated_at_ms: r.n(UPDATED_AT_MS)?,
    })
}

// -- profiles --------------------------------------------------------------------------------

pub(crate) fn profile_item(profile: &XProfile, expires_at_ms: i64) -> Result<Item, StoreError> {
    let json = serde_json::to_string(profile).map_err(|e| {
        StoreError::Corrupt(format!(
            "dynamodb profile {}: cannot encode: {e}",
            profile.id
        ))
    })?;
    Ok(HashMap::from([
        (USER_ID.to_owned(), s(profile.id.as_str())),
        (PROFILE.to_owned(), s(json)),
        (EXPIRES_AT_MS.to_owned(), n(expires_at_ms)),
        (EXPIRES_AT.to_owned(), n(ttl_seconds(expires_at_ms))),
        (EXPIRY_GROUP.to_owned(), s(EXPIRY_GROUP_VALUE)),
    ]))
}

/// The cached profile of `user_id` and when it expires (ms).
pub(crate) fn profile_from_item(
    user_id: &XUserId,
    item: &Item,
) -> Result<(XProfile, i64), StoreError> {
    let r = Reader::new(item, "profile");
    let profile: XProfile = serde_json::from_str(r.s(PROFILE)?)
        .map_err(|e| StoreError::Corrupt(format!("dynamodb profile {user_id}: {e}")))?;
    if &profile.id != user_id {
        return Err(StoreError::Corrupt(format!(
            "dynamodb profile {user_id}: the item holds the profile of {}",
            profile.id
        )));
    }
    Ok((profile, r.n(EXPIRES_AT_MS)?))
}

// -- jobs ------------------------------------------------------------------------------------

// -- records ---------------------------------------------------------------------------------

pub(crate) fn record_from_item(item: &Item) -> Result<Record, StoreError> {
    let r = Reader::new(item, "record");
    let key = r.s(KEY)?;
    let version = r.n(VERSION)?;
    let version = u64::try_from(version).map_err(|_| {
        StoreError::Corrupt(format!(
            "dynamodb record {key:?}: version out of range: {version}"
        ))
    })?;
    Ok(Record {
        key: key.to_owned(),
        value: r.s(VALUE)?.to_owned(),
        version,
        updated_at_ms: r.n(UPDATED_AT_MS)?,
    })
}

/// A freshly accepted job (pending, no attempts).
pub(crate) fn new_job_item(job: &NewJob) -> Item {
    HashMap::from([
        (PK.to_owned(), s(job_pk(job.queue, job.key.as_str()))),
        (QUEUE.to_owned(), s(job.queue.as_str())),
        (KEY.to_owned(), s(job.key.as_str())),
        (LANE.to_owned(), s(job.lane.as_str())),
        (ORDER_KEY.to_owned(), n(job.order_key)),
        (PAYLOAD.to_owned(), s(job.payload.as_str())),
        (STATE.to_owned(), s(JobState::Pending.as_str())),
        (ATTEMPTS.to_owned(), n(0)),
        (ACCEPTED_AT_MS.to_owned(), n(job.accepted_at_ms)),
        (NOT_BEFORE_MS.to_owned(), n(job.not_before_ms)),
        (LEASE_UNTIL_MS.to_owned(), n(0)),
        (UPDATED_AT_MS.to_owned(), n(job.accepted_at_ms)),
        (
            QUEUE_STATE.to_owned(),
            s(queue_state(job.queue, JobState::Pending)),
        ),
        (
            ACCEPTED_KEY.to_owned(),
            s(accepted_key(job.accepted_at_ms, job.key.as_str())),
        ),
    ])
}

pub(crate) fn job_from_item(item: &Item) -> Result<Job, StoreError> {
    let r = Reader::new(item, "job");
    let key = r.s(KEY)?;
    let queue = r.s(QUEUE)?;
    let queue = JobQueue::parse(queue).ok_or_else(|| {
        StoreError::Corrupt(format!("dynamodb job {key:?}: unknown queue {queue:?}"))
    })?;
    let state = r.s(STATE)?;
    let state = JobState::parse(state).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "dynamodb job {}/{key}: unknown state {state:?}",
            queue.as_str()
        ))
    })?;
    let attempts = r.n(ATTEMPTS)?;
    let attempts = u32::try_from(attempts).map_err(|_| {
        StoreError::Corrupt(format!(
            "dynamodb job {}/{key}: attempts out of range: {attempts}",
            queue.as_str()
        ))
    })?;
    Ok(Job {
        queue,
        key: JobKey::parse(key)
            .map_err(|e| StoreError::Corrupt(format!("dynamodb job {key:?}: {e}")))?,
        lane: Lane::parse(r.s(LANE)?)
            .map_err(|e| StoreError::Corrupt(format!("dynamodb job {key:?}: {e}")))?,
        order_key: r.n(ORDER_KEY)?,
        payload: r.s(PAYLOAD)?.to_owned(),
        state,
        attempts,
        accepted_at_ms: r.n(ACCEPTED_AT_MS)?,
        not_before_ms: r.n(NOT_BEFORE_MS)?,
        lease_until_ms: r.n(LEASE_UNTIL_MS)?,
        updated_at_ms: r.n(UPDATED_AT_MS)?,
        last_error: r.opt_s(LAST_ERROR)?.map(str::to_owned),
        first_claimed_at_ms: r.opt_n(FIRST_CLAIMED_AT_MS)?,
    })
}

/// The lowest member of a lane's `open` set: its head.
pub(crate) fn lane_head(open: &[String]) -> Option<&str> {
    open.iter().map(String::as_str).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_keeps_numeric_order() {
        let values = [i64::MIN, -1_000, -1, 0, 1, 2, 10, 255, 256, 1_000, i64::MAX];
        for pair in values.windows(2) {
            assert!(sortable(pair[0]) < sortable(pair[1]), "{pair:?}");
        }
        for v in values {
            assert_eq!(sortable(v).len(), 16);
            assert_eq!(unsortable(&sortable(v)), Some(v));
        }
        assert_eq!(unsortable("xyz"), None);
    }

    #[test]
    fn members_sort_by_order_then_key_and_parse_back() {
        let mut members = vec![
            member(3, "k3"),
            member(1, "k1b"),
            member(1, "k1"),
            member(-5, "neg"),
            member(2, "a#b"),
        ];
        members.sort();
        let parsed: Vec<_> = members.iter().filter_map(|m| parse_member(m)).collect();
        assert_eq!(
            parsed,
            [(-5, "neg"), (1, "k1"), (1, "k1b"), (2, "a#b"), (3, "k3")]
        );
        assert_eq!(lane_head(&members), Some(member(-5, "neg").as_str()));
        assert_eq!(lane_head(&[]), None);
        assert_eq!(parse_member("short"), None);
        assert_eq!(parse_member("0000000000000000-x"), None);
    }

    #[test]
    fn ttl_rounds_up_to_the_second() {
        assert_eq!(ttl_seconds(0), 0);
        assert_eq!(ttl_seconds(1), 1);
        assert_eq!(ttl_seconds(999), 1);
        assert_eq!(ttl_seconds(1_000), 1);
        assert_eq!(ttl_seconds(1_001), 2);
        assert_eq!(ttl_seconds(-1), 0);
        assert_eq!(ttl_seconds(-1_000), -1);
    }

    #[test]
    fn expiry_is_inclusive() {
        let item = HashMap::from([(EXPIRES_AT.to_owned(), n(100))]);
        assert!(!is_expired(&item, 99));
        assert!(is_expired(&item, 100));
        assert!(is_expired(&item, 101));
        assert!(!is_expired(&HashMap::new(), i64::MAX));
    }
}
