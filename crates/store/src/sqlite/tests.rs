//! Unit tests that need the crate's internals: pragmas, migrations and query plans.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use super::jobs::{
    SQL_CLAIM, SQL_COUNT_FAILED, SQL_ENQUEUE, SQL_FINISH, SQL_JOB, SQL_JOB_PLACE, SQL_JOBS_FAILED,
    SQL_JOBS_OPEN_IN_STATE, SQL_RELEASE_CLAIMS, SQL_RETRY_FAILED,
};
use super::lane_order::SQL_OPEN_JOBS;
use super::purge::{SQL_PURGE_JOBS, SQL_PURGE_PROFILES, SQL_PURGE_SESSIONS};
use super::records::{
    SQL_DELETE_RECORD_VERSION, SQL_PUT_RECORD_VERSION, SQL_RECORD, SQL_RECORDS_BY_PREFIX,
};
use super::rows::job_from_row;
use super::schema::{SCHEMA_VERSION, Target, open_connection};
use super::sessions::SQL_OPEN_SESSION;
use super::*;

fn conn(options: &SqliteOptions) -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("unit.db");
    let conn =
        open_connection(Target::File(&path), "unit.db", options).unwrap_or_else(|e| panic!("{e}"));
    (dir, conn)
}

fn pragma(conn: &Connection, name: &str) -> String {
    conn.pragma_query_value(None, name, |row| {
        let v: rusqlite::types::Value = row.get(0)?;
        Ok(match v {
            rusqlite::types::Value::Integer(i) => i.to_string(),
            rusqlite::types::Value::Text(t) => t,
            other => format!("{other:?}"),
        })
    })
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn pragmas_default_to_wal_normal() {
    let (_dir, conn) = conn(&SqliteOptions::default());
    assert_eq!(pragma(&conn, "journal_mode"), "wal");
    assert_eq!(pragma(&conn, "synchronous"), "1"); // NORMAL
    assert_eq!(pragma(&conn, "foreign_keys"), "0");
    assert_eq!(pragma(&conn, "temp_store"), "2"); // MEMORY: the undo journal in 1 KiB pieces
    assert_eq!(pragma(&conn, "user_version"), SCHEMA_VERSION.to_string());
}

#[test]
fn synchronous_full_is_an_option() {
    let options = SqliteOptions {
        synchronous: Synchronous::Full,
        busy_timeout: Duration::from_millis(1234),
        ..SqliteOptions::default()
    };
    let (_dir, conn) = conn(&options);
    assert_eq!(pragma(&conn, "synchronous"), "2"); // FULL
}

/// A write waits for another connection's write lock: it goes on once that is released within
/// the busy timeout, and fails busy (after having waited the timeout) when it is not.
#[test]
fn a_write_waits_for_another_connections_lock_up_to_the_busy_timeout() {
    let options = SqliteOptions {
        busy_timeout: Duration::from_millis(300),
        ..SqliteOptions::default()
    };
    let (dir, conn) = conn(&options);
    let other = Connection::open(dir.path().join("unit.db")).unwrap_or_else(|e| panic!("{e}"));
    let write = "INSERT INTO records (key, value, version, updated_at_ms) VALUES ('k', 'v', 1, 0) \
                 ON CONFLICT (key) DO UPDATE SET version = version + 1";

    other
        .execute_batch("BEGIN IMMEDIATE")
        .unwrap_or_else(|e| panic!("{e}"));
    let started = std::time::Instant::now();
    let Err(err) = conn.execute(write, []) else {
        panic!("wrote while another connection held the write lock");
    };
    let waited = started.elapsed();
    assert_eq!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy),
        "{err}"
    );
    assert!(
        waited >= Duration::from_millis(300),
        "gave up after {waited:?}"
    );

    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        other
            .execute_batch("COMMIT")
            .unwrap_or_else(|e| panic!("{e}"));
    });
    conn.execute(write, [])
        .unwrap_or_else(|e| panic!("waited for the lock, then: {e}"));
    release
        .join()
        .unwrap_or_else(|_| panic!("the releasing thread panicked"));
}

