//! What only the DynamoDB backend has: TTL attributes and expiry on read, several processes on
//! one set of tables, creating and checking tables, opening by URL. Against the emulator of
//! `moto.rs`, like the DynamoDB conformance run.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveStatus,
};
use tokio::task::JoinSet;
use xdm_core::jobs::{FinalState, JobQueue, JobState};
use xdm_core::ports::{Clock, SessionInsert, Store, StoreError, SystemClock};
use xdm_core::session::SessionStatus;
use xdm_store::{AnyStore, DynamoOptions, DynamoStore, OpenError, StoreUrl, TableError};

use crate::backends::fresh_dynamodb;
use crate::fixtures::{cid, connection, full_profile, job_in, k, new_job, session, stored, uid};

const IN: JobQueue = JobQueue::Inbound;
const OUT: JobQueue = JobQueue::Outbound;

fn ok<T>(r: Result<T, StoreError>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// A clock the test moves by hand.
#[derive(Debug)]
struct ManualClock(AtomicI64);

impl ManualClock {
    fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The raw item, as DynamoDB holds it.
async fn raw(
    store: &DynamoStore,
    table: &str,
    key_attr: &str,
    key: &str,
) -> Option<HashMap<String, AttributeValue>> {
    store
        .client()
        .get_item()
        .table_name(table)
        .key(key_attr, AttributeValue::S(key.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetItem {table}/{key}: {e:?}"))
        .item
}

fn ttl_of(item: &HashMap<String, AttributeValue>) -> Option<i64> {
    match item.get("expires_at") {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

const HOUR: Duration = Duration::from_secs(3600);

/// Finished jobs, ended sessions and profiles carry `expires_at` (epoch seconds) for DynamoDB to
/// delete them; open jobs, open sessions and guards never do. Once `expires_at` has passed, the
/// store treats the item as gone, although the emulator (like DynamoDB, for up to two days) still
/// holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_is_written_and_expired_items_are_absent() {
    let start_ms = 1_800_000_000_123;
    let clock = Arc::new(ManualClock(AtomicI64::new(start_ms)));
    let store = fresh_dynamodb()
        .await
        .with_options(DynamoOptions {
            job_retention: 2 * HOUR,
            session_retention: 5 * HOUR,
        })
        .with_clock(clock.clone());
    let tables = store.table_names().clone();
    let start_s = start_ms / 1000;

    // Jobs: a done, b failed, c pending; d in c's lane behind it.
    let jobs = [
        job_in("a", "A", 1),
        job_in("b", "B", 1),
        job_in("c", "C", 1),
        job_in("d", "C", 2),
    ];
    assert_eq!(ok(store.enqueue(&jobs).await), vec![true; 4]);
    assert!(ok(store.claim(IN, &k("a"), 10, 0).await));
    assert!(ok(store
        .finish(IN, &k("a"), 1, FinalState::Done, None, 5)
        .await));
    assert!(ok(store.claim(IN, &k("b"), 10, 0).await));
    assert!(ok(store
        .finish(IN, &k("b"), 1, FinalState::Failed, Some("403"), 5)
        .await));

    let done = raw(&store, &tables.jobs, "pk", "inbound#a").await;
    let done = done.unwrap_or_else(|| panic!("job a is stored"));
    assert_eq!(ttl_of(&done), Some(start_s + 1 + 2 * 3600));
    let pending = raw(&store, &tables.jobs, "pk", "inbound#c").await;
    assert_eq!(
        pending.as_ref().and_then(ttl_of),
        None,
        "open jobs never expire"
    );

    // Sessions: one ended, one open; a profile.
    let ended = session("100", "200", "ended-chat", 1_000);
    let open = session("100", "201", "open-chat", 1_000);
    assert_eq!(
        ok(store.insert_session(&ended).await),
        SessionInsert::Inserted
    );
    assert_eq!(
        ok(store.insert_session(&open).await),
        SessionInsert::Inserted
    );
    assert!(ok(store.end_session(&cid("ended-chat"), 2_000).await));
    let item = raw(&store, &tables.sessions, "pk", "contact#ended-chat").await;
    assert_eq!(item.as_ref().and_then(ttl_of), Some(start_s + 1 + 5 * 3600));
    let item = raw(&store, &tables.sessions, "pk", "contact#open-chat").await;
    assert_eq!(
        item.as_ref().and_then(ttl_of),
        None,
        "open sessions never expire"
    );
    let guard = raw(&store, &tables.sessions, "pk", "open#100#201").await;
    assert_eq!(guard.as_ref().and_then(ttl_of), None);
    assert!(
        raw(&store, &tables.sessions, "pk", "open#100#200")
            .await
            .is_none()
    );

    let profile_expiry_ms = start_ms + 3 * 3600 * 1000 + 1;
    ok(store
        .cache_profile(&full_profile("42", "Ada"), profile_expiry_ms)
        .await);
    let item = raw(&store, &tables.profiles, "user_id", "42").await;
    assert_eq!(
        item.as_ref().and_then(ttl_of),
        Some(profile_expiry_ms / 1000 + 1),
        "rounded up: never deleted before it expires"
    );

    // Lanes: A and B are empty now and stop being listed once lane_heads saw them.
    let heads = ok(store.lane_heads(IN, 0, 10).await);
    assert_eq!(heads, vec![stored(&jobs[2])]);
    let lane_a = raw(&store, &tables.lanes, "pk", "inbound#A").await;
    let lane_a = lane_a.unwrap_or_else(|| panic!("lane A is stored"));
    assert!(!lane_a.contains_key("open_queue"), "{lane_a:?}");
    assert_eq!(ttl_of(&lane_a), Some(start_s + 1 + 2 * 3600));

    // Just before the job retention ends, everything is still there.
    clock.advance(2 * HOUR - Duration::from_secs(1));
    assert!(ok(store.job(IN, &k("a")).await).is_some());
    assert_eq!(ok(store.enqueue(&[job_in("a", "A", 1)]).await), vec![false]);

    // After it: the finished jobs are gone for every read, and their keys are free again.
    clock.advance(Duration::from_secs(2));
    assert!(raw(&store, &tables.jobs, "pk", "inbound#a").await.is_some());
    assert_eq!(ok(store.job(IN, &k("a")).await), None);
    assert_eq!(ok(store.job(IN, &k("b")).await), None);
    assert!(!ok(store.retry_failed(IN, &k("b"), 9).await));
    let listed = ok(store.jobs(IN, None, 10).await);
    assert_eq!(
        listed.iter().map(|j| j.key.as_str()).collect::<Vec<_>>(),
        ["c", "d"]
    );
    let again = new_job(IN, "a", "A2", 7, 50, 50);
    assert_eq!(
        ok(store.enqueue(std::slice::from_ref(&again)).await),
        vec![true]
    );
    assert_eq!(ok(store.job(IN, &k("a")).await), Some(stored(&again)));
    let heads = ok(store.lane_heads(IN, 100, 10).await);
    assert_eq!(heads, vec![stored(&jobs[2]), stored(&again)]);
    // A finish or reschedule of an expired job does not bring it back.
    assert!(!ok(store
        .finish(IN, &k("b"), 1, FinalState::Done, None, 9)
        .await));
    assert!(!ok(store.reschedule(IN, &k("b"), 1, 9, "late", 9).await));
    assert_eq!(ok(store.job(IN, &k("b")).await), None);

    // The ended session lasts its own retention; open ones last for ever.
    assert!(ok(store.session_by_initial_contact(&cid("ended-chat")).await).is_some());
    clock.advance(3 * HOUR);
    assert_eq!(
        ok(store.session_by_initial_contact(&cid("ended-chat")).await),
        None
    );
    ok(store
        .set_session_connection(&cid("ended-chat"), &connection("late", None), 9_000)
        .await);
    assert_eq!(
        ok(store.session_by_initial_contact(&cid("ended-chat")).await),
        None,
        "an expired session is not revived"
    );
    assert!(!ok(store.end_session(&cid("ended-chat"), 9_000).await));
    // Its contact id is free again.
    let reused = session("100", "200", "ended-chat", 9_000);
    assert_eq!(
        ok(store.insert_session(&reused).await),
        SessionInsert::Inserted
    );
    assert_eq!(
        ok(store.open_session(&uid("100"), &uid("200")).await),
        Some(reused)
    );
    assert_eq!(
        ok(store.open_session(&uid("100"), &uid("201")).await),
        Some(open)
    );
    assert!(
        ok(store.job(IN, &k("c")).await).is_some(),
        "open jobs never expire"
    );

    // Profiles follow their own expiry (the caller's clock, as the port says).
    assert!(
        ok(store
            .cached_profile(&uid("42"), profile_expiry_ms - 1)
            .await)
        .is_some()
    );
    assert_eq!(
        ok(store.cached_profile(&uid("42"), profile_expiry_ms).await),
        None
    );
}

/// DynamoDB takes at most 100 actions per transaction (a job and its lane each take one): a
/// large enqueue is stored in several transactions, and duplicates are still reported per job,
/// within the call, across its transactions and against what was stored before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_enqueues_are_split_and_still_deduplicated() {
    let store = fresh_dynamodb().await;
    let before = job_in("k070", "lane-10", 70);
    assert_eq!(
        ok(store.enqueue(std::slice::from_ref(&before)).await),
        vec![true]
    );

    let mut jobs: Vec<_> = (0..130)
        .map(|i| job_in(&format!("k{i:03}"), &format!("lane-{}", i % 60), i))
        .collect();
    jobs[60] = job_in("k005", "lane-5", 5);
    jobs[129] = job_in("k100", "lane-40", 100);
    let expected: Vec<bool> = (0..130).map(|i| !matches!(i, 60 | 70 | 129)).collect();
    assert_eq!(ok(store.enqueue(&jobs).await), expected);

    let all = ok(store.jobs(IN, None, 1_000).await);
    assert_eq!(all.len(), 128);
    // One head per lane, the lowest order_key of each.
    let heads = ok(store.lane_heads(IN, 0, 1_000).await);
    assert_eq!(heads.len(), 60);
    for head in &heads {
        let lane: i64 = head.lane.as_str()["lane-".len()..]
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(head.order_key, lane, "{head:?}");
    }
}

/// Pending and processing jobs share one `by_state` partition (`inbound#open`), so claims and
/// retries leave the index alone; listings still tell the two apart (reading past `limit`
/// entries of the other state when they must), and jobs an earlier version filed under
/// `inbound#pending` / `inbound#processing` are still listed and counted, and move to
/// `inbound#open` at their next state change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_jobs_share_one_index_partition_and_are_still_listed_by_state() {
    let store = fresh_dynamodb().await;
    let jobs_table = store.table_names().jobs.clone();
    let partition = |item: Option<HashMap<String, AttributeValue>>| match item
        .as_ref()
        .and_then(|i| i.get("queue_state"))
    {
        Some(AttributeValue::S(s)) => s.clone(),
        other => panic!("queue_state: {other:?}"),
    };
    ok(store
        .enqueue(&[
            new_job(IN, "old", "A", 1, 100, 0),
            new_job(IN, "new", "B", 1, 200, 0),
            new_job(IN, "former", "C", 1, 300, 0),
        ])
        .await);
    assert_eq!(
        partition(raw(&store, &jobs_table, "pk", "inbound#old").await),
        "inbound#open"
    );
    assert!(ok(store.claim(IN, &k("old"), 60_000, 1_000).await));
    assert_eq!(
        partition(raw(&store, &jobs_table, "pk", "inbound#old").await),
        "inbound#open"
    );
    // As an earlier version filed a pending job.
    store
        .client()
        .update_item()
        .table_name(&jobs_table)
        .key("pk", AttributeValue::S("inbound#former".to_owned()))
        .update_expression("SET queue_state = :qs")
        .expression_attribute_values(":qs", AttributeValue::S("inbound#pending".to_owned()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));

    let keys = |jobs: Vec<xdm_core::jobs::Job>| jobs.into_iter().map(|j| j.key).collect::<Vec<_>>();
    // The oldest open job is processing: the pending listing reads past it.
    assert_eq!(
        keys(ok(store.jobs(IN, Some(JobState::Pending), 1).await)),
        [k("new")]
    );
    assert_eq!(
        keys(ok(store.jobs(IN, Some(JobState::Pending), 10).await)),
        [k("new"), k("former")]
    );
    assert_eq!(
        keys(ok(store.jobs(IN, Some(JobState::Processing), 10).await)),
        [k("old")]
    );
    let backlog = ok(store.backlog(IN, 10).await);
    assert_eq!((backlog.pending, backlog.processing), (2, 1));

    assert!(ok(store.claim(IN, &k("former"), 60_000, 1_000).await));
    assert_eq!(
        partition(raw(&store, &jobs_table, "pk", "inbound#former").await),
        "inbound#open"
    );
    assert!(ok(store
        .finish(IN, &k("old"), 1, FinalState::Done, None, 2_000)
        .await));
    assert_eq!(
        partition(raw(&store, &jobs_table, "pk", "inbound#old").await),
        "inbound#done"
    );
    assert_eq!(
        keys(ok(store.jobs(IN, Some(JobState::Done), 10).await)),
        [k("old")]
    );
    assert_eq!(ok(store.release_claims(IN, 3_000).await), 1);
    let backlog = ok(store.backlog(IN, 10).await);
    assert_eq!((backlog.pending, backlog.processing), (2, 0));
}

/// `finish` updates the job, then its lane, in two writes: a process that stops between them
/// leaves the member of a finished job at the head of its lane. The lane is not blocked for
/// good: the next read of it (`lane_head`, `lane_heads`) removes that member, and the next job
/// runs — once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finish_cut_short_before_its_lane_write_is_mended_by_the_next_read() {
    let store = fresh_dynamodb().await;
    let jobs = store.table_names().jobs.clone();
    let lanes = store.table_names().lanes.clone();
    ok(store
        .enqueue(&[job_in("first", "L", 1), job_in("second", "L", 2)])
        .await);
    assert!(ok(store.claim(IN, &k("first"), 60_000, 1_000).await));
    // The first of finish's two writes only, as a process that stopped after it leaves it.
    store
        .client()
        .update_item()
        .table_name(&jobs)
        .key("pk", AttributeValue::S("inbound#first".to_owned()))
        .update_expression("SET #s = :done, queue_state = :qs, lease_until_ms = :zero")
        .expression_attribute_names("#s", "state")
        .expression_attribute_values(":done", AttributeValue::S("done".to_owned()))
        .expression_attribute_values(":qs", AttributeValue::S("inbound#done".to_owned()))
        .expression_attribute_values(":zero", AttributeValue::N("0".to_owned()))
        .condition_expression("attribute_exists(pk)")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let members = |item: Option<HashMap<String, AttributeValue>>| match item
        .as_ref()
        .and_then(|i| i.get("open"))
    {
        Some(AttributeValue::Ss(m)) => m.len(),
        _ => 0,
    };
    assert_eq!(members(raw(&store, &lanes, "pk", "inbound#L").await), 2);
    // The finished job still heads the lane: the second is not its head yet.
    assert!(!ok(store.claim(IN, &k("second"), 60_000, 2_000).await));

    let head = ok(store.lane_head(IN, &crate::fixtures::l("L"), 2_000).await);
    assert_eq!(head.map(|j| j.key), Some(k("second")));
    assert_eq!(members(raw(&store, &lanes, "pk", "inbound#L").await), 1);
    assert!(ok(store.claim(IN, &k("second"), 60_000, 2_000).await));
    assert!(ok(store
        .finish(IN, &k("second"), 1, FinalState::Done, None, 3_000)
        .await));
    assert_eq!(members(raw(&store, &lanes, "pk", "inbound#L").await), 0);
    let first = ok(store.job(IN, &k("first")).await).map(|j| (j.state, j.attempts));
    assert_eq!(first, Some((JobState::Done, 1)));
}

/// Enqueues `job` through a store of its own, once, just before the first UpdateItem that is a
/// claim (its values name `:pending`) leaves the store under test: a job that runs first joins
/// the lane between the claim's read of the lane and its write.
#[derive(Debug)]
struct JoinsDuringTheClaim {
    other: DynamoStore,
    job: xdm_core::jobs::NewJob,
    fired: std::sync::atomic::AtomicBool,
}

impl aws_sdk_dynamodb::config::Intercept for JoinsDuringTheClaim {
    fn name(&self) -> &'static str {
        "JoinsDuringTheClaim"
    }

    fn read_before_execution(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef<
            '_,
        >,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let is_claim = context
            .input()
            .downcast_ref::<aws_sdk_dynamodb::operation::update_item::UpdateItemInput>()
            .and_then(|input| input.expression_attribute_values())
            .is_some_and(|values| values.contains_key(":pending"));
        if !is_claim || self.fired.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let (other, job) = (self.other.clone(), self.job.clone());
        // The interceptor is synchronous: the enqueue runs to its end on a runtime of its own.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("{e}"));
            runtime.block_on(async { ok(other.enqueue(&[job]).await) })
        })
        .join()
        .map_err(|_| "the enqueue of the interceptor panicked")?;
        Ok(())
    }
}

