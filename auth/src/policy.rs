//! Which client may get which token. Every path that issues a user's token (register,
//! password sign-in, session sign-in, the MFA challenge, the hosted page, authorize, code
//! redemption, refresh) and every route that lets a token manage the account asks these
//! functions, so one rule holds everywhere (docs/security.md).
//!
//! * A **user client** has a user-facing grant (`authorization_code` or `refresh_token`); a
//!   client with only `client_credentials` is a machine and never gets a user's token.
//! * The v2 password API is for **first-party** user clients: a public one, or a confidential
//!   one that authenticates. A **third-party** client signs users in through the authorization
//!   endpoint only, where the user consents to it.
//! * A refresh token only for a client with the `refresh_token` grant.
//! * A user's token never carries a machine client's own API scopes: of a client that also
//!   has `client_credentials`, only the user scopes ([`USER_SCOPES`]).
//! * A client that requires a verified email gets no token for a user whose email is not.

use store::{Client, User};

use crate::flows::{authenticate_client, Denial};

/// The scopes about a user: what a user's token may carry from a client that also acts for
/// itself, and what such a client's own (client-credentials) token never carries.
pub const USER_SCOPES: [&str; 4] = ["openid", "email", "profile", "offline_access"];

/// Whether the client has `grant` among its grant types.
pub fn allows(client: &Client, grant: &str) -> bool {
    client.grant_types.iter().any(|g| g == grant)
}

/// Whether the client signs users in at all (it has a user-facing grant).
pub fn user_client(client: &Client) -> bool {
    allows(client, "authorization_code") || allows(client, "refresh_token")
}

/// Whether a user's sign-in through this client gets a refresh token.
pub fn issues_refresh(client: &Client) -> bool {
    allows(client, "refresh_token")
}

/// May `client` sign a user in with a password through the v2 API (register, login, session
/// login), presenting `secret`? Checked before any hashing, so a refusal costs nothing.
pub fn password_sign_in(client: &Client, secret: Option<&str>) -> Result<(), Denial> {
    if !user_client(client) {
        return Err(Denial::UnauthorizedClient(
            "this client may not sign users in (it has no user grant)",
        ));
    }
    if client.third_party {
        return Err(Denial::UnauthorizedClient(
            "a third-party client signs users in through /oauth2/authorize only",
        ));
    }
    if !authenticate_client(client, secret) {
        return Err(Denial::InvalidClient);
    }
    Ok(())
}

/// Whether a user's token may carry `scope` from this client.
pub fn user_may_hold(client: &Client, scope: &str) -> bool {
    !allows(client, "client_credentials") || USER_SCOPES.contains(&scope)
}

/// The scopes of a user's token issued through this client without a request naming them
/// (the password API): the client's scopes a user may hold.
pub fn user_scopes(client: &Client) -> Vec<String> {
    client
        .scopes
        .iter()
        .filter(|s| user_may_hold(client, s))
        .cloned()
        .collect()
}

/// Whether the client's requirement of a verified email lets this user have its tokens.
pub fn email_ok(client: &Client, user: &User) -> bool {
    !client.require_email_verification || user.email_verified
}

/// Whether a token issued to this client may manage the user's account (MFA, profile,
/// sessions, sign-out everywhere): a first-party user client only.
pub fn manages_account(client: &Client) -> bool {
    !client.third_party && user_client(client)
}
