//! The admin API's wire types for a tenant's webhooks and signing keys. Times are RFC 3339.

use serde::{Deserialize, Serialize};

/// A webhook endpoint (never its secret, but in the answer that made it).
#[derive(Serialize)]
pub struct WebhookInfo {
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: String,
    /// The signing secret, only in the answer that made it (creation or rotation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl std::fmt::Debug for WebhookInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookInfo")
            .field("id", &self.id)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// `POST .../webhooks` and `PUT|PATCH .../webhooks/{webhook_id}`.
#[derive(Default, Deserialize)]
pub struct WebhookRequest {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    /// A secret of the operator's (16+ printable characters); default: a new one, shown once.
    pub secret: Option<String>,
    /// On update: a new generated secret, shown once.
    #[serde(default)]
    pub rotate_secret: bool,
}

impl std::fmt::Debug for WebhookRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRequest")
            .field("url", &self.url)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// One delivery of an endpoint.
#[derive(Debug, Serialize)]
pub struct DeliveryInfo {
    pub id: String,
    pub webhook_id: String,
    pub event_id: String,
    pub event_type: String,
    /// `pending`, `failed`, `delivered` or `exhausted`.
    pub status: String,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_retry_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<String>,
    pub created_at: String,
}

/// `GET .../webhooks/{webhook_id}/deliveries`: newest first.
#[derive(Debug, Serialize)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryInfo>,
    pub limit: u32,
    pub offset: u32,
    pub has_more: bool,
}

/// `POST .../webhooks/{webhook_id}/test`: a `webhook.test` event queued for this endpoint only.
#[derive(Debug, Serialize)]
pub struct WebhookTestResponse {
    pub enqueued: bool,
    pub delivery_id: String,
}

/// A signing key (its public half's identity; never key material).
#[derive(Debug, Serialize)]
pub struct SigningKeyInfo {
    pub kid: String,
    pub alg: String,
    /// Always `sig` (JWK `use`; HelloJohn's console shows it).
    #[serde(rename = "use")]
    pub key_use: &'static str,
    /// `pending`, `active`, `retiring` or `expired`.
    pub status: String,
    /// `tenant` (the tenant's own keys, issuer mode `path`) or `global`.
    pub owner: String,
    /// The tenant of a tenant's own key; absent for a global key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    pub created_at: String,
    pub activates_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<String>,
}

/// `GET .../keys`.
#[derive(Debug, Serialize)]
pub struct KeyList {
    pub keys: Vec<SigningKeyInfo>,
}

/// `POST .../keys/rotate`.
#[derive(Debug, Default, Deserialize)]
pub struct RotateKeysRequest {
    /// `EdDSA`, `RS256` or `all` (the default).
    pub alg: Option<String>,
    /// `POST /v2/admin/keys/rotate` only (HelloJohn's console): the tenant (id or slug) whose
    /// keys rotate; absent: the global keys.
    pub tenant_id: Option<String>,
    /// Sent by HelloJohn's console and not honoured: a retired key verifies for the longest
    /// token lifetime, which the answer's `grace_seconds` reports.
    pub grace_seconds: Option<i64>,
}

/// One rotation: the new key, when it starts signing, how many keys retire then.
#[derive(Debug, Serialize)]
pub struct Rotated {
    pub kid: String,
    pub alg: String,
    pub activates_at: String,
    pub retired: u64,
}

/// The answer of a rotation: every new key, and HelloJohn's `{kid, grace_seconds, message}`
/// (its console reads them) naming the first.
#[derive(Debug, Serialize)]
pub struct RotateKeysResponse {
    pub kid: String,
    /// How long a retired key still verifies: the longest token lifetime.
    pub grace_seconds: i64,
    pub message: String,
    pub rotated: Vec<Rotated>,
}
