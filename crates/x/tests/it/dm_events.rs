//! Reading a conversation back (`XApi::sent_dms`) through the fake: the signed query, paging
//! with `pagination_token` until the window is covered, the page cap, and error classification.

use serde_json::{Value, json};
use xdm_core::ports::SentDmRecord;

use super::*;

const PATH: &str = "/2/dm_conversations/with/3001969357/dm_events";
const TWEPOCH_MS: i64 = 1_288_834_974_657;

/// A snowflake id made at Unix millisecond `ms`.
fn id_at(ms: i64) -> String {
    (((ms - TWEPOCH_MS) as u64) << 22 | 7).to_string()
}

/// A `MessageCreate` event at `ms` from `sender`.
fn event(ms: i64, sender: &str, text: &str) -> Value {
    json!({
        "id": id_at(ms),
        "event_type": "MessageCreate",
        "sender_id": sender,
        "text": text,
        "created_at": "2026-01-01T00:00:00.000Z",
        "dm_conversation_id": format!("{CUSTOMER}-{BUSINESS}"),
    })
}

fn page(events: Vec<Value>, next: Option<&str>) -> Response {
    let mut meta = json!({"result_count": events.len()});
    if let Some(next) = next {
        meta["next_token"] = json!(next);
    }
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        json!({"data": events, "meta": meta}).to_string(),
    )
        .into_response()
}

/// The query parameters of a request, decoded.
fn query(seen: &Seen) -> BTreeMap<String, String> {
    seen.url().query_pairs().into_owned().collect()
}

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

#[tokio::test]
async fn pages_back_until_the_window_is_covered_and_returns_oldest_first() {
    // Newest first, as X lists them: page 1 holds DMs at T0+50..T0+30, page 2 goes back past
    // the window (T0+10 is before `since` = T0+20).
    let respond: Responder = Arc::new(|seen: &Seen| {
        if !seen.signed_by(&default_token()) {
            return (StatusCode::UNAUTHORIZED, "{}").into_response();
        }
        match query(seen).get("pagination_token").map(String::as_str) {
            None => page(
                vec![
                    event(T0 + 50, BUSINESS, "third"),
                    event(T0 + 40, CUSTOMER, "a customer's DM"),
                    event(T0 + 30, BUSINESS, "second"),
                ],
                Some("PAGE2"),
            ),
            Some("PAGE2") => page(
                vec![
                    event(T0 + 20, BUSINESS, "first"),
                    event(T0 + 10, BUSINESS, "before the window"),
                ],
                Some("PAGE3"),
            ),
            Some(_) => (StatusCode::BAD_REQUEST, "{}").into_response(),
        }
    });
    let server = Server::routed(vec![(PATH, respond)]).await;
    let found = server
        .client()
        .sent_dms(&uid(BUSINESS), &uid(CUSTOMER), T0 + 20)
        .await
        .unwrap();
    assert_eq!(
        found,
        [(T0 + 20, "first"), (T0 + 30, "second"), (T0 + 50, "third")]
            .map(|(ms, text)| SentDmRecord {
                dm_event_id: id_at(ms),
                at_ms: ms,
                text: Some(text.into()),
                has_media: false,
            })
            .to_vec()
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "page 3 is not needed");
    for (i, seen) in requests.iter().enumerate() {
        assert_eq!(seen.method, Method::GET);
        assert_eq!(seen.url().path(), PATH);
        seen.assert_signed_by(&default_token());
        let q = query(seen);
        assert_eq!(
            q["dm_event.fields"],
            "id,text,sender_id,created_at,attachments,entities,event_type"
        );
        assert_eq!(q["max_results"], "100");
        assert_eq!(
            q.get("pagination_token").map(String::as_str),
            [None, Some("PAGE2")][i]
        );
    }
}

#[tokio::test]
async fn reads_as_the_business_account_and_stops_at_the_last_page_or_the_cap() {
    // Another business account signs with its own token; a single page without next_token is
    // the end.
    let respond: Responder = Arc::new(|seen: &Seen| {
        if !seen.signed_by(&other_token()) {
            return (StatusCode::UNAUTHORIZED, "{}").into_response();
        }
        page(vec![event(T0 + 5, OTHER_BUSINESS, "hi")], None)
    });
    let server = Server::routed(vec![(PATH, respond)]).await;
    let found = server
        .client()
        .sent_dms(&uid(OTHER_BUSINESS), &uid(CUSTOMER), T0)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(server.requests().len(), 1);

    // Every page is inside the window and says there is more: five pages at most.
    let respond: Responder = Arc::new(|seen: &Seen| {
        let n: i64 = query(seen)
            .get("pagination_token")
            .map_or(0, |t| t.parse().unwrap());
        page(
            vec![event(T0 + 1_000 - n, BUSINESS, &format!("dm {n}"))],
            Some(&(n + 1).to_string()),
        )
    });
    let server = Server::routed(vec![(PATH, respond)]).await;
    let found = server
        .client()
        .sent_dms(&uid(BUSINESS), &uid(CUSTOMER), T0)
        .await
        .unwrap();
    assert_eq!(server.requests().len(), 5);
    assert_eq!(
        found
            .iter()
            .map(|r| r.text.as_deref().unwrap())
            .collect::<Vec<_>>(),
        ["dm 4", "dm 3", "dm 2", "dm 1", "dm 0"]
    );
}

#[tokio::test]
async fn lookup_errors_are_classified() {
    let mut limited = answer(
        429,
        r#"{"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank","status":429}"#,
    );
    limited
        .headers
        .push(("x-rate-limit-reset", "1775080934".to_owned()));
    for (script, expected) in [
        (
            limited,
            XError::RateLimited {
                reset_at_s: Some(1_775_080_934),
            },
        ),
        (
            answer(
                403,
                r#"{"title":"Forbidden","detail":"Forbidden","type":"about:blank","status":403}"#,
            ),
            XError::Forbidden("Forbidden".into()),
        ),
    ] {
        let server = Server::start(script).await;
        let e = server
            .client()
            .sent_dms(&uid(BUSINESS), &uid(CUSTOMER), T0)
            .await
            .unwrap_err();
        assert_eq!(e, expected);
    }
    for body in ["<html>", "[]"] {
        let server = Server::start(answer(200, body)).await;
        let e = server
            .client()
            .sent_dms(&uid(BUSINESS), &uid(CUSTOMER), T0)
            .await
            .unwrap_err();
        assert!(matches!(e, XError::Unavailable(_)), "{body}: {e:?}");
    }
    let server = Server::start(answer(503, "")).await;
    let e = server
        .client()
        .sent_dms(&uid(BUSINESS), &uid(CUSTOMER), T0)
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
}
