//! The HTTP control API under `/_sandbox`: every `SandboxHandle` control method, with JSON bodies,
//! for `xdm-connect sandbox` run standalone and for tools that are not in-process (the X activity,
//! contact flow, Customer Profiles and SNS topic controls live with their parts and are merged
//! here).

pub(crate) mod reply;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use crate::config::AttachmentScan;
use crate::connect::model::{AgentAttachment, ItemSpec, content_types};
use crate::control::reply::{ControlError, Reply, body, ok};
use crate::error::SandboxError;
use crate::faults::{DownMode, Fault, FaultOp, FaultProfile, Side, ThrottleBurst};
use crate::handle::SandboxHandle;
use crate::media::files::{MediaFile, ServeOptions, generated_sha256};
use crate::media::stream::file_response;
use crate::sns::controls::policy_text;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::dm_spec::DmSpec;
use crate::x::users::SandboxUser;
use crate::x::webhook_client::SignatureHeader;

type Ctl = State<Arc<Shared>>;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(info))
        .route("/events", get(events))
        .route("/x/users", get(users).post(add_user))
        .route("/x/webhook", get(webhook).post(set_webhook))
        .route("/x/crc", post(crc_check))
        .route("/x/dm", post(deliver_dm))
        .route("/x/typing", post(deliver_typing))
        .route("/x/read", post(deliver_read))
        .route("/x/raw", post(deliver_raw))
        .route("/x/dms", get(sent_dms))
        .route("/x/requests", get(x_requests))
        .route("/x/deliveries", get(webhook_deliveries))
        .route("/x/media", get(uploaded_media))
        .route("/media/files", get(files).post(add_file))
        .route("/media/files/{id}", get(file))
        .route("/media/files/{id}/content", get(file_content))
        .route("/media/files/{id}/serve", post(serve_options))
        .route("/media/requests", get(media_requests))
        .route("/media/generated", get(generated))
        .route("/connect/attachments", get(attachments))
        .route("/connect/s3-requests", get(s3_requests))
        .route(
            "/connect/attachment-scan",
            get(attachment_scan).post(set_attachment_scan),
        )
        .route("/connect/contacts/{id}/attachment", post(agent_attachment))
        .route("/connect/contacts", get(contacts))
        .route("/connect/contacts/{id}", get(contact))
        .route("/connect/contacts/{id}/accept", post(accept))
        .route("/connect/contacts/{id}/message", post(message))
        .route("/connect/contacts/{id}/item", post(item))
        .route("/connect/contacts/{id}/typing", post(typing))
        .route("/connect/contacts/{id}/read", post(read))
        .route("/connect/contacts/{id}/leave", post(leave))
        .route("/connect/contacts/{id}/barge", post(barge))
        .route("/connect/contacts/{id}/barge/leave", post(barge_leave))
        .route("/connect/contacts/{id}/system", post(system))
        .route("/connect/contacts/{id}/end", post(end))
        .route("/connect/contacts/{id}/transfer", post(transfer))
        .route("/sns/subscribe", post(subscribe))
        .route("/sns/subscriptions", get(subscriptions))
        .route("/sns/subscriptions/filter-policy", post(set_filter_policy))
        .route("/sns/deliveries", get(sns_deliveries))
        .route("/sns/redeliver", post(redeliver))
        .route("/faults", get(faults).post(fail_next).delete(clear_faults))
        .route(
            "/faults/profiles",
            get(fault_profiles)
                .post(set_fault_profile)
                .delete(clear_fault_profiles),
        )
        .route(
            "/faults/burst",
            get(throttle_bursts)
                .post(throttle_burst)
                .delete(clear_throttle_bursts),
        )
        .route("/faults/down", get(down).post(set_down))
        .route("/stats", get(stats).delete(reset_stats))
        .merge(crate::connect::controls::control_routes())
        .merge(crate::profiles::controls::control_routes())
        .merge(crate::sns::controls::control_routes())
        .merge(crate::x::controls::control_routes())
        .merge(crate::x::chat::controls::control_routes())
}

fn handle(shared: Arc<Shared>) -> SandboxHandle {
    SandboxHandle { shared }
}

async fn info(State(shared): Ctl) -> Reply {
    let h = handle(shared);
    ok(json!({
        "base_url": h.base_url(),
        "sns_cert_url": h.sns_cert_url(),
        "sns_topic_arn": h.sns_topic_arn(),
        "config": h.config(),
    }))
}

#[derive(Deserialize)]
struct Since {
    #[serde(default)]
    since: u64,
}

async fn events(State(shared): Ctl, Query(q): Query<Since>) -> Reply {
    ok(handle(shared).event_log(q.since))
}

async fn users(State(shared): Ctl) -> Reply {
    ok(handle(shared).users())
}

