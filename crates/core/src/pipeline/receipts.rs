//! Receipts for the agent's messages: *delivered* once X accepted the DM, *read* once the
//! customer read it on X — Connect `SendEvent` `message.delivered` / `message.read` as the
//! customer, with the message's transcript item id (`{"messageId":"…"}`).
//!
//! X says what the customer read as one DM id (`last_read_event_id`: that DM and every earlier
//! one). So the bridge keeps, per chat, the agent's messages still unread with the id of the
//! last DM each became: one record (`receipts/<initial contact id>`, at most ~1 KB),
//! appended to when a message reaches X, cut when the customer reads, deleted when the chat
//! ends. Every write is a compare-and-set on the record's version, so a read arriving while a
//! message is appended loses neither. DM ids are snowflakes: a later DM has a larger id.
//!
//! Best effort, like typing: a receipt Connect refuses (a chat with a third participant, where
//! Connect does not take receipts; a supervisor barging in) is not retried, and a message whose
//! receipt failed stays unread in the record until the next read event covers it again.

use serde::{Deserialize, Serialize};

use crate::ids::{ChatItemId, InitialContactId};
use crate::inbound::ReadUpTo;
use crate::metric_names::RECEIPTS;
use crate::ports::{ChatEvent, Clock, ConnectApi, Store};
use crate::records::Expect;
use crate::session::Session;

use super::Bridge;

/// Unread messages remembered per chat, at most; the oldest are forgotten first (they get no
/// read receipt). Every message that reaches X reads and rewrites the record, and a customer who
/// turned X's read receipts off never empties it: 200 made each agent reply cost 57 % more CPU
/// at saturation (docs/performance.md, "Receipts").
const MAX_UNREAD: usize = 20;

/// Compare-and-set attempts before an update is given up.
const WRITE_ATTEMPTS: usize = 4;

/// The record of a chat's unread agent messages.
fn record_key(chat: &InitialContactId) -> String {
    format!("receipts/{chat}")
}

/// The agent's messages that reached X and are not read yet, oldest first.
#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Unread {
    /// (the last DM id the message became, its transcript item id).
    messages: Vec<(u64, String)>,
}

impl Unread {
    fn parse(value: &str) -> Self {
        // A record this version cannot read is started over: receipts are best effort.
        serde_json::from_str(value).unwrap_or_default()
    }

    fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn add(&mut self, dm_id: u64, message_id: &str) {
        self.messages.push((dm_id, message_id.to_owned()));
        if self.messages.len() > MAX_UNREAD {
            let excess = self.messages.len() - MAX_UNREAD;
            self.messages.drain(..excess);
        }
    }

    /// Takes out the messages read once everything up to `dm_id` is, oldest first.
    fn read_up_to(&mut self, dm_id: u64) -> Vec<(u64, String)> {
        let (read, unread) = std::mem::take(&mut self.messages)
            .into_iter()
            .partition::<Vec<_>, _>(|(id, _)| *id <= dm_id);
        self.messages = unread;
        read
    }

    /// Puts back taken messages, in their place (before the ones still unread).
    fn put_back(&mut self, mut taken: Vec<(u64, String)>) {
        taken.append(&mut self.messages);
        self.messages = taken;
    }
}

/// The message ids of `messages`, each once, in order.
fn distinct_ids(messages: &[(u64, String)]) -> Vec<&str> {
    let mut ids: Vec<&str> = Vec::with_capacity(messages.len());
    for (_, message_id) in messages {
        if !ids.contains(&message_id.as_str()) {
            ids.push(message_id);
        }
    }
    ids
}

/// What became of a customer's read event (the `result` label of [`RECEIPTS`] for reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadOutcome {
    /// Receipts sent for this many messages.
    Sent(usize),
    /// Nothing unread up to that DM, or no chat.
    Nothing,
    Failed,
}

impl<S: Store, X, C: ConnectApi, K: Clock> Bridge<S, X, C, K> {
    /// The agent's message `message_id` reached the customer on X, its last part as the DM
    /// `dm_event_id`: a delivered receipt now, and the message noted for the read receipt.
    pub(super) async fn note_delivered(
        &self,
        session: &Session,
        message_id: &ChatItemId,
        dm_event_id: &str,
    ) {
        let event = ChatEvent::Delivered {
            message_id: message_id.as_str().to_owned(),
        };
        let sent = self.send_receipt(session, &event).await;
        metrics::counter!(RECEIPTS, "receipt" => "delivered", "result" => if sent { "sent" } else { "failed" })
            .increment(1);
        let Ok(dm_id) = dm_event_id.parse::<u64>() else {
            tracing::debug!("the DM id X answered is not a number: no read receipt for it");
            return;
        };
        let key = record_key(&session.initial_contact_id);
        let noted = self
            .update_unread(&key, |unread| unread.add(dm_id, message_id.as_str()))
            .await;
        if !noted {
            tracing::debug!(item = %message_id, "could not note the message for its read receipt");
        }
    }

    /// Shows in the chats what the customers read on X. Never fails.
    pub(super) async fn relay_reads(&self, reads: &[ReadUpTo]) {
        for read in reads {
            let outcome = self.relay_read(read).await;
            let result = match outcome {
                ReadOutcome::Sent(_) => "sent",
                ReadOutcome::Nothing => "nothing_unread",
                ReadOutcome::Failed => "failed",
            };
            let count = match outcome {
                ReadOutcome::Sent(n) => n as u64,
                _ => 1,
            };
            metrics::counter!(RECEIPTS, "receipt" => "read", "result" => result).increment(count);
        }
    }

