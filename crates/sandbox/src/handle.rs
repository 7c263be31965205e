//! `SandboxHandle`: the Rust control surface of a running sandbox (cheap to clone) — addresses
//! and lifecycle, observation, X registry and webhook side, media files, Connect agent side, SNS,
//! faults and stats. The X activity, contact flow and SNS topic controls are in
//! [`crate::x::controls`], [`crate::connect::controls`] and [`crate::sns::controls`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use crate::clock;
use crate::config::{AttachmentScan, SandboxConfig, SignatureVersion};
use crate::connect::agent;
use crate::connect::attachments;
use crate::connect::model::{
    AgentAttachment, ArtifactStatus, AttachmentView, ChatItem, ContactView, ItemSpec,
    S3RequestRecord,
};
use crate::error::SandboxError;
use crate::events::{LoggedEvent, SandboxEvent};
use crate::faults::{
    DownMode, Fault, FaultOp, FaultProfile, PendingFault, SandboxStats, Side, ThrottleBurst,
    ThrottleBurstView,
};
use crate::media::files::{FileInfo, FileOrigin, MediaFile, ServeOptions, Source, StoredFile};
use crate::media::registry::MediaRequestRecord;
use crate::sns::delivery;
use crate::sns::filter_policy::FilterPolicy;
use crate::sns::state::{SnsAttempt, SnsDelivery, SnsMessageType, SubscriptionView};
use crate::state::Shared;
use crate::sync::lock;
use crate::x::dm_spec::DmSpec;
use crate::x::records::{
    CrcOutcome, DeliveryKind, RequestRecord, SentDm, UploadedMedia, WebhookDelivery,
    WebhookRegistration,
};
use crate::x::users::SandboxUser;
use crate::x::webhook_client::{self, SignatureHeader};
use crate::x::{dm_activity, webhooks};

/// How often `wait_until` re-checks its condition.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A running sandbox. Dropping handles does not stop it; `shutdown` does.
#[derive(Debug, Clone)]
pub struct SandboxHandle {
    pub(crate) shared: Arc<Shared>,
}

impl SandboxHandle {
    // ----- addresses and lifecycle -----

    /// `http://127.0.0.1:PORT` — the X API base URL and the AWS endpoint URL for the bridge.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// `<base>/sns/SimpleNotificationService-<hash>.pem`, the SigningCertURL of every SNS message.
    pub fn sns_cert_url(&self) -> String {
        delivery::cert_url(&self.shared)
    }

    /// The signing certificate (PEM).
    pub fn sns_cert_pem(&self) -> String {
        self.shared.signer.cert_pem().to_owned()
    }

    /// `http://localhost:PORT`: this listener under another host name — a media host a bridge
    /// allow-listing `base_url` must not fetch from (the sandbox would still record the GET).
    pub fn alt_base_url(&self) -> String {
        let port = self.shared.base_url.rsplit(':').next().unwrap_or_default();
        format!("http://localhost:{port}")
    }

    /// The configured streaming topic.
    pub fn sns_topic_arn(&self) -> String {
        self.shared.cfg.sns.topic_arn.clone()
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.shared.cfg
    }

    /// Stops the listener and every background task (deliveries in flight are abandoned).
    pub fn shutdown(&self) {
        self.shared.shutdown();
    }

    /// Resolves once `shutdown` has been called.
    pub async fn stopped(&self) {
        self.shared.stopped().await;
    }

    // ----- observation -----

    /// Live events from now on.
    pub fn events(&self) -> broadcast::Receiver<SandboxEvent> {
        self.shared.events.subscribe()
    }

    /// Logged events with a sequence number above `since` (0 = all still kept).
    pub fn event_log(&self, since: u64) -> Vec<LoggedEvent> {
        self.shared.events.since(since)
    }

