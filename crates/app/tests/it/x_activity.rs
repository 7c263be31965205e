//! Issue "keep working after X retires the Account Activity API", end to end over real sockets
//! against the sandbox (which refuses the Account Activity API by default, as X will on
//! 2027-01-01): `setup --non-interactive` with an OAuth 2.0 login, stream delivery through a
//! dropped stream, short-lived and revoked OAuth 2.0 tokens, replay, the start-up catch-up, and
//! `doctor`'s failure lines.

use std::sync::Arc;
use std::time::Duration;

use xdm_app::commands::doctor;
use xdm_app::commands::setup::{self, SetupArgs};
use xdm_app::commands::x::login::{self, LoginArgs, Opener};
use xdm_app::commands::x::{self as xcmd, Api, ReplayArgs};
use xdm_app::config::{Config, XDelivery};
use xdm_app::sandbox_link::{self, LinkedBridge};
use xdm_app::x_link::XLink;
use xdm_core::jobs::{JobQueue, JobState};
use xdm_core::ports::Store;
use xdm_sandbox::{
    DmSpec, MediaFile, MediaSpec, Sandbox, SandboxConfig, SandboxHandle, SandboxUser,
};

use crate::helpers::{CUSTOMER, WAIT, customer_messages};

/// A bridge of these tests: the shared harness, with its detailed `/healthz` at hand.
struct Running(LinkedBridge);

impl std::ops::Deref for Running {
    type Target = LinkedBridge;
    fn deref(&self) -> &LinkedBridge {
        &self.0
    }
}

impl Running {
    async fn stop(self) {
        self.0.stop().await.unwrap();
    }