async fn add_user(State(shared): Ctl, bytes: Bytes) -> Reply {
    let user: SandboxUser = body(&bytes)?;
    if user.id.is_empty() || !user.id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ControlError(
            StatusCode::BAD_REQUEST,
            "user id must be digits".into(),
        ));
    }
    handle(shared).add_user(user.clone());
    Ok((StatusCode::CREATED, axum::Json(user)).into_response())
}

#[derive(Deserialize)]
struct UrlBody {
    url: String,
}

async fn webhook(State(shared): Ctl) -> Reply {
    ok(handle(shared).webhook())
}

async fn set_webhook(State(shared): Ctl, bytes: Bytes) -> Reply {
    let req: UrlBody = body(&bytes)?;
    ok(handle(shared).set_webhook(&req.url).await?)
}

#[derive(Deserialize)]
struct CrcBody {
    url: String,
    crc_token: String,
}

async fn crc_check(State(shared): Ctl, bytes: Bytes) -> Reply {
    let req: CrcBody = body(&bytes)?;
    ok(handle(shared).crc_check(&req.url, &req.crc_token).await?)
}

async fn deliver_dm(State(shared): Ctl, bytes: Bytes) -> Reply {
    let spec: DmSpec = body(&bytes)?;
    ok(handle(shared).deliver_dm(spec).await?)
}

#[derive(Deserialize)]
struct SenderBody {
    sender_id: String,
}

async fn deliver_typing(State(shared): Ctl, bytes: Bytes) -> Reply {
    let req: SenderBody = body(&bytes)?;
    ok(handle(shared).deliver_typing(&req.sender_id).await?)
}

#[derive(Deserialize)]
struct ReadBody {
    sender_id: String,
    last_read_event_id: String,
}

async fn deliver_read(State(shared): Ctl, bytes: Bytes) -> Reply {
    let req: ReadBody = body(&bytes)?;
    ok(handle(shared)
        .deliver_read(&req.sender_id, &req.last_read_event_id)
        .await?)
}

#[derive(Deserialize)]
struct RawBody {
    body: String,
    #[serde(default)]
    signature: SignatureHeader,
}

async fn deliver_raw(State(shared): Ctl, bytes: Bytes) -> Reply {
    let req: RawBody = body(&bytes)?;
    ok(handle(shared)
        .deliver_raw(req.body.into_bytes(), req.signature)
        .await?)
}

async fn sent_dms(State(shared): Ctl) -> Reply {
    ok(handle(shared).sent_dms())
}

async fn x_requests(State(shared): Ctl) -> Reply {
    ok(handle(shared).x_requests())
}

async fn webhook_deliveries(State(shared): Ctl) -> Reply {
    ok(handle(shared).webhook_deliveries())
}

async fn contacts(State(shared): Ctl) -> Reply {
    ok(handle(shared).contacts())
}

async fn contact(State(shared): Ctl, Path(id): Path<String>) -> Reply {
    handle(shared)
        .contact(&id)
        .ok_or_else(|| SandboxError::UnknownContact(id).into())
        .and_then(ok)
}

#[derive(Deserialize)]
struct AcceptBody {
    #[serde(default = "default_agent")]
    agent_name: String,
}

fn default_agent() -> String {
    "Agent".to_owned()
}

async fn accept(State(shared): Ctl, Path(id): Path<String>, bytes: Bytes) -> Reply {
    let req: AcceptBody = body(&bytes)?;
    ok(handle(shared).agent_accept(&id, &req.agent_name)?)
}

#[derive(Deserialize)]
struct MessageBody {
    content: String,
    #[serde(default = "default_agent_content_type")]
    content_type: String,
}

/// The Connect agent workspace sends markdown.
fn default_agent_content_type() -> String {
    content_types::TEXT_MARKDOWN.to_owned()
}

async fn message(State(shared): Ctl, Path(id): Path<String>, bytes: Bytes) -> Reply {
    let req: MessageBody = body(&bytes)?;
    ok(handle(shared).agent_send(&id, &req.content, &req.content_type)?)
}

async fn item(State(shared): Ctl, Path(id): Path<String>, bytes: Bytes) -> Reply {
    let spec: ItemSpec = body(&bytes)?;
    ok(handle(shared).agent_send_item(&id, spec)?)
}

async fn typing(State(shared): Ctl, Path(id): Path<String>) -> Reply {
    ok(handle(shared).agent_typing(&id)?)
}

#[derive(Deserialize)]
struct AgentReadBody {
    message_id: String,
}

async fn read(State(shared): Ctl, Path(id): Path<String>, bytes: Bytes) -> Reply {
    let req: AgentReadBody = body(&bytes)?;
    ok(handle(shared).agent_read(&id, &req.message_id)?)
}

