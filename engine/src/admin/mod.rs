//! The admin API (`/v2/admin/...`): HelloJohn's routes for operators, authenticated by an API
//! key (`X-API-Key`) and authorized by its scope. See docs/admin-api.md.
//!
//! Every request runs the same prologue ([`dispatch`]): the per-IP limit, the body (bounded),
//! the credential, the per-key limit, the tenant of the path (by id or slug) and the scope
//! check; then the route's handler gets a [`Call`]. Every change a handler makes goes to the
//! store with its audit entry ([`Call::audit`]), written in the change's transaction.

mod accounts;
mod api_keys;
mod audit;
mod clients;
mod grants;
mod guard;
mod keys;
mod openapi;
pub mod routes;
mod settings;
mod tenants;
mod users;
mod webhooks;

use http::request::Parts;
use http::{Method, Request};
use hyper::body::Incoming;
use protocol::{ApiError, ErrorCode};
use serde::de::DeserializeOwned;
use store::{AuditEntry, EventMeta, Tenant};
use uuid::Uuid;

use crate::handlers::{common, Ctx, HandlerResult};
use ::auth::limiter::Limit;
pub use accounts::{console_me, console_refresh, console_sign_in};
pub use guard::{Actor, Principal};
pub use routes::AdminRoute;

/// Longest query parameter value accepted, in characters.
pub const MAX_QUERY: usize = 200;
/// Rows of a listing's page by default, and at most.
pub const DEFAULT_PAGE_SIZE: u32 = 25;
pub const MAX_PAGE_SIZE: u32 = 100;
/// Highest page number accepted: so that every offset fits, and no request asks the database
/// to skip more than ten million rows.
pub const MAX_PAGE: u32 = 100_000;

/// A page of an offset-paged listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    /// From 1.
    pub page: u32,
    pub size: u32,
}

impl Paging {
    /// The rows before this page.
    pub fn offset(self) -> u32 {
        (self.page - 1).saturating_mul(self.size)
    }

    /// How many pages `total` rows make.
    pub fn pages(self, total: u64) -> u64 {
        total.div_ceil(u64::from(self.size))
    }
}

/// One admin request past its prologue.
pub struct Call<'a> {
    pub ctx: &'a Ctx,
    pub route: AdminRoute,
    pub method: Method,
    pub parts: Parts,
    pub body: Vec<u8>,
    pub principal: Principal,
    /// The path's parameters after `{tenant_id}` (or all of them on global routes).
    pub params: Vec<String>,
    /// The tenant of the path, resolved (routes under `/tenants/{tenant_id}`).
    pub tenant: Option<Tenant>,
}

