//! X → Connect: deliver one accepted customer DM into the customer's chat.

use std::collections::BTreeMap;

use tracing::Instrument;

use crate::ids::{ConnectionToken, InitialContactId};
use crate::inbound::{InboundDm, InboundEvent, InboundMedia};
use crate::jobs::Job;
use crate::media::human_size;
use crate::metric_names::PERSISTENT_CHATS;
use crate::ports::{
    ChatMessage, Clock, ConnectApi, ConnectError, SessionInsert, StartChat, Store, StoreError,
    XApi, XError,
};
use crate::profile::XProfile;
use crate::session::{Session, SessionStatus};
use crate::text::{CONNECT_MESSAGE_MAX_CHARS, split_message};

use super::buffering::Buffered;
use super::notes;
use super::{AccountRouting, Bridge};
use crate::engine::JobOutcome;

/// How often one delivery may find its chat ended and open a new one before giving up for now.
const MAX_CHAT_RESTARTS: usize = 3;

/// What one DM becomes in the chat, in order: its text in parts Connect accepts, then its media.
#[derive(Debug)]
pub(super) enum Piece<'a> {
    Text(String),
    Media(&'a InboundMedia),
}

/// Why delivering into a chat stopped.
#[derive(Debug)]
pub(super) enum Halt {
    /// The chat is over: open a new one and carry on from the same piece.
    ChatEnded(String),
    /// Stop this attempt with this outcome.
    Stop(JobOutcome),
}

impl From<ConnectError> for Halt {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::ChatEnded(why) => Halt::ChatEnded(why),
            other => Halt::Stop(other.into()),
        }
    }
}

impl From<StoreError> for Halt {
    fn from(e: StoreError) -> Self {
        Halt::Stop(e.into())
    }
}

