//! In-memory fakes of X and Connect, clocks, and the harness the pipeline tests run on.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::TryStreamExt;

use crate::chat_item::{
    AttachmentRef, AttachmentStatus, ChatItem, ChatItemBody, ParticipantRole, Visibility,
};
use crate::ids::{
    ChatItemId, ConnectionToken, ContactId, InitialContactId, ParticipantToken, XEventId, XUserId,
};
use crate::inbound::{
    InboundBatch, InboundChat, InboundDm, InboundEvent, InboundMedia, MediaKind, XChannel,
};
use crate::jobs::{JobQueue, JobState};
use crate::media::{ByteStream, MediaStream, XMediaCategory};
use crate::memory_store::MemoryStore;
use crate::pipeline::{Bridge, BridgeConfig};
use crate::ports::{
    ChatEvent, ChatFileRequest, ChatKeyChange, ChatMessage, ChatRequest, Clock, ConnectApi,
    ConnectError, CustomerProfile, DmRequest, OpenedChat, ProfileChange, SentChat, SentDm,
    SentDmRecord, StartChat, StartedChat, Store, XApi, XError,
};
use crate::profile::XProfile;
use crate::session::ConnectionCredentials;

fn stream_of(bytes: Vec<u8>) -> ByteStream {
    Box::pin(futures_util::stream::iter(vec![Ok::<_, std::io::Error>(
        Bytes::from(bytes),
    )]))
}

pub(super) async fn collect(file: MediaStream) -> Vec<u8> {
    let chunks: Vec<Bytes> = file.body.try_collect().await.unwrap();
    chunks.concat()
}

// ---- fakes -----------------------------------------------------------------------------------

#[derive(Debug, Default)]
pub(super) struct ManualClock(pub(super) AtomicI64);

impl ManualClock {
    pub(super) fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for Arc<ManualClock> {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Clone, Default)]
pub(super) struct Contact {
    pub(super) id: String,
    pub(super) display_name: String,
    pub(super) attributes: BTreeMap<String, String>,
    /// Every message in the chat, the initial one first.
    pub(super) messages: Vec<String>,
    /// Files the customer attached: (name, content type, bytes).
    pub(super) attachments: Vec<(String, String, Vec<u8>)>,
    /// Events the customer's side sent (`SendEvent`), in order.
    pub(super) events: Vec<ChatEvent>,
    pub(super) streaming: bool,
    pub(super) connected: bool,
    pub(super) ended: bool,
    pub(super) stopped: bool,
    /// StartChatContact's `CustomerId` and `PersistentChat` source.
    pub(super) customer_id: Option<String>,
    pub(super) continues: Option<String>,
    /// StartChatContact's flow, when not the default one.
    pub(super) contact_flow_id: Option<String>,
}

/// A Customer Profiles profile: (profile id, name, handle).
pub(super) type FakeProfile = (String, Option<String>, Option<String>);

