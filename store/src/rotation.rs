//! The refresh-rotation security decision, once for both backends.
//!
//! A rotation presents a token; what it found in the store (read under the family's lock) is
//! judged here, in this order, and each backend only carries the decision out:
//!
//! 1. no such token, one of another client, or (when the caller names the tenant:
//!    [`Tokens::rotate_refresh`](crate::Tokens::rotate_refresh)) one of another tenant: `NotFound`
//!    (a client cannot probe or burn another client's tokens);
//! 2. its family is revoked (sign-out, sign-out everywhere, an earlier reuse): `Revoked`;
//! 3. it was already rotated: a second use of a spent token means it leaked, so the whole family
//!    is revoked and the reuse recorded (`Reused`), even when the token has expired since;
//! 4. it has expired: `Expired`;
//! 5. otherwise it is rotated: marked spent by a conditional update (the update, not this read,
//!    decides between concurrent rotations; the loser is treated as a reuse).
//!
//! The PostgreSQL store carries out [`Tokens::rotate_refresh`](crate::Tokens::rotate_refresh) in
//! one statement, a PL/pgSQL function (`hj_rotate_refresh`, migration `0011_rotate_refresh`)
//! that takes the same decision in the same order; the store suite holds both to it.

use uuid::Uuid;

use crate::model::{EventDraft, RefreshToken, RotateOutcome, TokenHash};

/// A refresh token's successor as the caller makes it before the old token is read: the
/// store gives it the old token's family, user, tenant and client.
#[derive(Clone, PartialEq, Eq)]
pub struct NextRefresh {
    pub token_hash: TokenHash,
    pub issued_at: i64,
    pub expires_at: i64,
}

impl std::fmt::Debug for NextRefresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NextRefresh")
            .field("token_hash", &"<redacted>")
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A rotation asked by a caller that knows the client, hence its tenant, but not the token:
/// [`Tokens::rotate_refresh`](crate::Tokens::rotate_refresh).
#[derive(Clone, PartialEq)]
pub struct RefreshRotation {
    /// The hash of the token presented.
    pub old_hash: TokenHash,
    /// The tenant of the client: a token of another tenant is `NotFound`.
    pub tenant_id: Uuid,
    /// The `client_id` of the client: a token of another client is `NotFound`.
    pub client_id: String,
    pub next: NextRefresh,
    /// Written on `Reused` only, completed as [`EventDraft::for_token`] does (tenant, actor and
    /// target default to the token's, the metadata gains `family_id` and `client_id`).
    pub reuse_event: Option<EventDraft>,
    pub now: i64,
}

impl std::fmt::Debug for RefreshRotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshRotation")
            .field("old_hash", &"<redacted>")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("next", &self.next)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// What a rotation does with the token it found, when it is not refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationStep {
    /// Revoke the family and record the reuse, then answer `Reused`.
    RevokeReused,
    /// Mark the token rotated and store its successor in the same family.
    Rotate,
}

/// A rotation refused before anything is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NotFound,
    Revoked,
    Expired,
}

impl From<Refusal> for RotateOutcome {
    fn from(r: Refusal) -> RotateOutcome {
        match r {
            Refusal::NotFound => RotateOutcome::NotFound,
            Refusal::Revoked => RotateOutcome::Revoked,
            Refusal::Expired => RotateOutcome::Expired,
        }
    }
}

/// The decision for `found` (the token read by its hash, `None` if unknown), presented by
/// `client_id` (of `tenant_id`, when the caller names it) at `now` (Unix seconds): the step
/// with the token, or the refusal (nothing is written).
pub fn rotation_step(
    found: Option<RefreshToken>,
    tenant_id: Option<Uuid>,
    client_id: &str,
    now: i64,
) -> Result<(RotationStep, RefreshToken), Refusal> {
    match found {
        None => Err(Refusal::NotFound),
        Some(t) if t.client_id != client_id => Err(Refusal::NotFound),
        Some(t) if tenant_id.is_some_and(|id| id != t.tenant_id) => Err(Refusal::NotFound),
        Some(t) if t.family_revoked_at.is_some() => Err(Refusal::Revoked),
        Some(t) if t.rotated_at.is_some() => Ok((RotationStep::RevokeReused, t)),
        Some(t) if t.expires_at <= now => Err(Refusal::Expired),
        Some(t) => Ok((RotationStep::Rotate, t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> RefreshToken {
        RefreshToken {
            family_id: Uuid::nil(),
            user_id: Uuid::nil(),
            tenant_id: Uuid::nil(),
            client_id: "app".into(),
            issued_at: 100,
            expires_at: 200,
            rotated_at: None,
            family_revoked_at: None,
            scopes: None,
        }
    }

    #[test]
    fn the_checks_come_in_their_order() {
        use Refusal::{Expired, NotFound, Revoked};
        use RotationStep::{RevokeReused, Rotate};
        let step = |t: &RefreshToken, client: &str, now| {
            rotation_step(Some(t.clone()), None, client, now).map(|(step, _)| step)
        };
        let live = token();
        let spent = RefreshToken {
            rotated_at: Some(150),
            ..token()
        };
        let revoked = RefreshToken {
            family_revoked_at: Some(150),
            ..spent.clone()
        };
        assert_eq!(rotation_step(None, None, "app", 150), Err(NotFound));
        assert_eq!(step(&live, "other", 150), Err(NotFound));
        assert_eq!(step(&revoked, "other", 150), Err(NotFound));
        assert_eq!(step(&revoked, "app", 150), Err(Revoked));
        assert_eq!(step(&spent, "app", 150), Ok(RevokeReused));
        // A spent token is a reuse even after it expired: its family still goes.
        assert_eq!(step(&spent, "app", 500), Ok(RevokeReused));
        assert_eq!(step(&live, "app", 200), Err(Expired));
        assert_eq!(step(&live, "app", 199), Ok(Rotate));
        assert_eq!(
            rotation_step(Some(live.clone()), None, "app", 199),
            Ok((Rotate, live.clone()))
        );
    }

    #[test]
    fn a_named_tenant_must_be_the_tokens() {
        let other = Uuid::from_u128(7);
        for t in [
            token(),
            RefreshToken {
                rotated_at: Some(150),
                family_revoked_at: Some(150),
                ..token()
            },
        ] {
            assert_eq!(
                rotation_step(Some(t.clone()), Some(other), "app", 150),
                Err(Refusal::NotFound)
            );
        }
        assert_eq!(
            rotation_step(Some(token()), Some(Uuid::nil()), "app", 150).map(|(s, _)| s),
            Ok(RotationStep::Rotate)
        );
    }
}
