//! Loading the configuration: defaults, the environment over the file, errors naming the
//! setting, and secrets kept out of `Debug`.

#![allow(clippy::unwrap_used)]
use std::collections::HashMap;

use super::*;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k| map.get(k).cloned()
}

#[test]
fn defaults_apply_without_file_or_env() {
    let c = Config::from_toml("", &env(&[])).unwrap();
    assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(c.store, DEFAULT_STORE);
    assert_eq!(c.x.api_url, DEFAULT_X_API_URL);
    assert_eq!(
        c.x.media_hosts,
        vec!["ton.twitter.com", "pbs.twimg.com", "video.twimg.com"]
    );
    assert_eq!(c.missing_for_delivery().len(), 7);
    assert!(c.webhook_secret().is_none());
}

#[test]
fn env_overrides_file() {
    let toml = r#"
        listen = "127.0.0.1:9000"
        [x]
        consumer_secret = "from-file"
        api_url = "http://127.0.0.1:1"
        [connect]
        instance_id = "i-file"
    "#;
    let c = Config::from_toml(
        toml,
        &env(&[
            ("XDM_X_CONSUMER_SECRET", "from-env"),
            ("XDM_X_MEDIA_HOSTS", "ton.twitter.com, http://127.0.0.1:9"),
            (
                "XDM_SNS_TRUSTED_CERT_URLS",
                "http://127.0.0.1:9/sns/cert.pem",
            ),
            ("XDM_LISTEN", ""),
        ]),
    )
    .unwrap();
    assert_eq!(
        c.listen.to_string(),
        "127.0.0.1:9000",
        "empty env var counts as unset"
    );
    assert_eq!(c.webhook_secret(), Some("from-env"));
    assert_eq!(c.x.api_url, "http://127.0.0.1:1");
    assert_eq!(c.connect.instance_id.as_deref(), Some("i-file"));
    assert_eq!(
        c.x.media_hosts,
        vec!["ton.twitter.com", "http://127.0.0.1:9"]
    );
    assert_eq!(
        c.sns.trusted_cert_urls,
        vec!["http://127.0.0.1:9/sns/cert.pem"]
    );
}

#[test]
fn errors_name_the_setting() {
    let err = |pairs: &[(&str, &str)]| Config::from_toml("", &env(pairs)).unwrap_err().to_string();
    assert!(err(&[("XDM_LISTEN", "nope")]).starts_with("XDM_LISTEN is invalid"));
    assert!(err(&[("XDM_X_API_URL", "api.x.com")]).starts_with("XDM_X_API_URL is invalid"));
    assert!(
        err(&[("XDM_CONNECT_TOPIC_ARN", "topic")]).starts_with("XDM_CONNECT_TOPIC_ARN is invalid")
    );
    assert!(err(&[("XDM_MAX_BODY_BYTES", "ten")]).starts_with("XDM_MAX_BODY_BYTES is invalid"));
    assert!(err(&[("XDM_LOG_FORMAT", "xml")]).starts_with("XDM_LOG_FORMAT is invalid"));
    let unknown = Config::from_toml("[x]\nconsumer_sekret = \"a\"", &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("consumer_sekret"), "{unknown}");
}

#[test]
fn x_activity_settings() {
    let c = Config::from_toml(
        "[x]\ndelivery = \"stream\"\nclient_id = \"cid\"\nwebhook_id = \"123\"",
        &env(&[
            ("XDM_X_CLIENT_SECRET", "cs"),
            ("XDM_X_CRC_KEY", "consumer_secret"),
            ("XDM_X_API_URL", "http://127.0.0.1:9"),
        ]),
    )
    .unwrap();
    assert_eq!(c.x.delivery, XDelivery::Stream);
    assert_eq!(c.x.crc_key, CrcKeySetting::ConsumerSecret);
    assert_eq!(c.x.webhook_id.as_deref(), Some("123"));
    assert_eq!(c.x.authorize_url, "http://127.0.0.1:9/i/oauth2/authorize");
    assert_eq!(c.x.redirect_uri, DEFAULT_X_REDIRECT_URI);
    assert!(c.x.catch_up);
    assert_eq!(c.client_secret(), Some("cs"));
    // OAuth 2.0 only: no OAuth 1.0a setting is missing; the stream needs the bearer token.
    assert_eq!(
        c.missing_for_delivery(),
        vec![
            "XDM_X_BEARER_TOKEN",
            "XDM_CONNECT_INSTANCE_ID",
            "XDM_CONNECT_CONTACT_FLOW_ID",
            "XDM_CONNECT_TOPIC_ARN"
        ]
    );
    let d = Config::from_toml("", &env(&[])).unwrap();
    assert_eq!(d.x.authorize_url, DEFAULT_X_AUTHORIZE_URL);
    assert_eq!(d.x.delivery, XDelivery::Webhook);
    let err = |pairs: &[(&str, &str)]| Config::from_toml("", &env(pairs)).unwrap_err().to_string();
    assert!(err(&[("XDM_X_DELIVERY", "poll")]).starts_with("XDM_X_DELIVERY is invalid"));
    assert!(err(&[("XDM_X_CRC_KEY", "bearer")]).starts_with("XDM_X_CRC_KEY is invalid"));
    assert!(err(&[("XDM_X_WEBHOOK_ID", "abc")]).starts_with("XDM_X_WEBHOOK_ID is invalid"));
    assert!(err(&[("XDM_X_CATCH_UP", "maybe")]).starts_with("XDM_X_CATCH_UP is invalid"));
    assert!(
        err(&[("XDM_SNS_REQUIRE_SIGNATURE_V2", "yes")])
            .starts_with("XDM_SNS_REQUIRE_SIGNATURE_V2 is invalid")
    );
    // One spelling of a switch for every switch.
    let on = Config::from_toml(
        "",
        &env(&[
            ("XDM_X_CATCH_UP", " off "),
            ("XDM_SNS_REQUIRE_SIGNATURE_V2", "on"),
        ]),
    )
    .unwrap();
    assert!(!on.x.catch_up);
    assert!(on.sns.require_signature_v2);
}

