//! The key ring: every key still in its verification window, the one that signs chosen by the
//! time of signing, swapped whole when reloaded from the store.
//!
//! A ring holds the global keys and, for each tenant in [`IssuerMode::Path`], that tenant's
//! own keys. A token is signed by the keys of its tenant (`tid`): the tenant's own when it is
//! in path mode, else the global ones; and a token verifies only when its `iss` is the issuer
//! of the keys that signed it (the server's for the global keys, `{base}/t/{slug}` for a
//! tenant's) and its `tid` belongs to them (that tenant, or a tenant not in path mode).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use protocol::token::{is_access_token_typ, AccessClaims, Jwks, JwtHeader};
use serde::de::DeserializeOwned;
use serde::Serialize;
use store::{IssuerMode, SigningAlg, Store, Tenant};
use uuid::Uuid;

use super::material::{new_key, PrivateKey, PublicKey};
use super::{IdTokenAlg, KeyError, MasterKey};
use crate::tokens::{self, TokenError};

/// One key as the ring uses it.
struct Entry {
    kid: String,
    alg: SigningAlg,
    created_at: i64,
    activates_at: i64,
    retired_at: Option<i64>,
    /// The end of its verification window (`retired_at` + the longest token lifetime).
    until: Option<i64>,
    public: PublicKey,
    /// Shared with the ring this one replaced, so a reload decrypts only new keys.
    private: Option<Arc<PrivateKey>>,
    /// The stored ciphertext, to tell whether a reloaded record is the same key.
    sealed: Vec<u8>,
}

impl Entry {
    fn signs_at(&self, t: i64) -> bool {
        self.activates_at <= t && self.retired_at.is_none_or(|r| t < r)
    }

    fn verifies_at(&self, t: i64) -> bool {
        self.until.is_none_or(|u| t < u)
    }
}

/// The keys of one owner: the global keys or one tenant's.
struct KeySet {
    /// Every published key: EdDSA keys, then RS256 keys; newest (by `activates_at`) first.
    entries: Vec<Entry>,
    jwks: Jwks,
}

/// The own keys of a tenant in path mode.
struct TenantKeys {
    slug: String,
    set: KeySet,
}

mod admin;

/// Who a key signs for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Owner {
    Global,
    Tenant(Uuid),
}

/// One immutable generation of the ring.
struct Keys {
    global: KeySet,
    /// The tenants in path mode, with their keys.
    tenants: HashMap<Uuid, TenantKeys>,
    /// Whose key each tenant key (by kid) is: a token names its key, and verification finds
    /// it without a scan of every tenant's keys.
    owners: HashMap<String, Uuid>,
    /// The `now` it was built for.
    loaded_at: i64,
}

/// The issuer of a tenant in path mode: `{base}/t/{slug}`.
pub fn tenant_issuer(base: &str, slug: &str) -> String {
    format!("{}/t/{slug}", base.trim_end_matches('/'))
}

/// Whether `iss` is [`tenant_issuer`]`(base, slug)`, without building it.
fn is_tenant_issuer(iss: &str, base: &str, slug: &str) -> bool {
    iss.strip_prefix(base.trim_end_matches('/'))
        .and_then(|rest| rest.strip_prefix("/t/"))
        == Some(slug)
}

impl Keys {
    /// The ring of `records` (global and tenants' keys) for the tenants in path mode among
    /// `tenants`. Keys of other tenants are left out: a tenant that leaves path mode stops
    /// signing and verifying with its own keys at once.
    fn build(
        records: &[store::SigningKey],
        tenants: &[Tenant],
        master: &MasterKey,
        now: i64,
        lifetime: i64,
        previous: Option<&Keys>,
    ) -> Result<Keys, KeyError> {
        let global = records.iter().filter(|r| r.tenant_id.is_none());
        let global = KeySet::build(global, master, now, lifetime, previous)?;
        let mut path = HashMap::new();
        let mut owners = HashMap::new();
        for tenant in tenants.iter().filter(|t| t.issuer_mode == IssuerMode::Path) {
            let own = records.iter().filter(|r| r.tenant_id == Some(tenant.id));
            let set = KeySet::build(own, master, now, lifetime, previous).map_err(|e| match e {
                KeyError::NoActiveKey(alg) => KeyError::NoTenantKey(tenant.slug.clone(), alg),
                e => e,
            })?;
            owners.extend(set.entries.iter().map(|e| (e.kid.clone(), tenant.id)));
            let slug = tenant.slug.clone();
            path.insert(tenant.id, TenantKeys { slug, set });
        }
        Ok(Keys {
            global,
            tenants: path,
            owners,
            loaded_at: now,
        })
    }

