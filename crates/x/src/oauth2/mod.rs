//! OAuth 2.0 Authorization Code with PKCE (RFC 7636) and the refresh-token grant, as X runs them
//! (`https://x.com/i/oauth2/authorize`, `POST /2/oauth2/token`, `POST /2/oauth2/revoke`).
//!
//! Hand-written on reqwest: it is three form POSTs, and the `oauth2` crate pins another reqwest
//! major (a second HTTP stack) and cannot express X's single-use refresh tokens, whose rotation
//! the token store coordinates (one refresh at a time per account, the new refresh token saved
//! before the old one is forgotten).
//!
//! * `pkce`: the code verifier and its challenge, and the `state`, from the OS CSPRNG.
//! * `authorize`: the address the user approves the app at, and the redirect X sends them back
//!   with.
//! * `token`: [`OAuth2Client`], the token and revocation endpoints.
//!
//! Nothing here logs a token, a code, a verifier or the client secret.

mod authorize;
mod error;
mod pkce;
mod token;

pub use authorize::{AUTHORIZE_URL, SCOPES, parse_redirect};
pub use error::OAuth2Error;
pub use pkce::{Pkce, random_state};
pub use token::{OAuth2Client, REVOKE_PATH, TOKEN_PATH};
