//! Pipeline behaviour against in-memory fakes of X, Connect and the store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::TryStreamExt;

use crate::chat_item::{
    AttachmentRef, AttachmentStatus, ChatItem, ChatItemBody, ParticipantRole, Visibility,
    event_types,
};
use crate::ids::{
    ChatItemId, ConnectionToken, ContactId, InitialContactId, ParticipantToken, XEventId, XUserId,
};
use crate::inbound::{InboundBatch, InboundDm, InboundEvent, InboundMedia, MediaKind};
use crate::jobs::{JobState, Queue};
use crate::media::{ByteStream, MediaStream, XMediaCategory};
use crate::memory_store::MemoryStore;
use crate::ports::{
    ChatMessage, Clock, ConnectApi, ConnectError, DmRequest, SentDm, SentDmRecord, StartChat,
    StartedChat, Store, XApi, XError,
};
use crate::profile::XProfile;
use crate::session::{ConnectionCredentials, SessionStatus};
use crate::text::{X_DM_MAX_CHARS, render_for_x, split_message};

use super::{Bridge, BridgeConfig, ItemAcceptance};

fn stream_of(bytes: Vec<u8>) -> ByteStream {
    Box::pin(futures_util::stream::iter(vec![Ok::<_, std::io::Error>(
        Bytes::from(bytes),
    )]))
}

async fn collect(file: MediaStream) -> Vec<u8> {
    let chunks: Vec<Bytes> = file.body.try_collect().await.unwrap();
    chunks.concat()
}

// ---- fakes -----------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct ManualClock(AtomicI64);

impl ManualClock {
    fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for Arc<ManualClock> {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Clone, Default)]
struct Contact {
    id: String,
    display_name: String,
    attributes: BTreeMap<String, String>,
    /// Every message in the chat, the initial one first.
    messages: Vec<String>,
    /// Files the customer attached: (name, content type, bytes).
    attachments: Vec<(String, String, Vec<u8>)>,
    streaming: bool,
    connected: bool,
    ended: bool,
    stopped: bool,
}

#[derive(Debug, Default)]
struct ConnectState {
    contacts: Vec<Contact>,
    start_tokens: HashMap<String, usize>,
    message_tokens: HashMap<String, ()>,
    /// Types StartAttachmentUpload refuses.
    refused_types: Vec<String>,
    /// Files agents attached, by attachment id: (content type, bytes).
    agent_files: HashMap<String, (String, Vec<u8>)>,
    /// Scripted failures: (operation, calls to let pass first, error).
    faults: VecDeque<(&'static str, usize, ConnectError)>,
    calls: Vec<&'static str>,
}

#[derive(Debug, Default, Clone)]
struct FakeConnect(Arc<Mutex<ConnectState>>);

impl FakeConnect {
    fn fail(&self, op: &'static str, e: ConnectError) {
        self.fail_after(op, 0, e);
    }
    fn fail_after(&self, op: &'static str, pass: usize, e: ConnectError) {
        self.0.lock().unwrap().faults.push_back((op, pass, e));
    }
    fn contacts(&self) -> Vec<Contact> {
        self.0.lock().unwrap().contacts.clone()
    }
    fn end(&self, i: usize) {
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
                let i = s.contacts.len();
                s.contacts.push(Contact {
                    id: format!("contact-{i}"),
                    display_name: req.display_name.clone(),
                    attributes: req.attributes.clone(),
                    messages: vec![req.initial_message.content.clone()],
                    ..Contact::default()
                });
                s.start_tokens.insert(req.client_token.clone(), i);
                i
            }
        };
        Ok(StartedChat {
            contact_id: ContactId::parse(format!("contact-{i}")).unwrap(),
            participant_id: format!("p-{i}"),
            participant_token: ParticipantToken::new(format!("pt-{i}")),
        })
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
struct XState {
    sent: Vec<DmRequest>,
    /// When each of `sent` was recorded (the harness clock).
    sent_at: Vec<i64>,
    clock: Option<Arc<ManualClock>>,
    /// Scripted lost answers: sends to let pass first, then one that X records but whose answer
    /// is lost (`Unavailable`, as a connection dropped after X processed the request).
    lost_answers: VecDeque<usize>,
    /// `sent_dms` calls: their `since_ms`.
    read_backs: Vec<i64>,
    read_back_faults: VecDeque<XError>,
    /// Media files by URL: (content type, bytes). URLs on `https://elsewhere.example/` are off the allow-list.
    media: HashMap<String, (String, Vec<u8>)>,
    /// Uploads: (category, content type, bytes); the media id is `m<index>`.
    uploads: Vec<(XMediaCategory, String, Vec<u8>)>,
    downloads: usize,
    users: HashMap<String, XProfile>,
    user_calls: usize,
    faults: VecDeque<XError>,
    user_faults: VecDeque<XError>,
}

#[derive(Debug, Default, Clone)]
struct FakeX(Arc<Mutex<XState>>);

impl FakeX {
    /// The send after `pass` more successful ones is recorded by X but its answer is lost.
    fn lose_answer_after(&self, pass: usize) {
        self.0.lock().unwrap().lost_answers.push_back(pass);
    }

    fn read_backs(&self) -> Vec<i64> {
        self.0.lock().unwrap().read_backs.clone()
    }

