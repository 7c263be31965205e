//! X media both ways: DM media payloads and their downloads (TON with OAuth 1.0a, public twimg
//! paths, knobs), and media upload v2 (initialize → append → finalize → STATUS) feeding DMs.

use std::time::Duration;

use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use xdm_sandbox::x::oauth_verify::Credentials;
use xdm_sandbox::{
    DmSpec, Fault, FaultOp, MediaCategory, MediaFile, MediaKind, MediaRequestKind, MediaSpec,
    ProcessingState, SandboxHandle, ServeOptions, UrlSpec, XOp, generated_bytes, generated_sha256,
    sha256_hex,
};

use crate::support::{http, sandbox, sandbox_with_webhook, x_auth, x_creds};

const CUSTOMER: &str = "3001969357";

/// The `message_data` of a delivery in either envelope (XAA `data.payload`, or Account Activity).
fn message_data(payload: &str) -> Value {
    let v: Value = serde_json::from_str(payload).unwrap();
    let events = if v.get("data").is_some() {
        &v["data"]["payload"]["direct_message_events"]
    } else {
        &v["direct_message_events"]
    };
    events[0]["message_create"]["message_data"].clone()
}

async fn get(url: &str, auth: Option<String>) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut req = client.get(url);
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn photo_dm_points_at_a_ton_url_that_needs_oauth() {
    let (sb, _rx) = sandbox_with_webhook().await;
    let bytes = b"\xff\xd8\xff\xe0 a tiny jpeg".to_vec();
    let file = sb.add_file(MediaFile::bytes("receipt.jpg", "image/jpeg", bytes.clone()));
    let spec = DmSpec::text(CUSTOMER, "Here is the receipt, see https://t.co/docs1")
        .with_url(UrlSpec {
            url: "https://t.co/docs1".into(),
            expanded_url: "https://example.com/docs".into(),
            display_url: "example.com/docs".into(),
        })
        .with_link("https://example.com/more")
        .with_media(MediaSpec::photo(&file.file_id));
    let delivery = sb.deliver_dm(spec).await.unwrap();
    assert_eq!(delivery.status, Some(200));
    let media = delivery.media.clone().unwrap();
    let event_id = delivery.event_id.clone().unwrap();
    assert_eq!(
        media.url,
        format!(
            "{}/1.1/ton/data/dm/{event_id}/{}/receipt.jpg",
            sb.base_url(),
            media.media_id
        )
    );
    assert_eq!(
        (media.size, media.sha256.as_str()),
        (bytes.len() as u64, sha256_hex(&bytes).as_str())
    );

    // The payload: caption + other links + the media t.co link last.
    let data = message_data(&delivery.payload);
    let text = data["text"].as_str().unwrap();
    assert!(text.ends_with(&media.tco_url), "{text}");
    let urls = data["entities"]["urls"].as_array().unwrap();
    assert_eq!(urls.len(), 3);
    assert_eq!(urls[0]["expanded_url"], "https://example.com/docs");
    assert_eq!(urls[1]["expanded_url"], "https://example.com/more");
    assert_eq!(urls[2]["url"], media.tco_url.as_str());
    let m = &data["attachment"]["media"];
    assert_eq!(m["type"], "photo");
    assert_eq!(m["url"], media.tco_url.as_str());
    assert_eq!(m["media_url_https"], media.url.as_str());
    assert_eq!(m["indices"], urls[2]["indices"]);
    let start = urls[2]["indices"][0].as_u64().unwrap() as usize;
    assert_eq!(text.chars().skip(start).collect::<String>(), media.tco_url);

    // Unsigned, then wrongly signed: 401. Signed with the user token: the bytes.
    let resp = get(&media.url, None).await;
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["title"], "Unauthorized");
    let wrong = Credentials {
        token_secret: "not-the-token-secret",
        ..x_creds(&sb)
    };
    assert_eq!(
        get(&media.url, Some(x_auth(wrong, "GET", &media.url)))
            .await
            .status(),
        401
    );
    let resp = get(&media.url, Some(x_auth(x_creds(&sb), "GET", &media.url))).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    assert_eq!(
        resp.headers()["content-length"],
        bytes.len().to_string().as_str()
    );
    assert_eq!(resp.bytes().await.unwrap().to_vec(), bytes);

    let records = sb.media_requests();
    let statuses: Vec<u16> = records.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![401, 401, 200]);
    assert!(records.iter().all(|r| r.kind == MediaRequestKind::Ton));
    assert!(
        records[1]
            .rejection
            .as_deref()
            .unwrap()
            .contains("signature mismatch")
    );
    let host = sb.base_url().trim_start_matches("http://").to_owned();
    assert_eq!(records[2].host.as_deref(), Some(host.as_str()));
    assert_eq!(records[2].file_id.as_deref(), Some(file.file_id.as_str()));
    assert!(
        sb.x_requests()
            .iter()
            .any(|r| r.op == XOp::TonDownload && r.status == 401)
    );
}