    /// The keys that sign for the tenant `tid` (a UUID as text): its own in path mode, else
    /// the global ones.
    fn signing_set(&self, tid: Option<&str>) -> &KeySet {
        tid.and_then(|t| Uuid::parse_str(t).ok())
            .and_then(|t| self.tenants.get(&t))
            .map_or(&self.global, |t| &t.set)
    }

    /// The key named `kid`, wherever it is, and who it signs for.
    fn entry(&self, kid: &str) -> Option<(Owner, &Entry)> {
        if let Some(e) = self.global.entry(kid) {
            return Some((Owner::Global, e));
        }
        let id = self.owners.get(kid)?;
        let e = self.tenants.get(id)?.set.entry(kid)?;
        Some((Owner::Tenant(*id), e))
    }

    /// A token signed by a key of `owner` must carry that owner's issuer, and be of a tenant
    /// of it: the tenant itself, or (global keys) a tenant not in path mode.
    fn check_owner(
        &self,
        owner: Owner,
        base: &str,
        iss: &str,
        tid: &str,
    ) -> Result<(), TokenError> {
        let tenant = Uuid::parse_str(tid).ok();
        let ok = match owner {
            Owner::Global => iss == base && !tenant.is_some_and(|t| self.tenants.contains_key(&t)),
            Owner::Tenant(id) => {
                tenant == Some(id)
                    && self
                        .tenants
                        .get(&id)
                        .is_some_and(|t| is_tenant_issuer(iss, base, &t.slug))
            }
        };
        if ok {
            Ok(())
        } else {
            Err(TokenError::WrongIssuer)
        }
    }

    /// Verifies the signature of `token` with the key its `kid` names (see
    /// [`KeySet::verify_signature`]), and says who that key signs for.
    fn verify_signature<'t>(
        &self,
        token: &'t str,
        now: i64,
    ) -> Result<(tokens::Jws<'t>, Owner), TokenError> {
        let jws = tokens::split(token)?;
        let alg = SigningAlg::parse(&jws.header.alg).ok_or(TokenError::UnsupportedAlgorithm)?;
        let (owner, entry) = self.entry(&jws.header.kid).ok_or(TokenError::UnknownKey)?;
        KeySet::verify_with(entry, alg, &jws, now)?;
        Ok((jws, owner))
    }
}

