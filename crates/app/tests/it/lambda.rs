//! The Lambda face, fed the real captured events and built ones through the handler, against the
//! sandbox; and the `bootstrap` process itself, stopped as Lambda stops it.

use std::time::Duration;

use serde_json::{Value, json};
use xdm_app::lambda::LambdaApp;
use xdm_app::sandbox_link;
use xdm_core::ids::{ConnectionToken, InitialContactId, ParticipantToken, XUserId};
use xdm_core::ports::Store;
use xdm_core::session::{ConnectionCredentials, Session, SessionStatus};
use xdm_sandbox::{Sandbox, SandboxConfig, SandboxHandle};

use crate::helpers::*;

const CAPTURED_TOPIC: &str =
    "arn:aws:sns:us-west-2:643504311277:X-DM-CONNECT-CHAT-MsgAoutmessagesout5D5307D6-uLoJ2ozbwKx7";

fn fixture(name: &str) -> Value {
    let path = format!("{}/../../testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

struct LambdaHarness {
    app: LambdaApp,
    sandbox: SandboxHandle,
    _dir: tempfile::TempDir,
}

async fn lambda_app(topic: Option<&str>) -> LambdaHarness {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("lambda.db").display());
    let mut config = sandbox_link::bridge_config(&sandbox, "127.0.0.1:0", &store).unwrap();
    config.delivery.reorder_window_ms = 50;
    config.delivery.outbound_reorder_window_ms = 50;
    if let Some(t) = topic {
        config.connect.topic_arn = Some(t.to_owned());
    }
    let app = LambdaApp::new(config, sandbox_link::sdk_config(&sandbox), &|_| None)
        .await
        .unwrap();
    LambdaHarness {
        app,
        sandbox,
        _dir: dir,
    }
}

/// The captured event as X would send it now (its DMs dated a second ago: `redated`), its body
/// signed by `secret` instead of AWS's unknown one.
fn resigned(mut ev: Value, secret: &str) -> Value {
    let body = redated(ev["body"].as_str().unwrap());
    ev["body"] = json!(body);
    let sig = x_signature(secret, body.as_bytes());
    ev["headers"]["X-Twitter-Webhooks-Signature"] = json!(sig);
    ev["multiValueHeaders"]["X-Twitter-Webhooks-Signature"] = json!([sig]);
    ev
}

#[tokio::test]
async fn the_captured_api_gateway_event_is_refused_as_captured_and_opens_one_chat_when_resigned() {
    let h = lambda_app(None).await;
    let captured = fixture("apigw-x-webhook-text-dm.json");
    let refused = h
        .app
        .handle(captured.clone(), far_deadline())
        .await
        .unwrap();
    assert_eq!(refused["statusCode"], 401, "{refused}");

    let secret = h.sandbox.config().x.consumer_secret.clone();
    let accepted = h
        .app
        .handle(resigned(captured.clone(), &secret), far_deadline())
        .await
        .unwrap();
    assert_eq!(accepted["statusCode"], 200, "{accepted}");
    // X retries: still one chat
    let again = h
        .app
        .handle(resigned(captured, &secret), far_deadline())
        .await
        .unwrap();
    assert_eq!(again["statusCode"], 200);

    // The queue wakes the delivery function for that customer.
    let out = h
        .app
        .handle(wake("40876567:55125386"), far_deadline())
        .await
        .unwrap();
    assert_eq!(out["batchItemFailures"], json!([]));
    let contacts = h.sandbox.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].display_name, "Elizabeth Fuentes");
    assert_eq!(contacts[0].attributes["x_username"], "ElizabethFue12");
    assert_eq!(customer_messages(&contacts[0]), vec!["Hola2"]);
    h.sandbox.shutdown();
}

