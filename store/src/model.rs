//! Domain records as the store keeps them. Times are Unix seconds, passed in by the caller
//! (the engine reads the clock once at the request boundary), never read from a clock here.

use uuid::Uuid;

use crate::{EventMeta, SigningAlg, StoreError};

/// A tenant: an isolated set of users and clients, addressed by UUID or slug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub created_at: i64,
    /// Whose issuer and keys its tokens carry (`global` unless set: see [`IssuerMode`]).
    pub issuer_mode: crate::IssuerMode,
    /// What the tenant sets differently from the server's defaults.
    pub settings: crate::TenantSettings,
    /// Bumped by every settings change: the admin API's `ETag`.
    pub settings_version: i64,
}

/// An application allowed to sign users in. `client_id` is unique within its tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    /// Where the authorization endpoint may send a code (compared exactly).
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Browser origins (`scheme://host[:port]`) allowed to call the API for this client.
    pub allowed_origins: Vec<String>,
    /// Names of `protocol::GrantType`.
    pub grant_types: Vec<String>,
    pub client_type: ClientType,
    /// SHA-256 of the secret of a confidential client (never the secret).
    pub secret_hash: Option<SecretHash>,
    /// Sign-in through this client needs a verified email.
    pub require_email_verification: bool,
    /// Overrides of the server's token lifetimes, in seconds.
    pub access_token_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
    pub id_token_ttl: Option<i64>,
    /// The algorithm of this client's ID tokens (`None`: RS256) and access tokens (`None`:
    /// EdDSA), when it asks for another.
    pub id_token_alg: Option<SigningAlg>,
    pub access_token_alg: Option<SigningAlg>,
    /// A third party's application: its tokens cannot manage the account, and users consent
    /// to it on the hosted page. `false` (first-party) for every client made before.
    pub third_party: bool,
    pub created_at: i64,
}

/// Whether a client can keep a secret: a server (`Confidential`) or a browser or native app
/// (`Public`, the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientType {
    #[default]
    Public,
    Confidential,
}

impl ClientType {
    /// The stored name: `public` or `confidential`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientType::Public => "public",
            ClientType::Confidential => "confidential",
        }
    }

    pub fn parse(name: &str) -> Option<ClientType> {
        match name {
            "public" => Some(ClientType::Public),
            "confidential" => Some(ClientType::Confidential),
            _ => None,
        }
    }
}

/// The stored hash of a client secret. Its `Debug` shows no part of it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash(String);

impl SecretHash {
    pub fn new(hash: impl Into<String>) -> SecretHash {
        SecretHash(hash.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHash(<redacted>)")
    }
}

/// A client to create. [`NewClient::new`] gives the defaults; set fields on top of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewClient {
    pub tenant_id: Uuid,
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub grant_types: Vec<String>,
    pub client_type: ClientType,
    pub secret_hash: Option<SecretHash>,
    pub require_email_verification: bool,
    pub access_token_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
    pub id_token_ttl: Option<i64>,
    pub id_token_alg: Option<SigningAlg>,
    pub access_token_alg: Option<SigningAlg>,
    pub third_party: bool,
}

impl NewClient {
    /// A public client with scopes `openid email profile`, the authorization-code and
    /// refresh-token grants, no URIs or origins, and the server's token lifetimes.
    pub fn new(tenant_id: Uuid, client_id: impl Into<String>, name: impl Into<String>) -> Self {
        NewClient {
            tenant_id,
            client_id: client_id.into(),
            name: name.into(),
            scopes: ["openid", "email", "profile"].map(String::from).to_vec(),
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            allowed_origins: Vec::new(),
            grant_types: ["authorization_code", "refresh_token"]
                .map(String::from)
                .to_vec(),
            client_type: ClientType::Public,
            secret_hash: None,
            require_email_verification: false,
            access_token_ttl: None,
            refresh_token_ttl: None,
            id_token_ttl: None,
            id_token_alg: None,
            access_token_alg: None,
            third_party: false,
        }
    }
}

/// Changes to a client: `None` leaves a field as it is. For the nullable fields,
/// `Some(None)` clears the value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientChanges {
    pub name: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub allowed_origins: Option<Vec<String>>,
    pub grant_types: Option<Vec<String>>,
    pub client_type: Option<ClientType>,
    pub secret_hash: Option<Option<SecretHash>>,
    pub require_email_verification: Option<bool>,
    pub access_token_ttl: Option<Option<i64>>,
    pub refresh_token_ttl: Option<Option<i64>>,
    pub id_token_ttl: Option<Option<i64>>,
    pub id_token_alg: Option<Option<SigningAlg>>,
    pub access_token_alg: Option<Option<SigningAlg>>,
    pub third_party: Option<bool>,
}

