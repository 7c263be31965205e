//! Each lane's open jobs in running order, kept in memory beside the connection instead of in an
//! index of the file.
//!
//! Why: an index in lane order (`jobs_open_by_lane`, schema versions 1–4) put each lane's newest
//! entries at the end of that lane's range, so a commit wrote one page of it per lane it touched:
//! a quarter to three quarters of the log's frames, and 10–15 µs of each webhook acknowledgement
//! while backlogs grow (docs/performance.md, "Where a commit's pages go"). The file now indexes
//! open jobs in insertion order only (`jobs_open`, whose changes gather at its end), and the
//! order within each lane lives here.
//!
//! **The file stays the truth; this is a copy of part of it, read and changed only by whoever
//! holds the connection** (every call runs on the one connection, `worker.rs`), in the same order
//! as the statements it mirrors. Writes note what they changed after their statements succeeded
//! ([`LaneOrder::added`], [`LaneOrder::removed`]). Before the order is read
//! ([`LaneOrder::current`]), the copy is rebuilt from the file (`jobs_open`) when it may have
//! missed a change:
//!
//! * it was never built (the first read after the store opened);
//! * a transaction was rolled back since it was last read (the connection's rollback hook sets
//!   [`LaneOrder::rolled_back`]): the writes it mirrored may be undone. A queued write that
//!   fails is undone with `ROLLBACK TO` its savepoint, which runs no hook; it notes nothing,
//!   since it fails before its statements all succeed;
//! * another connection committed since (`PRAGMA data_version`, which changes on every commit but
//!   this connection's own): an operator's `inbox retry` beside a running `serve`.
//!
//! A rebuild reads every open job's lane, order key and key (one pass over `jobs_open`: ~0.1 s for
//! 120,000 open jobs, release build), holding the connection meanwhile, so it must stay rare:
//! [`LaneOrder::rebuilds`] counts them for the tests.
//! The copy costs memory in proportion to the open jobs (a key and its order key: ~80 bytes a
//! job, measured), which the backlog bounds.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite::Connection;
use xdm_core::jobs::{JobKey, JobQueue, Lane};

use super::rows::{DbError, query_all};

/// Every open job of the queues this build runs: its queue, lane, order key and key (for a
/// rebuild).
pub(super) const SQL_OPEN_JOBS: &str = "SELECT queue, lane, order_key, key FROM jobs \
     WHERE queue IN ('inbound', 'outbound') AND state IN ('pending', 'processing')";

/// A job's place in the running order of its lane: by order key, then key (byte order, as
/// SQLite's `BINARY` collation and the DynamoDB store compare them).
pub(super) type Place = (i64, JobKey);

/// The open jobs of every lane that has one, in running order, by queue.
type Lanes = HashMap<JobQueue, HashMap<Lane, LaneJobs>>;

/// One lane's open jobs in running order: a sorted ring, since jobs mostly join at the back and
/// leave from the front. Keys are boxed strings: 24 bytes a slot instead of a `BTreeSet` node's
/// share and a `String` (measured ~110 bytes an open job with those, docs/performance.md,
/// "The lanes' order in memory").
#[derive(Debug, Default)]
struct LaneJobs(VecDeque<(i64, Box<str>)>);

impl LaneJobs {
    /// Where `(order_key, key)` is, or would be inserted.
    fn position(&self, order_key: i64, key: &str) -> Result<usize, usize> {
        self.0
            .binary_search_by(|(o, k)| (*o, &**k).cmp(&(order_key, key)))
    }

    fn insert(&mut self, (order_key, key): Place) {
        if let Err(at) = self.position(order_key, key.as_str()) {
            self.0
                .insert(at, (order_key, String::from(key).into_boxed_str()));
        }
    }

    fn remove(&mut self, (order_key, key): &Place) {
        if let Ok(at) = self.position(*order_key, key.as_str()) {
            self.0.remove(at);
        }
    }

    fn is_first(&self, (order_key, key): &Place) -> bool {
        self.0
            .front()
            .is_some_and(|(o, k)| o == order_key && **k == *key.as_str())
    }

