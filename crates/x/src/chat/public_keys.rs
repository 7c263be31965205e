//! X Chat public keys as X serves them (`GET /2/users/{id}/public_keys`) and registers them
//! (`POST /2/users/{id}/public_keys`), docs/xchat.md §1.4–§1.5.
//!
//! A served row is trusted only when its key binding verifies: the identity key's exact bytes
//! signed by the row's signing key. Rows that fail are dropped (logged without key material).
//! Signing keys are cached per user for ten minutes (`signing_key_cache`); a signature naming
//! a version the cache lacks reads X again once (the sender may have registered new keys since).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::Method;
use serde::{Deserialize, Serialize};
use xdm_core::ids::XUserId;
use xdm_core::ports::XError;
use xdm_xchat::PublicKey;
use xdm_xchat::keys::parse_public_key;
use xdm_xchat::registration::registration;
use xdm_xchat::signatures::verify_key_binding;

use crate::chat::ChatIdentity;
use crate::client::XClient;
use crate::error::unexpected_body;

/// The fields asked for (X's default answer may leave some out).
const FIELDS: &str =
    "public_key,signing_public_key,identity_public_key_signature,public_key_version";

/// One version of a user's public keys, its binding verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPublicKey {
    pub version: String,
    pub identity: PublicKey,
    pub signing: PublicKey,
}

#[derive(Debug, Deserialize)]
struct KeysPage {
    #[serde(default)]
    data: Vec<KeyRow>,
}

#[derive(Debug, Deserialize)]
struct KeyRow {
    public_key: Option<String>,
    signing_public_key: Option<String>,
    identity_public_key_signature: Option<String>,
    public_key_version: Option<String>,
}

impl KeyRow {
    /// The row as a trusted key, or why not.
    fn verified(self) -> Result<UserPublicKey, &'static str> {
        let version = self.public_key_version.ok_or("no public_key_version")?;
        let identity_bytes = STANDARD
            .decode(self.public_key.ok_or("no public_key")?)
            .map_err(|_| "public_key is not base64")?;
        let signing_bytes = STANDARD
            .decode(self.signing_public_key.ok_or("no signing_public_key")?)
            .map_err(|_| "signing_public_key is not base64")?;
        let identity = parse_public_key(&identity_bytes).map_err(|_| "public_key is not P-256")?;
        let signing =
            parse_public_key(&signing_bytes).map_err(|_| "signing_public_key is not P-256")?;
        let binding = self
            .identity_public_key_signature
            .ok_or("no identity_public_key_signature")?;
        verify_key_binding(&signing, &identity_bytes, &binding)
            .map_err(|_| "the key binding does not verify")?;
        Ok(UserPublicKey {
            version,
            identity,
            signing,
        })
    }
}

/// `user`'s public keys as X serves them to `business`, only the rows whose binding verifies.
pub async fn user_public_keys(
    client: &XClient,
    business: &XUserId,
    user: &XUserId,
) -> Result<Vec<UserPublicKey>, XError> {
    let mut url = client.endpoint(&format!("/2/users/{user}/public_keys"))?;
    url.query_pairs_mut()
        .append_pair("public_key.fields", FIELDS);
    let answer = client
        .call::<()>(Method::GET, url, business, None)
        .await?
        .success()?;
    let page: KeysPage = serde_json::from_slice(&answer.body)
        .map_err(|_| unexpected_body("a public keys lookup", &answer.body))?;
    Ok(page
        .data
        .into_iter()
        .filter_map(|row| {
            row.verified()
                .inspect_err(|reason| {
                    tracing::warn!(%user, reason, "X Chat public key row not trusted");
                })
                .ok()
        })
        .collect())
}

/// The `POST /2/users/{id}/public_keys` body.
#[derive(Debug, Serialize)]
struct RegisterBody<'a> {
    public_key: RegisterKey<'a>,
    version: &'a str,
    generate_version: bool,
}

#[derive(Debug, Serialize)]
struct RegisterKey<'a> {
    public_key: &'a str,
    signing_public_key: &'a str,
    identity_public_key_signature: &'a str,
    signing_public_key_signature: &'a str,
    public_key_fingerprint: &'a str,
    registration_method: &'a str,
}

#[derive(Debug, Deserialize)]
struct Registered {
    data: RegisteredData,
}

#[derive(Debug, Deserialize)]
struct RegisteredData {
    public_key_version: Option<String>,
}

/// Registers `keys`' public keys for `business` under `version` (a millisecond timestamp, as
/// X's SDK proposes) and returns the version X recorded: the one to sign with from now on.
pub async fn register_public_keys(
    client: &XClient,
    business: &XUserId,
    keys: &xdm_xchat::ChatKeys,
    version: &str,
) -> Result<String, XError> {
    let reg = registration(keys);
    let body = RegisterBody {
        public_key: RegisterKey {
            public_key: &reg.public_key,
            signing_public_key: &reg.signing_public_key,
            identity_public_key_signature: &reg.identity_public_key_signature,
            signing_public_key_signature: &reg.signing_public_key_signature,
            public_key_fingerprint: &reg.public_key_fingerprint,
            registration_method: reg.registration_method,
        },
        version,
        generate_version: true,
    };
    let url = client.endpoint(&format!("/2/users/{business}/public_keys"))?;
    let answer = client
        .call(Method::POST, url, business, Some(&body))
        .await?
        .success()?;
    let registered: Registered = serde_json::from_slice(&answer.body)
        .map_err(|_| unexpected_body("a public key registration", &answer.body))?;
    Ok(registered
        .data
        .public_key_version
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| version.to_owned()))
}

/// The signing key `user` signs with under `version`: this account's own when `user` is the
/// business itself, else as X serves it (cached). `Unreadable` when X lists none.
pub(crate) async fn signing_key(
    client: &XClient,
    identity: &ChatIdentity,
    business: &XUserId,
    user: &XUserId,
    version: &str,
) -> Result<PublicKey, XError> {
    if user == business && version == identity.key_version() {
        return Ok(identity.keys().signing_public());
    }
    let cache = client.signing_keys();
    if let Some(key) = cache.cached(user, version) {
        return Ok(key);
    }
    let keys = user_public_keys(client, business, user).await?;
    let found = keys
        .iter()
        .find(|k| k.version == version)
        .map(|k| k.signing);
    cache.store(
        user,
        keys.iter()
            .map(|k| (k.version.clone(), k.signing))
            .collect(),
    );
    found.ok_or_else(|| {
        XError::Unreadable(format!(
            "X lists no trusted signing key of version {version} for user {user}"
        ))
    })
}
