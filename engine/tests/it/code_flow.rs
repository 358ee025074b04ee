//! The OAuth 2.0 authorization-code flow end to end over HTTP, as a browser and a client app
//! would drive it: authorize, the hosted sign-in page, the code, the token request with PKCE,
//! the ID token checked with an independent JOSE library from the JWKS, refresh, code reuse,
//! and the error paths of RFC 6749 section 4.1.2.1. Also the client-credentials grant.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::auth::str_of;
use crate::support::{status_and_json, Fixture, TestServer, PASSWORD};

pub const REDIRECT: &str = "https://app.example/callback";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A browser: keeps cookies, follows no redirect (the test reads each `Location`).
pub struct Browser {
    http: reqwest::Client,
    base: String,
    pub cookies: BTreeMap<String, String>,
}

pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Browser {
    pub fn new(srv: &TestServer) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: srv.url(""),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn keep(&mut self, resp: reqwest::Response) -> Answer {
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || attrs.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        Answer {
            headers: resp.headers().clone(),
            status: resp.status().as_u16(),
            location: resp
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_string()),
            body: resp.text().await.unwrap(),
        }
    }

    fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.base)
        }
    }

    pub async fn get(&mut self, path: &str) -> Answer {
        let resp = self
            .http
            .get(self.url(path))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(resp).await
    }

    pub async fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let resp = self
            .http
            .post(self.url(path))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep(resp).await
    }
}

/// The value of a hidden input of the sign-in page.
pub fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("{name} in {page}"))
        + marker.len();
    let end = start + page[start..].find('"').unwrap();
    page[start..end]
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
}

/// The query parameters of a URL.
pub fn query(url: &str) -> BTreeMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn authorize_path(client_id: &str, extra: &[(&str, &str)]) -> String {
    let ch = challenge(VERIFIER);
    let mut pairs: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid email profile"),
        ("state", "st-123"),
        ("nonce", "n-0S6_WzA2Mj"),
        ("code_challenge", &ch),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        pairs.retain(|(pk, _)| pk != k);
        if !v.is_empty() {
            pairs.push((k, v));
        }
    }
    let q: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("/oauth2/authorize?{q}")
}

/// A public SPA client with the test redirect URI.
pub async fn spa(srv: &TestServer, fx: &Fixture, client_id: &str) -> store::Client {
    let mut new = store::NewClient::new(fx.tenant.id, client_id, "Demo SPA");
    new.redirect_uris = vec![REDIRECT.into()];
    srv.store()
        .create_client(new, engine::unix_now(), None)
        .await
        .unwrap()
}