impl KeySet {
    fn build<'r>(
        records: impl Iterator<Item = &'r store::SigningKey>,
        master: &MasterKey,
        now: i64,
        lifetime: i64,
        previous: Option<&Keys>,
    ) -> Result<KeySet, KeyError> {
        let mut entries = Vec::new();
        for record in records {
            let until = record.retired_at.map(|r| r.saturating_add(lifetime));
            if until.is_some_and(|u| u <= now) {
                continue; // Expired: every token it signed has expired too.
            }
            let public = match PublicKey::parse(record) {
                Ok(public) => public,
                // An unusable key must not stop the server; tokens it signed fail instead.
                Err(e) => {
                    tracing::warn!(error = %e, "skipping an unusable signing key");
                    continue;
                }
            };
            let reused = previous.and_then(|p| {
                p.entry(&record.kid)
                    .filter(|(_, e)| e.sealed == record.private_key_encrypted)
                    .and_then(|(_, e)| e.private.clone())
            });
            let private = match reused {
                Some(private) => Some(private),
                None => match PrivateKey::decrypt(record, master) {
                    Ok(private) => Some(Arc::new(private)),
                    // A key that may still sign must decrypt: a wrong master key is an error.
                    Err(e) if record.retired_at.is_none_or(|r| r > now) => return Err(e),
                    Err(e) => {
                        tracing::warn!(error = %e, "a retiring signing key only verifies");
                        None
                    }
                },
            };
            entries.push(Entry {
                kid: record.kid.clone(),
                alg: record.alg,
                created_at: record.created_at,
                activates_at: record.activates_at,
                retired_at: record.retired_at,
                until,
                public,
                private,
                sealed: record.private_key_encrypted.clone(),
            });
        }
        entries.sort_by(|a, b| {
            (a.alg, b.activates_at, b.created_at, &b.kid).cmp(&(
                b.alg,
                a.activates_at,
                a.created_at,
                &a.kid,
            ))
        });
        for alg in SigningAlg::ALL {
            if !entries.iter().any(|e| e.alg == alg && e.private.is_some()) {
                return Err(KeyError::NoActiveKey(alg));
            }
        }
        let jwks = Jwks {
            keys: entries.iter().map(|e| e.public.jwk(&e.kid)).collect(),
        };
        Ok(KeySet { entries, jwks })
    }

    fn entry(&self, kid: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.kid == kid)
    }

    /// The key of `alg` that signs at `t`: the newest active one. When none is active at `t`
    /// (a clock read just before a reload, or a store edited by hand), the newest that has
    /// activated, else the one that activates first: a token is always signed by a published
    /// key.
    fn signer(&self, alg: SigningAlg, t: i64) -> (&Entry, &PrivateKey) {
        let mut signers = self
            .entries
            .iter()
            .filter(|e| e.alg == alg)
            .filter_map(|e| e.private.as_deref().map(|p| (e, p)));
        if let Some(found) = signers.clone().find(|(e, _)| e.signs_at(t)) {
            return found;
        }
        if let Some(found) = signers.clone().find(|(e, _)| e.activates_at <= t) {
            return found;
        }
        match signers.next_back() {
            Some(found) => found,
            None => unreachable!("Keys::build refuses a ring without a signer of each alg"),
        }
    }

    /// Signs `claims` with the key of `alg` active at `t`: an access token (`typ: at+jwt`) or
    /// an ID token (`typ: JWT`).
    fn sign(&self, alg: SigningAlg, access: bool, claims: &[u8], t: i64) -> String {
        let (entry, key) = self.signer(alg, t);
        let header = if access {
            JwtHeader::access(alg.as_str(), &entry.kid)
        } else {
            JwtHeader::new(alg.as_str(), &entry.kid)
        };
        tokens::compact(&header, claims, |m| key.sign(m))
    }

    /// The header's `alg` (`alg`, one the ring knows) must be the algorithm of `entry`, the
    /// key its `kid` names: a token never picks the algorithm its key is used with.
    fn verify_with(
        entry: &Entry,
        alg: SigningAlg,
        jws: &tokens::Jws<'_>,
        now: i64,
    ) -> Result<(), TokenError> {
        if entry.alg != alg {
            return Err(TokenError::UnsupportedAlgorithm);
        }
        if !entry.verifies_at(now) {
            return Err(TokenError::UnknownKey);
        }
        if !entry
            .public
            .verify(jws.signing_input.as_bytes(), &jws.signature()?)
        {
            return Err(TokenError::BadSignature);
        }
        Ok(())
    }
}

