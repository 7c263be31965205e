//! Connect → X: deliver one accepted chat item to the customer.

use tracing::Instrument;

use crate::chat_item::{AttachmentRef, AttachmentStatus, ChatItem, ChatItemBody, event_types};
use crate::jobs::Job;
use crate::media::{XMediaCategory, human_size};
use crate::metric_names::CHAT_ITEMS;
use crate::ports::{
    ChatFileRequest, ChatMessage, Clock, ConnectApi, ConnectError, DmRequest, SentDmRecord, Store,
    XApi, XError,
};
use crate::session::{Session, SessionStatus};
use crate::text::{X_DM_MAX_CHARS, render_for_x, split_message};

use super::Bridge;
use super::notes;
use super::x_chat::chat_message_id;
use crate::engine::JobOutcome;

impl<S, X, C, K> Bridge<S, X, C, K>
where
    S: Store,
    X: XApi,
    C: ConnectApi,
    K: Clock,
{
    /// Runs one outbound job.
    pub async fn handle_outbound(&self, job: &Job) -> JobOutcome {
        let item: ChatItem = match self.outbound_handoff.take_or_read(job) {
            Ok(i) => i,
            Err(e) => {
                return JobOutcome::Failed {
                    reason: format!("unreadable outbound job: {e}"),
                };
            }
        };
        let span = tracing::info_span!("outbound", item = %item.id, initial_contact_id = %item.initial_contact_id);
        // `job` is as read before its claim: a first-claim time means an earlier attempt ran.
        self.deliver_item(&item, job.accepted_at_ms, job.first_claimed_at_ms)
            .instrument(span)
            .await
    }

    /// Delivers `item`, accepted at `accepted_at_ms`. `retry_since_ms`: when an earlier attempt
    /// of the job was first claimed, if one ran; what X already has since then is not sent
    /// again (see [`AlreadyOnX`]).
    async fn deliver_item(
        &self,
        item: &ChatItem,
        accepted_at_ms: i64,
        retry_since_ms: Option<i64>,
    ) -> JobOutcome {
        // Sessions are keyed by the initial contact: ContactId changes on transfer.
        let session = match self
            .store()
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
        if let Some(ended_at_ms) = session.ended_at_ms()
            && accepted_at_ms.saturating_sub(ended_at_ms) > self.config.ended_chat_window_ms
        {
            // Arrived long after the chat ended: no SNS retry is that late, so it is a replay.
            tracing::warn!(
                ended_at_ms,
                accepted_at_ms,
                "chat item arrived long after its chat ended (a replay?): not delivered"
            );
            metrics::counter!(CHAT_ITEMS, "result" => "after_end").increment(1);
            return JobOutcome::Done;
        }
        match &item.body {
            ChatItemBody::Message {
                content_type,
                content,
            } => {
                let Some(text) = render_for_x(content_type, content) else {
                    tracing::info!(content_type = %content_type, "message has no readable text: skipped");
                    return JobOutcome::Done;
                };
                let parts = split_message(&text, X_DM_MAX_CHARS);
                match self.chat_key(&session).await {
                    Ok(Some(key)) => {
                        // The customer writes on X Chat: answered there (X keeps one message
                        // per id, so no read-back is needed before a retry).
                        let name = format!("reply:{}", item.id);
                        return match self.send_chat_texts(&session, &key, &name, &parts).await {
                            Ok(()) => JobOutcome::Done,
                            Err(e) => self.x_failure(&session, item, e).await,
                        };
                    }
                    Ok(None) => {}
                    Err(outcome) => return outcome,
                }
                let mut on_x = match self.already_on_x(&session, retry_since_ms).await {
                    Ok(on_x) => on_x,
                    Err(outcome) => return outcome,
                };
                let outcome = self.send_texts(&session, item, &parts, &mut on_x).await;
                on_x.report();
                outcome
            }
            ChatItemBody::Attachment { attachments } => {
                let mut on_x = match self.already_on_x(&session, retry_since_ms).await {
                    Ok(on_x) => on_x,
                    Err(outcome) => return outcome,
                };
                let outcome = self
                    .deliver_attachments(&session, item, attachments, &mut on_x)
                    .await;
                on_x.report();
                outcome
            }
            ChatItemBody::Event { content_type } if content_type == event_types::CHAT_ENDED => {
                match self.end_chat(&session).await {
                    Ok(_) => {
                        tracing::info!("chat ended; the customer's next DM opens a new chat");
                        self.forget_receipts(&item.initial_contact_id).await;
                        JobOutcome::Done
                    }
                    Err(e) => e.into(),
                }
            }
            ChatItemBody::Event { .. } | ChatItemBody::Other { .. } => JobOutcome::Done,
        }
    }

    /// On a job's first attempt, nothing. On a later one, the DMs X has from the business to the
    /// customer since the first attempt was claimed: all of them are this job's (the lane — one
    /// chat — runs one job at a time, and its previous job had finished before this one was first
    /// claimed). A retryable failure to read them is the job's outcome (try again later rather
    /// than send blind); a final one (403, …) reads as nothing found, so everything is sent.
    async fn already_on_x(
        &self,
        session: &Session,
        retry_since_ms: Option<i64>,
    ) -> Result<AlreadyOnX, JobOutcome> {
        let Some(since_ms) = retry_since_ms else {
            return Ok(AlreadyOnX::default());
        };
        match self
            .x
            .sent_dms(&session.business, &session.customer, since_ms)
            .await
        {
            Ok(records) => {
                tracing::info!(
                    found = records.len(),
                    since_ms,
                    "a retry: read back the DMs X already has from this job's earlier attempts"
                );
                Ok(AlreadyOnX {
                    records,
                    ..AlreadyOnX::default()
                })
            }
            Err(e) if e.is_retryable() => {
                tracing::info!(error = %e, "cannot read back what X already has; retrying later rather than sending twice");
                Err(e.into())
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read back what X already has; sending the whole item again");
                Ok(AlreadyOnX::default())
            }
        }
    }

    /// Sends texts as DMs, in order, except those X already has. A final refusal from X is
    /// reported to the agent.
    async fn send_texts(
        &self,
        session: &Session,
        item: &ChatItem,
        texts: &[String],
        on_x: &mut AlreadyOnX,
    ) -> JobOutcome {
        // The DM the message's last part became (a retry whose parts X all had already
        // leaves it unknown: no receipts then).
        let mut last_dm = None;
        for text in texts {
            if on_x.take_text(text) {
                continue;
            }
            let dm = DmRequest {
                business: session.business.clone(),
                recipient: session.customer.clone(),
                text: Some(text.clone()),
                media_id: None,
            };
            match self.x.send_dm(&dm).await {
                Ok(sent) => last_dm = Some(sent.dm_event_id),
                Err(e) => return self.x_failure(session, item, e).await,
            }
        }
        tracing::info!("delivered to the customer on X");
        if let Some(dm_event_id) = last_dm {
            self.note_delivered(session, &item.id, &dm_event_id).await;
        }
        JobOutcome::Done
    }

    /// Relays each settled file: APPROVED files X DMs can carry are uploaded to X (media upload
    /// v2) and sent as a DM; anything else becomes a sentence for the customer (never a URL)
    /// and a note for the agent. Files still being scanned are not sent.
    async fn deliver_attachments(
        &self,
        session: &Session,
        item: &ChatItem,
        attachments: &[AttachmentRef],
        on_x: &mut AlreadyOnX,
    ) -> JobOutcome {
        for (i, attachment) in attachments.iter().enumerate() {
            let outcome = match &attachment.status {
                AttachmentStatus::Approved => {
                    self.relay_file(session, item, attachment, i, on_x).await
                }
                AttachmentStatus::Rejected => {
                    self.file_refused(
                        session,
                        item,
                        attachment,
                        i,
                        "Amazon Connect did not approve the file",
                        on_x,
                    )
                    .await
                }
                AttachmentStatus::InProgress | AttachmentStatus::Other(_) => {
                    tracing::info!(status = ?attachment.status, "attachment not approved: not sent");
                    JobOutcome::Done
                }
            };
            if outcome != JobOutcome::Done {
                return outcome;
            }
        }
        JobOutcome::Done
    }

    async fn relay_file(
        &self,
        session: &Session,
        item: &ChatItem,
        attachment: &AttachmentRef,
        i: usize,
        on_x: &mut AlreadyOnX,
    ) -> JobOutcome {
        let Some(category) = XMediaCategory::for_content_type(&attachment.content_type) else {
            let why = format!("X DMs cannot carry {} files", attachment.content_type);
            return self
                .file_refused(session, item, attachment, i, &why, on_x)
                .await;
        };
        let chat_key = match self.chat_key(session).await {
            Ok(key) => key,
            Err(outcome) => return outcome,
        };
        if chat_key.is_none() && on_x.take_media() {
            // An earlier attempt uploaded and sent it; X has the DM.
            return JobOutcome::Done;
        }
        let file = match self.connection(session).await {
            Ok(token) => self.connect.open_attachment(&token, attachment).await,
            Err(e) => Err(e),
        };
        let file = match file {
            Ok(f) => f,
            Err(ConnectError::ChatEnded(_)) => {
                let why = "the chat ended before the file could be fetched";
                return self
                    .file_refused(session, item, attachment, i, why, on_x)
                    .await;
            }
            Err(e) if e.is_retryable() => return e.into(),
            Err(e) => {
                return self
                    .file_refused(session, item, attachment, i, &e.to_string(), on_x)
                    .await;
            }
        };
        if file.length > category.max_bytes() {
            let why = format!(
                "it is {}, over X's {} limit for {}",
                human_size(file.length),
                human_size(category.max_bytes()),
                category.with_article()
            );
            return self
                .file_refused(session, item, attachment, i, &why, on_x)
                .await;
        }
        if let Some(key) = chat_key {
            // The customer writes on X Chat: the file goes there, sealed (X keeps one message
            // per id, so a retry cannot deliver it twice).
            let message = ChatFileRequest {
                business: session.business.clone(),
                recipient: session.customer.clone(),
                key,
                message_id: chat_message_id(&format!("file:{}", item.id), i),
                kind: category.media_kind(),
                file,
            };
            return match self.x.send_chat_file(message).await {
                Ok(_) => {
                    tracing::info!(
                        category = category.as_str(),
                        "file delivered to the customer on X Chat"
                    );
                    JobOutcome::Done
                }
                Err(e) if e.is_retryable() => e.into(),
                Err(e) => {
                    self.file_refused(session, item, attachment, i, &notes::x_refusal(&e), on_x)
                        .await
                }
            };
        }
        let media_id = match self.x.upload_media(&session.business, category, file).await {
            Ok(id) => id,
            Err(e) if e.is_retryable() => return e.into(),
            Err(e) => {
                return self
                    .file_refused(session, item, attachment, i, &notes::x_refusal(&e), on_x)
                    .await;
            }
        };
        let dm = DmRequest {
            business: session.business.clone(),
            recipient: session.customer.clone(),
            text: None,
            media_id: Some(media_id),
        };
        match self.x.send_dm(&dm).await {
            Ok(sent) => {
                tracing::info!(
                    category = category.as_str(),
                    "file delivered to the customer on X"
                );
                self.note_delivered(session, &item.id, &sent.dm_event_id)
                    .await;
                JobOutcome::Done
            }
            Err(e) => self.x_failure(session, item, e).await,
        }
    }

    /// Tells the customer (in words, never with a URL) and the agent that a file did not go.
    async fn file_refused(
        &self,
        session: &Session,
        item: &ChatItem,
        attachment: &AttachmentRef,
        i: usize,
        reason: &str,
        on_x: &mut AlreadyOnX,
    ) -> JobOutcome {
        tracing::warn!(%reason, "agent file not delivered; telling both sides");
        let for_customer = [notes::file_for_customer(attachment)];
        let outcome = match self.chat_key(session).await {
            Ok(Some(key)) => {
                let name = format!("file-refused:{}:{i}", item.id);
                match self
                    .send_chat_texts(session, &key, &name, &for_customer)
                    .await
                {
                    Ok(()) => JobOutcome::Done,
                    Err(e) => self.x_failure(session, item, e).await,
                }
            }
            Ok(None) => self.send_texts(session, item, &for_customer, on_x).await,
            Err(outcome) => outcome,
        };
        if outcome == JobOutcome::Done {
            let note = notes::file_not_delivered(attachment, reason);
            self.tell_agent(session, &note, &format!("xdm-note-{}-{i}", item.id))
                .await;
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

/// What X already has of a job that ran before: the DMs the business sent the customer since the
/// job was first claimed ([`XApi::sent_dms`]), each matched at most once against the job's DMs,
/// in order, so that two identical parts need two DMs to be skipped.
#[derive(Debug, Default)]
struct AlreadyOnX {
    /// Oldest first; a matched record is removed.
    records: Vec<SentDmRecord>,
    /// DMs of the job found on X and not sent again.
    skipped: usize,
}

impl AlreadyOnX {
    /// Whether X has a text-only DM with exactly `text` (then consumed).
    fn take_text(&mut self, text: &str) -> bool {
        self.take(|r| !r.has_media && r.text.as_deref() == Some(text))
    }

    /// Whether X has a DM with media (then consumed): a job relays at most one file.
    fn take_media(&mut self) -> bool {
        self.take(|r| r.has_media)
    }

    fn take(&mut self, matches: impl Fn(&SentDmRecord) -> bool) -> bool {
        match self.records.iter().position(matches) {
            Some(at) => {
                self.records.remove(at);
                self.skipped += 1;
                true
            }
            None => false,
        }
    }

    /// Logs what the read-back saved (counts only, never message bodies).
    fn report(&self) {
        if self.skipped > 0 || !self.records.is_empty() {
            tracing::info!(
                already_delivered = self.skipped,
                unmatched = self.records.len(),
                "parts X already had were not sent again"
            );
        }
    }
}
