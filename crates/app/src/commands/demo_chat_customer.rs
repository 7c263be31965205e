//! The demo's customer on X Chat: a person's X app, reduced to what the demo shows — keys made
//! and registered on the device, a conversation key made for the customer and the business,
//! messages sealed and signed on the device, and the business's answers checked and opened on
//! the device. It talks to the sandbox's X Chat over HTTP like any X client (the tests play this
//! part with X's own Chat SDK instead: `scripts/xchat_customer.py`).

use std::collections::HashSet;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use xdm_sandbox::SandboxHandle;
use xdm_xchat::events::{Sender, key_change_with, parse_event, text_message_with};
use xdm_xchat::keys::parse_public_key;
use xdm_xchat::registration::registration;
use xdm_xchat::signatures::verify_key_binding;
use xdm_xchat::thrift::{WrappedKey, message_text};
use xdm_xchat::{ChatKeys, ConversationKey, PublicKey, wrap};

const SCOPES: [&str; 5] = [
    "dm.read",
    "dm.write",
    "tweet.read",
    "users.read",
    "media.write",
];

/// A customer on X Chat, writing to one business account.
pub struct ChatCustomer {
    http: reqwest::Client,
    api: String,
    token: String,
    user_id: String,
    business_id: String,
    keys: ChatKeys,
    key_version: String,
    /// The conversation key this device made, and its version.
    conversation: Option<(String, ConversationKey)>,
    /// Sequence ids of the business's messages already shown.
    seen: HashSet<String>,
}

impl std::fmt::Debug for ChatCustomer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatCustomer")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> String {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).to_string()
}

/// The two user ids in numeric order, joined by `:` (X Chat's 1:1 conversation id).
fn conversation_id(a: &str, b: &str) -> String {
    let (lo, hi) = if (a.len(), a) <= (b.len(), b) {
        (a, b)
    } else {
        (b, a)
    };
    format!("{lo}:{hi}")
}

