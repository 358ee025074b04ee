//! OAuth 2.0 authorization requests: what `GET /oauth2/authorize` decides before and after
//! anyone signs in (RFC 6749 section 4.1, PKCE per RFC 7636, OpenID Connect Core 1.0 section
//! 3.1.2), and the PKCE check of the token endpoint.
//!
//! The order matters for safety: until the client and its exact `redirect_uri` are known
//! good, an error is shown to the user and never sent anywhere ([`Refusal::Show`]); after,
//! errors go back to the client's redirect URI with its `state` ([`Refusal::Redirect`]).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use protocol::OAuthErrorCode;
use sha2::{Digest as _, Sha256};
use store::{Client, ClientType};

/// Longest `state`, `nonce` or `login_hint` kept; longer ones are refused, since each is
/// stored with the code or echoed in a URL.
pub const MAX_PARAM_LEN: usize = 512;

/// The raw parameters of an authorization request (query string or form). Unknown
/// parameters are ignored, as OpenID Connect requires.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    pub id_token_hint: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
    pub response_mode: Option<String>,
}

impl AuthorizeParams {
    /// From decoded `(name, value)` pairs. A parameter given twice makes the request invalid
    /// (RFC 6749 section 3.1): it is kept as `Err` in [`AuthorizeParams::from_pairs`]'s result.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<AuthorizeParams, &'static str> {
        let mut p = AuthorizeParams::default();
        for (k, v) in pairs {
            let slot = match k.as_str() {
                "response_type" => &mut p.response_type,
                "client_id" => &mut p.client_id,
                "redirect_uri" => &mut p.redirect_uri,
                "scope" => &mut p.scope,
                "state" => &mut p.state,
                "nonce" => &mut p.nonce,
                "code_challenge" => &mut p.code_challenge,
                "code_challenge_method" => &mut p.code_challenge_method,
                "prompt" => &mut p.prompt,
                "max_age" => &mut p.max_age,
                "login_hint" => &mut p.login_hint,
                "id_token_hint" => &mut p.id_token_hint,
                "request" => &mut p.request,
                "request_uri" => &mut p.request_uri,
                "response_mode" => &mut p.response_mode,
                _ => continue,
            };
            if slot.is_some() {
                return Err(static_name(k));
            }
            if !v.is_empty() {
                *slot = Some(v.clone());
            }
        }
        Ok(p)
    }
}

fn static_name(k: &str) -> &'static str {
    match k {
        "response_type" => "response_type",
        "client_id" => "client_id",
        "redirect_uri" => "redirect_uri",
        "scope" => "scope",
        "state" => "state",
        "nonce" => "nonce",
        "code_challenge" => "code_challenge",
        "code_challenge_method" => "code_challenge_method",
        "prompt" => "prompt",
        "max_age" => "max_age",
        "login_hint" => "login_hint",
        "id_token_hint" => "id_token_hint",
        "request" => "request",
        "request_uri" => "request_uri",
        _ => "response_mode",
    }
}

/// What `prompt` asks for. `consent` and `select_account` are accepted and need nothing here
/// (first-party clients, one account per browser session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Prompt {
    #[default]
    Default,
    /// Never show a page: a code if signed in, else `login_required`.
    None,
    /// Sign in again even with a live session.
    Login,
}

/// A request that passed every check: what the code will carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub redirect_uri: String,
    /// Granted scopes: those asked for that the client may have, in the client's order.
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    /// S256 challenge, when one was sent (always for a public client).
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub id_token_hint: Option<String>,
}

impl Authorization {
    /// Whether the ID token is due (`openid` granted).
    pub fn openid(&self) -> bool {
        self.scopes.iter().any(|s| s == "openid")
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The client or its redirect URI is not known good: show the error, redirect nowhere.
    Show {
        error: OAuthErrorCode,
        description: String,
    },
    /// Send `error` back to the redirect URI (with `state`).
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: OAuthErrorCode,
        description: String,
    },
}

