//! `XClient` against a scripted fake of the X API on 127.0.0.1: what reaches X (method, path,
//! JSON body, a valid OAuth 1.0a signature) and how each answer is classified. The fake answers
//! with one script, or per path prefix with routes (media downloads and uploads: [`media`]).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chat;
mod dm_events;
mod history;
mod manage;
mod media;
mod oauth2_calls;
mod oauth2_token;
mod stream;
mod webhook_auth;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use url::Url;
use xdm_core::ids::XUserId;
use xdm_core::ports::{DmRequest, SentDm, XApi, XError};
use xdm_x::oauth1::{self, SignableRequest};
use xdm_x::{AccessToken, Consumer, XClient, XClientConfig};

const CONSUMER_KEY: &str = "xvz1evFS4wEEPTGEFPHBog";
const CONSUMER_SECRET: &str = "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw";
const BUSINESS: &str = "4337869213";
const OTHER_BUSINESS: &str = "40876567";
const CUSTOMER: &str = "3001969357";

fn uid(s: &str) -> XUserId {
    XUserId::parse(s).unwrap()
}

fn consumer() -> Consumer {
    Consumer::new(CONSUMER_KEY, CONSUMER_SECRET)
}

fn default_token() -> AccessToken {
    AccessToken::new("370773112-default", "default-secret")
}

fn other_token() -> AccessToken {
    AccessToken::new("40876567-other", "other-secret")
}

/// One request as the fake received it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    /// Path and query exactly as sent.
    target: String,
    host: String,
    headers: HeaderMap,
    /// Empty when it was larger than [`KEPT_BODY_BYTES`] (see `body_len`).
    body: Bytes,
    body_len: usize,
}

/// Request bodies above this are not kept (media segments: their route checks them on arrival,
/// and the memory test must not see the fake hoard them).
const KEPT_BODY_BYTES: usize = 64 * 1024;

impl Seen {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// The `Authorization: OAuth …` parameters, percent-decoded.
    fn oauth_params(&self) -> BTreeMap<String, String> {
        let header = self.headers["authorization"].to_str().unwrap();
        let list = header.strip_prefix("OAuth ").expect("an OAuth header");
        list.split(", ")
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                let v = v.strip_prefix('"').unwrap().strip_suffix('"').unwrap();
                let v = percent_encoding::percent_decode_str(v)
                    .decode_utf8()
                    .unwrap()
                    .into_owned();
                (k.to_owned(), v)
            })
            .collect()
    }

    /// The full URL as received (scheme http: the fake is plain http).
    fn url(&self) -> Url {
        Url::parse(&format!("http://{}{}", self.host, self.target)).unwrap()
    }

    /// Whether the request carries a valid OAuth 1.0a signature by `token`, recomputed from the
    /// URL received (query parameters included). For routes, which must not panic.
    fn signed_by(&self, token: &AccessToken) -> bool {
        if !self.headers.contains_key("authorization") {
            return false;
        }
        let p = self.oauth_params();
        let (Some(nonce), Some(timestamp), Some(signature)) = (
            p.get("oauth_nonce"),
            p.get("oauth_timestamp").and_then(|t| t.parse().ok()),
            p.get("oauth_signature"),
        ) else {
            return false;
        };
        let url = self.url();
        let request = SignableRequest {
            method: self.method.as_str(),
            url: &url,
            form_body: None,
        };
        p.get("oauth_token").map(String::as_str) == Some(token.token())
            && p.get("oauth_consumer_key").map(String::as_str) == Some(CONSUMER_KEY)
            && oauth1::sign_with(&request, &consumer(), Some(token), nonce, timestamp)
                .is_ok_and(|expected| expected.signature == *signature)
    }

    /// Recomputes the signature from what was received, with `token`, and checks the header.
    fn assert_signed_by(&self, token: &AccessToken) {
        let p = self.oauth_params();
        assert_eq!(p["oauth_consumer_key"], CONSUMER_KEY);
        assert_eq!(p["oauth_signature_method"], "HMAC-SHA1");
        assert_eq!(p["oauth_version"], "1.0");
        assert_eq!(p["oauth_token"], token.token());
        assert!(p["oauth_nonce"].len() >= 16);
        let timestamp: u64 = p["oauth_timestamp"].parse().unwrap();
        let url = self.url();
        let request = SignableRequest {
            method: self.method.as_str(),
            url: &url,
            form_body: None,
        };
        let expected = oauth1::sign_with(
            &request,
            &consumer(),
            Some(token),
            &p["oauth_nonce"],
            timestamp,
        )
        .unwrap();
        assert_eq!(p["oauth_signature"], expected.signature, "signature");
    }
}

