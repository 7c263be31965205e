//! The X side of the load: Account Activity webhook deliveries built and signed here (like the
//! captured fixture `crates/sandbox/testdata/x-aaa-text-dm-body.json`: one `message_create`
//! event and a `users` map of sender and recipient), POSTed to the bridge, and only the HTTP
//! round trip timed — what X sees as the acknowledgement latency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde_json::json;
use xdm_sandbox::x::payloads::x_json;
use xdm_sandbox::x::webhook_client::{SIGNATURE_HEADER, webhook_signature};
use xdm_sandbox::{SandboxHandle, SandboxUser};

/// Twitter's snowflake epoch (2010-11-04T01:42:54.657Z).
const SNOWFLAKE_EPOCH_MS: u64 = 1_288_834_974_657;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A simulated X customer: an id, a profile in the sandbox's registry, and the pre-rendered
/// `users` map of their deliveries.
#[derive(Debug, Clone)]
pub struct Customer {
    pub id: String,
    pub name: String,
    pub username: String,
    users_json: String,
}

/// Numeric X ids for `n` customers (`3100000000`, `3100000001`, …).
pub fn customer_id(index: usize) -> String {
    (3_100_000_000u64 + index as u64).to_string()
}

/// The legacy (v1.1) user object of an Account Activity `users` map, shaped like the fixture.
fn legacy_user(user: &SandboxUser, location: &str, description: &str) -> serde_json::Value {
    let image = "https://pbs.twimg.com/profile_images/1603384697035182080/iQFwc3l3_normal.jpg";
    json!({
        "id": user.id,
        "created_timestamp": user.created_at_ms.to_string(),
        "name": user.name,
        "screen_name": user.username,
        "location": location,
        "description": description,
        "protected": false,
        "verified": false,
        "followers_count": user.followers_count,
        "friends_count": user.following_count,
        "statuses_count": user.tweet_count,
        "profile_image_url": image.replace("https://", "http://"),
        "profile_image_url_https": image,
    })
}

impl Customer {
    /// Registers customer `index` in the sandbox's X user registry and renders their `users` map.
    pub fn register(sandbox: &SandboxHandle, index: usize) -> Self {
        let id = customer_id(index);
        let name = format!("Load Customer {index}");
        let username = format!("loadcustomer{index}");
        let user = SandboxUser {
            followers_count: 1146,
            following_count: 1050,
            tweet_count: 32629,
            description: Some(
                "Customer of Acme. Opinions are my own. Soy desierto, selva, nieve y volcán…"
                    .to_owned(),
            ),
            location: Some("San Francisco, CA".to_owned()),
            ..SandboxUser::new(&id, &name, &username)
        };
        sandbox.add_user(user.clone());
        let business = &sandbox.config().x.business;
        let business_user = SandboxUser {
            followers_count: 6131,
            following_count: 376,
            tweet_count: 43292,
            ..SandboxUser::new(&business.id, &business.name, &business.username)
        };
        let mut users = serde_json::Map::new();
        users.insert(
            user.id.clone(),
            legacy_user(
                &user,
                "San Francisco, CA",
                "Customer of Acme. Opinions are my own. Soy desierto, selva, nieve y volcán…",
            ),
        );
        users.insert(
            business_user.id.clone(),
            legacy_user(
                &business_user,
                "Santiago, Chile",
                "We answer DMs 24/7 https://t.co/1NROf4ljpQ\nStatus: https://t.co/0hRAxShvGA",
            ),
        );
        let users_json = String::from_utf8_lossy(&x_json(&users)).into_owned();
        Self {
            id,
            name,
            username,
            users_json,
        }
    }
}

/// Builds, signs and POSTs webhook deliveries to the bridge.
#[derive(Debug)]
pub struct WebhookClient {
    http: reqwest::Client,
    url: String,
    secret: String,
    business_id: String,
    next_event_id: AtomicU64,
}

