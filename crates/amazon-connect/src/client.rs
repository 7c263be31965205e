//! [`ConnectClient`]: the adapter behind `xdm_core::ports::ConnectApi`.

use aws_config::SdkConfig;
use xdm_core::chat_item::AttachmentRef;
use xdm_core::ids::{ConnectionToken, ContactId, InitialContactId, ParticipantToken};
use xdm_core::media::MediaStream;
use xdm_core::ports::{
    ChatEvent, ChatMessage, ConnectApi, ConnectError, CustomerProfile, StartChat, StartedChat,
};
use xdm_core::profile::XProfile;
use xdm_core::session::ConnectionCredentials;

use crate::attachments::Attachments;
use crate::config::{ConfigError, ConnectConfig};
use crate::contact_client::{
    ChatMessageBody, ChatStreamingConfiguration, ContactClient, ParticipantDetails, PersistentChat,
    SUPPORTED_MESSAGING_CONTENT_TYPES, StartChatContactRequest, StartContactStreamingRequest,
    StopContactRequest, UpdateContactAttributesRequest,
};
use crate::participant_client::ParticipantClient;
use crate::participant_send::ParticipantSendClient;
use crate::profiles_client::ProfilesClient;

/// Amazon Connect, as the core sees it: the control plane (hand-signed), the participant API's
/// send calls (reqwest, bearer token) and its other calls (SDK), all built once from one
/// `SdkConfig`. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ConnectClient {
    config: ConnectConfig,
    contact: ContactClient,
    participant: ParticipantClient,
    sends: ParticipantSendClient,
    attachments: Attachments,
    /// Customer Profiles, when a domain is configured.
    profiles: Option<ProfilesClient>,
}

impl ConnectClient {
    /// Validates `config` and builds both clients. Endpoint variables are read from the
    /// process environment.
    pub fn new(config: ConnectConfig, sdk: &SdkConfig) -> Result<Self, ConfigError> {
        Self::with_env(config, sdk, |k| std::env::var(k).ok())
    }

    /// As [`ConnectClient::new`], with an injected environment lookup.
    pub fn with_env(
        config: ConnectConfig,
        sdk: &SdkConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let contact = ContactClient::with_env(
            sdk,
            config.connect_endpoint.as_deref(),
            config.request_timeout,
            &env,
        )?;
        let sends = ParticipantSendClient::with_env(
            sdk,
            config.participant_endpoint.as_deref(),
            config.request_timeout,
            &env,
        )?;
        let profiles = match &config.profiles_domain {
            Some(domain) => Some(ProfilesClient::with_env(
                sdk,
                domain,
                config.profiles_endpoint.as_deref(),
                config.request_timeout,
                &env,
            )?),
            None => None,
        };
        let participant = ParticipantClient::new(sdk, config.participant_endpoint.as_deref());
        let attachments = Attachments::new(
            participant.sdk_client().clone(),
            config.transfer_read_timeout,
        )?;
        tracing::info!(
            endpoint = contact.endpoint(),
            participant_endpoint = sends.endpoint(),
            region = contact.region(),
            instance_id = %config.instance_id,
            profiles_domain = profiles.as_ref().map(ProfilesClient::domain),
            "Amazon Connect client ready"
        );
        Ok(Self {
            config,
            contact,
            participant,
            sends,
            attachments,
            profiles,
        })
    }

    pub fn config(&self) -> &ConnectConfig {
        &self.config
    }

    /// The control-plane client (StartChatContact, StartContactStreaming, StopContact).
    pub fn contact_client(&self) -> &ContactClient {
        &self.contact
    }

    /// The participant-API client (SDK): connection, disconnection.
    pub fn participant_api(&self) -> &ParticipantClient {
        &self.participant
    }

    /// Customer Profiles, when a domain is configured.
    pub fn profiles(&self) -> Option<&ProfilesClient> {
        self.profiles.as_ref()
    }

    /// SendMessage and SendEvent (reqwest).
    pub fn participant_sends(&self) -> &ParticipantSendClient {
        &self.sends
    }

    /// `SendEvent` as the customer: `content_type` (typing, `message.delivered`,
    /// `message.read`), `content` when the event has one (a receipt's `{"messageId":"…"}`);
    /// the event's chat item id, when Connect answers one.
    pub async fn send_event(
        &self,
        connection: &ConnectionToken,
        content_type: &str,
        content: Option<&str>,
        client_token: &str,
    ) -> Result<Option<String>, ConnectError> {
        self.sends
            .send_event(connection, content_type, content, client_token)
            .await
    }

    /// The attachment operations (upload to / download from the chat).
    pub fn attachments(&self) -> &Attachments {
        &self.attachments
    }

