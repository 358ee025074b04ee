//! The wire types' JSON against their schemas in `openapi.json`: each type serialised with
//! every optional field set (then the schema must name exactly its members) and with none set
//! (then every member the schema requires must still be there), validated by a small JSON
//! Schema checker (the keywords the document uses). A field added, renamed or made optional in
//! `protocol` without the document fails here.

use serde::Serialize;
use serde_json::{json, Value};

use super::admin_openapi::{document, resolve};
use crate::support::{status_and_json, TestServer, PASSWORD};
use protocol::admin as a;

/// Checks `v` against `schema`: `$ref`, `type`, `const`, `enum`, `properties`, `required`,
/// `additionalProperties`, `items`, `oneOf`, `minimum`, `maximum` and the `uuid` and
/// `date-time` formats.
fn check(doc: &Value, schema: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    let mut fail = |why: String| errs.push(format!("{at}: {why}"));
    if let Some(c) = schema.get("const") {
        if c != v {
            fail(format!("{v} is not {c}"));
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(v) {
            fail(format!("{v} is not one of {options:?}"));
        }
    }
    if let Some(t) = schema.get("type") {
        let kinds: Vec<&str> = match t {
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            t => vec![t.as_str().unwrap_or("")],
        };
        let ok = kinds.iter().any(|k| match *k {
            "null" => v.is_null(),
            "boolean" => v.is_boolean(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "array" => v.is_array(),
            "object" => v.is_object(),
            _ => false,
        });
        if !ok {
            fail(format!("{v} is not of type {t}"));
            return;
        }
    }
    if let (Some(n), Some(min)) = (v.as_f64(), schema.get("minimum").and_then(Value::as_f64)) {
        if n < min {
            fail(format!("{n} < {min}"));
        }
    }
    if let (Some(n), Some(max)) = (v.as_f64(), schema.get("maximum").and_then(Value::as_f64)) {
        if n > max {
            fail(format!("{n} > {max}"));
        }
    }
    if let Some(s) = v.as_str() {
        match schema.get("format").and_then(Value::as_str) {
            Some("uuid") if uuid::Uuid::parse_str(s).is_err() => fail(format!("{s} is no uuid")),
            Some("date-time") if a::parse_time(s).is_none() || !s.contains('T') => {
                fail(format!("{s} is no RFC 3339 time"))
            }
            _ => {}
        }
    }
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let passing = options
            .iter()
            .filter(|o| {
                let mut e = Vec::new();
                check(doc, o, v, at, &mut e);
                e.is_empty()
            })
            .count();
        if passing != 1 {
            fail(format!("{passing} of oneOf's schemas match"));
        }
    }
    if let (Some(items), Some(values)) = (schema.get("items"), v.as_array()) {
        for (i, item) in values.iter().enumerate() {
            check(doc, items, item, &format!("{at}[{i}]"), errs);
        }
    }
    let Some(members) = v.as_object() else {
        return;
    };
    let props = schema.get("properties").and_then(Value::as_object);
    for name in schema["required"].as_array().into_iter().flatten() {
        let name = name.as_str().unwrap_or("");
        if !members.contains_key(name) {
            errs.push(format!("{at}: required member {name} is missing"));
        }
    }
    for (name, value) in members {
        let at = format!("{at}.{name}");
        match (
            props.and_then(|p| p.get(name)),
            schema.get("additionalProperties"),
        ) {
            (Some(s), _) => check(doc, s, value, &at, errs),
            (None, Some(Value::Bool(false))) => errs.push(format!("{at}: not in the schema")),
            (None, Some(extra)) if extra.is_object() => check(doc, extra, value, &at, errs),
            (None, _) => {}
        }
    }
}

/// Validates a full and a minimal instance of a type against `#/components/schemas/{name}`; a
/// closed schema must name exactly the full instance's members.
pub(crate) fn conforms<T: Serialize>(name: &str, full: T, minimal: T) {
    let doc = document();
    let schema = doc["components"]["schemas"][name].clone();
    assert!(schema.is_object(), "no schema {name}");
    let mut errs = Vec::new();
    let full = serde_json::to_value(full).unwrap();
    check(&doc, &schema, &full, name, &mut errs);
    check(
        &doc,
        &schema,
        &serde_json::to_value(minimal).unwrap(),
        name,
        &mut errs,
    );
    if schema["additionalProperties"] == false {
        let declared: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        let present: Vec<&String> = full.as_object().unwrap().keys().collect();
        for d in declared.iter().filter(|d| !present.contains(d)) {
            errs.push(format!("{name}: {d} is in the schema, not in the type"));
        }
    }
    assert!(errs.is_empty(), "{}", errs.join("\n"));
}

pub(crate) const ID: &str = "0190b6a4-8f0e-7c1a-9d3e-2f4b5a6c7d8e";
pub(crate) const AT: &str = "2026-12-07T10:00:00Z";

pub(crate) fn s(text: &str) -> String {
    text.to_string()
}

fn api_key(full: bool) -> a::ApiKeyInfo {
    let opt = |v: &str| full.then(|| s(v));
    a::ApiKeyInfo {
        id: s(ID),
        name: s("ci"),
        key_prefix: s("hjk_abcdefgh"),
        scope: s("tenant:acme"),
        created_by: s("cli"),
        created_at: s(AT),
        last_used_at: opt(AT),
        expires_at: opt(AT),
        revoked_at: opt(AT),
        is_active: !full,
    }
}

fn created_key(full: bool) -> a::CreatedApiKey {
    a::CreatedApiKey {
        id: s(ID),
        name: s("ci"),
        token: s("hjk_secret"),
        key_prefix: s("hjk_secr"),
        scope: s("admin"),
        expires_at: full.then(|| s(AT)),
        created_at: s(AT),
    }
}

fn audit_entry(full: bool) -> a::AuditLogEntry {
    let opt = |v: &str| full.then(|| s(v));
    a::AuditLogEntry {
        id: s(ID),
        tenant_id: opt(ID),
        action: s("client.create"),
        actor_type: s("api_key"),
        actor_id: opt(ID),
        actor_name: opt("ci"),
        target_type: opt("client"),
        target_id: opt("web"),
        ip_address: opt("127.0.0.1"),
        user_agent: opt("curl"),
        request_id: opt("r-1"),
        metadata: if full {
            json!({"scope": "admin"})
        } else {
            json!({})
        },
        result: s("success"),
        created_at: s(AT),
    }
}

fn client(full: bool) -> a::ClientInfo {
    let ttl = full.then_some(900);
    let alg = |v: &str| full.then(|| s(v));
    a::ClientInfo {
        id: s(ID),
        tenant_id: s(ID),
        client_id: s("web"),
        name: s("Web"),
        client_type: s(if full { "confidential" } else { "public" }),
        redirect_uris: vec![s("https://app.example/cb")],
        post_logout_uris: vec![],
        allowed_origins: vec![s("https://app.example")],
        scopes: vec![s("openid")],
        grant_types: vec![s("authorization_code")],
        require_email_verification: full,
        third_party: false,
        access_token_ttl: ttl,
        refresh_token_ttl: ttl,
        id_token_ttl: ttl,
        id_token_alg: alg("RS256"),
        access_token_alg: alg("EdDSA"),
        created_at: s(AT),
        secret: full.then(|| s("secret")),
    }
}

fn admin(full: bool) -> a::AdminInfo {
    a::AdminInfo {
        id: s(ID),
        email: s("ops@example.com"),
        name: full.then(|| s("Ops")),
        admin_type: s(if full { "tenant" } else { "global" }),
        scope: s(if full { "tenant:acme" } else { "admin" }),
        tenant_access: if full {
            vec![a::TenantAccess {
                tenant_slug: s("acme"),
                role: s("owner"),
            }]
        } else {
            vec![]
        },
        status: s(if full { "disabled" } else { "active" }),
        mfa_enabled: full,
        last_seen_at: full.then(|| s(AT)),
        disabled_at: full.then(|| s(AT)),
        created_at: s(AT),
        updated_at: s(AT),
    }
}

fn tokens(full: bool) -> a::AdminTokensResponse {
    a::AdminTokensResponse {
        access_token: s("eyJ"),
        token_type: "Bearer",
        expires_in: 900,
        refresh_token: s("r"),
        admin: admin(full),
    }
}

fn mfa_required() -> protocol::account::MfaRequiredResponse {
    protocol::account::MfaRequiredResponse {
        mfa_required: true,
        mfa_token: s("m"),
        amr: vec!["pwd"],
        available_factors: vec!["totp"],
        preferred_factor: "totp",
        expires_in: 300,
    }
}

#[test]
fn the_admin_api_answers_match_their_schemas() {
    conforms("ApiKeyInfo", api_key(true), api_key(false));
    conforms("CreatedApiKey", created_key(true), created_key(false));
    let rotated = |full| a::RotatedApiKey {
        old_key_id: s(ID),
        new_key: created_key(full),
    };
    conforms("RotatedApiKey", rotated(true), rotated(false));
    conforms("AuditLogEntry", audit_entry(true), audit_entry(false));
    let page = |full: bool| a::Page {
        items: vec![audit_entry(full)],
        next_cursor: full.then(|| s("1700000000.x")),
        total: full.then_some(3),
    };
    conforms("AuditLogPage", page(true), page(false));
    let purged = || a::PurgeResponse {
        deleted: 3,
        before: s(AT),
    };
    conforms("PurgeResponse", purged(), purged());
    // TenantInfo: with its settings, in admin_openapi_more.rs.
    conforms("ClientInfo", client(true), client(false));
    let revoked = || a::RevokedSecret {
        client_id: s("web"),
        new_secret: s("secret"),
        message: s("shown once"),
    };
    conforms("RevokedSecret", revoked(), revoked());
    conforms("AdminInfo", admin(true), admin(false));
    let list = |full: bool| a::AdminList {
        admins: if full {
            vec![admin(true), admin(false)]
        } else {
            vec![]
        },
        total: if full { 2 } else { 0 },
    };
    conforms("AdminList", list(true), list(false));
    conforms("AdminTokensResponse", tokens(true), tokens(false));
    let me = |full| a::AdminMe {
        sub: s(ID),
        aud: protocol::token::ADMIN_AUDIENCE,
        admin: admin(full),
    };
    conforms("AdminMe", me(true), me(false));
    conforms("MfaRequiredResponse", mfa_required(), mfa_required());
    let enroll = || protocol::account::TotpEnrollResponse {
        secret_base32: s("JBSWY3DP"),
        otpauth_url: s("otpauth://totp/x"),
    };
    conforms("TotpEnrollResponse", enroll(), enroll());
}

#[test]
fn error_bodies_match_their_schemas() {
    use protocol::{ApiError, ErrorCode, OAuthError, OAuthErrorCode};
    let codes = document()["components"]["schemas"]["ErrorCode"]["enum"].clone();
    let all = [
        ErrorCode::InvalidJson,
        ErrorCode::BadRequest,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::RateLimitExceeded,
        ErrorCode::Unavailable,
        ErrorCode::FirstPartyRequired,
    ];
    for code in all {
        assert!(
            codes.as_array().unwrap().contains(&json!(code.as_str())),
            "{code:?}"
        );
    }
    let full = ApiError::new(ErrorCode::BadRequest, "weak")
        .with_field("password")
        .with("retry_after", 3u64);
    conforms(
        "Error",
        full,
        ApiError::new(ErrorCode::NotFound, "no such route"),
    );
    conforms(
        "Error",
        ApiError::new(ErrorCode::InvalidJson, "bad").with_text("EOF"),
        ApiError::new(ErrorCode::Timeout, "slow"),
    );
    conforms(
        "OAuthError",
        OAuthError::invalid_client(),
        OAuthError::new(OAuthErrorCode::ServerError, "x"),
    );
}

/// Every `ErrorCode` is in the `ErrorCode` enum of the document (the codes are listed by
/// `as_str`, so each one's string is looked up by its status's neighbours).
#[test]
fn the_error_code_enum_is_every_code() {
    let doc = document();
    let listed: Vec<String> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let source = include_str!("../../../protocol/src/error.rs");
    let in_code: Vec<String> = source
        .split("pub const fn as_str(self)")
        .nth(1)
        .and_then(|rest| rest.split("pub const fn status").next())
        .unwrap()
        .lines()
        .filter(|l| l.contains("ErrorCode::"))
        .filter_map(|l| l.split('"').nth(1))
        .map(str::to_string)
        .collect();
    assert_eq!(listed, in_code);
}

fn v<T: Serialize>(x: &T) -> Value {
    serde_json::to_value(x).unwrap()
}

fn public_types() -> Vec<(&'static str, Value, Value)> {
    use protocol::account::*;
    use protocol::auth::*;
    let mut out = Vec::new();
    let token = |full: bool| TokenResponse {
        user_id: full.then(|| s(ID)),
        access_token: s("eyJ"),
        token_type: "Bearer",
        expires_in: 900,
        refresh_token: full.then(|| s("r")),
    };
    out.push(("TokenResponse", v(&token(true)), v(&token(false))));
    let pending = PendingVerification {
        user_id: s(ID),
        email_verification_required: true,
    };
    out.push(("PendingVerification", v(&pending), v(&pending)));
    let code = |full: bool| protocol::oidc::CodeTokenResponse {
        access_token: s("eyJ"),
        token_type: "Bearer",
        expires_in: 900,
        refresh_token: full.then(|| s("r")),
        id_token: full.then(|| s("eyJ")),
        scope: s("openid"),
    };
    out.push(("CodeTokenResponse", v(&code(true)), v(&code(false))));
    let me = |full: bool| MeResponse {
        sub: s(ID),
        tid: s(ID),
        aud: s("web"),
        amr: vec![s("pwd")],
        custom: json!({}),
        user_metadata: json!(null),
        exp: 2,
        iat: 1,
        iss: s("https://id.example"),
        scp: if full { s("openid") } else { String::new() },
    };
    out.push(("MeResponse", v(&me(true)), v(&me(false))));
    let info = |full: bool| UserInfoResponse {
        sub: s(ID),
        email: full.then(|| s("a@b.c")),
        email_verified: full.then_some(true),
        name: full.then(|| s("A")),
        tenant_id: full.then(|| s(ID)),
        custom_fields: full.then(|| json!({})),
        user_metadata: full.then(|| json!({})),
        app_metadata: full.then(|| json!({})),
        created_at: full.then_some(1),
        updated_at: full.then_some(2),
    };
    out.push(("UserInfoResponse", v(&info(true)), v(&info(false))));
    let logout = LogoutResponse {
        post_logout_redirect_uri: s("https://app.example/"),
    };
    out.push(("LogoutResponse", v(&logout), v(&logout)));
    out.push((
        "CsrfResponse",
        v(&CsrfResponse { csrf_token: s("c") }),
        json!({"csrf_token": "c"}),
    ));
    let policy = PasswordPolicyResponse {
        configured: true,
        tenant_id: s("acme"),
        min_length: 8,
        max_length: 1024,
        require_uppercase: true,
        require_lowercase: true,
        require_numbers: true,
        require_symbols: false,
        max_history: 0,
        breach_detection: false,
        common_password: true,
        personal_info: false,
    };
    out.push(("PasswordPolicyResponse", v(&policy), v(&policy)));
    let providers = ProvidersResponse { providers: vec![] };
    out.push(("ProvidersResponse", v(&providers), v(&providers)));
    let config = |full: bool| AuthConfigResponse {
        tenant_name: s("Acme"),
        tenant_slug: s("acme"),
        client_name: s("Web"),
        social_providers: vec![],
        password_enabled: true,
        features: [("mfa", true)].into_iter().collect(),
        require_email_verification: full,
    };
    out.push(("AuthConfigResponse", v(&config(true)), v(&config(false))));
    let profile = CompleteProfileResponse {
        user_id: s(ID),
        custom_fields: json!({"a": 1}),
    };
    out.push(("CompleteProfileResponse", v(&profile), v(&profile)));
    let verify = TotpVerifyResponse {
        enabled: true,
        recovery_codes: vec![s("a")],
    };
    out.push(("TotpVerifyResponse", v(&verify), v(&verify)));
    let disable = TotpDisableResponse { disabled: true };
    out.push(("TotpDisableResponse", v(&disable), v(&disable)));
    let rotate = RecoveryRotateResponse {
        rotated: true,
        recovery_codes: vec![s("a")],
        codes: vec![s("a")],
    };
    out.push(("RecoveryRotateResponse", v(&rotate), v(&rotate)));
    let factors = |full: bool| FactorsResponse {
        available_factors: vec!["totp"],
        preferred_factor: full.then_some("totp"),
        recovery_codes_left: 10,
    };
    out.push(("FactorsResponse", v(&factors(true)), v(&factors(false))));
    let status = StatusResponse { status: "ok" };
    out.push(("StatusResponse", v(&status), v(&status)));
    out
}

#[test]
fn the_public_api_answers_match_their_schemas() {
    for (name, full, minimal) in public_types() {
        conforms(name, full, minimal);
    }
    conforms(
        "Ping",
        protocol::system::Ping::OK,
        protocol::system::Ping::OK,
    );
    let health = |status, cluster| protocol::system::Health {
        status,
        components: protocol::system::HealthComponents {
            database: "ok",
            redis: "disabled",
            keystore: "ok",
        },
        version: "0.2.0",
        cluster,
    };
    conforms("Health", health("ok", None), health("draining", None));
    let cluster = Some(protocol::system::Cluster::NONE);
    conforms(
        "Readiness",
        health("ready", cluster),
        health("unavailable", cluster),
    );
    let jwks = protocol::token::Jwks {
        keys: vec![
            protocol::token::Jwk::ed25519("k1", "x"),
            protocol::token::Jwk::rsa("k2", "n", "AQAB"),
        ],
    };
    conforms("Jwks", jwks.clone(), protocol::token::Jwks { keys: vec![] });
    let introspection = protocol::oidc::Introspection {
        active: true,
        scope: Some(s("openid")),
        client_id: Some(s("web")),
        sub: Some(s(ID)),
        exp: Some(2),
        iat: Some(1),
        nbf: Some(1),
        iss: Some(s("https://id.example")),
        aud: Some(s("web")),
        jti: Some(s("j")),
        token_type: Some("Bearer"),
        tid: Some(s(ID)),
    };
    conforms(
        "Introspection",
        introspection,
        protocol::oidc::Introspection::inactive(),
    );
}

/// Checks a live answer against the document's schema for its operation and status.
fn answer_conforms(doc: &Value, path: &str, method: &str, status: u16, body: &Value) {
    let op = &doc["paths"][path][method];
    let response = resolve(doc, &op["responses"][status.to_string()]);
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path}: {status} is not documented as JSON"
    );
    let mut errs = Vec::new();
    check(
        doc,
        schema,
        body,
        &format!("{method} {path} {status}"),
        &mut errs,
    );
    assert!(errs.is_empty(), "{}", errs.join("\n"));
}

