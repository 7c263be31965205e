//! The agent side of chats. Connect has no agent API a bridge could call, so these are control
//! operations: accept, message, any item, type, read, leave, system messages, attachments, end and
//! transfer; and a supervisor barging in and leaving.

use crate::clock;
use crate::connect::chat::{append_item, end_chat, present_agent, with_live_chat};
use crate::connect::model::{
    AgentAttachment, ChatItem, ContactView, EndReason, ItemSpec, MessageVisibility,
    ParticipantRole, content_types,
};
use crate::connect::s3::s3_path;
use crate::connect::state::{
    Agent, Attachment, ConnectState, NewItem, NewMetadata, ReceiptKind, SYSTEM_DISPLAY_NAME,
    SYSTEM_PARTICIPANT_ID, Uploaded,
};
use crate::error::SandboxError;
use crate::ids;
use crate::state::Shared;
use crate::sync::lock;

/// Adds `new` to chat `idx`, or says the contact is unknown.
fn appended(
    shared: &Shared,
    cs: &mut ConnectState,
    idx: usize,
    new: NewItem,
    contact_id: &str,
) -> Result<ChatItem, SandboxError> {
    append_item(shared, cs, idx, new)
        .ok_or_else(|| SandboxError::UnknownContact(contact_id.to_owned()))
}

/// An agent accepts the contact: `participant.joined` (AGENT). The customer must be connected.
pub(crate) fn accept(
    shared: &Shared,
    contact_id: &str,
    agent_name: &str,
) -> Result<ChatItem, SandboxError> {
    with_live_chat(shared, contact_id, |cs, idx| {
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
        appended(shared, cs, idx, new, contact_id)
    })
}

/// A MESSAGE from the present agent, visible to all.
pub(crate) fn send(
    shared: &Shared,
    contact_id: &str,
    content: &str,
    content_type: &str,
) -> Result<ChatItem, SandboxError> {
    if content_type.is_empty() {
        return Err(SandboxError::invalid("content type", "empty"));
    }
    with_live_chat(shared, contact_id, |cs, idx| {
        let agent = present_agent(cs, idx, contact_id)?;
        let new = NewItem::message(
            content_type,
            content,
            ParticipantRole::Agent,
            &agent.participant_id,
            &agent.display_name,
        );
        appended(shared, cs, idx, new, contact_id)
    })
}

/// Any item, for tests: roles, visibilities and content types the other calls do not produce.
pub(crate) fn send_item(
    shared: &Shared,
    contact_id: &str,
    spec: ItemSpec,
) -> Result<ChatItem, SandboxError> {
    if spec.content_type.is_empty() {
        return Err(SandboxError::invalid("content type", "empty"));
    }
    with_live_chat(shared, contact_id, |cs, idx| {
        let chat = cs
            .chats
            .get(idx)
            .ok_or_else(|| SandboxError::UnknownContact(contact_id.to_owned()))?;
        let system = || {
            (
                SYSTEM_PARTICIPANT_ID.to_owned(),
                SYSTEM_DISPLAY_NAME.to_owned(),
            )
        };
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
            ParticipantRole::Supervisor => chat
                .supervisor
                .as_ref()
                .map(|s| (s.participant_id.clone(), s.display_name.clone()))
                .unwrap_or_else(system),
            _ => system(),
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
            metadata: spec.message_metadata.clone().map(NewMetadata::Given),
        };
        appended(shared, cs, idx, new, contact_id)
    })
}

/// A typing EVENT from the present agent.
pub(crate) fn typing(shared: &Shared, contact_id: &str) -> Result<ChatItem, SandboxError> {
    with_live_chat(shared, contact_id, |cs, idx| {
        let agent = present_agent(cs, idx, contact_id)?;
        let new = NewItem::event(
            content_types::TYPING,
            ParticipantRole::Agent,
            &agent.participant_id,
            &agent.display_name,
        );
        appended(shared, cs, idx, new, contact_id)
    })
}