/// The bridge's answer to one delivery.
#[derive(Debug, Clone, Copy)]
pub struct Ack {
    /// `None`: no HTTP answer (connection error, timeout).
    pub status: Option<u16>,
    /// From sending the request to having read the whole answer.
    pub latency: Duration,
}

impl WebhookClient {
    /// `url` is the bridge's `/webhooks/x`; `max_connections` idle connections are kept.
    pub fn new(sandbox: &SandboxHandle, url: &str, max_connections: usize) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(max_connections)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(30))
            .build()
            .context("cannot build the HTTP client")?;
        let cfg = sandbox.config();
        Ok(Self {
            http,
            url: url.to_owned(),
            secret: cfg.x.consumer_secret.clone(),
            business_id: cfg.x.business.id.clone(),
            next_event_id: AtomicU64::new(now_ms().saturating_sub(SNOWFLAKE_EPOCH_MS) << 22),
        })
    }

    /// The body of a delivery of one text DM from `customer` (a fresh event id each call),
    /// byte-for-byte in X's style (`\/` and `\uXXXX` escapes).
    pub fn dm_body(&self, customer: &Customer, text: &str) -> Vec<u8> {
        let event_id = self.next_event_id.fetch_add(1, Ordering::Relaxed);
        let text = String::from_utf8_lossy(&x_json(&text)).into_owned();
        format!(
            concat!(
                r#"{{"for_user_id":"{business}","direct_message_events":[{{"type":"message_create","id":"{event_id}","#,
                r#""created_timestamp":"{ts}","message_create":{{"target":{{"recipient_id":"{business}"}},"#,
                r#""sender_id":"{sender}","message_data":{{"text":{text},"entities":{{"hashtags":[],"symbols":[],"#,
                r#""user_mentions":[],"urls":[]}}}}}}}}],"users":{users}}}"#
            ),
            business = self.business_id,
            event_id = event_id,
            ts = now_ms(),
            sender = customer.id,
            text = text,
            users = customer.users_json,
        )
        .into_bytes()
    }

    /// Signs and POSTs `body`; times only the HTTP exchange (signing and building are excluded).
    pub async fn post(&self, body: Vec<u8>) -> Ack {
        let signature = webhook_signature(&self.secret, &body);
        let request = match self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .build()
        {
            Ok(r) => r,
            Err(_) => {
                return Ack {
                    status: None,
                    latency: Duration::ZERO,
                };
            }
        };
        let start = Instant::now();
        let status = match self.http.execute(request).await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.bytes().await {
                    Ok(_) => Some(status),
                    Err(_) => None,
                }
            }
            Err(_) => None,
        };
        Ack {
            status,
            latency: start.elapsed(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use xdm_sandbox::{Sandbox, SandboxConfig};

    #[tokio::test]
    async fn bodies_look_like_the_fixture() {
        let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
        let customer = Customer::register(&sandbox, 7);
        let client = WebhookClient::new(&sandbox, "http://127.0.0.1:9/webhooks/x", 1).unwrap();
        let body = client.dm_body(&customer, "Hola / ¿qué tal? #1");
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(
            text.contains(r#""text":"Hola \/ \u00bfqu\u00e9 tal? #1""#),
            "{text}"
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["for_user_id"], "4337869213");
        let event = &v["direct_message_events"][0];
        assert_eq!(event["type"], "message_create");
        assert_eq!(event["message_create"]["sender_id"], customer.id);
        assert_eq!(
            event["message_create"]["message_data"]["text"],
            "Hola / ¿qué tal? #1"
        );
        assert_eq!(v["users"][&customer.id]["screen_name"], "loadcustomer7");
        assert_eq!(v["users"]["4337869213"]["screen_name"], "AcmeSupport");
        // About the size of the real capture (1,570 bytes).
        assert!((1_000..2_000).contains(&body.len()), "{} bytes", body.len());
        let other = client.dm_body(&customer, "x");
        let id = |b: &[u8]| {
            serde_json::from_slice::<serde_json::Value>(b).unwrap()["direct_message_events"][0]
                ["id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert_ne!(id(&body), id(&other));
        sandbox.shutdown();
    }
}
