//! Where the hand-made Connect calls go: the control plane (`connect`) and the participant API's
//! send calls (`connectparticipant`), resolved the way the AWS SDKs resolve a service endpoint, so
//! that one set of settings points every Connect call, SDK or not, at the same place.

use aws_config::SdkConfig;

use crate::config::{ConfigError, settings};

/// The region of `sdk`, which every Connect endpoint is in; its absence names the setting.
pub(crate) fn sdk_region(sdk: &SdkConfig) -> Result<String, ConfigError> {
    sdk.region()
        .map(|r| r.as_ref().to_owned())
        .filter(|r| !r.is_empty())
        .ok_or(ConfigError::Missing {
            setting: settings::REGION,
            what: "the AWS region of the Amazon Connect instance",
        })
}

/// A Connect service whose endpoint the adapter resolves itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    /// `connect`: `AWS_ENDPOINT_URL_CONNECT`, `https://connect.{region}.{suffix}`.
    Connect,
    /// `connectparticipant`: `AWS_ENDPOINT_URL_CONNECTPARTICIPANT`,
    /// `https://participant.connect.{region}.{suffix}`.
    Participant,
    /// `profile` (Customer Profiles): `AWS_ENDPOINT_URL_CUSTOMER_PROFILES`,
    /// `https://profile.{region}.{suffix}`.
    CustomerProfiles,
}

impl Service {
    fn env_setting(self) -> &'static str {
        match self {
            Service::Connect => settings::ENDPOINT_CONNECT,
            Service::Participant => settings::ENDPOINT_PARTICIPANT,
            Service::CustomerProfiles => settings::ENDPOINT_CUSTOMER_PROFILES,
        }
    }

    fn host_prefix(self) -> &'static str {
        match self {
            Service::Connect => "connect",
            Service::Participant => "participant.connect",
            Service::CustomerProfiles => "profile",
        }
    }
}

/// Resolves the control-plane endpoint: the explicit setting, else `AWS_ENDPOINT_URL_CONNECT`,
/// else `AWS_ENDPOINT_URL`, else the `SdkConfig` endpoint, else
/// `https://connect.{region}.amazonaws.com` (`.amazonaws.com.cn` in China regions).
/// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true` skips the environment and `SdkConfig` endpoints,
/// as the AWS SDKs do. `env` is the environment lookup (injected for tests).
pub fn resolve_connect_endpoint(
    explicit: Option<&str>,
    sdk_endpoint: Option<&str>,
    region: &str,
    env: impl Fn(&str) -> Option<String>,
) -> String {
    resolve(Service::Connect, explicit, sdk_endpoint, region, env)
}

/// Resolves the participant-API endpoint in the same order as [`resolve_connect_endpoint`], with
/// `AWS_ENDPOINT_URL_CONNECTPARTICIPANT` and `https://participant.connect.{region}.amazonaws.com`
/// (the endpoint `aws-sdk-connectparticipant` builds from the same settings).
pub fn resolve_participant_endpoint(
    explicit: Option<&str>,
    sdk_endpoint: Option<&str>,
    region: &str,
    env: impl Fn(&str) -> Option<String>,
) -> String {
    resolve(Service::Participant, explicit, sdk_endpoint, region, env)
}

/// Resolves the Customer Profiles endpoint in the same order, with
/// `AWS_ENDPOINT_URL_CUSTOMER_PROFILES` (the variable `aws-sdk-customerprofiles` reads) and
/// `https://profile.{region}.amazonaws.com`.
pub fn resolve_profiles_endpoint(
    explicit: Option<&str>,
    sdk_endpoint: Option<&str>,
    region: &str,
    env: impl Fn(&str) -> Option<String>,
) -> String {
    resolve(
        Service::CustomerProfiles,
        explicit,
        sdk_endpoint,
        region,
        env,
    )
}