#[derive(Debug, Default)]
pub(super) struct ConnectState {
    pub(super) contacts: Vec<Contact>,
    pub(super) start_tokens: HashMap<String, usize>,
    pub(super) message_tokens: HashMap<String, ()>,
    /// Types StartAttachmentUpload refuses.
    pub(super) refused_types: Vec<String>,
    /// Files agents attached, by attachment id: (content type, bytes).
    pub(super) agent_files: HashMap<String, (String, Vec<u8>)>,
    /// Scripted failures: (operation, calls to let pass first, error).
    pub(super) faults: VecDeque<(&'static str, usize, ConnectError)>,
    pub(super) calls: Vec<&'static str>,
    /// Customer Profiles, when a domain is "configured": X user id → (profile id, name, handle).
    pub(super) profiles: Option<BTreeMap<String, FakeProfile>>,
    /// Chats already continued by a persistent chat (Connect continues a source once).
    pub(super) continued: Vec<String>,
}

#[derive(Debug, Default, Clone)]
pub(super) struct FakeConnect(pub(super) Arc<Mutex<ConnectState>>);

impl FakeConnect {
    pub(super) fn fail(&self, op: &'static str, e: ConnectError) {
        self.fail_after(op, 0, e);
    }
    pub(super) fn fail_after(&self, op: &'static str, pass: usize, e: ConnectError) {
        self.0.lock().unwrap().faults.push_back((op, pass, e));
    }
    pub(super) fn contacts(&self) -> Vec<Contact> {
        self.0.lock().unwrap().contacts.clone()
    }
    pub(super) fn end(&self, i: usize) {
        self.0.lock().unwrap().contacts[i].ended = true;
    }
    fn take_fault(&self, op: &'static str) -> Result<(), ConnectError> {
        let mut s = self.0.lock().unwrap();
        s.calls.push(op);
        if let Some(pos) = s.faults.iter().position(|(o, _, _)| *o == op) {
            if s.faults[pos].1 > 0 {
                s.faults[pos].1 -= 1;
                return Ok(());
            }
            let (_, _, e) = s.faults.remove(pos).unwrap();
            return Err(e);
        }
        Ok(())
    }
    fn index(token: &str) -> usize {
        token.rsplit('-').next().unwrap().parse().unwrap()
    }
}

impl ConnectApi for FakeConnect {
    async fn start_chat(&self, req: &StartChat) -> Result<StartedChat, ConnectError> {
        self.take_fault("StartChatContact")?;
        let mut s = self.0.lock().unwrap();
        let i = match s.start_tokens.get(&req.client_token) {
            Some(i) => *i,
            None => {
                if let Some(source) = &req.continues {
                    let source = source.as_str().to_owned();
                    let ended = s.contacts.iter().any(|c| c.id == source && c.ended);
                    if !ended || s.continued.contains(&source) {
                        return Err(ConnectError::Invalid(format!(
                            "{source} cannot be continued"
                        )));
                    }
                    s.continued.push(source);
                }
                let i = s.contacts.len();
                s.contacts.push(Contact {
                    id: format!("contact-{i}"),
                    display_name: req.display_name.clone(),
                    attributes: req.attributes.clone(),
                    messages: vec![req.initial_message.content.clone()],
                    customer_id: req.customer_id.clone(),
                    contact_flow_id: req.contact_flow_id.clone(),
                    continues: req.continues.as_ref().map(|c| c.as_str().to_owned()),
                    ..Contact::default()
                });
                s.start_tokens.insert(req.client_token.clone(), i);
                i
            }
        };
        let continued_from = s.contacts[i].continues.clone();
        Ok(StartedChat {
            contact_id: ContactId::parse(format!("contact-{i}")).unwrap(),
            participant_id: format!("p-{i}"),
            participant_token: ParticipantToken::new(format!("pt-{i}")),
            continued_from,
        })
    }

    async fn customer_profile(
        &self,
        profile: &XProfile,
    ) -> Result<Option<CustomerProfile>, ConnectError> {
        if self.0.lock().unwrap().profiles.is_none() {
            return Ok(None);
        }
        self.take_fault("CustomerProfile")?;
        let mut s = self.0.lock().unwrap();
        let Some(profiles) = s.profiles.as_mut() else {
            return Ok(None);
        };
        let key = profile.id.to_string();
        let fields = (profile.name.clone(), profile.username.clone());
        let count = profiles.len();
        let (id, change) = match profiles.get_mut(&key) {
            Some(p) if (p.1.clone(), p.2.clone()) == fields => (p.0.clone(), ProfileChange::Found),
            Some(p) => {
                (p.1, p.2) = fields;
                (p.0.clone(), ProfileChange::Updated)
            }
            None => {
                let id = format!("profile-{count}");
                profiles.insert(key, (id.clone(), fields.0, fields.1));
                (id, ProfileChange::Created)
            }
        };
        Ok(Some(CustomerProfile { id, change }))
    }

    async fn start_streaming(&self, contact: &ContactId, _token: &str) -> Result<(), ConnectError> {
        self.take_fault("StartContactStreaming")?;
        let i = Self::index(contact.as_str());
        self.0.lock().unwrap().contacts[i].streaming = true;
        Ok(())
    }

