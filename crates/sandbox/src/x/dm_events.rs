//! The DM event lists of X API v2, as it renders DM events: `GET /2/dm_events` (every DM of the
//! user's conversations, both ways — [`list_all_dm_events`]) and
//! `GET /2/dm_conversations/with/:participant_id/dm_events`, the one-to-one conversation of the
//! business account with a participant, read back from the DMs the sandbox accepted
//! (`SandboxHandle::sent_dms`):
//!
//! * OAuth 1.0a user context only (unsigned ⇒ 401, Bearer ⇒ 403), faults under
//!   [`FaultOp::DmEvents`], rate-limit headers, recorded as [`XOp::ListDmEvents`].
//! * Newest first, `max_results` per page (1–100, default 100), `meta.result_count`, and
//!   `meta.next_token` while older events remain (passed back as `pagination_token`).
//! * `dm_event.fields` chooses the fields beyond the default `id`, `event_type` and `text`;
//!   `event_types` filters by type (only `MessageCreate` events exist here).
//! * As X does, URLs in the text are shown as t.co links, each with an `entities.urls` entry
//!   giving the URL it stands for (`expanded_url`); a DM with media carries
//!   `attachments.media_keys` and the media's t.co link at the end of its text.

use std::sync::Arc;

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::clock;
use crate::faults::FaultOp;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::auth::Accept;
use crate::x::calls::{XRequest, admit_as, admit_limited, finish, is_x_id};
use crate::x::problem::{self, XReply};
use crate::x::records::{SentDm, XOp};
use crate::x::state::RateInfo;

/// `GET /2/dm_events` looks back this far.
const LOOKBACK_MS: i64 = 30 * 24 * 60 * 60 * 1000;
/// `expansions` of `GET /2/dm_events`.
const EXPANSIONS: &[&str] = &[
    "sender_id",
    "attachments.media_keys",
    "participant_ids",
    "referenced_tweets.id",
];

/// What `dm_event.fields` may name (X API v2).
const DM_EVENT_FIELDS: &[&str] = &[
    "attachments",
    "created_at",
    "dm_conversation_id",
    "entities",
    "event_type",
    "id",
    "participant_ids",
    "referenced_tweets",
    "sender_id",
    "text",
];
const EVENT_TYPES: &[&str] = &["MessageCreate", "ParticipantsJoin", "ParticipantsLeave"];
/// Query parameters the endpoint knows (the expansions are accepted and ignored).
const KNOWN_PARAMS: &[&str] = &[
    "dm_event.fields",
    "event_types",
    "max_results",
    "pagination_token",
    "expansions",
    "media.fields",
    "user.fields",
    "tweet.fields",
];
const DEFAULT_MAX_RESULTS: usize = 100;

pub(crate) async fn list_dm_events(
    State(shared): State<Arc<Shared>>,
    Path(participant_id): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = XRequest::new(method, uri, headers);
    let reply = reply(&shared, &req, &participant_id).await;
    finish(&shared, XOp::ListDmEvents, &req, reply)
}

/// The query, checked.
struct Query {
    fields: Vec<String>,
    message_create: bool,
    max_results: usize,
    /// The id of the first event of the page.
    from: Option<u64>,
}

fn bad(parameter: &str, value: &str, message: String) -> Vec<Value> {
    vec![problem::param_error(parameter, value, message)]
}

fn parse_query(raw: &str) -> Result<Query, Vec<Value>> {
    let mut query = Query {
        fields: Vec::new(),
        message_create: true,
        max_results: DEFAULT_MAX_RESULTS,
        from: None,
    };
    for (name, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        match &*name {
            "dm_event.fields" => {
                for field in value.split(',') {
                    if !DM_EVENT_FIELDS.contains(&field) {
                        return Err(bad(
                            "dm_event.fields",
                            field,
                            format!(
                                "The `dm_event.fields` query parameter value [{field}] is not one of [{}]",
                                DM_EVENT_FIELDS.join(",")
                            ),
                        ));
                    }
                    query.fields.push(field.to_owned());
                }
            }
            "event_types" => {
                let mut types = Vec::new();
                for kind in value.split(',') {
                    if !EVENT_TYPES.contains(&kind) {
                        return Err(bad(
                            "event_types",
                            kind,
                            format!(
                                "The `event_types` query parameter value [{kind}] is not one of [{}]",
                                EVENT_TYPES.join(",")
                            ),
                        ));
                    }
                    types.push(kind);
                }
                query.message_create = types.contains(&"MessageCreate");
            }
            "max_results" => match value.parse::<usize>() {
                Ok(n) if (1..=100).contains(&n) => query.max_results = n,
                _ => {
                    return Err(bad(
                        "max_results",
                        &value,
                        format!(
                            "The `max_results` query parameter value [{value}] is not between 1 and 100"
                        ),
                    ));
                }
            },
            "pagination_token" => match decode_token(&value) {
                Some(id) => query.from = Some(id),
                None => {
                    return Err(bad(
                        "pagination_token",
                        &value,
                        format!(
                            "The `pagination_token` query parameter value [{value}] is not valid"
                        ),
                    ));
                }
            },
            other if KNOWN_PARAMS.contains(&other) => {}
            other => {
                return Err(bad(
                    other,
                    &value,
                    format!(
                        "The query parameter [{other}] is not one of [{}]",
                        KNOWN_PARAMS.join(",")
                    ),
                ));
            }
        }
    }
    Ok(query)
}

