//! Customers on X Chat (X's end-to-end encrypted messages): opening what they write before it
//! joins the DM path, and answering them on X Chat.
//!
//! * **In.** An X Chat message is accepted sealed (as X delivered it) and opened when its job
//!   runs ([`XApi::open_chat`]: the sender's signature checked before anything is decrypted).
//!   Opened, it becomes an [`InboundDm`] of [`XChannel::Chat`] and is delivered like any DM:
//!   same chat per customer, order, dedup, buffering, ended-chat recovery. One that fails its
//!   signature check or does not open never reaches the agent as the customer's words: the
//!   agent gets a one-line note instead ([`notes::chat_unreadable`]).
//! * **The conversation key.** Each opened message names the key change that made its
//!   conversation key; the newest is kept in the record `x-chat/<business>/<customer>` (the
//!   key change as X sent it: the key wrapped for each participant, never the key itself), so
//!   that replies are sealed with it. Written only when the key changes.
//! * **Out.** A customer with that record is answered on X Chat ([`XApi::send_chat`]), each
//!   part with a message id derived from the chat item, the same on every attempt: X keeps one
//!   message per id, so a retry cannot deliver a part twice.

use crate::engine::JobOutcome;
use crate::ids::{XEventId, XUserId};
use crate::inbound::{InboundChat, InboundDm, XChannel};
use crate::ports::{ChatKeyChange, ChatRequest, Clock, ConnectApi, Store, XApi, XError};
use crate::records::Expect;
use crate::session::Session;

use super::{Bridge, notes};

const PREFIX: &str = "x-chat/";

fn record_key(business: &XUserId, customer: &XUserId) -> String {
    format!("{PREFIX}{business}/{customer}")
}

impl<S: Store, X: XApi, C: ConnectApi, K: Clock> Bridge<S, X, C, K> {
    /// Opens an accepted X Chat message into the DM it reads as: the customer's words when it
    /// checks out, a note for the agent when it does not. Keeps the conversation key for replies.
    pub(super) async fn open_chat(&self, chat: &InboundChat) -> Result<InboundDm, JobOutcome> {
        let (event_id, text, media) = match self.x.open_chat(chat).await {
            Ok(opened) => {
                if let Some(key) = &opened.key
                    && self
                        .remember_chat_key(&chat.business, &chat.sender, key)
                        .await?
                {
                    self.mark_chat_channel(chat).await;
                }
                (opened.sequence_id, opened.text, opened.media)
            }
            Err(XError::Unreadable(why)) => {
                // Never the customer's words: the reason names no content, only what failed.
                tracing::warn!(reason = %why, message_id = %chat.message_id, "X Chat message failed its checks: the agent gets a note instead");
                (fallback_event_id(chat)?, notes::chat_unreadable(), None)
            }
            Err(e) => return Err(e.into()),
        };
        Ok(InboundDm {
            business: chat.business.clone(),
            event_id,
            sender: chat.sender.clone(),
            recipient: chat.business.clone(),
            created_ms: chat.created_ms,
            text,
            source_app_id: None,
            sender_profile: chat.sender_profile.clone(),
            media,
            channel: XChannel::Chat,
        })
    }

    /// Keeps `key` as the customer's conversation key unless the record already holds it;
    /// `true` when the customer had none (their first X Chat message).
    async fn remember_chat_key(
        &self,
        business: &XUserId,
        customer: &XUserId,
        key: &ChatKeyChange,
    ) -> Result<bool, JobOutcome> {
        let record_key = record_key(business, customer);
        let current = self.store().record(&record_key).await?;
        let expect = match &current {
            Some(r) => match serde_json::from_str::<ChatKeyChange>(&r.value) {
                Ok(held) if held == *key => return Ok(false),
                // An older key (by X's millisecond versions) never replaces a newer one.
                Ok(held) if newer(&held.key_version, &key.key_version) => return Ok(false),
                _ => Expect::Version(r.version),
            },
            None => Expect::Absent,
        };
        let value = serde_json::to_string(key).map_err(|e| JobOutcome::Failed {
            reason: format!("cannot encode the X Chat key record: {e}"),
        })?;
        if self
            .store()
            .put_record(&record_key, &value, expect, self.now_ms())
            .await?
            .is_none()
        {
            // Another message of the customer wrote it meanwhile: read again next time.
            tracing::debug!(
                "X Chat key record changed meanwhile; left as the other writer made it"
            );
            return Ok(false);
        }
        Ok(expect == Expect::Absent)
    }