#[tokio::test]
async fn live_public_answers_match_their_schemas() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    let doc = document();
    for (path, template) in [
        ("/ping".to_string(), "/ping"),
        ("/health".to_string(), "/health"),
        ("/readyz".to_string(), "/readyz"),
        ("/v2/csrf".to_string(), "/v2/csrf"),
        (
            "/.well-known/jwks.json".to_string(),
            "/.well-known/jwks.json",
        ),
        (
            "/.well-known/openid-configuration".to_string(),
            "/.well-known/openid-configuration",
        ),
        (
            format!("/t/{}/.well-known/openid-configuration", fx.slug()),
            "/t/{slug}/.well-known/openid-configuration",
        ),
        (
            format!("/.well-known/jwks/{}.json", fx.slug()),
            "/.well-known/jwks/{slug}.json",
        ),
        (
            format!("/v2/auth/password-policy?tenant_id={}", fx.slug()),
            "/v2/auth/password-policy",
        ),
        (
            format!("/v2/auth/providers?tenant_id={}", fx.slug()),
            "/v2/auth/providers",
        ),
        (
            format!("/v2/auth/config?client_id={}", fx.client_id()),
            "/v2/auth/config",
        ),
        ("/v2/me".to_string(), "/v2/me"),
        (
            "/t/nobody/.well-known/openid-configuration".to_string(),
            "/t/{slug}/.well-known/openid-configuration",
        ),
    ] {
        let (status, body) = status_and_json(s.get(&path).await).await;
        answer_conforms(&doc, template, "get", status, &body);
    }
    let body = s.register(&fx, "openapi@example.com").await;
    answer_conforms(&doc, "/v2/auth/register", "post", 200, &body);
    let (status, body) = s.login(&fx, "openapi@example.com", PASSWORD).await;
    answer_conforms(&doc, "/v2/auth/login", "post", status, &body);
    let access = body["access_token"].as_str().unwrap();
    let (status, body) = status_and_json(s.get_bearer("/v2/me", access).await).await;
    answer_conforms(&doc, "/v2/me", "get", status, &body);
    let (status, body) = status_and_json(s.get_bearer("/userinfo", access).await).await;
    answer_conforms(&doc, "/userinfo", "get", status, &body);
    let (status, body) = status_and_json(
        s.post_form("/oauth2/token", &[("grant_type", "nope")])
            .await,
    )
    .await;
    answer_conforms(&doc, "/oauth2/token", "post", status, &body);
}
