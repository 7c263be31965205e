//! 200 MB through the sandbox in bounded memory: a generated video served at its DM URL, relayed
//! chunk by chunk into X media upload v2, and PUT as a Connect attachment — every hop hashed as it
//! streams. Its own test binary (one process, one test), so the process's peak RSS is this test's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use aws_lc_rs::digest;
use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use base64::Engine as _;
use futures_util::StreamExt as _;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use sha2::Sha256;
use xdm_sandbox::x::oauth_verify::{Credentials, authorization_header};
use xdm_sandbox::{
    DmSpec, MediaFile, MediaSpec, ProcessingState, Sandbox, SandboxConfig, SandboxHandle,
    generated_sha256, generated_stream,
};

const SIZE: u64 = 200 * 1024 * 1024;
const SEED: u64 = 2026;
const CHUNK: usize = 1024 * 1024;
const MIB: u64 = 1024 * 1024;
/// The bridge's budget for relaying a 200 MB video; the sandbox and this test's client together
/// must stay well within it.
const BUDGET: u64 = 64 * MIB;

/// `VmHWM` (peak resident set) and `VmRSS` of this process, in bytes.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Resets `VmHWM` to the current RSS (Linux ≥ 4.0).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn creds(sb: &SandboxHandle) -> Credentials<'_> {
    let x = &sb.config().x;
    Credentials {
        consumer_key: &x.consumer_key,
        consumer_secret: &x.consumer_secret,
        token: &x.access_token,
        token_secret: &x.access_token_secret,
    }
}

fn auth(sb: &SandboxHandle, method: &str, url: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    authorization_header(
        method,
        &url::Url::parse(url).unwrap(),
        &[],
        creds(sb),
        &nonce,
        now,
    )
}

