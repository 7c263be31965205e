//! OAuth 2.0 token requests through the fake: the code exchange and the refresh grant for a
//! confidential client (HTTP Basic, X's documented example credentials) and a public one
//! (`client_id` in the form), token answers, error mapping, revocation.

use xdm_core::ports::{RefreshError, TokenGrant, TokenRefresher};
use xdm_x::oauth2::{OAuth2Client, OAuth2Error, Pkce};

use super::*;

/// X's documentation example (user-access-token.mdx): id and secret behind its Basic header.
const CLIENT_ID: &str = "WTNrQS14bUhpMl83aU5adTd2NWM6MTpjaQ";
const CLIENT_SECRET: &str = "-RoKx3x58JA8Sm9JIt2fmAjq3q5GX-bqZ3vjJxSeGsdmGtXEbP";
const BASIC: &str = "Basic V1ROclFTMTRiVWhwTWw4M2FVNWFkVGQyTldNNk1UcGphUTotUm9LeDN4NThKQThTbTlKSXQyZm1BanEzcTVHWC1icVozdmpKeFNlR3NkbUd0WEViUA==";
const GRANT: &str = r#"{"token_type":"bearer","expires_in":7200,"access_token":"QUNDRVNTLTE","scope":"dm.read dm.write tweet.read users.read media.write offline.access","refresh_token":"UkVGUkVTSC0y"}"#;

fn form(seen: &Seen) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(&seen.body)
        .into_owned()
        .collect()
}

fn token_client(server: &Server, secret: Option<&str>) -> OAuth2Client {
    OAuth2Client::for_api(&server.url(), CLIENT_ID, secret.map(str::to_owned)).unwrap()
}

#[tokio::test]
async fn a_confidential_client_exchanges_a_code_with_basic_auth() {
    let server = Server::start(answer(200, GRANT)).await;
    let client = token_client(&server, Some(CLIENT_SECRET));
    assert!(client.is_confidential());
    let pkce = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
    let grant = client
        .exchange_code("VGNibzFW", "http://127.0.0.1:8787/callback", &pkce)
        .await
        .unwrap();
    assert_eq!(
        grant,
        TokenGrant {
            access_token: "QUNDRVNTLTE".into(),
            refresh_token: Some("UkVGUkVTSC0y".into()),
            expires_in_s: Some(7200),
            scope: Some("dm.read dm.write tweet.read users.read media.write offline.access".into()),
        }
    );
    let req = server.only_request();
    assert_eq!(req.method, Method::POST);
    assert_eq!(req.target, "/2/oauth2/token");
    assert_eq!(req.headers["authorization"], BASIC);
    assert_eq!(
        req.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    let f = form(&req);
    assert_eq!(f["grant_type"], "authorization_code");
    assert_eq!(f["code"], "VGNibzFW");
    assert_eq!(f["redirect_uri"], "http://127.0.0.1:8787/callback");
    assert_eq!(
        f["code_verifier"],
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    );
    assert!(!f.contains_key("client_id"));
}

#[tokio::test]
async fn a_public_client_refreshes_with_its_id_in_the_form() {
    let server = Server::start(answer(
        200,
        r#"{"token_type":"bearer","expires_in":7200,"access_token":"new-access","scope":"dm.read"}"#,
    ))
    .await;
    let client = token_client(&server, None);
    assert!(!client.is_confidential());
    let grant = client.refresh("old-refresh").await.unwrap();
    assert_eq!(grant.access_token, "new-access");
    assert_eq!(grant.refresh_token, None);
    assert!(!format!("{grant:?}").contains("new-access"));
    let req = server.only_request();
    assert!(!req.headers.contains_key("authorization"));
    let f = form(&req);
    assert_eq!(f["grant_type"], "refresh_token");
    assert_eq!(f["refresh_token"], "old-refresh");
    assert_eq!(f["client_id"], CLIENT_ID);
}

#[tokio::test]
async fn token_endpoint_errors_are_rejections_or_unavailability() {
    let cases: Vec<(u16, &str, bool)> = vec![
        (
            400,
            r#"{"error":"invalid_request","error_description":"Value passed for the token was invalid."}"#,
            true,
        ),
        (400, r#"{"error":"invalid_grant"}"#, true),
        (
            401,
            r#"{"error":"unauthorized_client","error_description":"Missing valid authorization header"}"#,
            true,
        ),
        (429, r#"{"title":"Too Many Requests"}"#, false),
        (503, "<html>down</html>", false),
        (200, "not json", false),
        (200, r#"{"token_type":"bearer"}"#, false),
    ];
    for (status, body, rejected) in cases {
        let server = Server::start(answer(status, body)).await;
        let e = token_client(&server, Some(CLIENT_SECRET))
            .refresh("r")
            .await
            .unwrap_err();
        match (&e, rejected) {
            (RefreshError::Rejected(_), true) | (RefreshError::Unavailable(_), false) => {}
            _ => panic!("{status} {body}: {e:?}"),
        }
        assert!(!e.to_string().contains('{'), "no raw JSON: {e}");
    }
    let server = Server::start(answer(
        400,
        r#"{"error":"invalid_request","error_description":"Value passed for the token was invalid."}"#,
    ))
    .await;
    let e = token_client(&server, None)
        .exchange_code("c", "http://127.0.0.1/cb", &Pkce::generate())
        .await
        .unwrap_err();
    assert_eq!(
        e,
        OAuth2Error::Rejected(
            "HTTP 400: invalid_request: Value passed for the token was invalid.".into()
        )
    );
    // Nobody listening: Unavailable.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = OAuth2Client::for_api(&format!("http://{addr}"), CLIENT_ID, None).unwrap();
    assert!(matches!(
        client.refresh("r").await,
        Err(RefreshError::Unavailable(_))
    ));
}

#[tokio::test]
async fn revokes_a_token() {
    let server = Server::start(answer(200, r#"{"revoked":true}"#)).await;
    token_client(&server, Some(CLIENT_SECRET))
        .revoke("QUNDRVNTLTE")
        .await
        .unwrap();
    let req = server.only_request();
    assert_eq!(req.target, "/2/oauth2/revoke");
    assert_eq!(req.headers["authorization"], BASIC);
    assert_eq!(form(&req)["token"], "QUNDRVNTLTE");
}