/// The query plan of `sql` (with placeholder values bound), one detail line per step.
fn plan(conn: &Connection, sql: &str, n_params: usize) -> String {
    let mut stmt = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let values: Vec<i64> = vec![1; n_params];
    let mut rows = stmt
        .query(rusqlite::params_from_iter(values))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut lines = Vec::new();
    while let Some(row) = rows.next().unwrap_or_else(|e| panic!("{e}")) {
        let detail: String = row.get(3).unwrap_or_else(|e| panic!("{e}"));
        lines.push(detail);
    }
    lines.join("\n")
}

/// True when a step of the plan reads a whole table or index instead of seeking into it.
fn scans(plan: &str) -> bool {
    plan.lines().any(|l| {
        l.starts_with("SCAN ") && !l.starts_with("SCAN lanes") && !l.starts_with("SCAN (subquery")
    })
}

/// Many finished rows must not make the dispatcher's queries slow: they go through the primary
/// key or the partial index on open jobs, never a scan of the table.
#[test]
fn hot_queries_use_the_indexes() {
    let (_dir, conn) = conn(&SqliteOptions::default());
    conn.execute_batch("ANALYZE")
        .unwrap_or_else(|e| panic!("{e}"));

    // Without ?-parameters: every open job, through `jobs_open` (a rebuild of the lane order).
    let open = plan(&conn, SQL_OPEN_JOBS, 0);
    assert!(open.contains("jobs_open"), "{open}");
    assert!(
        !scans(&open.replace("SCAN jobs USING INDEX jobs_open", "")),
        "{open}"
    );

    for (sql, n, index) in [
        (SQL_OPEN_SESSION, 2, "sessions_one_open_per_pair"),
        (SQL_CLAIM, 4, "sqlite_autoindex_jobs_1"), // the primary key
        (SQL_JOB_PLACE, 2, "sqlite_autoindex_jobs_1"),
        (SQL_FINISH, 6, "sqlite_autoindex_jobs_1"),
        (SQL_RETRY_FAILED, 3, "sqlite_autoindex_jobs_1"),
        (SQL_PURGE_JOBS, 1, "jobs_finished_by_age"),
        (SQL_PURGE_SESSIONS, 1, "sessions_ended_by_age"),
        (SQL_PURGE_PROFILES, 1, "profiles_by_expiry"),
        (SQL_JOBS_OPEN_IN_STATE, 3, "jobs_open"),
        (SQL_JOBS_FAILED, 2, "jobs_failed_by_acceptance"),
        (
            SQL_COUNT_FAILED,
            2,
            "COVERING INDEX jobs_failed_by_acceptance",
        ),
        (SQL_RELEASE_CLAIMS, 2, "jobs_open"),
        (SQL_RECORD, 1, "sqlite_autoindex_records_1"),
        (SQL_RECORDS_BY_PREFIX, 1, "sqlite_autoindex_records_1"),
        (SQL_PUT_RECORD_VERSION, 4, "sqlite_autoindex_records_1"),
        (SQL_DELETE_RECORD_VERSION, 2, "sqlite_autoindex_records_1"),
    ] {
        let p = plan(&conn, sql, n);
        assert!(p.contains(index), "{sql}\n{p}");
        assert!(!scans(&p), "{sql}\n{p}");
    }
}

