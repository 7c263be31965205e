//! Smoke test: scenarios end to end at a tiny size, against the bridge running in this process
//! (`xdm_app::startup::Application`, configured like `serve` through `sandbox_link`), so
//! that the test needs no separately built binary. The CPU and memory figures are then this
//! test process's and mean nothing; the point is that the scenarios run and check what they say.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use xdm_app::sandbox_link;
use xdm_app::startup::{Application, Overrides};
use xdm_bench::report::AllocationUse;
use xdm_bench::{Admin, LoadOptions, Scenario, Target};
use xdm_sandbox::{Sandbox, SandboxConfig, SandboxHandle, SignatureVersion};

struct InProcess {
    sandbox: SandboxHandle,
    target: Target,
    stop: oneshot::Sender<()>,
    server: JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn start() -> InProcess {
    // As `xdm-bench` does: SHA256withRSA is signed with aws-lc-rs, SHA1withRSA (version 1) with
    // the pure-Rust `rsa` crate, which in this debug build would dominate the test's time.
    let mut cfg = SandboxConfig::default();
    cfg.sns.signature_version = SignatureVersion::V2;
    let sandbox = Sandbox::start(cfg).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("smoke.db").display());
    let mut config = sandbox_link::bridge_config(&sandbox, "127.0.0.1:0", &store).unwrap();
    config.delivery.reorder_window_ms = 50;
    config.delivery.outbound_reorder_window_ms = 50;
    config.delivery.retry_base_ms = 50;
    let app = Application::build(
        config,
        Overrides {
            sdk_config: Some(sandbox_link::sdk_config(&sandbox)),
        },
    )
    .await
    .unwrap();
    let target = Target {
        base_url: app.base_url(),
        pid: std::process::id(),
        admin: Some(Admin {
            url: app.admin_base_url().unwrap(),
            token: sandbox_link::SANDBOX_ADMIN_TOKEN.to_owned(),
        }),
    };
    let (stop, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stop_rx.await;
    }));
    InProcess {
        sandbox,
        target,
        stop,
        server,
        _dir: dir,
    }
}

impl InProcess {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.server.await.unwrap().unwrap();
        self.sandbox.shutdown();
    }
}

