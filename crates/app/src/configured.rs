//! `Configured<T>`: a client the configuration may not allow (the client, or why it cannot be
//! built), and how such a client still plugs into the core's ports (`XApi`, `ConnectApi`).
//!
//! The core's traits are the *ports*; the adapter crates' types (`XClient`, `ConnectClient`)
//! are the *clients*; `Configured<XClient>` reads "the X client, if configured". A bridge built
//! with a `Missing` client still accepts and keeps events; every call through the port fails
//! with `Unauthorized(why)`, and the dispatchers are not started (see `startup::build_state`).

use xdm_core::chat_item::AttachmentRef;
use xdm_core::ids::{ConnectionToken, ContactId, InitialContactId, ParticipantToken, XUserId};
use xdm_core::inbound::{InboundChat, InboundMedia};
use xdm_core::media::{MediaStream, XMediaCategory};
use xdm_core::ports::{
    ChatEvent, ChatFileRequest, ChatMessage, ChatRequest, ConnectApi, ConnectError,
    CustomerProfile, DmRequest, OpenedChat, SentChat, SentDm, SentDmRecord, StartChat, StartedChat,
    XApi, XError,
};
use xdm_core::profile::XProfile;
use xdm_core::session::ConnectionCredentials;

/// A client built from the configuration, or the reason it could not be.
#[derive(Debug, Clone)]
pub enum Configured<T> {
    /// The configuration allowed the client.
    Ready(T),
    /// Why there is no client (an incomplete or invalid configuration), as shown to the operator.
    Missing(String),
}

impl<T> Configured<T> {
    /// The client, or why there is none.
    pub fn ready(&self) -> Result<&T, &str> {
        match self {
            Configured::Ready(client) => Ok(client),
            Configured::Missing(why) => Err(why),
        }
    }

    /// Why there is no client; `None` when there is one.
    pub fn problem(&self) -> Option<&str> {
        self.ready().err()
    }
}

impl<T: XApi> Configured<T> {
    fn x(&self) -> Result<&T, XError> {
        self.ready()
            .map_err(|why| XError::Unauthorized(why.to_owned()))
    }
}

impl<T: XApi> XApi for Configured<T> {
    async fn send_dm(&self, dm: &DmRequest) -> Result<SentDm, XError> {
        self.x()?.send_dm(dm).await
    }

    async fn sent_dms(
        &self,
        business: &XUserId,
        recipient: &XUserId,
        since_ms: i64,
    ) -> Result<Vec<SentDmRecord>, XError> {
        self.x()?.sent_dms(business, recipient, since_ms).await
    }

    async fn user(&self, business: &XUserId, id: &XUserId) -> Result<Option<XProfile>, XError> {
        self.x()?.user(business, id).await
    }

    async fn download_media(
        &self,
        business: &XUserId,
        media: &InboundMedia,
        max_bytes: u64,
    ) -> Result<MediaStream, XError> {
        self.x()?.download_media(business, media, max_bytes).await
    }

    async fn upload_media(
        &self,
        business: &XUserId,
        category: XMediaCategory,
        file: MediaStream,
    ) -> Result<String, XError> {
        self.x()?.upload_media(business, category, file).await
    }

    async fn open_chat(&self, chat: &InboundChat) -> Result<OpenedChat, XError> {
        self.x()?.open_chat(chat).await
    }

    async fn send_chat(&self, message: &ChatRequest) -> Result<SentChat, XError> {
        self.x()?.send_chat(message).await
    }

    async fn send_chat_file(&self, message: ChatFileRequest) -> Result<SentChat, XError> {
        self.x()?.send_chat_file(message).await
    }
}

impl<T: ConnectApi> Configured<T> {
    fn connect(&self) -> Result<&T, ConnectError> {
        self.ready()
            .map_err(|why| ConnectError::Unauthorized(why.to_owned()))
    }
}

impl<T: ConnectApi> ConnectApi for Configured<T> {
    async fn start_chat(&self, req: &StartChat) -> Result<StartedChat, ConnectError> {
        self.connect()?.start_chat(req).await
    }

    async fn customer_profile(
        &self,
        profile: &XProfile,
    ) -> Result<Option<CustomerProfile>, ConnectError> {
        self.connect()?.customer_profile(profile).await
    }

    async fn start_streaming(
        &self,
        contact: &ContactId,
        client_token: &str,
    ) -> Result<(), ConnectError> {
        self.connect()?.start_streaming(contact, client_token).await
    }

    async fn stop_contact(&self, contact: &ContactId) -> Result<(), ConnectError> {
        self.connect()?.stop_contact(contact).await
    }

    async fn update_attributes(
        &self,
        chat: &InitialContactId,
        attributes: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), ConnectError> {
        self.connect()?.update_attributes(chat, attributes).await
    }

    async fn connect_participant(
        &self,
        token: &ParticipantToken,
    ) -> Result<ConnectionCredentials, ConnectError> {
        self.connect()?.connect_participant(token).await
    }

    async fn send_message(
        &self,
        connection: &ConnectionToken,
        message: &ChatMessage,
        client_token: &str,
    ) -> Result<(), ConnectError> {
        self.connect()?
            .send_message(connection, message, client_token)
            .await
    }

    async fn send_event(
        &self,
        connection: &ConnectionToken,
        event: &ChatEvent,
        client_token: &str,
    ) -> Result<(), ConnectError> {
        self.connect()?
            .send_event(connection, event, client_token)
            .await
    }

    async fn disconnect(
        &self,
        connection: &ConnectionToken,
        client_token: &str,
    ) -> Result<(), ConnectError> {
        self.connect()?.disconnect(connection, client_token).await
    }

    async fn upload_attachment(
        &self,
        connection: &ConnectionToken,
        file: MediaStream,
        client_token: &str,
    ) -> Result<String, ConnectError> {
        self.connect()?
            .upload_attachment(connection, file, client_token)
            .await
    }

    async fn open_attachment(
        &self,
        connection: &ConnectionToken,
        attachment: &AttachmentRef,
    ) -> Result<MediaStream, ConnectError> {
        self.connect()?
            .open_attachment(connection, attachment)
            .await
    }
}
