//! Looking X users up: `GET /2/users/me` (who a token or a business account is) and
//! `GET /2/users/:id` (a customer's profile, for [`XApi::user`](xdm_core::ports::XApi::user)),
//! with the profile fields the bridge asks for ([`USER_FIELDS`]).

use http::Method;
use serde::Deserialize;
use url::Url;
use xdm_core::ids::XUserId;
use xdm_core::ports::XError;
use xdm_core::profile::XProfile;

use crate::auth::UserAuth;
use crate::client::XClient;
use crate::error::unexpected_body;
use crate::lenient;
use crate::problem::Problem;
use crate::transport::Answer;
use crate::user::{USER_FIELDS, UserObject};

/// The `{"data":{…}}` answer of a user lookup.
#[derive(Debug, Deserialize)]
struct UserAnswer {
    #[serde(default, deserialize_with = "lenient::object")]
    data: Option<UserObject>,
}

/// `path` with the profile fields asked for.
fn user_url(client: &XClient, path: &str) -> Result<Url, XError> {
    let mut url = client.endpoint(path)?;
    url.set_query(Some(&format!("user.fields={USER_FIELDS}")));
    Ok(url)
}

impl XClient {
    /// `GET /2/users/me` as `auth`: who a (brand-new) token belongs to. No retry on 401.
    pub async fn me_as(&self, auth: &UserAuth) -> Result<XProfile, XError> {
        let url = user_url(self, "/2/users/me")?;
        let answer = self.call_as(auth, &Method::GET, &url, &Ok).await?;
        me_profile(answer)
    }

    /// `GET /2/users/me` as business account `business` (its OAuth 2.0 or OAuth 1.0a credentials).
    pub async fn me(&self, business: &XUserId) -> Result<XProfile, XError> {
        let url = user_url(self, "/2/users/me")?;
        let answer = self.call::<()>(Method::GET, url, business, None).await?;
        me_profile(answer)
    }
}

fn me_profile(answer: Answer) -> Result<XProfile, XError> {
    let answer = answer.success()?;
    let user = serde_json::from_slice::<UserAnswer>(&answer.body)
        .ok()
        .and_then(|a| a.data)
        .ok_or_else(|| unexpected_body("a users/me lookup", &answer.body))?;
    let id = user
        .id
        .as_deref()
        .and_then(|id| XUserId::parse(id).ok())
        .ok_or_else(|| unexpected_body("a users/me lookup", &answer.body))?;
    Ok(user.into_profile(id))
}

/// [`XApi::user`](xdm_core::ports::XApi::user) over `client`: user `id`'s profile as
/// `business` sees it; `None` when X says it does not exist.
pub(crate) async fn user(
    client: &XClient,
    business: &XUserId,
    id: &XUserId,
) -> Result<Option<XProfile>, XError> {
    let url = user_url(client, &format!("/2/users/{id}"))?;
    let answer = client
        .call::<()>(Method::GET, url, business, None)
        .await?
        .success()?;
    let parsed: Option<UserAnswer> = serde_json::from_slice(&answer.body).ok();
    if let Some(user) = parsed.and_then(|a| a.data) {
        if user.id.as_deref().is_some_and(|got| got != id.as_str()) {
            return Err(XError::Unavailable(format!(
                "X answered a lookup of user {id} with another user"
            )));
        }
        return Ok(Some(user.into_profile(id.clone())));
    }
    match Problem::parse(&answer.body) {
        Some(p) if p.has_resource_not_found() => Ok(None),
        _ => Err(unexpected_body("a user lookup", &answer.body)),
    }
}
