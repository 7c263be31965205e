//! Managing X's delivery set-up: webhooks, replay jobs, X Activity API (XAA) subscriptions and
//! the Account Activity API (AAA) subscriptions kept for `--api aaa` while X serves it.
//!
//! * [`AppClient`] calls with the app bearer token (`XDM_X_BEARER_TOKEN`): `GET/POST/PUT/DELETE
//!   /2/webhooks`, `POST /2/webhooks/replay`, listing, updating and deleting XAA subscriptions,
//!   listing and removing AAA subscriptions; it also opens the activity stream
//!   ([`crate::stream`]).
//! * Creating a subscription to private `dm.*` events needs the user's own context (X refuses the
//!   app bearer for them), so those calls are on [`XClient`], made as the business account.
//! * Answers are read in every documented shape (`data` object or one-item list, `data` absent
//!   from an empty list). Errors are a [`ManageError`]: one line built from the problem's detail,
//!   title or `errors[].message`, never raw JSON, with the recognised [`ManageReason`] so the CLI
//!   can explain it (a CRC failure) or accept it (a duplicate subscription is "already done").

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method, StatusCode, header};
use serde_json::{Value, json};
use time::OffsetDateTime;
use url::Url;
use xdm_core::ids::XUserId;
use xdm_core::ports::XError;

use crate::auth::BearerToken;
use crate::client::{XClient, XConfigError, normalise_api_url, transport_error};
use crate::problem::{Problem, one_line};
use crate::rate_limit;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const TIMEOUT: Duration = Duration::from_secs(30);
/// Management answers are small JSON documents.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// Pages of subscriptions read at most (1,000 a page: far beyond any cap X sells).
const MAX_PAGES: usize = 100;

/// What X said was wrong with a management call, when recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManageReason {
    /// X's CRC check of the webhook URL failed (no answer, or a wrong `response_token`).
    CrcValidationFailed,
    /// The URL is not acceptable to X (not https, a port, a bad format).
    UrlValidationFailed,
    /// A webhook with this URL is already registered.
    DuplicateUrlFailed,
    /// The app has as many webhooks as its plan allows.
    WebhookLimitExceeded,
    /// The account is already subscribed.
    DuplicateSubscriptionFailed,
    /// The app has as many subscriptions as its plan allows.
    SubscriptionLimitExceeded,
    /// 401/403: the credentials are refused or lack the permission (scope, app access level).
    NotAuthorized,
    /// 429 (`reset_at_s`: when X's window resets, Unix seconds).
    RateLimited { reset_at_s: Option<i64> },
    /// 404: no such webhook or subscription.
    NotFound,
    /// 5xx, timeouts, connection errors, unreadable answers.
    Unavailable,
}

impl ManageReason {
    /// X's own name for it, when it has one.
    fn x_name(self) -> Option<&'static str> {
        Some(match self {
            Self::CrcValidationFailed => "CrcValidationFailed",
            Self::UrlValidationFailed => "UrlValidationFailed",
            Self::DuplicateUrlFailed => "DuplicateUrlFailed",
            Self::WebhookLimitExceeded => "WebhookLimitExceeded",
            Self::DuplicateSubscriptionFailed => "DuplicateSubscriptionFailed",
            Self::SubscriptionLimitExceeded => "SubscriptionLimitExceeded",
            _ => return None,
        })
    }
}

/// A management call that did not succeed. `Display` is one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ManageError {
    reason: Option<ManageReason>,
    message: String,
}

