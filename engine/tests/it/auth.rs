//! The auth API over real HTTP: register, sign-in, refresh rotation, sign-out, tokens checked
//! by an independent JWT implementation, Go-style hashes, token lifetimes. Bad input is in
//! `input.rs`, the token endpoint and CORS in `oauth.rs`; the helpers here serve all three.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::support::{status_and_json, Fixture, TestServer, PASSWORD};

pub(crate) const SIGN_IN_OK: &str =
    r#"hellojohn_auth_sign_ins_total{method="password",status="success"}"#;

pub(crate) const SIGN_IN_BAD: &str =
    r#"hellojohn_auth_sign_ins_total{method="password",status="invalid_credentials"}"#;

pub(crate) const HASHES: &str = "hellojohn_hash_pool_hashes_total";

pub(crate) fn str_of<'a>(body: &'a Value, field: &str) -> &'a str {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string in {body}"))
}

/// Asserts a login/refresh answer and returns its refresh token.
pub(crate) fn assert_tokens(body: &Value) -> String {
    assert!(!str_of(body, "access_token").is_empty(), "{body}");
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert_eq!(body["expires_in"], 900, "{body}");
    let refresh = str_of(body, "refresh_token");
    // 32 random bytes, base64url without padding.
    assert_eq!(refresh.len(), 43, "{body}");
    refresh.to_string()
}

pub(crate) fn assert_error(status: u16, body: &Value, want_status: u16, code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].is_string(), "{body}");
}

pub(crate) fn assert_oauth_error(status: u16, body: &Value, want_status: u16, error: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    assert!(body.get("code").is_none(), "{body}");
}