/// The signing keys, shared by all shards. Reads are lock-free: a reload builds a new
/// generation and swaps it in whole, so a request sees one generation throughout.
pub struct KeyRing {
    keys: ArcSwap<Keys>,
    master: MasterKey,
    /// The longest lifetime of a token a key may sign, in seconds: how long a key is still
    /// published and accepted after it retires.
    lifetime: i64,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.keys.load();
        let kids = |set: &KeySet| {
            set.entries
                .iter()
                .map(|e| format!("{} {}", e.alg, e.kid))
                .collect::<Vec<_>>()
        };
        f.debug_struct("KeyRing")
            .field("keys", &kids(&keys.global))
            .field(
                "tenants",
                &keys
                    .tenants
                    .values()
                    .map(|t| (t.slug.as_str(), kids(&t.set)))
                    .collect::<Vec<_>>(),
            )
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// [`new_key`] off the async runtime (RSA generation takes a while), for `owner` (`None`:
/// the global keys).
async fn generate(
    master: &MasterKey,
    alg: SigningAlg,
    owner: Option<Uuid>,
    now: i64,
) -> Result<store::SigningKey, KeyError> {
    let master = master.clone();
    let mut record = tokio::task::spawn_blocking(move || new_key(&master, alg, now))
        .await
        .map_err(|e| KeyError::Generate(e.to_string()))??;
    record.tenant_id = owner;
    Ok(record)
}

/// Creates a key of each algorithm that `owner` (`None`: the global keys, else a tenant's)
/// has none of (no key that is not retired), given the stored `records`. Several instances
/// may do it at once: the store keeps exactly one new key per algorithm and owner. Returns
/// whether any key was created.
async fn create_missing(
    store: &dyn Store,
    master: &MasterKey,
    owner: Option<Uuid>,
    records: &[store::SigningKey],
    now: i64,
) -> Result<bool, KeyError> {
    let mut created = false;
    for alg in SigningAlg::ALL {
        if records
            .iter()
            .any(|k| k.alg == alg && k.tenant_id == owner && k.retired_at.is_none())
        {
            continue;
        }
        let record = generate(master, alg, owner, now).await?;
        let kid = record.kid.clone();
        let active = store.insert_signing_key_if_none(record).await?;
        if active.iter().any(|k| k.kid == kid) {
            match owner {
                None => tracing::info!(kid, alg = alg.as_str(), "created the first signing key"),
                Some(tenant) => tracing::info!(
                    kid,
                    alg = alg.as_str(),
                    %tenant,
                    "created the tenant's first signing key"
                ),
            }
        }
        created = true;
    }
    Ok(created)
}

/// Gives a tenant its own signing keys (one per algorithm) unless it has them: what a tenant
/// needs before it enters [`IssuerMode::Path`]. Safe to call again.
pub async fn create_tenant_keys(
    store: &dyn Store,
    master: &MasterKey,
    tenant_id: Uuid,
    now: i64,
) -> Result<(), KeyError> {
    let records = store.list_signing_keys().await?;
    create_missing(store, master, Some(tenant_id), &records, now).await?;
    Ok(())
}

/// The stored keys and tenants, after creating the keys that the global set or a tenant in
/// path mode lacks (a first start, or a tenant switched to path mode without its keys).
async fn stored(
    store: &dyn Store,
    master: &MasterKey,
    now: i64,
) -> Result<(Vec<store::SigningKey>, Vec<Tenant>), KeyError> {
    let tenants = store.list_tenants().await?;
    let mut records = store.list_signing_keys().await?;
    let path = tenants
        .iter()
        .filter(|t| t.issuer_mode == IssuerMode::Path)
        .map(|t| Some(t.id));
    let mut created = false;
    for owner in std::iter::once(None).chain(path) {
        created |= create_missing(store, master, owner, &records, now).await?;
    }
    if created {
        // Read again for whichever keys won, with the retired keys that still verify.
        records = store.list_signing_keys().await?;
    }
    Ok((records, tenants))
}

impl KeyRing {
    /// Loads the keys from the store, first creating a key of each algorithm that has none
    /// (no key that is not retired), globally and for every tenant in path mode. Several
    /// instances may start at once: the store keeps exactly one of their new keys per
    /// algorithm and owner, and every instance uses that one.
    ///
    /// `token_lifetime` is the longest lifetime of a token a key may sign (access and ID
    /// tokens): how long a retired key is still published and accepted.
    pub async fn load_or_create(
        store: &dyn Store,
        master: &MasterKey,
        now: i64,
        token_lifetime: Duration,
    ) -> Result<KeyRing, KeyError> {
        let (records, tenants) = stored(store, master, now).await?;
        KeyRing::from_records_and_tenants(&records, &tenants, master, now, token_lifetime)
    }

