//! SNS deliveries: the confirmation handshake (subscribe, confirm, unsubscribe), one Notification
//! per published chat item in item order per contact and subscription, signed, POSTed with
//! retries and recorded, and redelivery of a recorded message.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::clock;
use crate::config::SignatureVersion;
use crate::error::SandboxError;
use crate::events::SandboxEvent;
use crate::ids;
use crate::sns::filter_policy::FilterPolicy;
use crate::sns::message::{
    ConfirmationBody, NotificationBody, SignedFields, sns_json, string_to_sign,
};
use crate::sns::state::{
    ItemMessage, Publication, SnsAttempt, SnsDelivery, SnsMessageType, Subscription,
    SubscriptionView,
};
use crate::state::Shared;
use crate::sync::lock;
use crate::x::oauth_verify::percent_encode;

const USER_AGENT: &str = "Amazon Simple Notification Service Agent";
const CONTENT_TYPE: &str = "text/plain; charset=UTF-8";

/// Where and what to POST.
struct Post<'a> {
    message_type: SnsMessageType,
    message_id: &'a str,
    topic_arn: &'a str,
    subscription_arn: Option<&'a str>,
    endpoint: &'a str,
    body: &'a str,
}

/// The SigningCertURL of every message: `<base>/sns/SimpleNotificationService-<hash>.pem`.
pub(crate) fn cert_url(shared: &Shared) -> String {
    format!("{}/sns/{}", shared.base_url, shared.signer.cert_file_name())
}

/// Publishes `item` to `topic_arn`: queued for every confirmed subscription whose filter policy
/// (if any) matches its attributes, in call order.
pub(crate) fn publish(shared: &Shared, topic_arn: &str, item: ItemMessage) {
    let initial_contact_id = item.initial_contact_id.clone();
    let publication = Arc::new(Publication {
        message_id: ids::uuid(),
        topic_arn: topic_arn.to_owned(),
        timestamp: clock::now_iso_ms(),
        item,
    });
    let mut sns = lock(&shared.sns);
    let mut targets: Vec<String> = Vec::new();
    for sub in sns.subscriptions.iter_mut() {
        if !sub.receives(topic_arn) {
            continue;
        }
        if sub.accepts(&publication.item.attributes) {
            targets.push(sub.arn.clone());
        } else {
            // As SNS: a message the subscription's filter policy does not match is not sent.
            sub.filtered_out += 1;
        }
    }
    for arn in targets {
        let key = (arn.clone(), initial_contact_id.clone());
        let queue = sns.queues.entry(key).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            if let Some(task_shared) = shared.arc() {
                shared.spawn(notification_worker(task_shared, arn, rx));
            }
            tx
        });
        // A closed queue means the sandbox is shutting down.
        let _ = queue.send(Arc::clone(&publication));
    }
}

/// Drops the queues of a finished chat; their workers exit once they have drained them.
pub(crate) fn close_contact(shared: &Shared, initial_contact_id: &str) {
    lock(&shared.sns)
        .queues
        .retain(|(_, contact), _| contact != initial_contact_id);
}

/// `GET SubscribeURL`: confirms the subscription with this topic and token.
pub(crate) fn confirm(shared: &Shared, topic_arn: &str, token: &str) -> Option<SubscriptionView> {
    let view = {
        let mut sns = lock(&shared.sns);
        let sub = sns
            .subscriptions
            .iter_mut()
            .find(|s| s.topic_arn == topic_arn && s.token == token && !s.unsubscribed)?;
        sub.confirmed = true;
        sub.view()
    };
    tracing::info!(subscription = %view.subscription_arn, endpoint = %view.endpoint, "SNS subscription confirmed");
    shared.events.emit(SandboxEvent::SnsSubscriptionConfirmed {
        subscription_arn: view.subscription_arn.clone(),
        endpoint: view.endpoint.clone(),
    });
    Some(view)
}

/// Sets or removes (`None`, empty) the filter policy of subscription `arn`.
pub(crate) fn set_filter_policy(
    shared: &Shared,
    arn: &str,
    filter_policy: Option<&str>,
) -> Result<SubscriptionView, SandboxError> {
    let policy = filter_policy
        .filter(|text| !text.is_empty())
        .map(|text| FilterPolicy::parse(text, None))
        .transpose()?;
    let mut sns = lock(&shared.sns);
    let sub = sns
        .subscriptions
        .iter_mut()
        .find(|s| s.arn == arn && !s.unsubscribed)
        .ok_or_else(|| SandboxError::UnknownSubscription(arn.to_owned()))?;
    sub.filter_policy = policy;
    Ok(sub.view())
}

