//! Calls as OAuth 2.0 user context through the fake: `Authorization: Bearer`, one retry with a
//! fresh token after a 401, the OAuth 1.0a fallback, OAuth 2.0-only configurations, `users/me`,
//! and DM media through the API v2 endpoint.

use xdm_core::inbound::{InboundMedia, MediaKind};
use xdm_x::auth::{BoxFuture, UserAuth, UserTokenSource};
use xdm_x::{BearerToken, MediaHosts};

use super::*;

/// A token source: `tokens` per account, and the fresh token handed out after a rejection.
#[derive(Debug, Default)]
struct Tokens {
    tokens: Mutex<BTreeMap<String, String>>,
    fresh: Option<String>,
    rejected: Mutex<Vec<String>>,
}

impl Tokens {
    fn new(business: &str, token: &str, fresh: Option<&str>) -> Arc<Self> {
        let mut tokens = BTreeMap::new();
        tokens.insert(business.to_owned(), token.to_owned());
        Arc::new(Self {
            tokens: Mutex::new(tokens),
            fresh: fresh.map(str::to_owned),
            rejected: Mutex::default(),
        })
    }

    fn rejected(&self) -> Vec<String> {
        self.rejected.lock().unwrap().clone()
    }
}

impl UserTokenSource for Tokens {
    fn access_token<'a>(
        &'a self,
        business: &'a XUserId,
    ) -> BoxFuture<'a, Result<Option<String>, XError>> {
        Box::pin(async move { Ok(self.tokens.lock().unwrap().get(business.as_str()).cloned()) })
    }

    fn token_rejected<'a>(
        &'a self,
        business: &'a XUserId,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, XError>> {
        Box::pin(async move {
            self.rejected.lock().unwrap().push(token.to_owned());
            if let Some(fresh) = &self.fresh {
                self.tokens
                    .lock()
                    .unwrap()
                    .insert(business.to_string(), fresh.clone());
            }
            Ok(self.fresh.clone())
        })
    }
}

/// OAuth 2.0 only: no consumer, no OAuth 1.0a token.
fn oauth2_client(base: &str, tokens: Arc<Tokens>) -> XClient {
    let config = XClientConfig::new(base).unwrap().with_user_tokens(tokens);
    XClient::new(config).unwrap()
}

