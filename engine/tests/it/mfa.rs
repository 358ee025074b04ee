//! MFA over HTTP, shaped like the SDK's calls: enrol, verify, sign out, sign in →
//! `mfa_required`, challenge, refresh, recovery code, disable. TOTP codes are computed here
//! from the enrolment's secret (RFC 6238, HMAC-SHA1), independently of the engine's code.

use serde_json::json;
use testkit::totp::{base32_decode, code as totp, step_now};

use crate::support::{status_and_json, Fixture, TestServer, PASSWORD};

/// Registers `email`, enrols and confirms TOTP. Returns the secret, the recovery codes, the
/// registration's access token and the time step of the code that confirmed the factor.
pub(crate) async fn enrolled(
    s: &TestServer,
    fx: &Fixture,
    email: &str,
) -> (Vec<u8>, Vec<String>, String, i64) {
    let reg = s.register(fx, email).await;
    let access = reg["access_token"].as_str().unwrap().to_string();
    let (st, body) = status_and_json(
        s.post_json_bearer("/v2/mfa/totp/enroll", &access, &json!({}))
            .await,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let secret_b32 = body["secret_base32"].as_str().unwrap();
    let url = body["otpauth_url"].as_str().unwrap();
    assert!(url.starts_with("otpauth://totp/"), "{url}");
    assert!(url.contains(&format!("secret={secret_b32}")), "{url}");
    let secret = base32_decode(secret_b32);
    assert_eq!(secret.len(), 20);
    // A wrong code does not confirm.
    let wrong = if totp(&secret, step_now()) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (st, body) = status_and_json(
        s.post_json_bearer("/v2/mfa/totp/verify", &access, &json!({ "code": wrong }))
            .await,
    )
    .await;
    assert_eq!(
        (st, body["code"].as_str()),
        (401, Some("INVALID_MFA_CODE")),
        "{body}"
    );
    let confirmed_step = step_now();
    let (st, body) = status_and_json(
        s.post_json_bearer(
            "/v2/mfa/totp/verify",
            &access,
            &json!({ "code": totp(&secret, confirmed_step) }),
        )
        .await,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["enabled"], true);
    let codes: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    (secret, codes, access, confirmed_step)
}

#[tokio::test]
async fn sdk_flow_enrol_challenge_refresh_recovery_disable() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    // An endpoint subscribed to everything, so that the tenant's events are recorded (the
    // outbox writes events only for subscribed tenants). Nothing listens there.
    let hook = uuid::Uuid::now_v7();
    s.store()
        .create_webhook_endpoint(
            store::NewWebhookEndpoint {
                id: hook,
                tenant_id: fx.tenant.id,
                url: "http://127.0.0.1:9/hook".into(),
                events: vec!["*".into()],
                secret_encrypted: vec![0; 48],
            },
            engine::unix_now(),
            None,
        )
        .await
        .unwrap();
    let (secret, codes, access, confirmed_step) = enrolled(&s, &fx, "mfa@example.com").await;

    let (st, f) = status_and_json(s.get_bearer("/v2/mfa/factors", &access).await).await;
    assert_eq!(st, 200, "{f}");
    assert_eq!(f["available_factors"], json!(["totp"]));
    assert_eq!(f["preferred_factor"], "totp");
    assert_eq!(f["recovery_codes_left"], 10);

    // Sign out everywhere (the registration's refresh family).
    let resp = s
        .post_json_bearer(
            "/v2/auth/logout-all",
            &access,
            &json!({ "client_id": fx.client_id() }),
        )
        .await;
    assert_eq!(resp.status(), 204);

    // Sign-in now stops at the second factor: HelloJohn's 200 body, no tokens.
    let (st, body) = s.login(&fx, "mfa@example.com", PASSWORD).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["mfa_required"], true);
    assert_eq!(body["amr"], json!(["pwd"]));
    assert_eq!(body["available_factors"], json!(["totp"]));
    assert_eq!(body["preferred_factor"], "totp");
    assert!(body.get("access_token").is_none(), "{body}");
    let mfa_token = body["mfa_token"].as_str().unwrap().to_string();

    // The code that confirmed enrolment was used: replaying it is refused (the next step's
    // code is within the window and works).
    let used = totp(&secret, confirmed_step);
    let (st, body) = status_and_json(
        s.post_json(
            "/v2/mfa/totp/challenge",
            &json!({ "mfa_token": mfa_token, "code": used }),
        )
        .await,
    )
    .await;
    assert_eq!(
        (st, body["code"].as_str()),
        (401, Some("INVALID_MFA_CODE")),
        "{body}"
    );

    // The SDK's body: {mfa_token, code}, no tenant anywhere.
    let next = totp(&secret, step_now() + 1);
    let (st, tokens) = status_and_json(
        s.post_json(
            "/v2/mfa/totp/challenge",
            &json!({ "mfa_token": mfa_token, "code": next }),
        )
        .await,
    )
    .await;
    assert_eq!(st, 200, "{tokens}");
    let access2 = tokens["access_token"].as_str().unwrap().to_string();
    let (_, me) = status_and_json(s.get_bearer("/v2/me", &access2).await).await;
    assert_eq!(me["amr"], json!(["pwd", "otp", "mfa"]), "{me}");

    // The mfa_token works once.
    let (st, body) = status_and_json(
        s.post_json(
            "/v2/mfa/totp/challenge",
            &json!({ "mfa_token": mfa_token, "code": totp(&secret, step_now() - 1) }),
        )
        .await,
    )
    .await;
    assert_eq!(
        (st, body["code"].as_str()),
        (400, Some("MFA_TOKEN_INVALID")),
        "{body}"
    );

    // Its refresh token rotates like any other.
    let (st, body) = s
        .refresh(fx.client_id(), tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(st, 200, "{body}");

    // A recovery code finishes a challenge, once (the SDK's `challenge_id` name works too).
    let (_, body) = s.login(&fx, "mfa@example.com", PASSWORD).await;
    let t2 = body["mfa_token"].as_str().unwrap().to_string();
    let (st, body) = status_and_json(
        s.post_json(
            "/v2/mfa/totp/challenge",
            &json!({ "challenge_id": t2, "recovery": codes[0].to_lowercase() }),
        )
        .await,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let (_, body) = s.login(&fx, "mfa@example.com", PASSWORD).await;
    let t3 = body["mfa_token"].as_str().unwrap().to_string();
    let (st, body) = status_and_json(
        s.post_json(
            "/v2/mfa/totp/challenge",
            &json!({ "mfa_token": t3, "recovery": codes[0] }),
        )
        .await,
    )
    .await;
    assert_eq!(
        (st, body["code"].as_str()),
        (401, Some("INVALID_MFA_CODE")),
        "{body}"
    );
    let (_, f) = status_and_json(s.get_bearer("/v2/mfa/factors", &access2).await).await;
    assert_eq!(f["recovery_codes_left"], 9);

    // Disabling needs a proof; the SDK sends a code (here: a recovery code).
    let (st, body) = status_and_json(
        s.post_json_bearer("/v2/mfa/totp/disable", &access2, &json!({}))
            .await,
    )
    .await;
    assert_eq!(
        (st, body["code"].as_str()),
        (400, Some("MFA_PROOF_REQUIRED")),
        "{body}"
    );
    let (st, body) = status_and_json(
        s.post_json_bearer(
            "/v2/mfa/totp/disable",
            &access2,
            &json!({ "code": codes[1] }),
        )
        .await,
    )
    .await;
    assert_eq!(
        (st, body["disabled"].as_bool()),
        (200, Some(true)),
        "{body}"
    );

    // Sign-in gives tokens again.
    let (st, body) = s.login(&fx, "mfa@example.com", PASSWORD).await;
    assert_eq!(st, 200, "{body}");
    assert!(body["access_token"].is_string(), "{body}");
    let events = s
        .store()
        .list_events(Some(fx.tenant.id), 100)
        .await
        .unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert!(types.contains(&"mfa.enabled"), "{types:?}");
    assert!(types.contains(&"mfa.disabled"), "{types:?}");
    let mfa_logins: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "user.login" && e.metadata.as_json()["method"] == "mfa")
        .collect();
    assert_eq!(mfa_logins.len(), 2, "{events:?}");
    assert_eq!(mfa_logins[0].metadata.as_json()["amr"], "pwd otp mfa");
    assert_eq!(
        s.metric_value(r#"hellojohn_auth_sign_ins_total{method="mfa",status="success"}"#)
            .await,
        2.0
    );
    assert!(
        s.metric_value(r#"hellojohn_auth_sign_ins_total{method="password",status="mfa_required"}"#)
            .await
            >= 3.0
    );
    s.stop().await;
}

#[tokio::test]
async fn wrong_codes_exhaust_the_challenge_and_rotation_needs_a_fresh_proof() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    let (secret, _codes, old_access, _) = enrolled(&s, &fx, "five@example.com").await;
    let (_, body) = s.login(&fx, "five@example.com", PASSWORD).await;
    let token = body["mfa_token"].as_str().unwrap().to_string();
    let good = totp(&secret, step_now() + 1);
    let wrong = if good == "123456" { "654321" } else { "123456" };
    let mut last = 0;
    for _ in 0..5 {
        let (st, _) = status_and_json(
            s.post_json(
                "/v2/mfa/totp/challenge",
                &json!({ "mfa_token": token, "code": wrong }),
            )
            .await,
        )
        .await;
        last = st;
    }
    assert!(last == 401 || last == 429, "{last}");
    // Five wrong codes: the right one no longer finishes this challenge.
    let (st, body) = status_and_json(
        s.post_json(
            "/v2/mfa/totp/challenge",
            &json!({ "mfa_token": token, "code": good }),
        )
        .await,
    )
    .await;
    assert!(st == 400 || st == 429, "{st} {body}");

    // The registration's token is not from an MFA sign-in: rotating needs a proof.
    let (st, body) = status_and_json(
        s.post_json_bearer("/v2/mfa/recovery/rotate", &old_access, &json!({}))
            .await,
    )
    .await;
    assert_eq!(
        (st, body["code"].as_str()),
        (400, Some("MFA_PROOF_REQUIRED")),
        "{body}"
    );
    // With the password it works: ten new codes, under both names.
    let (st, body) = status_and_json(
        s.post_json_bearer(
            "/v2/mfa/recovery/rotate",
            &old_access,
            &json!({ "password": PASSWORD }),
        )
        .await,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["rotated"], true);
    assert_eq!(body["recovery_codes"].as_array().unwrap().len(), 10);
    assert_eq!(body["codes"], body["recovery_codes"]);
    s.stop().await;
}

#[tokio::test]
async fn a_remembered_device_skips_the_challenge_and_sessions_get_one_too() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    let (secret, codes, _, _) = enrolled(&s, &fx, "dev@example.com").await;
    let (_, body) = s.login(&fx, "dev@example.com", PASSWORD).await;
    let token = body["mfa_token"].as_str().unwrap().to_string();
    let resp = s
        .post_json(
            "/v2/mfa/totp/challenge",
            &json!({ "mfa_token": token, "code": totp(&secret, step_now() + 1), "remember_device": true }),
        )
        .await;
    let cookies = crate::support::set_cookies(&resp);
    let trusted = crate::support::cookie_value(&cookies, "hj-trusted").expect("trusted cookie");
    let line = cookies
        .iter()
        .find(|c| c.starts_with("hj-trusted="))
        .unwrap();
    assert!(
        line.contains("HttpOnly") && line.contains("SameSite=Strict"),
        "{line}"
    );
    assert_eq!(resp.status(), 200);
    // With the cookie the password alone signs in (amr still says a second factor was used
    // on this device).
    let resp = s
        .client
        .post(s.url("/v2/auth/login"))
        .header("cookie", format!("hj-trusted={trusted}"))
        .json(&json!({ "tenant_id": fx.slug(), "client_id": fx.client_id(), "email": "dev@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    let (st, body) = status_and_json(resp).await;
    assert_eq!(st, 200, "{body}");
    assert!(body["access_token"].is_string(), "{body}");
    // A made-up cookie does not.
    let resp = s
        .client
        .post(s.url("/v2/auth/login"))
        .header("cookie", "hj-trusted=nope")
        .json(&json!({ "tenant_id": fx.slug(), "client_id": fx.client_id(), "email": "dev@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    let (_, body) = status_and_json(resp).await;
    assert_eq!(body["mfa_required"], true, "{body}");

    // Cookie sessions: the session login stops at the factor too, and the challenge sets the
    // session cookie.
    let resp = s
        .post_json(
            "/v2/session/login",
            &json!({ "tenant_id": fx.slug(), "client_id": fx.client_id(), "email": "dev@example.com", "password": PASSWORD }),
        )
        .await;
    let (st, body) = status_and_json(resp).await;
    assert_eq!(
        (st, body["mfa_required"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    let resp = s
        .post_json(
            "/v2/mfa/totp/challenge",
            // The step+1 code was used above and earlier steps are refused from then on: a
            // recovery code it is.
            &json!({ "mfa_token": body["mfa_token"], "code": codes[0] }),
        )
        .await;
    assert_eq!(resp.status(), 204);
    let cookies = crate::support::set_cookies(&resp);
    assert!(
        crate::support::cookie_value(&cookies, "sid").is_some(),
        "{cookies:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_client_may_require_a_verified_email() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    s.register(&fx, "unverified@example.com").await;
    s.store()
        .update_client(
            fx.tenant.id,
            fx.client_id(),
            store::ClientChanges {
                require_email_verification: Some(true),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    // The shard caches clients for a moment; a new fixture client shows the rule at once.
    let strict = s.add_client(&fx.tenant, "strict").await;
    s.store()
        .update_client(
            fx.tenant.id,
            &strict.client_id,
            store::ClientChanges {
                require_email_verification: Some(true),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    let (st, body) = status_and_json(
        s.post_json(
            "/v2/auth/login",
            &json!({ "tenant_id": fx.slug(), "client_id": "strict", "email": "unverified@example.com", "password": PASSWORD }),
        )
        .await,
    )
    .await;
    assert_eq!(
        (st, body["code"].as_str()),
        (403, Some("EMAIL_NOT_VERIFIED")),
        "{body}"
    );
    // A wrong password is still 401: the rule shows only after the password.
    let (st, body) = status_and_json(
        s.post_json(
            "/v2/auth/login",
            &json!({ "tenant_id": fx.slug(), "client_id": "strict", "email": "unverified@example.com", "password": "Wrong-Horse-42" }),
        )
        .await,
    )
    .await;
    assert_eq!(
        (st, body["code"].as_str()),
        (401, Some("INVALID_CREDENTIALS")),
        "{body}"
    );
    s.stop().await;
}

#[tokio::test]
async fn the_hosted_sign_in_page_asks_for_the_code() {
    use crate::code_flow::{authorize_path, hidden, query, spa, Browser, REDIRECT};
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    spa(&s, &fx, "spa").await;
    let (secret, _codes, _, _) = enrolled(&s, &fx, "hosted@example.com").await;
    let mut b = Browser::new(&s);
    let a = b.get(&authorize_path("spa", &[])).await;
    let page = b.get(&a.location.unwrap()).await;
    let csrf = hidden(&page.body, "csrf_token");
    let return_to = hidden(&page.body, "return_to");
    let step = b
        .post_form(
            "/oauth2/login",
            &[
                ("email", "hosted@example.com"),
                ("password", PASSWORD),
                ("csrf_token", &csrf),
                ("return_to", &return_to),
            ],
        )
        .await;
    // The password alone does not sign the browser in: the page asks for a code.
    assert_eq!(step.status, 200, "{}", step.body);
    assert!(step.body.contains("one-time-code"), "{}", step.body);
    assert!(!b.cookies.contains_key("sid"), "{:?}", b.cookies.keys());
    let mfa_token = hidden(&step.body, "mfa_token");
    let csrf = hidden(&step.body, "csrf_token");
    let wrong = b
        .post_form(
            "/oauth2/login",
            &[
                ("mfa_token", &mfa_token),
                ("code", "000000x"),
                ("csrf_token", &csrf),
                ("return_to", &return_to),
            ],
        )
        .await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let csrf = hidden(&wrong.body, "csrf_token");
    let done = b
        .post_form(
            "/oauth2/login",
            &[
                ("mfa_token", &mfa_token),
                ("code", &totp(&secret, step_now() + 1)),
                ("csrf_token", &csrf),
                ("return_to", &return_to),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let back = b.get(&done.location.unwrap()).await;
    let to = back.location.unwrap();
    assert!(to.starts_with(REDIRECT), "{to}");
    assert!(query(&to).contains_key("code"), "{to}");
    s.stop().await;
}
