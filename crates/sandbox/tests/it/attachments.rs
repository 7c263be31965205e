//! Connect chat attachments: StartAttachmentUpload → PUT with every HeadersToInclude header →
//! CompleteAttachmentUpload → ATTACHMENT items (streamed), GetAttachment → download; refusals.

use aws_sdk_connectparticipant::Client;
use aws_sdk_connectparticipant::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_connectparticipant::error::ProvideErrorMetadata;
use reqwest::Method;
use serde_json::{Value, json};
use xdm_sandbox::{
    AgentAttachment, ArtifactStatus, AttachmentScan, Fault, FaultOp, ItemType, MediaFile,
    ParticipantRole, SandboxHandle, ScanVerdict, generated_bytes, generated_sha256, sha256_hex,
};

use crate::support::{
    Receiver, WAIT, connect_call, connect_customer, http, participant_call, sandbox, start_chat,
};

/// A chat whose customer is connected: (ContactId, ConnectionToken).
async fn live_chat(sb: &SandboxHandle) -> (String, String) {
    let (contact_id, participant_token) = start_chat(sb, "I have a photo").await;
    let token = connect_customer(sb, &participant_token).await;
    (contact_id, token)
}

async fn start_upload(
    sb: &SandboxHandle,
    token: &str,
    name: &str,
    content_type: &str,
    size: u64,
) -> (u16, Value) {
    let (status, _, body) = participant_call(
        sb,
        "/participant/start-attachment-upload",
        token,
        json!({"ContentType": content_type, "AttachmentSizeInBytes": size,
               "AttachmentName": name, "ClientToken": uuid::Uuid::new_v4().to_string()}),
    )
    .await;
    (status, body)
}

/// PUTs `bytes` to the upload URL with the HeadersToInclude, minus `skip`, with `alter` changed.
async fn put(
    upload: &Value,
    bytes: Vec<u8>,
    skip: Option<&str>,
    alter: Option<(&str, &str)>,
) -> reqwest::Response {
    let meta = &upload["UploadMetadata"];
    let mut req = http().put(meta["Url"].as_str().unwrap());
    for (name, value) in meta["HeadersToInclude"].as_object().unwrap() {
        if Some(name.as_str()) == skip {
            continue;
        }
        let value = match alter {
            Some((n, v)) if n == name => v,
            _ => value.as_str().unwrap(),
        };
        req = req.header(name, value);
    }
    if skip == Some("Content-Length") {
        // Without Content-Length the body goes chunked.
        let stream = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(bytes)]);
        req = req.body(reqwest::Body::wrap_stream(stream));
    } else {
        req = req.body(bytes);
    }
    req.send().await.unwrap()
}

async fn complete(sb: &SandboxHandle, token: &str, attachment_id: &str) -> (u16, Value) {
    let (status, _, body) = participant_call(
        sb,
        "/participant/complete-attachment-upload",
        token,
        json!({"AttachmentIds": [attachment_id], "ClientToken": uuid::Uuid::new_v4().to_string()}),
    )
    .await;
    (status, body)
}

async fn get_attachment(sb: &SandboxHandle, token: &str, attachment_id: &str) -> (u16, Value) {
    let (status, _, body) = participant_call(
        sb,
        "/participant/attachment",
        token,
        json!({"AttachmentId": attachment_id, "UrlExpiryInSeconds": 60}),
    )
    .await;
    (status, body)
}

