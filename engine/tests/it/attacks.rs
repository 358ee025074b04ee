//! End to end, over real HTTP: one server with default settings (but a short read timeout) is
//! sent every hostile request of issue 11 and the ones that already held. Each gets its 4xx,
//! the process stays up, and a normal registration and sign-in succeed afterwards.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::support::{status_and_json, Fixture, TestServer, PASSWORD};

/// Sends raw bytes on a new connection and reads until the server closes it (or `limit`), off
/// the test's runtime (the socket work blocks).
async fn raw(
    addr: SocketAddr,
    bytes: impl AsRef<[u8]> + Send + 'static,
    limit: Duration,
) -> (String, Duration) {
    tokio::task::spawn_blocking(move || raw_blocking(addr, bytes.as_ref(), limit))
        .await
        .unwrap()
}

fn raw_blocking(addr: SocketAddr, bytes: &[u8], limit: Duration) -> (String, Duration) {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(limit)).unwrap();
    // The server may answer and close before it has read everything: a failed write is fine.
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), start.elapsed())
}

fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or("")
}

/// Every answer on the connection: the number of HTTP status lines in it.
fn answers(answer: &str) -> usize {
    answer.matches("HTTP/1.1 ").count()
}

async fn post_raw(srv: &TestServer, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let resp = srv
        .client
        .post(srv.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    status_and_json(resp).await
}

fn assert_code(status: u16, body: &Value, want_status: u16, code: &str, what: &str) {
    assert_eq!(status, want_status, "{what}: {body}");
    assert_eq!(body["code"], code, "{what}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_their_4xx_and_the_server_keeps_serving() {
    let srv = TestServer::with(&[("HELLOJOHN_READ_TIMEOUT", "1s")]).await;
    let fx = srv.fixture().await;
    let reg = srv.register(&fx, "ada@example.com").await;
    let access = reg["access_token"].as_str().unwrap().to_string();
    let addr = srv.addr;

    // Forged access tokens on /v2/me: alg none, HS256 keyed with the public key, a foreign
    // Ed25519 key, a truncated signature, an oversized token.
    let header = |alg: &str, kid: &str| {
        URL_SAFE_NO_PAD.encode(json!({ "alg": alg, "typ": "JWT", "kid": kid }).to_string())
    };
    let (_, jwks) = status_and_json(srv.get("/.well-known/jwks.json").await).await;
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_string();
    let public = URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    let claims_b64 = access.split('.').nth(1).unwrap().to_string();
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&claims_b64).unwrap()).unwrap();
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some(kid.clone()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&public),
    )
    .unwrap();
    let signature = access.split('.').nth(2).unwrap();
    let forged = [
        format!("{}.{claims_b64}.", header("none", &kid)),
        format!("{}.{claims_b64}.", header("None", &kid)),
        hs256,
        format!(
            "{}.{claims_b64}.{}",
            header("EdDSA", "someone-elses-key"),
            signature
        ),
        format!(
            "{}.{claims_b64}.{}",
            header("EdDSA", &kid),
            &signature[..signature.len() - 4]
        ),
        format!(
            "{}.{}.{signature}",
            header("EdDSA", &kid),
            "A".repeat(10_000)
        ),
        "....".to_string(),
    ];
    for token in &forged {
        let resp = srv
            .client
            .get(srv.url("/v2/me"))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        let (status, body) = status_and_json(resp).await;
        assert_code(
            status,
            &body,
            401,
            "TOKEN_INVALID",
            &token[..token.len().min(60)],
        );
    }

    // A header that is not ASCII is no Bearer token at all.
    let resp = srv
        .client
        .get(srv.url("/v2/me"))
        .header(
            "authorization",
            reqwest::header::HeaderValue::from_bytes(b"Bearer \xf0\x9f\x98\x80").unwrap(),
        )
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(resp).await;
    assert_code(
        status,
        &body,
        401,
        "UNAUTHORIZED",
        "non-ASCII Authorization",
    );

    // Request smuggling: Content-Length and Transfer-Encoding together is refused outright,
    // and the request hidden in the body is never answered.
    let smuggle = b"POST /v2/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
        Content-Length: 48\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /ping HTTP/1.1\r\nHost: x\r\n\r\n";
    let (answer, _) = raw(addr, smuggle, Duration::from_secs(5)).await;
    assert!(status_line(&answer).starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(
        answers(&answer),
        1,
        "the smuggled GET is not answered: {answer}"
    );
    // Two Content-Lengths that disagree.
    let (answer, _) = raw(addr, b"POST /v2/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}", Duration::from_secs(5)).await;
    assert!(status_line(&answer).starts_with("HTTP/1.1 400"), "{answer}");

    // Header floods: too many headers, one enormous header.
    let mut many = b"GET /ping HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..500 {
        many.extend_from_slice(format!("X-Flood-{i}: {}\r\n", "a".repeat(100)).as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let mut huge = b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Huge: ".to_vec();
    huge.extend_from_slice(&vec![b'a'; 1 << 20]);
    huge.extend_from_slice(b"\r\n\r\n");
    for flood in [many, huge] {
        let (answer, _) = raw(addr, flood, Duration::from_secs(5)).await;
        let line = status_line(&answer);
        assert!(
            line.starts_with("HTTP/1.1 431")
                || line.starts_with("HTTP/1.1 400")
                || answer.is_empty(),
            "{line}"
        );
        assert!(!line.starts_with("HTTP/1.1 200"), "{line}");
    }

    // Slowloris: headers that never end are cut off by the read timeout (1 s here).
    let (answer, elapsed) = raw(
        addr,
        b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: ",
        Duration::from_secs(10),
    )
    .await;
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        elapsed < Duration::from_secs(5),
        "cut off after {elapsed:?}"
    );

    // Bodies: over the limit (declared, up to 4x: read and discarded, so the sender gets its
    // answer), 1 MB chunked, invalid UTF-8, duplicate keys, deep nesting. (A declared 1 MB is
    // refused unread: the client may then see a broken pipe instead of the answer.)
    let (status, body) = post_raw(
        &srv,
        "/v2/auth/login",
        "application/json",
        vec![b' '; 3 << 16],
    )
    .await;
    assert_code(status, &body, 413, "PAYLOAD_TOO_LARGE", "192 KB body");
    let mut chunked =
        b"POST /v2/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
        Transfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for _ in 0..64 {
        chunked.extend_from_slice(b"4000\r\n");
        chunked.extend_from_slice(&[b' '; 0x4000]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (answer, _) = raw(addr, chunked, Duration::from_secs(5)).await;
    assert!(status_line(&answer).starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("PAYLOAD_TOO_LARGE"), "{answer}");
    let mut invalid_utf8 = br#"{"tenant_id":"acme","client_id":"acme-web","email":""#.to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    invalid_utf8.extend_from_slice(br#"@x.com","password":"Passw0rd-Passw0rd"}"#);
    let (status, body) =
        post_raw(&srv, "/v2/auth/register", "application/json", invalid_utf8).await;
    assert_code(status, &body, 400, "INVALID_JSON", "invalid UTF-8");
    let duplicate = format!(
        r#"{{"tenant_id":"acme","client_id":"acme-web","email":"ada@example.com","email":"eve@example.com","password":"{PASSWORD}"}}"#
    );
    let (status, body) = post_raw(
        &srv,
        "/v2/auth/login",
        "application/json",
        duplicate.into_bytes(),
    )
    .await;
    assert_code(status, &body, 400, "INVALID_JSON", "duplicate keys");
    // A struct's fields in order, as an array: a derived Deserialize would take it.
    let positional = json!([fx.slug(), fx.client_id(), "ada@example.com", PASSWORD]);
    let (status, body) = post_raw(
        &srv,
        "/v2/auth/login",
        "application/json",
        positional.to_string().into_bytes(),
    )
    .await;
    assert_code(status, &body, 400, "INVALID_JSON", "an array body");
    assert_eq!(body["message"], "the body must be a JSON object");
    for path in ["/v2/auth/logout", "/v2/auth/register", "/v2/auth/login"] {
        let deep = format!("{{\"zzz\":{}{}}}", "[".repeat(20_000), "]".repeat(20_000));
        let (status, body) = post_raw(&srv, path, "application/json", deep.into_bytes()).await;
        assert_code(status, &body, 400, "INVALID_JSON", path);
    }

    // Login CSRF: a cross-site page, a text/plain body.
    let creds = json!({
        "tenant_id": fx.slug(), "client_id": fx.client_id(),
        "email": "ada@example.com", "password": PASSWORD,
    });
    let resp = srv
        .client
        .post(srv.url("/v2/session/login"))
        .header("origin", "https://evil.example")
        .json(&creds)
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(resp).await;
    assert_code(
        status,
        &body,
        403,
        "CROSS_SITE_REQUEST",
        "cross-site session login",
    );
    let (status, body) = post_raw(
        &srv,
        "/v2/session/login",
        "text/plain",
        creds.to_string().into_bytes(),
    )
    .await;
    assert_code(
        status,
        &body,
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        "text/plain session login",
    );
    // Sign-out with a self-chosen CSRF pair.
    let resp = srv
        .client
        .post(srv.url("/v2/auth/logout"))
        .header("cookie", "sid=whatever; csrf_token=mine")
        .header("x-csrf-token", "mine")
        .json(&json!({ "refresh_token": reg["refresh_token"] }))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(resp).await;
    assert_code(
        status,
        &body,
        403,
        "CSRF_TOKEN_INVALID",
        "self-chosen CSRF pair",
    );

    // Self-registration cannot write into tokens, nor store megabytes; addresses that hide
    // characters or are not addresses are refused.
    let mut escalate = creds.clone();
    escalate["email"] = json!("mallory@example.com");
    escalate["custom_fields"] = json!({ "role": "admin" });
    let (status, body) = post_raw(
        &srv,
        "/v2/auth/register",
        "application/json",
        escalate.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(claims.get("custom").is_none(), "{claims}");
    let mut fat = creds.clone();
    fat["email"] = json!("fat@example.com");
    fat["custom_fields"] = json!({ "blob": "x".repeat(40_000) });
    let (status, body) = post_raw(
        &srv,
        "/v2/auth/register",
        "application/json",
        fat.to_string().into_bytes(),
    )
    .await;
    assert_code(status, &body, 400, "BAD_REQUEST", "40 KB of custom fields");
    assert_eq!(body["detail"]["field"], "custom_fields");
    for email in [
        "\u{200b}zed@x.com",
        "\u{202e}zed@x.com",
        "\"<script>\"@x.com",
        "zed@x.com\u{0000}",
    ] {
        let mut bad = creds.clone();
        bad["email"] = json!(email);
        let (status, body) = post_raw(
            &srv,
            "/v2/auth/register",
            "application/json",
            bad.to_string().into_bytes(),
        )
        .await;
        assert_code(status, &body, 400, "BAD_REQUEST", email);
        assert_eq!(body["detail"]["field"], "email", "{email}");
    }

    // A stored hash with an absurd cost is a quick mismatch, not a worker held for seconds.
    let store = srv.store();
    let login = store
        .find_password_login(fx.tenant.id, "mallory@example.com")
        .await
        .unwrap()
        .unwrap();
    let slow = "$argon2id$v=19$m=19456,t=300,p=1$MDEyMzQ1Njc4OWFiY2RlZg$T4/omaWL/5ukLzshadBItERFNqPjcXmxdIJraRbPTy0";
    assert!(store
        .upgrade_password_hash(login.user.id, &login.password_hash, slow)
        .await
        .unwrap());
    let started = Instant::now();
    let (status, body) = srv.login(&fx, "mallory@example.com", PASSWORD).await;
    assert_code(
        status,
        &body,
        401,
        "INVALID_CREDENTIALS",
        "t=300 stored hash",
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // A disabled user's still-valid access token stops working within the user cache's TTL.
    store
        .set_user_disabled(login.user.id, true, engine::unix_now())
        .await
        .unwrap();
    let disabled_at = Instant::now();
    loop {
        let (status, body) = status_and_json(srv.get_bearer("/v2/me", token).await).await;
        if status == 401 {
            assert_eq!(body["code"], "TOKEN_INVALID", "{body}");
            break;
        }
        assert!(disabled_at.elapsed() < Duration::from_secs(7), "{body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Still up: liveness, and a normal registration and sign-in.
    assert_eq!(srv.get("/ping").await.status(), 200);
    still_serves(&srv, &fx).await;
    srv.stop().await;
}

/// A new user registers and signs in, and the refresh token of the first user still rotates.
async fn still_serves(srv: &TestServer, fx: &Fixture) {
    srv.register(fx, "after-the-storm@example.com").await;
    let (status, body) = srv.login(fx, "after-the-storm@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
}
