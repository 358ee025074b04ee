//! Discovery documents: JWKS and OpenID configuration.

use http::header::{HeaderValue, CACHE_CONTROL};
use protocol::auth::OpenIdConfiguration;

use super::{Ctx, HandlerResult};
use crate::http::json;

pub fn jwks(ctx: &Ctx) -> HandlerResult {
    ctx.clock.request_read();
    let mut resp = json(200, &ctx.auth().keys.jwks());
    resp.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(resp)
}

pub fn openid_configuration(ctx: &Ctx) -> HandlerResult {
    ctx.clock.request_read();
    let base = &ctx.auth().issuer;
    let doc = OpenIdConfiguration {
        issuer: base.clone(),
        jwks_uri: format!("{base}/.well-known/jwks.json"),
        token_endpoint: format!("{base}/oauth2/token"),
        userinfo_endpoint: format!("{base}/userinfo"),
        end_session_endpoint: format!("{base}/v2/auth/logout"),
        response_types_supported: vec!["token"],
        grant_types_supported: vec!["refresh_token"],
        subject_types_supported: vec!["public"],
        id_token_signing_alg_values_supported: vec!["EdDSA"],
        token_endpoint_auth_methods_supported: vec!["none"],
        scopes_supported: vec!["openid", "email", "profile"],
        claims_supported: vec![
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "nbf",
            "tid",
            "amr",
            "scp",
            "email",
            "email_verified",
            "name",
        ],
    };
    let mut resp = json(200, &doc);
    resp.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(resp)
}