fn tiny() -> LoadOptions {
    LoadOptions {
        customers: 3,
        concurrency: 16,
        rate: Some(40.0),
        duration: Duration::from_secs(1),
        warmup: Duration::ZERO,
        max_in_flight: 100,
        drain_timeout: Duration::from_secs(15),
        drain_acks: true,
        sns_filter: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_end_to_end_delivers_every_message_once() {
    let app = start().await;
    let report = xdm_bench::run(Scenario::InboundE2e, &app.sandbox, &app.target, &tiny())
        .await
        .unwrap();
    print!("{}", xdm_bench::report::render(&report));
    // 40 at most; fewer when this debug build answers slowly (two tests share two cores).
    assert!(
        (10..=41).contains(&report.messages),
        "{} messages",
        report.messages
    );
    assert_eq!(report.ack_errors, 0);
    let exact = report.exactness.unwrap();
    assert!(exact.exactly_once(), "{exact:?}");
    assert_eq!(exact.delivered, report.messages);
    assert_eq!(report.chats, Some(3), "one chat per customer");
    // A new chat: StartChatContact (the first DM as its initial message), streaming, the
    // customer's connection; nothing on X (the profile came inline).
    let opening = report.new_chat_calls.clone().unwrap();
    assert_eq!(
        opening.connect_ops_per_message,
        [
            ("CreateParticipantConnection".to_owned(), 1.0),
            ("StartChatContact".to_owned(), 1.0),
            ("StartContactStreaming".to_owned(), 1.0),
        ]
        .into_iter()
        .collect(),
        "{opening:?}"
    );
    assert_eq!(opening.x_per_message, 0.0);
    assert!(
        xdm_bench::report::render(&report).contains("new chat      Connect calls/chat 3.00"),
        "{}",
        xdm_bench::report::render(&report)
    );
    assert_eq!(report.latency.count, report.messages);
    assert!(
        report.latency.p50_us >= 50_000,
        "the reorder window is part of it"
    );
    assert_eq!(report.ack_latency.unwrap().count, report.messages);
    // Existing chats: one SendMessage per message, nothing else on Connect.
    let send = report.calls.calls.connect.get("SendMessage").copied();
    assert_eq!(send, Some(report.messages), "{:?}", report.calls);
    assert!(report.throughput_per_s > 0.0);
    assert!(report.bridge_memory.peak_rss_bytes > 0);
    // The bridge is in this process: one CPU figure, said to be combined.
    assert!(report.bridge_in_process);
    let text = xdm_bench::report::render(&report);
    assert!(text.contains("combined"), "{text}");
    assert!(!text.contains("generator CPU"), "{text}");
    assert_eq!(
        report
            .calls
            .connect_ops_per_message
            .get("SendMessage")
            .copied(),
        Some(1.0)
    );
    // Allocations per message from the admin /metrics: counted when this process was built with
    // xdm-app's `count-allocations` feature, else "n/a" with the fix, never a zero.
    match (
        xdm_app::monitoring::allocations::allocated(),
        &report.bridge_allocations,
    ) {
        (
            Some(_),
            AllocationUse::Counted {
                per_message,
                bytes_per_message,
                ..
            },
        ) => assert!(
            *per_message >= 1.0 && *bytes_per_message >= 1.0,
            "{:?}",
            report.bridge_allocations
        ),
        (None, AllocationUse::NotAvailable(why)) => {
            assert!(why.contains("--features count-allocations"), "{why}");
            assert!(text.contains(why.as_str()), "{text}");
            let table = xdm_bench::report::markdown(std::slice::from_ref(&report));
            assert!(table.contains(why.as_str()), "{table}");
        }
        (built, got) => panic!("count-allocations {built:?}, reported {got:?}"),
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_down_acknowledges_then_drains_exactly_once() {
    let app = start().await;
    let report = xdm_bench::run(Scenario::ConnectDown, &app.sandbox, &app.target, &tiny())
        .await
        .unwrap();
    print!("{}", xdm_bench::report::render(&report));
    assert!(report.messages >= 10, "{} messages", report.messages);
    assert_eq!(report.ack_errors, 0, "acknowledged while Connect is down");
    assert!(
        report.latency.p99_us < 1_000_000,
        "far inside X's window: {:?}",
        report.latency
    );
    let exact = report.exactness.unwrap();
    assert!(exact.exactly_once(), "{exact:?}");
    assert_eq!(report.chats, Some(3));
    assert!(report.drain_s.is_some());
    assert!(
        report
            .calls
            .calls
            .connect
            .get("SendMessage")
            .copied()
            .unwrap_or(0)
            > report.messages,
        "refused calls are counted too: {:?}",
        report.calls
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_reports_the_bridges_cpu_with_no_traffic() {
    let app = start().await;
    let report = xdm_bench::run(Scenario::Idle, &app.sandbox, &app.target, &tiny())
        .await
        .unwrap();
    let text = xdm_bench::report::render(&report);
    print!("{text}");
    assert_eq!(report.messages, 0);
    assert_eq!(report.chats, Some(3), "the chats are opened first");
    assert_eq!(
        (
            report.calls.calls.connect_total(),
            report.calls.calls.x_total()
        ),
        (0, 0),
        "nothing crosses to the platforms while idle: {:?}",
        report.calls
    );
    let idle = report.idle.expect("an idle figure");
    // In process, the "bridge" is this test (bridge, sandbox and runtime): it does run.
    assert!(
        idle.cpu_ms_per_s > 0.0 && idle.wakeups_per_s > 0.0,
        "{idle:?}"
    );
    assert!(
        (idle.percent_of_core * 10.0 - idle.cpu_ms_per_s).abs() < 1e-9,
        "{idle:?}"
    );
    assert!(text.contains("% of a core"), "{text}");
    app.stop().await;
}

/// `floor` runs its three stand-ins (this package's `xdm-bench` binary, started again with
/// `XDM_BENCH_FLOOR_SERVER`) and counts every request and every relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floor_measures_a_stand_in_that_answers_and_relays() {
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_xdm-bench"));
    let lines = xdm_bench::floor::run(
        exe,
        Some(200.0),
        8,
        Duration::from_millis(200),
        Duration::from_secs(1),
    )
    .await
    .unwrap();
    let variants: Vec<&str> = lines.iter().map(|l| l.variant.as_str()).collect();
    assert_eq!(
        variants,
        ["answer", "answer + relay", "answer + relay after 250 ms"]
    );
    for line in &lines {
        assert_eq!(line.requests, 200, "{line:?}");
        let relays = if line.variant == "answer" { 0 } else { 200 };
        assert_eq!(line.relayed, relays, "{line:?}");
        assert!(line.cpu_per_request_us > 0.0, "{line:?}");
        assert!(line.slices_per_request > 0.0, "{line:?}");
    }
    let table = xdm_bench::floor::render(&lines, Some(200.0));
    assert!(
        table.contains("| answer + relay after 250 ms | 200 | 200 |"),
        "{table}"
    );
    assert!(
        xdm_bench::floor::run(exe, Some(-1.0), 8, Duration::ZERO, Duration::ZERO)
            .await
            .is_err()
    );
}
