//! What a new chat starts with, end to end against the sandbox: the customer's Customer Profiles
//! profile (found or created by X user id, kept current, given as `CustomerId`) and, with
//! persistent chat on, the customer's previous chat as its source.

use std::time::{Duration, Instant};

use xdm_sandbox::{
    ContactView, DEFAULT_PROFILES_DOMAIN, Fault, FaultOp, SandboxConfig, SandboxUser,
};

use crate::helpers::*;

/// The customer's profiles in the sandbox's Customer Profiles.
fn customer_profiles(app: &TestApp) -> Vec<xdm_sandbox::ProfileView> {
    app.sandbox
        .profiles()
        .into_iter()
        .filter(|p| p.profile.account_number.as_deref() == Some(&format!("x:{CUSTOMER}")))
        .collect()
}

/// Ends the customer's chat as the agent would, and waits until the bridge knows.
async fn end_chat(app: &TestApp, chat: &ContactView) {
    app.sandbox.end_chat(&chat.contact_id).unwrap();
    app.settle().await;
}

/// The customer's `n`-th chat (0-based), once it carries `text`.
async fn chat_with(app: &TestApp, n: usize, text: &str) -> ContactView {
    app.dm(text).await;
    let text = text.to_owned();
    let this = app;
    app.sandbox
        .wait_until(&format!("chat {n} with {text:?}"), WAIT, |_| {
            this.contacts()
                .get(n)
                .filter(|c| customer_messages(c).contains(&text) && c.customer_connected)
                .cloned()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn with_a_profiles_domain_the_first_dm_creates_the_profile_and_the_next_chat_finds_it() {
    let app = spawn_app_with(SandboxConfig::default(), |c| {
        c.connect.profiles_domain = Some(DEFAULT_PROFILES_DOMAIN.to_owned());
    })
    .await;
    let first = chat_with(&app, 0, "hello").await;
    let profiles = customer_profiles(&app);
    assert_eq!(profiles.len(), 1, "{profiles:?}");
    let profile = &profiles[0];
    assert_eq!(profile.profile.first_name.as_deref(), Some("Jordan Brinks"));
    let attributes = &profile.profile.attributes;
    assert_eq!(attributes["x_user_id"], CUSTOMER);
    assert_eq!(attributes["x_username"], "furiouscamper");
    assert_eq!(
        first.customer_id.as_deref(),
        Some(profile.profile.profile_id.as_str())
    );

    // The customer renamed themselves on X; their next chat finds the same profile, updated.
    end_chat(&app, &first).await;
    app.sandbox
        .add_user(SandboxUser::new(CUSTOMER, "Jordan B.", "furiouscamper"));
    let second = chat_with(&app, 1, "me again").await;
    let profiles = customer_profiles(&app);
    assert_eq!(profiles.len(), 1, "one profile per customer: {profiles:?}");
    assert_eq!(profiles[0].profile.profile_id, profile.profile.profile_id);
    assert_eq!(profiles[0].profile.first_name.as_deref(), Some("Jordan B."));
    assert_eq!(second.customer_id, first.customer_id);
    app.stop().await;
}

#[tokio::test]
async fn customer_profiles_failing_or_hanging_never_hold_the_message_back() {
    let app = spawn_app_with(SandboxConfig::default(), |c| {
        c.connect.profiles_domain = Some(DEFAULT_PROFILES_DOMAIN.to_owned());
    })
    .await;
    app.sandbox.fail_next(
        FaultOp::SearchProfiles,
        1,
        Fault::error(500, "InternalServerException"),
    );
    let first = chat_with(&app, 0, "profiles are down").await;
    assert_eq!(first.customer_id, None);
    assert!(customer_profiles(&app).is_empty());

    // Customer Profiles stops answering: the chat starts after the 2 s bound, without it.
    end_chat(&app, &first).await;
    app.sandbox.fail_next(
        FaultOp::SearchProfiles,
        1,
        Fault {
            delay_ms: 30_000,
            ..Fault::default()
        },
    );
    let started = Instant::now();
    let second = chat_with(&app, 1, "still there?").await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the message waited {:?} for Customer Profiles",
        started.elapsed()
    );
    assert_eq!(second.customer_id, None);
    app.stop().await;
}

#[tokio::test]
async fn with_persistent_chat_a_returning_customer_continues_the_previous_chat_and_without_not() {
    let app = spawn_app_with(SandboxConfig::default(), |c| {
        c.delivery.persistent_chat_window_ms = 30 * 24 * 3600 * 1000;
    })
    .await;
    let first = chat_with(&app, 0, "first visit").await;
    assert_eq!(first.continued_from_contact_id, None);
    end_chat(&app, &first).await;
    let second = chat_with(&app, 1, "back again").await;
    assert_eq!(
        second.continued_from_contact_id.as_deref(),
        Some(first.initial_contact_id.as_str())
    );
    assert_eq!(customer_messages(&second), vec!["back again"]);
    // And the one after continues the second (which carries the first).
    end_chat(&app, &second).await;
    let third = chat_with(&app, 2, "third time").await;
    assert_eq!(
        third.continued_from_contact_id.as_deref(),
        Some(second.initial_contact_id.as_str())
    );
    app.stop().await;

    let app = spawn_app().await;
    let first = chat_with(&app, 0, "first visit").await;
    end_chat(&app, &first).await;
    let second = chat_with(&app, 1, "back again").await;
    assert_eq!(
        second.continued_from_contact_id, None,
        "persistent chat is off"
    );
    app.stop().await;
}
