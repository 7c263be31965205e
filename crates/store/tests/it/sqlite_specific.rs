//! What only the SQLite backend has: a file that outlives the process, several connections on
//! one file, start-up errors, and rows this build cannot read.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Barrier;
use tokio::task::JoinSet;
use xdm_core::jobs::{FinalState, Job, JobQueue, JobState};
use xdm_core::ports::{SessionInsert, Store, StoreError};
use xdm_core::session::{Session, SessionStatus};
use xdm_store::{
    AnyStore, OpenError, SCHEMA_VERSION, SqliteOptions, SqliteStore, StoreUrl, Synchronous,
};

use crate::fixtures::{cid, connection, full_profile, job_in, k, new_job, session, stored, uid};

const IN: JobQueue = JobQueue::Inbound;
const OUT: JobQueue = JobQueue::Outbound;

fn temp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let path = dir.path().join("xdm-connect.db");
    (dir, path)
}

async fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path)
        .await
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

fn ok<T>(r: Result<T, StoreError>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// Writes a bit of everything; returns what the store must hold afterwards.
async fn write_everything(store: &SqliteStore) -> (Vec<Job>, Vec<Job>, Vec<Session>) {
    let live = session("100", "200", "live-chat", 1_000);
    let ended = session("100", "201", "ended-chat", 1_000);
    assert_eq!(
        ok(store.insert_session(&live).await),
        SessionInsert::Inserted
    );
    assert_eq!(
        ok(store.insert_session(&ended).await),
        SessionInsert::Inserted
    );
    let conn = connection("conn-token", Some(86_400_000));
    ok(store
        .set_session_connection(&live.initial_contact_id, &conn, 1_100)
        .await);
    assert!(ok(store
        .end_session(&ended.initial_contact_id, 1_200)
        .await));
    ok(store
        .cache_profile(&full_profile("200", "Ada"), 9_000_000)
        .await);

    let inbound = [
        job_in("in-1", "200", 1),
        job_in("in-2", "200", 2),
        job_in("in-3", "201", 1),
        job_in("in-4", "202", 1),
    ];
    let outbound = [new_job(OUT, "out-1", "live-chat", 1, 5, 5)];
    assert_eq!(ok(store.enqueue(&inbound).await), vec![true; 4]);
    assert_eq!(ok(store.enqueue(&outbound).await), vec![true]);
    // in-1 done, in-3 failed, in-4 processing, in-2 pending; out-1 rescheduled.
    assert!(ok(store.claim(IN, &k("in-1"), 1_000, 10).await));
    assert!(ok(store
        .finish(IN, &k("in-1"), 1, FinalState::Done, None, 20)
        .await));
    assert!(ok(store.claim(IN, &k("in-3"), 1_000, 10).await));
    assert!(ok(store
        .finish(
            IN,
            &k("in-3"),
            1,
            FinalState::Failed,
            Some("403 DMs closed"),
            30
        )
        .await));
    assert!(ok(store.claim(IN, &k("in-4"), 60_000, 40).await));
    assert!(ok(store.claim(OUT, &k("out-1"), 1_000, 10).await));
    assert!(ok(store
        .reschedule(OUT, &k("out-1"), 1, 5_000, "429", 50)
        .await));

    let jobs_in = ok(store.jobs(IN, None, 100).await);
    let jobs_out = ok(store.jobs(OUT, None, 100).await);
    assert_eq!(jobs_in.len(), 4);
    assert_eq!(jobs_in[3].state, JobState::Processing);
    let sessions = vec![
        ok(store.session_by_initial_contact(&cid("live-chat")).await)
            .unwrap_or_else(|| panic!("live-chat missing")),
        ok(store.session_by_initial_contact(&cid("ended-chat")).await)
            .unwrap_or_else(|| panic!("ended-chat missing")),
    ];
    assert_eq!(sessions[0].status, SessionStatus::Live);
    (jobs_in, jobs_out, sessions)
}

async fn assert_holds(
    store: &SqliteStore,
    jobs_in: &[Job],
    jobs_out: &[Job],
    sessions: &[Session],
) {
    assert_eq!(ok(store.jobs(IN, None, 100).await), jobs_in);
    assert_eq!(ok(store.jobs(OUT, None, 100).await), jobs_out);
    for s in sessions {
        assert_eq!(
            ok(store
                .session_by_initial_contact(&s.initial_contact_id)
                .await)
            .as_ref(),
            Some(s)
        );
    }
    assert_eq!(
        ok(store.open_session(&uid("100"), &uid("200")).await).as_ref(),
        Some(&sessions[0])
    );
    assert_eq!(ok(store.open_session(&uid("100"), &uid("201")).await), None);
    assert_eq!(
        ok(store.cached_profile(&uid("200"), 0).await),
        Some(full_profile("200", "Ada"))
    );
    // The rules still hold on the reopened file: duplicates are dropped, the pair is taken.
    assert_eq!(
        ok(store.enqueue(&[job_in("in-1", "200", 1)]).await),
        vec![false]
    );
    assert_eq!(
        ok(store
            .insert_session(&session("100", "200", "other", 9))
            .await),
        SessionInsert::OpenExists(sessions[0].clone())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_the_file_keeps_everything() {
    let (_dir, path) = temp();
    let store = open(&path).await;
    let (jobs_in, jobs_out, sessions) = write_everything(&store).await;
    drop(store);

    let store = open(&path).await;
    assert_holds(&store, &jobs_in, &jobs_out, &sessions).await;
}

const CRASH_CHILD_DB: &str = "XDM_STORE_CRASH_CHILD_DB";

/// The child half of `a_crash_right_after_the_ack_loses_nothing`: writes, says so, and dies
/// without running any destructor (no connection close, no WAL checkpoint), like `kill -9`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run in a child process by a_crash_right_after_the_ack_loses_nothing"]
async fn crash_child() {
    let Some(path) = std::env::var_os(CRASH_CHILD_DB) else {
        return;
    };
    let store = open(Path::new(&path)).await;
    write_everything(&store).await;
    // The parent looks for this line: everything above was acknowledged.
    #[allow(clippy::print_stdout)]
    {
        println!("ACKED");
    }
    std::process::abort();
}

/// Runs the ignored test `name` of this binary in a child process with `env` set to the database
/// `path`; asserts that it wrote (printed `ACKED`) and died.
fn run_dying_child(name: &str, env: &str, path: &Path) -> std::process::Output {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            name,
            "--nocapture",
            "--test-threads=1",
        ])
        .env(env, path)
        .output()
        .unwrap_or_else(|e| panic!("spawn the child: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "the child must die: {stdout}");
    assert!(
        stdout.contains("ACKED"),
        "the child did not write: {stdout}"
    );
    out
}

#[test]
fn a_crash_right_after_the_ack_loses_nothing() {
    let (_dir, path) = temp();
    let out = run_dying_child("sqlite_specific::crash_child", CRASH_CHILD_DB, &path);
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(6),
            "SIGABRT expected: {:?}",
            out.status
        );
    }
    // The commits are in the WAL, never checkpointed into the main file.
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert!(wal_len > 0, "expected a non-empty {}", wal.display());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(async {
        // What the child wrote, rebuilt the same way in a scratch store.
        let (_scratch_dir, scratch) = temp();
        let (jobs_in, jobs_out, sessions) = write_everything(&open(&scratch).await).await;

        let store = open(&path).await;
        assert_holds(&store, &jobs_in, &jobs_out, &sessions).await;
        // Start-up recovery: the dead process's claim is released at once.
        assert_eq!(ok(store.release_claims(IN, 70).await), 1);
        let released = ok(store.job(IN, &k("in-4")).await);
        assert_eq!(
            released,
            Some(Job {
                attempts: 1,
                not_before_ms: 70,
                updated_at_ms: 70,
                first_claimed_at_ms: Some(40),
                ..stored(&job_in("in-4", "202", 1))
            })
        );
    });
}

const DEFERRED_CHILD_DB: &str = "XDM_STORE_DEFERRED_CHILD_DB";

/// The child half of `a_crash_loses_only_the_last_deferred_writes`: claims and finishes jobs
/// with deferred writes (a deadline far away, so that only other writes commit them), and dies
/// like `kill -9`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run in a child process by a_crash_loses_only_the_last_deferred_writes"]
async fn deferred_crash_child() {
    let Some(path) = std::env::var_os(DEFERRED_CHILD_DB) else {
        return;
    };
    let options = SqliteOptions {
        deferred_commit_within: Duration::from_secs(600),
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(Path::new(&path), options)
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
    ok(store
        .enqueue(&[job_in("a", "200", 1), job_in("b", "201", 1)])
        .await);
    assert!(ok(store.claim_deferred(IN, &k("a"), 1_000, 10).await));
    assert!(ok(store
        .finish(IN, &k("a"), 1, FinalState::Done, None, 20)
        .await));
    // An acknowledged webhook: committed, and with it everything before it.
    ok(store.enqueue(&[job_in("c", "202", 1)]).await);
    assert!(ok(store.claim_deferred(IN, &k("b"), 1_000, 30).await));
    assert!(ok(store
        .finish(IN, &k("b"), 1, FinalState::Done, None, 40)
        .await));
    assert_eq!(
        ok(store.job(IN, &k("b")).await).map(|j| j.state),
        Some(JobState::Done)
    );
    #[allow(clippy::print_stdout)]
    {
        println!("ACKED");
    }
    std::process::abort();
}

/// A crash loses the deferred writes made after the last commit — a suffix — and nothing an
/// acknowledged write committed: `a` (finished before `c` was accepted) stays done, `b` (claimed
/// and finished after) is pending again as never claimed, and runs again.
#[test]
fn a_crash_loses_only_the_last_deferred_writes() {
    let (_dir, path) = temp();
    run_dying_child(
        "sqlite_specific::deferred_crash_child",
        DEFERRED_CHILD_DB,
        &path,
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(async {
        let store = open(&path).await;
        let a = ok(store.job(IN, &k("a")).await).unwrap_or_else(|| panic!("a is gone"));
        assert_eq!((a.state, a.attempts), (JobState::Done, 1));
        assert_eq!(
            ok(store.job(IN, &k("b")).await),
            Some(stored(&job_in("b", "201", 1))),
            "b's claim and finish were after the last commit"
        );
        assert_eq!(
            ok(store.job(IN, &k("c")).await),
            Some(stored(&job_in("c", "202", 1)))
        );
        assert_eq!(ok(store.release_claims(IN, 50).await), 0);
    });
}

/// The race with several connections on one file (several processes, in effect): the unique
/// index and SQLite's write lock decide, not the single-connection thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn races_across_connections_have_one_winner() {
    const HANDLES: usize = 4;
    const RACERS: usize = 20;
    let (_dir, path) = temp();
    let mut stores = Vec::new();
    for _ in 0..HANDLES {
        stores.push(Arc::new(open(&path).await));
    }
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut tasks = JoinSet::new();
    for i in 0..RACERS {
        let store = Arc::clone(&stores[i % HANDLES]);
        let barrier = Arc::clone(&barrier);
        tasks.spawn(async move {
            let s = session("100", "200", &format!("racer-{i:02}"), i as i64);
            barrier.wait().await;
            (s.clone(), store.insert_session(&s).await)
        });
    }
    let mut inserted = Vec::new();
    let mut existing = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (s, outcome) = joined.unwrap_or_else(|e| panic!("{e}"));
        match ok(outcome) {
            SessionInsert::Inserted => inserted.push(s),
            SessionInsert::OpenExists(e) => existing.push(e),
        }
    }
    assert_eq!(inserted.len(), 1, "{inserted:?}");
    assert_eq!(existing.len(), RACERS - 1);
    assert!(existing.iter().all(|e| e == &inserted[0]));

    // claim, the same way.
    assert_eq!(
        ok(stores[0].enqueue(&[job_in("x", "L", 1)]).await),
        vec![true]
    );
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut tasks = JoinSet::new();
    for i in 0..RACERS {
        let store = Arc::clone(&stores[i % HANDLES]);
        let barrier = Arc::clone(&barrier);
        tasks.spawn(async move {
            barrier.wait().await;
            store.claim(IN, &k("x"), 1_000, 100).await
        });
    }
    let mut won = 0;
    while let Some(joined) = tasks.join_next().await {
        if ok(joined.unwrap_or_else(|e| panic!("{e}"))) {
            won += 1;
        }
    }
    assert_eq!(won, 1);
    assert_eq!(
        ok(stores[3].job(IN, &k("x")).await).map(|j| j.attempts),
        Some(1)
    );
}

#[tokio::test]
async fn a_missing_directory_is_an_error_naming_the_path() {
    let (dir, _) = temp();
    let missing = dir.path().join("no-such-dir");
    let path = missing.join("xdm.db");
    let e = SqliteStore::open(&path)
        .await
        .err()
        .unwrap_or_else(|| panic!("opened in a missing directory"));
    assert!(matches!(e, OpenError::MissingDirectory { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&missing.display().to_string()), "{msg}");
    assert!(msg.contains("XDM_STORE"), "{msg}");
    assert!(!missing.exists(), "the directory must not be created");

    // Through the factory too.
    let url =
        StoreUrl::parse(&format!("sqlite:{}", path.display())).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        xdm_store::open(&url).await,
        Err(OpenError::MissingDirectory { .. })
    ));
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused() {
    let (_dir, path) = temp();
    std::fs::write(
        &path,
        b"this is not an SQLite database, just text; ".repeat(200),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let e = SqliteStore::open(&path)
        .await
        .err()
        .unwrap_or_else(|| panic!("opened a text file"));
    assert!(matches!(e, OpenError::Sqlite { .. }), "{e:?}");
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let (_dir, path) = temp();
    drop(open(&path).await);
    {
        let raw = rusqlite::Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
        raw.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    match SqliteStore::open(&path).await {
        Err(OpenError::SchemaTooNew {
            found, supported, ..
        }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[tokio::test]
async fn rows_this_build_cannot_read_are_corrupt() {
    let (_dir, path) = temp();
    let store = open(&path).await;
    {
        let raw = rusqlite::Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
        raw.execute_batch(
            "INSERT INTO jobs (queue, key, lane, order_key, payload, state, accepted_at_ms, \
                 not_before_ms, updated_at_ms) VALUES ('inbound', 'weird', 'L', 1, '{}', 'paused', 0, 0, 0);
             INSERT INTO jobs (queue, key, lane, order_key, payload, state, accepted_at_ms, \
                 not_before_ms, updated_at_ms) VALUES ('sideways', 'q', 'L', 1, '{}', 'pending', 0, 0, 0);
             INSERT INTO sessions (initial_contact_id, business, customer, participant_token, \
                 opened_by, status, created_at_ms, updated_at_ms) \
                 VALUES ('bogus-status', '1', '2', 'p', 'o', 'paused', 0, 0);
             INSERT INTO sessions (initial_contact_id, business, customer, participant_token, \
                 opened_by, status, created_at_ms, updated_at_ms) \
                 VALUES ('bad-user', 'not-a-number', '3', 'p', 'o', 'live', 0, 0);
             INSERT INTO profiles (user_id, profile, expires_at_ms) VALUES ('9', '{not json', 100);
             INSERT INTO profiles (user_id, profile, expires_at_ms) \
                 VALUES ('8', '{\"id\":\"7\",\"name\":null,\"username\":null,\"profile_image_url\":null,\"verified\":null,\"followers_count\":null}', 100);",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let corrupt = |r: Result<_, StoreError>, what: &str| match r {
        Err(StoreError::Corrupt(msg)) => msg,
        other => panic!("{what}: expected Corrupt, got {other:?}"),
    };
    let msg = corrupt(
        store.job(IN, &k("weird")).await.map(|_| ()),
        "unknown job state",
    );
    assert!(msg.contains("paused"), "{msg}");
    corrupt(store.jobs(IN, None, 10).await.map(|_| ()), "listing");
    let msg = corrupt(
        store
            .session_by_initial_contact(&cid("bogus-status"))
            .await
            .map(|_| ()),
        "unknown session status",
    );
    assert!(msg.contains("paused"), "{msg}");
    corrupt(
        store
            .session_by_initial_contact(&cid("bad-user"))
            .await
            .map(|_| ()),
        "invalid user id",
    );
    corrupt(
        store.cached_profile(&uid("9"), 0).await.map(|_| ()),
        "bad JSON",
    );
    corrupt(
        store.cached_profile(&uid("8"), 0).await.map(|_| ()),
        "wrong profile",
    );
    // The readable rest still works: the weird job is not open, so it does not hold lane L.
    assert_eq!(ok(store.enqueue(&[job_in("ok", "L", 2)]).await), vec![true]);
    assert_eq!(
        ok(store.lane_heads(IN, 0, 10).await),
        vec![stored(&job_in("ok", "L", 2))]
    );
}

/// Another process holding the write lock longer than busy_timeout ⇒ Unavailable (retryable),
/// and the store works again once the lock is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_write_lock_is_unavailable_then_recovers() {
    let (_dir, path) = temp();
    let options = SqliteOptions {
        busy_timeout: Duration::from_millis(50),
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(&path, options)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let raw = rusqlite::Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
    raw.execute_batch("BEGIN IMMEDIATE")
        .unwrap_or_else(|e| panic!("{e}"));

    match store.enqueue(&[job_in("x", "L", 1)]).await {
        Err(StoreError::Unavailable(msg)) => assert!(msg.contains("enqueue"), "{msg}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // Readers are not blocked by a writer in WAL mode.
    assert_eq!(ok(store.jobs(IN, None, 10).await), vec![]);

    raw.execute_batch("ROLLBACK")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok(store.enqueue(&[job_in("x", "L", 1)]).await), vec![true]);
}

#[tokio::test]
async fn the_factory_opens_files_with_their_options() {
    let (_dir, path) = temp();
    let url = StoreUrl::parse(&format!("sqlite:{}?synchronous=full", path.display()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        &url,
        StoreUrl::Sqlite { options, .. } if options.synchronous == Synchronous::Full
    ));
    let store = xdm_store::open(&url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(&store, AnyStore::Sqlite(s) if s.location() == path.display().to_string()));
    assert_eq!(ok(store.enqueue(&[job_in("x", "L", 1)]).await), vec![true]);
    drop(store);
    assert!(path.exists());
    let reopened = open(&path).await;
    assert_eq!(
        ok(reopened.job(IN, &k("x")).await),
        Some(stored(&job_in("x", "L", 1)))
    );
}
