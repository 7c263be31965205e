//! A second process on the bridge's SQLite file, with the real binary (`bridge_process`):
//!
//! * a second `serve` started on the same file while the first serves a stream of DMs both ways
//!   is refused at once, naming the first one's pid, and nothing reaches X or Connect twice;
//! * a `serve` that cannot bind its port leaves the store exactly as it found it (no claim
//!   released, nothing claimed);
//! * a damaged database page stops `serve` at start and fails `doctor --offline`, both naming the
//!   file and the recovery.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use xdm_core::jobs::{JobKey, JobQueue, JobState, Lane, NewJob};
use xdm_core::ports::Store;
use xdm_sandbox::{
    DmSpec, FaultOp, FaultProfile, Sandbox, SandboxConfig, SandboxHandle, SandboxUser,
};
use xdm_store::SqliteStore;

use crate::bridge_process::{BridgeLog, ServeOptions, free_port, serve_with, wait_healthy};
use crate::helpers::*;

const CUSTOMERS: usize = 4;
/// Give up on the bridge settling (or a process exiting) after this long.
const GIVE_UP: Duration = Duration::from_secs(60);
/// How long X's DM send and Connect's SendMessage take while the second process starts.
const SLOW_MS: u64 = 200;

fn customer_id(i: usize) -> String {
    format!("50000000{i:02}")
}

/// What the customers and agents sent (every DM got its 200 from the first `serve`).
#[derive(Default)]
struct Sent {
    dms: Vec<String>,
    replies: Vec<String>,
}