impl ChatCustomer {
    /// Makes the device's keys and registers them with X.
    pub async fn register(
        sandbox: &SandboxHandle,
        user_id: &str,
        business_id: &str,
    ) -> anyhow::Result<Self> {
        let customer = Self {
            http: reqwest::Client::new(),
            api: sandbox.base_url(),
            token: sandbox.issue_oauth2_token(user_id, &SCOPES).access_token,
            user_id: user_id.to_owned(),
            business_id: business_id.to_owned(),
            keys: ChatKeys::generate(),
            key_version: now_ms(),
            conversation: None,
            seen: HashSet::new(),
        };
        let reg = registration(&customer.keys);
        customer
            .call(
                reqwest::Method::POST,
                &format!("/2/users/{user_id}/public_keys"),
                Some(json!({
                    "public_key": {
                        "public_key": reg.public_key,
                        "signing_public_key": reg.signing_public_key,
                        "identity_public_key_signature": reg.identity_public_key_signature,
                        "signing_public_key_signature": reg.signing_public_key_signature,
                        "public_key_fingerprint": reg.public_key_fingerprint,
                        "registration_method": reg.registration_method,
                    },
                    "version": customer.key_version,
                    "generate_version": true,
                })),
            )
            .await?;
        Ok(customer)
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.api))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("X Chat answered {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The business's identity and signing keys as X serves them, their binding checked.
    async fn business_keys(&self) -> anyhow::Result<(String, PublicKey, PublicKey)> {
        let page = self
            .call(
                reqwest::Method::GET,
                &format!("/2/users/{}/public_keys", self.business_id),
                None,
            )
            .await?;
        let row = page["data"]
            .as_array()
            .and_then(|rows| rows.last())
            .context("the business has no X Chat keys")?;
        let field = |name: &str| -> anyhow::Result<Vec<u8>> {
            Ok(STANDARD.decode(row[name].as_str().context("a key field is missing")?)?)
        };
        let identity_bytes = field("public_key")?;
        let identity = parse_public_key(&identity_bytes)?;
        let signing = parse_public_key(&field("signing_public_key")?)?;
        verify_key_binding(
            &signing,
            &identity_bytes,
            row["identity_public_key_signature"].as_str().unwrap_or(""),
        )?;
        let version = row["public_key_version"].as_str().unwrap_or("").to_owned();
        Ok((version, identity, signing))
    }

    /// Seals, signs and sends `text` (making the conversation key first, once).
    pub async fn send(&mut self, text: &str) -> anyhow::Result<()> {
        let conversation = conversation_id(&self.user_id, &self.business_id);
        if self.conversation.is_none() {
            let (business_version, business_identity, _) = self.business_keys().await?;
            let key = ConversationKey::generate();
            let version = now_ms();
            let participants = vec![
                WrappedKey {
                    user_id: self.user_id.clone(),
                    wrapped_b64: STANDARD.encode(wrap::wrap(&key, &self.keys.identity_public())),
                    public_key_version: self.key_version.clone(),
                },
                WrappedKey {
                    user_id: self.business_id.clone(),
                    wrapped_b64: STANDARD.encode(wrap::wrap(&key, &business_identity)),
                    public_key_version: business_version,
                },
            ];
            let change = key_change_with(
                self.sender(),
                &conversation,
                &version,
                &key,
                &uuid::Uuid::new_v4().to_string(),
                participants,
            )?;
            let keys: Vec<Value> = change
                .participants
                .iter()
                .map(|p| {
                    json!({"user_id": p.user_id, "encrypted_conversation_key": p.wrapped_b64,
                           "public_key_version": p.public_key_version})
                })
                .collect();
            self.call(
                reqwest::Method::POST,
                &format!("/2/chat/conversations/{}/keys", self.business_id),
                Some(json!({
                    "conversation_key_version": change.conversation_key_version,
                    "conversation_participant_keys": keys,
                    "action_signatures": [{
                        "message_id": change.message_id,
                        "encoded_message_event_detail": change.encoded_message_event_detail,
                        "message_event_signature": {
                            "signature": change.signature,
                            "public_key_version": change.public_key_version,
                            "signature_version": change.signature_version,
                        },
                    }],
                })),
            )
            .await?;
            self.conversation = Some((version, key));
        }
        let Some((version, key)) = &self.conversation else {
            bail!("no conversation key");
        };
        let message_id = uuid::Uuid::new_v4().to_string();
        let nonce = key.nonce_for(&message_id, &xdm_xchat::thrift::text_message(text));
        let message = text_message_with(
            self.sender(),
            &conversation,
            version,
            key,
            &message_id,
            text,
            nonce,
        )?;
        self.call(
            reqwest::Method::POST,
            &format!("/2/chat/conversations/{}/messages", self.business_id),
            Some(json!({
                "message_id": message.message_id,
                "encoded_message_create_event": message.encoded_message_create_event,
                "encoded_message_event_signature": message.encoded_message_event_signature,
            })),
        )
        .await?;
        Ok(())
    }

    fn sender(&self) -> Sender<'_> {
        Sender {
            keys: &self.keys,
            user_id: &self.user_id,
            public_key_version: &self.key_version,
        }
    }

    /// The business's messages not shown yet, each checked against the business's signing key
    /// and opened on the device, as lines to show.
    pub async fn new_answers(&mut self) -> anyhow::Result<Vec<String>> {
        let Some((version, key)) = &self.conversation else {
            return Ok(Vec::new());
        };
        let page = self
            .call(
                reqwest::Method::GET,
                &format!(
                    "/2/chat/conversations/{}/events?max_results=100",
                    self.business_id
                ),
                None,
            )
            .await?;
        let (_, _, signing) = self.business_keys().await?;
        let mut answers = Vec::new();
        let events = page["data"].as_array().cloned().unwrap_or_default();
        // Newest first: shown oldest first.
        for item in events.iter().rev() {
            let Some(encoded) = item["encoded_event"].as_str() else {
                continue;
            };
            let event = parse_event(encoded)?;
            if event.sender_id != self.business_id || self.seen.contains(&event.sequence_id) {
                continue;
            }
            self.seen.insert(event.sequence_id.clone());
            let plaintext =
                event.open_message(&signing, |v| (v == version).then(|| key.clone()))?;
            let text = message_text(&plaintext)?.unwrap_or_default();
            let files = xdm_xchat::thrift::message_attachments(&plaintext)?;
            answers.push(match (text.is_empty(), files.first()) {
                (_, Some(file)) if text.is_empty() => format!(
                    "(a file: {})",
                    file.filename.as_deref().unwrap_or("unnamed")
                ),
                (_, Some(_)) => format!("{text} (and a file)"),
                (_, None) => text,
            });
        }
        Ok(answers)
    }
}
