//! The X Activity API side of the control surface: `SandboxHandle` methods for OAuth 2.0 tokens,
//! webhooks v2, subscriptions, the event log, activity streams, replays and the DM history, and
//! their HTTP routes under `/_sandbox/x/…`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use crate::control::reply::{ControlError, Reply, body, ok};
use crate::error::SandboxError;
use crate::handle::SandboxHandle;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::oauth2_tokens::{OAuth2Settings, OAuth2TokenFamily, OAuth2Tokens};
use crate::x::records::{
    ActivitySubscription, ReplayJob, SentDm, StreamConnection, SubscriptionFilter,
    WebhookRegistration, XEventRecord,
};
use crate::x::subscriptions::EVENT_TYPES;

impl SandboxHandle {
    // ----- X: OAuth 2.0 -----

    /// Issues an OAuth 2.0 user token pair directly (as if `user_id` had authorized the configured
    /// client with `scopes`); a refresh token comes with `offline.access`.
    pub fn issue_oauth2_token(&self, user_id: &str, scopes: &[&str]) -> OAuth2Tokens {
        let x_cfg = &self.shared.cfg.x;
        let mut x = lock(&self.shared.x);
        let lifetime = x
            .oauth2
            .lifetime_override()
            .unwrap_or(x_cfg.oauth2.access_token_lifetime_secs);
        x.oauth2.new_family(
            user_id,
            &x_cfg.client_id,
            scopes.iter().map(|s| (*s).to_owned()).collect(),
            lifetime,
        )
    }

    /// Every token family (token values cut to a prefix).
    pub fn oauth2_tokens(&self) -> Vec<OAuth2TokenFamily> {
        lock(&self.shared.x).oauth2.families()
    }

    /// Changes the access token lifetime, the approver, or makes the next authorize deny.
    pub fn set_oauth2(&self, settings: OAuth2Settings) {
        lock(&self.shared.x).oauth2.apply(&settings);
    }

    /// Revokes every token family of `user_id` (the user revoked the app); returns how many.
    pub fn revoke_oauth2_user(&self, user_id: &str) -> usize {
        lock(&self.shared.x).oauth2.revoke_user(user_id)
    }

    // ----- X: webhooks v2, subscriptions, events -----

    /// Every registered webhook, oldest first.
    pub fn webhooks(&self) -> Vec<WebhookRegistration> {
        lock(&self.shared.x).webhooks.clone()
    }

    fn with_webhook(
        &self,
        id: &str,
        change: impl FnOnce(&mut WebhookRegistration),
    ) -> Result<WebhookRegistration, SandboxError> {
        let mut x = lock(&self.shared.x);
        let hook = x
            .webhooks
            .iter_mut()
            .find(|w| w.id == id)
            .ok_or_else(|| SandboxError::invalid("webhook id", format!("no webhook {id}")))?;
        change(hook);
        Ok(hook.clone())
    }

    /// Marks a webhook invalid, as X does after failed CRCs: nothing is delivered to it until a
    /// `PUT /2/webhooks/{id}` (or `set_webhook` of its URL) validates it again.
    pub fn invalidate_webhook(&self, id: &str) -> Result<WebhookRegistration, SandboxError> {
        let hook = self.with_webhook(id, |w| w.valid = false)?;
        lock(&self.shared.x).recheck_webhooks.remove(id);
        Ok(hook)
    }

    /// While `on`, deliveries to the webhook are attempted and recorded as failed without
    /// reaching it (an outage of the bridge's endpoint, for replay tests).
    pub fn set_webhook_outage(
        &self,
        id: &str,
        on: bool,
    ) -> Result<WebhookRegistration, SandboxError> {
        self.with_webhook(id, |w| w.outage = on)
    }

    /// X Activity API subscriptions, oldest first.
    pub fn activity_subscriptions(&self) -> Vec<ActivitySubscription> {
        lock(&self.shared.x).subscriptions.clone()
    }

    /// Adds an X Activity API subscription directly (no authorization checks; the event type must
    /// be one of X's and `webhook_id`, when given, must exist). E.g. `dm.sent` for the business
    /// account, to get the events of DMs sent through the API.
    pub fn subscribe_activity(
        &self,
        event_type: &str,
        user_id: &str,
        webhook_id: Option<&str>,
        tag: Option<&str>,
    ) -> Result<ActivitySubscription, SandboxError> {
        if !EVENT_TYPES.contains(&event_type) {
            return Err(SandboxError::invalid(
                "event_type",
                format!("{event_type} is not an X Activity API event type"),
            ));
        }
        let mut x = lock(&self.shared.x);
        if let Some(hook) = webhook_id
            && x.webhook(hook).is_none()
        {
            return Err(SandboxError::invalid(
                "webhook id",
                format!("no webhook {hook}"),
            ));
        }
        let sub = ActivitySubscription::new(
            self.shared.snowflake.next(),
            event_type.to_owned(),
            SubscriptionFilter::user(user_id),
            tag.map(str::to_owned),
            webhook_id.map(str::to_owned),
        );
        x.subscriptions.push(sub.clone());
        Ok(sub)
    }

    /// Account Activity subscriptions as (webhook id, user id).
    pub fn account_activity_subscriptions(&self) -> Vec<(String, String)> {
        lock(&self.shared.x).aaa_subscriptions.clone()
    }

