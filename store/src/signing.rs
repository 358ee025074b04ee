//! The signature algorithms of signing keys, as the `signing_keys.alg` column spells them, and
//! the issuer modes of tenants (whose keys sign a tenant's tokens).

use std::fmt;

/// The algorithm a signing key signs with: its JOSE `alg` name is what the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SigningAlg {
    /// Ed25519 (`EdDSA`): every access token.
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (`RS256`): ID tokens, which OpenID Connect requires to
    /// support it.
    Rs256,
}

impl SigningAlg {
    /// Every algorithm, in the order keys are listed.
    pub const ALL: [SigningAlg; 2] = [SigningAlg::EdDsa, SigningAlg::Rs256];

    /// The JOSE name (`EdDSA`, `RS256`): the JWT header's `alg`, the JWK's `alg`, the column.
    pub const fn as_str(self) -> &'static str {
        match self {
            SigningAlg::EdDsa => "EdDSA",
            SigningAlg::Rs256 => "RS256",
        }
    }

    /// The algorithm of a JOSE name, exactly as spelt (JOSE names are case-sensitive).
    pub fn parse(name: &str) -> Option<SigningAlg> {
        SigningAlg::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whose issuer a tenant's tokens carry (HelloJohn's `issuerMode`), as the `tenants.issuer_mode`
/// column spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IssuerMode {
    /// The server's issuer (`HELLOJOHN_BASE_URL`) and the global keys: the default, and every
    /// tenant created before migration 13.
    #[default]
    Global,
    /// The tenant's own issuer, `{base}/t/{slug}`, and its own signing keys.
    Path,
}

impl IssuerMode {
    pub const fn as_str(self) -> &'static str {
        match self {
            IssuerMode::Global => "global",
            IssuerMode::Path => "path",
        }
    }

    /// The mode of a stored or typed name (`global`, `path`).
    pub fn parse(name: &str) -> Option<IssuerMode> {
        [IssuerMode::Global, IssuerMode::Path]
            .into_iter()
            .find(|m| m.as_str() == name)
    }
}

impl fmt::Display for IssuerMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::{IssuerMode, SigningAlg};

    #[test]
    fn issuer_modes_round_trip() {
        for mode in [IssuerMode::Global, IssuerMode::Path] {
            assert_eq!(IssuerMode::parse(mode.as_str()), Some(mode));
        }
        assert_eq!(IssuerMode::parse("Path"), None);
        assert_eq!(IssuerMode::default(), IssuerMode::Global);
    }

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for alg in SigningAlg::ALL {
            assert_eq!(SigningAlg::parse(alg.as_str()), Some(alg));
            assert_eq!(alg.to_string(), alg.as_str());
        }
        for bad in ["eddsa", "rs256", "HS256", "none", "", "RS256 "] {
            assert_eq!(SigningAlg::parse(bad), None, "{bad}");
        }
    }
}
