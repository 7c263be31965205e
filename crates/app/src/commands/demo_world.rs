//! The demo's world: the X and Connect sandboxes, the bridge wired to them (the same
//! `Application` as `serve`, configured through the public settings only, see `sandbox_link`),
//! two business accounts and two customers (one on legacy DMs, one on encrypted X Chat). The
//! terminal demo (`demo`) and the browser page (`demo --web`) both play on one.

use std::sync::Arc;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use xdm_sandbox::{ContactFlowSpec, Sandbox, SandboxConfig, SandboxHandle, SandboxUser};

use crate::commands::demo_chat_customer::ChatCustomer;
use crate::sandbox_link::LinkedBridge;

/// Quiet logs (warnings only): the demo shows what each side sees. `RUST_LOG=info` shows the
/// bridge's logs.
pub(crate) fn init_logs() {
    if std::env::var_os("RUST_LOG").is_none() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("warn")
            .with_writer(std::io::stderr)
            .try_init();
    } else {
        crate::telemetry::init(crate::config::LogFormat::Text);
    }
}

pub(crate) const CUSTOMER_ID: &str = "3001969357";

/// The demo's second business account (on OAuth 2.0), with its own contact flow and queue
/// attribute.
pub(crate) const BILLING_ID: &str = "1000000000000000002";
pub(crate) const BILLING_NAME: &str = "Acme Billing";
pub(crate) const BILLING_HANDLE: &str = "acme_billing";
pub(crate) const BILLING_FLOW: &str = "b1111111-2222-4333-8444-555555555555";

/// The demo's customer on X Chat (end-to-end encrypted).
pub(crate) const CHAT_CUSTOMER_ID: &str = "3001969358";
pub(crate) const CHAT_CUSTOMER_NAME: &str = "Mia Chen";
pub(crate) const CHAT_CUSTOMER_HANDLE: &str = "mia_on_xchat";

/// What the demo runs: the sandboxes, the bridge wired to them (the same `Application` as
/// `serve`), the demo's business accounts and customers. The terminal and the web page
/// (`--web`) both play on one.
pub(crate) struct World {
    pub(crate) sandbox: SandboxHandle,
    pub(crate) running: LinkedBridge,
    /// The bridge's store (a SQLite file in `dir`).
    pub(crate) store: String,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) chat_customer: Arc<tokio::sync::Mutex<ChatCustomer>>,
}

impl World {
    pub(crate) async fn start(customer_name: &str, customer_handle: &str) -> anyhow::Result<Self> {
        let sandbox = Sandbox::start(SandboxConfig::default())
            .await
            .context("cannot start the sandbox")?;
        let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        let store = format!("sqlite:{}", dir.path().join("demo.db").display());
        // The business account's X Chat keys, made and registered as `x chat-keys init` does.
        let (chat_keys, chat_key_version) = business_chat_keys(&sandbox, &store).await?;
        let running = Box::pin(LinkedBridge::start(&sandbox, &store, |config| {
            config.x.chat_keys = Some(secrecy::SecretString::from(chat_keys));
            config.x.chat_key_version = Some(chat_key_version);
            config.delivery.reorder_window_ms = 100;
            config.delivery.outbound_reorder_window_ms = 100;
            // Both optional features on: the agent sees the customer's profile, and a returning
            // customer's chat carries the previous one.
            config.connect.profiles_domain = Some(xdm_sandbox::DEFAULT_PROFILES_DOMAIN.to_owned());
            config.delivery.persistent_chat_window_ms = 30 * 24 * 3600 * 1000;
            // A second business account with its own flow and attributes, logged in with OAuth 2.0.
            config.x.client_id = Some(crate::sandbox_link::oauth2_client_id(&sandbox));
            config.x.accounts = vec![crate::config::XAccount {
                user_id: BILLING_ID.to_owned(),
                oauth1: None,
                contact_flow_id: Some(BILLING_FLOW.to_owned()),
                attributes: [("queue".to_owned(), "billing".to_owned())].into(),
                chat: None,
            }];
        }))
        .await?;

        sandbox.add_user(SandboxUser {
            followers_count: 22,
            ..SandboxUser::new(CUSTOMER_ID, customer_name, customer_handle)
        });
        running.link_x_webhook(&sandbox).await?;
        sandbox.add_user(SandboxUser::new(BILLING_ID, BILLING_NAME, BILLING_HANDLE));
        sandbox.add_contact_flow(ContactFlowSpec {
            name: "Billing chat".to_owned(),
            ..ContactFlowSpec::inbound(BILLING_FLOW)
        });
        running.add_business_account(&sandbox, BILLING_ID).await?;
        // X Chat: the business's encrypted conversations reach the bridge's webhook too.
        let webhook = sandbox
            .webhooks()
            .into_iter()
            .next()
            .context("no webhook registered")?;
        sandbox.subscribe_activity(
            "chat.received",
            &sandbox.config().x.business.id,
            Some(&webhook.id),
            None,
        )?;
        sandbox.add_user(SandboxUser {
            followers_count: 310,
            ..SandboxUser::new(CHAT_CUSTOMER_ID, CHAT_CUSTOMER_NAME, CHAT_CUSTOMER_HANDLE)
        });
        let chat_customer = Arc::new(tokio::sync::Mutex::new(
            ChatCustomer::register(&sandbox, CHAT_CUSTOMER_ID, &sandbox.config().x.business.id)
                .await
                .context("the X Chat customer could not register her keys")?,
        ));
        Ok(Self {
            sandbox,
            running,
            store,
            dir,
            chat_customer,
        })
    }
}

/// The demo's business accounts by X user id, with their names.
pub(crate) fn world_accounts(
    sandbox: &SandboxHandle,
) -> std::collections::BTreeMap<String, String> {
    let business = &sandbox.config().x.business;
    [
        (business.id.clone(), business.name.clone()),
        (BILLING_ID.to_owned(), BILLING_NAME.to_owned()),
    ]
    .into()
}

/// The business account's X Chat keys (blob, version), registered with the sandbox's X.
async fn business_chat_keys(
    sandbox: &SandboxHandle,
    store: &str,
) -> anyhow::Result<(String, String)> {
    let config = crate::sandbox_link::bridge_config(sandbox, "127.0.0.1:0", store)?;
    let client = crate::wiring::x_client(&config, None)?;
    let keys = xdm_xchat::ChatKeys::generate();
    let business = xdm_core::ids::XUserId::parse(sandbox.config().x.business.id.clone())?;
    let proposed = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).to_string();
    let version = xdm_x::chat::register_public_keys(&client, &business, &keys, &proposed).await?;
    Ok((STANDARD.encode(keys.to_blob()), version))
}
