//! `ConnectClient` against a tiny Connect stand-in (axum on 127.0.0.1:0) that records what
//! arrives and answers scripted errors. The stand-in also plays S3 for the attachment tests
//! (`attachments.rs`): pre-signed PUTs are checked header by header and hashed as they stream.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use xdm_amazon_connect::{ConfigError, ConnectClient, ConnectConfig};
use xdm_core::ids::{ConnectionToken, ContactId, ParticipantToken};
use xdm_core::ports::{ChatMessage, ConnectApi, ConnectError, MessageContentType, StartChat};

pub(crate) const INSTANCE: &str = "30b0e238-b3bd-4f61-9f04-c0b24e4a2f74";
pub(crate) const FLOW: &str = "846ec553-a005-41c0-8341-000000000000";
pub(crate) const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:connect-chat-out";
const ACCESS_KEY: &str = "AKIDXDMTEST";
const SECRET_KEY: &str = "xdm/test/secret";
/// The signature in the fake's pre-signed URLs: must never show up in errors.
pub(crate) const PRESIGNED_SECRET: &str = "presigned-secret-signature";
/// The attachment id StartAttachmentUpload hands out.
pub(crate) const UPLOAD_ID: &str = "att-1";

#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Recorded {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_else(|| panic!("no {name} header on {}", self.path))
    }
}

/// (status, error code or none, body)
pub(crate) type Scripted = (u16, Option<&'static str>, &'static str);

/// What the fake S3 received on a PUT: headers, and the body as length + SHA-256 (never kept).
#[derive(Debug, Clone)]
pub(crate) struct S3Put {
    pub(crate) headers: HeaderMap,
    pub(crate) length: u64,
    pub(crate) sha256: Vec<u8>,
    /// The body broke off (the client aborted).
    pub(crate) aborted: bool,
    /// The status the fake answered.
    pub(crate) status: u16,
}

/// How the fake S3 frames a download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Content-Length` = the body's real length.
    Length,
    /// Chunked, no length.
    Chunked,
    /// Chunked; sends the body then hangs.
    Stall,
}

/// An attachment the fake can serve: GetAttachment announces `announced`; the GET serves `body`.
#[derive(Debug, Clone)]
pub(crate) struct Download {
    pub(crate) announced: i64,
    pub(crate) body: Bytes,
    pub(crate) content_type: Option<&'static str>,
    pub(crate) framing: Framing,
    /// An S3 error instead of the body.
    pub(crate) error: Option<(u16, &'static str)>,
}

#[derive(Default)]
pub(crate) struct FakeState {
    requests: Mutex<Vec<Recorded>>,
    errors: Mutex<HashMap<String, Scripted>>,
    /// How long the fake waits before answering a path.
    delays: Mutex<HashMap<String, std::time::Duration>>,
    base: OnceLock<String>,
    /// `HeadersToInclude` of StartAttachmentUpload.
    pub(crate) upload_headers: Mutex<BTreeMap<String, String>>,
    /// Headers S3 requires besides `HeadersToInclude` (a signature Connect got wrong).
    pub(crate) s3_also_requires: Mutex<Vec<(String, String)>>,
    /// An S3 error answered to PUTs whose headers are fine.
    pub(crate) s3_put_error: Mutex<Option<(u16, &'static str)>>,
    pub(crate) puts: Mutex<Vec<S3Put>>,
    pub(crate) downloads: Mutex<HashMap<String, Download>>,
}

fn s3_error_xml(code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>\
         <StringToSign>AWS4-HMAC-SHA256 {PRESIGNED_SECRET}</StringToSign><RequestId>R1</RequestId></Error>"
    )
}

fn xml_response(status: u16, body: String) -> Response {
    let mut resp = (StatusCode::from_u16(status).unwrap(), body).into_response();
    resp.headers_mut()
        .insert("content-type", "application/xml".parse().unwrap());
    resp
}

/// The fake S3 PUT: streams and hashes the body, then checks every required header the way a
/// SigV4 pre-signed URL would (each present once, value byte for byte), a `Content-Length`
/// and no chunking; answers 403 SignatureDoesNotMatch otherwise.
async fn s3_put(
    State(state): State<Arc<FakeState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    state.requests.lock().unwrap().push(Recorded {
        method: Method::PUT,
        path: uri.path().to_owned(),
        headers: headers.clone(),
        body: Bytes::new(),
    });
    let mut hasher = Sha256::new();
    let mut length = 0u64;
    let mut aborted = false;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                hasher.update(&chunk);
                length += chunk.len() as u64;
            }
            Err(_) => {
                aborted = true;
                break;
            }
        }
    }
    let mut required: Vec<(String, String)> = state
        .upload_headers
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    required.extend(state.s3_also_requires.lock().unwrap().iter().cloned());
    let signature_ok = required.iter().all(|(name, value)| {
        let values: Vec<_> = headers.get_all(name.as_str()).iter().collect();
        values.len() == 1 && values[0].as_bytes() == value.as_bytes()
    }) && headers.get_all("content-length").iter().count() == 1
        && !headers.contains_key("transfer-encoding")
        && uri.query().is_some_and(|q| q.contains(PRESIGNED_SECRET));
    let (status, resp) = if aborted {
        (
            400,
            xml_response(
                400,
                s3_error_xml(
                    "IncompleteBody",
                    "You did not provide the number of bytes specified by the Content-Length HTTP header.",
                ),
            ),
        )
    } else if !signature_ok {
        (
            403,
            xml_response(
                403,
                s3_error_xml(
                    "SignatureDoesNotMatch",
                    "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
                ),
            ),
        )
    } else if let Some((status, code)) = *state.s3_put_error.lock().unwrap() {
        (status, xml_response(status, s3_error_xml(code, "scripted")))
    } else {
        let mut resp = StatusCode::OK.into_response();
        resp.headers_mut().insert(
            "etag",
            "\"d41d8cd98f00b204e9800998ecf8427e\"".parse().unwrap(),
        );
        (200, resp)
    };
    state.puts.lock().unwrap().push(S3Put {
        headers,
        length,
        sha256: hasher.finalize().to_vec(),
        aborted,
        status,
    });
    resp
}