#[tokio::test]
async fn video_and_gif_variants_are_public_and_distinguishable() {
    let (sb, _rx) = sandbox_with_webhook().await;
    let video = sb.add_file(MediaFile::generated("clip.mp4", "video/mp4", 300_000, 9));
    let delivery = sb
        .deliver_dm(DmSpec::text(CUSTOMER, "").with_media(MediaSpec::video(&video.file_id)))
        .await
        .unwrap();
    let media = delivery.media.clone().unwrap();
    let data = message_data(&delivery.payload);
    assert_eq!(
        data["text"],
        media.tco_url.as_str(),
        "no caption: the text is the link"
    );
    let m = &data["attachment"]["media"];
    assert_eq!(m["type"], "video");
    let variants = m["video_info"]["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 3);
    assert_eq!(variants[0]["content_type"], "video/mp4");
    assert_eq!(variants[1]["bitrate"], 2_176_000);
    assert_eq!(
        variants[1]["url"],
        media.url.as_str(),
        "highest bitrate in the middle"
    );
    assert!(variants[0]["bitrate"].as_u64().unwrap() < 2_176_000);
    assert_eq!(variants[2]["content_type"], "application/x-mpegURL");
    assert!(variants[2].get("bitrate").is_none());

    let best = get(&media.url, None).await;
    assert_eq!(best.status(), 200);
    assert_eq!(best.headers()["content-type"], "video/mp4");
    assert_eq!(best.headers()["content-length"], "300000");
    let best = best.bytes().await.unwrap();
    assert_eq!(sha256_hex(&best), generated_sha256(300_000, 9));
    let low = get(variants[0]["url"].as_str().unwrap(), None).await;
    assert_eq!(low.status(), 200);
    assert_ne!(sha256_hex(&low.bytes().await.unwrap()), media.sha256);
    let playlist = get(variants[2]["url"].as_str().unwrap(), None).await;
    assert_eq!(playlist.headers()["content-type"], "application/x-mpegURL");
    assert!(playlist.text().await.unwrap().starts_with("#EXTM3U"));
    let preview = get(m["media_url_https"].as_str().unwrap(), None).await;
    assert_eq!(preview.headers()["content-type"], "image/jpeg");

    let gif = sb.add_file(MediaFile::generated("cat.mp4", "video/mp4", 5_000, 4));
    let delivery = sb
        .deliver_dm(DmSpec::text(CUSTOMER, "lol").with_media(MediaSpec::animated_gif(&gif.file_id)))
        .await
        .unwrap();
    let media = delivery.media.unwrap();
    let m = &message_data(&delivery.payload)["attachment"]["media"];
    assert_eq!(m["type"], "animated_gif");
    assert_eq!(
        m["video_info"]["variants"],
        json!([{"bitrate": 0, "content_type": "video/mp4", "url": media.url}])
    );
    assert!(media.url.contains("/dm_gif/"));
    let resp = get(&media.url, None).await;
    assert_eq!(
        sha256_hex(&resp.bytes().await.unwrap()),
        generated_sha256(5_000, 4)
    );
    assert!(
        sb.media_requests()
            .iter()
            .all(|r| r.kind == MediaRequestKind::Public && r.status == 200)
    );
    // Unknown media paths are 404 and recorded.
    let missing = format!("{}/dm_video/1/vid/720x1280/nope.mp4", sb.base_url());
    assert_eq!(get(&missing, None).await.status(), 404);
    assert_eq!(sb.media_requests().last().unwrap().status, 404);
}

#[tokio::test]
async fn download_knobs_chunked_redirect_and_faults() {
    let (sb, _rx) = sandbox_with_webhook().await;
    let chunked = sb.add_file(
        MediaFile::generated("big.mp4", "video/mp4", 200_000, 1).with_serve(ServeOptions {
            omit_content_length: true,
            ..ServeOptions::default()
        }),
    );
    let delivery = sb
        .deliver_dm(DmSpec::text(CUSTOMER, "x").with_media(MediaSpec::video(&chunked.file_id)))
        .await
        .unwrap();
    let url = delivery.media.unwrap().url;
    let resp = get(&url, None).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("content-length").is_none());
    assert_eq!(resp.headers()["transfer-encoding"], "chunked");
    assert_eq!(
        sha256_hex(&resp.bytes().await.unwrap()),
        generated_sha256(200_000, 1)
    );

    // A redirect to another host name of this listener.
    let target = format!("{}/redirected", sb.alt_base_url());
    sb.set_serve_options(
        &chunked.file_id,
        ServeOptions {
            redirect_to: Some(target.clone()),
            ..ServeOptions::default()
        },
    )
    .unwrap();
    let resp = get(&url, None).await;
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&target), "{location}");
    let resp = get(&location, None).await;
    assert_eq!(resp.status(), 200);
    let last = sb.media_requests().pop().unwrap();
    assert_eq!(last.kind, MediaRequestKind::Redirected);
    assert!(last.host.unwrap().starts_with("localhost:"));

    // Faults: a public download and a TON download.
    sb.fail_next(FaultOp::MediaDownload, 1, Fault::status(503));
    assert_eq!(get(&url, None).await.status(), 503);
    let photo = sb.add_file(MediaFile::bytes("p.png", "image/png", b"png".to_vec()));
    let delivery = sb
        .deliver_dm(DmSpec::text(CUSTOMER, "x").with_media(MediaSpec::photo(&photo.file_id)))
        .await
        .unwrap();
    let ton = delivery.media.unwrap().url;
    sb.fail_next(FaultOp::TonDownload, 1, Fault::status(500));
    let resp = get(&ton, Some(x_auth(x_creds(&sb), "GET", &ton))).await;
    assert_eq!(resp.status(), 500);
    let resp = get(&ton, Some(x_auth(x_creds(&sb), "GET", &ton))).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn media_on_a_foreign_host_is_recorded_only_when_fetched() {
    let (sb, _rx) = sandbox_with_webhook().await;
    let file = sb.add_file(MediaFile::bytes("x.jpg", "image/jpeg", b"jpeg".to_vec()));
    let foreign = format!("{}/elsewhere/x.jpg", sb.alt_base_url());
    let delivery = sb
        .deliver_dm(
            DmSpec::text(CUSTOMER, "look")
                .with_media(MediaSpec::photo(&file.file_id).with_url(&foreign)),
        )
        .await
        .unwrap();
    let m = &message_data(&delivery.payload)["attachment"]["media"];
    assert_eq!(m["media_url_https"], foreign.as_str());
    assert!(sb.media_requests().is_empty(), "nothing fetched yet");
    // A bridge that ignored its allow-list would be seen.
    let resp = get(&foreign, None).await;
    assert_eq!(resp.status(), 200);
    let records = sb.media_requests();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].path, "/elsewhere/x.jpg");
    assert!(
        records[0]
            .host
            .as_deref()
            .unwrap()
            .starts_with("localhost:")
    );
}

