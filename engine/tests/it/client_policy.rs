//! Issue 24: every token is issued for one client, one tenant and one purpose. Each test
//! reproduces one finding of the security pass (it fails on the release before the fix), over
//! real HTTP, on the store the suite runs on.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::code_flow::{authorize_path, hidden, query, sign_in_for_code, spa, Browser, REDIRECT};
use crate::support::{status_and_json, Fixture, TestServer, PASSWORD};

/// The claims of a JWT, decoded without verification (the server verified it).
pub fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

const SECRET: &str = "a-client-secret-of-forty-characters-0001";

/// A client made through the store with `edit` applied to the defaults.
async fn client_with(
    s: &TestServer,
    fx: &Fixture,
    client_id: &str,
    edit: impl FnOnce(&mut store::NewClient),
) -> store::Client {
    let mut new = store::NewClient::new(fx.tenant.id, client_id, client_id);
    edit(&mut new);
    s.store()
        .create_client(new, engine::unix_now(), None)
        .await
        .unwrap()
}

fn confidential(new: &mut store::NewClient) {
    new.client_type = store::ClientType::Confidential;
    new.secret_hash = Some(store::SecretHash::new(auth::client_secret::hash(SECRET)));
}

fn code_of(body: &Value) -> (&str, &str) {
    (
        body["code"].as_str().unwrap_or(""),
        body["message"].as_str().unwrap_or(""),
    )
}

async fn post(s: &TestServer, path: &str, body: Value) -> (u16, Value) {
    status_and_json(s.post_json(path, &body).await).await
}

#[tokio::test]
async fn a_machine_client_cannot_sign_users_in() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    client_with(&s, &fx, "billing-job", |n| {
        confidential(n);
        n.grant_types = vec!["client_credentials".into()];
        n.scopes = vec!["api:read".into(), "api:write".into()];
    })
    .await;
    for (path, secret) in [
        ("/v2/auth/register", None),
        ("/v2/auth/register", Some(SECRET)),
        ("/v2/auth/login", None),
        ("/v2/auth/login", Some(SECRET)),
        ("/v2/session/login", Some(SECRET)),
    ] {
        let mut body = json!({
            "tenant_id": fx.slug(), "client_id": "billing-job",
            "email": "mallory@example.com", "password": PASSWORD,
        });
        if let Some(secret) = secret {
            body["client_secret"] = json!(secret);
        }
        let (st, body) = post(&s, path, body).await;
        assert_eq!(
            (st, code_of(&body).0),
            (400, "UNAUTHORIZED_CLIENT"),
            "{path}: {body}"
        );
    }
    // Nothing was written: no account, no token.
    let found = s
        .store()
        .find_user_by_email(fx.tenant.id, "mallory@example.com")
        .await
        .unwrap();
    assert!(found.is_none(), "{found:?}");
    // The client's own grant still works, with its own scopes.
    let resp = s
        .client
        .post(s.url("/oauth2/token"))
        .basic_auth("billing-job", Some(SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let (st, body) = status_and_json(resp).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["scope"], "api:read api:write");
    s.stop().await;
}

#[tokio::test]
async fn a_confidential_client_signs_users_in_only_with_its_secret_and_user_scopes() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    client_with(&s, &fx, "web", |n| {
        confidential(n);
        n.grant_types = ["authorization_code", "refresh_token", "client_credentials"]
            .map(String::from)
            .to_vec();
        n.scopes = ["openid", "email", "profile", "api:read"]
            .map(String::from)
            .to_vec();
    })
    .await;
    let reg = |secret: Option<&str>| {
        let mut body = json!({
            "tenant_id": fx.slug(), "client_id": "web",
            "email": "web@example.com", "password": PASSWORD,
        });
        if let Some(secret) = secret {
            body["client_secret"] = json!(secret);
        }
        body
    };
    let (st, body) = post(&s, "/v2/auth/register", reg(None)).await;
    assert_eq!((st, code_of(&body).0), (401, "UNAUTHORIZED"), "{body}");
    let (st, body) = post(&s, "/v2/auth/register", reg(Some("wrong"))).await;
    assert_eq!((st, code_of(&body).0), (401, "UNAUTHORIZED"), "{body}");
    let (st, body) = post(&s, "/v2/auth/register", reg(Some(SECRET))).await;
    assert_eq!(st, 200, "{body}");
    let claims = claims_of(body["access_token"].as_str().unwrap());
    // The user's token never carries the client's own API scope.
    assert_eq!(claims["scp"], "openid email profile", "{claims}");
    assert_eq!(claims["aud"], "web");
    // HTTP Basic works too.
    let resp = s
        .client
        .post(s.url("/v2/auth/login"))
        .basic_auth("web", Some(SECRET))
        .json(&json!({"tenant_id": fx.slug(), "client_id": "web", "email": "web@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let (st, body) = status_and_json(resp).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["scp"],
        "openid email profile"
    );
    // A refresh keeps to the user scopes too.
    let resp = s
        .client
        .post(s.url("/oauth2/token"))
        .basic_auth("web", Some(SECRET))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    let (st, body) = status_and_json(resp).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["scp"],
        "openid email profile"
    );
    s.stop().await;
}

