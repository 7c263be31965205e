//! The DM activity X reports to subscribers: a simulated customer's DM (recorded in the DM
//! history, its media served), typing indicator and read receipt, and the events of a DM sent
//! through the API (`dm.sent`, the Account Activity echo) — each handed to [`dispatch`].

use crate::clock;
use crate::error::SandboxError;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::dispatch::dispatch;
use crate::x::dm_media;
use crate::x::dm_spec::{DmSpec, MediaKind, MediaSpec, PayloadShape, UrlSpec};
use crate::x::outgoing::Outgoing;
use crate::x::payloads::{Activity, DmEventParts};
use crate::x::records::{
    DeliveryKind, MediaCategory, SentDm, SentMedia, WebhookDelivery, conversation_id,
};

/// A customer's DM to the business account: recorded in the DM history, then routed to the
/// subscriptions it matches.
pub(crate) async fn deliver_dm(
    shared: &Shared,
    spec: DmSpec,
) -> Result<WebhookDelivery, SandboxError> {
    if spec.sender_id.is_empty() {
        return Err(SandboxError::invalid("DM", "sender_id is empty"));
    }
    let business = shared.cfg.x.business.id.clone();
    let event_id = spec
        .event_id
        .clone()
        .unwrap_or_else(|| shared.snowflake.next());
    let (media, delivered) = match &spec.media {
        Some(m) => {
            let (resolved, delivered) = dm_media::resolve(shared, &event_id, m)?;
            (Some(resolved), Some(delivered))
        }
        None => (None, None),
    };
    let recipient = spec
        .recipient_id
        .clone()
        .unwrap_or_else(|| business.clone());
    let created_timestamp_ms = spec.created_timestamp_ms.unwrap_or_else(clock::now_unix_ms);
    let history_media = match (&media, &delivered) {
        (Some(resolved), Some(d)) => {
            let category = MediaCategory::of(resolved.kind);
            let key = category.media_key(&resolved.media_id);
            let mut object = serde_json::json!({"media_key": key, "type": resolved.kind});
            if resolved.kind == MediaKind::Photo {
                object["url"] = serde_json::json!(resolved.media_url_https);
            } else {
                object["preview_image_url"] = serde_json::json!(resolved.media_url_https);
                object["variants"] = resolved
                    .variants
                    .iter()
                    .map(|v| {
                        let mut variant =
                            serde_json::json!({"content_type": v.content_type, "url": v.url});
                        if let Some(bitrate) = v.bitrate {
                            variant["bit_rate"] = serde_json::json!(bitrate);
                        }
                        variant
                    })
                    .collect();
            }
            lock(&shared.x).media_objects.insert(key.clone(), object);
            Some(SentMedia {
                media_id: resolved.media_id.clone(),
                media_key: key,
                category,
                media_type: d.content_type.clone(),
                size: d.size,
                sha256: d.sha256.clone(),
                file_id: d.file_id.clone(),
            })
        }
        _ => None,
    };
    let created = clock::from_unix_ms(created_timestamp_ms);
    lock(&shared.x).dm_history.push(SentDm {
        dm_event_id: event_id.clone(),
        dm_conversation_id: conversation_id(&spec.sender_id, &recipient),
        sender_id: spec.sender_id.clone(),
        recipient_id: recipient.clone(),
        text: Some(spec.text.clone()).filter(|t| !t.is_empty()),
        attachments: history_media
            .as_ref()
            .map(|m| vec![m.media_id.clone()])
            .unwrap_or_default(),
        media: history_media,
        created_timestamp_ms,
        created_at: clock::iso_ms(created),
    });
    let activity = Activity::Dm {
        event: Box::new(DmEventParts {
            id: event_id.clone(),
            created_timestamp_ms,
            sender_id: spec.sender_id.clone(),
            recipient_id: recipient.clone(),
            source_app_id: None,
            text: spec.text.clone(),
            urls: spec.urls.iter().cloned().map(UrlSpec::completed).collect(),
            media,
        }),
        app: None,
    };
    dispatch(
        shared,
        Outgoing {
            kind: DeliveryKind::Dm,
            user_id: recipient,
            activity,
            event_id: Some(event_id),
            aaa_shape: spec.shape,
            include_users: spec.include_users,
            media: delivered,
        },
    )
    .await
}

