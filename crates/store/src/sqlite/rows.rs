//! Rows ⇄ core types, the ways the concern modules run a statement, and rusqlite errors ⇒
//! `StoreError`.

use rusqlite::ffi::ErrorCode;
use rusqlite::{Connection, Params, Row};
use xdm_core::ids::{ConnectionToken, InitialContactId, ParticipantToken, XUserId};
use xdm_core::jobs::{Job, JobKey, JobQueue, JobState, Lane};
use xdm_core::ports::StoreError;
use xdm_core::profile::XProfile;
use xdm_core::records::Record;
use xdm_core::session::{ConnectionCredentials, Session, SessionStatus};

/// What went wrong inside a call on the connection thread.
#[derive(Debug)]
pub(crate) enum DbError {
    Sqlite(rusqlite::Error),
    /// A row that does not decode (unknown enum string, invalid id, bad JSON).
    Corrupt(String),
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Sqlite(e)
    }
}

impl DbError {
    pub(crate) fn into_store_error(self, op: &str) -> StoreError {
        match self {
            DbError::Corrupt(msg) => StoreError::Corrupt(format!("sqlite {op}: {msg}")),
            DbError::Sqlite(e) if is_corruption(&e) => {
                StoreError::Corrupt(format!("sqlite {op}: {e}"))
            }
            DbError::Sqlite(e) => StoreError::Unavailable(format!("sqlite {op}: {e}")),
        }
    }
}

/// True when retrying cannot help: the file, the schema or a row is not what this build
/// expects. Everything else (busy, locked, I/O, disk full, out of memory, read-only, …) may
/// succeed later and maps to `Unavailable`.
pub(crate) fn is_corruption(e: &rusqlite::Error) -> bool {
    use rusqlite::Error as E;
    // SqliteFailure and SqlInputError (a statement that does not prepare) carry a result code.
    let code = match e {
        E::SqliteFailure(f, _) | E::SqlInputError { error: f, .. } => Some(f.code),
        _ => None,
    };
    if let Some(code) = code {
        return matches!(
            code,
            ErrorCode::DatabaseCorrupt
                | ErrorCode::NotADatabase
                | ErrorCode::TypeMismatch
                | ErrorCode::ConstraintViolation
                // SQLITE_ERROR: "no such table / column" — a schema this build does not know.
                | ErrorCode::Unknown
        );
    }
    matches!(
        e,
        E::FromSqlConversionFailure(..)
            | E::IntegralValueOutOfRange(..)
            | E::Utf8Error(..)
            | E::InvalidColumnIndex(_)
            | E::InvalidColumnName(_)
            | E::InvalidColumnType(..)
    )
}

// -- sessions ------------------------------------------------------------------------------

/// Columns read by [`session_from_row`], in order.
macro_rules! session_columns {
    () => {
        "initial_contact_id, business, customer, participant_token, opened_by, \
         connection_token, connection_expires_at_ms, status, created_at_ms, updated_at_ms"
    };
}
pub(crate) use session_columns;

pub(crate) fn session_from_row(row: &Row<'_>) -> Result<Session, DbError> {
    let id: String = row.get(0)?;
    let initial_contact_id = InitialContactId::parse(id.as_str())
        .map_err(|e| DbError::Corrupt(format!("session {id:?}: {e}")))?;
    let user = |idx: usize, what: &str| -> Result<XUserId, DbError> {
        let raw: String = row.get(idx)?;
        XUserId::parse(raw).map_err(|e| DbError::Corrupt(format!("session {id}: {what}: {e}")))
    };
    let business = user(1, "business")?;
    let customer = user(2, "customer")?;
    let participant_token = ParticipantToken::new(row.get::<_, String>(3)?);
    let opened_by: String = row.get(4)?;
    let connection_token: Option<String> = row.get(5)?;
    let connection_expires_at_ms: Option<i64> = row.get(6)?;
    let connection = match (connection_token, connection_expires_at_ms) {
        (Some(token), expires_at_ms) => Some(ConnectionCredentials {
            token: ConnectionToken::new(token),
            expires_at_ms,
        }),
        (None, None) => None,
        (None, Some(_)) => {
            return Err(DbError::Corrupt(format!(
                "session {id}: connection expiry without a connection token"
            )));
        }
    };
    let status: String = row.get(7)?;
    let status = SessionStatus::parse(&status)
        .ok_or_else(|| DbError::Corrupt(format!("session {id}: unknown status {status:?}")))?;
    Ok(Session {
        business,
        customer,
        initial_contact_id,
        participant_token,
        opened_by,
        connection,
        status,
        created_at_ms: row.get(8)?,
        updated_at_ms: row.get(9)?,
    })
}

