//! The admin API's route table: HelloJohn's `/v2/admin/...` paths, matched segment by segment.
//! A `{param}` segment matches any one non-empty segment of at most [`MAX_PARAM`] bytes; the
//! route (not the path) is what metrics and logs label, so labels stay bounded.

use http::Method;

/// Longest path parameter accepted (ids, slugs, client ids).
pub const MAX_PARAM: usize = 128;

/// Methods, as bits.
pub const GET: u8 = 1;
pub const POST: u8 = 2;
pub const PUT: u8 = 4;
pub const PATCH: u8 = 8;
pub const DELETE: u8 = 16;

/// `Access-Control-Allow-Methods` of an admin path no route matches (its preflight is allowed,
/// so that the request itself is answered 404).
pub const ALL_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

macro_rules! admin_routes {
    ($($variant:ident => $template:literal, $methods:expr;)*) => {
        /// Every admin route.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum AdminRoute {
            $($variant,)*
        }

        impl AdminRoute {
            pub const ALL: &'static [AdminRoute] = &[$(AdminRoute::$variant,)*];

            /// The template, as metrics label it and the OpenAPI document lists it.
            pub const fn template(self) -> &'static str {
                match self {
                    $(AdminRoute::$variant => $template,)*
                }
            }

            /// The methods it answers, as bits.
            pub const fn methods(self) -> u8 {
                match self {
                    $(AdminRoute::$variant => $methods,)*
                }
            }
        }
    };
}

admin_routes! {
    OpenApi => "/v2/admin/openapi.json", GET;
    Login => "/v2/admin/login", POST;
    LoginMfa => "/v2/admin/login/mfa", POST;
    Refresh => "/v2/admin/refresh", POST;
    Logout => "/v2/admin/logout", POST;
    Me => "/v2/admin/me", GET;
    MeTotpEnroll => "/v2/admin/me/mfa/totp/enroll", POST;
    MeTotpVerify => "/v2/admin/me/mfa/totp/verify", POST;
    MeTotp => "/v2/admin/me/mfa/totp", DELETE;
    Admins => "/v2/admin/admins", GET | POST;
    Admin => "/v2/admin/admins/{id}", GET | PUT | PATCH | DELETE;
    AdminDisable => "/v2/admin/admins/{id}/disable", POST;
    AdminEnable => "/v2/admin/admins/{id}/enable", POST;
    ApiKeys => "/v2/admin/api-keys", GET | POST;
    ApiKey => "/v2/admin/api-keys/{id}", GET | DELETE;
    ApiKeyRotate => "/v2/admin/api-keys/{id}/rotate", POST;
    AuditLogsGlobal => "/v2/admin/audit-logs", GET;
    GlobalKeys => "/v2/admin/keys", GET;
    GlobalKeysRotate => "/v2/admin/keys/rotate", POST;
    Tenants => "/v2/admin/tenants", GET | POST;
    Tenant => "/v2/admin/tenants/{tenant_id}", GET | PUT | PATCH | DELETE;
    Clients => "/v2/admin/tenants/{tenant_id}/clients", GET | POST;
    Client => "/v2/admin/tenants/{tenant_id}/clients/{client_id}", GET | PUT | PATCH | DELETE;
    ClientRevokeSecret => "/v2/admin/tenants/{tenant_id}/clients/{client_id}/revoke-secret", POST;
    ClientRevoke => "/v2/admin/tenants/{tenant_id}/clients/{client_id}/revoke", POST;
    Settings => "/v2/admin/tenants/{tenant_id}/settings", GET | PUT | PATCH;
    Users => "/v2/admin/tenants/{tenant_id}/users", GET | POST;
    User => "/v2/admin/tenants/{tenant_id}/users/{user_id}", GET | PUT | PATCH | DELETE;
    UserSetPassword => "/v2/admin/tenants/{tenant_id}/users/{user_id}/set-password", POST;
    UserDisable => "/v2/admin/tenants/{tenant_id}/users/{user_id}/disable", POST;
    UserEnable => "/v2/admin/tenants/{tenant_id}/users/{user_id}/enable", POST;
    UserSetEmailVerified => "/v2/admin/tenants/{tenant_id}/users/{user_id}/set-email-verified", POST;
    Tokens => "/v2/admin/tenants/{tenant_id}/tokens", GET;
    TokenStats => "/v2/admin/tenants/{tenant_id}/tokens/stats", GET;
    TokensRevokeByUser => "/v2/admin/tenants/{tenant_id}/tokens/revoke-by-user", POST;
    TokensRevokeByClient => "/v2/admin/tenants/{tenant_id}/tokens/revoke-by-client", POST;
    TokensRevokeAll => "/v2/admin/tenants/{tenant_id}/tokens/revoke-all", POST;
    Token => "/v2/admin/tenants/{tenant_id}/tokens/{token_id}", GET | DELETE;
    Sessions => "/v2/admin/tenants/{tenant_id}/sessions", GET;
    SessionStats => "/v2/admin/tenants/{tenant_id}/sessions/stats", GET;
    SessionsRevokeByUser => "/v2/admin/tenants/{tenant_id}/sessions/revoke-by-user", POST;
    SessionsRevokeAll => "/v2/admin/tenants/{tenant_id}/sessions/revoke-all", POST;
    Session => "/v2/admin/tenants/{tenant_id}/sessions/{session_id}", GET;
    SessionRevoke => "/v2/admin/tenants/{tenant_id}/sessions/{session_id}/revoke", POST;
    Keys => "/v2/admin/tenants/{tenant_id}/keys", GET;
    KeysRotate => "/v2/admin/tenants/{tenant_id}/keys/rotate", POST;
    Webhooks => "/v2/admin/tenants/{tenant_id}/webhooks", GET | POST;
    Webhook => "/v2/admin/tenants/{tenant_id}/webhooks/{webhook_id}", GET | PUT | PATCH | DELETE;
    WebhookDeliveries => "/v2/admin/tenants/{tenant_id}/webhooks/{webhook_id}/deliveries", GET;
    WebhookTest => "/v2/admin/tenants/{tenant_id}/webhooks/{webhook_id}/test", POST;
    AuditLogs => "/v2/admin/tenants/{tenant_id}/audit-logs", GET;
    AuditLogsExport => "/v2/admin/tenants/{tenant_id}/audit-logs/export", GET;
    AuditLogsPurge => "/v2/admin/tenants/{tenant_id}/audit-logs/purge", POST;
    AuditLog => "/v2/admin/tenants/{tenant_id}/audit-logs/{id}", GET;
}