impl ClientChanges {
    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        *self == ClientChanges::default()
    }
}

/// A user. `email` is stored normalised (NFKC, trimmed, lower case), unique per tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
    pub email_verified: bool,
    pub name: Option<String>,
    /// User metadata: what the user wrote about themselves (the sign-up's `custom_fields`), a
    /// JSON object. Shown to the user; never put into tokens, because anyone can write it.
    pub custom_fields: crate::Metadata,
    /// App metadata: set only by an operator, a JSON object. The access token's `custom`
    /// claim carries it.
    pub app_metadata: crate::Metadata,
    pub disabled: bool,
    /// Why an operator disabled the user (the admin API); `None` while enabled, and for a
    /// user disabled without one.
    pub disabled_reason: Option<String>,
    /// A confirmed second factor (TOTP) guards the user's sign-ins.
    pub mfa_enabled: bool,
    pub created_at: i64,
}

/// A user to register. App metadata starts empty: only an operator sets it, later.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUser {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
    pub name: Option<String>,
    /// User metadata (see [`User::custom_fields`]).
    pub custom_fields: crate::Metadata,
}

/// A user with the PHC string of their password identity.
#[derive(Clone, PartialEq)]
pub struct PasswordLogin {
    pub user: User,
    pub password_hash: String,
}

impl std::fmt::Debug for PasswordLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordLogin")
            .field("user", &self.user)
            .field("password_hash", &"<redacted>")
            .finish()
    }
}

/// SHA-256 of a secret token (refresh token, session id). Only hashes are stored.
pub type TokenHash = [u8; 32];

/// A refresh token to store. A new family is started on sign-in; rotation keeps the family.
#[derive(Clone, PartialEq, Eq)]
pub struct NewRefreshToken {
    pub token_hash: TokenHash,
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    /// The `client_id` string of the client the token was issued to.
    pub client_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

impl std::fmt::Debug for NewRefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewRefreshToken")
            .field("token_hash", &"<redacted>")
            .field("family_id", &self.family_id)
            .field("user_id", &self.user_id)
            .field("client_id", &self.client_id)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A stored refresh token, as found by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub client_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// Set once the token has been exchanged for its successor.
    pub rotated_at: Option<i64>,
    /// Set when the family was revoked (logout, logout-all, reuse detection).
    pub family_revoked_at: Option<i64>,
    /// The scopes granted to the family by the code flow; `None` for a password sign-in's
    /// family: the client's scopes at each refresh.
    pub scopes: Option<Vec<String>>,
}

/// What happened to a refresh-token rotation attempt. Denials are outcomes, not errors.
#[derive(Debug, Clone, PartialEq)]
pub enum RotateOutcome {
    /// The old token was valid and unused; the new one is stored in the same family.
    Rotated {
        user: User,
        family_id: Uuid,
        /// The family's granted scopes (see [`RefreshToken::scopes`]).
        scopes: Option<Vec<String>>,
    },
    /// No such token (or it belongs to another client).
    NotFound,
    /// The token is past its expiry.
    Expired,
    /// The family was already revoked.
    Revoked,
    /// The token had already been rotated: the whole family is now revoked.
    Reused { family_id: Uuid, user_id: Uuid },
}

/// A browser session, found by the SHA-256 of its cookie value.
#[derive(Clone, PartialEq, Eq)]
pub struct NewSession {
    pub id_hash: TokenHash,
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub client_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// How the user signed in (RFC 8176 values, e.g. `pwd`, `otp`, `mfa`).
    pub amr: Vec<String>,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("id_hash", &"<redacted>")
            .field("user_id", &self.user_id)
            .field("client_id", &self.client_id)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub user: User,
    pub client_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// How the user signed in; `["pwd"]` for sessions stored by older releases.
    pub amr: Vec<String>,
}

/// The scopes a user granted a third-party client (on the hosted page's consent screen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub client_id: String,
    /// Sorted, without duplicates.
    pub scopes: Vec<String>,
    pub granted_at: i64,
}

/// The stored form of an `amr` list: its values, space separated.
pub fn amr_column(amr: &[String]) -> String {
    amr.join(" ")
}

/// An `amr` list as stored: `None` (a row of an older release) or empty reads as `["pwd"]`,
/// the only sign-in those releases made.
pub fn amr_from_column(stored: Option<&str>) -> Vec<String> {
    let amr: Vec<String> = stored
        .unwrap_or("")
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    if amr.is_empty() {
        vec!["pwd".to_string()]
    } else {
        amr
    }
}