    /// A customer's first X Chat message: if their chat is already open (it started on legacy
    /// DMs), its contact attribute `x_channel` becomes `chat` (best effort: the message matters
    /// more than the attribute).
    async fn mark_chat_channel(&self, chat: &InboundChat) {
        let session = match self
            .store()
            .open_session(&chat.business, &chat.sender)
            .await
        {
            Ok(Some(session)) => session,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the customer's chat; x_channel left as it was");
                return;
            }
        };
        let attributes = [("x_channel".to_owned(), XChannel::Chat.as_str().to_owned())].into();
        match self
            .connect
            .update_attributes(&session.initial_contact_id, &attributes)
            .await
        {
            Ok(()) => tracing::info!(initial_contact_id = %session.initial_contact_id,
                "the customer moved to X Chat: their chat's x_channel is now chat"),
            Err(e) => tracing::warn!(error = %e, "could not mark the chat's channel as X Chat"),
        }
    }

    /// The conversation key to answer the customer of `session` with on X Chat, if they write
    /// on X Chat.
    pub(super) async fn chat_key(
        &self,
        session: &Session,
    ) -> Result<Option<ChatKeyChange>, JobOutcome> {
        let Some(record) = self
            .store()
            .record(&record_key(&session.business, &session.customer))
            .await?
        else {
            return Ok(None);
        };
        serde_json::from_str(&record.value)
            .map(Some)
            .map_err(|e| JobOutcome::Failed {
                reason: format!("unreadable X Chat key record: {e}"),
            })
    }

    /// Sends texts on X Chat, sealed with `key`, in order; the `n`-th text's message id is
    /// made from `name` and `n` ([`chat_message_id`]), the same on every attempt.
    pub(super) async fn send_chat_texts(
        &self,
        session: &Session,
        key: &ChatKeyChange,
        name: &str,
        texts: &[String],
    ) -> Result<(), XError> {
        for (n, text) in texts.iter().enumerate() {
            let message = ChatRequest {
                business: session.business.clone(),
                recipient: session.customer.clone(),
                key: key.clone(),
                message_id: chat_message_id(name, n),
                text: text.clone(),
            };
            self.x.send_chat(&message).await?;
        }
        tracing::info!("delivered to the customer on X Chat");
        Ok(())
    }
}

/// Whether version `a` is newer than `b` (X's versions are millisecond timestamps: compared as
/// numbers, then as strings).
fn newer(a: &str, b: &str) -> bool {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(a), Ok(b)) => a > b,
        _ => a > b,
    }
}

/// Names the bridge derives its X Chat ids from (UUID v5 namespace: a v4 UUID made once).
const ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5c1e_0b8a_3f7d_4e21_9a6b_2d4c_8e1f_0a73);

/// The event id of a message that did not open (its own sequence id is not trusted): derived
/// from its message id, stable across attempts, so that the note is posted once.
fn fallback_event_id(chat: &InboundChat) -> Result<XEventId, JobOutcome> {
    let name = format!("unreadable:{}:{}", chat.business, chat.message_id);
    let [a, b, c, d, e, f, g, h, ..] =
        *uuid::Uuid::new_v5(&ID_NAMESPACE, name.as_bytes()).as_bytes();
    // 1 to 19 digits, as X's ids.
    let id = u64::from_be_bytes([a, b, c, d, e, f, g, h]) % 9_000_000_000_000_000_000 + 1;
    XEventId::parse(id.to_string()).map_err(|e| JobOutcome::Failed {
        reason: format!("cannot name the unreadable X Chat message: {e}"),
    })
}

/// The X Chat message id of the `n`-th message the bridge makes of what `name` names (an agent's
/// text `reply:<item>`, a file `file:<item>:<n>`, a sentence about a file): a UUID (the form X
/// Chat ids take), the same on every attempt.
pub(super) fn chat_message_id(name: &str, n: usize) -> String {
    uuid::Uuid::new_v5(&ID_NAMESPACE, format!("{name}:{n}").as_bytes()).to_string()
}