/// The fake S3 GET of `/s3/download/{id}`.
async fn s3_get(State(state): State<Arc<FakeState>>, uri: Uri) -> Response {
    let id = uri.path().rsplit('/').next().unwrap_or_default().to_owned();
    let Some(download) = state.downloads.lock().unwrap().get(&id).cloned() else {
        return xml_response(
            404,
            s3_error_xml("NoSuchKey", "The specified key does not exist."),
        );
    };
    if !uri.query().is_some_and(|q| q.contains(PRESIGNED_SECRET)) {
        return xml_response(403, s3_error_xml("AccessDenied", "Access Denied"));
    }
    if let Some((status, code)) = download.error {
        return xml_response(status, s3_error_xml(code, "scripted"));
    }
    let body = match download.framing {
        Framing::Length => Body::from(download.body.clone()),
        Framing::Chunked | Framing::Stall => {
            let chunks: Vec<Result<Bytes, std::io::Error>> = download
                .body
                .chunks(7000)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            let stream = futures_util::stream::iter(chunks);
            if download.framing == Framing::Stall {
                Body::from_stream(stream.chain(futures_util::stream::pending()))
            } else {
                Body::from_stream(stream)
            }
        }
    };
    let mut resp = Response::new(body);
    if let Some(ct) = download.content_type {
        resp.headers_mut()
            .insert("content-type", ct.parse().unwrap());
    }
    resp
}