    /// The jobs in running order, as places (a key this build wrote always parses again).
    fn places(&self) -> impl Iterator<Item = Place> + '_ {
        self.0.iter().filter_map(|(order_key, key)| {
            JobKey::parse(key.to_string())
                .ok()
                .map(|key| (*order_key, key))
        })
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The copy and what says whether it is current. See the module doc.
#[derive(Debug, Default)]
pub(super) struct LaneOrder {
    mirror: Mutex<Mirror>,
    /// Set by the connection's rollback hook ([`LaneOrder::rollback_flag`]).
    rolled_back: Arc<AtomicBool>,
    rebuilds: AtomicU64,
}

#[derive(Debug, Default)]
struct Mirror {
    /// `None`: not built yet.
    lanes: Option<Lanes>,
    /// `PRAGMA data_version` when the copy was last known current.
    data_version: i64,
}

impl LaneOrder {
    /// The flag the connection's rollback hook sets (registered when the connection opens).
    pub(super) fn rollback_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.rolled_back)
    }

    /// How many times the copy was built from the file.
    #[cfg(test)]
    pub(super) fn rebuilds(&self) -> u64 {
        self.rebuilds.load(Ordering::SeqCst)
    }

    fn lock(&self) -> MutexGuard<'_, Mirror> {
        self.mirror.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The order, current with what `conn` sees, other connections' commits included; rebuilt
    /// first when it may not be. For the claim's test and the periodic look at every lane.
    pub(super) fn current(&self, conn: &Connection) -> Result<Current<'_>, DbError> {
        let data_version: i64 = conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |row| row.get(0))?;
        self.rebuilt_unless(conn, Some(data_version))
    }

    /// The order as this connection's own writes left it, rebuilt first only if it was never
    /// built or a rollback may have undone some of them: another connection's commit since may
    /// be missing. For the hinted look at one lane, whose head is claimed with [`Self::current`]
    /// (a claim of a head that is no longer one fails, and the lane is looked at again), and for
    /// merging a lane's waiting messages. Saves the read transaction `PRAGMA data_version` opens
    /// outside a write (two lock calls on the shared-memory file).
    pub(super) fn own(&self, conn: &Connection) -> Result<Current<'_>, DbError> {
        self.rebuilt_unless(conn, None)
    }

    fn rebuilt_unless(
        &self,
        conn: &Connection,
        data_version: Option<i64>,
    ) -> Result<Current<'_>, DbError> {
        let mut mirror = self.lock();
        let rolled_back = self.rolled_back.swap(false, Ordering::SeqCst);
        let moved_on = data_version.is_some_and(|v| v != mirror.data_version);
        if rolled_back || mirror.lanes.is_none() || moved_on {
            let data_version = match data_version {
                Some(v) => v,
                None => conn
                    .prepare_cached("PRAGMA data_version")?
                    .query_row([], |row| row.get(0))?,
            };
            let started = std::time::Instant::now();
            let lanes = read_open_jobs(conn)?;
            tracing::debug!(
                open_jobs = lanes
                    .values()
                    .flat_map(HashMap::values)
                    .map(LaneJobs::len)
                    .sum::<usize>(),
                lanes = lanes.values().map(HashMap::len).sum::<usize>(),
                elapsed_us = started.elapsed().as_micros() as u64,
                rolled_back,
                "lane order read from the database"
            );
            mirror.lanes = Some(lanes);
            mirror.data_version = data_version;
            self.rebuilds.fetch_add(1, Ordering::SeqCst);
        }
        Ok(Current(mirror))
    }

    /// Whether the job at `place` leads `lane`, other connections' commits included (the claim's
    /// test, in the transaction that takes the job).
    pub(super) fn leads(
        &self,
        conn: &Connection,
        queue: JobQueue,
        lane: &Lane,
        place: &Place,
    ) -> Result<bool, DbError> {
        Ok(self.current(conn)?.leads(queue, lane, place))
    }

    /// A job joined the open ones (accepted, or a failed one retried).
    pub(super) fn added(&self, queue: JobQueue, lane: Lane, place: Place) {
        if let Some(lanes) = self.lock().lanes.as_mut() {
            insert(lanes, queue, lane, place);
        }
    }

    /// A job left the open ones (done or failed).
    pub(super) fn removed(&self, queue: JobQueue, lane: &Lane, place: &Place) {
        if let Some(lanes) = self.lock().lanes.as_mut().and_then(|l| l.get_mut(&queue))
            && let Some(jobs) = lanes.get_mut(lane)
        {
            jobs.remove(place);
            if jobs.is_empty() {
                lanes.remove(lane);
            }
        }
    }

    /// Forgets the copy: the next read rebuilds it (a head the file does not know as open).
    pub(super) fn forget(&self) {
        self.lock().lanes = None;
    }
}

