//! Account mail end to end, against a real SMTP server on loopback (`scripts/smtp_sink.py`,
//! aiosmtpd): a mail composed by the engine's mailer for a user registered through the API is
//! written to the outbox with its token (as the email flows do), then the mail worker sends it;
//! the test reads what the SMTP server received.
//!
//! The three-instance test needs `HJ_TEST_REDIS_URL` (`bash scripts/services.sh start` and
//! `source .hj-test/env`); it fails without it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use auth::ports::{MailKind, MailVars, Mailer as _};
use engine::config::Config;
use engine::mail::EngineMailer;
use sha2::{Digest as _, Sha256};
use store::{EmailPurpose, EmailToken, MailRecord};
use uuid::Uuid;

use crate::smtp::{closed_port, Received, SmtpSink};
use crate::support::{test_store, Fixture, StartOptions, TestServer, TEST_MASTER_KEY};

const FROM: &str = "HelloJohn Test <no-reply@hellojohn.test>";
const SENT: &str = r#"hellojohn_mail_deliveries_total{status="sent"}"#;
const FAILED: &str = r#"hellojohn_mail_deliveries_total{status="failed"}"#;

// ----- servers and mails -----------------------------------------------------------------------

/// Short retries: 100 ms, 200 ms, then 400 ms.
fn fast_retries(c: &mut Config) {
    c.webhook_backoff_base = Duration::from_millis(100);
    c.webhook_backoff_max = Duration::from_millis(400);
}

/// Short retries and a lease shorter than a slow relay's answer, so that leases run out while
/// a mail is still being sent and other instances claim it again.
fn short_lease(c: &mut Config) {
    fast_retries(c);
    c.webhook_lease = Some(Duration::from_millis(250));
}

