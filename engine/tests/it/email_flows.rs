//! The email flows end to end: the API starts a flow, the mail worker sends the mail to a real
//! SMTP server on loopback (`scripts/smtp_sink.py`), the test reads the message, follows its
//! link and finishes the flow.

use std::time::Duration;

use serde_json::json;

use crate::smtp::{Received, SmtpSink};
use crate::support::{status_and_json, Fixture, TestServer, PASSWORD, TEST_MASTER_KEY};

const BASE: &str = "http://auth.hellojohn.test";
const REDIRECT: &str = "https://app.example/verified";

async fn server(sink: &SmtpSink) -> TestServer {
    let port = sink.port.to_string();
    TestServer::with(&[
        ("HELLOJOHN_MASTER_KEY", TEST_MASTER_KEY),
        ("HELLOJOHN_BASE_URL", BASE),
        ("HELLOJOHN_WEBHOOK_POLL_INTERVAL", "50ms"),
        ("HELLOJOHN_SMTP_HOST", "127.0.0.1"),
        ("HELLOJOHN_SMTP_PORT", &port),
        ("HELLOJOHN_SMTP_FROM", "auth@hellojohn.test"),
        ("HELLOJOHN_SMTP_TLS", "none"),
    ])
    .await
}

/// A client with a registered redirect URI, for the flows' `redirect_uri`.
async fn app(s: &TestServer, fx: &Fixture) {
    let mut new = store::NewClient::new(fx.tenant.id, "app", "App");
    new.redirect_uris = vec![REDIRECT.into()];
    s.store()
        .create_client(new, engine::unix_now(), None)
        .await
        .unwrap();
}

/// The link of a received mail (from its text part) as a path and query on the server.
fn link_of(m: &Received) -> String {
    let text = m.field("text");
    let start = text
        .find(BASE)
        .unwrap_or_else(|| panic!("no link in {text}"));
    let link: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    assert!(link.contains("token="), "{link}");
    // The same link in the HTML part (escaped there: & is &amp;).
    assert!(
        m.field("html").contains(&link.replace('&', "&amp;")),
        "{}",
        m.field("html")
    );
    link[BASE.len()..].to_string()
}

async fn no_more_mail(sink: &SmtpSink, n: usize) {
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(sink.messages().len(), n, "{:?}", sink.messages());
}

#[tokio::test]
async fn verify_email_by_mail_then_the_client_lets_the_user_in() {
    let sink = SmtpSink::start();
    let s = server(&sink).await;
    let fx = s.fixture().await;
    app(&s, &fx).await;
    s.register(&fx, "ver@example.com").await;

    // Unknown and known addresses get the same answer; only the known one gets mail.
    for email in ["nobody@example.com", "ver@example.com"] {
        let resp = s
            .post_json(
                "/v2/auth/verify-email/start",
                &json!({ "tenant_id": fx.slug(), "client_id": "app", "email": email, "redirect_uri": REDIRECT }),
            )
            .await;
        assert_eq!(resp.status(), 204, "{email}");
    }
    let got = sink.wait_for(1, Duration::from_secs(15)).await;
    no_more_mail(&sink, 1).await;
    let m = &got[0];
    assert_eq!(m.rcpt_tos, ["ver@example.com"]);
    let path = link_of(m);
    assert!(path.starts_with("/v2/auth/verify-email?token="), "{path}");

    // A redirect URI that is not registered is refused up front.
    let (st, body) = status_and_json(
        s.post_json(
            "/v2/auth/verify-email/start",
            &json!({ "tenant_id": fx.slug(), "client_id": "app", "email": "ver@example.com", "redirect_uri": "https://evil.example/" }),
        )
        .await,
    )
    .await;
    assert_eq!(
        (st, body["detail"]["field"].as_str()),
        (400, Some("redirect_uri")),
        "{body}"
    );

    let nav = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = nav.get(s.url(&path)).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(
        resp.headers()["location"].to_str().unwrap(),
        format!("{REDIRECT}?status=verified")
    );
    let user = s
        .store()
        .find_user_by_email(fx.tenant.id, "ver@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(user.email_verified);
    // Once only.
    let (st, body) = status_and_json(nav.get(s.url(&path)).send().await.unwrap()).await;
    assert_eq!(
        (st, body["code"].as_str()),
        (400, Some("EMAIL_TOKEN_INVALID")),
        "{body}"
    );

    // A client that requires a verified email lets this user in.
    s.store()
        .update_client(
            fx.tenant.id,
            "app",
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
            &json!({ "tenant_id": fx.slug(), "client_id": "app", "email": "ver@example.com", "password": PASSWORD }),
        )
        .await,
    )
    .await;
    assert_eq!(st, 200, "{body}");

    // Signed in, the SDK asks with its token; an already verified address gets no mail.
    let access = body["access_token"].as_str().unwrap();
    let resp = s
        .post_json_bearer("/v2/auth/verify-email/start", access, &json!({}))
        .await;
    assert_eq!(resp.status(), 204);
    no_more_mail(&sink, 1).await;
    s.stop().await;
}

