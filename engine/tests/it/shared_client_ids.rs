//! Client ids are unique per tenant only (issue 24): `/oauth2/token`, `/oauth2/revoke` and
//! `/oauth2/introspect` name a client and no tenant, so the tenant comes from the presented
//! token or the client's secret. And introspection answers only for the caller's own tokens.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;

use crate::auth::str_of;
use crate::support::{status_and_json, Fixture, TestServer};

const SECRET_TWO: &str = "secret-of-tenant-two-0123456789abcdefghijkl";
const SECRET_THREE: &str = "secret-of-tenant-three-0123456789abcdefghi";

pub(crate) async fn confidential(
    srv: &TestServer,
    tenant: &store::Tenant,
    client_id: &str,
    secret: &str,
    grants: &[&str],
) -> store::Client {
    let mut new = store::NewClient::new(tenant.id, client_id, client_id);
    new.client_type = store::ClientType::Confidential;
    new.secret_hash = Some(store::SecretHash::new(auth::client_secret::hash(secret)));
    new.grant_types = grants.iter().map(|g| g.to_string()).collect();
    new.scopes = vec!["api:read".into()];
    srv.store()
        .create_client(new, engine::unix_now(), None)
        .await
        .unwrap()
}

pub(crate) fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

pub(crate) async fn post(
    srv: &TestServer,
    path: &str,
    auth: Option<&str>,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = srv.client.post(srv.url(path)).form(form);
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    status_and_json(req.send().await.unwrap()).await
}

/// The SDK's refresh: `grant_type=refresh_token`, the public client's id, the token.
async fn refresh(srv: &TestServer, client_id: &str, token: &str) -> (u16, Value) {
    post(
        srv,
        "/oauth2/token",
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("refresh_token", token),
        ],
    )
    .await
}