async fn handle(
    State(state): State<Arc<FakeState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let json_body: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    state.requests.lock().unwrap().push(Recorded {
        method: method.clone(),
        path: path.clone(),
        headers,
        body,
    });
    let delay = state.delays.lock().unwrap().get(&path).copied();
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    if let Some((status, code, body)) = state.errors.lock().unwrap().get(&path).copied() {
        let status = StatusCode::from_u16(status).unwrap();
        let mut resp = (status, body.to_owned()).into_response();
        if let Some(code) = code {
            resp.headers_mut().insert(
                "x-amzn-ErrorType",
                format!("{code}:http://internal.amazon.com/coral/")
                    .parse()
                    .unwrap(),
            );
        }
        return resp;
    }
    let base = state.base.get().cloned().unwrap_or_default();
    let ok = |v: serde_json::Value| (StatusCode::OK, axum::Json(v)).into_response();
    match (method.as_str(), path.as_str()) {
        ("PUT", "/contact/chat") => ok(serde_json::json!({
            "ContactId": "da81f813-70b0-496e-91ed-70f48771c522",
            "ParticipantId": "p-1",
            "ParticipantToken": "participant-token-secret",
        })),
        ("POST", "/contact/start-streaming") => ok(serde_json::json!({"StreamingId": "s-1"})),
        ("POST", "/domains/xdm-demo/profiles/search") => ok(serde_json::json!({"Items": []})),
        ("POST", "/domains/xdm-demo/profiles") => ok(serde_json::json!({"ProfileId": "p-9"})),
        ("POST", "/contact/stop") => ok(serde_json::json!({})),
        ("POST", "/participant/connection") => ok(serde_json::json!({
            "ConnectionCredentials": {
                "ConnectionToken": "connection-token-secret",
                "Expiry": "2019-11-08T02:41:28.172Z",
            }
        })),
        ("POST", "/participant/message") => ok(serde_json::json!({
            "Id": "m-1", "AbsoluteTime": "2026-04-01T22:20:13.466Z"
        })),
        ("POST", "/participant/event") => ok(serde_json::json!({
            "Id": "e-1", "AbsoluteTime": "2026-04-01T22:20:14.001Z"
        })),
        ("POST", "/participant/disconnect") => ok(serde_json::json!({})),
        ("POST", "/participant/start-attachment-upload") => ok(serde_json::json!({
            "AttachmentId": UPLOAD_ID,
            "UploadMetadata": {
                "Url": format!(
                    "{base}/s3/connect-bucket/attachments/{UPLOAD_ID}?X-Amz-Algorithm=AWS4-HMAC-SHA256\
                     &X-Amz-Credential=ASIAXDM&X-Amz-Signature={PRESIGNED_SECRET}"
                ),
                "UrlExpiry": "2026-04-01T22:25:13.466Z",
                "HeadersToInclude": *state.upload_headers.lock().unwrap(),
            }
        })),
        ("POST", "/participant/complete-attachment-upload") => ok(serde_json::json!({})),
        ("POST", "/participant/attachment") => {
            let id = json_body
                .as_ref()
                .and_then(|b| b["AttachmentId"].as_str())
                .unwrap_or_default()
                .to_owned();
            match state.downloads.lock().unwrap().get(&id) {
                Some(d) => ok(serde_json::json!({
                    "Url": format!("{base}/s3/download/{id}?X-Amz-Signature={PRESIGNED_SECRET}"),
                    "UrlExpiry": "2026-04-01T22:25:13.466Z",
                    "AttachmentSizeInBytes": d.announced,
                })),
                None => (StatusCode::NOT_FOUND, "no such attachment").into_response(),
            }
        }
        _ => (StatusCode::NOT_FOUND, "no route").into_response(),
    }
}

pub(crate) struct Fake {
    pub(crate) base: String,
    pub(crate) state: Arc<FakeState>,
}

impl Fake {
    pub(crate) async fn start() -> Self {
        let state = Arc::new(FakeState::default());
        let app = Router::new()
            .route("/s3/{*key}", axum::routing::put(s3_put).get(s3_get))
            .fallback(handle)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        state.base.set(base.clone()).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base, state }
    }

    pub(crate) fn script(&self, path: &str, scripted: Scripted) {
        self.state
            .errors
            .lock()
            .unwrap()
            .insert(path.to_owned(), scripted);
    }

    pub(crate) fn delay(&self, path: &str, delay: std::time::Duration) {
        self.state
            .delays
            .lock()
            .unwrap()
            .insert(path.to_owned(), delay);
    }

    pub(crate) fn unscript(&self, path: &str) {
        self.state.errors.lock().unwrap().remove(path);
    }

    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    pub(crate) fn last(&self, path: &str) -> Recorded {
        self.requests()
            .into_iter()
            .rev()
            .find(|r| r.path == path)
            .unwrap_or_else(|| panic!("nothing reached {path}"))
    }

    pub(crate) fn count(&self, path: &str) -> usize {
        self.requests().iter().filter(|r| r.path == path).count()
    }

    pub(crate) fn puts(&self) -> Vec<S3Put> {
        self.state.puts.lock().unwrap().clone()
    }
}

/// An explicit SdkConfig (no environment, no IMDS): region, static credentials, the fake as
/// endpoint, no SDK retries (scripted errors must surface at once).
pub(crate) fn sdk_config(endpoint: Option<&str>) -> SdkConfig {
    let mut b = SdkConfig::builder()
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            ACCESS_KEY, SECRET_KEY, None, None, "test",
        )))
        .behavior_version(BehaviorVersion::latest())
        .retry_config(RetryConfig::disabled());
    if let Some(endpoint) = endpoint {
        b = b.endpoint_url(endpoint);
    }
    b.build()
}

pub(crate) fn no_env(_: &str) -> Option<String> {
    None
}

pub(crate) fn client(fake: &Fake) -> ConnectClient {
    let mut config = ConnectConfig::new(INSTANCE, FLOW, TOPIC);
    config.chat_duration_minutes = Some(1500);
    ConnectClient::with_env(config, &sdk_config(Some(&fake.base)), no_env).unwrap()
}

