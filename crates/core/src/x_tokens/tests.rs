//! The keeper against a faithful fake token endpoint (single-use refresh tokens) and the
//! in-memory store, with tokio's paused clock driving the wall clock.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::*;
use crate::ids::InitialContactId;
use crate::jobs::{FinalState, Job, JobKey, JobQueue, JobState, NewJob};
use crate::memory_store::MemoryStore;
use crate::ports::SessionInsert;
use crate::profile::XProfile;
use crate::session::{ConnectionCredentials, Session};

const LIFETIME_S: i64 = 7_200;
/// Into the 5-minute refresh margin of a 2-hour token.
const INTO_MARGIN: Duration = Duration::from_secs(7_200 - 299);

/// Wall-clock time that moves with tokio's (paused) clock.
#[derive(Debug, Clone)]
struct TestClock {
    start: Instant,
}

impl TestClock {
    fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }
}

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        1_700_000_000_000 + i64::try_from(self.start.elapsed().as_millis()).unwrap_or(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Works,
    Unavailable,
}

#[derive(Debug)]
struct XState {
    /// The one refresh token X accepts now.
    valid: String,
    issued: u32,
    mode: Mode,
    lifetime_s: i64,
}

/// X's token endpoint: each refresh token works once, and answers the next pair.
#[derive(Debug, Clone)]
struct FakeX {
    state: Arc<Mutex<XState>>,
    calls: Arc<AtomicUsize>,
    delay: Duration,
}

impl FakeX {
    fn new(delay: Duration) -> Self {
        Self {
            state: Arc::new(Mutex::new(XState {
                valid: "rt-0".into(),
                issued: 0,
                mode: Mode::Works,
                lifetime_s: LIFETIME_S,
            })),
            calls: Arc::new(AtomicUsize::new(0)),
            delay,
        }
    }

