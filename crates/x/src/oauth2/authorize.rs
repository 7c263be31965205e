//! The front channel of a login: the address the user approves the app at (with the PKCE
//! challenge and the `state`), and the authorization code of the redirect X sends them back with
//! (its `state` checked first).

use url::Url;

use super::error::OAuth2Error;
use super::pkce::Pkce;
use super::token::OAuth2Client;
use crate::problem::one_line;

/// The scopes the bridge asks for: read and send DMs, look users up, upload media, and a
/// refresh token (`offline.access`).
pub const SCOPES: &str = "dm.read dm.write tweet.read users.read media.write offline.access";
/// Where users approve the app.
pub const AUTHORIZE_URL: &str = "https://x.com/i/oauth2/authorize";

impl OAuth2Client {
    /// The address to send the user to (`authorize_base`: [`AUTHORIZE_URL`] or an emulator's).
    pub fn authorize_url(
        &self,
        authorize_base: &str,
        redirect_uri: &str,
        scopes: &str,
        state: &str,
        pkce: &Pkce,
    ) -> Result<Url, OAuth2Error> {
        let mut url = Url::parse(authorize_base.trim()).map_err(|e| {
            OAuth2Error::Invalid(format!("the OAuth 2.0 authorize URL is not usable: {e}"))
        })?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", scopes)
            .append_pair("state", state)
            .append_pair("code_challenge", pkce.challenge())
            .append_pair("code_challenge_method", pkce.method());
        Ok(url)
    }
}

/// The authorization code of the redirect X sends the user back with. `url_or_query` is the
/// whole redirect URL, or its query (with or without `?`). Checks `state` first.
pub fn parse_redirect(url_or_query: &str, expected_state: &str) -> Result<String, OAuth2Error> {
    let raw = url_or_query.trim();
    let query = match Url::parse(raw) {
        Ok(url) => url.query().unwrap_or_default().to_owned(),
        Err(_) => raw.trim_start_matches('?').to_owned(),
    };
    let mut code = None;
    let mut state = None;
    let mut error = None;
    let mut description = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "code" => code = Some(v.into_owned()),
            "state" => state = Some(v.into_owned()),
            "error" => error = Some(v.into_owned()),
            "error_description" => description = Some(v.into_owned()),
            _ => {}
        }
    }
    if let Some(error) = error {
        return Err(if error == "access_denied" {
            OAuth2Error::Denied(description)
        } else {
            OAuth2Error::AuthorizationFailed {
                error: one_line(&error, 100),
                description,
            }
        });
    }
    if state.as_deref() != Some(expected_state) || expected_state.is_empty() {
        return Err(OAuth2Error::StateMismatch);
    }
    code.filter(|c| !c.is_empty())
        .ok_or(OAuth2Error::MissingCode)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_redirects() {
        let url = "https://bridge.example/oauth/x/callback?state=s123&code=VGNibzFW";
        assert_eq!(parse_redirect(url, "s123").unwrap(), "VGNibzFW");
        assert_eq!(parse_redirect("?code=abc&state=s", "s").unwrap(), "abc");
        assert_eq!(parse_redirect("code=abc&state=s", "s").unwrap(), "abc");
        assert_eq!(
            parse_redirect(url, "other"),
            Err(OAuth2Error::StateMismatch)
        );
        assert_eq!(
            parse_redirect("state=s", "s"),
            Err(OAuth2Error::MissingCode)
        );
        let denied = parse_redirect(
            "https://b.example/cb?error=access_denied&error_description=The+user+denied&state=s",
            "s",
        )
        .unwrap_err();
        assert_eq!(denied, OAuth2Error::Denied(Some("The user denied".into())));
        assert_eq!(
            denied.to_string(),
            "the X authorization was denied (The user denied)"
        );
        assert!(matches!(
            parse_redirect("error=invalid_scope&state=s", "s"),
            Err(OAuth2Error::AuthorizationFailed { .. })
        ));
    }

    #[test]
    fn builds_the_authorize_url() {
        let client = OAuth2Client::new("https://api.x.com/2/oauth2/token", "cid", None).unwrap();
        assert_eq!(
            client.revoke_url.as_str(),
            "https://api.x.com/2/oauth2/revoke"
        );
        let pkce = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        let url = client
            .authorize_url(
                AUTHORIZE_URL,
                "http://127.0.0.1:8787/callback",
                SCOPES,
                "st",
                &pkce,
            )
            .unwrap();
        assert!(matches!(
            client.authorize_url("not a url", "r", SCOPES, "st", &pkce),
            Err(OAuth2Error::Invalid(_))
        ));
        let q: std::collections::BTreeMap<String, String> =
            url.query_pairs().into_owned().collect();
        assert_eq!(url.host_str(), Some("x.com"));
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "cid");
        assert_eq!(q["redirect_uri"], "http://127.0.0.1:8787/callback");
        assert_eq!(q["scope"], SCOPES);
        assert_eq!(q["state"], "st");
        assert_eq!(
            q["code_challenge"],
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(q["code_challenge_method"], "S256");
    }
}
