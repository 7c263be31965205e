//! Photos, GIFs and videos both ways (issue 3), against the sandbox's TON / twimg hosts, X media
//! upload v2 and Connect attachments (pre-signed S3 PUT).

use xdm_sandbox::{AgentAttachment, ArtifactStatus, DmSpec, MediaFile, MediaSpec, SandboxConfig};

use crate::helpers::*;

fn attachments_of(app: &TestApp) -> Vec<xdm_sandbox::AttachmentView> {
    app.sandbox
        .attachments()
        .into_iter()
        .filter(|a| a.role == xdm_sandbox::ParticipantRole::Customer)
        .collect()
}

#[tokio::test]
async fn a_photo_reaches_connect_with_its_bytes_name_and_type_and_the_caption_keeps_other_links() {
    let app = spawn_app().await;
    let photo = app.sandbox.add_file(MediaFile::generated(
        "T7xt1pvd.jpg",
        "image/jpeg",
        180_000,
        7,
    ));
    let spec = DmSpec {
        media: Some(MediaSpec::photo(&photo.file_id)),
        ..DmSpec::text(
            CUSTOMER,
            "Here is the receipt, order page https://t.co/abc123XYZ:",
        )
        .with_link("https://shop.example.com/orders/42")
    };
    let d = app.sandbox.deliver_dm(spec).await.unwrap();
    assert_eq!(d.status, Some(200));
    let media = d.media.clone().unwrap();
    let att = app
        .sandbox
        .wait_until("the attachment", WAIT, |_| {
            attachments_of(&app).into_iter().find(|a| a.completed)
        })
        .await
        .unwrap();
    app.settle().await;
    assert_eq!(
        att.sha256.as_deref(),
        Some(photo.sha256.as_str()),
        "the photo's bytes"
    );
    assert_eq!(att.size, Some(180_000));
    assert_eq!(att.name, "T7xt1pvd.jpg");
    assert_eq!(att.content_type, "image/jpeg");
    let chat = &app.contacts()[0];
    let texts = customer_messages(chat).join("\n");
    assert!(
        !texts.contains(&media.tco_url),
        "the media's t.co link is stripped: {texts}"
    );
    assert!(
        texts.contains("https://shop.example.com/orders/42"),
        "other links stay: {texts}"
    );
    // The bridge's TON download was signed and accepted.
    let tons: Vec<_> = app
        .sandbox
        .media_requests()
        .into_iter()
        .filter(|r| r.path.contains("/1.1/ton/"))
        .collect();
    assert!(
        !tons.is_empty() && tons.iter().all(|r| r.status == 200),
        "{tons:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_highest_bitrate_mp4_of_a_video_and_the_mp4_of_a_gif_are_delivered() {
    let app = spawn_app().await;
    app.open_chat("hi").await;
    let video = app
        .sandbox
        .add_file(MediaFile::generated("clip.mp4", "video/mp4", 2_500_000, 11));
    let gif = app
        .sandbox
        .add_file(MediaFile::generated("dance.mp4", "video/mp4", 400_000, 12));
    app.dm_spec(DmSpec {
        media: Some(MediaSpec::video(&video.file_id)),
        ..DmSpec::text(CUSTOMER, "")
    })
    .await;
    app.dm_spec(DmSpec {
        media: Some(MediaSpec::animated_gif(&gif.file_id)),
        ..DmSpec::text(CUSTOMER, "")
    })
    .await;
    app.sandbox
        .wait_until("two attachments", WAIT, |_| {
            (attachments_of(&app).iter().filter(|a| a.completed).count() == 2).then_some(())
        })
        .await
        .unwrap();
    app.settle().await;
    let hashes: Vec<String> = attachments_of(&app)
        .into_iter()
        .filter_map(|a| a.sha256)
        .collect();
    assert_eq!(hashes, vec![video.sha256.clone(), gif.sha256.clone()]);
    app.stop().await;
}

#[tokio::test]
async fn ton_downloads_need_a_valid_oauth_signature() {
    let app = spawn_app().await;
    let photo = app
        .sandbox
        .add_file(MediaFile::bytes("p.jpg", "image/jpeg", vec![1, 2, 3]));
    let d = app
        .sandbox
        .deliver_dm(DmSpec {
            media: Some(MediaSpec::photo(&photo.file_id)),
            ..DmSpec::text(CUSTOMER, "look")
        })
        .await
        .unwrap();
    let url = d.media.unwrap().url;
    let unsigned = app.http.get(&url).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);
    let forged = app
        .http
        .get(&url)
        .header("authorization", r#"OAuth oauth_consumer_key="sandbox-consumer-key", oauth_nonce="n", oauth_signature="AAAA", oauth_signature_method="HMAC-SHA1", oauth_timestamp="1", oauth_token="4337869213-sandbox-access-token", oauth_version="1.0""#)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    // and the bridge's own, signed, download went through
    app.sandbox
        .wait_until("the attachment", WAIT, |_| {
            attachments_of(&app).into_iter().find(|a| a.completed)
        })
        .await
        .unwrap();
    app.stop().await;
}

#[tokio::test]
async fn what_cannot_be_attached_is_never_fetched_or_never_attached_and_the_agent_is_told() {
    let mut sandbox = SandboxConfig::default();
    // This Connect instance takes no videos.
    sandbox
        .connect
        .attachment_types
        .retain(|t| !t.starts_with("video/"));
    let app = spawn_app_with(sandbox, |_| {}).await;
    app.open_chat("hi").await;

    // 1. a media URL on a host outside the allow-list
    let photo = app
        .sandbox
        .add_file(MediaFile::bytes("x.jpg", "image/jpeg", vec![9; 10]));
    let foreign = format!("{}/elsewhere/x.jpg", app.sandbox.alt_base_url());
    let before = app.sandbox.media_requests().len();
    app.dm_spec(DmSpec {
        media: Some(MediaSpec::photo(&photo.file_id).with_url(&foreign)),
        ..DmSpec::text(CUSTOMER, "")
    })
    .await;
    // 2. a 25 MB video
    let big = app.sandbox.add_file(MediaFile::generated(
        "big.mp4",
        "video/mp4",
        25 * 1024 * 1024,
        3,
    ));
    app.dm_spec(DmSpec {
        media: Some(MediaSpec::video(&big.file_id)),
        ..DmSpec::text(CUSTOMER, "")
    })
    .await;
    // 3. a video this instance refuses
    let small = app
        .sandbox
        .add_file(MediaFile::generated("small.mp4", "video/mp4", 100_000, 4));
    app.dm_spec(DmSpec {
        media: Some(MediaSpec::video(&small.file_id)),
        ..DmSpec::text(CUSTOMER, "")
    })
    .await;

    app.wait_contact("three notes", |_, m| {
        m.iter().filter(|t| t.starts_with("⚠")).count() >= 3
    })
    .await;
    app.settle().await;
    let notes: Vec<String> = customer_messages(&app.contacts()[0])
        .into_iter()
        .filter(|t| t.starts_with("⚠"))
        .collect();
    assert!(
        notes[0].contains("a photo") && notes[0].contains("not an allowed X media host"),
        "{}",
        notes[0]
    );
    assert!(
        notes[1].contains("a video") && notes[1].contains("25.0 MB"),
        "{}",
        notes[1]
    );
    assert!(
        notes[2].contains("a video") && notes[2].to_lowercase().contains("refused"),
        "{}",
        notes[2]
    );
    assert!(
        !app.sandbox.media_requests()[before..]
            .iter()
            .any(|r| r.path.contains("elsewhere")),
        "the off-list URL was never fetched"
    );
    assert!(
        attachments_of(&app).iter().all(|a| !a.completed),
        "nothing was attached"
    );
    // X got its 200 every time (no error response for what Connect would not take)
    assert!(
        app.sandbox
            .webhook_deliveries()
            .iter()
            .all(|d| d.status == Some(200))
    );
    app.stop().await;
}

#[tokio::test]
async fn agent_files_reach_x_as_media_and_documents_as_a_sentence_without_any_url() {
    let app = spawn_app().await;
    let chat = app.open_chat("can you send the picture?").await;
    app.sandbox
        .agent_accept(&chat.contact_id, "Enrique")
        .unwrap();
    let png = app.sandbox.add_file(MediaFile::generated(
        "Screenshot.png",
        "image/png",
        300_000,
        21,
    ));
    let mp4 = app.sandbox.add_file(MediaFile::generated(
        "howto.mp4",
        "video/mp4",
        3 * 1024 * 1024 + 17,
        22,
    ));
    let pdf = app.sandbox.add_file(MediaFile::generated(
        "invoice.pdf",
        "application/pdf",
        50_000,
        23,
    ));
    app.sandbox
        .agent_send_attachment(
            &chat.contact_id,
            "Screenshot.png",
            "image/png",
            &png.file_id,
        )
        .unwrap();
    app.sandbox
        .agent_send_attachment(&chat.contact_id, "howto.mp4", "video/mp4", &mp4.file_id)
        .unwrap();
    app.sandbox
        .agent_send_attachment(
            &chat.contact_id,
            "invoice.pdf",
            "application/pdf",
            &pdf.file_id,
        )
        .unwrap();
    app.sandbox
        .agent_send_attachment_with(
            &chat.contact_id,
            AgentAttachment {
                name: "scanning.png".into(),
                content_type: Some("image/png".into()),
                file_id: png.file_id.clone(),
                status: ArtifactStatus::InProgress,
            },
        )
        .unwrap();
    app.sandbox
        .wait_until("3 DMs", WAIT, |s| (s.sent_dms().len() >= 3).then_some(()))
        .await
        .unwrap();
    app.settle().await;

    let dms = app.sandbox.sent_dms();
    assert_eq!(dms.len(), 3, "{dms:?}");
    let image = dms
        .iter()
        .find_map(|d| d.media.clone().filter(|m| m.media_type == "image/png"))
        .unwrap();
    assert_eq!(image.category.as_str(), "dm_image");
    assert_eq!(image.sha256, png.sha256);
    let video = dms
        .iter()
        .find_map(|d| d.media.clone().filter(|m| m.media_type == "video/mp4"))
        .unwrap();
    assert_eq!(video.category.as_str(), "dm_video");
    assert_eq!(video.sha256, mp4.sha256);
    let upload = app.sandbox.media_upload(&video.media_id).unwrap();
    assert!(
        upload.segments >= 4,
        "chunked append: {} segments",
        upload.segments
    );
    assert!(upload.status_polls >= 1, "STATUS polled");
    assert_eq!(upload.early_polls, 0, "check_after_secs honoured");
    let texts: Vec<String> = dms.iter().filter_map(|d| d.text.clone()).collect();
    assert_eq!(
        texts,
        vec!["The agent sent a document (invoice.pdf) that can't be delivered over X DM."]
    );
    assert!(
        texts.iter().all(|t| !t.contains("http")),
        "no URL in any DM"
    );
    let agent_view = customer_messages(&app.contacts()[0]).join("\n");
    assert!(
        agent_view.contains("invoice.pdf was not delivered"),
        "{agent_view}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_put_missing_one_required_header_is_refused_by_the_sandbox() {
    let app = spawn_app().await;
    let chat = app.open_chat("hi").await;
    // the bridge's own upload carries every header
    let photo = app
        .sandbox
        .add_file(MediaFile::bytes("p.jpg", "image/jpeg", vec![5; 1000]));
    app.dm_spec(DmSpec {
        media: Some(MediaSpec::photo(&photo.file_id)),
        ..DmSpec::text(CUSTOMER, "")
    })
    .await;
    app.sandbox
        .wait_until("the attachment", WAIT, |_| {
            attachments_of(&app).into_iter().find(|a| a.completed)
        })
        .await
        .unwrap();
    assert!(
        app.sandbox
            .s3_requests()
            .iter()
            .all(|r| r.missing_headers.is_empty() && r.status < 300)
    );

    // the same protocol with one header left out
    let token = app.bridge_connection_token(&chat.initial_contact_id).await;
    let start: serde_json::Value = app
        .http
        .post(format!("{}/participant/start-attachment-upload", app.sandbox.base_url()))
        .header("x-amz-bearer", token)
        .json(&serde_json::json!({"ContentType":"image/jpeg","AttachmentSizeInBytes":3,"AttachmentName":"x.jpg","ClientToken":"t-1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = start["UploadMetadata"]["Url"].as_str().unwrap();
    let headers = start["UploadMetadata"]["HeadersToInclude"]
        .as_object()
        .unwrap();
    for skip in headers.keys() {
        let mut put = app.http.put(url).body(vec![1u8, 2, 3]);
        for (k, v) in headers {
            if k != skip && !k.eq_ignore_ascii_case("content-length") {
                put = put.header(k, v.as_str().unwrap());
            }
        }
        let res = put.send().await.unwrap();
        if skip.eq_ignore_ascii_case("content-length") {
            continue; // reqwest sets it from the body anyway
        }
        assert_eq!(res.status(), 403, "missing {skip}");
        assert!(res.text().await.unwrap().contains("SignatureDoesNotMatch"));
    }
    app.stop().await;
}
