//! The Connect participant API (the customer's side of the chat) through the official
//! `aws-sdk-connectparticipant` client: CreateParticipantConnection and DisconnectParticipant
//! here, the attachment calls in [`crate::attachments`]. SendMessage and SendEvent, one per
//! message, go without the SDK ([`crate::participant_send`], where the measurement is).
//!
//! Auth is the `X-Amz-Bearer` header (ParticipantToken for CreateParticipantConnection, the
//! ConnectionToken afterwards); the SDK still SigV4-signs every call, so the `SdkConfig` needs
//! some credentials even though the service ignores them (docs/protocols.md B0, C15).

use aws_config::SdkConfig;
use aws_sdk_connectparticipant::types::ConnectionType;
use time::OffsetDateTime;
use time::format_description::well_known::{Iso8601, Rfc3339};
use xdm_core::ids::{ConnectionToken, ParticipantToken};
use xdm_core::ports::ConnectError;
use xdm_core::session::ConnectionCredentials;

use crate::errors::{Plane, from_sdk_error};

/// Parses an ISO-8601 / RFC 3339 timestamp (`2019-11-08T02:41:28.172Z`) into milliseconds since
/// the epoch.
pub fn iso8601_to_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let dt = OffsetDateTime::parse(s, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(s, &Iso8601::DEFAULT))
        .ok()?;
    i64::try_from(dt.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The participant-API client, built once from the `SdkConfig`.
#[derive(Debug, Clone)]
pub struct ParticipantClient {
    client: aws_sdk_connectparticipant::Client,
}

impl ParticipantClient {
    /// Builds the SDK client from `sdk` (it honours `AWS_ENDPOINT_URL_CONNECTPARTICIPANT` and
    /// `AWS_ENDPOINT_URL` when the `SdkConfig` was loaded by `aws_config`); `endpoint_override`
    /// wins over both.
    pub fn new(sdk: &SdkConfig, endpoint_override: Option<&str>) -> Self {
        let mut builder = aws_sdk_connectparticipant::config::Builder::from(sdk);
        if let Some(url) = endpoint_override.filter(|u| !u.trim().is_empty()) {
            builder = builder.endpoint_url(url.trim());
        }
        Self {
            client: aws_sdk_connectparticipant::Client::from_conf(builder.build()),
        }
    }

    /// The underlying SDK client, for the participant operations this adapter does not wrap
    /// (attachments, transcripts).
    pub fn sdk_client(&self) -> &aws_sdk_connectparticipant::Client {
        &self.client
    }

    /// `CreateParticipantConnection(Type=[CONNECTION_CREDENTIALS], ConnectParticipant=true)`
    /// with the ParticipantToken as bearer.
    pub async fn create_participant_connection(
        &self,
        participant_token: &ParticipantToken,
    ) -> Result<ConnectionCredentials, ConnectError> {
        const OP: &str = "CreateParticipantConnection";
        let out = self
            .client
            .create_participant_connection()
            .participant_token(participant_token.expose())
            .r#type(ConnectionType::ConnectionCredentials)
            .connect_participant(true)
            .send()
            .await
            .map_err(|e| from_sdk_error(Plane::Participant, OP, &e))?;
        let creds = out.connection_credentials().ok_or_else(|| {
            ConnectError::Unavailable(format!("{OP}: no ConnectionCredentials in the response"))
        })?;
        let token = creds
            .connection_token()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ConnectError::Unavailable(format!("{OP}: no ConnectionToken in the response"))
            })?;
        let expires_at_ms = creds.expiry().and_then(|raw| {
            let parsed = iso8601_to_ms(raw);
            if parsed.is_none() {
                tracing::warn!(
                    expiry = raw,
                    "unreadable ConnectionCredentials.Expiry; ignored"
                );
            }
            parsed
        });
        tracing::debug!(?expires_at_ms, "participant connected");
        Ok(ConnectionCredentials {
            token: ConnectionToken::new(token),
            expires_at_ms,
        })
    }

    /// `DisconnectParticipant`: the customer leaves the chat.
    pub async fn disconnect_participant(
        &self,
        connection: &ConnectionToken,
        client_token: &str,
    ) -> Result<(), ConnectError> {
        const OP: &str = "DisconnectParticipant";
        self.client
            .disconnect_participant()
            .connection_token(connection.expose())
            .client_token(client_token)
            .send()
            .await
            .map_err(|e| from_sdk_error(Plane::Participant, OP, &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_to_ms() {
        assert_eq!(
            iso8601_to_ms("2019-11-08T02:41:28.172Z"),
            Some(1_573_180_888_172)
        );
        assert_eq!(iso8601_to_ms("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(
            iso8601_to_ms("2019-11-08T03:41:28.172+01:00"),
            Some(1_573_180_888_172)
        );
        assert_eq!(iso8601_to_ms("yesterday"), None);
        assert_eq!(iso8601_to_ms(""), None);
    }
}
