//! The OAuth 2.0 grant types HelloJohn serves: one list, read by discovery
//! (`grant_types_supported`), the client rules (`hj client --grant-types`), the token endpoint
//! and the sign-in metric's `method` label.

/// A grant type of RFC 6749.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

impl GrantType {
    /// Every grant type served, in the order discovery lists them.
    pub const ALL: [GrantType; 3] = [
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
    ];

    /// The names of [`GrantType::ALL`].
    pub const NAMES: [&'static str; 3] = [
        GrantType::AuthorizationCode.as_str(),
        GrantType::RefreshToken.as_str(),
        GrantType::ClientCredentials.as_str(),
    ];

    /// The wire name (`grant_type`, a client's `grant_types`).
    pub const fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
        }
    }

    pub fn parse(name: &str) -> Option<GrantType> {
        GrantType::ALL.into_iter().find(|g| g.as_str() == name)
    }

    /// The `method` label of `hellojohn_auth_sign_ins_total` for this grant at the token
    /// endpoint (`refresh` for the refresh grant, as `/v2/auth/refresh` counts it).
    pub const fn method(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh",
            GrantType::ClientCredentials => "client_credentials",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for g in GrantType::ALL {
            assert_eq!(GrantType::parse(g.as_str()), Some(g));
        }
        assert_eq!(GrantType::NAMES.len(), GrantType::ALL.len());
        assert_eq!(GrantType::parse("password"), None);
    }
}