#[tokio::test]
async fn the_captured_sns_record_produces_one_dm() {
    let h = lambda_app(Some(CAPTURED_TOPIC)).await;
    // The session the webhook side would have created for this chat.
    let bridge_store = {
        let built = h
            .app
            .handle(
                json!({"source":"aws.events","detail-type":"Scheduled Event"}),
                far_deadline(),
            )
            .await;
        assert!(built.is_ok());
        h.app.bridge().await.unwrap()
    };
    bridge_store
        .store()
        .insert_session(&Session {
            business: XUserId::parse("40876567").unwrap(),
            customer: XUserId::parse("55125386").unwrap(),
            initial_contact_id: InitialContactId::parse("da81f813-70b0-496e-91ed-70f48771c522")
                .unwrap(),
            participant_token: ParticipantToken::new("pt"),
            opened_by: "xdm-test".into(),
            connection: Some(ConnectionCredentials {
                token: ConnectionToken::new("ct"),
                expires_at_ms: None,
            }),
            status: SessionStatus::Live,
            created_at_ms: 0,
            updated_at_ms: 0,
        })
        .await
        .unwrap();
    let record = fixture("lambda-sns-agent-message.json");
    h.app.handle(record.clone(), far_deadline()).await.unwrap();
    h.app.handle(record, far_deadline()).await.unwrap(); // SNS retries the invocation
    let dms = h.sandbox.sent_dms();
    assert_eq!(dms.len(), 1, "{dms:?}");
    assert_eq!(dms[0].recipient_id, "55125386");
    assert_eq!(dms[0].text.as_deref(), Some("Connect con pago"));

    // A record of another topic is not accepted.
    let mut foreign = fixture("lambda-sns-agent-message.json");
    foreign["Records"][0]["Sns"]["TopicArn"] =
        json!("arn:aws:sns:us-west-2:643504311277:someone-else");
    foreign["Records"][0]["Sns"]["MessageId"] = json!("00000000-0000-0000-0000-000000000000");
    let out = h.app.handle(foreign, far_deadline()).await.unwrap();
    assert_eq!(out["accepted"], 0);
    h.sandbox.shutdown();
}

#[tokio::test]
async fn http_api_v2_and_function_url_events_work() {
    let h = lambda_app(None).await;
    let secret = h.sandbox.config().x.consumer_secret.clone();
    let body = redated(&captured_body());
    let sig = x_signature(&secret, body.as_bytes());
    let v2 = |path: &str,
              method: &str,
              query: &str,
              body: Option<&str>,
              stage: &str,
              domain: &str| {
        json!({
            "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
            "headers": {"content-type": "application/json", "x-twitter-webhooks-signature": sig},
            "requestContext": {"accountId": "123456789012", "apiId": "abc", "domainName": domain, "stage": stage,
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.133.77.8", "userAgent": "x"},
                "requestId": "r", "routeKey": "$default", "time": "01/Apr/2026:21:47:14 +0000", "timeEpoch": 1775080034712_i64},
            "body": body, "isBase64Encoded": false
        })
    };
    // HTTP API on a named stage: CRC
    let crc = h
        .app
        .handle(
            v2(
                "/prod/webhooks/x",
                "GET",
                "crc_token=M2RkODJkZmMtYjlkYi00NmQ4LTk0MGUtM2JjYzkwM2Q4MjQ0",
                None,
                "prod",
                "abc.execute-api.us-east-1.amazonaws.com",
            ),
            far_deadline(),
        )
        .await
        .unwrap();
    assert_eq!(crc["statusCode"], 200, "{crc}");
    assert!(
        crc["body"]
            .as_str()
            .unwrap()
            .starts_with(r#"{"response_token":"sha256="#)
    );
    // function URL: events, base64 body
    let mut post = v2(
        "/webhooks/x",
        "POST",
        "",
        None,
        "$default",
        "abcdefghij.lambda-url.us-east-1.on.aws",
    );
    use base64::Engine;
    post["body"] = json!(base64::engine::general_purpose::STANDARD.encode(body.as_bytes()));
    post["isBase64Encoded"] = json!(true);
    let out = h.app.handle(post, far_deadline()).await.unwrap();
    assert_eq!(out["statusCode"], 200, "{out}");
    assert_eq!(
        serde_json::from_str::<Value>(out["body"].as_str().unwrap()).unwrap()["accepted"],
        1
    );
    // a tampered one
    let bad = v2(
        "/webhooks/x",
        "POST",
        "",
        Some(&body.replace("Hola2", "Hola3")),
        "$default",
        "abcdefghij.lambda-url.us-east-1.on.aws",
    );
    assert_eq!(
        h.app.handle(bad, far_deadline()).await.unwrap()["statusCode"],
        401
    );
    // the sweep delivers it
    h.app
        .handle(
            json!({"source":"aws.events","detail-type":"Scheduled Event"}),
            far_deadline() + 1000,
        )
        .await
        .unwrap();
    h.sandbox
        .wait_until("the chat", WAIT, |s| {
            s.contacts().into_iter().find(|c| c.customer_connected)
        })
        .await
        .unwrap();
    h.sandbox.shutdown();
}

/// What the function wrote to its log (stdout on Lambda), as the EMF documents it holds.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The documents written since the last call, one per line.
    fn take(&self) -> Vec<Value> {
        let bytes = std::mem::take(&mut *self.0.lock().unwrap());
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

/// The document of `docs` that carries metric `name` with the dimension values `dims`.
fn emf_doc<'a>(docs: &'a [Value], name: &str, dims: &[(&str, &str)]) -> &'a Value {
    docs.iter()
        .find(|d| d.get(name).is_some() && dims.iter().all(|(k, v)| d[*k] == *v))
        .unwrap_or_else(|| panic!("no {name} {dims:?} in {docs:#?}"))
}