    async fn stop_contact(&self, contact: &ContactId) -> Result<(), ConnectError> {
        self.take_fault("StopContact")?;
        let i = Self::index(contact.as_str());
        let mut s = self.0.lock().unwrap();
        s.contacts[i].stopped = true;
        s.contacts[i].ended = true;
        Ok(())
    }

    async fn update_attributes(
        &self,
        chat: &InitialContactId,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), ConnectError> {
        self.take_fault("UpdateContactAttributes")?;
        let i = Self::index(chat.as_str());
        let mut s = self.0.lock().unwrap();
        s.contacts[i].attributes.extend(attributes.clone());
        Ok(())
    }

    async fn connect_participant(
        &self,
        token: &ParticipantToken,
    ) -> Result<ConnectionCredentials, ConnectError> {
        self.take_fault("CreateParticipantConnection")?;
        let i = Self::index(token.expose());
        let mut s = self.0.lock().unwrap();
        if s.contacts[i].ended {
            return Err(ConnectError::ChatEnded("ended".into()));
        }
        s.contacts[i].connected = true;
        Ok(ConnectionCredentials {
            token: ConnectionToken::new(format!("ct-{i}")),
            expires_at_ms: Some(86_400_000),
        })
    }

    async fn send_message(
        &self,
        conn: &ConnectionToken,
        msg: &ChatMessage,
        client_token: &str,
    ) -> Result<(), ConnectError> {
        self.take_fault("SendMessage")?;
        let i = Self::index(conn.expose());
        let mut s = self.0.lock().unwrap();
        if s.contacts[i].ended {
            return Err(ConnectError::ChatEnded("ended".into()));
        }
        if s.message_tokens
            .insert(format!("{i}/{client_token}"), ())
            .is_none()
        {
            s.contacts[i].messages.push(msg.content.clone());
        }
        Ok(())
    }

    async fn send_event(
        &self,
        conn: &ConnectionToken,
        event: &ChatEvent,
        _client_token: &str,
    ) -> Result<(), ConnectError> {
        self.take_fault("SendEvent")?;
        let i = Self::index(conn.expose());
        let mut s = self.0.lock().unwrap();
        if s.contacts[i].ended {
            return Err(ConnectError::ChatEnded("ended".into()));
        }
        s.contacts[i].events.push(event.clone());
        Ok(())
    }

    async fn disconnect(
        &self,
        conn: &ConnectionToken,
        _client_token: &str,
    ) -> Result<(), ConnectError> {
        self.take_fault("DisconnectParticipant")?;
        let i = Self::index(conn.expose());
        self.0.lock().unwrap().contacts[i].ended = true;
        Ok(())
    }

    async fn upload_attachment(
        &self,
        conn: &ConnectionToken,
        file: MediaStream,
        client_token: &str,
    ) -> Result<String, ConnectError> {
        self.take_fault("StartAttachmentUpload")?;
        let i = Self::index(conn.expose());
        {
            let s = self.0.lock().unwrap();
            if s.contacts[i].ended {
                return Err(ConnectError::ChatEnded("ended".into()));
            }
            if s.refused_types.contains(&file.content_type) {
                return Err(ConnectError::AttachmentRefused(format!(
                    "{} is not supported",
                    file.content_type
                )));
            }
        }
        let (name, ct, len) = (
            file.file_name.clone(),
            file.content_type.clone(),
            file.length,
        );
        let bytes = collect(file).await;
        assert_eq!(bytes.len() as u64, len, "announced length is exact");
        let mut s = self.0.lock().unwrap();
        if s.message_tokens
            .insert(format!("{i}/{client_token}"), ())
            .is_none()
        {
            s.contacts[i].attachments.push((name, ct, bytes));
        }
        Ok(format!("att-{i}-{}", s.contacts[i].attachments.len()))
    }

