//! `POST /2/dm_conversations/with/{participant_id}/messages`: the business account (or an OAuth
//! 2.0 user) sends a DM — body checked against X's schema, an attachment must be this user's
//! finished upload — recorded in `sent_dms` and the DM history, then reported to subscribers as
//! `dm.sent` / the Account Activity echo.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::clock;
use crate::events::SandboxEvent;
use crate::faults::FaultOp;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::auth::Accept;
use crate::x::calls::{XRequest, admit_as, finish, is_x_id};
use crate::x::dm_activity;
use crate::x::problem::{self, XReply};
use crate::x::records::{ProcessingState, SentDm, SentMedia, XOp, conversation_id};

pub(crate) async fn create_dm(
    State(shared): State<Arc<Shared>>,
    Path(participant_id): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = XRequest::new(method, uri, headers).with_body(body);
    let reply = create_dm_reply(&shared, &req, &participant_id).await;
    finish(&shared, XOp::CreateDm, &req, reply)
}

/// The DM body per X's OpenAPI `CreateDirectMessagesByParticipantIdRequest`
/// (`additionalProperties: false`, text minLength 1, at most one attachment, at least one of them).
fn parse_dm_body(body: &[u8]) -> Result<(Option<String>, Vec<String>), Vec<Value>> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        vec![problem::body_error(format!(
            "Request body is not valid JSON: {e}"
        ))]
    })?;
    let Value::Object(obj) = value else {
        return Err(vec![problem::body_error("$: must be a JSON object")]);
    };
    let mut errors = Vec::new();
    for key in obj.keys() {
        if key != "text" && key != "attachments" {
            errors.push(problem::body_error(format!(
                "$.{key}: is not defined in the schema and the schema does not allow additional properties"
            )));
        }
    }
    let text = match obj.get("text") {
        None => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::String(_)) => {
            errors.push(problem::body_error(
                "$.text: must be at least 1 characters long",
            ));
            None
        }
        Some(_) => {
            errors.push(problem::body_error("$.text: string expected"));
            None
        }
    };
    let mut media_ids = Vec::new();
    match obj.get("attachments") {
        None => {}
        Some(Value::Array(items)) => {
            if items.len() > 1 {
                errors.push(problem::body_error(
                    "$.attachments: there must be a maximum of 1 items in the array",
                ));
            }
            if items.is_empty() {
                errors.push(problem::body_error(
                    "$.attachments: there must be a minimum of 1 items in the array",
                ));
            }
            for (i, item) in items.iter().enumerate() {
                let id = item
                    .as_object()
                    .and_then(|o| (o.len() == 1).then(|| o.get("media_id")).flatten());
                match id.and_then(Value::as_str) {
                    Some(id) if is_x_id(id) => media_ids.push(id.to_owned()),
                    _ => errors.push(problem::body_error(format!(
                        "$.attachments[{i}]: must be an object with only a media_id matching ^[0-9]{{1,19}}$"
                    ))),
                }
            }
        }
        Some(_) => errors.push(problem::body_error("$.attachments: array expected")),
    }
    if obj.get("text").is_none() && obj.get("attachments").is_none() {
        errors.push(problem::body_error(
            "$: must have at least one of the properties text, attachments",
        ));
    }
    if errors.is_empty() {
        Ok((text, media_ids))
    } else {
        Err(errors)
    }
}

/// The media a DM may carry as `media_id`, or why it may not: the business account's upload,
/// unexpired, processed.
fn attachable_upload(shared: &Shared, media_id: &str) -> Result<SentMedia, String> {
    let x = lock(&shared.x);
    let Some(upload) = x.uploads.get(media_id) else {
        return Err(format!("media_id [{media_id}] does not exist"));
    };
    if upload.view.owner_id != shared.cfg.x.business.id {
        return Err(format!(
            "media_id [{media_id}] was not uploaded by the authenticating user"
        ));
    }
    if upload.expires_at(shared.cfg.x.media.expires_after_secs) <= clock::now_unix_secs() {
        return Err(format!("media_id [{media_id}] has expired"));
    }
    match upload.view.state {
        Some(ProcessingState::Succeeded) => upload
            .sent_media()
            .ok_or_else(|| format!("media_id [{media_id}] is not ready")),
        None => Err(format!("media_id [{media_id}] has not been finalized")),
        Some(state) => Err(format!(
            "media_id [{media_id}] is not ready: its processing state is {}",
            state.as_str()
        )),
    }
}

