//! Certificate fetching and subscription confirmation over real HTTP, against a tiny SNS
//! stand-in on 127.0.0.1 that signs with its own RSA key (trusted through the
//! XDM_SNS_TRUSTED_CERT_URLS mechanism, as a sandbox would be).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use axum::Router;
use axum::routing::get;
use base64::Engine as _;
use xdm_amazon_connect::sns::{
    ConfirmError, SnsMessage, SnsMessageType, SnsVerifier, VerifyError, string_to_sign,
};

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:connect-chat-out";

/// Now, as SNS writes `Timestamp` (the verifier refuses messages older than an hour).
fn now_iso() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

struct FakeSns {
    base: String,
    cert_fetches: Arc<AtomicUsize>,
    /// GETs of `/gone.pem`, which answers 404.
    gone_fetches: Arc<AtomicUsize>,
    confirmations: Arc<AtomicUsize>,
    key: RsaKeyPair,
}

async fn fake_sns() -> FakeSns {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["sns.local".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let pem = cert.pem();
    let signer = RsaKeyPair::from_pkcs8(&key.serialize_der()).unwrap();

    let cert_fetches = Arc::new(AtomicUsize::new(0));
    let gone_fetches = Arc::new(AtomicUsize::new(0));
    let confirmations = Arc::new(AtomicUsize::new(0));
    let (f, g, c) = (
        cert_fetches.clone(),
        gone_fetches.clone(),
        confirmations.clone(),
    );
    let app = Router::new()
        .route(
            "/gone.pem",
            get(move || {
                g.fetch_add(1, Ordering::SeqCst);
                async { (http::StatusCode::NOT_FOUND, "gone") }
            }),
        )
        .route(
            "/cert.pem",
            get(move || {
                f.fetch_add(1, Ordering::SeqCst);
                let pem = pem.clone();
                async move { pem }
            }),
        )
        .route(
            "/confirm",
            get(move || {
                c.fetch_add(1, Ordering::SeqCst);
                async { "<ConfirmSubscriptionResponse/>" }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    FakeSns {
        base: format!("http://{addr}"),
        cert_fetches,
        gone_fetches,
        confirmations,
        key: signer,
    }
}

impl FakeSns {
    fn cert_url(&self) -> String {
        format!("{}/cert.pem", self.base)
    }

    fn sign(&self, msg: &mut SnsMessage) {
        let mut sig = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                string_to_sign(msg).as_bytes(),
                &mut sig,
            )
            .unwrap();
        msg.signature = base64::engine::general_purpose::STANDARD.encode(sig);
    }

    fn confirmation(&self, topic: &str, subscribe_url: &str) -> SnsMessage {
        let body = serde_json::json!({
            "Type": "SubscriptionConfirmation",
            "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            "Token": "2336412f37fb687f5d51e6e2425f004aed",
            "TopicArn": topic,
            "Message": format!("You have chosen to subscribe to the topic {topic}.\nTo confirm the subscription, visit the SubscribeURL included in this message."),
            "SubscribeURL": subscribe_url,
            "Timestamp": now_iso(),
            "SignatureVersion": "2",
            "Signature": "AA==",
            "SigningCertURL": self.cert_url(),
        });
        let mut msg = SnsMessage::from_http_body(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(msg.message_type, SnsMessageType::SubscriptionConfirmation);
        self.sign(&mut msg);
        msg
    }

    fn verifier(&self) -> SnsVerifier {
        SnsVerifier::new(TOPIC, vec![self.cert_url()]).unwrap()
    }
}

#[tokio::test]
async fn confirms_a_verified_subscription_and_fetches_the_cert_once() {
    let sns = fake_sns().await;
    let verifier = sns.verifier();
    let msg = sns.confirmation(TOPIC, &format!("{}/confirm?Token=x", sns.base));
    verifier.confirm_subscription(&msg).await.unwrap();
    assert_eq!(sns.confirmations.load(Ordering::SeqCst), 1);

    // Notifications signed by the same certificate reuse the cached key.
    let mut note = msg.clone();
    note.message_type = SnsMessageType::Notification;
    note.subscribe_url = None;
    note.token = None;
    note.message = r#"{"Id":"1","Type":"MESSAGE","Content":"hi","InitialContactId":"c"}"#.into();
    sns.sign(&mut note);
    verifier.verify(&note).await.unwrap();
    assert_eq!(sns.cert_fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn refuses_foreign_topic_bad_signature_and_ssrf_urls() {
    let sns = fake_sns().await;
    let verifier = sns.verifier();

    let other = "arn:aws:sns:us-east-1:123456789012:other";
    let msg = sns.confirmation(other, &format!("{}/confirm", sns.base));
    assert!(matches!(
        verifier.confirm_subscription(&msg).await,
        Err(ConfirmError::Verify(VerifyError::ForeignTopic { .. }))
    ));

    let mut msg = sns.confirmation(TOPIC, &format!("{}/confirm", sns.base));
    msg.token = Some("another token".into());
    assert_eq!(
        verifier.confirm_subscription(&msg).await,
        Err(ConfirmError::Verify(VerifyError::BadSignature))
    );

    for url in [
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://127.0.0.1:1/confirm".to_owned(),
        format!("{}/confirm", sns.base.replace("127.0.0.1", "localhost")),
    ] {
        let msg = sns.confirmation(TOPIC, &url);
        assert_eq!(
            verifier.confirm_subscription(&msg).await,
            Err(ConfirmError::UntrustedSubscribeUrl { url: url.clone() }),
            "{url}"
        );
    }
    assert_eq!(sns.confirmations.load(Ordering::SeqCst), 0);

    let mut note = sns.confirmation(TOPIC, &format!("{}/confirm", sns.base));
    note.message_type = SnsMessageType::Notification;
    assert!(matches!(
        verifier.confirm_subscription(&note).await,
        Err(ConfirmError::NotAConfirmation(SnsMessageType::Notification))
    ));
}

#[tokio::test]
async fn certificate_fetch_failure_is_retryable() {
    let sns = fake_sns().await;
    let missing = format!("{}/missing.pem", sns.base);
    let verifier = SnsVerifier::new(TOPIC, vec![missing.clone()]).unwrap();
    let mut msg = sns.confirmation(TOPIC, &format!("{}/confirm", sns.base));
    msg.signing_cert_url = missing;
    sns.sign(&mut msg);
    let err = verifier.verify(&msg).await.unwrap_err();
    assert!(matches!(err, VerifyError::CertFetch { .. }), "{err}");
    assert!(err.is_retryable());

    // Nothing listens there at all.
    let dead = "http://127.0.0.1:1/cert.pem".to_owned();
    let verifier = SnsVerifier::new(TOPIC, vec![dead.clone()]).unwrap();
    msg.signing_cert_url = dead;
    sns.sign(&mut msg);
    let err = verifier.confirm_subscription(&msg).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
}

#[tokio::test]
async fn a_failed_certificate_fetch_is_remembered_so_a_flood_fetches_once() {
    let sns = fake_sns().await;
    let gone = format!("{}/gone.pem", sns.base);
    let verifier = Arc::new(
        SnsVerifier::new(TOPIC, vec![gone.clone()])
            .unwrap()
            .with_failed_fetch_ttl(std::time::Duration::from_millis(500)),
    );
    // Unsigned, as anyone who knows the topic can send them.
    let mut msg = sns.confirmation(TOPIC, &format!("{}/confirm", sns.base));
    msg.signing_cert_url = gone;
    msg.signature = "AA==".into();
    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (verifier, msg) = (Arc::clone(&verifier), msg.clone());
        flood.spawn(async move { verifier.verify(&msg).await });
    }
    while let Some(verdict) = flood.join_next().await {
        let err = verdict.unwrap().unwrap_err();
        assert!(matches!(err, VerifyError::CertFetch { .. }), "{err}");
        assert!(
            err.is_retryable(),
            "SNS should still retry a genuine message"
        );
    }
    assert_eq!(
        sns.gone_fetches.load(Ordering::SeqCst),
        1,
        "50 concurrent messages, one fetch"
    );
    // Once the failure is forgotten, the next message fetches again (once).
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    for _ in 0..5 {
        assert!(verifier.verify(&msg).await.is_err());
    }
    assert_eq!(sns.gone_fetches.load(Ordering::SeqCst), 2);
}
