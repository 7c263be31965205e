//! Configuration of the Connect adapter, validated once at construction.
//!
//! Errors name the setting a user has to fix (docs/architecture.md, Configuration): `XDM_CONNECT_INSTANCE_ID`,
//! `XDM_CONNECT_CONTACT_FLOW_ID`, `XDM_CONNECT_TOPIC_ARN`, `XDM_SNS_TRUSTED_CERT_URLS`, the AWS
//! region and endpoint variables.

use std::time::Duration;

/// Names of the settings, as users write them.
pub mod settings {
    pub const INSTANCE_ID: &str = "XDM_CONNECT_INSTANCE_ID";
    pub const CONTACT_FLOW_ID: &str = "XDM_CONNECT_CONTACT_FLOW_ID";
    pub const TOPIC_ARN: &str = "XDM_CONNECT_TOPIC_ARN";
    pub const CHAT_DURATION: &str = "XDM_CONNECT_CHAT_DURATION_MINUTES";
    pub const TRUSTED_CERT_URLS: &str = "XDM_SNS_TRUSTED_CERT_URLS";
    pub const SNS_MAX_AGE: &str = "XDM_SNS_MAX_AGE_SECS";
    pub const REQUIRE_SIGNATURE_V2: &str = "XDM_SNS_REQUIRE_SIGNATURE_V2";
    pub const REGION: &str = "AWS_REGION";
    pub const ENDPOINT_CONNECT: &str = "AWS_ENDPOINT_URL_CONNECT";
    pub const ENDPOINT_PARTICIPANT: &str = "AWS_ENDPOINT_URL_CONNECTPARTICIPANT";
    pub const ENDPOINT_CUSTOMER_PROFILES: &str = "AWS_ENDPOINT_URL_CUSTOMER_PROFILES";
    pub const PROFILES_DOMAIN: &str = "XDM_CONNECT_PROFILES_DOMAIN";
    pub const ENDPOINT: &str = "AWS_ENDPOINT_URL";
    pub const IGNORE_CONFIGURED_ENDPOINTS: &str = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS";
}

/// A configuration problem, in one sentence that names the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{setting} is not set: {what}")]
    Missing {
        setting: &'static str,
        what: &'static str,
    },
    #[error("{setting} is invalid: {reason}")]
    Invalid {
        setting: &'static str,
        reason: String,
    },
    #[error(
        "no AWS credentials are configured (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile or a role)"
    )]
    NoCredentials,
    #[error("could not build the HTTP client: {0}")]
    HttpClient(String),
}

/// What the adapter needs besides the AWS `SdkConfig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectConfig {
    /// Amazon Connect instance id (`XDM_CONNECT_INSTANCE_ID`).
    pub instance_id: String,
    /// Contact flow that receives the chats (`XDM_CONNECT_CONTACT_FLOW_ID`).
    pub contact_flow_id: String,
    /// SNS topic Connect streams chat items to (`XDM_CONNECT_TOPIC_ARN`).
    pub topic_arn: String,
    /// `ChatDurationInMinutes` (60..=10080); `None` keeps Connect's default (25 h).
    pub chat_duration_minutes: Option<u32>,
    /// Control-plane endpoint override; else `AWS_ENDPOINT_URL_CONNECT`, `AWS_ENDPOINT_URL`,
    /// the `SdkConfig` endpoint, `https://connect.{region}.amazonaws.com`.
    pub connect_endpoint: Option<String>,
    /// Participant-API endpoint override; else `AWS_ENDPOINT_URL_CONNECTPARTICIPANT`,
    /// `AWS_ENDPOINT_URL`, the `SdkConfig` endpoint, the regional endpoint (resolved so by the
    /// AWS SDK for its calls and by `resolve_participant_endpoint` for SendMessage and SendEvent).
    pub participant_endpoint: Option<String>,
    /// The Amazon Connect Customer Profiles domain (`XDM_CONNECT_PROFILES_DOMAIN`); `None`: new
    /// chats start without a profile.
    pub profiles_domain: Option<String>,
    /// Customer Profiles endpoint override; else `AWS_ENDPOINT_URL_CUSTOMER_PROFILES`,
    /// `AWS_ENDPOINT_URL`, the `SdkConfig` endpoint, `https://profile.{region}.amazonaws.com`.
    pub profiles_endpoint: Option<String>,
    /// Whole-request timeout of the control-plane calls and of SendMessage and SendEvent.
    pub request_timeout: Duration,
    /// Idle timeout of the attachment transfers to and from S3: a transfer fails when no byte
    /// moves for this long (there is no total timeout: big files take time).
    pub transfer_read_timeout: Duration,
}

