//! Who calls the admin API, and what they may do.
//!
//! A key is looked up by the SHA-256 of its token and kept in the shard's cache for
//! [`KEY_TTL`]: a key revoked on any instance stops working everywhere within that time, and a
//! busy key costs one store read per shard per [`KEY_TTL`]. `last_used_at` is written at most
//! once a minute per key (`ApiKeys::touch_api_key`), never once per request. A refused key is
//! logged by its `key_prefix` (what `GET /v2/admin/api-keys` shows), never by its token.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use http::request::Parts;
use http::Method;
use protocol::{ApiError, ErrorCode};
use store::{AdminAccount, ApiKey, Tenant};
use uuid::Uuid;

use super::routes::{AdminRoute, Reach};
use crate::handlers::Ctx;
use ::auth::api_keys::{self, Scope};
use ::auth::limiter::Limit;

/// How long a shard trusts a key it read: the bound on revocation across instances.
pub const KEY_TTL: Duration = Duration::from_secs(2);
/// Keys a shard remembers before it starts over.
const MAX_KEYS: usize = 1024;

/// Who made the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    ApiKey {
        id: Uuid,
        name: String,
    },
    /// An admin account signed in (a Bearer admin token).
    Admin {
        id: Uuid,
        email: String,
    },
    /// Nobody yet (the public sign-in routes).
    Anonymous,
}

impl Actor {
    /// `(actor_type, actor_id, actor_name)` for the audit log.
    pub fn describe(&self) -> (&'static str, String, String) {
        match self {
            Actor::ApiKey { id, name } => ("api_key", id.to_string(), name.clone()),
            Actor::Admin { id, email } => ("admin", id.to_string(), email.clone()),
            Actor::Anonymous => ("anonymous", String::new(), String::new()),
        }
    }

    /// `created_by` of what this actor creates.
    pub fn created_by(&self) -> String {
        match self {
            Actor::ApiKey { id, .. } => format!("api_key:{id}"),
            Actor::Admin { id, .. } => format!("admin:{id}"),
            Actor::Anonymous => "anonymous".to_string(),
        }
    }

    /// The limiter's subject.
    fn subject(&self) -> String {
        match self {
            Actor::ApiKey { id, .. } => format!("key:{id}"),
            Actor::Admin { id, .. } => format!("admin:{id}"),
            Actor::Anonymous => "anonymous".to_string(),
        }
    }
}

/// An authenticated caller and its scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub actor: Actor,
    pub scope: Scope,
}

impl Principal {
    /// The caller of a public route (sign-in, refresh, sign-out): no one yet, no scope used.
    pub fn anonymous() -> Principal {
        Principal {
            actor: Actor::Anonymous,
            scope: Scope::ReadOnly,
        }
    }
}

thread_local! {
    /// This shard's keys by token hash (each shard is one thread).
    static KEYS: RefCell<HashMap<[u8; 32], (Instant, ApiKey)>> = RefCell::new(HashMap::new());
    /// This shard's admin accounts by id, for Bearer admin tokens.
    static ADMINS: RefCell<HashMap<Uuid, (Instant, AdminAccount)>> = RefCell::new(HashMap::new());
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, message.to_string())
}

/// The caller of an admin request: an API key (`X-API-Key`) or a signed-in admin
/// (`Authorization: Bearer`). 401 `UNAUTHORIZED` without a valid credential.
pub async fn authenticate(ctx: &Ctx, parts: &Parts) -> Result<Principal, ApiError> {
    let Some(value) = parts.headers.get("x-api-key") else {
        return match crate::handlers::common::bearer(parts) {
            Some(token) => authenticate_admin(ctx, token).await,
            None => Err(unauthorized(
                "an X-API-Key header or an admin's Bearer token is required",
            )),
        };
    };
    let token = value.to_str().unwrap_or("").trim();
    if !api_keys::well_formed(token) {
        tracing::warn!(request_id = %ctx.request_id, client = %ctx.client_ip, "admin API: malformed API key refused");
        return Err(unauthorized("invalid API key"));
    }
    let hash = api_keys::hash(token);
    let key = match cached(&hash) {
        Some(key) => key,
        None => {
            let found = ctx
                .shard
                .app
                .store
                .find_api_key(hash)
                .await
                .map_err(super::store_err)?;
            let Some(key) = found else {
                refused(ctx, token, "unknown");
                return Err(unauthorized("invalid API key"));
            };
            if key.is_active(ctx.now) && key.last_used_at.is_none_or(|at| at < ctx.now - 60) {
                // At most once a minute per key (the store's update is conditional too).
                if let Err(e) = ctx.shard.app.store.touch_api_key(key.id, ctx.now).await {
                    tracing::warn!(error = %e, "admin API: last_used_at not recorded");
                }
            }
            remember(hash, key.clone());
            key
        }
    };
    if !key.is_active(ctx.now) {
        refused(
            ctx,
            token,
            if key.revoked_at.is_some() {
                "revoked"
            } else {
                "expired"
            },
        );
        return Err(unauthorized("invalid API key"));
    }
    let Some(scope) = Scope::parse(&key.scope) else {
        // A scope a newer release wrote: it grants nothing here.
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "this key's scope is not known to this server",
        ));
    };
    Ok(Principal {
        actor: Actor::ApiKey {
            id: key.id,
            name: key.name,
        },
        scope,
    })
}

