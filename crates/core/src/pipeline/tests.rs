//! Pipeline behaviour against in-memory fakes of X, Connect and the store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use crate::chat_item::{
    AttachmentRef, AttachmentStatus, ChatItem, ChatItemBody, ParticipantRole, Visibility,
    event_types,
};
use crate::ids::{
    ChatItemId, ConnectionToken, ContactId, InitialContactId, ParticipantToken, XEventId, XUserId,
};
use crate::inbound::{InboundBatch, InboundDm, InboundEvent, InboundMedia, MediaKind};
use crate::jobs::{JobState, Queue};
use crate::memory_store::MemoryStore;
use crate::ports::{
    ChatMessage, Clock, ConnectApi, ConnectError, DmRequest, SentDm, StartChat, StartedChat, Store,
    XApi, XError,
};
use crate::profile::XProfile;
use crate::session::{ConnectionCredentials, SessionStatus};

use super::{Bridge, BridgeConfig, ItemAcceptance};

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
}

#[derive(Debug, Default)]
struct XState {
    sent: Vec<DmRequest>,
    users: HashMap<String, XProfile>,
    user_calls: usize,
    faults: VecDeque<XError>,
    user_faults: VecDeque<XError>,
}

#[derive(Debug, Default, Clone)]
struct FakeX(Arc<Mutex<XState>>);

impl FakeX {
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
        s.sent.push(dm.clone());
        Ok(SentDm {
            dm_event_id: format!("dm-{}", s.sent.len()),
        })
    }

    async fn user(&self, _business: &XUserId, id: &XUserId) -> Result<Option<XProfile>, XError> {
        let mut s = self.0.lock().unwrap();
        s.user_calls += 1;
        if let Some(e) = s.user_faults.pop_front() {
            return Err(e);
        }
        Ok(s.users.get(id.as_str()).cloned())
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
                        .claim(queue, &job.key, now, now + 60_000)
                        .await
                        .unwrap()
                    {
                        job.attempts += 1;
                        self.bridge.run_job(queue, job).await;
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
        .start_chat(&dm(2, 20, "ours"), &["ours".to_owned()], 0)
        .await
        .unwrap();
    match started {
        super::inbound::Started::Existing(s) => {
            assert_eq!(s.initial_contact_id, winner.initial_contact_id)
        }
        super::inbound::Started::New(_) => panic!("the store must refuse a second open session"),
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

#[tokio::test]
async fn media_that_cannot_be_attached_is_announced_to_the_agent() {
    let h = harness();
    let mut d = dm(1, 10, "Here is the receipt:");
    d.media = Some(InboundMedia {
        kind: MediaKind::Photo,
        media_id: "1547580751654203394".into(),
        url: "https://ton.twitter.com/1.1/ton/data/dm/1/2/T7xt1pvd.jpg".into(),
        content_type: None,
    });
    h.bridge.accept_inbound(batch(vec![d])).await.unwrap();
    h.drain().await;
    let msgs = &h.connect.contacts()[0].messages;
    assert_eq!(msgs[0], "Here is the receipt:");
    assert!(msgs[1].contains("a photo"), "{msgs:?}");
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

#[tokio::test]
async fn agent_files_become_a_sentence_for_the_customer_never_a_url() {
    let h = harness();
    let contact = open_chat(&h).await;
    let file = |status| AttachmentRef {
        attachment_id: "att-1".into(),
        name: "invoice.pdf".into(),
        content_type: "application/pdf".into(),
        status,
    };
    h.bridge
        .accept_chat_item(agent_item(
            "a0",
            &contact,
            1,
            ChatItemBody::Attachment {
                attachments: vec![file(AttachmentStatus::InProgress)],
            },
        ))
        .await
        .unwrap();
    h.bridge
        .accept_chat_item(agent_item(
            "a1",
            &contact,
            2,
            ChatItemBody::Attachment {
                attachments: vec![file(AttachmentStatus::Approved)],
            },
        ))
        .await
        .unwrap();
    h.drain().await;
    assert_eq!(
        h.x.sent_texts(),
        vec!["The agent sent a document (invoice.pdf) that can't be delivered over X DM."]
    );
    let msgs = h.connect.contacts()[0].messages.clone();
    assert!(
        msgs.last()
            .unwrap()
            .contains("invoice.pdf was not delivered"),
        "{msgs:?}"
    );
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