/// `claim` writes the job, then reads its lane again: a job that runs first and joined the lane
/// in the meantime makes it give the claim back (pending, attempts and first-claim time as
/// they were), so the two never run side by side and the first runs first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_is_given_back_when_a_job_that_runs_first_joins_its_lane_meanwhile() {
    let sdk = xdm_testkit::moto::sdk_config();
    let prefix = format!("xdm-test-{}.", uuid::Uuid::new_v4().simple());
    let other = DynamoStore::new(&sdk, &prefix);
    ok_tables(other.create_tables().await);
    let interceptor = JoinsDuringTheClaim {
        other,
        job: job_in("early", "L", 1),
        fired: std::sync::atomic::AtomicBool::new(false),
    };
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .interceptor(interceptor)
        .build();
    let store = DynamoStore::from_client(aws_sdk_dynamodb::Client::from_conf(config), &prefix);

    ok(store.enqueue(&[job_in("late", "L", 2)]).await);
    assert!(!ok(store.claim(IN, &k("late"), 60_000, 1_000).await));
    let late = ok(store.job(IN, &k("late")).await)
        .map(|j| (j.state, j.attempts, j.lease_until_ms, j.first_claimed_at_ms));
    assert_eq!(late, Some((JobState::Pending, 0, 0, None)));

    let head = ok(store.lane_head(IN, &crate::fixtures::l("L"), 1_000).await);
    assert_eq!(head.map(|j| j.key), Some(k("early")));
    assert!(!ok(store.claim(IN, &k("late"), 60_000, 1_000).await));
    assert!(ok(store.claim(IN, &k("early"), 60_000, 1_000).await));
    assert!(ok(store
        .finish(IN, &k("early"), 1, FinalState::Done, None, 2_000)
        .await));
    // The claim given back was never used: the next one is the late job's first.
    assert!(ok(store.claim(IN, &k("late"), 60_000, 2_000).await));
    let late = ok(store.job(IN, &k("late")).await).map(|j| (j.state, j.attempts));
    assert_eq!(late, Some((JobState::Processing, 1)));
}