impl<S, X, C, K> Bridge<S, X, C, K>
where
    S: Store,
    X: XApi,
    C: ConnectApi,
    K: Clock,
{
    /// Runs one inbound job.
    pub async fn handle_inbound(&self, job: &Job) -> JobOutcome {
        let event: InboundEvent = match self.inbound_handoff.take_or_read(job) {
            Ok(e) => e,
            Err(e) => {
                return JobOutcome::Failed {
                    reason: format!("unreadable inbound job: {e}"),
                };
            }
        };
        match event {
            InboundEvent::Message(dm) => {
                let span =
                    tracing::info_span!("inbound", event_id = %dm.event_id, customer = %dm.sender);
                match self.buffer_and_deliver(job, &dm).instrument(span).await {
                    Ok(()) => JobOutcome::Done,
                    Err(o) => o,
                }
            }
            InboundEvent::Chat(chat) => {
                let span = tracing::info_span!("inbound", message_id = %chat.message_id, customer = %chat.sender, channel = "chat");
                let delivered = async {
                    let dm = self.open_chat(&chat).await?;
                    self.buffer_and_deliver(job, &dm).await
                };
                match delivered.instrument(span).await {
                    Ok(()) => JobOutcome::Done,
                    Err(o) => o,
                }
            }
            // Only messages are enqueued.
            _ => JobOutcome::Done,
        }
    }

    /// Delivers the DM — unless buffering defers it — with any lines buffering has it carry.
    async fn buffer_and_deliver(&self, job: &Job, dm: &InboundDm) -> Result<(), JobOutcome> {
        match self.buffer(job, dm).await? {
            Buffered::Deferred => {
                tracing::debug!("message deferred: its text goes with the customer's next one");
                Ok(())
            }
            Buffered::Deliver { carried, clear } => {
                self.deliver_dm(carried.as_deref().unwrap_or(dm)).await?;
                match clear {
                    Some(version) => self.buffer_delivered(dm, version).await,
                    None => Ok(()),
                }
            }
        }
    }

    async fn deliver_dm(&self, dm: &InboundDm) -> Result<(), JobOutcome> {
        let pieces = pieces(dm);
        if pieces.is_empty() {
            tracing::info!(event_id = %dm.event_id, "message has nothing to deliver");
            return Ok(());
        }
        // Index of the first piece not yet delivered.
        let mut next = 0;
        for _ in 0..MAX_CHAT_RESTARTS {
            let session = match self.store().open_session(&dm.business, &dm.sender).await? {
                Some(s) => {
                    // A chat this very message opened on an earlier attempt already holds the
                    // text part it started with.
                    if let Some(from) = opened_with_part(&s, dm, pieces.len())
                        && matches!(pieces.get(from), Some(Piece::Text(_)))
                    {
                        next = next.max(from + 1);
                    }
                    s
                }
                None => match self.start_chat(dm, &pieces, next).await? {
                    Started::New(s, consumed) => {
                        if consumed {
                            next += 1;
                        }
                        s
                    }
                    // Another worker opened the customer's chat first: deliver into that one.
                    Started::Existing(s) => s,
                },
            };
            match self.send_pieces(&session, dm, &pieces, &mut next).await {
                Ok(()) => return Ok(()),
                Err(Halt::ChatEnded(why)) => {
                    tracing::info!(initial_contact_id = %session.initial_contact_id, reason = %why,
                        "chat is over; opening a new one for the customer");
                    self.end_chat(&session).await?;
                }
                Err(Halt::Stop(outcome)) => return Err(outcome),
            }
        }
        Err(JobOutcome::retry(
            "the customer's chat kept ending while delivering",
        ))
    }

    /// Delivers `pieces[*next..]` into the session, advancing `next` as pieces are accepted.
    async fn send_pieces(
        &self,
        session: &Session,
        dm: &InboundDm,
        pieces: &[Piece<'_>],
        next: &mut usize,
    ) -> Result<(), Halt> {
        // Also finishes the set-up of a chat opened just now or half-way by a crashed attempt.
        let token = self.connection(session).await?;
        while let Some(piece) = pieces.get(*next) {
            match piece {
                Piece::Text(part) => {
                    let message = ChatMessage::plain(part.clone());
                    self.connect
                        .send_message(&token, &message, &piece_token(dm, *next))
                        .await?;
                }
                Piece::Media(media) => self.relay_media(&token, dm, media, *next).await?,
            }
            *next += 1;
        }
        tracing::info!(initial_contact_id = %session.initial_contact_id, "message delivered to the chat");
        Ok(())
    }

    /// Downloads the DM's photo, GIF or video from X and attaches it to the chat; whatever
    /// cannot be attached becomes a note for the agent saying what and why.
    async fn relay_media(
        &self,
        token: &ConnectionToken,
        dm: &InboundDm,
        media: &InboundMedia,
        index: usize,
    ) -> Result<(), Halt> {
        let policy = &self.config.attachments;
        let refusal = match self
            .x
            .download_media(&dm.business, media, policy.max_bytes)
            .await
        {
            Ok(file) if !policy.allows(&file.content_type) => {
                format!("Amazon Connect does not accept {} files", file.content_type)
            }
            Ok(file) => {
                let size = file.length;
                match self
                    .connect
                    .upload_attachment(token, file, &piece_token(dm, index))
                    .await
                {
                    Ok(attachment_id) => {
                        tracing::info!(%attachment_id, bytes = size, "media attached to the chat");
                        return Ok(());
                    }
                    Err(ConnectError::AttachmentRefused(why)) => why,
                    Err(e) => return Err(e.into()),
                }
            }
            Err(XError::MediaHostNotAllowed(host)) => {
                format!(
                    "it is hosted on {host}, which is not an allowed X media host, so it was not fetched"
                )
            }
            Err(XError::TooLarge { size, limit }) => match size {
                Some(size) => format!(
                    "it is {}, over the {} Amazon Connect accepts",
                    human_size(size),
                    human_size(limit)
                ),
                None => format!(
                    "it is over the {} Amazon Connect accepts",
                    human_size(limit)
                ),
            },
            Err(e) if e.is_retryable() => return Err(Halt::Stop(e.into())),
            Err(e) => format!("it could not be downloaded from X ({e})"),
        };
        tracing::warn!(reason = %refusal, "media not attached; telling the agent");
        let note = ChatMessage::plain(notes::media_not_attached(media.kind, &refusal));
        self.connect
            .send_message(token, &note, &format!("{}-note", piece_token(dm, index)))
            .await?;
        Ok(())
    }

    /// Opens a chat starting with `pieces[from]`, race-free: the store decides which of two
    /// concurrent openers wins; the loser stops its contact (never connected, so no agent was
    /// offered it) and uses the winner's. A text piece is the initial message itself
    /// (`Started::New(_, true)`); media is announced by the initial message and attached next.
    pub(super) async fn start_chat(
        &self,
        dm: &InboundDm,
        pieces: &[Piece<'_>],
        from: usize,
    ) -> Result<Started, JobOutcome> {
        let profile = self.resolve_profile(dm).await;
        let (initial, consumed) = match pieces.get(from) {
            Some(Piece::Text(t)) => (t.clone(), true),
            Some(Piece::Media(m)) => (notes::media_opening(m.kind), false),
            None => (String::new(), false),
        };
        // Independent lookups (a store read, Customer Profiles calls): side by side.
        let (previous, customer_id) = tokio::join!(
            self.previous_chat(&dm.business, &dm.sender),
            self.customer_profile_id(&profile)
        );
        let routing = self.config.accounts.get(&dm.business);
        let mut request = StartChat {
            contact_flow_id: routing.and_then(|r| r.contact_flow_id.clone()),
            display_name: profile.display_name(),
            attributes: contact_attributes(&profile, dm, routing),
            initial_message: ChatMessage::plain(initial),
            client_token: start_token(dm, from),
            customer_id,
            continues: previous.as_ref().map(|p| p.chat.clone()),
        };
        let started = match self.connect.start_chat(&request).await {
            Ok(started) => {
                if let Some(previous) = &previous {
                    tracing::info!(continues = %previous.chat, "new chat continues the customer's previous one");
                    metrics::counter!(PERSISTENT_CHATS, "result" => "continued").increment(1);
                    self.previous_chat_used(&dm.business, &dm.sender, previous)
                        .await;
                }
                started
            }
            // Connect would not continue that chat (ended too recently for its transcript,
            // already continued, gone): the customer's message matters more than the history.
            // Nothing was created, so the same ClientToken opens the chat afresh.
            Err(e @ (ConnectError::Invalid(_) | ConnectError::NotFound(_)))
                if request.continues.is_some() =>
            {
                tracing::warn!(error = %e, "Amazon Connect refused to continue the previous chat; starting afresh");
                metrics::counter!(PERSISTENT_CHATS, "result" => "refused").increment(1);
                if let Some(previous) = &previous {
                    // Asking again would be refused again.
                    self.previous_chat_used(&dm.business, &dm.sender, previous)
                        .await;
                }
                request.continues = None;
                self.connect.start_chat(&request).await?
            }
            Err(e) => return Err(e.into()),
        };
        let now = self.now_ms();
        let session = Session {
            business: dm.business.clone(),
            customer: dm.sender.clone(),
            initial_contact_id: InitialContactId::of_new_chat(started.contact_id.clone()),
            participant_token: started.participant_token,
            opened_by: request.client_token.clone(),
            connection: None,
            status: SessionStatus::Starting,
            created_at_ms: now,
            updated_at_ms: now,
        };
        match self.store().insert_session(&session).await? {
            SessionInsert::Inserted => {
                tracing::info!(initial_contact_id = %session.initial_contact_id, "new chat opened");
                Ok(Started::New(session, consumed))
            }
            // A retry of our own earlier attempt: the ClientToken returned the same contact.
            SessionInsert::OpenExists(existing)
                if existing.initial_contact_id == session.initial_contact_id =>
            {
                Ok(Started::New(existing, consumed))
            }
            SessionInsert::OpenExists(existing) => {
                tracing::warn!(ours = %session.initial_contact_id, theirs = %existing.initial_contact_id,
                    "another worker opened this customer's chat first; stopping ours");
                if let Err(e) = self.connect.stop_contact(&started.contact_id).await {
                    tracing::warn!(error = %e, contact_id = %started.contact_id, "could not stop the duplicate contact");
                }
                Ok(Started::Existing(existing))
            }
        }
    }

    /// The customer's connection token for the session, finishing the chat's set-up if a
    /// previous attempt stopped half-way, and renewing the token before it expires.
    pub(super) async fn connection(
        &self,
        session: &Session,
    ) -> Result<ConnectionToken, ConnectError> {
        let now = self.now_ms();
        if let Some(conn) = &session.connection {
            let fresh = conn
                .expires_at_ms
                .is_none_or(|exp| exp - now > self.config.connection_refresh_margin_ms);
            if fresh {
                return Ok(conn.token.clone());
            }
        } else {
            // Streaming first, so that everything the flow says reaches the bridge; the ClientToken
            // makes a repeated call harmless.
            let token = format!("xdm-stream-{}", session.initial_contact_id);
            self.connect
                .start_streaming(&session.initial_contact(), &token)
                .await?;
        }
        let conn = self
            .connect
            .connect_participant(&session.participant_token)
            .await?;
        if let Err(e) = self
            .store()
            .set_session_connection(&session.initial_contact_id, &conn, now)
            .await
        {
            // The token works even if it is not recorded; the next delivery asks for a new one.
            tracing::warn!(error = %e, "could not record the connection token");
        }
        Ok(conn.token)
    }

    /// The customer's profile: inline in the delivery → cache → X users API. Never fails.
    async fn resolve_profile(&self, dm: &InboundDm) -> XProfile {
        let now = self.now_ms();
        let expires = now + self.config.profile_ttl_ms;
        if let Some(p) = dm.sender_profile.as_ref().filter(|p| p.is_known()) {
            if let Err(e) = self.store().cache_profile(p, expires).await {
                tracing::warn!(error = %e, "could not cache the profile");
            }
            return p.clone();
        }
        match self.store().cached_profile(&dm.sender, now).await {
            Ok(Some(p)) => return p,
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "profile cache unavailable"),
        }
        match self.x.user(&dm.business, &dm.sender).await {
            Ok(Some(p)) => {
                if let Err(e) = self.store().cache_profile(&p, expires).await {
                    tracing::warn!(error = %e, "could not cache the profile");
                }
                p
            }
            Ok(None) => {
                tracing::warn!(user = %dm.sender, "X does not know this user; using the id as name");
                XProfile::unknown(dm.sender.clone())
            }
            Err(e) => {
                tracing::warn!(user = %dm.sender, error = %e, "profile lookup failed; using the id as name");
                XProfile::unknown(dm.sender.clone())
            }
        }
    }
}

pub(super) enum Started {
    /// Our new chat; `true` when its initial message was the piece it was opened with.
    New(Session, bool),
    Existing(Session),
}

/// Idempotency token of the StartChatContact that opens a chat with piece `from` of a message.
fn start_token(dm: &InboundDm, from: usize) -> String {
    format!("xdm-{}-{}-{from}", dm.business, dm.event_id)
}

/// The piece of `dm` (of `count`) that opened `session`, if this message opened it: the session
/// keeps the token it was opened with, compared here with the tokens this message would use.
fn opened_with_part(session: &Session, dm: &InboundDm, count: usize) -> Option<usize> {
    (0..count).find(|&from| session.opened_by == start_token(dm, from))
}

/// Idempotency token of one piece of one message: a retry never posts a piece twice.
fn piece_token(dm: &InboundDm, index: usize) -> String {
    format!("xdm-{}-{}-p{index}", dm.business, dm.event_id)
}

/// The caption in parts Connect accepts, then the media.
fn pieces(dm: &InboundDm) -> Vec<Piece<'_>> {
    let mut pieces: Vec<Piece<'_>> = split_message(&dm.text, CONNECT_MESSAGE_MAX_CHARS)
        .into_iter()
        .map(Piece::Text)
        .collect();
    if let Some(media) = &dm.media {
        pieces.push(Piece::Media(media));
    }
    pieces
}

