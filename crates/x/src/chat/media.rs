//! X Chat files (docs/xchat.md §4): a customer's photo, GIF or video downloaded from X Chat's
//! media endpoint and opened while it streams in, and an agent's file sealed while it streams
//! out to X Chat's media upload, then sent in a message.
//!
//! Opened files are spooled to an anonymous temporary file (deleted by the OS when dropped) as
//! they are opened, so that a file that does not open — altered, cut short, sealed with another
//! key — is refused (`Unreadable`) before any of it reaches Connect, and its exact length is
//! known. Neither direction holds a file whole in memory.

use std::io;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt;
use http::{Method, header};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use xdm_core::ids::XUserId;
use xdm_core::inbound::{ChatKeyChange, InboundMedia, MediaKind};
use xdm_core::media::{MediaStream, content_type_for};
use xdm_core::ports::{ChatFileRequest, SentChat, XError};
use xdm_xchat::ConversationKey;
use xdm_xchat::events::{Sender, message_with, parse_event};
use xdm_xchat::media::{MediaOpener, MediaSealer, sealed_len};
use xdm_xchat::thrift::{MediaAttachment, MediaType, attachment_message};

use crate::chat::key_change::open_key_change;
use crate::chat::send::post_message;
use crate::chat::{ChatIdentity, unreadable};
use crate::client::XClient;
use crate::error::{transport_error, unexpected_body};
use crate::media_download::body::{exact_length, file_stream};
use crate::media_download::download_error;

/// Sealed bytes per `append` (X's example uses 3 MiB; a smaller segment keeps each request's
/// base64 body modest).
const SEGMENT_BYTES: usize = 1024 * 1024;
/// X Chat's `media_hash_key` pattern: `^[a-zA-Z0-9]{1,50}$`.
fn is_media_hash_key(s: &str) -> bool {
    (1..=50).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The file of an X Chat attachment as the core relays it.
pub(crate) fn inbound_media(file: &MediaAttachment, key: &ChatKeyChange) -> Option<InboundMedia> {
    let kind = match file.kind {
        MediaType::Image | MediaType::Svg => MediaKind::Photo,
        MediaType::Gif => MediaKind::AnimatedGif,
        MediaType::Video => MediaKind::Video,
        MediaType::Audio | MediaType::File | MediaType::Other(_) => return None,
    };
    Some(InboundMedia {
        kind,
        media_id: file.media_hash_key.clone(),
        url: String::new(),
        content_type: file
            .filename
            .as_deref()
            .and_then(content_type_for)
            .map(str::to_owned),
        sealed: Some(key.clone()),
    })
}

fn io_to_unavailable(e: io::Error) -> XError {
    XError::Unavailable(format!("cannot spool the X Chat file: {e}"))
}

/// Downloads a sealed file and opens it with its conversation key.
pub(crate) async fn download(
    client: &XClient,
    business: &XUserId,
    media: &InboundMedia,
    key: &ChatKeyChange,
    max_bytes: u64,
) -> Result<MediaStream, XError> {
    if !is_media_hash_key(&media.media_id) {
        return Err(XError::Unreadable(
            "the attachment's media key is not X Chat's".into(),
        ));
    }
    let identity = client.chat_identity(business)?;
    let conversation_key = conversation_key(client, &identity, business, key).await?;
    let url = client.endpoint(&format!(
        "/2/chat/media/{}/{}",
        key.conversation_id.replace(':', "-"),
        media.media_id
    ))?;
    let auth = client.auth_for(business).await?;
    let authorization = client.authorization_for(&auth, &Method::GET, &url)?;
    let response = client
        .media_http_client()
        .get(url)
        .header(header::AUTHORIZATION, authorization)
        .send()
        .await
        .map_err(transport_error)?;
    if !response.status().is_success() {
        return Err(download_error(response).await);
    }
    let sealed_limit = sealed_len(max_bytes);
    if let Some(announced) = response.content_length()
        && announced > sealed_limit
    {
        return Err(XError::TooLarge {
            size: None,
            limit: max_bytes,
        });
    }
    let spool = tokio::task::spawn_blocking(tempfile::tempfile)
        .await
        .map_err(|e| io_to_unavailable(io::Error::other(e)))?
        .map_err(io_to_unavailable)?;
    let mut spool = tokio::fs::File::from_std(spool);
    let mut opener = MediaOpener::new(&conversation_key);
    let mut sealed: u64 = 0;
    let mut length: u64 = 0;
    let mut sniffed = Vec::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(transport_error)?;
        sealed += chunk.len() as u64;
        if sealed > sealed_limit {
            return Err(XError::TooLarge {
                size: None,
                limit: max_bytes,
            });
        }
        let plain = opener
            .push(&chunk)
            .map_err(|e| unreadable("the file", &e))?;
        remember_head(&mut sniffed, &plain);
        length += plain.len() as u64;
        spool.write_all(&plain).await.map_err(io_to_unavailable)?;
    }
    let last = opener.finish().map_err(|e| unreadable("the file", &e))?;
    remember_head(&mut sniffed, &last);
    length += last.len() as u64;
    spool.write_all(&last).await.map_err(io_to_unavailable)?;
    spool.flush().await.map_err(io_to_unavailable)?;
    spool.rewind().await.map_err(io_to_unavailable)?;
    let content_type = media
        .content_type
        .clone()
        .or_else(|| sniff(&sniffed).map(str::to_owned))
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let extension = xdm_core::media::extension_for(&content_type).unwrap_or("bin");
    tracing::debug!(media_id = %media.media_id, length, %content_type, "X Chat file opened");
    Ok(MediaStream {
        file_name: format!("x-chat-{}.{extension}", media.media_id),
        content_type,
        length,
        body: exact_length(file_stream(spool), length),
    })
}