impl Call<'_> {
    /// The JSON body (415 for another media type, 400 for bad JSON, deep JSON refused).
    pub fn json<T: DeserializeOwned + Default>(&self) -> Result<T, ApiError> {
        let value = common::parse(&self.parts, self.body.clone(), false, common::Accept::Json)?;
        // A struct also deserialises from an array of its fields in order (`[null, null]`):
        // every admin body is an object, so anything else is refused.
        if self.body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::new(
                ErrorCode::InvalidJson,
                "the body must be a JSON object",
            ));
        }
        Ok(value)
    }

    /// A query parameter.
    pub fn query(&self, name: &str) -> Option<String> {
        crate::http::query_param(self.parts.uri.query(), name)
    }

    /// A query parameter that may be given once: named twice is 400 `BAD_REQUEST`, since which
    /// value counts would depend on who reads the URL (a proxy, a cache, a log, this server).
    pub fn query_once(&self, name: &'static str) -> Result<Option<String>, ApiError> {
        let pairs = crate::http::form_pairs(self.parts.uri.query().unwrap_or("").as_bytes());
        let mut values = pairs.into_iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        let first = values.next();
        if values.next().is_some() {
            return Err(invalid(name, format!("{name} may be given once")));
        }
        Ok(first)
    }

    /// A query parameter of at most [`MAX_QUERY`] characters (400 naming it past that); a
    /// blank one is absent.
    pub fn query_text(&self, name: &'static str) -> Result<Option<String>, ApiError> {
        match self.query_once(name)? {
            Some(v) if v.chars().count() > MAX_QUERY => Err(invalid(
                name,
                format!("{name} must be at most {MAX_QUERY} characters"),
            )),
            Some(v) if v.trim().is_empty() => Ok(None),
            v => Ok(v),
        }
    }

    /// The page a listing asks for: `page` from 1 (default 1), `page_size` from 1 to
    /// [`MAX_PAGE_SIZE`] (default [`DEFAULT_PAGE_SIZE`]).
    pub fn paging(&self) -> Result<Paging, ApiError> {
        // Blank is not absent here: `?page=` is no page number.
        let number = |name: &'static str, default: u32, max: u32| match self.query_once(name)? {
            None => Ok(default),
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(invalid(
                    name,
                    format!("{name} must be a number from 1 to {max}"),
                )),
            },
        };
        Ok(Paging {
            page: number("page", 1, MAX_PAGE)?,
            size: number("page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?,
        })
    }

    /// The path's `n`-th parameter after the tenant.
    pub fn param(&self, n: usize) -> &str {
        self.params.get(n).map(String::as_str).unwrap_or("")
    }

    /// The tenant of a tenant route.
    pub fn tenant(&self) -> Result<&Tenant, ApiError> {
        self.tenant
            .as_ref()
            .ok_or_else(|| ApiError::new(ErrorCode::Internal, "route has no tenant"))
    }

    /// The audit entry of an action of this request: its actor, tenant, client address, user
    /// agent and request id.
    pub fn audit(&self, action: &str, target_type: &str, target_id: impl ToString) -> AuditEntry {
        let user_agent = self
            .parts
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        let origin = crate::webhook::Origin::new(Some(self.ctx.client_ip), user_agent);
        let (actor_type, actor_id, actor_name) = self.principal.actor.describe();
        AuditEntry {
            id: Uuid::now_v7(),
            tenant_id: self.tenant.as_ref().map(|t| t.id),
            action: action.to_string(),
            actor_type: actor_type.to_string(),
            actor_id: Some(actor_id),
            actor_name: Some(actor_name),
            target_type: Some(target_type.to_string()),
            target_id: Some(target_id.to_string()),
            ip_address: origin.ip.map(|ip| ip.to_canonical().to_string()),
            user_agent: origin.user_agent,
            request_id: Some(self.ctx.request_id.clone()),
            metadata: EventMeta::new(),
            result: "success".to_string(),
            created_at: self.ctx.now,
        }
    }
}

/// Runs the prologue, then the route's handler.
pub async fn dispatch(ctx: &Ctx, route: AdminRoute, req: Request<Incoming>) -> HandlerResult {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    // Before anything is read or looked up: a flood from one address costs a limiter step.
    ctx.limit(Limit::AdminIp).await?;
    let (parts, body) = common::body(ctx, req).await?;
    let mut params = route.params(&path);
    if route.reach() == routes::Reach::Public {
        // Sign-in, refresh, sign-out: no credential yet (the sign-in's own limits apply).
        let call = Call {
            ctx,
            route,
            method,
            parts,
            body,
            principal: Principal::anonymous(),
            params,
            tenant: None,
        };
        let resp = handle(&call).await?;
        // The document is the same for everyone and may be cached; the rest carry tokens.
        return Ok(if route == AdminRoute::OpenApi {
            resp
        } else {
            common::no_store(resp)
        });
    }
    let principal = guard::authenticate(ctx, &parts).await?;
    guard::limit_principal(ctx, &principal).await?;
    let tenant = match route.reach() {
        routes::Reach::Global | routes::Reach::Public | routes::Reach::OwnAccount => None,
        _ => {
            let key = params.remove(0);
            Some(guard::tenant_for(ctx, &principal, &key).await?)
        }
    };
    guard::authorize(&principal, route, &method, tenant.as_ref())?;
    let call = Call {
        ctx,
        route,
        method,
        parts,
        body,
        principal,
        params,
        tenant,
    };
    let resp = handle(&call).await?;
    if call.method != Method::GET && call.method != Method::HEAD {
        // This shard sees its own change at once (the others within the directory's TTL).
        ctx.shard.directory.forget();
    }
    Ok(common::no_store(resp))
}

