//! The key ring: every key still in its verification window, the one that signs chosen by the
//! time of signing, swapped whole when reloaded from the store.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use protocol::token::{AccessClaims, Jwks, JwtHeader};
use serde::de::DeserializeOwned;
use serde::Serialize;
use storage::{SigningAlg, Store};

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

/// One immutable generation of the ring.
struct Keys {
    /// Every published key: EdDSA keys, then RS256 keys; newest (by `activates_at`) first.
    entries: Vec<Entry>,
    jwks: Jwks,
    /// The `now` it was built for.
    loaded_at: i64,
}

impl Keys {
    fn build(
        records: &[storage::SigningKey],
        master: &MasterKey,
        now: i64,
        lifetime: i64,
        previous: Option<&Keys>,
    ) -> Result<Keys, KeyError> {
        let mut entries = Vec::with_capacity(records.len());
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
                p.entries
                    .iter()
                    .find(|e| e.kid == record.kid && e.sealed == record.private_key_encrypted)
                    .and_then(|e| e.private.clone())
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
        Ok(Keys {
            entries,
            jwks,
            loaded_at: now,
        })
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

    fn sign(&self, alg: SigningAlg, claims: &[u8], t: i64) -> String {
        let (entry, key) = self.signer(alg, t);
        tokens::compact(&JwtHeader::new(alg.as_str(), &entry.kid), claims, |m| {
            key.sign(m)
        })
    }

    /// The header's `alg` must be one the ring knows, and the algorithm of the key its `kid`
    /// names: a token never picks the algorithm its key is used with.
    fn verify_signature<'t>(
        &self,
        token: &'t str,
        now: i64,
    ) -> Result<tokens::Jws<'t>, TokenError> {
        let jws = tokens::split(token)?;
        let alg = SigningAlg::parse(&jws.header.alg).ok_or(TokenError::UnsupportedAlgorithm)?;
        let entry = self
            .entries
            .iter()
            .find(|e| e.kid == jws.header.kid)
            .ok_or(TokenError::UnknownKey)?;
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
        Ok(jws)
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
        f.debug_struct("KeyRing")
            .field(
                "keys",
                &keys
                    .entries
                    .iter()
                    .map(|e| format!("{} {}", e.alg, e.kid))
                    .collect::<Vec<_>>(),
            )
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// [`new_key`] off the async runtime (RSA generation takes a while).
async fn generate(
    master: &MasterKey,
    alg: SigningAlg,
    now: i64,
) -> Result<storage::SigningKey, KeyError> {
    let master = master.clone();
    tokio::task::spawn_blocking(move || new_key(&master, alg, now))
        .await
        .map_err(|e| KeyError::Generate(e.to_string()))?
}

impl KeyRing {
    /// Loads the keys from the store, first creating a key of each algorithm that has none
    /// (no key that is not retired). Several instances may start at once: the store keeps
    /// exactly one of their new keys per algorithm, and every instance uses that one.
    ///
    /// `token_lifetime` is the longest lifetime of a token a key may sign (access and ID
    /// tokens): how long a retired key is still published and accepted.
    pub async fn load_or_create(
        store: &dyn Store,
        master: &MasterKey,
        now: i64,
        token_lifetime: Duration,
    ) -> Result<KeyRing, KeyError> {
        let mut records = store.list_signing_keys().await?;
        let mut created = false;
        for alg in SigningAlg::ALL {
            if records
                .iter()
                .any(|k| k.alg == alg && k.retired_at.is_none())
            {
                continue;
            }
            let record = generate(master, alg, now).await?;
            let kid = record.kid.clone();
            let active = store.insert_signing_key_if_none(record).await?;
            if active.iter().any(|k| k.kid == kid) {
                tracing::info!(kid, alg = alg.as_str(), "created the first signing key");
            }
            created = true;
        }
        if created {
            // Read again for whichever keys won, with the retired keys that still verify.
            records = store.list_signing_keys().await?;
        }
        KeyRing::from_records(&records, master, now, token_lifetime)
    }

    /// Builds the ring from stored records as of `now`. Keys past their verification window
    /// are left out; each algorithm needs a key that can sign.
    pub fn from_records(
        records: &[storage::SigningKey],
        master: &MasterKey,
        now: i64,
        token_lifetime: Duration,
    ) -> Result<KeyRing, KeyError> {
        let lifetime = secs(token_lifetime);
        let keys = Keys::build(records, master, now, lifetime, None)?;
        Ok(KeyRing {
            keys: ArcSwap::from_pointee(keys),
            master: master.clone(),
            lifetime,
        })
    }

    /// Reads the keys again (rotations made elsewhere, keys that expired) and swaps the new
    /// generation in. On error the ring keeps the keys it has. Only new keys are decrypted.
    pub async fn reload(&self, store: &dyn Store, now: i64) -> Result<(), KeyError> {
        let records = store.list_signing_keys().await?;
        let previous = self.keys.load_full();
        let keys = Keys::build(&records, &self.master, now, self.lifetime, Some(&previous))?;
        self.keys.store(Arc::new(keys));
        Ok(())
    }