/// A Bearer admin token: its signature, type and audience, then the account as it is now
/// (cached by the shard for [`KEY_TTL`]): a disabled or deleted admin's tokens stop within
/// that time, and the account's scope, not the token's, is what the caller may do.
pub async fn authenticate_admin(ctx: &Ctx, token: &str) -> Result<Principal, ApiError> {
    let auth = ctx.auth();
    let claims = auth
        .keys
        .verify_admin(token, ctx.now, &auth.issuer)
        .map_err(|_| unauthorized("invalid or expired admin token"))?;
    let id = Uuid::parse_str(&claims.sub).map_err(|_| unauthorized("invalid admin token"))?;
    let cached = ADMINS.with(|a| {
        let a = a.borrow();
        a.get(&id)
            .filter(|(at, _)| at.elapsed() < KEY_TTL)
            .map(|(_, acc)| acc.clone())
    });
    let account = match cached {
        Some(a) => a,
        None => {
            let found = ctx
                .shard
                .app
                .store
                .get_admin(id)
                .await
                .map_err(super::store_err)?
                .ok_or_else(|| unauthorized("invalid admin token"))?;
            if found.disabled_at.is_none() && found.last_seen_at.is_none_or(|at| at < ctx.now - 60)
            {
                if let Err(e) = ctx.shard.app.store.touch_admin(id, ctx.now).await {
                    tracing::warn!(error = %e, "admin API: last_seen_at not recorded");
                }
            }
            ADMINS.with(|a| {
                let mut a = a.borrow_mut();
                if a.len() >= MAX_KEYS {
                    a.clear();
                }
                a.insert(id, (Instant::now(), found.clone()));
            });
            found
        }
    };
    if account.disabled_at.is_some() {
        return Err(unauthorized("this admin account is disabled"));
    }
    let scope = Scope::parse(&account.scope).ok_or_else(|| {
        ApiError::new(
            ErrorCode::Forbidden,
            "this account's scope is not known to this server",
        )
    })?;
    Ok(Principal {
        actor: Actor::Admin {
            id: account.id,
            email: account.email,
        },
        scope,
    })
}

fn refused(ctx: &Ctx, token: &str, why: &str) {
    tracing::warn!(
        request_id = %ctx.request_id,
        client = %ctx.client_ip,
        key_prefix = api_keys::prefix_of(token).unwrap_or(""),
        why,
        "admin API: API key refused"
    );
}

fn cached(hash: &[u8; 32]) -> Option<ApiKey> {
    KEYS.with(|k| {
        let k = k.borrow();
        let (at, key) = k.get(hash)?;
        (at.elapsed() < KEY_TTL).then(|| key.clone())
    })
}

fn remember(hash: [u8; 32], key: ApiKey) {
    KEYS.with(|k| {
        let mut k = k.borrow_mut();
        if k.len() >= MAX_KEYS {
            k.clear();
        }
        k.insert(hash, (Instant::now(), key));
    });
}

/// Forgets every cached key on this shard (after a revocation here, so this shard is at once
/// exact; the others follow within [`KEY_TTL`]).
pub fn forget_keys() {
    KEYS.with(|k| k.borrow_mut().clear());
    ADMINS.with(|a| a.borrow_mut().clear());
}

