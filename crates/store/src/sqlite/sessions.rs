//! Sessions: the `sessions` table. At most one open session per (business, customer) is the
//! partial unique index `sessions_one_open_per_pair`, not a check made here.

use rusqlite::{Connection, TransactionBehavior, params};
use xdm_core::ids::{InitialContactId, XUserId};
use xdm_core::ports::{SessionInsert, StoreError};
use xdm_core::session::{ConnectionCredentials, Session};

use super::rows::{DbError, execute_one, query_one, session_columns, session_from_row};
use super::store::SqliteStore;

// `pub(super)` so the unit tests (`tests.rs`) can check the query plans.

pub(super) const SQL_OPEN_SESSION: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE business = ?1 AND customer = ?2 AND status != 'ended'"
);

pub(super) const SQL_SESSION_BY_ID: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE initial_contact_id = ?1"
);

/// Refused by the primary key (same contact) or by `sessions_one_open_per_pair`.
pub(super) const SQL_INSERT_SESSION: &str = "INSERT INTO sessions (initial_contact_id, business, customer, participant_token, \
     opened_by, connection_token, connection_expires_at_ms, status, created_at_ms, updated_at_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
     ON CONFLICT DO NOTHING";

pub(super) const SQL_SET_CONNECTION: &str = "UPDATE sessions SET connection_token = ?2, connection_expires_at_ms = ?3, \
     status = CASE status WHEN 'ended' THEN 'ended' ELSE 'live' END, updated_at_ms = ?4 \
     WHERE initial_contact_id = ?1";

pub(super) const SQL_END_SESSION: &str = "UPDATE sessions SET status = 'ended', updated_at_ms = ?2 \
     WHERE initial_contact_id = ?1 AND status != 'ended'";

fn open_session_in(
    conn: &Connection,
    business: &str,
    customer: &str,
) -> Result<Option<Session>, DbError> {
    query_one(
        conn,
        SQL_OPEN_SESSION,
        params![business, customer],
        session_from_row,
    )
}

fn session_by_id_in(conn: &Connection, id: &str) -> Result<Option<Session>, DbError> {
    query_one(conn, SQL_SESSION_BY_ID, params![id], session_from_row)
}

pub(super) async fn open_session(
    store: &SqliteStore,
    business: &XUserId,
    customer: &XUserId,
) -> Result<Option<Session>, StoreError> {
    let (business, customer) = (business.clone(), customer.clone());
    store
        .worker
        .read("open_session", move |conn| {
            open_session_in(conn, business.as_str(), customer.as_str())
        })
        .await
}

pub(super) async fn session_by_initial_contact(
    store: &SqliteStore,
    id: &InitialContactId,
) -> Result<Option<Session>, StoreError> {
    let id = id.clone();
    store
        .worker
        .read("session_by_initial_contact", move |conn| {
            session_by_id_in(conn, id.as_str())
        })
        .await
}

/// One immediate transaction of its own (not group-committed): the insert, and on refusal the
/// reads that say by what.
pub(super) async fn insert_session(
    store: &SqliteStore,
    session: &Session,
) -> Result<SessionInsert, StoreError> {
    let s = session.clone();
    store
        .worker
        .call("insert_session", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let (business, customer) = (s.business.as_str(), s.customer.as_str());
            // An ended session does not touch the unique index: check the pair by hand.
            if !s.status.is_open()
                && let Some(open) = open_session_in(&tx, business, customer)?
            {
                return Ok(SessionInsert::OpenExists(open));
            }
            let inserted = tx.prepare_cached(SQL_INSERT_SESSION)?.execute(params![
                s.initial_contact_id.as_str(),
                business,
                customer,
                s.participant_token.expose(),
                s.opened_by,
                s.connection.as_ref().map(|c| c.token.expose()),
                s.connection.as_ref().and_then(|c| c.expires_at_ms),
                s.status.as_str(),
                s.created_at_ms,
                s.updated_at_ms,
            ])?;
            if inserted == 1 {
                tx.commit()?;
                return Ok(SessionInsert::Inserted);
            }
            // Refused: by the open session of the pair, or by the same contact id.
            if let Some(open) = open_session_in(&tx, business, customer)? {
                return Ok(SessionInsert::OpenExists(open));
            }
            match session_by_id_in(&tx, s.initial_contact_id.as_str())? {
                Some(same) => Err(DbError::Corrupt(format!(
                    "session {} exists with status {}",
                    same.initial_contact_id,
                    same.status.as_str()
                ))),
                None => Err(DbError::Corrupt(format!(
                    "session {} was refused but no conflicting row was found",
                    s.initial_contact_id
                ))),
            }
        })
        .await
}

pub(super) async fn set_session_connection(
    store: &SqliteStore,
    id: &InitialContactId,
    connection: &ConnectionCredentials,
    now_ms: i64,
) -> Result<(), StoreError> {
    let (id, connection) = (id.clone(), connection.clone());
    store
        .worker
        .write("set_session_connection", move |conn| {
            conn.prepare_cached(SQL_SET_CONNECTION)?.execute(params![
                id.as_str(),
                connection.token.expose(),
                connection.expires_at_ms,
                now_ms
            ])?;
            Ok(())
        })
        .await
}

pub(super) async fn end_session(
    store: &SqliteStore,
    id: &InitialContactId,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let id = id.clone();
    store
        .worker
        .write("end_session", move |conn| {
            execute_one(conn, SQL_END_SESSION, params![id.as_str(), now_ms])
        })
        .await
}
