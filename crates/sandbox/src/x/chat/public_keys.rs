//! X Chat public keys (docs/xchat.md §1.3–§1.5): `POST /2/users/{id}/public_keys` registers one
//! version of the caller's identity and signing keys — both P-256 (SPKI or SEC1), each signed by
//! the other, the fingerprint (when given) the identity key's — and `GET /2/users/{id}/public_keys`
//! and `GET /2/users/public_keys?ids=` serve the rows as registered.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::clock;
use crate::faults::FaultOp;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::auth::Accept;
use crate::x::calls::{XRequest, admit_as, finish, is_x_id};
use crate::x::chat::body::{self, Object};
use crate::x::chat::crypto::{self, PublicKey};
use crate::x::chat::records::ChatPublicKeyRecord;
use crate::x::problem::XReply;
use crate::x::records::XOp;
use crate::x::state::RateInfo;

/// `public_key.fields` values X lists (`juicebox_config` is never set here).
const FIELDS: [&str; 5] = [
    "identity_public_key_signature",
    "juicebox_config",
    "public_key",
    "public_key_version",
    "signing_public_key",
];
/// What a row holds without `public_key.fields`.
const DEFAULT_FIELDS: [&str; 4] = [
    "public_key",
    "signing_public_key",
    "identity_public_key_signature",
    "public_key_version",
];
/// `ids` of the batch lookup.
const MAX_IDS: usize = 100;

/// `POST /2/users/{id}/public_keys`.
pub(crate) async fn add(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = XRequest::new(method, uri, headers);
    let reply = add_reply(&shared, &req, &id, &body).await;
    finish(&shared, XOp::ChatAddPublicKeys, &req, reply)
}

async fn add_reply(shared: &Shared, req: &XRequest, id: &str, body: &[u8]) -> XReply {
    let (principal, rate) = match admit_as(
        shared,
        req,
        XOp::ChatAddPublicKeys,
        FaultOp::ChatPublicKeys,
        Accept::DM_WRITE,
    )
    .await
    {
        Ok(admitted) => admitted,
        Err(reply) => return reply,
    };
    if !is_x_id(id) {
        return invalid_id(rate, id);
    }
    if principal.user_id() != Some(id) {
        return body::forbidden(
            rate,
            "You can only register public keys for the authenticating user.",
        );
    }
    let row = match registration(id, body) {
        Ok(row) => row,
        Err(Refusal::Schema(message)) => return XReply::invalid_body(rate, message),
        Err(Refusal::Binding(message)) => {
            return body::refused(rate, "INVALID_PUBLIC_KEY", message);
        }
    };
    let version = row.public_key_version.clone();
    lock(&shared.x).chat.register_key(row);
    tracing::info!(user_id = %id, %version, "X Chat public keys registered");
    XReply::new(
        StatusCode::OK,
        json!({"data": {"public_key_version": version}}),
        rate,
    )
}

/// Why a registration body is refused: its shape (400 invalid-request) or its keys (400
/// `INVALID_PUBLIC_KEY`).
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    Schema(String),
    Binding(String),
}

/// The row a registration body (`AddUserPublicKeyRequest`) makes for `user_id`.
fn registration(user_id: &str, body: &[u8]) -> Result<ChatPublicKeyRecord, Refusal> {
    let obj = body::object(body).map_err(Refusal::Schema)?;
    let version = body::required_str(&obj, "version").map_err(Refusal::Schema)?;
    if !body::is_version(version) {
        return Err(Refusal::Schema(format!(
            "$.version: [{version}] is not a decimal key version"
        )));
    }
    if obj.get("generate_version").is_some_and(|v| !v.is_boolean()) {
        return Err(Refusal::Schema(
            "$.generate_version: boolean expected".into(),
        ));
    }
    let keys = body::required_object(&obj, "public_key").map_err(Refusal::Schema)?;
    let text = |field: &str| -> Result<String, Refusal> {
        body::required_str(keys, field)
            .map(str::to_owned)
            .map_err(|e| Refusal::Schema(e.replacen("$.", "$.public_key.", 1)))
    };
    let optional = |field: &str| -> Result<Option<String>, Refusal> {
        body::optional_str(keys, field)
            .map(|v| v.map(str::to_owned))
            .map_err(|e| Refusal::Schema(e.replacen("$.", "$.public_key.", 1)))
    };
    let identity_b64 = text("public_key")?;
    let signing_b64 = text("signing_public_key")?;
    let binding_b64 = text("identity_public_key_signature")?;
    let reverse_b64 = text("signing_public_key_signature")?;
    let fingerprint = optional("public_key_fingerprint")?;
    let registration_method = optional("registration_method")?;
    let (identity_bytes, identity) = key(keys, "public_key")?;
    let (signing_bytes, signing) = key(keys, "signing_public_key")?;
    let signature = |field: &str, b64: &str| {
        crypto::decode_b64(b64).map_err(|e| Refusal::Schema(format!("$.public_key.{field} {e}")))
    };
    if !signing.verifies(
        &identity_bytes,
        &signature("identity_public_key_signature", &binding_b64)?,
    ) {
        return Err(Refusal::Binding(
            "identity_public_key_signature does not verify: it must be the signing key's ECDSA-P256-SHA256 signature (raw r||s) of the public_key bytes".into(),
        ));
    }
    if !identity.verifies(
        &signing_bytes,
        &signature("signing_public_key_signature", &reverse_b64)?,
    ) {
        return Err(Refusal::Binding(
            "signing_public_key_signature does not verify: it must be the identity key's ECDSA-P256-SHA256 signature (raw r||s) of the signing_public_key bytes".into(),
        ));
    }
    if let Some(given) = &fingerprint {
        let expected = crypto::fingerprint(&identity_bytes);
        if *given != expected {
            return Err(Refusal::Binding(format!(
                "public_key_fingerprint [{given}] is not the identity key's ({expected}: base64url without padding of SHA-256 of the public_key bytes)"
            )));
        }
    }
    Ok(ChatPublicKeyRecord {
        user_id: user_id.to_owned(),
        public_key_version: version.to_owned(),
        public_key: identity_b64,
        signing_public_key: signing_b64,
        identity_public_key_signature: binding_b64,
        signing_public_key_signature: reverse_b64,
        public_key_fingerprint: fingerprint,
        registration_method,
        registered_at: clock::now_iso_ms(),
    })
}