    async fn open_attachment(
        &self,
        conn: &ConnectionToken,
        attachment: &AttachmentRef,
    ) -> Result<MediaStream, ConnectError> {
        self.take_fault("GetAttachment")?;
        let i = Self::index(conn.expose());
        let s = self.0.lock().unwrap();
        if s.contacts[i].ended {
            return Err(ConnectError::ChatEnded("ended".into()));
        }
        let (ct, bytes) = s
            .agent_files
            .get(&attachment.attachment_id)
            .cloned()
            .unwrap();
        Ok(MediaStream {
            file_name: attachment.name.clone(),
            content_type: ct,
            length: bytes.len() as u64,
            body: stream_of(bytes),
        })
    }
}

#[derive(Debug, Default)]
pub(super) struct XState {
    pub(super) sent: Vec<DmRequest>,
    /// When each of `sent` was recorded (the harness clock).
    pub(super) sent_at: Vec<i64>,
    pub(super) clock: Option<Arc<ManualClock>>,
    /// Scripted lost answers: sends to let pass first, then one that X records but whose answer
    /// is lost (`Unavailable`, as a connection dropped after X processed the request).
    pub(super) lost_answers: VecDeque<usize>,
    /// `sent_dms` calls: their `since_ms`.
    pub(super) read_backs: Vec<i64>,
    pub(super) read_back_faults: VecDeque<XError>,
    /// Media files by URL: (content type, bytes). URLs on `https://elsewhere.example/` are off the allow-list.
    pub(super) media: HashMap<String, (String, Vec<u8>)>,
    /// Uploads: (category, content type, bytes); the media id is `m<index>`.
    pub(super) uploads: Vec<(XMediaCategory, String, Vec<u8>)>,
    pub(super) downloads: usize,
    pub(super) users: HashMap<String, XProfile>,
    pub(super) user_calls: usize,
    pub(super) faults: VecDeque<XError>,
    pub(super) user_faults: VecDeque<XError>,
    /// X Chat messages sent, and the faults of the next sends.
    pub(super) chats_sent: Vec<ChatRequest>,
    /// X Chat files sent: (message id, kind, bytes).
    pub(super) chat_files_sent: Vec<(String, MediaKind, Vec<u8>)>,
    pub(super) chat_faults: VecDeque<XError>,
    /// `open_chat` calls.
    pub(super) chats_opened: usize,
}

#[derive(Debug, Default, Clone)]
pub(super) struct FakeX(pub(super) Arc<Mutex<XState>>);

impl FakeX {
    /// The send after `pass` more successful ones is recorded by X but its answer is lost.
    pub(super) fn lose_answer_after(&self, pass: usize) {
        self.0.lock().unwrap().lost_answers.push_back(pass);
    }

    pub(super) fn read_backs(&self) -> Vec<i64> {
        self.0.lock().unwrap().read_backs.clone()
    }

    pub(super) fn sent_texts(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .sent
            .iter()
            .filter_map(|d| d.text.clone())
            .collect()
    }
}

impl XApi for FakeX {
    /// The fake's "sealed" event is `<sequence id>|<text>`; one starting `forged|` fails its
    /// signature check. The key change names the version: `<version>`.
    async fn open_chat(&self, chat: &InboundChat) -> Result<OpenedChat, XError> {
        self.0.lock().unwrap().chats_opened += 1;
        let (sequence, text) = chat.encoded_event.split_once('|').unwrap();
        if sequence == "forged" {
            return Err(XError::Unreadable("the signature does not verify".into()));
        }
        let version = chat.key_change_event.clone().unwrap_or_else(|| "1".into());
        Ok(OpenedChat {
            sequence_id: XEventId::parse(sequence).unwrap(),
            text: text.to_owned(),
            media: None,
            key: Some(ChatKeyChange {
                conversation_id: chat.conversation_id.clone(),
                encoded_event: format!("key-change-{version}"),
                key_version: version,
            }),
        })
    }

