//! The refresh-rotation security decision, once for both backends.
//!
//! A rotation presents a token; what it found in the store (read under the family's lock) is
//! judged here, in this order, and each backend only carries the decision out:
//!
//! 1. no such token, or one of another client: `NotFound` (a client cannot probe or burn
//!    another client's tokens);
//! 2. its family is revoked (sign-out, sign-out everywhere, an earlier reuse): `Revoked`;
//! 3. it was already rotated: a second use of a spent token means it leaked, so the whole family
//!    is revoked and the reuse recorded (`Reused`), even when the token has expired since;
//! 4. it has expired: `Expired`;
//! 5. otherwise it is rotated: marked spent by a conditional update (the update, not this read,
//!    decides between concurrent rotations; the loser is treated as a reuse).

use crate::model::{RefreshToken, RotateOutcome};

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
/// `client_id` at `now` (Unix seconds): the step with the token, or the refusal (nothing is
/// written).
pub fn rotation_step(
    found: Option<RefreshToken>,
    client_id: &str,
    now: i64,
) -> Result<(RotationStep, RefreshToken), Refusal> {
    match found {
        None => Err(Refusal::NotFound),
        Some(t) if t.client_id != client_id => Err(Refusal::NotFound),
        Some(t) if t.family_revoked_at.is_some() => Err(Refusal::Revoked),
        Some(t) if t.rotated_at.is_some() => Ok((RotationStep::RevokeReused, t)),
        Some(t) if t.expires_at <= now => Err(Refusal::Expired),
        Some(t) => Ok((RotationStep::Rotate, t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

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
            rotation_step(Some(t.clone()), client, now).map(|(step, _)| step)
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
        assert_eq!(rotation_step(None, "app", 150), Err(NotFound));
        assert_eq!(step(&live, "other", 150), Err(NotFound));
        assert_eq!(step(&revoked, "other", 150), Err(NotFound));
        assert_eq!(step(&revoked, "app", 150), Err(Revoked));
        assert_eq!(step(&spent, "app", 150), Ok(RevokeReused));
        // A spent token is a reuse even after it expired: its family still goes.
        assert_eq!(step(&spent, "app", 500), Ok(RevokeReused));
        assert_eq!(step(&live, "app", 200), Err(Expired));
        assert_eq!(step(&live, "app", 199), Ok(Rotate));
        assert_eq!(
            rotation_step(Some(live.clone()), "app", 199),
            Ok((Rotate, live))
        );
    }
}
