//! SNS topics, HTTP subscriptions and deliveries: the confirmation handshake, one Notification per
//! chat item in item order per contact and subscription, retries, records and redelivery.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::clock;
use crate::connect::chat::Chat;
use crate::connect::model::ChatItem;
use crate::error::SandboxError;
use crate::events::SandboxEvent;
use crate::ids;
use crate::sns::message::{
    ConfirmationBody, MessageAttribute, NotificationBody, SignedFields, sns_json, string_to_sign,
};
use crate::state::{Shared, lock};
use crate::x::oauth_verify::percent_encode;

const USER_AGENT: &str = "Amazon Simple Notification Service Agent";
const CONTENT_TYPE: &str = "text/plain; charset=UTF-8";

/// A subscription as the sandbox reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionView {
    pub subscription_arn: String,
    pub topic_arn: String,
    pub endpoint: String,
    /// The subscriber fetched the SubscribeURL.
    pub confirmed: bool,
    /// Unsubscribed through the UnsubscribeURL.
    pub unsubscribed: bool,
    /// HTTP status of the SubscriptionConfirmation POST (`None`: no answer).
    pub confirmation_status: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnsMessageType {
    SubscriptionConfirmation,
    Notification,
}

impl SnsMessageType {
    fn as_str(self) -> &'static str {
        match self {
            Self::SubscriptionConfirmation => "SubscriptionConfirmation",
            Self::Notification => "Notification",
        }
    }
}

/// One HTTP attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnsAttempt {
    pub status: Option<u16>,
    pub error: Option<String>,
    pub at: String,
}

/// One SNS message to one subscription, with every attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnsDelivery {
    pub message_id: String,
    pub message_type: SnsMessageType,
    pub topic_arn: String,
    pub subscription_arn: String,
    pub endpoint: String,
    pub contact_id: Option<String>,
    pub initial_contact_id: Option<String>,
    /// The chat item `Id` (notifications).
    pub item_id: Option<String>,
    /// The exact body POSTed.
    pub body: String,
    pub attempts: Vec<SnsAttempt>,
    /// Some attempt got a 2xx.
    pub delivered: bool,
}

#[derive(Debug, Clone)]
struct Subscription {
    arn: String,
    topic_arn: String,
    endpoint: String,
    token: String,
    confirmed: bool,
    unsubscribed: bool,
    confirmation_status: Option<u16>,
}

impl Subscription {
    fn view(&self) -> SubscriptionView {
        SubscriptionView {
            subscription_arn: self.arn.clone(),
            topic_arn: self.topic_arn.clone(),
            endpoint: self.endpoint.clone(),
            confirmed: self.confirmed,
            unsubscribed: self.unsubscribed,
            confirmation_status: self.confirmation_status,
        }
    }

    fn receives(&self, topic_arn: &str) -> bool {
        self.confirmed && !self.unsubscribed && self.topic_arn == topic_arn
    }
}

/// A message published to a topic (before it is signed per subscription).
#[derive(Debug)]
pub(crate) struct Publication {
    message_id: String,
    topic_arn: String,
    message: String,
    timestamp: String,
    attributes: BTreeMap<String, MessageAttribute>,
    contact_id: String,
    initial_contact_id: String,
    item_id: String,
}

type Queue = mpsc::UnboundedSender<Arc<Publication>>;

#[derive(Debug, Default)]
pub(crate) struct SnsState {
    subscriptions: Vec<Subscription>,
    /// One ordered queue (and worker) per (subscription, InitialContactId).
    queues: HashMap<(String, String), Queue>,
    deliveries: Vec<SnsDelivery>,
    /// The topics of the Query API once first used (seeded with the configured topic).
    pub(crate) topics: Option<BTreeMap<String, crate::sns::query::TopicView>>,
}

/// Where and what to POST.
struct Post<'a> {
    message_type: SnsMessageType,
    message_id: &'a str,
    topic_arn: &'a str,
    subscription_arn: Option<&'a str>,
    endpoint: &'a str,
    body: &'a str,
}