/// Page tokens: the first event's id, in base 32 (opaque to clients, like X's).
/// Where the page `query` asks for starts and ends among `ids` (newest first), or X's 400 for a
/// pagination token that names no event of the list.
fn page_bounds(
    ids: impl Iterator<Item = u64>,
    query: &Query,
    rate: RateInfo,
) -> Result<(usize, usize), XReply> {
    let ids: Vec<u64> = ids.collect();
    let start = match query.from {
        None => 0,
        Some(id) => match ids.iter().position(|e| *e == id) {
            Some(at) => at,
            None => {
                let token = encode_token(id);
                return Err(XReply::new(
                    StatusCode::BAD_REQUEST,
                    problem::invalid_request(bad(
                        "pagination_token",
                        &token,
                        format!(
                            "The `pagination_token` query parameter value [{token}] is not valid"
                        ),
                    )),
                    rate,
                )
                .rejected("unknown pagination_token"));
            }
        },
    };
    Ok((start, (start + query.max_results).min(ids.len())))
}

fn encode_token(id: u64) -> String {
    const DIGITS: &[u8; 32] = b"0123456789ABCDEFGHIJKLMNOPQRSTUV";
    let mut out = Vec::new();
    let mut n = id;
    loop {
        out.push(DIGITS[(n % 32) as usize]);
        n /= 32;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    format!("P{}", String::from_utf8_lossy(&out))
}

fn decode_token(token: &str) -> Option<u64> {
    let digits = token.strip_prefix('P').filter(|d| !d.is_empty())?;
    digits.chars().try_fold(0_u64, |n, c| {
        n.checked_mul(32)?.checked_add(u64::from(c.to_digit(32)?))
    })
}

async fn reply(shared: &Arc<Shared>, req: &XRequest, participant_id: &str) -> XReply {
    let (principal, rate) = match admit_as(
        shared,
        req,
        XOp::ListDmEvents,
        FaultOp::DmEvents,
        Accept::DM_READ,
    )
    .await
    {
        Ok(admitted) => admitted,
        Err(reply) => return reply,
    };
    if !is_x_id(participant_id) {
        return XReply::new(
            StatusCode::BAD_REQUEST,
            problem::invalid_request(bad(
                "participant_id",
                participant_id,
                format!(
                    "The `participant_id` path parameter value [{participant_id}] is not valid"
                ),
            )),
            rate,
        )
        .rejected("invalid participant_id");
    }
    let query = match parse_query(req.uri.query().unwrap_or("")) {
        Ok(q) => q,
        Err(errors) => {
            return XReply::new(
                StatusCode::BAD_REQUEST,
                problem::invalid_request(errors),
                rate,
            )
            .rejected("invalid query");
        }
    };
    let business = principal.user_id().unwrap_or_default().to_owned();
    // The conversation, newest first.
    let mut events: Vec<(u64, SentDm)> = if query.message_create {
        lock(&shared.x)
            .dms
            .iter()
            .filter(|dm| dm.sender_id == business && dm.recipient_id == participant_id)
            .filter_map(|dm| Some((dm.dm_event_id.parse::<u64>().ok()?, dm.clone())))
            .collect()
    } else {
        Vec::new()
    };
    events.sort_by_key(|(id, _)| std::cmp::Reverse(*id));
    let (start, end) = match page_bounds(events.iter().map(|(id, _)| *id), &query, rate) {
        Ok(bounds) => bounds,
        Err(reply) => return reply,
    };
    let page: Vec<Value> = events[start..end]
        .iter()
        .map(|(_, dm)| render(dm, &query.fields))
        .collect();
    let mut meta = Map::new();
    meta.insert("result_count".into(), json!(page.len()));
    if let Some((next, _)) = events.get(end) {
        meta.insert("next_token".into(), json!(encode_token(*next)));
    }
    if start > 0
        && let Some((previous, _)) = events.get(start.saturating_sub(query.max_results))
    {
        meta.insert("previous_token".into(), json!(encode_token(*previous)));
    }
    let mut body = Map::new();
    if !page.is_empty() {
        body.insert("data".into(), Value::Array(page));
    }
    body.insert("meta".into(), Value::Object(meta));
    XReply::new(StatusCode::OK, Value::Object(body), rate)
}

/// `GET /2/dm_events`: every DM event of the authenticated user's conversations (received and
/// sent), newest first, within 30 days; `expansions=sender_id,attachments.media_keys` add
/// `includes.users` / `includes.media`. Rate-limited per user by `dm_events_rate_limit`.
pub(crate) async fn list_all_dm_events(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = XRequest::new(method, uri, headers);
    let reply = all_reply(&shared, &req).await;
    finish(&shared, XOp::ListAllDmEvents, &req, reply)
}

async fn all_reply(shared: &Shared, req: &XRequest) -> XReply {
    let (principal, rate) = match admit_limited(
        shared,
        req,
        XOp::ListAllDmEvents,
        FaultOp::DmEvents,
        Accept::DM_READ,
        shared.cfg.x.dm_events_rate_limit,
    )
    .await
    {
        Ok(admitted) => admitted,
        Err(reply) => return reply,
    };
    let raw = req.uri.query().unwrap_or("");
    let query = match parse_query(raw) {
        Ok(q) => q,
        Err(errors) => {
            return XReply::new(
                StatusCode::BAD_REQUEST,
                problem::invalid_request(errors),
                rate,
            )
            .rejected("invalid query");
        }
    };
    let mut expansions = Vec::new();
    for (name, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        if name != "expansions" {
            continue;
        }
        for expansion in value.split(',') {
            if !EXPANSIONS.contains(&expansion) {
                return XReply::new(
                    StatusCode::BAD_REQUEST,
                    problem::invalid_request(bad(
                        "expansions",
                        expansion,
                        format!(
                            "The `expansions` query parameter value [{expansion}] is not one of [{}]",
                            EXPANSIONS.join(",")
                        ),
                    )),
                    rate,
                )
                .rejected("invalid expansions");
            }
            expansions.push(expansion.to_owned());
        }
    }
    let me = principal.user_id().unwrap_or_default().to_owned();
    let cutoff = clock::now_unix_ms() - LOOKBACK_MS;
    let x = lock(&shared.x);
    let mut events: Vec<(u64, &SentDm)> = if query.message_create {
        x.dm_history
            .iter()
            .filter(|dm| dm.sender_id == me || dm.recipient_id == me)
            .filter(|dm| dm.created_timestamp_ms >= cutoff)
            .filter_map(|dm| Some((dm.dm_event_id.parse::<u64>().ok()?, dm)))
            .collect()
    } else {
        Vec::new()
    };
    events.sort_by_key(|(id, _)| std::cmp::Reverse(*id));
    let (start, end) = match page_bounds(events.iter().map(|(id, _)| *id), &query, rate) {
        Ok(bounds) => bounds,
        Err(reply) => return reply,
    };
    let page = &events[start..end];
    let data: Vec<Value> = page
        .iter()
        .map(|(_, dm)| render(dm, &query.fields))
        .collect();
    let mut includes = Map::new();
    if expansions.iter().any(|e| e == "sender_id") {
        let mut ids: Vec<&str> = Vec::new();
        for (_, dm) in page {
            if !ids.contains(&dm.sender_id.as_str()) {
                ids.push(&dm.sender_id);
            }
        }
        let users: Vec<Value> = ids
            .iter()
            .map(|id| x.user_or_placeholder(id).v2_json(&[]))
            .collect();
        if !users.is_empty() {
            includes.insert("users".into(), Value::Array(users));
        }
    }
    if expansions.iter().any(|e| e == "attachments.media_keys") {
        let media: Vec<Value> =
            page.iter()
                .filter_map(|(_, dm)| dm.media.as_ref())
                .map(|m| {
                    x.media_objects.get(&m.media_key).cloned().unwrap_or_else(
                        || json!({"media_key": m.media_key, "type": m.category.kind()}),
                    )
                })
                .collect();
        if !media.is_empty() {
            includes.insert("media".into(), Value::Array(media));
        }
    }
    let mut meta = Map::new();
    meta.insert("result_count".into(), json!(data.len()));
    if let Some((next, _)) = events.get(end) {
        meta.insert("next_token".into(), json!(encode_token(*next)));
    }
    if start > 0
        && let Some((previous, _)) = events.get(start.saturating_sub(query.max_results))
    {
        meta.insert("previous_token".into(), json!(encode_token(*previous)));
    }
    let mut body = Map::new();
    if !data.is_empty() {
        body.insert("data".into(), Value::Array(data));
    }
    if !includes.is_empty() {
        body.insert("includes".into(), Value::Object(includes));
    }
    body.insert("meta".into(), Value::Object(meta));
    XReply::new(StatusCode::OK, Value::Object(body), rate)
}

/// A t.co link standing for `n`-th link of DM `id` (stable across reads).
fn tco(id: &str, n: usize) -> String {
    let mut code = encode_token(id.parse::<u64>().unwrap_or(0).rotate_left(17) ^ n as u64);
    code.remove(0);
    format!("https://t.co/{}", code.to_ascii_lowercase())
}

/// The end (byte offset) of the URL starting at the beginning of `s`: up to whitespace, less
/// trailing punctuation.
fn url_len(s: &str) -> usize {
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    s[..end]
        .trim_end_matches(['.', ',', ';', ':', '!', '?', '\'', '"', ')', ']'])
        .len()
}

/// The text as X shows it (URLs as t.co links) and its `entities.urls`.
fn wrap_links(dm: &SentDm) -> (String, Vec<Value>) {
    let mut text = String::new();
    let mut urls = Vec::new();
    let mut rest = dm.text.as_deref().unwrap_or("");
    while let Some(at) = ["https://", "http://"]
        .iter()
        .filter_map(|scheme| rest.find(scheme))
        .min()
    {
        text.push_str(&rest[..at]);
        let len = url_len(&rest[at..]);
        let url = &rest[at..at + len];
        let link = tco(&dm.dm_event_id, urls.len());
        let start = text.chars().count();
        text.push_str(&link);
        urls.push(json!({
            "start": start,
            "end": start + link.chars().count(),
            "url": link,
            "expanded_url": url,
            "display_url": url.split_once("://").map_or(url, |(_, rest)| rest),
        }));
        rest = &rest[at + len..];
    }
    text.push_str(rest);
    if let Some(media) = &dm.media {
        if !text.is_empty() {
            text.push(' ');
        }
        let link = tco(&dm.dm_event_id, urls.len());
        let start = text.chars().count();
        text.push_str(&link);
        urls.push(json!({
            "start": start,
            "end": start + link.chars().count(),
            "url": link,
            "expanded_url": format!("https://x.com/messages/media/{}", media.media_id),
            "display_url": format!("pic.x.com/{}", &link["https://t.co/".len()..]),
        }));
    }
    (text, urls)
}

/// One DM as a `MessageCreate` event with the requested fields (`id`, `event_type` and `text`
/// always).
fn render(dm: &SentDm, fields: &[String]) -> Value {
    let wants = |f: &str| fields.iter().any(|x| x == f);
    let (text, urls) = wrap_links(dm);
    let mut event = Map::new();
    event.insert("id".into(), json!(dm.dm_event_id));
    event.insert("event_type".into(), json!("MessageCreate"));
    event.insert("text".into(), json!(text));
    if wants("sender_id") {
        event.insert("sender_id".into(), json!(dm.sender_id));
    }
    if wants("created_at") {
        event.insert("created_at".into(), json!(dm.created_at));
    }
    if wants("dm_conversation_id") {
        event.insert("dm_conversation_id".into(), json!(dm.dm_conversation_id));
    }
    if wants("participant_ids") {
        event.insert(
            "participant_ids".into(),
            json!([dm.sender_id, dm.recipient_id]),
        );
    }
    if wants("attachments")
        && let Some(media) = &dm.media
    {
        event.insert(
            "attachments".into(),
            json!({"media_keys": [media.media_key]}),
        );
    }
    if wants("entities") && !urls.is_empty() {
        event.insert("entities".into(), json!({"urls": urls}));
    }
    Value::Object(event)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn dm(text: Option<&str>) -> SentDm {
        SentDm {
            dm_event_id: "1880000000000000001".into(),
            dm_conversation_id: "1-2".into(),
            sender_id: "2".into(),
            recipient_id: "1".into(),
            text: text.map(str::to_owned),
            attachments: vec![],
            media: None,
            created_timestamp_ms: 0,
            created_at: "2026-01-01T00:00:00.000Z".into(),
        }
    }

    #[test]
    fn tokens_round_trip() {
        for id in [0, 1, 31, 32, 1_880_000_000_000_000_001, u64::MAX] {
            assert_eq!(decode_token(&encode_token(id)), Some(id));
        }
        for bad in ["", "P", "X12", "P!", "PVVVVVVVVVVVVVVVVVVVVVVVVVV"] {
            assert_eq!(decode_token(bad), None, "{bad}");
        }
    }

    #[test]
    fn links_become_t_co_with_entities_in_code_points() {
        let (text, urls) = wrap_links(&dm(Some(
            "Señor, see https://example.com/a?b=1. And (http://x.example/y) ok",
        )));
        let first = urls[0]["url"].as_str().unwrap();
        let second = urls[1]["url"].as_str().unwrap();
        assert_ne!(first, second);
        assert_eq!(text, format!("Señor, see {first}. And ({second}) ok"));
        assert_eq!(urls[0]["expanded_url"], "https://example.com/a?b=1");
        assert_eq!(urls[1]["expanded_url"], "http://x.example/y");
        let chars: Vec<char> = text.chars().collect();
        for u in &urls {
            let (s, e) = (
                u["start"].as_u64().unwrap() as usize,
                u["end"].as_u64().unwrap() as usize,
            );
            assert_eq!(
                chars[s..e].iter().collect::<String>(),
                u["url"].as_str().unwrap()
            );
        }
        // Stable across reads.
        assert_eq!(
            wrap_links(&dm(Some("https://example.com/a"))).0,
            wrap_links(&dm(Some("https://example.com/a"))).0
        );
        assert_eq!(
            wrap_links(&dm(Some("no links"))),
            ("no links".into(), vec![])
        );
    }

    #[test]
    fn a_media_dm_carries_its_media_key_and_link() {
        let mut with_media = dm(Some("Here it is"));
        with_media.attachments = vec!["1880000000000000099".into()];
        with_media.media = Some(crate::x::records::SentMedia {
            media_id: "1880000000000000099".into(),
            media_key: "3_1880000000000000099".into(),
            category: crate::x::records::MediaCategory::DmImage,
            media_type: "image/png".into(),
            size: 4,
            sha256: "00".into(),
            file_id: "f1".into(),
        });
        let all: Vec<String> = DM_EVENT_FIELDS.iter().map(|f| (*f).to_owned()).collect();
        let event = render(&with_media, &all);
        assert_eq!(
            event["attachments"]["media_keys"][0],
            "3_1880000000000000099"
        );
        let link = event["entities"]["urls"][0]["url"].as_str().unwrap();
        assert_eq!(
            event["text"].as_str().unwrap(),
            format!("Here it is {link}")
        );
        assert_eq!(
            event["entities"]["urls"][0]["expanded_url"],
            "https://x.com/messages/media/1880000000000000099"
        );
        // Without the fields asked for, neither is shown.
        let plain = render(&with_media, &[]);
        assert!(plain.get("attachments").is_none() && plain.get("entities").is_none());
        assert_eq!(plain["text"], event["text"]);
    }

    #[test]
    fn query_rules() {
        let q = parse_query("dm_event.fields=id,text,sender_id&max_results=5").unwrap();
        assert_eq!(
            (q.fields.len(), q.max_results, q.message_create),
            (3, 5, true)
        );
        assert_eq!(parse_query("").unwrap().max_results, 100);
        assert!(
            !parse_query("event_types=ParticipantsJoin")
                .unwrap()
                .message_create
        );
        for bad in [
            "max_results=0",
            "max_results=101",
            "max_results=ten",
            "dm_event.fields=id,nope",
            "event_types=Typing",
            "pagination_token=zzz",
            "unknown=1",
        ] {
            assert!(parse_query(bad).is_err(), "{bad}");
        }
    }
}
