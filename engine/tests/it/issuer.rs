//! Issuer modes (issue 24): a tenant in issuer mode `path` has its own issuer
//! (`{base}/t/{slug}`), its own signing keys and its own JWKS, so that a stock OpenID Connect
//! library configured for one tenant's client refuses another tenant's tokens for a client of
//! the same id. And the two kinds of JWT (RFC 9068): access tokens are `typ: at+jwt`, ID tokens
//! `typ: JWT`, and neither is accepted where the other belongs.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use store::IssuerMode;

use crate::auth::str_of;
use crate::code_flow::{
    authorize_path, issuer, query, sign_in_for_code, spa, token, Browser, REDIRECT, VERIFIER,
};
use crate::support::{status_and_json, Fixture, TestServer, PASSWORD};

/// What `hj tenant update --issuer-mode` does (the tenant's keys first when it enters path
/// mode), then the reload every instance makes within 30 s, made at once.
async fn set_mode(srv: &TestServer, tenant: &store::Tenant, mode: IssuerMode) {
    let store = srv.store();
    let app = srv.handle().app();
    let now = engine::unix_now();
    if mode == IssuerMode::Path {
        let master = engine::master_key(&app.config, store.as_ref()).unwrap();
        auth::keys::create_tenant_keys(store.as_ref(), &master, tenant.id, now)
            .await
            .unwrap();
    }
    assert!(store.set_tenant_issuer_mode(tenant.id, mode).await.unwrap());
    app.auth.keys.reload(store.as_ref(), now).await.unwrap();
}

fn part(token: &str, i: usize) -> Value {
    let bytes = URL_SAFE_NO_PAD
        .decode(token.split('.').nth(i).unwrap())
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn header(token: &str) -> Value {
    part(token, 0)
}

fn claims(token: &str) -> Value {
    part(token, 1)
}

async fn get_json(srv: &TestServer, path: &str) -> Value {
    let (status, body) = status_and_json(srv.get(path).await).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| str_of(k, "kid").to_string())
        .collect()
}