pub(crate) async fn oauth_refresh(srv: &TestServer, client_id: &str, token: &str) -> (u16, Value) {
    let resp = srv
        .post_form(
            "/oauth2/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", client_id),
                ("refresh_token", token),
            ],
        )
        .await;
    assert_eq!(resp.headers()["cache-control"], "no-store");
    status_and_json(resp).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_flow_register_login_userinfo_refresh_logout() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    let cid = fx.client_id();

    // Register.
    let resp = srv
        .post_json(
            "/v2/auth/register",
            &json!({
                "tenant_id": fx.slug(),
                "client_id": cid,
                "email": "Ada@Example.com",
                "password": PASSWORD,
            }),
        )
        .await;
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let (status, reg) = status_and_json(resp).await;
    assert_eq!(status, 200, "{reg}");
    let user_id = str_of(&reg, "user_id").to_string();
    uuid::Uuid::parse_str(&user_id).unwrap();
    let reg_refresh = assert_tokens(&reg);
    let login = srv
        .store()
        .find_password_login(fx.tenant.id, "ada@example.com")
        .await
        .unwrap()
        .expect("the user is stored with a normalised email");
    assert_eq!(login.user.id.to_string(), user_id);
    assert!(login
        .password_hash
        .starts_with("$argon2id$v=19$m=64,t=1,p=1$"));

    // Sign in with JSON (any case of the email) and with a form.
    let (status, json_login) = srv.login(&fx, "ADA@example.COM", PASSWORD).await;
    assert_eq!(status, 200, "{json_login}");
    assert!(json_login.get("user_id").is_none(), "{json_login}");
    let json_refresh = assert_tokens(&json_login);
    let resp = srv
        .post_form(
            "/v2/auth/login",
            &[
                ("tenant_id", fx.slug()),
                ("client_id", cid),
                ("email", "ada@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    let (status, form_login) = status_and_json(resp).await;
    assert_eq!(status, 200, "{form_login}");
    let form_refresh = assert_tokens(&form_login);
    let access = str_of(&form_login, "access_token").to_string();

    // userinfo, GET and POST.
    for post in [false, true] {
        let req = if post {
            srv.client.post(srv.url("/userinfo"))
        } else {
            srv.client.get(srv.url("/userinfo"))
        };
        let resp = req.bearer_auth(&access).send().await.unwrap();
        let (status, info) = status_and_json(resp).await;
        assert_eq!(status, 200, "{info}");
        assert_eq!(info["sub"], user_id.as_str());
        assert_eq!(info["email"], "ada@example.com");
        assert_eq!(info["email_verified"], false);
    }
    // Without a token: 401.
    let (status, body) = status_and_json(srv.get("/userinfo").await).await;
    assert_error(status, &body, 401, "UNAUTHORIZED");
    let (status, body) = status_and_json(srv.get_bearer("/userinfo", "not.a.jwt").await).await;
    assert_error(status, &body, 401, "TOKEN_INVALID");

    // /v2/me: the token's claims.
    let (status, me) = status_and_json(srv.get_bearer("/v2/me", &access).await).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["sub"], user_id.as_str());
    assert_eq!(me["tid"], fx.tenant.id.to_string());
    assert_eq!(me["aud"], cid);
    assert_eq!(me["amr"], json!(["pwd"]));
    let exp = me["exp"].as_i64().unwrap();
    let iat = me["iat"].as_i64().unwrap();
    assert_eq!(exp - iat, 900);
    assert!((exp - engine::unix_now() - 900).abs() <= 5, "{me}");

    // Refresh via /v2/auth/refresh: a new refresh token; the old one is spent.
    let (status, r1) = srv.refresh(cid, &json_refresh).await;
    assert_eq!(status, 200, "{r1}");
    let r1_refresh = assert_tokens(&r1);
    assert_ne!(r1_refresh, json_refresh);
    // Refresh via /oauth2/token (form, no tenant).
    let (status, r2) = oauth_refresh(&srv, cid, &r1_refresh).await;
    assert_eq!(status, 200, "{r2}");
    let r2_refresh = assert_tokens(&r2);
    assert_ne!(r2_refresh, r1_refresh);
    assert_ne!(r2_refresh, json_refresh);
    // The access token of a refresh works.
    let (status, me) =
        status_and_json(srv.get_bearer("/v2/me", str_of(&r2, "access_token")).await).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["sub"], user_id.as_str());

    // Logout with Bearer + refresh token: 204; the token is then refused on both routes.
    let resp = srv
        .post_json_bearer(
            "/v2/auth/logout",
            &access,
            &json!({ "client_id": cid, "refresh_token": r2_refresh }),
        )
        .await;
    assert_eq!(resp.status(), 204);
    assert!(resp.bytes().await.unwrap().is_empty());
    let (status, body) = srv.refresh(cid, &r2_refresh).await;
    assert_error(status, &body, 401, "TOKEN_INVALID");
    let (status, body) = oauth_refresh(&srv, cid, &r2_refresh).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    // Idempotent.
    let resp = srv
        .post_json_bearer(
            "/v2/auth/logout",
            &access,
            &json!({ "client_id": cid, "refresh_token": r2_refresh }),
        )
        .await;
    assert_eq!(resp.status(), 204);
    // The other families are untouched by that logout.
    let (status, body) = srv.refresh(cid, &form_refresh).await;
    assert_eq!(status, 200, "{body}");
    let form_refresh = assert_tokens(&body);

    // logout-all: every family of the user (register's and two logins) is revoked.
    let (status, l1) = srv.login(&fx, "ada@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{l1}");
    let (status, l2) = srv.login(&fx, "ada@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{l2}");
    let l1_refresh = assert_tokens(&l1);
    let l2_refresh = assert_tokens(&l2);
    // Another user's tokens survive.
    let other = srv.register(&fx, "bob@example.com").await;
    let other_refresh = assert_tokens(&other);

    let resp = srv
        .post_json_bearer(
            "/v2/auth/logout-all",
            str_of(&l1, "access_token"),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 204);
    for token in [&reg_refresh, &form_refresh, &l1_refresh, &l2_refresh] {
        let (status, body) = srv.refresh(cid, token).await;
        assert_error(status, &body, 401, "TOKEN_INVALID");
    }
    let (status, body) = srv.refresh(cid, &other_refresh).await;
    assert_eq!(status, 200, "{body}");
    // logout-all needs a Bearer.
    let resp = srv
        .client
        .post(srv.url("/v2/auth/logout-all"))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(resp).await;
    assert_error(status, &body, 401, "UNAUTHORIZED");

    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_email_are_indistinguishable_and_both_hash() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    srv.register(&fx, "ada@example.com").await;

    let hashes_before = srv.metric_value(HASHES).await;
    assert_eq!(hashes_before, 1.0, "registration hashes once");

    let (s1, wrong_password) = srv.login(&fx, "ada@example.com", "Wrong-Password-1").await;
    let hashes_after_wrong = srv.metric_value(HASHES).await;
    let (s2, unknown_email) = srv.login(&fx, "nobody@example.com", PASSWORD).await;
    let hashes_after_unknown = srv.metric_value(HASHES).await;

    assert_eq!(s1, 401);
    assert_eq!(s2, 401);
    assert_eq!(wrong_password, unknown_email);
    assert_eq!(wrong_password["code"], "INVALID_CREDENTIALS");
    assert_eq!(hashes_after_wrong - hashes_before, 1.0);
    assert_eq!(hashes_after_unknown - hashes_after_wrong, 1.0);

    // An email that is not even an address is answered the same way, and still hashes.
    let (s3, not_an_email) = srv.login(&fx, "not-an-address", PASSWORD).await;
    assert_eq!(s3, 401);
    assert_eq!(not_an_email, wrong_password);
    assert_eq!(srv.metric_value(HASHES).await - hashes_after_unknown, 1.0);

    let (status, ok) = srv.login(&fx, "ada@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{ok}");

    let text = srv.metrics().await;
    let m = |s: &str| crate::support::metric(&text, s).unwrap_or_else(|| panic!("{s}"));
    assert_eq!(m(SIGN_IN_BAD), 3.0);
    assert_eq!(m(SIGN_IN_OK), 1.0);
    assert_eq!(
        m(r#"hellojohn_auth_sign_ins_total{method="password",status="overloaded"}"#),
        0.0
    );
    assert_eq!(m(HASHES), 5.0);
    assert_eq!(
        m(r#"hellojohn_http_requests_total{method="POST",path="/v2/auth/login",status="401"}"#),
        3.0
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_of_one_token_exactly_one_wins() {
    let srv = Arc::new(TestServer::start().await);
    let fx = srv.fixture().await;
    let reg = srv.register(&fx, "ada@example.com").await;
    let token = assert_tokens(&reg);
    let cid = fx.client_id().to_string();

    const N: usize = 20;
    let barrier = Arc::new(tokio::sync::Barrier::new(N));
    let mut tasks = Vec::new();
    for _ in 0..N {
        let srv = srv.clone();
        let barrier = barrier.clone();
        let token = token.clone();
        let cid = cid.clone();
        tasks.push(tokio::spawn(async move {
            // Each task its own connection, so the requests really are concurrent.
            let client = reqwest::Client::new();
            // Warm the connection first, so the refreshes leave together.
            assert_eq!(
                client.get(srv.url("/ping")).send().await.unwrap().status(),
                200
            );
            barrier.wait().await;
            let resp = client
                .post(srv.url("/v2/auth/refresh"))
                .json(&json!({ "client_id": cid, "refresh_token": token }))
                .send()
                .await
                .unwrap();
            status_and_json(resp).await
        }));
    }
    let mut winners = Vec::new();
    let mut reuse = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            200 => winners.push(assert_tokens(&body)),
            401 => {
                let code = body["code"].as_str().unwrap();
                assert!(
                    code == "REFRESH_TOKEN_REUSE" || code == "TOKEN_INVALID",
                    "{body}"
                );
                reuse += usize::from(code == "REFRESH_TOKEN_REUSE");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one refresh succeeds");
    assert!(reuse >= 1, "the first loser detects the reuse");
    // The reuse revoked the family, the winner's new token included.
    let (status, body) = srv.refresh(&cid, &winners[0]).await;
    assert_error(status, &body, 401, "TOKEN_INVALID");

    let text = srv.metrics().await;
    let m = |s: &str| crate::support::metric(&text, s).unwrap();
    assert_eq!(
        m(r#"hellojohn_auth_sign_ins_total{method="refresh",status="success"}"#),
        1.0
    );
    assert_eq!(
        m(r#"hellojohn_auth_sign_ins_total{method="refresh",status="invalid_credentials"}"#),
        N as f64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reusing_a_rotated_token_revokes_its_family() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    let cid = fx.client_id();
    let reg = srv.register(&fx, "ada@example.com").await;
    let old = assert_tokens(&reg);
    // A second, independent sign-in: its family must survive the reuse of the first.
    let (_, other) = srv.login(&fx, "ada@example.com", PASSWORD).await;
    let other = assert_tokens(&other);

    let (status, body) = srv.refresh(cid, &old).await;
    assert_eq!(status, 200, "{body}");
    let new = assert_tokens(&body);

    let (status, body) = srv.refresh(cid, &old).await;
    assert_error(status, &body, 401, "REFRESH_TOKEN_REUSE");
    let (status, body) = srv.refresh(cid, &new).await;
    assert_error(status, &body, 401, "TOKEN_INVALID");
    // Presenting the old one again: the family is already revoked.
    let (status, body) = srv.refresh(cid, &old).await;
    assert_eq!(status, 401, "{body}");

    let (status, body) = srv.refresh(cid, &other).await;
    assert_eq!(status, 200, "{body}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_with_the_wrong_client_or_tenant_is_refused_and_does_not_burn_the_token() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    srv.add_client(&fx.tenant, "acme-mobile").await;
    let other = srv.fixture_with("globex", "globex-web").await;
    let reg = srv.register(&fx, "ada@example.com").await;
    let token = assert_tokens(&reg);

    let (status, body) = srv.refresh("acme-mobile", &token).await;
    assert_error(status, &body, 401, "TOKEN_INVALID");
    let (status, body) = oauth_refresh(&srv, "acme-mobile", &token).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    let resp = srv
        .post_json(
            "/v2/auth/refresh",
            &json!({ "tenant_id": other.slug(), "client_id": fx.client_id(), "refresh_token": token }),
        )
        .await;
    let (status, body) = status_and_json(resp).await;
    assert_error(status, &body, 401, "TOKEN_INVALID");
    let (status, body) = srv.refresh(fx.client_id(), "bm90LWEtdG9rZW4").await;
    assert_error(status, &body, 401, "TOKEN_INVALID");

    // The rightful client, naming its tenant by UUID, still gets through.
    let resp = srv
        .post_json(
            "/v2/auth/refresh",
            &json!({ "tenant_id": fx.tenant.id.to_string(), "client_id": fx.client_id(), "refresh_token": token }),
        )
        .await;
    let (status, body) = status_and_json(resp).await;
    assert_eq!(status, 200, "{body}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_tokens_verify_with_an_independent_jwt_library_from_the_jwks() {
    use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};

    let srv = TestServer::start().await;
    let fx = srv.fixture().await;

    let (status, oidc) = status_and_json(srv.get("/.well-known/openid-configuration").await).await;
    assert_eq!(status, 200, "{oidc}");
    let issuer = str_of(&oidc, "issuer").to_string();
    assert_eq!(issuer, format!("http://localhost:{}", srv.addr.port()));
    assert_eq!(oidc["jwks_uri"], format!("{issuer}/.well-known/jwks.json"));
    assert_eq!(oidc["token_endpoint"], format!("{issuer}/oauth2/token"));
    assert_eq!(oidc["userinfo_endpoint"], format!("{issuer}/userinfo"));
    assert_eq!(
        oidc["id_token_signing_alg_values_supported"],
        json!(["RS256", "EdDSA"])
    );

    let (status, jwks) = status_and_json(srv.get("/.well-known/jwks.json").await).await;
    assert_eq!(status, 200, "{jwks}");
    let keys = jwks["keys"].as_array().unwrap();
    // The Ed25519 key of access tokens and the RSA key of ID tokens (keys.rs covers RS256).
    assert_eq!(keys.len(), 2, "{jwks}");
    let jwk = keys.iter().find(|k| k["kty"] == "OKP").unwrap();
    assert_eq!(jwk["kty"], "OKP");
    assert_eq!(jwk["crv"], "Ed25519");
    assert_eq!(jwk["alg"], "EdDSA");
    assert_eq!(jwk["use"], "sig");
    let kid = str_of(jwk, "kid");
    let x = str_of(jwk, "x");
    assert!(jwk.get("d").is_none(), "no private part in the JWKS");

    let reg = srv.register(&fx, "ada@example.com").await;
    let (_, login) = srv.login(&fx, "ada@example.com", PASSWORD).await;
    let (_, refreshed) = srv
        .refresh(fx.client_id(), str_of(&login, "refresh_token"))
        .await;

    let key = DecodingKey::from_ed_components(x).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[fx.client_id()]);
    validation.set_issuer(&[issuer.as_str()]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub", "nbf"]);
    validation.validate_nbf = true;
    validation.leeway = 5;
    let mut jtis = std::collections::BTreeSet::new();
    for body in [&reg, &login, &refreshed] {
        let token = str_of(body, "access_token");
        let header = decode_header(token).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(header.kid.as_deref(), Some(kid));
        let data =
            decode::<Value>(token, &key, &validation).unwrap_or_else(|e| panic!("{e}: {token}"));
        let c = data.claims;
        assert_eq!(c["sub"], reg["user_id"]);
        assert_eq!(c["aud"], fx.client_id());
        assert_eq!(c["iss"], issuer.as_str());
        assert_eq!(c["tid"], fx.tenant.id.to_string());
        assert_eq!(c["amr"], json!(["pwd"]));
        assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 900);
        assert!(c["nbf"].is_i64(), "{c}");
        assert_eq!(c["scp"], "openid email profile");
        // A random token id: 16 bytes, base64url.
        let jti = str_of(&c, "jti");
        assert_eq!(jti.len(), 22, "{c}");
        jtis.insert(jti.to_string());
    }
    // Ed25519 is deterministic: without `jti` a refresh in the same second as the sign-in
    // gave back the very same access token.
    assert_eq!(jtis.len(), 3, "{jtis:?}");
    assert_ne!(
        str_of(&login, "access_token"),
        str_of(&refreshed, "access_token")
    );

    // Negative controls: another audience, and a tampered payload, are refused.
    let token = str_of(&login, "access_token");
    let mut other_aud = validation.clone();
    other_aud.set_audience(&["someone-else"]);
    assert!(decode::<Value>(token, &key, &other_aud).is_err());
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let last = parts[1].pop().unwrap();
    parts[1].push(if last == 'A' { 'B' } else { 'A' });
    let tampered = parts.join(".");
    assert!(decode::<Value>(&tampered, &key, &validation).is_err());
    let (status, body) = status_and_json(srv.get_bearer("/v2/me", &tampered).await).await;
    assert_error(status, &body, 401, "TOKEN_INVALID");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_style_hash_is_accepted_and_upgraded_to_current_params_on_sign_in() {
    use argon2::password_hash::{PasswordHasher as _, SaltString};

    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    let reg = srv.register(&fx, "ada@example.com").await;
    let user_id: uuid::Uuid = str_of(&reg, "user_id").parse().unwrap();
    let store = srv.store();
    let current = store
        .find_password_login(fx.tenant.id, "ada@example.com")
        .await
        .unwrap()
        .unwrap()
        .password_hash;

    // What HelloJohn (Go) stores: Argon2id, m=65536, t=3, p=1.
    let go_phc = tokio::task::spawn_blocking(|| {
        let params = argon2::Params::new(65536, 3, 1, Some(32)).unwrap();
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        argon
            .hash_password(PASSWORD.as_bytes(), &salt)
            .unwrap()
            .to_string()
    })
    .await
    .unwrap();
    assert!(
        go_phc.starts_with("$argon2id$v=19$m=65536,t=3,p=1$"),
        "{go_phc}"
    );
    assert!(store
        .upgrade_password_hash(user_id, &current, &go_phc)
        .await
        .unwrap());

    // A wrong password neither signs in nor rewrites the hash.
    let (status, body) = srv.login(&fx, "ada@example.com", "Wrong-Password-1").await;
    assert_error(status, &body, 401, "INVALID_CREDENTIALS");
    let stored = store
        .find_password_login(fx.tenant.id, "ada@example.com")
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert_eq!(stored, go_phc);

    let (status, body) = srv.login(&fx, "ada@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let stored = store
        .find_password_login(fx.tenant.id, "ada@example.com")
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert!(
        stored.starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
        "rehashed with the server's params: {stored}"
    );
    assert_ne!(stored, go_phc);
    assert_ne!(stored, current, "a fresh salt");
    // The upgraded hash still signs in, and is not rewritten again.
    let (status, body) = srv.login(&fx, "ada@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let again = store
        .find_password_login(fx.tenant.id, "ada@example.com")
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert_eq!(again, stored);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_tenant_local_works_end_to_end() {
    let srv = TestServer::start().await;
    let fx = srv.bootstrap().await;
    assert_eq!(fx.slug(), "local");
    assert_eq!(fx.client_id(), "local-app");
    srv.register(&fx, "ada@example.com").await;
    let (status, body) = srv.login(&fx, "ada@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_access_refresh_and_session_tokens_are_refused() {
    let srv = TestServer::with(&[
        ("HELLOJOHN_ACCESS_TOKEN_TTL", "2s"),
        ("HELLOJOHN_REFRESH_TOKEN_TTL", "2s"),
        ("HELLOJOHN_SESSION_TTL", "2s"),
    ])
    .await;
    let fx = srv.fixture().await;
    let issued_at = engine::unix_now();
    let reg = srv.register(&fx, "ada@example.com").await;
    assert_eq!(reg["expires_in"], 2);
    let access = str_of(&reg, "access_token");
    let resp = srv
        .post_json(
            "/v2/session/login",
            &json!({
                "tenant_id": fx.slug(),
                "client_id": fx.client_id(),
                "email": "ada@example.com",
                "password": PASSWORD,
            }),
        )
        .await;
    assert_eq!(resp.status(), 204);
    let sid = crate::support::cookie_value(&crate::support::set_cookies(&resp), "sid").unwrap();
    let userinfo_by_cookie = || {
        srv.client
            .get(srv.url("/userinfo"))
            .header("cookie", format!("sid={sid}"))
            .send()
    };
    if engine::unix_now() < issued_at + 2 {
        let (status, body) = status_and_json(srv.get_bearer("/v2/me", access).await).await;
        assert_eq!(status, 200, "{body}");
    }
    while engine::unix_now() < issued_at + 3 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, body) = status_and_json(srv.get_bearer("/v2/me", access).await).await;
    assert_error(status, &body, 401, "TOKEN_INVALID");
    let (status, body) = srv
        .refresh(fx.client_id(), str_of(&reg, "refresh_token"))
        .await;
    assert_error(status, &body, 401, "TOKEN_INVALID");
    let (status, body) = status_and_json(userinfo_by_cookie().await.unwrap()).await;
    assert_error(status, &body, 401, "SESSION_EXPIRED");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_token_lifetimes_override_the_server_defaults() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    let short = srv
        .store()
        .create_client(
            store::NewClient {
                scopes: vec![],
                access_token_ttl: Some(60),
                refresh_token_ttl: Some(3600),
                ..store::NewClient::new(fx.tenant.id, "short", "short")
            },
            engine::unix_now(),
            None,
        )
        .await
        .unwrap();
    let short_fx = Fixture {
        tenant: fx.tenant.clone(),
        client: short,
    };
    let reg = srv.register(&short_fx, "ada@example.com").await;
    assert_eq!(reg["expires_in"], 60);
    let (status, me) =
        status_and_json(srv.get_bearer("/v2/me", str_of(&reg, "access_token")).await).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        me["exp"].as_i64().unwrap() - me["iat"].as_i64().unwrap(),
        60
    );
    assert!(me.get("scp").is_none(), "no scopes, no scp: {me}");
    let (status, body) = srv.refresh("short", str_of(&reg, "refresh_token")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 60);
    // The server default for the other client.
    let (status, body) = srv.login(&fx, "ada@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 900);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_of_an_unknown_or_already_revoked_token_is_204() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    let reg = srv.register(&fx, "ada@example.com").await;
    let access = str_of(&reg, "access_token");
    for body in [
        json!({ "client_id": fx.client_id(), "refresh_token": "bm90LWEtdG9rZW4" }),
        json!({ "client_id": fx.client_id() }),
        json!({}),
    ] {
        let resp = srv.post_json_bearer("/v2/auth/logout", access, &body).await;
        assert_eq!(resp.status(), 204, "{body}");
    }
    // An empty body with a Bearer is a plain logout too.
    let resp = srv
        .client
        .post(srv.url("/v2/auth/logout"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    // The registration's family was not touched.
    let (status, body) = srv
        .refresh(fx.client_id(), str_of(&reg, "refresh_token"))
        .await;
    assert_eq!(status, 200, "{body}");
    srv.stop().await;
}