/// A refresh token stored directly, as one issued before its client lost the grant.
async fn planted_refresh(
    s: &TestServer,
    fx: &Fixture,
    user_id: uuid::Uuid,
    client_id: &str,
) -> String {
    let (token, hash) = auth::new_opaque_token();
    let now = engine::unix_now();
    s.store()
        .insert_refresh_token(
            store::NewRefreshToken {
                token_hash: hash,
                family_id: uuid::Uuid::now_v7(),
                user_id,
                tenant_id: fx.tenant.id,
                client_id: client_id.into(),
                issued_at: now,
                expires_at: now + 3600,
            },
            None,
        )
        .await
        .unwrap();
    token
}

#[tokio::test]
async fn refresh_tokens_only_for_clients_with_the_grant() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    client_with(&s, &fx, "no-refresh", |n| {
        n.grant_types = vec!["authorization_code".into()];
    })
    .await;
    let (st, body) = post(
        &s,
        "/v2/auth/register",
        json!({"tenant_id": fx.slug(), "client_id": "no-refresh", "email": "nr@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert!(body["access_token"].is_string(), "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let (st, body) = s
        .login(
            &Fixture {
                tenant: fx.tenant.clone(),
                client: s
                    .store()
                    .find_client(fx.tenant.id, "no-refresh")
                    .await
                    .unwrap()
                    .unwrap(),
            },
            "nr@example.com",
            PASSWORD,
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    // A token from before the grant went is refused by both refresh routes, and not rotated.
    let user = s
        .store()
        .find_user_by_email(fx.tenant.id, "nr@example.com")
        .await
        .unwrap()
        .unwrap();
    let token = planted_refresh(&s, &fx, user.id, "no-refresh").await;
    let (st, body) = crate::auth::oauth_refresh(&s, "no-refresh", &token).await;
    assert_eq!(
        (st, body["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{body}"
    );
    let (st, body) = s.refresh("no-refresh", &token).await;
    assert_eq!(
        (st, code_of(&body).0),
        (400, "UNAUTHORIZED_CLIENT"),
        "{body}"
    );
    let row = s
        .store()
        .find_refresh_token(auth::hash_opaque(&token))
        .await
        .unwrap()
        .unwrap();
    assert!(row.rotated_at.is_none(), "{row:?}");
    s.stop().await;
}

#[tokio::test]
async fn a_client_that_requires_a_verified_email_issues_nothing_before_on_any_path() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    client_with(&s, &fx, "strict", |n| {
        n.require_email_verification = true;
        n.redirect_uris = vec![REDIRECT.into()];
    })
    .await;
    // Register: the account exists, no token.
    let (st, body) = post(
        &s,
        "/v2/auth/register",
        json!({"tenant_id": fx.slug(), "client_id": "strict", "email": "new@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["email_verification_required"], true, "{body}");
    assert!(
        body.get("access_token").is_none() && body.get("refresh_token").is_none(),
        "{body}"
    );
    let user = s
        .store()
        .find_user_by_email(fx.tenant.id, "new@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body["user_id"], user.id.to_string());
    assert!(!user.email_verified);
    // Refresh with a token of that client: refused before anything rotates.
    let token = planted_refresh(&s, &fx, user.id, "strict").await;
    let (st, body) = s.refresh("strict", &token).await;
    assert_eq!(
        (st, code_of(&body).0),
        (403, "EMAIL_NOT_VERIFIED"),
        "{body}"
    );
    let (st, body) = crate::auth::oauth_refresh(&s, "strict", &token).await;
    assert_eq!(
        (st, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let row = s
        .store()
        .find_refresh_token(auth::hash_opaque(&token))
        .await
        .unwrap()
        .unwrap();
    assert!(row.rotated_at.is_none(), "{row:?}");
    // A browser signed in through another (lax) client of the tenant gets no code for it.
    let mut b = Browser::new(&s);
    spa(&s, &fx, "lax").await;
    sign_in_for_code(&mut b, &authorize_path("lax", &[]), "new@example.com").await;
    let a = b.get(&authorize_path("strict", &[])).await;
    assert_eq!(a.status, 302, "{}", a.body);
    let to = a.location.unwrap();
    assert!(to.starts_with(REDIRECT), "{to}");
    let q = query(&to);
    assert_eq!(
        q.get("error").map(String::as_str),
        Some("access_denied"),
        "{to}"
    );
    assert!(!q.contains_key("code"), "{to}");
    s.stop().await;
}

/// A third-party SPA with the test redirect URI.
async fn partner(s: &TestServer, fx: &Fixture) {
    client_with(s, fx, "partner", |n| {
        n.third_party = true;
        n.redirect_uris = vec![REDIRECT.into()];
    })
    .await;
}

/// Authorize `partner` in browser `b` (already signed in): through the consent page when
/// `consent` says so. Returns where the browser ends.
async fn authorize_partner(b: &mut Browser, consent: Option<&str>) -> String {
    let a = b.get(&authorize_path("partner", &[])).await;
    assert_eq!(a.status, 302, "{}", a.body);
    let to = a.location.unwrap();
    let Some(decision) = consent else { return to };
    assert!(to.starts_with("/oauth2/consent?"), "{to}");
    let page = b.get(&to).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("partner") && page.body.contains("email"),
        "{}",
        page.body
    );
    assert!(page.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let csrf = hidden(&page.body, "csrf_token");
    let return_to = hidden(&page.body, "return_to");
    // A forged post (no CSRF token of this session) consents to nothing.
    let forged = b
        .post_form(
            "/oauth2/consent",
            &[
                ("return_to", &return_to),
                ("csrf_token", "x"),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let done = b
        .post_form(
            "/oauth2/consent",
            &[
                ("return_to", &return_to),
                ("csrf_token", &csrf),
                ("decision", decision),
            ],
        )
        .await;
    if decision != "allow" {
        assert_eq!(done.status, 302, "{}", done.body);
        return done.location.unwrap();
    }
    assert_eq!(done.status, 303, "{}", done.body);
    let back = b.get(&done.location.unwrap()).await;
    assert_eq!(back.status, 302, "{}", back.body);
    back.location.unwrap()
}

#[tokio::test]
async fn third_party_clients_get_consent_and_tokens_that_cannot_manage_the_account() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    partner(&s, &fx).await;
    s.register(&fx, "owner@example.com").await;
    // No password API for a third party.
    let (st, body) = post(
        &s,
        "/v2/auth/login",
        json!({"tenant_id": fx.slug(), "client_id": "partner", "email": "owner@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(
        (st, code_of(&body).0),
        (400, "UNAUTHORIZED_CLIENT"),
        "{body}"
    );
    // Sign in on the hosted page through a first-party client, then authorize the partner.
    let mut b = Browser::new(&s);
    spa(&s, &fx, "first").await;
    sign_in_for_code(&mut b, &authorize_path("first", &[]), "owner@example.com").await;
    // prompt=none cannot consent.
    let none = b
        .get(&authorize_path("partner", &[("prompt", "none")]))
        .await;
    assert_eq!(query(&none.location.unwrap())["error"], "consent_required");
    let to = authorize_partner(&mut b, Some("allow")).await;
    assert!(to.starts_with(REDIRECT), "{to}");
    let code = query(&to)["code"].clone();
    // Remembered: the next authorization asks nothing.
    let again = authorize_partner(&mut b, None).await;
    assert!(
        again.starts_with(REDIRECT) && query(&again).contains_key("code"),
        "{again}"
    );
    let (st, tokens) = crate::code_flow::token(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", "partner"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", crate::code_flow::VERIFIER),
        ],
    )
    .await;
    assert_eq!(st, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    // It reads the profile, and manages nothing.
    assert_eq!(s.get_bearer("/v2/me", access).await.status(), 200);
    for (path, body) in [
        ("/v2/mfa/totp/enroll", json!({})),
        (
            "/v2/auth/complete-profile",
            json!({"custom_fields": {"plan": "x"}}),
        ),
        ("/v2/auth/logout-all", json!({})),
    ] {
        let (st, body) = status_and_json(s.post_json_bearer(path, access, &body).await).await;
        assert_eq!(
            (st, code_of(&body).0),
            (403, "FIRST_PARTY_REQUIRED"),
            "{path}: {body}"
        );
    }
    let (st, body) = status_and_json(s.get_bearer("/v2/mfa/factors", access).await).await;
    assert_eq!(st, 403, "{body}");
    // A machine token manages nothing either.
    client_with(&s, &fx, "robot", |n| {
        confidential(n);
        n.grant_types = vec!["client_credentials".into()];
        n.scopes = vec!["api:read".into()];
    })
    .await;
    let resp = s
        .client
        .post(s.url("/oauth2/token"))
        .basic_auth("robot", Some(SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let (_, machine) = status_and_json(resp).await;
    let (st, body) = status_and_json(
        s.post_json_bearer(
            "/v2/auth/logout-all",
            machine["access_token"].as_str().unwrap(),
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(st, 403, "{body}");

    // Another user denies: the client gets access_denied and no consent is stored.
    s.register(&fx, "denier@example.com").await;
    let mut other = Browser::new(&s);
    sign_in_for_code(
        &mut other,
        &authorize_path("first", &[]),
        "denier@example.com",
    )
    .await;
    let to = authorize_partner(&mut other, Some("deny")).await;
    assert_eq!(query(&to)["error"], "access_denied", "{to}");
    let denier = s
        .store()
        .find_user_by_email(fx.tenant.id, "denier@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.store().find_consent(denier.id, "partner").await.unwrap(),
        None
    );
    s.stop().await;
}

#[tokio::test]
async fn totp_enrolment_needs_a_recent_sign_in() {
    let s = TestServer::with(&[("HELLOJOHN_REAUTH_MAX_AGE", "2s")]).await;
    let fx = s.fixture().await;
    let reg = s.register(&fx, "late@example.com").await;
    let access = reg["access_token"].as_str().unwrap();
    let refreshed = {
        let (st, body) = s
            .refresh(fx.client_id(), reg["refresh_token"].as_str().unwrap())
            .await;
        assert_eq!(st, 200, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    };
    // A refreshed token is not a sign-in.
    let (st, body) = status_and_json(
        s.post_json_bearer("/v2/mfa/totp/enroll", &refreshed, &json!({}))
            .await,
    )
    .await;
    assert_eq!(
        (st, code_of(&body).0),
        (401, "REAUTHENTICATION_REQUIRED"),
        "{body}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let (st, body) = status_and_json(
        s.post_json_bearer("/v2/mfa/totp/enroll", access, &json!({}))
            .await,
    )
    .await;
    assert_eq!(
        (st, code_of(&body).0),
        (401, "REAUTHENTICATION_REQUIRED"),
        "{body}"
    );
    let (_, fresh) = s.login(&fx, "late@example.com", PASSWORD).await;
    let (st, body) = status_and_json(
        s.post_json_bearer(
            "/v2/mfa/totp/enroll",
            fresh["access_token"].as_str().unwrap(),
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    s.stop().await;
}

#[tokio::test]
async fn enabling_mfa_ends_the_other_sign_ins_but_the_callers() {
    use testkit::totp::{base32_decode, code as totp, step_now};
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    let reg = s.register(&fx, "careful@example.com").await;
    let access = reg["access_token"].as_str().unwrap();
    let (_, other) = s.login(&fx, "careful@example.com", PASSWORD).await;
    let resp = s
        .post_json(
            "/v2/session/login",
            &json!({"tenant_id": fx.slug(), "client_id": fx.client_id(), "email": "careful@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(resp.status(), 204);
    let sid = crate::support::cookie_value(&crate::support::set_cookies(&resp), "sid").unwrap();
    let (_, enrol) = status_and_json(
        s.post_json_bearer("/v2/mfa/totp/enroll", access, &json!({}))
            .await,
    )
    .await;
    let secret = base32_decode(enrol["secret_base32"].as_str().unwrap());
    let (st, body) = status_and_json(
        s.post_json_bearer(
            "/v2/mfa/totp/verify",
            access,
            &json!({"code": totp(&secret, step_now())}),
        )
        .await,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    // The other family and the cookie session are gone; the caller's family lives on.
    let (st, body) = s
        .refresh(fx.client_id(), other["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(st, 401, "{body}");
    let resp = s
        .client
        .get(s.url("/v2/me"))
        .header("cookie", format!("sid={sid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let (st, body) = s
        .refresh(fx.client_id(), reg["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(st, 200, "{body}");
    s.stop().await;
}

#[tokio::test]
async fn amr_tells_the_truth_and_each_mfa_challenge_finishes_only_where_it_began() {
    use testkit::totp::{code as totp, step_now};
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    spa(&s, &fx, "spa").await;
    let (secret, codes, _, _) = crate::mfa::enrolled(&s, &fx, "truth@example.com").await;

    // An API challenge cannot be finished on the hosted page (nor used up by trying).
    let (_, api) = s.login(&fx, "truth@example.com", PASSWORD).await;
    let api_token = api["mfa_token"].as_str().unwrap().to_string();
    let mut b = Browser::new(&s);
    let a = b.get(&authorize_path("spa", &[])).await;
    let page = b.get(&a.location.unwrap()).await;
    let csrf = hidden(&page.body, "csrf_token");
    let return_to = hidden(&page.body, "return_to");
    let hijack = b
        .post_form(
            "/oauth2/login",
            &[
                ("mfa_token", &api_token),
                ("code", &codes[0]),
                ("csrf_token", &csrf),
                ("return_to", &return_to),
            ],
        )
        .await;
    assert_eq!(hijack.status, 401, "{}", hijack.body);
    assert!(!b.cookies.contains_key("sid"));
    let (st, body) = post(
        &s,
        "/v2/mfa/totp/challenge",
        json!({"mfa_token": api_token, "code": codes[0]}),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["amr"],
        json!(["pwd", "otp", "mfa"])
    );

    // The page's challenge cannot be finished through the API.
    let csrf = hidden(&hijack.body, "csrf_token");
    let step = b
        .post_form(
            "/oauth2/login",
            &[
                ("email", "truth@example.com"),
                ("password", PASSWORD),
                ("csrf_token", &csrf),
                ("return_to", &return_to),
            ],
        )
        .await;
    let page_token = hidden(&step.body, "mfa_token");
    let (st, body) = post(
        &s,
        "/v2/mfa/totp/challenge",
        json!({"mfa_token": page_token, "code": codes[1]}),
    )
    .await;
    assert_eq!((st, code_of(&body).0), (400, "MFA_TOKEN_INVALID"), "{body}");
    // On the page it works, and the code flow's tokens say how the user signed in.
    let csrf = hidden(&step.body, "csrf_token");
    let done = b
        .post_form(
            "/oauth2/login",
            &[
                ("mfa_token", &page_token),
                ("code", &totp(&secret, step_now() + 1)),
                ("csrf_token", &csrf),
                ("return_to", &return_to),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let back = b.get(&done.location.unwrap()).await;
    let code = query(&back.location.unwrap())["code"].clone();
    let (st, tokens) = crate::code_flow::token(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", "spa"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", crate::code_flow::VERIFIER),
        ],
    )
    .await;
    assert_eq!(st, 200, "{tokens}");
    let mfa = json!(["pwd", "otp", "mfa"]);
    assert_eq!(
        claims_of(tokens["access_token"].as_str().unwrap())["amr"],
        mfa
    );
    assert_eq!(claims_of(tokens["id_token"].as_str().unwrap())["amr"], mfa);

    // A remembered device skips the code, and its tokens do not claim one.
    let (_, again) = s.login(&fx, "truth@example.com", PASSWORD).await;
    let resp = s
        .post_json(
            "/v2/mfa/totp/challenge",
            &json!({"mfa_token": again["mfa_token"], "code": codes[2], "remember_device": true}),
        )
        .await;
    let trusted =
        crate::support::cookie_value(&crate::support::set_cookies(&resp), "hj-trusted").unwrap();
    let resp = s
        .client
        .post(s.url("/v2/auth/login"))
        .header("cookie", format!("hj-trusted={trusted}"))
        .json(&json!({"tenant_id": fx.slug(), "client_id": fx.client_id(), "email": "truth@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let (st, body) = status_and_json(resp).await;
    assert_eq!(st, 200, "{body}");
    let remembered = body["access_token"].as_str().unwrap();
    assert_eq!(claims_of(remembered)["amr"], json!(["pwd"]));
    // So it is no fresh MFA sign-in: new recovery codes need a proof.
    let (st, body) = status_and_json(
        s.post_json_bearer("/v2/mfa/recovery/rotate", remembered, &json!({}))
            .await,
    )
    .await;
    assert_eq!(
        (st, code_of(&body).0),
        (400, "MFA_PROOF_REQUIRED"),
        "{body}"
    );
    s.stop().await;
}
