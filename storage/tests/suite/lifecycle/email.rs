//! Cases: single-use email tokens (verification, password reset), the mail outbox (lease,
//! results, exhaustion), and the pruning of the whole account lifecycle.

use store::{ChallengeGrant, ChallengeKind, EmailPurpose, EmailToken, MailRecord, NewMail};

use super::{challenge, enrolled, insert_challenge};
use crate::suite::webhooks::{draft, endpoint, events_of};
use crate::suite::*;

const MS: i64 = NOW * 1000;

pub fn email_token(user: &User, purpose: EmailPurpose, expires_at: i64) -> EmailToken {
    EmailToken {
        token_hash: new_hash(),
        purpose,
        user_id: user.id,
        tenant_id: user.tenant_id,
        client_id: APP.into(),
        email: user.email.clone(),
        redirect_uri: Some("https://app.example/verified".into()),
        expires_at,
        used_at: None,
        created_at: NOW,
    }
}

/// Issues `token` with a mail created at `at_ms`. Returns the mail.
pub async fn issue(store: &Arc<dyn Store>, token: &EmailToken, at_ms: i64) -> NewMail {
    let mail = NewMail {
        id: Uuid::now_v7(),
        tenant_id: token.tenant_id,
        kind: match token.purpose {
            EmailPurpose::Verify => "verify_email".into(),
            EmailPurpose::Reset => "password_reset".into(),
        },
        message_sealed: Uuid::new_v4().as_bytes().to_vec(),
        created_at_ms: at_ms,
    };
    store
        .issue_email_token(token.clone(), mail.clone())
        .await
        .expect("issue email token");
    mail
}

async fn mail(store: &Arc<dyn Store>, id: Uuid) -> MailRecord {
    let all = store.list_mail(None, 1000).await.expect("list mail");
    all.into_iter().find(|m| m.id == id).expect("the mail")
}

pub async fn email_verification(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    endpoint(&store, &acme, &["user.email_verified"]).await;
    let (user, _) = register(&store, &acme, "ada@acme.test").await;
    let (other, _) = register(&store, &acme, "bob@acme.test").await;
    assert!(!user.email_verified);
    let verify = email_token(&user, EmailPurpose::Verify, NOW + 3600);
    let sent = issue(&store, &verify, MS + 5).await;
    assert_eq!(
        store
            .find_email_token(verify.token_hash)
            .await
            .expect("find"),
        Some(verify.clone())
    );
    assert_eq!(
        store.find_email_token(new_hash()).await.expect("find"),
        None
    );
    let queued = mail(&store, sent.id).await;
    assert_eq!(
        (queued.status.as_str(), queued.kind.as_str()),
        ("pending", "verify_email")
    );
    assert_eq!(
        (queued.attempts, queued.created_at, queued.sent_at_ms),
        (0, NOW, None)
    );

    // Refused: wrong purpose, expired, unknown. Nothing used.
    let reset = store
        .use_reset_token(verify.token_hash, "$argon2id$new".into(), None, NOW + 1)
        .await
        .expect("reset with a verify token");
    assert_eq!(reset, None);
    for (hash, at) in [(verify.token_hash, NOW + 3600), (new_hash(), NOW + 1)] {
        assert_eq!(
            store.use_verify_token(hash, None, at).await.expect("use"),
            None
        );
    }
    assert!(
        !store
            .get_user(user.id)
            .await
            .expect("get")
            .expect("u")
            .email_verified
    );

    // Used once: the address is verified, with the event.
    let event = draft("user.email_verified", None, NOW + 10);
    let used = store
        .use_verify_token(verify.token_hash, Some(event), NOW + 10)
        .await
        .expect("use");
    let expected = EmailToken {
        used_at: Some(NOW + 10),
        ..verify.clone()
    };
    assert_eq!(used, Some(expected.clone()));
    assert!(
        store
            .get_user(user.id)
            .await
            .expect("get")
            .expect("u")
            .email_verified
    );
    assert!(
        !store
            .get_user(other.id)
            .await
            .expect("get")
            .expect("u")
            .email_verified
    );
    assert_eq!(
        store
            .use_verify_token(verify.token_hash, None, NOW + 11)
            .await
            .expect("again"),
        None
    );
    assert_eq!(
        store
            .find_email_token(verify.token_hash)
            .await
            .expect("find"),
        Some(expected)
    );
    let events = events_of(&store, &acme).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].target_id, Some(user.id));

    // A token sent to another address verifies nothing of the user's.
    let mut stale = email_token(&other, EmailPurpose::Verify, NOW + 3600);
    stale.email = "bob.old@acme.test".into();
    issue(&store, &stale, MS + 6).await;
    assert!(store
        .use_verify_token(stale.token_hash, None, NOW + 12)
        .await
        .expect("use")
        .is_some());
    assert!(
        !store
            .get_user(other.id)
            .await
            .expect("get")
            .expect("u")
            .email_verified
    );
}

