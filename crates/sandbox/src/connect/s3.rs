//! The "S3" side of chat attachments (docs/protocols.md B2, B3): the pre-signed URLs that
//! StartAttachmentUpload and GetAttachment hand out, and the `PUT`/`GET /s3/…` routes on this
//! listener that honour them. A URL is good only for the path and method it was signed for and
//! until it expires; a PUT lacking or altering any `HeadersToInclude` header is refused with S3's
//! `403 SignatureDoesNotMatch`; errors are S3's XML; bodies are hashed as they stream and never
//! held whole; every request is recorded as an [`S3RequestRecord`].

use std::sync::Arc;

use axum::Router;
use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use time::{Duration, OffsetDateTime};

use crate::clock;
use crate::connect::model::S3RequestRecord;
use crate::connect::state::{Attachment, Chat, ConnectState, Presigned, Uploaded};
use crate::events::SandboxEvent;
use crate::faults::{self, FaultOp};
use crate::ids;
use crate::media::files::{FileOrigin, HashSink, StoredFile};
use crate::media::stream::{BodyError, drain_body, file_response, hash_body};
use crate::state::Shared;
use crate::sync::lock;

/// RFC 3986 unreserved characters stay as they are in S3 keys.
const KEY_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Characters escaped in the `filename="…"` of Content-Disposition (non-ASCII, quotes, controls).
const DISPOSITION: &AsciiSet = &percent_encoding::CONTROLS.add(b'"').add(b'\\').add(b'%');

/// A refused PUT reads (and drops) at most this much of the body before answering.
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/s3/{*key}", put(s3_put).get(s3_get))
}

pub(crate) fn s3_path(shared: &Shared, chat: &Chat, attachment_id: &str, name: &str) -> String {
    format!(
        "/s3/amazon-connect-{}-attachments/connect/sandbox/Attachments/chat/{}/{attachment_id}_{}",
        shared.cfg.connect.account_id,
        chat.initial_contact_id,
        utf8_percent_encode(name, KEY_SEGMENT)
    )
}

/// `Content-Disposition` of an attachment named `name`, as signed for its PUT and served on its GET.
pub(crate) fn content_disposition(name: &str) -> String {
    format!(
        "attachment; filename=\"{}\"",
        utf8_percent_encode(name, DISPOSITION)
    )
}

/// A pre-signed URL for `method` on `attachment`, valid `secs` seconds: `(url, expiry)`.
pub(crate) fn presign(
    shared: &Shared,
    cs: &mut ConnectState,
    attachment: &Attachment,
    method: Method,
    secs: i64,
) -> (String, OffsetDateTime) {
    let now = clock::now();
    let expires_at = now + Duration::seconds(secs);
    let signature = ids::hex_token(2);
    let date = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let signed_headers = if method == Method::PUT {
        let mut names: Vec<String> = attachment
            .headers
            .iter()
            .map(|(k, _)| k.to_ascii_lowercase())
            .chain(std::iter::once("host".to_owned()))
            .collect();
        names.sort();
        names.join(";")
    } else {
        "host".to_owned()
    };
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("X-Amz-Algorithm", "AWS4-HMAC-SHA256")
        .append_pair(
            "X-Amz-Credential",
            &format!(
                "ASIASANDBOXATTACHMENTS/{}/{}/s3/aws4_request",
                &date[..8],
                shared.cfg.connect.region
            ),
        )
        .append_pair("X-Amz-Date", &date)
        .append_pair("X-Amz-Expires", &secs.to_string())
        .append_pair("X-Amz-SignedHeaders", &signed_headers)
        .append_pair("X-Amz-Signature", &signature)
        .finish();
    cs.presigned.insert(
        signature,
        Presigned {
            attachment_id: attachment.id.clone(),
            method,
            expires_at,
        },
    );
    (
        format!("{}{}?{query}", shared.base_url, attachment.s3_path),
        expires_at,
    )
}