fn start_chat_request() -> StartChat {
    StartChat {
        contact_flow_id: None,
        display_name: "Elizabeth Fuentes".into(),
        attributes: BTreeMap::from([
            ("Channel".to_owned(), "X".to_owned()),
            ("customerId".to_owned(), "55125386".to_owned()),
            ("customerName".to_owned(), "Elizabeth Fuentes".to_owned()),
        ]),
        initial_message: ChatMessage::plain("Hola2"),
        client_token: "x-dm-2039459599745679612".into(),
        customer_id: None,
        continues: None,
    }
}

/// Re-signs what arrived (method, path, host, content-type, body, x-amz-date) and compares:
/// the signature covers exactly the bytes that were sent.
fn assert_signature_matches_the_wire(r: &Recorded) {
    let auth = r.header("authorization");
    let date = r.header("x-amz-date");
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let at: SystemTime = time::PrimitiveDateTime::parse(date, &format)
        .unwrap()
        .assume_utc()
        .into();
    let uri = format!("http://{}{}", r.header("host"), r.path);
    let identity = Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("connect")
        .time(at)
        .settings(aws_sigv4::http_request::SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable = aws_sigv4::http_request::SignableRequest::new(
        r.method.as_str(),
        &uri,
        [("content-type", r.header("content-type"))].into_iter(),
        aws_sigv4::http_request::SignableBody::Bytes(&r.body),
    )
    .unwrap();
    let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
        .unwrap()
        .into_parts();
    let expected = instructions
        .headers()
        .find(|(name, _)| *name == "authorization")
        .map(|(_, v)| v.to_owned())
        .unwrap();
    assert_eq!(auth, expected);
}

#[tokio::test]
async fn start_chat_is_a_signed_put_with_the_expected_body() {
    let fake = Fake::start().await;
    let client = client(&fake);
    let started = client.start_chat(&start_chat_request()).await.unwrap();
    assert_eq!(
        started.contact_id.as_str(),
        "da81f813-70b0-496e-91ed-70f48771c522"
    );
    assert_eq!(started.participant_id, "p-1");
    assert_eq!(
        started.participant_token.expose(),
        "participant-token-secret"
    );

    let r = fake.last("/contact/chat");
    assert_eq!(r.method, Method::PUT);
    let auth = r.header("authorization");
    assert!(
        auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")),
        "{auth}"
    );
    assert!(auth.contains("/us-east-1/connect/aws4_request"), "{auth}");
    assert!(
        auth.contains("SignedHeaders=content-type;host;x-amz-date"),
        "{auth}"
    );
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(
        r.json(),
        serde_json::json!({
            "InstanceId": INSTANCE,
            "ContactFlowId": FLOW,
            "Attributes": {"Channel": "X", "customerId": "55125386", "customerName": "Elizabeth Fuentes"},
            "ParticipantDetails": {"DisplayName": "Elizabeth Fuentes"},
            "InitialMessage": {"ContentType": "text/plain", "Content": "Hola2"},
            "ClientToken": "x-dm-2039459599745679612",
            "ChatDurationInMinutes": 1500,
            "SupportedMessagingContentTypes": ["text/plain", "text/markdown"],
        })
    );
    assert_signature_matches_the_wire(&r);
}

#[tokio::test]
async fn a_chat_can_start_with_a_customer_profile_and_continue_an_ended_chat() {
    let fake = Fake::start().await;
    let client = client(&fake);
    let mut request = start_chat_request();
    request.customer_id = Some("a1b2c3".into());
    request.continues = Some(
        xdm_core::ids::InitialContactId::parse("0b7f7a9c-3c1d-4d3e-9f1a-5f6e7d8c9b0a").unwrap(),
    );
    client.start_chat(&request).await.unwrap();
    let body = fake.last("/contact/chat").json();
    assert_eq!(body["CustomerId"], "a1b2c3");
    assert_eq!(
        body["PersistentChat"],
        serde_json::json!({
            "RehydrationType": "ENTIRE_PAST_SESSION",
            "SourceContactId": "0b7f7a9c-3c1d-4d3e-9f1a-5f6e7d8c9b0a"
        })
    );
}

#[tokio::test]
async fn customer_profiles_calls_are_signed_for_their_service_and_domain() {
    let fake = Fake::start().await;
    let mut config = ConnectConfig::new(INSTANCE, FLOW, TOPIC);
    config.profiles_domain = Some("xdm-demo".into());
    let with_domain =
        ConnectClient::with_env(config, &sdk_config(Some(&fake.base)), no_env).unwrap();
    let customer = xdm_core::profile::XProfile {
        name: Some("Elizabeth Fuentes".into()),
        username: Some("ElizabethFue12".into()),
        ..xdm_core::profile::XProfile::unknown(xdm_core::ids::XUserId::parse("55125386").unwrap())
    };
    let found = with_domain
        .customer_profile(&customer)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, "p-9");
    assert_eq!(found.change, xdm_core::ports::ProfileChange::Created);

    let search = fake.last("/domains/xdm-demo/profiles/search");
    assert!(
        search
            .header("authorization")
            .contains("/us-east-1/profile/aws4_request"),
        "{}",
        search.header("authorization")
    );
    assert_eq!(
        search.json(),
        serde_json::json!({"KeyName": "_account", "Values": ["x:55125386"]})
    );
    let created = fake.last("/domains/xdm-demo/profiles");
    assert_eq!(created.method, Method::POST);
    assert_eq!(created.json()["AccountNumber"], "x:55125386");
    assert_eq!(created.json()["FirstName"], "Elizabeth Fuentes");

    // Without a domain there is no call at all.
    let plain = client(&fake);
    assert_eq!(plain.customer_profile(&customer).await.unwrap(), None);
}