    async fn relay_read(&self, read: &ReadUpTo) -> ReadOutcome {
        let Ok(up_to) = read.last_read_event_id.as_str().parse::<u64>() else {
            return ReadOutcome::Nothing;
        };
        let session = match self
            .store()
            .open_session(&read.business, &read.sender)
            .await
        {
            Ok(Some(session)) => session,
            Ok(None) => return ReadOutcome::Nothing,
            Err(e) => {
                tracing::debug!(error = %e, "read receipt not relayed: the store did not answer");
                return ReadOutcome::Failed;
            }
        };
        let key = record_key(&session.initial_contact_id);
        for _ in 0..WRITE_ATTEMPTS {
            let (mut unread, expect) = match self.store().record(&key).await {
                Ok(Some(r)) => (Unread::parse(&r.value), Expect::Version(r.version)),
                Ok(None) => return ReadOutcome::Nothing,
                Err(e) => {
                    tracing::debug!(error = %e, "read receipt not relayed: the store did not answer");
                    return ReadOutcome::Failed;
                }
            };
            let read_now = unread.read_up_to(up_to);
            if read_now.is_empty() {
                return ReadOutcome::Nothing;
            }
            let mut sent: Vec<&str> = Vec::new();
            for message_id in distinct_ids(&read_now) {
                let event = ChatEvent::Read {
                    message_id: message_id.to_owned(),
                };
                if !self.send_receipt(&session, &event).await {
                    break;
                }
                sent.push(message_id);
            }
            let sent_count = sent.len();
            // Those whose receipt failed stay unread (the next read event covers them again).
            let failed: Vec<(u64, String)> = read_now
                .iter()
                .filter(|(_, id)| !sent.contains(&id.as_str()))
                .cloned()
                .collect();
            unread.put_back(failed);
            // Best-effort state (see `update_unread`): lost in a crash, the next read event
            // sends these receipts again, with the same ClientTokens.
            match self
                .store()
                .put_record_deferred(&key, &unread.encode(), expect, self.now_ms())
                .await
            {
                Ok(Some(_)) => {
                    return if sent_count > 0 {
                        ReadOutcome::Sent(sent_count)
                    } else {
                        ReadOutcome::Failed
                    };
                }
                // A message was noted meanwhile: read the record again (receipts sent twice
                // carry the same ClientToken).
                Ok(None) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "could not record the read receipts sent");
                    return ReadOutcome::Failed;
                }
            }
        }
        ReadOutcome::Failed
    }

    /// The chat ended: its unread messages are forgotten.
    pub(super) async fn forget_receipts(&self, chat: &InitialContactId) {
        if let Err(e) = self
            .store()
            .delete_record(&record_key(chat), Expect::Any)
            .await
        {
            tracing::debug!(error = %e, "could not forget the ended chat's unread messages");
        }
    }

    /// Sends `event` into the chat as the customer; whether Connect took it.
    async fn send_receipt(&self, session: &Session, event: &ChatEvent) -> bool {
        let Some(connection) = session.current_connection(self.now_ms()) else {
            return false;
        };
        let kind = match event {
            ChatEvent::Read { .. } => "read",
            _ => "delivered",
        };
        let client_token = format!(
            "xdm-{kind}-{}",
            event
                .message_id()
                .unwrap_or(session.initial_contact_id.as_str())
        );
        self.send_chat_event(session, connection, event, &client_token)
            .await
    }

    /// Reads, changes and writes back the record `key` with a compare-and-set, again if another
    /// writer came first. Whether it was written. The write may be committed a little later
    /// ([`Store::put_record_deferred`]): it is noted inside the outbound job, before that job's
    /// finish, so a crash that loses it loses the finish too and the job runs again (which finds
    /// the DM on X and notes nothing: that message gets no read receipt).
    async fn update_unread(&self, key: &str, mut change: impl FnMut(&mut Unread)) -> bool {
        for _ in 0..WRITE_ATTEMPTS {
            let (mut unread, expect) = match self.store().record(key).await {
                Ok(Some(r)) => (Unread::parse(&r.value), Expect::Version(r.version)),
                Ok(None) => (Unread::default(), Expect::Absent),
                Err(_) => return false,
            };
            change(&mut unread);
            match self
                .store()
                .put_record_deferred(key, &unread.encode(), expect, self.now_ms())
                .await
            {
                Ok(Some(_)) => return true,
                Ok(None) => continue,
                Err(_) => return false,
            }
        }
        false
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reading_up_to_a_dm_takes_that_message_and_the_earlier_ones() {
        let mut unread = Unread::default();
        unread.add(10, "m1");
        unread.add(20, "m2");
        unread.add(21, "m2");
        unread.add(30, "m3");
        assert!(unread.read_up_to(5).is_empty());
        let read = unread.read_up_to(21);
        assert_eq!(distinct_ids(&read), vec!["m1", "m2"]);
        assert_eq!(unread.messages, vec![(30, "m3".to_owned())]);
        let again = Unread::parse(&unread.encode());
        assert_eq!(again, unread);
        assert_eq!(Unread::parse("not json"), Unread::default());
        unread.put_back(vec![(21, "m2".to_owned())]);
        assert_eq!(
            unread.messages,
            vec![(21, "m2".to_owned()), (30, "m3".to_owned())]
        );
    }

    #[test]
    fn only_the_latest_messages_are_remembered() {
        let mut unread = Unread::default();
        for i in 0..(MAX_UNREAD as u64 + 5) {
            unread.add(i, &format!("m{i}"));
        }
        assert_eq!(unread.messages.len(), MAX_UNREAD);
        assert_eq!(unread.messages[0], (5, "m5".to_owned()));
    }
}