impl ManageError {
    fn new(reason: impl Into<Option<ManageReason>>, message: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// The recognised reason; `None` for anything else X (or this side) refused.
    pub fn reason(&self) -> Option<ManageReason> {
        self.reason
    }

    /// The explanation alone.
    pub fn message(&self) -> &str {
        &self.message
    }

    fn unexpected(what: &str, body: &[u8]) -> Self {
        let shown = one_line(&String::from_utf8_lossy(body), 200);
        Self::new(
            ManageReason::Unavailable,
            format!("X answered {what} with an unexpected body: {shown}"),
        )
    }
}

impl From<XError> for ManageError {
    fn from(e: XError) -> Self {
        let reason = match &e {
            XError::Unauthorized(_) | XError::Forbidden(_) => ManageReason::NotAuthorized,
            XError::RateLimited { reset_at_s } => ManageReason::RateLimited {
                reset_at_s: *reset_at_s,
            },
            XError::NotFound(_) => ManageReason::NotFound,
            XError::Unavailable(_) => ManageReason::Unavailable,
            _ => return Self::new(None, e.to_string()),
        };
        Self::new(reason, e.to_string())
    }
}

/// Classifies an error answer of a management call.
pub fn manage_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ManageError {
    let code = status.as_u16();
    let text = String::from_utf8_lossy(body);
    let known = [
        ManageReason::CrcValidationFailed,
        ManageReason::UrlValidationFailed,
        ManageReason::DuplicateUrlFailed,
        ManageReason::WebhookLimitExceeded,
        ManageReason::DuplicateSubscriptionFailed,
        ManageReason::SubscriptionLimitExceeded,
    ]
    .into_iter()
    .find(|r| r.x_name().is_some_and(|name| text.contains(name)));
    let summary = Problem::parse(body)
        .and_then(|p| {
            // The first item's message is usually the precise one ("… failed CRC").
            let first = p.errors.first();
            [
                first.and_then(|e| e.message.clone()),
                first.and_then(|e| e.detail.clone()),
            ]
            .into_iter()
            .flatten()
            .find(|s| !s.trim().is_empty())
            .map(|s| one_line(s.trim(), 300))
            .or_else(|| p.summary())
        })
        .unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("no reason given")
                .to_owned()
        });
    let reason = match (known, code) {
        (Some(r), _) => Some(r),
        (None, 401 | 403) => Some(ManageReason::NotAuthorized),
        (None, 429) => Some(ManageReason::RateLimited {
            reset_at_s: rate_limit::reset_at_s(headers),
        }),
        (None, 404) => Some(ManageReason::NotFound),
        (None, 408 | 500..=599) => Some(ManageReason::Unavailable),
        (None, _) => None,
    };
    let message = match reason {
        Some(ManageReason::NotAuthorized) => {
            format!("X refused the credentials (HTTP {code}): {summary}")
        }
        Some(ManageReason::RateLimited {
            reset_at_s: Some(at),
        }) => format!("X rate-limited the call (HTTP 429) until Unix time {at}: {summary}"),
        _ => match reason.and_then(ManageReason::x_name) {
            Some(name) if !summary.contains(name) => format!("HTTP {code}: {summary} ({name})"),
            _ => format!("HTTP {code}: {summary}"),
        },
    };
    ManageError::new(reason, message)
}

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

/// An XAA subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivitySubscription {
    pub id: String,
    pub event_type: String,
    /// `filter.user_id`.
    pub user_id: Option<String>,
    pub tag: Option<String>,
    pub webhook_id: Option<String>,
    pub created_at: Option<String>,
}

/// What to subscribe to (`POST /2/activity/subscriptions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscription {
    /// `dm.received`, `dm.sent`, …
    pub event_type: String,
    /// The account whose events are wanted (`filter.user_id`).
    pub user_id: String,
    /// 1 to 200 characters; delivered with each event.
    pub tag: Option<String>,
    /// Where events go; without it they go to the activity stream only.
    pub webhook_id: Option<String>,
}

fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `data` as a list of objects: an object alone, a list, or nothing.
fn data_items(answer: &Value) -> Vec<&Value> {
    match answer.get("data") {
        Some(Value::Array(items)) => items.iter().filter(|i| i.is_object()).collect(),
        Some(item @ Value::Object(_)) => vec![item],
        _ => Vec::new(),
    }
}

fn webhook_of(v: &Value) -> Option<Webhook> {
    Some(Webhook {
        id: text(v, "id")?,
        url: text(v, "url").unwrap_or_default(),
        valid: v.get("valid").and_then(Value::as_bool).unwrap_or(false),
        created_at: text(v, "created_at"),
    })
}