    async fn send_chat_file(&self, message: ChatFileRequest) -> Result<SentChat, XError> {
        let bytes: Vec<u8> = message
            .file
            .body
            .try_fold(Vec::new(), |mut all, chunk| async move {
                all.extend_from_slice(&chunk);
                Ok(all)
            })
            .await
            .unwrap();
        let mut s = self.0.lock().unwrap();
        if let Some(e) = s.chat_faults.pop_front() {
            return Err(e);
        }
        s.chat_files_sent
            .push((message.message_id, message.kind, bytes));
        Ok(SentChat {
            sequence_id: format!("{}", 700_000 + s.chat_files_sent.len()),
        })
    }

    async fn send_chat(&self, message: &ChatRequest) -> Result<SentChat, XError> {
        let mut s = self.0.lock().unwrap();
        if let Some(e) = s.chat_faults.pop_front() {
            return Err(e);
        }
        s.chats_sent.push(message.clone());
        Ok(SentChat {
            sequence_id: format!("{}", 700_000 + s.chats_sent.len()),
        })
    }

    async fn send_dm(&self, dm: &DmRequest) -> Result<SentDm, XError> {
        let mut s = self.0.lock().unwrap();
        if let Some(e) = s.faults.pop_front() {
            return Err(e);
        }
        let now = s.clock.as_ref().map_or(0, |c| c.now_ms());
        s.sent.push(dm.clone());
        s.sent_at.push(now);
        let lost = match s.lost_answers.front_mut() {
            Some(0) => {
                s.lost_answers.pop_front();
                true
            }
            Some(pass) => {
                *pass -= 1;
                false
            }
            None => false,
        };
        if lost {
            return Err(XError::Unavailable(
                "connection closed after X processed it".into(),
            ));
        }
        Ok(SentDm {
            dm_event_id: format!("{}", 900_000 + s.sent.len()),
        })
    }

    async fn sent_dms(
        &self,
        business: &XUserId,
        recipient: &XUserId,
        since_ms: i64,
    ) -> Result<Vec<SentDmRecord>, XError> {
        let mut s = self.0.lock().unwrap();
        s.read_backs.push(since_ms);
        if let Some(e) = s.read_back_faults.pop_front() {
            return Err(e);
        }
        Ok(s.sent
            .iter()
            .zip(&s.sent_at)
            .enumerate()
            .filter(|(_, (dm, at))| {
                &dm.business == business && &dm.recipient == recipient && **at >= since_ms
            })
            .map(|(i, (dm, at))| SentDmRecord {
                dm_event_id: format!("{}", 900_000 + i + 1),
                at_ms: *at,
                text: dm.text.clone(),
                has_media: dm.media_id.is_some(),
            })
            .collect())
    }

    async fn user(&self, _business: &XUserId, id: &XUserId) -> Result<Option<XProfile>, XError> {
        let mut s = self.0.lock().unwrap();
        s.user_calls += 1;
        if let Some(e) = s.user_faults.pop_front() {
            return Err(e);
        }
        Ok(s.users.get(id.as_str()).cloned())
    }

    async fn download_media(
        &self,
        _business: &XUserId,
        media: &InboundMedia,
        max_bytes: u64,
    ) -> Result<MediaStream, XError> {
        if media.url.starts_with("https://elsewhere.example/") {
            return Err(XError::MediaHostNotAllowed("elsewhere.example".into()));
        }
        let mut s = self.0.lock().unwrap();
        s.downloads += 1;
        let (ct, bytes) = s.media.get(&media.url).cloned().unwrap();
        if bytes.len() as u64 > max_bytes {
            return Err(XError::TooLarge {
                size: Some(bytes.len() as u64),
                limit: max_bytes,
            });
        }
        let name = media.url.rsplit('/').next().unwrap().to_owned();
        Ok(MediaStream {
            file_name: name,
            content_type: ct,
            length: bytes.len() as u64,
            body: stream_of(bytes),
        })
    }

