//! The session cache shared by all instances, and the sign-out and revoked-family marks.

use std::time::Duration;

use ::redis::Value;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{decode_hex, hex, millis, Conn, Pending, Redis, RedisError, TOMBSTONE};
use crate::model::{CachedSession, Session, TokenHash, User};

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// The JSON kept for a live session.
#[derive(Serialize, Deserialize)]
pub(super) struct WireSession {
    uid: Uuid,
    tid: Uuid,
    email: String,
    email_verified: bool,
    name: Option<String>,
    custom: serde_json::Value,
    /// Absent from entries written by older instances (a rolling update): read as empty.
    #[serde(default = "empty_object")]
    app: serde_json::Value,
    disabled: bool,
    /// Why the user is disabled; absent when there is none, and from entries written by older
    /// instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    disabled_reason: Option<String>,
    /// Absent from entries written by older instances: read as false.
    #[serde(default)]
    mfa: bool,
    user_created_at: i64,
    client_id: String,
    created_at: i64,
    expires_at: i64,
    /// How the session signed in; absent from entries of older instances: read as `pwd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    amr: Option<String>,
}

impl WireSession {
    pub(super) fn from_session(s: &Session) -> WireSession {
        WireSession {
            uid: s.user.id,
            tid: s.user.tenant_id,
            email: s.user.email.clone(),
            email_verified: s.user.email_verified,
            name: s.user.name.clone(),
            custom: s.user.custom_fields.as_json().clone(),
            app: s.user.app_metadata.as_json().clone(),
            disabled: s.user.disabled,
            disabled_reason: s.user.disabled_reason.clone(),
            mfa: s.user.mfa_enabled,
            user_created_at: s.user.created_at,
            client_id: s.client_id.clone(),
            created_at: s.created_at,
            expires_at: s.expires_at,
            amr: Some(crate::model::amr_column(&s.amr)),
        }
    }

    pub(super) fn into_session(self) -> Session {
        Session {
            user: User {
                id: self.uid,
                tenant_id: self.tid,
                email: self.email,
                email_verified: self.email_verified,
                name: self.name,
                custom_fields: crate::Metadata::from_json(self.custom),
                app_metadata: crate::Metadata::from_json(self.app),
                disabled: self.disabled,
                disabled_reason: self.disabled_reason,
                mfa_enabled: self.mfa,
                created_at: self.user_created_at,
            },
            client_id: self.client_id,
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: None,
            amr: crate::model::amr_from_column(self.amr.as_deref()),
        }
    }
}

impl Redis {
    fn session_key(&self, id: &TokenHash) -> String {
        self.key(&["sess", &hex(id)])
    }

    fn user_sessions_key(&self, user_id: Uuid) -> String {
        self.key(&["usess", &user_id.to_string()])
    }

    fn family_key(&self, family_id: Uuid) -> String {
        self.key(&["fam", &family_id.to_string()])
    }

    /// The cached state of the session whose cookie hashes to `id`; `None` on a miss.
    pub async fn session_get(&self, id: &TokenHash) -> Result<Option<CachedSession>, RedisError> {
        let mut c = self.begin()?;
        let key = self.session_key(id);
        let v: Option<String> = self
            .finish(async move { ::redis::cmd("GET").arg(key).query_async(&mut c).await })
            .await?;
        Ok(match v.as_deref() {
            None => None,
            Some(TOMBSTONE) => Some(CachedSession::Revoked),
            Some(json) => serde_json::from_str::<WireSession>(json)
                .ok()
                .map(|w| CachedSession::Live(Box::new(w.into_session()))),
        })
    }

    /// Caches a live session for `ttl`, unless the key already holds something (a sign-out's
    /// tombstone must win over a concurrent read that saw the session still live).
    pub async fn session_put(
        &self,
        id: &TokenHash,
        session: &Session,
        ttl: Duration,
    ) -> Result<(), RedisError> {
        let json = serde_json::to_string(&WireSession::from_session(session))
            .map_err(|e| RedisError::Failed(e.to_string()))?;
        let mut c = self.begin()?;
        let key = self.session_key(id);
        let set_key = self.user_sessions_key(session.user.id);
        let member = hex(id);
        let ms = millis(ttl);
        self.finish(async move {
            // First the user's list of cached sessions (so signing out everywhere reaches this
            // one), then the session itself.
            ::redis::pipe()
                .cmd("SADD")
                .arg(&set_key)
                .arg(member)
                .ignore()
                .cmd("PEXPIRE")
                .arg(&set_key)
                .arg(ms)
                .ignore()
                .query_async::<()>(&mut c)
                .await?;
            ::redis::cmd("SET")
                .arg(&key)
                .arg(json)
                .arg("NX")
                .arg("PX")
                .arg(ms)
                .query_async::<Value>(&mut c)
                .await
        })
        .await
        .map(|_| ())
    }