    fn sent_texts(&self) -> Vec<String> {
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
            dm_event_id: format!("dm-{}", s.sent.len()),
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
                dm_event_id: format!("dm-{}", i + 1),
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

type TestBridge = Bridge<MemoryStore, FakeX, FakeConnect, Arc<ManualClock>>;

struct Harness {
    bridge: Arc<TestBridge>,
    x: FakeX,
    connect: FakeConnect,
    clock: Arc<ManualClock>,
}

const BUSINESS: &str = "40876567";
const CUSTOMER: &str = "55125386";

fn harness() -> Harness {
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

fn uid(s: &str) -> XUserId {
    XUserId::parse(s).unwrap()
}

fn dm(event_id: u64, created_ms: i64, text: &str) -> InboundDm {
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
    }
}

fn batch(dms: Vec<InboundDm>) -> InboundBatch {
    InboundBatch {
        events: dms.into_iter().map(InboundEvent::Message).collect(),
    }
}

fn agent_item(id: &str, contact: &str, t: i64, body: ChatItemBody) -> ChatItem {
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

fn markdown(s: &str) -> ChatItemBody {
    ChatItemBody::Message {
        content_type: "text/markdown".into(),
        content: s.into(),
    }
}

impl Harness {
    /// Runs every job that is due, advancing time past reorder windows and retry delays,
    /// until nothing is left open (or `max_rounds` is reached).
    async fn drain(&self) {
        for _ in 0..200 {
            self.clock.advance(1_000);
            let mut ran = false;
            for queue in [Queue::Inbound, Queue::Outbound] {
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

    async fn open_jobs(&self) -> usize {
        let mut n = 0;
        for q in [Queue::Inbound, Queue::Outbound] {
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

// ---- inbound ---------------------------------------------------------------------------------

#[tokio::test]
async fn first_dm_opens_a_chat_with_profile_attributes_then_streams_and_connects() {
    let h = harness();
    let r = h
        .bridge
        .accept_inbound(batch(vec![dm(1, 10, "Hola2")]))
        .await
        .unwrap();
    assert_eq!(r.accepted, 1);
    h.drain().await;
    let contacts = h.connect.contacts();
    assert_eq!(contacts.len(), 1);
    let c = &contacts[0];
    assert_eq!(c.messages, vec!["Hola2"]);
    assert_eq!(c.display_name, "Elizabeth Fuentes");
    assert_eq!(c.attributes["Channel"], "X");
    assert_eq!(c.attributes["customerId"], CUSTOMER);
    assert_eq!(c.attributes["customerName"], "Elizabeth Fuentes");
    assert_eq!(c.attributes["x_username"], "ElizabethFue12");
    assert_eq!(
        c.attributes["x_profile_url"],
        "https://x.com/ElizabethFue12"
    );
    assert_eq!(c.attributes["x_followers_count"], "1146");
    assert_eq!(c.attributes["x_business_account_id"], BUSINESS);
    assert!(c.streaming && c.connected);
    // the session row exists and is live
    let s = h
        .bridge
        .store()
        .open_session(&uid(BUSINESS), &uid(CUSTOMER))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.status, SessionStatus::Live);
    assert_eq!(s.initial_contact_id.as_str(), "contact-0");
    // streaming was started before the participant connection
    let calls = h.connect.0.lock().unwrap().calls.clone();
    assert_eq!(
        calls,
        vec![
            "StartChatContact",
            "StartContactStreaming",
            "CreateParticipantConnection"
        ]
    );
}

#[tokio::test]
async fn echoes_and_duplicates_never_reach_connect() {
    let h = harness();
    let mut echo = dm(2, 20, "Thanks! An agent will be with you shortly.");
    echo.sender = uid(BUSINESS);
    echo.recipient = uid(CUSTOMER);
    let r = h
        .bridge
        .accept_inbound(batch(vec![dm(1, 10, "hi"), echo]))
        .await
        .unwrap();
    assert_eq!((r.accepted, r.echoes), (1, 1));
    let again = h
        .bridge
        .accept_inbound(batch(vec![dm(1, 10, "hi")]))
        .await
        .unwrap();
    assert_eq!((again.accepted, again.duplicates), (0, 1));
    h.drain().await;
    assert_eq!(h.connect.contacts().len(), 1);
    assert_eq!(h.connect.contacts()[0].messages, vec!["hi"]);
}

#[tokio::test]
async fn messages_of_one_customer_arrive_in_created_order_whatever_the_arrival_order() {
    let h = harness();
    // accepted in reverse order, in separate deliveries within the reorder window
    for i in (1..=5u64).rev() {
        h.bridge
            .accept_inbound(batch(vec![dm(100 + i, i as i64 * 10, &format!("m{i}"))]))
            .await
            .unwrap();
    }
    h.drain().await;
    let contacts = h.connect.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].messages, vec!["m1", "m2", "m3", "m4", "m5"]);
}

#[tokio::test]
async fn long_message_is_split_in_order_and_retry_does_not_duplicate_parts() {
    let h = harness();
    let text = "word ".repeat(600); // 3,000 chars
    // the second SendMessage fails transiently once: the retry must not post part 1 twice
    h.connect
        .fail_after("SendMessage", 1, ConnectError::Unavailable("blip".into()));
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "opening")]))
        .await
        .unwrap();
    h.drain().await;
    h.bridge
        .accept_inbound(batch(vec![dm(2, 20, &text)]))
        .await
        .unwrap();
    h.drain().await;
    let msgs = &h.connect.contacts()[0].messages;
    assert_eq!(msgs.len(), 1 + 3, "{msgs:?}");
    let calls = h
        .connect
        .0
        .lock()
        .unwrap()
        .calls
        .iter()
        .filter(|c| **c == "SendMessage")
        .count();
    assert_eq!(
        calls,
        3 + 2,
        "part 1 was posted again on retry (deduplicated by its ClientToken)"
    );
    assert!(msgs[1..].iter().all(|m| m.chars().count() <= 1024));
    assert_eq!(msgs[1..].join(" ").split_whitespace().count(), 600);
}

#[tokio::test]
async fn first_dm_longer_than_the_limit_opens_the_chat_with_its_first_part() {
    let h = harness();
    let text = "ab ".repeat(1000);
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, &text)]))
        .await
        .unwrap();
    h.drain().await;
    let c = &h.connect.contacts()[0];
    assert_eq!(c.messages.len(), 3);
    assert_eq!(c.messages.join(" ").split_whitespace().count(), 1000);
}

#[tokio::test]
async fn access_denied_on_send_opens_a_new_chat_carrying_the_message() {
    let h = harness();
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "first")]))
        .await
        .unwrap();
    h.drain().await;
    h.connect.end(0); // the chat timed out on the Connect side, nobody told us
    h.bridge
        .accept_inbound(batch(vec![dm(2, 20, "second")]))
        .await
        .unwrap();
    h.drain().await;
    let contacts = h.connect.contacts();
    assert_eq!(contacts.len(), 2);
    assert_eq!(contacts[1].messages, vec!["second"]);
    let old = h
        .bridge
        .store()
        .session_by_initial_contact(&InitialContactId::parse("contact-0").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.status, SessionStatus::Ended);
    let open = h
        .bridge
        .store()
        .open_session(&uid(BUSINESS), &uid(CUSTOMER))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(open.initial_contact_id.as_str(), "contact-1");
}