/// A token-signing key (Ed25519 or RSA, see [`crate::SigningAlg`]). The private half is encrypted by
/// the engine under the master key; the store only keeps the ciphertext.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub kid: String,
    pub alg: crate::SigningAlg,
    /// Ed25519: the 32-byte key. RSA: the PKCS#1 `RSAPublicKey` DER.
    pub public_key: Vec<u8>,
    pub private_key_encrypted: Vec<u8>,
    pub created_at: i64,
    /// When it may start signing (a rotation publishes a key before it signs). Rows written
    /// before migration 7 (and by older releases) read as their `created_at`.
    pub activates_at: i64,
    /// When it stops signing (set by a rotation, possibly in the future). It still verifies,
    /// and stays in the JWKS, for the lifetime of the tokens it signed.
    pub retired_at: Option<i64>,
    /// `None`: a global key (the server's issuer). `Some`: the own key of a tenant in
    /// [`crate::IssuerMode::Path`] (migration 13; rows from before it are global).
    pub tenant_id: Option<Uuid>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private_key_encrypted", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .field("retired_at", &self.retired_at)
            .field("tenant_id", &self.tenant_id)
            .finish()
    }
}

/// Connection-pool gauges (`hellojohn_db_pool_connections{state}`), summed over every pool of
/// the store. A store without connections (the embedded one) reports zeros.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Open connections waiting in a pool.
    pub idle: u64,
    /// Connections lent to a caller (or being opened for one).
    pub in_use: u64,
    /// The most connections the store may open.
    pub max: u64,
    /// Store calls made since start (each takes one connection for its round trips).
    pub calls: u64,
    /// Calls that had to wait for a connection (every one in use), and their total wait, in
    /// microseconds: where a closed loop queues when the pool is the bottleneck.
    pub waits: u64,
    pub wait_us: u64,
    /// Calls by store method, for the methods called at least once (`find_session`,
    /// `get_user`, ...): what a request path really costs the database.
    pub by_method: Vec<(&'static str, u64)>,
}

/// Schema state reported by `hj migrate status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Versions applied to the database, ascending.
    pub applied: Vec<i64>,
    /// Versions this binary knows, ascending.
    pub known: Vec<i64>,
}

impl MigrationStatus {
    pub fn pending(&self) -> Vec<i64> {
        self.known
            .iter()
            .copied()
            .filter(|v| !self.applied.contains(v))
            .collect()
    }
    /// Versions in the database that this binary does not know (a newer binary migrated it).
    pub fn unknown(&self) -> Vec<i64> {
        self.applied
            .iter()
            .copied()
            .filter(|v| !self.known.contains(v))
            .collect()
    }
}

// ----- Webhooks ---------------------------------------------------------------------------------

/// An event as the engine describes it when it asks for a change. The store completes what the
/// engine could not know (a sign-out knows only the refresh token: the store fills in its user
/// and tenant) and writes it in the same transaction as the change, together with one delivery
/// per subscribed endpoint (the transactional outbox). An event exists iff its change committed.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDraft {
    /// UUIDv7 (its timestamp also measures delivery latency).
    pub id: Uuid,
    /// `user.register`, `user.login`, ...
    pub event_type: String,
    pub tenant_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub actor_type: Option<String>,
    pub target_id: Option<Uuid>,
    pub target_type: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// Written as a JSON object.
    pub metadata: EventMeta,
    /// `success` or `failure`.
    pub result: String,
    pub created_at: i64,
}

impl EventDraft {
    /// The event with nothing left to complete. `Internal` when the tenant is unknown.
    pub fn into_event(self) -> Result<Event, StoreError> {
        let tenant_id = self.tenant_id.ok_or_else(|| {
            StoreError::Internal(format!("event {} has no tenant", self.event_type))
        })?;
        Ok(Event {
            id: self.id,
            tenant_id,
            event_type: self.event_type,
            actor_id: self.actor_id,
            actor_type: self.actor_type,
            target_id: self.target_id,
            target_type: self.target_type,
            ip_address: self.ip_address,
            user_agent: self.user_agent,
            metadata: crate::Metadata::from_json(self.metadata.to_json()),
            result: self.result,
            created_at: self.created_at,
        })
    }

