//! Connect → X: deliver one accepted chat item to the customer.

use tracing::Instrument;

use crate::chat_item::{AttachmentRef, AttachmentStatus, ChatItem, ChatItemBody, event_types};
use crate::jobs::Job;
use crate::ports::{ChatMessage, Clock, ConnectApi, DmRequest, Store, XApi, XError};
use crate::session::{Session, SessionStatus};
use crate::text::{X_DM_MAX_CHARS, render_for_x, split_message};

use super::notes;
use super::{Bridge, JobOutcome};

impl<S, X, C, K> Bridge<S, X, C, K>
where
    S: Store,
    X: XApi,
    C: ConnectApi,
    K: Clock,
{
    /// Runs one outbound job.
    pub async fn handle_outbound(&self, job: &Job) -> JobOutcome {
        let item: ChatItem = match serde_json::from_str(&job.payload) {
            Ok(i) => i,
            Err(e) => {
                return JobOutcome::Failed {
                    reason: format!("unreadable outbound job: {e}"),
                };
            }
        };
        let span = tracing::info_span!("outbound", item = %item.id, initial_contact_id = %item.initial_contact_id);
        self.deliver_item(&item).instrument(span).await
    }

    async fn deliver_item(&self, item: &ChatItem) -> JobOutcome {
        // Sessions are keyed by the initial contact: ContactId changes on transfer.
        let session = match self
            .store
            .session_by_initial_contact(&item.initial_contact_id)
            .await
        {
            Ok(Some(s)) => s,
            Ok(None) => {
                tracing::info!("no session for this chat (not opened by this bridge): skipped");
                return JobOutcome::Done;
            }
            Err(e) => return e.into(),
        };
        match &item.body {
            ChatItemBody::Message {
                content_type,
                content,
            } => {
                let Some(text) = render_for_x(content_type, content) else {
                    tracing::info!(content_type = %content_type, "message has no readable text: skipped");
                    return JobOutcome::Done;
                };
                self.send_texts(&session, item, &split_message(&text, X_DM_MAX_CHARS))
                    .await
            }
            ChatItemBody::Attachment { attachments } => {
                self.deliver_attachments(&session, item, attachments).await
            }
            ChatItemBody::Event { content_type } if content_type == event_types::CHAT_ENDED => {
                match self
                    .store
                    .end_session(&item.initial_contact_id, self.clock.now_ms())
                    .await
                {
                    Ok(_) => {
                        tracing::info!("chat ended; the customer's next DM opens a new chat");
                        JobOutcome::Done
                    }
                    Err(e) => e.into(),
                }
            }
            ChatItemBody::Event { .. } | ChatItemBody::Other { .. } => JobOutcome::Done,
        }
    }

    /// Sends texts as DMs, in order. A final refusal from X is reported to the agent.
    async fn send_texts(&self, session: &Session, item: &ChatItem, texts: &[String]) -> JobOutcome {
        for text in texts {
            let dm = DmRequest {
                business: session.business.clone(),
                recipient: session.customer.clone(),
                text: Some(text.clone()),
                media_id: None,
            };
            if let Err(e) = self.x.send_dm(&dm).await {
                return self.x_failure(session, item, e).await;
            }
        }
        tracing::info!("delivered to the customer on X");
        JobOutcome::Done
    }

    /// Files are not relayed to X yet: the customer is told in a sentence (never given an
    /// expiring pre-signed URL) and the agent sees the file was not delivered.
    async fn deliver_attachments(
        &self,
        session: &Session,
        item: &ChatItem,
        attachments: &[AttachmentRef],
    ) -> JobOutcome {
        let settled: Vec<&AttachmentRef> = attachments
            .iter()
            .filter(|a| {
                matches!(
                    a.status,
                    AttachmentStatus::Approved | AttachmentStatus::Rejected
                )
            })
            .collect();
        if settled.is_empty() {
            tracing::info!("attachment not approved yet: not sent");
            return JobOutcome::Done;
        }
        let for_customer: Vec<String> = settled
            .iter()
            .map(|a| notes::file_for_customer(a))
            .collect();
        let outcome = self.send_texts(session, item, &for_customer).await;
        if outcome == JobOutcome::Done {
            for (i, a) in settled.iter().enumerate() {
                self.tell_agent(
                    session,
                    &notes::file_not_delivered(a),
                    &format!("xdm-note-{}-{i}", item.id),
                )
                .await;
            }
        }
        outcome
    }

    async fn x_failure(&self, session: &Session, item: &ChatItem, error: XError) -> JobOutcome {
        let outcome = JobOutcome::from(error.clone());
        if let JobOutcome::Failed { reason } = &outcome {
            tracing::warn!(%reason, "X will not take the message; telling the agent");
            self.tell_agent(
                session,
                &notes::not_delivered(&error),
                &format!("xdm-note-{}", item.id),
            )
            .await;
        }
        outcome
    }

    /// Writes a note into the chat for the agent (best effort: an ended chat has no one to tell).
    /// It is sent as the customer's participant, the only one the bridge has; the routing rule
    /// keeps it from coming back as a DM.
    async fn tell_agent(&self, session: &Session, note: &str, client_token: &str) {
        if session.status == SessionStatus::Ended {
            tracing::warn!("chat has ended; the agent cannot be told");
            return;
        }
        let token = match self.connection(session).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "no connection to the chat; the agent cannot be told");
                return;
            }
        };
        if let Err(e) = self
            .connect
            .send_message(&token, &ChatMessage::plain(note), client_token)
            .await
        {
            tracing::warn!(error = %e, "could not write the note for the agent");
        }
    }
}