    /// Builds the ring from stored global keys as of `now`, with no tenant in path mode.
    /// Keys past their verification window are left out; each algorithm needs a key that can
    /// sign.
    pub fn from_records(
        records: &[store::SigningKey],
        master: &MasterKey,
        now: i64,
        token_lifetime: Duration,
    ) -> Result<KeyRing, KeyError> {
        KeyRing::from_records_and_tenants(records, &[], master, now, token_lifetime)
    }

    /// Builds the ring from stored keys as of `now`, for `tenants` (those in path mode sign
    /// with their own keys, which must include a key of each algorithm that can sign).
    pub fn from_records_and_tenants(
        records: &[store::SigningKey],
        tenants: &[Tenant],
        master: &MasterKey,
        now: i64,
        token_lifetime: Duration,
    ) -> Result<KeyRing, KeyError> {
        let lifetime = secs(token_lifetime);
        let keys = Keys::build(records, tenants, master, now, lifetime, None)?;
        Ok(KeyRing {
            keys: ArcSwap::from_pointee(keys),
            master: master.clone(),
            lifetime,
        })
    }

    /// Reads the keys and the tenants' issuer modes again (rotations made elsewhere, keys
    /// that expired, tenants switched to or from path mode: those entering it get their keys
    /// here when they have none) and swaps the new generation in. On error the ring keeps the
    /// keys it has. Only new keys are decrypted.
    pub async fn reload(&self, store: &dyn Store, now: i64) -> Result<(), KeyError> {
        let (records, tenants) = stored(store, &self.master, now).await?;
        let previous = self.keys.load_full();
        let keys = Keys::build(
            &records,
            &tenants,
            &self.master,
            now,
            self.lifetime,
            Some(&previous),
        )?;
        self.keys.store(Arc::new(keys));
        Ok(())
    }

    /// The kid of the global key of `alg` that signs at `now`.
    pub fn active_kid(&self, alg: SigningAlg, now: i64) -> String {
        self.keys.load().global.signer(alg, now).0.kid.clone()
    }

    /// The global keys, for `/.well-known/jwks.json` (and the JWKS of every tenant not in
    /// path mode): every key from its creation until the tokens it may have signed have
    /// expired.
    pub fn jwks(&self) -> Jwks {
        self.keys.load().global.jwks.clone()
    }

    /// The own keys of a tenant in path mode (`None` for any other tenant, whose tokens the
    /// global keys sign).
    pub fn tenant_jwks(&self, tenant_id: Uuid) -> Option<Jwks> {
        self.keys
            .load()
            .tenants
            .get(&tenant_id)
            .map(|t| t.set.jwks.clone())
    }

    /// Whether the tenant is in path mode (as of the last reload): its tokens carry its own
    /// issuer and are signed by its own keys.
    pub fn is_path_tenant(&self, tenant_id: Uuid) -> bool {
        self.keys.load().tenants.contains_key(&tenant_id)
    }

    /// The issuer of the tenant's tokens: `{base}/t/{slug}` in path mode, else `base`, the
    /// server's.
    pub fn issuer(&self, base: &str, tenant_id: Uuid) -> String {
        match self.keys.load().tenants.get(&tenant_id) {
            Some(t) => tenant_issuer(base, &t.slug),
            None => base.to_string(),
        }
    }

    /// Whether a token of tenant `tid` that carries `iss` (verified earlier, say by a
    /// cache) still has its tenant's issuer: false once the tenant's mode has changed.
    pub fn issuer_holds(&self, base: &str, iss: &str, tid: &str) -> bool {
        let keys = self.keys.load();
        match Uuid::parse_str(tid).ok().and_then(|t| keys.tenants.get(&t)) {
            Some(t) => is_tenant_issuer(iss, base, &t.slug),
            None => iss == base,
        }
    }

    /// Signs an access token (`typ: at+jwt`) with the EdDSA key of its tenant (`tid`) active
    /// at its `iat`.
    pub fn sign(&self, claims: &AccessClaims) -> String {
        self.sign_access_with(SigningAlg::EdDsa, claims)
    }