#[tokio::test]
async fn a_crash_between_start_chat_and_connection_resumes_without_duplicating_the_opening_message()
{
    let h = harness();
    h.connect.fail(
        "CreateParticipantConnection",
        ConnectError::Unavailable("down".into()),
    );
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "hello")]))
        .await
        .unwrap();
    h.drain().await;
    let contacts = h.connect.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].messages, vec!["hello"]);
    assert!(contacts[0].connected);
}

#[tokio::test]
async fn losing_the_race_stops_the_duplicate_contact_and_uses_the_winner() {
    let h = harness();
    // Another worker (say, a second replica) opened the customer's chat between our lookup and
    // our insert: simulate by inserting its session directly after our StartChatContact.
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "theirs")]))
        .await
        .unwrap();
    h.drain().await;
    let winner = h
        .bridge
        .store()
        .open_session(&uid(BUSINESS), &uid(CUSTOMER))
        .await
        .unwrap()
        .unwrap();
    // A direct call of start_chat for a second message sees OpenExists.
    let started = h
        .bridge
        .start_chat(
            &dm(2, 20, "ours"),
            &[super::inbound::Piece::Text("ours".to_owned())],
            0,
        )
        .await
        .unwrap();
    match started {
        super::inbound::Started::Existing(s) => {
            assert_eq!(s.initial_contact_id, winner.initial_contact_id)
        }
        super::inbound::Started::New(..) => panic!("the store must refuse a second open session"),
    }
    let contacts = h.connect.contacts();
    assert_eq!(contacts.len(), 2);
    assert!(contacts[1].stopped, "the loser's contact is stopped");
}

#[tokio::test]
async fn profile_tiers_inline_then_cache_then_api_and_failure_never_blocks() {
    let h = harness();
    // no inline profile, API fails: the message still goes, named by id
    let mut d = dm(1, 10, "hi");
    d.sender_profile = None;
    h.x.0
        .lock()
        .unwrap()
        .user_faults
        .push_back(XError::Unavailable("down".into()));
    h.bridge.accept_inbound(batch(vec![d])).await.unwrap();
    h.drain().await;
    assert_eq!(h.connect.contacts()[0].display_name, CUSTOMER);
    assert_eq!(h.x.0.lock().unwrap().user_calls, 1);

    // inline profile is cached; a later chat without inline data uses the cache, not the API
    let h = harness();
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "hi")]))
        .await
        .unwrap();
    h.drain().await;
    h.connect.end(0);
    let mut d = dm(2, 20, "again");
    d.sender_profile = None;
    h.bridge.accept_inbound(batch(vec![d])).await.unwrap();
    h.drain().await;
    assert_eq!(h.connect.contacts()[1].display_name, "Elizabeth Fuentes");
    assert_eq!(h.x.0.lock().unwrap().user_calls, 0);

    // after the TTL the API is asked
    h.clock.advance(8 * 24 * 3600 * 1000);
    h.x.0.lock().unwrap().users.insert(
        CUSTOMER.into(),
        XProfile {
            name: Some("Eli F.".into()),
            ..XProfile::unknown(uid(CUSTOMER))
        },
    );
    h.connect.end(1);
    let mut d = dm(3, 30, "third");
    d.sender_profile = None;
    h.bridge.accept_inbound(batch(vec![d])).await.unwrap();
    h.drain().await;
    assert_eq!(h.connect.contacts()[2].display_name, "Eli F.");
    assert_eq!(h.x.0.lock().unwrap().user_calls, 1);
}

const PHOTO_URL: &str = "https://ton.twitter.com/1.1/ton/data/dm/1/2/T7xt1pvd.jpg";

fn with_media(mut d: InboundDm, kind: MediaKind, url: &str) -> InboundDm {
    d.media = Some(InboundMedia {
        kind,
        media_id: "1547580751654203394".into(),
        url: url.into(),
        content_type: None,
    });
    d
}

impl Harness {
    fn add_media(&self, url: &str, content_type: &str, bytes: Vec<u8>) {
        self.x
            .0
            .lock()
            .unwrap()
            .media
            .insert(url.into(), (content_type.into(), bytes));
    }
}

#[tokio::test]
async fn a_photo_is_attached_after_its_caption() {
    let h = harness();
    let photo: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    h.add_media(PHOTO_URL, "image/jpeg", photo.clone());
    h.bridge
        .accept_inbound(batch(vec![with_media(
            dm(1, 10, "Here is the receipt:"),
            MediaKind::Photo,
            PHOTO_URL,
        )]))
        .await
        .unwrap();
    h.drain().await;
    let c = &h.connect.contacts()[0];
    assert_eq!(c.messages, vec!["Here is the receipt:"]);
    assert_eq!(c.attachments.len(), 1);
    let (name, ct, bytes) = &c.attachments[0];
    assert_eq!((name.as_str(), ct.as_str()), ("T7xt1pvd.jpg", "image/jpeg"));
    assert_eq!(bytes, &photo);
}

#[tokio::test]
async fn a_media_only_first_dm_opens_the_chat_with_a_sentence_then_the_file() {
    let h = harness();
    h.add_media(PHOTO_URL, "image/jpeg", vec![1, 2, 3]);
    h.bridge
        .accept_inbound(batch(vec![with_media(
            dm(1, 10, ""),
            MediaKind::Photo,
            PHOTO_URL,
        )]))
        .await
        .unwrap();
    h.drain().await;
    let c = &h.connect.contacts()[0];
    assert_eq!(c.messages, vec!["The customer sent a photo."]);
    assert_eq!(c.attachments.len(), 1);
}

