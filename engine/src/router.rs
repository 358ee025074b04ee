//! Routing on route templates. The route, not the raw URL, is what metrics and logs label, so
//! label cardinality stays bounded: every unknown path is the single route `Unmatched`.

use http::Method;

macro_rules! routes {
    ($($variant:ident => $template:literal),* $(,)?) => {
        /// Every route the engine serves.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Route {
            $($variant,)*
            /// An admin API route (`/v2/admin/...`).
            Admin(crate::admin::AdminRoute),
            /// Any path that matches no route.
            Unmatched,
        }

        impl Route {
            /// The template used as the `path` label.
            pub const fn template(self) -> &'static str {
                match self {
                    $(Route::$variant => $template,)*
                    Route::Admin(r) => r.template(),
                    Route::Unmatched => "unmatched",
                }
            }

            /// The route for a request path (query string already removed).
            pub fn from_path(path: &str) -> Route {
                // Tolerate one trailing slash, as most clients and proxies expect.
                let path = if path.len() > 1 { path.strip_suffix('/').unwrap_or(path) } else { path };
                match path {
                    $($template => Route::$variant,)*
                    _ => Route::with_slug(path),
                }
            }
        }
    };
}

routes! {
    Ping => "/ping",
    Health => "/health",
    Readyz => "/readyz",
    Metrics => "/metrics",
    Register => "/v2/auth/register",
    Login => "/v2/auth/login",
    Refresh => "/v2/auth/refresh",
    Logout => "/v2/auth/logout",
    LogoutAll => "/v2/auth/logout-all",
    Me => "/v2/me",
    Csrf => "/v2/csrf",
    SessionLogin => "/v2/session/login",
    OAuthToken => "/oauth2/token",
    UserInfo => "/userinfo",
    Jwks => "/.well-known/jwks.json",
    OpenIdConfiguration => "/.well-known/openid-configuration",
    PasswordPolicy => "/v2/auth/password-policy",
    Providers => "/v2/auth/providers",
    AuthConfig => "/v2/auth/config",
    CompleteProfile => "/v2/auth/complete-profile",
    OAuthAuthorize => "/oauth2/authorize",
    OAuthLogin => "/oauth2/login",
    OAuthConsent => "/oauth2/consent",
    OAuthLogout => "/oauth2/logout",
    OAuthRevoke => "/oauth2/revoke",
    OAuthIntrospect => "/oauth2/introspect",
    MfaEnroll => "/v2/mfa/totp/enroll",
    MfaVerify => "/v2/mfa/totp/verify",
    MfaChallenge => "/v2/mfa/totp/challenge",
    MfaDisable => "/v2/mfa/totp/disable",
    MfaRecoveryRotate => "/v2/mfa/recovery/rotate",
    MfaFactors => "/v2/mfa/factors",
    VerifyEmailStart => "/v2/auth/verify-email/start",
    VerifyEmail => "/v2/auth/verify-email",
    Forgot => "/v2/auth/forgot",
    Reset => "/v2/auth/reset",
    TenantOpenIdConfiguration => "/t/{slug}/.well-known/openid-configuration",
    TenantJwks => "/.well-known/jwks/{slug}.json",
}

/// Longest tenant slug a templated path may carry.
const MAX_SLUG: usize = 64;

