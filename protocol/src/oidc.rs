//! OpenID Connect wire types: the ID token's claims and the token endpoint's answer of the
//! authorization-code flow.

use serde::Serialize;

/// The claims of an ID token (OpenID Connect Core 1.0 section 2), with the profile and email
/// claims the granted scopes allow (section 5.4). Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    /// The client's `client_id`.
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    /// When the user signed in.
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Left half of the hash of the access token (section 3.1.3.6), base64url.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// The authorized party: the client the token was issued to.
    pub azp: String,
    pub amr: Vec<String>,
    pub acr: String,
    /// The tenant id, as in access tokens.
    pub tid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
}

/// `POST /oauth2/token` for the authorization-code grant: the token response of RFC 6749
/// section 5.1 with the ID token (OpenID Connect Core section 3.1.3.3).
#[derive(Debug, Serialize)]
pub struct CodeTokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    pub scope: String,
}

/// `POST /oauth2/introspect` (RFC 7662 section 2.2). An inactive token is `{"active": false}`
/// and nothing else.
#[derive(Debug, Serialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    /// The tenant id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
}

impl Introspection {
    pub fn inactive() -> Introspection {
        Introspection {
            active: false,
            scope: None,
            client_id: None,
            sub: None,
            exp: None,
            iat: None,
            nbf: None,
            iss: None,
            aud: None,
            jti: None,
            token_type: None,
            tid: None,
        }
    }
}
