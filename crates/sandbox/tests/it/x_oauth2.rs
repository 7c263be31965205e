//! OAuth 2.0 over HTTP: authorize (PKCE, approver, deny), the token endpoint (code and refresh
//! grants, single-use refresh tokens, family revocation), and the principals each X route accepts.

use std::collections::HashMap;

use serde_json::{Value, json};
use xdm_sandbox::{OAuth2Settings, SandboxHandle, SandboxUser, XOp, s256_challenge};

use crate::support::{http, sandbox, x_auth, x_creds};

const VERIFIER: &str = "a-verifier-of-at-least-43-characters-0123456789abcdef";
const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback";

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `GET /i/oauth2/authorize` → (status, Location query pairs or body).
async fn authorize(
    sb: &SandboxHandle,
    client_id: &str,
    scope: &str,
    challenge: Option<(&str, &str)>,
) -> (u16, HashMap<String, String>) {
    let mut url = url::Url::parse(&format!("{}/i/oauth2/authorize", sb.base_url())).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", scope)
            .append_pair("state", "st4te");
        if let Some((c, method)) = challenge {
            q.append_pair("code_challenge", c)
                .append_pair("code_challenge_method", method);
        }
    }
    let resp = no_redirects().get(url).send().await.unwrap();
    let status = resp.status().as_u16();
    let pairs = resp
        .headers()
        .get("location")
        .and_then(|l| url::Url::parse(l.to_str().ok()?).ok())
        .map(|l| l.query_pairs().into_owned().collect())
        .unwrap_or_default();
    (status, pairs)
}

