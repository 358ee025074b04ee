//! What an account may say about itself, and when its tokens stop working: user metadata
//! never reaches a token, app metadata (operator-set) does; hostile email addresses and
//! oversized metadata are refused; a disabled user's, another tenant's or a foreign issuer's
//! tokens are refused on `/v2/me` and `/userinfo`.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use protocol::token::AccessClaims;
use serde_json::{json, Value};

use crate::support::{cookie_value, set_cookies, status_and_json, Fixture, TestServer, PASSWORD};

fn str_of<'a>(body: &'a Value, field: &str) -> &'a str {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string in {body}"))
}

/// The claims of a JWT, decoded without verification (the server verified it).
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn assert_error(status: u16, body: &Value, want_status: u16, code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["code"], code, "{body}");
}

async fn register_with(srv: &TestServer, fx: &Fixture, extra: Value) -> (u16, Value) {
    let mut body = json!({
        "tenant_id": fx.slug(),
        "client_id": fx.client_id(),
        "email": "ada@example.com",
        "password": PASSWORD,
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    status_and_json(srv.post_json("/v2/auth/register", &body).await).await
}

async fn no_user(srv: &TestServer, fx: &Fixture, email: &str) {
    assert!(
        srv.store()
            .find_user_by_email(fx.tenant.id, email)
            .await
            .unwrap()
            .is_none(),
        "{email} must not be registered"
    );
}

async fn session_cookie(srv: &TestServer, fx: &Fixture, email: &str) -> String {
    let resp = srv
        .post_json(
            "/v2/session/login",
            &json!({
                "tenant_id": fx.slug(),
                "client_id": fx.client_id(),
                "email": email,
                "password": PASSWORD,
            }),
        )
        .await;
    assert_eq!(resp.status(), 204);
    format!("sid={}", cookie_value(&set_cookies(&resp), "sid").unwrap())
}

async fn get_with_cookie(srv: &TestServer, path: &str, cookie: &str) -> (u16, Value) {
    let resp = srv
        .client
        .get(srv.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    status_and_json(resp).await
}

/// The report's attack: a sign-up that writes `custom_fields.role = "admin"` no longer mints
/// an admin token. The fields are kept as user metadata, shown back by `/v2/me` and
/// `/userinfo`, and appear in no token (registration, sign-in, refresh, session).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_registered_custom_fields_are_user_metadata_and_never_in_tokens() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    let fields = json!({ "role": "admin", "plan": "pro", "nested": { "ok": [1, 2] } });
    let (status, reg) = register_with(&srv, &fx, json!({ "custom_fields": fields })).await;
    assert_eq!(status, 200, "{reg}");
    let claims = claims_of(str_of(&reg, "access_token"));
    assert!(claims.get("custom").is_none(), "{claims}");

    let (status, login) = srv.login(&fx, "ada@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{login}");
    let (status, refreshed) = srv
        .refresh(fx.client_id(), str_of(&login, "refresh_token"))
        .await;
    assert_eq!(status, 200, "{refreshed}");
    for token in [
        str_of(&login, "access_token"),
        str_of(&refreshed, "access_token"),
    ] {
        assert!(claims_of(token).get("custom").is_none(), "{token}");
        let (status, me) = status_and_json(srv.get_bearer("/v2/me", token).await).await;
        assert_eq!(status, 200, "{me}");
        assert!(me["custom"].is_null(), "{me}");
        assert!(me["custom"].get("role").is_none(), "{me}");
        assert_eq!(me["user_metadata"], fields, "{me}");
        let (status, info) = status_and_json(srv.get_bearer("/userinfo", token).await).await;
        assert_eq!(status, 200, "{info}");
        assert_eq!(info["custom_fields"], fields, "{info}");
        assert_eq!(info["user_metadata"], fields, "{info}");
        assert_eq!(info["app_metadata"], json!({}), "{info}");
    }
    let cookie = session_cookie(&srv, &fx, "ada@example.com").await;
    let (status, me) = get_with_cookie(&srv, "/v2/me", &cookie).await;
    assert_eq!(status, 200, "{me}");
    assert!(me["custom"].is_null(), "{me}");
    assert_eq!(me["user_metadata"], fields, "{me}");

    // `user_metadata` is the same thing under its own name.
    let (status, reg) = register_with(
        &srv,
        &fx,
        json!({ "email": "bob@example.com", "user_metadata": { "role": "admin" } }),
    )
    .await;
    assert_eq!(status, 200, "{reg}");
    assert!(claims_of(str_of(&reg, "access_token"))
        .get("custom")
        .is_none());
    let (_, me) =
        status_and_json(srv.get_bearer("/v2/me", str_of(&reg, "access_token")).await).await;
    assert_eq!(me["user_metadata"], json!({ "role": "admin" }), "{me}");
    srv.stop().await;
}

/// App metadata set by an operator is the `custom` claim of the tokens issued after it (a
/// refresh, a new sign-in, a new session), not of those issued before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_app_metadata_is_the_custom_claim_of_the_next_token() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    let reg = srv.register(&fx, "ada@example.com").await;
    let before = str_of(&reg, "access_token").to_string();
    let user_id = str_of(&reg, "user_id").parse().unwrap();
    let meta = json!({ "role": "admin", "org": { "id": 7 } });
    srv.store()
        .set_user_app_metadata(user_id, store::Metadata::from_json(meta.clone()))
        .await
        .unwrap()
        .expect("the user exists");

    assert!(claims_of(&before).get("custom").is_none());
    let (status, refreshed) = srv
        .refresh(fx.client_id(), str_of(&reg, "refresh_token"))
        .await;
    assert_eq!(status, 200, "{refreshed}");
    let after = str_of(&refreshed, "access_token");
    assert_eq!(claims_of(after)["custom"], meta);
    let (status, me) = status_and_json(srv.get_bearer("/v2/me", after).await).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["custom"], meta, "{me}");
    assert_eq!(me["user_metadata"], json!({}), "{me}");
    let (status, info) = status_and_json(srv.get_bearer("/userinfo", after).await).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["app_metadata"], meta, "{info}");

    let (status, login) = srv.login(&fx, "ada@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{login}");
    assert_eq!(claims_of(str_of(&login, "access_token"))["custom"], meta);
    let cookie = session_cookie(&srv, &fx, "ada@example.com").await;
    let (status, me) = get_with_cookie(&srv, "/v2/me", &cookie).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["custom"], meta, "{me}");
    srv.stop().await;
}

