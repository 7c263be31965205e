//! Customer Profiles (SigV4 `profile`): SearchProfiles, CreateProfile and UpdateProfile over
//! reqwest with a SigV4-shaped header, their faults and counters, the control listing, and AWS's
//! own client (boto3, from ./.venv) against them.

use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use xdm_sandbox::{ProfilesConfig, SandboxConfig, SandboxHandle};

use crate::support::{http, sandbox, sandbox_with, sigv4_for, venv_python};

const DOMAIN: &str = "xdm-demo";

/// A Customer Profiles call signed for `profile`: `Err` when the connection closed unanswered.
async fn try_call(
    sb: &SandboxHandle,
    method: Method,
    path: &str,
    body: &Value,
) -> Result<(u16, HeaderMap, Value), reqwest::Error> {
    let mut req = http()
        .request(method, format!("{}{path}", sb.base_url()))
        .json(body);
    for (name, value) in sigv4_for(&sb.config().connect.region, "profile") {
        req = req.header(name, value);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    Ok((status, headers, resp.json().await.unwrap_or(Value::Null)))
}

async fn call(sb: &SandboxHandle, method: Method, path: &str, body: Value) -> (u16, Value) {
    let (status, headers, body) = try_call(sb, method, path, &body).await.expect("answered");
    if status >= 400 {
        // Customer Profiles errors: the code in `x-amzn-ErrorType`, the body `{"Message"}`.
        assert!(body["Message"].is_string(), "{status} {body}");
        assert!(body.get("__type").is_none(), "{body}");
        let code = headers["x-amzn-errortype"].to_str().unwrap();
        return (status, json!({"code": code, "Message": body["Message"]}));
    }
    assert!(headers.contains_key("x-amzn-requestid"));
    (status, body)
}

async fn create(sb: &SandboxHandle, body: Value) -> String {
    let (status, answer) = call(
        sb,
        Method::POST,
        &format!("/domains/{DOMAIN}/profiles"),
        body,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    answer["ProfileId"].as_str().unwrap().to_owned()
}

async fn update(sb: &SandboxHandle, body: Value) -> (u16, Value) {
    call(
        sb,
        Method::PUT,
        &format!("/domains/{DOMAIN}/profiles"),
        body,
    )
    .await
}

async fn search_page(sb: &SandboxHandle, query: &str, body: Value) -> (u16, Value) {
    call(
        sb,
        Method::POST,
        &format!("/domains/{DOMAIN}/profiles/search{query}"),
        body,
    )
    .await
}

/// SearchProfiles `key` = `values` → the ProfileIds found (one page).
async fn search_ids(sb: &SandboxHandle, key: &str, values: &[&str]) -> Vec<String> {
    let (status, body) = search_page(sb, "", json!({"KeyName": key, "Values": values})).await;
    assert_eq!(status, 200, "{body}");
    ids(&body)
}

fn ids(page: &Value) -> Vec<String> {
    page["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["ProfileId"].as_str().unwrap().to_owned())
        .collect()
}

fn code(error: &Value) -> &str {
    error["code"].as_str().unwrap()
}

#[tokio::test]
async fn create_search_update_merge_and_list() {
    let sb = sandbox().await;
    let id = create(
        &sb,
        json!({
            "AccountNumber": "x:55125386",
            "FirstName": "Elizabeth",
            "LastName": "Fuentes",
            "PartyType": "INDIVIDUAL",
            "EmailAddress": "eli@example.com",
            "Address": {"City": "Madrid", "Country": "ES"},
            "Attributes": {"x_user_id": "55125386", "x_handle": "ElizabethFue12", "lang": "es"},
            "ProfileType": "PROFILE",
            "EngagementPreferences": {"Email": [{"KeyName": "_email", "KeyValue": "eli@example.com", "ContactType": "EmailAddress"}]},
        }),
    )
    .await;
    assert_eq!(id.len(), 32);
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );

    let (status, page) = search_page(
        &sb,
        "",
        json!({"KeyName": "_account", "Values": ["x:55125386"]}),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        page,
        json!({"Items": [{
            "ProfileId": id,
            "AccountNumber": "x:55125386",
            "PartyType": "INDIVIDUAL",
            "FirstName": "Elizabeth",
            "LastName": "Fuentes",
            "EmailAddress": "eli@example.com",
            "Address": {"City": "Madrid", "Country": "ES"},
            "Attributes": {"x_handle": "ElizabethFue12", "x_user_id": "55125386", "lang": "es"},
            "ProfileType": "PROFILE",
            "EngagementPreferences": {"Email": [{"KeyName": "_email", "KeyValue": "eli@example.com", "ContactType": "EmailAddress"}]},
        }]}),
        "every stored member, ProfileId, no NextToken, no FoundByItems"
    );

    // Present members replace, absent ones stay, "" clears; attributes and address lines merge.
    let (status, answer) = update(
        &sb,
        json!({
            "ProfileId": id,
            "FirstName": "Eli",
            "LastName": "",
            "Address": {"City": ""},
            "Attributes": {"x_handle": "EliFue", "tier": "gold", "x_user_id": ""},
        }),
    )
    .await;
    assert_eq!((status, answer), (200, json!({"ProfileId": id})));
    let (_, page) = search_page(
        &sb,
        "",
        json!({"KeyName": "_account", "Values": ["x:55125386"]}),
    )
    .await;
    let profile = &page["Items"][0];
    assert_eq!(profile["FirstName"], "Eli");
    assert!(profile.get("LastName").is_none(), "{profile}");
    assert_eq!(profile["AccountNumber"], "x:55125386");
    assert_eq!(profile["EmailAddress"], "eli@example.com");
    assert_eq!(profile["PartyType"], "INDIVIDUAL");
    assert_eq!(profile["Address"], json!({"Country": "ES"}));
    assert_eq!(
        profile["Attributes"],
        json!({"x_handle": "EliFue", "tier": "gold", "lang": "es"}),
        "attributes not named are kept"
    );

    let unknown = "0".repeat(32);
    let (status, error) = update(&sb, json!({"ProfileId": unknown, "FirstName": "X"})).await;
    assert_eq!((status, code(&error)), (404, "ResourceNotFoundException"));
    assert!(error["Message"].as_str().unwrap().contains(&unknown));

    // The control API and the handle list every profile with its domain.
    let listed: Value = http()
        .get(format!("{}/_sandbox/connect/profiles", sb.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["domain"], DOMAIN);
    assert_eq!(listed[0]["ProfileId"], id.as_str());
    assert_eq!(listed[0]["FirstName"], "Eli");
    assert_eq!(listed[0]["Attributes"]["tier"], "gold");
    assert!(listed[0]["created_at"].as_str().unwrap() <= listed[0]["updated_at"].as_str().unwrap());
    let views = sb.profiles();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].domain, DOMAIN);
    assert_eq!(views[0].profile.profile_id, id);
    assert_eq!(views[0].profile.first_name.as_deref(), Some("Eli"));
    assert_eq!(views[0].profile.last_name, None);
}

#[tokio::test]
async fn search_keys_and_logical_operators() {
    let sb = sandbox().await;
    let a = create(
        &sb,
        json!({"AccountNumber": "a-1", "FirstName": "Ana", "MiddleName": "María", "LastName": "López",
               "MobilePhoneNumber": "+34600000001", "BusinessEmailAddress": "ana@acme.test"}),
    )
    .await;
    let b = create(
        &sb,
        json!({"AccountNumber": "b-2", "FirstName": "Bruno", "LastName": "Díaz",
               "PhoneNumber": "+34600000002", "PersonalEmailAddress": "bruno@home.test"}),
    )
    .await;

    assert_eq!(search_ids(&sb, "_account", &["a-1"]).await, [a.as_str()]);
    assert_eq!(search_ids(&sb, "_profileId", &[&b]).await, [b.as_str()]);
    assert_eq!(
        search_ids(&sb, "_fullName", &["Ana María López"]).await,
        [a.as_str()]
    );
    assert!(
        search_ids(&sb, "_fullName", &["Ana López"])
            .await
            .is_empty()
    );
    assert!(
        search_ids(&sb, "_fullName", &["Ana  María López"])
            .await
            .is_empty()
    );
    assert_eq!(
        search_ids(&sb, "_fullName", &["Bruno Díaz"]).await,
        [b.as_str()]
    );
    assert_eq!(
        search_ids(&sb, "_phone", &["+34600000002", "+34600000001"]).await,
        [a.as_str(), b.as_str()],
        "any value matches; creation order"
    );
    assert_eq!(
        search_ids(&sb, "_email", &["bruno@home.test"]).await,
        [b.as_str()]
    );
    assert_eq!(
        search_ids(&sb, "_email", &["ana@acme.test"]).await,
        [a.as_str()]
    );
    assert!(
        search_ids(&sb, "_email", &["ANA@acme.test"])
            .await
            .is_empty()
    );
    // A predefined key of profile objects: valid, matches nothing here.
    assert!(search_ids(&sb, "_caseId", &["a-1"]).await.is_empty());

    let (status, error) = search_page(
        &sb,
        "",
        json!({"KeyName": "x_user_id", "Values": ["55125386"]}),
    )
    .await;
    assert_eq!((status, code(&error)), (400, "BadRequestException"));
    assert!(error["Message"].as_str().unwrap().contains("x_user_id"));

    // AND: every key must match; FoundByItems lists them all.
    let (status, page) = search_page(
        &sb,
        "",
        json!({"KeyName": "_account", "Values": ["a-1"], "LogicalOperator": "AND",
               "AdditionalSearchKeys": [{"KeyName": "_phone", "Values": ["+34600000001"]}]}),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(ids(&page), [a.as_str()]);
    assert_eq!(
        page["Items"][0]["FoundByItems"],
        json!([{"KeyName": "_account", "Values": ["a-1"]}, {"KeyName": "_phone", "Values": ["+34600000001"]}])
    );
    let (_, page) = search_page(
        &sb,
        "",
        json!({"KeyName": "_account", "Values": ["a-1"], "LogicalOperator": "AND",
               "AdditionalSearchKeys": [{"KeyName": "_phone", "Values": ["+34600000002"]}]}),
    )
    .await;
    assert!(ids(&page).is_empty());
    // OR (the default): any key; FoundByItems lists the keys each profile matched.
    let (_, page) = search_page(
        &sb,
        "",
        json!({"KeyName": "_account", "Values": ["a-1"],
               "AdditionalSearchKeys": [{"KeyName": "_email", "Values": ["bruno@home.test"]}]}),
    )
    .await;
    assert_eq!(ids(&page), [a.as_str(), b.as_str()]);
    assert_eq!(
        page["Items"][0]["FoundByItems"],
        json!([{"KeyName": "_account", "Values": ["a-1"]}])
    );
    assert_eq!(
        page["Items"][1]["FoundByItems"],
        json!([{"KeyName": "_email", "Values": ["bruno@home.test"]}])
    );
    let (_, page) = search_page(&sb, "", json!({"KeyName": "_account", "Values": ["a-1"]})).await;
    assert!(page["Items"][0].get("FoundByItems").is_none());

    // The request's shape.
    let five = json!([
        {"KeyName": "_phone", "Values": ["1"]}, {"KeyName": "_phone", "Values": ["2"]},
        {"KeyName": "_phone", "Values": ["3"]}, {"KeyName": "_phone", "Values": ["4"]},
        {"KeyName": "_phone", "Values": ["5"]},
    ]);
    for bad in [
        json!({"KeyName": "_account", "Values": ["a-1"], "LogicalOperator": "XOR"}),
        json!({"KeyName": "_account", "Values": ["a-1"], "AdditionalSearchKeys": five}),
        json!({"KeyName": "_account", "Values": ["a-1"], "AdditionalSearchKeys": []}),
        json!({"KeyName": "_account", "Values": ["a-1"], "AdditionalSearchKeys": [{"KeyName": "_phone", "Values": []}]}),
        json!({"KeyName": "_account", "Values": []}),
        json!({"KeyName": "_account", "Values": [""]}),
        json!({"KeyName": "_account", "Values": ["a".repeat(256)]}),
        json!({"KeyName": "_account"}),
        json!({"Values": ["a-1"]}),
        json!({"KeyName": "bad key", "Values": ["a-1"]}),
        json!({"KeyName": "k".repeat(65), "Values": ["a-1"]}),
    ] {
        let (status, error) = search_page(&sb, "", bad.clone()).await;
        assert_eq!(
            (status, code(&error)),
            (400, "BadRequestException"),
            "{bad}"
        );
    }
    let (status, _) = search_page(
        &sb,
        "",
        json!({"KeyName": "_account", "Values": ["a".repeat(255)], "AdditionalSearchKeys": [
            {"KeyName": "_phone", "Values": ["1"]}, {"KeyName": "_phone", "Values": ["2"]},
            {"KeyName": "_phone", "Values": ["3"]}, {"KeyName": "_email", "Values": ["4"]}]}),
    )
    .await;
    assert_eq!(status, 200, "255 characters and 5 keys in all fit");
}

#[tokio::test]
async fn search_pages_with_next_token() {
    let sb = sandbox().await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(
            create(
                &sb,
                json!({"AccountNumber": "shared", "FirstName": format!("P{i}")}),
            )
            .await,
        );
    }
    let body = json!({"KeyName": "_account", "Values": ["shared"]});
    let mut seen = Vec::new();
    let mut query = "?max-results=2".to_owned();
    let mut pages = 0;
    loop {
        let (status, page) = search_page(&sb, &query, body.clone()).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        let found = ids(&page);
        assert!(found.len() <= 2);
        seen.extend(found);
        match page["NextToken"].as_str() {
            Some(token) => query = format!("?max-results=2&next-token={token}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created, "every profile once, in creation order");

    // A token belongs to its search; garbage is refused; MaxResults is 1..=100.
    let (_, first) = search_page(&sb, "?max-results=2", body.clone()).await;
    let token = first["NextToken"].as_str().unwrap();
    for (query, body) in [
        (
            format!("?next-token={token}"),
            json!({"KeyName": "_account", "Values": ["other"]}),
        ),
        ("?next-token=not-a-token".to_owned(), body.clone()),
        ("?max-results=0".to_owned(), body.clone()),
        ("?max-results=101".to_owned(), body.clone()),
        ("?max-results=ten".to_owned(), body.clone()),
    ] {
        let (status, error) = search_page(&sb, &query, body).await;
        assert_eq!(
            (status, code(&error)),
            (400, "BadRequestException"),
            "{query}"
        );
    }
    let (status, page) = search_page(&sb, "?max-results=100", body.clone()).await;
    assert_eq!((status, ids(&page).len()), (200, 5));
    assert!(page.get("NextToken").is_none());

    // Default page: 20.
    for _ in 0..16 {
        create(&sb, json!({"AccountNumber": "shared"})).await;
    }
    let (_, page) = search_page(&sb, "", body.clone()).await;
    assert_eq!(ids(&page).len(), 20);
    let token = page["NextToken"].as_str().unwrap();
    let (_, rest) = search_page(&sb, &format!("?next-token={token}"), body).await;
    assert_eq!(ids(&rest).len(), 1);
    assert!(rest.get("NextToken").is_none());
}

#[tokio::test]
async fn inputs_are_checked_against_the_model() {
    let sb = sandbox().await;
    let path = format!("/domains/{DOMAIN}/profiles");
    let max = "a".repeat(255);
    let id = create(
        &sb,
        json!({"FirstName": max, "AccountNumber": max, "AdditionalInformation": "i".repeat(1000),
               "Attributes": {max.clone(): max}, "Address": {"PostalCode": max}}),
    )
    .await;
    for bad in [
        json!({"FirstName": ""}),
        json!({"FirstName": "a".repeat(256)}),
        json!({"AccountNumber": "a".repeat(256)}),
        json!({"AdditionalInformation": "i".repeat(1001)}),
        json!({"Attributes": {"k": ""}}),
        json!({"Attributes": {"k".repeat(256): "v"}}),
        json!({"Attributes": {"k": "v".repeat(256)}}),
        json!({"Address": {"City": ""}}),
        json!({"BillingAddress": {"City": "c".repeat(256)}}),
        json!({"PartyType": "PERSON"}),
        json!({"Gender": "male"}),
        json!({"ProfileType": "ACCOUNT"}),
        json!({"EngagementPreferences": {"Phone": [{"ContactType": "Fax"}]}}),
        json!({"FirstName": 5}),
    ] {
        let (status, error) = call(&sb, Method::POST, &path, bad.clone()).await;
        assert_eq!(
            (status, code(&error)),
            (400, "BadRequestException"),
            "{bad}"
        );
    }
    let resp = http()
        .post(format!("{}{path}", sb.base_url()))
        .headers(profile_headers(&sb))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["x-amzn-errortype"], "BadRequestException");
    assert_eq!(sb.profiles().len(), 1, "refused creates store nothing");

    // UpdateProfile: ProfileId required and well-formed; "" allowed (clears); limits still apply.
    for (bad, expected) in [
        (json!({"FirstName": "x"}), 400),
        (json!({"ProfileId": "abc", "FirstName": "x"}), 400),
        (
            json!({"ProfileId": id.to_uppercase(), "FirstName": "x"}),
            400,
        ),
        (json!({"ProfileId": id, "FirstName": "a".repeat(256)}), 400),
        (json!({"ProfileId": id, "Gender": ""}), 400),
        (json!({"ProfileId": id, "Attributes": {"": "v"}}), 400),
    ] {
        let (status, error) = update(&sb, bad.clone()).await;
        assert_eq!(status, expected, "{bad} {error}");
        assert_eq!(code(&error), "BadRequestException");
    }
    let (status, _) = update(
        &sb,
        json!({"ProfileId": id, "FirstName": "", "Gender": "FEMALE", "Attributes": {max.clone(): ""}}),
    )
    .await;
    assert_eq!(status, 200);
    let profile = &sb.profiles()[0].profile;
    assert_eq!(profile.first_name, None);
    assert_eq!(profile.gender, Some(xdm_sandbox::Gender::Female));
    assert!(profile.attributes.is_empty());
    assert_eq!(profile.account_number.as_deref(), Some(max.as_str()));
}

fn profile_headers(sb: &SandboxHandle) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in sigv4_for(&sb.config().connect.region, "profile") {
        headers.insert(name, value.parse().unwrap());
    }
    headers
}

#[tokio::test]
async fn domains_are_the_configured_ones() {
    let sb = sandbox_with(SandboxConfig {
        profiles: ProfilesConfig {
            domains: vec!["acme".into(), "support_2".into()],
        },
        ..SandboxConfig::default()
    })
    .await;
    let search = json!({"KeyName": "_account", "Values": ["a"]});
    for (method, path, body) in [
        (
            Method::POST,
            "/domains/xdm-demo/profiles/search",
            search.clone(),
        ),
        (
            Method::POST,
            "/domains/xdm-demo/profiles",
            json!({"AccountNumber": "a"}),
        ),
        (
            Method::PUT,
            "/domains/xdm-demo/profiles",
            json!({"ProfileId": "0".repeat(32)}),
        ),
    ] {
        let (status, error) = call(&sb, method, path, body).await;
        assert_eq!(
            (status, code(&error)),
            (404, "ResourceNotFoundException"),
            "{path}"
        );
        assert!(
            error["Message"].as_str().unwrap().contains("xdm-demo"),
            "{error}"
        );
    }
    let (status, created) = call(
        &sb,
        Method::POST,
        "/domains/acme/profiles",
        json!({"AccountNumber": "a"}),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let (_, page) = call(
        &sb,
        Method::POST,
        "/domains/acme/profiles/search",
        search.clone(),
    )
    .await;
    assert_eq!(ids(&page), [created["ProfileId"].as_str().unwrap()]);
    let (_, page) = call(
        &sb,
        Method::POST,
        "/domains/support_2/profiles/search",
        search.clone(),
    )
    .await;
    assert!(ids(&page).is_empty(), "domains do not share profiles");
    // A profile of one domain cannot be updated through another.
    let (status, _) = call(
        &sb,
        Method::PUT,
        "/domains/support_2/profiles",
        json!({"ProfileId": created["ProfileId"], "FirstName": "X"}),
    )
    .await;
    assert_eq!(status, 404);

    for domain in ["bad%20domain", &"d".repeat(65)] {
        let (status, error) = call(
            &sb,
            Method::POST,
            &format!("/domains/{domain}/profiles/search"),
            search.clone(),
        )
        .await;
        assert_eq!(
            (status, code(&error)),
            (400, "BadRequestException"),
            "{domain}"
        );
    }
    assert_eq!(sb.profiles()[0].domain, "acme");
    assert_eq!(
        SandboxConfig::default().profiles.domains,
        [xdm_sandbox::DEFAULT_PROFILES_DOMAIN]
    );
    assert_eq!(xdm_sandbox::DEFAULT_PROFILES_DOMAIN, "xdm-demo");

    // Operations the sandbox does not emulate answer in the service's error shape.
    let (status, error) = call(&sb, Method::POST, "/domains/acme/profiles/keys", json!({})).await;
    assert_eq!((status, code(&error)), (404, "UnknownOperationException"));
}

#[tokio::test]
async fn sigv4_must_be_scoped_to_profile() {
    let sb = sandbox().await;
    let url = format!("{}/domains/{DOMAIN}/profiles", sb.base_url());
    let body = json!({"AccountNumber": "a"});
    let region = sb.config().connect.region.clone();
    let refused = [
        (Vec::new(), "MissingAuthenticationTokenException"),
        (
            sigv4_for(&region, "connect").to_vec(),
            "InvalidSignatureException",
        ),
        (
            sigv4_for("eu-west-1", "profile").to_vec(),
            "InvalidSignatureException",
        ),
    ];
    for (headers, expected) in refused {
        let mut req = http().post(&url).json(&body);
        for (name, value) in headers {
            req = req.header(name, value);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 403);
        assert_eq!(resp.headers()["x-amzn-errortype"], expected);
        let body: Value = resp.json().await.unwrap();
        assert!(body["Message"].is_string(), "{body}");
    }
    assert!(sb.profiles().is_empty());
    let (status, _) = call(
        &sb,
        Method::POST,
        &format!("/domains/{DOMAIN}/profiles"),
        body,
    )
    .await;
    assert_eq!(status, 200);
    let stats = sb.stats();
    let op = stats.op(xdm_sandbox::FaultOp::CreateProfile);
    assert_eq!((op.calls, op.status_4xx, op.status_2xx), (4, 3, 1));
}

#[tokio::test]
async fn faults_and_stats_cover_the_profile_operations() {
    let sb = sandbox().await;
    let ctl = format!("{}/_sandbox", sb.base_url());
    let id = create(&sb, json!({"AccountNumber": "a", "FirstName": "Before"})).await;
    let control = |method: Method, path: &str, body: Value| {
        let req = http().request(method, format!("{ctl}{path}")).json(&body);
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // Queued errors, by their control names; default codes are the service's.
    let (status, pending) = control(
        Method::POST,
        "/faults",
        json!({"op": "CreateProfile", "count": 1, "fault": {"status": 429}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(pending[0]["op"], "CreateProfile");
    control(
        Method::POST,
        "/faults",
        json!({"op": "SearchProfiles", "count": 1, "fault": {"status": 500}}),
    )
    .await;
    let (status, error) = call(
        &sb,
        Method::POST,
        &format!("/domains/{DOMAIN}/profiles"),
        json!({"AccountNumber": "b"}),
    )
    .await;
    assert_eq!((status, code(&error)), (429, "ThrottlingException"));
    let (status, error) =
        search_page(&sb, "", json!({"KeyName": "_account", "Values": ["a"]})).await;
    assert_eq!((status, code(&error)), (500, "InternalServerException"));
    assert_eq!(sb.profiles().len(), 1, "the faulted create stored nothing");

    // A hang: the call waits, then proceeds.
    control(
        Method::POST,
        "/faults",
        json!({"op": "UpdateProfile", "count": 1, "fault": {"delay_ms": 300}}),
    )
    .await;
    let started = Instant::now();
    let (status, _) = update(&sb, json!({"ProfileId": id, "FirstName": "Slow"})).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    // A dropped connection before the call takes effect.
    let (status, _) = control(
        Method::POST,
        "/faults/profiles",
        json!({"op": "UpdateProfile", "profile": {"drop_rate": 1.0, "drop_mode": "Before"}}),
    )
    .await;
    assert_eq!(status, 200);
    let dropped = try_call(
        &sb,
        Method::PUT,
        &format!("/domains/{DOMAIN}/profiles"),
        &json!({"ProfileId": id, "FirstName": "Lost"}),
    )
    .await;
    assert!(dropped.is_err(), "{dropped:?}");
    assert_eq!(sb.profiles()[0].profile.first_name.as_deref(), Some("Slow"));
    let (status, _) = control(Method::DELETE, "/faults/profiles", Value::Null).await;
    assert_eq!(status, 204);

    // Throttling burst and the Connect down switch.
    control(
        Method::POST,
        "/faults/burst",
        json!({"op": "SearchProfiles", "count": 1, "reset_after_secs": 60}),
    )
    .await;
    let (status, error) =
        search_page(&sb, "", json!({"KeyName": "_account", "Values": ["a"]})).await;
    assert_eq!((status, code(&error)), (429, "ThrottlingException"));
    control(
        Method::POST,
        "/faults/down",
        json!({"side": "Connect", "down": true}),
    )
    .await;
    let (status, error) = update(&sb, json!({"ProfileId": id})).await;
    assert_eq!((status, code(&error)), (503, "ServiceUnavailableException"));
    control(
        Method::POST,
        "/faults/down",
        json!({"side": "Connect", "down": false}),
    )
    .await;
    let (status, _) = search_page(&sb, "", json!({"KeyName": "_account", "Values": ["a"]})).await;
    assert_eq!(status, 200);

    let (_, stats) = control(Method::GET, "/stats", Value::Null).await;
    let ops = &stats["ops"];
    assert_eq!(ops["CreateProfile"]["calls"], 2);
    assert_eq!(ops["CreateProfile"]["status_429"], 1);
    assert_eq!(ops["CreateProfile"]["faults"]["errors"], 1);
    assert_eq!(ops["SearchProfiles"]["calls"], 3);
    assert_eq!(ops["SearchProfiles"]["status_5xx"], 1);
    assert_eq!(ops["SearchProfiles"]["faults"]["throttled"], 1);
    assert_eq!(ops["UpdateProfile"]["calls"], 3);
    assert_eq!(ops["UpdateProfile"]["dropped"], 1);
    assert_eq!(ops["UpdateProfile"]["faults"]["dropped_before"], 1);
    assert_eq!(ops["UpdateProfile"]["faults"]["down"], 1);
    assert_eq!(ops["UpdateProfile"]["faults"]["delayed"], 1);
}

/// AWS's own client (`boto3` `customer-profiles`, from ./.venv: `./scripts/venv.sh`) against the
/// sandbox: botocore's serialisation, SigV4 and error parsing.
#[tokio::test]
async fn boto3_customer_profiles_client_talks_to_the_sandbox() {
    let (python, script) = venv_python(
        "customer_profiles_client.py",
        "boto3 (a dependency of moto)",
    );
    let sb = sandbox().await;
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(sb.base_url())
        .arg(DOMAIN)
        // Nothing from the environment may redirect or re-credential the client.
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_CUSTOMER_PROFILES")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "boto3 script failed (is boto3 in ./.venv? run ./scripts/venv.sh): {stderr}"
    );
    let v: Value = serde_json::from_slice(&output.stdout).unwrap();
    let id = v["created"]["ProfileId"].as_str().unwrap();
    assert_eq!(id.len(), 32, "{v}");
    let found = &v["found"]["Items"][0];
    assert_eq!(found["ProfileId"], id);
    assert_eq!(found["FirstName"], "Elizabeth");
    assert_eq!(found["Address"]["City"], "Madrid");
    assert_eq!(found["Attributes"]["x_handle"], "ElizabethFue12");
    assert_eq!(v["updated"]["ProfileId"], id);
    let again = &v["found_again"]["Items"][0];
    assert_eq!(again["FirstName"], "Eli");
    assert!(again.get("LastName").is_none(), "{again}");
    assert_eq!(
        again["Attributes"],
        json!({"x_user_id": "55125386", "x_handle": "EliFue"})
    );
    for (name, code, status) in [
        ("unknown_domain", "ResourceNotFoundException", 404),
        ("unknown_key", "BadRequestException", 400),
    ] {
        let error = &v[name];
        assert_eq!(error["code"], code, "{v}");
        assert_eq!(error["status"], status);
        assert_eq!(
            error["modeled"], true,
            "botocore raised its modeled {code}: {v}"
        );
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let views = sb.profiles();
    assert_eq!(views.len(), 1);
    assert_eq!(
        views[0].profile.account_number.as_deref(),
        Some("x:55125386")
    );
}