/// `POST /2/oauth2/token` with Basic client authentication (confidential client).
async fn token(sb: &SandboxHandle, form: &[(&str, &str)], basic: bool) -> (u16, Value) {
    let x = &sb.config().x;
    let mut req = http().post(format!("{}/2/oauth2/token", sb.base_url()));
    if basic {
        req = req.basic_auth(&x.client_id, Some(&x.client_secret));
    }
    let resp = req.form(form).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get(sb: &SandboxHandle, path: &str, bearer: &str) -> (u16, Value) {
    let resp = http()
        .get(format!("{}{path}", sb.base_url()))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    assert!(resp.headers().contains_key("x-rate-limit-remaining"));
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn authorization_code_with_pkce_acts_as_the_approver() {
    let sb = sandbox().await;
    let client_id = sb.config().x.client_id.clone();
    let scope = "dm.read dm.write tweet.read users.read offline.access";

    // Refused before any redirect: unknown client, missing PKCE.
    let (status, _) = authorize(&sb, "someone-else", scope, Some(("c", "plain"))).await;
    assert_eq!(status, 400);
    let (status, _) = authorize(&sb, &client_id, scope, None).await;
    assert_eq!(status, 400);

    // A wrong verifier spends nothing but the code.
    let challenge = s256_challenge(VERIFIER);
    let (status, q) = authorize(&sb, &client_id, scope, Some((&challenge, "S256"))).await;
    assert_eq!(status, 302);
    assert_eq!(q["state"], "st4te");
    let code = q["code"].clone();
    let (status, body) = token(
        &sb,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", "not-the-verifier"),
        ],
        true,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_request");

    let (_, q) = authorize(&sb, &client_id, scope, Some((&challenge, "S256"))).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", q["code"].as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    // Wrong client secret.
    let resp = http()
        .post(format!("{}/2/oauth2/token", sb.base_url()))
        .basic_auth(&client_id, Some("wrong"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let (status, tokens) = token(&sb, &form, true).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["expires_in"], 7200);
    assert_eq!(tokens["scope"], scope);
    assert!(tokens["refresh_token"].is_string());
    // Codes are single-use.
    let (status, _) = token(&sb, &form, true).await;
    assert_eq!(status, 400);

    let access = tokens["access_token"].as_str().unwrap();
    let (status, me) = get(&sb, "/2/users/me", access).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["data"]["id"], sb.config().x.business.id.as_str());

    // Another approver: the token acts as that user. A plain challenge works too.
    sb.add_user(SandboxUser::new(
        "55125386",
        "Elizabeth Fuentes",
        "ElizabethFue12",
    ));
    sb.set_oauth2(OAuth2Settings {
        approver: Some("55125386".into()),
        ..OAuth2Settings::default()
    });
    let (_, q) = authorize(
        &sb,
        &client_id,
        "tweet.read users.read",
        Some(("plain-c", "plain")),
    )
    .await;
    let (status, other) = token(
        &sb,
        &[
            ("grant_type", "authorization_code"),
            ("code", q["code"].as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", "plain-c"),
            ("client_id", &client_id),
        ],
        false,
    )
    .await;
    assert_eq!(status, 200, "{other}");
    assert!(other.get("refresh_token").is_none(), "no offline.access");
    let (_, me) = get(&sb, "/2/users/me", other["access_token"].as_str().unwrap()).await;
    assert_eq!(me["data"]["username"], "ElizabethFue12");

    // The next authorize can be denied.
    sb.set_oauth2(OAuth2Settings {
        deny_next: Some(true),
        ..OAuth2Settings::default()
    });
    let (status, q) = authorize(&sb, &client_id, scope, Some((&challenge, "S256"))).await;
    assert_eq!((status, q["error"].as_str()), (302, "access_denied"));
    assert!(!q.contains_key("code"));
    let ops: Vec<XOp> = sb.x_requests().iter().map(|r| r.op).collect();
    assert!(ops.contains(&XOp::OAuth2Authorize) && ops.contains(&XOp::OAuth2Token));
}

#[tokio::test]
async fn refresh_tokens_are_single_use_and_reuse_revokes_the_family() {
    let sb = sandbox().await;
    let client_id = sb.config().x.client_id.clone();
    let first = sb.issue_oauth2_token(
        "4337869213",
        &["dm.read", "tweet.read", "users.read", "offline.access"],
    );
    let r1 = first.refresh_token.clone().unwrap();
    let refresh = |rt: String| {
        let sb = sb.clone();
        let client_id = client_id.clone();
        async move {
            token(
                &sb,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &rt),
                    ("client_id", &client_id),
                ],
                false,
            )
            .await
        }
    };
    let (status, second) = refresh(r1.clone()).await;
    assert_eq!(status, 200, "{second}");
    let a2 = second["access_token"].as_str().unwrap().to_owned();
    assert_ne!(second["refresh_token"].as_str().unwrap(), r1);
    assert_eq!(get(&sb, "/2/users/me", &a2).await.0, 200);

    // Presenting the spent token again revokes every token of the family.
    let (status, body) = refresh(r1).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error":"invalid_request","error_description":"Value passed for the token was invalid."})
    );
    let (status, body) = get(&sb, "/2/users/me", &a2).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"})
    );
    let (status, _) = refresh(second["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(status, 400);
    let families = sb.oauth2_tokens();
    assert!(families[0].revoked);
    assert_eq!(families[0].refreshes, 1);
    assert!(families[0].access_token_prefix.len() < 10);
}

#[tokio::test]
async fn each_route_accepts_the_principals_x_lists() {
    let sb = sandbox().await;
    let base = sb.base_url();
    let app = sb.config().x.bearer_token.clone();
    let dm_url = format!("{base}/2/dm_conversations/with/55125386/messages");
    let send = |auth: String| {
        let url = dm_url.clone();
        async move {
            http()
                .post(url)
                .header("authorization", auth)
                .json(&json!({"text": "hi"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // App-only on a user-context route: 403; an unknown Bearer: 401.
    assert_eq!(send(format!("Bearer {app}")).await, 403);
    assert_eq!(send("Bearer made-up".into()).await, 401);
    // OAuth 2.0 with the scopes, OAuth 1.0a.
    let writer = sb.issue_oauth2_token("4337869213", &["dm.write", "tweet.read", "users.read"]);
    assert_eq!(send(format!("Bearer {}", writer.access_token)).await, 201);
    assert_eq!(send(x_auth(x_creds(&sb), "POST", &dm_url)).await, 201);
    // Missing scope: 403 naming it.
    let reader = sb.issue_oauth2_token("4337869213", &["tweet.read", "users.read"]);
    let (status, body) = get(&sb, "/2/dm_events", &reader.access_token).await;
    assert_eq!(status, 403);
    assert!(
        body["detail"].as_str().unwrap().contains("dm.read"),
        "{body}"
    );
    // Lookups take every principal; webhooks only the app.
    assert_eq!(get(&sb, "/2/users/4337869213", &app).await.0, 200);
    assert_eq!(
        get(&sb, "/2/users/4337869213", &reader.access_token)
            .await
            .0,
        200
    );
    assert_eq!(get(&sb, "/2/webhooks", &app).await.0, 200);
    assert_eq!(get(&sb, "/2/webhooks", &reader.access_token).await.0, 403);
    // The v2 DM media download is OAuth 2.0 only.
    let url = format!("{base}/2/dm_conversations/media/1/2/3");
    let resp = http()
        .get(&url)
        .header("authorization", x_auth(x_creds(&sb), "GET", &url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    // Expired and revoked tokens: 401.
    sb.set_oauth2(OAuth2Settings {
        access_token_lifetime_secs: Some(0),
        ..OAuth2Settings::default()
    });
    let expired = sb.issue_oauth2_token("4337869213", &["tweet.read", "users.read"]);
    assert_eq!(get(&sb, "/2/users/me", &expired.access_token).await.0, 401);
    assert_eq!(sb.revoke_oauth2_user("4337869213"), 3);
    assert_eq!(get(&sb, "/2/users/me", &reader.access_token).await.0, 401);
    let refused = sb
        .x_requests()
        .into_iter()
        .filter(|r| r.status == 401)
        .count();
    assert!(refused >= 3);
}