fn ok_tables(r: Result<(), TableError>) {
    r.unwrap_or_else(|e| panic!("{e}"));
}

/// `create_tables` makes the five tables (TTL on `expires_at` where they expire), and running it again (or from a
/// second store) changes nothing; `check_tables` agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_tables_is_idempotent_and_enables_ttl() {
    let store = fresh_dynamodb().await;
    let names = store.table_names().clone();
    assert!(names.sessions.ends_with("sessions"));
    assert!(names.jobs.starts_with(store.table_prefix()));
    store
        .create_tables()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let twin = DynamoStore::new(&xdm_testkit::moto::sdk_config(), store.table_prefix());
    twin.create_tables().await.unwrap_or_else(|e| panic!("{e}"));
    twin.check_tables().await.unwrap_or_else(|e| panic!("{e}"));
    for table in [&names.sessions, &names.profiles, &names.jobs, &names.lanes] {
        let ttl = store
            .client()
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        let ttl = ttl
            .time_to_live_description()
            .unwrap_or_else(|| panic!("{table}: no TTL description"));
        assert_eq!(ttl.attribute_name(), Some("expires_at"), "{table}");
        assert_eq!(
            ttl.time_to_live_status(),
            Some(&TimeToLiveStatus::Enabled),
            "{table}"
        );
        let desc = store
            .client()
            .describe_table()
            .table_name(table)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        let desc = desc.table.unwrap_or_else(|| panic!("{table}"));
        assert_eq!(
            desc.billing_mode_summary()
                .and_then(|b| b.billing_mode())
                .map(|b| b.as_str()),
            Some("PAY_PER_REQUEST"),
            "{table}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_foreign_tables_are_named() {
    let prefix = format!("xdm-test-{}-", uuid::Uuid::new_v4().simple());
    let store = DynamoStore::new(&xdm_testkit::moto::sdk_config(), &prefix);
    match store.check_tables().await {
        Err(TableError::Missing { table }) => assert!(table.starts_with(&prefix), "{table}"),
        other => panic!("expected a missing table: {other:?}"),
    }
    // Operations say which table is missing too.
    match store.job(IN, &k("x")).await {
        Err(StoreError::Unavailable(msg)) => {
            assert!(msg.contains(&format!("{prefix}jobs")), "{msg}");
            assert!(msg.contains("does not exist"), "{msg}");
        }
        other => panic!("expected Unavailable: {other:?}"),
    }

    // A jobs table with another key schema is refused, by name.
    let jobs = &store.table_names().jobs;
    store
        .client()
        .create_table()
        .table_name(jobs)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    match store.create_tables().await {
        Err(e @ TableError::Mismatch { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(jobs.as_str()), "{msg}");
            assert!(msg.contains("pk"), "{msg}");
        }
        other => panic!("expected a schema mismatch: {other:?}"),
    }
}

/// `XDM_STORE=dynamodb:PREFIX` through `open_with`, as the application opens it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_by_url_and_names_missing_tables() {
    let made = fresh_dynamodb().await;
    let url = StoreUrl::parse(&format!("dynamodb:{}", made.table_prefix()))
        .unwrap_or_else(|e| panic!("{e}"));
    let store = xdm_store::open_with(&url, Some(xdm_testkit::moto::sdk_config()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(store.backend(), "dynamodb");
    assert!(matches!(&store, AnyStore::DynamoDb(s) if s.table_prefix() == made.table_prefix()));
    let s = session("1", "2", "by-url", 10);
    assert_eq!(ok(store.insert_session(&s).await), SessionInsert::Inserted);
    // The other handle on the same tables sees it.
    assert_eq!(
        ok(made.session_by_initial_contact(&cid("by-url")).await),
        Some(s)
    );

    let absent = StoreUrl::parse("dynamodb:xdm-test-absent-").unwrap_or_else(|e| panic!("{e}"));
    let e = xdm_store::open_with(&absent, Some(xdm_testkit::moto::sdk_config()))
        .await
        .err()
        .unwrap_or_else(|| panic!("opened absent tables"));
    assert!(matches!(e, OpenError::DynamoDb { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("XDM_STORE=dynamodb:xdm-test-absent-"), "{msg}");
    assert!(msg.contains("does not exist"), "{msg}");
    assert!(msg.contains("docs/aws-tables.md"), "{msg}");
}

/// Several processes share the tables, as Lambda instances and `serve` replicas do. Three child
/// processes (this test binary again), each with its own client and 8 concurrent tasks, race
/// for one customer's first chat and for one job, then drain three lanes of five jobs together.
/// Across all of them: one chat, one claim, every job run once, each lane in order and one job
/// at a time.
#[test]
fn processes_sharing_the_tables_keep_every_guarantee() {
    const CHILDREN: usize = 3;
    const LANES: [&str; 3] = ["lane-a", "lane-b", "lane-c"];
    const PER_LANE: i64 = 5;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let store = runtime.block_on(fresh_dynamodb());
    // Lanes accepted out of order (order_key decides), plus the contested outbound job.
    let mut jobs = Vec::new();
    for lane in LANES {
        for order in (1..=PER_LANE).rev() {
            jobs.push(job_in(&format!("{lane}-{order:02}"), lane, order));
        }
    }
    jobs.push(new_job(OUT, "contested", "chat", 1, 0, 0));
    assert_eq!(
        runtime
            .block_on(store.enqueue(&jobs))
            .unwrap_or_else(|e| panic!("{e}")),
        vec![true; jobs.len()]
    );

    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let start_at = now_ns() / 1_000_000 + 800;
    // All children first, then their outputs: they run at the same time.
    let children: Vec<_> = (0..CHILDREN)
        .map(|i| {
            Command::new(&exe)
                .args([
                    "--ignored",
                    "--exact",
                    "dynamodb_specific::shared_tables_child",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_PREFIX, store.table_prefix())
                .env(CHILD_NAME, format!("p{i}"))
                .env(CHILD_START_AT_MS, start_at.to_string())
                .env("XDM_TEST_DYNAMODB_ENDPOINT", xdm_testkit::moto::endpoint())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("spawn child {i}: {e}"))
        })
        .collect();
    let children: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let mut lines = Vec::new();
    for (i, out) in children.iter().enumerate() {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "child {i} failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        lines.extend(
            stdout
                .lines()
                // The harness may print its own words before the first line on the same line.
                .filter_map(|l| l.find("XDM ").map(|at| &l[at + 4..]))
                .map(|l| l.split(' ').map(str::to_owned).collect::<Vec<_>>()),
        );
    }

    // One chat: one insert won, everyone else was told about that one.
    let won: Vec<_> = lines.iter().filter(|l| l[0] == "INSERTED").collect();
    assert_eq!(won.len(), 1, "{won:?}");
    let winner = won[0][1].clone();
    let told: Vec<_> = lines.iter().filter(|l| l[0] == "EXISTS").collect();
    assert_eq!(told.len(), CHILDREN * 8 - 1);
    assert!(told.iter().all(|l| l[1] == winner), "{told:?}");
    let open = runtime
        .block_on(store.open_session(&uid("100"), &uid("200")))
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no open session"));
    assert_eq!(open.initial_contact_id.as_str(), winner);
    assert_eq!(open.status, SessionStatus::Starting);

    // One claim.
    let claims = lines.iter().filter(|l| l[0] == "CLAIM").count();
    let wins = lines
        .iter()
        .filter(|l| l[0] == "CLAIM" && l[1] == "won")
        .count();
    assert_eq!((claims, wins), (CHILDREN * 8, 1));
    let contested = runtime
        .block_on(store.job(OUT, &k("contested")))
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no contested job"));
    assert_eq!(
        (contested.state, contested.attempts),
        (JobState::Processing, 1)
    );

    // Every job ran once, and in each lane one at a time in order_key order.
    let mut ran: BTreeMap<&str, Vec<(u128, u128, String)>> = BTreeMap::new();
    for l in lines.iter().filter(|l| l[0] == "RAN") {
        let ns = |s: &str| s.parse::<u128>().unwrap_or_else(|e| panic!("{s}: {e}"));
        let lane = LANES
            .iter()
            .find(|lane| l[1].starts_with(*lane))
            .unwrap_or_else(|| panic!("{l:?}"));
        ran.entry(lane)
            .or_default()
            .push((ns(&l[2]), ns(&l[3]), l[1].clone()));
    }
    for lane in LANES {
        let mut runs = ran.remove(lane).unwrap_or_default();
        runs.sort();
        let keys: Vec<&str> = runs.iter().map(|(_, _, k)| k.as_str()).collect();
        let expected: Vec<String> = (1..=PER_LANE).map(|o| format!("{lane}-{o:02}")).collect();
        assert_eq!(keys, expected, "{lane}: each job once, in order");
        for pair in runs.windows(2) {
            // Claimed (after the claim returned) only once the previous job was finishing.
            assert!(pair[1].0 >= pair[0].1, "{lane}: overlap {pair:?}");
        }
    }
    let all = runtime
        .block_on(store.jobs(IN, None, 100))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.len(), LANES.len() * PER_LANE as usize);
    assert!(
        all.iter()
            .all(|j| j.state == JobState::Done && j.attempts == 1),
        "{all:?}"
    );
}

const CHILD_PREFIX: &str = "XDM_STORE_CHILD_PREFIX";
const CHILD_NAME: &str = "XDM_STORE_CHILD_NAME";
const CHILD_START_AT_MS: &str = "XDM_STORE_CHILD_START_AT_MS";

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

#[allow(clippy::print_stdout)]
fn report(line: String) {
    println!("XDM {line}");
}

/// The child half of `processes_sharing_the_tables_keep_every_guarantee`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "run in child processes by processes_sharing_the_tables_keep_every_guarantee"]
async fn shared_tables_child() {
    let (Ok(prefix), Ok(name), Ok(start_at)) = (
        std::env::var(CHILD_PREFIX),
        std::env::var(CHILD_NAME),
        std::env::var(CHILD_START_AT_MS),
    ) else {
        return;
    };
    let store = Arc::new(DynamoStore::new(&xdm_testkit::moto::sdk_config(), &prefix));
    let start_at: u128 = start_at.parse().unwrap_or_else(|e| panic!("{e}"));
    // Warm the connection pool, then wait for the common start.
    ok(store.job(IN, &k("warm-up")).await);
    let wait = start_at.saturating_sub(now_ns() / 1_000_000);
    tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0))).await;

    let mut tasks = JoinSet::new();
    for i in 0..8 {
        let store = Arc::clone(&store);
        let contact = format!("{name}-racer-{i}");
        tasks.spawn(async move {
            let s = session("100", "200", &contact, 1_000);
            match ok(store.insert_session(&s).await) {
                SessionInsert::Inserted => report(format!("INSERTED {contact}")),
                SessionInsert::OpenExists(o) => report(format!("EXISTS {}", o.initial_contact_id)),
            }
            let now = SystemClock.now_ms();
            let won = ok(store.claim(OUT, &k("contested"), now + 600_000, now).await);
            report(format!("CLAIM {}", if won { "won" } else { "lost" }));
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap_or_else(|e| panic!("{e}"));
    }

    // Then this process works as one dispatcher among three: claim a head, hold it a moment,
    // finish it; done when no lane has an open job, leased or not (hence "now" far ahead).
    loop {
        let now = SystemClock.now_ms();
        let mut heads = ok(store.lane_heads(IN, now + 3_600_000, 10).await);
        if heads.is_empty() {
            return;
        }
        // Start at a random lane, as independent dispatchers mostly would.
        let start = RandomState::new().build_hasher().finish() as usize % heads.len();
        heads.rotate_left(start);
        let mut ran = false;
        for head in heads.iter().filter(|h| h.due_at_ms() <= now) {
            let now = SystemClock.now_ms();
            if !ok(store.claim(IN, &head.key, now + 600_000, now).await) {
                continue;
            }
            ran = true;
            let claimed = now_ns();
            tokio::time::sleep(Duration::from_millis(2)).await;
            let finishing = now_ns();
            report(format!("RAN {} {claimed} {finishing}", head.key));
            let attempt = head.attempts + 1;
            assert!(ok(store
                .finish(
                    IN,
                    &head.key,
                    attempt,
                    FinalState::Done,
                    None,
                    SystemClock.now_ms()
                )
                .await));
        }
        if !ran {
            // Every due head is someone else's for now.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