#[tokio::test]
async fn media_that_cannot_be_attached_becomes_a_note_for_the_agent() {
    let h = harness();
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "hi")]))
        .await
        .unwrap();
    h.drain().await;
    // off the allow-list: never downloaded
    h.bridge
        .accept_inbound(batch(vec![with_media(
            dm(2, 20, ""),
            MediaKind::Photo,
            "https://elsewhere.example/x.jpg",
        )]))
        .await
        .unwrap();
    // 25 MB: over Connect's limit
    let big = "https://video.twimg.com/dm_video/1/vid/big.mp4";
    h.add_media(big, "video/mp4", vec![0; 25 * 1024 * 1024]);
    h.bridge
        .accept_inbound(batch(vec![with_media(
            dm(3, 30, ""),
            MediaKind::Video,
            big,
        )]))
        .await
        .unwrap();
    // a type Connect refuses
    let gif = "https://pbs.twimg.com/dm_gif/1/a.gif";
    h.add_media(gif, "image/gif", vec![7; 100]);
    h.bridge
        .accept_inbound(batch(vec![with_media(
            dm(4, 40, ""),
            MediaKind::AnimatedGif,
            gif,
        )]))
        .await
        .unwrap();
    h.drain().await;
    let c = &h.connect.contacts()[0];
    assert!(c.attachments.is_empty());
    assert_eq!(c.messages.len(), 4, "{:?}", c.messages);
    assert!(
        c.messages[1].contains("a photo") && c.messages[1].contains("elsewhere.example"),
        "{}",
        c.messages[1]
    );
    assert!(
        c.messages[2].contains("a video") && c.messages[2].contains("25.0 MB"),
        "{}",
        c.messages[2]
    );
    assert!(
        c.messages[3].contains("a GIF") && c.messages[3].contains("image/gif"),
        "{}",
        c.messages[3]
    );
    assert_eq!(
        h.x.0.lock().unwrap().downloads,
        2,
        "the off-list URL was never fetched"
    );
    for n in 2..=4 {
        let job = h
            .bridge
            .store()
            .job(Queue::Inbound, &format!("{BUSINESS}:{n}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.state, JobState::Done);
    }
}

#[tokio::test]
async fn connect_refusing_a_file_is_a_note_and_an_ended_chat_gets_the_file_in_a_new_one() {
    let h = harness();
    h.add_media(PHOTO_URL, "image/jpeg", vec![9; 10]);
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "hi")]))
        .await
        .unwrap();
    h.drain().await;
    h.connect
        .0
        .lock()
        .unwrap()
        .refused_types
        .push("image/jpeg".into());
    h.bridge
        .accept_inbound(batch(vec![with_media(
            dm(2, 20, ""),
            MediaKind::Photo,
            PHOTO_URL,
        )]))
        .await
        .unwrap();
    h.drain().await;
    assert!(h.connect.contacts()[0].messages[1].contains("image/jpeg is not supported"));

    h.connect.0.lock().unwrap().refused_types.clear();
    h.connect.end(0);
    h.bridge
        .accept_inbound(batch(vec![with_media(
            dm(3, 30, "look"),
            MediaKind::Photo,
            PHOTO_URL,
        )]))
        .await
        .unwrap();
    h.drain().await;
    let contacts = h.connect.contacts();
    assert_eq!(contacts.len(), 2);
    assert_eq!(contacts[1].messages, vec!["look"]);
    assert_eq!(contacts[1].attachments.len(), 1);
}

#[tokio::test]
async fn invalid_requests_are_parked_as_failed_transient_errors_are_retried() {
    let h = harness();
    h.connect.fail(
        "StartChatContact",
        ConnectError::Throttled("slow down".into()),
    );
    h.connect
        .fail("StartChatContact", ConnectError::Unavailable("500".into()));
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "hi")]))
        .await
        .unwrap();
    h.drain().await;
    assert_eq!(h.connect.contacts().len(), 1);
    let job = h
        .bridge
        .store()
        .job(Queue::Inbound, &format!("{BUSINESS}:1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Done, 3));

    let h = harness();
    h.connect.fail(
        "StartChatContact",
        ConnectError::Invalid("bad attributes".into()),
    );
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "hi"), dm(2, 20, "next")]))
        .await
        .unwrap();
    h.drain().await;
    let job = h
        .bridge
        .store()
        .job(Queue::Inbound, &format!("{BUSINESS}:1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.state, JobState::Failed);
    // the failed message does not block the customer's next one
    assert_eq!(h.connect.contacts()[0].messages, vec!["next"]);
}

/// A worker whose lease ran out while another one claimed the job again records nothing:
/// neither its retry (which would put the job back to pending for a third run) nor its success.
#[tokio::test]
async fn a_worker_whose_lease_ran_out_cannot_record_over_the_next_claim() {
    let h = harness();
    let store = h.bridge.store();
    let key = format!("{BUSINESS}:1");
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "hi")]))
        .await
        .unwrap();
    h.clock.advance(1_000);
    let claim = |now: i64| {
        let key = key.clone();
        async move {
            let mut job = store.job(Queue::Inbound, &key).await.unwrap().unwrap();
            assert!(
                store
                    .claim(Queue::Inbound, &key, now + 60_000, now)
                    .await
                    .unwrap()
            );
            job.attempts += 1;
            job.state = JobState::Processing;
            job
        }
    };
    let stale = claim(h.clock.now_ms()).await;
    h.clock.advance(61_000);
    let current = claim(h.clock.now_ms()).await;
    assert_eq!((stale.attempts, current.attempts), (1, 2));

    // The stale worker fails transiently: its retry is fenced out, the job stays claimed.
    h.connect
        .fail("StartChatContact", ConnectError::Unavailable("500".into()));
    h.bridge.run_job(Queue::Inbound, stale.clone()).await;
    let held = store.job(Queue::Inbound, &key).await.unwrap().unwrap();
    assert_eq!((held.state, held.attempts), (JobState::Processing, 2));
    assert_eq!(held.last_error, None);

    // The current holder delivers and records it.
    h.bridge.run_job(Queue::Inbound, current).await;
    let done = store.job(Queue::Inbound, &key).await.unwrap().unwrap();
    assert_eq!((done.state, done.attempts), (JobState::Done, 2));

    // The stale worker runs again (idempotently) and is fenced out of the finished job too.
    h.clock.advance(1_000);
    h.bridge.run_job(Queue::Inbound, stale).await;
    assert_eq!(
        store.job(Queue::Inbound, &key).await.unwrap().unwrap(),
        done
    );
    assert_eq!(h.connect.contacts().len(), 1);
    assert_eq!(h.connect.contacts()[0].messages, vec!["hi"]);
    assert_eq!(h.open_jobs().await, 0);
}

// ---- outbound --------------------------------------------------------------------------------