    /// `/healthz` with its details, from the admin listener.
    async fn healthz(&self) -> (u16, serde_json::Value) {
        let admin = self.admin_base.as_ref().expect("an admin listener");
        let r = reqwest::Client::new()
            .get(format!("{admin}/healthz"))
            .bearer_auth(sandbox_link::SANDBOX_ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }
}

fn sdk(sandbox: &SandboxHandle) -> aws_config::SdkConfig {
    sandbox_link::sdk_config(sandbox)
        .into_builder()
        .endpoint_url(sandbox.base_url())
        .build()
}

/// A bridge on `store`, configured like `demo` then changed by `tweak`; its SNS endpoint is
/// subscribed (not its X webhook: each test sets X up its own way).
async fn start(sandbox: &SandboxHandle, store: &str, tweak: impl FnOnce(&mut Config)) -> Running {
    let running = Box::pin(LinkedBridge::start(sandbox, store, |config| {
        config.delivery.reorder_window_ms = 100;
        config.delivery.outbound_reorder_window_ms = 100;
        config.delivery.retry_base_ms = 50;
        tweak(config);
    }))
    .await
    .unwrap();
    Running(running)
}

/// Registers the bridge's X webhook and DM subscriptions in the sandbox, as a set-up bridge has.
async fn link_x(sandbox: &SandboxHandle, bridge: &Running) {
    bridge.link_x_webhook(sandbox).await.unwrap();
}

/// OAuth 2.0 only: no OAuth 1.0a setting at all.
fn oauth2_only(sandbox: &SandboxHandle) -> impl FnOnce(&mut Config) + use<> {
    let client_id = sandbox_link::oauth2_client_id(sandbox);
    move |c: &mut Config| {
        c.x.consumer_key = None;
        c.x.consumer_secret = None;
        c.x.access_token = None;
        c.x.access_token_secret = None;
        c.x.client_id = Some(client_id);
        c.x.redirect_uri = format!("http://127.0.0.1:{}/callback", free_port());
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The person approving the app in a browser: follows X's redirect to the loopback callback.
fn browser() -> Opener {
    Opener::With(Arc::new(|url: String| {
        tokio::spawn(async move {
            let _ = reqwest::get(url).await;
        });
    }))
}

fn add_customer(sandbox: &SandboxHandle) {
    sandbox.add_user(SandboxUser::new(CUSTOMER, "Jordan Brinks", "furiouscamper"));
}

async fn customer_texts_once(sandbox: &SandboxHandle, want: &[String]) {
    let found = sandbox
        .wait_until("the customer's DMs in Connect", WAIT, |_| {
            let all: Vec<String> = sandbox
                .contacts()
                .iter()
                .flat_map(customer_messages)
                .collect();
            (all.len() >= want.len()).then_some(all)
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let all: Vec<String> = sandbox
        .contacts()
        .iter()
        .flat_map(customer_messages)
        .collect();
    assert_eq!(
        all, want,
        "each DM exactly once, in order (first seen: {found:?})"
    );
}

async fn agent_reply(sandbox: &SandboxHandle, text: &str) {
    let contact = sandbox.contacts().last().unwrap().contact_id.clone();
    if sandbox.contact(&contact).unwrap().agent.is_none() {
        sandbox.agent_accept(&contact, "Enrique").unwrap();
    }
    sandbox.agent_send(&contact, text, "text/plain").unwrap();
    sandbox
        .wait_until(&format!("the DM {text:?} on X"), WAIT, |_| {
            sandbox
                .sent_dms()
                .iter()
                .any(|d| d.text.as_deref() == Some(text))
                .then_some(())
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn setup_goes_live_on_the_activity_api_with_oauth2_only_and_again_changes_nothing() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    assert!(
        !sandbox.config().x.account_activity_api,
        "the sandbox refuses AAA"
    );
    add_customer(&sandbox);
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("bridge.db").display());
    let bridge = start(&sandbox, &store, oauth2_only(&sandbox)).await;
    let file = dir.path().join("xdm-connect.toml");
    let sb = sandbox.config();
    let args = SetupArgs {
        non_interactive: true,
        x_api_url: Some(sandbox.base_url()),
        client_id: Some(sb.x.client_id.clone()),
        client_secret: Some(sb.x.client_secret.clone()),
        bearer_token: Some(sb.x.bearer_token.clone()),
        public_url: Some(bridge.base.clone()),
        connect_instance_id: Some(sb.connect.instance_id.clone()),
        contact_flow_id: Some(sb.connect.contact_flow_id.clone()),
        topic_arn: Some(sandbox.sns_topic_arn()),
        store: Some(store.clone()),
        redirect_uri: Some(bridge.config.x.redirect_uri.clone()),
        ..SetupArgs::default()
    };
    Box::pin(setup::run_with(
        Some(&file),
        args.clone(),
        browser(),
        Some(sdk(&sandbox)),
    ))
    .await
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let hooks = sandbox.webhooks();
    assert_eq!(hooks.len(), 1);
    assert!(hooks[0].valid);
    assert_eq!(hooks[0].url, format!("{}/webhooks/x", bridge.base));
    let subs = sandbox.activity_subscriptions();
    let mut types: Vec<&str> = subs.iter().map(|s| s.event_type.as_str()).collect();
    types.sort_unstable();
    assert_eq!(types, ["dm.indicate_typing", "dm.read", "dm.received"]);
    for s in &subs {
        assert_eq!(s.webhook_id.as_deref(), Some(hooks[0].id.as_str()));
        assert_eq!(s.tag.as_deref(), Some("xdm-connect"));
        assert_eq!(s.filter.user_id.as_deref(), Some(sb.x.business.id.as_str()));
    }

    // A customer DM reaches Connect; the agent's reply reaches X, on OAuth 2.0.
    let d = sandbox
        .deliver_dm(DmSpec::text(CUSTOMER, "hello over XAA"))
        .await
        .unwrap();
    assert_eq!(d.status, Some(200), "{d:?}");
    customer_texts_once(&sandbox, &["hello over XAA".to_owned()]).await;
    agent_reply(&sandbox, "Hi! How can we help?").await;
    assert!(
        sandbox
            .x_requests()
            .iter()
            .all(|r| !r.path.contains("/account_activity/")),
        "nothing asked of the Account Activity API"
    );

    // Setup again: nothing new, nothing changed.
    Box::pin(setup::run_with(
        Some(&file),
        args,
        browser(),
        Some(sdk(&sandbox)),
    ))
    .await
    .unwrap();
    assert_eq!(sandbox.webhooks(), hooks);
    assert_eq!(sandbox.activity_subscriptions(), subs);
    assert_eq!(sandbox.oauth2_tokens().len(), 1, "no second login");
    bridge.stop().await;
    sandbox.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stream_delivery_survives_a_drop_mid_burst_exactly_once_in_order() {
    let mut cfg = SandboxConfig::default();
    cfg.x.stream_keepalive_ms = 200;
    let sandbox = Sandbox::start(cfg).await.unwrap();
    add_customer(&sandbox);
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("bridge.db").display());
    let bridge = start(&sandbox, &store, |c| {
        c.x.delivery = XDelivery::Stream;
        c.x.stream_silence_ms = 1_000;
    })
    .await;
    // Subscriptions without a webhook, made by the bridge's own command.
    let link = XLink::open(bridge.config.clone()).await.unwrap();
    let report = xcmd::subscribe(&link, Api::Xaa, None).await.unwrap();
    assert_eq!(report.created.len(), 3, "{report}");
    assert!(sandbox.webhooks().is_empty());
    assert!(
        sandbox
            .activity_subscriptions()
            .iter()
            .all(|s| s.webhook_id.is_none())
    );
    sandbox
        .wait_until("the stream", WAIT, |_| {
            (!sandbox.stream_connections().is_empty()).then_some(())
        })
        .await
        .unwrap();
    let mut want = Vec::new();
    for i in 0..20 {
        if i == 8 {
            assert_eq!(sandbox.drop_streams(), 1);
        }
        let text = format!("stream message {i}");
        sandbox
            .deliver_dm(DmSpec::text(CUSTOMER, &text))
            .await
            .unwrap();
        want.push(text);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    customer_texts_once(&sandbox, &want).await;
    let (status, health) = bridge.healthz().await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["stream"]["state"], "connected");
    // Replies go out as usual.
    agent_reply(&sandbox, "Got them all").await;

    // X goes silent (no keep-alive): the bridge notices and reconnects.
    let before = sandbox
        .x_requests()
        .iter()
        .filter(|r| r.path.starts_with("/2/activity/stream"))
        .count();
    sandbox.set_streams_silent(true);
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let bridge_health = bridge.healthz().await;
    sandbox.set_streams_silent(false);
    sandbox
        .wait_until("a reconnection after silence", WAIT, |_| {
            let n = sandbox
                .x_requests()
                .iter()
                .filter(|r| r.path.starts_with("/2/activity/stream"))
                .count();
            (n > before).then_some(())
        })
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{e:?}: {:?} {:?} {:?}",
                sandbox.stream_connections(),
                sandbox
                    .x_requests()
                    .iter()
                    .filter(|r| r.path.contains("stream"))
                    .collect::<Vec<_>>(),
                bridge_health
            )
        });
    bridge.stop().await;
    sandbox.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_gap_longer_than_the_backfill_is_read_back_and_unsubscribe_removes_ours() {
    let mut cfg = SandboxConfig::default();
    cfg.x.stream_keepalive_ms = 200;
    cfg.x.dm_events_rate_limit = None;
    let sandbox = Sandbox::start(cfg).await.unwrap();
    add_customer(&sandbox);
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("bridge.db").display());
    // No backfill at all: any gap is one the catch-up must fill.
    let bridge = start(&sandbox, &store, |c| {
        c.x.delivery = XDelivery::Stream;
        c.x.stream_silence_ms = 800;
        c.x.stream_backfill_minutes = 0;
    })
    .await;
    let link = XLink::open(bridge.config.clone()).await.unwrap();
    xcmd::subscribe(&link, Api::Xaa, None).await.unwrap();
    // Someone else's subscription is left alone by `unsubscribe`.
    let business = sandbox.config().x.business.id.clone();
    sandbox
        .subscribe_activity("dm.sent", &business, None, Some("another-app"))
        .unwrap();
    sandbox
        .wait_until("the stream", WAIT, |_| {
            (!sandbox.stream_connections().is_empty()).then_some(())
        })
        .await
        .unwrap();
    let mut want = vec!["before the gap".to_owned()];
    sandbox
        .deliver_dm(DmSpec::text(CUSTOMER, &want[0]))
        .await
        .unwrap();
    customer_texts_once(&sandbox, &want).await;

    // X stops writing to the stream; what the customer writes meanwhile is only in X's history.
    sandbox.set_streams_silent(true);
    for i in 0..3 {
        let text = format!("in the gap {i}");
        sandbox
            .deliver_dm(DmSpec::text(CUSTOMER, &text))
            .await
            .unwrap();
        want.push(text);
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    sandbox.set_streams_silent(false);
    customer_texts_once(&sandbox, &want).await;
    assert!(
        sandbox
            .x_requests()
            .iter()
            .any(|r| r.path.starts_with("/2/dm_events")),
        "the gap was read back"
    );
    let after = "after the gap".to_owned();
    sandbox
        .deliver_dm(DmSpec::text(CUSTOMER, &after))
        .await
        .unwrap();
    want.push(after);
    customer_texts_once(&sandbox, &want).await;

    xcmd::unsubscribe(
        &link,
        &xcmd::ApiArgs {
            api: Api::Xaa,
            webhook_id: None,
        },
    )
    .await
    .unwrap();
    let left = sandbox.activity_subscriptions();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].tag.as_deref(), Some("another-app"));
    bridge.stop().await;
    sandbox.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_account_activity_api_path_while_x_serves_it_and_a_clear_error_once_retired() {
    let mut cfg = SandboxConfig::default();
    cfg.x.account_activity_api = true;
    let sandbox = Sandbox::start(cfg).await.unwrap();
    add_customer(&sandbox);
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("bridge.db").display());
    let bridge = start(&sandbox, &store, |_| {}).await;
    let mut config = bridge.config.clone();
    config.x.webhook_url = Some(format!("{}/webhooks/x", bridge.base));
    let link = XLink::open(config.clone()).await.unwrap();
    let (id, created) = xcmd::ensure_webhook(&link, config.x.webhook_url.as_deref().unwrap())
        .await
        .unwrap();
    assert!(created);
    let report = xcmd::subscribe(&link, Api::Aaa, None).await.unwrap();
    assert_eq!(report.created.len(), 1, "{report}");
    let report = xcmd::subscribe(&link, Api::Aaa, None).await.unwrap();
    assert_eq!(
        (report.created.len(), report.kept.len()),
        (0, 1),
        "{report}"
    );
    assert_eq!(
        sandbox.account_activity_subscriptions(),
        vec![(id.clone(), sandbox.config().x.business.id.clone())]
    );
    sandbox
        .deliver_dm(DmSpec::text(CUSTOMER, "over AAA"))
        .await
        .unwrap();
    customer_texts_once(&sandbox, &["over AAA".to_owned()]).await;
    bridge.stop().await;
    sandbox.shutdown();

    // After 2027-01-01: X refuses, and the command says so in one line.
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let store = format!("sqlite:{}", dir.path().join("second.db").display());
    let bridge = start(&sandbox, &store, |_| {}).await;
    let mut config = bridge.config.clone();
    config.x.webhook_url = Some(format!("{}/webhooks/x", bridge.base));
    let link = XLink::open(config.clone()).await.unwrap();
    xcmd::ensure_webhook(&link, config.x.webhook_url.as_deref().unwrap())
        .await
        .unwrap();
    let e = xcmd::subscribe(&link, Api::Aaa, None).await.unwrap_err();
    let shown = format!("{e:#}");
    assert!(!shown.contains('{'), "no JSON: {shown}");
    assert!(
        shown.to_lowercase().contains("retired") || shown.contains("X Activity API"),
        "{shown}"
    );
    bridge.stop().await;
    sandbox.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn x_catch_up_by_hand_reads_back_what_a_bridge_without_catch_up_missed() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    add_customer(&sandbox);
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("bridge.db").display());
    let first = start(&sandbox, &store, |c| c.x.catch_up = false).await;
    link_x(&sandbox, &first).await;
    let mut want = vec!["first".to_owned()];
    sandbox
        .deliver_dm(DmSpec::text(CUSTOMER, &want[0]))
        .await
        .unwrap();
    customer_texts_once(&sandbox, &want).await;
    first.stop().await;
    for i in 0..2 {
        let text = format!("missed {i}");
        sandbox
            .deliver_dm(DmSpec::text(CUSTOMER, &text))
            .await
            .unwrap();
        want.push(text);
    }
    let second = start(&sandbox, &store, |c| c.x.catch_up = false).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        sandbox
            .contacts()
            .iter()
            .flat_map(customer_messages)
            .count(),
        1,
        "nothing read back without the catch-up"
    );
    let link = XLink::open(second.config.clone()).await.unwrap();
    let since = time::OffsetDateTime::now_utc() - time::Duration::minutes(10);
    let reports = xcmd::catch_up_all(&link, since, false).await.unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(
        (reports[0].accepted, reports[0].duplicates),
        (2, 1),
        "{reports:?}"
    );
    customer_texts_once(&sandbox, &want).await;
    second.stop().await;
    sandbox.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oauth2_tokens_expiring_every_few_seconds_and_a_revoked_family_then_a_new_login() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    add_customer(&sandbox);
    let photo = sandbox.add_file(MediaFile::generated("receipt.jpg", "image/jpeg", 40_000, 7));
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("bridge.db").display());
    let bridge = start(&sandbox, &store, oauth2_only(&sandbox)).await;
    // Tokens live 2 s: every reply below needs a fresh one.
    sandbox.set_oauth2(xdm_sandbox::OAuth2Settings {
        access_token_lifetime_secs: Some(2),
        ..Default::default()
    });
    let link = XLink::open(bridge.config.clone()).await.unwrap();
    login::login(&link, &LoginArgs::default(), browser())
        .await
        .unwrap();
    link_x(&sandbox, &bridge).await;
    let (status, health) = bridge.healthz().await;
    assert_eq!(status, 200, "{health}");
    let d = sandbox
        .deliver_dm(
            DmSpec::text(CUSTOMER, "my receipt").with_media(MediaSpec::photo(&photo.file_id)),
        )
        .await
        .unwrap();
    assert_eq!(d.status, Some(200));
    sandbox
        .wait_until("the photo in Connect", WAIT, |_| {
            (!sandbox.attachments().is_empty()).then_some(())
        })
        .await
        .unwrap();
    let v2_media = |path: &str| path.starts_with("/2/dm_conversations/media/");
    assert!(
        sandbox.x_requests().iter().any(|r| v2_media(&r.path))
            || sandbox.media_requests().iter().any(|r| v2_media(&r.path)),
        "the photo came through the OAuth 2.0 media endpoint: {:?}",
        sandbox.media_requests()
    );
    for i in 0..4 {
        agent_reply(&sandbox, &format!("reply {i}")).await;
        tokio::time::sleep(Duration::from_millis(1_200)).await;
    }
    // The agent's image reaches X too: media upload v2 and the DM on OAuth 2.0.
    let png = sandbox.add_file(MediaFile::generated(
        "Screenshot.png",
        "image/png",
        30_000,
        8,
    ));
    let contact = sandbox.contacts().last().unwrap().contact_id.clone();
    sandbox
        .agent_send_attachment(&contact, "Screenshot.png", "image/png", &png.file_id)
        .unwrap();
    sandbox
        .wait_until("the image on X", WAIT, |_| {
            sandbox
                .sent_dms()
                .iter()
                .any(|d| d.media.is_some())
                .then_some(())
        })
        .await
        .unwrap();
    assert!(
        sandbox
            .x_requests()
            .iter()
            .filter(|r| r.path.starts_with("/2/media/upload"))
            .all(|r| r.status < 400),
        "uploads accepted"
    );
    let failed = bridge
        .bridge
        .store()
        .jobs(JobQueue::Outbound, Some(JobState::Failed), 10)
        .await
        .unwrap();
    assert!(failed.is_empty(), "no failed send: {failed:?}");
    let families = sandbox.oauth2_tokens();
    assert_eq!(families.len(), 1);
    assert!(families[0].refreshes >= 2, "{families:?}");

    // Someone spends the stored refresh token: X revokes the whole family when the bridge uses it.
    let record = bridge
        .bridge
        .store()
        .records("x/oauth2/token/")
        .await
        .unwrap()
        .remove(0);
    let stored: serde_json::Value = serde_json::from_str(&record.value).unwrap();
    let refresh = stored["refresh_token"].as_str().unwrap().to_owned();
    let sb = sandbox.config();
    let spent = reqwest::Client::new()
        .post(format!("{}/2/oauth2/token", sandbox.base_url()))
        .basic_auth(&sb.x.client_id, Some(&sb.x.client_secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(spent.status(), 200);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let contact = sandbox.contacts().last().unwrap().contact_id.clone();
    sandbox
        .agent_send(&contact, "while revoked", "text/plain")
        .unwrap();
    let bridge_ref = &bridge;
    let mut named = None;
    for _ in 0..100 {
        let (status, body) = bridge_ref.healthz().await;
        if status == 503 && body.to_string().contains("xdm-connect x login") {
            named = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(named.is_some(), "healthz names the fix");
    // Customers' DMs are still accepted and delivered to Connect meanwhile.
    let d = sandbox
        .deliver_dm(DmSpec::text(CUSTOMER, "are you there?"))
        .await
        .unwrap();
    assert_eq!(d.status, Some(200));

    // A new login: the waiting reply goes out, health is back.
    login::login(&link, &LoginArgs::default(), browser())
        .await
        .unwrap();
    sandbox
        .wait_until(
            "the reply written while revoked",
            Duration::from_secs(30),
            |_| {
                sandbox
                    .sent_dms()
                    .iter()
                    .any(|d| d.text.as_deref() == Some("while revoked"))
                    .then_some(())
            },
        )
        .await
        .unwrap();
    let (status, body) = bridge.healthz().await;
    assert_eq!(status, 200, "{body}");
    bridge.stop().await;
    sandbox.shutdown();
}

/// A `serve` and an operator's `x …` command (its own store handle and token keeper, as a
/// second process has) on one store both refresh the account's tokens. (Two `serve`s on one
/// SQLite file are refused: `second_process.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bridge_and_a_command_on_one_store_never_spend_a_refresh_token_twice() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    add_customer(&sandbox);
    sandbox.set_oauth2(xdm_sandbox::OAuth2Settings {
        access_token_lifetime_secs: Some(2),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("bridge.db").display());
    let a = start(&sandbox, &store, oauth2_only(&sandbox)).await;
    let link = XLink::open(a.config.clone()).await.unwrap();
    login::login(&link, &LoginArgs::default(), browser())
        .await
        .unwrap();
    link_x(&sandbox, &a).await;
    sandbox
        .deliver_dm(DmSpec::text(CUSTOMER, "two of you?"))
        .await
        .unwrap();
    customer_texts_once(&sandbox, &["two of you?".to_owned()]).await;
    // The command asks X who the account is, needing a fresh token each time, while the bridge
    // sends the agent's replies.
    let command = XLink::open(a.config.clone()).await.unwrap();
    let business = command.business_accounts().await.unwrap()[0].id.clone();
    let asking = tokio::spawn(async move {
        for _ in 0..16 {
            command.client.me(&business).await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    for i in 0..8 {
        agent_reply(&sandbox, &format!("answer {i}")).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    asking.await.unwrap();
    let families = sandbox.oauth2_tokens();
    assert_eq!(families.len(), 1);
    assert!(
        !families[0].revoked,
        "no refresh token was used twice: {families:?}"
    );
    assert!(families[0].refreshes >= 2, "{families:?}");
    let texts: Vec<String> = sandbox
        .sent_dms()
        .into_iter()
        .filter_map(|d| d.text)
        .collect();
    for i in 0..8 {
        let want = format!("answer {i}");
        assert_eq!(texts.iter().filter(|t| **t == want).count(), 1, "{texts:?}");
    }
    a.stop().await;
    sandbox.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replay_after_failed_deliveries_and_catch_up_after_a_stop_deliver_each_dm_once_in_order() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    add_customer(&sandbox);
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("bridge.db").display());
    let first = start(&sandbox, &store, |_| {}).await;
    link_x(&sandbox, &first).await;
    let mut want = vec!["before the outage".to_owned()];
    sandbox
        .deliver_dm(DmSpec::text(CUSTOMER, &want[0]))
        .await
        .unwrap();
    customer_texts_once(&sandbox, &want).await;

    // Deliveries fail (the bridge's endpoint is unreachable for X), then a replay.
    let hook = sandbox.webhooks()[0].id.clone();
    sandbox.set_webhook_outage(&hook, true).unwrap();
    for i in 0..3 {
        let text = format!("during the outage {i}");
        let d = sandbox
            .deliver_dm(DmSpec::text(CUSTOMER, &text))
            .await
            .unwrap();
        assert_ne!(d.status, Some(200));
        want.push(text);
    }
    sandbox.set_webhook_outage(&hook, false).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let mut config = first.config.clone();
    config.x.webhook_url = Some(format!("{}/webhooks/x", first.base));
    let link = XLink::open(config).await.unwrap();
    xcmd::replay(
        &link,
        &ReplayArgs {
            from: fmt(now - time::Duration::minutes(2)),
            to: fmt(now),
            webhook_id: None,
        },
    )
    .await
    .unwrap();
    customer_texts_once(&sandbox, &want).await;

    // `serve` stopped while the customer writes; started again, it catches up.
    first.stop().await;
    for i in 0..3 {
        let text = format!("while stopped {i}");
        sandbox
            .deliver_dm(DmSpec::text(CUSTOMER, &text))
            .await
            .unwrap();
        want.push(text);
    }
    let second = start(&sandbox, &store, |_| {}).await;
    customer_texts_once(&sandbox, &want).await;
    assert!(
        sandbox
            .x_requests()
            .iter()
            .any(|r| r.path == "/2/dm_events"),
        "read back with GET /2/dm_events"
    );
    second.stop().await;
    sandbox.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_webhook_x_marked_invalid_is_validated_again_and_what_it_missed_is_read_back() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    add_customer(&sandbox);
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("bridge.db").display());
    let bridge = start(&sandbox, &store, |c| c.x.webhook_check_ms = 300).await;
    link_x(&sandbox, &bridge).await;
    let hook = sandbox.webhooks()[0].clone();
    // What `x webhook create` would have remembered.
    let link = XLink::open(bridge.config.clone()).await.unwrap();
    link.remember_webhook(&hook.id, &hook.url).await.unwrap();
    let mut want = vec!["while valid".to_owned()];
    sandbox
        .deliver_dm(DmSpec::text(CUSTOMER, &want[0]))
        .await
        .unwrap();
    customer_texts_once(&sandbox, &want).await;

    sandbox.invalidate_webhook(&hook.id).unwrap();
    for i in 0..2 {
        let text = format!("while invalid {i}");
        // X does not deliver to an invalid webhook (unless the bridge re-validated it already).
        let _ = sandbox.deliver_dm(DmSpec::text(CUSTOMER, &text)).await;
        want.push(text);
    }
    customer_texts_once(&sandbox, &want).await;
    assert!(sandbox.webhooks()[0].valid, "validated again");
    assert!(
        sandbox
            .x_requests()
            .iter()
            .any(|r| r.method == "PUT" && r.path.starts_with("/2/webhooks/")),
        "the bridge asked X for a new CRC"
    );
    bridge.stop().await;
    sandbox.shutdown();
}

async fn doctor_lines(config: &Config, sandbox: &SandboxHandle) -> Vec<String> {
    doctor::check_with(config, false, None, Some(&sdk(sandbox)))
        .await
        .lines
}

fn has_fail(lines: &[String], what: &str, fix: &str) -> bool {
    lines
        .iter()
        .any(|l| l.starts_with(&format!("FAIL {what}")) && l.contains(fix))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn doctor_says_ok_when_set_up_and_names_each_failure_and_its_fix() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("bridge.db").display());
    let bridge = start(&sandbox, &store, |_| {}).await;
    link_x(&sandbox, &bridge).await;
    let mut config = bridge.config.clone();
    config.public_url = Some(bridge.base.clone());
    config.x.webhook_url = Some(format!("{}/webhooks/x", bridge.base));

    let lines = doctor_lines(&config, &sandbox).await;
    assert!(
        lines.iter().all(|l| l.starts_with("OK ")),
        "all OK: {lines:#?}"
    );
    for what in [
        "configuration",
        "store",
        "X credentials",
        "X webhook",
        "X subscriptions",
        "Amazon Connect instance",
        "Amazon Connect contact flow",
        "SNS topic",
        "SNS topic policy",
        "SNS subscription",
        "SNS filter policy",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("OK   {what}:"))),
            "{what}: {lines:#?}"
        );
    }

    // The subscription without the echo filter: a warning that says how to set it.
    let sub = sandbox.subscriptions().pop().unwrap();
    sandbox
        .set_subscription_filter_policy(&sub.subscription_arn, None)
        .unwrap();
    let lines = doctor_lines(&config, &sandbox).await;
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("WARN SNS filter policy: none")
                && l.contains("aws sns set-subscription-attributes")
                && l.contains(xdm_amazon_connect::sns::ECHO_FILTER_POLICY)),
        "{lines:#?}"
    );
    sandbox
        .set_subscription_filter_policy(
            &sub.subscription_arn,
            Some(xdm_amazon_connect::sns::ECHO_FILTER_POLICY),
        )
        .unwrap();

    // Fake-but-complete X credentials.
    let mut bad = config.clone();
    bad.x.access_token = Some("1-fake".to_owned().into());
    bad.x.bearer_token = Some("fake-bearer".to_owned().into());
    let lines = doctor_lines(&bad, &sandbox).await;
    assert!(
        has_fail(&lines, "X credentials", "XDM_X_ACCESS_TOKEN"),
        "{lines:#?}"
    );
    assert!(
        has_fail(&lines, "X app bearer token", "XDM_X_BEARER_TOKEN"),
        "{lines:#?}"
    );

    // A subscription missing.
    let sub = sandbox
        .activity_subscriptions()
        .into_iter()
        .find(|s| s.event_type == "dm.read")
        .unwrap();
    let link = XLink::open(config.clone()).await.unwrap();
    link.app()
        .unwrap()
        .delete_activity_subscription(&sub.subscription_id)
        .await
        .unwrap();
    let lines = doctor_lines(&config, &sandbox).await;
    assert!(
        has_fail(&lines, "X subscriptions", "xdm-connect x subscribe"),
        "{lines:#?}"
    );

    // An unknown contact flow.
    let mut bad = config.clone();
    bad.connect.contact_flow_id = Some("00000000-0000-4000-8000-000000000000".to_owned());
    let lines = doctor_lines(&bad, &sandbox).await;
    assert!(
        has_fail(
            &lines,
            "Amazon Connect contact flow",
            "XDM_CONNECT_CONTACT_FLOW_ID"
        ),
        "{lines:#?}"
    );

    // Customer Profiles: the sandbox's domain answers; an unknown one is named with its fix.
    let mut profiles = config.clone();
    profiles.connect.profiles_domain = Some(xdm_sandbox::DEFAULT_PROFILES_DOMAIN.to_owned());
    let lines = doctor_lines(&profiles, &sandbox).await;
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("OK   Customer Profiles domain: xdm-demo")),
        "{lines:#?}"
    );
    profiles.connect.profiles_domain = Some("no-such-domain".to_owned());
    let lines = doctor_lines(&profiles, &sandbox).await;
    assert!(
        has_fail(
            &lines,
            "Customer Profiles domain",
            "XDM_CONNECT_PROFILES_DOMAIN"
        ),
        "{lines:#?}"
    );

    // A topic whose policy does not let Connect publish.
    sandbox
        .set_sns_topic_policy(
            &sandbox.sns_topic_arn(),
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sns:Publish","Resource":"*"}]}"#,
        )
        .unwrap();
    let lines = doctor_lines(&config, &sandbox).await;
    assert!(
        has_fail(&lines, "SNS topic policy", "connect.amazonaws.com"),
        "{lines:#?}"
    );

    // A corrupt store.
    let corrupt = dir.path().join("corrupt.db");
    std::fs::write(
        &corrupt,
        b"this is not an SQLite database, it is a damaged file!!",
    )
    .unwrap();
    let mut bad = config.clone();
    bad.store = format!("sqlite:{}", corrupt.display());
    let lines = doctor::check_with(&bad, true, None, None).await.lines;
    assert!(has_fail(&lines, "store", "backup"), "{lines:#?}");
    bridge.stop().await;
    sandbox.shutdown();
}