fn resolve(
    service: Service,
    explicit: Option<&str>,
    sdk_endpoint: Option<&str>,
    region: &str,
    env: impl Fn(&str) -> Option<String>,
) -> String {
    if let Some(url) = explicit.filter(|u| !u.trim().is_empty()) {
        return url.trim().to_owned();
    }
    let ignore_configured = env(settings::IGNORE_CONFIGURED_ENDPOINTS)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if !ignore_configured {
        let from_env = |name: &str| {
            env(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        if let Some(url) = from_env(service.env_setting()) {
            return url;
        }
        if let Some(url) = from_env(settings::ENDPOINT) {
            return url;
        }
        if let Some(url) = sdk_endpoint.filter(|u| !u.trim().is_empty()) {
            return url.trim().to_owned();
        }
    }
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://{}.{region}.{suffix}", service.host_prefix())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn endpoint_resolution_order() {
        let env = env_of(&[
            ("AWS_ENDPOINT_URL_CONNECT", "http://connect.local:1"),
            ("AWS_ENDPOINT_URL", "http://all.local:2"),
        ]);
        assert_eq!(
            resolve_connect_endpoint(Some("http://explicit:3"), None, "us-east-1", &env),
            "http://explicit:3"
        );
        assert_eq!(
            resolve_connect_endpoint(None, Some("http://sdk:4"), "us-east-1", &env),
            "http://connect.local:1"
        );
        let env = env_of(&[("AWS_ENDPOINT_URL", "http://all.local:2")]);
        assert_eq!(
            resolve_connect_endpoint(None, Some("http://sdk:4"), "us-east-1", &env),
            "http://all.local:2"
        );
        let env = env_of(&[("AWS_ENDPOINT_URL_CONNECT", "  ")]);
        assert_eq!(
            resolve_connect_endpoint(None, Some("http://sdk:4"), "us-east-1", &env),
            "http://sdk:4"
        );
        assert_eq!(
            resolve_connect_endpoint(None, None, "us-west-2", env_of(&[])),
            "https://connect.us-west-2.amazonaws.com"
        );
        assert_eq!(
            resolve_connect_endpoint(None, None, "cn-north-1", env_of(&[])),
            "https://connect.cn-north-1.amazonaws.com.cn"
        );
        let env = env_of(&[
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
            ("AWS_ENDPOINT_URL_CONNECT", "http://connect.local:1"),
        ]);
        assert_eq!(
            resolve_connect_endpoint(None, Some("http://sdk:4"), "eu-west-2", &env),
            "https://connect.eu-west-2.amazonaws.com"
        );
    }

    #[test]
    fn customer_profiles_endpoint_has_its_own_variable_and_host() {
        let env = env_of(&[
            ("AWS_ENDPOINT_URL_CONNECT", "http://connect.local:1"),
            (
                "AWS_ENDPOINT_URL_CUSTOMER_PROFILES",
                "http://profiles.local:6",
            ),
        ]);
        assert_eq!(
            resolve_profiles_endpoint(None, Some("http://sdk:4"), "us-east-1", &env),
            "http://profiles.local:6"
        );
        assert_eq!(
            resolve_profiles_endpoint(None, None, "eu-west-2", env_of(&[])),
            "https://profile.eu-west-2.amazonaws.com"
        );
        assert_eq!(
            resolve_profiles_endpoint(Some("http://explicit:3"), None, "eu-west-2", &env),
            "http://explicit:3"
        );
    }

    #[test]
    fn participant_endpoint_has_its_own_variable_and_host() {
        let env = env_of(&[
            ("AWS_ENDPOINT_URL_CONNECT", "http://connect.local:1"),
            (
                "AWS_ENDPOINT_URL_CONNECTPARTICIPANT",
                "http://participant.local:5",
            ),
            ("AWS_ENDPOINT_URL", "http://all.local:2"),
        ]);
        assert_eq!(
            resolve_participant_endpoint(Some(" http://explicit:3 "), None, "us-east-1", &env),
            "http://explicit:3"
        );
        assert_eq!(
            resolve_participant_endpoint(None, Some("http://sdk:4"), "us-east-1", &env),
            "http://participant.local:5"
        );
        let env = env_of(&[
            ("AWS_ENDPOINT_URL_CONNECT", "http://connect.local:1"),
            ("AWS_ENDPOINT_URL", "http://all.local:2"),
        ]);
        assert_eq!(
            resolve_participant_endpoint(None, Some("http://sdk:4"), "us-east-1", &env),
            "http://all.local:2",
            "the control plane's variable is not the participant API's"
        );
        assert_eq!(
            resolve_participant_endpoint(None, Some("http://sdk:4"), "us-east-1", env_of(&[])),
            "http://sdk:4"
        );
        assert_eq!(
            resolve_participant_endpoint(None, None, "us-west-2", env_of(&[])),
            "https://participant.connect.us-west-2.amazonaws.com"
        );
        assert_eq!(
            resolve_participant_endpoint(None, None, "cn-northwest-1", env_of(&[])),
            "https://participant.connect.cn-northwest-1.amazonaws.com.cn"
        );
        let env = env_of(&[
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "TRUE"),
            (
                "AWS_ENDPOINT_URL_CONNECTPARTICIPANT",
                "http://participant.local:5",
            ),
        ]);
        assert_eq!(
            resolve_participant_endpoint(None, Some("http://sdk:4"), "ap-southeast-2", &env),
            "https://participant.connect.ap-southeast-2.amazonaws.com"
        );
    }
}