/// Settings of a server that sends to an SMTP server on `127.0.0.1:port` in plain text.
fn mail_settings(port: &str) -> Vec<(&'static str, String)> {
    [
        ("HELLOJOHN_MASTER_KEY", TEST_MASTER_KEY),
        ("HELLOJOHN_BASE_URL", "http://auth.hellojohn.test"),
        ("HELLOJOHN_WEBHOOK_POLL_INTERVAL", "50ms"),
        ("HELLOJOHN_SMTP_HOST", "127.0.0.1"),
        ("HELLOJOHN_SMTP_PORT", port),
        ("HELLOJOHN_SMTP_FROM", FROM),
        ("HELLOJOHN_SMTP_TLS", "none"),
        ("HELLOJOHN_SMTP_TIMEOUT", "5s"),
        ("HELLOJOHN_MAIL_MAX_ATTEMPTS", "50"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect()
}

async fn start(settings: &[(&'static str, String)], options: StartOptions) -> TestServer {
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestServer::with_options(&pairs, options).await
}

/// A server that sends mail to `127.0.0.1:port`, with `extra` settings on top.
async fn mail_server(port: u16, extra: &[(&'static str, &str)]) -> TestServer {
    let mut settings = mail_settings(&port.to_string());
    settings.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    settings.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    start(
        &settings,
        StartOptions {
            configure: Some(fast_retries),
            ..Default::default()
        },
    )
    .await
}

fn unique_email(tag: &str) -> String {
    format!(
        "{tag}-{}@example.com",
        &Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Registers `email` through the API; its user id.
async fn user(s: &TestServer, fx: &Fixture, email: &str) -> Uuid {
    let body = s.register(fx, email).await;
    body["user_id"].as_str().unwrap().parse().unwrap()
}

/// What the email flows do: a verification token and its mail, composed by the engine's
/// mailer with the server's configuration, written in one store call. Returns the mail's id
/// and the link in it.
async fn issue(s: &TestServer, fx: &Fixture, user_id: Uuid, email: &str) -> (Uuid, String) {
    let config = &s.handle().app().config;
    let master = auth::MasterKey::parse(TEST_MASTER_KEY).unwrap();
    let mailer = EngineMailer::new(config, master).unwrap();
    let token = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let link = format!("{}/v2/auth/verify-email?token={token}", config.base_url);
    let ttl = Duration::from_secs(48 * 3600);
    let mail = mailer.compose(
        &MailVars {
            kind: MailKind::VerifyEmail,
            tenant: &fx.tenant,
            to: email,
            link: &link,
            ttl,
        },
        engine::unix_now_ms(),
    );
    let id = mail.id;
    let now = engine::unix_now();
    s.store()
        .issue_email_token(
            EmailToken {
                token_hash: Sha256::digest(token.as_bytes()).into(),
                purpose: EmailPurpose::Verify,
                user_id,
                tenant_id: fx.tenant.id,
                client_id: fx.client_id().to_string(),
                email: email.to_string(),
                redirect_uri: None,
                expires_at: now + 48 * 3600,
                used_at: None,
                created_at: now,
            },
            mail,
        )
        .await
        .unwrap();
    (id, link)
}

async fn mails(s: &TestServer) -> Vec<MailRecord> {
    s.store().list_mail(None, 100_000).await.unwrap()
}

/// Waits until mail `id`'s row satisfies `done` (panics after 15 s).
async fn wait_row(s: &TestServer, id: Uuid, done: impl Fn(&MailRecord) -> bool) -> MailRecord {
    let start = Instant::now();
    loop {
        let row = mails(s).await.into_iter().find(|m| m.id == id);
        if let Some(row) = row {
            if done(&row) {
                return row;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "mail {id}: {row:?}"
            );
        } else {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "mail {id} not in the outbox"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The messages the sink received for mail `id`.
fn received(sink: &SmtpSink, id: Uuid) -> Vec<Received> {
    let id = id.to_string();
    sink.messages()
        .into_iter()
        .filter(|m| m.mail_id() == id)
        .collect()
}

// ----- tests -----------------------------------------------------------------------------------

#[tokio::test]
async fn a_mail_arrives_with_text_html_and_the_link() {
    let sink = SmtpSink::start();
    let s = mail_server(sink.port, &[]).await;
    let fx = s.fixture().await;
    let email = unique_email("ada");
    let user_id = user(&s, &fx, &email).await;
    let (id, link) = issue(&s, &fx, user_id, &email).await;
    assert!(link.starts_with("http://auth.hellojohn.test/v2/auth/verify-email?token="));

    let start = Instant::now();
    let got = loop {
        let got = received(&sink, id);
        if !got.is_empty() {
            break got;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no mail arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.mail_from, "no-reply@hellojohn.test");
    assert_eq!(m.rcpt_tos, std::slice::from_ref(&email));
    assert!(m.message.get("error").is_none(), "{:?}", m.message);
    assert_eq!(m.field("to"), email);
    assert_eq!(m.field("from"), FROM);
    assert_eq!(m.field("subject"), "Confirm your email address for acme");
    assert_eq!(m.field("content_type"), "multipart/alternative");
    assert_eq!(m.field("message_id"), format!("<{id}@hellojohn.test>"));
    let text = m.field("text");
    assert!(text.contains(&link), "{text}");
    assert!(text.contains(&email) && text.contains("48 hours"), "{text}");
    let html = m.field("html");
    assert!(html.contains(&format!("href=\"{link}\"")), "{html}");
    assert!(m.raw.contains("Date: "), "{}", m.raw);

    let row = wait_row(&s, id, |r| r.status == "sent").await;
    assert_eq!(row.kind, "verify_email");
    assert_eq!(row.tenant_id, fx.tenant.id);
    assert!(row.sent_at_ms.is_some(), "{row:?}");
    let sent_rows = mails(&s)
        .await
        .iter()
        .filter(|r| r.status == "sent")
        .count();
    let metrics = s.metrics().await;
    assert_eq!(
        crate::support::metric(&metrics, SENT),
        Some(sent_rows as f64),
        "{metrics}"
    );
    assert_eq!(sent_rows, 1, "only the mail of this test");
    assert!(metrics.contains("\nhellojohn_mail_backlog "), "{metrics}");
    // Sent once, and only once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(received(&sink, id).len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn smtp_down_then_up_delivers_once() {
    let port = closed_port();
    let s = mail_server(port, &[]).await;
    let fx = s.fixture().await;
    let email = unique_email("bob");
    let user_id = user(&s, &fx, &email).await;
    let (id, link) = issue(&s, &fx, user_id, &email).await;

    // Nothing listens: attempts fail and are retried.
    let row = wait_row(&s, id, |r| r.status == "failed" && r.attempts >= 1).await;
    assert!(row.last_error.is_some(), "{row:?}");
    assert!(
        !row.last_error.as_deref().unwrap_or("").contains(&link),
        "no secret in the error"
    );
    assert!(s.metric_value(FAILED).await >= 1.0);

    // The relay comes up on that port.
    let sink = SmtpSink::start_with(port, &[]);
    let row = wait_row(&s, id, |r| r.status == "sent").await;
    assert!(row.attempts >= 1, "{row:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = received(&sink, id);
    assert_eq!(got.len(), 1, "delivered exactly once");
    assert!(got[0].field("text").contains(&link));
    assert_eq!(s.metric_value(SENT).await, 1.0);
    s.stop().await;
}

#[tokio::test]
async fn starttls_is_required_unless_the_settings_say_none() {
    // The sink offers no STARTTLS: with `starttls` (the default) nothing may be sent in clear.
    let sink = SmtpSink::start();
    let s = mail_server(sink.port, &[("HELLOJOHN_SMTP_TLS", "starttls")]).await;
    let fx = s.fixture().await;
    let email = unique_email("eve");
    let user_id = user(&s, &fx, &email).await;
    let (id, _) = issue(&s, &fx, user_id, &email).await;
    let row = wait_row(&s, id, |r| r.status == "failed" && r.attempts >= 1).await;
    assert!(row.last_error.is_some(), "{row:?}");
    assert!(sink.messages().is_empty(), "nothing sent without TLS");
    s.stop().await;
}

#[tokio::test]
async fn without_smtp_settings_mail_waits_in_the_outbox() {
    let s = start(
        &[
            ("HELLOJOHN_MASTER_KEY", TEST_MASTER_KEY.to_string()),
            ("HELLOJOHN_WEBHOOK_POLL_INTERVAL", "50ms".to_string()),
        ],
        StartOptions::default(),
    )
    .await;
    assert!(s.handle().app().config.smtp.is_none());
    let fx = s.fixture().await;
    let email = unique_email("cid");
    let user_id = user(&s, &fx, &email).await;
    let (id, _) = issue(&s, &fx, user_id, &email).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let row = wait_row(&s, id, |_| true).await;
    assert_eq!((row.status.as_str(), row.attempts), ("pending", 0));
    assert_eq!(s.metric_value(SENT).await, 0.0);
    s.stop().await;
}

#[tokio::test]
async fn a_bad_template_stops_the_start() {
    let dir = crate::support::temp_dir("templates");
    std::fs::create_dir(dir.join("acme")).unwrap();
    std::fs::write(dir.join("acme/verify_email.html"), b"<p>\xff</p>").unwrap();
    let mut config = Config::for_tests(crate::support::temp_dir("bad-template"));
    config.email_templates_dir = Some(dir.clone());
    config.master_key = Some(engine::config::Secret(TEST_MASTER_KEY.to_string()));
    config.database_url = crate::support::test_store_url()
        .await
        .map(engine::config::Secret);
    let store = engine::open_store(&config).await.unwrap();
    store.migrate().await.unwrap();
    let e = engine::start(config, store).await.err().expect("refused");
    let text = format!("{e:#}");
    assert!(
        text.contains("acme/verify_email.html") && text.contains("not UTF-8"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `n` instances sending to `port`, sharing one store and one Redis (a key prefix of their
/// own). On SQLite they share the store object; on PostgreSQL each opens its own pools on the
/// same database, as separate processes would.
async fn deployment(n: usize, redis: &str, port: u16) -> Vec<TestServer> {
    let prefix = format!("hj-it-mail-{}:", &Uuid::new_v4().simple().to_string()[..12]);
    let mut settings = mail_settings(&port.to_string());
    settings.push(("HELLOJOHN_REDIS_URL", redis.to_string()));
    settings.push(("HELLOJOHN_DB_MAX_OPEN_CONNS", "8".to_string()));
    settings.push(("HELLOJOHN_DB_MAX_IDLE_CONNS", "4".to_string()));
    let first = start(
        &settings,
        StartOptions {
            redis_key_prefix: Some(prefix.clone()),
            configure: Some(short_lease),
            ..Default::default()
        },
    )
    .await;
    let database_url = first
        .handle()
        .app()
        .config
        .database_url
        .as_ref()
        .map(|u| u.expose().to_string());
    let mut servers = vec![first];
    for _ in 1..n {
        let mut settings = settings.clone();
        let store = match &database_url {
            Some(url) => {
                settings.push(("HELLOJOHN_DATABASE_URL", url.clone()));
                None
            }
            None => Some(servers[0].store()),
        };
        let s = start(
            &settings,
            StartOptions {
                redis_key_prefix: Some(prefix.clone()),
                store,
                configure: Some(short_lease),
            },
        )
        .await;
        servers.push(s);
    }
    servers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_with_redis_send_each_mail_exactly_once() {
    const MAILS: usize = 90;
    // Exactly once needs Redis up throughout: not while a rate-limit test stops and restarts
    // the shared Redis (without Redis, sending is at-least-once by design).
    let _redis_stays_up = crate::ratelimit::STANDALONE.lock().await;
    let redis = std::env::var("HJ_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("HJ_TEST_REDIS_URL is not set: run `bash scripts/services.sh start` and `source .hj-test/env`")
    });
    // Every 10th mail is accepted only after 600 ms, longer than the 250 ms lease: other
    // instances claim it again meanwhile and must not send it again.
    let sink = SmtpSink::start_with(
        0,
        &[
            ("SMTP_SINK_SLOW_EVERY", "10"),
            ("SMTP_SINK_SLOW_SECS", "0.6"),
        ],
    );
    let servers = deployment(3, &redis, sink.port).await;
    let fx = servers[0].fixture().await;
    let mut users = Vec::new();
    for s in &servers {
        let email = unique_email("many");
        users.push((user(s, &fx, &email).await, email));
    }
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..MAILS {
        let (s, (user_id, email)) = (&servers[i % 3], &users[i % 3]);
        ids.push(issue(s, &fx, *user_id, email).await.0);
    }

    sink.wait_for(MAILS, Duration::from_secs(40)).await;
    for id in &ids {
        wait_row(&servers[0], *id, |r| r.status == "sent").await;
    }
    // Let late duplicates, if any, arrive.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = sink.messages();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for m in &got {
        *counts.entry(m.mail_id()).or_default() += 1;
    }
    for id in &ids {
        assert_eq!(
            counts.get(&id.to_string()),
            Some(&1),
            "mail {id}: {counts:?}"
        );
    }
    assert_eq!(got.len(), MAILS, "no other mail: {counts:?}");
    let mut per_instance = Vec::new();
    for s in &servers {
        per_instance.push(s.metric_value(SENT).await);
    }
    assert_eq!(
        per_instance.iter().sum::<f64>(),
        MAILS as f64,
        "{per_instance:?}"
    );
    eprintln!(
        "mail ({}): {MAILS} mails sent in {:?}, per instance {per_instance:?}",
        test_store(),
        started.elapsed()
    );
    for s in servers {
        s.stop().await;
    }
}
