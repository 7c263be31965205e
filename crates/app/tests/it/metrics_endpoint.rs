//! `GET /metrics` on the admin listener: one customer DM and one agent reply through the sandbox
//! show up in the catalogue (docs/operations.md) — `# HELP` lines, the latency and queue-age
//! histograms with their buckets, the backlog gauges, the webhook and job counters.
//!
//! The recorder is the process's, shared by every test of this binary running at the same time,
//! so the counts are compared before and after (others may only add to them).

use xdm_sandbox::{Fault, FaultOp};

use crate::helpers::*;

async fn scrape(app: &TestApp) -> String {
    let answer = app.admin_get("/metrics").await;
    assert_eq!(answer.status(), 200);
    answer.text().await.unwrap()
}

/// The value of the sample `series` (name and labels exactly as exposed), 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn metrics_show_a_dm_and_a_reply_with_help_lines_histograms_and_backlog_gauges() {
    let app = spawn_app().await;
    let before = scrape(&app).await;

    let chat = app.open_chat("hello").await;
    app.sandbox
        .agent_accept(&chat.contact_id, "Enrique")
        .unwrap();
    app.sandbox
        .agent_send(&chat.contact_id, "hi, how can I help?", "text/plain")
        .unwrap();
    app.wait_dms(1).await;
    app.settle().await;
    let after = scrape(&app).await;

    for name in [
        "xdm_webhook_requests_total",
        "xdm_inbound_events_total",
        "xdm_chat_items_total",
        "xdm_job_attempts_total",
        "xdm_delivery_latency_seconds",
        "xdm_job_queue_age_seconds",
        "xdm_backlog_jobs",
        "xdm_backlog_oldest_age_seconds",
    ] {
        assert!(
            after.contains(&format!("# HELP {name} ")),
            "no HELP line for {name}:\n{after}"
        );
    }
    let grew = |series: &str| {
        let (b, a) = (value(&before, series), value(&after, series));
        assert!(a >= b + 1.0, "{series}: {b} before, {a} after\n{after}");
    };
    grew(r#"xdm_webhook_requests_total{source="x",result="accepted"}"#);
    grew(r#"xdm_webhook_requests_total{source="connect",result="accepted"}"#);
    grew(r#"xdm_job_attempts_total{queue="inbound",outcome="done"}"#);
    grew(r#"xdm_job_attempts_total{queue="outbound",outcome="done"}"#);
    for queue in ["inbound", "outbound"] {
        // Histograms with the chat-scale buckets, not summaries.
        grew(&format!(
            r#"xdm_delivery_latency_seconds_count{{queue="{queue}"}}"#
        ));
        grew(&format!(
            r#"xdm_delivery_latency_seconds_bucket{{queue="{queue}",le="+Inf"}}"#
        ));
        grew(&format!(
            r#"xdm_job_queue_age_seconds_count{{queue="{queue}"}}"#
        ));
        assert!(
            after.contains(&format!(
                r#"xdm_delivery_latency_seconds_bucket{{queue="{queue}",le="0.25"}}"#
            )),
            "{after}"
        );
        // The backlog gauges (sampled at start and every 15 s).
        for state in ["pending", "processing", "failed"] {
            let series = format!(r#"xdm_backlog_jobs{{queue="{queue}",state="{state}"}} "#);
            assert!(after.contains(&series), "no {series}in\n{after}");
        }
        let series = format!(r#"xdm_backlog_oldest_age_seconds{{queue="{queue}"}} "#);
        assert!(after.contains(&series), "no {series}in\n{after}");
    }
    app.stop().await;
}

/// A Connect throttle and an X rate limit are counted by platform and code, and X's wait (until
/// its `x-rate-limit-reset`) in seconds.
#[tokio::test]
async fn metrics_count_platform_errors_by_code_and_rate_limit_waits() {
    let app = spawn_app().await;
    let before = scrape(&app).await;
    app.sandbox.fail_next(
        FaultOp::StartChatContact,
        1,
        Fault::error(429, "ThrottlingException"),
    );
    let chat = app.open_chat("hello").await;
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    app.sandbox.fail_next(
        FaultOp::CreateDm,
        1,
        Fault::status(429).with_rate_limit_reset(i64::try_from(now_s).unwrap() + 3),
    );
    app.sandbox
        .agent_accept(&chat.contact_id, "Enrique")
        .unwrap();
    app.sandbox
        .agent_send(&chat.contact_id, "one moment", "text/plain")
        .unwrap();
    app.wait_dms(1).await;
    app.settle().await;
    let after = scrape(&app).await;

    let grew = |series: &str, by: f64| {
        let (b, a) = (value(&before, series), value(&after, series));
        assert!(a >= b + by, "{series}: {b} before, {a} after\n{after}");
    };
    grew(
        r#"xdm_platform_errors_total{platform="connect",code="ThrottlingException"}"#,
        1.0,
    );
    grew(r#"xdm_rate_limit_waits_total{platform="connect"}"#, 1.0);
    grew(r#"xdm_platform_errors_total{platform="x",code="429"}"#, 1.0);
    grew(r#"xdm_rate_limit_waits_total{platform="x"}"#, 1.0);
    // The reset was 3 s ahead (less the time the call took): at least 1 s of waiting.
    grew(r#"xdm_rate_limit_wait_seconds_total{platform="x"}"#, 1.0);
    for name in ["xdm_platform_errors_total", "xdm_rate_limit_waits_total"] {
        assert!(after.contains(&format!("# HELP {name} ")), "{after}");
    }
    app.stop().await;
}

/// With the `count-allocations` feature the `xdm-connect` binary counts its heap allocations and
/// shows them on the admin `/metrics` (what `xdm-bench` reads for allocations per message).
#[cfg(feature = "count-allocations")]
mod allocations {
    use xdm_sandbox::{DmSpec, Sandbox, SandboxConfig, SandboxUser};

    use super::value;
    use crate::bridge_process::{ServeOptions, free_port, serve_with, wait_healthy};
    use crate::helpers::*;

    const TOKEN: &str = "allocation-counters-test-token";

    async fn scrape(http: &reqwest::Client, admin: &str) -> String {
        let answer = http
            .get(format!("{admin}/metrics"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        answer.text().await.unwrap()
    }

    #[tokio::test]
    async fn the_binary_counts_its_allocations_on_the_admin_metrics() {
        let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
        sandbox.add_user(SandboxUser::new(CUSTOMER, "Jordan Brinks", "furiouscamper"));
        let dir = tempfile::tempdir().unwrap();
        let (port, admin_port) = (free_port(), free_port());
        let admin_listen = format!("127.0.0.1:{admin_port}");
        let _bridge = serve_with(
            &sandbox,
            port,
            &dir.path().join("bridge.db"),
            &ServeOptions {
                env: &[
                    ("XDM_ADMIN_LISTEN", &admin_listen),
                    ("XDM_ADMIN_TOKEN", TOKEN),
                ],
                log: None,
            },
        );
        wait_healthy(port).await;
        let webhook = format!("http://127.0.0.1:{port}/webhooks/x");
        assert!(sandbox.set_webhook(&webhook).await.unwrap().ok);
        let http = reqwest::Client::new();
        let admin = format!("http://{admin_listen}");

        let before = scrape(&http, &admin).await;
        let d = sandbox
            .deliver_dm(DmSpec::text(CUSTOMER, "count me"))
            .await
            .unwrap();
        assert_eq!(d.status, Some(200));
        let after = scrape(&http, &admin).await;

        for name in ["xdm_allocations_total", "xdm_allocated_bytes_total"] {
            assert!(
                after.contains(&format!("# TYPE {name} counter")),
                "{name}:\n{after}"
            );
            assert!(
                after
                    .lines()
                    .any(|l| l.starts_with(&format!("# HELP {name} "))
                        && l.contains("count-allocations feature")),
                "{name}:\n{after}"
            );
            // The bridge process's own counts (not this test's): it started, accepted a
            // delivery and rendered the first scrape in between.
            let (b, a) = (value(&before, name), value(&after, name));
            assert!(b > 0.0 && a > b, "{name}: {b} before, {a} after");
        }
        let bytes = value(&after, "xdm_allocated_bytes_total")
            - value(&before, "xdm_allocated_bytes_total");
        // At least the delivery's body (~1.5 KB) and the first scrape's text.
        assert!(bytes >= 1_000.0, "{bytes} bytes");
    }
}