/// Metadata over 4 KB or 8 levels, a non-object, both names at once, and a name over 200
/// characters are 400 `BAD_REQUEST` naming the field and the rule; nothing is registered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_or_deep_metadata_and_long_names_are_refused() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    let mut deep = json!({});
    for _ in 0..protocol::metadata::MAX_METADATA_DEPTH {
        deep = json!({ "a": deep });
    }
    let big = json!({ "blob": "x".repeat(protocol::metadata::MAX_METADATA_BYTES) });
    // The report's 40 KB of fields.
    let many: serde_json::Map<String, Value> = (0..2000)
        .map(|i| (format!("field{i}"), json!("xxxxxxxxxx")))
        .collect();
    for (extra, field, rule) in [
        (
            json!({ "custom_fields": big }),
            "custom_fields",
            "max_bytes",
        ),
        (
            json!({ "custom_fields": many }),
            "custom_fields",
            "max_bytes",
        ),
        (
            json!({ "custom_fields": deep }),
            "custom_fields",
            "max_depth",
        ),
        (
            json!({ "user_metadata": deep }),
            "user_metadata",
            "max_depth",
        ),
        (
            json!({ "user_metadata": big }),
            "user_metadata",
            "max_bytes",
        ),
        (
            json!({ "custom_fields": [1, 2] }),
            "custom_fields",
            "object",
        ),
        (
            json!({ "custom_fields": "admin" }),
            "custom_fields",
            "object",
        ),
        (json!({ "name": "é".repeat(201) }), "name", "max_length"),
        (
            json!({ "name": "Ada\u{1b}[2J" }),
            "name",
            "control_characters",
        ),
    ] {
        let (status, body) = register_with(&srv, &fx, extra.clone()).await;
        assert_error(status, &body, 400, "BAD_REQUEST");
        assert_eq!(body["detail"]["field"], field, "{extra:.80}: {body}");
        assert_eq!(body["detail"]["rule"], rule, "{extra:.80}: {body}");
    }
    let (status, body) = register_with(
        &srv,
        &fx,
        json!({ "custom_fields": { "a": 1 }, "user_metadata": { "b": 2 } }),
    )
    .await;
    assert_error(status, &body, 400, "BAD_REQUEST");
    assert_eq!(body["detail"]["field"], "user_metadata", "{body}");
    no_user(&srv, &fx, "ada@example.com").await;

    // At the limits it is fine.
    let mut deepest = json!({});
    for _ in 1..protocol::metadata::MAX_METADATA_DEPTH {
        deepest = json!({ "a": deepest });
    }
    let (status, body) = register_with(
        &srv,
        &fx,
        json!({ "custom_fields": deepest, "name": "é".repeat(200) }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    srv.stop().await;
}

/// The report's addresses are refused at sign-up with `detail.field = "email"`; a full-width
/// address is the ASCII one, at sign-up and at sign-in alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_email_addresses_are_refused_and_full_width_is_ascii() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    for bad in [
        "\u{200b}zed@x.com",
        "\u{202e}zed@x.com",
        "\"<script>\"@x.com",
        "zed\u{feff}@x.com",
        "zed@x\u{200d}.com",
        "zed@localhost",
        "ze..d@x.com",
    ] {
        let (status, body) = register_with(&srv, &fx, json!({ "email": bad })).await;
        assert_error(status, &body, 400, "BAD_REQUEST");
        assert_eq!(body["detail"]["field"], "email", "{bad:?}: {body}");
    }
    let (status, reg) = register_with(&srv, &fx, json!({ "email": "ｚｅｄ@x.com" })).await;
    assert_eq!(status, 200, "{reg}");
    let user = srv
        .store()
        .find_user_by_email(fx.tenant.id, "zed@x.com")
        .await
        .unwrap()
        .expect("stored in its ASCII form");
    assert_eq!(user.id.to_string(), str_of(&reg, "user_id"));
    // The same account, whichever form is typed; a second sign-up is a conflict.
    for typed in ["zed@x.com", "ｚｅｄ@x.com", "ＺＥＤ@Ｘ.ＣＯＭ"] {
        let (status, body) = srv.login(&fx, typed, PASSWORD).await;
        assert_eq!(status, 200, "{typed}: {body}");
    }
    let (status, body) = register_with(&srv, &fx, json!({ "email": "zed@x.com" })).await;
    assert_error(status, &body, 409, "CONFLICT");
    // A refused address at sign-in is just wrong credentials.
    let (status, body) = srv.login(&fx, "\u{200b}zed@x.com", PASSWORD).await;
    assert_error(status, &body, 401, "INVALID_CREDENTIALS");
    srv.stop().await;
}

