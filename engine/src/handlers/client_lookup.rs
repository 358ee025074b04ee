//! The prologue of `/oauth2/token`, `/oauth2/revoke` and `/oauth2/introspect`
//! ([`ClientRequest`]: the form, the client credentials, the clients they authenticate), and
//! which client such a request comes from. These requests name a `client_id` and no tenant, and client
//! ids are unique only per tenant: when several tenants have a client of that id, the
//! credentials decide (a confidential client's secret, compared in constant time, matches
//! only its own client), and for public clients, which present no secret, the tenant of the
//! presented token does (a refresh token's row names its tenant, an access token its `tid`).
//!
//! The fast path is the shard's directory cache: with one client of that id (the common
//! case) nothing else is read. A store fault is a 503 `temporarily_unavailable` with
//! `Retry-After`, never `invalid_client`: a client told its credentials are wrong during a
//! database blip drops them or alerts its operator for nothing.

use http::header::AUTHORIZATION;
use http::request::Parts;
use http::Request;
use hyper::body::Incoming;
use protocol::{ApiError, OAuthError, OAuthErrorCode};
use store::{Client, ClientType};
use uuid::Uuid;

use super::common::{self, body};
use super::{errors, Ctx};
use crate::http::{form_pairs, oauth_error, Resp};
use auth::flows::{authenticate_client, ClientAuth};
use auth::limiter::Limit;

/// A request to one of the client-authenticated OAuth endpoints, read: its form (within the
/// body limit every route has), counted against the client IP's token limit, and its client
/// credentials: HTTP Basic (`client_secret_basic`, each part form-urlencoded per RFC 6749
/// section 2.3.1, decoded by [`common::basic_credentials`]) or the form
/// (`client_secret_post`), never both; `client_id` alone for a public client.
pub(super) struct ClientRequest {
    pub parts: Parts,
    form: Vec<(String, String)>,
    /// The decoded `Authorization: Basic` credentials; `Err` for an `Authorization` header
    /// that is not Basic credentials.
    basic: Result<Option<(String, String)>, ()>,
}

impl ClientRequest {
    /// Reads the body and counts the request against [`Limit::Token`]; `limited` is told of a
    /// refusal (the token endpoint counts it under its grant) before the 429 goes out.
    pub async fn read(
        ctx: &Ctx,
        req: Request<Incoming>,
        limited: impl FnOnce(&ClientRequest),
    ) -> Result<ClientRequest, ApiError> {
        let (parts, bytes) = body(ctx, req).await?;
        let basic = match parts.headers.get(AUTHORIZATION) {
            Some(v) => common::basic_credentials(v).map(Some).ok_or(()),
            None => Ok(None),
        };
        let request = ClientRequest {
            form: form_pairs(&bytes),
            parts,
            basic,
        };
        if let Err(e) = ctx.limit(Limit::Token).await {
            limited(&request);
            return Err(e);
        }
        Ok(request)
    }

    /// A form field, trimmed; `None` when absent or empty.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Whether the client authenticated with HTTP Basic (a 401 then says so).
    pub fn by_basic(&self) -> bool {
        self.parts.headers.contains_key(AUTHORIZATION)
    }