    /// Marks a session signed out for `ttl` (at least as long as any cached copy lives).
    /// When Redis is unreachable the mark is kept and written once it is back.
    pub async fn session_revoke(&self, id: &TokenHash, ttl: Duration) -> Result<(), RedisError> {
        let r = match self.begin() {
            Ok(c) => self.tombstone(c, id, ttl).await,
            Err(e) => Err(e),
        };
        if r.is_err() {
            self.inner.defer(Pending::Session(*id, ttl));
        }
        r
    }

    /// `SET key value PX ttl`: the one write shared by the sign-out, family and webhook marks.
    pub(super) async fn set_px(
        &self,
        mut c: Conn,
        key: String,
        value: &'static str,
        ttl: Duration,
    ) -> Result<(), RedisError> {
        let ms = millis(ttl);
        self.finish(async move {
            ::redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(ms)
                .query_async::<Value>(&mut c)
                .await
        })
        .await
        .map(|_| ())
    }

    pub(super) async fn tombstone(
        &self,
        c: Conn,
        id: &TokenHash,
        ttl: Duration,
    ) -> Result<(), RedisError> {
        self.set_px(c, self.session_key(id), TOMBSTONE, ttl).await
    }

    /// Marks every cached session of a user signed out (sign-out everywhere).
    pub async fn revoke_user_sessions(
        &self,
        user_id: Uuid,
        ttl: Duration,
    ) -> Result<(), RedisError> {
        let r = match self.begin() {
            Ok(c) => self.revoke_user_now(c, user_id, ttl).await,
            Err(e) => Err(e),
        };
        if r.is_err() {
            self.inner.defer(Pending::User(user_id, ttl));
        }
        r
    }

    pub(super) async fn revoke_user_now(
        &self,
        c: Conn,
        user_id: Uuid,
        ttl: Duration,
    ) -> Result<(), RedisError> {
        let set_key = self.user_sessions_key(user_id);
        let mut c2 = c.clone();
        let members: Vec<String> = self
            .finish(async move {
                ::redis::cmd("SMEMBERS")
                    .arg(set_key)
                    .query_async(&mut c2)
                    .await
            })
            .await?;
        for m in members {
            let mut id = [0u8; 32];
            if decode_hex(&m, &mut id) {
                self.tombstone(c.clone(), &id, ttl).await?;
            }
        }
        let mut c = c;
        let set_key = self.user_sessions_key(user_id);
        self.finish(async move {
            ::redis::cmd("DEL")
                .arg(set_key)
                .query_async::<Value>(&mut c)
                .await
        })
        .await
        .map(|_| ())
    }

    /// Marks a refresh family revoked for `ttl`: a fast "no" before the database is asked.
    pub async fn family_revoke(&self, family_id: Uuid, ttl: Duration) -> Result<(), RedisError> {
        let r = match self.begin() {
            Ok(c) => self.family_mark(c, family_id, ttl).await,
            Err(e) => Err(e),
        };
        if r.is_err() {
            self.inner.defer(Pending::Family(family_id, ttl));
        }
        r
    }

    pub(super) async fn family_mark(
        &self,
        c: Conn,
        family_id: Uuid,
        ttl: Duration,
    ) -> Result<(), RedisError> {
        self.set_px(c, self.family_key(family_id), "1", ttl).await
    }

    /// Whether the family was marked revoked recently. `false` means "ask the database".
    pub async fn family_revoked(&self, family_id: Uuid) -> Result<bool, RedisError> {
        let mut c = self.begin()?;
        let key = self.family_key(family_id);
        self.finish(async move {
            ::redis::cmd("EXISTS")
                .arg(key)
                .query_async::<bool>(&mut c)
                .await
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::WireSession;

    /// A session cached by a newer release (fields this one does not know, an `amr` value it
    /// does not make) reads here: unknown fields are ignored, `amr` values are kept as text.
    #[test]
    fn a_newer_releases_session_reads() {
        let json = serde_json::json!({
            "uid": "7a0c1b2e-0000-4000-8000-000000000001",
            "tid": "7a0c1b2e-0000-4000-8000-000000000002",
            "email": "ada@example.com",
            "email_verified": true,
            "name": null,
            "custom": {},
            "app": {},
            "disabled": false,
            "mfa": true,
            "user_created_at": 1,
            "client_id": "web",
            "created_at": 2,
            "expires_at": 3,
            "amr": "pwd hwk",
            "passkey_id": "a field of a newer release",
            "risk": { "score": 3 }
        });
        let wire: WireSession = serde_json::from_value(json).expect("tolerated");
        let session = wire.into_session();
        assert_eq!(session.user.email, "ada@example.com");
        assert_eq!(session.amr, ["pwd", "hwk"]);
        assert!(session.user.mfa_enabled);
    }
}