// ----- upload v2 -----

struct Uploader<'a> {
    sb: &'a SandboxHandle,
}

impl Uploader<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sb.base_url())
    }

    async fn post_json(&self, path: &str, body: Value) -> (u16, Value) {
        let url = self.url(path);
        let resp = http()
            .post(&url)
            .header("authorization", x_auth(x_creds(self.sb), "POST", &url))
            .json(&body)
            .send()
            .await
            .unwrap();
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }

    async fn initialize(&self, media_type: &str, total: u64, category: &str) -> (u16, Value) {
        self.post_json(
            "/2/media/upload/initialize",
            json!({"media_type": media_type, "total_bytes": total, "media_category": category}),
        )
        .await
    }

    async fn append(&self, id: &str, index: u32, bytes: Vec<u8>) -> (u16, Value) {
        let url = self.url(&format!("/2/media/upload/{id}/append"));
        let form = Form::new()
            .text("segment_index", index.to_string())
            .part("media", Part::bytes(bytes).file_name("blob"));
        let resp = http()
            .post(&url)
            .header("authorization", x_auth(x_creds(self.sb), "POST", &url))
            .multipart(form)
            .send()
            .await
            .unwrap();
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }

    async fn finalize(&self, id: &str) -> (u16, Value) {
        let url = self.url(&format!("/2/media/upload/{id}/finalize"));
        let resp = http()
            .post(&url)
            .header("authorization", x_auth(x_creds(self.sb), "POST", &url))
            .send()
            .await
            .unwrap();
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }

    async fn status(&self, id: &str) -> (u16, Value) {
        let url = self.url(&format!("/2/media/upload?command=STATUS&media_id={id}"));
        let resp = http()
            .get(&url)
            .header("authorization", x_auth(x_creds(self.sb), "GET", &url))
            .send()
            .await
            .unwrap();
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }

    async fn send_dm(&self, media_id: &str) -> (u16, Value) {
        self.post_json(
            &format!("/2/dm_conversations/with/{CUSTOMER}/messages"),
            json!({"text": "here you go", "attachments": [{"media_id": media_id}]}),
        )
        .await
    }
}