/// The claims of a JWT, unverified.
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn sdk_sign_out_revokes_with_a_public_client_id_of_two_tenants() {
    let srv = TestServer::start().await;
    let one = srv.fixture_with("one", "shared-app").await;
    let two = srv.fixture_with("two", "shared-app").await;
    let ada = srv.register(&one, "ada@example.com").await;
    let bob = srv.register(&two, "bob@example.com").await;

    // The refresh grant finds the tenant from the token.
    let (status, body) = refresh(&srv, "shared-app", str_of(&ada, "refresh_token")).await;
    assert_eq!(status, 200, "{body}");
    let ada_refresh = str_of(&body, "refresh_token").to_string();
    let ada_access = str_of(&body, "access_token").to_string();

    // The SDK's sign-out: RFC 7009 with the public client's id and the refresh token.
    let (status, body) = post(
        &srv,
        "/oauth2/revoke",
        None,
        &[("client_id", "shared-app"), ("token", &ada_refresh)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // It really is revoked: the refresh fails afterwards.
    let (status, body) = refresh(&srv, "shared-app", &ada_refresh).await;
    assert_eq!(status, 400, "the revoked token still refreshes: {body}");
    assert_eq!(body["error"], "invalid_grant");

    // The other tenant's user is untouched, and its access token is revoked by its `jti`.
    let (status, body) = refresh(&srv, "shared-app", str_of(&bob, "refresh_token")).await;
    assert_eq!(status, 200, "{body}");
    let bob_access = str_of(&body, "access_token").to_string();
    let (status, _) = status_and_json(srv.get_bearer("/userinfo", &bob_access).await).await;
    assert_eq!(status, 200);
    let (status, body) = post(
        &srv,
        "/oauth2/revoke",
        None,
        &[("client_id", "shared-app"), ("token", &bob_access)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = status_and_json(srv.get_bearer("/userinfo", &bob_access).await).await;
    assert_eq!(status, 401, "the access token is revoked");
    // Ada's access token was not (it is another token).
    let (status, _) = status_and_json(srv.get_bearer("/userinfo", &ada_access).await).await;
    assert_eq!(status, 200);

    // An unknown token: nothing to do, 200 as RFC 7009 wants; an unknown client: 401.
    let (status, _) = post(
        &srv,
        "/oauth2/revoke",
        None,
        &[("client_id", "shared-app"), ("token", "no-such-token")],
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = post(
        &srv,
        "/oauth2/revoke",
        None,
        &[("client_id", "nobody"), ("token", "no-such-token")],
    )
    .await;
    assert_eq!(
        (status, &body["error"]),
        (401, &Value::from("invalid_client"))
    );
    srv.stop().await;
}

#[tokio::test]
async fn the_secret_finds_the_confidential_client_of_a_shared_id() {
    let srv = TestServer::start().await;
    // Tenant one: a public `shared-app`; tenants two and three: confidential ones, each with
    // its own secret.
    let one = srv.fixture_with("one", "shared-app").await;
    let two = srv.fixture_with("two", "other-app").await;
    let three = srv.fixture_with("three", "other-app").await;
    let grants = ["client_credentials"];
    confidential(&srv, &two.tenant, "shared-app", SECRET_TWO, &grants).await;
    confidential(&srv, &three.tenant, "shared-app", SECRET_THREE, &grants).await;

    let mut tokens = Vec::new();
    for (secret, tenant) in [(SECRET_TWO, &two), (SECRET_THREE, &three)] {
        let auth = basic("shared-app", secret);
        let (status, body) = post(
            &srv,
            "/oauth2/token",
            Some(&auth),
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!(status, 200, "{}: {body}", tenant.slug());
        let access = str_of(&body, "access_token").to_string();
        assert_eq!(claims(&access)["tid"], tenant.tenant.id.to_string());
        // Its own token, introspected with its own credentials: active.
        let (status, info) = post(
            &srv,
            "/oauth2/introspect",
            Some(&auth),
            &[("token", &access)],
        )
        .await;
        assert_eq!(status, 200, "{info}");
        assert_eq!(info["active"], true, "{}: {info}", tenant.slug());
        assert_eq!(info["tid"], tenant.tenant.id.to_string());
        tokens.push((auth, access));
    }
    // The same client id in another tenant is another client: inactive to it.
    let (status, info) = post(
        &srv,
        "/oauth2/introspect",
        Some(&tokens[0].0),
        &[("token", &tokens[1].1)],
    )
    .await;
    assert_eq!(
        (status, &info),
        (200, &serde_json::json!({ "active": false }))
    );

    // client_secret_post works alike; a wrong secret, or none (the public client), does not
    // get client credentials.
    let (status, body) = post(
        &srv,
        "/oauth2/token",
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "shared-app"),
            ("client_secret", SECRET_THREE),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        claims(str_of(&body, "access_token"))["tid"],
        three.tenant.id.to_string()
    );
    for form in [
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "shared-app"),
            ("client_secret", "wrong"),
        ][..],
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "shared-app"),
        ][..],
    ] {
        let (status, body) = post(&srv, "/oauth2/token", None, form).await;
        assert_eq!(
            (status, &body["error"]),
            (401, &Value::from("invalid_client")),
            "{form:?}"
        );
    }
    let (status, _) = post(
        &srv,
        "/oauth2/introspect",
        Some(&basic("shared-app", "wrong")),
        &[("token", &tokens[0].1)],
    )
    .await;
    assert_eq!(status, 401);

    // The public client of tenant one still refreshes and signs out with the same id.
    let ada = srv.register(&one, "ada@example.com").await;
    let ada_refresh = str_of(&ada, "refresh_token");
    let (status, body) = post(
        &srv,
        "/oauth2/revoke",
        None,
        &[("client_id", "shared-app"), ("token", ada_refresh)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = refresh(&srv, "shared-app", ada_refresh).await;
    assert_eq!(status, 400, "revoked");
    srv.stop().await;
}

#[tokio::test]
async fn introspection_answers_only_for_the_callers_tokens() {
    let srv = TestServer::start().await;
    let fx: Fixture = srv.fixture_with("acme", "web-app").await;
    let grants = ["client_credentials"];
    // A and B: two confidential clients of the same tenant.
    confidential(&srv, &fx.tenant, "svc-a", SECRET_TWO, &grants).await;
    confidential(&srv, &fx.tenant, "svc-b", SECRET_THREE, &grants).await;
    let (a, b) = (basic("svc-a", SECRET_TWO), basic("svc-b", SECRET_THREE));

    // A user's tokens of the public web client are not B's to see.
    let ada = srv.register(&fx, "ada@example.com").await;
    for token in [str_of(&ada, "access_token"), str_of(&ada, "refresh_token")] {
        let (status, info) = post(&srv, "/oauth2/introspect", Some(&b), &[("token", token)]).await;
        assert_eq!(status, 200, "{info}");
        assert_eq!(
            info,
            serde_json::json!({ "active": false }),
            "another client's token"
        );
    }

    // A's own token: active to A, inactive to B.
    let (status, body) = post(
        &srv,
        "/oauth2/token",
        Some(&a),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let a_token = str_of(&body, "access_token");
    let (_, info) = post(&srv, "/oauth2/introspect", Some(&b), &[("token", a_token)]).await;
    assert_eq!(
        info,
        serde_json::json!({ "active": false }),
        "A's token asked by B"
    );
    let (_, info) = post(&srv, "/oauth2/introspect", Some(&a), &[("token", a_token)]).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["client_id"], "svc-a");
    srv.stop().await;
}

/// The database name in a PostgreSQL URL.
pub(crate) fn database_of(url: &str) -> String {
    let path = url.rsplit('/').next().unwrap();
    path.split('?').next().unwrap().to_string()
}

#[tokio::test]
async fn a_store_fault_is_503_not_invalid_client() {
    if crate::support::test_store() != "postgres" {
        // The embedded store cannot be taken away from a running server; PostgreSQL can. Behind
        // PgBouncer the pooler holds the query while its server login fails (past the write
        // timeout), which says nothing about this server's answer to a fault.
        return;
    }
    let srv = TestServer::start().await;
    let url = srv.handle().app().config.database_url.clone().unwrap();
    let db = database_of(url.expose());
    let admin = testkit::pg::admin(&testkit::require_env("HJ_TEST_DATABASE_URL")).await;
    testkit::pg::take_database_away(&admin, &db).await;
    // Client ids this server never saw: the shard's cache cannot answer, the store must.
    let cases = [
        (
            "/oauth2/revoke",
            vec![("client_id", "cold-a"), ("token", "x")],
        ),
        (
            "/oauth2/introspect",
            vec![
                ("client_id", "cold-b"),
                ("client_secret", "s"),
                ("token", "x"),
            ],
        ),
        (
            "/oauth2/token",
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "cold-c"),
                ("client_secret", "s"),
            ],
        ),
    ];
    for (path, form) in cases {
        let (status, body) = post(&srv, path, None, &form).await;
        assert_eq!(status, 503, "{path}: {body}");
        assert_eq!(body["error"], "temporarily_unavailable", "{path}");
    }
    admin
        .batch_execute(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    srv.stop().await;
}
