//! The agent side of chats. Connect has no agent API a bridge could call, so these are control
//! operations: accept, message, type, read, leave, system messages, end and transfer.

use crate::connect::chat::{
    Agent, ConnectState, NewItem, SYSTEM_DISPLAY_NAME, SYSTEM_PARTICIPANT_ID,
};
use crate::connect::model::{
    ChatItem, ContactView, EndReason, ItemSpec, MessageVisibility, ParticipantRole, content_types,
};
use crate::error::SandboxError;
use crate::ids;
use crate::state::{Shared, lock};

impl Shared {
    /// Runs `f` on the live chat `contact_id` (any of its ContactIds) under the Connect lock.
    pub(crate) fn with_live_chat<T>(
        &self,
        contact_id: &str,
        f: impl FnOnce(&mut ConnectState, usize) -> Result<T, SandboxError>,
    ) -> Result<T, SandboxError> {
        let mut cs = lock(&self.connect);
        let idx = cs
            .find(contact_id)
            .ok_or_else(|| SandboxError::UnknownContact(contact_id.to_owned()))?;
        if cs.chats.get(idx).is_none_or(|c| c.is_ended()) {
            return Err(SandboxError::ContactEnded(contact_id.to_owned()));
        }
        f(&mut cs, idx)
    }

    pub(crate) fn present_agent(
        cs: &ConnectState,
        idx: usize,
        contact_id: &str,
    ) -> Result<Agent, SandboxError> {
        cs.chats
            .get(idx)
            .and_then(|c| c.agent.clone())
            .filter(|a| a.present)
            .ok_or_else(|| SandboxError::NoAgent(contact_id.to_owned()))
    }

    fn appended(
        &self,
        cs: &mut ConnectState,
        idx: usize,
        new: NewItem,
        contact_id: &str,
    ) -> Result<ChatItem, SandboxError> {
        self.append_item(cs, idx, new)
            .ok_or_else(|| SandboxError::UnknownContact(contact_id.to_owned()))
    }

    /// An agent accepts the contact: `participant.joined` (AGENT). The customer must be connected.
    pub(crate) fn agent_accept(
        &self,
        contact_id: &str,
        agent_name: &str,
    ) -> Result<ChatItem, SandboxError> {
        self.with_live_chat(contact_id, |cs, idx| {
            let chat = cs
                .chats
                .get_mut(idx)
                .ok_or_else(|| SandboxError::UnknownContact(contact_id.to_owned()))?;
            if !chat.customer.connected {
                return Err(SandboxError::CustomerNotConnected(contact_id.to_owned()));
            }
            if chat.agent.as_ref().is_some_and(|a| a.present) {
                return Err(SandboxError::AgentAlreadyJoined(contact_id.to_owned()));
            }
            let agent = Agent {
                participant_id: ids::uuid(),
                display_name: agent_name.to_owned(),
                present: true,
            };
            chat.agent = Some(agent.clone());
            let new = NewItem::event(
                content_types::PARTICIPANT_JOINED,
                ParticipantRole::Agent,
                &agent.participant_id,
                &agent.display_name,
            );
            self.appended(cs, idx, new, contact_id)
        })
    }

    /// A MESSAGE from the present agent, visible to all.
    pub(crate) fn agent_send(
        &self,
        contact_id: &str,
        content: &str,
        content_type: &str,
    ) -> Result<ChatItem, SandboxError> {
        if content_type.is_empty() {
            return Err(SandboxError::invalid("content type", "empty"));
        }
        self.with_live_chat(contact_id, |cs, idx| {
            let agent = Self::present_agent(cs, idx, contact_id)?;
            let new = NewItem::message(
                content_type,
                content,
                ParticipantRole::Agent,
                &agent.participant_id,
                &agent.display_name,
            );
            self.appended(cs, idx, new, contact_id)
        })
    }

    /// Any item, for tests: roles, visibilities and content types the other calls do not produce.
    pub(crate) fn agent_send_item(
        &self,
        contact_id: &str,
        spec: ItemSpec,
    ) -> Result<ChatItem, SandboxError> {
        if spec.content_type.is_empty() {
            return Err(SandboxError::invalid("content type", "empty"));
        }
        self.with_live_chat(contact_id, |cs, idx| {
            let chat = cs
                .chats
                .get(idx)
                .ok_or_else(|| SandboxError::UnknownContact(contact_id.to_owned()))?;
            let (default_id, default_name) = match spec.role {
                ParticipantRole::Customer => (
                    chat.customer.participant_id.clone(),
                    chat.customer.display_name.clone(),
                ),
                ParticipantRole::Agent => chat
                    .agent
                    .as_ref()
                    .map(|a| (a.participant_id.clone(), a.display_name.clone()))
                    .unwrap_or_else(|| (ids::uuid(), "Agent".to_owned())),
                _ => (
                    SYSTEM_PARTICIPANT_ID.to_owned(),
                    SYSTEM_DISPLAY_NAME.to_owned(),
                ),
            };
            let new = NewItem {
                item_type: spec.item_type,
                content_type: spec.content_type.clone(),
                content: spec.content.clone(),
                attachments: None,
                role: Some(spec.role),
                participant_id: Some(spec.participant_id.clone().unwrap_or(default_id)),
                display_name: Some(spec.display_name.clone().unwrap_or(default_name)),
                visibility: spec.visibility,
            };
            self.appended(cs, idx, new, contact_id)
        })
    }

