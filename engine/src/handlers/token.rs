//! `POST /oauth2/token` (RFC 6749 sections 4.1.3, 4.4 and 6) with the authorization-code,
//! refresh-token and client-credentials grants. Form-encoded, errors in RFC 6749 shape
//! ([`protocol::OAuthError`]). No tenant is sent: it comes from the code, the refresh token
//! or the client's secret.
//!
//! Every grant starts with the prologue the revocation and introspection endpoints share
//! ([`ClientRequest`]): the client is found and authenticated before the grant is looked at,
//! so an unknown client or a wrong secret is 401 `invalid_client` whatever the grant, and a
//! store fault while finding it is 503 `temporarily_unavailable`, never a denial.

use http::Request;
use hyper::body::Incoming;
use protocol::oidc::CodeTokenResponse;
use protocol::{GrantType, OAuthError, OAuthErrorCode};

use super::client_lookup::{self, ClientRequest};
use super::common::{denied, no_store, sign_in_status};
use super::{errors, Ctx, HandlerResult};
use crate::http::{json, Resp};
use auth::flows::{CodeRequest, Denial, GrantDenial, Granted, Outcome};

fn grant_denied(r: &ClientRequest, d: GrantDenial) -> Resp {
    let e = match d {
        GrantDenial::InvalidClient => OAuthError::invalid_client(),
        GrantDenial::InvalidGrant(m) => OAuthError::new(OAuthErrorCode::InvalidGrant, m),
        GrantDenial::UnauthorizedClient(m) => {
            OAuthError::new(OAuthErrorCode::UnauthorizedClient, m)
        }
        GrantDenial::InvalidScope(m) => OAuthError::new(OAuthErrorCode::InvalidScope, m),
    };
    r.refuse(&e)
}

fn granted(g: Granted) -> Resp {
    no_store(json(
        200,
        &CodeTokenResponse {
            access_token: g.access_token,
            token_type: "Bearer",
            expires_in: g.expires_in,
            refresh_token: g.refresh_token,
            id_token: g.id_token,
            scope: g.scopes.join(" "),
        },
    ))
}

/// `POST /oauth2/token`.
pub async fn token(ctx: &Ctx, req: Request<Incoming>) -> HandlerResult {
    // A refusal is counted under its grant (the sign-in metric's method; anything else is
    // `refresh`, so the label stays bounded).
    let method_of = |r: &ClientRequest| {
        r.field("grant_type")
            .and_then(GrantType::parse)
            .unwrap_or(GrantType::RefreshToken)
            .method()
    };
    let r = ClientRequest::read(ctx, req, |r| {
        ctx.shard.metrics.sign_in(method_of(r), "rate_limited")
    })
    .await?;
    let invalid = |m: &str| r.refuse(&OAuthError::new(OAuthErrorCode::InvalidRequest, m));
    let Some(grant) = r.field("grant_type") else {
        return Ok(invalid("grant_type is required"));
    };
    let Some(grant) = GrantType::parse(grant) else {
        return Ok(r.refuse(&OAuthError::new(
            OAuthErrorCode::UnsupportedGrantType,
            format!("grant_type {grant:?} is not supported"),
        )));
    };
    let method = grant.method();
    let who = match r.who() {
        Ok(who) => who,
        Err(e) => return Ok(r.refuse(&e)),
    };
    // What the grant needs, checked before the store is asked anything.
    let needed = match grant {
        GrantType::AuthorizationCode => r.field("code").map(|_| ()).ok_or("code is required"),
        GrantType::RefreshToken => r
            .field("refresh_token")
            .map(|_| ())
            .ok_or("refresh_token is required"),
        GrantType::ClientCredentials => Ok(()),
    };
    if let Err(m) = needed {
        return Ok(invalid(m));
    }
    let clients = match r.clients(ctx, &who).await {
        Ok(clients) => clients,
        Err(resp) => {
            let status = if resp.status() == 401 {
                "invalid_credentials"
            } else {
                "error"
            };
            ctx.shard.metrics.sign_in(method, status);
            return Ok(resp);
        }
    };
    let auth = ctx.auth();
    let origin = ctx.origin(&r.parts);
    match grant {
        GrantType::AuthorizationCode => {
            let request = CodeRequest {
                code: r.field("code").unwrap_or_default(),
                redirect_uri: r.field("redirect_uri"),
                code_verifier: r.field("code_verifier"),
            };
            // The code names its tenant; the flow reads that tenant's client of this id.
            let outcome = auth
                .redeem_code(who, request, &origin, ctx.now)
                .await
                .map_err(|e| errors::store(&e))?;
            Ok(match outcome {
                Ok(g) => {
                    ctx.shard.metrics.sign_in(method, "success");
                    granted(g)
                }
                Err(d) => {
                    ctx.shard.metrics.sign_in(method, "invalid_credentials");
                    grant_denied(&r, d)
                }
            })
        }
        GrantType::RefreshToken => {
            let token = r.field("refresh_token").unwrap_or_default();
            // One client of that id authenticated: the flow rotates with it at once. Several
            // (public clients of one id in several tenants): the token says whose it is.
            let known = match clients.as_slice() {
                [one] => Some(one),
                _ => None,
            };
            let outcome = auth
                .refresh(who, known, token, None, &origin, ctx.now)
                .await
                .map_err(|e| errors::store(&e))?;
            Ok(match outcome {
                Outcome::Done(issued) => {
                    ctx.shard.metrics.sign_in(method, "success");
                    super::auth::tokens(issued, false)
                }
                Outcome::Denied(Denial::InvalidClient) => {
                    ctx.shard.metrics.sign_in(method, "bad_request");
                    r.refuse(&OAuthError::invalid_client())
                }
                Outcome::Denied(d) => {
                    ctx.shard.metrics.sign_in(method, sign_in_status(&d));
                    denied(ctx, &d, true)
                }
            })
        }
        GrantType::ClientCredentials => {
            // Client ids are unique per tenant only: the secret finds the client, and two
            // tenants' clients of one id sharing one secret are refused rather than guessed.
            let mut found = client_lookup::confidential(clients);
            let client = match (found.pop(), found.is_empty()) {
                (Some(client), true) => client,
                _ => {
                    ctx.shard.metrics.sign_in(method, "invalid_credentials");
                    return Ok(r.refuse(&OAuthError::invalid_client()));
                }
            };
            Ok(
                match auth.client_credentials(&client, who.secret, r.field("scope"), ctx.now) {
                    Ok(g) => {
                        ctx.shard.metrics.sign_in(method, "success");
                        granted(g)
                    }
                    Err(d) => {
                        ctx.shard.metrics.sign_in(method, "invalid_credentials");
                        grant_denied(&r, d)
                    }
                },
            )
        }
    }
}