impl ConnectConfig {
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
    pub const DEFAULT_TRANSFER_READ_TIMEOUT: Duration = Duration::from_secs(30);

    pub fn new(
        instance_id: impl Into<String>,
        contact_flow_id: impl Into<String>,
        topic_arn: impl Into<String>,
    ) -> Self {
        Self {
            instance_id: instance_id.into(),
            contact_flow_id: contact_flow_id.into(),
            topic_arn: topic_arn.into(),
            chat_duration_minutes: None,
            connect_endpoint: None,
            participant_endpoint: None,
            profiles_domain: None,
            profiles_endpoint: None,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            transfer_read_timeout: Self::DEFAULT_TRANSFER_READ_TIMEOUT,
        }
    }

    /// Checks every setting; the first problem is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_id(
            settings::INSTANCE_ID,
            "the Amazon Connect instance id",
            &self.instance_id,
            100,
        )?;
        validate_id(
            settings::CONTACT_FLOW_ID,
            "the Amazon Connect contact flow id",
            &self.contact_flow_id,
            500,
        )?;
        validate_topic_arn(&self.topic_arn)?;
        if let Some(minutes) = self.chat_duration_minutes
            && !(60..=10_080).contains(&minutes)
        {
            return Err(ConfigError::Invalid {
                setting: settings::CHAT_DURATION,
                reason: format!("{minutes} is outside 60..=10080 minutes"),
            });
        }
        if let Some(ep) = &self.connect_endpoint {
            validate_endpoint(settings::ENDPOINT_CONNECT, ep)?;
        }
        if let Some(ep) = &self.participant_endpoint {
            validate_endpoint(settings::ENDPOINT_PARTICIPANT, ep)?;
        }
        if let Some(domain) = &self.profiles_domain {
            validate_domain_name(domain)?;
        }
        if let Some(ep) = &self.profiles_endpoint {
            validate_endpoint(settings::ENDPOINT_CUSTOMER_PROFILES, ep)?;
        }
        if self.request_timeout.is_zero() {
            return Err(ConfigError::Invalid {
                setting: "request_timeout",
                reason: "must be greater than zero".into(),
            });
        }
        if self.transfer_read_timeout.is_zero() {
            return Err(ConfigError::Invalid {
                setting: "transfer_read_timeout",
                reason: "must be greater than zero".into(),
            });
        }
        Ok(())
    }
}

/// A Customer Profiles domain name: 1–64 of `[A-Za-z0-9_-]` (the API's pattern).
fn validate_domain_name(domain: &str) -> Result<(), ConfigError> {
    let valid = (1..=64).contains(&domain.len())
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            setting: settings::PROFILES_DOMAIN,
            reason: format!(
                "{domain:?} is not a Customer Profiles domain name (1 to 64 letters, digits, '_' or '-')"
            ),
        })
    }
}

fn validate_id(
    setting: &'static str,
    what: &'static str,
    value: &str,
    max: usize,
) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        return Err(ConfigError::Missing { setting, what });
    }
    if value.len() > max {
        return Err(ConfigError::Invalid {
            setting,
            reason: format!("longer than {max} characters"),
        });
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::Invalid {
            setting,
            reason: "contains whitespace or non-ASCII characters".into(),
        });
    }
    Ok(())
}

