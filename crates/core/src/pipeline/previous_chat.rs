//! Persistent chat: which ended chat a customer's next chat continues.
//!
//! When persistent chat is on ([`BridgeConfig::persistent_chat_window_ms`](super::BridgeConfig)),
//! every chat that ends leaves a record `previous-chat/<business>/<customer>` holding its
//! InitialContactId (written when the end is noticed: `chat.ended` from the stream, or a
//! delivery finding the chat over). A new chat of that customer within the window names it as
//! the `PersistentChat` source (`ENTIRE_PAST_SESSION`: Connect rehydrates every segment of that
//! chat, itself possibly the continuation of an earlier one), then deletes the record: Connect
//! continues a source chat once only, and the new chat leaves its own record when it ends.
//! Records past the window are deleted by [`Bridge::purge_previous_chats`].

use crate::ids::{InitialContactId, XUserId};
use crate::ports::{Clock, Store, StoreError};
use crate::records::{Expect, Record};
use crate::session::Session;

use super::Bridge;

const PREFIX: &str = "previous-chat/";

fn record_key(business: &XUserId, customer: &XUserId) -> String {
    format!("{PREFIX}{business}/{customer}")
}

/// The ended chat a new chat may continue: its id and the record's version (to delete it once
/// used).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PreviousChat {
    pub(super) chat: InitialContactId,
    version: u64,
}

impl<S: Store, X, C, K: Clock> Bridge<S, X, C, K> {
    fn persistent_chat(&self) -> bool {
        self.config.persistent_chat_window_ms > 0
    }

    /// Ends the session in the store and, with persistent chat on, remembers the chat as the
    /// customer's previous one. `Ok(false)` as [`Store::end_session`].
    pub(super) async fn end_chat(&self, session: &Session) -> Result<bool, StoreError> {
        let now = self.now_ms();
        let ended = self
            .store()
            .end_session(&session.initial_contact_id, now)
            .await?;
        if self.persistent_chat() {
            let key = record_key(&session.business, &session.customer);
            if let Err(e) = self
                .store()
                .put_record(&key, session.initial_contact_id.as_str(), Expect::Any, now)
                .await
            {
                // The next chat then starts without the history: never worth failing the job.
                tracing::warn!(error = %e, "could not remember the ended chat for persistent chat");
            }
        }
        Ok(ended)
    }

    /// The customer's previous chat, if persistent chat is on and it ended within the window.
    pub(super) async fn previous_chat(
        &self,
        business: &XUserId,
        customer: &XUserId,
    ) -> Option<PreviousChat> {
        if !self.persistent_chat() {
            return None;
        }
        let record = match self.store().record(&record_key(business, customer)).await {
            Ok(r) => r?,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the previous chat; starting afresh");
                return None;
            }
        };
        if !self.within_window(&record) {
            return None;
        }
        match InitialContactId::parse(record.value) {
            Ok(chat) => Some(PreviousChat {
                chat,
                version: record.version,
            }),
            Err(e) => {
                tracing::warn!(error = %e, "unreadable previous-chat record; starting afresh");
                None
            }
        }
    }

    /// Deletes the record of a previous chat a new chat has just continued (unless a newer end
    /// replaced it meanwhile).
    pub(super) async fn previous_chat_used(
        &self,
        business: &XUserId,
        customer: &XUserId,
        used: &PreviousChat,
    ) {
        let key = record_key(business, customer);
        if let Err(e) = self
            .store()
            .delete_record(&key, Expect::Version(used.version))
            .await
        {
            tracing::debug!(error = %e, "could not delete the used previous-chat record");
        }
    }

    fn within_window(&self, record: &Record) -> bool {
        self.now_ms().saturating_sub(record.updated_at_ms) <= self.config.persistent_chat_window_ms
    }

    /// Deletes the previous-chat records older than the window (all of them with persistent
    /// chat off). Returns how many.
    pub async fn purge_previous_chats(&self) -> Result<u64, StoreError> {
        let mut deleted = 0;
        for record in self.store().records(PREFIX).await? {
            if self.persistent_chat() && self.within_window(&record) {
                continue;
            }
            if self
                .store()
                .delete_record(&record.key, Expect::Version(record.version))
                .await?
            {
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}