/// `GET UnsubscribeURL`.
pub(crate) fn unsubscribe(shared: &Shared, subscription_arn: &str) -> bool {
    let mut sns = lock(&shared.sns);
    let Some(sub) = sns
        .subscriptions
        .iter_mut()
        .find(|s| s.arn == subscription_arn)
    else {
        return false;
    };
    sub.unsubscribed = true;
    sns.queues.retain(|(arn, _), _| arn != subscription_arn);
    true
}

fn sign_or_log(shared: &Shared, fields: &SignedFields<'_>) -> Option<String> {
    match shared
        .signer
        .sign(shared.cfg.sns.signature_version, &string_to_sign(fields))
    {
        Ok(signature) => Some(signature),
        Err(e) => {
            tracing::error!(error = %e, "cannot sign an SNS message");
            None
        }
    }
}

/// `body` (an SNS message as the sandbox POSTs it) with `Timestamp` and `SignatureVersion`
/// replaced and signed again with the sandbox's key (`SandboxHandle::sns_resigned`).
pub(crate) fn resign(
    shared: &Shared,
    body: &str,
    timestamp_ms: i64,
    version: SignatureVersion,
) -> Result<String, SandboxError> {
    let mut doc: serde_json::Map<String, serde_json::Value> = serde_json::from_str(body)
        .map_err(|e| SandboxError::invalid("SNS message", e.to_string()))?;
    let text = |key: &'static str| -> Result<Option<String>, SandboxError> {
        match doc.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(SandboxError::invalid(
                "SNS message",
                format!("{key} is not a string"),
            )),
        }
    };
    let required = |key: &'static str, value: Option<String>| {
        value.ok_or_else(|| SandboxError::invalid("SNS message", format!("no {key}")))
    };
    let timestamp = clock::iso_ms(clock::from_unix_ms(timestamp_ms));
    let (message, message_id) = (text("Message")?, text("MessageId")?);
    let (subject, subscribe_url, token) = (text("Subject")?, text("SubscribeURL")?, text("Token")?);
    let (topic_arn, message_type) = (text("TopicArn")?, text("Type")?);
    let (message, message_id) = (
        required("Message", message)?,
        required("MessageId", message_id)?,
    );
    let (topic_arn, message_type) = (
        required("TopicArn", topic_arn)?,
        required("Type", message_type)?,
    );
    let fields = SignedFields {
        message: &message,
        message_id: &message_id,
        subject: subject.as_deref(),
        subscribe_url: subscribe_url.as_deref(),
        timestamp: &timestamp,
        token: token.as_deref(),
        topic_arn: &topic_arn,
        message_type: &message_type,
    };
    let signature = shared.signer.sign(version, &string_to_sign(&fields))?;
    doc.insert("Timestamp".into(), timestamp.into());
    doc.insert("SignatureVersion".into(), version.as_str().into());
    doc.insert("Signature".into(), signature.into());
    serde_json::to_string(&doc).map_err(|e| SandboxError::invalid("SNS message", e.to_string()))
}

fn record_delivery(shared: &Shared, delivery: SnsDelivery) -> usize {
    let mut sns = lock(&shared.sns);
    sns.deliveries.push(delivery);
    sns.deliveries.len() - 1
}

/// One POST; the attempt is recorded on delivery `record` and reported as an event.
async fn post_once(shared: &Shared, record: usize, post: &Post<'_>, attempt: u32) -> SnsAttempt {
    let mut request = shared
        .http
        .post(post.endpoint)
        .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
        .header(reqwest::header::USER_AGENT, USER_AGENT)
        .header("x-amz-sns-message-type", post.message_type.as_str())
        .header("x-amz-sns-message-id", post.message_id)
        .header("x-amz-sns-topic-arn", post.topic_arn)
        .timeout(Duration::from_millis(shared.cfg.sns.timeout_ms))
        .body(post.body.to_owned());
    if let Some(arn) = post.subscription_arn {
        request = request.header("x-amz-sns-subscription-arn", arn);
    }
    let started = std::time::Instant::now();
    let result = match request.send().await {
        Ok(resp) => SnsAttempt {
            status: Some(resp.status().as_u16()),
            error: None,
            at: clock::now_iso_ms(),
        },
        Err(e) => SnsAttempt {
            status: None,
            error: Some(e.to_string()),
            at: clock::now_iso_ms(),
        },
    };
    let ok = result.status.is_some_and(|s| (200..300).contains(&s));
    let subscription_arn = {
        let mut sns = lock(&shared.sns);
        match sns.deliveries.get_mut(record) {
            Some(delivery) => {
                delivery.attempts.push(result.clone());
                delivery.delivered |= ok;
                delivery.subscription_arn.clone()
            }
            None => String::new(),
        }
    };
    shared.events.emit(SandboxEvent::SnsDelivered {
        message_id: post.message_id.to_owned(),
        subscription_arn,
        status: result.status,
        attempt,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
    });
    result
}