/// The first bytes of a file, enough to tell what it is.
fn remember_head(head: &mut Vec<u8>, bytes: &[u8]) {
    let room = 16usize.saturating_sub(head.len());
    head.extend_from_slice(&bytes[..room.min(bytes.len())]);
}

/// The type of a file by its first bytes (X Chat's attachments carry a name at most; the docs
/// say to tell the type after decrypting).
fn sniff(head: &[u8]) -> Option<&'static str> {
    match head {
        [0x89, b'P', b'N', b'G', ..] => Some("image/png"),
        [0xff, 0xd8, 0xff, ..] => Some("image/jpeg"),
        [b'G', b'I', b'F', b'8', ..] => Some("image/gif"),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => Some("image/webp"),
        [_, _, _, _, b'f', b't', b'y', b'p', b'q', b't', ..] => Some("video/quicktime"),
        [_, _, _, _, b'f', b't', b'y', b'p', ..] => Some("video/mp4"),
        _ => None,
    }
}

async fn conversation_key(
    client: &XClient,
    identity: &ChatIdentity,
    business: &XUserId,
    key: &ChatKeyChange,
) -> Result<ConversationKey, XError> {
    let change = parse_event(&key.encoded_event).map_err(|e| unreadable("the key change", &e))?;
    let (conversation_key, _) =
        open_key_change(client, identity, business, &change, &key.encoded_event).await?;
    Ok(conversation_key)
}

#[derive(Debug, Serialize)]
struct Initialize<'a> {
    conversation_id: &'a str,
    total_bytes: u64,
}

#[derive(Debug, Deserialize)]
struct Initialized {
    data: InitializedData,
}

#[derive(Debug, Deserialize)]
struct InitializedData {
    session_id: String,
    media_hash_key: String,
}

#[derive(Debug, Serialize)]
struct Append<'a> {
    conversation_id: &'a str,
    media_hash_key: &'a str,
    segment_index: usize,
    media: String,
}

#[derive(Debug, Serialize)]
struct Finalize<'a> {
    conversation_id: &'a str,
    media_hash_key: &'a str,
    num_parts: String,
}