/// Checks an authorization request against its client (already found from `client_id`).
pub fn check(client: &Client, p: &AuthorizeParams) -> Result<Authorization, Refusal> {
    let show = |error, description: &str| Refusal::Show {
        error,
        description: description.to_string(),
    };
    let redirect_uri = p
        .redirect_uri
        .as_deref()
        .ok_or_else(|| show(OAuthErrorCode::InvalidRequest, "redirect_uri is required"))?;
    if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
        return Err(show(
            OAuthErrorCode::InvalidRequest,
            "redirect_uri is not registered for this client",
        ));
    }
    if !client.grant_types.iter().any(|g| g == "authorization_code") {
        return Err(show(
            OAuthErrorCode::UnauthorizedClient,
            "this client may not use the authorization code flow",
        ));
    }
    if p.state.as_deref().is_some_and(|s| s.len() > MAX_PARAM_LEN) {
        return Err(show(OAuthErrorCode::InvalidRequest, "state is too long"));
    }
    // From here on the redirect URI is known good.
    let back = |error, description: &str| Refusal::Redirect {
        redirect_uri: redirect_uri.to_string(),
        state: p.state.clone(),
        error,
        description: description.to_string(),
    };
    if p.request.is_some() {
        return Err(back(
            OAuthErrorCode::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if p.request_uri.is_some() {
        return Err(back(
            OAuthErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        ));
    }
    match p.response_type.as_deref() {
        Some("code") => {}
        None => {
            return Err(back(
                OAuthErrorCode::InvalidRequest,
                "response_type is required",
            ))
        }
        Some(_) => {
            return Err(back(
                OAuthErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ))
        }
    }
    if p.response_mode.as_deref().is_some_and(|m| m != "query") {
        return Err(back(
            OAuthErrorCode::InvalidRequest,
            "only response_mode=query is supported",
        ));
    }
    let asked: Vec<&str> = p.scope.as_deref().unwrap_or("").split(' ').collect();
    // A user's token never carries the client's own API scopes (crate::policy).
    let scopes: Vec<String> = crate::policy::user_scopes(client)
        .into_iter()
        .filter(|s| asked.contains(&s.as_str()))
        .collect();
    if scopes.is_empty() {
        return Err(back(
            OAuthErrorCode::InvalidScope,
            "scope names none of the scopes of this client",
        ));
    }
    for (value, name) in [(&p.nonce, "nonce"), (&p.login_hint, "login_hint")] {
        if value.as_deref().is_some_and(|v| v.len() > MAX_PARAM_LEN) {
            return Err(back(
                OAuthErrorCode::InvalidRequest,
                &format!("{name} is too long"),
            ));
        }
    }
    let code_challenge = match (
        p.code_challenge.as_deref(),
        p.code_challenge_method.as_deref(),
    ) {
        (None, _) if client.client_type == ClientType::Public => {
            return Err(back(
                OAuthErrorCode::InvalidRequest,
                "code_challenge (PKCE, S256) is required for public clients",
            ))
        }
        (None, _) => None,
        (Some(c), Some("S256")) if is_challenge(c) => Some(c.to_string()),
        (Some(_), Some("S256")) => {
            return Err(back(
                OAuthErrorCode::InvalidRequest,
                "code_challenge must be 43 base64url characters",
            ))
        }
        (Some(_), _) => {
            return Err(back(
                OAuthErrorCode::InvalidRequest,
                "code_challenge_method must be S256",
            ))
        }
    };
    let mut prompt = Prompt::Default;
    for value in p.prompt.as_deref().unwrap_or("").split(' ') {
        match value {
            "" | "consent" | "select_account" => {}
            "none" => prompt = Prompt::None,
            "login" => {
                if prompt == Prompt::None {
                    return Err(back(
                        OAuthErrorCode::InvalidRequest,
                        "prompt=none cannot be combined with other values",
                    ));
                }
                prompt = Prompt::Login;
            }
            _ => return Err(back(OAuthErrorCode::InvalidRequest, "unknown prompt value")),
        }
    }
    if prompt == Prompt::None && p.prompt.as_deref().is_some_and(|v| v.trim() != "none") {
        return Err(back(
            OAuthErrorCode::InvalidRequest,
            "prompt=none cannot be combined with other values",
        ));
    }
    let max_age = match p.max_age.as_deref() {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                return Err(back(
                    OAuthErrorCode::InvalidRequest,
                    "max_age must be a non-negative integer",
                ))
            }
        },
    };
    Ok(Authorization {
        redirect_uri: redirect_uri.to_string(),
        scopes,
        state: p.state.clone(),
        nonce: p.nonce.clone(),
        code_challenge,
        prompt,
        max_age,
        login_hint: p.login_hint.clone(),
        id_token_hint: p.id_token_hint.clone(),
    })
}

/// An S256 challenge: the unpadded base64url of a SHA-256 (43 characters).
fn is_challenge(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 7636 section 4.6: whether `verifier` (43-128 unreserved characters) hashes to the
/// S256 `challenge`. Compared in constant time.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !well_formed {
        return false;
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    crate::tokens::constant_time_eq(computed.as_bytes(), challenge.as_bytes())
}