impl Shared {
    fn sns_attributes(&self, chat: &Chat, item: &ChatItem) -> BTreeMap<String, MessageAttribute> {
        let mut attributes = BTreeMap::new();
        let mut put = |k: &str, v: &str| {
            attributes.insert(k.to_owned(), MessageAttribute::string(v));
        };
        put("InitialContactId", &item.item.initial_contact_id);
        put("ContactId", &item.item.contact_id);
        if let Some(role) = item.item.participant_role {
            put("ParticipantRole", role.as_str());
        }
        put("InstanceId", &chat.instance_id);
        put("AccountId", &self.cfg.connect.account_id);
        put("Type", item.item.item_type.as_str());
        // ATTACHMENT items have no top-level ContentType (docs/protocols.md B3: unconfirmed).
        if !item.item.content_type.is_empty() {
            put("ContentType", &item.item.content_type);
        }
        put("MessageVisibility", item.visibility.as_str());
        attributes
    }

    /// Publishes `item` to `topic_arn`: queued for every confirmed subscription, in call order.
    pub(crate) fn sns_publish_item(&self, topic_arn: &str, chat: &Chat, item: &ChatItem) {
        let publication = Arc::new(Publication {
            message_id: ids::uuid(),
            topic_arn: topic_arn.to_owned(),
            message: serde_json::to_string(&item.item).unwrap_or_default(),
            timestamp: clock::now_iso_ms(),
            attributes: self.sns_attributes(chat, item),
            contact_id: item.item.contact_id.clone(),
            initial_contact_id: chat.initial_contact_id.clone(),
            item_id: item.item.id.clone(),
        });
        let mut sns = lock(&self.sns);
        let targets: Vec<String> = sns
            .subscriptions
            .iter()
            .filter(|s| s.receives(topic_arn))
            .map(|s| s.arn.clone())
            .collect();
        for arn in targets {
            let key = (arn.clone(), chat.initial_contact_id.clone());
            let queue = sns.queues.entry(key).or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                if let Some(shared) = self.arc() {
                    self.spawn(notification_worker(shared, arn, rx));
                }
                tx
            });
            // A closed queue means the sandbox is shutting down.
            let _ = queue.send(Arc::clone(&publication));
        }
    }

    /// Drops the queues of a finished chat; their workers exit once they have drained them.
    pub(crate) fn sns_close_contact(&self, initial_contact_id: &str) {
        lock(&self.sns)
            .queues
            .retain(|(_, contact), _| contact != initial_contact_id);
    }

    pub(crate) fn sns_subscriptions(&self) -> Vec<SubscriptionView> {
        lock(&self.sns)
            .subscriptions
            .iter()
            .map(Subscription::view)
            .collect()
    }

    pub(crate) fn sns_deliveries(&self) -> Vec<SnsDelivery> {
        lock(&self.sns).deliveries.clone()
    }

    /// `GET SubscribeURL`: confirms the subscription with this topic and token.
    pub(crate) fn sns_confirm(&self, topic_arn: &str, token: &str) -> Option<SubscriptionView> {
        let view = {
            let mut sns = lock(&self.sns);
            let sub = sns
                .subscriptions
                .iter_mut()
                .find(|s| s.topic_arn == topic_arn && s.token == token && !s.unsubscribed)?;
            sub.confirmed = true;
            sub.view()
        };
        tracing::info!(subscription = %view.subscription_arn, endpoint = %view.endpoint, "SNS subscription confirmed");
        self.events.emit(SandboxEvent::SnsSubscriptionConfirmed {
            subscription_arn: view.subscription_arn.clone(),
            endpoint: view.endpoint.clone(),
        });
        Some(view)
    }

    /// `GET UnsubscribeURL`.
    pub(crate) fn sns_unsubscribe(&self, subscription_arn: &str) -> bool {
        let mut sns = lock(&self.sns);
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

    fn sign_or_log(&self, fields: &SignedFields<'_>) -> Option<String> {
        match self
            .signer
            .sign(self.cfg.sns.signature_version, &string_to_sign(fields))
        {
            Ok(signature) => Some(signature),
            Err(e) => {
                tracing::error!(error = %e, "cannot sign an SNS message");
                None
            }
        }
    }

    pub(crate) fn sns_cert_url(&self) -> String {
        format!("{}/sns/{}", self.base_url, self.signer.cert_file_name())
    }

    fn record_delivery(&self, delivery: SnsDelivery) -> usize {
        let mut sns = lock(&self.sns);
        sns.deliveries.push(delivery);
        sns.deliveries.len() - 1
    }

    /// One POST; the attempt is recorded on delivery `record` and reported as an event.
    async fn sns_post_once(&self, record: usize, post: &Post<'_>, attempt: u32) -> SnsAttempt {
        let mut request = self
            .http
            .post(post.endpoint)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .header(reqwest::header::USER_AGENT, USER_AGENT)
            .header("x-amz-sns-message-type", post.message_type.as_str())
            .header("x-amz-sns-message-id", post.message_id)
            .header("x-amz-sns-topic-arn", post.topic_arn)
            .timeout(Duration::from_millis(self.cfg.sns.timeout_ms))
            .body(post.body.to_owned());
        if let Some(arn) = post.subscription_arn {
            request = request.header("x-amz-sns-subscription-arn", arn);
        }
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
            let mut sns = lock(&self.sns);
            match sns.deliveries.get_mut(record) {
                Some(delivery) => {
                    delivery.attempts.push(result.clone());
                    delivery.delivered |= ok;
                    delivery.subscription_arn.clone()
                }
                None => String::new(),
            }
        };
        self.events.emit(SandboxEvent::SnsDelivered {
            message_id: post.message_id.to_owned(),
            subscription_arn,
            status: result.status,
            attempt,
        });
        result
    }

    /// POSTs until a 2xx or the retries are spent. Returns the last attempt.
    async fn sns_post_with_retries(&self, record: usize, post: &Post<'_>) -> SnsAttempt {
        let attempts = self.cfg.sns.retries.saturating_add(1);
        let mut attempt = 1;
        loop {
            let result = self.sns_post_once(record, post, attempt).await;
            if result.status.is_some_and(|s| (200..300).contains(&s)) || attempt >= attempts {
                return result;
            }
            tracing::debug!(
                message_id = post.message_id,
                attempt,
                "SNS delivery failed; retrying"
            );
            tokio::time::sleep(Duration::from_millis(self.cfg.sns.retry_delay_ms)).await;
            attempt += 1;
        }
    }

    /// Signs and delivers one publication to one subscription.
    async fn sns_deliver_notification(&self, subscription_arn: &str, p: &Publication) {
        let endpoint = {
            let sns = lock(&self.sns);
            match sns.subscriptions.iter().find(|s| s.arn == subscription_arn) {
                Some(s) if !s.unsubscribed => s.endpoint.clone(),
                _ => return,
            }
        };
        let fields = SignedFields {
            message: &p.message,
            message_id: &p.message_id,
            subject: None,
            subscribe_url: None,
            timestamp: &p.timestamp,
            token: None,
            topic_arn: &p.topic_arn,
            message_type: SnsMessageType::Notification.as_str(),
        };
        let Some(signature) = self.sign_or_log(&fields) else {
            return;
        };
        let unsubscribe_url = format!(
            "{}/sns/unsubscribe?Action=Unsubscribe&SubscriptionArn={}",
            self.base_url,
            percent_encode(subscription_arn)
        );
        let cert_url = self.sns_cert_url();
        let body = sns_json(&NotificationBody {
            message_type: SnsMessageType::Notification.as_str(),
            message_id: &p.message_id,
            topic_arn: &p.topic_arn,
            message: &p.message,
            timestamp: &p.timestamp,
            signature_version: self.cfg.sns.signature_version.as_str(),
            signature: &signature,
            signing_cert_url: &cert_url,
            unsubscribe_url: &unsubscribe_url,
            message_attributes: &p.attributes,
        });
        let record = self.record_delivery(SnsDelivery {
            message_id: p.message_id.clone(),
            message_type: SnsMessageType::Notification,
            topic_arn: p.topic_arn.clone(),
            subscription_arn: subscription_arn.to_owned(),
            endpoint: endpoint.clone(),
            contact_id: Some(p.contact_id.clone()),
            initial_contact_id: Some(p.initial_contact_id.clone()),
            item_id: Some(p.item_id.clone()),
            body: body.clone(),
            attempts: Vec::new(),
            delivered: false,
        });
        let post = Post {
            message_type: SnsMessageType::Notification,
            message_id: &p.message_id,
            topic_arn: &p.topic_arn,
            subscription_arn: Some(subscription_arn),
            endpoint: &endpoint,
            body: &body,
        };
        self.sns_post_with_retries(record, &post).await;
    }
}