/// The order, known current (see [`LaneOrder::current`]).
pub(super) struct Current<'a>(MutexGuard<'a, Mirror>);

impl Current<'_> {
    fn lanes(&self, queue: JobQueue) -> Option<&HashMap<Lane, LaneJobs>> {
        self.0.lanes.as_ref()?.get(&queue)
    }

    /// The first open job of `lane`.
    pub(super) fn head(&self, queue: JobQueue, lane: &Lane) -> Option<Place> {
        self.lanes(queue)?.get(lane)?.places().next()
    }

    /// Whether the job at `place` is the first open job of `lane`.
    fn leads(&self, queue: JobQueue, lane: &Lane, place: &Place) -> bool {
        self.lanes(queue)
            .and_then(|lanes| lanes.get(lane))
            .is_some_and(|jobs| jobs.is_first(place))
    }

    /// The first open job of every lane of `queue` that has one.
    pub(super) fn heads(&self, queue: JobQueue) -> Vec<Place> {
        self.lanes(queue)
            .into_iter()
            .flat_map(HashMap::values)
            .filter_map(|jobs| jobs.places().next())
            .collect()
    }

    /// The open jobs of `lane`, in running order, at most `limit`.
    pub(super) fn jobs(&self, queue: JobQueue, lane: &Lane, limit: usize) -> Vec<Place> {
        self.lanes(queue)
            .and_then(|lanes| lanes.get(lane))
            .map(|jobs| jobs.places().take(limit).collect())
            .unwrap_or_default()
    }

    /// How many jobs of `queue` are open.
    pub(super) fn open_jobs(&self, queue: JobQueue) -> usize {
        self.lanes(queue)
            .into_iter()
            .flat_map(HashMap::values)
            .map(LaneJobs::len)
            .sum()
    }
}

/// Every open job of the file, by lane. A row this build cannot read (which it never writes) is
/// left out with a warning: it cannot run anyway, and the rest of the queue still can, as when
/// its order was read from an index.
fn read_open_jobs(conn: &Connection) -> Result<Lanes, DbError> {
    let rows = query_all(conn, SQL_OPEN_JOBS, [], |row| {
        let queue: String = row.get(0)?;
        let lane: String = row.get(1)?;
        let order_key: i64 = row.get(2)?;
        let key: String = row.get(3)?;
        let place = JobQueue::parse(&queue).and_then(|queue| {
            let lane = Lane::parse(lane).ok()?;
            let key = JobKey::parse(key.clone()).ok()?;
            Some((queue, lane, (order_key, key)))
        });
        if place.is_none() {
            tracing::warn!(queue = %queue, job = %key, "an open job this build cannot read is left out of its lane");
        }
        Ok(place)
    })?;
    let mut lanes = Lanes::new();
    for (queue, lane, place) in rows.into_iter().flatten() {
        insert(&mut lanes, queue, lane, place);
    }
    Ok(lanes)
}

