//! Webhooks and replay, with the app bearer token: `GET/POST/PUT/DELETE /2/webhooks` (X runs a
//! CRC check against a URL before registering it, and again on `PUT`) and
//! `POST /2/webhooks/replay` (X delivers the events of a past window to the webhook again).

use http::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::app_client::AppClient;
use super::error::ManageError;
use super::wire::{data_items, parse_json, path_id, text};

/// A registered webhook (`GET/POST /2/webhooks`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    /// Whether X's last CRC check of it passed.
    pub valid: bool,
    pub created_at: Option<String>,
}

/// A replay job (`POST /2/webhooks/replay`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayJob {
    pub job_id: String,
    pub created_at: Option<String>,
}

fn webhook_of(v: &Value) -> Option<Webhook> {
    Some(Webhook {
        id: text(v, "id")?,
        url: text(v, "url").unwrap_or_default(),
        valid: v.get("valid").and_then(Value::as_bool).unwrap_or(false),
        created_at: text(v, "created_at"),
    })
}

/// `yyyymmddhhmm` in UTC, as the replay endpoint takes it.
pub fn replay_timestamp(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}{:02}{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
}

impl AppClient {
    /// `POST /2/webhooks`: registers `url` (X runs a CRC check against it first).
    pub async fn create_webhook(&self, url: &str) -> Result<Webhook, ManageError> {
        let endpoint = self.endpoint("/2/webhooks")?;
        let body = self
            .send(Method::POST, endpoint, Some(&json!({ "url": url })))
            .await?;
        let answer = parse_json("a webhook creation", &body)?;
        data_items(&answer)
            .into_iter()
            .find_map(webhook_of)
            .or_else(|| webhook_of(&answer))
            .ok_or_else(|| ManageError::unexpected("a webhook creation", &body))
    }

    /// `GET /2/webhooks`: the app's webhooks (an empty list may come without `data`).
    pub async fn webhooks(&self) -> Result<Vec<Webhook>, ManageError> {
        let endpoint = self.endpoint("/2/webhooks")?;
        let body = self.send(Method::GET, endpoint, None).await?;
        let answer = parse_json("a webhook list", &body)?;
        Ok(data_items(&answer)
            .into_iter()
            .filter_map(webhook_of)
            .collect())
    }

    /// `PUT /2/webhooks/{id}`: asks X to run the CRC check again; whether it was triggered.
    pub async fn validate_webhook(&self, id: &str) -> Result<bool, ManageError> {
        let endpoint = self.endpoint(&format!("/2/webhooks/{}", path_id(id)?))?;
        let body = self.send(Method::PUT, endpoint, None).await?;
        let answer = parse_json("a webhook validation", &body)?;
        Ok(answer
            .get("data")
            .and_then(|d| d.get("valid"))
            .and_then(Value::as_bool)
            .unwrap_or(false))
    }

    /// `DELETE /2/webhooks/{id}`.
    pub async fn delete_webhook(&self, id: &str) -> Result<(), ManageError> {
        let endpoint = self.endpoint(&format!("/2/webhooks/{}", path_id(id)?))?;
        self.send(Method::DELETE, endpoint, None).await?;
        Ok(())
    }

    /// `POST /2/webhooks/replay`: X delivers the events of `from`..=`to` (minutes, UTC) to the
    /// webhook again.
    pub async fn replay(
        &self,
        webhook_id: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<ReplayJob, ManageError> {
        let endpoint = self.endpoint("/2/webhooks/replay")?;
        let request = json!({
            "webhook_id": webhook_id,
            "from_date": replay_timestamp(from),
            "to_date": replay_timestamp(to),
        });
        let body = self.send(Method::POST, endpoint, Some(&request)).await?;
        let answer = parse_json("a replay request", &body)?;
        data_items(&answer)
            .into_iter()
            .find_map(|d| {
                Some(ReplayJob {
                    job_id: text(d, "job_id")?,
                    created_at: text(d, "created_at"),
                })
            })
            .ok_or_else(|| ManageError::unexpected("a replay request", &body))
    }
}
