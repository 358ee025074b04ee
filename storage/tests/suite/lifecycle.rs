//! Cases: the account lifecycle. Here MFA (the TOTP factor and `users.mfa_enabled`,
//! single-use time steps and recovery codes, sign-in challenges completed once with what they
//! grant, remembered devices); in `email` the email tokens, the mail outbox and pruning.

use store::{ChallengeGrant, ChallengeKind, KeepSignIn, MfaChallenge};

use super::webhooks::{draft, endpoint, events_of};
use super::*;

mod email;

pub use email::*;

/// Enrols and confirms a factor (proved by a code of step 100) with `codes` as recovery codes.
async fn enrolled(store: &Arc<dyn Store>, user: &User, codes: &[TokenHash]) {
    assert!(store
        .put_totp_secret(user.id, vec![1; 40], NOW)
        .await
        .expect("put secret"));
    assert!(store
        .confirm_totp(
            user.id,
            100,
            codes.to_vec(),
            KeepSignIn::default(),
            None,
            NOW
        )
        .await
        .expect("confirm"));
}

fn challenge(user: &User, kind: ChallengeKind, expires_at: i64) -> MfaChallenge {
    MfaChallenge {
        token_hash: new_hash(),
        user_id: user.id,
        tenant_id: user.tenant_id,
        client_id: APP.into(),
        kind,
        failures: 0,
        expires_at,
        completed_at: None,
        created_at: NOW,
    }
}

async fn insert_challenge(store: &Arc<dyn Store>, c: &MfaChallenge) {
    store
        .insert_mfa_challenge(c.clone())
        .await
        .expect("insert challenge");
}

async fn mfa_enabled(store: &Arc<dyn Store>, user: &User) -> bool {
    let by_id = store.get_user(user.id).await.expect("get").expect("user");
    let login = store
        .find_password_login(user.tenant_id, &user.email)
        .await
        .expect("login")
        .expect("identity");
    assert_eq!(by_id.mfa_enabled, login.user.mfa_enabled);
    by_id.mfa_enabled
}

pub async fn totp_enrolment(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    endpoint(&store, &acme, &["*"]).await;
    let (user, _) = register(&store, &acme, "ada@acme.test").await;
    assert_eq!(store.find_totp(user.id).await.expect("find"), None);
    assert!(!mfa_enabled(&store, &user).await);
    let unknown = Uuid::new_v4();
    assert!(!store
        .put_totp_secret(unknown, vec![1], NOW)
        .await
        .expect("put"));
    assert_eq!(store.find_totp(unknown).await.expect("find"), None);

    // Enrolment, replaced while unconfirmed; not yet a factor.
    assert!(store
        .put_totp_secret(user.id, vec![1; 40], NOW)
        .await
        .expect("put"));
    assert!(store
        .put_totp_secret(user.id, vec![2; 40], NOW + 1)
        .await
        .expect("replace"));
    let factor = store.find_totp(user.id).await.expect("find").expect("set");
    assert_eq!(factor.secret_sealed, vec![2; 40]);
    assert_eq!((factor.confirmed_at, factor.last_step), (None, None));
    assert!(!store.use_totp_step(user.id, 5).await.expect("step"));
    assert!(!mfa_enabled(&store, &user).await);
    let codes: Vec<TokenHash> = (0..10).map(|_| new_hash()).collect();
    assert!(!store
        .replace_recovery_codes(user.id, codes.clone(), NOW)
        .await
        .expect("replace codes"));

    // Confirmed once, with its recovery codes, the flag and the event.
    let confirm = draft("mfa.enrolled", None, NOW + 2);
    assert!(store
        .confirm_totp(
            user.id,
            100,
            codes.clone(),
            KeepSignIn::default(),
            Some(confirm),
            NOW + 2,
        )
        .await
        .expect("confirm"));
    assert!(!store
        .confirm_totp(
            user.id,
            101,
            codes.clone(),
            KeepSignIn::default(),
            None,
            NOW + 3,
        )
        .await
        .expect("confirm again"));
    let factor = store.find_totp(user.id).await.expect("find").expect("set");
    assert_eq!(factor.confirmed_at, Some(NOW + 2));
    assert_eq!(factor.last_step, Some(100));
    assert_eq!(factor.secret_sealed, vec![2; 40]);
    assert!(mfa_enabled(&store, &user).await);
    assert_eq!(store.recovery_codes_left(user.id).await.expect("left"), 10);
    let events = events_of(&store, &acme).await;
    let enrolled: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "mfa.enrolled")
        .collect();
    assert_eq!(enrolled.len(), 1, "{events:?}");
    assert_eq!(enrolled[0].actor_id, Some(user.id));
    assert_eq!(enrolled[0].target_id, Some(user.id));

    // A confirmed factor is not replaced.
    assert!(!store
        .put_totp_secret(user.id, vec![3; 40], NOW + 4)
        .await
        .expect("put"));
    let after = store.find_totp(user.id).await.expect("find").expect("set");
    assert_eq!(after, factor);

    // Each time step once, only later ones.
    for (step, accepted) in [
        (100, false),
        (99, false),
        (101, true),
        (101, false),
        (105, true),
    ] {
        assert_eq!(
            store.use_totp_step(user.id, step).await.expect("step"),
            accepted,
            "step {step}"
        );
    }
    let factor = store.find_totp(user.id).await.expect("find").expect("set");
    assert_eq!(factor.last_step, Some(105));
    assert!(!store.use_totp_step(unknown, 200).await.expect("step"));
}