/// The scripted answer.
#[derive(Clone)]
struct Script {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

fn answer(status: u16, body: &str) -> Script {
    Script {
        status,
        headers: vec![("content-type", "application/json".into())],
        body: body.into(),
        delay: Duration::ZERO,
    }
}

/// A route's answer: built from the request as received.
type Responder = Arc<dyn Fn(&Seen) -> Response + Send + Sync>;

#[derive(Clone)]
struct Fake {
    script: Script,
    /// Path-prefix routes, tried in order before the script.
    routes: Arc<Vec<(String, Responder)>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn handle(
    State(fake): State<Fake>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let target = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let body_len = body.len();
    let mut seen = Seen {
        method,
        target,
        host,
        headers: owned_headers(&headers),
        body,
        body_len,
    };
    let routed = fake
        .routes
        .iter()
        .find(|(prefix, _)| seen.target.starts_with(prefix.as_str()))
        .map(|(_, respond)| respond(&seen));
    if seen.body_len > KEPT_BODY_BYTES {
        seen.body = Bytes::new();
    }
    fake.seen.lock().unwrap().push(seen);
    if let Some(response) = routed {
        return response;
    }
    let s = fake.script;
    if !s.delay.is_zero() {
        tokio::time::sleep(s.delay).await;
    }
    let mut response = (StatusCode::from_u16(s.status).unwrap(), s.body).into_response();
    for (k, v) in s.headers {
        response
            .headers_mut()
            .insert(k, HeaderValue::from_str(&v).unwrap());
    }
    response
}

/// A copy of `headers` in allocations of its own: hyper parses header values as slices of its
/// read buffer (up to ~400 KiB), so keeping the originals would keep those buffers alive.
fn owned_headers(headers: &HeaderMap) -> HeaderMap {
    headers
        .iter()
        .map(|(name, value)| {
            let mut copy = HeaderValue::from_bytes(value.as_bytes()).unwrap();
            copy.set_sensitive(value.is_sensitive());
            (name.clone(), copy)
        })
        .collect()
}

struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    async fn start(script: Script) -> Self {
        Self::with_routes(script, Vec::new()).await
    }

    /// A fake answering `routes` by path prefix, and anything else with 404.
    async fn routed(routes: Vec<(&str, Responder)>) -> Self {
        Self::with_routes(answer(404, ""), routes).await
    }

    async fn with_routes(script: Script, routes: Vec<(&str, Responder)>) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let routes = routes
            .into_iter()
            .map(|(prefix, respond)| (prefix.to_owned(), respond))
            .collect();
        let app = Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::max(16 * 1024 * 1024))
            .with_state(Fake {
                script,
                routes: Arc::new(routes),
                seen: seen.clone(),
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, seen }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn client(&self) -> XClient {
        client_for(&self.url(), Duration::from_secs(20))
    }

    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn only_request(&self) -> Seen {
        let seen = self.seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "exactly one request expected");
        seen[0].clone()
    }
}

fn client_for(base: &str, timeout: Duration) -> XClient {
    let config = XClientConfig::oauth1(base, consumer(), default_token())
        .unwrap()
        .with_account_token(uid(OTHER_BUSINESS), other_token())
        .unwrap()
        .with_timeouts(Duration::from_secs(5), timeout);
    XClient::new(config).unwrap()
}

fn dm(text: &str) -> DmRequest {
    DmRequest {
        business: uid(BUSINESS),
        recipient: uid(CUSTOMER),
        text: Some(text.into()),
        media_id: None,
    }
}

const CREATED: &str = r#"{"data":{"dm_conversation_id":"3001969357-4337869213","dm_event_id":"1122334455667788990"}}"#;

async fn send_error(script: Script) -> XError {
    let server = Server::start(script).await;
    server.client().send_dm(&dm("hello")).await.unwrap_err()
}

#[tokio::test]
async fn sends_a_text_dm_signed_with_the_default_token() {
    let server = Server::start(answer(201, CREATED)).await;
    let sent = server
        .client()
        .send_dm(&dm("Hola, ¿cómo estás? 👋 & more"))
        .await
        .unwrap();
    assert_eq!(
        sent,
        SentDm {
            dm_event_id: "1122334455667788990".into()
        }
    );
    let req = server.only_request();
    assert_eq!(req.method, Method::POST);
    assert_eq!(req.target, "/2/dm_conversations/with/3001969357/messages");
    assert_eq!(req.headers["content-type"], "application/json");
    assert_eq!(
        req.json(),
        serde_json::json!({"text": "Hola, ¿cómo estás? 👋 & more"})
    );
    req.assert_signed_by(&default_token());
}