fn subscription_of(v: &Value) -> Option<ActivitySubscription> {
    // `{subscription: {...}}` wrapper of create/update answers.
    let v = v.get("subscription").filter(|s| s.is_object()).unwrap_or(v);
    Some(ActivitySubscription {
        id: text(v, "subscription_id").or_else(|| text(v, "id"))?,
        event_type: text(v, "event_type").unwrap_or_default(),
        user_id: v
            .get("filter")
            .and_then(|f| text(f, "user_id"))
            .or_else(|| text(v, "user_id")),
        tag: text(v, "tag"),
        webhook_id: text(v, "webhook_id"),
        created_at: text(v, "created_at"),
    })
}

fn parse_json(what: &str, body: &[u8]) -> Result<Value, ManageError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.is_object() => Ok(v),
        _ => Err(ManageError::unexpected(what, body)),
    }
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

/// A successful answer, the status and headers of a failed one as an error.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    fn ok(self) -> Result<Vec<u8>, ManageError> {
        if self.status.is_success() {
            Ok(self.body)
        } else {
            Err(manage_error(self.status, &self.headers, &self.body))
        }
    }
}

/// The X client of the app bearer token. Cheap to clone.
#[derive(Clone)]
pub struct AppClient {
    http: reqwest::Client,
    /// Without a total timeout: the activity stream stays open for hours.
    pub(crate) stream_http: reqwest::Client,
    api_url: Arc<str>,
    bearer: Arc<BearerToken>,
}

impl fmt::Debug for AppClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppClient")
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

