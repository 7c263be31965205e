//! Sessions: the session items of the `sessions` table and the open-pair guards beside them (see
//! "One open session per (business, customer)" in `mod.rs`).

use xdm_core::ids::{InitialContactId, XUserId};
use xdm_core::ports::{SessionInsert, StoreError};
use xdm_core::session::{ConnectionCredentials, Session, SessionStatus};

use super::calls::{Tx, Written, tx_check, tx_delete, tx_put, tx_update};
use super::expr::Expr;
use super::items::{
    CONNECTION_EXPIRES_AT_MS, CONNECTION_TOKEN, ENDED_GROUP, ENDED_GROUP_VALUE, EXPIRES_AT,
    INITIAL_CONTACT_ID, Item, PK, STATUS, UPDATED_AT_MS, guard_item, guard_pk, guard_target,
    key_of, n, s, session_from_item, session_item, session_pk,
};
use super::store::{DynamoStore, RACE_ATTEMPTS, absent_or_expired};

/// Any session (open or ended) by its initial contact id; one that has expired is absent.
pub(super) async fn get_session(
    store: &DynamoStore,
    op: &'static str,
    id: &InitialContactId,
) -> Result<Option<Session>, StoreError> {
    let item = store
        .get_live(op, &store.tables.sessions, key_of(PK, session_pk(id)))
        .await?;
    item.map(|item| session_from_item(&item)).transpose()
}

/// The condition "the session exists and has not ended".
fn not_ended(e: &mut Expr) -> String {
    format!(
        "attribute_exists({}) AND {} <> {}",
        e.n(PK),
        e.n(STATUS),
        e.v("ended", s(SessionStatus::Ended.as_str()))
    )
}

pub(super) async fn open_session(
    store: &DynamoStore,
    business: &XUserId,
    customer: &XUserId,
) -> Result<Option<Session>, StoreError> {
    open_session_of(store, "open_session", business, customer).await
}

/// The open session of the pair, through its guard.
async fn open_session_of(
    store: &DynamoStore,
    op: &'static str,
    business: &XUserId,
    customer: &XUserId,
) -> Result<Option<Session>, StoreError> {
    let guard_key = key_of(PK, guard_pk(business, customer));
    for _ in 0..RACE_ATTEMPTS {
        let Some(guard) = store
            .calls
            .get(op, &store.tables.sessions, guard_key.clone())
            .await?
        else {
            return Ok(None);
        };
        let id = guard_target(&guard)?;
        match get_session(store, op, &id).await? {
            Some(s) if s.status.is_open() => {
                if (&s.business, &s.customer) != (business, customer) {
                    return Err(StoreError::Corrupt(format!(
                        "dynamodb {op}: the guard of ({business}, {customer}) points at session {id} of ({}, {})",
                        s.business, s.customer
                    )));
                }
                return Ok(Some(s));
            }
            // The session ended between the two reads (its guard is gone by now), or the
            // guard is stale. A stale guard is removed — only if it still points at this
            // session, which can never be open again.
            _ => drop_stale_guard(store, op, guard_key.clone(), &id).await?,
        }
    }
    Err(StoreError::Unavailable(format!(
        "dynamodb {op}: the open session of ({business}, {customer}) kept changing while it was read"
    )))
}

async fn drop_stale_guard(
    store: &DynamoStore,
    op: &'static str,
    guard_key: Item,
    id: &InitialContactId,
) -> Result<(), StoreError> {
    let mut e = Expr::new();
    let cond = e.eq(INITIAL_CONTACT_ID, "id", s(id.as_str()));
    if store
        .calls
        .delete(op, &store.tables.sessions, guard_key, &e, cond)
        .await?
        == Written::Yes
    {
        tracing::warn!(
            initial_contact_id = %id,
            "removed an open-session guard that pointed at a session that is not open"
        );
    }
    Ok(())
}

pub(super) async fn session_by_initial_contact(
    store: &DynamoStore,
    id: &InitialContactId,
) -> Result<Option<Session>, StoreError> {
    get_session(store, "session_by_initial_contact", id).await
}