async fn leave(State(shared): Ctl, Path(id): Path<String>) -> Reply {
    ok(handle(shared).agent_leave(&id)?)
}

#[derive(Deserialize)]
struct BargeBody {
    #[serde(default = "default_supervisor")]
    name: String,
}

fn default_supervisor() -> String {
    "Supervisor".to_owned()
}

async fn barge(State(shared): Ctl, Path(id): Path<String>, bytes: Bytes) -> Reply {
    let req: BargeBody = body(&bytes)?;
    ok(handle(shared).supervisor_barge(&id, &req.name)?)
}

async fn barge_leave(State(shared): Ctl, Path(id): Path<String>) -> Reply {
    ok(handle(shared).supervisor_leave(&id)?)
}

#[derive(Deserialize)]
struct SystemBody {
    text: String,
}

async fn system(State(shared): Ctl, Path(id): Path<String>, bytes: Bytes) -> Reply {
    let req: SystemBody = body(&bytes)?;
    ok(handle(shared).system_message(&id, &req.text)?)
}

async fn end(State(shared): Ctl, Path(id): Path<String>) -> Reply {
    ok(handle(shared).end_chat(&id)?)
}

async fn transfer(State(shared): Ctl, Path(id): Path<String>) -> Reply {
    ok(handle(shared).transfer(&id)?)
}

#[derive(Deserialize)]
struct SubscribeBody {
    endpoint: String,
    topic_arn: Option<String>,
    /// The `FilterPolicy` attribute: a JSON object, or a string holding one.
    filter_policy: Option<serde_json::Value>,
}

async fn subscribe(State(shared): Ctl, bytes: Bytes) -> Reply {
    let req: SubscribeBody = body(&bytes)?;
    let h = handle(shared);
    let policy = req.filter_policy.map(policy_text);
    ok(
        h.subscribe_filtered(req.topic_arn.as_deref(), &req.endpoint, policy.as_deref())
            .await?,
    )
}

#[derive(Deserialize)]
struct FilterPolicyBody {
    subscription_arn: String,
    /// `null` (or absent) removes the policy.
    #[serde(default)]
    filter_policy: Option<serde_json::Value>,
}

async fn set_filter_policy(State(shared): Ctl, bytes: Bytes) -> Reply {
    let req: FilterPolicyBody = body(&bytes)?;
    let policy = req.filter_policy.map(policy_text);
    ok(handle(shared).set_subscription_filter_policy(&req.subscription_arn, policy.as_deref())?)
}

async fn subscriptions(State(shared): Ctl) -> Reply {
    ok(handle(shared).subscriptions())
}

async fn sns_deliveries(State(shared): Ctl) -> Reply {
    ok(handle(shared).sns_deliveries())
}

#[derive(Deserialize)]
struct RedeliverBody {
    message_id: String,
}

async fn redeliver(State(shared): Ctl, bytes: Bytes) -> Reply {
    let req: RedeliverBody = body(&bytes)?;
    ok(handle(shared).redeliver(&req.message_id).await?)
}

#[derive(Deserialize)]
struct FaultBody {
    op: FaultOp,
    #[serde(default = "one")]
    count: u32,
    #[serde(default)]
    fault: Fault,
}

fn one() -> u32 {
    1
}

async fn faults(State(shared): Ctl) -> Reply {
    ok(handle(shared).pending_faults())
}

async fn fail_next(State(shared): Ctl, bytes: Bytes) -> Reply {
    let req: FaultBody = body(&bytes)?;
    let h = handle(shared);
    h.fail_next(req.op, req.count, req.fault);
    ok(h.pending_faults())
}