fn s3_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{}</RequestId><HostId>{}</HostId></Error>",
        ids::hex_token(1).to_ascii_uppercase(),
        ids::short_code(3)
    );
    (status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your key and signing method.";

/// A refusal of a pre-signed request, with the attachment it named (if any).
type Refused = Box<(Option<String>, Refusal)>;

/// A refusal: the response and what to record.
struct Refusal {
    status: StatusCode,
    code: String,
    message: String,
    rejection: String,
    missing: Vec<String>,
    mismatched: Vec<String>,
}

impl Refusal {
    fn new(status: StatusCode, code: &str, message: &str, rejection: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.to_owned(),
            rejection: rejection.into(),
            missing: Vec::new(),
            mismatched: Vec::new(),
        }
    }

    fn signature(rejection: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            SIGNATURE_MISMATCH,
            rejection,
        )
    }
}

fn query_signature(uri: &Uri) -> Option<String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "X-Amz-Signature")
        .map(|(_, v)| v.into_owned())
}

/// The attachment a pre-signed request is for, checked: signature known for this path and
/// method, not expired.
fn authorise(cs: &ConnectState, method: &Method, uri: &Uri) -> Result<Attachment, Refused> {
    let Some(signature) = query_signature(uri) else {
        return Err(Box::new((
            None,
            Refusal::new(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "Access Denied",
                "no X-Amz-Signature in the query",
            ),
        )));
    };
    let Some(presigned) = cs.presigned.get(&signature) else {
        return Err(Box::new((
            None,
            Refusal::signature("X-Amz-Signature is not one the sandbox handed out"),
        )));
    };
    let attachment = cs
        .attachment(&presigned.attachment_id)
        .map(|(_, a)| a.clone());
    let id = Some(presigned.attachment_id.clone());
    let Some(attachment) = attachment.filter(|a| a.s3_path == uri.path()) else {
        return Err(Box::new((
            id,
            Refusal::signature("the path is not the one the URL was signed for"),
        )));
    };
    if presigned.method != method {
        return Err(Box::new((
            id,
            Refusal::signature(format!(
                "the URL was signed for {}, not {method}",
                presigned.method
            )),
        )));
    }
    if presigned.expires_at <= clock::now() {
        return Err(Box::new((
            id,
            Refusal::new(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "Request has expired",
                "the pre-signed URL has expired",
            ),
        )));
    }
    Ok(attachment)
}

/// Which `HeadersToInclude` headers are missing or differ.
fn compare_headers(expected: &[(String, String)], got: &HeaderMap) -> (Vec<String>, Vec<String>) {
    let mut missing = Vec::new();
    let mut mismatched = Vec::new();
    for (name, value) in expected {
        match got.get(name.as_str()) {
            None => missing.push(name.clone()),
            Some(v) if v.as_bytes() != value.as_bytes() => mismatched.push(name.clone()),
            Some(_) => {}
        }
    }
    (missing, mismatched)
}

struct S3Outcome {
    attachment_id: Option<String>,
    status: u16,
    refusal: Option<Refusal>,
    size: Option<u64>,
    sha256: Option<String>,
}

fn record_s3(shared: &Shared, method: &Method, path: &str, outcome: S3Outcome) -> Option<Response> {
    let (code, rejection, missing, mismatched) = match &outcome.refusal {
        Some(r) => (
            Some(r.code.clone()),
            Some(r.rejection.clone()),
            r.missing.clone(),
            r.mismatched.clone(),
        ),
        None => (None, None, Vec::new(), Vec::new()),
    };
    if let Some(why) = &rejection {
        tracing::info!(%method, %path, status = outcome.status, reason = %why, "S3 request refused");
    }
    let event = if *method == Method::PUT {
        SandboxEvent::AttachmentPut {
            attachment_id: outcome.attachment_id.clone(),
            status: outcome.status,
            rejection: rejection.clone(),
            size: outcome.size,
            sha256: outcome.sha256.clone(),
        }
    } else {
        SandboxEvent::AttachmentDownload {
            attachment_id: outcome.attachment_id.clone(),
            status: outcome.status,
        }
    };
    lock(&shared.connect).s3_requests.push(S3RequestRecord {
        method: method.to_string(),
        path: path.to_owned(),
        attachment_id: outcome.attachment_id,
        status: outcome.status,
        code,
        rejection,
        missing_headers: missing,
        mismatched_headers: mismatched,
        size: outcome.size,
        sha256: outcome.sha256,
        at: clock::now_iso_ms(),
    });
    shared.events.emit(event);
    outcome
        .refusal
        .map(|r| s3_error(r.status, &r.code, &r.message))
}