/// `arn:<partition>:sns:<region>:<account>:<topic>` (a standard topic; Connect refuses FIFO).
pub(crate) fn validate_topic_arn(arn: &str) -> Result<(), ConfigError> {
    let setting = settings::TOPIC_ARN;
    if arn.trim().is_empty() {
        return Err(ConfigError::Missing {
            setting,
            what: "the ARN of the SNS topic Amazon Connect streams chats to",
        });
    }
    let parts: Vec<&str> = arn.split(':').collect();
    let well_formed = parts.len() == 6
        && parts[0] == "arn"
        && !parts[1].is_empty()
        && parts[2] == "sns"
        && !parts[3].is_empty()
        && !parts[4].is_empty()
        && !parts[5].is_empty()
        && arn.bytes().all(|b| b.is_ascii_graphic());
    if !well_formed {
        return Err(ConfigError::Invalid {
            setting,
            reason: format!("{arn:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:TOPIC)"),
        });
    }
    if parts[5].ends_with(".fifo") {
        return Err(ConfigError::Invalid {
            setting,
            reason: "Amazon Connect streams only to standard (non-FIFO) topics".into(),
        });
    }
    Ok(())
}

/// An endpoint must be an absolute http(s) URL with a host.
pub(crate) fn validate_endpoint(
    setting: &'static str,
    value: &str,
) -> Result<url::Url, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid { setting, reason };
    let url = url::Url::parse(value).map_err(|e| invalid(format!("{value:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!("{value:?}: scheme must be http or https")));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(format!("{value:?}: no host")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(format!(
            "{value:?}: must not have a query or fragment"
        )));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> ConnectConfig {
        ConnectConfig::new(
            "30b0e238-b3bd-4f61-9f04-c0b24e4a2f74",
            "846ec553-a005-41c0-8341-000000000000",
            "arn:aws:sns:us-west-2:123456789012:connect-chat-out",
        )
    }

    #[test]
    fn valid_config_passes() {
        assert_eq!(ok().validate(), Ok(()));
    }

    #[test]
    fn errors_name_the_setting() {
        let mut c = ok();
        c.instance_id = " ".into();
        let e = c
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.starts_with("XDM_CONNECT_INSTANCE_ID is not set"), "{e}");

        let mut c = ok();
        c.contact_flow_id = String::new();
        let e = c
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.starts_with("XDM_CONNECT_CONTACT_FLOW_ID is not set"),
            "{e}"
        );

        for bad in [
            "",
            "arn:aws:sqs:us-west-2:1:q",
            "nope",
            "arn:aws:sns:us-west-2:1:t.fifo",
        ] {
            let mut c = ok();
            c.topic_arn = bad.into();
            let e = c
                .validate()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.starts_with("XDM_CONNECT_TOPIC_ARN"), "{bad}: {e}");
        }

        let mut c = ok();
        c.chat_duration_minutes = Some(10);
        assert!(c.validate().is_err());
        c.chat_duration_minutes = Some(1500);
        assert!(c.validate().is_ok());

        let mut c = ok();
        c.connect_endpoint = Some("ftp://x".into());
        let e = c
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.starts_with("AWS_ENDPOINT_URL_CONNECT is invalid"), "{e}");

        for (domain, valid) in [
            ("xdm-demo", true),
            ("Contact_Center_1", true),
            ("", false),
            ("has space", false),
            ("a/b", false),
            (&"d".repeat(65), false),
        ] {
            let mut c = ok();
            c.profiles_domain = Some(domain.to_owned());
            let e = c.validate().err().map(|e| e.to_string());
            match e {
                None => assert!(valid, "{domain:?} was accepted"),
                Some(e) => {
                    assert!(!valid, "{domain:?}: {e}");
                    assert!(
                        e.starts_with("XDM_CONNECT_PROFILES_DOMAIN is invalid"),
                        "{e}"
                    );
                }
            }
        }
    }
}
