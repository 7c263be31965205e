//! The binary's async runtime: one worker unless `TOKIO_WORKER_THREADS` asks for more, and a
//! bad count refused with a message instead of a panic.

use std::time::Duration;

use xdm_sandbox::{Sandbox, SandboxConfig, SandboxHandle};

use crate::bridge_process::{BridgeLog, ServeOptions, free_port, serve_with, wait_healthy};

/// Starts `serve` with `env`, waits until it is healthy, and returns its log so far.
async fn started_log(
    sandbox: &SandboxHandle,
    dir: &std::path::Path,
    name: &str,
    env: &[(&str, &str)],
) -> String {
    let port = free_port();
    let log = BridgeLog::new(dir.join(format!("{name}.log")));
    let bridge = serve_with(
        sandbox,
        port,
        &dir.join(format!("{name}.db")),
        &ServeOptions {
            env,
            log: Some(log.path()),
        },
    );
    wait_healthy(port).await;
    drop(bridge);
    std::fs::read_to_string(log.path()).unwrap()
}

#[tokio::test]
async fn serve_runs_one_async_worker_unless_told_otherwise_and_refuses_a_bad_count() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();

    let default = started_log(&sandbox, dir.path(), "default", &[]).await;
    assert!(
        default.contains("xdm-connect listening") && default.contains("async_workers=1"),
        "{default}"
    );
    let two = started_log(
        &sandbox,
        dir.path(),
        "two",
        &[("TOKIO_WORKER_THREADS", "2")],
    )
    .await;
    assert!(two.contains("async_workers=2"), "{two}");

    for (name, bad) in [("zero", "0"), ("word", "two")] {
        let log = BridgeLog::new(dir.path().join(format!("{name}.log")));
        let mut bridge = serve_with(
            &sandbox,
            free_port(),
            &dir.path().join(format!("{name}.db")),
            &ServeOptions {
                env: &[("TOKIO_WORKER_THREADS", bad)],
                log: Some(log.path()),
            },
        );
        let status = bridge
            .wait_exit(Duration::from_secs(10))
            .await
            .expect("a bad worker count stops the binary");
        // ExitCode::FAILURE; a panic would exit 101.
        assert_eq!(status.code(), Some(1), "TOKIO_WORKER_THREADS={bad}");
        let text = std::fs::read_to_string(log.path()).unwrap();
        assert!(
            text.contains(&format!(
                "error: TOKIO_WORKER_THREADS must be a whole number from 1 to 1024, not \"{bad}\""
            )),
            "{text}"
        );
        assert!(!text.contains("panicked"), "{text}");
    }
}
