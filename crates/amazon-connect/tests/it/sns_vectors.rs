//! The published SNS signature vectors (docs/protocols.md B4, from aws-php-sns-message-validator),
//! verbatim, against the certificate stored in tests/data.

use std::time::{Duration, SystemTime};

use xdm_amazon_connect::iso8601_to_ms;
use xdm_amazon_connect::sns::{
    FreshnessError, SnsMessage, SnsVerifier, VerifyError, string_to_sign,
};

const CERT_PEM: &[u8] = include_bytes!("../data/sns-vector-cert.pem");
const CERT_URL: &str = "https://sns.us-east-2.amazonaws.com/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem";
const ARN_PREFIX: &str = "arn:aws:sns:us-east-2:295079676684";

struct Vector {
    version: &'static str,
    message_id: &'static str,
    topic: &'static str,
    subject: Option<&'static str>,
    timestamp: &'static str,
    signature: &'static str,
}

const V1: Vector = Vector {
    version: "1",
    message_id: "792cda85-518f-5dd3-9163-81d851212f3a",
    topic: "publish-and-verify-892f85fe-4836-424d-8188-ab85bef0f362",
    subject: None,
    timestamp: "2022-07-28T21:23:58.317Z",
    signature: "ghtf+deOBAzHJJZ6s6CdRLfTQAlcGzq9naoFM1wi0CJiq//uVRuZnamrkWNF0fhouMFvuLVRwcz8PZLUMSfnmd5VpdTKpTyiKmy1qJAZXma0w+yi7G+I33hD1Jyk1Nbym2n0kqp3fVu2aoooiN2ZeLAT2bH0/BtjLSfN1yAOKNoprco4qV9gGUZinXJdj9a1YdNhDR2jKi33ldlsVtEXAtiaDklGEk7DgRKX38GerBPiLg3FdtgY6KC7cdeGpU/dGK+4hjc83Ive1HoFkAwqhpgInM2sMytBosoiXfCmOKmU4xeGD0gHDNZTlJUJQDlzw8Eag0H9f/5zXF9d3uy0YQ==",
};

const V2: Vector = Vector {
    version: "2",
    message_id: "17dea24b-55c2-540b-8362-f916557af765",
    topic: "publish-and-verify-62674b1d-4295-426b-88e7-5fb75652a04e",
    subject: None,
    timestamp: "2022-07-28T21:24:08.324Z",
    signature: "CXVqp9PfZAL+4JHS3Zxo1PFbQsvnOjvmYhtIf17TWpwc+iIVas8kZ8GopuzVzVMdatE7rCl/O4P91Zp05Dwz8lk8dLhfp8gSu3Njlzxlyrmzo9x3va3Jb7zFnedgS2GKnZWHGBdwTXho+TosNUE+3e10OMSlwN5XGDwX7+R3WL+rn+AXmFAqp3alg27sYa55h1dLE9cGszGPjScPdtF3BmZsUDMx9wSdNKsCk+vSvE8yBjnCmUl7laSFj3LzPVrlSwgNYCF3kYnNAkah7NplK4SFhJYLwS0HCVCQJKa8rVbQLf9cBTu60U402mrgy0bN8xWoyimzbYbrOMJjalqkUg==",
};

const V2_SUBJECT: Vector = Vector {
    version: "2",
    message_id: "4504e649-d933-5aa9-8199-bd14ccf05f0b",
    topic: "publish-and-verify-530b26da-0687-4fe4-9f71-780bad3181e2",
    subject: Some("Hello world"),
    timestamp: "2022-07-28T22:53:55.086Z",
    signature: "cETcSvmmkt+My05qCLKexyl0+RyG83mSryKPqTfS+tYcxDJWVcjPJAr+qdpElzVaBl1aTGYVWMY64i9JqZ/JES8pylNj8LGvdhuNQKO59/WCoIimZAsNhn0xEgOeeDU+W/0BU4sdpCGMNjo0S/FuIiWaRe4E0YWRVrxeQevaQ70euDdfWgd5v1eCKQz8b367b9XBmMztL/CWUFI6YaKK/MV21eyvJe3Y7CtVYiOKEYiAZnAEkynK7gUGO5TsgDjGNYhj6U3xYsWgI03bmioSl7kdFSUj+AZ7ugas5fghqxgoDsdfqsjMYKRm5KKHQWsgzI619yIzpNKUiSMHxdZXpQ==",
};

