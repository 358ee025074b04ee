//! Bad and unusual input over real HTTP: every malformed or missing field refused with its code
//! and nothing written, oversized bodies, custom fields and special characters through JSON and
//! forms, an unread refused body, and concurrent registrations of one email.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::auth::{assert_error, assert_oauth_error, str_of, HASHES};
use crate::support::{status_and_json, Fixture, TestServer, PASSWORD};

fn register_body(fx: &Fixture, email: &str) -> Value {
    json!({
        "tenant_id": fx.slug(),
        "client_id": fx.client_id(),
        "email": email,
        "password": PASSWORD,
    })
}

async fn assert_no_user(srv: &TestServer, fx: &Fixture, email: &str) {
    let found = srv
        .store()
        .find_password_login(fx.tenant.id, email)
        .await
        .unwrap();
    assert!(found.is_none(), "{email} must not be stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_nothing_is_written() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    let email = "new@example.com";

    // Malformed JSON and JSON of the wrong shape.
    for raw in [
        &b"{\"email\": "[..],
        b"not json",
        b"[1,2,3]",
        b"",
        b"{\"email\": 5}",
    ] {
        let resp = srv
            .client
            .post(srv.url("/v2/auth/register"))
            .header("content-type", "application/json")
            .body(raw.to_vec())
            .send()
            .await
            .unwrap();
        let (status, body) = status_and_json(resp).await;
        assert_error(status, &body, 400, "INVALID_JSON");
    }
    let resp = srv
        .client
        .post(srv.url("/v2/auth/login"))
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(resp).await;
    assert_error(status, &body, 400, "INVALID_JSON");

    // Each missing (or empty) field is named.
    for field in ["tenant_id", "client_id", "email", "password"] {
        for empty in [false, true] {
            let mut body = register_body(&fx, email);
            if empty {
                body[field] = json!("");
            } else {
                body.as_object_mut().unwrap().remove(field);
            }
            for path in ["/v2/auth/register", "/v2/auth/login"] {
                let (status, err) = status_and_json(srv.post_json(path, &body).await).await;
                assert_error(status, &err, 400, "BAD_REQUEST");
                assert_eq!(err["detail"]["field"], field, "{path}: {err}");
            }
        }
    }

    // Unknown tenant, unknown client (also: a client of another tenant).
    let other = srv.fixture_with("globex", "globex-web").await;
    for (tenant, client, field) in [
        ("nope", fx.client_id(), "tenant_id"),
        (
            "00000000-0000-0000-0000-000000000000",
            fx.client_id(),
            "tenant_id",
        ),
        (fx.slug(), "nope", "client_id"),
        (fx.slug(), other.client_id(), "client_id"),
    ] {
        let mut body = register_body(&fx, email);
        body["tenant_id"] = json!(tenant);
        body["client_id"] = json!(client);
        for path in ["/v2/auth/register", "/v2/auth/login"] {
            let (status, err) = status_and_json(srv.post_json(path, &body).await).await;
            assert_error(status, &err, 400, "BAD_REQUEST");
            assert_eq!(
                err["detail"]["field"], field,
                "{path} {tenant}/{client}: {err}"
            );
        }
    }

    // Weak passwords: the rule is named.
    for (password, rule) in [
        ("Sh0rt", "min_length"),
        ("alllowercase1", "uppercase"),
        ("ALLUPPERCASE1", "lowercase"),
        ("NoDigitsHere", "digit"),
    ] {
        let mut body = register_body(&fx, email);
        body["password"] = json!(password);
        let (status, err) = status_and_json(srv.post_json("/v2/auth/register", &body).await).await;
        assert_error(status, &err, 400, "BAD_REQUEST");
        assert_eq!(err["detail"]["rule"], rule, "{err}");
        assert_eq!(err["detail"]["field"], "password", "{err}");
    }
    // Not an email address.
    let (status, err) = status_and_json(
        srv.post_json("/v2/auth/register", &register_body(&fx, "nope"))
            .await,
    )
    .await;
    assert_error(status, &err, 400, "BAD_REQUEST");
    assert_eq!(err["detail"]["field"], "email", "{err}");
    assert_no_user(&srv, &fx, email).await;
    assert_no_user(&srv, &other, email).await;
    assert_no_user(&srv, &fx, "nope").await;
    // None of the refused requests cost a hash.
    assert_eq!(srv.metric_value(HASHES).await, 0.0);

    // Duplicate email, in any case: 409, and the first registration is untouched.
    let first = srv.register(&fx, "taken@example.com").await;
    let before = srv
        .store()
        .find_password_login(fx.tenant.id, "taken@example.com")
        .await
        .unwrap()
        .unwrap();
    for dup in [
        "taken@example.com",
        "TAKEN@Example.COM",
        "  taken@example.com ",
    ] {
        let mut body = register_body(&fx, dup);
        body["password"] = json!("Another-Pass-77");
        let (status, err) = status_and_json(srv.post_json("/v2/auth/register", &body).await).await;
        assert_error(status, &err, 409, "CONFLICT");
    }
    let after = srv
        .store()
        .find_password_login(fx.tenant.id, "taken@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after, before);
    assert_eq!(
        after.user.id.to_string(),
        first["user_id"].as_str().unwrap()
    );
    // The same email in another tenant is a different user.
    srv.register(&other, "taken@example.com").await;

    // The tenant by header or query string instead of the body.
    let mut body = register_body(&fx, "header@example.com");
    body.as_object_mut().unwrap().remove("tenant_id");
    for (i, how) in ["x-tenant-id", "x-tenant-slug", "query", "uuid-header"]
        .into_iter()
        .enumerate()
    {
        let email = format!("via{i}@example.com");
        body["email"] = json!(email);
        let req = match how {
            "query" => srv
                .client
                .post(srv.url(&format!("/v2/auth/register?tenant_id={}", fx.slug()))),
            "uuid-header" => srv
                .client
                .post(srv.url("/v2/auth/register"))
                .header("x-tenant-id", fx.tenant.id.to_string()),
            h => srv
                .client
                .post(srv.url("/v2/auth/register"))
                .header(h, fx.slug()),
        };
        let (status, reg) = status_and_json(req.json(&body).send().await.unwrap()).await;
        assert_eq!(status, 200, "{how}: {reg}");
        assert!(srv
            .store()
            .find_password_login(fx.tenant.id, &email)
            .await
            .unwrap()
            .is_some());
        // And sign in the same way.
        let mut login = body.clone();
        login["email"] = json!(email);
        let resp = srv
            .client
            .post(srv.url(&format!("/v2/auth/login?tenant_id={}", fx.slug())))
            .json(&login)
            .send()
            .await
            .unwrap();
        let (status, body) = status_and_json(resp).await;
        assert_eq!(status, 200, "{how}: {body}");
    }
    // The body wins over the header.
    let resp = srv
        .client
        .post(srv.url("/v2/auth/login"))
        .header("x-tenant-id", "nope")
        .json(&json!({
            "tenant_id": fx.slug(),
            "client_id": fx.client_id(),
            "email": "via0@example.com",
            "password": PASSWORD,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413_and_nothing_is_written() {
    let srv = TestServer::with(&[("HELLOJOHN_MAX_BODY_BYTES", "1024")]).await;
    let fx = srv.fixture().await;
    let email = "big@example.com";
    let mut body = register_body(&fx, email);
    body["name"] = json!("x".repeat(2000));
    for path in ["/v2/auth/register", "/v2/auth/login", "/v2/auth/refresh"] {
        let (status, err) = status_and_json(srv.post_json(path, &body).await).await;
        assert_error(status, &err, 413, "PAYLOAD_TOO_LARGE");
    }
    let padding = "x".repeat(2000);
    let resp = srv
        .post_form(
            "/oauth2/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "c"),
                ("refresh_token", &padding),
            ],
        )
        .await;
    let (status, err) = status_and_json(resp).await;
    // RFC 6749 shape. The status may be the transport's 413 or RFC 6749's 400; both are sound.
    assert!(status == 413 || status == 400, "{status}: {err}");
    assert_oauth_error(status, &err, status, "invalid_request");
    assert_no_user(&srv, &fx, email).await;

    // Just under the limit is fine (padded with user metadata: a name is at most 200
    // characters).
    body.as_object_mut().unwrap().remove("name");
    body["custom_fields"] = json!({ "pad": "x".repeat(800) });
    let (status, reg) = status_and_json(srv.post_json("/v2/auth/register", &body).await).await;
    assert_eq!(status, 200, "{reg}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_fields_and_special_characters_survive_json_and_form() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    // Characters that form encoding must escape, and non-ASCII.
    let password = "Pä ss+w&rd=1%2Bx";
    let resp = srv
        .post_json(
            "/v2/auth/register",
            &json!({
                "tenant_id": fx.slug(),
                "client_id": fx.client_id(),
                "email": "zoë@example.com",
                "password": password,
                "name": "Zoë",
                "custom_fields": { "plan": "pro", "seats": 3 },
            }),
        )
        .await;
    let (status, reg) = status_and_json(resp).await;
    assert_eq!(status, 200, "{reg}");

    let resp = srv
        .post_form(
            "/v2/auth/login",
            &[
                ("tenant_id", fx.slug()),
                ("client_id", fx.client_id()),
                ("email", "ZOË@example.com"),
                ("password", password),
            ],
        )
        .await;
    let (status, login) = status_and_json(resp).await;
    assert_eq!(status, 200, "{login}");
    let access = str_of(&login, "access_token");

    // Custom fields are user metadata: shown to the user, never a claim of their token.
    let (status, me) = status_and_json(srv.get_bearer("/v2/me", access).await).await;
    assert_eq!(status, 200, "{me}");
    assert!(me["custom"].is_null(), "{me}");
    assert_eq!(me["user_metadata"], json!({ "plan": "pro", "seats": 3 }));
    let (status, info) = status_and_json(srv.get_bearer("/userinfo", access).await).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["email"], "zoë@example.com");
    assert_eq!(info["name"], "Zoë");
    assert_eq!(info["custom_fields"], json!({ "plan": "pro", "seats": 3 }));
    assert_eq!(info["tenant_id"], fx.tenant.id.to_string());

    // custom_fields must be an object.
    let resp = srv
        .post_json(
            "/v2/auth/register",
            &json!({
                "tenant_id": fx.slug(),
                "client_id": fx.client_id(),
                "email": "x@example.com",
                "password": PASSWORD,
                "custom_fields": [1, 2],
            }),
        )
        .await;
    let (status, err) = status_and_json(resp).await;
    assert_error(status, &err, 400, "BAD_REQUEST");
    assert_eq!(err["detail"]["field"], "custom_fields");
    assert_no_user(&srv, &fx, "x@example.com").await;
    srv.stop().await;
}

/// A body the server refuses unread must not be parsed as a further request on the same
/// connection (request smuggling).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_unread_body_is_not_read_as_another_request() {
    use std::io::{Read, Write};

    let srv = TestServer::with(&[("HELLOJOHN_MAX_BODY_BYTES", "1024")]).await;
    let addr = srv.addr;
    let answers = tokio::task::spawn_blocking(move || {
        let smuggled = "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut body = smuggled.repeat(2048 / smuggled.len() + 1);
        body.truncate(2048);
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(3)))
            .unwrap();
        write!(
            s,
            "POST /v2/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    })
    .await
    .unwrap();
    assert!(answers.starts_with("HTTP/1.1 413"), "{answers}");
    assert_eq!(
        answers.matches("HTTP/1.1 ").count(),
        1,
        "exactly one response: {answers}"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registrations_of_one_email_create_one_user() {
    let srv = Arc::new(TestServer::start().await);
    let fx = Arc::new(srv.fixture().await);
    const N: usize = 10;
    let barrier = Arc::new(tokio::sync::Barrier::new(N));
    let mut tasks = Vec::new();
    for i in 0..N {
        let (srv, fx, barrier) = (srv.clone(), fx.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            barrier.wait().await;
            // Differently cased spellings of one address.
            let email = if i % 2 == 0 {
                "race@example.com"
            } else {
                "RACE@example.com"
            };
            let resp = client
                .post(srv.url("/v2/auth/register"))
                .json(&register_body(&fx, email))
                .send()
                .await
                .unwrap();
            status_and_json(resp).await
        }));
    }
    let mut created = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            200 => created += 1,
            409 => assert_eq!(body["code"], "CONFLICT", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(created, 1);
    assert!(srv
        .store()
        .find_password_login(fx.tenant.id, "race@example.com")
        .await
        .unwrap()
        .is_some());
}