/// The b-trees a job's life writes. An open job is in the table, its primary key and
/// `jobs_open` (in insertion order, not by lane: docs/performance.md, "Where a commit's pages
/// go"), and in no other index: each one more would be one more page written per acceptance and
/// an entry moved per claim and finish ("One index less, a checkpoint per thousand pages"). A
/// failed job is in `jobs_failed_by_acceptance`, a finished one in `jobs_finished_by_age`.
#[test]
fn an_open_job_is_indexed_by_its_key_and_in_insertion_order_only() {
    let (_dir, conn) = conn(&SqliteOptions::default());
    // Entries per b-tree of the jobs table (a leaf cell is an entry; these trees are one page).
    let entries = || -> Vec<(String, i64)> {
        let mut stmt = conn
            .prepare(
                "SELECT name, SUM(ncell) FROM dbstat WHERE pagetype = 'leaf' \
                 AND name IN (SELECT name FROM sqlite_schema WHERE tbl_name = 'jobs') \
                 GROUP BY name ORDER BY name",
            )
            .unwrap_or_else(|e| panic!("{e}"));
        stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap_or_else(|e| panic!("{e}"))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let expect = |table, key, open, failed, finished| {
        [
            ("jobs", table),
            ("jobs_failed_by_acceptance", failed),
            ("jobs_finished_by_age", finished),
            ("jobs_open", open),
            ("sqlite_autoindex_jobs_1", key),
        ]
        .map(|(name, n)| (name.to_owned(), n))
        .to_vec()
    };
    // One row changed (a statement with RETURNING answers one row for it).
    let run = |sql: &str, params: &[&dyn rusqlite::ToSql]| {
        let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{e}"));
        let n = if stmt.column_count() > 0 {
            let mut rows = stmt.query(params).unwrap_or_else(|e| panic!("{e}"));
            let mut n = 0;
            while rows.next().unwrap_or_else(|e| panic!("{e}")).is_some() {
                n += 1;
            }
            n
        } else {
            stmt.execute(params).unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(n, 1, "{sql}");
    };
    for key in ["a", "b"] {
        run(
            SQL_ENQUEUE,
            rusqlite::params!["inbound", key, key, 1_i64, "{}", 10_i64, 10_i64],
        );
    }
    assert_eq!(entries(), expect(2, 2, 2, 0, 0));
    for key in ["a", "b"] {
        run(
            SQL_CLAIM,
            rusqlite::params!["inbound", key, 20_i64, 500_i64],
        );
    }
    assert_eq!(entries(), expect(2, 2, 2, 0, 0));
    run(
        SQL_FINISH,
        rusqlite::params!["inbound", "a", 1_i64, "failed", "gone", 30_i64],
    );
    assert_eq!(entries(), expect(2, 2, 1, 1, 1));
    run(
        SQL_FINISH,
        rusqlite::params!["inbound", "b", 1_i64, "done", None::<&str>, 30_i64],
    );
    assert_eq!(entries(), expect(2, 2, 0, 1, 2));
}

#[test]
fn migrations_run_once() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("twice.db");
    let options = SqliteOptions::default();
    for _ in 0..2 {
        let conn = open_connection(Target::File(&path), "twice.db", &options)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pragma(&conn, "user_version"), SCHEMA_VERSION.to_string());
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' \
                 AND name IN ('sessions', 'profiles', 'jobs', 'records')",
                [],
                |row| row.get(0),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tables, 4);
    }
}