pub async fn password_reset(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    endpoint(&store, &acme, &["user.password_reset"]).await;
    let (user, first) = register(&store, &acme, "ada@acme.test").await;
    let (other, other_refresh) = register(&store, &acme, "bob@acme.test").await;
    let session = session_for(&user, NOW);
    store
        .create_session(session.clone(), None)
        .await
        .expect("session");
    let reset = email_token(&user, EmailPurpose::Reset, NOW + 600);
    let second = email_token(&user, EmailPurpose::Reset, NOW + 600);
    let verify = email_token(&user, EmailPurpose::Verify, NOW + 600);
    for t in [&reset, &second, &verify] {
        issue(&store, t, MS).await;
    }

    // Expired and unknown tokens change nothing.
    let late = email_token(&other, EmailPurpose::Reset, NOW + 5);
    issue(&store, &late, MS).await;
    for (hash, at) in [(late.token_hash, NOW + 5), (new_hash(), NOW + 1)] {
        let used = store
            .use_reset_token(hash, "$argon2id$evil".into(), None, at)
            .await
            .expect("use");
        assert_eq!(used, None);
    }
    let acme_id = acme.id;
    let login = |email: &'static str| {
        let store = Arc::clone(&store);
        async move {
            store
                .find_password_login(acme_id, email)
                .await
                .expect("login")
                .expect("identity")
        }
    };
    assert_eq!(
        login("bob@acme.test").await.password_hash,
        "$argon2id$v=19$old"
    );

    // Used: new hash, verified address, every family, session and other token revoked.
    let event = draft("user.password_reset", None, NOW + 20);
    let used = store
        .use_reset_token(
            reset.token_hash,
            "$argon2id$new".into(),
            Some(event),
            NOW + 20,
        )
        .await
        .expect("reset");
    assert_eq!(
        used,
        Some(EmailToken {
            used_at: Some(NOW + 20),
            ..reset.clone()
        })
    );
    let after = login("ada@acme.test").await;
    assert_eq!(after.password_hash, "$argon2id$new");
    assert!(after.user.email_verified);
    assert_eq!(
        token(&store, first.token_hash).await.family_revoked_at,
        Some(NOW + 20)
    );
    assert_eq!(
        store
            .rotate_refresh_token(
                first.token_hash,
                APP,
                successor(&user, NOW + 21),
                None,
                NOW + 21
            )
            .await
            .expect("rotate"),
        RotateOutcome::Revoked
    );
    let s = store
        .find_session(session.id_hash)
        .await
        .expect("find")
        .expect("s");
    assert_eq!(s.revoked_at, Some(NOW + 20));
    for t in [&second, &verify] {
        let found = store.find_email_token(t.token_hash).await.expect("find");
        assert_eq!(found.and_then(|t| t.used_at), Some(NOW + 20));
    }
    assert_eq!(
        store
            .use_reset_token(second.token_hash, "$argon2id$x".into(), None, NOW + 22)
            .await
            .expect("other token"),
        None
    );
    assert_eq!(
        store
            .use_reset_token(reset.token_hash, "$argon2id$x".into(), None, NOW + 23)
            .await
            .expect("again"),
        None
    );
    assert_eq!(login("ada@acme.test").await.password_hash, "$argon2id$new");
    // The other user is untouched.
    let bob = login("bob@acme.test").await;
    assert_eq!(bob.password_hash, "$argon2id$v=19$old");
    assert!(!bob.user.email_verified);
    assert_eq!(
        token(&store, other_refresh.token_hash)
            .await
            .family_revoked_at,
        None
    );
    assert_eq!(other.id, bob.user.id);
    let events = events_of(&store, &acme).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].actor_id, Some(user.id));
}

