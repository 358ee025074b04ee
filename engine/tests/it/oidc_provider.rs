//! The rest of the OpenID provider: discovery (global and per tenant), confidential clients
//! (`client_secret_basic` and `client_secret_post`), the client-credentials grant, revocation
//! (RFC 7009), introspection (RFC 7662), userinfo by scope, and the SDK's `/v2/auth/config`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::auth::str_of;
use crate::code_flow::{
    authorize_path, issuer, sign_in_for_code, spa, token, Browser, REDIRECT, VERIFIER,
};
use crate::support::{status_and_json, Fixture, TestServer};

const SECRET: &str = "s3cret-of-the-backend-0123456789abcdefghij";

async fn confidential(
    srv: &TestServer,
    fx: &Fixture,
    client_id: &str,
    grants: &[&str],
    scopes: &[&str],
) -> store::Client {
    let mut new = store::NewClient::new(fx.tenant.id, client_id, "Backend");
    new.redirect_uris = vec![REDIRECT.into()];
    new.client_type = store::ClientType::Confidential;
    new.secret_hash = Some(store::SecretHash::new(auth::client_secret::hash(SECRET)));
    new.grant_types = grants.iter().map(|g| g.to_string()).collect();
    new.scopes = scopes.iter().map(|s| s.to_string()).collect();
    srv.store()
        .create_client(new, engine::unix_now(), None)
        .await
        .unwrap()
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

async fn post_basic(
    srv: &TestServer,
    path: &str,
    auth: &str,
    form: &[(&str, &str)],
) -> (u16, Value, Option<String>) {
    let resp = srv
        .client
        .post(srv.url(path))
        .header("authorization", auth)
        .form(form)
        .send()
        .await
        .unwrap();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let (status, body) = status_and_json(resp).await;
    (status, body, challenge)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_lists_what_is_supported_globally_and_per_tenant() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    let iss = issuer(&srv).await;
    let (status, doc) = status_and_json(srv.get("/.well-known/openid-configuration").await).await;
    assert_eq!(status, 200);
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{iss}/oauth2/authorize")
    );
    assert_eq!(doc["revocation_endpoint"], format!("{iss}/oauth2/revoke"));
    assert_eq!(
        doc["introspection_endpoint"],
        format!("{iss}/oauth2/introspect")
    );
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        doc["grant_types_supported"],
        json!(["authorization_code", "refresh_token", "client_credentials"])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["none", "client_secret_basic", "client_secret_post"])
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["RS256", "EdDSA"])
    );
    assert_eq!(doc["request_parameter_supported"], false);

    let path = format!("/t/{}/.well-known/openid-configuration", fx.slug());
    let (status, tenant_doc) = status_and_json(srv.get(&path).await).await;
    assert_eq!(status, 200, "{tenant_doc}");
    let jwks_uri = format!("{iss}/.well-known/jwks/{}.json", fx.slug());
    assert_eq!(tenant_doc["jwks_uri"], jwks_uri);
    assert_eq!(tenant_doc["issuer"], doc["issuer"]);
    let (status, keys) = status_and_json(
        srv.get(&format!("/.well-known/jwks/{}.json", fx.slug()))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let (_, global) = status_and_json(srv.get("/.well-known/jwks.json").await).await;
    assert_eq!(keys, global);
    for unknown in [
        "/t/nope/.well-known/openid-configuration",
        "/.well-known/jwks/nope.json",
        "/t/a_b/.well-known/openid-configuration",
    ] {
        assert_eq!(srv.get(unknown).await.status(), 404, "{unknown}");
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confidential_clients_authenticate_with_basic_or_post() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    confidential(
        &srv,
        &fx,
        "web",
        &["authorization_code", "refresh_token"],
        &["openid", "email"],
    )
    .await;
    srv.register(&fx, "ada@example.com").await;
    let mut b = Browser::new(&srv);

    // No PKCE needed for a confidential client; the secret is.
    let path = authorize_path(
        "web",
        &[
            ("code_challenge", ""),
            ("code_challenge_method", ""),
            ("scope", "openid"),
        ],
    );
    let code = sign_in_for_code(&mut b, &path, "ada@example.com").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    // Without the secret, with a wrong one, or with both methods at once: refused, code kept.
    let (status, body) = token(&srv, &[&form[..], &[("client_id", "web")]].concat()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
    let (status, body, challenge) =
        post_basic(&srv, "/oauth2/token", &basic("web", "wrong"), &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
    assert_eq!(challenge.as_deref(), Some("Basic realm=\"hellojohn\""));
    let (status, body, _) = post_basic(
        &srv,
        "/oauth2/token",
        &basic("web", SECRET),
        &[&form[..], &[("client_secret", SECRET)]].concat(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );

    let (status, body, _) = post_basic(&srv, "/oauth2/token", &basic("web", SECRET), &form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "openid");
    let refresh = str_of(&body, "refresh_token").to_string();

    // The refresh grant wants the secret too (client_secret_post this time).
    let (status, body) = token(
        &srv,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "web"),
            ("refresh_token", &refresh),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
    let (status, body) = token(
        &srv,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "web"),
            ("client_secret", SECRET),
            ("refresh_token", &refresh),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let access = str_of(&body, "access_token").to_string();
    let refresh = str_of(&body, "refresh_token").to_string();

    // Userinfo by scope: only `openid` was granted, and it survived the refresh.
    for req in [
        srv.client.get(srv.url("/userinfo")).bearer_auth(&access),
        srv.client.post(srv.url("/userinfo")).bearer_auth(&access),
        srv.client
            .post(srv.url("/userinfo"))
            .form(&[("access_token", access.as_str())]),
    ] {
        let (status, info) = status_and_json(req.send().await.unwrap()).await;
        assert_eq!(status, 200, "{info}");
        assert!(info.get("sub").is_some(), "{info}");
        assert!(info.get("email").is_none(), "{info}");
        assert!(info.get("name").is_none(), "{info}");
    }

    // RFC 6750 section 3: a refused caller is told how to authenticate.
    for (req, challenge) in [
        (
            srv.client.get(srv.url("/userinfo")),
            "Bearer realm=\"hellojohn\"",
        ),
        (
            srv.client.get(srv.url("/userinfo")).bearer_auth("bogus"),
            "Bearer realm=\"hellojohn\", error=\"invalid_token\"",
        ),
        (
            srv.client
                .post(srv.url("/userinfo"))
                .form(&[("access_token", "bogus")]),
            "Bearer realm=\"hellojohn\", error=\"invalid_token\"",
        ),
    ] {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        assert_eq!(resp.headers()["www-authenticate"], challenge);
    }

    // Introspection: the access and refresh tokens are active; after revocation the refresh
    // token is not, and revocation answers 200 whatever the token.
    let auth = basic("web", SECRET);
    let (status, info, _) =
        post_basic(&srv, "/oauth2/introspect", &auth, &[("token", &access)]).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["active"], true);
    assert_eq!(info["client_id"], "web");
    assert_eq!(info["scope"], "openid");
    assert_eq!(info["token_type"], "Bearer");
    let (_, info, _) = post_basic(&srv, "/oauth2/introspect", &auth, &[("token", &refresh)]).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["token_type"], "refresh_token");
    for t in ["not-a-token", refresh.as_str(), refresh.as_str()] {
        let (status, _, _) = post_basic(&srv, "/oauth2/revoke", &auth, &[("token", t)]).await;
        assert_eq!(status, 200);
    }
    let (_, info, _) = post_basic(&srv, "/oauth2/introspect", &auth, &[("token", &refresh)]).await;
    assert_eq!(info, json!({ "active": false }));
    // An access token is revoked by its `jti`: refused at once, however often it was used.
    let (status, _) = status_and_json(srv.get_bearer("/userinfo", &access).await).await;
    assert_eq!(status, 200);
    let (status, _, _) = post_basic(&srv, "/oauth2/revoke", &auth, &[("token", &access)]).await;
    assert_eq!(status, 200);
    let (status, _) = status_and_json(srv.get_bearer("/userinfo", &access).await).await;
    assert_eq!(status, 401);
    let (_, info, _) = post_basic(&srv, "/oauth2/introspect", &auth, &[("token", &access)]).await;
    assert_eq!(info, json!({ "active": false }));
    let (status, _, _) = post_basic(
        &srv,
        "/oauth2/introspect",
        &basic("web", "wrong"),
        &[("token", &access)],
    )
    .await;
    assert_eq!(status, 401);
    // A public client may not introspect.
    let (status, _) = token(&srv, &[("grant_type", "x")]).await;
    assert_eq!(status, 400);
    let resp = srv
        .client
        .post(srv.url("/oauth2/introspect"))
        .form(&[("client_id", fx.client_id()), ("token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_for_confidential_clients_only() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    confidential(
        &srv,
        &fx,
        "svc",
        &["client_credentials"],
        &["openid", "api:read", "api:write"],
    )
    .await;
    confidential(&srv, &fx, "web", &["authorization_code"], &["api:read"]).await;
    let auth = basic("svc", SECRET);
    let (status, body, _) = post_basic(
        &srv,
        "/oauth2/token",
        &auth,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "api:read api:write");
    assert!(body.get("refresh_token").is_none() && body.get("id_token").is_none());
    let access = str_of(&body, "access_token").to_string();
    let (_, info, _) = post_basic(&srv, "/oauth2/introspect", &auth, &[("token", &access)]).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["sub"], "svc");
    // It is no user's token.
    let (status, _) = status_and_json(srv.get_bearer("/userinfo", &access).await).await;
    assert_eq!(status, 401);

    let (status, body, _) = post_basic(
        &srv,
        "/oauth2/token",
        &auth,
        &[("grant_type", "client_credentials"), ("scope", "api:read")],
    )
    .await;
    assert_eq!(
        (status, body["scope"].as_str()),
        (200, Some("api:read")),
        "{body}"
    );
    let (status, body, _) = post_basic(
        &srv,
        "/oauth2/token",
        &auth,
        &[("grant_type", "client_credentials"), ("scope", "admin")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope")),
        "{body}"
    );
    // Without the grant, without a secret, or as a public client: refused.
    let (status, body, _) = post_basic(
        &srv,
        "/oauth2/token",
        &basic("web", SECRET),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{body}"
    );
    for form in [
        vec![("grant_type", "client_credentials"), ("client_id", "svc")],
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", fx.client_id()),
        ],
        vec![("grant_type", "client_credentials"), ("client_id", "nope")],
    ] {
        let (status, body) = token(&srv, &form).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{body}"
        );
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_config_names_the_tenant_and_client() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    spa(&srv, &fx, "spa").await;
    let (status, body) = status_and_json(srv.get("/v2/auth/config?client_id=spa").await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tenant_slug"], fx.slug());
    assert_eq!(body["tenant_name"], fx.tenant.name);
    assert_eq!(body["client_name"], "Demo SPA");
    assert_eq!(body["social_providers"], json!([]));
    assert_eq!(body["password_enabled"], true);
    // MFA as it is: TOTP is offered to every tenant's users.
    assert_eq!(body["features"]["mfa"], true, "{body}");
    let (status, _) = status_and_json(srv.get("/v2/auth/config?client_id=nope").await).await;
    assert_eq!(status, 404);
    let (status, _) = status_and_json(srv.get("/v2/auth/config").await).await;
    assert_eq!(status, 400);
    // The code flow's verifier constant is what the SDK's PKCE helper would send.
    assert_eq!(VERIFIER.len(), 43);
    srv.stop().await;
}

/// An access token revoked at one instance is refused by another of the same deployment once
/// it has read the revocations again (every 5 s), with no request to the store per check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_access_token_is_refused_by_every_instance() {
    use crate::support::{StartOptions, TEST_MASTER_KEY};
    let settings = [
        ("HELLOJOHN_MASTER_KEY", TEST_MASTER_KEY),
        ("HELLOJOHN_BASE_URL", "http://hj.test"),
    ];
    let a = TestServer::with_options(&settings, StartOptions::default()).await;
    let b = TestServer::with_options(
        &settings,
        StartOptions {
            store: Some(a.store()),
            ..Default::default()
        },
    )
    .await;
    let fx = a.fixture().await;
    confidential(&a, &fx, "svc", &["client_credentials"], &["api:read"]).await;
    let auth = basic("svc", SECRET);
    let (status, body, _) = post_basic(
        &a,
        "/oauth2/token",
        &auth,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let access = str_of(&body, "access_token").to_string();
    for srv in [&a, &b] {
        let (_, info, _) =
            post_basic(srv, "/oauth2/introspect", &auth, &[("token", &access)]).await;
        assert_eq!(info["active"], true, "{info}");
    }
    let (status, _, _) = post_basic(&a, "/oauth2/revoke", &auth, &[("token", &access)]).await;
    assert_eq!(status, 200);
    let (_, info, _) = post_basic(&a, "/oauth2/introspect", &auth, &[("token", &access)]).await;
    assert_eq!(info, json!({ "active": false }));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(12);
    loop {
        let (_, info, _) = post_basic(&b, "/oauth2/introspect", &auth, &[("token", &access)]).await;
        if info == json!({ "active": false }) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "B still accepts it: {info}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    b.stop().await;
    a.stop().await;
}

/// A client's `allowed_origins` are trusted for CORS with credentials like
/// `HELLOJOHN_CORS_ORIGINS`, once the instance has read the clients again (with the keys).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_allowed_origins_are_trusted_for_cors() {
    use crate::support::StartOptions;
    fn fast(config: &mut engine::config::Config) {
        config.key_reload_interval = std::time::Duration::from_millis(100);
    }
    let srv = TestServer::with_options(
        &[],
        StartOptions {
            configure: Some(fast),
            ..Default::default()
        },
    )
    .await;
    let fx = srv.fixture().await;
    let mut new = store::NewClient::new(fx.tenant.id, "spa", "SPA");
    new.allowed_origins = vec!["https://spa.example".into()];
    srv.store()
        .create_client(new, engine::unix_now(), None)
        .await
        .unwrap();
    let preflight = |origin: &'static str| {
        srv.client
            .request(reqwest::Method::OPTIONS, srv.url("/oauth2/token"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let resp = preflight("https://spa.example").await.unwrap();
        if let Some(v) = resp.headers().get("access-control-allow-origin") {
            assert_eq!(v, "https://spa.example");
            assert_eq!(resp.headers()["access-control-allow-credentials"], "true");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the client's origin is not allowed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    srv.stop().await;
}

/// A client may ask for EdDSA ID tokens and RS256 access tokens (`hj client update
/// --id-token-alg EdDSA --access-token-alg RS256`); both verify from the JWKS alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_may_ask_for_other_signature_algorithms() {
    use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
    use sha2::{Digest as _, Sha512};
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    let mut new = store::NewClient::new(fx.tenant.id, "spa", "SPA");
    new.redirect_uris = vec![REDIRECT.into()];
    new.id_token_alg = Some(store::SigningAlg::EdDsa);
    new.access_token_alg = Some(store::SigningAlg::Rs256);
    srv.store()
        .create_client(new, engine::unix_now(), None)
        .await
        .unwrap();
    srv.register(&fx, "ada@example.com").await;
    let mut b = Browser::new(&srv);
    let code = sign_in_for_code(&mut b, &authorize_path("spa", &[]), "ada@example.com").await;
    let (status, body) = token(
        &srv,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "spa"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, jwks) = status_and_json(srv.get("/.well-known/jwks.json").await).await;
    let key_of = |kid: &str| {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .unwrap()
            .clone()
    };
    let iss = issuer(&srv).await;

    let id_token = str_of(&body, "id_token");
    let header = decode_header(id_token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    let jwk = key_of(&header.kid.unwrap());
    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_audience(&["spa"]);
    v.set_issuer(&[iss.as_str()]);
    let claims = decode::<Value>(
        id_token,
        &DecodingKey::from_ed_components(str_of(&jwk, "x")).unwrap(),
        &v,
    )
    .unwrap()
    .claims;
    // at_hash with the hash of EdDSA (Ed25519): SHA-512, left half.
    let access = str_of(&body, "access_token");
    let digest = Sha512::digest(access.as_bytes());
    assert_eq!(
        claims["at_hash"],
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..32])
    );

    for access in [access.to_string(), {
        let (status, refreshed) = token(
            &srv,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "spa"),
                ("refresh_token", str_of(&body, "refresh_token")),
            ],
        )
        .await;
        assert_eq!(status, 200, "{refreshed}");
        str_of(&refreshed, "access_token").to_string()
    }] {
        let header = decode_header(&access).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        let jwk = key_of(&header.kid.unwrap());
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&["spa"]);
        v.set_issuer(&[iss.as_str()]);
        decode::<Value>(
            &access,
            &DecodingKey::from_rsa_components(str_of(&jwk, "n"), str_of(&jwk, "e")).unwrap(),
            &v,
        )
        .unwrap();
        let (status, me) = status_and_json(srv.get_bearer("/v2/me", &access).await).await;
        assert_eq!(status, 200, "{me}");
    }
    srv.stop().await;
}