#[tokio::test]
async fn sends_media_with_and_without_text() {
    let server = Server::start(answer(201, CREATED)).await;
    let client = server.client();
    let mut with_text = dm("the receipt");
    with_text.media_id = Some("1880028106020515840".into());
    client.send_dm(&with_text).await.unwrap();
    let mut media_only = dm("");
    media_only.text = None;
    media_only.media_id = Some("1880028106020515840".into());
    client.send_dm(&media_only).await.unwrap();

    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(
        seen[0].json(),
        serde_json::json!({"text": "the receipt", "attachments": [{"media_id": "1880028106020515840"}]})
    );
    assert_eq!(
        seen[1].json(),
        serde_json::json!({"attachments": [{"media_id": "1880028106020515840"}]})
    );
}

#[tokio::test]
async fn an_empty_dm_is_refused_without_calling_x() {
    let server = Server::start(answer(201, CREATED)).await;
    let e = server.client().send_dm(&dm("")).await.unwrap_err();
    assert!(matches!(e, XError::Invalid(_)), "{e:?}");
    assert!(server.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn each_business_account_signs_with_its_own_token() {
    let server = Server::start(answer(201, CREATED)).await;
    let mut request = dm("hi");
    request.business = uid(OTHER_BUSINESS);
    server.client().send_dm(&request).await.unwrap();
    server.only_request().assert_signed_by(&other_token());
}

#[tokio::test]
async fn a_base_url_with_a_prefix_and_trailing_slash_works() {
    let server = Server::start(answer(201, CREATED)).await;
    let client = client_for(&format!("{}/x-api/", server.url()), Duration::from_secs(20));
    client.send_dm(&dm("hi")).await.unwrap();
    let req = server.only_request();
    assert_eq!(
        req.target,
        "/x-api/2/dm_conversations/with/3001969357/messages"
    );
    req.assert_signed_by(&default_token());
}

#[tokio::test]
async fn a_rate_limit_carries_the_reset_time() {
    let mut script = answer(
        429,
        r#"{"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank","status":429}"#,
    );
    script.headers.extend([
        ("x-rate-limit-limit", "15".to_owned()),
        ("x-rate-limit-remaining", "0".to_owned()),
        ("x-rate-limit-reset", "1775080934".to_owned()),
    ]);
    let e = send_error(script).await;
    assert_eq!(
        e,
        XError::RateLimited {
            reset_at_s: Some(1_775_080_934)
        }
    );
    assert!(e.is_retryable());
}

#[tokio::test]
async fn the_usage_cap_is_not_a_rate_limit() {
    for host in ["api.x.com", "api.twitter.com"] {
        let mut script = answer(
            429,
            &format!(
                r#"{{"title":"UsageCapExceeded","detail":"Usage cap exceeded: Monthly product cap","type":"https://{host}/2/problems/usage-capped","period":"Monthly","scope":"Product"}}"#
            ),
        );
        script
            .headers
            .push(("x-rate-limit-reset", "1775080934".to_owned()));
        let e = send_error(script).await;
        assert_eq!(
            e,
            XError::UsageCapped("Usage cap exceeded: Monthly product cap".into())
        );
        assert!(!e.is_retryable());
    }
}

#[tokio::test]
async fn forbidden_unauthorized_invalid_and_not_found() {
    let e = send_error(answer(
        403,
        r#"{"detail":"You are not permitted to send a DM to this user.","type":"https://api.x.com/2/problems/not-authorized-for-resource","title":"Forbidden","status":403}"#,
    ))
    .await;
    assert_eq!(
        e,
        XError::Forbidden("You are not permitted to send a DM to this user.".into())
    );

    let mut unauthorized = answer(401, "");
    unauthorized.headers.clear();
    let e = send_error(unauthorized).await;
    assert!(matches!(e, XError::Unauthorized(_)), "{e:?}");
    assert!(!e.is_retryable());

    let e = send_error(answer(
        400,
        r#"{"errors":[{"parameters":{"text":[""]},"message":"text must not be empty"}],"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","type":"https://api.x.com/2/problems/invalid-request"}"#,
    ))
    .await;
    assert_eq!(
        e,
        XError::Invalid("One or more parameters to your request was invalid.".into())
    );

    let e = send_error(answer(404, "")).await;
    assert!(matches!(e, XError::NotFound(_)), "{e:?}");
}

#[tokio::test]
async fn server_errors_and_odd_successes_are_unavailable() {
    let e = send_error(answer(
        500,
        r#"{"title":"Internal Server Error","type":"https://api.x.com/2/problems/internal-error"}"#,
    ))
    .await;
    assert!(
        matches!(&e, XError::Unavailable(m) if m.contains("500")),
        "{e:?}"
    );
    assert!(e.is_retryable());

    let mut html = answer(503, "<html>down</html>");
    html.headers = vec![("content-type", "text/html".into())];
    assert!(matches!(send_error(html).await, XError::Unavailable(_)));

    for body in ["", "{}", r#"{"data":{}}"#, "not json"] {
        let server = Server::start(answer(201, body)).await;
        let e = server.client().send_dm(&dm("hi")).await.unwrap_err();
        assert!(
            matches!(&e, XError::Unavailable(m) if m.contains("unexpected body")),
            "{body}: {e:?}"
        );
    }
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_unavailable() {
    let mut slow = answer(201, CREATED);
    slow.delay = Duration::from_secs(5);
    let server = Server::start(slow).await;
    let client = client_for(&server.url(), Duration::from_millis(300));
    let e = client.send_dm(&dm("hi")).await.unwrap_err();
    assert!(
        matches!(&e, XError::Unavailable(m) if m.contains("in time")),
        "{e:?}"
    );

    // A port nobody listens on any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = client_for(&format!("http://{addr}"), Duration::from_secs(5));
    let e = client.send_dm(&dm("hi")).await.unwrap_err();
    assert!(matches!(e, XError::Unavailable(_)), "{e:?}");
}

#[tokio::test]
async fn looks_a_user_up_with_a_signed_query() {
    let server = Server::start(answer(
        200,
        r#"{"data":{"id":"3001969357","name":"Jordan Brinks","username":"furiouscamper",
            "profile_image_url":"https://pbs.twimg.com/profile_images/851526626785480705/cW4WTi7C_normal.jpg",
            "verified":false,"public_metrics":{"followers_count":22,"following_count":45,"tweet_count":494}}}"#,
    ))
    .await;
    let profile = server
        .client()
        .user(&uid(BUSINESS), &uid(CUSTOMER))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(profile.id, uid(CUSTOMER));
    assert_eq!(profile.name.as_deref(), Some("Jordan Brinks"));
    assert_eq!(profile.username.as_deref(), Some("furiouscamper"));
    assert_eq!(profile.verified, Some(false));
    assert_eq!(profile.followers_count, Some(22));
    assert_eq!(
        profile.profile_image_url.as_deref(),
        Some("https://pbs.twimg.com/profile_images/851526626785480705/cW4WTi7C_normal.jpg")
    );

    let req = server.only_request();
    assert_eq!(req.method, Method::GET);
    assert_eq!(
        req.target,
        "/2/users/3001969357?user.fields=name,username,profile_image_url,verified,public_metrics"
    );
    assert!(req.body.is_empty());
    req.assert_signed_by(&default_token());
}

#[tokio::test]
async fn a_missing_user_is_none() {
    let server = Server::start(answer(
        200,
        r#"{"errors":[{"value":"3001969357","detail":"Could not find user with id: [3001969357].","title":"Not Found Error","resource_type":"user","parameter":"id","resource_id":"3001969357","type":"https://api.x.com/2/problems/resource-not-found"}]}"#,
    ))
    .await;
    let found = server
        .client()
        .user(&uid(OTHER_BUSINESS), &uid(CUSTOMER))
        .await
        .unwrap();
    assert_eq!(found, None);
    server.only_request().assert_signed_by(&other_token());
}

#[tokio::test]
async fn user_lookup_errors_are_classified() {
    let server = Server::start(answer(200, r#"{"meta":{}}"#)).await;
    let e = server
        .client()
        .user(&uid(BUSINESS), &uid(CUSTOMER))
        .await
        .unwrap_err();
    assert!(matches!(e, XError::Unavailable(_)), "{e:?}");

    let mut limited = answer(429, "");
    limited
        .headers
        .push(("x-rate-limit-reset", "1775080999".to_owned()));
    let server = Server::start(limited).await;
    let e = server
        .client()
        .user(&uid(BUSINESS), &uid(CUSTOMER))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        XError::RateLimited {
            reset_at_s: Some(1_775_080_999)
        }
    );

    let server = Server::start(answer(
        200,
        r#"{"data":{"id":"1","name":"Someone Else","username":"else"}}"#,
    ))
    .await;
    let e = server
        .client()
        .user(&uid(BUSINESS), &uid(CUSTOMER))
        .await
        .unwrap_err();
    assert!(matches!(e, XError::Unavailable(_)), "{e:?}");
}
