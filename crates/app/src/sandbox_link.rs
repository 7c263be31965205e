//! Configuration that points the bridge at a sandbox: only the public settings (README, Configuration)
//! (API base URL, endpoints, credentials, topic, trusted certificate), so the bridge runs
//! exactly as it would against the real platforms. Used by `demo` and the tests.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use secrecy::SecretString;
use xdm_sandbox::SandboxHandle;

use crate::config::Config;

/// A configuration for a bridge listening on `listen` (use port 0 for any), storing in `store`,
/// talking to `sandbox`.
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
    config.sns.trusted_cert_urls = vec![sandbox.sns_cert_url()];
    Ok(config)
}

/// The sandbox's OAuth 2.0 client id: set it (`config.x.client_id`) to run the bridge on
/// OAuth 2.0 user tokens (`xdm-connect x login`) instead of the OAuth 1.0a token.
pub fn oauth2_client_id(sandbox: &SandboxHandle) -> String {
    sandbox.config().x.client_id.clone()
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