    /// The kid of the key of `alg` that signs at `now`.
    pub fn active_kid(&self, alg: SigningAlg, now: i64) -> String {
        self.keys.load().signer(alg, now).0.kid.clone()
    }

    /// The published keys, for `/.well-known/jwks.json`: every key from its creation until
    /// the tokens it may have signed have expired.
    pub fn jwks(&self) -> Jwks {
        self.keys.load().jwks.clone()
    }

    /// Signs an access token with the EdDSA key active at its `iat`.
    pub fn sign(&self, claims: &AccessClaims) -> String {
        let claims_json = protocol::json::to_vec(claims);
        self.keys
            .load()
            .sign(SigningAlg::EdDsa, &claims_json, claims.iat)
    }

    /// Signs an ID token with RS256 ([`super::DEFAULT_ID_TOKEN_ALG`]): the RSA key active at
    /// the claims' `iat`. `claims` is any type that serialises to a JSON object.
    pub fn sign_id_token<T: Serialize>(&self, claims: &T) -> String {
        self.sign_id_token_with(super::DEFAULT_ID_TOKEN_ALG, claims)
    }

    /// Signs an ID token with `alg` (EdDSA for a client that asked for it): the key of `alg`
    /// active at the claims' `iat` (claims without an integer `iat`: at the last reload).
    pub fn sign_id_token_with<T: Serialize>(&self, alg: IdTokenAlg, claims: &T) -> String {
        #[derive(serde::Deserialize)]
        struct Issued {
            iat: Option<i64>,
        }
        let claims_json = protocol::json::to_vec(claims);
        let keys = self.keys.load();
        let iat = protocol::json::from_slice::<Issued>(&claims_json).and_then(|c| c.iat);
        keys.sign(alg, &claims_json, iat.unwrap_or(keys.loaded_at))
    }

    /// Verifies an access token signed by any published key of either algorithm: the
    /// signature, then `exp`, `nbf` and `iss`.
    pub fn verify(&self, token: &str, now: i64, issuer: &str) -> Result<AccessClaims, TokenError> {
        let jws = self.keys.load().verify_signature(token, now)?;
        tokens::check_access_claims(jws.claims()?, now, issuer)
    }

    /// Verifies the signature of a token signed by any published key (an ID token presented
    /// back, such as `id_token_hint`) and returns its claims, unchecked otherwise: the caller
    /// checks what its use needs (`iss`, `aud`, times).
    pub fn verify_signed<T: DeserializeOwned>(
        &self,
        token: &str,
        now: i64,
    ) -> Result<T, TokenError> {
        self.keys.load().verify_signature(token, now)?.claims()
    }

    /// The user (`sub`) and client (`aud`) of an ID token this deployment signed for
    /// `issuer`, expired or not (OpenID Connect Core 3.1.2.1 and RP-Initiated Logout 1.0 let
    /// an expired one serve as `id_token_hint`), as long as its key is still published; `None`
    /// otherwise.
    pub fn verify_id_token_hint(&self, token: &str, issuer: &str) -> Option<IdTokenHint> {
        #[derive(serde::Deserialize)]
        struct Hint {
            iss: String,
            sub: String,
            aud: String,
        }
        let keys = self.keys.load();
        let hint: Hint = keys
            .verify_signature(token, keys.loaded_at)
            .ok()?
            .claims()
            .ok()?;
        (hint.iss == issuer).then_some(IdTokenHint {
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

/// Rotates the keys of `alg`: a new key, published at once and signing `publish_delay` after
/// `now`, when the key signing now retires. With no key of `alg` signing now (a fresh store)
/// the new key signs at once. Safe on a running deployment: instances reload the ring and
/// switch keys at `activates_at` (see the module documentation).
pub async fn rotate(
    store: &dyn Store,
    master: &MasterKey,
    alg: SigningAlg,
    now: i64,
    publish_delay: Duration,
) -> Result<Rotation, KeyError> {
    let records = store.list_signing_keys().await?;
    let signing_now = records
        .iter()
        .any(|k| k.alg == alg && k.activates_at <= now && k.retired_at.is_none_or(|r| now < r));
    let mut record = generate(master, alg, now).await?;
    if signing_now {
        record.activates_at = now.saturating_add(secs(publish_delay));
    }
    let rotation = Rotation {
        kid: record.kid.clone(),
        alg,
        activates_at: record.activates_at,
        retired: 0,
    };
    let retired = store.rotate_signing_key(record).await?;
    tracing::info!(
        kid = rotation.kid,
        alg = alg.as_str(),
        activates_at = rotation.activates_at,
        retired,
        "rotated the signing key"
    );
    Ok(Rotation {
        retired,
        ..rotation
    })
}