/// The `{slug}` of a templated path: 1-64 lower-case letters, digits and `-`.
fn slug_ok(slug: &str) -> bool {
    (1..=MAX_SLUG).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The slug of a path of `route`, if the path is one (see [`Route::with_slug`]).
pub fn slug_of(route: Route, path: &str) -> Option<&str> {
    let path = if path.len() > 1 {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    };
    let slug = match route {
        Route::TenantOpenIdConfiguration => path
            .strip_prefix("/t/")?
            .strip_suffix("/.well-known/openid-configuration")?,
        Route::TenantJwks => path
            .strip_prefix("/.well-known/jwks/")?
            .strip_suffix(".json")?,
        _ => return None,
    };
    slug_ok(slug).then_some(slug)
}

impl Route {
    /// The routes whose template has a `{slug}`; anything else is `Unmatched`.
    fn with_slug(path: &str) -> Route {
        if let Some(admin) = crate::admin::AdminRoute::from_path(path) {
            return Route::Admin(admin);
        }
        for route in [Route::TenantOpenIdConfiguration, Route::TenantJwks] {
            if slug_of(route, path).is_some() {
                return route;
            }
        }
        Route::Unmatched
    }
}

impl Route {
    /// Whether the route runs an Argon2 hash (sign-in, session sign-in, sign-up): the routes
    /// the hash pool refuses under overload.
    pub fn hashes(self) -> bool {
        matches!(
            self,
            Route::Login | Route::SessionLogin | Route::Register | Route::OAuthLogin | Route::Reset
        )
    }

    /// The methods a route answers (besides OPTIONS for CORS preflight).
    pub fn allows(self, method: &Method) -> bool {
        match self {
            Route::Ping
            | Route::Health
            | Route::Readyz
            | Route::Metrics
            | Route::Me
            | Route::Csrf
            | Route::Jwks
            | Route::OpenIdConfiguration
            | Route::PasswordPolicy
            | Route::Providers
            | Route::AuthConfig
            | Route::MfaFactors
            | Route::VerifyEmail
            | Route::TenantOpenIdConfiguration
            | Route::TenantJwks => method == Method::GET || method == Method::HEAD,
            Route::UserInfo
            | Route::OAuthAuthorize
            | Route::OAuthLogin
            | Route::OAuthConsent
            | Route::OAuthLogout
            | Route::Reset => method == Method::GET || method == Method::POST,
            Route::Register
            | Route::Login
            | Route::Refresh
            | Route::Logout
            | Route::LogoutAll
            | Route::SessionLogin
            | Route::OAuthToken
            | Route::OAuthRevoke
            | Route::OAuthIntrospect
            | Route::CompleteProfile
            | Route::MfaEnroll
            | Route::MfaVerify
            | Route::MfaChallenge
            | Route::MfaDisable
            | Route::MfaRecoveryRotate
            | Route::VerifyEmailStart
            | Route::Forgot => method == Method::POST,
            Route::Admin(r) => r.allows(method),
            Route::Unmatched => false,
        }
    }

    /// Whether errors on this route use the RFC 6749 body rather than `{code, message}`.
    pub fn is_oauth(self) -> bool {
        matches!(
            self,
            Route::OAuthToken | Route::OAuthRevoke | Route::OAuthIntrospect
        )
    }

    /// Whether the route is a browser page of ours (HTML answers, errors included).
    pub fn is_page(self) -> bool {
        matches!(
            self,
            Route::OAuthAuthorize | Route::OAuthLogin | Route::OAuthConsent | Route::OAuthLogout
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_round_trip() {
        assert_eq!(Route::from_path("/v2/auth/login"), Route::Login);
        assert_eq!(Route::from_path("/v2/auth/login/"), Route::Login);
        assert_eq!(Route::from_path("/.well-known/jwks.json"), Route::Jwks);
        assert_eq!(Route::from_path("/v2/auth/login/x"), Route::Unmatched);
        assert_eq!(Route::from_path("/"), Route::Unmatched);
        assert_eq!(Route::Login.template(), "/v2/auth/login");
        assert_eq!(
            Route::from_path("/t/acme-1/.well-known/openid-configuration"),
            Route::TenantOpenIdConfiguration
        );
        assert_eq!(
            slug_of(
                Route::TenantOpenIdConfiguration,
                "/t/acme-1/.well-known/openid-configuration/"
            ),
            Some("acme-1")
        );
        assert_eq!(
            Route::from_path("/.well-known/jwks/acme.json"),
            Route::TenantJwks
        );
        for bad in [
            "/t//.well-known/openid-configuration",
            "/t/a/b/.well-known/openid-configuration",
            "/t/ACME/.well-known/openid-configuration",
            "/.well-known/jwks/.json",
            "/.well-known/jwks/a.b.json",
        ] {
            assert_eq!(Route::from_path(bad), Route::Unmatched, "{bad}");
        }
        let long = format!("/t/{}/.well-known/openid-configuration", "a".repeat(65));
        assert_eq!(Route::from_path(&long), Route::Unmatched);
    }
}
