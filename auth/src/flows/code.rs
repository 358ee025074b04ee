//! The OAuth 2.0 authorization-code flow with PKCE and OpenID Connect ID tokens, and the
//! client-credentials grant: what the authorize and token endpoints decide.
//!
//! A code is stored hashed in the database (any instance redeems it), lives
//! [`CODE_TTL_SECS`], and is redeemed once; presenting it again revokes the refresh family its
//! redemption created (RFC 6749 section 4.1.2).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use protocol::oidc::IdTokenClaims;
use sha2::{Digest as _, Sha256};
use store::{AuthCode, ClientType, NewAuthCode, Redeem, Redemption};

use super::*;
use crate::client_secret;
use crate::oauth::{pkce_matches, Authorization};
use crate::policy::{allows, USER_SCOPES};

/// How long an authorization code may be redeemed, in seconds (RFC 6749 recommends at most
/// ten minutes).
pub const CODE_TTL_SECS: i64 = 600;

/// Why a token request is refused (RFC 6749 section 5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantDenial {
    /// Unknown client, wrong or missing secret, or a secret from a public client (401).
    InvalidClient,
    /// The code (or its redirect URI or PKCE verifier) does not hold up.
    InvalidGrant(&'static str),
    /// The client may not use this grant.
    UnauthorizedClient(&'static str),
    InvalidScope(&'static str),
}

/// The client's credentials as presented: `client_secret_basic` or `client_secret_post`,
/// or none (a public client).
#[derive(Clone, Copy)]
pub struct ClientAuth<'a> {
    pub client_id: &'a str,
    pub secret: Option<&'a str>,
}

impl std::fmt::Debug for ClientAuth<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuth")
            .field("client_id", &self.client_id)
            .field("secret", &self.secret.map(|_| "<redacted>"))
            .finish()
    }
}

/// The token request of the code grant, as received.
#[derive(Debug, Clone, Copy)]
pub struct CodeRequest<'a> {
    pub code: &'a str,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: Option<&'a str>,
}