    /// Signs an access token (`typ: at+jwt`) with the key of `alg` of its tenant (`tid`)
    /// active at its `iat`.
    pub fn sign_access_with(&self, alg: SigningAlg, claims: &AccessClaims) -> String {
        let claims_json = protocol::json::to_vec(claims);
        self.keys
            .load()
            .signing_set(Some(&claims.tid))
            .sign(alg, true, &claims_json, claims.iat)
    }

    /// Signs an ID token with RS256 ([`super::DEFAULT_ID_TOKEN_ALG`]): the RSA key active at
    /// the claims' `iat`. `claims` is any type that serialises to a JSON object.
    pub fn sign_id_token<T: Serialize>(&self, claims: &T) -> String {
        self.sign_id_token_with(super::DEFAULT_ID_TOKEN_ALG, claims)
    }

    /// Signs an ID token (`typ: JWT`) with `alg` (EdDSA for a client that asked for it): the
    /// key of `alg` of the claims' tenant (`tid`; none: the global keys) active at the claims'
    /// `iat` (claims without an integer `iat`: at the last reload).
    pub fn sign_id_token_with<T: Serialize>(&self, alg: IdTokenAlg, claims: &T) -> String {
        #[derive(serde::Deserialize)]
        struct Issued {
            iat: Option<i64>,
            tid: Option<String>,
        }
        let claims_json = protocol::json::to_vec(claims);
        let keys = self.keys.load();
        let issued = protocol::json::from_slice::<Issued>(&claims_json);
        let (iat, tid) = issued.map_or((None, None), |c| (c.iat, c.tid));
        keys.signing_set(tid.as_deref()).sign(
            alg,
            false,
            &claims_json,
            iat.unwrap_or(keys.loaded_at),
        )
    }

    /// Verifies an access token signed by any published key of either algorithm: the
    /// signature, `typ: at+jwt` (an ID token is not a Bearer token), `exp` and `nbf`, then
    /// that the token is of the keys that signed it: `iss` is `issuer` (the server's) and
    /// `tid` a tenant not in path mode for a global key, `iss` is `{issuer}/t/{slug}` and
    /// `tid` that tenant for a tenant's own key.
    pub fn verify(&self, token: &str, now: i64, issuer: &str) -> Result<AccessClaims, TokenError> {
        let keys = self.keys.load();
        let (jws, owner) = keys.verify_signature(token, now)?;
        if tokens::check_access_typ(&jws.header).is_err() && !legacy_access_token(&jws)? {
            note_unknown_typ(&jws.header.typ);
            return Err(TokenError::WrongType);
        }
        let claims: AccessClaims = jws.claims()?;
        tokens::check_access_times(&claims, now)?;
        keys.check_owner(owner, issuer, &claims.iss, &claims.tid)?;
        Ok(claims)
    }

    /// Verifies the signature of a token signed by any published key and returns its claims,
    /// unchecked otherwise: the caller checks what its use needs (`iss`, `aud`, times).
    pub fn verify_signed<T: DeserializeOwned>(
        &self,
        token: &str,
        now: i64,
    ) -> Result<T, TokenError> {
        self.keys.load().verify_signature(token, now)?.0.claims()
    }

    /// The user (`sub`) and client (`aud`) of an ID token this deployment signed for
    /// `issuer` (the server's, or the tenant's own in path mode, as [`KeyRing::verify`]
    /// checks it), expired or not (OpenID Connect Core 3.1.2.1 and RP-Initiated Logout 1.0 let
    /// an expired one serve as `id_token_hint`), as long as its key is still published; `None`
    /// otherwise, and for an access token (`typ: at+jwt`).
    pub fn verify_id_token_hint(&self, token: &str, issuer: &str) -> Option<IdTokenHint> {
        #[derive(serde::Deserialize)]
        struct Hint {
            iss: String,
            sub: String,
            aud: String,
            #[serde(default)]
            tid: String,
        }
        let keys = self.keys.load();
        let (jws, owner) = keys.verify_signature(token, keys.loaded_at).ok()?;
        if is_access_token_typ(&jws.header.typ) {
            return None;
        }
        let hint: Hint = jws.claims().ok()?;
        keys.check_owner(owner, issuer, &hint.iss, &hint.tid).ok()?;
        Some(IdTokenHint {
            sub: hint.sub,
            aud: hint.aud,
        })
    }
}

/// Who an `id_token_hint` names: see [`KeyRing::verify_id_token_hint`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenHint {
    pub sub: String,
    /// The client the ID token was issued to.
    pub aud: String,
}