/// POSTs until a 2xx or the retries are spent. Returns the last attempt.
async fn post_with_retries(shared: &Shared, record: usize, post: &Post<'_>) -> SnsAttempt {
    let attempts = shared.cfg.sns.retries.saturating_add(1);
    let mut attempt = 1;
    loop {
        let result = post_once(shared, record, post, attempt).await;
        if result.status.is_some_and(|s| (200..300).contains(&s)) || attempt >= attempts {
            return result;
        }
        tracing::debug!(
            message_id = post.message_id,
            attempt,
            "SNS delivery failed; retrying"
        );
        tokio::time::sleep(Duration::from_millis(shared.cfg.sns.retry_delay_ms)).await;
        attempt += 1;
    }
}

/// Signs and delivers one publication to one subscription.
async fn deliver_notification(shared: &Shared, subscription_arn: &str, p: &Publication) {
    let endpoint = {
        let sns = lock(&shared.sns);
        match sns.subscriptions.iter().find(|s| s.arn == subscription_arn) {
            Some(s) if !s.unsubscribed => s.endpoint.clone(),
            _ => return,
        }
    };
    let fields = SignedFields {
        message: &p.item.message,
        message_id: &p.message_id,
        subject: None,
        subscribe_url: None,
        timestamp: &p.timestamp,
        token: None,
        topic_arn: &p.topic_arn,
        message_type: SnsMessageType::Notification.as_str(),
    };
    let Some(signature) = sign_or_log(shared, &fields) else {
        return;
    };
    let unsubscribe_url = format!(
        "{}/sns/unsubscribe?Action=Unsubscribe&SubscriptionArn={}",
        shared.base_url,
        percent_encode(subscription_arn)
    );
    let cert_url = cert_url(shared);
    let body = sns_json(&NotificationBody {
        message_type: SnsMessageType::Notification.as_str(),
        message_id: &p.message_id,
        topic_arn: &p.topic_arn,
        message: &p.item.message,
        timestamp: &p.timestamp,
        signature_version: shared.cfg.sns.signature_version.as_str(),
        signature: &signature,
        signing_cert_url: &cert_url,
        unsubscribe_url: &unsubscribe_url,
        message_attributes: &p.item.attributes,
    });
    let record = record_delivery(
        shared,
        SnsDelivery {
            message_id: p.message_id.clone(),
            message_type: SnsMessageType::Notification,
            topic_arn: p.topic_arn.clone(),
            subscription_arn: subscription_arn.to_owned(),
            endpoint: endpoint.clone(),
            contact_id: Some(p.item.contact_id.clone()),
            initial_contact_id: Some(p.item.initial_contact_id.clone()),
            item_id: Some(p.item.item_id.clone()),
            body: body.clone(),
            attempts: Vec::new(),
            delivered: false,
        },
    );
    let post = Post {
        message_type: SnsMessageType::Notification,
        message_id: &p.message_id,
        topic_arn: &p.topic_arn,
        subscription_arn: Some(subscription_arn),
        endpoint: &endpoint,
        body: &body,
    };
    post_with_retries(shared, record, &post).await;
}

async fn notification_worker(
    shared: Arc<Shared>,
    subscription_arn: String,
    mut rx: mpsc::UnboundedReceiver<Arc<Publication>>,
) {
    while let Some(publication) = rx.recv().await {
        deliver_notification(&shared, &subscription_arn, &publication).await;
    }
}

/// Subscribes `endpoint` (http/https) to `topic_arn` and POSTs the SubscriptionConfirmation.
/// Returns once that POST was answered (or its retries ran out); the subscriber may confirm later.
pub(crate) async fn subscribe(
    shared: &Shared,
    topic_arn: &str,
    endpoint: &str,
    filter_policy: Option<FilterPolicy>,
) -> Result<SubscriptionView, SandboxError> {
    let arn = add_subscription(shared, topic_arn, endpoint, filter_policy)?;
    confirm_subscription(shared, &arn).await
}

/// Records a pending subscription of `endpoint` (http/https) to `topic_arn`; returns its ARN.
pub(crate) fn add_subscription(
    shared: &Shared,
    topic_arn: &str,
    endpoint: &str,
    filter_policy: Option<FilterPolicy>,
) -> Result<String, SandboxError> {
    let parsed = url::Url::parse(endpoint)
        .map_err(|e| SandboxError::invalid("SNS endpoint", e.to_string()))?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err(SandboxError::invalid(
            "SNS endpoint",
            "only http and https endpoints are supported",
        ));
    }
    let subscription = Subscription {
        arn: format!("{topic_arn}:{}", ids::uuid()),
        topic_arn: topic_arn.to_owned(),
        endpoint: endpoint.to_owned(),
        token: ids::hex_token(8),
        confirmed: false,
        unsubscribed: false,
        confirmation_status: None,
        filter_policy,
        filtered_out: 0,
    };
    let arn = subscription.arn.clone();
    lock(&shared.sns).subscriptions.push(subscription);
    Ok(arn)
}