#[tokio::test]
async fn forgot_then_reset_signs_the_user_out_everywhere() {
    let sink = SmtpSink::start();
    let s = server(&sink).await;
    let fx = s.fixture().await;
    app(&s, &fx).await;
    s.register(&fx, "reset@example.com").await;
    let (_, tokens) = s.login(&fx, "reset@example.com", PASSWORD).await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let resp = s
        .post_json(
            "/v2/session/login",
            &json!({ "tenant_id": fx.slug(), "client_id": fx.client_id(), "email": "reset@example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(resp.status(), 204);
    let sid = crate::support::cookie_value(&crate::support::set_cookies(&resp), "sid").unwrap();
    let me = |sid: String| {
        let s = &s;
        async move {
            s.client
                .get(s.url("/v2/me"))
                .header("cookie", format!("sid={sid}"))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(me(sid.clone()).await, 200);

    // Same status and body for an address with no account.
    let mut answers = Vec::new();
    for email in ["ghost@example.com", "reset@example.com"] {
        let (st, body) = status_and_json(
            s.post_json(
                "/v2/auth/forgot",
                &json!({ "tenant_id": fx.slug(), "client_id": "app", "email": email }),
            )
            .await,
        )
        .await;
        answers.push((st, body));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], (200, json!({ "status": "ok" })));
    let got = sink.wait_for(1, Duration::from_secs(15)).await;
    no_more_mail(&sink, 1).await;
    let path = link_of(&got[0]);
    assert!(path.starts_with("/v2/auth/reset?token="), "{path}");
    let token = path.split_once("token=").unwrap().1.to_string();

    // The link opens a page; that uses nothing up.
    let page = s.get(&path).await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("name=\"new_password\""), "{html}");

    // A weak password is refused and the token stays good.
    let (st, body) = status_and_json(
        s.post_json(
            "/v2/auth/reset",
            &json!({ "token": token, "new_password": "short" }),
        )
        .await,
    )
    .await;
    assert_eq!(
        (st, body["code"].as_str()),
        (400, Some("BAD_REQUEST")),
        "{body}"
    );
    let new_password = "Brand-New-Horse-7";
    let resp = s
        .post_json(
            "/v2/auth/reset",
            &json!({ "tenant_id": fx.slug(), "client_id": "app", "token": token, "new_password": new_password }),
        )
        .await;
    assert_eq!(resp.status(), 204);

    // Every refresh token of the user is revoked; the old password is gone.
    let (st, _) = s.refresh(fx.client_id(), &refresh).await;
    assert_eq!(st, 401);
    assert_eq!(me(sid).await, 401);
    let (st, _) = s.login(&fx, "reset@example.com", PASSWORD).await;
    assert_eq!(st, 401);
    let (st, body) = s.login(&fx, "reset@example.com", new_password).await;
    assert_eq!(st, 200, "{body}");
    // The link works once.
    let (st, body) = status_and_json(
        s.post_json(
            "/v2/auth/reset",
            &json!({ "token": token, "new_password": "Another-Horse-8" }),
        )
        .await,
    )
    .await;
    assert_eq!(
        (st, body["code"].as_str()),
        (400, Some("EMAIL_TOKEN_INVALID")),
        "{body}"
    );
    // The mail proved the mailbox.
    let user = s
        .store()
        .find_user_by_email(fx.tenant.id, "reset@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(user.email_verified);
    s.stop().await;
}

#[tokio::test]
async fn the_reset_page_form_finishes_the_flow() {
    let sink = SmtpSink::start();
    let s = server(&sink).await;
    let fx = s.fixture().await;
    app(&s, &fx).await;
    s.register(&fx, "form@example.com").await;
    let resp = s
        .post_form(
            "/v2/auth/forgot",
            &[
                ("tenant_id", fx.slug()),
                ("client_id", "app"),
                ("email", "form@example.com"),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let got = sink.wait_for(1, Duration::from_secs(15)).await;
    let path = link_of(&got[0]);
    let token = path.split_once("token=").unwrap().1.to_string();
    let nav = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = nav
        .post(s.url("/v2/auth/reset"))
        .form(&[("token", token.as_str()), ("new_password", "Form-Horse-99")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers()["location"].to_str().unwrap(),
        format!("{REDIRECT}?status=reset")
    );
    let (st, _) = s.login(&fx, "form@example.com", "Form-Horse-99").await;
    assert_eq!(st, 200);
    // A used link shows the expired page.
    let page = s.get(&path).await;
    assert_eq!(page.status(), 400);
    s.stop().await;
}

#[tokio::test]
async fn without_smtp_the_flows_answer_as_if_sent() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    s.register(&fx, "quiet@example.com").await;
    let (st, body) = status_and_json(
        s.post_json(
            "/v2/auth/forgot",
            &json!({ "tenant_id": fx.slug(), "client_id": fx.client_id(), "email": "quiet@example.com" }),
        )
        .await,
    )
    .await;
    assert_eq!((st, body), (200, json!({ "status": "ok" })));
    // The mail waits in the outbox.
    let mut rows = Vec::new();
    for _ in 0..100 {
        rows = s.store().list_mail(Some(fx.tenant.id), 10).await.unwrap();
        if !rows.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].status, "pending");
    assert_eq!(rows[0].kind, "password_reset");
    s.stop().await;
}