fn bearer(seen: &Seen) -> Option<&str> {
    seen.headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Answers `ok` to requests with `Bearer <good>`, 401 to the others.
fn only_bearer(good: &'static str, status: u16, body: &'static str) -> Responder {
    Arc::new(move |seen: &Seen| {
        if bearer(seen) == Some(good) {
            (
                StatusCode::from_u16(status).unwrap(),
                [("content-type", "application/json")],
                body,
            )
                .into_response()
        } else {
            (
                StatusCode::UNAUTHORIZED,
                [("content-type", "application/json")],
                r#"{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}"#,
            )
                .into_response()
        }
    })
}

#[tokio::test]
async fn oauth2_calls_carry_the_bearer_token_and_need_no_consumer() {
    let server = Server::start(answer(201, CREATED)).await;
    let tokens = Tokens::new(BUSINESS, "access-1", None);
    let client = oauth2_client(&server.url(), tokens.clone());
    client.send_dm(&dm("hi")).await.unwrap();
    let req = server.only_request();
    assert_eq!(req.headers["authorization"], "Bearer access-1");
    assert_eq!(req.json(), serde_json::json!({"text": "hi"}));
    assert!(tokens.rejected().is_empty());
}

#[tokio::test]
async fn a_401_is_retried_exactly_once_with_a_fresh_token() {
    let server = Server::routed(vec![(
        "/2/dm_conversations/",
        only_bearer("access-2", 201, CREATED),
    )])
    .await;
    let tokens = Tokens::new(BUSINESS, "access-1", Some("access-2"));
    let client = oauth2_client(&server.url(), tokens.clone());
    let sent = client.send_dm(&dm("the same body twice")).await.unwrap();
    assert_eq!(sent.dm_event_id, "1122334455667788990");
    assert_eq!(tokens.rejected(), vec!["access-1".to_owned()]);
    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(bearer(&seen[0]), Some("access-1"));
    assert_eq!(bearer(&seen[1]), Some("access-2"));
    assert_eq!(seen[0].body, seen[1].body, "the body is sent again whole");
    // The next call starts with the fresh token: no rejection.
    client.send_dm(&dm("again")).await.unwrap();
    assert_eq!(tokens.rejected().len(), 1);
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn a_second_401_or_no_fresh_token_is_not_retried_further() {
    // The fresh token is refused too: Unauthorized after exactly two requests.
    let server = Server::routed(vec![("/2/", only_bearer("never", 201, CREATED))]).await;
    let tokens = Tokens::new(BUSINESS, "access-1", Some("access-2"));
    let e = oauth2_client(&server.url(), tokens.clone())
        .send_dm(&dm("hi"))
        .await
        .unwrap_err();
    assert!(matches!(e, XError::Unauthorized(_)), "{e:?}");
    assert_eq!(server.requests().len(), 2);
    assert_eq!(tokens.rejected(), vec!["access-1".to_owned()]);

    // No fresh token: one request.
    let server = Server::routed(vec![("/2/", only_bearer("never", 201, CREATED))]).await;
    let tokens = Tokens::new(BUSINESS, "access-1", None);
    let e = oauth2_client(&server.url(), tokens.clone())
        .send_dm(&dm("hi"))
        .await
        .unwrap_err();
    assert!(matches!(e, XError::Unauthorized(_)), "{e:?}");
    assert_eq!(server.requests().len(), 1);
    assert_eq!(tokens.rejected().len(), 1);
}

#[tokio::test]
async fn accounts_without_an_oauth2_token_use_oauth1_and_401s_there_are_final() {
    let server = Server::start(answer(201, CREATED)).await;
    let tokens = Tokens::new(BUSINESS, "access-1", Some("access-2"));
    let config = XClientConfig::oauth1(&server.url(), consumer(), default_token())
        .unwrap()
        .with_account_token(uid(OTHER_BUSINESS), other_token())
        .unwrap()
        .with_user_tokens(tokens.clone());
    let client = XClient::new(config).unwrap();
    let mut other = dm("hi");
    other.business = uid(OTHER_BUSINESS);
    client.send_dm(&other).await.unwrap();
    client.send_dm(&dm("hi")).await.unwrap();
    let seen = server.requests();
    seen[0].assert_signed_by(&other_token());
    assert_eq!(seen[1].headers["authorization"], "Bearer access-1");

    let server = Server::start(answer(401, "")).await;
    let config = XClientConfig::oauth1(&server.url(), consumer(), default_token())
        .unwrap()
        .with_user_tokens(tokens.clone());
    let mut other = dm("hi");
    other.business = uid(OTHER_BUSINESS);
    let e = XClient::new(config)
        .unwrap()
        .send_dm(&other)
        .await
        .unwrap_err();
    assert!(matches!(e, XError::Unauthorized(_)), "{e:?}");
    assert_eq!(server.requests().len(), 1);
    assert!(tokens.rejected().is_empty());
}

#[tokio::test]
async fn an_account_nobody_can_act_as_is_unauthorized_without_a_request() {
    let server = Server::start(answer(201, CREATED)).await;
    let tokens = Tokens::new(OTHER_BUSINESS, "access-1", None);
    let e = oauth2_client(&server.url(), tokens)
        .send_dm(&dm("hi"))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        XError::Unauthorized(
            "no X credentials for account 4337869213: run `xdm-connect x login`".into()
        )
    );
    assert!(server.requests().is_empty());
    // A consumer without a default token: accounts without their own token cannot act either.
    let config = XClientConfig::new(&server.url())
        .unwrap()
        .with_consumer(consumer());
    let e = XClient::new(config)
        .unwrap()
        .send_dm(&dm("hi"))
        .await
        .unwrap_err();
    assert!(matches!(e, XError::Unauthorized(m) if m.contains("4337869213")));
    assert!(server.requests().is_empty());
}

const ME: &str = r#"{"data":{"id":"4337869213","name":"Acme Support","username":"AcmeHelp","profile_image_url":"https://pbs.twimg.com/profile_images/1/a_normal.jpg","verified":false}}"#;

#[tokio::test]
async fn me_as_a_new_token_and_as_a_business() {
    let server = Server::routed(vec![("/2/users/me", only_bearer("brand-new", 200, ME))]).await;
    let client = oauth2_client(&server.url(), Arc::new(Tokens::default()));
    let me = client
        .me_as(&UserAuth::OAuth2(BearerToken::new("brand-new")))
        .await
        .unwrap();
    assert_eq!(me.id, uid(BUSINESS));
    assert_eq!(me.username.as_deref(), Some("AcmeHelp"));
    assert_eq!(me.name.as_deref(), Some("Acme Support"));
    let req = server.only_request();
    assert_eq!(
        req.target,
        "/2/users/me?user.fields=name,username,profile_image_url,verified,public_metrics"
    );
    // A refused token is Unauthorized, not retried.
    let e = client
        .me_as(&UserAuth::OAuth2(BearerToken::new("wrong")))
        .await
        .unwrap_err();
    assert!(matches!(e, XError::Unauthorized(_)), "{e:?}");
    assert_eq!(server.requests().len(), 2);
    assert!(!format!("{:?}", BearerToken::new("brand-new")).contains("brand-new"));

    // OAuth 1.0a, and `me(business)`.
    let server = Server::start(answer(200, ME)).await;
    let me = server.client().me(&uid(BUSINESS)).await.unwrap();
    assert_eq!(me.id, uid(BUSINESS));
    server.only_request().assert_signed_by(&default_token());
    let server = Server::start(answer(200, r#"{"data":{"name":"no id"}}"#)).await;
    let e = server.client().me(&uid(BUSINESS)).await.unwrap_err();
    assert!(matches!(e, XError::Unavailable(_)), "{e:?}");
}

const TON_PATH: &str = "/1.1/ton/data/dm/1547580822294646788/1547580751654203394/T7xt1pvd.jpg";
const V2_PATH: &str =
    "/2/dm_conversations/media/1547580822294646788/1547580751654203394/T7xt1pvd.jpg";

fn photo(url: &str) -> InboundMedia {
    InboundMedia {
        kind: MediaKind::Photo,
        media_id: "1547580751654203394".into(),
        url: url.into(),
        content_type: None,
        sealed: None,
    }
}

#[tokio::test]
async fn oauth2_accounts_download_ton_media_through_api_v2() {
    let jpeg: &'static [u8] = b"\xff\xd8\xff\xe0 a tiny jpeg";
    let ok: Responder = Arc::new(move |seen: &Seen| {
        if bearer(seen) == Some("access-2") {
            (StatusCode::OK, [("content-type", "image/jpeg")], jpeg).into_response()
        } else {
            StatusCode::UNAUTHORIZED.into_response()
        }
    });
    // TON itself would refuse a bearer token: it must not be asked.
    let ton: Responder = Arc::new(|_: &Seen| StatusCode::IM_A_TEAPOT.into_response());
    let server = Server::routed(vec![(V2_PATH, ok), ("/1.1/ton/", ton)]).await;
    let tokens = Tokens::new(BUSINESS, "access-1", Some("access-2"));
    let config = XClientConfig::new(&server.url())
        .unwrap()
        .with_user_tokens(tokens.clone())
        .with_media_hosts(MediaHosts::parse(&format!("http://{}", server.addr)).unwrap());
    let client = XClient::new(config).unwrap();
    let url = format!("{}{TON_PATH}", server.url());
    let file = client
        .download_media(&uid(BUSINESS), &photo(&url), 1024 * 1024)
        .await
        .unwrap();
    assert_eq!(file.file_name, "T7xt1pvd.jpg");
    assert_eq!(file.content_type, "image/jpeg");
    assert_eq!(file.length, jpeg.len() as u64);
    let seen = server.requests();
    assert_eq!(seen.len(), 2, "one 401, one retry with the fresh token");
    assert!(seen.iter().all(|s| s.target == V2_PATH));
    assert_eq!(tokens.rejected(), vec!["access-1".to_owned()]);

    // A TON URL of another shape cannot go through v2, and without OAuth 1.0a nothing is sent.
    let odd = format!("{}/1.1/ton/data/dm/x/y.jpg", server.url());
    let e = client
        .download_media(&uid(BUSINESS), &photo(&odd), 1024 * 1024)
        .await
        .unwrap_err();
    assert!(matches!(e, XError::Unauthorized(_)), "{e:?}");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn twimg_media_is_fetched_without_credentials_for_oauth2_accounts() {
    let video: Responder = Arc::new(|seen: &Seen| {
        if seen.headers.contains_key("authorization") {
            StatusCode::BAD_REQUEST.into_response()
        } else {
            (StatusCode::OK, [("content-type", "video/mp4")], "mp4").into_response()
        }
    });
    let server = Server::routed(vec![("/dm_video/", video)]).await;
    let config = XClientConfig::new(&server.url())
        .unwrap()
        .with_user_tokens(Tokens::new(BUSINESS, "access-1", None))
        .with_media_hosts(MediaHosts::parse(&format!("http://{}", server.addr)).unwrap());
    let client = XClient::new(config).unwrap();
    let media = InboundMedia {
        kind: MediaKind::Video,
        media_id: "1".into(),
        url: format!("{}/dm_video/1/vid/a.mp4", server.url()),
        content_type: Some("video/mp4".into()),
        sealed: None,
    };
    let file = client
        .download_media(&uid(BUSINESS), &media, 1024)
        .await
        .unwrap();
    assert_eq!(file.length, 3);
}

#[tokio::test]
async fn a_media_segment_refused_with_401_is_sent_again_whole_with_a_fresh_token() {
    const ID: &str = "1880028106020515840";
    let appends = Arc::new(Mutex::new(0_u32));
    let respond: Responder = Arc::new(move |seen: &Seen| {
        let json = |body: serde_json::Value| {
            (
                StatusCode::OK,
                [("content-type", "application/json")],
                body.to_string(),
            )
                .into_response()
        };
        match seen.target.as_str() {
            "/2/media/upload/initialize" => json(serde_json::json!({"data": {"id": ID}})),
            t if t.ends_with("/append") => {
                let mut n = appends.lock().unwrap();
                *n += 1;
                // The first attempt of the first segment meets an expired token.
                if *n == 1 || bearer(seen) != Some("access-2") {
                    return StatusCode::UNAUTHORIZED.into_response();
                }
                json(serde_json::json!({"data": {"expires_at": 1_775_080_934}}))
            }
            t if t.ends_with("/finalize") => json(serde_json::json!({"data": {"id": ID}})),
            _ => StatusCode::NOT_FOUND.into_response(),
        }
    });
    let server = Server::routed(vec![("/2/media/upload", respond)]).await;
    let tokens = Tokens::new(BUSINESS, "access-1", Some("access-2"));
    let client = oauth2_client(&server.url(), tokens.clone());
    let bytes = Bytes::from(vec![7_u8; 1000]);
    let file = xdm_core::media::MediaStream {
        file_name: "receipt.jpg".into(),
        content_type: "image/jpeg".into(),
        length: 1000,
        body: Box::pin(futures_util::stream::iter([Ok(bytes)])),
    };
    let id = client
        .upload_media(
            &uid(BUSINESS),
            xdm_core::media::XMediaCategory::DmImage,
            file,
        )
        .await
        .unwrap();
    assert_eq!(id, ID);
    let seen = server.requests();
    let appended: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.target.ends_with("/append"))
        .collect();
    assert_eq!(appended.len(), 2, "the refused segment is sent once more");
    let segment = [7_u8; 1000];
    for attempt in &appended {
        // Each attempt is its own multipart body (own boundary) carrying the whole segment.
        assert!(attempt.body.windows(1000).any(|w| w == segment));
    }
    assert_eq!(bearer(appended[1]), Some("access-2"));
    assert_eq!(tokens.rejected(), vec!["access-1".to_owned()]);
}