pub async fn recovery_codes(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let (user, _) = register(&store, &acme, "ada@acme.test").await;
    let (other, _) = register(&store, &acme, "bob@acme.test").await;
    let codes: Vec<TokenHash> = (0..10).map(|_| new_hash()).collect();
    enrolled(&store, &user, &codes).await;
    assert_eq!(store.recovery_codes_left(other.id).await.expect("left"), 0);

    assert!(store
        .use_recovery_code(user.id, codes[0], NOW + 1)
        .await
        .expect("use"));
    for (who, code) in [
        (user.id, codes[0]),
        (user.id, new_hash()),
        (other.id, codes[1]),
    ] {
        assert!(!store
            .use_recovery_code(who, code, NOW + 2)
            .await
            .expect("refused"));
    }
    assert_eq!(store.recovery_codes_left(user.id).await.expect("left"), 9);

    // Replaced: the old ones are gone, the new ones work once.
    let fresh: Vec<TokenHash> = (0..3).map(|_| new_hash()).collect();
    assert!(store
        .replace_recovery_codes(user.id, fresh.clone(), NOW + 3)
        .await
        .expect("replace"));
    assert_eq!(store.recovery_codes_left(user.id).await.expect("left"), 3);
    assert!(!store
        .use_recovery_code(user.id, codes[1], NOW + 4)
        .await
        .expect("old code"));
    assert!(store
        .use_recovery_code(user.id, fresh[2], NOW + 4)
        .await
        .expect("new code"));
    assert_eq!(store.recovery_codes_left(user.id).await.expect("left"), 2);
}

pub async fn concurrent_totp_and_recovery(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let (user, _) = register(&store, &acme, "ada@acme.test").await;
    let codes: Vec<TokenHash> = (0..2).map(|_| new_hash()).collect();
    enrolled(&store, &user, &codes).await;

    let id = user.id;
    let steps: Vec<_> = (0..20)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.use_totp_step(id, 150).await.expect("step") })
        })
        .collect();
    let used: Vec<_> = (0..20)
        .map(|i| {
            let store = Arc::clone(&store);
            let code = codes[0];
            tokio::spawn(async move {
                store
                    .use_recovery_code(id, code, NOW + i)
                    .await
                    .expect("use code")
            })
        })
        .collect();
    let mut accepted = (0, 0);
    for task in steps {
        accepted.0 += usize::from(task.await.expect("task"));
    }
    for task in used {
        accepted.1 += usize::from(task.await.expect("task"));
    }
    assert_eq!(accepted, (1, 1), "one step, one code");
    assert_eq!(store.recovery_codes_left(user.id).await.expect("left"), 1);
}

