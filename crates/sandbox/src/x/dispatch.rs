//! Routing an X event to the subscriptions it matches: the X Activity API ones get XAA's envelope
//! (logged for backfills and replays, written to every open activity stream, POSTed to their
//! webhook), the Account Activity ones the AAA shape (DM activity only: X Chat events exist only
//! in the Activity API). Events are not retried.

use crate::clock;
use crate::error::SandboxError;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::outgoing::Outgoing;
use crate::x::payloads::{self, Activity};
use crate::x::records::{ActivitySubscription, DeliveryKind, WebhookDelivery, XEventRecord};
use crate::x::users::SandboxUser;
use crate::x::webhook_client::{self, SignatureHeader};

/// Renders `out` for every subscription it matches, logs and streams the XAA events and POSTs
/// them to their webhooks. Returns the first webhook delivery (with the number of stream
/// connections that got the event), or a delivery without status when no webhook was due.
pub(crate) async fn dispatch(
    shared: &Shared,
    out: Outgoing,
) -> Result<WebhookDelivery, SandboxError> {
    let event_type = payloads::xaa_event_type(&out.user_id, &out.activity);
    let users = out.include_users.then(|| users_for(shared, &out.activity));
    let echo = out.kind == DeliveryKind::Echo;
    let mut posts: Vec<(String, Vec<u8>)> = Vec::new();
    let mut streamed = 0;
    let matched;
    {
        let mut x = lock(&shared.x);
        let subs: Vec<ActivitySubscription> = x
            .subscriptions
            .iter()
            .filter(|s| {
                s.event_type == event_type && s.filter.user_id.as_deref() == Some(&out.user_id)
            })
            .cloned()
            .collect();
        let is_chat = matches!(out.activity, Activity::Chat { .. });
        let aaa: Vec<String> = if shared.cfg.x.account_activity_api
            && !is_chat
            && (!echo || shared.cfg.x.echo_outbound)
        {
            x.aaa_subscriptions
                .iter()
                .filter(|(_, u)| *u == out.user_id)
                .map(|(w, _)| w.clone())
                .collect()
        } else {
            Vec::new()
        };
        matched = !subs.is_empty() || !aaa.is_empty();
        let now_ms = clock::now_unix_ms();
        for sub in subs {
            let body = payloads::render_xaa(
                &out.user_id,
                &out.activity,
                users.as_deref(),
                sub.tag.as_deref(),
            );
            let text = String::from_utf8_lossy(&body).into_owned();
            streamed = streamed.max(x.streams.broadcast(&text));
            let seq = x.event_log.len() as u64 + 1;
            x.event_log.push(XEventRecord {
                seq,
                event_type: event_type.to_owned(),
                user_id: out.user_id.clone(),
                subscription_id: sub.subscription_id.clone(),
                webhook_id: sub.webhook_id.clone(),
                event_id: out.event_id.clone(),
                body: text,
                at_ms: now_ms,
                at: clock::iso_ms(clock::from_unix_ms(now_ms)),
            });
            if let Some(hook) = sub.webhook_id {
                posts.push((hook, body));
            }
        }
        for hook in aaa {
            let body =
                payloads::render(out.aaa_shape, &out.user_id, &out.activity, users.as_deref());
            posts.push((hook, body));
        }
    }
    let mut first: Option<Result<WebhookDelivery, SandboxError>> = None;
    for (hook, body) in posts {
        let result = webhook_client::post_to(
            shared,
            &hook,
            out.kind,
            out.event_id.clone(),
            body,
            SignatureHeader::Valid,
            out.media.clone(),
        )
        .await;
        if let Err(e) = &result {
            tracing::warn!(error = %e, webhook_id = %hook, "event not delivered");
        }
        if first.is_none() {
            first = Some(result);
        }
    }
    match first {
        Some(Ok(mut delivery)) => {
            delivery.stream_connections = streamed;
            Ok(delivery)
        }
        Some(Err(e)) => Err(e),
        None => Ok(WebhookDelivery {
            kind: out.kind,
            event_id: out.event_id,
            url: String::new(),
            payload: String::new(),
            signature: None,
            signature_oauth2: None,
            status: None,
            response_body: String::new(),
            error: Some(if matched {
                "no webhook: delivered to the activity stream only".to_owned()
            } else {
                format!("no subscription matches {event_type} for {}", out.user_id)
            }),
            media: out.media,
            at: clock::now_iso_ms(),
            stream_connections: streamed,
        }),
    }
}

/// The user objects of `activity`'s users, sender first (placeholders for unknown ids).
fn users_for(shared: &Shared, activity: &Activity) -> Vec<SandboxUser> {
    let x = lock(&shared.x);
    activity
        .user_ids()
        .iter()
        .map(|id| x.user_or_placeholder(id))
        .collect()
}