    /// Every event rendered for a subscription, in order (what webhooks, streams, backfills and
    /// replays carry).
    pub fn x_events(&self) -> Vec<XEventRecord> {
        lock(&self.shared.x).event_log.clone()
    }

    /// Every DM of every conversation (received through `deliver_dm`, sent through the API).
    pub fn dm_history(&self) -> Vec<SentDm> {
        lock(&self.shared.x).dm_history.clone()
    }

    // ----- X: activity streams and replays -----

    /// Open activity stream connections.
    pub fn stream_connections(&self) -> Vec<StreamConnection> {
        lock(&self.shared.x).streams.views()
    }

    /// Ends every activity stream connection abruptly; returns how many there were.
    pub fn drop_streams(&self) -> usize {
        lock(&self.shared.x).streams.drop_all()
    }

    /// While `silent`, open streams get neither keep-alives nor events (events still go to the
    /// log, hence to backfills).
    pub fn set_streams_silent(&self, silent: bool) {
        lock(&self.shared.x).streams.set_silent(silent);
    }

    /// Replay jobs (`POST /2/webhooks/replay`) with their progress.
    pub fn replay_jobs(&self) -> Vec<ReplayJob> {
        lock(&self.shared.x).replays.clone()
    }
}

type Ctl = State<Arc<Shared>>;

/// `/_sandbox/x/…` routes of this module.
pub(crate) fn control_routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/x/oauth2", post(set_oauth2))
        .route("/x/oauth2/tokens", get(oauth2_tokens))
        .route("/x/oauth2/issue", post(issue))
        .route("/x/oauth2/revoke-user", post(revoke_user))
        .route("/x/webhooks", get(webhooks))
        .route("/x/webhooks/{id}/invalidate", post(invalidate))
        .route("/x/webhooks/{id}/outage", post(outage))
        .route("/x/subscriptions", get(subscriptions))
        .route("/x/events", get(events))
        .route("/x/dm-history", get(dm_history))
        .route("/x/streams", get(streams))
        .route("/x/streams/drop", post(drop_streams))
        .route("/x/streams/silent", post(silent))
        .route("/x/replays", get(replays))
}

fn handle(shared: Arc<Shared>) -> SandboxHandle {
    SandboxHandle { shared }
}

async fn set_oauth2(State(shared): Ctl, bytes: Bytes) -> Reply {
    let settings: OAuth2Settings = body(&bytes)?;
    let h = handle(shared);
    h.set_oauth2(settings);
    ok(h.oauth2_tokens())
}

async fn oauth2_tokens(State(shared): Ctl) -> Reply {
    ok(handle(shared).oauth2_tokens())
}

#[derive(Deserialize)]
struct IssueBody {
    user_id: String,
    scopes: Vec<String>,
}

async fn issue(State(shared): Ctl, bytes: Bytes) -> Reply {
    let req: IssueBody = body(&bytes)?;
    let scopes: Vec<&str> = req.scopes.iter().map(String::as_str).collect();
    ok(handle(shared).issue_oauth2_token(&req.user_id, &scopes))
}

#[derive(Deserialize)]
struct UserBody {
    user_id: String,
}

async fn revoke_user(State(shared): Ctl, bytes: Bytes) -> Reply {
    let req: UserBody = body(&bytes)?;
    ok(json!({"revoked": handle(shared).revoke_oauth2_user(&req.user_id)}))
}

async fn webhooks(State(shared): Ctl) -> Reply {
    ok(handle(shared).webhooks())
}

/// The webhook, or 404 naming the id.
fn webhook_answer(result: Result<WebhookRegistration, SandboxError>) -> Reply {
    let hook = result.map_err(|e| ControlError(StatusCode::NOT_FOUND, e.to_string()))?;
    ok(hook)
}

async fn invalidate(State(shared): Ctl, Path(id): Path<String>) -> Reply {
    webhook_answer(handle(shared).invalidate_webhook(&id))
}

#[derive(Deserialize)]
struct OnBody {
    on: bool,
}

async fn outage(State(shared): Ctl, Path(id): Path<String>, bytes: Bytes) -> Reply {
    let req: OnBody = body(&bytes)?;
    webhook_answer(handle(shared).set_webhook_outage(&id, req.on))
}

async fn subscriptions(State(shared): Ctl) -> Reply {
    let h = handle(shared);
    ok(json!({
        "activity": h.activity_subscriptions(),
        "account_activity": h
            .account_activity_subscriptions()
            .into_iter()
            .map(|(webhook_id, user_id)| json!({"webhook_id": webhook_id, "user_id": user_id}))
            .collect::<Vec<_>>(),
    }))
}

async fn events(State(shared): Ctl) -> Reply {
    ok(handle(shared).x_events())
}

async fn dm_history(State(shared): Ctl) -> Reply {
    ok(handle(shared).dm_history())
}

async fn streams(State(shared): Ctl) -> Reply {
    let h = handle(shared);
    let silent = lock(&h.shared.x).streams.silent();
    ok(json!({"silent": silent, "connections": h.stream_connections()}))
}

async fn drop_streams(State(shared): Ctl) -> Reply {
    ok(json!({"dropped": handle(shared).drop_streams()}))
}

async fn silent(State(shared): Ctl, bytes: Bytes) -> Reply {
    let req: OnBody = body(&bytes)?;
    handle(shared).set_streams_silent(req.on);
    ok(json!({"silent": req.on}))
}

async fn replays(State(shared): Ctl) -> Reply {
    ok(handle(shared).replay_jobs())
}
