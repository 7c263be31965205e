//! Management calls through the fake: webhooks and replay with the app bearer, XAA
//! subscriptions (created in user context, listed / updated / deleted with the bearer), the AAA
//! subscription calls, every documented answer shape, and errors as one line with a reason.

use serde_json::json;
use time::macros::datetime;
use xdm_x::manage::{AppClient, ManageReason, NewSubscription};

use super::*;

const BEARER: &str = "AAAAAAAAAAAAAAAAAAAAAMLheAAAAAAA0%2BuSeid%2BULvsea4JtiGRiSDSJSI%3DEUifiRBkKG5E2XzMDjRfl76ZC9Ub0wnz4XsNiRVBChTYbJcE3F";
const HOOK: &str = r#"{"id":"1146654567674912769","url":"https://bridge.example/webhooks/x","valid":true,"created_at":"2025-01-15T12:00:00.000Z"}"#;

fn app(server: &Server) -> AppClient {
    AppClient::new(&server.url(), BEARER).unwrap()
}

fn json_answer(status: u16, body: String) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body,
    )
        .into_response()
}

#[tokio::test]
async fn creates_webhooks_answered_with_or_without_data() {
    for body in [format!(r#"{{"data":{HOOK}}}"#), HOOK.to_owned()] {
        let server = Server::start(answer(200, &body)).await;
        let hook = app(&server)
            .create_webhook("https://bridge.example/webhooks/x")
            .await
            .unwrap();
        assert_eq!(hook.id, "1146654567674912769");
        assert_eq!(hook.url, "https://bridge.example/webhooks/x");
        assert!(hook.valid);
        assert_eq!(hook.created_at.as_deref(), Some("2025-01-15T12:00:00.000Z"));
        let req = server.only_request();
        assert_eq!(req.method, Method::POST);
        assert_eq!(req.target, "/2/webhooks");
        assert_eq!(req.headers["authorization"], format!("Bearer {BEARER}"));
        assert_eq!(
            req.json(),
            json!({"url": "https://bridge.example/webhooks/x"})
        );
    }
}

#[tokio::test]
async fn lists_validates_and_deletes_webhooks() {
    let server = Server::start(answer(
        200,
        &format!(r#"{{"data":[{HOOK}],"meta":{{"result_count":1}}}}"#),
    ))
    .await;
    let hooks = app(&server).webhooks().await.unwrap();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].id, "1146654567674912769");
    for empty in [r#"{"meta":{"result_count":0}}"#, r#"{"data":[]}"#] {
        let server = Server::start(answer(200, empty)).await;
        assert!(app(&server).webhooks().await.unwrap().is_empty(), "{empty}");
    }
    let server = Server::start(answer(200, r#"{"data":{"valid":true}}"#)).await;
    assert!(
        app(&server)
            .validate_webhook("1146654567674912769")
            .await
            .unwrap()
    );
    let req = server.only_request();
    assert_eq!(req.method, Method::PUT);
    assert_eq!(req.target, "/2/webhooks/1146654567674912769");
    let server = Server::start(answer(200, r#"{"data":{"deleted":true}}"#)).await;
    app(&server)
        .delete_webhook("1146654567674912769")
        .await
        .unwrap();
    assert_eq!(server.only_request().method, Method::DELETE);
    // An id that could change the path is refused before any request.
    let e = app(&server)
        .delete_webhook("../oauth2/revoke")
        .await
        .unwrap_err();
    assert_eq!(e.reason(), None);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn requests_a_replay_in_utc_minutes() {
    let server = Server::start(answer(
        200,
        r#"{"data":{"job_id":"1234567890","created_at":"2025-01-15T12:00:00.000Z"}}"#,
    ))
    .await;
    let job = app(&server)
        .replay(
            "1146654567674912769",
            datetime!(2026-12-04 13:05:59 +01:00),
            datetime!(2026-12-04 14:30 UTC),
        )
        .await
        .unwrap();
    assert_eq!(job.job_id, "1234567890");
    let req = server.only_request();
    assert_eq!(req.target, "/2/webhooks/replay");
    assert_eq!(
        req.json(),
        json!({"webhook_id":"1146654567674912769","from_date":"202612041205","to_date":"202612041430"})
    );
}

#[tokio::test]
async fn webhook_errors_name_the_reason_in_one_line() {
    let cases = [
        (
            400,
            r#"{"errors":[{"message":"Webhook URL failed CRC validation (CrcValidationFailed)"}],"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","type":"https://api.x.com/2/problems/invalid-request"}"#,
            ManageReason::CrcValidationFailed,
        ),
        (
            400,
            r#"{"title":"DuplicateUrlFailed","detail":"A webhook is already registered by your application for this URL","type":"https://api.x.com/2/problems/invalid-request"}"#,
            ManageReason::DuplicateUrlFailed,
        ),
        (
            403,
            r#"{"errors":[{"message":"WebhookLimitExceeded"}]}"#,
            ManageReason::WebhookLimitExceeded,
        ),
        (
            403,
            r#"{"title":"Forbidden","type":"about:blank","status":403,"detail":"Forbidden"}"#,
            ManageReason::NotAuthorized,
        ),
        (401, "", ManageReason::NotAuthorized),
        (404, "{}", ManageReason::NotFound),
        (503, "<html>down</html>", ManageReason::Unavailable),
    ];
    for (status, body, reason) in cases {
        let server = Server::start(answer(status, body)).await;
        let e = app(&server)
            .create_webhook("https://bridge.example/webhooks/x")
            .await
            .unwrap_err();
        assert_eq!(e.reason(), Some(reason), "{body}");
        let line = e.to_string();
        assert!(!line.contains('{') && !line.contains('\n'), "{line}");
        assert!(line.contains(&status.to_string()), "{line}");
    }
    let server = Server::start(answer(
        400,
        r#"{"errors":[{"message":"Webhook URL failed CRC validation (CrcValidationFailed)"}]}"#,
    ))
    .await;
    let e = app(&server)
        .create_webhook("https://b.example/x")
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "HTTP 400: Webhook URL failed CRC validation (CrcValidationFailed)"
    );
    let mut limited = answer(429, r#"{"title":"Too Many Requests"}"#);
    limited
        .headers
        .push(("x-rate-limit-reset", "1775080999".to_owned()));
    let server = Server::start(limited).await;
    let e = app(&server).webhooks().await.unwrap_err();
    assert_eq!(
        e.reason(),
        Some(ManageReason::RateLimited {
            reset_at_s: Some(1_775_080_999)
        })
    );
    // The spend cap is a 429 too, but no window resets it: not a rate limit to wait out.
    let mut capped = answer(
        429,
        r#"{"title":"UsageCapExceeded","detail":"Usage cap exceeded: Monthly product cap","type":"https://api.x.com/2/problems/usage-capped","period":"Monthly","scope":"Product"}"#,
    );
    capped
        .headers
        .push(("x-rate-limit-reset", "1775080999".to_owned()));
    let server = Server::start(capped).await;
    let e = app(&server).webhooks().await.unwrap_err();
    assert_eq!(e.reason(), Some(ManageReason::UsageCapped));
    assert!(e.to_string().contains("usage cap is spent"), "{e}");
}

fn new_subscription() -> NewSubscription {
    NewSubscription {
        event_type: "dm.received".into(),
        user_id: BUSINESS.into(),
        tag: Some("xdm-connect".into()),
        webhook_id: Some("1146654567674912769".into()),
    }
}

#[tokio::test]
async fn creates_a_subscription_in_user_context_whatever_the_answer_shape() {
    for body in [
        r#"{"data":{"subscription_id":"1950000000000000001"}}"#,
        r#"{"data":{"subscription":{"subscription_id":"1950000000000000001","event_type":"dm.received","filter":{"user_id":"4337869213"},"tag":"xdm-connect","webhook_id":"1146654567674912769","created_at":"2026-12-04T12:00:00.000Z"}}}"#,
        r#"{"data":[{"subscription_id":"1950000000000000001","event_type":"dm.received","filter":{"user_id":"4337869213"}}]}"#,
    ] {
        let server = Server::start(answer(200, body)).await;
        let sub = server
            .client()
            .create_activity_subscription(&uid(BUSINESS), &new_subscription())
            .await
            .unwrap();
        assert_eq!(sub.id, "1950000000000000001", "{body}");
        assert_eq!(sub.event_type, "dm.received");
        assert_eq!(sub.user_id.as_deref(), Some(BUSINESS));
        assert_eq!(sub.tag.as_deref(), Some("xdm-connect"));
        assert_eq!(sub.webhook_id.as_deref(), Some("1146654567674912769"));
        let req = server.only_request();
        assert_eq!(req.target, "/2/activity/subscriptions");
        req.assert_signed_by(&default_token());
        assert_eq!(
            req.json(),
            json!({"event_type":"dm.received","filter":{"user_id":BUSINESS},"tag":"xdm-connect","webhook_id":"1146654567674912769"})
        );
    }
    let server = Server::start(answer(
        409,
        r#"{"title":"DuplicateSubscriptionFailed","detail":"A subscription for this user already exists.","type":"https://api.x.com/2/problems/conflict"}"#,
    ))
    .await;
    let e = server
        .client()
        .create_activity_subscription(&uid(BUSINESS), &new_subscription())
        .await
        .unwrap_err();
    assert_eq!(e.reason(), Some(ManageReason::DuplicateSubscriptionFailed));
    let server = Server::start(answer(
        400,
        r#"{"errors":[{"message":"SubscriptionLimitExceeded"}]}"#,
    ))
    .await;
    let e = server
        .client()
        .create_activity_subscription(&uid(BUSINESS), &new_subscription())
        .await
        .unwrap_err();
    assert_eq!(e.reason(), Some(ManageReason::SubscriptionLimitExceeded));
}

#[tokio::test]
async fn lists_subscriptions_across_pages_and_updates_and_deletes_them() {
    let respond: Responder = Arc::new(|seen: &Seen| {
        let q: BTreeMap<String, String> = seen.url().query_pairs().into_owned().collect();
        match q.get("pagination_token").map(String::as_str) {
            None => json_answer(
                200,
                json!({"data":[{"subscription_id":"1","event_type":"dm.received","filter":{"user_id":BUSINESS},"webhook_id":"9","created_at":"2026-12-01T00:00:00.000Z"}],
                       "meta":{"next_token":"PAGE2PAGE2PAGE2P"}})
                .to_string(),
            ),
            Some("PAGE2PAGE2PAGE2P") => json_answer(
                200,
                json!({"data":[{"subscription_id":"2","event_type":"dm.sent","filter":{"user_id":OTHER_BUSINESS},"tag":"t"}],"meta":{}})
                    .to_string(),
            ),
            Some(_) => json_answer(400, "{}".into()),
        }
    });
    let server = Server::routed(vec![("/2/activity/subscriptions?", respond)]).await;
    let subs = app(&server).activity_subscriptions().await.unwrap();
    assert_eq!(subs.len(), 2);
    assert_eq!(subs[0].user_id.as_deref(), Some(BUSINESS));
    assert_eq!(subs[0].webhook_id.as_deref(), Some("9"));
    assert_eq!(subs[1].event_type, "dm.sent");
    assert_eq!(subs[1].tag.as_deref(), Some("t"));
    assert_eq!(server.requests().len(), 2);

    let server = Server::start(answer(200, "{}")).await;
    assert!(
        app(&server)
            .activity_subscriptions()
            .await
            .unwrap()
            .is_empty()
    );

    let server = Server::start(answer(
        200,
        r#"{"data":{"subscription":{"subscription_id":"1"}}}"#,
    ))
    .await;
    app(&server)
        .update_activity_subscription("1", Some("new-tag"), None)
        .await
        .unwrap();
    let req = server.only_request();
    assert_eq!(req.method, Method::PUT);
    assert_eq!(req.target, "/2/activity/subscriptions/1");
    assert_eq!(req.json(), json!({"tag":"new-tag"}));
    let server = Server::start(answer(200, r#"{"data":{"deleted":true}}"#)).await;
    app(&server)
        .delete_activity_subscription("1")
        .await
        .unwrap();
    assert_eq!(server.only_request().method, Method::DELETE);
}

#[tokio::test]
async fn account_activity_subscriptions() {
    let server = Server::start(answer(200, r#"{"data":{"subscribed":true}}"#)).await;
    let client = server.client();
    client
        .subscribe_account_activity(&uid(BUSINESS), "1146654567674912769")
        .await
        .unwrap();
    assert!(
        client
            .account_activity_subscribed(&uid(BUSINESS), "1146654567674912769")
            .await
            .unwrap()
    );
    let seen = server.requests();
    assert_eq!(seen[0].method, Method::POST);
    assert_eq!(
        seen[0].target,
        "/2/account_activity/webhooks/1146654567674912769/subscriptions/all"
    );
    seen[0].assert_signed_by(&default_token());
    assert_eq!(seen[1].method, Method::GET);

    let server = Server::start(answer(
        200,
        r#"{"data":{"application_id":"13090192","webhook_id":"1146654567674912769","webhook_url":"https://bridge.example/webhooks/x","subscriptions":[{"user_id":"4337869213"},{"user_id":"40876567"}]}}"#,
    ))
    .await;
    let users = app(&server)
        .account_activity_subscriptions("1146654567674912769")
        .await
        .unwrap();
    assert_eq!(users, vec![uid(BUSINESS), uid(OTHER_BUSINESS)]);
    assert_eq!(
        server.only_request().target,
        "/2/account_activity/webhooks/1146654567674912769/subscriptions/all/list"
    );
    let server = Server::start(answer(200, r#"{"data":{"deleted":true}}"#)).await;
    app(&server)
        .unsubscribe_account_activity("1146654567674912769", &uid(BUSINESS))
        .await
        .unwrap();
    let req = server.only_request();
    assert_eq!(req.method, Method::DELETE);
    assert_eq!(
        req.target,
        "/2/account_activity/webhooks/1146654567674912769/subscriptions/4337869213/all"
    );
    assert_eq!(req.headers["authorization"], format!("Bearer {BEARER}"));
    let server = Server::start(answer(
        409,
        r#"{"errors":[{"code":355,"message":"Subscription already exists (DuplicateSubscriptionFailed)"}]}"#,
    ))
    .await;
    let e = server
        .client()
        .subscribe_account_activity(&uid(BUSINESS), "1146654567674912769")
        .await
        .unwrap_err();
    assert_eq!(e.reason(), Some(ManageReason::DuplicateSubscriptionFailed));
}