/// A `message.read` receipt (a MESSAGEMETADATA item) from the present agent for item
/// `message_id`; refused, like the agent's SendEvent, while a supervisor is barged in.
pub(crate) fn read(
    shared: &Shared,
    contact_id: &str,
    message_id: &str,
) -> Result<ChatItem, SandboxError> {
    with_live_chat(shared, contact_id, |cs, idx| {
        let agent = present_agent(cs, idx, contact_id)?;
        if cs.chats.get(idx).is_some_and(|c| !c.takes_receipts()) {
            return Err(SandboxError::ReceiptsRefused(contact_id.to_owned()));
        }
        let new = NewItem::receipt(
            ReceiptKind::Read,
            message_id,
            ParticipantRole::Agent,
            &agent.participant_id,
            &agent.display_name,
        );
        appended(shared, cs, idx, new, contact_id)
    })
}

/// The agent leaves: `participant.left` (AGENT). The chat goes on (disconnect flows may still
/// message the customer).
pub(crate) fn leave(shared: &Shared, contact_id: &str) -> Result<ChatItem, SandboxError> {
    with_live_chat(shared, contact_id, |cs, idx| {
        let agent = present_agent(cs, idx, contact_id)?;
        if let Some(a) = cs.chats.get_mut(idx).and_then(|c| c.agent.as_mut()) {
            a.present = false;
        }
        let new = NewItem::event(
            content_types::PARTICIPANT_LEFT,
            ParticipantRole::Agent,
            &agent.participant_id,
            &agent.display_name,
        );
        appended(shared, cs, idx, new, contact_id)
    })
}

/// A supervisor barges in: `participant.joined` (SUPERVISOR), a third active participant until
/// [`supervisor_leave`]. The agent must be present; one supervisor at a time.
pub(crate) fn supervisor_barge(
    shared: &Shared,
    contact_id: &str,
    name: &str,
) -> Result<ChatItem, SandboxError> {
    with_live_chat(shared, contact_id, |cs, idx| {
        present_agent(cs, idx, contact_id)?;
        let chat = cs
            .chats
            .get_mut(idx)
            .ok_or_else(|| SandboxError::UnknownContact(contact_id.to_owned()))?;
        if chat.supervisor.as_ref().is_some_and(|s| s.present) {
            return Err(SandboxError::SupervisorAlreadyJoined(contact_id.to_owned()));
        }
        let supervisor = Agent {
            participant_id: ids::uuid(),
            display_name: name.to_owned(),
            present: true,
        };
        chat.supervisor = Some(supervisor.clone());
        tracing::info!(%contact_id, "supervisor barged in");
        let new = NewItem::event(
            content_types::PARTICIPANT_JOINED,
            ParticipantRole::Supervisor,
            &supervisor.participant_id,
            &supervisor.display_name,
        );
        appended(shared, cs, idx, new, contact_id)
    })
}

/// The barged-in supervisor leaves: `participant.left` (SUPERVISOR).
pub(crate) fn supervisor_leave(
    shared: &Shared,
    contact_id: &str,
) -> Result<ChatItem, SandboxError> {
    with_live_chat(shared, contact_id, |cs, idx| {
        let new = supervisor_left(cs, idx)
            .ok_or_else(|| SandboxError::NoSupervisor(contact_id.to_owned()))?;
        appended(shared, cs, idx, new, contact_id)
    })
}

/// Marks the present supervisor of chat `idx` gone: its `participant.left` item, if there was one.
fn supervisor_left(cs: &mut ConnectState, idx: usize) -> Option<NewItem> {
    let supervisor = cs
        .chats
        .get_mut(idx)?
        .supervisor
        .as_mut()
        .filter(|s| s.present)?;
    supervisor.present = false;
    Some(NewItem::event(
        content_types::PARTICIPANT_LEFT,
        ParticipantRole::Supervisor,
        &supervisor.participant_id,
        &supervisor.display_name,
    ))
}

