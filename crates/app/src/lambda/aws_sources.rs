//! The AWS sample's configuration layout, so its users can swap their functions for these:
//! an SSM parameter (`CONFIG_PARAM_NAME`) holding `{"instance_id","contact_flow_id","x_account_id"}`
//! and a Secrets Manager secret (`SECRET_ARN`) holding `{"consumer_key","consumer_secret",
//! "access_token","access_token_secret"}`. Values fill settings the `XDM_*` environment left unset.
//!
//! SSM GetParameter goes through `aws-sigv4` + reqwest (aws-sdk-ssm is 152 operations and ~105 s
//! of debug build for one call, docs/architecture.md, Build cost); Secrets Manager uses the official SDK.

use std::time::Duration;

use aws_config::SdkConfig;
use secrecy::SecretString;
use serde::Deserialize;
use xdm_amazon_connect::signing::{CredentialsCache, sign_request};

use crate::config::Config;

const SSM_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("CONFIG_PARAM_NAME {name}: {reason}")]
    Parameter { name: String, reason: String },
    #[error("SECRET_ARN {id}: {reason}")]
    Secret { id: String, reason: String },
}

/// The sample's SSM parameter JSON.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SampleParameter {
    pub instance_id: Option<String>,
    pub contact_flow_id: Option<String>,
    /// The business account id; this bridge learns it from each webhook's `for_user_id`.
    pub x_account_id: Option<String>,
}

/// The sample's secret JSON.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct SampleSecret {
    pub consumer_key: Option<String>,
    pub consumer_secret: Option<String>,
    pub access_token: Option<String>,
    pub access_token_secret: Option<String>,
    /// Beyond the sample: the app bearer token and the OAuth 2.0 client (X Activity API,
    /// OAuth 2.0 user tokens kept in the store's records table).
    #[serde(default)]
    pub bearer_token: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Beyond the sample: X Chat, the key blob (base64) and its registered version.
    #[serde(default)]
    pub chat_keys: Option<String>,
    #[serde(default)]
    pub chat_key_version: Option<String>,
    /// Beyond the sample: further business accounts, each with its OAuth 1.0a token (unless it
    /// logs in with OAuth 2.0), contact flow and contact attributes.
    #[serde(default)]
    pub accounts: Vec<SecretAccount>,
}

/// One further business account of the secret (the TOML's `[[x.accounts]]`).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretAccount {
    pub user_id: String,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub access_token_secret: Option<String>,
    #[serde(default)]
    pub contact_flow_id: Option<String>,
    #[serde(default)]
    pub attributes: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub chat_keys: Option<String>,
    #[serde(default)]
    pub chat_key_version: Option<String>,
}

impl std::fmt::Debug for SecretAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretAccount")
            .field("user_id", &self.user_id)
            .field("contact_flow_id", &self.contact_flow_id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SampleSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SampleSecret").finish_non_exhaustive()
    }
}

/// Reads the sample layout; clients built once.
#[derive(Debug)]
pub struct AwsSources {
    parameter: Option<String>,
    secret: Option<String>,
    ssm: SsmClient,
    secrets: aws_sdk_secretsmanager::Client,
}