/// Issue 11, finding 3: a genuine, signed X delivery of a DM older than the age bound (48 h) —
/// what a delivery captured and replayed once its dedup record is gone (7 days) looks like — is
/// acknowledged (200, so X does not retry it) but not delivered; the catch-up, the bridge's own
/// reading of X's DM history, is not bounded, so a bridge that was down longer still gets it.
#[tokio::test]
async fn a_webhook_dm_older_than_the_age_bound_is_acknowledged_not_delivered_but_caught_up() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    add_customer(&sandbox);
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("bridge.db").display());
    let bridge = start(&sandbox, &store, |c| c.x.catch_up = false).await;
    link_x(&sandbox, &bridge).await;
    let now = time::OffsetDateTime::now_utc();
    let ms = |t: time::OffsetDateTime| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap();
    let written = now - time::Duration::days(3);
    let old = sandbox
        .deliver_dm(DmSpec {
            created_timestamp_ms: Some(ms(written)),
            ..DmSpec::text(CUSTOMER, "written three days ago")
        })
        .await
        .unwrap();
    assert_eq!(old.status, Some(200), "acknowledged: {old:?}");
    let answer: serde_json::Value = serde_json::from_str(&old.response_body).unwrap();
    assert_eq!(
        (answer["accepted"].as_u64(), answer["stale"].as_u64()),
        (Some(0), Some(1))
    );
    // Just inside the bound: delivered as usual.
    let recent = sandbox
        .deliver_dm(DmSpec {
            created_timestamp_ms: Some(ms(now - time::Duration::hours(47))),
            ..DmSpec::text(CUSTOMER, "written 47 hours ago")
        })
        .await
        .unwrap();
    assert_eq!(recent.status, Some(200));
    customer_texts_once(&sandbox, &["written 47 hours ago".to_owned()]).await;
    let stale_key = format!(
        "{}:{}",
        sandbox.config().x.business.id,
        old.event_id.unwrap()
    );
    assert!(
        bridge
            .bridge
            .store()
            .jobs(JobQueue::Inbound, None, 100)
            .await
            .unwrap()
            .iter()
            .all(|j| j.key.as_str() != stale_key),
        "the stale DM was not stored"
    );

    let link = XLink::open(bridge.config.clone()).await.unwrap();
    let reports = xcmd::catch_up_all(&link, now - time::Duration::days(4), false)
        .await
        .unwrap();
    assert_eq!(
        (reports[0].accepted, reports[0].duplicates),
        (1, 1),
        "{reports:?}"
    );
    customer_texts_once(
        &sandbox,
        &[
            "written 47 hours ago".to_owned(),
            "written three days ago".to_owned(),
        ],
    )
    .await;
    bridge.stop().await;
    sandbox.shutdown();
}