/// The events of a DM sent through the API: `dm.sent` to `dm.sent` subscriptions, and the
/// Account Activity echo (`sender_id == for_user_id`, `source_app_id`, `apps`) to Account
/// Activity subscriptions when `echo_outbound`.
pub(crate) async fn deliver_echo(shared: &Shared, dm: &SentDm) {
    let x = &shared.cfg.x;
    let media = dm.media.as_ref().and_then(|m| {
        let spec = MediaSpec {
            kind: m.category.kind(),
            media_id: Some(m.media_id.clone()),
            file_id: Some(m.file_id.clone()),
            ..MediaSpec::default()
        };
        match dm_media::resolve(shared, &dm.dm_event_id, &spec) {
            Ok((resolved, _)) => Some(resolved),
            Err(e) => {
                tracing::warn!(error = %e, "echo without its media");
                None
            }
        }
    });
    let activity = Activity::Dm {
        event: Box::new(DmEventParts {
            id: dm.dm_event_id.clone(),
            created_timestamp_ms: dm.created_timestamp_ms,
            sender_id: dm.sender_id.clone(),
            recipient_id: dm.recipient_id.clone(),
            source_app_id: Some(x.app.id.clone()),
            text: dm.text.clone().unwrap_or_default(),
            urls: Vec::new(),
            media,
        }),
        app: Some(x.app.clone()),
    };
    let outgoing = Outgoing {
        kind: DeliveryKind::Echo,
        user_id: dm.sender_id.clone(),
        activity,
        event_id: Some(dm.dm_event_id.clone()),
        aaa_shape: x.echo_shape,
        include_users: true,
        media: None,
    };
    if let Err(e) = dispatch(shared, outgoing).await {
        tracing::warn!(error = %e, dm_event_id = %dm.dm_event_id, "sent-DM event not delivered");
    }
}

/// `direct_message_indicate_typing_events` from `sender_id` to the business account.
pub(crate) async fn deliver_typing(
    shared: &Shared,
    sender_id: &str,
) -> Result<WebhookDelivery, SandboxError> {
    let business = shared.cfg.x.business.id.clone();
    let activity = Activity::Typing {
        sender_id: sender_id.to_owned(),
        recipient_id: business.clone(),
        created_timestamp_ms: clock::now_unix_ms(),
    };
    deliver_indicator(shared, DeliveryKind::Typing, business, activity).await
}

/// `direct_message_mark_read_events` from `sender_id` up to `last_read_event_id`.
pub(crate) async fn deliver_read(
    shared: &Shared,
    sender_id: &str,
    last_read_event_id: &str,
) -> Result<WebhookDelivery, SandboxError> {
    let business = shared.cfg.x.business.id.clone();
    let activity = Activity::Read {
        sender_id: sender_id.to_owned(),
        recipient_id: business.clone(),
        last_read_event_id: last_read_event_id.to_owned(),
        created_timestamp_ms: clock::now_unix_ms(),
    };
    deliver_indicator(shared, DeliveryKind::Read, business, activity).await
}

/// A typing indicator or read receipt for `business`: no event id, the Account Activity shape,
/// the users map.
async fn deliver_indicator(
    shared: &Shared,
    kind: DeliveryKind,
    business: String,
    activity: Activity,
) -> Result<WebhookDelivery, SandboxError> {
    dispatch(
        shared,
        Outgoing {
            kind,
            user_id: business,
            activity,
            event_id: None,
            aaa_shape: PayloadShape::Aaa,
            include_users: true,
            media: None,
        },
    )
    .await
}
