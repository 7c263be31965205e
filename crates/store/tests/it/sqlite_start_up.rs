//! What opening a SQLite store checks, and the instance lock of the processes that deliver: one
//! lock holder per file (named when refused, gone with its process even on `kill -9`), a damaged
//! page refused before anything is written, no write lock taken when no migration is due (and a
//! busy one named as such when one is), and who may write the directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use xdm_core::jobs::JobQueue;
use xdm_core::ports::{Store, StoreError};
use xdm_store::{
    InstanceLock, LockState, OpenError, SCHEMA_VERSION, SqliteOptions, SqliteStore, StoreUrl,
};

use crate::fixtures::{job_in, k};

const IN: JobQueue = JobQueue::Inbound;

fn temp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let path = dir.path().join("xdm-connect.db");
    (dir, path)
}

fn ok<T>(r: Result<T, StoreError>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// A store that gives up on a held write lock after 50 ms.
fn impatient() -> SqliteOptions {
    SqliteOptions {
        busy_timeout: Duration::from_millis(50),
        ..SqliteOptions::default()
    }
}

/// Waits until the store thread of a dropped store has closed the file (its `-wal` is removed
/// at the last close, after the final checkpoint).
async fn wait_closed(path: &Path) {
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    for _ in 0..200 {
        if !wal.exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} was not closed", path.display());
}

// ---- the instance lock ---------------------------------------------------------------------

#[test]
fn a_second_instance_lock_is_refused_naming_the_holder() {
    let (_dir, path) = temp();
    assert_eq!(
        InstanceLock::state(&path).unwrap_or_else(|e| panic!("{e}")),
        LockState::Free
    );
    let first = InstanceLock::acquire(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.holder().pid, std::process::id());
    assert_eq!(first.path(), InstanceLock::path_for(&path));

    let e = InstanceLock::acquire(&path)
        .err()
        .unwrap_or_else(|| panic!("two holders of one lock"));
    let OpenError::Locked { holder, .. } = &e else {
        panic!("expected Locked, got {e:?}");
    };
    assert_eq!(holder.as_ref(), Some(first.holder()));
    let msg = e.to_string();
    for part in [
        format!("pid {}", std::process::id()),
        first.holder().host.clone(),
        first.holder().started_at.clone(),
        path.display().to_string(),
        "XDM_STORE".to_owned(),
    ] {
        assert!(msg.contains(&part), "{part:?} missing from: {msg}");
    }
    assert_eq!(
        InstanceLock::state(&path).unwrap_or_else(|e| panic!("{e}")),
        LockState::Held(Some(first.holder().clone()))
    );
    // The probe did not take the lock away from its holder.
    assert!(InstanceLock::acquire(&path).is_err());

    drop(first);
    assert_eq!(
        InstanceLock::state(&path).unwrap_or_else(|e| panic!("{e}")),
        LockState::Free
    );
    let second = InstanceLock::acquire(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(second.holder().pid, std::process::id());
    // The database itself was never created: the lock is taken before the store is opened.
    assert!(!path.exists());
}

#[cfg(unix)]
#[test]
fn the_lock_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, path) = temp();
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{e}"))
            .permissions()
            .mode()
            & 0o777
    };
    let lock = InstanceLock::acquire(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(mode(lock.path()), 0o600);
    drop(lock);
    // An existing lock file someone made readable loses those bits.
    let lock_file = InstanceLock::path_for(&path);
    std::fs::set_permissions(&lock_file, std::fs::Permissions::from_mode(0o644))
        .unwrap_or_else(|e| panic!("{e}"));
    let _lock = InstanceLock::acquire(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(mode(&lock_file), 0o600);
}

const LOCK_CHILD_DB: &str = "XDM_STORE_LOCK_CHILD_DB";

/// The child half of `the_instance_lock_ends_with_its_process_even_on_kill_9`: takes the lock,
/// says so, and waits to be killed.
#[test]
#[ignore = "run in a child process by the_instance_lock_ends_with_its_process_even_on_kill_9"]
fn lock_child() {
    let Some(path) = std::env::var_os(LOCK_CHILD_DB) else {
        return;
    };
    let _lock = InstanceLock::acquire(Path::new(&path)).unwrap_or_else(|e| panic!("{e}"));
    #[allow(clippy::print_stdout)]
    {
        println!("LOCKED");
    }
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn the_instance_lock_ends_with_its_process_even_on_kill_9() {
    use std::io::{BufRead, BufReader};
    let (_dir, path) = temp();
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "sqlite_start_up::lock_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(LOCK_CHILD_DB, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn the child: {e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let mut lines = BufReader::new(stdout).lines();
    let locked = lines.any(|l| l.is_ok_and(|l| l.contains("LOCKED")));
    assert!(locked, "the child did not take the lock");

    let e = InstanceLock::acquire(&path)
        .err()
        .unwrap_or_else(|| panic!("the child's lock was taken"));
    assert!(
        e.to_string().contains(&format!("pid {}", child.id())),
        "{e}"
    );
    // SIGKILL: no destructor runs, the OS drops the lock with the process.
    child.kill().unwrap_or_else(|e| panic!("{e}"));
    child.wait().unwrap_or_else(|e| panic!("{e}"));
    let lock = InstanceLock::acquire(&path).unwrap_or_else(|e| panic!("after the kill: {e}"));
    assert_eq!(lock.holder().pid, std::process::id());
}

// ---- a damaged file ----------------------------------------------------------------------

/// A store file with a few hundred jobs, closed; returns the page of the `jobs` table's root.
async fn store_with_jobs(path: &Path) -> u64 {
    let store = SqliteStore::open(path)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let jobs: Vec<_> = (0..300)
        .map(|i| job_in(&format!("job-{i:03}"), &format!("lane-{}", i % 7), i))
        .collect();
    ok(store.enqueue(&jobs).await);
    drop(store);
    wait_closed(path).await;
    let raw = rusqlite::Connection::open(path).unwrap_or_else(|e| panic!("{e}"));
    let root: i64 = raw
        .query_row(
            "SELECT rootpage FROM sqlite_schema WHERE type = 'table' AND name = 'jobs'",
            [],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let page_size: i64 = raw
        .pragma_query_value(None, "page_size", |r| r.get(0))
        .unwrap_or_else(|e| panic!("{e}"));
    drop(raw);
    u64::try_from((root - 1) * page_size).unwrap_or_else(|e| panic!("{e}"))
}

/// Overwrites `len` bytes at `offset` of `path` with a pattern that is no b-tree page.
fn scribble(path: &Path, offset: u64, len: usize) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{e}"));
    f.seek(SeekFrom::Start(offset))
        .unwrap_or_else(|e| panic!("{e}"));
    let garbage: Vec<u8> = (0..len).map(|i| (i * 7 + 0x5a) as u8).collect();
    f.write_all(&garbage).unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn a_damaged_page_is_refused_at_open_and_the_file_left_as_it_was() {
    let (_dir, path) = temp();
    let jobs_root = store_with_jobs(&path).await;
    assert!(jobs_root >= 4096, "the header page is not touched");
    scribble(&path, jobs_root, 4096);
    let before = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));

    let e = SqliteStore::open(&path)
        .await
        .err()
        .unwrap_or_else(|| panic!("a damaged file was opened"));
    assert!(matches!(e, OpenError::Corrupt { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains(".recover"), "{msg}");
    // Through the factory, as `serve` and `doctor` open it.
    let url =
        StoreUrl::parse(&format!("sqlite:{}", path.display())).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        xdm_store::open(&url).await,
        Err(OpenError::Corrupt { .. })
    ));
    wait_closed(&path).await;
    assert!(
        std::fs::read(&path).unwrap_or_else(|e| panic!("{e}")) == before,
        "opening a damaged file changed it"
    );
}

// ---- migrations and the write lock -------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_a_current_file_takes_no_write_lock() {
    let (_dir, path) = temp();
    let store = SqliteStore::open(&path)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    ok(store.enqueue(&[job_in("x", "L", 1)]).await);
    drop(store);
    wait_closed(&path).await;

    // Another process in the middle of a write transaction.
    let raw = rusqlite::Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
    raw.execute_batch("BEGIN IMMEDIATE; UPDATE jobs SET last_error = 'busy' WHERE key = 'x';")
        .unwrap_or_else(|e| panic!("{e}"));
    let store = SqliteStore::open_with(&path, impatient())
        .await
        .unwrap_or_else(|e| panic!("a current file must open beside a writer: {e}"));
    let job = ok(store.job(IN, &k("x")).await).unwrap_or_else(|| panic!("job x"));
    assert_eq!(
        job.last_error, None,
        "the other transaction is not committed"
    );
    raw.execute_batch("ROLLBACK")
        .unwrap_or_else(|e| panic!("{e}"));
}

