//! Discovery documents: JWKS and OpenID configuration.

use http::header::{HeaderValue, CACHE_CONTROL};
use protocol::auth::OpenIdConfiguration;

use protocol::{ApiError, ErrorCode};

use uuid::Uuid;

use super::{Ctx, HandlerResult};
use crate::http::json;
use crate::router::{slug_of, Route};

pub fn jwks(ctx: &Ctx) -> HandlerResult {
    ctx.clock.request_read();
    let mut resp = json(200, &ctx.auth().keys.jwks());
    resp.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(resp)
}

/// `GET /.well-known/openid-configuration`: exactly what this server supports.
pub fn openid_configuration(ctx: &Ctx) -> HandlerResult {
    ctx.clock.request_read();
    let base = &ctx.auth().issuer;
    Ok(discovery(
        ctx,
        base.clone(),
        format!("{base}/.well-known/jwks.json"),
    ))
}

/// `GET /t/{slug}/.well-known/openid-configuration`: a tenant's discovery document, as
/// HelloJohn serves it: the tenant's issuer (`{base}/t/{slug}` in issuer mode path, else the
/// server's: tokens of every global-mode tenant carry the server's issuer and their tenant in
/// `tid`) and JWKS URL, the endpoints as the global one. 404 for an unknown tenant.
pub async fn tenant_openid_configuration(ctx: &Ctx, path: &str) -> HandlerResult {
    ctx.clock.request_read();
    let (id, slug) = tenant_of(ctx, Route::TenantOpenIdConfiguration, path).await?;
    Ok(discovery(
        ctx,
        ctx.auth().issuer_for(id),
        format!("{}/.well-known/jwks/{slug}.json", ctx.auth().issuer),
    ))
}

/// `GET /.well-known/jwks/{slug}.json`: a tenant's signing keys: its own in issuer mode path,
/// else the server's (shared by every global-mode tenant). 404 for an unknown tenant.
pub async fn tenant_jwks(ctx: &Ctx, path: &str) -> HandlerResult {
    ctx.clock.request_read();
    let (id, _) = tenant_of(ctx, Route::TenantJwks, path).await?;
    let Some(keys) = ctx.auth().keys.tenant_jwks(id) else {
        return jwks(ctx);
    };
    let mut resp = json(200, &keys);
    resp.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(resp)
}

async fn tenant_of(ctx: &Ctx, route: Route, path: &str) -> Result<(Uuid, String), ApiError> {
    let not_found = || ApiError::new(ErrorCode::NotFound, "unknown tenant");
    let slug = slug_of(route, path).ok_or_else(not_found)?;
    match ctx
        .shard
        .directory
        .tenant(ctx.auth().store.as_ref(), slug)
        .await
    {
        Ok(Some(t)) if t.slug == slug => Ok((t.id, t.slug)),
        Ok(_) => Err(not_found()),
        Err(e) => Err(super::errors::store(&e)),
    }
}

fn discovery(ctx: &Ctx, issuer: String, jwks_uri: String) -> crate::http::Resp {
    let base = &ctx.auth().issuer;
    let doc = OpenIdConfiguration {
        issuer,
        authorization_endpoint: format!("{base}/oauth2/authorize"),
        token_endpoint: format!("{base}/oauth2/token"),
        userinfo_endpoint: format!("{base}/userinfo"),
        jwks_uri,
        end_session_endpoint: format!("{base}/oauth2/logout"),
        revocation_endpoint: format!("{base}/oauth2/revoke"),
        introspection_endpoint: format!("{base}/oauth2/introspect"),
        response_types_supported: vec!["code"],
        response_modes_supported: vec!["query"],
        grant_types_supported: protocol::GrantType::NAMES.to_vec(),
        subject_types_supported: vec!["public"],
        id_token_signing_alg_values_supported: vec!["RS256", "EdDSA"],
        token_endpoint_auth_methods_supported: vec![
            "none",
            "client_secret_basic",
            "client_secret_post",
        ],
        revocation_endpoint_auth_methods_supported: vec![
            "none",
            "client_secret_basic",
            "client_secret_post",
        ],
        introspection_endpoint_auth_methods_supported: vec![
            "client_secret_basic",
            "client_secret_post",
        ],
        code_challenge_methods_supported: vec!["S256"],
        prompt_values_supported: vec!["none", "login", "consent", "select_account"],
        scopes_supported: vec!["openid", "email", "profile"],
        claims_supported: vec![
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "at_hash",
            "azp",
            "amr",
            "acr",
            "tid",
            "email",
            "email_verified",
            "name",
        ],
        claims_parameter_supported: false,
        request_parameter_supported: false,
        request_uri_parameter_supported: false,
        authorization_response_iss_parameter_supported: true,
    };
    let mut resp = json(200, &doc);
    resp.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}
