//! Which client a request to `/oauth2/token` (client credentials), `/oauth2/revoke` or
//! `/oauth2/introspect` comes from. These requests name a `client_id` and no tenant, and client
//! ids are unique only per tenant: when several tenants have a client of that id, the
//! credentials decide (a confidential client's secret, compared in constant time, matches
//! only its own client), and for public clients, which present no secret, the tenant of the
//! presented token does (a refresh token's row names its tenant, an access token its `tid`).
//!
//! The fast path is the shard's directory cache: with one client of that id (the common
//! case) nothing else is read. A store fault is a 503, never `invalid_client`.

use store::{Client, ClientType};
use uuid::Uuid;

use super::{errors, Ctx};
use auth::flows::{authenticate_client, ClientAuth};
use protocol::ApiError;

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

/// The client of a client-credentials request: the one confidential client whose secret the
/// request presents. `None`: `invalid_client`.
pub(super) async fn for_client_credentials(
    ctx: &Ctx,
    who: &ClientAuth<'_>,
) -> Result<Option<Client>, ApiError> {
    let mut found = confidential(authenticated(ctx, who).await?);
    // Two tenants' clients of one id sharing one random secret: refuse rather than guess.
    Ok(if found.len() == 1 { found.pop() } else { None })
}