pub async fn delete_totp(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    endpoint(&store, &acme, &["mfa.disabled"]).await;
    let (user, _) = register(&store, &acme, "ada@acme.test").await;
    let (other, _) = register(&store, &acme, "bob@acme.test").await;
    enrolled(&store, &user, &[new_hash(), new_hash()]).await;
    enrolled(&store, &other, &[new_hash()]).await;
    let device = new_hash();
    let done = challenge(&user, ChallengeKind::Tokens, NOW + 300);
    let open = challenge(&user, ChallengeKind::Tokens, NOW + 300);
    let others = challenge(&other, ChallengeKind::Tokens, NOW + 300);
    for c in [&done, &open, &others] {
        insert_challenge(&store, c).await;
    }
    let grant = ChallengeGrant {
        trusted_device: Some((device, NOW + 86_400)),
        ..ChallengeGrant::default()
    };
    assert!(store
        .complete_mfa_challenge(done.token_hash, 5, grant, NOW + 1)
        .await
        .expect("complete"));
    assert!(store
        .is_trusted_device(user.id, device, NOW + 2)
        .await
        .expect("trusted"));

    let event = draft("mfa.disabled", None, NOW + 3);
    assert!(store
        .delete_totp(user.id, Some(event), NOW + 3)
        .await
        .expect("delete"));
    assert_eq!(store.find_totp(user.id).await.expect("find"), None);
    assert!(!mfa_enabled(&store, &user).await);
    assert_eq!(store.recovery_codes_left(user.id).await.expect("left"), 0);
    assert!(!store
        .is_trusted_device(user.id, device, NOW + 4)
        .await
        .expect("trusted"));
    assert_eq!(
        store
            .find_mfa_challenge(open.token_hash)
            .await
            .expect("find"),
        None
    );
    // The other user keeps everything.
    assert!(mfa_enabled(&store, &other).await);
    assert_eq!(store.recovery_codes_left(other.id).await.expect("left"), 1);
    assert!(store
        .find_mfa_challenge(others.token_hash)
        .await
        .expect("find")
        .is_some());

    // Again: nothing to remove, no event. A new enrolment may start.
    let again = draft("mfa.disabled", None, NOW + 5);
    assert!(!store
        .delete_totp(user.id, Some(again), NOW + 5)
        .await
        .expect("delete again"));
    let disabled = events_of(&store, &acme).await;
    assert_eq!(disabled.len(), 1, "{disabled:?}");
    assert_eq!(disabled[0].target_id, Some(user.id));
    assert!(store
        .put_totp_secret(user.id, vec![9; 40], NOW + 6)
        .await
        .expect("enrol again"));
    assert!(!mfa_enabled(&store, &user).await);
    // An unconfirmed factor is a factor to delete too.
    assert!(store
        .delete_totp(user.id, None, NOW + 7)
        .await
        .expect("delete"));
}