/// An injected fault on an S3 operation: `Some(refusal)` when it fails the call.
async fn s3_fault(shared: &Shared, op: FaultOp) -> Option<Refusal> {
    let injected = faults::gate(shared, op).await?;
    let status = injected.status();
    let fault = &injected.fault;
    let code = fault.code.clone().unwrap_or_else(|| {
        match status.as_u16() {
            400 => "BadRequest",
            403 => "AccessDenied",
            404 => "NoSuchKey",
            503 => "SlowDown",
            _ => "InternalError",
        }
        .to_owned()
    });
    let message = fault
        .message
        .clone()
        .unwrap_or_else(|| format!("Injected fault: {code}"));
    Some(Refusal::new(status, &code, &message, injected.rejection()))
}

async fn s3_put(
    State(shared): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let method = parts.method.clone();
    let path = uri.path().to_owned();
    faults::note_call(FaultOp::AttachmentPut);
    let refuse = |shared: &Shared, id: Option<String>, refusal: Refusal| {
        let outcome = S3Outcome {
            attachment_id: id,
            status: refusal.status.as_u16(),
            refusal: Some(refusal),
            size: None,
            sha256: None,
        };
        record_s3(shared, &method, &path, outcome)
            .unwrap_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    };
    let checked = authorise(&lock(&shared.connect), &method, &uri);
    let attachment = match checked {
        Ok(a) => a,
        Err(refused) => {
            let (id, refusal) = *refused;
            drain_body(body, DRAIN_LIMIT).await;
            return refuse(&shared, id, refusal);
        }
    };
    let id = Some(attachment.id.clone());
    if let Some(refusal) = s3_fault(&shared, FaultOp::AttachmentPut).await {
        drain_body(body, DRAIN_LIMIT).await;
        return refuse(&shared, id, refusal);
    }
    if attachment.completed {
        drain_body(body, DRAIN_LIMIT).await;
        return refuse(
            &shared,
            id,
            Refusal::new(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "Access Denied",
                "the attachment was already completed",
            ),
        );
    }
    let (missing, mismatched) = compare_headers(&attachment.headers, &parts.headers);
    if !missing.is_empty() || !mismatched.is_empty() {
        drain_body(body, DRAIN_LIMIT).await;
        let mut why = Vec::new();
        if !missing.is_empty() {
            why.push(format!("missing {}", missing.join(", ")));
        }
        if !mismatched.is_empty() {
            why.push(format!("altered {}", mismatched.join(", ")));
        }
        let mut refusal = Refusal::signature(format!(
            "HeadersToInclude not sent verbatim: {}",
            why.join("; ")
        ));
        refusal.missing = missing;
        refusal.mismatched = mismatched;
        return refuse(&shared, id, refusal);
    }
    let mut sink = HashSink::new(shared.cfg.media.keep_bytes_up_to);
    let declared = attachment.declared_size;
    if let Err(e) = hash_body(body, &mut sink, declared).await {
        let why = match e {
            BodyError::TooLarge { limit } => format!("more than Content-Length ({limit}) bytes"),
            BodyError::Broken(why) => format!("the body broke off: {why}"),
        };
        return refuse(
            &shared,
            id,
            Refusal::new(
                StatusCode::BAD_REQUEST,
                "IncompleteBody",
                "You did not provide the number of bytes specified by the Content-Length HTTP header",
                why,
            ),
        );
    }
    if sink.len() != declared {
        let got = sink.len();
        return refuse(
            &shared,
            id,
            Refusal::new(
                StatusCode::BAD_REQUEST,
                "IncompleteBody",
                "You did not provide the number of bytes specified by the Content-Length HTTP header",
                format!("{got} bytes received, {declared} declared"),
            ),
        );
    }
    let hashed = sink.finish();
    let file = lock(&shared.media).store_upload(
        &attachment.name,
        &attachment.content_type,
        hashed,
        FileOrigin::ConnectUpload {
            attachment_id: attachment.id.clone(),
        },
    );
    if let Some((_, a)) = lock(&shared.connect).attachment_mut(&attachment.id) {
        a.upload = Some(Uploaded {
            file_id: file.file_id.clone(),
            size: file.size,
            sha256: file.sha256.clone(),
        });
    }
    tracing::info!(attachment_id = %attachment.id, size = file.size, sha256 = %file.sha256, "attachment uploaded");
    let outcome = S3Outcome {
        attachment_id: id,
        status: 200,
        refusal: None,
        size: Some(file.size),
        sha256: Some(file.sha256.clone()),
    };
    record_s3(&shared, &method, &path, outcome);
    let mut response = StatusCode::OK.into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", &file.sha256[..32])) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

async fn s3_get(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let path = uri.path().to_owned();
    // HEAD is answered like GET (axum drops the body).
    let as_get = if method == Method::HEAD {
        Method::GET
    } else {
        method.clone()
    };
    faults::note_call(FaultOp::AttachmentGet);
    let checked = authorise(&lock(&shared.connect), &as_get, &uri);
    let refused = |id: Option<String>, refusal: Refusal| {
        let outcome = S3Outcome {
            attachment_id: id,
            status: refusal.status.as_u16(),
            refusal: Some(refusal),
            size: None,
            sha256: None,
        };
        record_s3(&shared, &method, &path, outcome)
            .unwrap_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    };
    let attachment = match checked {
        Ok(a) => a,
        Err(boxed) => {
            let (id, refusal) = *boxed;
            return refused(id, refusal);
        }
    };
    let id = Some(attachment.id.clone());
    if let Some(refusal) = s3_fault(&shared, FaultOp::AttachmentGet).await {
        return refused(id, refusal);
    }
    let file: Option<StoredFile> = attachment
        .upload
        .as_ref()
        .and_then(|u| lock(&shared.media).get(&u.file_id).cloned());
    let Some(mut file) = file.filter(|f| f.info.retained) else {
        return refused(
            id,
            Refusal::new(
                StatusCode::NOT_FOUND,
                "NoSuchKey",
                "The specified key does not exist.",
                "the sandbox kept only the size and hash of this attachment",
            ),
        );
    };
    file.info.content_type = attachment.content_type.clone();
    let disposition = content_disposition(&attachment.name);
    let response = file_response(&file, Some(&disposition));
    let outcome = S3Outcome {
        attachment_id: id,
        status: response.status().as_u16(),
        refusal: None,
        size: Some(file.info.size),
        sha256: None,
    };
    record_s3(&shared, &method, &path, outcome);
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn header_comparison_names_what_is_missing_or_altered() {
        let expected = vec![
            (
                "x-amz-acl".to_owned(),
                "bucket-owner-full-control".to_owned(),
            ),
            ("Content-Type".to_owned(), "image/png".to_owned()),
            ("Content-Length".to_owned(), "9".to_owned()),
        ];
        let mut got = HeaderMap::new();
        got.insert("content-type", HeaderValue::from_static("image/jpeg"));
        got.insert("content-length", HeaderValue::from_static("9"));
        let (missing, mismatched) = compare_headers(&expected, &got);
        assert_eq!(missing, vec!["x-amz-acl"]);
        assert_eq!(mismatched, vec!["Content-Type"]);
    }
}