/// Authorize, sign in on the hosted page, and come back with a code. Returns the code.
pub async fn sign_in_for_code(b: &mut Browser, authorize: &str, email: &str) -> String {
    let a = b.get(authorize).await;
    assert_eq!(a.status, 302, "{}", a.body);
    let login = a.location.unwrap();
    assert!(login.starts_with("/oauth2/login?"), "{login}");
    let page = b.get(&login).await;
    assert_eq!(page.status, 200, "{}", page.body);
    // A browser sends the page's own origin with its post (not `Origin: null`, which the
    // same-site check refuses), and the form may end at the client's redirect URI.
    assert_eq!(page.headers["referrer-policy"], "same-origin");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("form-action 'self' https://app.example;"),
        "{csp}"
    );
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let csrf = hidden(&page.body, "csrf_token");
    let return_to = hidden(&page.body, "return_to");
    let done = b
        .post_form(
            "/oauth2/login",
            &[
                ("email", email),
                ("password", PASSWORD),
                ("csrf_token", &csrf),
                ("return_to", &return_to),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let back = b.get(&done.location.unwrap()).await;
    assert_eq!(back.status, 302, "{}", back.body);
    let to = back.location.unwrap();
    assert!(to.starts_with(REDIRECT), "{to}");
    let q = query(&to);
    assert_eq!(q["state"], "st-123");
    q["code"].clone()
}

pub async fn token(srv: &TestServer, form: &[(&str, &str)]) -> (u16, Value) {
    let resp = srv
        .client
        .post(srv.url("/oauth2/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    status_and_json(resp).await
}

/// The issuer, as discovery announces it.
pub async fn issuer(srv: &TestServer) -> String {
    let (_, doc) = status_and_json(srv.get("/.well-known/openid-configuration").await).await;
    str_of(&doc, "issuer").to_string()
}

/// The ID token's claims, verified with `jsonwebtoken` from the JWKS alone.
pub async fn verified_id_token(srv: &TestServer, id_token: &str, aud: &str) -> Value {
    use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
    let header = decode_header(id_token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256, "ID tokens default to RS256");
    let kid = header.kid.unwrap();
    let (_, jwks) = status_and_json(srv.get("/.well-known/jwks.json").await).await;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("{kid} in {jwks}"))
        .clone();
    assert_eq!(jwk["kty"], "RSA");
    let key = DecodingKey::from_rsa_components(str_of(&jwk, "n"), str_of(&jwk, "e")).unwrap();
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[aud]);
    v.set_issuer(&[issuer(srv).await]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    decode::<Value>(id_token, &key, &v)
        .unwrap_or_else(|e| panic!("{e}: {id_token}"))
        .claims
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_flow_with_pkce_through_the_hosted_page() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    let app = spa(&srv, &fx, "spa").await;
    let reg = srv.register(&fx, "ada@example.com").await;
    let mut b = Browser::new(&srv);

    let code = sign_in_for_code(&mut b, &authorize_path("spa", &[]), "ada@example.com").await;
    // The code is stored hashed, not as itself.
    assert_eq!(code.len(), 43);

    // Without the verifier, or with another one, or another redirect URI: refused, and the
    // code is not spent by it.
    for bad in [
        vec![("code_verifier", "")],
        vec![("code_verifier", "x".repeat(50).as_str())],
        vec![("redirect_uri", "https://app.example/other")],
    ] {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("client_id", "spa"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ];
        for (k, v) in &bad {
            form.retain(|(fk, _)| fk != k);
            if !v.is_empty() {
                form.push((k, v));
            }
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, *v)).collect();
        let (status, body) = token(&srv, &form).await;
        assert_eq!(status, 400, "{bad:?}: {body}");
        assert_eq!(body["error"], "invalid_grant", "{body}");
    }

    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "spa"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let (status, body) = token(&srv, &form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "openid email profile");
    let access = str_of(&body, "access_token").to_string();
    let refresh = str_of(&body, "refresh_token").to_string();
    let claims = verified_id_token(&srv, str_of(&body, "id_token"), &app.client_id).await;
    assert_eq!(claims["sub"], reg["user_id"]);
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["azp"], "spa");
    assert_eq!(claims["email"], "ada@example.com");
    assert_eq!(claims["email_verified"], false);
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert!(claims["auth_time"].as_i64().unwrap() <= claims["iat"].as_i64().unwrap());
    let digest = Sha256::digest(access.as_bytes());
    assert_eq!(claims["at_hash"], URL_SAFE_NO_PAD.encode(&digest[..16]));

    // The access token works, with the granted scopes; the refresh token rotates.
    let (status, me) = status_and_json(srv.get_bearer("/v2/me", &access).await).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["scp"], "openid email profile");
    let (status, body) = token(
        &srv,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "spa"),
            ("refresh_token", &refresh),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let rotated = str_of(&body, "refresh_token").to_string();

    // The code again: refused, and what it issued is revoked: the access token too (by its
    // `jti`, RFC 6749 section 4.1.2).
    let (status, body) = token(&srv, &form).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let (status, body) = status_and_json(srv.get_bearer("/v2/me", &access).await).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = token(
        &srv,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "spa"),
            ("refresh_token", &rotated),
        ],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");

    // Signed in now: the next authorization answers at once, with a new code.
    let again = b.get(&authorize_path("spa", &[("prompt", "none")])).await;
    assert_eq!(again.status, 302);
    let q = query(again.location.as_deref().unwrap());
    assert!(q.contains_key("code"), "{q:?}");
    assert_eq!(q["iss"], issuer(&srv).await);

    // Counted: one sign-in on the hosted page, one code redeemed (and the reuse refused).
    for (series, n) in [
        (
            r#"hellojohn_auth_sign_ins_total{method="hosted",status="success"}"#,
            1.0,
        ),
        (
            r#"hellojohn_auth_sign_ins_total{method="authorization_code",status="success"}"#,
            1.0,
        ),
    ] {
        assert_eq!(srv.metric_value(series).await, n, "{series}");
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_errors_follow_rfc_6749() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    spa(&srv, &fx, "spa").await;
    let mut b = Browser::new(&srv);

    // Unknown client, or a redirect URI that is not registered: shown, never redirected.
    for path in [
        authorize_path("nope", &[]),
        authorize_path("spa", &[("redirect_uri", "https://evil.example/cb")]),
        authorize_path("spa", &[("redirect_uri", "")]),
    ] {
        let a = b.get(&path).await;
        assert_eq!(a.status, 400, "{path}");
        assert!(a.location.is_none());
        assert!(a.body.contains("invalid_request"), "{}", a.body);
    }

    // Past the redirect URI, errors go back to it with the state.
    for (extra, error) in [
        (vec![("code_challenge", "")], "invalid_request"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("scope", "admin")], "invalid_scope"),
        (vec![("prompt", "none")], "login_required"),
        (
            vec![("request", "eyJhbGciOiJub25lIn0.e30.")],
            "request_not_supported",
        ),
    ] {
        let a = b.get(&authorize_path("spa", &extra)).await;
        assert_eq!(a.status, 302, "{extra:?}: {}", a.body);
        let to = a.location.unwrap();
        assert!(to.starts_with(REDIRECT), "{to}");
        let q = query(&to);
        assert_eq!(q["error"], error, "{extra:?}");
        assert_eq!(q["state"], "st-123");
    }

    // The sign-in page refuses a return_to that is not ours, and a post without its cookie.
    let a = b.get("/oauth2/login?return_to=https://evil.example/").await;
    assert_eq!(a.status, 400);
    let a = b
        .post_form(
            "/oauth2/login",
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("csrf_token", "forged"),
                ("return_to", &authorize_path("spa", &[])),
            ],
        )
        .await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(!b.cookies.contains_key("sid"));

    // A wrong password and an unknown email get the same page.
    srv.register(&fx, "ada@example.com").await;
    let mut pages = Vec::new();
    for email in ["ada@example.com", "nobody@example.com"] {
        let login = b.get(&authorize_path("spa", &[])).await.location.unwrap();
        let page = b.get(&login).await;
        let csrf = hidden(&page.body, "csrf_token");
        let return_to = hidden(&page.body, "return_to");
        let a = b
            .post_form(
                "/oauth2/login",
                &[
                    ("email", email),
                    ("password", "Wrong-Passw0rd"),
                    ("csrf_token", &csrf),
                    ("return_to", &return_to),
                ],
            )
            .await;
        assert_eq!(a.status, 401, "{}", a.body);
        assert!(a.body.contains("Invalid email or password."));
        pages.push(
            a.body
                .replace(&hidden(&a.body, "csrf_token"), "")
                .replace(email, ""),
        );
    }
    assert_eq!(pages[0], pages[1]);

    // A code is single use and bound to its client.
    let code = sign_in_for_code(&mut b, &authorize_path("spa", &[]), "ada@example.com").await;
    spa(&srv, &fx, "other").await;
    let (status, body) = token(
        &srv,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "other"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let (status, body) = token(&srv, &[("grant_type", "password")]).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "unsupported_grant_type");
    srv.stop().await;
}