#[tokio::test]
async fn image_upload_is_ready_at_finalize_and_goes_into_a_dm() {
    let (sb, rx) = sandbox_with_webhook().await;
    let up = Uploader { sb: &sb };
    let png = generated_bytes(70_000, 11);
    let (status, init) = up
        .initialize("image/png", png.len() as u64, "dm_image")
        .await;
    assert_eq!(status, 200, "{init}");
    let id = init["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(init["data"]["media_key"], format!("3_{id}"));
    assert!(init["data"]["expires_after_secs"].as_u64().unwrap() > 0);
    let (status, appended) = up.append(&id, 0, png.clone()).await;
    assert_eq!(status, 200, "{appended}");
    assert!(appended["data"]["expires_at"].as_i64().unwrap() > 0);
    let (status, done) = up.finalize(&id).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["data"]["size"], 70_000);
    assert!(
        done["data"].get("processing_info").is_none(),
        "images are ready at once"
    );

    // The business account's `dm.sent` events reach the webhook.
    let business = sb.config().x.business.id.clone();
    let webhook_id = sb.webhook().unwrap().id;
    sb.subscribe_activity("dm.sent", &business, Some(&webhook_id), None)
        .unwrap();
    let (status, sent) = up.send_dm(&id).await;
    assert_eq!(status, 201, "{sent}");
    let dm = &sb.sent_dms()[0];
    let media = dm.media.clone().unwrap();
    assert_eq!(media.category, MediaCategory::DmImage);
    assert_eq!(media.media_type, "image/png");
    assert_eq!(media.size, 70_000);
    assert_eq!(media.sha256, sha256_hex(&png));
    assert_eq!(
        sb.file_bytes(&media.file_id, 1 << 20).unwrap(),
        png,
        "small uploads keep bytes"
    );
    assert_eq!(dm.attachments, vec![id.clone()]);

    // The echo carries the photo, downloadable like a customer's.
    let echo = sb
        .wait_until("echo", Duration::from_secs(5), |h| {
            h.webhook_deliveries()
                .into_iter()
                .find(|d| d.kind == xdm_sandbox::DeliveryKind::Echo)
        })
        .await
        .unwrap();
    let m = &message_data(&echo.payload)["attachment"]["media"];
    assert_eq!(m["type"], "photo");
    assert_eq!(m["id_str"], id.as_str());
    let url = m["media_url_https"].as_str().unwrap();
    let resp = get(url, Some(x_auth(x_creds(&sb), "GET", url))).await;
    assert_eq!(sha256_hex(&resp.bytes().await.unwrap()), sha256_hex(&png));
    drop(rx);
}