    /// A typing EVENT from the present agent.
    pub(crate) fn agent_typing(&self, contact_id: &str) -> Result<ChatItem, SandboxError> {
        self.with_live_chat(contact_id, |cs, idx| {
            let agent = Self::present_agent(cs, idx, contact_id)?;
            let new = NewItem::event(
                content_types::TYPING,
                ParticipantRole::Agent,
                &agent.participant_id,
                &agent.display_name,
            );
            self.appended(cs, idx, new, contact_id)
        })
    }

    /// A `message.read` receipt from the present agent for item `message_id`.
    pub(crate) fn agent_read(
        &self,
        contact_id: &str,
        message_id: &str,
    ) -> Result<ChatItem, SandboxError> {
        self.with_live_chat(contact_id, |cs, idx| {
            let agent = Self::present_agent(cs, idx, contact_id)?;
            let new = NewItem::event(
                content_types::MESSAGE_READ,
                ParticipantRole::Agent,
                &agent.participant_id,
                &agent.display_name,
            )
            .with_content(Some(
                serde_json::json!({"messageId": message_id}).to_string(),
            ));
            self.appended(cs, idx, new, contact_id)
        })
    }

    /// The agent leaves: `participant.left` (AGENT). The chat goes on (disconnect flows may still
    /// message the customer).
    pub(crate) fn agent_leave(&self, contact_id: &str) -> Result<ChatItem, SandboxError> {
        self.with_live_chat(contact_id, |cs, idx| {
            let agent = Self::present_agent(cs, idx, contact_id)?;
            if let Some(a) = cs.chats.get_mut(idx).and_then(|c| c.agent.as_mut()) {
                a.present = false;
            }
            let new = NewItem::event(
                content_types::PARTICIPANT_LEFT,
                ParticipantRole::Agent,
                &agent.participant_id,
                &agent.display_name,
            );
            self.appended(cs, idx, new, contact_id)
        })
    }

    /// A flow/system MESSAGE (role SYSTEM, visibility ALL, text/plain).
    pub(crate) fn system_message(
        &self,
        contact_id: &str,
        text: &str,
    ) -> Result<ChatItem, SandboxError> {
        self.with_live_chat(contact_id, |cs, idx| {
            let new = NewItem {
                visibility: MessageVisibility::All,
                ..NewItem::message(
                    content_types::TEXT_PLAIN,
                    text,
                    ParticipantRole::System,
                    SYSTEM_PARTICIPANT_ID,
                    SYSTEM_DISPLAY_NAME,
                )
            };
            self.appended(cs, idx, new, contact_id)
        })
    }

    /// Ends the chat: `chat.ended` without participant fields.
    pub(crate) fn end_chat(&self, contact_id: &str) -> Result<ChatItem, SandboxError> {
        self.with_live_chat(contact_id, |cs, idx| {
            self.end_chat_locked(cs, idx, EndReason::Ended)
                .ok_or_else(|| SandboxError::ContactEnded(contact_id.to_owned()))
        })
    }

    /// Transfers the contact: the present agent (if any) leaves, then the chat gets a new ContactId
    /// (same InitialContactId) that later items carry. The customer's tokens keep working; an agent
    /// of the new contact joins with `agent_accept`.
    pub(crate) fn transfer(&self, contact_id: &str) -> Result<ContactView, SandboxError> {
        self.with_live_chat(contact_id, |cs, idx| {
            if let Ok(agent) = Self::present_agent(cs, idx, contact_id) {
                if let Some(a) = cs.chats.get_mut(idx).and_then(|c| c.agent.as_mut()) {
                    a.present = false;
                }
                let new = NewItem::event(
                    content_types::PARTICIPANT_LEFT,
                    ParticipantRole::Agent,
                    &agent.participant_id,
                    &agent.display_name,
                );
                self.appended(cs, idx, new, contact_id)?;
            }
            let new_id = cs
                .transfer(idx)
                .ok_or_else(|| SandboxError::UnknownContact(contact_id.to_owned()))?;
            tracing::info!(from = %contact_id, to = %new_id, "contact transferred");
            cs.chats
                .get(idx)
                .map(|c| c.view())
                .ok_or_else(|| SandboxError::UnknownContact(contact_id.to_owned()))
        })
    }
}