/// A flow/system MESSAGE (role SYSTEM, visibility ALL, text/plain).
pub(crate) fn system_message(
    shared: &Shared,
    contact_id: &str,
    text: &str,
) -> Result<ChatItem, SandboxError> {
    with_live_chat(shared, contact_id, |cs, idx| {
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
        appended(shared, cs, idx, new, contact_id)
    })
}

/// Ends the chat: `chat.ended` without participant fields.
pub(crate) fn end(shared: &Shared, contact_id: &str) -> Result<ChatItem, SandboxError> {
    with_live_chat(shared, contact_id, |cs, idx| {
        end_chat(shared, cs, idx, EndReason::Ended)
            .ok_or_else(|| SandboxError::ContactEnded(contact_id.to_owned()))
    })
}

/// Transfers the contact: a barged-in supervisor and the present agent (if any) leave, then the
/// chat gets a new ContactId (same InitialContactId) that later items carry. The customer's tokens
/// keep working; an agent of the new contact joins with `agent_accept`.
pub(crate) fn transfer(shared: &Shared, contact_id: &str) -> Result<ContactView, SandboxError> {
    with_live_chat(shared, contact_id, |cs, idx| {
        if let Some(left) = supervisor_left(cs, idx) {
            appended(shared, cs, idx, left, contact_id)?;
        }
        if let Ok(agent) = present_agent(cs, idx, contact_id) {
            if let Some(a) = cs.chats.get_mut(idx).and_then(|c| c.agent.as_mut()) {
                a.present = false;
            }
            let new = NewItem::event(
                content_types::PARTICIPANT_LEFT,
                ParticipantRole::Agent,
                &agent.participant_id,
                &agent.display_name,
            );
            appended(shared, cs, idx, new, contact_id)?;
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

/// An ATTACHMENT item (role AGENT) from the present agent, carrying a registered file.
pub(crate) fn send_attachment(
    shared: &Shared,
    contact_id: &str,
    spec: AgentAttachment,
) -> Result<ChatItem, SandboxError> {
    let file = lock(&shared.media)
        .get(&spec.file_id)
        .map(|f| f.info.clone())
        .ok_or_else(|| {
            SandboxError::invalid("attachment", format!("unknown file {}", spec.file_id))
        })?;
    if spec.name.is_empty() {
        return Err(SandboxError::invalid("attachment", "empty name"));
    }
    let content_type = spec
        .content_type
        .unwrap_or_else(|| file.content_type.clone());
    let (item, attachment_id) = with_live_chat(shared, contact_id, |cs, idx| {
        let agent = present_agent(cs, idx, contact_id)?;
        let chat = cs
            .chats
            .get(idx)
            .ok_or_else(|| SandboxError::UnknownContact(contact_id.to_owned()))?;
        let id = ids::uuid();
        let attachment = Attachment {
            id: id.clone(),
            role: ParticipantRole::Agent,
            name: spec.name.clone(),
            content_type: content_type.clone(),
            declared_size: file.size,
            s3_path: s3_path(shared, chat, &id, &spec.name),
            headers: Vec::new(),
            upload: Some(Uploaded {
                file_id: file.file_id.clone(),
                size: file.size,
                sha256: file.sha256.clone(),
            }),
            completed: true,
            status: Some(spec.status),
            item_ids: Vec::new(),
            created_at: clock::now(),
        };
        let new = attachment.item(
            spec.status,
            ParticipantRole::Agent,
            &agent.participant_id,
            &agent.display_name,
        );
        cs.add_attachment(idx, attachment)
            .ok_or_else(|| SandboxError::UnknownContact(contact_id.to_owned()))?;
        let item = appended(shared, cs, idx, new, contact_id)?;
        if let Some((_, a)) = cs.attachment_mut(&id) {
            a.item_ids.push(item.item.id.clone());
        }
        Ok((item, id))
    })?;
    tracing::info!(%attachment_id, name = %spec.name, "agent sent an attachment");
    Ok(item)
}
