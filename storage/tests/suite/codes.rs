//! Authorization codes: stored hashed, redeemed once (concurrently too), a reused code
//! revokes the family its redemption created, and the family keeps the granted scopes
//! through rotation.

use std::sync::Arc;

use store::{AuthCode, NewAuthCode, Redeem, Redemption, RotateOutcome, Store, User};
use uuid::Uuid;

use super::{migrated, new_hash, register, successor, tenant, token, APP, NOW, REFRESH_TTL};

fn code_for(user: &User) -> NewAuthCode {
    NewAuthCode {
        code_hash: new_hash(),
        code: AuthCode {
            tenant_id: user.tenant_id,
            client_id: APP.into(),
            user_id: user.id,
            redirect_uri: "https://app.example/cb".into(),
            scopes: vec!["openid".into(), "email".into()],
            nonce: Some("n-0S6_WzA2Mj".into()),
            code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
            auth_time: NOW - 5,
            amr: vec!["pwd".into()],
            family_id: Uuid::new_v4(),
            created_at: NOW,
            expires_at: NOW + 600,
            used_at: None,
            access_jti: None,
            access_expires_at: None,
        },
    }
}

fn with_refresh(refresh: &store::NewRefreshToken, jti: &str) -> Redeem {
    Redeem {
        refresh: Some(refresh.clone()),
        access: Some((jti.to_string(), refresh.issued_at + 900)),
        ..Redeem::default()
    }
}

pub async fn authorization_codes(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let (user, _) = register(&store, &acme, "ada@acme.test").await;
    let new = code_for(&user);
    store.insert_auth_code(new.clone()).await.expect("insert");
    assert_eq!(
        store.find_auth_code(new.code_hash).await.expect("find"),
        Some(new.code.clone())
    );
    assert_eq!(store.find_auth_code(new_hash()).await.expect("find"), None);

    // Redeemed once, with its refresh token in the family the code names.
    let refresh = successor(&user, NOW + 10);
    let outcome = store
        .redeem_auth_code(new.code_hash, with_refresh(&refresh, "jti-1"), NOW + 10)
        .await
        .expect("redeem");
    let used = AuthCode {
        used_at: Some(NOW + 10),
        access_jti: Some("jti-1".into()),
        access_expires_at: Some(NOW + 910),
        ..new.code.clone()
    };
    assert_eq!(outcome, Redemption::Redeemed(used.clone()));
    let t = token(&store, refresh.token_hash).await;
    assert_eq!(t.family_id, new.code.family_id);
    assert_eq!(t.user_id, user.id);
    assert_eq!(t.client_id, APP);
    assert_eq!(t.expires_at, NOW + 10 + REFRESH_TTL);
    assert_eq!(t.scopes, Some(vec!["openid".into(), "email".into()]));

    // The granted scopes survive rotation.
    let next = successor(&user, NOW + 20);
    match store
        .rotate_refresh_token(refresh.token_hash, APP, next.clone(), None, NOW + 20)
        .await
        .expect("rotate")
    {
        RotateOutcome::Rotated {
            scopes, family_id, ..
        } => {
            assert_eq!(family_id, new.code.family_id);
            assert_eq!(scopes, Some(vec!["openid".into(), "email".into()]));
        }
        other => panic!("{other:?}"),
    }

    // Presented again: the family it created is revoked, the latest token with it.
    assert_eq!(
        store
            .redeem_auth_code(
                new.code_hash,
                with_refresh(&successor(&user, NOW + 30), "jti-2"),
                NOW + 30
            )
            .await
            .expect("reuse"),
        Redemption::Reused(used)
    );
    assert_eq!(
        token(&store, next.token_hash).await.family_revoked_at,
        Some(NOW + 30)
    );

    // Unknown and expired codes.
    assert_eq!(
        store
            .redeem_auth_code(new_hash(), Redeem::default(), NOW)
            .await
            .expect("unknown"),
        Redemption::Unknown
    );
    let old = code_for(&user);
    store.insert_auth_code(old.clone()).await.expect("insert");
    assert_eq!(
        store
            .redeem_auth_code(old.code_hash, Redeem::default(), NOW + 600)
            .await
            .expect("expired"),
        Redemption::Expired
    );
    // Pruning takes the expired ones only.
    let live = code_for(&user);
    let live = NewAuthCode {
        code: AuthCode {
            expires_at: NOW + 10_000,
            ..live.code
        },
        ..live
    };
    store.insert_auth_code(live.clone()).await.expect("insert");
    assert_eq!(
        store.prune_auth_codes(NOW + 700, 100).await.expect("prune"),
        2
    );
    assert!(store
        .find_auth_code(old.code_hash)
        .await
        .expect("find")
        .is_none());
    assert!(store
        .find_auth_code(live.code_hash)
        .await
        .expect("find")
        .is_some());
}

/// Twenty concurrent redemptions of one code: exactly one `Redeemed`, the others `Reused`,
/// and the family of the one token issued ends up revoked (a reuse revokes what was issued).
pub async fn concurrent_code_redemption(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let (user, _) = register(&store, &acme, "ada@acme.test").await;
    let new = code_for(&user);
    store.insert_auth_code(new.clone()).await.expect("insert");
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        let refresh = successor(&user, NOW + 1);
        tasks.push(tokio::spawn(async move {
            let outcome = store
                .redeem_auth_code(new.code_hash, with_refresh(&refresh, "jti"), NOW + 1)
                .await
                .expect("redeem");
            (outcome, refresh.token_hash)
        }));
    }
    let mut redeemed = Vec::new();
    let mut reused = 0;
    for t in tasks {
        match t.await.expect("join") {
            (Redemption::Redeemed(_), hash) => redeemed.push(hash),
            (Redemption::Reused(_), _) => reused += 1,
            (other, _) => panic!("{other:?}"),
        }
    }
    assert_eq!(redeemed.len(), 1);
    assert_eq!(reused, 19);
    assert_eq!(
        token(&store, redeemed[0]).await.family_revoked_at,
        Some(NOW + 1)
    );
}

/// Revoked access tokens: recorded once, read back by time, pruned once expired.
pub async fn revoked_access_tokens(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    store
        .revoke_access_token("jti-a", acme.id, NOW + 900, NOW)
        .await
        .expect("revoke");
    // Idempotent: the first revocation stays.
    store
        .revoke_access_token("jti-a", acme.id, NOW + 900, NOW + 50)
        .await
        .expect("again");
    store
        .revoke_access_token("jti-b", acme.id, NOW + 100, NOW + 10)
        .await
        .expect("revoke");
    let mut all = store.revoked_tokens_since(0, NOW).await.expect("since");
    all.sort();
    assert_eq!(
        all,
        vec![
            ("jti-a".to_string(), NOW + 900),
            ("jti-b".to_string(), NOW + 100)
        ]
    );
    // Since a time: only what was revoked then or later; never what has expired.
    assert_eq!(
        store
            .revoked_tokens_since(NOW + 5, NOW)
            .await
            .expect("since"),
        vec![("jti-b".to_string(), NOW + 100)]
    );
    assert_eq!(
        store
            .revoked_tokens_since(0, NOW + 100)
            .await
            .expect("since"),
        vec![("jti-a".to_string(), NOW + 900)]
    );
    assert_eq!(
        store
            .prune_revoked_tokens(NOW + 200, 10)
            .await
            .expect("prune"),
        1
    );
    assert_eq!(
        store
            .revoked_tokens_since(0, NOW)
            .await
            .expect("since")
            .len(),
        1
    );
}