/// A disabled user's still-valid access token (verified and cached by the shard before the
/// disable) and session cookie are refused on `/v2/me` and `/userinfo` within the user cache's
/// TTL; refresh and sign-in are refused at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_users_tokens_are_refused_within_the_user_ttl() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    let reg = srv.register(&fx, "ada@example.com").await;
    let access = str_of(&reg, "access_token").to_string();
    let cookie = session_cookie(&srv, &fx, "ada@example.com").await;
    // Warm every cache: the token's verification and the user.
    for path in ["/v2/me", "/userinfo"] {
        let (status, body) = status_and_json(srv.get_bearer(path, &access).await).await;
        assert_eq!(status, 200, "{path}: {body}");
        let (status, body) = get_with_cookie(&srv, path, &cookie).await;
        assert_eq!(status, 200, "{path}: {body}");
    }

    let user_id = str_of(&reg, "user_id").parse().unwrap();
    let revoked = srv
        .store()
        .set_user_disabled(user_id, true, engine::unix_now())
        .await
        .unwrap();
    assert_eq!(revoked, Some(2), "the refresh family and the session");
    let disabled_at = Instant::now();

    let ttl = auth::token_cache::USER_TTL;
    let deadline = disabled_at + ttl + Duration::from_secs(2);
    loop {
        let (me, me_body) = status_and_json(srv.get_bearer("/v2/me", &access).await).await;
        let (info, info_body) = status_and_json(srv.get_bearer("/userinfo", &access).await).await;
        if me == 401 && info == 401 {
            assert_eq!(me_body["code"], "TOKEN_INVALID", "{me_body}");
            assert_eq!(info_body["code"], "TOKEN_INVALID", "{info_body}");
            break;
        }
        // Between two reads the user cache may expire: one 401, one 200, then both 401.
        assert!(
            [200, 401].contains(&me) && [200, 401].contains(&info),
            "{me_body} {info_body}"
        );
        assert!(
            Instant::now() < deadline,
            "a disabled user's token still works {:?} after the disable",
            disabled_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(disabled_at.elapsed() <= ttl + Duration::from_secs(1));
    for path in ["/v2/me", "/userinfo"] {
        let (status, body) = get_with_cookie(&srv, path, &cookie).await;
        assert_error(status, &body, 401, "SESSION_EXPIRED");
    }
    let (status, body) = srv
        .refresh(fx.client_id(), str_of(&reg, "refresh_token"))
        .await;
    assert_error(status, &body, 401, "TOKEN_INVALID");
    let (status, body) = srv.login(&fx, "ada@example.com", PASSWORD).await;
    assert_error(status, &body, 401, "INVALID_CREDENTIALS");

    // Enabled again: sign-in works and its tokens are accepted (the old refresh token stays
    // revoked).
    srv.store()
        .set_user_disabled(user_id, false, engine::unix_now())
        .await
        .unwrap();
    let (status, login) = srv.login(&fx, "ada@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{login}");
    let enabled_at = Instant::now();
    loop {
        let (status, body) = status_and_json(
            srv.get_bearer("/v2/me", str_of(&login, "access_token"))
                .await,
        )
        .await;
        if status == 200 {
            break;
        }
        assert!(
            enabled_at.elapsed() < ttl + Duration::from_secs(2),
            "{body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    srv.stop().await;
}

/// Tokens signed with the server's own key but naming another issuer, an unknown tenant,
/// another tenant than the user's, or an unknown user are refused like invalid ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_another_issuer_tenant_or_user_are_refused() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    let other = srv.fixture_with("globex", "globex-web").await;
    let reg = srv.register(&fx, "ada@example.com").await;
    let good: AccessClaims =
        serde_json::from_value(claims_of(str_of(&reg, "access_token"))).unwrap();
    let keys = &srv.handle().app().auth.keys;

    // The same claims, signed again: accepted (the control).
    let token = keys.sign(&good);
    for path in ["/v2/me", "/userinfo"] {
        let (status, body) = status_and_json(srv.get_bearer(path, &token).await).await;
        assert_eq!(status, 200, "{path}: {body}");
    }

    let cases = [
        (
            "another issuer",
            AccessClaims {
                iss: "https://evil.example".into(),
                ..good.clone()
            },
        ),
        (
            "an unknown tenant",
            AccessClaims {
                tid: uuid::Uuid::now_v7().to_string(),
                ..good.clone()
            },
        ),
        (
            "another tenant",
            AccessClaims {
                tid: other.tenant.id.to_string(),
                ..good.clone()
            },
        ),
        (
            "a tenant slug",
            AccessClaims {
                tid: fx.slug().to_string(),
                ..good.clone()
            },
        ),
        (
            "an unknown user",
            AccessClaims {
                sub: uuid::Uuid::now_v7().to_string(),
                ..good.clone()
            },
        ),
        (
            "no user id",
            AccessClaims {
                sub: "admin".into(),
                ..good.clone()
            },
        ),
    ];
    for (what, claims) in cases {
        let token = keys.sign(&claims);
        for path in ["/v2/me", "/userinfo"] {
            let (status, body) = status_and_json(srv.get_bearer(path, &token).await).await;
            assert_eq!(status, 401, "{what} on {path}: {body}");
            assert_eq!(body["code"], "TOKEN_INVALID", "{what} on {path}: {body}");
        }
    }
    srv.stop().await;
}