    async fn upload_media(
        &self,
        _business: &XUserId,
        category: XMediaCategory,
        file: MediaStream,
    ) -> Result<String, XError> {
        let ct = file.content_type.clone();
        let bytes = collect(file).await;
        let mut s = self.0.lock().unwrap();
        s.uploads.push((category, ct, bytes));
        Ok(format!("m{}", s.uploads.len() - 1))
    }
}

// ---- harness ---------------------------------------------------------------------------------

pub(super) type TestBridge = Bridge<MemoryStore, FakeX, FakeConnect, Arc<ManualClock>>;

pub(super) struct Harness {
    pub(super) bridge: Arc<TestBridge>,
    pub(super) x: FakeX,
    pub(super) connect: FakeConnect,
    pub(super) clock: Arc<ManualClock>,
}

pub(super) const BUSINESS: &str = "40876567";
pub(super) const CUSTOMER: &str = "55125386";

pub(super) fn harness() -> Harness {
    let x = FakeX::default();
    let connect = FakeConnect::default();
    let clock = Arc::new(ManualClock(AtomicI64::new(1_000_000)));
    let config = BridgeConfig {
        reorder_window_ms: 100,
        outbound_reorder_window_ms: 100,
        ..BridgeConfig::default()
    };
    x.0.lock().unwrap().clock = Some(Arc::clone(&clock));
    let bridge = Bridge::new(
        MemoryStore::new(),
        x.clone(),
        connect.clone(),
        Arc::clone(&clock),
        config,
    );
    Harness {
        bridge,
        x,
        connect,
        clock,
    }
}

pub(super) fn uid(s: &str) -> XUserId {
    XUserId::parse(s).unwrap()
}

pub(super) fn dm(event_id: u64, created_ms: i64, text: &str) -> InboundDm {
    InboundDm {
        business: uid(BUSINESS),
        event_id: XEventId::parse(event_id.to_string()).unwrap(),
        sender: uid(CUSTOMER),
        recipient: uid(BUSINESS),
        created_ms,
        text: text.to_owned(),
        source_app_id: None,
        sender_profile: Some(XProfile {
            id: uid(CUSTOMER),
            name: Some("Elizabeth Fuentes".into()),
            username: Some("ElizabethFue12".into()),
            profile_image_url: Some("https://pbs.twimg.com/a.jpg".into()),
            verified: Some(false),
            followers_count: Some(1146),
        }),
        media: None,
        channel: XChannel::Dm,
    }
}

/// An X Chat message from the customer as the fake X reads it (`<sequence>|<text>`), sealed
/// with the conversation key of version `key_version`.
pub(super) fn chat(
    message_id: &str,
    sequence: u64,
    created_ms: i64,
    text: &str,
    key_version: &str,
) -> InboundChat {
    InboundChat {
        business: uid(BUSINESS),
        sender: uid(CUSTOMER),
        message_id: crate::ids::ChatMessageId::parse(message_id).unwrap(),
        conversation_id: format!("{BUSINESS}:{CUSTOMER}"),
        created_ms,
        encoded_event: format!("{sequence}|{text}"),
        key_change_event: Some(key_version.to_owned()),
        sender_profile: dm(1, created_ms, "").sender_profile,
    }
}

pub(super) fn batch(dms: Vec<InboundDm>) -> InboundBatch {
    InboundBatch {
        events: dms.into_iter().map(InboundEvent::Message).collect(),
    }
}

pub(super) fn agent_item(id: &str, contact: &str, t: i64, body: ChatItemBody) -> ChatItem {
    ChatItem {
        id: ChatItemId::parse(id).unwrap(),
        initial_contact_id: InitialContactId::parse(contact).unwrap(),
        contact_id: None,
        absolute_time_ms: t,
        role: Some(ParticipantRole::Agent),
        visibility: Some(Visibility::All),
        display_name: Some("Enrique".into()),
        body,
    }
}

pub(super) fn markdown(s: &str) -> ChatItemBody {
    ChatItemBody::Message {
        content_type: "text/markdown".into(),
        content: s.into(),
    }
}

impl Harness {
    /// The stored job of `queue` with key `key`, if any.
    pub(super) async fn job(&self, queue: JobQueue, key: &str) -> Option<crate::jobs::Job> {
        let key = crate::jobs::JobKey::parse(key).unwrap();
        self.bridge.store().job(queue, &key).await.unwrap()
    }