#[tokio::test]
async fn streaming_and_stop_use_the_configured_instance_and_topic() {
    let fake = Fake::start().await;
    let client = client(&fake);
    let contact = ContactId::parse("c-42").unwrap();
    client
        .start_streaming(&contact, "stream-token")
        .await
        .unwrap();
    client.stop_contact(&contact).await.unwrap();

    let r = fake.last("/contact/start-streaming");
    assert_eq!(r.method, Method::POST);
    assert_eq!(
        r.json(),
        serde_json::json!({
            "InstanceId": INSTANCE,
            "ContactId": "c-42",
            "ChatStreamingConfiguration": {"StreamingEndpointArn": TOPIC},
            "ClientToken": "stream-token",
        })
    );
    assert_signature_matches_the_wire(&r);

    let r = fake.last("/contact/stop");
    assert_eq!(r.method, Method::POST);
    assert_eq!(
        r.json(),
        serde_json::json!({"ContactId": "c-42", "InstanceId": INSTANCE})
    );
    assert_signature_matches_the_wire(&r);
}

#[tokio::test]
async fn participant_calls_carry_the_bearer_tokens() {
    let fake = Fake::start().await;
    let client = client(&fake);

    let creds = client
        .connect_participant(&ParticipantToken::new("participant-token-secret"))
        .await
        .unwrap();
    assert_eq!(creds.token.expose(), "connection-token-secret");
    assert_eq!(creds.expires_at_ms, Some(1_573_180_888_172));
    let r = fake.last("/participant/connection");
    assert_eq!(r.header("x-amz-bearer"), "participant-token-secret");
    assert_eq!(
        r.json(),
        serde_json::json!({"Type": ["CONNECTION_CREDENTIALS"], "ConnectParticipant": true})
    );

    let connection = ConnectionToken::new("connection-token-secret");
    let message = ChatMessage {
        content_type: MessageContentType::Markdown,
        content: "**hola**".into(),
    };
    client
        .send_message(&connection, &message, "x-dm-1-part-0")
        .await
        .unwrap();
    let r = fake.last("/participant/message");
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.header("x-amz-bearer"), "connection-token-secret");
    assert_eq!(r.header("content-type"), "application/json");
    assert!(
        !r.headers.contains_key("authorization"),
        "SendMessage is authenticated by the bearer token alone, not signed"
    );
    assert_eq!(
        r.json(),
        serde_json::json!({"ContentType": "text/markdown", "Content": "**hola**", "ClientToken": "x-dm-1-part-0"})
    );
    let sent = client
        .participant_sends()
        .send_message(&connection, "text/plain", "hi", "x-dm-2-part-0")
        .await
        .unwrap();
    assert_eq!(sent.id.as_deref(), Some("m-1"));
    assert_eq!(sent.absolute_time_ms, Some(1_775_082_013_466));

    let id = client
        .send_event(
            &connection,
            "application/vnd.amazonaws.connect.event.typing",
            None,
            "typing-1",
        )
        .await
        .unwrap();
    assert_eq!(id.as_deref(), Some("e-1"));
    let r = fake.last("/participant/event");
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.header("x-amz-bearer"), "connection-token-secret");
    assert_eq!(r.header("content-type"), "application/json");
    assert!(!r.headers.contains_key("authorization"));
    assert_eq!(
        r.json(),
        serde_json::json!({
            "ContentType": "application/vnd.amazonaws.connect.event.typing",
            "ClientToken": "typing-1"
        })
    );
    client
        .send_event(
            &connection,
            "application/vnd.amazonaws.connect.event.message.read",
            Some(r#"{"messageId":"m-1"}"#),
            "read-1",
        )
        .await
        .unwrap();
    assert_eq!(
        fake.last("/participant/event").json(),
        serde_json::json!({
            "ContentType": "application/vnd.amazonaws.connect.event.message.read",
            "Content": "{\"messageId\":\"m-1\"}",
            "ClientToken": "read-1"
        })
    );

    client.disconnect(&connection, "bye-1").await.unwrap();
    let r = fake.last("/participant/disconnect");
    assert_eq!(r.header("x-amz-bearer"), "connection-token-secret");
    assert_eq!(r.json(), serde_json::json!({"ClientToken": "bye-1"}));
}