    /// The StartChatContact body for a core request.
    pub fn start_chat_request(&self, req: &StartChat) -> StartChatContactRequest {
        let initial_message = (!req.initial_message.content.is_empty()).then(|| ChatMessageBody {
            content_type: req.initial_message.content_type.as_str().to_owned(),
            content: req.initial_message.content.clone(),
        });
        StartChatContactRequest {
            instance_id: self.config.instance_id.clone(),
            contact_flow_id: req
                .contact_flow_id
                .clone()
                .unwrap_or_else(|| self.config.contact_flow_id.clone()),
            attributes: req.attributes.clone(),
            participant_details: ParticipantDetails {
                display_name: req.display_name.clone(),
            },
            initial_message,
            client_token: req.client_token.clone(),
            chat_duration_in_minutes: self.config.chat_duration_minutes,
            supported_messaging_content_types: SUPPORTED_MESSAGING_CONTENT_TYPES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            customer_id: req.customer_id.clone(),
            persistent_chat: req
                .continues
                .as_ref()
                .map(|chat| PersistentChat::entire_past_session(chat.as_str())),
        }
    }
}

fn parse_contact_id(op: &str, raw: &str) -> Result<ContactId, ConnectError> {
    ContactId::parse(raw)
        .map_err(|e| ConnectError::Unavailable(format!("{op}: {e} in the response")))
}

impl ConnectApi for ConnectClient {
    async fn start_chat(&self, req: &StartChat) -> Result<StartedChat, ConnectError> {
        let body = self.start_chat_request(req);
        let out = self.contact.start_chat_contact(&body).await?;
        let contact_id = parse_contact_id("StartChatContact", &out.contact_id)?;
        if out.participant_token.is_empty() {
            return Err(ConnectError::Unavailable(
                "StartChatContact: empty ParticipantToken in the response".into(),
            ));
        }
        tracing::info!(contact_id = %contact_id, continued_from = out.continued_from_contact_id.as_deref(),
            "chat contact started");
        Ok(StartedChat {
            contact_id,
            participant_id: out.participant_id,
            participant_token: ParticipantToken::new(out.participant_token),
            continued_from: out.continued_from_contact_id,
        })
    }

    async fn customer_profile(
        &self,
        profile: &XProfile,
    ) -> Result<Option<CustomerProfile>, ConnectError> {
        match &self.profiles {
            Some(profiles) => profiles.customer_profile(profile).await.map(Some),
            None => Ok(None),
        }
    }

    async fn start_streaming(
        &self,
        contact: &ContactId,
        client_token: &str,
    ) -> Result<(), ConnectError> {
        let body = StartContactStreamingRequest {
            instance_id: self.config.instance_id.clone(),
            contact_id: contact.as_str().to_owned(),
            chat_streaming_configuration: ChatStreamingConfiguration {
                streaming_endpoint_arn: self.config.topic_arn.clone(),
            },
            client_token: client_token.to_owned(),
        };
        let out = self.contact.start_contact_streaming(&body).await?;
        tracing::info!(contact_id = %contact, streaming_id = %out.streaming_id, "chat streaming started");
        Ok(())
    }

    async fn stop_contact(&self, contact: &ContactId) -> Result<(), ConnectError> {
        let body = StopContactRequest {
            contact_id: contact.as_str().to_owned(),
            instance_id: self.config.instance_id.clone(),
        };
        self.contact.stop_contact(&body).await?;
        tracing::info!(contact_id = %contact, "contact stopped");
        Ok(())
    }

    async fn update_attributes(
        &self,
        chat: &InitialContactId,
        attributes: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), ConnectError> {
        let body = UpdateContactAttributesRequest {
            initial_contact_id: chat.as_str().to_owned(),
            instance_id: self.config.instance_id.clone(),
            attributes: attributes.clone(),
        };
        self.contact.update_contact_attributes(&body).await?;
        tracing::debug!(initial_contact_id = %chat, "contact attributes updated");
        Ok(())
    }

    async fn connect_participant(
        &self,
        participant_token: &ParticipantToken,
    ) -> Result<ConnectionCredentials, ConnectError> {
        self.participant
            .create_participant_connection(participant_token)
            .await
    }

    async fn send_message(
        &self,
        connection: &ConnectionToken,
        message: &ChatMessage,
        client_token: &str,
    ) -> Result<(), ConnectError> {
        self.sends
            .send_message(
                connection,
                message.content_type.as_str(),
                &message.content,
                client_token,
            )
            .await
            .map(|_| ())
    }

    async fn send_event(
        &self,
        connection: &ConnectionToken,
        event: &ChatEvent,
        client_token: &str,
    ) -> Result<(), ConnectError> {
        let content = event
            .message_id()
            .map(|id| serde_json::json!({ "messageId": id }).to_string());
        self.sends
            .send_event(
                connection,
                event.content_type(),
                content.as_deref(),
                client_token,
            )
            .await
            .map(|_| ())
    }

    async fn disconnect(
        &self,
        connection: &ConnectionToken,
        client_token: &str,
    ) -> Result<(), ConnectError> {
        self.participant
            .disconnect_participant(connection, client_token)
            .await
    }

    async fn upload_attachment(
        &self,
        connection: &ConnectionToken,
        file: MediaStream,
        client_token: &str,
    ) -> Result<String, ConnectError> {
        self.attachments
            .upload_attachment(connection, file, client_token)
            .await
    }

    async fn open_attachment(
        &self,
        connection: &ConnectionToken,
        attachment: &AttachmentRef,
    ) -> Result<MediaStream, ConnectError> {
        self.attachments
            .open_attachment(connection, attachment)
            .await
    }
}