/// What a stock OpenID Connect library configured for tenant `slug` and client `aud` does
/// with `token`: discovery from `/t/{slug}`, the key its `kid` names from that document's
/// JWKS, the signature, `iss` and `aud` (with `jsonwebtoken`). The claims, or why not.
async fn verify_as_tenant(
    srv: &TestServer,
    slug: &str,
    token: &str,
    aud: &str,
) -> Result<Value, String> {
    use jsonwebtoken::{decode, decode_header, DecodingKey, Validation};
    let doc = get_json(srv, &format!("/t/{slug}/.well-known/openid-configuration")).await;
    let base = issuer(srv).await;
    let jwks_path = str_of(&doc, "jwks_uri").strip_prefix(&base).unwrap();
    let jwks = get_json(srv, jwks_path).await;
    let head = decode_header(token).map_err(|e| e.to_string())?;
    let kid = head.kid.ok_or("no kid")?;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .ok_or_else(|| format!("kid {kid} is not in {slug}'s JWKS"))?;
    let key = match jwk["kty"].as_str() {
        Some("OKP") => DecodingKey::from_ed_components(str_of(jwk, "x")),
        _ => DecodingKey::from_rsa_components(str_of(jwk, "n"), str_of(jwk, "e")),
    }
    .unwrap();
    let mut v = Validation::new(head.alg);
    v.set_audience(&[aud]);
    v.set_issuer(&[str_of(&doc, "issuer")]);
    decode::<Value>(token, &key, &v)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

/// Tenants `local` (global mode) and `acme` (path mode), each with a client `local-app`.
async fn two_tenants(srv: &TestServer) -> (Fixture, Fixture) {
    let local = srv.bootstrap().await;
    let acme = srv.fixture_with("acme", "local-app").await;
    set_mode(srv, &acme.tenant, IssuerMode::Path).await;
    (local, acme)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_mode_tenant_has_its_own_issuer_and_keys() {
    let srv = TestServer::start().await;
    let (local, acme) = two_tenants(&srv).await;
    let base = issuer(&srv).await;
    let acme_iss = format!("{base}/t/acme");

    // Discovery: acme's own issuer and JWKS; local keeps the server's.
    let doc = get_json(&srv, "/t/acme/.well-known/openid-configuration").await;
    assert_eq!(doc["issuer"], acme_iss);
    assert_eq!(
        doc["jwks_uri"],
        format!("{base}/.well-known/jwks/acme.json")
    );
    assert_eq!(doc["token_endpoint"], format!("{base}/oauth2/token"));
    let doc = get_json(&srv, "/t/local/.well-known/openid-configuration").await;
    assert_eq!(doc["issuer"], base);
    let global = kids(&get_json(&srv, "/.well-known/jwks.json").await);
    let own = kids(&get_json(&srv, "/.well-known/jwks/acme.json").await);
    assert_eq!((global.len(), own.len()), (2, 2), "{global:?} {own:?}");
    assert!(own.iter().all(|k| !global.contains(k)), "only acme's keys");
    assert_eq!(
        kids(&get_json(&srv, "/.well-known/jwks/local.json").await),
        global
    );

    // Every password-flow token of acme: its issuer, its keys.
    let reg = srv.register(&acme, "ana@acme.test").await;
    let (status, login) = srv.login(&acme, "ana@acme.test", PASSWORD).await;
    assert_eq!(status, 200, "{login}");
    let (status, refreshed) = status_and_json(
        srv.post_json(
            "/v2/auth/refresh",
            &json!({
                "tenant_id": "acme",
                "client_id": "local-app",
                "refresh_token": str_of(&login, "refresh_token"),
            }),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    let acme_token = str_of(&reg, "access_token").to_string();
    for token in [
        acme_token.as_str(),
        str_of(&login, "access_token"),
        str_of(&refreshed, "access_token"),
    ] {
        assert_eq!(claims(token)["iss"], acme_iss);
        assert_eq!(claims(token)["tid"], acme.tenant.id.to_string());
        assert_eq!(header(token)["typ"], "at+jwt");
        assert!(own.contains(&str_of(&header(token), "kid").to_string()));
    }
    let (status, me) = status_and_json(srv.get_bearer("/v2/me", &acme_token).await).await;
    assert_eq!(status, 200, "{me}");
    let (status, info) = status_and_json(srv.get_bearer("/userinfo", &acme_token).await).await;
    assert_eq!(
        (status, info["email"].as_str()),
        (200, Some("ana@acme.test"))
    );
    let local_reg = srv.register(&local, "ana@local.test").await;
    let local_token = str_of(&local_reg, "access_token").to_string();
    assert_eq!(claims(&local_token)["iss"], base);
    assert!(global.contains(&str_of(&header(&local_token), "kid").to_string()));

    // A stock library set up for local's `local-app` refuses acme's `local-app` token (on a
    // shared issuer and key set it accepted it), and accepts each tenant's own.
    let refused = verify_as_tenant(&srv, "local", &acme_token, "local-app").await;
    assert!(refused.is_err(), "local accepted acme's token: {refused:?}");
    let refused = verify_as_tenant(&srv, "acme", &local_token, "local-app").await;
    assert!(refused.is_err(), "acme accepted local's token: {refused:?}");
    let own_claims = verify_as_tenant(&srv, "acme", &acme_token, "local-app").await;
    assert_eq!(own_claims.unwrap()["sub"], reg["user_id"]);
    assert!(verify_as_tenant(&srv, "local", &local_token, "local-app")
        .await
        .is_ok());

    // Back to global mode: the server's issuer and keys again; acme's tokens of its own
    // issuer stop working at once on this instance, cached or not.
    set_mode(&srv, &acme.tenant, IssuerMode::Global).await;
    let doc = get_json(&srv, "/t/acme/.well-known/openid-configuration").await;
    assert_eq!(doc["issuer"], base);
    assert_eq!(
        kids(&get_json(&srv, "/.well-known/jwks/acme.json").await),
        global
    );
    for path in ["/v2/me", "/userinfo"] {
        let (status, _) = status_and_json(srv.get_bearer(path, &acme_token).await).await;
        assert_eq!(status, 401, "{path}");
    }
    let (_, login) = srv.login(&acme, "ana@acme.test", PASSWORD).await;
    let token = str_of(&login, "access_token");
    assert_eq!(claims(token)["iss"], base);
    let (status, _) = status_and_json(srv.get_bearer("/v2/me", token).await).await;
    assert_eq!(status, 200);

    // And path again: the global-issuer token of a moment ago is refused in turn.
    set_mode(&srv, &acme.tenant, IssuerMode::Path).await;
    let (status, _) = status_and_json(srv.get_bearer("/v2/me", token).await).await;
    assert_eq!(status, 401);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_code_flow_and_client_credentials_carry_the_tenant_issuer() {
    let srv = TestServer::start().await;
    let (_, acme) = two_tenants(&srv).await;
    let acme_iss = format!("{}/t/acme", issuer(&srv).await);
    spa(&srv, &acme, "spa").await;
    srv.register(&acme, "ana@acme.test").await;

    // The authorization response's `iss` (RFC 9207), on success and on error.
    let mut b = Browser::new(&srv);
    let a = b
        .get(&authorize_path("spa", &[("response_type", "token")]))
        .await;
    let q = query(a.location.as_deref().unwrap());
    assert_eq!(q["error"], "unsupported_response_type");
    assert_eq!(q["iss"], acme_iss);
    let code = sign_in_for_code(&mut b, &authorize_path("spa", &[]), "ana@acme.test").await;
    let again = b.get(&authorize_path("spa", &[])).await;
    assert_eq!(
        query(again.location.as_deref().unwrap())["iss"],
        acme_iss,
        "a signed-in browser's code"
    );
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
    let id = verify_as_tenant(&srv, "acme", str_of(&body, "id_token"), "spa")
        .await
        .unwrap();
    assert_eq!(id["iss"], acme_iss);
    let access = verify_as_tenant(&srv, "acme", str_of(&body, "access_token"), "spa")
        .await
        .unwrap();
    assert_eq!(access["iss"], acme_iss);
    assert!(
        verify_as_tenant(&srv, "local", str_of(&body, "id_token"), "spa")
            .await
            .is_err()
    );
    // The refresh grant at /oauth2/token too.
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
    assert_eq!(claims(str_of(&refreshed, "access_token"))["iss"], acme_iss);

    // A machine client's token.
    const SECRET: &str = "s3cret-of-the-backend-0123456789abcdefghij";
    let mut new = store::NewClient::new(acme.tenant.id, "svc", "Backend");
    new.client_type = store::ClientType::Confidential;
    new.secret_hash = Some(store::SecretHash::new(auth::client_secret::hash(SECRET)));
    new.grant_types = vec!["client_credentials".into()];
    new.scopes = vec!["api:read".into()];
    srv.store()
        .create_client(new, engine::unix_now(), None)
        .await
        .unwrap();
    let (status, body) = token(
        &srv,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "svc"),
            ("client_secret", SECRET),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let machine = verify_as_tenant(&srv, "acme", str_of(&body, "access_token"), "svc")
        .await
        .unwrap();
    assert_eq!(
        (machine["iss"].as_str(), machine["sub"].as_str()),
        (Some(acme_iss.as_str()), Some("svc"))
    );
    srv.stop().await;
}

/// RFC 9068: an access token says `typ: at+jwt` and an ID token `typ: JWT`; an ID token is
/// not a Bearer token, and an access token is not an `id_token_hint`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_and_id_tokens_are_not_interchangeable() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    spa(&srv, &fx, "spa").await;
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
    let (access, id) = (str_of(&body, "access_token"), str_of(&body, "id_token"));
    assert_eq!(header(access)["typ"], "at+jwt");
    assert_eq!(header(id)["typ"], "JWT");

    // Bearer: the access token is, the ID token is not.
    for path in ["/userinfo", "/v2/me"] {
        let (status, _) = status_and_json(srv.get_bearer(path, access).await).await;
        assert_eq!(status, 200, "{path}");
        let (status, body) = status_and_json(srv.get_bearer(path, id).await).await;
        assert_eq!(status, 401, "{path}: {body}");
    }

    // `id_token_hint`: the ID token is, the access token is not.
    let a = b
        .get(&authorize_path("spa", &[("id_token_hint", id)]))
        .await;
    let q = query(a.location.as_deref().unwrap());
    assert!(q.contains_key("code"), "{q:?}");
    let a = b
        .get(&authorize_path("spa", &[("id_token_hint", access)]))
        .await;
    let q = query(a.location.as_deref().unwrap());
    assert_eq!(
        q.get("error").map(String::as_str),
        Some("invalid_request"),
        "{q:?}"
    );
    assert!(!q.contains_key("code"));
    // At sign-out an access token as the hint signs nobody out unasked.
    let logout = |hint: &str| {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("id_token_hint", hint), ("client_id", "spa")])
            .finish()
    };
    let out = b.get(&format!("/oauth2/logout?{}", logout(access))).await;
    assert_eq!(out.status, 200);
    assert!(out.body.contains("Sign out of Demo SPA?"), "{}", out.body);
    assert!(b.cookies.contains_key("sid"));
    let out = b.get(&format!("/oauth2/logout?{}", logout(id))).await;
    assert!(out.body.contains("You are signed out"), "{}", out.body);
    assert!(!b.cookies.contains_key("sid"));
    srv.stop().await;
}