    /// Runs every job that is due, advancing time past reorder windows and retry delays,
    /// until nothing is left open (or `max_rounds` is reached).
    pub(super) async fn drain(&self) {
        for _ in 0..200 {
            self.clock.advance(1_000);
            let mut ran = false;
            for queue in JobQueue::ALL {
                let now = self.clock.now_ms();
                let heads = self
                    .bridge
                    .store()
                    .lane_heads(queue, now, 100)
                    .await
                    .unwrap();
                for mut job in heads.into_iter().filter(|j| j.due_at_ms() <= now) {
                    if self
                        .bridge
                        .store()
                        .claim(queue, &job.key, now + 60_000, now)
                        .await
                        .unwrap()
                    {
                        // As the dispatcher does: the job as claimed, `attempts` being the
                        // claim's number, which fences the outcome `run_job` records.
                        job.attempts += 1;
                        job.state = JobState::Processing;
                        let (key, attempt) = (job.key.clone(), job.attempts);
                        self.bridge.run_job(queue, job).await;
                        // One worker, nobody to take over: the outcome must have been recorded.
                        let after = self.bridge.store().job(queue, &key).await.unwrap().unwrap();
                        assert!(
                            !(after.state == JobState::Processing && after.attempts == attempt),
                            "the outcome of {key} (attempt {attempt}) was not recorded: {after:?}"
                        );
                        ran = true;
                    }
                }
            }
            if !ran && self.open_jobs().await == 0 {
                return;
            }
            if !ran {
                // waiting for a retry: jump ahead
                self.clock.advance(60_000);
            }
        }
    }

    pub(super) async fn open_jobs(&self) -> usize {
        let mut n = 0;
        for q in JobQueue::ALL {
            for s in [JobState::Pending, JobState::Processing] {
                n += self
                    .bridge
                    .store()
                    .jobs(q, Some(s), 1000)
                    .await
                    .unwrap()
                    .len();
            }
        }
        n
    }
}

/// Opens a chat with one customer DM; returns its contact id.
pub(super) async fn open_chat(h: &Harness) -> String {
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "hi")]))
        .await
        .unwrap();
    h.drain().await;
    h.connect.contacts()[0].id.clone()
}

/// Ends the chat of `contact` as Connect does: the contact is over, and its `chat.ended` item
/// streamed.
pub(super) async fn end_chat(h: &Harness, contact: &str) {
    if let Some(c) = h
        .connect
        .0
        .lock()
        .unwrap()
        .contacts
        .iter_mut()
        .find(|c| c.id == contact)
    {
        c.ended = true;
    }
    let mut ended = agent_item(
        &format!("end-{contact}"),
        contact,
        5,
        ChatItemBody::Event {
            content_type: crate::chat_item::event_types::CHAT_ENDED.into(),
        },
    );
    ended.role = None;
    h.bridge.accept_chat_item(ended).await.unwrap();
    h.drain().await;
}

/// A harness whose bridge runs with `configure` applied to the tests' configuration.
pub(super) fn harness_with(configure: impl FnOnce(&mut BridgeConfig)) -> Harness {
    let mut h = harness();
    let mut config = h.bridge.config().clone();
    configure(&mut config);
    h.bridge = Bridge::new(
        MemoryStore::new(),
        h.x.clone(),
        h.connect.clone(),
        Arc::clone(&h.clock),
        config,
    );
    h
}

/// An attachment of an agent's chat item.
pub(super) fn file(
    id: &str,
    name: &str,
    content_type: &str,
    status: AttachmentStatus,
) -> AttachmentRef {
    AttachmentRef {
        attachment_id: id.into(),
        name: name.into(),
        content_type: content_type.into(),
        status,
    }
}

// ---- leases of running jobs: tokio time and a slow Connect -----------------------------------