#[tokio::test]
async fn video_upload_is_processed_over_status_polls() {
    let sb = sandbox().await;
    let up = Uploader { sb: &sb };
    let size = 2_500_000u64;
    // The sandbox served this file (say, a customer's video the bridge relays back).
    sb.add_file(MediaFile::generated("clip.mp4", "video/mp4", size, 77));
    let (_, init) = up.initialize("video/mp4", size, "dm_video").await;
    let id = init["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(init["data"]["media_key"], format!("7_{id}"));
    let bytes = generated_bytes(size, 77);
    for (i, chunk) in bytes.chunks(1024 * 1024).enumerate() {
        let (status, body) = up.append(&id, i as u32, chunk.to_vec()).await;
        assert_eq!(status, 200, "segment {i}: {body}");
    }
    let (status, body) = up.send_dm(&id).await;
    assert_eq!(status, 400, "not finalized yet: {body}");
    let (status, done) = up.finalize(&id).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        done["data"]["processing_info"],
        json!({"state": "pending", "check_after_secs": 1})
    );
    assert_eq!(up.send_dm(&id).await.0, 400, "still processing");

    // Polling early is allowed, and counted.
    let (status, first) = up.status(&id).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["data"]["processing_info"]["state"], "in_progress");
    assert_eq!(first["data"]["processing_info"]["progress_percent"], 50);
    assert_eq!(first["data"]["processing_info"]["check_after_secs"], 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, second) = up.status(&id).await;
    assert_eq!(second["data"]["processing_info"]["state"], "succeeded");
    assert_eq!(second["data"]["processing_info"]["progress_percent"], 100);
    let view = sb.media_upload(&id).unwrap();
    assert_eq!(view.state, Some(ProcessingState::Succeeded));
    assert_eq!(
        (view.status_polls, view.early_polls, view.segments),
        (2, 1, 3)
    );
    assert_eq!(
        view.sha256.as_deref(),
        Some(generated_sha256(size, 77).as_str())
    );

    let (status, body) = up.send_dm(&id).await;
    assert_eq!(status, 201, "{body}");
    let media = sb.sent_dms()[0].media.clone().unwrap();
    assert_eq!(media.category, MediaCategory::DmVideo);
    assert_eq!(media.sha256, generated_sha256(size, 77));
    let file = sb.file(&media.file_id).unwrap();
    assert_eq!(
        file.generated,
        Some((size, 77)),
        "recognised as the served file"
    );
    assert!(
        file.retained,
        "servable from the generator, the upload was not held"
    );
}