#[tokio::test]
async fn scripted_errors_map_to_connect_errors() {
    let fake = Fake::start().await;
    let client = client(&fake);
    let connection = ConnectionToken::new("connection-token-secret");
    let contact = ContactId::parse("c-42").unwrap();

    fake.script(
        "/participant/message",
        (
            403,
            Some("AccessDeniedException"),
            r#"{"message":"Access denied: the chat has already been terminated"}"#,
        ),
    );
    let err = client
        .send_message(&connection, &ChatMessage::plain("hi"), "t-1")
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::ChatEnded(_)), "{err:?}");

    fake.script(
        "/participant/message",
        (
            429,
            Some("ThrottlingException"),
            r#"{"message":"Rate exceeded"}"#,
        ),
    );
    let err = client
        .send_message(&connection, &ChatMessage::plain("hi"), "t-2")
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Throttled(_)), "{err:?}");

    fake.script(
        "/participant/message",
        (
            400,
            Some("ValidationException"),
            r#"{"message":"Content too long"}"#,
        ),
    );
    let err = client
        .send_message(&connection, &ChatMessage::plain("hi"), "t-3")
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Invalid(_)), "{err:?}");

    fake.script("/participant/message", (500, None, "boom"));
    let err = client
        .send_message(&connection, &ChatMessage::plain("hi"), "t-4")
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Unavailable(_)), "{err:?}");

    // A code in the body only (`__type`), a 403 without a code, an unreadable 200.
    fake.script(
        "/participant/message",
        (
            429,
            None,
            r#"{"__type":"com.amazonaws.connectparticipant#ThrottlingException","message":"slow down"}"#,
        ),
    );
    let err = client
        .send_message(&connection, &ChatMessage::plain("hi"), "t-6")
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Throttled(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("SendMessage: ThrottlingException (HTTP 429): slow down"),
        "{err}"
    );
    fake.script("/participant/message", (403, None, ""));
    let err = client
        .send_message(&connection, &ChatMessage::plain("hi"), "t-7")
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::ChatEnded(_)), "{err:?}");
    fake.script("/participant/message", (200, None, "<html>not json</html>"));
    let err = client
        .send_message(&connection, &ChatMessage::plain("hi"), "t-8")
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Unavailable(_)), "{err:?}");
    fake.unscript("/participant/message");

    fake.script(
        "/participant/event",
        (
            409,
            Some("ConflictException"),
            r#"{"message":"receipts are not sent with more than 2 participants"}"#,
        ),
    );
    let err = client
        .send_event(
            &connection,
            "application/vnd.amazonaws.connect.event.message.read",
            Some("{}"),
            "e-1",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Invalid(_)), "{err:?}");
    fake.script(
        "/participant/event",
        (
            403,
            Some("AccessDeniedException"),
            r#"{"message":"denied"}"#,
        ),
    );
    let err = client
        .send_event(
            &connection,
            "application/vnd.amazonaws.connect.event.typing",
            None,
            "e-2",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::ChatEnded(_)), "{err:?}");
    fake.script(
        "/participant/message",
        (
            403,
            Some("AccessDeniedException"),
            r#"{"message":"Access denied: the chat has already been terminated"}"#,
        ),
    );

    fake.script(
        "/participant/connection",
        (
            403,
            Some("AccessDeniedException"),
            r#"{"message":"denied"}"#,
        ),
    );
    let err = client
        .connect_participant(&ParticipantToken::new("p"))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::ChatEnded(_)), "{err:?}");

    // Control plane: body-only codes (`__type`), 429 rate limit vs 429 quota, 403, 404, 5xx.
    fake.script(
        "/contact/chat",
        (
            429,
            None,
            r#"{"__type":"com.amazonaws.connect#ThrottlingException","message":"Rate exceeded"}"#,
        ),
    );
    let err = client.start_chat(&start_chat_request()).await.unwrap_err();
    assert!(matches!(err, ConnectError::Throttled(_)), "{err:?}");

    fake.script(
        "/contact/chat",
        (
            429,
            Some("LimitExceededException"),
            r#"{"Message":"too many chats"}"#,
        ),
    );
    let err = client.start_chat(&start_chat_request()).await.unwrap_err();
    assert!(matches!(err, ConnectError::QuotaExceeded(_)), "{err:?}");

    fake.script(
        "/contact/chat",
        (
            400,
            Some("InvalidRequestException"),
            r#"{"Message":"bad","Reason":{}}"#,
        ),
    );
    let err = client.start_chat(&start_chat_request()).await.unwrap_err();
    assert!(matches!(err, ConnectError::Invalid(_)), "{err:?}");

    fake.script(
        "/contact/chat",
        (
            404,
            Some("ResourceNotFoundException"),
            r#"{"Message":"no flow"}"#,
        ),
    );
    let err = client.start_chat(&start_chat_request()).await.unwrap_err();
    assert!(matches!(err, ConnectError::NotFound(_)), "{err:?}");

    fake.script(
        "/contact/start-streaming",
        (
            403,
            Some("UnrecognizedClientException"),
            r#"{"message":"The security token included in the request is invalid."}"#,
        ),
    );
    let err = client.start_streaming(&contact, "t").await.unwrap_err();
    assert!(matches!(err, ConnectError::Unauthorized(_)), "{err:?}");

    fake.script(
        "/contact/stop",
        (
            500,
            Some("InternalServiceException"),
            r#"{"Message":"oops"}"#,
        ),
    );
    let err = client.stop_contact(&contact).await.unwrap_err();
    assert!(matches!(err, ConnectError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());

    // Error texts never carry the tokens.
    let err = client
        .send_message(&connection, &ChatMessage::plain("hi"), "t-5")
        .await
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains("secret"), "{err}");
    assert!(fake.requests().len() >= 12);
}