/// Whether a sign-in made at `auth_time` is recent enough for `max_age` at `now`.
pub fn fresh_enough(auth_time: i64, max_age: Option<i64>, now: i64) -> bool {
    max_age.is_none_or(|m| now.saturating_sub(auth_time) <= m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn client(kind: ClientType) -> Client {
        let n = store::NewClient::new(Uuid::nil(), "web", "Web");
        Client {
            id: Uuid::nil(),
            tenant_id: n.tenant_id,
            client_id: n.client_id,
            name: n.name,
            scopes: n.scopes,
            redirect_uris: vec!["https://app.example/cb".into()],
            post_logout_redirect_uris: n.post_logout_redirect_uris,
            allowed_origins: n.allowed_origins,
            grant_types: n.grant_types,
            client_type: kind,
            secret_hash: None,
            require_email_verification: false,
            access_token_ttl: None,
            refresh_token_ttl: None,
            id_token_ttl: None,
            id_token_alg: None,
            access_token_alg: None,
            third_party: false,
            created_at: 0,
        }
    }

    fn params(extra: &[(&str, &str)]) -> AuthorizeParams {
        let mut pairs: Vec<(String, String)> = [
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", "https://app.example/cb"),
            ("scope", "openid email"),
            ("state", "s1"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            pairs.retain(|(pk, _)| pk != k);
            if !v.is_empty() {
                pairs.push((k.to_string(), v.to_string()));
            }
        }
        AuthorizeParams::from_pairs(&pairs).unwrap()
    }

    fn redirect_error(r: Result<Authorization, Refusal>) -> OAuthErrorCode {
        match r {
            Err(Refusal::Redirect { error, state, .. }) => {
                assert_eq!(state.as_deref(), Some("s1"));
                error
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_good_request_passes() {
        let a = check(&client(ClientType::Public), &params(&[])).unwrap();
        assert_eq!(a.redirect_uri, "https://app.example/cb");
        assert_eq!(a.scopes, vec!["openid", "email"]);
        assert!(a.openid());
        assert_eq!(a.prompt, Prompt::Default);
        assert_eq!(a.state.as_deref(), Some("s1"));
    }

    #[test]
    fn an_unregistered_redirect_uri_is_shown_never_followed() {
        let c = client(ClientType::Public);
        for uri in ["https://evil.example/cb", "https://app.example/cb/", ""] {
            match check(&c, &params(&[("redirect_uri", uri)])) {
                Err(Refusal::Show { error, .. }) => {
                    assert_eq!(error, OAuthErrorCode::InvalidRequest)
                }
                other => panic!("{uri}: {other:?}"),
            }
        }
    }

    #[test]
    fn errors_after_the_redirect_uri_go_back_with_state() {
        let c = client(ClientType::Public);
        assert_eq!(
            redirect_error(check(&c, &params(&[("response_type", "token")]))),
            OAuthErrorCode::UnsupportedResponseType
        );
        assert_eq!(
            redirect_error(check(&c, &params(&[("code_challenge", "")]))),
            OAuthErrorCode::InvalidRequest
        );
        assert_eq!(
            redirect_error(check(&c, &params(&[("code_challenge_method", "plain")]))),
            OAuthErrorCode::InvalidRequest
        );
        assert_eq!(
            redirect_error(check(&c, &params(&[("scope", "admin")]))),
            OAuthErrorCode::InvalidScope
        );
        assert_eq!(
            redirect_error(check(&c, &params(&[("prompt", "none login")]))),
            OAuthErrorCode::InvalidRequest
        );
        assert_eq!(
            redirect_error(check(&c, &params(&[("max_age", "-1")]))),
            OAuthErrorCode::InvalidRequest
        );
        assert_eq!(
            redirect_error(check(&c, &params(&[("request", "eyJ")]))),
            OAuthErrorCode::RequestNotSupported
        );
    }

    #[test]
    fn confidential_clients_may_skip_pkce() {
        let c = client(ClientType::Confidential);
        let a = check(
            &c,
            &params(&[("code_challenge", ""), ("code_challenge_method", "")]),
        )
        .unwrap();
        assert_eq!(a.code_challenge, None);
    }

    #[test]
    fn prompt_and_max_age() {
        let c = client(ClientType::Public);
        let a = check(&c, &params(&[("prompt", "login"), ("max_age", "60")])).unwrap();
        assert_eq!(a.prompt, Prompt::Login);
        assert_eq!(a.max_age, Some(60));
        let a = check(&c, &params(&[("prompt", "none")])).unwrap();
        assert_eq!(a.prompt, Prompt::None);
        assert!(fresh_enough(100, Some(60), 160));
        assert!(!fresh_enough(100, Some(60), 161));
        assert!(fresh_enough(0, None, i64::MAX));
    }

    #[test]
    fn repeated_parameters_are_refused() {
        let pairs = vec![
            ("scope".to_string(), "openid".to_string()),
            ("scope".to_string(), "email".to_string()),
        ];
        assert_eq!(AuthorizeParams::from_pairs(&pairs), Err("scope"));
    }

    #[test]
    fn pkce_rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(&verifier.replace('d', "e"), challenge));
        assert!(!pkce_matches("short", challenge));
        assert!(!pkce_matches(&"a".repeat(129), challenge));
    }
}