/// Each invocation writes what it measured as CloudWatch EMF lines: the webhook event (one
/// accepted request), the wake-up that delivers it (one job done, its latency), the sweep (the
/// backlog gauges).
#[tokio::test]
async fn each_invocation_writes_its_metrics_as_emf_lines() {
    // The recorder of this test's thread (the current-thread runtime runs every task of the
    // test on it), so that the other tests of the process do not mix in.
    let emf = xdm_app::monitoring::emf::Emf::new("xdm-test");
    let _local = metrics::set_default_local_recorder(&emf);
    let LambdaHarness { app, sandbox, _dir } = lambda_app(None).await;
    let out = Captured::default();
    let app = app.with_metrics(emf.clone(), Box::new(out.clone()));
    out.take(); // whatever the cold start measured

    // The captured event as X would send it now (a DM of a second ago: not stale).
    let mut event = fixture("apigw-x-webhook-text-dm.json");
    let mut body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
    body["direct_message_events"][0]["created_timestamp"] =
        json!((far_deadline() - 31_000).to_string());
    event["body"] = json!(body.to_string());
    let secret = sandbox.config().x.consumer_secret.clone();
    let accepted = app
        .handle(resigned(event, &secret), far_deadline())
        .await
        .unwrap();
    assert_eq!(accepted["statusCode"], 200, "{accepted}");
    let docs = out.take();
    let doc = emf_doc(
        &docs,
        "xdm_webhook_requests_total",
        &[("source", "x"), ("result", "accepted")],
    );
    assert_eq!(doc["xdm_webhook_requests_total"], 1.0);
    let directive = &doc["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "xdm-test");
    assert_eq!(directive["Dimensions"], json!([["result", "source"]]));
    assert_eq!(
        directive["Metrics"],
        json!([{"Name": "xdm_webhook_requests_total", "Unit": "Count"}])
    );
    assert!(doc["_aws"]["Timestamp"].as_i64().unwrap() > 1_700_000_000_000);

    let delivered = app
        .handle(wake("40876567:55125386"), far_deadline())
        .await
        .unwrap();
    assert_eq!(delivered["batchItemFailures"], json!([]));
    assert_eq!(sandbox.contacts().len(), 1);
    let docs = out.take();
    let done = emf_doc(
        &docs,
        "xdm_job_attempts_total",
        &[("queue", "inbound"), ("outcome", "done")],
    );
    assert_eq!(done["xdm_job_attempts_total"], 1.0);
    let latency = emf_doc(
        &docs,
        "xdm_delivery_latency_seconds",
        &[("queue", "inbound")],
    );
    let values = latency["xdm_delivery_latency_seconds"].as_array().unwrap();
    assert_eq!(values.len(), 1, "{latency}");
    assert!(values[0].as_f64().unwrap() > 0.0, "{latency}");
    assert_eq!(
        latency["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
        "Seconds"
    );
    // Not exported to CloudWatch (cost): the queue age histogram, the error codes.
    assert!(
        docs.iter()
            .all(|d| d.get("xdm_job_queue_age_seconds").is_none()),
        "{docs:#?}"
    );

    app.handle(
        json!({"source":"aws.events","detail-type":"Scheduled Event"}),
        far_deadline(),
    )
    .await
    .unwrap();
    let docs = out.take();
    for queue in ["inbound", "outbound"] {
        let oldest = emf_doc(&docs, "xdm_backlog_oldest_age_seconds", &[("queue", queue)]);
        assert_eq!(oldest["xdm_backlog_oldest_age_seconds"], 0.0);
        assert_eq!(
            oldest["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
            "Seconds"
        );
    }
    sandbox.shutdown();
}

#[tokio::test]
async fn unknown_events_are_errors_not_panics() {
    let h = lambda_app(None).await;
    assert!(
        h.app
            .handle(json!({"hello": "world"}), far_deadline())
            .await
            .is_err()
    );
    assert!(
        h.app
            .handle(
                json!({"Records": [{"eventSource": "aws:sqs"}]}),
                far_deadline()
            )
            .await
            .is_err()
    );
    h.sandbox.shutdown();
}

/// The AWS sample's configuration layout (SSM parameter + Secrets Manager secret), the DynamoDB
/// store and the SQS FIFO wake-up queue, all on the local emulator (moto), Connect and X on the
/// sandbox.
#[tokio::test]
async fn on_aws_the_functions_read_ssm_and_secrets_store_in_dynamodb_and_wake_through_sqs() {
    let sdk = xdm_testkit::moto::sdk_config();
    let endpoint = xdm_testkit::moto::endpoint().to_owned();
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let sb = sandbox.config().clone();
    let unique = uuid::Uuid::new_v4().simple().to_string();

    // tables, parameter, secret, queue
    let prefix = format!("xdm-{}-", &unique[..8]);
    xdm_store::DynamoStore::new(&sdk, &prefix)
        .create_tables()
        .await
        .unwrap();
    let param_name = format!("/xdm/{unique}/config");
    let http = reqwest::Client::new();
    let put = http
        .post(format!("{endpoint}/"))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "AmazonSSM.PutParameter")
        .header("authorization", "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ssm/aws4_request, SignedHeaders=host, Signature=0")
        .body(
            json!({"Name": param_name, "Type": "String", "Value": json!({
                "instance_id": sb.connect.instance_id, "contact_flow_id": sb.connect.contact_flow_id, "x_account_id": sb.x.business.id
            }).to_string()})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.text().await.unwrap());
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let secret = secrets
        .create_secret()
        .name(format!("xdm-{unique}"))
        .secret_string(
            json!({"consumer_key": sb.x.consumer_key, "consumer_secret": sb.x.consumer_secret,
                   "access_token": sb.x.access_token, "access_token_secret": sb.x.access_token_secret})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue = sqs
        .create_queue()
        .queue_name(format!("xdm-{unique}.fifo"))
        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .unwrap();
    let queue_url = queue.queue_url().unwrap().to_owned();

    // The functions' environment: no X credentials and no Connect ids of their own.
    let mut config =
        sandbox_link::bridge_config(&sandbox, "127.0.0.1:0", &format!("dynamodb:{prefix}"))
            .unwrap();
    config.x.consumer_key = None;
    config.x.consumer_secret = None;
    config.x.access_token = None;
    config.x.access_token_secret = None;
    config.connect.instance_id = None;
    config.connect.contact_flow_id = None;
    config.delivery.reorder_window_ms = 50;
    let env = {
        let (p, s, q) = (
            param_name.clone(),
            secret.arn().unwrap().to_owned(),
            queue_url.clone(),
        );
        move |k: &str| match k {
            "CONFIG_PARAM_NAME" => Some(p.clone()),
            "SECRET_ARN" => Some(s.clone()),
            "XDM_INBOUND_QUEUE_URL" => Some(q.clone()),
            "AWS_ENDPOINT_URL_SSM" => Some(endpoint.clone()),
            _ => None,
        }
    };
    let app = LambdaApp::new(config, sdk.clone(), &env).await.unwrap();

    // CRC with the secret from Secrets Manager.
    let crc = json!({"version":"2.0","routeKey":"$default","rawPath":"/webhooks","rawQueryString":"crc_token=M2RkODJkZmMtYjlkYi00NmQ4LTk0MGUtM2JjYzkwM2Q4MjQ0",
        "headers":{},"requestContext":{"http":{"method":"GET","path":"/webhooks"},"stage":"$default"},"isBase64Encoded":false});
    assert_eq!(
        app.handle(crc, far_deadline()).await.unwrap()["statusCode"],
        200
    );

    // The captured delivery, re-signed: accepted, stored in DynamoDB, wake-up queued.
    let accepted = app
        .handle(
            resigned(
                fixture("apigw-x-webhook-text-dm.json"),
                &sb.x.consumer_secret,
            ),
            far_deadline(),
        )
        .await
        .unwrap();
    assert_eq!(accepted["statusCode"], 200, "{accepted}");
    let received = sqs
        .receive_message()
        .queue_url(&queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let messages = received.messages();
    assert_eq!(messages.len(), 1);
    let body = messages[0].body().unwrap().to_owned();
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["lane"],
        "40876567:55125386"
    );

    // The worker function gets the wake-up and delivers to Connect (ids from SSM).
    let event = json!({"Records":[{"messageId":"m-1","receiptHandle":"r","body":body,"attributes":{},"messageAttributes":{},
        "md5OfBody":"x","eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:us-east-1:123456789012:q.fifo","awsRegion":"us-east-1"}]});
    let out = app.handle(event, far_deadline()).await.unwrap();
    assert_eq!(out["batchItemFailures"], json!([]));
    let contacts = sandbox.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].instance_id, sb.connect.instance_id);
    assert_eq!(customer_messages(&contacts[0]), vec!["Hola2"]);
    let bridge = app.bridge().await.unwrap();
    let session = bridge
        .store()
        .open_session(
            &XUserId::parse("40876567").unwrap(),
            &XUserId::parse("55125386").unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        session.initial_contact_id.as_str(),
        contacts[0].initial_contact_id
    );
    sandbox.shutdown();
}

/// The `bootstrap` process waiting for its next event exits normally on SIGTERM, as Lambda sends
/// when it shuts an execution environment down (and the local runs of scripts/lambda-cost.py do,
/// whose instrumented bootstraps must exit to write their profiles: scripts/build-pgo.sh).
#[tokio::test]
async fn the_bootstrap_waiting_for_an_event_exits_normally_on_sigterm() {
    use tokio::io::AsyncReadExt as _;
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The Runtime API: it takes the long poll for the next event and answers nothing.
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_addr = api.local_addr().unwrap();
    let (polled, first_poll) = tokio::sync::oneshot::channel::<String>();
    let runtime_api = tokio::spawn(async move {
        let (mut conn, _) = api.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "the bootstrap closed its poll");
            head.extend_from_slice(&buf[..n]);
        }
        polled
            .send(String::from_utf8_lossy(&head).into_owned())
            .unwrap();
        conn // held open: the poll stays unanswered
    });
    let log = dir.path().join("bootstrap.log");
    let mut bootstrap =
        crate::bridge_process::lambda_bootstrap(&sandbox, api_addr, dir.path(), &log);

    let head = tokio::time::timeout(Duration::from_secs(30), first_poll)
        .await
        .expect("the bootstrap did not poll its Runtime API")
        .unwrap();
    assert!(
        head.starts_with("GET /2018-06-01/runtime/invocation/next "),
        "{head}"
    );
    let _conn = runtime_api.await.unwrap();
    assert_eq!(
        bootstrap.wait_exit(Duration::from_millis(300)).await,
        None,
        "the bootstrap stopped before SIGTERM: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    bootstrap.terminate();
    let status = bootstrap
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("the bootstrap did not exit within 10 s of SIGTERM");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{status}; log:\n{logged}");
    assert!(logged.contains("shutting down"), "{logged}");
}