/// The schema as the build before the `records` table wrote it (version 2).
fn old_schema_file(path: &Path) {
    let raw = rusqlite::Connection::open(path).unwrap_or_else(|e| panic!("{e}"));
    raw.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
        .unwrap_or_else(|e| panic!("{e}"));
    raw.execute_batch(include_str!("../../src/sqlite/migrations/0001_initial.sql"))
        .unwrap_or_else(|e| panic!("{e}"));
    raw.execute_batch(include_str!(
        "../../src/sqlite/migrations/0002_first_claimed_at.sql"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    raw.pragma_update(None, "user_version", 2)
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_migration_under_another_process_write_lock_says_so() {
    assert_eq!(
        SCHEMA_VERSION, 5,
        "update old_schema_file for a new migration"
    );
    let (_dir, path) = temp();
    old_schema_file(&path);
    let raw = rusqlite::Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
    raw.execute_batch("BEGIN IMMEDIATE")
        .unwrap_or_else(|e| panic!("{e}"));

    let e = SqliteStore::open_with(&path, impatient())
        .await
        .err()
        .unwrap_or_else(|| panic!("migrated under another process's write lock"));
    assert!(
        matches!(e, OpenError::Busy { version: 3, .. }),
        "expected Busy, got {e:?}"
    );
    let msg = e.to_string();
    assert!(msg.contains("another process holds"), "{msg}");
    assert!(!msg.contains("cannot migrate"), "{msg}");

    raw.execute_batch("ROLLBACK")
        .unwrap_or_else(|e| panic!("{e}"));
    drop(raw);
    let store = SqliteStore::open_with(&path, impatient())
        .await
        .unwrap_or_else(|e| panic!("once the lock is gone: {e}"));
    ok(store
        .put_record("k", "v", xdm_core::records::Expect::Absent, 1)
        .await);
}

// ---- who may write the directory ----------------------------------------------------------

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

#[cfg(unix)]
#[tokio::test]
async fn a_directory_every_user_may_write_is_refused() {
    for mode in [0o777, 0o1777] {
        let (dir, path) = temp();
        chmod(dir.path(), mode);
        let e = SqliteStore::open(&path)
            .await
            .err()
            .unwrap_or_else(|| panic!("opened in a directory of mode {mode:o}"));
        assert!(matches!(e, OpenError::UnsafeDirectory { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("chmod o-w"), "{msg}");
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
        assert!(matches!(
            InstanceLock::acquire(&path),
            Err(OpenError::UnsafeDirectory { .. })
        ));
        assert!(
            std::fs::read_dir(dir.path())
                .unwrap_or_else(|e| panic!("{e}"))
                .next()
                .is_none(),
            "nothing may be created in it"
        );
        chmod(dir.path(), 0o700);
    }
}

#[cfg(unix)]
#[tokio::test]
async fn a_group_writable_directory_or_a_file_of_another_owner_is_a_warning() {
    use std::os::unix::fs::MetadataExt;
    let (dir, path) = temp();
    chmod(dir.path(), 0o770);
    let store = SqliteStore::open(&path)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(store.warnings().len(), 1, "{:?}", store.warnings());
    assert!(
        store.warnings()[0].contains("chmod g-w"),
        "{:?}",
        store.warnings()
    );
    drop(store);
    wait_closed(&path).await;

    chmod(dir.path(), 0o700);
    let store = SqliteStore::open(&path)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(store.warnings().is_empty(), "{:?}", store.warnings());
    drop(store);
    wait_closed(&path).await;

    // Only root may give a file away.
    let me = std::fs::metadata(&path)
        .unwrap_or_else(|e| panic!("{e}"))
        .uid();
    if me == 0 {
        std::os::unix::fs::chown(&path, Some(4242), None).unwrap_or_else(|e| panic!("{e}"));
        let store = SqliteStore::open(&path)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.warnings().len(), 1, "{:?}", store.warnings());
        assert!(
            store.warnings()[0].contains("owned by user id 4242"),
            "{:?}",
            store.warnings()
        );
    }
}