/// OpenID Connect RP-Initiated Logout: the discovery document's `end_session_endpoint`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rp_initiated_logout_ends_the_browser_session() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    let mut new = store::NewClient::new(fx.tenant.id, "spa", "Demo SPA");
    new.redirect_uris = vec![REDIRECT.into()];
    new.post_logout_redirect_uris = vec!["https://app.example/bye".into()];
    srv.store()
        .create_client(new, engine::unix_now(), None)
        .await
        .unwrap();
    srv.register(&fx, "ada@example.com").await;
    let (_, doc) = status_and_json(srv.get("/.well-known/openid-configuration").await).await;
    assert_eq!(
        doc["end_session_endpoint"],
        format!("{}/oauth2/logout", issuer(&srv).await)
    );

    let mut b = Browser::new(&srv);
    let code = sign_in_for_code(&mut b, &authorize_path("spa", &[]), "ada@example.com").await;
    let (_, body) = token(
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
    let id_token = str_of(&body, "id_token").to_string();
    assert!(b.cookies.contains_key("sid"));

    // With the app's ID token: signed out at once, back to the registered URI with the state.
    let q: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("id_token_hint", id_token.as_str()),
            ("post_logout_redirect_uri", "https://app.example/bye"),
            ("state", "bye-1"),
        ])
        .finish();
    let out = b.get(&format!("/oauth2/logout?{q}")).await;
    assert_eq!(out.status, 302, "{}", out.body);
    assert_eq!(
        out.location.as_deref(),
        Some("https://app.example/bye?state=bye-1")
    );
    assert!(!b.cookies.contains_key("sid"));
    let again = b.get(&authorize_path("spa", &[("prompt", "none")])).await;
    assert_eq!(
        query(again.location.as_deref().unwrap())["error"],
        "login_required"
    );

    // An unregistered URI: signed out all the same, no redirect.
    sign_in_for_code(&mut b, &authorize_path("spa", &[]), "ada@example.com").await;
    let q: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("id_token_hint", id_token.as_str()),
            ("post_logout_redirect_uri", "https://evil.example/"),
        ])
        .finish();
    let out = b.get(&format!("/oauth2/logout?{q}")).await;
    assert_eq!(out.status, 200);
    assert!(out.location.is_none());
    assert!(out.body.contains("You are signed out"));
    assert!(!b.cookies.contains_key("sid"));

    // Without a hint the user confirms on a page of ours: a link from another site alone
    // signs nobody out, and a forged confirmation neither.
    sign_in_for_code(&mut b, &authorize_path("spa", &[]), "ada@example.com").await;
    let ask = b
        .get(
            "/oauth2/logout?client_id=spa&post_logout_redirect_uri=https%3A%2F%2Fapp.example%2Fbye",
        )
        .await;
    assert_eq!(ask.status, 200);
    assert!(ask.body.contains("Sign out of Demo SPA?"), "{}", ask.body);
    assert!(b.cookies.contains_key("sid"));
    let forged = b
        .post_form(
            "/oauth2/logout",
            &[("confirm", "1"), ("csrf_token", "forged")],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert!(b.cookies.contains_key("sid"));
    let csrf = hidden(&ask.body, "csrf_token");
    let out = b
        .post_form(
            "/oauth2/logout",
            &[
                ("confirm", "1"),
                ("csrf_token", &csrf),
                ("client_id", "spa"),
                ("post_logout_redirect_uri", "https://app.example/bye"),
            ],
        )
        .await;
    assert_eq!(out.status, 302, "{}", out.body);
    assert_eq!(out.location.as_deref(), Some("https://app.example/bye"));
    assert!(!b.cookies.contains_key("sid"));
    srv.stop().await;
}
