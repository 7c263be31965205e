//! Sending a DM as a business account: `POST /2/dm_conversations/with/:id/messages` with a text,
//! a media attachment (an id from [`crate::media_upload`]) or both, for
//! [`XApi::send_dm`](xdm_core::ports::XApi::send_dm).

use http::Method;
use serde::{Deserialize, Serialize};
use xdm_core::ports::{DmRequest, SentDm, XError};

use crate::client::XClient;
use crate::error::unexpected_body;

/// `POST /2/dm_conversations/with/:id/messages` body.
#[derive(Debug, Serialize)]
struct DmBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attachments: Option<[DmAttachment<'a>; 1]>,
}

#[derive(Debug, Serialize)]
struct DmAttachment<'a> {
    media_id: &'a str,
}

#[derive(Debug, Deserialize)]
struct DmCreated {
    data: DmCreatedData,
}

#[derive(Debug, Deserialize)]
struct DmCreatedData {
    dm_event_id: String,
}

/// [`XApi::send_dm`](xdm_core::ports::XApi::send_dm) over `client`.
pub(crate) async fn send(client: &XClient, dm: &DmRequest) -> Result<SentDm, XError> {
    let text = dm.text.as_deref().filter(|t| !t.is_empty());
    let media_id = dm.media_id.as_deref().filter(|m| !m.is_empty());
    if text.is_none() && media_id.is_none() {
        return Err(XError::Invalid(
            "a DM needs a text or a media attachment".into(),
        ));
    }
    let url = client.endpoint(&format!(
        "/2/dm_conversations/with/{}/messages",
        dm.recipient
    ))?;
    let body = DmBody {
        text,
        attachments: media_id.map(|media_id| [DmAttachment { media_id }]),
    };
    tracing::debug!(business = %dm.business, recipient = %dm.recipient, media = media_id.is_some(), "sending a DM");
    let answer = client
        .call(Method::POST, url, &dm.business, Some(&body))
        .await?
        .success()?;
    match serde_json::from_slice::<DmCreated>(&answer.body) {
        Ok(created) if !created.data.dm_event_id.is_empty() => Ok(SentDm {
            dm_event_id: created.data.dm_event_id,
        }),
        _ => Err(unexpected_body("a DM send", &answer.body)),
    }
}