async fn clear_faults(State(shared): Ctl) -> Reply {
    handle(shared).clear_faults();
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `{"op":…,"profile":{…}}` or `{"side":"Connect"|"X","profile":{…}}`.
#[derive(Deserialize)]
struct ProfileBody {
    op: Option<FaultOp>,
    side: Option<Side>,
    #[serde(default)]
    profile: FaultProfile,
}

async fn fault_profiles(State(shared): Ctl) -> Reply {
    ok(handle(shared).fault_profiles())
}

async fn set_fault_profile(State(shared): Ctl, bytes: Bytes) -> Reply {
    let req: ProfileBody = body(&bytes)?;
    let h = handle(shared);
    match (req.op, req.side) {
        (Some(op), None) => h.set_fault_profile(op, req.profile)?,
        (None, Some(side)) => h.set_side_fault_profile(side, req.profile)?,
        _ => {
            return Err(ControlError(
                StatusCode::BAD_REQUEST,
                "give exactly one of \"op\" and \"side\"".into(),
            ));
        }
    }
    ok(h.fault_profiles())
}

async fn clear_fault_profiles(State(shared): Ctl) -> Reply {
    handle(shared).clear_fault_profiles();
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `{"op":…,"count":…,"reset_after_secs":…,"hold_window"?:…,"limit"?:…}`.
#[derive(Deserialize)]
struct BurstBody {
    op: FaultOp,
    #[serde(flatten)]
    burst: ThrottleBurst,
}

async fn throttle_bursts(State(shared): Ctl) -> Reply {
    ok(handle(shared).throttle_bursts())
}

async fn throttle_burst(State(shared): Ctl, bytes: Bytes) -> Reply {
    let req: BurstBody = body(&bytes)?;
    let h = handle(shared);
    h.throttle_burst_with(req.op, req.burst);
    ok(h.throttle_bursts())
}

async fn clear_throttle_bursts(State(shared): Ctl) -> Reply {
    handle(shared).clear_throttle_bursts();
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `{"side":"Connect"|"X","down":true|false,"mode"?:"Unavailable"|"Drop"}`.
#[derive(Deserialize)]
struct DownBody {
    side: Side,
    down: bool,
    #[serde(default)]
    mode: DownMode,
}

fn down_state(h: &SandboxHandle) -> serde_json::Value {
    json!({"X": h.is_down(Side::X), "Connect": h.is_down(Side::Connect)})
}

async fn down(State(shared): Ctl) -> Reply {
    ok(down_state(&handle(shared)))
}

async fn set_down(State(shared): Ctl, bytes: Bytes) -> Reply {
    let req: DownBody = body(&bytes)?;
    let h = handle(shared);
    h.set_down_with(req.side, req.down.then_some(req.mode));
    ok(down_state(&h))
}

async fn stats(State(shared): Ctl) -> Reply {
    ok(handle(shared).stats())
}

async fn reset_stats(State(shared): Ctl) -> Reply {
    handle(shared).reset_stats();
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn uploaded_media(State(shared): Ctl) -> Reply {
    ok(handle(shared).uploaded_media())
}

async fn files(State(shared): Ctl) -> Reply {
    ok(handle(shared).files())
}

async fn add_file(State(shared): Ctl, bytes: Bytes) -> Reply {
    let spec: MediaFile = body(&bytes)?;
    // Hashing a large generated file takes a while: not on an async worker.
    let info = tokio::task::spawn_blocking(move || handle(shared).add_file(spec))
        .await
        .map_err(|e| ControlError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok((StatusCode::CREATED, axum::Json(info)).into_response())
}

async fn file(State(shared): Ctl, Path(id): Path<String>) -> Reply {
    handle(shared)
        .file(&id)
        .ok_or_else(|| SandboxError::UnknownFile(id).into())
        .and_then(ok)
}

/// The file's bytes, streamed like the media routes serve them.
async fn file_content(State(shared): Ctl, Path(id): Path<String>) -> Reply {
    let file = lock(&shared.media)
        .get(&id)
        .cloned()
        .ok_or_else(|| ControlError::from(SandboxError::UnknownFile(id)))?;
    Ok(file_response(&file, None))
}

async fn serve_options(State(shared): Ctl, Path(id): Path<String>, bytes: Bytes) -> Reply {
    let serve: ServeOptions = body(&bytes)?;
    ok(handle(shared).set_serve_options(&id, serve)?)
}

async fn media_requests(State(shared): Ctl) -> Reply {
    ok(handle(shared).media_requests())
}

#[derive(Deserialize)]
struct GeneratedQuery {
    size: u64,
    seed: u64,
}

async fn generated(Query(q): Query<GeneratedQuery>) -> Reply {
    let sha256 = tokio::task::spawn_blocking(move || generated_sha256(q.size, q.seed))
        .await
        .map_err(|e| ControlError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    ok(json!({"size": q.size, "seed": q.seed, "sha256": sha256}))
}

async fn attachments(State(shared): Ctl) -> Reply {
    ok(handle(shared).attachments())
}

async fn s3_requests(State(shared): Ctl) -> Reply {
    ok(handle(shared).s3_requests())
}

async fn attachment_scan(State(shared): Ctl) -> Reply {
    ok(handle(shared).attachment_scan())
}

async fn set_attachment_scan(State(shared): Ctl, bytes: Bytes) -> Reply {
    let scan: AttachmentScan = body(&bytes)?;
    let h = handle(shared);
    h.set_attachment_scan(scan);
    ok(h.attachment_scan())
}

async fn agent_attachment(State(shared): Ctl, Path(id): Path<String>, bytes: Bytes) -> Reply {
    let spec: AgentAttachment = body(&bytes)?;
    ok(handle(shared).agent_send_attachment_with(&id, spec)?)
}
