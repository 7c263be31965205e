//! The admin listener: `/metrics` and `/healthz` with details behind `Authorization: Bearer
//! <XDM_ADMIN_TOKEN>`; the public listener keeps only `/healthz`'s status.

use xdm_app::sandbox_link::SANDBOX_ADMIN_TOKEN;
use xdm_sandbox::SandboxConfig;

use crate::helpers::*;

#[tokio::test]
async fn metrics_and_health_details_need_the_admin_token_and_leave_the_public_listener() {
    let app = spawn_app().await;
    let admin = app.admin.clone().unwrap();

    // Public: no metrics, health without details.
    let res = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status": "ok"})
    );

    // Admin: 401 with a Bearer challenge without the token, with another one, on any path.
    let basic = format!("Basic {SANDBOX_ADMIN_TOKEN}");
    for (path, auth) in [
        ("/metrics", None),
        ("/metrics", Some("Bearer not-the-token-at-all-0000")),
        ("/metrics", Some(basic.as_str())),
        ("/healthz", None),
        ("/nothing-here", None),
    ] {
        let mut req = app.http.get(format!("{admin}{path}"));
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401, "{path} {auth:?}");
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
    }

    // With the token: Prometheus text and the detailed health.
    app.dm("hello").await;
    let res = app.admin_get("/metrics").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = res.text().await.unwrap();
    assert!(text.contains("xdm_http_rejections_total"), "{text}");
    let res = app.admin_get("/healthz").await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert!(body.as_object().unwrap().contains_key("stream"), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn without_a_token_the_admin_listener_refuses_everything_and_public_health_hides_the_reasons()
{
    let app = spawn_app_with(SandboxConfig::default(), |c| {
        c.admin.token = None;
    })
    .await;
    let admin = app.admin.clone().unwrap();
    for token in [SANDBOX_ADMIN_TOKEN, ""] {
        let res = app
            .http
            .get(format!("{admin}/healthz"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        assert!(
            res.text()
                .await
                .unwrap()
                .contains("XDM_ADMIN_TOKEN is not set")
        );
    }
    app.stop().await;

    // A Connect setting missing: the bridge is degraded, and says why only on the admin listener.
    let app = spawn_app_with(SandboxConfig::default(), |c| {
        c.connect.contact_flow_id = None;
    })
    .await;
    let res = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let text = res.text().await.unwrap();
    assert_eq!(text, r#"{"status":"degraded"}"#);
    let res = app.admin_get("/healthz").await;
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(
        body["problems"]
            .to_string()
            .contains("XDM_CONNECT_CONTACT_FLOW_ID"),
        "{body}"
    );
    app.stop().await;
}

/// The operator page: the login form (401) until the token opens a session, then the page,
/// the failed events with their errors (never a message's text) and a retry that delivers.
#[tokio::test]
async fn the_operator_page_logs_in_with_the_token_shows_a_failed_event_and_re_drives_it() {
    use xdm_sandbox::{FaultOp, FaultProfile};

    let app = spawn_app_with(SandboxConfig::default(), |c| {
        c.delivery.max_attempts = 1;
    })
    .await;
    let admin = app.admin.clone().unwrap();
    let chat = app.open_chat("where is my parcel?").await;
    app.sandbox
        .agent_accept(&chat.contact_id, "Enrique")
        .unwrap();
    // X refuses every DM: the reply's one attempt fails and it is parked as failed.
    app.sandbox
        .set_fault_profile(FaultOp::CreateDm, FaultProfile::errors(1.0))
        .unwrap();
    let reply = "It left today, tracking number 42.";
    app.sandbox
        .agent_send(&chat.contact_id, reply, "text/plain")
        .unwrap();
    app.settle().await;
    assert!(app.dm_texts().is_empty());

    // Without a session: the login form with 401, and 401 for the API.
    let res = app.http.get(format!("{admin}/")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("operator"));
    for path in ["/api/overview"] {
        let res = app.http.get(format!("{admin}{path}")).send().await.unwrap();
        assert_eq!(res.status(), 401, "{path}");
    }
    let res = app
        .http
        .post(format!("{admin}/api/retry"))
        .json(&serde_json::json!({"queue": "outbound", "all_failed": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let login = |token: &str| {
        app.http
            .post(format!("{admin}/login"))
            .json(&serde_json::json!({ "token": token }))
            .send()
    };
    assert_eq!(
        login("not-the-token-at-all-0000").await.unwrap().status(),
        401
    );
    assert_eq!(login("").await.unwrap().status(), 401);
    let res = login(SANDBOX_ADMIN_TOKEN).await.unwrap();
    assert_eq!(res.status(), 204);
    let set_cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"));
    let cookie = set_cookie.split(';').next().unwrap().to_owned();

    let get = |path: &str| {
        app.http
            .get(format!("{admin}{path}"))
            .header("cookie", &cookie)
            .send()
    };
    let page = get("/").await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Failed events"));
    let overview: serde_json::Value = get("/api/overview").await.unwrap().json().await.unwrap();
    let failed = overview["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{overview}");
    assert_eq!(failed[0]["queue"], "outbound");
    assert!(
        failed[0]["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("503"),
        "{overview}"
    );
    assert!(
        !overview.to_string().contains(reply),
        "no message text on the page: {overview}"
    );
    let outbound = overview["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == "outbound")
        .unwrap();
    assert_eq!(outbound["failed"], 1);
    assert_eq!(overview["x_delivery"], "webhook");
    let seen = overview["last_dm_seen"].as_array().unwrap();
    assert!(
        seen.iter().any(|s| s["at_ms"].as_i64().unwrap_or(0) > 0),
        "the newest DM seen per account: {overview}"
    );
    // The metrics come with the session too.
    assert_eq!(get("/metrics").await.unwrap().status(), 200);

    // Re-driven from the page, once X takes DMs again: the reply reaches the customer once.
    app.sandbox.clear_fault_profiles();
    let retry = |body: serde_json::Value| {
        app.http
            .post(format!("{admin}/api/retry"))
            .header("cookie", &cookie)
            .json(&body)
            .send()
    };
    let res = retry(serde_json::json!({"queue": "sideways", "all_failed": true}))
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let key = failed[0]["key"].as_str().unwrap().to_owned();
    let res = retry(serde_json::json!({"queue": "outbound", "keys": [key]}))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["retried"], serde_json::json!([key]));
    app.sandbox
        .wait_until("the re-driven reply on X", WAIT, |s| {
            (!s.sent_dms().is_empty()).then_some(())
        })
        .await
        .unwrap();
    app.settle().await;
    assert_eq!(app.dm_texts(), vec![reply], "exactly once");
    let res = retry(serde_json::json!({"queue": "outbound", "keys": [key]}))
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["left_alone"], serde_json::json!([key]), "done now");

    // Logged out: the cookie opens nothing any more.
    let res = app
        .http
        .post(format!("{admin}/api/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(get("/api/overview").await.unwrap().status(), 401);
    app.stop().await;
}

/// The operator page lists a reply waiting for its retry with the error of its attempt, and
/// only while it waits: it is read from the lanes' heads, which such a job holds.
#[tokio::test]
async fn the_operator_page_shows_a_reply_waiting_for_its_retry() {
    use xdm_sandbox::{FaultOp, FaultProfile};

    let app = spawn_app_with(SandboxConfig::default(), |c| {
        // The retry comes long after the test looks.
        c.delivery.retry_base_ms = 600_000;
    })
    .await;
    let chat = app.open_chat("is it in stock?").await;
    app.sandbox
        .agent_accept(&chat.contact_id, "Enrique")
        .unwrap();
    let overview = || async {
        let res = app.admin_get("/api/overview").await;
        assert_eq!(res.status(), 200);
        res.json::<serde_json::Value>().await.unwrap()
    };
    assert_eq!(overview().await["retrying"], serde_json::json!([]));

    app.sandbox
        .set_fault_profile(FaultOp::CreateDm, FaultProfile::errors(1.0))
        .unwrap();
    app.sandbox
        .agent_send(&chat.contact_id, "Yes, two left.", "text/plain")
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let retrying = loop {
        let retrying = overview().await["retrying"].clone();
        if retrying.as_array().is_some_and(|r| !r.is_empty()) {
            break retrying;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reply waiting for a retry on the page"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let listed = retrying.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{retrying}");
    assert_eq!(listed[0]["queue"], "outbound");
    assert_eq!(listed[0]["state"], "pending");
    assert_eq!(listed[0]["attempts"], 1);
    assert!(
        listed[0]["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("503"),
        "{retrying}"
    );
    assert!(app.dm_texts().is_empty());
    app.stop().await;
}