pub async fn mail_outbox(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let globex = tenant(&store, "globex").await;
    let (user, _) = register(&store, &acme, "ada@acme.test").await;
    let (gus, _) = register(&store, &globex, "gus@globex.test").await;
    let mut mails = Vec::new();
    for i in 0..3 {
        let t = email_token(&user, EmailPurpose::Verify, NOW + 600);
        mails.push(issue(&store, &t, MS + i * 1000).await);
    }
    let g = issue(
        &store,
        &email_token(&gus, EmailPurpose::Reset, NOW + 600),
        MS + 3000,
    )
    .await;

    // Listed newest first, per tenant or all.
    let ids = |list: Vec<MailRecord>| list.into_iter().map(|m| m.id).collect::<Vec<_>>();
    let listed = ids(store.list_mail(None, 10).await.expect("list"));
    assert_eq!(listed, [g.id, mails[2].id, mails[1].id, mails[0].id]);
    let listed = ids(store.list_mail(Some(acme.id), 2).await.expect("list"));
    assert_eq!(listed, [mails[2].id, mails[1].id]);
    assert_eq!(mail(&store, mails[1].id).await.created_at, NOW + 1);

    // Due by creation; claimed oldest first; a leased mail goes to no other claimer.
    assert_eq!(
        store
            .backlog(OutboxKind::Mail, MS - 1)
            .await
            .expect("backlog"),
        0
    );
    assert_eq!(
        store
            .backlog(OutboxKind::Mail, MS + 1000)
            .await
            .expect("backlog"),
        2
    );
    let now = MS + 5000;
    assert_eq!(
        store.backlog(OutboxKind::Mail, now).await.expect("backlog"),
        4
    );
    let a = store
        .claim(OutboxKind::Mail, now, now + 30_000, 2)
        .await
        .expect("claim");
    assert_eq!(
        a.iter().map(|m| m.id).collect::<Vec<_>>(),
        [mails[0].id, mails[1].id]
    );
    assert_eq!(mail_of(&a[0]).message_sealed, mails[0].message_sealed);
    assert_eq!((a[0].attempts, a[0].leased_until_ms), (0, now + 30_000));
    assert_eq!(
        (mail_of(&a[0]).kind.as_str(), mail_of(&a[0]).tenant_id),
        ("verify_email", acme.id)
    );
    let b = store
        .claim(OutboxKind::Mail, now, now + 30_000, 10)
        .await
        .expect("claim");
    assert_eq!(
        b.iter().map(|m| m.id).collect::<Vec<_>>(),
        [mails[2].id, g.id]
    );
    assert_ne!(b[0].lease_id, a[0].lease_id);
    assert!(store
        .claim(OutboxKind::Mail, now + 1, now + 30_000, 10)
        .await
        .expect("claim")
        .is_empty());
    assert_eq!(
        store
            .backlog(OutboxKind::Mail, now)
            .await
            .expect("leased count"),
        4
    );

    // Failed: only under its lease; retried later.
    let failed = |m: &Claimed, lease_id: Uuid, retry: Option<i64>| OutboxResult::Failed {
        kind: OutboxKind::Mail,
        id: m.id,
        lease_id,
        at_ms: now + 100,
        status_code: None,
        error: "421 try again".into(),
        retry_at_ms: retry,
    };
    let wrong = failed(&a[0], b[0].lease_id, Some(now + 60_000));
    assert!(!store.complete(wrong).await.expect("wrong lease"));
    let right = failed(&a[0], a[0].lease_id, Some(now + 60_000));
    assert!(store.complete(right.clone()).await.expect("failed"));
    assert!(!store.complete(right).await.expect("lease dropped"));
    let m = mail(&store, a[0].id).await;
    assert_eq!((m.status.as_str(), m.attempts), ("failed", 1));
    assert_eq!(m.last_error.as_deref(), Some("421 try again"));
    assert_eq!(
        store
            .backlog(OutboxKind::Mail, now + 59_999)
            .await
            .expect("backlog"),
        3
    );

    // Sent: whoever holds the lease, once; counted or not.
    let sent = |id: Uuid, counted: bool| OutboxResult::Done {
        kind: OutboxKind::Mail,
        id,
        at_ms: now + 200,
        status_code: None,
        counted,
    };
    assert!(store.complete(sent(a[1].id, true)).await.expect("sent"));
    assert!(!store
        .complete(sent(a[1].id, true))
        .await
        .expect("sent again"));
    assert!(store
        .complete(sent(b[1].id, false))
        .await
        .expect("sent uncounted"));
    assert!(!store
        .complete(failed(&b[1], b[1].lease_id, None))
        .await
        .expect("after"));
    let m = mail(&store, a[1].id).await;
    assert_eq!(
        (m.status.as_str(), m.attempts, m.sent_at_ms),
        ("sent", 1, Some(now + 200))
    );
    let m = mail(&store, g.id).await;
    assert_eq!((m.status.as_str(), m.attempts), ("sent", 0));

    // An expired lease frees the mail: the new lease wins, the old one no longer applies.
    let c = store
        .claim(OutboxKind::Mail, now + 30_000, now + 60_000, 10)
        .await
        .expect("reclaim");
    assert_eq!(c.iter().map(|m| m.id).collect::<Vec<_>>(), [mails[2].id]);
    assert!(!store
        .complete(failed(&b[0], b[0].lease_id, None))
        .await
        .expect("stale"));
    assert!(store.complete(sent(c[0].id, true)).await.expect("sent"));

    // Exhausted: the message is dropped, nothing applies or is claimed again.
    let d = store
        .claim(OutboxKind::Mail, now + 60_000, now + 90_000, 10)
        .await
        .expect("retry");
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].id, d[0].attempts), (a[0].id, 1));
    assert_eq!(mail_of(&d[0]).message_sealed, mails[0].message_sealed);
    assert!(store
        .complete(failed(&d[0], d[0].lease_id, None))
        .await
        .expect("exhaust"));
    let m = mail(&store, a[0].id).await;
    assert_eq!(
        (m.status.as_str(), m.attempts, m.sent_at_ms),
        ("exhausted", 2, None)
    );
    assert!(!store
        .complete(sent(a[0].id, true))
        .await
        .expect("after exhausted"));
    assert!(store
        .claim(OutboxKind::Mail, now + 999_999, now + 1_999_999, 10)
        .await
        .expect("claim")
        .is_empty());
    assert_eq!(
        store
            .backlog(OutboxKind::Mail, now + 999_999)
            .await
            .expect("backlog"),
        0
    );
}