/// A key field: its bytes as sent and the key.
fn key(keys: &Object, field: &str) -> Result<(Vec<u8>, PublicKey), Refusal> {
    let text = body::required_str(keys, field).map_err(Refusal::Schema)?;
    let bytes = crypto::decode_b64(text)
        .map_err(|e| Refusal::Schema(format!("$.public_key.{field} {e}")))?;
    let parsed = PublicKey::from_bytes(&bytes)
        .map_err(|e| Refusal::Binding(format!("$.public_key.{field} {e}")))?;
    Ok((bytes, parsed))
}

/// `GET /2/users/{id}/public_keys`.
pub(crate) async fn get_user(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = XRequest::new(method, uri, headers);
    let reply = lookup_reply(&shared, &req, Some(&id)).await;
    finish(&shared, XOp::ChatGetPublicKeys, &req, reply)
}

/// `GET /2/users/public_keys?ids=…`.
pub(crate) async fn get_users(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = XRequest::new(method, uri, headers);
    let reply = lookup_reply(&shared, &req, None).await;
    finish(&shared, XOp::ChatGetPublicKeys, &req, reply)
}

/// The rows of `path_id`, or of the `ids` query parameter, with the requested fields. Users
/// without keys contribute nothing (`{"data":[]}` when none has any).
async fn lookup_reply(shared: &Shared, req: &XRequest, path_id: Option<&str>) -> XReply {
    let rate = match admit_as(
        shared,
        req,
        XOp::ChatGetPublicKeys,
        FaultOp::ChatPublicKeys,
        Accept::DM_READ,
    )
    .await
    {
        Ok((_, rate)) => rate,
        Err(reply) => return reply,
    };
    let query = query_pairs(&req.uri);
    let fields = match requested_fields(&query) {
        Ok(fields) => fields,
        Err(value) => {
            return XReply::invalid_param(
                rate,
                "public_key.fields",
                &value,
                format!(
                    "The `public_key.fields` query parameter value [{value}] is not one of [{}]",
                    FIELDS.join(",")
                ),
            );
        }
    };
    let ids: Vec<String> = match path_id {
        Some(id) if is_x_id(id) => vec![id.to_owned()],
        Some(id) => return invalid_id(rate, id),
        None => match batch_ids(&query) {
            Ok(ids) => ids,
            Err(message) => {
                let given = query
                    .iter()
                    .find(|(k, _)| k == "ids")
                    .map(|(_, v)| v.as_str());
                return XReply::invalid_param(rate, "ids", given.unwrap_or(""), message);
            }
        },
    };
    let x = lock(&shared.x);
    let data: Vec<Value> = ids
        .iter()
        .filter_map(|id| x.chat.public_keys.get(id))
        .flatten()
        .map(|row| row_json(row, &fields))
        .collect();
    XReply::new(StatusCode::OK, json!({"data": data}), rate)
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// `public_key.fields` (comma-separated; the default set without it), or the unknown value.
fn requested_fields(query: &[(String, String)]) -> Result<Vec<String>, String> {
    let Some((_, list)) = query.iter().find(|(k, _)| k == "public_key.fields") else {
        return Ok(DEFAULT_FIELDS.iter().map(|f| (*f).to_owned()).collect());
    };
    list.split(',')
        .map(|f| {
            if FIELDS.contains(&f) {
                Ok(f.to_owned())
            } else {
                Err(f.to_owned())
            }
        })
        .collect()
}

/// The `ids` parameter: 1–100 comma-separated user ids.
fn batch_ids(query: &[(String, String)]) -> Result<Vec<String>, String> {
    let Some((_, list)) = query.iter().find(|(k, _)| k == "ids") else {
        return Err("The query parameter `ids` is required".into());
    };
    let ids: Vec<String> = list.split(',').map(str::to_owned).collect();
    if ids.len() > MAX_IDS {
        return Err(format!(
            "The `ids` query parameter takes at most {MAX_IDS} ids"
        ));
    }
    if let Some(bad) = ids.iter().find(|id| !is_x_id(id)) {
        return Err(format!(
            "The `ids` query parameter value [{bad}] does not match ^[0-9]{{1,19}}$"
        ));
    }
    Ok(ids)
}

/// A `PublicKey` object with `fields`.
fn row_json(row: &ChatPublicKeyRecord, fields: &[String]) -> Value {
    let mut out = Map::new();
    for field in fields {
        let value = match field.as_str() {
            "public_key" => &row.public_key,
            "signing_public_key" => &row.signing_public_key,
            "identity_public_key_signature" => &row.identity_public_key_signature,
            "public_key_version" => &row.public_key_version,
            _ => continue,
        };
        out.insert(field.clone(), json!(value));
    }
    Value::Object(out)
}

fn invalid_id(rate: RateInfo, id: &str) -> XReply {
    XReply::invalid_param(
        rate,
        "id",
        id,
        format!("The `id` path parameter value [{id}] does not match ^[0-9]{{1,19}}$"),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn alice() -> Value {
        let v: Value =
            serde_json::from_str(include_str!("../../../../../testdata/xchat-vectors.json"))
                .unwrap();
        v["participants"]["alice"]["registration_request"].clone()
    }

    fn register(body: &Value) -> Result<ChatPublicKeyRecord, Refusal> {
        registration("1111111111111111111", body.to_string().as_bytes())
    }

    #[test]
    fn chatxdk_registration_is_accepted_as_sent() {
        let body = alice();
        let row = register(&body).unwrap();
        assert_eq!(row.public_key_version, "1765382634817");
        assert_eq!(row.public_key, body["public_key"]["public_key"]);
        assert_eq!(row.registration_method.as_deref(), Some("CustomPin"));
        let json = row_json(&row, &DEFAULT_FIELDS.map(str::to_owned));
        assert_eq!(json.as_object().unwrap().len(), 4);
        assert_eq!(
            json["signing_public_key"],
            body["public_key"]["signing_public_key"]
        );
    }

    #[test]
    fn broken_bindings_and_shapes_are_refused() {
        let mut swapped = alice();
        swapped["public_key"]["identity_public_key_signature"] =
            swapped["public_key"]["signing_public_key_signature"].clone();
        assert!(
            matches!(register(&swapped), Err(Refusal::Binding(m)) if m.contains("identity_public_key_signature"))
        );
        let mut reverse = alice();
        reverse["public_key"]["signing_public_key_signature"] =
            reverse["public_key"]["identity_public_key_signature"].clone();
        assert!(
            matches!(register(&reverse), Err(Refusal::Binding(m)) if m.contains("signing_public_key_signature"))
        );
        let mut fp = alice();
        fp["public_key"]["public_key_fingerprint"] = json!("AAAA");
        assert!(matches!(register(&fp), Err(Refusal::Binding(m)) if m.contains("fingerprint")));
        let mut no_version = alice();
        no_version.as_object_mut().unwrap().remove("version");
        assert!(matches!(register(&no_version), Err(Refusal::Schema(_))));
        let mut short = alice();
        short["public_key"]["public_key"] = json!("BAE=");
        assert!(matches!(register(&short), Err(Refusal::Binding(m)) if m.contains("2 bytes")));
        let mut missing = alice();
        missing["public_key"]
            .as_object_mut()
            .unwrap()
            .remove("signing_public_key_signature");
        assert!(
            matches!(register(&missing), Err(Refusal::Schema(m)) if m.contains("$.public_key.signing_public_key_signature"))
        );
    }

    #[test]
    fn lookups_check_their_parameters() {
        let q = |s: &str| -> Vec<(String, String)> {
            url::form_urlencoded::parse(s.as_bytes())
                .into_owned()
                .collect()
        };
        assert_eq!(requested_fields(&q("")).unwrap().len(), 4);
        assert_eq!(
            requested_fields(&q("public_key.fields=public_key,public_key_version")).unwrap(),
            ["public_key", "public_key_version"]
        );
        assert_eq!(
            requested_fields(&q("public_key.fields=nope")).unwrap_err(),
            "nope"
        );
        assert_eq!(batch_ids(&q("ids=1,2")).unwrap(), ["1", "2"]);
        assert!(batch_ids(&q("")).is_err());
        assert!(batch_ids(&q("ids=1,x")).is_err());
        let many = (1..=101)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        assert!(batch_ids(&q(&format!("ids={many}"))).is_err());
    }
}