fn topic_arn(v: &Vector) -> String {
    format!("{ARN_PREFIX}:{}", v.topic)
}

/// The vector as an HTTP-subscription body.
fn body(v: &Vector) -> serde_json::Value {
    let mut b = serde_json::json!({
        "Type": "Notification",
        "MessageId": v.message_id,
        "TopicArn": topic_arn(v),
        "Message": "Hello world",
        "Timestamp": v.timestamp,
        "SignatureVersion": v.version,
        "Signature": v.signature,
        "SigningCertURL": CERT_URL,
        "UnsubscribeURL": format!("https://sns.us-east-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={}:x", topic_arn(v)),
    });
    if let Some(subject) = v.subject {
        b["Subject"] = subject.into();
    }
    b
}

fn message(b: &serde_json::Value) -> SnsMessage {
    SnsMessage::from_http_body(&serde_json::to_vec(b).unwrap()).unwrap()
}

fn verifier_for(topic: &str) -> SnsVerifier {
    let v = SnsVerifier::new(topic, Vec::new()).unwrap();
    v.seed_certificate(CERT_URL, CERT_PEM).unwrap();
    v
}

/// A minute after `msg` was published: the vectors are from 2022, and the verifier refuses
/// messages older than an hour.
fn soon_after(msg: &SnsMessage) -> SystemTime {
    let published = u64::try_from(iso8601_to_ms(&msg.timestamp).unwrap()).unwrap();
    SystemTime::UNIX_EPOCH + Duration::from_millis(published) + Duration::from_secs(60)
}

/// Verifies `msg` as if it had just arrived.
async fn verify(verifier: &SnsVerifier, msg: &SnsMessage) -> Result<(), VerifyError> {
    verifier.verify_at(msg, soon_after(msg)).await
}

#[test]
fn string_to_sign_of_the_v1_vector() {
    assert_eq!(
        string_to_sign(&message(&body(&V1))),
        "Message\nHello world\nMessageId\n792cda85-518f-5dd3-9163-81d851212f3a\nTimestamp\n2022-07-28T21:23:58.317Z\nTopicArn\narn:aws:sns:us-east-2:295079676684:publish-and-verify-892f85fe-4836-424d-8188-ab85bef0f362\nType\nNotification\n"
    );
}

#[tokio::test]
async fn the_three_vectors_verify() {
    for v in [&V1, &V2, &V2_SUBJECT] {
        let msg = message(&body(v));
        verify(&verifier_for(&topic_arn(v)), &msg)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", v.message_id));
    }
}

#[tokio::test]
async fn the_vectors_verify_in_the_lambda_shape_too() {
    // Lambda spelling: SigningCertUrl / UnsubscribeUrl, "Subject": null when absent.
    for v in [&V1, &V2_SUBJECT] {
        let mut b = body(v);
        let obj = b.as_object_mut().unwrap();
        let cert = obj.remove("SigningCertURL").unwrap();
        obj.insert("SigningCertUrl".into(), cert);
        let unsub = obj.remove("UnsubscribeURL").unwrap();
        obj.insert("UnsubscribeUrl".into(), unsub);
        obj.entry("Subject").or_insert(serde_json::Value::Null);
        let msg = SnsMessage::from_lambda_sns(&b).unwrap();
        verify(&verifier_for(&topic_arn(v)), &msg).await.unwrap();
    }
}

#[tokio::test]
async fn tampered_message_is_rejected() {
    for v in [&V1, &V2, &V2_SUBJECT] {
        let mut b = body(v);
        b["Message"] = "Hello world!".into();
        let verdict = verify(&verifier_for(&topic_arn(v)), &message(&b)).await;
        assert_eq!(verdict, Err(VerifyError::BadSignature), "{}", v.message_id);
    }
    // Dropping the subject changes the string to sign.
    let mut b = body(&V2_SUBJECT);
    b.as_object_mut().unwrap().remove("Subject");
    let verdict = verify(&verifier_for(&topic_arn(&V2_SUBJECT)), &message(&b)).await;
    assert_eq!(verdict, Err(VerifyError::BadSignature));
    // A v1 (SHA1) signature does not pass as v2 (SHA256).
    let mut b = body(&V1);
    b["SignatureVersion"] = "2".into();
    let verdict = verify(&verifier_for(&topic_arn(&V1)), &message(&b)).await;
    assert_eq!(verdict, Err(VerifyError::BadSignature));
}