    /// The client credentials as presented, or why they cannot be read.
    pub fn who(&self) -> Result<ClientAuth<'_>, OAuthError> {
        let invalid = |m: &str| OAuthError::new(OAuthErrorCode::InvalidRequest, m);
        let basic = self
            .basic
            .as_ref()
            .map_err(|_| OAuthError::invalid_client())?;
        if let Some((id, secret)) = basic {
            if self.field("client_secret").is_some() {
                return Err(invalid("use one client authentication method, not two"));
            }
            if self.field("client_id").is_some_and(|c| c != id) {
                return Err(invalid("client_id differs from the Basic credentials"));
            }
            return Ok(ClientAuth {
                client_id: id,
                secret: Some(secret),
            });
        }
        let client_id = self
            .field("client_id")
            .ok_or_else(|| invalid("client_id is required"))?;
        Ok(ClientAuth {
            client_id,
            secret: self.field("client_secret"),
        })
    }

    /// The clients `who` authenticates as ([`authenticated`]), never none: an unknown client
    /// or wrong credentials are 401 `invalid_client`, a store fault 503
    /// `temporarily_unavailable`.
    pub async fn clients(&self, ctx: &Ctx, who: &ClientAuth<'_>) -> Result<Vec<Client>, Resp> {
        match authenticated(ctx, who).await {
            Ok(found) if found.is_empty() => Err(self.refuse(&OAuthError::invalid_client())),
            Ok(found) => Ok(found),
            Err(e) => Err(crate::http::error(&e, true)),
        }
    }

    /// The RFC 6749 answer `e`, with `WWW-Authenticate` for `invalid_client` after HTTP Basic.
    pub fn refuse(&self, e: &OAuthError) -> Resp {
        oauth_error(e, self.by_basic())
    }
}

/// The clients named `who.client_id`, in any tenant, that `who`'s credentials authenticate:
/// confidential ones whose secret matches, public ones when no secret is presented. Empty:
/// `invalid_client`. When the cache knows clients of that id but none authenticates, they are
/// read again from the store (a secret rotated, or a client added, since the cache filled).
pub(super) async fn authenticated(
    ctx: &Ctx,
    who: &ClientAuth<'_>,
) -> Result<Vec<Client>, ApiError> {
    if who.client_id.len() > 200 {
        return Ok(Vec::new());
    }
    let store = ctx.auth().store.as_ref();
    let named = ctx
        .shard
        .directory
        .clients_named(store, who.client_id)
        .await
        .map_err(|e| errors::store(&e))?;
    let passing = |clients: Vec<Client>| -> Vec<Client> {
        clients
            .into_iter()
            .filter(|c| authenticate_client(c, who.secret))
            .collect()
    };
    let cached = !named.is_empty();
    let found = passing(named);
    if !found.is_empty() || !cached {
        return Ok(found);
    }
    let fresh = store
        .find_clients_by_client_id(who.client_id)
        .await
        .map_err(|e| errors::store(&e))?;
    Ok(passing(fresh))
}

/// The confidential clients among `clients`.
pub(super) fn confidential(clients: Vec<Client>) -> Vec<Client> {
    clients
        .into_iter()
        .filter(|c| c.client_type == ClientType::Confidential)
        .collect()
}

/// The tenant `token` was issued in: a JWT's verified `tid`, or the tenant of a refresh
/// token's row. `None` for an unknown, invalid or expired token.
pub(super) async fn token_tenant(ctx: &Ctx, token: &str) -> Result<Option<Uuid>, ApiError> {
    // A JWT (an access token) has dots; refresh tokens are opaque base64url.
    if token.contains('.') {
        return Ok(ctx
            .auth()
            .bearer(token, ctx.now)
            .ok()
            .and_then(|caller| caller.claims.tid.parse().ok()));
    }
    let hash = auth::tokens::hash_opaque(token);
    let found = ctx
        .auth()
        .store
        .find_refresh_token(hash)
        .await
        .map_err(|e| errors::store(&e))?;
    Ok(found.map(|t| t.tenant_id))
}

/// The caller among the authenticated `clients` for a request presenting `token`: the only
/// one, or (when several tenants' clients passed, which only public clients do in practice)
/// the one in the token's tenant. `None`: the token names none of them, so it is foreign to
/// the caller whoever it is (revocation changes nothing, introspection says inactive).
pub(super) async fn for_token(
    ctx: &Ctx,
    mut clients: Vec<Client>,
    token: &str,
) -> Result<Option<Client>, ApiError> {
    if clients.len() <= 1 {
        return Ok(clients.pop());
    }
    let Some(tenant) = token_tenant(ctx, token).await? else {
        return Ok(None);
    };
    Ok(clients.into_iter().find(|c| c.tenant_id == tenant))
}