async fn create_dm_reply(shared: &Arc<Shared>, req: &XRequest, participant_id: &str) -> XReply {
    let (principal, rate) = match admit_as(
        shared,
        req,
        XOp::CreateDm,
        FaultOp::CreateDm,
        Accept::DM_WRITE,
    )
    .await
    {
        Ok(admitted) => admitted,
        Err(reply) => return reply,
    };
    if !is_x_id(participant_id) {
        return XReply::new(
            StatusCode::BAD_REQUEST,
            problem::invalid_request(vec![problem::param_error(
                "participant_id",
                participant_id,
                format!(
                    "The `participant_id` path parameter value [{participant_id}] is not valid"
                ),
            )]),
            rate,
        )
        .rejected("invalid participant_id");
    }
    let (text, attachments) = match parse_dm_body(&req.body) {
        Ok(parsed) => parsed,
        Err(errors) => {
            return XReply::new(
                StatusCode::BAD_REQUEST,
                problem::invalid_request(errors),
                rate,
            )
            .rejected("invalid body");
        }
    };
    let mut media = None;
    for media_id in &attachments {
        match attachable_upload(shared, media_id) {
            Ok(found) => media = Some(found),
            Err(message) => {
                return XReply::invalid_param(rate, "attachments.media_id", media_id, message);
            }
        }
    }
    let business = principal
        .user_id()
        .unwrap_or(&shared.cfg.x.business.id)
        .to_owned();
    let dm = {
        let mut x = lock(&shared.x);
        if x.users.get(participant_id).is_some_and(|u| !u.accepts_dms) {
            return XReply::new(
                StatusCode::FORBIDDEN,
                problem::forbidden("You are not permitted to send messages to this user."),
                rate,
            )
            .rejected("recipient does not accept DMs");
        }
        let now = clock::now();
        let dm = SentDm {
            dm_event_id: shared.snowflake.next(),
            dm_conversation_id: conversation_id(&business, participant_id),
            sender_id: business,
            recipient_id: participant_id.to_owned(),
            text,
            attachments,
            media,
            created_timestamp_ms: clock::unix_ms(now),
            created_at: clock::iso_ms(now),
        };
        x.dms.push(dm.clone());
        x.dm_history.push(dm.clone());
        dm
    };
    lock(&shared.faults).stats.dms_created += 1;
    tracing::info!(dm_event_id = %dm.dm_event_id, recipient = %dm.recipient_id, "X DM accepted");
    shared.events.emit(SandboxEvent::DmSent { dm: dm.clone() });
    let body = json!({"data": {"dm_conversation_id": dm.dm_conversation_id, "dm_event_id": dm.dm_event_id}});
    let echo_to = Arc::clone(shared);
    shared.spawn(async move { dm_activity::deliver_echo(&echo_to, &dm).await });
    XReply::new(StatusCode::CREATED, body, rate)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn dm_body_schema() {
        assert_eq!(
            parse_dm_body(br#"{"text":"hi"}"#).unwrap(),
            (Some("hi".into()), vec![])
        );
        assert_eq!(
            parse_dm_body(br#"{"attachments":[{"media_id":"123"}]}"#).unwrap(),
            (None, vec!["123".into()])
        );
        for bad in [
            &br#"{}"#[..],
            br#"{"text":""}"#,
            br#"{"text":"hi","extra":1}"#,
            br#"{"attachments":[{"media_id":"1"},{"media_id":"2"}]}"#,
            br#"{"attachments":[{"media_id":"abc"}]}"#,
            br#"{"attachments":[]}"#,
            br#"[1]"#,
            br#"{"text":"#,
        ] {
            assert!(
                parse_dm_body(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
