//! `/v2/admin/tenants/{tenant_id}/clients`: list, create, get, update, delete, revoke-secret.
//! The same rules as `hj client` (`auth::client_rules`); a confidential client's secret is in
//! the answer that made it and nowhere else (only its SHA-256 is stored, and never shown).

use protocol::admin::{ClientInfo, ClientRequest, RevokedSecret};
use protocol::webhook::rfc3339;
use protocol::{ApiError, ErrorCode};
use store::{Client, ClientChanges, ClientType, NewClient, SecretHash, SigningAlg};

use super::{invalid, not_found, store_err, Call};
use crate::handlers::HandlerResult;
use crate::http::{empty, json};
use ::auth::client_rules as rules;

pub fn info(c: &Client, secret: Option<String>) -> ClientInfo {
    ClientInfo {
        id: c.id.to_string(),
        tenant_id: c.tenant_id.to_string(),
        client_id: c.client_id.clone(),
        name: c.name.clone(),
        client_type: c.client_type.as_str().to_string(),
        redirect_uris: c.redirect_uris.clone(),
        post_logout_uris: c.post_logout_redirect_uris.clone(),
        allowed_origins: c.allowed_origins.clone(),
        scopes: c.scopes.clone(),
        grant_types: c.grant_types.clone(),
        require_email_verification: c.require_email_verification,
        third_party: c.third_party,
        access_token_ttl: c.access_token_ttl,
        refresh_token_ttl: c.refresh_token_ttl,
        id_token_ttl: c.id_token_ttl,
        id_token_alg: c.id_token_alg.map(|a| a.to_string()),
        access_token_alg: c.access_token_alg.map(|a| a.to_string()),
        created_at: rfc3339(c.created_at),
        secret,
    }
}

fn new_secret() -> (String, SecretHash) {
    let secret = ::auth::client_secret::generate();
    let hash = SecretHash::new(::auth::client_secret::hash(&secret));
    (secret, hash)
}

fn ttl(field: &'static str, v: Option<Option<i64>>) -> Result<Option<Option<i64>>, ApiError> {
    match v {
        Some(Some(secs)) if !(1..=rules::MAX_TTL_SECS).contains(&secs) => Err(invalid(
            field,
            format!("{field} must be seconds from 1 to {}", rules::MAX_TTL_SECS),
        )),
        v => Ok(v),
    }
}

fn alg(
    field: &'static str,
    v: Option<Option<String>>,
) -> Result<Option<Option<SigningAlg>>, ApiError> {
    match v {
        None => Ok(None),
        Some(None) => Ok(Some(None)),
        Some(Some(name)) => SigningAlg::parse(&name)
            .map(|a| Some(Some(a)))
            .ok_or_else(|| invalid(field, format!("{field} must be EdDSA or RS256"))),
    }
}

/// The request as checked changes (`hj client`'s rules, field by field).
fn changes(req: ClientRequest) -> Result<ClientChanges, ApiError> {
    let list = |field: &'static str,
                v: Option<Vec<String>>,
                check: fn(Vec<String>) -> Result<Vec<String>, String>| {
        v.map(check).transpose().map_err(|m| invalid(field, m))
    };
    let joined = |field: &'static str,
                  v: Option<Vec<String>>,
                  check: fn(&str) -> Result<Vec<String>, String>| {
        v.map(|items| {
            if items.iter().any(|i| i.contains(',')) {
                Err(format!("{field} items may not contain ','"))
            } else {
                check(&items.join(","))
            }
        })
        .transpose()
        .map_err(|m| invalid(field, m))
    };
    let client_type = match req.client_type.as_deref() {
        None => None,
        Some(t) => Some(
            ClientType::parse(t)
                .ok_or_else(|| invalid("type", "type must be public or confidential"))?,
        ),
    };
    Ok(ClientChanges {
        name: req
            .name
            .as_deref()
            .map(rules::name)
            .transpose()
            .map_err(|m| invalid("name", m))?,
        scopes: joined("scopes", req.scopes, rules::scopes)?,
        redirect_uris: list("redirect_uris", req.redirect_uris, rules::redirect_uris)?,
        post_logout_redirect_uris: list(
            "post_logout_uris",
            req.post_logout_uris,
            rules::redirect_uris,
        )?,
        allowed_origins: list("allowed_origins", req.allowed_origins, rules::origins)?,
        grant_types: joined("grant_types", req.grant_types, rules::grant_types)?,
        client_type,
        secret_hash: None,
        require_email_verification: req.require_email_verification,
        access_token_ttl: ttl("access_token_ttl", req.access_token_ttl)?,
        refresh_token_ttl: ttl("refresh_token_ttl", req.refresh_token_ttl)?,
        id_token_ttl: ttl("id_token_ttl", req.id_token_ttl)?,
        id_token_alg: alg("id_token_alg", req.id_token_alg)?,
        access_token_alg: alg("access_token_alg", req.access_token_alg)?,
        third_party: req.third_party,
    })
}

pub async fn list(call: &Call<'_>) -> HandlerResult {
    let tenant = call.tenant()?;
    let clients = call
        .ctx
        .shard
        .app
        .store
        .list_clients(Some(tenant.id))
        .await
        .map_err(store_err)?;
    let items: Vec<ClientInfo> = clients.iter().map(|c| info(c, None)).collect();
    Ok(json(200, &items))
}