/// Milliseconds on tokio's clock (paused in these tests), so leases and the heartbeat share one
/// time.
#[derive(Debug)]
pub(super) struct TokioClock(pub(super) tokio::time::Instant);

impl Clock for TokioClock {
    fn now_ms(&self) -> i64 {
        1_000_000 + i64::try_from(self.0.elapsed().as_millis()).unwrap()
    }
}

/// `FakeConnect` whose StartChatContact takes `delay` before it reaches Connect (a long relay).
#[derive(Debug, Clone)]
pub(super) struct SlowConnect {
    pub(super) inner: FakeConnect,
    pub(super) delay: std::time::Duration,
    /// StartChatContact calls begun (whether or not they got through).
    pub(super) started: Arc<std::sync::atomic::AtomicUsize>,
}

impl ConnectApi for SlowConnect {
    async fn start_chat(&self, req: &StartChat) -> Result<StartedChat, ConnectError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.inner.start_chat(req).await
    }
    async fn customer_profile(
        &self,
        profile: &XProfile,
    ) -> Result<Option<CustomerProfile>, ConnectError> {
        self.inner.customer_profile(profile).await
    }
    async fn start_streaming(&self, contact: &ContactId, token: &str) -> Result<(), ConnectError> {
        self.inner.start_streaming(contact, token).await
    }
    async fn stop_contact(&self, contact: &ContactId) -> Result<(), ConnectError> {
        self.inner.stop_contact(contact).await
    }
    async fn update_attributes(
        &self,
        chat: &InitialContactId,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), ConnectError> {
        self.inner.update_attributes(chat, attributes).await
    }
    async fn connect_participant(
        &self,
        token: &ParticipantToken,
    ) -> Result<ConnectionCredentials, ConnectError> {
        self.inner.connect_participant(token).await
    }
    async fn send_message(
        &self,
        conn: &ConnectionToken,
        msg: &ChatMessage,
        client_token: &str,
    ) -> Result<(), ConnectError> {
        self.inner.send_message(conn, msg, client_token).await
    }
    async fn send_event(
        &self,
        conn: &ConnectionToken,
        event: &ChatEvent,
        client_token: &str,
    ) -> Result<(), ConnectError> {
        self.inner.send_event(conn, event, client_token).await
    }
    async fn disconnect(
        &self,
        conn: &ConnectionToken,
        client_token: &str,
    ) -> Result<(), ConnectError> {
        self.inner.disconnect(conn, client_token).await
    }
    async fn upload_attachment(
        &self,
        conn: &ConnectionToken,
        file: MediaStream,
        client_token: &str,
    ) -> Result<String, ConnectError> {
        self.inner.upload_attachment(conn, file, client_token).await
    }
    async fn open_attachment(
        &self,
        conn: &ConnectionToken,
        attachment: &AttachmentRef,
    ) -> Result<MediaStream, ConnectError> {
        self.inner.open_attachment(conn, attachment).await
    }
}

pub(super) type LeaseBridge = Bridge<MemoryStore, FakeX, SlowConnect, TokioClock>;

pub(super) const SHORT_LEASE_MS: i64 = 60;
/// How long opening the chat takes: several leases.
const SLOW_CALL_MS: u64 = 400;

/// A bridge with a 60 ms lease whose first Connect call takes 400 ms (needs paused time).
pub(super) fn slow_bridge() -> (Arc<LeaseBridge>, SlowConnect) {
    let connect = SlowConnect {
        inner: FakeConnect::default(),
        delay: std::time::Duration::from_millis(SLOW_CALL_MS),
        started: Arc::default(),
    };
    let config = BridgeConfig {
        reorder_window_ms: 0,
        outbound_reorder_window_ms: 0,
        lease_ms: SHORT_LEASE_MS,
        ..BridgeConfig::default()
    };
    let bridge = Bridge::new(
        MemoryStore::new(),
        FakeX::default(),
        connect.clone(),
        TokioClock(tokio::time::Instant::now()),
        config,
    );
    (bridge, connect)
}