impl AppClient {
    /// `api_url` as for [`crate::XClientConfig`]; `bearer` is the app's bearer token.
    pub fn new(api_url: &str, bearer: &str) -> Result<Self, XConfigError> {
        let api_url = normalise_api_url(api_url)?;
        if bearer.trim().is_empty() {
            return Err(XConfigError::Empty("XDM_X_BEARER_TOKEN"));
        }
        let build = |timeout: Option<Duration>| {
            let mut b = reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("xdm-connect/", env!("CARGO_PKG_VERSION")));
            if let Some(t) = timeout {
                b = b.timeout(t);
            }
            b.build()
                .map_err(|e| XConfigError::HttpClient(e.to_string()))
        };
        Ok(Self {
            http: build(Some(TIMEOUT))?,
            stream_http: build(None)?,
            api_url: api_url.into(),
            bearer: Arc::new(BearerToken::new(bearer.trim())),
        })
    }

    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    pub(crate) fn endpoint(&self, path: &str) -> Result<Url, ManageError> {
        Url::parse(&format!("{}{path}", self.api_url))
            .map_err(|e| ManageError::new(None, format!("cannot build the URL of {path}: {e}")))
    }

    pub(crate) fn bearer_header(&self) -> Result<http::HeaderValue, ManageError> {
        let mut value =
            http::HeaderValue::from_str(&format!("Bearer {}", self.bearer.expose_secret()))
                .map_err(|_| {
                    ManageError::new(
                        ManageReason::NotAuthorized,
                        "the bearer token cannot be sent in a header",
                    )
                })?;
        value.set_sensitive(true);
        Ok(value)
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Reply, ManageError> {
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .header(header::AUTHORIZATION, self.bearer_header()?);
        if let Some(body) = body {
            request = request.json(body);
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| ManageError::from(transport_error(e)))?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| ManageError::from(transport_error(e)))?
        {
            if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(ManageError::new(
                    ManageReason::Unavailable,
                    format!("X's answer to {method} {} is too large", url.path()),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        tracing::debug!(%method, path = url.path(), status = status.as_u16(), "X answered");
        Ok(Reply {
            status,
            headers,
            body: bytes,
        })
    }

    /// `POST /2/webhooks`: registers `url` (X runs a CRC check against it first).
    pub async fn create_webhook(&self, url: &str) -> Result<Webhook, ManageError> {
        let endpoint = self.endpoint("/2/webhooks")?;
        let body = self
            .send(Method::POST, endpoint, Some(&json!({ "url": url })))
            .await?
            .ok()?;
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
        let body = self.send(Method::GET, endpoint, None).await?.ok()?;
        let answer = parse_json("a webhook list", &body)?;
        Ok(data_items(&answer)
            .into_iter()
            .filter_map(webhook_of)
            .collect())
    }

    /// `PUT /2/webhooks/{id}`: asks X to run the CRC check again; whether it was triggered.
    pub async fn validate_webhook(&self, id: &str) -> Result<bool, ManageError> {
        let endpoint = self.endpoint(&format!("/2/webhooks/{}", path_id(id)?))?;
        let body = self.send(Method::PUT, endpoint, None).await?.ok()?;
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
        self.send(Method::DELETE, endpoint, None).await?.ok()?;
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
        let body = self
            .send(Method::POST, endpoint, Some(&request))
            .await?
            .ok()?;
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

    /// `GET /2/activity/subscriptions`, every page.
    pub async fn activity_subscriptions(&self) -> Result<Vec<ActivitySubscription>, ManageError> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut endpoint = self.endpoint("/2/activity/subscriptions")?;
            {
                let mut q = endpoint.query_pairs_mut();
                q.append_pair("max_results", "1000");
                if let Some(t) = &token {
                    q.append_pair("pagination_token", t);
                }
            }
            let body = self.send(Method::GET, endpoint, None).await?.ok()?;
            let answer = parse_json("a subscription list", &body)?;
            all.extend(data_items(&answer).into_iter().filter_map(subscription_of));
            let next = answer
                .get("meta")
                .and_then(|m| text(m, "next_token").or_else(|| text(m, "pagination_token")));
            if next.is_none() || next == token {
                return Ok(all);
            }
            token = next;
        }
        tracing::warn!(
            pages = MAX_PAGES,
            "X listed more subscription pages than are read"
        );
        Ok(all)
    }

    /// `PUT /2/activity/subscriptions/{id}`: a new tag and/or webhook.
    pub async fn update_activity_subscription(
        &self,
        id: &str,
        tag: Option<&str>,
        webhook_id: Option<&str>,
    ) -> Result<(), ManageError> {
        let endpoint = self.endpoint(&format!("/2/activity/subscriptions/{}", path_id(id)?))?;
        let mut request = json!({});
        if let Some(tag) = tag {
            request["tag"] = json!(tag);
        }
        if let Some(webhook_id) = webhook_id {
            request["webhook_id"] = json!(webhook_id);
        }
        self.send(Method::PUT, endpoint, Some(&request))
            .await?
            .ok()?;
        Ok(())
    }

    /// `DELETE /2/activity/subscriptions/{id}`.
    pub async fn delete_activity_subscription(&self, id: &str) -> Result<(), ManageError> {
        let endpoint = self.endpoint(&format!("/2/activity/subscriptions/{}", path_id(id)?))?;
        self.send(Method::DELETE, endpoint, None).await?.ok()?;
        Ok(())
    }

    /// AAA: `GET /2/account_activity/webhooks/{id}/subscriptions/all/list`: the subscribed users.
    pub async fn account_activity_subscriptions(
        &self,
        webhook_id: &str,
    ) -> Result<Vec<XUserId>, ManageError> {
        let endpoint = self.endpoint(&format!(
            "/2/account_activity/webhooks/{}/subscriptions/all/list",
            path_id(webhook_id)?
        ))?;
        let body = self.send(Method::GET, endpoint, None).await?.ok()?;
        let answer = parse_json("an Account Activity subscription list", &body)?;
        let subscriptions = answer
            .get("data")
            .and_then(|d| d.get("subscriptions"))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        Ok(subscriptions
            .iter()
            .filter_map(|s| XUserId::parse(text(s, "user_id")?).ok())
            .collect())
    }

    /// AAA: `DELETE /2/account_activity/webhooks/{id}/subscriptions/{user_id}/all`.
    pub async fn unsubscribe_account_activity(
        &self,
        webhook_id: &str,
        user_id: &XUserId,
    ) -> Result<(), ManageError> {
        let endpoint = self.endpoint(&format!(
            "/2/account_activity/webhooks/{}/subscriptions/{user_id}/all",
            path_id(webhook_id)?
        ))?;
        self.send(Method::DELETE, endpoint, None).await?.ok()?;
        Ok(())
    }
}

/// An id that is safe in a path: X's ids are digits.
fn path_id(id: &str) -> Result<&str, ManageError> {
    let id = id.trim();
    if !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(id)
    } else {
        Err(ManageError::new(
            None,
            format!("{:?} is not an X id", one_line(id, 40)),
        ))
    }
}