impl AwsSources {
    /// `CONFIG_PARAM_NAME` and `SECRET_ARN` from `env` (either may be absent).
    pub fn new(sdk: &SdkConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, SourceError> {
        let parameter = env("CONFIG_PARAM_NAME").filter(|v| !v.trim().is_empty());
        let secret = env("SECRET_ARN").filter(|v| !v.trim().is_empty());
        let ssm = SsmClient::new(sdk, env).map_err(|reason| SourceError::Parameter {
            name: parameter.clone().unwrap_or_default(),
            reason,
        })?;
        Ok(Self {
            parameter,
            secret,
            ssm,
            secrets: aws_sdk_secretsmanager::Client::new(sdk),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.parameter.is_none() && self.secret.is_none()
    }

    /// Fetches both (concurrently). Each is `None` when not configured.
    pub async fn fetch(
        &self,
    ) -> (
        Option<Result<SampleParameter, SourceError>>,
        Option<Result<SampleSecret, SourceError>>,
    ) {
        let param = async {
            let name = self.parameter.as_ref()?;
            Some(
                self.ssm
                    .get_json(name)
                    .await
                    .map_err(|reason| SourceError::Parameter {
                        name: name.clone(),
                        reason,
                    }),
            )
        };
        let secret = async {
            let id = self.secret.as_ref()?;
            Some(
                self.secret_json(id)
                    .await
                    .map_err(|reason| SourceError::Secret {
                        id: id.clone(),
                        reason,
                    }),
            )
        };
        tokio::join!(param, secret)
    }

    async fn secret_json(&self, id: &str) -> Result<SampleSecret, String> {
        let out = self
            .secrets
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string())?;
        let text = out
            .secret_string()
            .ok_or("the secret has no SecretString")?;
        serde_json::from_str(text).map_err(|e| format!("not the expected JSON object: {e}"))
    }
}

/// Fills what the environment left unset. The secret's `accounts` replace none configured
/// otherwise; an invalid one is an error naming it (the others are still applied).
pub fn apply(
    config: &mut Config,
    parameter: Option<&SampleParameter>,
    secret: Option<&SampleSecret>,
) -> Result<(), crate::config::ConfigError> {
    if let Some(p) = parameter {
        if config.connect.instance_id.is_none() {
            config.connect.instance_id = p.instance_id.clone();
        }
        if config.connect.contact_flow_id.is_none() {
            config.connect.contact_flow_id = p.contact_flow_id.clone();
        }
    }
    if let Some(s) = secret {
        let fill = |slot: &mut Option<SecretString>, v: &Option<String>| {
            if slot.is_none() {
                *slot = v.clone().map(SecretString::from);
            }
        };
        fill(&mut config.x.consumer_key, &s.consumer_key);
        fill(&mut config.x.consumer_secret, &s.consumer_secret);
        fill(&mut config.x.access_token, &s.access_token);
        fill(&mut config.x.access_token_secret, &s.access_token_secret);
        fill(&mut config.x.bearer_token, &s.bearer_token);
        fill(&mut config.x.client_secret, &s.client_secret);
        fill(&mut config.x.chat_keys, &s.chat_keys);
        if config.x.chat_key_version.is_none() {
            config.x.chat_key_version = s.chat_key_version.clone();
        }
        if config.x.client_id.is_none() {
            config.x.client_id = s.client_id.clone();
        }
        if config.x.accounts.is_empty() && !s.accounts.is_empty() {
            let mut invalid = None;
            for a in &s.accounts {
                match crate::config::x_account(
                    a.user_id.clone(),
                    a.access_token.clone(),
                    a.access_token_secret.clone(),
                    a.contact_flow_id.clone(),
                    a.attributes.clone(),
                    a.chat_keys.clone(),
                    a.chat_key_version.clone(),
                ) {
                    Ok(account) => config.x.accounts.push(account),
                    Err(e) => invalid = invalid.or(Some(e)),
                }
            }
            if let Some(e) = invalid {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Reads `CONFIG_PARAM_NAME` / `SECRET_ARN` (when set) into `config` as the functions do
/// (`doctor` on the Lambda layout).
pub async fn apply_from_env(config: &mut Config, sdk: &SdkConfig) -> Result<(), SourceError> {
    let sources = AwsSources::new(sdk, &|k| std::env::var(k).ok())?;
    if sources.is_empty() {
        return Ok(());
    }
    let (param, secret) = sources.fetch().await;
    let param = param.transpose()?;
    let secret = secret.transpose()?;
    apply(config, param.as_ref(), secret.as_ref()).map_err(|e| SourceError::Secret {
        id: std::env::var("SECRET_ARN").unwrap_or_default(),
        reason: e.to_string(),
    })
}

/// `AmazonSSM.GetParameter` over SigV4 (JSON 1.1 protocol).
#[derive(Debug)]
struct SsmClient {
    endpoint: String,
    region: String,
    credentials: Option<CredentialsCache>,
    http: reqwest::Client,
}

impl SsmClient {
    fn new(sdk: &SdkConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let region = sdk
            .region()
            .map(ToString::to_string)
            .unwrap_or_else(|| "us-east-1".to_owned());
        let endpoint = env("AWS_ENDPOINT_URL_SSM")
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .or_else(|| sdk.endpoint_url().map(str::to_owned))
            .unwrap_or_else(|| format!("https://ssm.{region}.amazonaws.com"));
        let http = reqwest::Client::builder()
            .timeout(SSM_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            region,
            credentials: sdk.credentials_provider().map(CredentialsCache::new),
            http,
        })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, String> {
        let body = serde_json::to_vec(&serde_json::json!({"Name": name, "WithDecryption": true}))
            .map_err(|e| e.to_string())?;
        let mut req = http::Request::builder()
            .method("POST")
            .uri(format!("{}/", self.endpoint))
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", "AmazonSSM.GetParameter")
            .body(body)
            .map_err(|e| e.to_string())?;
        let creds = self
            .credentials
            .as_ref()
            .ok_or("no AWS credentials are configured")?;
        let creds = creds
            .get()
            .await
            .map_err(|e| format!("no AWS credentials: {e}"))?;
        sign_request(
            &mut req,
            creds,
            &self.region,
            "ssm",
            std::time::SystemTime::now(),
        )?;
        let req = reqwest::Request::try_from(req).map_err(|e| e.to_string())?;
        let resp = self
            .http
            .execute(req)
            .await
            .map_err(|e| format!("SSM unreachable: {e}"))?;
        let status = resp.status();
        let error_type = resp
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = resp.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            let code = error_type.or_else(|| {
                serde_json::from_str::<serde_json::Value>(&text)
                    .ok()?
                    .get("__type")?
                    .as_str()
                    .map(str::to_owned)
            });
            return Err(format!(
                "SSM answered {status} {}",
                code.unwrap_or_default()
            ));
        }
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("unreadable SSM answer: {e}"))?;
        let param = value
            .pointer("/Parameter/Value")
            .and_then(serde_json::Value::as_str)
            .ok_or("no Parameter.Value in the answer")?;
        serde_json::from_str(param)
            .map_err(|e| format!("the parameter is not the expected JSON object: {e}"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_secrets_accounts_become_business_accounts_unless_configured_otherwise() {
        let secret: SampleSecret = serde_json::from_str(
            r#"{"consumer_key":null,"consumer_secret":null,"access_token":null,"access_token_secret":null,
                "accounts":[{"user_id":"1000000000000000002","contact_flow_id":"flow-b","attributes":{"brand":"B"}},
                            {"user_id":"1000000000000000003","access_token":"t","access_token_secret":"s"}]}"#,
        )
        .unwrap();
        assert!(!format!("{secret:?}").contains("\"t\""));
        let mut config = Config::from_toml("", &|_| None).unwrap();
        apply(&mut config, None, Some(&secret)).unwrap();
        assert_eq!(config.x.accounts.len(), 2);
        let routing = config.bridge_config().accounts;
        let b = xdm_core::ids::XUserId::parse("1000000000000000002").unwrap();
        assert_eq!(routing[&b].contact_flow_id.as_deref(), Some("flow-b"));
        assert_eq!(routing[&b].attributes["brand"], "B");
        assert!(config.x.accounts[1].oauth1.is_some());

        // Accounts of the file or environment win over the secret's.
        let mut configured =
            Config::from_toml("[[x.accounts]]\nuser_id = \"42\"", &|_| None).unwrap();
        apply(&mut configured, None, Some(&secret)).unwrap();
        assert_eq!(configured.x.accounts.len(), 1);
        assert_eq!(configured.x.accounts[0].user_id, "42");

        // An invalid account is named; the valid ones still apply.
        let bad: SampleSecret =
            serde_json::from_str(r#"{"accounts":[{"user_id":"@brand"},{"user_id":"7"}]}"#).unwrap();
        let mut config = Config::from_toml("", &|_| None).unwrap();
        let e = apply(&mut config, None, Some(&bad))
            .unwrap_err()
            .to_string();
        assert!(e.contains("@brand"), "{e}");
        assert_eq!(config.x.accounts.len(), 1);
    }
}