    /// Polls `check` until it returns `Some` or `timeout` passes.
    pub async fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&SandboxHandle) -> Option<T>,
    ) -> Result<T, SandboxError> {
        let start = Instant::now();
        loop {
            if let Some(value) = check(self) {
                return Ok(value);
            }
            if start.elapsed() >= timeout {
                return Err(SandboxError::Timeout {
                    what: what.to_owned(),
                    millis: timeout.as_millis(),
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    // ----- X: registry and records -----

    /// Adds or replaces a user of the registry (`GET /2/users/:id`, webhook `users` maps).
    pub fn add_user(&self, user: SandboxUser) {
        lock(&self.shared.x).users.insert(user.id.clone(), user);
    }

    pub fn users(&self) -> Vec<SandboxUser> {
        lock(&self.shared.x).users.values().cloned().collect()
    }

    /// DMs accepted by `POST /2/dm_conversations/with/:id/messages`, in order.
    pub fn sent_dms(&self) -> Vec<SentDm> {
        lock(&self.shared.x).dms.clone()
    }

    /// Every X REST call, including refused ones.
    pub fn x_requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.x).requests.clone()
    }

    /// X media uploads (media upload v2), oldest first.
    pub fn uploaded_media(&self) -> Vec<UploadedMedia> {
        let mut all: Vec<UploadedMedia> = lock(&self.shared.x)
            .uploads
            .values()
            .map(|u| u.view.clone())
            .collect();
        all.sort_by(|a, b| (a.media_id.len(), &a.media_id).cmp(&(b.media_id.len(), &b.media_id)));
        all
    }

    pub fn media_upload(&self, media_id: &str) -> Option<UploadedMedia> {
        lock(&self.shared.x)
            .uploads
            .get(media_id)
            .map(|u| u.view.clone())
    }

    // ----- media files -----

    /// Registers a file the sandbox can serve (DM media, agent attachments). Generated files are
    /// hashed once here, by streaming (about a second per few hundred MB).
    pub fn add_file(&self, file: MediaFile) -> FileInfo {
        // Hashed before taking the lock: a generated file may be hundreds of MB.
        let stored = StoredFile::from_spec(file, FileOrigin::Registered);
        lock(&self.shared.media).add(stored)
    }

    /// Every stored file: registered, decoys, X uploads, Connect uploads.
    pub fn files(&self) -> Vec<FileInfo> {
        lock(&self.shared.media).infos()
    }

    pub fn file(&self, file_id: &str) -> Option<FileInfo> {
        lock(&self.shared.media)
            .get(file_id)
            .map(|f| f.info.clone())
    }

    /// The bytes of a stored file, if it was retained and is at most `max_len` bytes long
    /// (generated content is materialised).
    pub fn file_bytes(&self, file_id: &str, max_len: u64) -> Option<Vec<u8>> {
        let file = lock(&self.shared.media).get(file_id).cloned()?;
        if file.info.size > max_len {
            return None;
        }
        match file.source {
            Source::Bytes(bytes) => Some(bytes.to_vec()),
            Source::Generated { size, seed } => {
                Some(crate::media::files::generated_bytes(size, seed))
            }
            Source::HashOnly => None,
        }
    }

    /// Changes how a file is served (chunked without Content-Length, redirect).
    pub fn set_serve_options(
        &self,
        file_id: &str,
        serve: ServeOptions,
    ) -> Result<FileInfo, SandboxError> {
        lock(&self.shared.media)
            .set_serve_options(file_id, serve)
            .ok_or_else(|| SandboxError::UnknownFile(file_id.to_owned()))
    }

    /// Every GET/HEAD of a DM media URL (TON, twimg-style, other registered URLs), refused ones
    /// included — an empty list proves nothing was fetched.
    pub fn media_requests(&self) -> Vec<MediaRequestRecord> {
        lock(&self.shared.media).requests.clone()
    }

    // ----- X: webhook side -----

    /// Registers the webhook and runs X's CRC against it; the outcome decides its validity.
    pub async fn set_webhook(&self, url: &str) -> Result<CrcOutcome, SandboxError> {
        webhooks::set_webhook(&self.shared, url).await
    }

    /// Sends a CRC with an arbitrary token (e.g. a signing-oracle probe); changes nothing.
    pub async fn crc_check(&self, url: &str, crc_token: &str) -> Result<CrcOutcome, SandboxError> {
        webhook_client::crc_check(&self.shared, url, crc_token).await
    }

    /// The app's (first) webhook; see `webhooks` for all.
    pub fn webhook(&self) -> Option<WebhookRegistration> {
        lock(&self.shared.x).webhooks.first().cloned()
    }

    /// A customer DM: recorded in the DM history, then routed to the subscriptions it matches
    /// (XAA envelope to their webhooks, signed, and to every open activity stream; Account
    /// Activity shape to AAA subscriptions). Not retried. Without a matching subscription the
    /// answer has no status.
    pub async fn deliver_dm(&self, spec: DmSpec) -> Result<WebhookDelivery, SandboxError> {
        dm_activity::deliver_dm(&self.shared, spec).await
    }

    /// Delivers a typing indicator from `sender_id`.
    pub async fn deliver_typing(&self, sender_id: &str) -> Result<WebhookDelivery, SandboxError> {
        dm_activity::deliver_typing(&self.shared, sender_id).await
    }

    /// Delivers a read receipt from `sender_id`.
    pub async fn deliver_read(
        &self,
        sender_id: &str,
        last_read_event_id: &str,
    ) -> Result<WebhookDelivery, SandboxError> {
        dm_activity::deliver_read(&self.shared, sender_id, last_read_event_id).await
    }

    /// POSTs `body` as-is, with the chosen signature header.
    pub async fn deliver_raw(
        &self,
        body: Vec<u8>,
        signature: SignatureHeader,
    ) -> Result<WebhookDelivery, SandboxError> {
        webhook_client::deliver(&self.shared, DeliveryKind::Raw, None, body, signature).await
    }

    /// Every webhook POST (deliveries and echoes), in order.
    pub fn webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        lock(&self.shared.x).deliveries.clone()
    }

    // ----- Connect -----

    pub fn contacts(&self) -> Vec<ContactView> {
        lock(&self.shared.connect)
            .chats
            .iter()
            .map(|c| c.view())
            .collect()
    }

    /// The contact with this ContactId (current or pre-transfer) or InitialContactId.
    pub fn contact(&self, contact_id: &str) -> Option<ContactView> {
        let cs = lock(&self.shared.connect);
        cs.find(contact_id)
            .and_then(|i| cs.chats.get(i))
            .map(|c| c.view())
    }

    pub fn agent_accept(
        &self,
        contact_id: &str,
        agent_name: &str,
    ) -> Result<ChatItem, SandboxError> {
        agent::accept(&self.shared, contact_id, agent_name)
    }

    /// A MESSAGE (role AGENT, visibility ALL) from the agent who accepted; the CCP sends `text/markdown`.
    pub fn agent_send(
        &self,
        contact_id: &str,
        content: &str,
        content_type: &str,
    ) -> Result<ChatItem, SandboxError> {
        agent::send(&self.shared, contact_id, content, content_type)
    }

    pub fn agent_send_item(
        &self,
        contact_id: &str,
        spec: ItemSpec,
    ) -> Result<ChatItem, SandboxError> {
        agent::send_item(&self.shared, contact_id, spec)
    }

    pub fn agent_typing(&self, contact_id: &str) -> Result<ChatItem, SandboxError> {
        agent::typing(&self.shared, contact_id)
    }

    /// The agent's `message.read` receipt of item `message_id` (a MESSAGEMETADATA item); refused
    /// while a supervisor is barged in.
    pub fn agent_read(&self, contact_id: &str, message_id: &str) -> Result<ChatItem, SandboxError> {
        agent::read(&self.shared, contact_id, message_id)
    }

    pub fn agent_leave(&self, contact_id: &str) -> Result<ChatItem, SandboxError> {
        agent::leave(&self.shared, contact_id)
    }

    /// A supervisor barges in to the contact (role SUPERVISOR, its `participant.joined` item):
    /// the chat then has more than two active participants, so message receipts (SendEvent
    /// `message.delivered` / `message.read`, `agent_read`) are refused with 409 until
    /// `supervisor_leave`. Needs the agent present; refused if a supervisor already is.
    pub fn supervisor_barge(&self, contact_id: &str, name: &str) -> Result<ChatItem, SandboxError> {
        agent::supervisor_barge(&self.shared, contact_id, name)
    }

    /// The barged-in supervisor leaves (`participant.left`, role SUPERVISOR).
    pub fn supervisor_leave(&self, contact_id: &str) -> Result<ChatItem, SandboxError> {
        agent::supervisor_leave(&self.shared, contact_id)
    }

    pub fn system_message(&self, contact_id: &str, text: &str) -> Result<ChatItem, SandboxError> {
        agent::system_message(&self.shared, contact_id, text)
    }

    pub fn end_chat(&self, contact_id: &str) -> Result<ChatItem, SandboxError> {
        agent::end(&self.shared, contact_id)
    }

    /// An ATTACHMENT item (role AGENT, status APPROVED) carrying a registered file, from the
    /// agent who accepted. Connect's type and size limits are not applied to the agent side.
    pub fn agent_send_attachment(
        &self,
        contact_id: &str,
        name: &str,
        content_type: &str,
        file_id: &str,
    ) -> Result<ChatItem, SandboxError> {
        agent::send_attachment(
            &self.shared,
            contact_id,
            AgentAttachment {
                name: name.to_owned(),
                content_type: Some(content_type.to_owned()),
                file_id: file_id.to_owned(),
                status: ArtifactStatus::Approved,
            },
        )
    }

    /// Like `agent_send_attachment`, with every field (e.g. a REJECTED or IN_PROGRESS status).
    pub fn agent_send_attachment_with(
        &self,
        contact_id: &str,
        attachment: AgentAttachment,
    ) -> Result<ChatItem, SandboxError> {
        agent::send_attachment(&self.shared, contact_id, attachment)
    }

    /// Every attachment of every chat (what reached Connect: size, SHA-256, status).
    pub fn attachments(&self) -> Vec<AttachmentView> {
        lock(&self.shared.connect).attachment_views()
    }

    pub fn attachment(&self, attachment_id: &str) -> Option<AttachmentView> {
        self.attachments()
            .into_iter()
            .find(|a| a.attachment_id == attachment_id)
    }

    /// Requests to pre-signed attachment URLs (uploads and downloads), refused ones included.
    pub fn s3_requests(&self) -> Vec<S3RequestRecord> {
        lock(&self.shared.connect).s3_requests.clone()
    }

    /// The scan applied to customer attachments completed from now on.
    pub fn set_attachment_scan(&self, scan: AttachmentScan) {
        lock(&self.shared.connect).scan = Some(scan);
    }

    pub fn attachment_scan(&self) -> AttachmentScan {
        attachments::scan(&self.shared, &lock(&self.shared.connect))
    }

    /// Returns the contact after the transfer (its new `contact_id`).
    pub fn transfer(&self, contact_id: &str) -> Result<ContactView, SandboxError> {
        agent::transfer(&self.shared, contact_id)
    }

    // ----- SNS -----

    /// Subscribes `endpoint` to the configured topic and sends the SubscriptionConfirmation.
    pub async fn subscribe(&self, endpoint: &str) -> Result<SubscriptionView, SandboxError> {
        delivery::subscribe(&self.shared, &self.shared.cfg.sns.topic_arn, endpoint, None).await
    }

    /// Subscribes `endpoint` to another topic (a contact may stream to two).
    pub async fn subscribe_topic(
        &self,
        topic_arn: &str,
        endpoint: &str,
    ) -> Result<SubscriptionView, SandboxError> {
        delivery::subscribe(&self.shared, topic_arn, endpoint, None).await
    }

    /// Subscribes `endpoint` to `topic_arn` (`None`: the configured topic) with the
    /// `FilterPolicy` attribute `filter_policy` (scope `MessageAttributes`): messages it does not
    /// match are not sent, as with SNS. A policy the sandbox cannot evaluate is refused
    /// ([`crate::sns::filter_policy`]), and nothing is subscribed.
    pub async fn subscribe_filtered(
        &self,
        topic_arn: Option<&str>,
        endpoint: &str,
        filter_policy: Option<&str>,
    ) -> Result<SubscriptionView, SandboxError> {
        let policy = filter_policy
            .map(|text| FilterPolicy::parse(text, None))
            .transpose()?;
        let topic = topic_arn.unwrap_or(&self.shared.cfg.sns.topic_arn);
        delivery::subscribe(&self.shared, topic, endpoint, policy).await
    }

    /// Sets (or with `None` or an empty text, removes) a subscription's `FilterPolicy`, as
    /// SetSubscriptionAttributes does; an invalid or unsupported policy is refused and the old
    /// one kept.
    pub fn set_subscription_filter_policy(
        &self,
        subscription_arn: &str,
        filter_policy: Option<&str>,
    ) -> Result<SubscriptionView, SandboxError> {
        delivery::set_filter_policy(&self.shared, subscription_arn, filter_policy)
    }

    pub fn subscriptions(&self) -> Vec<SubscriptionView> {
        lock(&self.shared.sns).subscription_views()
    }

    /// Waits until the subscriber has fetched the SubscribeURL.
    pub async fn wait_confirmed(
        &self,
        subscription_arn: &str,
        timeout: Duration,
    ) -> Result<SubscriptionView, SandboxError> {
        let what = format!("confirmation of {subscription_arn}");
        self.wait_until(&what, timeout, |h| {
            h.subscriptions()
                .into_iter()
                .find(|s| s.subscription_arn == subscription_arn && s.confirmed)
        })
        .await
    }

    /// Every SNS message to every subscription, with its attempts.
    pub fn sns_deliveries(&self) -> Vec<SnsDelivery> {
        lock(&self.shared.sns).deliveries.clone()
    }

    /// How many notifications (one per published message and subscription) were POSTed or are
    /// being POSTed so far — counted without copying `sns_deliveries()`, for a load generator
    /// that samples it while measuring.
    pub fn sns_notification_count(&self) -> u64 {
        let sns = lock(&self.shared.sns);
        let n = sns
            .deliveries
            .iter()
            .filter(|d| d.message_type == SnsMessageType::Notification)
            .count();
        u64::try_from(n).unwrap_or(u64::MAX)
    }

    /// Test hook: `body`, an SNS message as the sandbox POSTs it (`sns_deliveries()[i].body`),
    /// with its `Timestamp` set to `timestamp_ms` (Unix milliseconds) and its `SignatureVersion`
    /// to `version`, signed again with the sandbox's SNS key — a genuine message from another
    /// time (a captured message replayed hours later, a publisher's clock far ahead) or signed
    /// the other way. POST it yourself.
    pub fn sns_resigned(
        &self,
        body: &str,
        timestamp_ms: i64,
        version: SignatureVersion,
    ) -> Result<String, SandboxError> {
        delivery::resign(&self.shared, body, timestamp_ms, version)
    }

    /// Re-POSTs the identical body of `message_id` (same MessageId, same signature).
    pub async fn redeliver(&self, message_id: &str) -> Result<Vec<SnsAttempt>, SandboxError> {
        delivery::redeliver(&self.shared, message_id).await
    }

    // ----- faults -----

    /// The next `count` calls of `op` get `fault`.
    pub fn fail_next(&self, op: FaultOp, count: u32, fault: Fault) {
        lock(&self.shared.faults).queued.push(op, count, fault);
    }

    /// Clears every fault setting: queued faults, profiles, throttling bursts and down switches
    /// (not the stats).
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear_all();
    }

    /// Queued faults (`fail_next`) not yet consumed.
    pub fn pending_faults(&self) -> Vec<PendingFault> {
        lock(&self.shared.faults).queued.pending()
    }

    /// Every call of `op` from now on follows `profile` (replacing `op`'s previous profile; a
    /// profile that changes nothing removes it). Its PRNG starts afresh from its seed.
    pub fn set_fault_profile(
        &self,
        op: FaultOp,
        profile: FaultProfile,
    ) -> Result<(), SandboxError> {
        profile.validate()?;
        lock(&self.shared.faults).set_profile(op, profile);
        Ok(())
    }

    /// `profile` for every call operation of `side` (each with its own PRNG; `MediaProcessing`,
    /// not a call, is left alone).
    pub fn set_side_fault_profile(
        &self,
        side: Side,
        profile: FaultProfile,
    ) -> Result<(), SandboxError> {
        profile.validate()?;
        let mut faults = lock(&self.shared.faults);
        for op in FaultOp::of_side(side).filter(|op| *op != FaultOp::MediaProcessing) {
            faults.set_profile(op, profile.clone());
        }
        Ok(())
    }

    /// The profiles in force.
    pub fn fault_profiles(&self) -> BTreeMap<FaultOp, FaultProfile> {
        lock(&self.shared.faults).profiles()
    }

    pub fn clear_fault_profiles(&self) {
        lock(&self.shared.faults).clear_profiles();
    }

    /// The next `count` calls of `op` are throttled, announcing a reset `reset_after_secs` from now
    /// (see [`ThrottleBurst`]). Replaces a burst still in force on `op`.
    pub fn throttle_burst(&self, op: FaultOp, count: u32, reset_after_secs: u64) {
        self.throttle_burst_with(op, ThrottleBurst::new(count, reset_after_secs));
    }

    /// A throttling burst with every option (e.g. [`ThrottleBurst::holding_window`]).
    pub fn throttle_burst_with(&self, op: FaultOp, burst: ThrottleBurst) {
        lock(&self.shared.faults).set_burst(op, burst, clock::now_unix_secs());
    }

    /// Bursts still in force.
    pub fn throttle_bursts(&self) -> Vec<ThrottleBurstView> {
        lock(&self.shared.faults).bursts()
    }

    pub fn clear_throttle_bursts(&self) {
        lock(&self.shared.faults).clear_bursts();
    }

    /// Switches `side` down (every call answers 503) or back up.
    pub fn set_down(&self, side: Side, down: bool) {
        self.set_down_with(side, down.then_some(DownMode::Unavailable));
    }

    /// Switches `side` down with `mode` (503 or dropped connections), or up with `None`.
    pub fn set_down_with(&self, side: Side, mode: Option<DownMode>) {
        lock(&self.shared.faults).set_down(side, mode);
    }

    /// How `side` is down, if it is.
    pub fn is_down(&self, side: Side) -> Option<DownMode> {
        lock(&self.shared.faults).down(side)
    }

    /// Counters since start or the last `reset_stats`.
    pub fn stats(&self) -> SandboxStats {
        lock(&self.shared.faults).stats.snapshot()
    }

    pub fn reset_stats(&self) {
        lock(&self.shared.faults).reset_stats(clock::now_iso_ms());
    }
}
