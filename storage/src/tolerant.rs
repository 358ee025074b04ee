//! The readers' answers to values a newer release wrote (see [`store::tolerance`]), shared
//! by the backends so that SQLite and PostgreSQL tolerate alike.

use crate::{ChallengeKind, ClientType, DeliveryStatus, EmailPurpose, IssuerMode, SigningAlg};

/// A tenant's issuer mode; one this release does not know (a newer release's) reads as
/// [`IssuerMode::Global`], the default and what every tenant was before migration 13: the
/// tenant keeps serving, with the server's issuer and keys, rather than vanishing with all its
/// users. Tokens the newer release signed with the tenant's own keys fail verification here
/// (their keys are not loaded), as any unknown token does.
pub(crate) fn issuer_mode(stored: &str) -> IssuerMode {
    IssuerMode::parse(stored).unwrap_or_else(|| {
        store::tolerance::unknown("issuer_mode", stored);
        IssuerMode::Global
    })
}

/// The client type of a stored name, counted and warned about when unknown.
pub(crate) fn client_type(stored: &str) -> Option<ClientType> {
    let known = ClientType::parse(stored);
    if known.is_none() {
        store::tolerance::unknown("client_type", stored);
    }
    known
}

/// A client's token algorithm; one this release does not know (a newer release's) reads as
/// unset, the server's default: the client still gets tokens it can verify with the
/// published keys, only not of the newer algorithm.
pub(crate) fn client_alg(stored: &str) -> Option<SigningAlg> {
    let known = SigningAlg::parse(stored);
    if known.is_none() {
        store::tolerance::unknown("client_alg", stored);
    }
    known
}

/// Only clients of a known type can be updated: one of a newer release's type is absent here
/// (see the backends' `client_from`), and an update must not change a client it then cannot return.
pub(crate) const KNOWN_CLIENT_TYPE: &str = "client_type IN ('public', 'confidential')";

/// A signing key's algorithm; `None` for one this release does not know (a newer release's):
/// the key is skipped, before anything tries to decrypt it, so the keys this release can use
/// still load and a rollback starts.
pub(crate) fn signing_alg(stored: &str) -> Option<SigningAlg> {
    let known = SigningAlg::parse(stored);
    if known.is_none() {
        store::tolerance::unknown("signing_key_alg", stored);
    }
    known
}

/// An MFA challenge's kind; `None` for one this release does not know (a newer release's
/// factor): the challenge is absent here, so a sign-in it stands for cannot be completed by a
/// factor this release would check in its place. The user signs in again.
pub(crate) fn challenge_kind(stored: &str) -> Option<ChallengeKind> {
    let known = ChallengeKind::parse(stored);
    if known.is_none() {
        store::tolerance::unknown("challenge_kind", stored);
    }
    known
}

/// An email token's purpose; `None` for one this release does not know: the token is absent
/// here (a link of a newer release's mail cannot be used for anything this release does).
pub(crate) fn email_purpose(stored: &str) -> Option<EmailPurpose> {
    let known = EmailPurpose::parse(stored);
    if known.is_none() {
        store::tolerance::unknown("email_purpose", stored);
    }
    known
}

/// A webhook delivery's status; `None` for one this release does not know: the delivery is
/// left out of lists and lookups (the outbox's claims only ever take `pending` and `failed`
/// rows, so this release never sends or rewrites it either).
pub(crate) fn delivery_status(stored: &str) -> Option<DeliveryStatus> {
    let known = DeliveryStatus::parse(stored);
    if known.is_none() {
        store::tolerance::unknown("outbox_status", stored);
    }
    known
}
