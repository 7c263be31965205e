//! X → Connect: deliver one accepted customer DM into the customer's chat.

use std::collections::BTreeMap;

use tracing::Instrument;

use crate::ids::ConnectionToken;
use crate::inbound::{InboundDm, InboundEvent};
use crate::jobs::Job;
use crate::ports::{
    ChatMessage, Clock, ConnectApi, ConnectError, SessionInsert, StartChat, Store, XApi,
};
use crate::profile::XProfile;
use crate::session::{Session, SessionStatus};
use crate::text::{CONNECT_MESSAGE_MAX_CHARS, split_message};

use super::notes;
use super::{Bridge, JobOutcome};

/// How often one delivery may find its chat ended and open a new one before giving up for now.
const MAX_CHAT_RESTARTS: usize = 3;

impl<S, X, C, K> Bridge<S, X, C, K>
where
    S: Store,
    X: XApi,
    C: ConnectApi,
    K: Clock,
{
    /// Runs one inbound job.
    pub async fn handle_inbound(&self, job: &Job) -> JobOutcome {
        let event: InboundEvent = match serde_json::from_str(&job.payload) {
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
                match self.deliver_dm(&dm).instrument(span).await {
                    Ok(()) => JobOutcome::Done,
                    Err(o) => o,
                }
            }
            // Only messages are enqueued.
            _ => JobOutcome::Done,
        }
    }

    async fn deliver_dm(&self, dm: &InboundDm) -> Result<(), JobOutcome> {
        let parts = inbound_parts(dm);
        if parts.is_empty() {
            tracing::info!(event_id = %dm.event_id, "message has nothing to deliver");
            return Ok(());
        }
        // Index of the first part not yet delivered.
        let mut next = 0;
        for _ in 0..MAX_CHAT_RESTARTS {
            let session = match self.store.open_session(&dm.business, &dm.sender).await? {
                Some(s) => {
                    // A chat this very message opened on an earlier attempt already holds the
                    // part it started with.
                    if let Some(from) = opened_with_part(&s, dm) {
                        next = next.max(from + 1);
                    }
                    s
                }
                None => match self.start_chat(dm, &parts, next).await? {
                    // Our new chat carries parts[next] as its initial message.
                    Started::New(s) => {
                        next += 1;
                        s
                    }
                    // Another worker opened the customer's chat first: deliver into that one.
                    Started::Existing(s) => s,
                },
            };
            match self.send_parts(&session, dm, &parts, &mut next).await {
                Ok(()) => return Ok(()),
                Err(ConnectError::ChatEnded(why)) => {
                    tracing::info!(initial_contact_id = %session.initial_contact_id, reason = %why,
                        "chat is over; opening a new one for the customer");
                    self.store
                        .end_session(&session.initial_contact_id, self.clock.now_ms())
                        .await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(JobOutcome::retry(
            "the customer's chat kept ending while delivering",
        ))
    }

    /// Sends `parts[*next..]` into the session, advancing `next` as parts are accepted.
    async fn send_parts(
        &self,
        session: &Session,
        dm: &InboundDm,
        parts: &[String],
        next: &mut usize,
    ) -> Result<(), ConnectError> {
        if *next >= parts.len() {
            // Nothing left, but make sure a chat we just opened is fully set up.
            self.connection(session).await?;
            return Ok(());
        }
        let token = self.connection(session).await?;
        while let Some(part) = parts.get(*next) {
            let client_token = part_token(dm, *next);
            self.connect
                .send_message(&token, &ChatMessage::plain(part.clone()), &client_token)
                .await?;
            *next += 1;
        }
        tracing::info!(initial_contact_id = %session.initial_contact_id, "message delivered to the chat");
        Ok(())
    }

    /// Opens a chat whose initial message is `parts[from]`, race-free: the store decides which
    /// of two concurrent openers wins; the loser stops its contact (never connected, so no agent
    /// was offered it) and uses the winner's.
    pub(super) async fn start_chat(
        &self,
        dm: &InboundDm,
        parts: &[String],
        from: usize,
    ) -> Result<Started, JobOutcome> {
        let profile = self.resolve_profile(dm).await;
        let request = StartChat {
            display_name: profile.display_name(),
            attributes: contact_attributes(&profile, dm),
            initial_message: ChatMessage::plain(parts.get(from).cloned().unwrap_or_default()),
            client_token: start_token(dm, from),
        };
        let started = self.connect.start_chat(&request).await?;
        let now = self.clock.now_ms();
        let session = Session {
            business: dm.business.clone(),
            customer: dm.sender.clone(),
            initial_contact_id: started.contact_id.clone().into(),
            participant_token: started.participant_token,
            opened_by: request.client_token.clone(),
            connection: None,
            status: SessionStatus::Starting,
            created_at_ms: now,
            updated_at_ms: now,
        };
        match self.store.insert_session(&session).await? {
            SessionInsert::Inserted => {
                tracing::info!(initial_contact_id = %session.initial_contact_id, "new chat opened");
                Ok(Started::New(session))
            }
            // A retry of our own earlier attempt: the ClientToken returned the same contact.
            SessionInsert::OpenExists(existing)
                if existing.initial_contact_id == session.initial_contact_id =>
            {
                Ok(Started::New(existing))
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
        let now = self.clock.now_ms();
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
            .store
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
        let now = self.clock.now_ms();
        let expires = now + self.config.profile_ttl_ms;
        if let Some(p) = dm.sender_profile.as_ref().filter(|p| p.is_known()) {
            if let Err(e) = self.store.cache_profile(p, expires).await {
                tracing::warn!(error = %e, "could not cache the profile");
            }
            return p.clone();
        }
        match self.store.cached_profile(&dm.sender, now).await {
            Ok(Some(p)) => return p,
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "profile cache unavailable"),
        }
        match self.x.user(&dm.business, &dm.sender).await {
            Ok(Some(p)) => {
                if let Err(e) = self.store.cache_profile(&p, expires).await {
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
    New(Session),
    Existing(Session),
}

/// Idempotency token of the StartChatContact that opens a chat with part `from` of a message.
fn start_token(dm: &InboundDm, from: usize) -> String {
    format!("xdm-{}-{}-{from}", dm.business, dm.event_id)
}

/// The part of `dm` that opened `session`, if this message opened it.
fn opened_with_part(session: &Session, dm: &InboundDm) -> Option<usize> {
    let prefix = format!("xdm-{}-{}-", dm.business, dm.event_id);
    session.opened_by.strip_prefix(&prefix)?.parse().ok()
}

/// Idempotency token of one part of one message: a retry never posts a part twice.
fn part_token(dm: &InboundDm, index: usize) -> String {
    format!("xdm-{}-{}-p{index}", dm.business, dm.event_id)
}

/// The chat messages one DM becomes: its text in parts Connect accepts, then a note for what
/// could not be attached.
fn inbound_parts(dm: &InboundDm) -> Vec<String> {
    let mut parts = split_message(&dm.text, CONNECT_MESSAGE_MAX_CHARS);
    if let Some(media) = &dm.media {
        parts.push(notes::media_not_attached(media.kind));
    }
    parts
}

/// Contact attributes, compatible with the AWS sample's contact flows (`Channel`, `customerId`,
/// `customerName`) plus namespaced extras.
fn contact_attributes(profile: &XProfile, dm: &InboundDm) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    a.insert("Channel".to_owned(), "X".to_owned());
    a.insert("customerId".to_owned(), dm.sender.to_string());
    a.insert("customerName".to_owned(), profile.display_name());
    a.insert("x_business_account_id".to_owned(), dm.business.to_string());
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