async fn find(call: &Call<'_>) -> Result<Client, ApiError> {
    let tenant = call.tenant()?;
    call.ctx
        .shard
        .app
        .store
        .find_client(tenant.id, call.param(0))
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found("client"))
}

pub async fn get(call: &Call<'_>) -> HandlerResult {
    Ok(json(200, &info(&find(call).await?, None)))
}

pub async fn create(call: &Call<'_>) -> HandlerResult {
    let tenant = call.tenant()?;
    let mut req: ClientRequest = call.json()?;
    let client_id = rules::client_id(req.client_id.take().as_deref().unwrap_or(""))
        .map_err(|m| invalid("client_id", m))?;
    let c = changes(req)?;
    let mut new = NewClient::new(tenant.id, client_id.clone(), c.name.unwrap_or(client_id));
    if let Some(scopes) = c.scopes {
        new.scopes = scopes;
    }
    new.redirect_uris = c.redirect_uris.unwrap_or_default();
    new.post_logout_redirect_uris = c.post_logout_redirect_uris.unwrap_or_default();
    new.allowed_origins = c.allowed_origins.unwrap_or_default();
    if let Some(grants) = c.grant_types {
        new.grant_types = grants;
    }
    new.client_type = c.client_type.unwrap_or_default();
    new.require_email_verification = c.require_email_verification.unwrap_or_default();
    new.third_party = c.third_party.unwrap_or_default();
    new.access_token_ttl = c.access_token_ttl.flatten();
    new.refresh_token_ttl = c.refresh_token_ttl.flatten();
    new.id_token_ttl = c.id_token_ttl.flatten();
    new.id_token_alg = c.id_token_alg.flatten();
    new.access_token_alg = c.access_token_alg.flatten();
    rules::consistent(new.client_type, &new.grant_types).map_err(|m| invalid("grant_types", m))?;
    let secret = (new.client_type == ClientType::Confidential).then(|| {
        let (secret, hash) = new_secret();
        new.secret_hash = Some(hash);
        secret
    });
    let audit = call.audit("client.create", "client", &new.client_id);
    let created = call
        .ctx
        .shard
        .app
        .store
        .create_client(new, call.ctx.now, Some(audit))
        .await
        .map_err(|e| match e {
            store::StoreError::Conflict(_) => ApiError::new(
                ErrorCode::Conflict,
                "the tenant already has a client with this client_id",
            )
            .with_field("client_id"),
            e => store_err(e),
        })?;
    Ok(json(201, &info(&created, secret)))
}

pub async fn update(call: &Call<'_>) -> HandlerResult {
    let tenant = call.tenant()?;
    let req: ClientRequest = call.json()?;
    if req
        .client_id
        .as_deref()
        .is_some_and(|id| id != call.param(0))
    {
        return Err(invalid("client_id", "client_id cannot be changed"));
    }
    let mut changes = changes(req)?;
    let current = find(call).await?;
    let client_type = changes.client_type.unwrap_or(current.client_type);
    let grants = changes.grant_types.as_ref().unwrap_or(&current.grant_types);
    rules::consistent(client_type, grants).map_err(|m| invalid("grant_types", m))?;
    let mut secret = None;
    match (current.client_type, client_type) {
        (ClientType::Public, ClientType::Confidential) => {
            let (new, hash) = new_secret();
            changes.secret_hash = Some(Some(hash));
            secret = Some(new);
        }
        (_, ClientType::Public) if current.secret_hash.is_some() => {
            changes.secret_hash = Some(None);
        }
        _ => {}
    }
    if changes.is_empty() {
        return Ok(json(200, &info(&current, None)));
    }
    let audit = call.audit("client.update", "client", &current.client_id);
    let updated = call
        .ctx
        .shard
        .app
        .store
        .update_client(tenant.id, &current.client_id, changes, Some(audit))
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found("client"))?;
    Ok(json(200, &info(&updated, secret)))
}

pub async fn delete(call: &Call<'_>) -> HandlerResult {
    let tenant = call.tenant()?;
    let audit = call.audit("client.delete", "client", call.param(0));
    let existed = call
        .ctx
        .shard
        .app
        .store
        .delete_client(tenant.id, call.param(0), Some(audit))
        .await
        .map_err(store_err)?;
    if existed {
        Ok(empty(204))
    } else {
        Err(not_found("client"))
    }
}

/// A new secret for a confidential client; the old one stops working at once.
pub async fn revoke_secret(call: &Call<'_>) -> HandlerResult {
    let tenant = call.tenant()?;
    let current = find(call).await?;
    if current.client_type != ClientType::Confidential {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "a public client has no secret",
        ));
    }
    let (secret, hash) = new_secret();
    let changes = ClientChanges {
        secret_hash: Some(Some(hash)),
        ..ClientChanges::default()
    };
    let audit = call.audit("client.revoke_secret", "client", &current.client_id);
    call.ctx
        .shard
        .app
        .store
        .update_client(tenant.id, &current.client_id, changes, Some(audit))
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found("client"))?;
    Ok(json(
        200,
        &RevokedSecret {
            client_id: current.client_id,
            new_secret: secret,
            message: "the previous secret no longer works; this one is shown once".into(),
        },
    ))
}
