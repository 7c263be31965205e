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
