//! Routing on route templates. The route, not the raw URL, is what metrics and logs label, so
//! label cardinality stays bounded: every unknown path is the single route `Unmatched`.

use http::Method;

macro_rules! routes {
    ($($variant:ident => $template:literal),* $(,)?) => {
        /// Every route the engine serves.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Route {
            $($variant,)*
            /// Any path that matches no route.
            Unmatched,
        }

        impl Route {
            /// The template used as the `path` label.
            pub const fn template(self) -> &'static str {
                match self {
                    $(Route::$variant => $template,)*
                    Route::Unmatched => "unmatched",
                }
            }

            /// The route for a request path (query string already removed).
            pub fn from_path(path: &str) -> Route {
                // Tolerate one trailing slash, as most clients and proxies expect.
                let path = if path.len() > 1 { path.strip_suffix('/').unwrap_or(path) } else { path };
                match path {
                    $($template => Route::$variant,)*
                    _ => Route::Unmatched,
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
}

impl Route {
    /// Whether the route runs an Argon2 hash (sign-in, session sign-in, sign-up): the routes
    /// the hash pool refuses under overload.
    pub fn hashes(self) -> bool {
        matches!(self, Route::Login | Route::SessionLogin | Route::Register)
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
            | Route::OpenIdConfiguration => method == Method::GET || method == Method::HEAD,
            Route::UserInfo => method == Method::GET || method == Method::POST,
            Route::Register
            | Route::Login
            | Route::Refresh
            | Route::Logout
            | Route::LogoutAll
            | Route::SessionLogin
            | Route::OAuthToken => method == Method::POST,
            Route::Unmatched => false,
        }
    }

    /// Whether errors on this route use the RFC 6749 body rather than `{code, message}`.
    pub fn is_oauth(self) -> bool {
        matches!(self, Route::OAuthToken)
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
    }
}