/// One transaction: the guard (or, for an ended session, a check that the pair has none) and
/// the session, each conditioned on not existing.
pub(super) async fn insert_session(
    store: &DynamoStore,
    session: &Session,
) -> Result<SessionInsert, StoreError> {
    const OP: &str = "insert_session";
    let table = store.tables.sessions.as_str();
    let (business, customer) = (&session.business, &session.customer);
    let guard_key = key_of(PK, guard_pk(business, customer));
    for _ in 0..RACE_ATTEMPTS {
        let mut guard = Expr::new();
        let guard_cond = format!("attribute_not_exists({})", guard.n(PK));
        let guard_action = if session.status.is_open() {
            tx_put(table, guard_item(session), &guard, guard_cond)?
        } else {
            // An ended session (an archive) takes no guard, but may not be written while
            // the pair has an open session.
            tx_check(table, guard_key.clone(), &guard, guard_cond)?
        };
        let mut e = Expr::new();
        let cond = absent_or_expired(&mut e, store.now_s());
        let put = tx_put(table, session_item(session, store.session_ttl()), &e, cond)?;
        match store
            .calls
            .transact(OP, table, vec![guard_action, put])
            .await?
        {
            Tx::Committed => return Ok(SessionInsert::Inserted),
            Tx::Cancelled(_) => {
                if let Some(open) = open_session_of(store, OP, business, customer).await? {
                    return Ok(SessionInsert::OpenExists(open));
                }
                if let Some(same) = get_session(store, OP, &session.initial_contact_id).await? {
                    return Err(StoreError::Corrupt(format!(
                        "dynamodb {OP}: session {} exists with status {} (business {}, customer {})",
                        same.initial_contact_id,
                        same.status.as_str(),
                        same.business,
                        same.customer
                    )));
                }
                // What refused it is gone already (the open session ended): try again.
            }
        }
    }
    Err(StoreError::Unavailable(format!(
        "dynamodb {OP}: session {} kept conflicting with concurrent changes",
        session.initial_contact_id
    )))
}

pub(super) async fn set_session_connection(
    store: &DynamoStore,
    id: &InitialContactId,
    connection: &ConnectionCredentials,
    now_ms: i64,
) -> Result<(), StoreError> {
    const OP: &str = "set_session_connection";
    let table = store.tables.sessions.as_str();
    let connection_clauses = |e: &mut Expr| {
        e.set(CONNECTION_TOKEN, s(connection.token.expose()))
            .set(UPDATED_AT_MS, n(now_ms));
        match connection.expires_at_ms {
            Some(at) => e.set(CONNECTION_EXPIRES_AT_MS, n(at)),
            None => e.remove(CONNECTION_EXPIRES_AT_MS),
        };
    };
    let key = key_of(PK, session_pk(id));

    // Starting or live: becomes live.
    let mut e = Expr::new();
    connection_clauses(&mut e);
    e.set(STATUS, s(SessionStatus::Live.as_str()));
    let cond = not_ended(&mut e);
    if store.calls.update(OP, table, key.clone(), &e, cond).await? == Written::Yes {
        return Ok(());
    }

    // Ended (and not expired): records the connection, stays ended, kept longer.
    let mut e = Expr::new();
    connection_clauses(&mut e);
    e.set(EXPIRES_AT, n(store.session_ttl()));
    let cond = format!(
        "{} AND {} > {}",
        e.eq(STATUS, "ended", s(SessionStatus::Ended.as_str())),
        e.n(EXPIRES_AT),
        e.v("now_s", n(store.now_s()))
    );
    // Unknown (or expired) contact: nothing to record.
    store.calls.update(OP, table, key, &e, cond).await?;
    Ok(())
}

/// A GetItem and one transaction: the session marked ended, and its guard deleted (conditioned
/// on still pointing at it).
pub(super) async fn end_session(
    store: &DynamoStore,
    id: &InitialContactId,
    now_ms: i64,
) -> Result<bool, StoreError> {
    const OP: &str = "end_session";
    let table = store.tables.sessions.as_str();
    let Some(session) = get_session(store, OP, id).await? else {
        return Ok(false);
    };
    if !session.status.is_open() {
        return Ok(false);
    }
    let ended = |e: &mut Expr| {
        e.set(STATUS, s(SessionStatus::Ended.as_str()))
            .set(UPDATED_AT_MS, n(now_ms))
            .set(ENDED_GROUP, s(ENDED_GROUP_VALUE))
            .set(EXPIRES_AT, n(store.session_ttl()));
        not_ended(e)
    };
    let session_key = key_of(PK, session_pk(id));
    let mut e = Expr::new();
    let cond = ended(&mut e);
    let update = tx_update(table, session_key.clone(), &e, Some(cond))?;
    let mut g = Expr::new();
    let guard_cond = g.eq(INITIAL_CONTACT_ID, "id", s(id.as_str()));
    let guard_key = key_of(PK, guard_pk(&session.business, &session.customer));
    let delete = tx_delete(table, guard_key, &g, guard_cond)?;
    match store
        .calls
        .transact(OP, table, vec![update, delete])
        .await?
    {
        Tx::Committed => Ok(true),
        // Ended (or gone) meanwhile.
        Tx::Cancelled(codes) if Tx::failed(&codes, 0) => Ok(false),
        Tx::Cancelled(_) => {
            // The guard does not point at this open session (it should): end it alone.
            tracing::warn!(initial_contact_id = %id, "ending a session whose open-session guard is missing");
            let mut e = Expr::new();
            let cond = ended(&mut e);
            Ok(store.calls.update(OP, table, session_key, &e, cond).await? == Written::Yes)
        }
    }
}