/// Contact attributes, compatible with the AWS sample's contact flows (`Channel`, `customerId`,
/// `customerName`) plus namespaced extras.
fn contact_attributes(
    profile: &XProfile,
    dm: &InboundDm,
    routing: Option<&AccountRouting>,
) -> BTreeMap<String, String> {
    let mut a = routing.map(|r| r.attributes.clone()).unwrap_or_default();
    a.insert("Channel".to_owned(), "X".to_owned());
    a.insert("customerId".to_owned(), dm.sender.to_string());
    a.insert("customerName".to_owned(), profile.display_name());
    a.insert("x_business_account_id".to_owned(), dm.business.to_string());
    a.insert("x_channel".to_owned(), dm.channel.as_str().to_owned());
    if let Some(u) = &profile.username {
        a.insert("x_username".to_owned(), u.clone());
    }
    if let Some(url) = profile.profile_url() {
        a.insert("x_profile_url".to_owned(), url);
    }
    if let Some(img) = &profile.profile_image_url {
        a.insert("x_profile_image_url".to_owned(), img.clone());
    }
    if let Some(v) = profile.verified {
        a.insert("x_verified".to_owned(), v.to_string());
    }
    if let Some(n) = profile.followers_count {
        a.insert("x_followers_count".to_owned(), n.to_string());
    }
    a
}