async fn handle(call: &Call<'_>) -> HandlerResult {
    use AdminRoute as R;
    let m = &call.method;
    match call.route {
        R::Login => accounts::login(call).await,
        R::LoginMfa => accounts::login_mfa(call).await,
        R::Refresh => accounts::refresh(call).await,
        R::Logout => accounts::logout(call).await,
        R::Me => accounts::me(call).await,
        R::MeTotpEnroll => accounts::totp_enroll(call).await,
        R::MeTotpVerify => accounts::totp_verify(call).await,
        R::MeTotp => accounts::totp_delete(call).await,
        R::Admins if m == Method::POST => accounts::create(call).await,
        R::Admins => accounts::list(call).await,
        R::Admin if m == Method::DELETE => accounts::delete(call).await,
        R::Admin if m == Method::GET || m == Method::HEAD => accounts::get(call).await,
        R::Admin => accounts::update(call).await,
        R::AdminDisable => accounts::set_disabled(call, true).await,
        R::AdminEnable => accounts::set_disabled(call, false).await,
        R::ApiKeys if m == Method::POST => api_keys::create(call).await,
        R::ApiKeys => api_keys::list(call).await,
        R::ApiKey if m == Method::DELETE => api_keys::revoke(call).await,
        R::ApiKey => api_keys::get(call).await,
        R::ApiKeyRotate => api_keys::rotate(call).await,
        R::AuditLogsGlobal | R::AuditLogs => audit::list(call).await,
        R::AuditLogsExport => audit::export(call).await,
        R::AuditLogsPurge => audit::purge(call).await,
        R::AuditLog => audit::get(call).await,
        R::Tenants if m == Method::POST => tenants::create(call).await,
        R::Tenants => tenants::list(call).await,
        R::Tenant if m == Method::DELETE => tenants::delete(call).await,
        R::Tenant if m == Method::GET || m == Method::HEAD => tenants::get(call),
        R::Tenant => tenants::update(call).await,
        R::Clients if m == Method::POST => clients::create(call).await,
        R::Clients => clients::list(call).await,
        R::Client if m == Method::DELETE => clients::delete(call).await,
        R::Client if m == Method::GET || m == Method::HEAD => clients::get(call).await,
        R::Client => clients::update(call).await,
        R::ClientRevokeSecret | R::ClientRevoke => clients::revoke_secret(call).await,
        R::OpenApi => openapi::document(call),
        R::Settings => settings::handle(call).await,
        R::Users
        | R::User
        | R::UserSetPassword
        | R::UserDisable
        | R::UserEnable
        | R::UserSetEmailVerified => users::handle(call).await,
        R::Tokens
        | R::TokenStats
        | R::TokensRevokeByUser
        | R::TokensRevokeByClient
        | R::TokensRevokeAll
        | R::Token
        | R::Sessions
        | R::SessionStats
        | R::SessionsRevokeByUser
        | R::SessionsRevokeAll
        | R::Session
        | R::SessionRevoke => grants::handle(call).await,
        R::Keys | R::KeysRotate | R::GlobalKeys | R::GlobalKeysRotate => keys::handle(call).await,
        R::Webhooks | R::Webhook | R::WebhookDeliveries | R::WebhookTest => {
            webhooks::handle(call).await
        }
    }
}

/// 404 `NOT_FOUND` for a missing resource.
pub fn not_found(what: &str) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("{what} not found"))
}

/// 400 `BAD_REQUEST` about `field`.
pub fn invalid(field: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, message).with_field(field)
}

/// A store fault or conflict as its HTTP answer.
pub fn store_err(e: store::StoreError) -> ApiError {
    crate::handlers::store_error(&e)
}
