//! Subscriptions to an account's events: X Activity API (XAA) subscriptions listed, updated and
//! deleted with the app bearer token and created as the business account (X refuses the app
//! bearer for private `dm.*` events), and the Account Activity API (AAA) subscriptions kept for
//! `--api aaa` while X serves it (created and checked as the account, listed and removed with the
//! app bearer).

use http::Method;
use serde_json::{Value, json};
use xdm_core::ids::XUserId;

use super::app_client::AppClient;
use super::error::{ManageError, accepted};
use super::wire::{data_items, parse_json, path_id, text};
use crate::client::XClient;

/// Pages of subscriptions read at most (1,000 a page: far beyond any cap X sells).
const MAX_PAGES: usize = 100;

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

/// Sets `tag` and `webhook_id` in a subscription request, when given.
fn tag_and_webhook(request: &mut Value, tag: Option<&str>, webhook_id: Option<&str>) {
    if let Some(tag) = tag {
        request["tag"] = json!(tag);
    }
    if let Some(webhook_id) = webhook_id {
        request["webhook_id"] = json!(webhook_id);
    }
}

impl AppClient {
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
            let body = self.send(Method::GET, endpoint, None).await?;
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
        tag_and_webhook(&mut request, tag, webhook_id);
        self.send(Method::PUT, endpoint, Some(&request)).await?;
        Ok(())
    }

    /// `DELETE /2/activity/subscriptions/{id}`.
    pub async fn delete_activity_subscription(&self, id: &str) -> Result<(), ManageError> {
        let endpoint = self.endpoint(&format!("/2/activity/subscriptions/{}", path_id(id)?))?;
        self.send(Method::DELETE, endpoint, None).await?;
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
        let body = self.send(Method::GET, endpoint, None).await?;
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
        self.send(Method::DELETE, endpoint, None).await?;
        Ok(())
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
        tag_and_webhook(&mut request, new.tag.as_deref(), new.webhook_id.as_deref());
        let answer = self
            .call(Method::POST, url, business, Some(&request))
            .await?;
        let body = accepted(answer)?;
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
        accepted(answer)?;
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
        let body = accepted(answer)?;
        let parsed = parse_json("an Account Activity subscription check", &body)?;
        Ok(parsed
            .get("data")
            .and_then(|d| d.get("subscribed"))
            .and_then(Value::as_bool)
            .unwrap_or(false))
    }
}