/// A database written by schema version 1 (before `first_claimed_at_ms`) opens, is migrated, and
/// its jobs read back with no first-claim time until their next claim sets one.
#[test]
fn a_version_1_database_upgrades() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("v1.db");
    {
        let v1 = Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
        v1.execute_batch(schema::MIGRATIONS[0])
            .unwrap_or_else(|e| panic!("{e}"));
        v1.pragma_update(None, "user_version", 1_i64)
            .unwrap_or_else(|e| panic!("{e}"));
        v1.execute(
            "INSERT INTO jobs (queue, key, lane, order_key, payload, state, attempts, \
             accepted_at_ms, not_before_ms, lease_until_ms, updated_at_ms, last_error) \
             VALUES ('outbound', 'k', 'chat', 1, '{}', 'pending', 2, 10, 500, 0, 400, 'timeout')",
            [],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let conn = open_connection(Target::File(&path), "v1.db", &SqliteOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pragma(&conn, "user_version"), SCHEMA_VERSION.to_string());
    const { assert!(SCHEMA_VERSION >= 2) };
    let read = |conn: &Connection| {
        conn.query_row(SQL_JOB, rusqlite::params!["outbound", "k"], |row| {
            Ok(job_from_row(row))
        })
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e:?}"))
    };
    let job = read(&conn);
    assert_eq!(
        (
            job.attempts,
            job.last_error.as_deref(),
            job.first_claimed_at_ms
        ),
        (2, Some("timeout"), None)
    );
    let claimed = conn
        .execute(
            SQL_CLAIM,
            rusqlite::params!["outbound", "k", 600_i64, 9_000_i64],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(claimed, 1);
    let job = read(&conn);
    assert_eq!((job.attempts, job.first_claimed_at_ms), (3, Some(600)));
}

/// A database of schema version 3 (with `jobs_by_state`) opens and is migrated: that index is
/// gone, its failed jobs are in `jobs_failed_by_acceptance` and listed from it, oldest first.
#[test]
fn a_version_3_database_upgrades() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("v3.db");
    {
        let v3 = Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
        for migration in &schema::MIGRATIONS[..3] {
            v3.execute_batch(migration)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        v3.pragma_update(None, "user_version", 3_i64)
            .unwrap_or_else(|e| panic!("{e}"));
        for (key, state, accepted) in [
            ("late", "failed", 30),
            ("open", "pending", 5),
            ("early", "failed", 10),
            ("ok", "done", 1),
        ] {
            v3.execute(
                "INSERT INTO jobs (queue, key, lane, order_key, payload, state, attempts, \
                 accepted_at_ms, not_before_ms, updated_at_ms) \
                 VALUES ('inbound', ?1, ?1, 1, '{}', ?2, 1, ?3, 0, 40)",
                rusqlite::params![key, state, accepted],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let conn = open_connection(Target::File(&path), "v3.db", &SqliteOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pragma(&conn, "user_version"), SCHEMA_VERSION.to_string());
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'jobs' ORDER BY name")
        .and_then(|mut stmt| {
            stmt.query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        indexes,
        [
            "jobs_failed_by_acceptance",
            "jobs_finished_by_age",
            "jobs_open",
            "sqlite_autoindex_jobs_1"
        ]
    );
    let failed: Vec<String> = conn
        .prepare(SQL_JOBS_FAILED)
        .and_then(|mut stmt| {
            stmt.query_map(rusqlite::params!["inbound", 10_i64], |row| {
                Ok(job_from_row(row))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|job| {
            job.unwrap_or_else(|e| panic!("{e:?}"))
                .key
                .as_str()
                .to_owned()
        })
        .collect();
    assert_eq!(failed, ["early", "late"]);
}

/// The database and the files SQLite makes beside it are readable by their owner only (the
/// records hold tokens); an existing file readable by others is tightened at open.
#[cfg(unix)]
#[test]
fn files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;

    let mode = |p: &Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("secret.db");
    let conn = open_connection(Target::File(&path), "secret.db", &SqliteOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    conn.execute(
        "INSERT INTO records (key, value, version, updated_at_ms) VALUES ('k', 'v', 1, 0)",
        [],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(mode(&path), 0o600);
    let wal = dir.path().join("secret.db-wal");
    assert!(wal.exists());
    assert_eq!(mode(&wal), 0o600);
    assert_eq!(mode(&dir.path().join("secret.db-shm")), 0o600);
    drop(conn);

    let shared = dir.path().join("shared.db");
    std::fs::write(&shared, b"").unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o644))
        .unwrap_or_else(|e| panic!("{e}"));
    let _conn = open_connection(
        Target::File(&shared),
        "shared.db",
        &SqliteOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(mode(&shared), 0o600);
}