/// A webhook that passes X's CRC and accepts events.
async fn webhook(secret: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/x", listener.local_addr().unwrap());
    let app = Router::new().route(
        "/x",
        get(
            move |Query(q): Query<std::collections::HashMap<String, String>>| async move {
                let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
                mac.update(q["crc_token"].as_bytes());
                let token =
                    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
                axum::Json(json!({"response_token": format!("sha256={token}")}))
            },
        )
        .post(|| async { "" }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

async fn post_json(sb: &SandboxHandle, path: &str, body: Value) -> Value {
    let url = format!("{}{path}", sb.base_url());
    let resp = reqwest::Client::new()
        .post(&url)
        .header("authorization", auth(sb, "POST", &url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.unwrap_or(Value::Null)
}

/// Downloads the DM's video and relays it into an X media upload, one 1 MiB segment at a time.
async fn relay_to_x(sb: &SandboxHandle, video_url: &str) -> (String, String) {
    let client = reqwest::Client::new();
    let init = post_json(
        sb,
        "/2/media/upload/initialize",
        json!({"media_type": "video/mp4", "total_bytes": SIZE, "media_category": "dm_video"}),
    )
    .await;
    let id = init["data"]["id"].as_str().unwrap().to_owned();
    let resp = client.get(video_url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.content_length(), Some(SIZE));
    let mut body = resp.bytes_stream();
    let mut hash = digest::Context::new(&digest::SHA256);
    let mut segment = Vec::with_capacity(CHUNK);
    let mut index = 0u32;
    let append_url = format!("{}/2/media/upload/{id}/append", sb.base_url());
    loop {
        let next = body.next().await;
        if let Some(chunk) = &next {
            let chunk = chunk.as_ref().unwrap();
            hash.update(chunk);
            segment.extend_from_slice(chunk);
        }
        while segment.len() >= CHUNK || (next.is_none() && !segment.is_empty()) {
            let take = segment.len().min(CHUNK);
            let part: Vec<u8> = segment.drain(..take).collect();
            let form = Form::new()
                .text("segment_index", index.to_string())
                .part("media", Part::bytes(part));
            let resp = client
                .post(&append_url)
                .header("authorization", auth(sb, "POST", &append_url))
                .multipart(form)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "segment {index}");
            index += 1;
        }
        if next.is_none() {
            break;
        }
    }
    post_json(sb, &format!("/2/media/upload/{id}/finalize"), json!({})).await;
    (id, hex(hash.finish().as_ref()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mb_file_streams_through_the_sandbox_in_bounded_memory() {
    let mut cfg = SandboxConfig::default();
    cfg.connect.max_attachment_bytes = 256 * MIB;
    cfg.x.media.check_after_secs = 0;
    let sb = Sandbox::start(cfg).await.unwrap();
    let expected = tokio::task::spawn_blocking(|| generated_sha256(SIZE, SEED))
        .await
        .unwrap();
    let file = sb.add_file(MediaFile::generated("big.mp4", "video/mp4", SIZE, SEED));
    assert_eq!(file.sha256, expected);
    let hook = webhook(sb.config().x.crc_key().to_owned()).await;
    assert!(sb.set_webhook(&hook).await.unwrap().ok);
    let delivery = sb
        .deliver_dm(
            DmSpec::text("3001969357", "a big one").with_media(MediaSpec::video(&file.file_id)),
        )
        .await
        .unwrap();
    let video_url = delivery.media.unwrap().url;

    let measured = reset_peak();
    let (_, before) = memory();

    // X: download (served from the generator) → relay into media upload v2 (hashed as it comes).
    let (media_id, client_sha) = relay_to_x(&sb, &video_url).await;
    assert_eq!(client_sha, expected, "the download is the generated file");
    let status_url = format!(
        "{}/2/media/upload?command=STATUS&media_id={media_id}",
        sb.base_url()
    );
    for _ in 0..5 {
        let resp = reqwest::Client::new()
            .get(&status_url)
            .header("authorization", auth(&sb, "GET", &status_url))
            .send()
            .await
            .unwrap();
        let v: Value = resp.json().await.unwrap();
        if v["data"]["processing_info"]["state"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let upload = sb.media_upload(&media_id).unwrap();
    assert_eq!(upload.state, Some(ProcessingState::Succeeded));
    assert_eq!(upload.received_bytes, SIZE);
    assert_eq!(upload.sha256.as_deref(), Some(expected.as_str()));

    // Connect: a 200 MB PUT streamed from the generator to the pre-signed URL.
    let (contact, participant_token) = {
        let region = sb.config().connect.region.clone();
        let resp = reqwest::Client::new()
            .put(format!("{}/contact/chat", sb.base_url()))
            .header(
                "authorization",
                format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/{region}/connect/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"),
            )
            .header("x-amz-date", "20261125T120000Z")
            .json(&json!({
                "InstanceId": sb.config().connect.instance_id,
                "ContactFlowId": sb.config().connect.contact_flow_id,
                "ParticipantDetails": {"DisplayName": "Jordan"},
            }))
            .send()
            .await
            .unwrap();
        let v: Value = resp.json().await.unwrap();
        (
            v["ContactId"].as_str().unwrap().to_owned(),
            v["ParticipantToken"].as_str().unwrap().to_owned(),
        )
    };
    let participant = |path: &str, token: &str, body: Value| {
        reqwest::Client::new()
            .post(format!("{}{path}", sb.base_url()))
            .header("x-amz-bearer", token.to_owned())
            .json(&body)
            .send()
    };
    let v: Value = participant(
        "/participant/connection",
        &participant_token,
        json!({"Type": ["CONNECTION_CREDENTIALS"], "ConnectParticipant": true}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let token = v["ConnectionCredentials"]["ConnectionToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let upload: Value = participant(
        "/participant/start-attachment-upload",
        &token,
        json!({"ContentType": "video/mp4", "AttachmentSizeInBytes": SIZE,
               "AttachmentName": "big.mp4", "ClientToken": "big"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let meta = &upload["UploadMetadata"];
    let mut put = reqwest::Client::new().put(meta["Url"].as_str().unwrap());
    for (k, v) in meta["HeadersToInclude"].as_object().unwrap() {
        put = put.header(k, v.as_str().unwrap());
    }
    let resp = put
        .body(reqwest::Body::wrap_stream(generated_stream(SIZE, SEED)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let attachment = sb
        .attachment(upload["AttachmentId"].as_str().unwrap())
        .unwrap();
    assert_eq!(attachment.size, Some(SIZE));
    assert_eq!(attachment.sha256.as_deref(), Some(expected.as_str()));
    assert_eq!(sb.contact(&contact).unwrap().attachments.len(), 1);

    let (peak, _) = memory();
    let growth = peak.saturating_sub(before);
    eprintln!(
        "peak RSS {} MiB, {} MiB above the start of the relay (peak reset: {measured})",
        peak / MIB,
        growth / MIB
    );
    assert!(
        growth < BUDGET,
        "{} MiB of peak memory for 2 × 200 MB streamed through the sandbox",
        growth / MIB
    );
}