pub async fn prune_lifecycle(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let (user, _) = register(&store, &acme, "ada@acme.test").await;
    enrolled(&store, &user, &[]).await;

    // Challenges and remembered devices past their expiry go; live ones stay.
    let old = challenge(&user, ChallengeKind::Tokens, NOW + 10);
    let also_old = challenge(&user, ChallengeKind::Session, NOW + 20);
    let live = challenge(&user, ChallengeKind::Tokens, NOW + 500);
    for c in [&old, &also_old, &live] {
        insert_challenge(&store, c).await;
    }
    let mut devices = Vec::new();
    for expires_at in [NOW + 10, NOW + 500] {
        let c = challenge(&user, ChallengeKind::Tokens, NOW + 1000);
        insert_challenge(&store, &c).await;
        let device = new_hash();
        let grant = ChallengeGrant {
            trusted_device: Some((device, expires_at)),
            ..ChallengeGrant::default()
        };
        assert!(store
            .complete_mfa_challenge(c.token_hash, 5, grant, NOW)
            .await
            .expect("complete"));
        devices.push(device);
    }
    assert_eq!(store.prune_mfa(NOW + 100, 100).await.expect("prune"), 3);
    assert_eq!(store.prune_mfa(NOW + 100, 100).await.expect("prune"), 0);
    for (c, kept) in [(&old, false), (&also_old, false), (&live, true)] {
        let found = store.find_mfa_challenge(c.token_hash).await.expect("find");
        assert_eq!(found.is_some(), kept);
    }
    assert!(store
        .is_trusted_device(user.id, devices[1], NOW)
        .await
        .expect("trusted"));
    assert!(!store
        .is_trusted_device(user.id, devices[0], NOW)
        .await
        .expect("trusted"));

    // Email tokens past their expiry, used or not.
    let expired = email_token(&user, EmailPurpose::Verify, NOW + 10);
    let fresh = email_token(&user, EmailPurpose::Verify, NOW + 500);
    let mut outbox = Vec::new();
    for (i, t) in [&expired, &fresh].into_iter().enumerate() {
        outbox.push(issue(&store, t, MS + i as i64).await);
    }
    assert_eq!(
        store
            .prune_email_tokens(NOW + 100, 100)
            .await
            .expect("prune"),
        1
    );
    assert_eq!(
        store
            .find_email_token(expired.token_hash)
            .await
            .expect("find"),
        None
    );
    assert!(store
        .find_email_token(fresh.token_hash)
        .await
        .expect("find")
        .is_some());

    // Sent and exhausted mails created before `before` go; pending and newer ones stay.
    let third = issue(
        &store,
        &email_token(&user, EmailPurpose::Reset, NOW + 500),
        MS,
    )
    .await;
    let claimed = store
        .claim(OutboxKind::Mail, MS + 10, MS + 1000, 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 3);
    let sent = OutboxResult::Done {
        kind: OutboxKind::Mail,
        id: outbox[0].id,
        at_ms: MS + 20,
        status_code: None,
        counted: true,
    };
    assert!(store.complete(sent).await.expect("sent"));
    let lease_of = |id: Uuid| {
        claimed
            .iter()
            .find(|m| m.id == id)
            .expect("claimed")
            .lease_id
    };
    let exhausted = OutboxResult::Failed {
        kind: OutboxKind::Mail,
        id: outbox[1].id,
        lease_id: lease_of(outbox[1].id),
        at_ms: MS + 20,
        status_code: None,
        error: "550 no such user".into(),
        retry_at_ms: None,
    };
    assert!(store.complete(exhausted).await.expect("exhausted"));
    assert_eq!(
        store
            .prune(OutboxKind::Mail, NOW, 100)
            .await
            .expect("prune"),
        0,
        "not before NOW"
    );
    assert_eq!(
        store
            .prune(OutboxKind::Mail, NOW + 1, 100)
            .await
            .expect("prune"),
        2
    );
    let left: Vec<_> = store
        .list_mail(None, 10)
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(left, [third.id]);
    assert_eq!(
        store
            .prune(OutboxKind::Mail, NOW + 1000, 100)
            .await
            .expect("prune"),
        0,
        "pending stays"
    );
}
