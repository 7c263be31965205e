//! Records: the `records` table of small named values with a version; every write is one
//! conditional statement on `version`. Values may hold secrets: never logged.

use rusqlite::{OptionalExtension, params};
use xdm_core::ports::StoreError;
use xdm_core::records::{Expect, Record};

use super::rows::{DbError, execute_one, query_all, query_one, record_columns, record_from_row};
use super::store::SqliteStore;
use super::worker::Commit;

// `pub(super)` so the unit tests (`tests.rs`) can check the query plans.

pub(super) const SQL_RECORD: &str =
    concat!("SELECT ", record_columns!(), " FROM records WHERE key = ?1");

/// `Expect::Absent`: refused by the primary key when the record exists.
pub(super) const SQL_PUT_RECORD_ABSENT: &str = "INSERT INTO records (key, value, version, updated_at_ms) VALUES (?1, ?2, 1, ?3) \
     ON CONFLICT (key) DO NOTHING RETURNING version";

/// `Expect::Version(?4)`: the compare-and-set, one conditional UPDATE.
pub(super) const SQL_PUT_RECORD_VERSION: &str = "UPDATE records SET value = ?2, version = version + 1, updated_at_ms = ?3 \
     WHERE key = ?1 AND version = ?4 RETURNING version";

/// `Expect::Any`: insert or bump the version.
pub(super) const SQL_PUT_RECORD_ANY: &str = "INSERT INTO records (key, value, version, updated_at_ms) VALUES (?1, ?2, 1, ?3) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = records.version + 1, \
     updated_at_ms = excluded.updated_at_ms RETURNING version";

pub(super) const SQL_DELETE_RECORD_VERSION: &str =
    "DELETE FROM records WHERE key = ?1 AND version = ?2";

pub(super) const SQL_DELETE_RECORD_ANY: &str = "DELETE FROM records WHERE key = ?1";

/// Keys starting with ?1: a range seek from ?1 in the primary key, compared by characters
/// (`substr`/`length` count characters of TEXT alike), so no LIKE escaping is needed.
pub(super) const SQL_RECORDS_BY_PREFIX: &str = concat!(
    "SELECT ",
    record_columns!(),
    " FROM records WHERE key >= ?1 AND substr(key, 1, length(?1)) = ?1 ORDER BY key"
);

pub(super) async fn record(store: &SqliteStore, key: &str) -> Result<Option<Record>, StoreError> {
    let key = key.to_owned();
    store
        .worker
        .read("record", move |conn| {
            query_one(conn, SQL_RECORD, params![key], record_from_row)
        })
        .await
}

/// `commit`: [`Commit::Deferred`] for
/// [`Store::put_record_deferred`](xdm_core::ports::Store::put_record_deferred).
pub(super) async fn put_record(
    store: &SqliteStore,
    key: &str,
    value: &str,
    expect: Expect,
    now_ms: i64,
    commit: Commit,
) -> Result<Option<u64>, StoreError> {
    let (key, value) = (key.to_owned(), value.to_owned());
    let put = move |conn: &rusqlite::Connection| {
        let version: Option<i64> = match expect {
            Expect::Absent => conn
                .prepare_cached(SQL_PUT_RECORD_ABSENT)?
                .query_row(params![key, value, now_ms], |row| row.get(0))
                .optional()?,
            Expect::Version(v) => {
                // No stored version is above i64::MAX: the condition cannot hold.
                let Ok(v) = i64::try_from(v) else {
                    return Ok(None);
                };
                conn.prepare_cached(SQL_PUT_RECORD_VERSION)?
                    .query_row(params![key, value, now_ms, v], |row| row.get(0))
                    .optional()?
            }
            Expect::Any => conn
                .prepare_cached(SQL_PUT_RECORD_ANY)?
                .query_row(params![key, value, now_ms], |row| row.get(0))
                .optional()?,
        };
        version
            .map(|v| {
                u64::try_from(v).map_err(|_| {
                    DbError::Corrupt(format!("record {key:?}: version out of range: {v}"))
                })
            })
            .transpose()
    };
    store.worker.write_as("put_record", commit, put).await
}

pub(super) async fn delete_record(
    store: &SqliteStore,
    key: &str,
    expect: Expect,
) -> Result<bool, StoreError> {
    let key = key.to_owned();
    let version = match expect {
        Expect::Absent => return Ok(false),
        Expect::Version(v) => match i64::try_from(v) {
            Ok(v) => Some(v),
            Err(_) => return Ok(false),
        },
        Expect::Any => None,
    };
    store
        .worker
        .write("delete_record", move |conn| match version {
            Some(v) => execute_one(conn, SQL_DELETE_RECORD_VERSION, params![key, v]),
            None => execute_one(conn, SQL_DELETE_RECORD_ANY, params![key]),
        })
        .await
}

pub(super) async fn records(store: &SqliteStore, prefix: &str) -> Result<Vec<Record>, StoreError> {
    let prefix = prefix.to_owned();
    store
        .worker
        .call("records", move |conn| {
            query_all(
                conn,
                SQL_RECORDS_BY_PREFIX,
                params![prefix],
                record_from_row,
            )
        })
        .await
}