impl XClient {
    /// `POST /2/activity/subscriptions` as business account `business` (user context: X refuses
    /// the app bearer for private `dm.*` events). A duplicate is `ManageReason::DuplicateSubscription`.
    pub async fn create_activity_subscription(
        &self,
        business: &XUserId,
        new: &NewSubscription,
    ) -> Result<ActivitySubscription, ManageError> {
        let url = self.endpoint("/2/activity/subscriptions")?;
        let mut request = json!({
            "event_type": new.event_type,
            "filter": { "user_id": new.user_id },
        });
        if let Some(tag) = &new.tag {
            request["tag"] = json!(tag);
        }
        if let Some(webhook_id) = &new.webhook_id {
            request["webhook_id"] = json!(webhook_id);
        }
        let answer = self
            .call(Method::POST, url, business, Some(&request))
            .await?;
        let body = Reply {
            status: answer.status,
            headers: answer.headers,
            body: answer.body,
        }
        .ok()?;
        let parsed = parse_json("a subscription creation", &body)?;
        let mut sub = data_items(&parsed)
            .into_iter()
            .find_map(subscription_of)
            .ok_or_else(|| ManageError::unexpected("a subscription creation", &body))?;
        if sub.event_type.is_empty() {
            sub.event_type.clone_from(&new.event_type);
        }
        sub.user_id.get_or_insert_with(|| new.user_id.clone());
        if sub.tag.is_none() {
            sub.tag.clone_from(&new.tag);
        }
        if sub.webhook_id.is_none() {
            sub.webhook_id.clone_from(&new.webhook_id);
        }
        Ok(sub)
    }

    /// AAA: `POST /2/account_activity/webhooks/{id}/subscriptions/all` as `business`.
    pub async fn subscribe_account_activity(
        &self,
        business: &XUserId,
        webhook_id: &str,
    ) -> Result<(), ManageError> {
        let url = self.endpoint(&format!(
            "/2/account_activity/webhooks/{}/subscriptions/all",
            path_id(webhook_id)?
        ))?;
        let answer = self
            .call(Method::POST, url, business, Some(&json!({})))
            .await?;
        Reply {
            status: answer.status,
            headers: answer.headers,
            body: answer.body,
        }
        .ok()?;
        Ok(())
    }

    /// AAA: `GET /2/account_activity/webhooks/{id}/subscriptions/all` as `business`: whether it
    /// is subscribed.
    pub async fn account_activity_subscribed(
        &self,
        business: &XUserId,
        webhook_id: &str,
    ) -> Result<bool, ManageError> {
        let url = self.endpoint(&format!(
            "/2/account_activity/webhooks/{}/subscriptions/all",
            path_id(webhook_id)?
        ))?;
        let answer = self.call::<()>(Method::GET, url, business, None).await?;
        let body = Reply {
            status: answer.status,
            headers: answer.headers,
            body: answer.body,
        }
        .ok()?;
        let parsed = parse_json("an Account Activity subscription check", &body)?;
        Ok(parsed
            .get("data")
            .and_then(|d| d.get("subscribed"))
            .and_then(Value::as_bool)
            .unwrap_or(false))
    }
}