#[tokio::test]
async fn unreachable_connect_is_unavailable() {
    // Bind then drop: nothing listens on that port any more.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = ConnectClient::with_env(
        ConnectConfig::new(INSTANCE, FLOW, TOPIC),
        &sdk_config(Some(&base)),
        no_env,
    )
    .unwrap();
    let err = client.start_chat(&start_chat_request()).await.unwrap_err();
    assert!(matches!(err, ConnectError::Unavailable(_)), "{err:?}");
    let err = client
        .send_message(&ConnectionToken::new("c"), &ChatMessage::plain("x"), "t")
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn explicit_endpoints_win_and_env_is_consulted() {
    let fake = Fake::start().await;
    // SdkConfig points nowhere useful; the explicit settings point at the fake.
    let mut config = ConnectConfig::new(INSTANCE, FLOW, TOPIC);
    config.connect_endpoint = Some(fake.base.clone());
    config.participant_endpoint = Some(fake.base.clone());
    let client =
        ConnectClient::with_env(config, &sdk_config(Some("http://127.0.0.1:1")), no_env).unwrap();
    client.start_chat(&start_chat_request()).await.unwrap();
    client
        .connect_participant(&ParticipantToken::new("p"))
        .await
        .unwrap();

    // AWS_ENDPOINT_URL_CONNECT from the (injected) environment.
    let base = fake.base.clone();
    let client = ConnectClient::with_env(
        ConnectConfig::new(INSTANCE, FLOW, TOPIC),
        &sdk_config(None),
        move |k| (k == "AWS_ENDPOINT_URL_CONNECT").then(|| base.clone()),
    )
    .unwrap();
    assert_eq!(client.contact_client().endpoint(), fake.base);
    client
        .stop_contact(&ContactId::parse("c-1").unwrap())
        .await
        .unwrap();
    assert_eq!(fake.last("/contact/stop").method, Method::POST);
}

#[tokio::test]
async fn sends_use_the_configured_request_timeout() {
    let fake = Fake::start().await;
    let mut config = ConnectConfig::new(INSTANCE, FLOW, TOPIC);
    config.request_timeout = std::time::Duration::from_millis(300);
    let client = ConnectClient::with_env(config, &sdk_config(Some(&fake.base)), no_env).unwrap();
    fake.delay("/participant/message", std::time::Duration::from_secs(3));
    fake.delay("/participant/event", std::time::Duration::from_secs(3));
    let connection = ConnectionToken::new("connection-token-secret");
    let err = client
        .send_message(&connection, &ChatMessage::plain("hi"), "t-1")
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("SendMessage: timed out"), "{err}");
    let err = client
        .send_event(
            &connection,
            "application/vnd.amazonaws.connect.event.typing",
            None,
            "t-2",
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("SendEvent: timed out"), "{err}");
}