/// What a route is about, for the scope check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Sign-in, refresh and sign-out of admin accounts: no credential yet.
    Public,
    /// The caller's own admin account (`/v2/admin/me...`): an admin's Bearer token, any scope.
    OwnAccount,
    /// Global: API keys, admins, the tenant list and the global audit log. `admin` scope
    /// (`readonly` for GET).
    Global,
    /// A tenant itself (`/tenants/{tenant_id}`): a tenant-scoped key may read its own.
    TenantItself,
    /// Under `/tenants/{tenant_id}/`: a tenant-scoped key of that tenant may act.
    InTenant,
}

impl AdminRoute {
    pub fn allows(self, method: &Method) -> bool {
        let bit = match *method {
            Method::GET | Method::HEAD => GET,
            Method::POST => POST,
            Method::PUT => PUT,
            Method::PATCH => PATCH,
            Method::DELETE => DELETE,
            _ => 0,
        };
        self.methods() & bit != 0
    }

    /// `Access-Control-Allow-Methods` for a preflight.
    pub fn allow_header(self) -> String {
        let m = self.methods();
        let mut out = Vec::new();
        for (bit, name) in [
            (GET, "GET, HEAD"),
            (POST, "POST"),
            (PUT, "PUT"),
            (PATCH, "PATCH"),
            (DELETE, "DELETE"),
        ] {
            if m & bit != 0 {
                out.push(name);
            }
        }
        out.push("OPTIONS");
        out.join(", ")
    }

    pub fn reach(self) -> Reach {
        let t = self.template();
        if matches!(
            self,
            AdminRoute::Login
                | AdminRoute::LoginMfa
                | AdminRoute::Refresh
                | AdminRoute::Logout
                | AdminRoute::OpenApi
        ) {
            Reach::Public
        } else if t.starts_with("/v2/admin/me") {
            Reach::OwnAccount
        } else if t == "/v2/admin/tenants/{tenant_id}" {
            Reach::TenantItself
        } else if t.starts_with("/v2/admin/tenants/{tenant_id}/") {
            Reach::InTenant
        } else {
            Reach::Global
        }
    }

    /// The route of an admin path, if any (no trailing slash: the caller strips one).
    pub fn from_path(path: &str) -> Option<AdminRoute> {
        if !path.starts_with("/v2/admin/") {
            return None;
        }
        AdminRoute::ALL
            .iter()
            .copied()
            .find(|r| params(r.template(), path).is_some())
    }

    /// The path's parameters, in template order.
    pub fn params(self, path: &str) -> Vec<String> {
        let path = if path.len() > 1 {
            path.strip_suffix('/').unwrap_or(path)
        } else {
            path
        };
        params(self.template(), path)
            .unwrap_or_default()
            .into_iter()
            .map(|p| crate::http::percent_decode(p.as_bytes()))
            .collect()
    }
}

/// Matches `path` against `template`: the parameters when it matches.
fn params<'a>(template: &str, path: &'a str) -> Option<Vec<&'a str>> {
    let mut out = Vec::new();
    let mut t = template.split('/');
    let mut p = path.split('/');
    loop {
        match (t.next(), p.next()) {
            (None, None) => return Some(out),
            (Some(ts), Some(ps)) => {
                if ts.starts_with('{') {
                    if ps.is_empty() || ps.len() > MAX_PARAM {
                        return None;
                    }
                    out.push(ps);
                } else if ts != ps {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_their_templates() {
        assert_eq!(
            AdminRoute::from_path("/v2/admin/api-keys"),
            Some(AdminRoute::ApiKeys)
        );
        assert_eq!(
            AdminRoute::from_path("/v2/admin/tenants/acme/clients/web"),
            Some(AdminRoute::Client)
        );
        assert_eq!(
            AdminRoute::from_path("/v2/admin/tenants/acme/audit-logs/export"),
            Some(AdminRoute::AuditLogsExport)
        );
        assert_eq!(
            AdminRoute::Client.params("/v2/admin/tenants/acme/clients/my%20app/"),
            vec!["acme".to_string(), "my app".to_string()]
        );
        assert_eq!(AdminRoute::from_path("/v2/admin/tenants//clients"), None);
        assert_eq!(AdminRoute::from_path("/v2/admin/nothing"), None);
        assert_eq!(
            AdminRoute::from_path(&format!("/v2/admin/tenants/{}", "a".repeat(129))),
            None
        );
        assert_eq!(AdminRoute::Tenant.reach(), Reach::TenantItself);
        assert_eq!(AdminRoute::Clients.reach(), Reach::InTenant);
        assert_eq!(AdminRoute::Tenants.reach(), Reach::Global);
        assert_eq!(
            AdminRoute::ApiKey.allow_header(),
            "GET, HEAD, DELETE, OPTIONS"
        );
    }
}
