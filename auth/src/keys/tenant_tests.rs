//! Tenants in issuer mode path: their own keys, their own issuer, and nothing of one tenant
//! (or of the global keys) verifies as another's.

use std::sync::Arc;
use std::time::Duration;

use protocol::token::AccessClaims;
use storage::sqlite::SqliteStore;
use store::prelude::*;
use store::{IssuerMode, Tenant};
use testkit::TempDir;
use uuid::Uuid;

use super::*;
use crate::tokens::TokenError;

const BASE: &str = "http://localhost:8080";
const NOW: i64 = 1_700_000_000;
const LIFETIME: Duration = Duration::from_secs(900);

fn claims(iss: &str, tenant: Uuid, now: i64) -> AccessClaims {
    AccessClaims {
        iss: iss.into(),
        sub: Uuid::new_v4().to_string(),
        aud: "spa".into(),
        iat: now,
        nbf: now,
        exp: now + 900,
        tid: tenant.to_string(),
        amr: vec!["pwd".into()],
        scp: String::new(),
        custom: Default::default(),
        sid: None,
        jti: "j".into(),
        auth_time: None,
    }
}

#[derive(serde::Serialize)]
struct IdClaims {
    iss: String,
    sub: String,
    aud: String,
    iat: i64,
    exp: i64,
    tid: String,
}

fn id_claims(iss: &str, tenant: Uuid) -> IdClaims {
    IdClaims {
        iss: iss.into(),
        sub: "user-1".into(),
        aud: "spa".into(),
        iat: NOW,
        exp: NOW + 300,
        tid: tenant.to_string(),
    }
}

fn kid_of_token(token: &str) -> String {
    use base64::Engine as _;
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.split('.').next().unwrap())
        .unwrap();
    protocol::json::from_slice::<protocol::token::JwtHeader>(&header)
        .unwrap()
        .kid
}

fn kids(jwks: &protocol::token::Jwks) -> Vec<String> {
    jwks.keys.iter().map(|k| k.kid.clone()).collect()
}

async fn setup(dir: &TempDir) -> (Arc<SqliteStore>, MasterKey, Tenant, Tenant) {
    let store = SqliteStore::open(&dir.path().join("db"), 1).unwrap();
    store.migrate().await.unwrap();
    let store = Arc::new(store);
    let acme = store
        .create_tenant("acme", "Acme", Default::default(), NOW, None)
        .await
        .unwrap();
    let local = store
        .create_tenant("local", "Local", Default::default(), NOW, None)
        .await
        .unwrap();
    let master = MasterKey::from_bytes([5; 32]);
    assert!(store
        .set_tenant_issuer_mode(acme.id, IssuerMode::Path)
        .await
        .unwrap());
    (store, master, acme, local)
}

#[tokio::test]
async fn a_path_tenant_signs_with_its_own_keys_and_issuer_only() {
    let dir = TempDir::new("tenant-keys");
    let (store, master, acme, local) = setup(&dir).await;
    let ring = KeyRing::load_or_create(&*store, &master, NOW, LIFETIME)
        .await
        .unwrap();
    // Its keys were made on first start, one per algorithm, and published apart.
    let own = ring.tenant_jwks(acme.id).expect("acme's own keys");
    assert_eq!(own.keys.len(), 2);
    assert!(ring.tenant_jwks(local.id).is_none());
    let global = kids(&ring.jwks());
    assert_eq!(global.len(), 2);
    assert!(kids(&own).iter().all(|k| !global.contains(k)));
    let acme_iss = format!("{BASE}/t/acme");
    assert_eq!(ring.issuer(BASE, acme.id), acme_iss);
    assert_eq!(ring.issuer(&format!("{BASE}/"), acme.id), acme_iss);
    assert_eq!(ring.issuer(BASE, local.id), BASE);
    assert!(ring.is_path_tenant(acme.id) && !ring.is_path_tenant(local.id));

    // Access tokens: each tenant's own keys sign, each verifies with its issuer only.
    let a = ring.sign(&claims(&acme_iss, acme.id, NOW));
    assert!(kids(&own).contains(&kid_of_token(&a)));
    assert_eq!(ring.verify(&a, NOW, BASE).unwrap().tid, acme.id.to_string());
    let rs = ring.sign_access_with(SigningAlg::Rs256, &claims(&acme_iss, acme.id, NOW));
    assert!(kids(&own).contains(&kid_of_token(&rs)));
    assert!(ring.verify(&rs, NOW, BASE).is_ok());
    let l = ring.sign(&claims(BASE, local.id, NOW));
    assert!(global.contains(&kid_of_token(&l)));
    assert!(ring.verify(&l, NOW, BASE).is_ok());

    // Anything else is refused: acme's keys with the global issuer or for another tenant,
    // the global keys for a path tenant, another server's base.
    let wrong = [
        ring.sign(&claims(BASE, acme.id, NOW)),
        ring.sign(&claims(&format!("{BASE}/t/local"), acme.id, NOW)),
        ring.sign(&claims(&acme_iss, local.id, NOW)),
        ring.sign(&claims(&format!("{BASE}/t/acme"), Uuid::new_v4(), NOW)),
    ];
    for token in &wrong {
        assert_eq!(ring.verify(token, NOW, BASE), Err(TokenError::WrongIssuer));
    }
    assert_eq!(
        ring.verify(&a, NOW, "http://other:8080"),
        Err(TokenError::WrongIssuer)
    );

    // ID tokens: signed by the tenant's keys, honoured as hints for its issuer only.
    let id = ring.sign_id_token(&id_claims(&acme_iss, acme.id));
    assert!(kids(&own).contains(&kid_of_token(&id)));
    assert_eq!(
        ring.verify_id_token_hint(&id, BASE).map(|h| h.sub),
        Some("user-1".into())
    );
    let foreign = ring.sign_id_token(&id_claims(BASE, acme.id));
    assert_eq!(ring.verify_id_token_hint(&foreign, BASE), None);
    let global_id = ring.sign_id_token(&id_claims(BASE, local.id));
    assert!(global.contains(&kid_of_token(&global_id)));
    assert!(ring.verify_id_token_hint(&global_id, BASE).is_some());
}