    /// Completes an event about a refresh family (sign-out, reuse detection) from the token's
    /// record: tenant, actor and target default to the token's tenant and user, and the
    /// metadata gains `family_id` and `client_id` unless already set.
    pub fn for_token(mut self, token: &RefreshToken) -> Result<Event, StoreError> {
        self.tenant_id.get_or_insert(token.tenant_id);
        if self.actor_id.is_none() {
            self.actor_id = Some(token.user_id);
            self.actor_type.get_or_insert_with(|| "user".to_string());
        }
        if self.target_id.is_none() {
            self.target_id = Some(token.user_id);
            self.target_type.get_or_insert_with(|| "user".to_string());
        }
        self.metadata
            .insert_default("family_id", || token.family_id.to_string().into());
        self.metadata
            .insert_default("client_id", || token.client_id.clone().into());
        self.into_event()
    }

    /// The draft of a "sign out everywhere", with the number of families and sessions revoked.
    pub fn with_revoked(mut self, revoked: u64) -> EventDraft {
        self.metadata.insert("revoked", revoked);
        self
    }

    /// Completes an event about a cookie session from its user.
    pub fn for_user(mut self, tenant_id: Uuid, user_id: Uuid) -> Result<Event, StoreError> {
        self.tenant_id.get_or_insert(tenant_id);
        if self.actor_id.is_none() {
            self.actor_id = Some(user_id);
            self.actor_type.get_or_insert_with(|| "user".to_string());
        }
        if self.target_id.is_none() {
            self.target_id = Some(user_id);
            self.target_type.get_or_insert_with(|| "user".to_string());
        }
        self.into_event()
    }
}

/// A cached session lookup.
#[derive(Debug, Clone, PartialEq)]
pub enum CachedSession {
    /// The session as the database had it (never revoked when cached). Boxed: a session with
    /// its user is a few hundred bytes, and the other variant carries nothing.
    Live(Box<Session>),
    /// Signed out: answer "expired" without asking the database.
    Revoked,
}

/// A stored event (the outbox row).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub event_type: String,
    pub actor_id: Option<Uuid>,
    pub actor_type: Option<String>,
    pub target_id: Option<Uuid>,
    pub target_type: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub metadata: crate::Metadata,
    pub result: String,
    pub created_at: i64,
}

/// A webhook endpoint to create. The engine encrypts the secret under the master key with the
/// endpoint id as associated data, so it chooses the id.
#[derive(Clone, PartialEq, Eq)]
pub struct NewWebhookEndpoint {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub url: String,
    /// Event types delivered to it (`*` for all).
    pub events: Vec<String>,
    pub secret_encrypted: Vec<u8>,
}

impl std::fmt::Debug for NewWebhookEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewWebhookEndpoint")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("secret_encrypted", &"<redacted>")
            .finish()
    }
}

/// Changes to a webhook endpoint: `None` leaves a field as it is.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct WebhookChanges {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    /// A new secret, sealed like [`NewWebhookEndpoint::secret_encrypted`].
    pub secret_encrypted: Option<Vec<u8>>,
}

impl std::fmt::Debug for WebhookChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookChanges")
            .field("url", &self.url)
            .field("events", &self.events)
            .field(
                "secret_encrypted",
                &self.secret_encrypted.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A tenant's webhook endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub secret_encrypted: Vec<u8>,
    pub created_at: i64,
}

impl std::fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("secret_encrypted", &"<redacted>")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Not attempted yet.
    Pending,
    /// The last attempt failed; another is scheduled.
    Failed,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt failed; no more are scheduled (`hj webhook redeliver` requeues it).
    Exhausted,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 4] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Failed,
        DeliveryStatus::Delivered,
        DeliveryStatus::Exhausted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Exhausted => "exhausted",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        DeliveryStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event for one endpoint. Its id is the delivery id sent with every attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub endpoint_id: Uuid,
    pub tenant_id: Uuid,
    pub url: String,
    pub status: DeliveryStatus,
    /// Attempts made since it was (re)queued.
    pub attempts: u32,
    /// Times it was requeued by hand (`hj webhook redeliver`).
    pub generation: u32,
    /// When it is next due (Unix milliseconds); meaningless once delivered or exhausted.
    pub next_attempt_at_ms: i64,
    /// Set while an instance holds it (Unix milliseconds).
    pub leased_until_ms: Option<i64>,
    pub last_attempt_at_ms: Option<i64>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub delivered_at_ms: Option<i64>,
    pub created_at: i64,
}

/// Which deliveries `list_webhook_deliveries` returns, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    pub tenant_id: Option<Uuid>,
    /// Only this endpoint's deliveries.
    pub endpoint_id: Option<Uuid>,
    pub limit: u32,
}