#[tokio::test]
async fn sends_resolve_the_participant_endpoint_as_the_sdk_does() {
    let fake = Fake::start().await;
    let connection = ConnectionToken::new("connection-token-secret");
    // AWS_ENDPOINT_URL_CONNECTPARTICIPANT (injected) wins over the SdkConfig's endpoint, for the
    // send calls and the SDK's calls alike.
    let base = fake.base.clone();
    let client = ConnectClient::with_env(
        ConnectConfig::new(INSTANCE, FLOW, TOPIC),
        &sdk_config(None),
        move |k| (k == "AWS_ENDPOINT_URL_CONNECTPARTICIPANT").then(|| format!("{base}/")),
    )
    .unwrap();
    assert_eq!(client.participant_sends().endpoint(), fake.base);
    client
        .send_message(&connection, &ChatMessage::plain("hi"), "t-1")
        .await
        .unwrap();
    assert_eq!(fake.count("/participant/message"), 1);

    // AWS_ENDPOINT_URL, then the SdkConfig's endpoint.
    let base = fake.base.clone();
    let client = ConnectClient::with_env(
        ConnectConfig::new(INSTANCE, FLOW, TOPIC),
        &sdk_config(Some("http://127.0.0.1:1")),
        move |k| (k == "AWS_ENDPOINT_URL").then(|| base.clone()),
    )
    .unwrap();
    assert_eq!(client.participant_sends().endpoint(), fake.base);
    let client = ConnectClient::with_env(
        ConnectConfig::new(INSTANCE, FLOW, TOPIC),
        &sdk_config(Some(&fake.base)),
        no_env,
    )
    .unwrap();
    assert_eq!(client.participant_sends().endpoint(), fake.base);

    // Nothing configured: the regional endpoint.
    let client = ConnectClient::with_env(
        ConnectConfig::new(INSTANCE, FLOW, TOPIC),
        &sdk_config(None),
        no_env,
    )
    .unwrap();
    assert_eq!(
        client.participant_sends().endpoint(),
        "https://participant.connect.us-east-1.amazonaws.com"
    );

    // A malformed endpoint names its setting.
    let err = ConnectClient::with_env(
        ConnectConfig::new(INSTANCE, FLOW, TOPIC),
        &sdk_config(None),
        |k| (k == "AWS_ENDPOINT_URL_CONNECTPARTICIPANT").then(|| "ftp://nope".to_owned()),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("AWS_ENDPOINT_URL_CONNECTPARTICIPANT is invalid"),
        "{err}"
    );
}

#[test]
fn construction_errors_name_the_setting() {
    let sdk = sdk_config(None);
    let err =
        ConnectClient::with_env(ConnectConfig::new("", FLOW, TOPIC), &sdk, no_env).unwrap_err();
    assert!(
        err.to_string().starts_with("XDM_CONNECT_INSTANCE_ID"),
        "{err}"
    );
    let err =
        ConnectClient::with_env(ConnectConfig::new(INSTANCE, "", TOPIC), &sdk, no_env).unwrap_err();
    assert!(
        err.to_string().starts_with("XDM_CONNECT_CONTACT_FLOW_ID"),
        "{err}"
    );
    let err = ConnectClient::with_env(ConnectConfig::new(INSTANCE, FLOW, "topic"), &sdk, no_env)
        .unwrap_err();
    assert!(
        err.to_string().starts_with("XDM_CONNECT_TOPIC_ARN"),
        "{err}"
    );

    let no_region = SdkConfig::builder()
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            ACCESS_KEY, SECRET_KEY, None, None, "test",
        )))
        .behavior_version(BehaviorVersion::latest())
        .build();
    let err = ConnectClient::with_env(
        ConnectConfig::new(INSTANCE, FLOW, TOPIC),
        &no_region,
        no_env,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Missing {
                setting: "AWS_REGION",
                ..
            }
        ),
        "{err}"
    );

    let no_creds = SdkConfig::builder()
        .region(Region::new("us-east-1"))
        .behavior_version(BehaviorVersion::latest())
        .build();
    let err = ConnectClient::with_env(ConnectConfig::new(INSTANCE, FLOW, TOPIC), &no_creds, no_env)
        .unwrap_err();
    assert_eq!(err, ConfigError::NoCredentials);
}