/// [`XApi::send_chat_file`](xdm_core::ports::XApi::send_chat_file) over `client`.
pub(crate) async fn send_file(
    client: &XClient,
    message: ChatFileRequest,
) -> Result<SentChat, XError> {
    let identity = client.chat_identity(&message.business)?;
    let change =
        parse_event(&message.key.encoded_event).map_err(|e| unreadable("the key change", &e))?;
    let (key, held) = open_key_change(
        client,
        &identity,
        &message.business,
        &change,
        &message.key.encoded_event,
    )
    .await?;
    let conversation = held.conversation_id.as_str();
    let file = message.file;
    if file.length == 0 {
        return Err(XError::Invalid("the file to send is empty".into()));
    }
    let total_bytes = sealed_len(file.length);
    let answer = client
        .call(
            Method::POST,
            client.endpoint("/2/chat/media/upload/initialize")?,
            &message.business,
            Some(&Initialize {
                conversation_id: conversation,
                total_bytes,
            }),
        )
        .await?
        .success()?;
    let started: Initialized = serde_json::from_slice(&answer.body)
        .map_err(|_| unexpected_body("an X Chat media upload", &answer.body))?;
    let session = &started.data.session_id;
    let media_hash_key = &started.data.media_hash_key;
    if !is_media_hash_key(media_hash_key) || session.is_empty() || session.contains('/') {
        return Err(unexpected_body("an X Chat media upload", &answer.body));
    }
    let (mut sealer, header) = MediaSealer::new(&key);
    let mut segment = header.to_vec();
    let mut parts = 0usize;
    let mut read: u64 = 0;
    let mut body = file.body;
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| XError::Unavailable(format!("cannot read the file to send: {e}")))?;
        read += chunk.len() as u64;
        segment.extend(
            sealer
                .push(&chunk)
                .map_err(|e| unreadable("the file", &e))?,
        );
        while segment.len() >= SEGMENT_BYTES {
            let rest = segment.split_off(SEGMENT_BYTES);
            append(
                client,
                &message.business,
                session,
                conversation,
                media_hash_key,
                parts,
                &segment,
            )
            .await?;
            segment = rest;
            parts += 1;
        }
    }
    if read != file.length {
        return Err(XError::Unavailable(format!(
            "the file to send was {read} bytes, not the {} announced",
            file.length
        )));
    }
    segment.extend(sealer.finish().map_err(|e| unreadable("the file", &e))?);
    if !segment.is_empty() {
        append(
            client,
            &message.business,
            session,
            conversation,
            media_hash_key,
            parts,
            &segment,
        )
        .await?;
        parts += 1;
    }
    client
        .call(
            Method::POST,
            client.endpoint(&format!("/2/chat/media/upload/{session}/finalize"))?,
            &message.business,
            Some(&Finalize {
                conversation_id: conversation,
                media_hash_key,
                num_parts: parts.to_string(),
            }),
        )
        .await?
        .success()?;
    let attachment = MediaAttachment {
        media_hash_key: media_hash_key.clone(),
        width: None,
        height: None,
        kind: match message.kind {
            MediaKind::Photo => MediaType::Image,
            MediaKind::AnimatedGif => MediaType::Gif,
            MediaKind::Video => MediaType::Video,
        },
        filesize: i64::try_from(file.length).ok(),
        filename: Some(file.file_name.clone()),
    };
    let plaintext = attachment_message("", &attachment);
    let outgoing = message_with(
        Sender {
            keys: identity.keys(),
            user_id: message.business.as_str(),
            public_key_version: identity.key_version(),
        },
        conversation,
        &held.key_version,
        &key,
        &message.message_id,
        &plaintext,
        key.nonce_for(&message.message_id, &plaintext),
    )
    .map_err(|e| XError::Invalid(format!("cannot build the X Chat message: {e}")))?;
    tracing::debug!(business = %message.business, recipient = %message.recipient, parts, "sending an X Chat file");
    post_message(client, &message.business, &message.recipient, &outgoing).await
}

async fn append(
    client: &XClient,
    business: &XUserId,
    session: &str,
    conversation: &str,
    media_hash_key: &str,
    index: usize,
    bytes: &[u8],
) -> Result<(), XError> {
    client
        .call(
            Method::POST,
            client.endpoint(&format!("/2/chat/media/upload/{session}/append"))?,
            business,
            Some(&Append {
                conversation_id: conversation,
                media_hash_key,
                segment_index: index,
                media: STANDARD.encode(bytes),
            }),
        )
        .await?
        .success()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_told_apart_by_their_first_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n"), Some("image/png"));
        assert_eq!(sniff(&[0xff, 0xd8, 0xff, 0xe0]), Some("image/jpeg"));
        assert_eq!(sniff(b"GIF89a"), Some("image/gif"));
        assert_eq!(sniff(b"\0\0\0\x18ftypmp42"), Some("video/mp4"));
        assert_eq!(sniff(b"\0\0\0\x14ftypqt  "), Some("video/quicktime"));
        assert_eq!(sniff(b"hello"), None);
        assert!(is_media_hash_key("abc123DEF456"));
        assert!(!is_media_hash_key("../etc"));
        assert!(!is_media_hash_key(""));
    }
}