/// The per-key (or per-admin) limit, after authentication.
pub async fn limit_principal(ctx: &Ctx, principal: &Principal) -> Result<(), ApiError> {
    let subject = principal.actor.subject();
    match ctx.shard.app.limiter.take(Limit::AdminKey, &subject).await {
        None => Ok(()),
        Some(d) => {
            ctx.note_limit(Limit::AdminKey, d);
            if d.allowed {
                Ok(())
            } else {
                Err(crate::handlers::rate_limited(&d))
            }
        }
    }
}

/// The tenant of the path (id or slug). A tenant-scoped caller asking for another tenant is
/// refused (403) whether or not it exists, so a key cannot probe for other tenants.
pub async fn tenant_for(ctx: &Ctx, principal: &Principal, key: &str) -> Result<Tenant, ApiError> {
    if let Scope::Tenant(own) = &principal.scope {
        if key != own && Uuid::parse_str(key).is_err() {
            return Err(forbidden());
        }
    }
    let tenant = ctx
        .shard
        .app
        .store
        .find_tenant(key)
        .await
        .map_err(super::store_err)?;
    match (tenant, &principal.scope) {
        (Some(t), Scope::Tenant(own)) if &t.slug != own => Err(forbidden()),
        (None, Scope::Tenant(_)) => Err(forbidden()),
        (Some(t), _) => Ok(t),
        (None, _) => Err(super::not_found("tenant")),
    }
}

fn forbidden() -> ApiError {
    ApiError::new(
        ErrorCode::Forbidden,
        "this key's scope does not allow this request",
    )
}

/// Whether the scope allows the route and method (the tenant was checked by [`tenant_for`]).
pub fn authorize(
    principal: &Principal,
    route: AdminRoute,
    method: &Method,
    tenant: Option<&Tenant>,
) -> Result<(), ApiError> {
    let read = method == Method::GET || method == Method::HEAD;
    let ok = match &principal.scope {
        _ if matches!(route.reach(), Reach::Public | Reach::OwnAccount) => true,
        Scope::Admin => true,
        Scope::ReadOnly => read,
        Scope::Tenant(slug) => match route.reach() {
            // The tenant list answers with its own tenant only; nothing else global.
            Reach::Global => route == AdminRoute::Tenants && read,
            // Its own tenant: read, not renamed or deleted.
            Reach::TenantItself => read && tenant.is_some_and(|t| &t.slug == slug),
            Reach::InTenant => tenant.is_some_and(|t| &t.slug == slug),
            Reach::Public | Reach::OwnAccount => true,
        },
    };
    if ok {
        Ok(())
    } else {
        Err(forbidden())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(slug: &str) -> Tenant {
        Tenant {
            id: Uuid::nil(),
            slug: slug.into(),
            name: slug.into(),
            created_at: 0,
            settings: Default::default(),
            settings_version: 0,
            issuer_mode: Default::default(),
        }
    }

    fn who(scope: Scope) -> Principal {
        Principal {
            actor: Actor::ApiKey {
                id: Uuid::nil(),
                name: "k".into(),
            },
            scope,
        }
    }

    #[test]
    fn scopes_allow_what_they_say() {
        let acme = tenant("acme");
        let other = tenant("other");
        let admin = who(Scope::Admin);
        let ro = who(Scope::ReadOnly);
        let t = who(Scope::Tenant("acme".into()));
        let (get, post, del) = (Method::GET, Method::POST, Method::DELETE);
        assert!(authorize(&admin, AdminRoute::ApiKeys, &post, None).is_ok());
        assert!(authorize(&ro, AdminRoute::ApiKeys, &get, None).is_ok());
        assert!(authorize(&ro, AdminRoute::ApiKeys, &post, None).is_err());
        assert!(authorize(&ro, AdminRoute::Clients, &post, Some(&acme)).is_err());
        assert!(authorize(&t, AdminRoute::ApiKeys, &get, None).is_err());
        assert!(authorize(&t, AdminRoute::Tenants, &post, None).is_err());
        assert!(authorize(&t, AdminRoute::Tenants, &get, None).is_ok());
        assert!(authorize(&t, AdminRoute::Tenant, &get, Some(&acme)).is_ok());
        assert!(authorize(&t, AdminRoute::Tenant, &del, Some(&acme)).is_err());
        assert!(authorize(&t, AdminRoute::Clients, &post, Some(&acme)).is_ok());
        assert!(authorize(&t, AdminRoute::Clients, &get, Some(&other)).is_err());
        assert!(authorize(&t, AdminRoute::AuditLogsGlobal, &get, None).is_err());
    }
}