pub async fn mfa_challenges(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    endpoint(&store, &acme, &["user.login"]).await;
    let (user, _) = register(&store, &acme, "ada@acme.test").await;
    let (other, _) = register(&store, &acme, "bob@acme.test").await;
    enrolled(&store, &user, &[]).await;

    // Stored with no failures and not completed, whatever the caller passed.
    let tokens = challenge(&user, ChallengeKind::Tokens, NOW + 300);
    let mut given = tokens.clone();
    given.failures = 7;
    given.completed_at = Some(NOW);
    insert_challenge(&store, &given).await;
    assert_eq!(
        store
            .find_mfa_challenge(tokens.token_hash)
            .await
            .expect("find"),
        Some(tokens.clone())
    );
    assert_eq!(
        store.find_mfa_challenge(new_hash()).await.expect("find"),
        None
    );
    assert_eq!(store.fail_mfa_challenge(new_hash()).await.expect("fail"), 0);

    // Refused at max_failures and once expired; nothing granted then.
    assert_eq!(
        store
            .fail_mfa_challenge(tokens.token_hash)
            .await
            .expect("fail"),
        1
    );
    assert_eq!(
        store
            .fail_mfa_challenge(tokens.token_hash)
            .await
            .expect("fail"),
        2
    );
    let refused = successor(&user, NOW + 10);
    let grant = |refresh: &NewRefreshToken| ChallengeGrant {
        refresh: Some(refresh.clone()),
        ..ChallengeGrant::default()
    };
    assert!(!store
        .complete_mfa_challenge(tokens.token_hash, 2, grant(&refused), NOW + 10)
        .await
        .expect("at max failures"));
    assert!(!store
        .complete_mfa_challenge(tokens.token_hash, 5, grant(&refused), NOW + 300)
        .await
        .expect("expired"));
    assert_eq!(
        store
            .find_refresh_token(refused.token_hash)
            .await
            .expect("find"),
        None
    );

    // Completed once, with a new refresh family, a remembered device and the event.
    let refresh = successor(&user, NOW + 20);
    let device = new_hash();
    let mut login = draft("user.login", None, NOW + 20);
    login.metadata.insert("amr", "otp");
    let full = ChallengeGrant {
        refresh: Some(refresh.clone()),
        session: None,
        trusted_device: Some((device, NOW + 1000)),
        event: Some(login),
    };
    assert!(store
        .complete_mfa_challenge(tokens.token_hash, 3, full, NOW + 20)
        .await
        .expect("complete"));
    let found = store
        .find_mfa_challenge(tokens.token_hash)
        .await
        .expect("find")
        .expect("kept");
    assert_eq!((found.completed_at, found.failures), (Some(NOW + 20), 2));
    let t = token(&store, refresh.token_hash).await;
    assert_eq!((t.family_id, t.user_id), (refresh.family_id, user.id));
    assert_eq!((t.client_id.as_str(), t.family_revoked_at), (APP, None));
    assert!(!store
        .complete_mfa_challenge(tokens.token_hash, 3, grant(&refused), NOW + 21)
        .await
        .expect("complete again"));
    assert_eq!(
        store
            .find_refresh_token(refused.token_hash)
            .await
            .expect("find"),
        None
    );
    let events = events_of(&store, &acme).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].actor_id, Some(user.id));
    assert_eq!(events[0].metadata.as_json()["amr"], "otp");

    // The remembered device: this user's, until it expires.
    for (who, hash, at, trusted) in [
        (user.id, device, NOW + 999, true),
        (user.id, device, NOW + 1000, false),
        (other.id, device, NOW + 30, false),
        (user.id, new_hash(), NOW + 30, false),
    ] {
        assert_eq!(
            store
                .is_trusted_device(who, hash, at)
                .await
                .expect("trusted"),
            trusted
        );
    }

    // A session challenge grants its session.
    let web = challenge(&user, ChallengeKind::Session, NOW + 300);
    insert_challenge(&store, &web).await;
    let session = session_for(&user, NOW + 30);
    let grant = ChallengeGrant {
        session: Some(session.clone()),
        ..ChallengeGrant::default()
    };
    assert!(store
        .complete_mfa_challenge(web.token_hash, 3, grant, NOW + 30)
        .await
        .expect("complete"));
    let found = store
        .find_session(session.id_hash)
        .await
        .expect("find")
        .expect("the session");
    assert_eq!((found.user.id, found.revoked_at), (user.id, None));
    assert_eq!(
        store
            .find_mfa_challenge(web.token_hash)
            .await
            .expect("find")
            .map(|c| c.kind),
        Some(ChallengeKind::Session)
    );
}

