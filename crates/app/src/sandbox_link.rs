//! Configuration that points the bridge at a sandbox: only the public settings (README, Configuration)
//! (API base URL, endpoints, credentials, topic, trusted certificate), so the bridge runs
//! exactly as it would against the real platforms. Used by `demo` and the tests.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use secrecy::SecretString;
use xdm_sandbox::SandboxHandle;

use crate::config::Config;

/// The admin token of a bridge set up by [`bridge_config`] (a development value, like the
/// sandbox's own credentials; never a default of `serve`).
pub const SANDBOX_ADMIN_TOKEN: &str = "sandbox-admin-token-not-for-production";

/// A configuration for a bridge listening on `listen` (use port 0 for any), storing in `store`,
/// talking to `sandbox`. Its admin listener is on a free loopback port (so that several bridges
/// never clash), with [`SANDBOX_ADMIN_TOKEN`].
pub fn bridge_config(
    sandbox: &SandboxHandle,
    listen: &str,
    store: &str,
) -> Result<Config, crate::config::ConfigError> {
    let mut config = Config::from_toml("", &|_| None)?;
    let sb = sandbox.config();
    config.listen = listen
        .parse()
        .map_err(|_| crate::config::ConfigError::Invalid {
            setting: "XDM_LISTEN",
            reason: format!("`{listen}` is not an address"),
        })?;
    config.store = store.to_owned();
    config.admin.listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    config.admin.token = Some(SecretString::from(SANDBOX_ADMIN_TOKEN));
    config.x.consumer_key = Some(SecretString::from(sb.x.consumer_key.clone()));
    config.x.consumer_secret = Some(SecretString::from(sb.x.consumer_secret.clone()));
    config.x.access_token = Some(SecretString::from(sb.x.access_token.clone()));
    config.x.access_token_secret = Some(SecretString::from(sb.x.access_token_secret.clone()));
    config.x.api_url = sandbox.base_url();
    config.x.authorize_url = format!("{}/i/oauth2/authorize", sandbox.base_url());
    config.x.bearer_token = Some(SecretString::from(sb.x.bearer_token.clone()));
    config.x.client_secret = Some(SecretString::from(sb.x.client_secret.clone()));
    // The sandbox serves X's media hosts on its own listener, over plain http.
    config.x.media_hosts = vec![sandbox.base_url()];
    config.connect.instance_id = Some(sb.connect.instance_id.clone());
    config.connect.contact_flow_id = Some(sb.connect.contact_flow_id.clone());
    config.connect.topic_arn = Some(sandbox.sns_topic_arn());
    config.connect.endpoint_url = Some(sandbox.base_url());
    config.connect.participant_endpoint_url = Some(sandbox.base_url());
    // Customer Profiles stays off unless a test or the demo names a domain.
    config.connect.profiles_endpoint_url = Some(sandbox.base_url());
    config.sns.trusted_cert_urls = vec![sandbox.sns_cert_url()];
    Ok(config)
}

/// The sandbox's OAuth 2.0 client id: set it (`config.x.client_id`) to run the bridge on
/// OAuth 2.0 user tokens (`xdm-connect x login`) instead of the OAuth 1.0a token.
pub fn oauth2_client_id(sandbox: &SandboxHandle) -> String {
    sandbox.config().x.client_id.clone()
}

/// Logs the sandbox user `user_id` in with OAuth 2.0 as `xdm-connect x login` leaves an
/// account: a token pair the sandbox issued for it (`config`'s OAuth 2.0 client), stored in
/// `store` for the bridge.
pub async fn store_oauth2_login(
    sandbox: &SandboxHandle,
    config: &Config,
    store: &std::sync::Arc<xdm_store::AnyStore>,
    user_id: &str,
) -> anyhow::Result<()> {
    let tokens = crate::x_tokens::keeper(config, store)?
        .ok_or_else(|| anyhow::anyhow!("no OAuth 2.0 client is configured (XDM_X_CLIENT_ID)"))?;
    let issued = sandbox.issue_oauth2_token(
        user_id,
        &[
            "dm.read",
            "dm.write",
            "tweet.read",
            "users.read",
            "offline.access",
        ],
    );
    tokens
        .store_login(
            &xdm_core::ids::XUserId::parse(user_id.to_owned())?,
            xdm_core::ports::TokenGrant {
                access_token: issued.access_token,
                refresh_token: issued.refresh_token,
                expires_in_s: i64::try_from(issued.expires_in).ok(),
                scope: Some(issued.scope),
            },
        )
        .await?;
    Ok(())
}