// -- profiles ------------------------------------------------------------------------------

pub(crate) fn profile_to_json(profile: &XProfile) -> Result<String, DbError> {
    serde_json::to_string(profile)
        .map_err(|e| DbError::Corrupt(format!("profile {}: cannot encode: {e}", profile.id)))
}

pub(crate) fn profile_from_json(user_id: &XUserId, json: &str) -> Result<XProfile, DbError> {
    let profile: XProfile = serde_json::from_str(json)
        .map_err(|e| DbError::Corrupt(format!("profile {user_id}: {e}")))?;
    if &profile.id != user_id {
        return Err(DbError::Corrupt(format!(
            "profile {user_id}: the row holds the profile of {}",
            profile.id
        )));
    }
    Ok(profile)
}

// -- jobs ----------------------------------------------------------------------------------

/// Columns read by [`job_from_row`], in order.
macro_rules! job_columns {
    () => {
        "queue, key, lane, order_key, payload, state, attempts, accepted_at_ms, \
         not_before_ms, lease_until_ms, updated_at_ms, last_error, first_claimed_at_ms"
    };
}
pub(crate) use job_columns;

pub(crate) fn job_from_row(row: &Row<'_>) -> Result<Job, DbError> {
    let queue: String = row.get(0)?;
    let key: String = row.get(1)?;
    let queue = JobQueue::parse(&queue)
        .ok_or_else(|| DbError::Corrupt(format!("job {key:?}: unknown queue {queue:?}")))?;
    let state: String = row.get(5)?;
    let state = JobState::parse(&state).ok_or_else(|| {
        DbError::Corrupt(format!(
            "job {}/{key}: unknown state {state:?}",
            queue.as_str()
        ))
    })?;
    let attempts: i64 = row.get(6)?;
    let attempts = u32::try_from(attempts).map_err(|_| {
        DbError::Corrupt(format!(
            "job {}/{key}: attempts out of range: {attempts}",
            queue.as_str()
        ))
    })?;
    let lane: String = row.get(2)?;
    let lane = Lane::parse(lane).map_err(|e| DbError::Corrupt(format!("job {key:?}: {e}")))?;
    let key =
        JobKey::parse(key.clone()).map_err(|e| DbError::Corrupt(format!("job {key:?}: {e}")))?;
    Ok(Job {
        queue,
        lane,
        order_key: row.get(3)?,
        payload: row.get(4)?,
        state,
        attempts,
        accepted_at_ms: row.get(7)?,
        not_before_ms: row.get(8)?,
        lease_until_ms: row.get(9)?,
        updated_at_ms: row.get(10)?,
        last_error: row.get(11)?,
        first_claimed_at_ms: row.get(12)?,
        key,
    })
}

// -- records -------------------------------------------------------------------------------

/// Columns read by [`record_from_row`], in order.
macro_rules! record_columns {
    () => {
        "key, value, version, updated_at_ms"
    };
}
pub(crate) use record_columns;

pub(crate) fn record_from_row(row: &Row<'_>) -> Result<Record, DbError> {
    let key: String = row.get(0)?;
    let version: i64 = row.get(2)?;
    let version = u64::try_from(version).map_err(|_| {
        DbError::Corrupt(format!("record {key:?}: version out of range: {version}"))
    })?;
    Ok(Record {
        value: row.get(1)?,
        version,
        updated_at_ms: row.get(3)?,
        key,
    })
}

/// A `usize` limit as SQLite's `LIMIT` (which is an i64).
pub(crate) fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

// -- running a statement ---------------------------------------------------------------------

/// The first row of the query `sql` with `params`, decoded by `from_row`; `None` if there is
/// none.
pub(crate) fn query_one<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    from_row: impl Fn(&Row<'_>) -> Result<T, DbError>,
) -> Result<Option<T>, DbError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    match rows.next()? {
        Some(row) => Ok(Some(from_row(row)?)),
        None => Ok(None),
    }
}

/// Every row of the query `sql` with `params`, decoded by `from_row`.
pub(crate) fn query_all<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    from_row: impl Fn(&Row<'_>) -> Result<T, DbError>,
) -> Result<Vec<T>, DbError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut all = Vec::new();
    while let Some(row) = rows.next()? {
        all.push(from_row(row)?);
    }
    Ok(all)
}

/// Runs the statement `sql`, which changes at most one row, with `params`: true if it changed
/// one (a conditional write that applied).
pub(crate) fn execute_one(
    conn: &Connection,
    sql: &str,
    params: impl Params,
) -> Result<bool, DbError> {
    Ok(conn.prepare_cached(sql)?.execute(params)? == 1)
}