async fn transcript(sb: &SandboxHandle, token: &str) -> Vec<Value> {
    let (status, _, body) = participant_call(
        sb,
        "/participant/transcript",
        token,
        json!({"ScanDirection": "FORWARD", "MaxResults": 100}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["Transcript"].as_array().unwrap().clone()
}

#[tokio::test]
async fn customer_attachment_round_trip_is_streamed_and_hashed() {
    let sb = sandbox().await;
    let rx = Receiver::for_sandbox(&sb).await;
    let sub = sb.subscribe(&rx.sns_url()).await.unwrap();
    sb.wait_confirmed(&sub.subscription_arn, WAIT)
        .await
        .unwrap();
    let (contact_id, participant_token) = start_chat(&sb, "I have a photo").await;
    let (status, _, body) = connect_call(
        &sb,
        Method::POST,
        "/contact/start-streaming",
        json!({"InstanceId": sb.config().connect.instance_id, "ContactId": contact_id,
               "ChatStreamingConfiguration": {"StreamingEndpointArn": sb.sns_topic_arn()},
               "ClientToken": "s1"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = connect_customer(&sb, &participant_token).await;

    let png = generated_bytes(9_000, 3);
    let request = json!({"ContentType": "image/png", "AttachmentSizeInBytes": 9_000,
                         "AttachmentName": "receipt.png", "ClientToken": "c-1"});
    let (status, _, upload) = participant_call(
        &sb,
        "/participant/start-attachment-upload",
        &token,
        request.clone(),
    )
    .await;
    assert_eq!(status, 200, "{upload}");
    let (_, _, again) =
        participant_call(&sb, "/participant/start-attachment-upload", &token, request).await;
    assert_eq!(again, upload, "ClientToken idempotency");
    let attachment_id = upload["AttachmentId"].as_str().unwrap().to_owned();
    let headers = upload["UploadMetadata"]["HeadersToInclude"]
        .as_object()
        .unwrap();
    assert_eq!(headers.len(), 8);
    assert_eq!(headers["x-amz-meta-contact_id"], contact_id.as_str());
    assert_eq!(
        headers["x-amz-meta-initial_contact_id"],
        contact_id.as_str()
    );
    assert_eq!(headers["x-amz-acl"], "bucket-owner-full-control");
    assert_eq!(
        headers["Content-Disposition"],
        "attachment; filename=\"receipt.png\""
    );
    assert_eq!(headers["Content-Length"], "9000");
    assert_eq!(headers["Content-Type"], "image/png");
    for key in ["x-amz-meta-account_id", "x-amz-meta-organization_id"] {
        assert!(headers.contains_key(key), "{key}");
    }
    assert!(
        upload["UploadMetadata"]["UrlExpiry"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    let (status, body) = complete(&sb, &token, &attachment_id).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (409, Some("ConflictException"))
    );

    let resp = put(&upload, png.clone(), None, None).await;
    assert_eq!(resp.status(), 200);
    let view = sb.attachment(&attachment_id).unwrap();
    assert!(view.uploaded && !view.completed);
    assert_eq!(view.sha256.as_deref(), Some(sha256_hex(&png).as_str()));

    let (status, body) = complete(&sb, &token, &attachment_id).await;
    assert_eq!((status, body.clone()), (200, json!({})), "{body}");
    let contact = sb.contact(&contact_id).unwrap();
    let attachment = &contact.attachments[0];
    assert_eq!(attachment.role, ParticipantRole::Customer);
    assert_eq!(attachment.status, Some(ArtifactStatus::Approved));
    assert_eq!(
        (attachment.size, attachment.name.as_str()),
        (Some(9_000), "receipt.png")
    );
    let item = contact.transcript.last().unwrap();
    assert_eq!(item.item.item_type, ItemType::Attachment);

    // The streamed item: the real ATTACHMENT shape (no top-level ContentType).
    let streamed = sb
        .wait_until("the ATTACHMENT notification", WAIT, |_| {
            rx.streamed_items()
                .into_iter()
                .find(|i| i["Type"] == "ATTACHMENT")
        })
        .await
        .unwrap();
    assert_eq!(
        streamed["Attachments"],
        json!([{"ContentType": "image/png", "AttachmentId": attachment_id,
                "AttachmentName": "receipt.png", "Status": "APPROVED"}])
    );
    assert!(streamed.get("ContentType").is_none());
    assert_eq!(streamed["ParticipantRole"], "CUSTOMER");
    let items = transcript(&sb, &token).await;
    assert!(items.iter().any(|i| i["Type"] == "ATTACHMENT"));

    // Downloadable once approved.
    let (status, got) = get_attachment(&sb, &token, &attachment_id).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["AttachmentSizeInBytes"], 9_000);
    let resp = http()
        .get(got["Url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(resp.headers()["content-length"], "9000");
    assert_eq!(resp.bytes().await.unwrap().to_vec(), png);
    let kinds: Vec<(String, u16)> = sb
        .s3_requests()
        .into_iter()
        .map(|r| (r.method, r.status))
        .collect();
    assert_eq!(kinds, vec![("PUT".into(), 200), ("GET".into(), 200)]);
}

#[tokio::test]
async fn a_put_without_any_one_header_is_signature_does_not_match() {
    let sb = sandbox().await;
    let (_, token) = live_chat(&sb).await;
    let bytes = b"hello txt".to_vec();
    let (status, upload) = start_upload(&sb, &token, "note.txt", "text/plain", 9).await;
    assert_eq!(status, 200, "{upload}");
    let names: Vec<String> = upload["UploadMetadata"]["HeadersToInclude"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    for name in &names {
        let resp = put(&upload, bytes.clone(), Some(name), None).await;
        assert_eq!(resp.status(), 403, "without {name}");
        let xml = resp.text().await.unwrap();
        assert!(xml.contains("<Code>SignatureDoesNotMatch</Code>"), "{xml}");
        let record = sb.s3_requests().pop().unwrap();
        assert_eq!(record.missing_headers, vec![name.clone()], "{record:?}");
        assert_eq!(record.code.as_deref(), Some("SignatureDoesNotMatch"));
    }
    let resp = put(
        &upload,
        bytes.clone(),
        None,
        Some(("Content-Type", "text/html")),
    )
    .await;
    assert_eq!(resp.status(), 403);
    assert_eq!(
        sb.s3_requests().pop().unwrap().mismatched_headers,
        vec!["Content-Type"]
    );
    // A tampered signature.
    let mut tampered = upload.clone();
    let url = tampered["UploadMetadata"]["Url"]
        .as_str()
        .unwrap()
        .to_owned();
    tampered["UploadMetadata"]["Url"] = json!(format!("{url}0"));
    assert_eq!(
        put(&tampered, bytes.clone(), None, None).await.status(),
        403
    );
    let attachment_id = upload["AttachmentId"].as_str().unwrap();
    assert!(!sb.attachment(attachment_id).unwrap().uploaded);
    // Everything verbatim: accepted.
    assert_eq!(put(&upload, bytes, None, None).await.status(), 200);
    assert_eq!(complete(&sb, &token, attachment_id).await.0, 200);
}

#[tokio::test]
async fn start_attachment_upload_refuses_types_sizes_and_the_36th() {
    let sb = sandbox().await;
    let (_, token) = live_chat(&sb).await;
    for (name, content_type, size) in [
        ("cat.gif", "image/gif", 100),
        ("a.zip", "application/zip", 100),
        ("big.pdf", "application/pdf", 20 * 1024 * 1024 + 1),
        ("", "application/pdf", 100),
        ("empty.pdf", "application/pdf", 0),
    ] {
        let (status, body) = start_upload(&sb, &token, name, content_type, size).await;
        assert_eq!(
            (status, body["__type"].as_str()),
            (400, Some("ValidationException")),
            "{name} {content_type} {size}: {body}"
        );
    }
    assert_eq!(
        start_upload(&sb, &token, "v.mp4", "video/mp4", 20 * 1024 * 1024)
            .await
            .0,
        200
    );
    for i in 1..35 {
        let (status, body) =
            start_upload(&sb, &token, &format!("f{i}.pdf"), "application/pdf", 10).await;
        assert_eq!(status, 200, "attachment {}: {body}", i + 1);
    }
    let (status, body) = start_upload(&sb, &token, "f36.pdf", "application/pdf", 10).await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(body["__type"], "ServiceQuotaExceededException");
}

#[tokio::test]
async fn scans_can_take_time_or_reject() {
    let sb = sandbox().await;
    let (contact_id, token) = live_chat(&sb).await;
    sb.set_attachment_scan(AttachmentScan {
        delay_ms: 300,
        verdict: ScanVerdict::Approved,
    });
    let (_, upload) = start_upload(&sb, &token, "a.pdf", "application/pdf", 4).await;
    let id = upload["AttachmentId"].as_str().unwrap().to_owned();
    assert_eq!(
        put(&upload, b"%PDF".to_vec(), None, None).await.status(),
        200
    );
    assert_eq!(complete(&sb, &token, &id).await.0, 200);
    let (status, body) = get_attachment(&sb, &token, &id).await;
    assert_eq!(status, 400, "still scanning: {body}");
    let statuses = sb
        .wait_until("the verdict", WAIT, |h| {
            let items: Vec<String> = h
                .contact(&contact_id)?
                .transcript
                .iter()
                .filter_map(|i| i.item.attachments.as_ref())
                .map(|a| a[0].status.as_str().to_owned())
                .collect();
            (items.len() == 2).then_some(items)
        })
        .await
        .unwrap();
    assert_eq!(statuses, vec!["IN_PROGRESS", "APPROVED"]);
    assert_eq!(get_attachment(&sb, &token, &id).await.0, 200);

    sb.set_attachment_scan(AttachmentScan {
        delay_ms: 0,
        verdict: ScanVerdict::Rejected,
    });
    let (_, upload) = start_upload(&sb, &token, "b.pdf", "application/pdf", 4).await;
    let id = upload["AttachmentId"].as_str().unwrap().to_owned();
    assert_eq!(
        put(&upload, b"%PDF".to_vec(), None, None).await.status(),
        200
    );
    assert_eq!(complete(&sb, &token, &id).await.0, 200);
    assert_eq!(
        sb.attachment(&id).unwrap().status,
        Some(ArtifactStatus::Rejected)
    );
    let (status, body) = get_attachment(&sb, &token, &id).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("REJECTED"));
}

#[tokio::test]
async fn agent_attachments_download_with_the_customer_token() {
    let sb = sandbox().await;
    let (contact_id, token) = live_chat(&sb).await;
    let file = sb.add_file(MediaFile::generated(
        "statement.pdf",
        "application/pdf",
        150_000,
        8,
    ));
    assert!(
        sb.agent_send_attachment(
            &contact_id,
            "statement.pdf",
            "application/pdf",
            &file.file_id
        )
        .is_err(),
        "no agent yet"
    );
    sb.agent_accept(&contact_id, "Enrique").unwrap();
    let item = sb
        .agent_send_attachment(
            &contact_id,
            "statement.pdf",
            "application/pdf",
            &file.file_id,
        )
        .unwrap();
    assert_eq!(item.item.participant_role, Some(ParticipantRole::Agent));
    let attachment = &item.item.attachments.as_ref().unwrap()[0];
    assert_eq!(attachment.status, ArtifactStatus::Approved);
    let id = attachment.attachment_id.clone();

    let (status, _, body) = participant_call(
        &sb,
        "/participant/attachment",
        &token,
        json!({"AttachmentId": id, "UrlExpiryInSeconds": 301}),
    )
    .await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("ValidationException"))
    );
    let (status, got) = get_attachment(&sb, &token, &id).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["AttachmentSizeInBytes"], 150_000);
    let url = got["Url"].as_str().unwrap();
    let resp = http().get(url).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("statement.pdf")
    );
    assert_eq!(
        sha256_hex(&resp.bytes().await.unwrap()),
        generated_sha256(150_000, 8)
    );
    // Another signature is refused; faults answer as S3.
    let resp = http().get(format!("{url}f")).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    sb.fail_next(FaultOp::AttachmentGet, 1, Fault::status(503));
    let resp = http().get(url).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    assert!(resp.text().await.unwrap().contains("<Code>SlowDown</Code>"));

    // A REJECTED agent attachment is not downloadable.
    let item = sb
        .agent_send_attachment_with(
            &contact_id,
            AgentAttachment {
                name: "virus.pdf".into(),
                content_type: None,
                file_id: file.file_id.clone(),
                status: ArtifactStatus::Rejected,
            },
        )
        .unwrap();
    let rejected = &item.item.attachments.as_ref().unwrap()[0].attachment_id;
    assert_eq!(get_attachment(&sb, &token, rejected).await.0, 400);
}

#[tokio::test]
async fn the_official_sdk_drives_attachments() {
    let sb = sandbox().await;
    let (_, participant_token) = start_chat(&sb, "hi").await;
    let token = connect_customer(&sb, &participant_token).await;
    let client = Client::from_conf(
        aws_sdk_connectparticipant::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(sb.config().connect.region.clone()))
            .endpoint_url(sb.base_url())
            .credentials_provider(Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                None,
                None,
                "test",
            ))
            .build(),
    );
    let bytes = b"a,b\n1,2\n".to_vec();
    let started = client
        .start_attachment_upload()
        .connection_token(&token)
        .content_type("text/csv")
        .attachment_size_in_bytes(bytes.len() as i64)
        .attachment_name("data.csv")
        .send()
        .await
        .unwrap();
    let id = started.attachment_id().unwrap().to_owned();
    let meta = started.upload_metadata().unwrap();
    let mut req = http().put(meta.url().unwrap());
    for (k, v) in meta.headers_to_include().unwrap() {
        req = req.header(k, v);
    }
    assert_eq!(req.body(bytes.clone()).send().await.unwrap().status(), 200);
    client
        .complete_attachment_upload()
        .connection_token(&token)
        .attachment_ids(&id)
        .send()
        .await
        .unwrap();
    let got = client
        .get_attachment()
        .connection_token(&token)
        .attachment_id(&id)
        .url_expiry_in_seconds(30)
        .send()
        .await
        .unwrap();
    assert_eq!(got.attachment_size_in_bytes(), bytes.len() as i64);
    let downloaded = http()
        .get(got.url().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(downloaded.to_vec(), bytes);

    // Enough for the SDK's retries of a throttled call.
    sb.fail_next(FaultOp::StartAttachmentUpload, 5, Fault::status(429));
    let err = client
        .start_attachment_upload()
        .connection_token(&token)
        .content_type("text/csv")
        .attachment_size_in_bytes(1)
        .attachment_name("x.csv")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ThrottlingException"));
    sb.clear_faults();
    let err = client
        .start_attachment_upload()
        .connection_token(&token)
        .content_type("image/gif")
        .attachment_size_in_bytes(1)
        .attachment_name("x.gif")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ValidationException"));
    // The ATTACHMENT item comes back through the SDK's transcript model.
    let transcript = client
        .get_transcript()
        .connection_token(&token)
        .max_results(100)
        .send()
        .await
        .unwrap();
    let attachment_item = transcript
        .transcript()
        .iter()
        .find(|i| i.r#type() == Some(&aws_sdk_connectparticipant::types::ChatItemType::Attachment))
        .unwrap();
    assert_eq!(
        attachment_item.attachments()[0].attachment_name(),
        Some("data.csv")
    );
}

#[tokio::test]
async fn configured_extra_headers_must_be_sent_too() {
    let mut cfg = xdm_sandbox::SandboxConfig::default();
    cfg.connect.attachment_extra_headers =
        vec![("x-amz-meta-sandbox-check".into(), "copy-me-verbatim".into())];
    let sb = crate::support::sandbox_with(cfg).await;
    let (_, token) = live_chat(&sb).await;
    let (_, upload) = start_upload(&sb, &token, "n.txt", "text/plain", 2).await;
    let headers = upload["UploadMetadata"]["HeadersToInclude"]
        .as_object()
        .unwrap();
    assert_eq!(headers.len(), 9);
    let resp = put(
        &upload,
        b"hi".to_vec(),
        Some("x-amz-meta-sandbox-check"),
        None,
    )
    .await;
    assert_eq!(resp.status(), 403);
    assert_eq!(put(&upload, b"hi".to_vec(), None, None).await.status(), 200);
}