    fn login(&self) -> TokenGrant {
        TokenGrant {
            access_token: "at-0".into(),
            refresh_token: Some("rt-0".into()),
            expires_in_s: Some(LIFETIME_S),
            scope: Some("dm.read dm.write offline.access".into()),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn set_mode(&self, mode: Mode) {
        self.lock().mode = mode;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, XState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl TokenRefresher for FakeX {
    async fn refresh(&self, refresh_token: &str) -> Result<TokenGrant, RefreshError> {
        tokio::time::sleep(self.delay).await;
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut x = self.lock();
        if x.mode == Mode::Unavailable {
            return Err(RefreshError::Unavailable("503".into()));
        }
        if refresh_token != x.valid {
            return Err(RefreshError::Rejected(
                "invalid_grant: Value passed for the token was invalid".into(),
            ));
        }
        x.issued += 1;
        x.valid = format!("rt-{}", x.issued);
        Ok(TokenGrant {
            access_token: format!("at-{}", x.issued),
            refresh_token: Some(x.valid.clone()),
            expires_in_s: Some(x.lifetime_s),
            scope: Some("dm.read dm.write offline.access".into()),
        })
    }
}

/// The memory store, counting token reads, failing token writes on demand, and able to let
/// "another process" finish a refresh right before the lease is read.
#[derive(Debug, Default)]
struct TestStore {
    inner: MemoryStore,
    token_reads: AtomicUsize,
    failing_token_writes: AtomicUsize,
    before_lease_read: Mutex<Option<(String, String)>>,
}

impl TestStore {
    fn reads(&self) -> usize {
        self.token_reads.load(Ordering::SeqCst)
    }

    fn fail_token_writes(&self, n: usize) {
        self.failing_token_writes.store(n, Ordering::SeqCst);
    }
}

impl Store for TestStore {
    async fn open_session(&self, b: &XUserId, c: &XUserId) -> Result<Option<Session>, StoreError> {
        self.inner.open_session(b, c).await
    }
    async fn session_by_initial_contact(
        &self,
        id: &InitialContactId,
    ) -> Result<Option<Session>, StoreError> {
        self.inner.session_by_initial_contact(id).await
    }
    async fn insert_session(&self, s: &Session) -> Result<SessionInsert, StoreError> {
        self.inner.insert_session(s).await
    }
    async fn set_session_connection(
        &self,
        id: &InitialContactId,
        c: &ConnectionCredentials,
        now: i64,
    ) -> Result<(), StoreError> {
        self.inner.set_session_connection(id, c, now).await
    }
    async fn end_session(&self, id: &InitialContactId, now: i64) -> Result<bool, StoreError> {
        self.inner.end_session(id, now).await
    }
    async fn cached_profile(&self, id: &XUserId, now: i64) -> Result<Option<XProfile>, StoreError> {
        self.inner.cached_profile(id, now).await
    }
    async fn cache_profile(&self, p: &XProfile, at: i64) -> Result<(), StoreError> {
        self.inner.cache_profile(p, at).await
    }
    async fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<bool>, StoreError> {
        self.inner.enqueue(jobs).await
    }
    async fn lane_heads(
        &self,
        q: JobQueue,
        now: i64,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        self.inner.lane_heads(q, now, limit).await
    }
    async fn claim(
        &self,
        q: JobQueue,
        k: &JobKey,
        until: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.inner.claim(q, k, until, now).await
    }
    async fn renew_lease(
        &self,
        q: JobQueue,
        k: &JobKey,
        a: u32,
        until: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.inner.renew_lease(q, k, a, until, now).await
    }
    async fn reschedule(
        &self,
        q: JobQueue,
        k: &JobKey,
        a: u32,
        nb: i64,
        e: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.inner.reschedule(q, k, a, nb, e, now).await
    }
    async fn finish(
        &self,
        q: JobQueue,
        k: &JobKey,
        a: u32,
        s: FinalState,
        e: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.inner.finish(q, k, a, s, e, now).await
    }
    async fn job(&self, q: JobQueue, k: &JobKey) -> Result<Option<Job>, StoreError> {
        self.inner.job(q, k).await
    }
    async fn jobs(
        &self,
        q: JobQueue,
        s: Option<JobState>,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        self.inner.jobs(q, s, limit).await
    }
    async fn retry_failed(&self, q: JobQueue, k: &JobKey, now: i64) -> Result<bool, StoreError> {
        self.inner.retry_failed(q, k, now).await
    }
    async fn release_claims(&self, q: JobQueue, now: i64) -> Result<u64, StoreError> {
        self.inner.release_claims(q, now).await
    }
    async fn purge(&self, j: i64, s: i64, now: i64) -> Result<u64, StoreError> {
        self.inner.purge(j, s, now).await
    }
    async fn record(&self, key: &str) -> Result<Option<Record>, StoreError> {
        if key.starts_with(TOKEN_KEY_PREFIX) {
            self.token_reads.fetch_add(1, Ordering::SeqCst);
        }
        if key.starts_with(LEASE_KEY_PREFIX) {
            let planted = self
                .before_lease_read
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some((k, v)) = planted {
                self.inner.put_record(&k, &v, Expect::Any, 0).await?;
            }
        }
        self.inner.record(key).await
    }
    async fn put_record(
        &self,
        key: &str,
        value: &str,
        expect: Expect,
        now: i64,
    ) -> Result<Option<u64>, StoreError> {
        if key.starts_with(TOKEN_KEY_PREFIX)
            && self
                .failing_token_writes
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(StoreError::Unavailable("injected".into()));
        }
        self.inner.put_record(key, value, expect, now).await
    }
    async fn delete_record(&self, key: &str, expect: Expect) -> Result<bool, StoreError> {
        self.inner.delete_record(key, expect).await
    }
    async fn records(&self, prefix: &str) -> Result<Vec<Record>, StoreError> {
        self.inner.records(prefix).await
    }
}

type Keeper = TokenKeeper<TestStore, FakeX, TestClock>;

fn business() -> XUserId {
    XUserId::parse("1500").unwrap_or_else(|e| panic!("{e}"))
}

fn keeper(store: &Arc<TestStore>, x: &FakeX, clock: &TestClock, holder: &str) -> Keeper {
    TokenKeeper::new(
        Arc::clone(store),
        x.clone(),
        clock.clone(),
        holder.to_owned(),
    )
}

fn token(value: Result<Option<AccessTokenValue>, TokenError>) -> String {
    match value {
        Ok(Some(t)) => t.expose().to_owned(),
        other => panic!("no token: {other:?}"),
    }
}

async fn stored(store: &TestStore) -> StoredToken {
    let record = store
        .inner
        .record(&token_key(&business()))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no token record"));
    StoredToken::decode(&record).unwrap_or_else(|e| panic!("{e}"))
}

/// A store with a fresh login, a fake X, a clock and one keeper.
async fn setup(delay: Duration) -> (Arc<TestStore>, FakeX, TestClock, Keeper) {
    let store = Arc::new(TestStore::default());
    let x = FakeX::new(delay);
    let clock = TestClock::new();
    let k = keeper(&store, &x, &clock, "proc-a");
    k.store_login(&business(), x.login())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (store, x, clock, k)
}

#[tokio::test(start_paused = true)]
async fn a_fresh_token_is_served_from_memory() {
    let (store, x, _clock, k) = setup(Duration::ZERO).await;
    for _ in 0..5 {
        assert_eq!(token(k.access_token(&business()).await), "at-0");
    }
    assert_eq!(store.reads(), 0);
    tokio::time::advance(Duration::from_secs(3_600)).await;
    assert_eq!(token(k.access_token(&business()).await), "at-0");
    assert_eq!((store.reads(), x.calls()), (0, 0));

    // Another process's keeper reads it once, then answers from memory too.
    let other = keeper(&store, &x, &TestClock::new(), "proc-b");
    assert_eq!(token(other.access_token(&business()).await), "at-0");
    assert_eq!(token(other.access_token(&business()).await), "at-0");
    assert_eq!(store.reads(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_token_near_expiry_is_refreshed_and_stored_before_use() {
    let (store, x, clock, k) = setup(Duration::ZERO).await;
    tokio::time::advance(Duration::from_secs(7_200 - 301)).await;
    assert_eq!(token(k.access_token(&business()).await), "at-0");
    assert_eq!(x.calls(), 0);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(token(k.access_token(&business()).await), "at-1");
    assert_eq!(x.calls(), 1);
    let saved = stored(&store).await;
    assert_eq!(saved.refresh_token.as_deref(), Some("rt-1"));
    assert_eq!(saved.access_token, "at-1");
    assert_eq!(saved.obtained_at_ms, clock.now_ms());
    assert_eq!(saved.expires_at_ms, clock.now_ms() + LIFETIME_S * 1000);
    // The lease is released.
    assert_eq!(store.inner.records(LEASE_KEY_PREFIX).await, Ok(Vec::new()));
    // And the new one is served from memory.
    let reads = store.reads();
    assert_eq!(token(k.access_token(&business()).await), "at-1");
    assert_eq!((store.reads(), x.calls()), (reads, 1));
}

#[test]
fn the_margin_is_a_quarter_of_the_lifetime_within_bounds() {
    let t = |lifetime_ms: i64| StoredToken {
        access_token: String::new(),
        refresh_token: None,
        expires_at_ms: 1_000 + lifetime_ms,
        scope: None,
        obtained_at_ms: 1_000,
        needs_login: None,
    };
    assert_eq!(t(7_200_000).margin_ms(), 300_000);
    assert_eq!(t(600_000).margin_ms(), 150_000);
    assert_eq!(t(2_000).margin_ms(), 1_000);
    assert!(!t(600_000).near_expiry(1_000 + 449_999));
    assert!(t(600_000).near_expiry(1_000 + 450_000));
}

#[tokio::test(start_paused = true)]
async fn two_processes_asking_at_once_make_one_refresh() {
    let (store, x, clock, a) = setup(Duration::from_millis(400)).await;
    let b = keeper(&store, &x, &clock, "proc-b");
    tokio::time::advance(INTO_MARGIN).await;
    let id = business();
    let (ta, tb) = tokio::join!(a.access_token(&id), b.access_token(&id));
    assert_eq!((token(ta), token(tb)), ("at-1".into(), "at-1".into()));
    assert_eq!(x.calls(), 1);
    assert_eq!(stored(&store).await.refresh_token.as_deref(), Some("rt-1"));
}

#[tokio::test(start_paused = true)]
async fn racing_tasks_of_two_processes_make_one_refresh() {
    let (store, x, clock, a) = setup(Duration::from_millis(150)).await;
    let b = Arc::new(keeper(&store, &x, &clock, "proc-b"));
    let a = Arc::new(a);
    tokio::time::advance(INTO_MARGIN).await;
    let mut tasks = JoinSet::new();
    for i in 0..16 {
        let k = if i % 2 == 0 {
            Arc::clone(&a)
        } else {
            Arc::clone(&b)
        };
        tasks.spawn(async move { token(k.access_token(&business()).await) });
    }
    while let Some(t) = tasks.join_next().await {
        assert_eq!(t.unwrap_or_else(|e| panic!("{e}")), "at-1");
    }
    assert_eq!(x.calls(), 1);
    assert_eq!(stored(&store).await.access_token, "at-1");
}

/// Between reading the stale token and taking the lease, another process refreshed and let
/// go of the lease: the token is read again under the lease and not refreshed twice.
#[tokio::test(start_paused = true)]
async fn a_refresh_done_meanwhile_is_used_not_repeated() {
    let (store, x, clock, k) = setup(Duration::ZERO).await;
    tokio::time::advance(INTO_MARGIN).await;
    let other = StoredToken::from_grant(
        TokenGrant {
            access_token: "at-other".into(),
            refresh_token: Some("rt-other".into()),
            expires_in_s: Some(LIFETIME_S),
            scope: None,
        },
        clock.now_ms(),
        None,
    );
    *store
        .before_lease_read
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some((
        token_key(&business()),
        other.encode().unwrap_or_else(|e| panic!("{e}")),
    ));
    assert_eq!(token(k.access_token(&business()).await), "at-other");
    assert_eq!(x.calls(), 0);
    assert_eq!(store.inner.records(LEASE_KEY_PREFIX).await, Ok(Vec::new()));
}

#[tokio::test(start_paused = true)]
async fn a_holder_that_died_blocks_only_until_its_lease_ends() {
    let (store, x, clock, k) = setup(Duration::ZERO).await;
    tokio::time::advance(INTO_MARGIN).await;
    let ghost = serde_json::json!({"holder": "dead-proc", "until_ms": clock.now_ms() + 30_000});
    store
        .inner
        .put_record(
            &lease_key(&business()),
            &ghost.to_string(),
            Expect::Absent,
            0,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    assert_eq!(token(k.access_token(&business()).await), "at-1");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(30) && waited < Duration::from_secs(31),
        "{waited:?}"
    );
    assert_eq!(x.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn callers_in_one_process_share_one_refresh() {
    let (_store, x, _clock, k) = setup(Duration::from_millis(100)).await;
    let k = Arc::new(k);
    tokio::time::advance(INTO_MARGIN).await;
    let mut tasks = JoinSet::new();
    for _ in 0..10 {
        let k = Arc::clone(&k);
        tasks.spawn(async move { token(k.access_token(&business()).await) });
    }
    while let Some(t) = tasks.join_next().await {
        assert_eq!(t.unwrap_or_else(|e| panic!("{e}")), "at-1");
    }
    assert_eq!(x.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failing_write_of_the_new_grant_is_retried() {
    let (store, x, _clock, k) = setup(Duration::ZERO).await;
    tokio::time::advance(INTO_MARGIN).await;
    store.fail_token_writes(3);
    assert_eq!(token(k.access_token(&business()).await), "at-1");
    assert_eq!(stored(&store).await.refresh_token.as_deref(), Some("rt-1"));
    assert_eq!(x.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_grant_the_store_cannot_take_is_kept_until_it_can() {
    let (store, x, _clock, k) = setup(Duration::ZERO).await;
    tokio::time::advance(INTO_MARGIN).await;
    store.fail_token_writes(usize::MAX);
    assert_eq!(token(k.access_token(&business()).await), "at-1");
    assert_eq!(token(k.access_token(&business()).await), "at-1");
    // The store still has the spent token; the new one lives in memory only.
    assert_eq!(stored(&store).await.refresh_token.as_deref(), Some("rt-0"));
    store.fail_token_writes(0);
    assert_eq!(token(k.access_token(&business()).await), "at-1");
    assert_eq!(stored(&store).await.refresh_token.as_deref(), Some("rt-1"));
    assert_eq!(x.calls(), 1);
    // The next refresh uses the saved token: X accepts it.
    tokio::time::advance(INTO_MARGIN).await;
    assert_eq!(token(k.access_token(&business()).await), "at-2");
    assert_eq!(x.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_refused_refresh_needs_a_new_login_everywhere() {
    let (store, x, clock, k) = setup(Duration::ZERO).await;
    x.lock().valid = "rt-revoked".into();
    tokio::time::advance(INTO_MARGIN).await;
    let e = k.access_token(&business()).await;
    let Err(TokenError::NeedsLogin {
        business: b,
        reason,
    }) = &e
    else {
        panic!("{e:?}");
    };
    assert_eq!(b, &business());
    assert!(reason.contains("invalid_grant"), "{reason}");
    let msg = e
        .as_ref()
        .err()
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(msg.contains("run `xdm-connect x login`"), "{msg}");
    assert!(msg.contains("1500"), "{msg}");
    assert_eq!(x.calls(), 1);

    // Recorded: this process and another one answer NeedsLogin without asking X again.
    assert!(stored(&store).await.needs_login.is_some());
    assert!(matches!(
        k.access_token(&business()).await,
        Err(TokenError::NeedsLogin { .. })
    ));
    let other = keeper(&store, &x, &clock, "proc-b");
    assert!(matches!(
        other.token_rejected(&business(), "at-0").await,
        Err(TokenError::NeedsLogin { .. })
    ));
    assert_eq!(x.calls(), 1);
    let status = k.status().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status.len(), 1);
    assert!(
        status[0]
            .needs_login
            .as_deref()
            .is_some_and(|r| r.contains("invalid_grant"))
    );

    // A new login clears it, in every process.
    x.lock().valid = "rt-0".into();
    other
        .store_login(&business(), x.login())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(token(k.access_token(&business()).await), "at-0");
    assert_eq!(k.status().await.map(|s| s[0].needs_login.clone()), Ok(None));
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_endpoint_keeps_the_current_token_until_it_expires() {
    let (_store, x, _clock, k) = setup(Duration::ZERO).await;
    x.set_mode(Mode::Unavailable);
    tokio::time::advance(INTO_MARGIN).await;
    assert_eq!(token(k.access_token(&business()).await), "at-0");
    assert_eq!(x.calls(), 1);
    // Paused a little before asking again.
    assert_eq!(token(k.access_token(&business()).await), "at-0");
    assert_eq!(x.calls(), 1);
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(token(k.access_token(&business()).await), "at-0");
    assert_eq!(x.calls(), 2);
    // Expired: the caller hears Unavailable and retries later.
    tokio::time::advance(Duration::from_secs(300)).await;
    assert!(matches!(
        k.access_token(&business()).await,
        Err(TokenError::Unavailable(_))
    ));
    x.set_mode(Mode::Works);
    assert_eq!(token(k.access_token(&business()).await), "at-1");
}

#[tokio::test(start_paused = true)]
async fn a_rejected_token_is_refreshed_once() {
    let (store, x, clock, k) = setup(Duration::ZERO).await;
    let other = keeper(&store, &x, &clock, "proc-b");
    assert_eq!(token(k.token_rejected(&business(), "at-0").await), "at-1");
    assert_eq!(x.calls(), 1);
    // The other process still had at-0 rejected: the record already holds a newer one.
    assert_eq!(
        token(other.token_rejected(&business(), "at-0").await),
        "at-1"
    );
    assert_eq!(token(k.token_rejected(&business(), "at-0").await), "at-1");
    assert_eq!(x.calls(), 1);
    // Unavailable while the current token is refused: an error, not the refused token.
    x.set_mode(Mode::Unavailable);
    assert!(matches!(
        k.token_rejected(&business(), "at-1").await,
        Err(TokenError::Unavailable(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn without_a_refresh_token_the_token_lasts_until_it_expires() {
    let store = Arc::new(TestStore::default());
    let x = FakeX::new(Duration::ZERO);
    let k = keeper(&store, &x, &TestClock::new(), "proc-a");
    let grant = TokenGrant {
        refresh_token: None,
        expires_in_s: None,
        ..x.login()
    };
    k.store_login(&business(), grant)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // No `expires_in`: X's two hours are assumed.
    tokio::time::advance(INTO_MARGIN).await;
    assert_eq!(token(k.access_token(&business()).await), "at-0");
    tokio::time::advance(Duration::from_secs(300)).await;
    let e = k.access_token(&business()).await;
    assert!(
        matches!(&e, Err(TokenError::NeedsLogin { reason, .. }) if reason.contains("offline.access")),
        "{e:?}"
    );
    assert_eq!(x.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn accounts_and_status_list_the_stored_tokens() {
    let store = Arc::new(TestStore::default());
    let x = FakeX::new(Duration::ZERO);
    let clock = TestClock::new();
    let k = keeper(&store, &x, &clock, "proc-a");
    let unknown = XUserId::parse("77").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(k.access_token(&unknown).await, Ok(None));
    assert_eq!(k.token_rejected(&unknown, "x").await, Ok(None));
    assert_eq!(k.accounts().await, Ok(Vec::new()));
    k.store_login(&business(), x.login())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    k.store_login(&unknown, x.login())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(k.accounts().await, Ok(vec![business(), unknown.clone()]));
    let status = k.status().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        status[0],
        TokenStatus {
            business: business(),
            expires_at_ms: clock.now_ms() + LIFETIME_S * 1000,
            obtained_at_ms: clock.now_ms(),
            scope: Some("dm.read dm.write offline.access".into()),
            refreshable: true,
            needs_login: None,
        }
    );
    // No secret in what is shown.
    let shown = format!("{status:?} {:?}", k.access_token(&business()).await);
    assert!(
        !shown.contains("at-0") && !shown.contains("rt-0"),
        "{shown}"
    );
}