pub async fn concurrent_challenge_completion(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let (user, first) = register(&store, &acme, "ada@acme.test").await;
    enrolled(&store, &user, &[]).await;
    let c = challenge(&user, ChallengeKind::Tokens, NOW + 300);
    insert_challenge(&store, &c).await;
    let hash = c.token_hash;

    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = Arc::clone(&store);
            let refresh = successor(&user, NOW + 10);
            let device = new_hash();
            let grant = ChallengeGrant {
                refresh: Some(refresh.clone()),
                trusted_device: Some((device, NOW + 1000)),
                ..ChallengeGrant::default()
            };
            tokio::spawn(async move {
                let done = store
                    .complete_mfa_challenge(hash, 5, grant, NOW + 10 + i)
                    .await
                    .expect("complete");
                (done, refresh.token_hash, device)
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    assert_eq!(
        results.iter().filter(|r| r.0).count(),
        1,
        "exactly one completes"
    );
    let (mut families, mut devices) = (Vec::new(), 0);
    for (done, hash, device) in &results {
        let found = store.find_refresh_token(*hash).await.expect("find");
        assert_eq!(found.is_some(), *done);
        families.extend(found.map(|t| t.family_id));
        devices += usize::from(
            store
                .is_trusted_device(user.id, *device, NOW + 100)
                .await
                .expect("trusted"),
        );
    }
    assert_eq!((families.len(), devices), (1, 1));
    assert_ne!(families[0], first.family_id);
}

/// Confirming a factor revokes every refresh family and cookie session of the user but the
/// kept ones, in the transaction of the confirmation; other users' are untouched.
pub async fn confirming_a_factor_ends_other_sign_ins(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let (user, first) = register(&store, &acme, "ada@acme.test").await;
    let (other_user, other_first) = register(&store, &acme, "bob@acme.test").await;
    let second = successor(&user, NOW);
    store
        .insert_refresh_token(second.clone(), None)
        .await
        .expect("second family");
    let kept_session = session_for(&user, NOW);
    let ended_session = session_for(&user, NOW);
    for s in [&kept_session, &ended_session] {
        store
            .create_session(s.clone(), None)
            .await
            .expect("session");
    }
    assert!(store
        .put_totp_secret(user.id, vec![1; 40], NOW)
        .await
        .expect("put secret"));
    let keep = KeepSignIn {
        family_id: Some(first.family_id),
        session: Some(kept_session.id_hash),
    };
    assert!(store
        .confirm_totp(user.id, 100, Vec::new(), keep, None, NOW + 1)
        .await
        .expect("confirm"));
    assert!(token(&store, first.token_hash)
        .await
        .family_revoked_at
        .is_none());
    assert_eq!(
        token(&store, second.token_hash).await.family_revoked_at,
        Some(NOW + 1)
    );
    assert!(token(&store, other_first.token_hash)
        .await
        .family_revoked_at
        .is_none());
    let session = |h| {
        let store = store.clone();
        async move { store.find_session(h).await.expect("find").expect("session") }
    };
    assert_eq!(session(kept_session.id_hash).await.revoked_at, None);
    assert_eq!(
        session(ended_session.id_hash).await.revoked_at,
        Some(NOW + 1)
    );
    assert_eq!(other_user.tenant_id, acme.id);
}

/// Consents are kept per user and client and replaced whole; a session keeps its `amr`.
pub async fn consents_and_session_amr(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let (user, _) = register(&store, &acme, "ada@acme.test").await;
    assert_eq!(
        store.find_consent(user.id, "partner").await.expect("find"),
        None
    );
    let consent = |scopes: &[&str], at| store::Consent {
        user_id: user.id,
        tenant_id: acme.id,
        client_id: "partner".into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        granted_at: at,
    };
    store
        .put_consent(consent(&["openid"], NOW))
        .await
        .expect("put");
    store
        .put_consent(consent(&["email", "openid"], NOW + 1))
        .await
        .expect("replace");
    assert_eq!(
        store.find_consent(user.id, "partner").await.expect("find"),
        Some(vec!["email".to_string(), "openid".to_string()])
    );
    assert_eq!(
        store.find_consent(user.id, "other").await.expect("find"),
        None
    );
    // Deleting the client deletes its consents.
    store
        .create_client(
            store::NewClient::new(acme.id, "partner", "Partner"),
            NOW,
            None,
        )
        .await
        .expect("client");
    assert!(store
        .delete_client(acme.id, "partner", None)
        .await
        .expect("delete"));
    assert_eq!(
        store.find_consent(user.id, "partner").await.expect("find"),
        None
    );

    let mut mfa = session_for(&user, NOW);
    mfa.amr = vec!["pwd".into(), "otp".into(), "mfa".into()];
    store
        .create_session(mfa.clone(), None)
        .await
        .expect("session");
    let found = store
        .find_session(mfa.id_hash)
        .await
        .expect("find")
        .expect("session");
    assert_eq!(found.amr, mfa.amr);
}