/// What a token request issued.
pub struct Granted {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for Granted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Granted")
            .field("expires_in", &self.expires_in)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

pub type GrantFlow = Result<Result<Granted, GrantDenial>, StoreError>;

/// Checks a client's credentials: a confidential client must present its secret (compared in
/// constant time against the stored hash); a public client must present none.
pub fn authenticate_client(client: &Client, secret: Option<&str>) -> bool {
    match (client.client_type, &client.secret_hash, secret) {
        (ClientType::Confidential, Some(hash), Some(s)) => client_secret::verify(s, hash.as_str()),
        (ClientType::Confidential, _, _) => false,
        (ClientType::Public, _, secret) => secret.is_none(),
    }
}

/// `at_hash` (OpenID Connect Core section 3.1.3.6): the left half of the SHA-256 of the
/// access token, base64url, for an RS256 ID token.
pub fn at_hash_sha256(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// `at_hash` for an ID token signed with `alg`: the hash of its JOSE algorithm, SHA-256 for
/// RS256 and SHA-512 for EdDSA with Ed25519 (whose signature hashes with SHA-512), left half.
pub fn at_hash(alg: store::SigningAlg, access_token: &str) -> String {
    match alg {
        store::SigningAlg::Rs256 => at_hash_sha256(access_token),
        store::SigningAlg::EdDsa => {
            let digest = sha2::Sha512::digest(access_token.as_bytes());
            URL_SAFE_NO_PAD.encode(&digest[..32])
        }
    }
}

impl Auth {
    /// Issues an authorization code for `user_id`, who signed in at `auth_time` by `amr`,
    /// after [`crate::oauth::check`] passed. Returns the code (only its hash is stored).
    pub async fn issue_code(
        &self,
        client: &Client,
        user_id: Uuid,
        authz: &Authorization,
        auth_time: i64,
        amr: &[String],
        now: i64,
    ) -> Result<String, StoreError> {
        let (code, code_hash) = new_opaque_token();
        self.store
            .insert_auth_code(NewAuthCode {
                code_hash,
                code: AuthCode {
                    tenant_id: client.tenant_id,
                    client_id: client.client_id.clone(),
                    user_id,
                    redirect_uri: authz.redirect_uri.clone(),
                    scopes: authz.scopes.clone(),
                    nonce: authz.nonce.clone(),
                    code_challenge: authz.code_challenge.clone(),
                    auth_time,
                    amr: amr.to_vec(),
                    family_id: Uuid::now_v7(),
                    created_at: now,
                    expires_at: now + CODE_TTL_SECS,
                    used_at: None,
                    access_jti: None,
                    access_expires_at: None,
                },
            })
            .await?;
        Ok(code)
    }

    /// The token request of the code grant: the client authenticates, the redirect URI and
    /// the PKCE verifier must match the authorization request, then the code is redeemed
    /// once, issuing an access token, a refresh token (when the client has that grant) and an
    /// ID token (when `openid` was granted). `user.login` is written with the refresh token.
    pub async fn redeem_code(
        &self,
        who: ClientAuth<'_>,
        req: CodeRequest<'_>,
        origin: &Origin,
        now: i64,
    ) -> GrantFlow {
        use GrantDenial::*;
        let hash = hash_opaque(req.code);
        let Some(found) = self.store.find_auth_code(hash).await? else {
            return Ok(Err(InvalidGrant("unknown authorization code")));
        };
        let Some(client) = self
            .store
            .find_client(found.tenant_id, who.client_id)
            .await?
        else {
            return Ok(Err(InvalidClient));
        };
        if !authenticate_client(&client, who.secret) {
            return Ok(Err(InvalidClient));
        }
        if found.client_id != client.client_id {
            return Ok(Err(InvalidGrant("the code was issued to another client")));
        }
        if !allows(&client, "authorization_code") {
            return Ok(Err(UnauthorizedClient(
                "this client may not use the authorization code grant",
            )));
        }
        if req.redirect_uri != Some(found.redirect_uri.as_str()) {
            return Ok(Err(InvalidGrant(
                "redirect_uri does not match the authorization request",
            )));
        }
        match (found.code_challenge.as_deref(), req.code_verifier) {
            (Some(challenge), Some(verifier)) if pkce_matches(verifier, challenge) => {}
            (Some(_), _) => return Ok(Err(InvalidGrant("code_verifier does not match"))),
            (None, Some(_)) => {
                return Ok(Err(InvalidGrant(
                    "code_verifier sent for a code issued without code_challenge",
                )))
            }
            (None, None) => {}
        }
        let Some(user) = self.store.get_user(found.user_id).await? else {
            return Ok(Err(InvalidGrant("the user no longer exists")));
        };
        if user.disabled || user.tenant_id != client.tenant_id {
            return Ok(Err(InvalidGrant("the user is disabled")));
        }
        if !crate::policy::email_ok(&client, &user) {
            return Ok(Err(InvalidGrant(
                "the user's email address is not verified",
            )));
        }
        let (refresh_token, refresh) = if allows(&client, "refresh_token") {
            let (t, r) = self.new_refresh(user.id, client.tenant_id, &client, found.family_id, now);
            (Some(t), Some(r))
        } else {
            (None, None)
        };
        let event = login_event(
            origin,
            client.tenant_id,
            user.id,
            &client.client_id,
            "authorization_code",
            now,
        );
        let reuse = origin.event(
            EventType::TokenReuseDetected,
            Some(client.tenant_id),
            Some(user.id),
            now,
        );
        // The access token is made first, so that its `jti` is stored with the redemption and
        // a replay of the code can revoke it too.
        let ttl = self.access_ttl_for(Some(&client));
        let scopes: Vec<String> = found
            .scopes
            .iter()
            .filter(|s| crate::policy::user_may_hold(&client, s))
            .cloned()
            .collect();
        let sid = refresh.as_ref().map(|_| found.family_id.to_string());
        let mut claims = self.access_claims(&user, &client.client_id, &scopes, ttl, now, sid);
        claims.amr = found.amr.clone();
        claims.auth_time = Some(found.auth_time);
        let redeem = Redeem {
            refresh,
            access: Some((claims.jti.clone(), claims.exp)),
            event: Some(event),
            reuse_event: Some(reuse),
        };
        let code = match self.store.redeem_auth_code(hash, redeem, now).await? {
            Redemption::Redeemed(code) => code,
            Redemption::Reused(code) => {
                tracing::warn!(
                    family_id = %code.family_id,
                    user_id = %code.user_id,
                    "authorization code reused; what it issued is revoked"
                );
                if let Some(cache) = &self.cache {
                    let _ = cache.family_revoke(code.family_id, FAMILY_MARK_TTL).await;
                }
                if let (Some(jti), Some(exp)) = (&code.access_jti, code.access_expires_at) {
                    self.revoke_jti(jti, code.tenant_id, exp, now).await?;
                }
                return Ok(Err(InvalidGrant("the authorization code was already used")));
            }
            Redemption::Expired | Redemption::Unknown => {
                return Ok(Err(InvalidGrant("the authorization code has expired")))
            }
        };
        let access_token = self.sign_access(&client, &claims);
        let expires_in = ttl.as_secs();
        let id_token = code
            .scopes
            .iter()
            .any(|s| s == "openid")
            .then(|| self.id_token(&client, &user, &code, &access_token, now));
        Ok(Ok(Granted {
            access_token,
            expires_in,
            refresh_token,
            id_token,
            scopes,
        }))
    }

    /// The ID token of a redeemed code: RS256, claims by scope.
    fn id_token(
        &self,
        client: &Client,
        user: &User,
        code: &AuthCode,
        access_token: &str,
        now: i64,
    ) -> String {
        let has = |s: &str| code.scopes.iter().any(|g| g == s);
        let alg = client
            .id_token_alg
            .unwrap_or(crate::keys::DEFAULT_ID_TOKEN_ALG);
        let ttl = client
            .id_token_ttl
            .filter(|t| *t > 0)
            .unwrap_or_else(|| secs(self.access_ttl_for(Some(client))));
        let claims = IdTokenClaims {
            iss: self.issuer_for(user.tenant_id),
            sub: user.id.to_string(),
            aud: client.client_id.clone(),
            exp: now + ttl,
            iat: now,
            auth_time: code.auth_time,
            nonce: code.nonce.clone(),
            at_hash: Some(at_hash(alg, access_token)),
            azp: client.client_id.clone(),
            amr: code.amr.clone(),
            acr: "1".to_string(),
            tid: user.tenant_id.to_string(),
            email: has("email").then(|| user.email.clone()),
            email_verified: has("email").then_some(user.email_verified),
            name: if has("profile") {
                user.name.clone()
            } else {
                None
            },
            updated_at: None,
        };
        self.keys.sign_id_token_with(alg, &claims)
    }

    /// The client-credentials grant (RFC 6749 section 4.4): a confidential client, for itself.
    /// The access token's `sub` is the `client_id`; it carries the requested scopes the client
    /// has (all of them, less the user scopes, when none is requested); no refresh token.
    pub fn client_credentials(
        &self,
        client: &Client,
        secret: Option<&str>,
        scope: Option<&str>,
        now: i64,
    ) -> Result<Granted, GrantDenial> {
        if client.client_type != ClientType::Confidential || !authenticate_client(client, secret) {
            return Err(GrantDenial::InvalidClient);
        }
        if !allows(client, "client_credentials") {
            return Err(GrantDenial::UnauthorizedClient(
                "this client may not use the client_credentials grant",
            ));
        }
        let own = client
            .scopes
            .iter()
            .filter(|s| !USER_SCOPES.contains(&s.as_str()));
        let scopes: Vec<String> = match scope.map(|s| s.split(' ').filter(|s| !s.is_empty())) {
            None => own.cloned().collect(),
            Some(asked) => {
                let asked: Vec<&str> = asked.collect();
                if asked.iter().any(|a| !own.clone().any(|s| s == a)) {
                    return Err(GrantDenial::InvalidScope(
                        "scope names a scope this client does not have",
                    ));
                }
                own.filter(|s| asked.contains(&s.as_str()))
                    .cloned()
                    .collect()
            }
        };
        let ttl = self.access_ttl_for(Some(client));
        let claims = AccessClaims {
            iss: self.issuer_for(client.tenant_id),
            sub: client.client_id.clone(),
            aud: client.client_id.clone(),
            iat: now,
            nbf: now,
            exp: now + secs(ttl),
            tid: client.tenant_id.to_string(),
            amr: Vec::new(),
            scp: scopes.join(" "),
            custom: Document::Null,
            sid: None,
            jti: crate::tokens::new_jti(),
            auth_time: None,
        };
        Ok(Granted {
            access_token: self.sign_access(client, &claims),
            expires_in: ttl.as_secs(),
            refresh_token: None,
            id_token: None,
            scopes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_sha256() {
        // OpenID Connect Core, appendix A.3 (RS256): at_hash of this access token.
        assert_eq!(
            at_hash_sha256("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
