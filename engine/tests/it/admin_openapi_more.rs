//! The admin API's users, tokens, sessions, webhooks, keys and settings answers against their
//! schemas in the OpenAPI document (the checker and the other types: `admin_openapi_types.rs`).

use serde_json::json;

use super::admin_openapi::document;
use super::admin_openapi_types::{conforms, s, AT, ID};

#[test]
fn the_user_token_session_webhook_and_settings_answers_match_their_schemas() {
    use protocol::admin_hooks as h;
    use protocol::admin_users as u;
    let user = |full: bool| u::UserInfo {
        id: s(ID),
        tenant_id: s(ID),
        email: s("a@b.c"),
        email_verified: full,
        name: full.then(|| s("A")),
        disabled: full,
        disabled_at: full.then(|| s(AT)),
        disabled_reason: full.then(|| s("abuse")),
        custom_fields: json!({"a": 1}),
        app_metadata: json!({}),
        metadata: json!({}),
        mfa_enabled: full,
        created_at: s(AT),
    };
    conforms("UserInfo", user(true), user(false));
    let users = |full: bool| u::UserList {
        users: if full { vec![user(true)] } else { vec![] },
        total_count: 1,
        page: 1,
        page_size: 25,
    };
    conforms("UserList", users(true), users(false));
    let token = |full: bool| u::TokenInfo {
        id: s(ID),
        user_id: s(ID),
        user_email: s("a@b.c"),
        client_id: s("web"),
        issued_at: s(AT),
        expires_at: s(AT),
        created_at: s(AT),
        status: if full { "revoked" } else { "active" },
        revoked_at: full.then(|| s(AT)),
        scopes: full.then(|| vec![s("openid")]),
    };
    conforms("TokenInfo", token(true), token(false));
    let tokens = |full: bool| u::TokenList {
        tokens: if full { vec![token(true)] } else { vec![] },
        total_count: 0,
        page: 1,
        page_size: 25,
    };
    conforms("TokenList", tokens(true), tokens(false));
    let count = || u::ClientCount {
        client_id: s("web"),
        count: 2,
    };
    conforms("ClientCount", count(), count());
    let stats = |full: bool| u::TokenStats {
        total_active: 1,
        total_revoked: 0,
        total_expired: 0,
        issued_today: 1,
        revoked_today: 0,
        avg_lifetime_hours: if full { 720.5 } else { 0.0 },
        by_client: if full { vec![count()] } else { vec![] },
    };
    conforms("TokenStats", stats(true), stats(false));
    let revoked = || u::RevokeResponse {
        revoked_count: 3,
        message: s("3 revoked"),
    };
    conforms("RevokeResponse", revoked(), revoked());
    let session = |full: bool| u::SessionInfo {
        id: s(ID),
        user_id: s(ID),
        user_email: s("a@b.c"),
        client_id: s("web"),
        status: if full { "revoked" } else { "expired" },
        amr: vec![s("pwd")],
        created_at: s(AT),
        expires_at: s(AT),
        revoked_at: full.then(|| s(AT)),
    };
    conforms("SessionInfo", session(true), session(false));
    let sessions = |full: bool| u::SessionList {
        sessions: if full { vec![session(true)] } else { vec![] },
        total: 1,
        page: 1,
        page_size: 25,
        total_pages: 1,
    };
    conforms("SessionList", sessions(true), sessions(false));
    let device = || u::DeviceCount {
        device_type: s("desktop"),
        count: 1,
    };
    conforms("DeviceCount", device(), device());
    let session_stats = |full: bool| u::SessionStats {
        total_active: 1,
        total_revoked: 0,
        total_expired: 0,
        created_today: 1,
        by_client: if full { vec![count()] } else { vec![] },
        by_device: if full { vec![device()] } else { vec![] },
    };
    conforms("SessionStats", session_stats(true), session_stats(false));
    let hook = |full: bool| h::WebhookInfo {
        id: s(ID),
        tenant_id: s(ID),
        url: s("https://hooks.example/x"),
        events: vec![s("*")],
        created_at: s(AT),
        secret: full.then(|| s("whsec")),
    };
    conforms("WebhookInfo", hook(true), hook(false));
    let delivery = |full: bool| h::DeliveryInfo {
        id: s(ID),
        webhook_id: s(ID),
        event_id: s(ID),
        event_type: s("user.created"),
        status: s(if full { "failed" } else { "pending" }),
        attempts: 1,
        http_status: full.then_some(502),
        last_error: full.then(|| s("bad gateway")),
        last_attempt_at: full.then(|| s(AT)),
        next_retry_at: full.then(|| s(AT)),
        delivered_at: full.then(|| s(AT)),
        created_at: s(AT),
    };
    conforms("DeliveryInfo", delivery(true), delivery(false));
    let deliveries = |full: bool| h::DeliveryList {
        deliveries: if full { vec![delivery(true)] } else { vec![] },
        limit: 50,
        offset: 0,
        has_more: full,
    };
    conforms("DeliveryList", deliveries(true), deliveries(false));
    let test = || h::WebhookTestResponse {
        enqueued: true,
        delivery_id: s(ID),
    };
    conforms("WebhookTestResponse", test(), test());
    let key = |full: bool| h::SigningKeyInfo {
        kid: s("k1"),
        alg: s(if full { "RS256" } else { "EdDSA" }),
        key_use: "sig",
        status: s(if full { "retiring" } else { "active" }),
        owner: s(if full { "tenant" } else { "global" }),
        tenant_id: full.then(|| s(ID)),
        created_at: s(AT),
        activates_at: s(AT),
        retired_at: full.then(|| s(AT)),
    };
    conforms("SigningKeyInfo", key(true), key(false));
    let keys = |full: bool| h::KeyList {
        keys: if full { vec![key(true)] } else { vec![] },
    };
    conforms("KeyList", keys(true), keys(false));
    let rotated = || h::Rotated {
        kid: s("k2"),
        alg: s("EdDSA"),
        activates_at: s(AT),
        retired: 1,
    };
    conforms("Rotated", rotated(), rotated());
    let rotation = |full: bool| h::RotateKeysResponse {
        kid: s("k2"),
        grace_seconds: if full { 900 } else { 0 },
        message: s("1 new key(s)"),
        rotated: if full {
            vec![rotated(), rotated()]
        } else {
            vec![rotated()]
        },
    };
    conforms("RotateKeysResponse", rotation(true), rotation(false));
    // The settings as `admin::settings` answers them: the stored ones and the issuer mode.
    let settings = |full: bool| {
        let opt = |v: &str| full.then(|| s(v));
        let stored = store::TenantSettings {
            session_lifetime_seconds: full.then_some(3600),
            refresh_token_lifetime_seconds: full.then_some(86_400),
            access_token_lifetime_seconds: full.then_some(900),
            security: store::SecuritySettings {
                password_min_length: full.then_some(12),
                require_uppercase: full.then_some(true),
                require_lowercase: full.then_some(false),
                require_numbers: full.then_some(true),
                require_special_chars: full.then_some(true),
            },
            logo_url: opt("https://example.com/logo.png"),
            brand_color: opt("#123456"),
            secondary_color: opt("#654321"),
            favicon_url: opt("https://example.com/favicon.ico"),
        };
        let mut v = serde_json::to_value(stored).unwrap();
        v["issuerMode"] = json!(if full { "path" } else { "global" });
        v
    };
    conforms("TenantSettings", settings(true), settings(false));
    // A tenant as `admin::tenants` answers it: its fields and its settings.
    let tenant = |full: bool| {
        let mut v = serde_json::to_value(protocol::admin::TenantInfo {
            id: s(ID),
            slug: s("acme"),
            name: s("Acme"),
            issuer_mode: s(if full { "path" } else { "global" }),
            created_at: s(AT),
        })
        .unwrap();
        v["settings"] = settings(full);
        v
    };
    conforms("TenantInfo", tenant(true), tenant(false));
    let security = &document()["components"]["schemas"]["TenantSettings"]["properties"]["security"];
    assert_eq!(security["additionalProperties"], false);
    assert_eq!(
        security["properties"].as_object().unwrap().len(),
        settings(true)["security"].as_object().unwrap().len()
    );
}