async fn open_chat(h: &Harness) -> String {
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "hi")]))
        .await
        .unwrap();
    h.drain().await;
    h.connect.contacts()[0].id.clone()
}

#[tokio::test]
async fn agent_markdown_reaches_the_customer_as_plain_text_once() {
    let h = harness();
    let contact = open_chat(&h).await;
    let item = agent_item(
        "i1",
        &contact,
        1,
        markdown("Your order is **confirmed**: [track](https://t.example/1)"),
    );
    assert_eq!(
        h.bridge.accept_chat_item(item.clone()).await.unwrap(),
        ItemAcceptance::Accepted
    );
    assert_eq!(
        h.bridge.accept_chat_item(item).await.unwrap(),
        ItemAcceptance::Duplicate
    );
    h.drain().await;
    assert_eq!(
        h.x.sent_texts(),
        vec!["Your order is confirmed: track (https://t.example/1)"]
    );
    let sent = &h.x.0.lock().unwrap().sent[0];
    assert_eq!(
        (sent.business.as_str(), sent.recipient.as_str()),
        (BUSINESS, CUSTOMER)
    );
}

#[tokio::test]
async fn customer_items_and_agent_only_items_are_not_sent() {
    let h = harness();
    let contact = open_chat(&h).await;
    let mut own = agent_item("i1", &contact, 1, markdown("hi"));
    own.role = Some(ParticipantRole::Customer);
    let mut private = agent_item("i2", &contact, 2, markdown("note to self"));
    private.visibility = Some(Visibility::Agent);
    assert_eq!(
        h.bridge.accept_chat_item(own).await.unwrap(),
        ItemAcceptance::Filtered
    );
    assert_eq!(
        h.bridge.accept_chat_item(private).await.unwrap(),
        ItemAcceptance::Filtered
    );
    h.drain().await;
    assert!(h.x.sent_texts().is_empty());
}

#[tokio::test]
async fn participant_left_keeps_the_session_chat_ended_closes_it() {
    let h = harness();
    let contact = open_chat(&h).await;
    let left = agent_item(
        "e1",
        &contact,
        1,
        ChatItemBody::Event {
            content_type: event_types::PARTICIPANT_LEFT.into(),
        },
    );
    h.bridge.accept_chat_item(left).await.unwrap();
    let mut flow = agent_item(
        "m1",
        &contact,
        2,
        ChatItemBody::Message {
            content_type: "text/plain".into(),
            content: "Thanks for contacting us".into(),
        },
    );
    flow.role = Some(ParticipantRole::System);
    h.bridge.accept_chat_item(flow).await.unwrap();
    h.drain().await;
    assert_eq!(h.x.sent_texts(), vec!["Thanks for contacting us"]);
    let s = h
        .bridge
        .store()
        .open_session(&uid(BUSINESS), &uid(CUSTOMER))
        .await
        .unwrap();
    assert!(s.is_some(), "participant.left keeps the session");

    let mut ended = agent_item(
        "e2",
        &contact,
        3,
        ChatItemBody::Event {
            content_type: event_types::CHAT_ENDED.into(),
        },
    );
    ended.role = None;
    h.bridge.accept_chat_item(ended).await.unwrap();
    h.drain().await;
    assert!(
        h.bridge
            .store()
            .open_session(&uid(BUSINESS), &uid(CUSTOMER))
            .await
            .unwrap()
            .is_none()
    );
    h.bridge
        .accept_inbound(batch(vec![dm(9, 90, "new question")]))
        .await
        .unwrap();
    h.drain().await;
    assert_eq!(h.connect.contacts().len(), 2);
}

