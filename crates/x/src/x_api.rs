//! [`XClient`] as the core's [`XApi`] port: each call is in the file of its concern
//! ([`crate::dm_send`], [`crate::dm_events`], [`crate::user_lookup`],
//! [`crate::media_download`], [`crate::media_upload`], [`crate::chat`]).

use xdm_core::ids::XUserId;
use xdm_core::inbound::{InboundChat, InboundMedia};
use xdm_core::media::{MediaStream, XMediaCategory};
use xdm_core::ports::{
    ChatFileRequest, ChatRequest, DmRequest, OpenedChat, SentChat, SentDm, SentDmRecord, XApi,
    XError,
};
use xdm_core::profile::XProfile;

use crate::client::XClient;
use crate::{chat, dm_events, dm_send, media_download, media_upload, user_lookup};

impl XApi for XClient {
    async fn send_dm(&self, dm: &DmRequest) -> Result<SentDm, XError> {
        dm_send::send(self, dm).await
    }

    async fn sent_dms(
        &self,
        business: &XUserId,
        recipient: &XUserId,
        since_ms: i64,
    ) -> Result<Vec<SentDmRecord>, XError> {
        dm_events::sent_dms(self, business, recipient, since_ms).await
    }

    async fn user(&self, business: &XUserId, id: &XUserId) -> Result<Option<XProfile>, XError> {
        user_lookup::user(self, business, id).await
    }

    async fn download_media(
        &self,
        business: &XUserId,
        media: &InboundMedia,
        max_bytes: u64,
    ) -> Result<MediaStream, XError> {
        match &media.sealed {
            Some(key) => chat::media::download(self, business, media, key, max_bytes).await,
            None => media_download::download(self, business, media, max_bytes).await,
        }
    }

    async fn open_chat(&self, message: &InboundChat) -> Result<OpenedChat, XError> {
        chat::open::open(self, message).await
    }

    async fn send_chat(&self, message: &ChatRequest) -> Result<SentChat, XError> {
        chat::send::send(self, message).await
    }

    async fn send_chat_file(&self, message: ChatFileRequest) -> Result<SentChat, XError> {
        Box::pin(chat::media::send_file(self, message)).await
    }

    async fn upload_media(
        &self,
        business: &XUserId,
        category: XMediaCategory,
        file: MediaStream,
    ) -> Result<String, XError> {
        Box::pin(media_upload::upload(self, business, category, file)).await
    }
}