/// POSTs the SubscriptionConfirmation of subscription `arn`; returns once that POST was answered
/// (or its retries ran out).
pub(crate) async fn confirm_subscription(
    shared: &Shared,
    arn: &str,
) -> Result<SubscriptionView, SandboxError> {
    let (topic_arn, endpoint, token) = {
        let sns = lock(&shared.sns);
        let sub = sns
            .subscriptions
            .iter()
            .find(|s| s.arn == arn)
            .ok_or_else(|| SandboxError::UnknownSubscription(arn.to_owned()))?;
        (
            sub.topic_arn.clone(),
            sub.endpoint.clone(),
            sub.token.clone(),
        )
    };
    let (topic_arn, endpoint) = (topic_arn.as_str(), endpoint.as_str());

    let message_id = ids::uuid();
    let timestamp = clock::now_iso_ms();
    let message = format!(
        "You have chosen to subscribe to the topic {topic_arn}.\nTo confirm the subscription, visit the SubscribeURL included in this message."
    );
    let subscribe_url = format!(
        "{}/sns/confirm?Action=ConfirmSubscription&TopicArn={}&Token={}",
        shared.base_url,
        percent_encode(topic_arn),
        token
    );
    let message_type = SnsMessageType::SubscriptionConfirmation.as_str();
    let fields = SignedFields {
        message: &message,
        message_id: &message_id,
        subject: None,
        subscribe_url: Some(&subscribe_url),
        timestamp: &timestamp,
        token: Some(&token),
        topic_arn,
        message_type,
    };
    let signature = shared
        .signer
        .sign(shared.cfg.sns.signature_version, &string_to_sign(&fields))?;
    let cert_url = cert_url(shared);
    let body = sns_json(&ConfirmationBody {
        message_type,
        message_id: &message_id,
        token: &token,
        topic_arn,
        message: &message,
        subscribe_url: &subscribe_url,
        timestamp: &timestamp,
        signature_version: shared.cfg.sns.signature_version.as_str(),
        signature: &signature,
        signing_cert_url: &cert_url,
    });
    let record = record_delivery(
        shared,
        SnsDelivery {
            message_id: message_id.clone(),
            message_type: SnsMessageType::SubscriptionConfirmation,
            topic_arn: topic_arn.to_owned(),
            subscription_arn: arn.to_owned(),
            endpoint: endpoint.to_owned(),
            contact_id: None,
            initial_contact_id: None,
            item_id: None,
            body: body.clone(),
            attempts: Vec::new(),
            delivered: false,
        },
    );
    let post = Post {
        message_type: SnsMessageType::SubscriptionConfirmation,
        message_id: &message_id,
        topic_arn,
        subscription_arn: None,
        endpoint,
        body: &body,
    };
    let last = post_with_retries(shared, record, &post).await;
    let mut sns = lock(&shared.sns);
    let sub = sns
        .subscriptions
        .iter_mut()
        .find(|s| s.arn == arn)
        .ok_or_else(|| SandboxError::UnknownSubscription(arn.to_owned()))?;
    sub.confirmation_status = last.status;
    Ok(sub.view())
}

/// Re-POSTs the identical body of every delivery of `message_id` (one attempt each, no retries).
pub(crate) async fn redeliver(
    shared: &Shared,
    message_id: &str,
) -> Result<Vec<SnsAttempt>, SandboxError> {
    let targets: Vec<(usize, SnsDelivery)> = lock(&shared.sns)
        .deliveries
        .iter()
        .enumerate()
        .filter(|(_, d)| d.message_id == message_id)
        .map(|(i, d)| (i, d.clone()))
        .collect();
    if targets.is_empty() {
        return Err(SandboxError::UnknownMessage(message_id.to_owned()));
    }
    let mut attempts = Vec::new();
    for (record, delivery) in targets {
        let post = Post {
            message_type: delivery.message_type,
            message_id: &delivery.message_id,
            topic_arn: &delivery.topic_arn,
            subscription_arn: (delivery.message_type == SnsMessageType::Notification)
                .then_some(delivery.subscription_arn.as_str()),
            endpoint: &delivery.endpoint,
            body: &delivery.body,
        };
        let attempt = u32::try_from(delivery.attempts.len() + 1).unwrap_or(u32::MAX);
        attempts.push(post_once(shared, record, &post, attempt).await);
    }
    Ok(attempts)
}