async fn notification_worker(
    shared: Arc<Shared>,
    subscription_arn: String,
    mut rx: mpsc::UnboundedReceiver<Arc<Publication>>,
) {
    while let Some(publication) = rx.recv().await {
        shared
            .sns_deliver_notification(&subscription_arn, &publication)
            .await;
    }
}

/// Subscribes `endpoint` (http/https) to `topic_arn` and POSTs the SubscriptionConfirmation.
/// Returns once that POST was answered (or its retries ran out); the subscriber may confirm later.
pub(crate) async fn subscribe(
    shared: &Shared,
    topic_arn: &str,
    endpoint: &str,
) -> Result<SubscriptionView, SandboxError> {
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
    };
    lock(&shared.sns).subscriptions.push(subscription.clone());

    let message_id = ids::uuid();
    let timestamp = clock::now_iso_ms();
    let message = format!(
        "You have chosen to subscribe to the topic {topic_arn}.\nTo confirm the subscription, visit the SubscribeURL included in this message."
    );
    let subscribe_url = format!(
        "{}/sns/confirm?Action=ConfirmSubscription&TopicArn={}&Token={}",
        shared.base_url,
        percent_encode(topic_arn),
        subscription.token
    );
    let message_type = SnsMessageType::SubscriptionConfirmation.as_str();
    let fields = SignedFields {
        message: &message,
        message_id: &message_id,
        subject: None,
        subscribe_url: Some(&subscribe_url),
        timestamp: &timestamp,
        token: Some(&subscription.token),
        topic_arn,
        message_type,
    };
    let signature = shared
        .signer
        .sign(shared.cfg.sns.signature_version, &string_to_sign(&fields))?;
    let cert_url = shared.sns_cert_url();
    let body = sns_json(&ConfirmationBody {
        message_type,
        message_id: &message_id,
        token: &subscription.token,
        topic_arn,
        message: &message,
        subscribe_url: &subscribe_url,
        timestamp: &timestamp,
        signature_version: shared.cfg.sns.signature_version.as_str(),
        signature: &signature,
        signing_cert_url: &cert_url,
    });
    let record = shared.record_delivery(SnsDelivery {
        message_id: message_id.clone(),
        message_type: SnsMessageType::SubscriptionConfirmation,
        topic_arn: topic_arn.to_owned(),
        subscription_arn: subscription.arn.clone(),
        endpoint: endpoint.to_owned(),
        contact_id: None,
        initial_contact_id: None,
        item_id: None,
        body: body.clone(),
        attempts: Vec::new(),
        delivered: false,
    });
    let post = Post {
        message_type: SnsMessageType::SubscriptionConfirmation,
        message_id: &message_id,
        topic_arn,
        subscription_arn: None,
        endpoint,
        body: &body,
    };
    let last = shared.sns_post_with_retries(record, &post).await;
    let mut sns = lock(&shared.sns);
    let sub = sns
        .subscriptions
        .iter_mut()
        .find(|s| s.arn == subscription.arn)
        .ok_or_else(|| SandboxError::UnknownSubscription(subscription.arn.clone()))?;
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
        attempts.push(shared.sns_post_once(record, &post, attempt).await);
    }
    Ok(attempts)
}