/// AWS configuration with the sandbox's region and throwaway static credentials (the AWS SDK
/// signs every call, even to the participant service, so it needs some).
pub fn sdk_config(sandbox: &SandboxHandle) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(sandbox.config().connect.region.clone()))
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::new(
                "AKIDSANDBOX",
                "sandbox-secret-access-key",
                None,
                None,
                "xdm-sandbox",
            )),
        )
        .build()
}

/// How long a harness waits for the SNS subscription of a new bridge to be confirmed.
const CONFIRMATION_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// A bridge running against a sandbox, as `demo` and the tests start it: configured through the
/// public settings only ([`bridge_config`]), its SNS endpoint subscribed to the chat topic with
/// the echo filter policy (`xdm_amazon_connect::sns::ECHO_FILTER_POLICY`) and confirmed. X is linked separately ([`LinkedBridge::link_x_webhook`]), since tests set X up in
/// different ways (webhook, stream, `setup`).
#[derive(Debug)]
pub struct LinkedBridge {
    pub base: String,
    /// The admin listener's base URL (`/metrics`, `/healthz` details; bearer
    /// [`SANDBOX_ADMIN_TOKEN`]), unless a test turned it off.
    pub admin_base: Option<String>,
    pub bridge: std::sync::Arc<crate::wiring::AppBridge>,
    pub config: Config,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl LinkedBridge {
    /// Builds and runs a bridge on `store` (`listen` 127.0.0.1:0), configured by `tweak` after
    /// [`bridge_config`], and subscribes its `/webhooks/connect`.
    pub async fn start(
        sandbox: &SandboxHandle,
        store: &str,
        tweak: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Self> {
        let mut config = bridge_config(sandbox, "127.0.0.1:0", store)?;
        tweak(&mut config);
        // Boxed: building the application is a large future, and callers hold this one.
        let app = Box::pin(crate::startup::Application::build(
            config.clone(),
            crate::startup::Overrides {
                sdk_config: Some(sdk_config(sandbox)),
            },
        ))
        .await?;
        let base = app.base_url();
        let admin_base = app.admin_base_url();
        let bridge = app.bridge();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = stop_rx.await;
        }));
        // With the filter policy a deployment uses (docs/setup.md): no echo of the customer's
        // own messages. A test that wants them removes it (`set_subscription_filter_policy`).
        let sub = sandbox
            .subscribe_filtered(
                None,
                &format!("{base}/webhooks/connect"),
                Some(xdm_amazon_connect::sns::ECHO_FILTER_POLICY),
            )
            .await?;
        sandbox
            .wait_confirmed(&sub.subscription_arn, CONFIRMATION_WAIT)
            .await?;
        Ok(Self {
            base,
            admin_base,
            bridge,
            config,
            stop: Some(stop),
            server: Some(server),
        })
    }

    /// Registers `/webhooks/x` with the sandbox's X as a set-up bridge would have it (webhook
    /// with a passing CRC, and the DM subscriptions).
    pub async fn link_x_webhook(&self, sandbox: &SandboxHandle) -> anyhow::Result<()> {
        let crc = sandbox
            .set_webhook(&format!("{}/webhooks/x", self.base))
            .await?;
        if !crc.ok {
            anyhow::bail!(
                "the bridge failed X's CRC check: {}",
                crc.error.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Serves one more business account (one of `[[x.accounts]]`, on OAuth 2.0): logged in
    /// ([`store_oauth2_login`]) and its DMs subscribed to the bridge's webhook (after
    /// [`LinkedBridge::link_x_webhook`]).
    pub async fn add_business_account(
        &self,
        sandbox: &SandboxHandle,
        user_id: &str,
    ) -> anyhow::Result<()> {
        store_oauth2_login(sandbox, &self.config, self.bridge.store(), user_id).await?;
        let webhook = sandbox
            .webhooks()
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("no webhook registered: link X first"))?;
        sandbox.subscribe_activity("dm.received", user_id, Some(&webhook.id), None)?;
        Ok(())
    }

    /// Stops accepting, lets the jobs in hand finish, and waits for the server.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await??;
        }
        Ok(())
    }
}