#[tokio::test]
async fn switching_modes_reaches_the_ring_on_reload() {
    let dir = TempDir::new("tenant-switch");
    let (store, master, acme, local) = setup(&dir).await;
    let ring = KeyRing::load_or_create(&*store, &master, NOW, LIFETIME)
        .await
        .unwrap();
    let acme_iss = format!("{BASE}/t/acme");
    let before = ring.sign(&claims(&acme_iss, acme.id, NOW));

    // Back to global: the global keys sign, its own tokens stop verifying.
    store
        .set_tenant_issuer_mode(acme.id, IssuerMode::Global)
        .await
        .unwrap();
    ring.reload(&*store, NOW + 1).await.unwrap();
    assert_eq!(ring.issuer(BASE, acme.id), BASE);
    assert!(ring.tenant_jwks(acme.id).is_none());
    assert_eq!(
        ring.verify(&before, NOW + 1, BASE),
        Err(TokenError::UnknownKey)
    );
    let global = ring.sign(&claims(BASE, acme.id, NOW + 1));
    assert!(ring.verify(&global, NOW + 1, BASE).is_ok());

    // A tenant switched to path without keys (set in the store by hand) gets them on reload.
    store
        .set_tenant_issuer_mode(local.id, IssuerMode::Path)
        .await
        .unwrap();
    ring.reload(&*store, NOW + 2).await.unwrap();
    assert_eq!(ring.issuer(BASE, local.id), format!("{BASE}/t/local"));
    assert_eq!(ring.tenant_jwks(local.id).unwrap().keys.len(), 2);
    // Its global-issuer tokens of a moment ago no longer verify.
    let old_local = ring.sign(&claims(BASE, local.id, NOW + 2));
    assert_eq!(
        ring.verify(&old_local, NOW + 2, BASE),
        Err(TokenError::WrongIssuer)
    );
}

#[tokio::test]
async fn a_tenant_rotation_touches_only_its_keys() {
    let dir = TempDir::new("tenant-rotate");
    let (store, master, acme, _) = setup(&dir).await;
    create_tenant_keys(&*store, &master, acme.id, NOW)
        .await
        .unwrap();
    // Again: nothing more.
    create_tenant_keys(&*store, &master, acme.id, NOW)
        .await
        .unwrap();
    let ring = KeyRing::load_or_create(&*store, &master, NOW, LIFETIME)
        .await
        .unwrap();
    let global = kids(&ring.jwks());
    let own = kids(&ring.tenant_jwks(acme.id).unwrap());
    assert_eq!((global.len(), own.len()), (2, 2));

    let delay = Duration::from_secs(600);
    let r = rotate_for(
        &*store,
        &master,
        Some(acme.id),
        SigningAlg::EdDsa,
        NOW + 10,
        delay,
        None,
    )
    .await
    .unwrap();
    assert_eq!((r.retired, r.activates_at), (1, NOW + 610));
    ring.reload(&*store, NOW + 10).await.unwrap();
    assert_eq!(kids(&ring.jwks()), global, "the global keys are untouched");
    let after = kids(&ring.tenant_jwks(acme.id).unwrap());
    assert_eq!(after.len(), 3);
    assert!(after.contains(&r.kid));
    let records = store.list_signing_keys().await.unwrap();
    assert_eq!(records.len(), 5);
    assert!(records
        .iter()
        .filter(|k| k.tenant_id.is_none())
        .all(|k| k.retired_at.is_none()));
}
