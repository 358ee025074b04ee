//! The signature algorithms of signing keys, as the `signing_keys.alg` column spells them.

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

#[cfg(test)]
mod tests {
    use super::SigningAlg;

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