#[tokio::test]
async fn appends_must_come_in_order_and_add_up_to_total_bytes() {
    let sb = sandbox().await;
    let up = Uploader { sb: &sb };
    let (_, init) = up.initialize("image/jpeg", 3000, "dm_image").await;
    let id = init["data"]["id"].as_str().unwrap().to_owned();
    let (status, body) = up.append(&id, 1, vec![1; 1000]).await;
    assert_eq!(status, 400, "out of order: {body}");
    assert_eq!(body["type"], "https://api.x.com/2/problems/invalid-request");
    assert_eq!(up.append(&id, 0, vec![1; 1000]).await.0, 200);
    let (status, body) = up.append(&id, 0, vec![1; 1000]).await;
    assert_eq!(status, 400, "duplicate: {body}");
    let (status, body) = up.finalize(&id).await;
    assert_eq!(status, 400, "1000 of 3000 bytes: {body}");
    // JSON + base64 appends work too.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(vec![2u8; 1000]);
    let (status, body) = up
        .post_json(
            &format!("/2/media/upload/{id}/append"),
            json!({"segment_index": 1, "media": b64}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = up.append(&id, 2, vec![3; 1500]).await;
    assert_eq!(status, 400, "beyond total_bytes: {body}");
    assert_eq!(up.append(&id, 2, vec![3; 1000]).await.0, 200);
    let (status, done) = up.finalize(&id).await;
    assert_eq!(status, 200, "{done}");
    let mut expected = vec![1u8; 1000];
    expected.extend(vec![2u8; 1000]);
    expected.extend(vec![3u8; 1000]);
    assert_eq!(
        sb.media_upload(&id).unwrap().sha256.unwrap(),
        sha256_hex(&expected)
    );
    // Unsigned: 401, answered even while a large segment is being sent.
    let form = Form::new()
        .text("segment_index", "3")
        .part("media", Part::bytes(vec![0u8; 3 * 1024 * 1024]));
    let resp = http()
        .post(format!("{}/2/media/upload/{id}/append", sb.base_url()))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let rejections: Vec<String> = sb
        .x_requests()
        .into_iter()
        .filter(|r| r.op == XOp::MediaAppend && r.status == 400)
        .filter_map(|r| r.rejection)
        .collect();
    assert_eq!(rejections.len(), 3, "{rejections:?}");
    assert!(rejections[0].contains("out of order"), "{rejections:?}");
    assert!(rejections[1].contains("already appended"), "{rejections:?}");
}

#[tokio::test]
async fn initialize_validates_category_type_and_size() {
    let sb = sandbox().await;
    let up = Uploader { sb: &sb };
    for (media_type, total, category) in [
        ("image/png", 100, "tweet_image"),
        ("image/png", 100, ""),
        ("video/mp4", 100, "dm_image"),
        ("image/png", 5 * 1024 * 1024 + 1, "dm_image"),
        ("image/gif", 15 * 1024 * 1024 + 1, "dm_gif"),
        ("video/mp4", 0, "dm_video"),
    ] {
        let (status, body) = up.initialize(media_type, total, category).await;
        assert_eq!(status, 400, "{media_type} {total} {category}: {body}");
        assert_eq!(body["title"], "Invalid Request");
    }
    let (status, body) = up
        .post_json(
            "/2/media/upload/initialize",
            json!({"media_type": "image/png", "total_bytes": 10}),
        )
        .await;
    assert_eq!(status, 400, "media_category is required: {body}");
    assert_eq!(up.initialize("image/gif", 1000, "dm_gif").await.0, 200);
    // Unsigned: 401.
    let resp = http()
        .post(format!("{}/2/media/upload/initialize", sb.base_url()))
        .json(&json!({"media_type": "image/png", "total_bytes": 10, "media_category": "dm_image"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn processing_can_fail_on_request() {
    let sb = sandbox().await;
    let up = Uploader { sb: &sb };
    sb.fail_next(
        FaultOp::MediaProcessing,
        1,
        Fault::status(400).with_message("Unsupported video codec"),
    );
    let (_, init) = up.initialize("image/gif", 4, "dm_gif").await;
    let id = init["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(init["data"]["media_key"], format!("16_{id}"));
    assert_eq!(up.append(&id, 0, b"GIF8".to_vec()).await.0, 200);
    assert_eq!(up.finalize(&id).await.0, 200);
    let (_, first) = up.status(&id).await;
    assert_eq!(first["data"]["processing_info"]["state"], "in_progress");
    let (_, second) = up.status(&id).await;
    let info = &second["data"]["processing_info"];
    assert_eq!(info["state"], "failed");
    assert_eq!(info["error"]["message"], "Unsupported video codec");
    let (status, _) = up.send_dm(&id).await;
    assert_eq!(status, 400);
    assert!(sb.sent_dms().is_empty());
    // Upload faults answer like X.
    sb.fail_next(FaultOp::MediaInitialize, 1, Fault::status(503));
    assert_eq!(up.initialize("image/png", 1, "dm_image").await.0, 503);
}

#[tokio::test]
async fn dm_media_kinds_default_to_generated_files() {
    let (sb, _rx) = sandbox_with_webhook().await;
    for kind in [MediaKind::Photo, MediaKind::Video, MediaKind::AnimatedGif] {
        let spec = MediaSpec {
            kind,
            ..MediaSpec::default()
        };
        let delivery = sb
            .deliver_dm(DmSpec::text(CUSTOMER, "x").with_media(spec))
            .await
            .unwrap();
        let media = delivery.media.unwrap();
        let auth = (kind == MediaKind::Photo).then(|| x_auth(x_creds(&sb), "GET", &media.url));
        let resp = get(&media.url, auth).await;
        assert_eq!(resp.status(), 200, "{kind:?}");
        assert_eq!(sha256_hex(&resp.bytes().await.unwrap()), media.sha256);
    }
}

#[tokio::test]
async fn dm_specs_in_json_fill_in_short_links() {
    let (sb, _rx) = sandbox_with_webhook().await;
    let file = sb.add_file(MediaFile::text("a.png", "image/png", "png"));
    let spec: DmSpec = serde_json::from_value(json!({
        "sender_id": CUSTOMER,
        "text": "the docs",
        "urls": [{"expanded_url": "https://example.com/a"}],
        "media": {"kind": "photo", "file_id": file.file_id},
    }))
    .unwrap();
    let delivery = sb.deliver_dm(spec).await.unwrap();
    let data = message_data(&delivery.payload);
    let link = &data["entities"]["urls"][0];
    assert!(link["url"].as_str().unwrap().starts_with("https://t.co/"));
    assert_eq!(link["display_url"], "example.com/a");
    let text = data["text"].as_str().unwrap();
    assert!(text.starts_with("the docs https://t.co/"), "{text}");
    assert!(text.ends_with(&delivery.media.unwrap().tco_url));
}
