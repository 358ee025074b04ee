//! The admin refresh-token rotation decision, once for both backends (as
//! [`store::rotation`] is for users'). Each backend reads the token and its account under
//! their locks, asks [`admin_refresh_step`], and carries the step out in the same transaction.

use uuid::Uuid;

use crate::AdminAccount;

/// An admin refresh token as a rotation reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AdminToken {
    pub admin_id: Uuid,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// What a rotation does with the token it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AdminStep {
    /// Nothing is written: `AdminRefresh::Invalid`.
    Refuse,
    /// A replay: every refresh token of the account is revoked, `AdminRefresh::Reused`.
    RevokeAll,
    /// The token is marked used and its successor stored, `AdminRefresh::Rotated`.
    Rotate,
}

/// The decision for a token found with its account (an unknown token, or one whose account is
/// gone, is refused before it is asked), in this order: a disabled account's tokens are
/// refused (disabling revoked them anyway); so is a revoked token (sign-out, an earlier
/// replay); a used one is a replay even after it expired (as a user's spent token is); an
/// expired one is refused; any other rotates.
pub(crate) fn admin_refresh_step(
    token: &AdminToken,
    account: &AdminAccount,
    now: i64,
) -> AdminStep {
    if account.disabled_at.is_some() || token.revoked_at.is_some() {
        AdminStep::Refuse
    } else if token.used_at.is_some() {
        AdminStep::RevokeAll
    } else if token.expires_at <= now {
        AdminStep::Refuse
    } else {
        AdminStep::Rotate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(disabled_at: Option<i64>) -> AdminAccount {
        AdminAccount {
            id: Uuid::nil(),
            email: "ops@example.test".into(),
            name: None,
            scope: "admin".into(),
            mfa_enabled: false,
            last_seen_at: None,
            disabled_at,
            created_at: 1,
            updated_at: 1,
        }
    }

    #[test]
    fn the_checks_come_in_their_order() {
        use AdminStep::{Refuse, RevokeAll, Rotate};
        let live = AdminToken {
            admin_id: Uuid::nil(),
            expires_at: 200,
            used_at: None,
            revoked_at: None,
        };
        let used = AdminToken {
            used_at: Some(150),
            ..live
        };
        let revoked = AdminToken {
            revoked_at: Some(160),
            ..used
        };
        let (enabled, disabled) = (account(None), account(Some(100)));
        let step = admin_refresh_step;
        assert_eq!(step(&live, &disabled, 150), Refuse);
        assert_eq!(step(&used, &disabled, 150), Refuse);
        assert_eq!(step(&revoked, &enabled, 150), Refuse);
        assert_eq!(step(&used, &enabled, 150), RevokeAll);
        // A used token is a replay even after it expired.
        assert_eq!(step(&used, &enabled, 500), RevokeAll);
        assert_eq!(step(&live, &enabled, 200), Refuse);
        assert_eq!(step(&live, &enabled, 199), Rotate);
    }
}