/// What [`rotate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub kid: String,
    pub alg: SigningAlg,
    /// When the new key starts signing (and the one it replaces stops).
    pub activates_at: i64,
    /// How many keys were given that retirement (1 normally; 0 on a store without a key of
    /// `alg`; more when an earlier rotation is still pending).
    pub retired: u64,
}

/// Rotates the global keys of `alg`: see [`rotate_for`].
pub async fn rotate(
    store: &dyn Store,
    master: &MasterKey,
    alg: SigningAlg,
    now: i64,
    publish_delay: Duration,
) -> Result<Rotation, KeyError> {
    rotate_for(store, master, None, alg, now, publish_delay, None).await
}

/// Rotates the keys of `alg` of `owner` (`None`: the global keys, else a tenant's own): a
/// new key, published at once and signing `publish_delay` after `now`, when the key signing
/// now retires. With no key of `alg` signing now (a fresh store) the new key signs at once.
/// Safe on a running deployment: instances reload the ring and switch keys at
/// `activates_at` (see the module documentation).
pub async fn rotate_for(
    store: &dyn Store,
    master: &MasterKey,
    owner: Option<Uuid>,
    alg: SigningAlg,
    now: i64,
    publish_delay: Duration,
    audit: Option<store::AuditEntry>,
) -> Result<Rotation, KeyError> {
    let records = store.list_signing_keys().await?;
    let signing_now = records.iter().any(|k| {
        k.alg == alg
            && k.tenant_id == owner
            && k.activates_at <= now
            && k.retired_at.is_none_or(|r| now < r)
    });
    let mut record = generate(master, alg, owner, now).await?;
    if signing_now {
        record.activates_at = now.saturating_add(secs(publish_delay));
    }
    let rotation = Rotation {
        kid: record.kid.clone(),
        alg,
        activates_at: record.activates_at,
        retired: 0,
    };
    let audit = audit.map(|mut a| {
        a.metadata.insert("kid", rotation.kid.as_str());
        a.metadata.insert("alg", alg.as_str());
        a
    });
    let retired = store.rotate_signing_key(record, audit).await?;
    tracing::info!(
        kid = rotation.kid,
        alg = alg.as_str(),
        tenant = ?owner,
        activates_at = rotation.activates_at,
        retired,
        "rotated the signing key"
    );
    Ok(Rotation {
        retired,
        ..rotation
    })
}

/// Counts a token type this release does not know (neither `at+jwt` nor `JWT`) on a token
/// whose signature verified: a newer release's kind of token, refused as invalid like any
/// token of the wrong type (see `store::tolerance`). Only verified tokens are counted, so a
/// client cannot fill the log with made-up types.
fn note_unknown_typ(typ: &str) {
    if !is_access_token_typ(typ) && !typ.eq_ignore_ascii_case(protocol::token::TYP_JWT) {
        store::tolerance::unknown("token_typ", typ);
    }
}

/// An access token of the release before RFC 9068 types (`typ: JWT`), still accepted so that a
/// rolling upgrade or a rollback does not sign anybody out: it never carries `azp`, which every
/// ID token of ours does (OpenID Connect Core 2), so an ID token is still refused as a Bearer
/// token. To be removed once no release that signs `typ: JWT` access tokens is supported (see
/// docs/security.md, token types).
fn legacy_access_token(jws: &tokens::Jws<'_>) -> Result<bool, TokenError> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default)]
        azp: Option<serde::de::IgnoredAny>,
    }
    if !jws
        .header
        .typ
        .eq_ignore_ascii_case(protocol::token::TYP_JWT)
    {
        return Ok(false);
    }
    Ok(jws.claims::<Probe>()?.azp.is_none())
}