fn insert(lanes: &mut Lanes, queue: JobQueue, lane: Lane, place: Place) {
    lanes
        .entry(queue)
        .or_default()
        .entry(lane)
        .or_default()
        .insert(place);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use xdm_core::jobs::{FinalState, NewJob};
    use xdm_core::ports::Store;

    use super::super::SqliteStore;
    use super::*;

    const IN: JobQueue = JobQueue::Inbound;

    fn job(key: &str, lane: &str, order_key: i64, payload: &str) -> NewJob {
        NewJob {
            queue: IN,
            key: JobKey::parse(key).unwrap_or_else(|e| panic!("{e}")),
            lane: Lane::parse(lane).unwrap_or_else(|e| panic!("{e}")),
            order_key,
            payload: payload.to_owned(),
            accepted_at_ms: 10,
            not_before_ms: 10,
        }
    }

    fn lane(name: &str) -> Lane {
        Lane::parse(name).unwrap_or_else(|e| panic!("{e}"))
    }

    fn key(name: &str) -> JobKey {
        JobKey::parse(name).unwrap_or_else(|e| panic!("{e}"))
    }

    fn ok<T>(r: Result<T, xdm_core::ports::StoreError>) -> T {
        r.unwrap_or_else(|e| panic!("{e}"))
    }

    async fn open(path: &std::path::Path) -> SqliteStore {
        SqliteStore::open(path)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    async fn head(store: &SqliteStore, lane_name: &str) -> Option<String> {
        ok(store.lane_head(IN, &lane(lane_name), 20).await).map(|j| j.key.as_str().to_owned())
    }

    /// A lane keeps its jobs in running order whatever order they join in: by order key, then by
    /// key (byte order); a job joins once, and leaves from anywhere.
    #[test]
    fn a_lane_keeps_its_jobs_in_running_order() {
        let place = |o: i64, k: &str| (o, key(k));
        let mut jobs = LaneJobs::default();
        for (o, k) in [
            (5, "e"),
            (1, "b"),
            (9, "z"),
            (1, "a"),
            (5, "e"),
            (3, "c#1"),
            (3, "c#0"),
        ] {
            jobs.insert(place(o, k));
        }
        let order = |jobs: &LaneJobs| -> Vec<String> {
            jobs.places().map(|(_, k)| k.as_str().to_owned()).collect()
        };
        assert_eq!(order(&jobs), ["a", "b", "c#0", "c#1", "e", "z"]);
        assert!(jobs.is_first(&place(1, "a")));
        assert!(!jobs.is_first(&place(1, "b")));
        jobs.remove(&place(3, "c#0"));
        jobs.remove(&place(3, "nothing"));
        jobs.remove(&place(1, "a"));
        assert_eq!(order(&jobs), ["b", "c#1", "e", "z"]);
        assert!(jobs.is_first(&place(1, "b")));
        assert_eq!(jobs.len(), 4);
    }

    /// The rebuild reads every queue this build runs.
    #[test]
    fn the_rebuild_reads_every_queue() {
        for queue in JobQueue::ALL {
            assert!(
                SQL_OPEN_JOBS.contains(&format!("'{}'", queue.as_str())),
                "{SQL_OPEN_JOBS}"
            );
        }
    }

    /// A transaction rolled back after the order noted its writes: the order is read again, and
    /// says what the file says. (In the store, a write failing on the caller's thread rolls back
    /// the deferred writes before it, a job's finish among them; here the same, made by hand.)
    #[tokio::test]
    async fn a_rollback_makes_the_order_be_read_again() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = open(&dir.path().join("order.db")).await;
        ok(store
            .enqueue(&[job("a", "L", 1, "{}"), job("b", "L", 2, "{}")])
            .await);
        assert_eq!(head(&store, "L").await.as_deref(), Some("a"));
        let rebuilds = store.lane_order.rebuilds();

        let order = Arc::clone(&store.lane_order);
        let undone = store
            .worker
            .call("finish, then roll back", move |conn| {
                conn.execute_batch("BEGIN; UPDATE jobs SET state = 'done' WHERE key = 'a';")?;
                order.removed(IN, &lane("L"), &(1, key("a")));
                conn.execute_batch("ROLLBACK")?;
                Ok(())
            })
            .await;
        assert!(undone.is_ok(), "{undone:?}");

        assert_eq!(head(&store, "L").await.as_deref(), Some("a"));
        assert_eq!(store.lane_order.rebuilds(), rebuilds + 1);
        // Nothing rolled back since: the order is kept.
        assert_eq!(head(&store, "L").await.as_deref(), Some("a"));
        assert_eq!(store.lane_order.rebuilds(), rebuilds + 1);
    }

    /// Another connection's commit (an operator's command beside `serve`) reaches the order
    /// through the claim's test and the look at every lane; the claim of a job that is no longer
    /// its lane's head fails.
    #[tokio::test]
    async fn another_connections_commit_makes_the_order_be_read_again() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("order.db");
        let store = open(&path).await;
        let other = open(&path).await;
        ok(store.enqueue(&[job("late", "L", 5, "{}")]).await);
        assert_eq!(head(&store, "L").await.as_deref(), Some("late"));

        ok(other.enqueue(&[job("early", "L", 1, "{}")]).await);
        assert!(!ok(store.claim(IN, &key("late"), 1_000, 20).await));
        assert_eq!(head(&store, "L").await.as_deref(), Some("early"));
        assert!(ok(store.claim(IN, &key("early"), 1_000, 20).await));
        assert!(ok(store
            .finish(IN, &key("early"), 1, FinalState::Failed, Some("x"), 30)
            .await));

        // The other connection retries the failed job: it leads its lane again. The periodic
        // look at every lane sees it; so does a claim, which then refuses the job behind it.
        assert!(ok(other.retry_failed(IN, &key("early"), 40).await));
        let heads = ok(store.lane_heads(IN, 50, 10).await);
        assert_eq!(heads.len(), 1);
        assert_eq!(heads[0].key.as_str(), "early");
        assert!(!ok(store.claim(IN, &key("late"), 1_000, 50).await));
        assert_eq!(head(&store, "L").await.as_deref(), Some("early"));
        assert_eq!(
            ok(store.lane_jobs(IN, &lane("L"), 10).await)
                .into_iter()
                .map(|e| e.key.as_str().to_owned())
                .collect::<Vec<_>>(),
            ["early", "late"]
        );
    }

    /// The store's own writes, checkpoints included (on the checkpointer's connection), never
    /// make the order be read again: it is read once, at the first read after opening.
    #[tokio::test]
    async fn the_stores_own_writes_and_checkpoints_keep_the_order() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("order.db");
        let store = open(&path).await;
        let payload = "x".repeat(2_000);
        // ~4,000 pages of log: the checkpointer's connection copies them back as it goes; another
        // connection checkpoints too, every 500 jobs, so that the test cannot pass without one.
        let checkpointer = Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
        for n in 0..2_000_i64 {
            let name = format!("k{n:05}");
            // Every third job in a lane of its own, where it leads and is run at once.
            let lane_name = if n % 3 == 0 {
                format!("C{n}")
            } else {
                format!("L{}", n % 7)
            };
            ok(store.enqueue(&[job(&name, &lane_name, n, &payload)]).await);
            if n % 3 == 0 {
                assert!(ok(store
                    .claim_deferred(IN, &key(&name), 1_000_000, 20)
                    .await));
                assert!(ok(store
                    .finish(IN, &key(&name), 1, FinalState::Done, None, 30)
                    .await));
            }
            if n % 500 == 499 {
                // Right after a commit, so the log holds frames; tried again while the store's
                // own checkpointer holds the checkpoint lock (`busy`).
                let mut copied = 0;
                for _ in 0..200 {
                    copied = checkpointer
                        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                            row.get::<_, i64>(2)
                        })
                        .unwrap_or_else(|e| panic!("{e}"));
                    if copied > 0 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                assert!(copied > 0, "no checkpoint copied anything");
            }
            if n % 100 == 99 {
                tokio::time::sleep(Duration::from_millis(1)).await;
                assert!(!ok(store.lane_heads(IN, 20, usize::MAX).await).is_empty());
            }
        }
        assert_eq!(store.lane_order.rebuilds(), 1);
        let open = ok(store.lane_jobs(IN, &lane("L1"), usize::MAX).await).len();
        assert_eq!(
            open,
            (0..2_000).filter(|n| n % 7 == 1 && n % 3 != 0).count()
        );
    }
}