#[test]
fn secrets_do_not_print() {
    let c = Config::from_toml("", &env(&[("XDM_X_CONSUMER_SECRET", "hunter2")])).unwrap();
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn http_limits_and_admin_listener() {
    let d = Config::from_toml("", &env(&[])).unwrap();
    assert_eq!(d.http.max_connections, 512);
    assert_eq!(d.http.header_timeout_ms, 10_000);
    assert_eq!(d.http.idle_timeout_ms, 75_000);
    assert_eq!(d.admin.listen.unwrap().to_string(), DEFAULT_ADMIN_LISTEN);
    assert!(d.admin.token.is_none());

    let c = Config::from_toml(
        "[http]\nmax_connections = 10\nbody_timeout_ms = 2000\n[admin]\nlisten = \"127.0.0.1:9999\"",
        &env(&[
            ("XDM_HTTP_MAX_CONNECTIONS", "20"),
            ("XDM_ADMIN_TOKEN", "0123456789abcdef-secret"),
        ]),
    )
    .unwrap();
    assert_eq!(c.http.max_connections, 20);
    assert_eq!(c.http.body_timeout_ms, 2000);
    assert_eq!(c.admin.listen.unwrap().port(), 9999);
    assert!(!format!("{c:?}").contains("0123456789abcdef-secret"));
    let off = Config::from_toml("", &env(&[("XDM_ADMIN_LISTEN", "off")])).unwrap();
    assert!(off.admin.listen.is_none());

    let err = |pairs: &[(&str, &str)]| Config::from_toml("", &env(pairs)).unwrap_err().to_string();
    assert!(
        err(&[("XDM_HTTP_MAX_CONNECTIONS", "0")])
            .starts_with("XDM_HTTP_MAX_CONNECTIONS is invalid")
    );
    assert!(
        err(&[("XDM_HTTP_HEADER_TIMEOUT_MS", "5")])
            .starts_with("XDM_HTTP_HEADER_TIMEOUT_MS is invalid")
    );
    assert!(
        err(&[("XDM_HTTP_MAX_BUFFERED_BYTES", "2048")])
            .starts_with("XDM_HTTP_MAX_BUFFERED_BYTES is invalid")
    );
    assert!(err(&[("XDM_ADMIN_LISTEN", "9090")]).starts_with("XDM_ADMIN_LISTEN is invalid"));
    assert!(
        err(&[
            ("XDM_LISTEN", "127.0.0.1:9000"),
            ("XDM_ADMIN_LISTEN", "127.0.0.1:9000")
        ])
        .starts_with("XDM_ADMIN_LISTEN is invalid")
    );
    let short = err(&[("XDM_ADMIN_TOKEN", "hunter2")]);
    assert!(short.starts_with("XDM_ADMIN_TOKEN is invalid"), "{short}");
    assert!(!short.contains("hunter2"));
}

#[test]
fn further_business_accounts_route_their_chats_and_are_checked() {
    let toml = r#"
        [connect]
        contact_flow_id = "default-flow"
        persistent_chat_days = 30
        profiles_domain = "xdm-demo"
        [delivery]
        buffer_window_ms = 2000
        [[x.accounts]]
        user_id = "1000000000000000001"
        access_token = "t"
        access_token_secret = "s"
        contact_flow_id = "flow-b"
        attributes = { brand = "B", queue = "vip" }
        [[x.accounts]]
        user_id = "1000000000000000002"
    "#;
    let c = Config::from_toml(toml, &env(&[])).unwrap();
    assert_eq!(c.x.accounts.len(), 2);
    assert!(c.x.accounts[0].oauth1.is_some());
    assert!(c.x.accounts[1].oauth1.is_none(), "an OAuth 2.0 account");
    let b = xdm_core::ids::XUserId::parse("1000000000000000001").unwrap();
    let routing = &c.bridge_config().accounts[&b];
    assert_eq!(routing.contact_flow_id.as_deref(), Some("flow-b"));
    assert_eq!(routing.attributes["brand"], "B");
    assert_eq!(c.connect.profiles_domain.as_deref(), Some("xdm-demo"));
    assert_eq!(c.delivery.persistent_chat_window_ms, 30 * 24 * 3600 * 1000);
    assert_eq!(c.delivery.buffer_window_ms, 2000);
    assert!(!format!("{c:?}").contains("\"t\""));

    for (bad, setting) in [
        (
            "[[x.accounts]]\nuser_id = \"12\"\naccess_token = \"t\"",
            "x.accounts.access_token",
        ),
        ("[[x.accounts]]\nuser_id = \"@brand\"", "x.accounts.user_id"),
        (
            "[[x.accounts]]\nuser_id = \"12\"\ncontact_flow_id = \"a b\"",
            "x.accounts.contact_flow_id",
        ),
        (
            "[[x.accounts]]\nuser_id = \"12\"\nattributes = { \"\" = \"v\" }",
            "x.accounts.attributes",
        ),
        (
            "[[x.accounts]]\nuser_id = \"12\"\nattributes = { \"a key\" = \"v\" }",
            "x.accounts.attributes",
        ),
        (
            "[connect]\npersistent_chat_days = 731",
            "XDM_CONNECT_PERSISTENT_CHAT_DAYS",
        ),
        (
            "[delivery]\nbuffer_window_ms = 60001",
            "XDM_BUFFER_WINDOW_MS",
        ),
        ("[delivery]\nbuffer_window_ms = -1", "XDM_BUFFER_WINDOW_MS"),
    ] {
        let e = Config::from_toml(bad, &env(&[])).unwrap_err().to_string();
        assert!(e.contains(setting), "{bad}: {e}");
    }
    let e = Config::from_toml("", &env(&[("XDM_CONNECT_PERSISTENT_CHAT_DAYS", "x")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("XDM_CONNECT_PERSISTENT_CHAT_DAYS"), "{e}");
}

#[test]
fn x_chat_keys_come_in_pairs_are_checked_and_never_echoed() {
    // X's SDK vectors' blob (testdata/xchat-vectors.json, alice).
    let blob =
        "YwNTM8/rLkxJrajQY1oEqhYitLEpkmdBaACwEXo4BwkLIML9kuB+H/a5tNolMs/c9pyu55q7oezadEsn6FOEPQ==";
    let c = Config::from_toml(
        "",
        &env(&[
            ("XDM_X_CHAT_KEYS", blob),
            ("XDM_X_CHAT_KEY_VERSION", "1765382634817"),
        ]),
    )
    .unwrap();
    assert_eq!(c.x.chat_key_version.as_deref(), Some("1765382634817"));
    assert!(!format!("{c:?}").contains(blob));
    let err = |toml: &str, pairs: &[(&str, &str)]| {
        Config::from_toml(toml, &env(pairs))
            .unwrap_err()
            .to_string()
    };
    let e = err("", &[("XDM_X_CHAT_KEYS", blob)]);
    assert!(e.starts_with("XDM_X_CHAT_KEY_VERSION is invalid"), "{e}");
    let e = err("", &[("XDM_X_CHAT_KEY_VERSION", "1")]);
    assert!(e.starts_with("XDM_X_CHAT_KEYS is invalid"), "{e}");
    let short = "c2hvcnQgYmxvYg==";
    let e = err(
        "",
        &[("XDM_X_CHAT_KEYS", short), ("XDM_X_CHAT_KEY_VERSION", "1")],
    );
    assert!(
        e.starts_with("XDM_X_CHAT_KEYS is invalid") && !e.contains(short),
        "{e}"
    );
    // A further account's own keys, checked the same way.
    let c = Config::from_toml(
        &format!(
            "[[x.accounts]]\nuser_id = \"12\"\nchat_keys = \"{blob}\"\nchat_key_version = \"5\"\n\
             [[x.accounts]]\nuser_id = \"13\""
        ),
        &env(&[]),
    )
    .unwrap();
    assert!(c.x.accounts[0].chat.is_some() && c.x.accounts[1].chat.is_none());
    let e = err(
        &format!("[[x.accounts]]\nuser_id = \"12\"\nchat_keys = \"{blob}\""),
        &[],
    );
    assert!(
        e.starts_with("x.accounts.chat_key_version is invalid"),
        "{e}"
    );
}