#[tokio::test]
async fn x_refusal_tells_the_agent_and_rate_limit_waits() {
    let h = harness();
    let contact = open_chat(&h).await;
    h.x.0.lock().unwrap().faults.push_back(XError::Forbidden(
        "You cannot send messages to this user".into(),
    ));
    h.bridge
        .accept_chat_item(agent_item("i1", &contact, 1, markdown("hello")))
        .await
        .unwrap();
    h.drain().await;
    assert!(h.x.sent_texts().is_empty());
    let msgs = h.connect.contacts()[0].messages.clone();
    assert!(
        msgs.last()
            .unwrap()
            .contains("not delivered to the customer"),
        "{msgs:?}"
    );
    let job = h
        .bridge
        .store()
        .job(Queue::Outbound, "i1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.state, JobState::Failed);

    let reset_s = h.clock.now_ms() / 1000 + 900;
    h.x.0.lock().unwrap().faults.push_back(XError::RateLimited {
        reset_at_s: Some(reset_s),
    });
    h.bridge
        .accept_chat_item(agent_item("i2", &contact, 2, markdown("second")))
        .await
        .unwrap();
    h.drain().await;
    assert_eq!(h.x.sent_texts(), vec!["second"]);
    assert!(
        h.clock.now_ms() >= (reset_s + 1) * 1000,
        "waited for x-rate-limit-reset"
    );
}

// ---- outbound: reading X back before sending again -------------------------------------------

/// `n` distinct words, `w00000 w00001 …` (7 characters each with the space).
fn numbered_words(n: usize) -> String {
    (0..n)
        .map(|i| format!("w{i:05}"))
        .collect::<Vec<_>>()
        .join(" ")
}

async fn outbound_job(h: &Harness, key: &str) -> crate::jobs::Job {
    h.bridge
        .store()
        .job(Queue::Outbound, key)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_job_run_again_after_x_took_a_part_sends_only_the_rest() {
    let h = harness();
    let contact = open_chat(&h).await;
    // A first attempt does not read anything back.
    h.bridge
        .accept_chat_item(agent_item("i0", &contact, 1, markdown("hello")))
        .await
        .unwrap();
    h.drain().await;
    assert_eq!(h.x.sent_texts(), vec!["hello"]);
    assert_eq!(h.x.read_backs(), Vec::<i64>::new());

    let text = numbered_words(3_500); // 24,499 characters: three DMs
    let parts = split_message(
        &render_for_x("text/markdown", &text).unwrap(),
        X_DM_MAX_CHARS,
    );
    assert_eq!(parts.len(), 3);
    // Part 2 reaches X but its answer is lost (a timeout): the job is retried.
    h.x.lose_answer_after(1);
    h.bridge
        .accept_chat_item(agent_item("i1", &contact, 2, markdown(&text)))
        .await
        .unwrap();
    h.drain().await;
    let mut expected = vec!["hello".to_owned()];
    expected.extend(parts);
    let sent = h.x.sent_texts();
    let lengths = |t: &[String]| t.iter().map(|p| p.chars().count()).collect::<Vec<_>>();
    assert_eq!(lengths(&sent), lengths(&expected), "each part exactly once");
    assert!(sent == expected, "in order");
    let job = outbound_job(&h, "i1").await;
    assert_eq!((job.state, job.attempts), (JobState::Done, 2));
    // Read back once, from the first claim of this job on.
    assert_eq!(h.x.read_backs(), vec![job.first_claimed_at_ms.unwrap()]);
}

#[tokio::test]
async fn identical_parts_need_as_many_dms_on_x_and_an_earlier_job_does_not_count() {
    let h = harness();
    let contact = open_chat(&h).await;
    let one = "a".repeat(X_DM_MAX_CHARS);
    // An earlier job of the chat sent the very same text.
    h.bridge
        .accept_chat_item(agent_item("i1", &contact, 1, markdown(&one)))
        .await
        .unwrap();
    // The next one is that text twice: two identical parts. The first reaches X, its answer
    // is lost.
    h.x.lose_answer_after(1);
    h.bridge
        .accept_chat_item(agent_item("i2", &contact, 2, markdown(&one.repeat(2))))
        .await
        .unwrap();
    h.drain().await;
    let sent = h.x.sent_texts();
    assert_eq!(sent.len(), 3, "one DM for i1, two for i2");
    assert!(sent.iter().all(|t| *t == one));
    let job = outbound_job(&h, "i2").await;
    assert_eq!((job.state, job.attempts), (JobState::Done, 2));
    assert_eq!(h.x.read_backs(), vec![job.first_claimed_at_ms.unwrap()]);
    assert!(
        outbound_job(&h, "i1").await.updated_at_ms < job.first_claimed_at_ms.unwrap(),
        "the earlier job finished before this one was first claimed"
    );
}

#[tokio::test]
async fn a_file_job_run_again_after_its_dm_reached_x_sends_nothing_more() {
    let h = harness();
    let contact = open_chat(&h).await;
    h.connect.0.lock().unwrap().agent_files.insert(
        "a-png".into(),
        ("image/png".into(), vec![0x89, b'P', b'N', b'G']),
    );
    // The DM carrying the upload reaches X; its answer is lost.
    h.x.lose_answer_after(0);
    h.bridge
        .accept_chat_item(agent_item(
            "i1",
            &contact,
            1,
            ChatItemBody::Attachment {
                attachments: vec![file(
                    "a-png",
                    "Screenshot.png",
                    "image/png",
                    AttachmentStatus::Approved,
                )],
            },
        ))
        .await
        .unwrap();
    h.drain().await;
    let job = outbound_job(&h, "i1").await;
    assert_eq!((job.state, job.attempts), (JobState::Done, 2));
    let x = h.x.0.lock().unwrap();
    assert_eq!(x.uploads.len(), 1, "not uploaded again");
    assert_eq!(x.sent.len(), 1, "not sent again");
    assert_eq!(x.sent[0].media_id.as_deref(), Some("m0"));
    assert_eq!(x.read_backs, vec![job.first_claimed_at_ms.unwrap()]);
    drop(x);
    let fetched = h
        .connect
        .0
        .lock()
        .unwrap()
        .calls
        .iter()
        .filter(|c| **c == "GetAttachment")
        .count();
    assert_eq!(fetched, 1, "not fetched from Connect again");
}

#[tokio::test]
async fn a_read_back_that_fails_waits_and_one_x_refuses_sends_again() {
    let h = harness();
    let contact = open_chat(&h).await;
    // The DM reaches X, its answer is lost; then reading back fails once, transiently: nothing
    // is sent blind, the job waits and reads again.
    h.x.lose_answer_after(0);
    h.x.0
        .lock()
        .unwrap()
        .read_back_faults
        .push_back(XError::Unavailable("timeout".into()));
    h.bridge
        .accept_chat_item(agent_item("i1", &contact, 1, markdown("hello")))
        .await
        .unwrap();
    h.drain().await;
    assert_eq!(h.x.sent_texts(), vec!["hello"]);
    let job = outbound_job(&h, "i1").await;
    assert_eq!((job.state, job.attempts), (JobState::Done, 3));
    let since = job.first_claimed_at_ms.unwrap();
    assert_eq!(h.x.read_backs(), vec![since, since]);

    // X refuses the read-back for good: the job sends as it did before the read-back existed.
    h.x.lose_answer_after(0);
    h.x.0
        .lock()
        .unwrap()
        .read_back_faults
        .push_back(XError::Forbidden("no DM read access".into()));
    h.bridge
        .accept_chat_item(agent_item("i2", &contact, 2, markdown("again")))
        .await
        .unwrap();
    h.drain().await;
    assert_eq!(h.x.sent_texts(), vec!["hello", "again", "again"]);
    assert_eq!(outbound_job(&h, "i2").await.state, JobState::Done);
    assert_eq!(h.x.read_backs().len(), 3);
}

fn file(id: &str, name: &str, content_type: &str, status: AttachmentStatus) -> AttachmentRef {
    AttachmentRef {
        attachment_id: id.into(),
        name: name.into(),
        content_type: content_type.into(),
        status,
    }
}

#[tokio::test]
async fn agent_images_and_videos_reach_x_as_media_and_other_files_as_a_sentence() {
    let h = harness();
    let contact = open_chat(&h).await;
    let png: Vec<u8> = vec![0x89, b'P', b'N', b'G', 1, 2, 3];
    {
        let mut s = h.connect.0.lock().unwrap();
        s.agent_files
            .insert("a-png".into(), ("image/png".into(), png.clone()));
        s.agent_files
            .insert("a-mp4".into(), ("video/mp4".into(), vec![5; 3000]));
        s.agent_files
            .insert("a-pdf".into(), ("application/pdf".into(), vec![1]));
    }
    let attach = |id: &str, t: i64, files: Vec<AttachmentRef>| {
        agent_item(
            id,
            &contact,
            t,
            ChatItemBody::Attachment { attachments: files },
        )
    };
    h.bridge
        .accept_chat_item(attach(
            "i1",
            1,
            vec![file(
                "a-png",
                "Screenshot.png",
                "image/png",
                AttachmentStatus::Approved,
            )],
        ))
        .await
        .unwrap();
    h.bridge
        .accept_chat_item(attach(
            "i2",
            2,
            vec![
                file("a-mp4", "clip.mp4", "video/mp4", AttachmentStatus::Approved),
                file(
                    "a-pdf",
                    "invoice.pdf",
                    "application/pdf",
                    AttachmentStatus::Approved,
                ),
            ],
        ))
        .await
        .unwrap();
    h.bridge
        .accept_chat_item(attach(
            "i3",
            3,
            vec![file(
                "a-x",
                "scan.png",
                "image/png",
                AttachmentStatus::InProgress,
            )],
        ))
        .await
        .unwrap();
    h.bridge
        .accept_chat_item(attach(
            "i4",
            4,
            vec![file(
                "a-r",
                "virus.png",
                "image/png",
                AttachmentStatus::Rejected,
            )],
        ))
        .await
        .unwrap();
    h.drain().await;

    let (uploads, sent) = {
        let x = h.x.0.lock().unwrap();
        (x.uploads.clone(), x.sent.clone())
    };
    assert_eq!(uploads.len(), 2);
    assert_eq!(
        (uploads[0].0, uploads[0].2.clone()),
        (XMediaCategory::DmImage, png)
    );
    assert_eq!(uploads[1].0, XMediaCategory::DmVideo);
    let sent: Vec<(Option<String>, Option<String>)> = sent
        .iter()
        .map(|d| (d.text.clone(), d.media_id.clone()))
        .collect();
    assert_eq!(
        sent,
        vec![
            (None, Some("m0".into())),
            (None, Some("m1".into())),
            (
                Some(
                    "The agent sent a document (invoice.pdf) that can't be delivered over X DM."
                        .into()
                ),
                None
            ),
            (
                Some(
                    "The agent sent an image (virus.png) that can't be delivered over X DM.".into()
                ),
                None
            ),
        ]
    );
    assert!(
        sent.iter()
            .all(|(t, _)| !t.as_deref().unwrap_or("").contains("http")),
        "never a URL"
    );
    let notes: Vec<String> = h.connect.contacts()[0]
        .messages
        .iter()
        .filter(|m| m.starts_with("⚠"))
        .cloned()
        .collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes[0].contains("invoice.pdf was not delivered") && notes[0].contains("application/pdf")
    );
    assert!(
        notes[1].contains("virus.png was not delivered") && notes[1].contains("did not approve")
    );
    // the two files of one item became two jobs
    assert!(
        h.bridge
            .store()
            .job(Queue::Outbound, "i2#0")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        h.bridge
            .store()
            .job(Queue::Outbound, "i2#1")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn an_agent_file_over_xs_limit_is_a_sentence_not_an_upload() {
    let h = harness();
    let contact = open_chat(&h).await;
    h.connect
        .0
        .lock()
        .unwrap()
        .agent_files
        .insert("big".into(), ("image/png".into(), vec![0; 6 * 1024 * 1024]));
    let item = agent_item(
        "i1",
        &contact,
        1,
        ChatItemBody::Attachment {
            attachments: vec![file(
                "big",
                "huge.png",
                "image/png",
                AttachmentStatus::Approved,
            )],
        },
    );
    h.bridge.accept_chat_item(item).await.unwrap();
    h.drain().await;
    assert!(h.x.0.lock().unwrap().uploads.is_empty());
    assert_eq!(
        h.x.sent_texts(),
        vec!["The agent sent an image (huge.png) that can't be delivered over X DM."]
    );
    let last = h.connect.contacts()[0].messages.last().cloned().unwrap();
    assert!(last.contains("6.0 MB") && last.contains("5.0 MB"), "{last}");
}

#[tokio::test]
async fn items_of_unknown_chats_are_skipped() {
    let h = harness();
    h.bridge
        .accept_chat_item(agent_item("i1", "someone-elses", 1, markdown("hi")))
        .await
        .unwrap();
    h.drain().await;
    assert!(h.x.sent_texts().is_empty());
    let job = h
        .bridge
        .store()
        .job(Queue::Outbound, "i1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.state, JobState::Done);
}

#[tokio::test]
async fn dispatcher_delivers_in_the_background_and_stops_on_shutdown() {
    let h = harness();
    // real time for the dispatcher's sleeps; the manual clock is advanced by the test
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(Arc::clone(&h.bridge).run_dispatcher(Queue::Inbound, rx));
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "hi")]))
        .await
        .unwrap();
    h.clock.advance(1_000);
    h.bridge.wake(Queue::Inbound);
    for _ in 0..200 {
        if !h.connect.contacts().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(h.connect.contacts().len(), 1);
    tx.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn a_hold_delivers_nothing_new_and_its_release_delivers_in_created_order() {
    let h = harness();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(Arc::clone(&h.bridge).run_dispatcher(Queue::Inbound, rx));
    let hold = h.bridge.hold(Queue::Inbound);
    assert!(h.bridge.is_held(Queue::Inbound));
    // A live DM arrives during a catch-up…
    h.bridge
        .accept_inbound(batch(vec![dm(3, 30, "live")]))
        .await
        .unwrap();
    h.clock.advance(1_000);
    h.bridge.wake(Queue::Inbound);
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    assert!(h.connect.contacts().is_empty(), "nothing starts while held");
    // …and the catch-up stores the older DMs of the gap.
    h.bridge
        .accept_inbound(batch(vec![dm(1, 10, "gap one"), dm(2, 20, "gap two")]))
        .await
        .unwrap();
    h.clock.advance(1_000);
    drop(hold);
    assert!(!h.bridge.is_held(Queue::Inbound));
    for _ in 0..400 {
        if h.connect.contacts().first().map_or(0, |c| c.messages.len()) >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(
        h.connect.contacts()[0].messages,
        ["gap one", "gap two", "live"]
    );
    tx.send(true).unwrap();
    task.await.unwrap();
}

// ---- leases of running jobs ------------------------------------------------------------------

/// Milliseconds on tokio's clock (paused in these tests), so leases and the heartbeat share one
/// time.
#[derive(Debug)]
struct TokioClock(tokio::time::Instant);

impl Clock for TokioClock {
    fn now_ms(&self) -> i64 {
        1_000_000 + i64::try_from(self.0.elapsed().as_millis()).unwrap()
    }
}

/// `FakeConnect` whose StartChatContact takes `delay` before it reaches Connect (a long relay).
#[derive(Debug, Clone)]
struct SlowConnect {
    inner: FakeConnect,
    delay: std::time::Duration,
    /// StartChatContact calls begun (whether or not they got through).
    started: Arc<std::sync::atomic::AtomicUsize>,
}

impl ConnectApi for SlowConnect {
    async fn start_chat(&self, req: &StartChat) -> Result<StartedChat, ConnectError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.inner.start_chat(req).await
    }
    async fn start_streaming(&self, contact: &ContactId, token: &str) -> Result<(), ConnectError> {
        self.inner.start_streaming(contact, token).await
    }
    async fn stop_contact(&self, contact: &ContactId) -> Result<(), ConnectError> {
        self.inner.stop_contact(contact).await
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

type LeaseBridge = Bridge<MemoryStore, FakeX, SlowConnect, TokioClock>;

const SHORT_LEASE_MS: i64 = 60;
/// How long opening the chat takes: several leases.
const SLOW_CALL_MS: u64 = 400;

/// A bridge with a 60 ms lease whose first Connect call takes 400 ms (needs paused time).
fn slow_bridge() -> (Arc<LeaseBridge>, SlowConnect) {
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

/// Accepts one DM and claims its job as the dispatcher does; returns the job as claimed.
async fn accept_and_claim(bridge: &LeaseBridge, text: &str) -> crate::jobs::Job {
    bridge
        .accept_inbound(batch(vec![dm(1, 10, text)]))
        .await
        .unwrap();
    for _ in 0..100 {
        let now = bridge.now_ms();
        let heads = bridge
            .store()
            .lane_heads(Queue::Inbound, now, 10)
            .await
            .unwrap();
        if let Some(head) = heads.into_iter().find(|j| j.due_at_ms() <= now) {
            let store = bridge.store();
            assert!(
                store
                    .claim(Queue::Inbound, &head.key, now + SHORT_LEASE_MS, now)
                    .await
                    .unwrap()
            );
            let claimed = store.job(Queue::Inbound, &head.key).await.unwrap().unwrap();
            assert_eq!((claimed.state, claimed.attempts), (JobState::Processing, 1));
            return claimed;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the accepted job never became due");
}

#[tokio::test(start_paused = true)]
async fn a_job_running_longer_than_its_lease_keeps_it_and_finishes_once() {
    let (bridge, connect) = slow_bridge();
    let job = accept_and_claim(&bridge, "a long relay").await;
    let (key, claimed_at) = (job.key.clone(), bridge.now_ms());
    let run = tokio::spawn({
        let bridge = Arc::clone(&bridge);
        async move { bridge.run_job(Queue::Inbound, job).await }
    });
    // A second worker tries to claim the job all along: it never can while the job runs.
    let mut last_check = claimed_at;
    while !run.is_finished() {
        let now = bridge.now_ms();
        let store = bridge.store();
        assert!(
            !store
                .claim(Queue::Inbound, &key, now + SHORT_LEASE_MS, now)
                .await
                .unwrap(),
            "claimed by a second worker {} ms after the first claim",
            now - claimed_at
        );
        assert_eq!(
            store.lane_heads(Queue::Inbound, now, 10).await.unwrap(),
            vec![]
        );
        last_check = now;
        tokio::time::sleep(std::time::Duration::from_millis(7)).await;
    }
    run.await.unwrap();
    // The checks covered several lease lengths past the first claim's lease.
    assert!(
        last_check - claimed_at >= 4 * SHORT_LEASE_MS,
        "checked only until {} ms",
        last_check - claimed_at
    );
    let done = bridge
        .store()
        .job(Queue::Inbound, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((done.state, done.attempts), (JobState::Done, 1));
    assert_eq!(connect.started.load(Ordering::SeqCst), 1);
    let contacts = connect.inner.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].messages, vec!["a long relay"]);
}

#[tokio::test(start_paused = true)]
async fn a_superseded_run_stops_without_recording_and_the_new_holder_decides() {
    let (bridge, connect) = slow_bridge();
    let job = accept_and_claim(&bridge, "taken over").await;
    let key = job.key.clone();
    let old = tokio::spawn({
        let bridge = Arc::clone(&bridge);
        async move { bridge.run_job(Queue::Inbound, job).await }
    });
    // Mid-run (past the first lease, kept by renewals): the opening call is under way.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(connect.started.load(Ordering::SeqCst), 1);
    assert!(connect.inner.contacts().is_empty());
    let store = bridge.store();
    let renewed = store.job(Queue::Inbound, &key).await.unwrap().unwrap();
    assert_eq!((renewed.state, renewed.attempts), (JobState::Processing, 1));
    assert!(renewed.lease_until_ms > bridge.now_ms(), "{renewed:?}");

    // Another worker takes the job over: the claim is released and claimed again (#2).
    let now = bridge.now_ms();
    assert_eq!(store.release_claims(Queue::Inbound, now).await.unwrap(), 1);
    assert!(
        store
            .claim(Queue::Inbound, &key, now + 10_000, now)
            .await
            .unwrap()
    );
    let held = store.job(Queue::Inbound, &key).await.unwrap().unwrap();
    assert_eq!((held.state, held.attempts), (JobState::Processing, 2));

    // The old run stops at its next renewal: its call never reached Connect, nothing recorded,
    // and its renewal did not move the new holder's lease.
    old.await.unwrap();
    assert!(connect.inner.contacts().is_empty());
    assert_eq!(
        store.job(Queue::Inbound, &key).await.unwrap().unwrap(),
        held
    );

    // The new holder's run is the one that delivers and records.
    bridge.run_job(Queue::Inbound, held).await;
    let done = store.job(Queue::Inbound, &key).await.unwrap().unwrap();
    assert_eq!((done.state, done.attempts), (JobState::Done, 2));
    assert_eq!(connect.started.load(Ordering::SeqCst), 2);
    let contacts = connect.inner.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].messages, vec!["taken over"]);
}
