//! Token revocation (RFC 7009) and introspection (RFC 7662).

use http::Request;
use hyper::body::Incoming;
use protocol::oidc::Introspection;
use protocol::{OAuthError, OAuthErrorCode};

use super::client_lookup::{self, ClientRequest};
use super::common::no_store;
use super::{errors, Ctx, HandlerResult};
use crate::http::{empty, json};

fn token_required(r: &ClientRequest) -> crate::http::Resp {
    r.refuse(&OAuthError::new(
        OAuthErrorCode::InvalidRequest,
        "token is required",
    ))
}

/// `POST /oauth2/revoke`: revokes a refresh token's family, or an access token by its `jti`,
/// when it was issued to the calling client. Always 200 for the token itself (RFC 7009
/// section 2.2: an unknown, expired or foreign token is no error, so nothing is learnt from
/// the answer); 401 when the client does not authenticate.
pub async fn revoke(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    let r = ClientRequest::read(ctx, req, |_| {}).await?;
    let who = match r.who() {
        Ok(who) => who,
        Err(e) => return Ok(r.refuse(&e)),
    };
    let Some(token) = r.field("token") else {
        return Ok(token_required(&r));
    };
    let clients = match r.clients(ctx, &who).await {
        Ok(clients) => clients,
        Err(resp) => return Ok(resp),
    };
    // Public clients of one id in several tenants (the SDK's sign-out): the token's tenant
    // says whose it is. None of them: it is not the caller's, and nothing changes.
    let Some(client) = client_lookup::for_token(ctx, clients, token).await? else {
        return Ok(no_store(empty(200)));
    };
    // A JWT (an access token) has dots; refresh tokens are opaque base64url.
    if token.contains('.') {
        ctx.auth()
            .revoke_access_token(token, &client, ctx.now)
            .await
            .map_err(|e| errors::store(&e))?;
    } else {
        ctx.auth()
            .revoke_for_client(token, &client, &ctx.origin(&r.parts), ctx.now)
            .await
            .map_err(|e| errors::store(&e))?;
    }
    Ok(no_store(empty(200)))
}

/// `POST /oauth2/introspect`: whether a token is active, for the confidential client it was
/// issued to (RFC 7662 section 2.1 requires the caller to authenticate; a public client
/// cannot). An inactive or unknown token, or one of another client (of the same tenant too),
/// is `{"active": false}` and nothing else.
pub async fn introspect(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    let r = ClientRequest::read(ctx, req, |_| {}).await?;
    let who = match r.who() {
        Ok(who) => who,
        Err(e) => return Ok(r.refuse(&e)),
    };
    let clients = match r.clients(ctx, &who).await {
        Ok(clients) => client_lookup::confidential(clients),
        Err(resp) => return Ok(resp),
    };
    // A public client cannot introspect (it cannot authenticate).
    if clients.is_empty() {
        return Ok(r.refuse(&OAuthError::invalid_client()));
    }
    let Some(token) = r.field("token") else {
        return Ok(token_required(&r));
    };
    let auth = ctx.auth();
    let inactive = || no_store(json(200, &Introspection::inactive()));
    let Some(client) = client_lookup::for_token(ctx, clients, token).await? else {
        return Ok(inactive());
    };
    if token.contains('.') {
        let Ok(caller) = auth.bearer(token, ctx.now) else {
            return Ok(inactive());
        };
        let c = caller.claims;
        // Only the caller's own tokens: issued to it (`aud`), in its tenant.
        if c.tid != client.tenant_id.to_string() || c.aud != client.client_id {
            return Ok(inactive());
        }
        // A user's token is active while its user exists and is enabled.
        if let Ok(user_id) = c.sub.parse::<uuid::Uuid>() {
            match auth.store.get_user(user_id).await {
                Ok(Some(u)) if !u.disabled => {}
                Ok(_) => return Ok(inactive()),
                Err(e) => return Err(errors::store(&e)),
            }
        }
        return Ok(no_store(json(
            200,
            &Introspection {
                active: true,
                scope: Some(c.scp.clone()),
                client_id: Some(c.aud.clone()),
                sub: Some(c.sub.clone()),
                exp: Some(c.exp),
                iat: Some(c.iat),
                nbf: Some(c.nbf),
                iss: Some(c.iss.clone()),
                aud: Some(c.aud.clone()),
                jti: (!c.jti.is_empty()).then(|| c.jti.clone()),
                token_type: Some("Bearer"),
                tid: Some(c.tid.clone()),
            },
        )));
    }
    match auth
        .active_refresh_token(token, &client, ctx.now)
        .await
        .map_err(|e| errors::store(&e))?
        .filter(|t| t.client_id == client.client_id)
    {
        Some(t) => Ok(no_store(json(
            200,
            &Introspection {
                active: true,
                scope: t.scopes.map(|s| s.join(" ")),
                client_id: Some(t.client_id.clone()),
                sub: Some(t.user_id.to_string()),
                exp: Some(t.expires_at),
                iat: Some(t.issued_at),
                nbf: None,
                iss: Some(auth.issuer_for(t.tenant_id)),
                aud: Some(t.client_id),
                jti: None,
                token_type: Some("refresh_token"),
                tid: Some(t.tenant_id.to_string()),
            },
        ))),
        None => Ok(inactive()),
    }
}