/// A customer DMing the business every 250 ms until `stop`.
async fn customer(i: usize, sandbox: SandboxHandle, stop: Arc<AtomicBool>, sent: Arc<Mutex<Sent>>) {
    for n in 1.. {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let text = format!("c{i} #{n}");
        let d = sandbox
            .deliver_dm(DmSpec::text(customer_id(i), &text))
            .await
            .unwrap();
        assert_eq!(d.status, Some(200), "{text}: {d:?}");
        sent.lock().unwrap().dms.push(text);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Starts `serve` on `db` with `env`, which must exit non-zero within 15 s (`running` says what
/// it means if it does not), and returns what it logged.
async fn serve_refused(
    sandbox: &SandboxHandle,
    port: u16,
    db: &Path,
    env: &[(&str, &str)],
    log: &Path,
    running: &str,
) -> String {
    let mut bridge = serve_with(
        sandbox,
        port,
        db,
        &ServeOptions {
            env,
            log: Some(log),
        },
    );
    let status = bridge
        .wait_exit(Duration::from_secs(15))
        .await
        .expect(running);
    let logged = std::fs::read_to_string(log).unwrap();
    assert!(!status.success(), "serve exited 0: {logged}");
    logged
}

/// The agent of customer `i`'s chat: accepts it once it exists, then replies every 300 ms.
async fn agent(i: usize, sandbox: SandboxHandle, stop: Arc<AtomicBool>, sent: Arc<Mutex<Sent>>) {
    let Some(contact_id) =
        accept_when_open(&sandbox, &customer_id(i), &format!("Agent {i}"), &stop).await
    else {
        return;
    };
    for n in 1.. {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let text = format!("a{i} #{n}");
        sandbox
            .agent_send(&contact_id, &text, "text/plain")
            .unwrap();
        sent.lock().unwrap().replies.push(text);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// How many times each text arrived: customer messages in Connect, DMs on X.
fn arrivals(sandbox: &SandboxHandle) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let mut in_connect = BTreeMap::new();
    for c in sandbox.contacts() {
        for text in customer_messages(&c) {
            *in_connect.entry(text).or_default() += 1;
        }
    }
    let mut on_x = BTreeMap::new();
    for dm in sandbox.sent_dms() {
        *on_x.entry(dm.text.unwrap_or_default()).or_default() += 1;
    }
    (in_connect, on_x)
}

/// Texts of `sent` that arrived other than once: (missing, duplicated).
fn judge(sent: &[String], arrived: &BTreeMap<String, usize>) -> (Vec<String>, Vec<String>) {
    let missing = sent
        .iter()
        .filter(|t| !arrived.contains_key(*t))
        .cloned()
        .collect();
    let duplicated = arrived
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(t, n)| format!("{t} ×{n}"))
        .collect();
    (missing, duplicated)
}

async fn open_jobs(store: &SqliteStore) -> usize {
    let mut open = 0;
    for q in JobQueue::ALL {
        for s in [JobState::Pending, JobState::Processing] {
            open += store.jobs(q, Some(s), 100_000).await.unwrap().len();
        }
    }
    open
}

/// `xdm-connect doctor --offline` on the SQLite store `db`, from an empty directory.
fn doctor_offline(db: &Path, cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xdm-connect"))
        .args(["doctor", "--offline"])
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .env("XDM_STORE", format!("sqlite:{}", db.display()))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_serve_on_the_same_store_is_refused_and_nothing_is_sent_twice() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    for i in 0..CUSTOMERS {
        sandbox.add_user(SandboxUser::new(
            customer_id(i),
            format!("Customer {i}"),
            format!("customer{i}"),
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bridge.db");
    let log = BridgeLog::new(dir.path().join("bridge.log"));
    let env = [("XDM_RETRY_BASE_MS", "20"), ("XDM_REORDER_WINDOW_MS", "50")];
    let options = ServeOptions {
        env: &env,
        log: Some(log.path()),
    };
    let port_a = free_port();
    log.mark("serve A");
    let mut a = serve_with(&sandbox, port_a, &db, &options);
    wait_healthy(port_a).await;
    link_sandbox(&sandbox, &format!("http://127.0.0.1:{port_a}")).await;

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(Mutex::new(Sent::default()));
    let mut drivers = Vec::new();
    for i in 0..CUSTOMERS {
        drivers.push(tokio::spawn(customer(
            i,
            sandbox.clone(),
            Arc::clone(&stop),
            Arc::clone(&sent),
        )));
        drivers.push(tokio::spawn(agent(
            i,
            sandbox.clone(),
            Arc::clone(&stop),
            Arc::clone(&sent),
        )));
    }
    // Until chats are open and replies flow; then X and Connect answer slowly, so that A always
    // has jobs in hand both ways (the ones a second process would take over and send again).
    sandbox
        .wait_until("replies on X", GIVE_UP, |s| {
            (s.sent_dms().len() >= CUSTOMERS).then_some(())
        })
        .await
        .unwrap();
    for op in [FaultOp::CreateDm, FaultOp::SendMessage] {
        sandbox
            .set_fault_profile(op, FaultProfile::latency(SLOW_MS, 50))
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // B: same file, another port, in the middle of the stream.
    log.mark("serve B on the same store");
    let b_err = serve_refused(
        &sandbox,
        free_port(),
        &db,
        &env,
        &dir.path().join("b.log"),
        "the second serve is still running",
    )
    .await;
    assert!(
        b_err.contains(&format!("another xdm-connect (pid {}", a.pid()))
            && b_err.contains(&db.display().to_string()),
        "the refusal names neither A nor the store: {b_err}"
    );

    // `doctor` runs beside A, and says who serves the store.
    let doctor = doctor_offline(&db, dir.path());
    let doctor_out = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        doctor_out
            .lines()
            .any(|l| l.starts_with("OK   store lock:") && l.contains(&format!("pid {}", a.pid()))),
        "{doctor_out}"
    );

    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    for op in [FaultOp::CreateDm, FaultOp::SendMessage] {
        sandbox
            .set_fault_profile(op, FaultProfile::default())
            .unwrap();
    }
    for d in drivers {
        d.await.unwrap();
    }
    let (dms, replies) = {
        let s = sent.lock().unwrap();
        (s.dms.clone(), s.replies.clone())
    };

    // Settled: everything arrived and A has nothing open.
    let store = SqliteStore::open(&db).await.unwrap();
    let started = std::time::Instant::now();
    loop {
        let (in_connect, on_x) = arrivals(&sandbox);
        let arrived = dms.iter().all(|t| in_connect.contains_key(t))
            && replies.iter().all(|t| on_x.contains_key(t));
        if arrived && open_jobs(&store).await == 0 {
            break;
        }
        assert!(started.elapsed() < GIVE_UP, "the bridge did not settle");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (in_connect, on_x) = arrivals(&sandbox);
    let (missing_in, duplicated_in) = judge(&dms, &in_connect);
    let (missing_out, duplicated_out) = judge(&replies, &on_x);
    println!(
        "two processes on one store: {} DMs, {} agent replies; \
         duplicates with two processes: {} (in Connect {}, on X {}); missing {}",
        dms.len(),
        replies.len(),
        duplicated_in.len() + duplicated_out.len(),
        duplicated_in.len(),
        duplicated_out.len(),
        missing_in.len() + missing_out.len(),
    );
    assert!(
        duplicated_in.is_empty() && duplicated_out.is_empty(),
        "duplicates: in Connect {duplicated_in:?}, on X {duplicated_out:?}"
    );
    assert!(
        missing_in.is_empty() && missing_out.is_empty(),
        "missing: in Connect {missing_in:?}, on X {missing_out:?}"
    );
    assert!(!dms.is_empty() && !replies.is_empty(), "no traffic");
    a.kill_9();
    sandbox.shutdown();
}

/// A job a killed `serve` had in hand: processing, its lease an hour ahead.
async fn claimed_job_left_behind(db: &Path) -> xdm_core::jobs::Job {
    let store = SqliteStore::open(db).await.unwrap();
    let key = JobKey::parse("in-flight").unwrap();
    let job = NewJob {
        queue: JobQueue::Inbound,
        key: key.clone(),
        lane: Lane::parse("lane-1").unwrap(),
        order_key: 1,
        payload: "{}".to_owned(),
        accepted_at_ms: 1_000,
        not_before_ms: 1_000,
    };
    store.enqueue(&[job]).await.unwrap();
    let now = xdm_core::ports::Clock::now_ms(&xdm_core::ports::SystemClock);
    assert!(
        store
            .claim(JobQueue::Inbound, &key, now + 3_600_000, now)
            .await
            .unwrap()
    );
    let job = store.job(JobQueue::Inbound, &key).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Processing);
    drop(store);
    wait_closed(db).await;
    job
}

/// Waits until a dropped store has closed its file (the `-wal` goes at the last close).
async fn wait_closed(db: &Path) {
    let wal = format!("{}-wal", db.display());
    for _ in 0..500 {
        if !Path::new(&wal).exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} was not closed", db.display());
}

#[tokio::test]
async fn a_serve_that_cannot_listen_leaves_the_store_untouched() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bridge.db");
    let job = claimed_job_left_behind(&db).await;
    let before = std::fs::read(&db).unwrap();

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = serve_refused(
        &sandbox,
        port,
        &db,
        &[],
        &dir.path().join("serve.log"),
        "serve is running on a port that was taken",
    )
    .await;
    assert!(err.contains("XDM_LISTEN"), "{err}");

    // Not opened at all: the same bytes, no WAL, and the claim still stands.
    assert!(
        std::fs::read(&db).unwrap() == before,
        "the database file changed"
    );
    assert!(!Path::new(&format!("{}-wal", db.display())).exists());
    let store = SqliteStore::open(&db).await.unwrap();
    assert_eq!(
        store.job(JobQueue::Inbound, &job.key).await.unwrap(),
        Some(job),
        "the claim was released or taken"
    );
    drop(taken);
    sandbox.shutdown();
}

/// Overwrites every page but the first (the header and the schema) with bytes that are no
/// b-tree page.
fn damage_pages(db: &Path) {
    let mut bytes = std::fs::read(db).unwrap();
    assert!(
        bytes.len() > 3 * 4096,
        "too small to damage: {}",
        bytes.len()
    );
    for (i, b) in bytes.iter_mut().enumerate().skip(4096) {
        *b = (i * 7 + 0x5a) as u8;
    }
    std::fs::write(db, bytes).unwrap();
}

#[tokio::test]
async fn a_damaged_page_stops_serve_and_fails_doctor_naming_the_recovery() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bridge.db");
    let store = SqliteStore::open(&db).await.unwrap();
    let jobs: Vec<NewJob> = (0..300)
        .map(|i| NewJob {
            queue: JobQueue::Inbound,
            key: JobKey::parse(format!("job-{i:03}")).unwrap(),
            lane: Lane::parse(format!("lane-{}", i % 7)).unwrap(),
            order_key: i,
            payload: format!("{{\"n\":{i},\"text\":\"some customer text\"}}"),
            accepted_at_ms: 1_000,
            not_before_ms: 1_000,
        })
        .collect();
    store.enqueue(&jobs).await.unwrap();
    drop(store);
    wait_closed(&db).await;
    damage_pages(&db);

    let err = serve_refused(
        &sandbox,
        free_port(),
        &db,
        &[],
        &dir.path().join("serve.log"),
        "serve is running on a damaged store",
    )
    .await;
    for part in ["is damaged", ".recover", &db.display().to_string()] {
        assert!(err.contains(part), "{part:?} missing: {err}");
    }

    let doctor = doctor_offline(&db, dir.path());
    let out = String::from_utf8_lossy(&doctor.stdout);
    assert!(!doctor.status.success(), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("FAIL store:")
            && l.contains("is damaged")
            && l.contains(".recover")),
        "{out}"
    );
    sandbox.shutdown();
}