#[tokio::test]
async fn foreign_topic_is_rejected() {
    let other = format!("{ARN_PREFIX}:someone-else");
    let mut b = body(&V1);
    b["TopicArn"] = other.clone().into();
    // Expecting the vector's topic: the message names another one.
    let verdict = verify(&verifier_for(&topic_arn(&V1)), &message(&b)).await;
    assert_eq!(
        verdict,
        Err(VerifyError::ForeignTopic {
            topic_arn: other.clone()
        })
    );
    // Expecting the other topic: the TopicArn is signed, so the swap is caught.
    let verdict = verify(&verifier_for(&other), &message(&b)).await;
    assert_eq!(verdict, Err(VerifyError::BadSignature));
    // A genuine message from a topic we do not serve.
    let verdict = verify(&verifier_for(&other), &message(&body(&V1))).await;
    assert!(matches!(verdict, Err(VerifyError::ForeignTopic { .. })));
}

#[tokio::test]
async fn foreign_certificate_urls_are_rejected_even_when_cached() {
    for url in [
        "https://sns.us-east-2.amazonaws.com.evil.com/x.pem",
        "http://sns.us-east-2.amazonaws.com/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem",
        "https://evil.com/SimpleNotificationService-x.pem",
    ] {
        let verifier = verifier_for(&topic_arn(&V1));
        // The attacker's certificate would be the right one: only the URL rule protects us.
        verifier.seed_certificate(url, CERT_PEM).unwrap();
        let mut b = body(&V1);
        b["SigningCertURL"] = url.into();
        let verdict = verify(&verifier, &message(&b)).await;
        assert_eq!(
            verdict,
            Err(VerifyError::UntrustedCertUrl {
                url: url.to_owned()
            }),
            "{url}"
        );
    }
}

#[tokio::test]
async fn an_explicitly_trusted_certificate_url_is_accepted() {
    let url = "http://127.0.0.1:1/cert.pem";
    let verifier = SnsVerifier::new(topic_arn(&V1), vec![url.to_owned()]).unwrap();
    verifier.seed_certificate(url, CERT_PEM).unwrap();
    let mut b = body(&V1);
    b["SigningCertURL"] = url.into();
    verify(&verifier, &message(&b)).await.unwrap();
}

#[tokio::test]
async fn a_genuine_message_replayed_later_or_dated_ahead_is_refused_after_its_signature() {
    let msg = message(&body(&V2));
    let verifier = verifier_for(&topic_arn(&V2));
    let published = soon_after(&msg) - Duration::from_secs(60);
    // Within the hour (and the clock-skew allowance): accepted.
    let in_time = published + Duration::from_secs(3600 + 299);
    verifier.verify_at(&msg, in_time).await.unwrap();
    // The same bytes two hours later, and today: refused, naming the setting.
    for later in [published + Duration::from_secs(7200), SystemTime::now()] {
        let verdict = verifier.verify_at(&msg, later).await;
        assert!(
            matches!(
                verdict,
                Err(VerifyError::NotFresh(FreshnessError::Stale { .. }))
            ),
            "{verdict:?}"
        );
    }
    // Checked only once the signature holds: a tampered old message is a bad signature.
    let mut tampered = body(&V2);
    tampered["Message"] = "Hello world!".into();
    assert_eq!(
        verifier
            .verify_at(&message(&tampered), SystemTime::now())
            .await,
        Err(VerifyError::BadSignature)
    );
    // A clock ten minutes behind SNS's.
    let verdict = verifier
        .verify_at(&msg, published - Duration::from_secs(600))
        .await;
    assert!(
        matches!(
            verdict,
            Err(VerifyError::NotFresh(FreshnessError::Ahead {
                ahead_secs: 600,
                ..
            }))
        ),
        "{verdict:?}"
    );
    // A longer bound admits it.
    let lenient = verifier_for(&topic_arn(&V2)).with_max_age(Duration::from_secs(3 * 3600));
    lenient
        .verify_at(&msg, published + Duration::from_secs(7200))
        .await
        .unwrap();
}

#[tokio::test]
async fn signature_version_1_is_refused_when_version_2_is_required() {
    let v1 = message(&body(&V1));
    let strict = verifier_for(&topic_arn(&V1)).with_signature_v2_required(true);
    assert_eq!(
        verify(&strict, &v1).await,
        Err(VerifyError::SignatureVersionRefused)
    );
    let v2 = message(&body(&V2));
    let strict = verifier_for(&topic_arn(&V2)).with_signature_v2_required(true);
    verify(&strict, &v2).await.unwrap();
}
