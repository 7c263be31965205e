//! The SNS emulator's memory: HTTP subscriptions, one ordered delivery queue per subscription and
//! chat, their filter policies, the record of every message POSTed (with its attempts), and the Query API's topics; the
//! views of subscriptions and deliveries the sandbox reports.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::config::SandboxConfig;
use crate::sns::filter_policy::FilterPolicy;
use crate::sns::message::MessageAttribute;
use crate::sns::topics::TopicView;

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
    /// The `FilterPolicy` attribute (scope `MessageAttributes`), as set.
    #[serde(default)]
    pub filter_policy: Option<String>,
    /// Messages of the topic its filter policy kept from it.
    #[serde(default)]
    pub filtered_out: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnsMessageType {
    SubscriptionConfirmation,
    Notification,
}

impl SnsMessageType {
    pub(crate) fn as_str(self) -> &'static str {
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
pub(crate) struct Subscription {
    pub arn: String,
    pub topic_arn: String,
    pub endpoint: String,
    pub token: String,
    pub confirmed: bool,
    pub unsubscribed: bool,
    pub confirmation_status: Option<u16>,
    pub filter_policy: Option<FilterPolicy>,
    pub filtered_out: u64,
}

impl Subscription {
    pub(crate) fn view(&self) -> SubscriptionView {
        SubscriptionView {
            subscription_arn: self.arn.clone(),
            topic_arn: self.topic_arn.clone(),
            endpoint: self.endpoint.clone(),
            confirmed: self.confirmed,
            unsubscribed: self.unsubscribed,
            confirmation_status: self.confirmation_status,
            filter_policy: self.filter_policy.as_ref().map(|p| p.text().to_owned()),
            filtered_out: self.filtered_out,
        }
    }

    /// Whether messages published to `topic_arn` are delivered to this subscription.
    pub(crate) fn receives(&self, topic_arn: &str) -> bool {
        self.confirmed && !self.unsubscribed && self.topic_arn == topic_arn
    }

    /// Whether its filter policy (if any) lets a message with `attributes` through.
    pub(crate) fn accepts(&self, attributes: &BTreeMap<String, MessageAttribute>) -> bool {
        self.filter_policy
            .as_ref()
            .is_none_or(|policy| policy.matches(attributes))
    }
}

/// What a publisher (Connect chat streaming) hands to a topic: one chat item.
#[derive(Debug)]
pub(crate) struct ItemMessage {
    /// The `Message`: the item's JSON.
    pub message: String,
    pub attributes: BTreeMap<String, MessageAttribute>,
    pub contact_id: String,
    /// The ordering key: messages of one chat reach a subscription in publication order.
    pub initial_contact_id: String,
    pub item_id: String,
}

/// A message published to a topic (before it is signed per subscription).
#[derive(Debug)]
pub(crate) struct Publication {
    pub message_id: String,
    pub topic_arn: String,
    pub timestamp: String,
    pub item: ItemMessage,
}

pub(crate) type Queue = mpsc::UnboundedSender<Arc<Publication>>;

#[derive(Debug, Default)]
pub(crate) struct SnsState {
    pub subscriptions: Vec<Subscription>,
    /// One ordered queue (and worker) per (subscription, InitialContactId).
    pub queues: HashMap<(String, String), Queue>,
    pub deliveries: Vec<SnsDelivery>,
    /// The topics of the Query API once first used (see [`SnsState::topics`]).
    topics: Option<BTreeMap<String, TopicView>>,
}

impl SnsState {
    /// The Query API's topics, seeded with the configured one on first use.
    pub(crate) fn topics(&mut self, cfg: &SandboxConfig) -> &mut BTreeMap<String, TopicView> {
        self.topics.get_or_insert_with(|| {
            let arn = cfg.sns.topic_arn.clone();
            let topic = TopicView::new(&arn, None, None, &cfg.connect.account_id);
            BTreeMap::from([(arn, topic)])
        })
    }

    /// Every subscription, in creation order.
    pub(crate) fn subscription_views(&self) -> Vec<SubscriptionView> {
        self.subscriptions.iter().map(Subscription::view).collect()
    }
}
