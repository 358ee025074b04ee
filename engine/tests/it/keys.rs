//! Signing keys over HTTP: the JWKS publishes an Ed25519 and an RSA key, tokens of both
//! algorithms verify with an independent JWT library from the JWKS alone, and a rotation made
//! elsewhere (as `hj keys rotate` makes it) reaches running instances: the new keys are
//! published before they sign, tokens signed before still verify, and after the publish delay
//! every instance signs with the new keys.

use std::sync::Arc;
use std::time::{Duration, Instant};

use auth::keys::{KeyRing, SigningAlg};
use engine::config::{Config, JWKS_MAX_AGE, KEY_RELOAD_INTERVAL};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::support::{status_and_json, StartOptions, TestServer, TEST_MASTER_KEY};

const ISSUER: &str = "http://auth.hellojohn.test";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct IdClaims {
    iss: String,
    sub: String,
    aud: String,
    iat: i64,
    exp: i64,
    nonce: String,
}

fn id_claims(now: i64) -> IdClaims {
    IdClaims {
        iss: ISSUER.into(),
        sub: "0190d1a4-0000-7000-8000-000000000001".into(),
        aud: "acme-web".into(),
        iat: now,
        exp: now + 300,
        nonce: "n-0S6_WzA2Mj".into(),
    }
}

fn fast_reload(config: &mut Config) {
    config.key_reload_interval = Duration::from_millis(100);
}

/// The JWKS over HTTP, checked for shape: distinct kids, no private parts, the members of
/// each key type and only those.
async fn jwks(srv: &TestServer) -> Vec<Value> {
    let resp = srv.get("/.well-known/jwks.json").await;
    assert_eq!(
        resp.headers()["cache-control"],
        format!("public, max-age={}", JWKS_MAX_AGE.as_secs()).as_str()
    );
    let (status, body) = status_and_json(resp).await;
    assert_eq!(status, 200, "{body}");
    let keys = body["keys"].as_array().unwrap().clone();
    let mut kids: Vec<&str> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
    kids.sort();
    kids.dedup();
    assert_eq!(kids.len(), keys.len(), "distinct kids: {body}");
    for key in &keys {
        assert_eq!(key["use"], "sig");
        assert!(key.get("d").is_none() && key.get("p").is_none(), "{key}");
        let mut members: Vec<&str> = key
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        members.sort();
        match key["kty"].as_str().unwrap() {
            "OKP" => {
                assert_eq!(
                    (&key["crv"], &key["alg"]),
                    (&json!("Ed25519"), &json!("EdDSA"))
                );
                assert_eq!(members, ["alg", "crv", "kid", "kty", "use", "x"]);
            }
            "RSA" => {
                assert_eq!(key["alg"], "RS256");
                assert_eq!(key["e"], "AQAB");
                assert_eq!(members, ["alg", "e", "kid", "kty", "n", "use"]);
            }
            other => panic!("unexpected kty {other}: {key}"),
        }
    }
    keys
}

fn kids(keys: &[Value]) -> Vec<String> {
    keys.iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

/// Verifies `token` with jsonwebtoken, from `keys` only (the kid in its header picks the key).
fn verify_with_jwks<T: serde::de::DeserializeOwned>(
    token: &str,
    keys: &[Value],
    audience: &str,
) -> Result<(String, T), String> {
    let header = decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = keys
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .ok_or(format!("kid {kid} is not in the JWKS"))?;
    let (key, alg) = match jwk["kty"].as_str() {
        Some("RSA") => (
            DecodingKey::from_rsa_components(
                jwk["n"].as_str().unwrap(),
                jwk["e"].as_str().unwrap(),
            )
            .unwrap(),
            Algorithm::RS256,
        ),
        _ => (
            DecodingKey::from_ed_components(jwk["x"].as_str().unwrap()).unwrap(),
            Algorithm::EdDSA,
        ),
    };
    // The algorithm comes from the key, never from the token.
    let mut validation = Validation::new(alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[ISSUER]);
    validation.leeway = 5;
    let data = decode::<T>(token, &key, &validation).map_err(|e| e.to_string())?;
    Ok((kid, data.claims))
}

fn ring(srv: &TestServer) -> Arc<KeyRing> {
    srv.handle().app().auth.keys.clone()
}

/// An access token from a password sign-in on `srv`.
async fn access_token(srv: &TestServer, fx: &crate::support::Fixture, email: &str) -> String {
    let (status, body) = srv.login(fx, email, crate::support::PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_both_algorithms_verify_from_the_jwks_across_a_rotation() {
    // The default publish delay covers the reload and the JWKS cache.
    let defaults = Config::for_tests(std::env::temp_dir());
    assert!(defaults.key_publish_delay >= JWKS_MAX_AGE + KEY_RELOAD_INTERVAL);
    assert_eq!(defaults.key_reload_interval, KEY_RELOAD_INTERVAL);

    // Two instances of one deployment: one store, one master key, one issuer.
    let settings = [
        ("HELLOJOHN_MASTER_KEY", TEST_MASTER_KEY),
        ("HELLOJOHN_BASE_URL", ISSUER),
    ];
    let a = TestServer::with_options(
        &settings,
        StartOptions {
            configure: Some(fast_reload),
            ..Default::default()
        },
    )
    .await;
    let b = TestServer::with_options(
        &settings,
        StartOptions {
            store: Some(a.store()),
            configure: Some(fast_reload),
            ..Default::default()
        },
    )
    .await;
    let fx = a.fixture().await;
    a.register(&fx, "ada@example.com").await;

    let (status, oidc) = status_and_json(a.get("/.well-known/openid-configuration").await).await;
    assert_eq!(status, 200, "{oidc}");
    assert_eq!(
        oidc["id_token_signing_alg_values_supported"],
        json!(["RS256", "EdDSA"])
    );

    // One key per algorithm, the same on both instances.
    let before = jwks(&a).await;
    assert_eq!(before.len(), 2, "{before:?}");
    assert_eq!(kids(&jwks(&b).await), kids(&before));
    let now = engine::unix_now();
    let (old_ed, old_rs) = (
        ring(&a).active_kid(SigningAlg::EdDsa, now),
        ring(&a).active_kid(SigningAlg::Rs256, now),
    );

    // Tokens signed before the rotation: an access token over HTTP, ID tokens of both
    // algorithms from the server's own ring.
    let old_access = access_token(&a, &fx, "ada@example.com").await;
    let old_id_rs = ring(&a).sign_id_token(&id_claims(now));
    let old_id_ed = ring(&a).sign_id_token_with(SigningAlg::EdDsa, &id_claims(now));
    for (token, kid) in [(&old_id_rs, &old_rs), (&old_id_ed, &old_ed)] {
        let (used, claims) = verify_with_jwks::<IdClaims>(token, &before, "acme-web").unwrap();
        assert_eq!((&used, claims), (kid, id_claims(now)));
    }
    let (used, _) = verify_with_jwks::<Value>(&old_access, &before, fx.client_id()).unwrap();
    assert_eq!(used, old_ed);

    // The rotation, made elsewhere (as `hj keys rotate` does), with a short publish delay
    // (long enough for the RSA key generation and a reload on a busy machine).
    let delay = Duration::from_secs(8);
    let store = a.store();
    let master = engine::master_key(&a.handle().app().config, store.as_ref()).unwrap();
    let rotated_at = engine::unix_now();
    let mut new = Vec::new();
    for alg in SigningAlg::ALL {
        let r = auth::keys::rotate(store.as_ref(), &master, alg, rotated_at, delay)
            .await
            .unwrap();
        assert_eq!((r.activates_at, r.retired), (rotated_at + 8, 1));
        new.push(r);
    }

    // Both instances publish the new keys within a reload, while the old keys still sign.
    let deadline = Instant::now() + Duration::from_secs(5);
    let published = loop {
        let (ka, kb) = (jwks(&a).await, jwks(&b).await);
        if ka.len() == 4 && kids(&kb).len() == 4 {
            break ka;
        }
        assert!(Instant::now() < deadline, "not published: {ka:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for r in &new {
        assert!(kids(&published).contains(&r.kid));
    }
    let now = engine::unix_now();
    assert!(now < rotated_at + 8, "the test is too slow for its delay");
    assert_eq!(
        decode_header(&access_token(&b, &fx, "ada@example.com").await)
            .unwrap()
            .kid,
        Some(old_ed.clone()),
        "the old key signs until the new one activates"
    );
    assert_eq!(ring(&b).active_kid(SigningAlg::Rs256, now), old_rs);

    // After the delay, both instances sign with the new keys: verified from the JWKS fetched
    // before (a verifier's cached copy), and across instances.
    while engine::unix_now() < rotated_at + 8 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let now = engine::unix_now();
    for srv in [&a, &b] {
        let token = access_token(srv, &fx, "ada@example.com").await;
        let (used, _) = verify_with_jwks::<Value>(&token, &published, fx.client_id()).unwrap();
        assert_eq!(used, new[0].kid);
        let other = if std::ptr::eq(srv, &a) { &b } else { &a };
        let resp = other
            .client
            .get(other.url("/v2/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "the other instance accepts it");
        for (alg, r) in SigningAlg::ALL.into_iter().zip(&new) {
            let id = ring(srv).sign_id_token_with(alg, &id_claims(now));
            let (used, claims) = verify_with_jwks::<IdClaims>(&id, &published, "acme-web").unwrap();
            assert_eq!((&used, claims), (&r.kid, id_claims(now)));
        }
    }

    // Tokens signed before the rotation still verify, from the JWKS as it is now.
    let after = jwks(&a).await;
    assert_eq!(
        after.len(),
        4,
        "the old keys stay published while their tokens live"
    );
    for token in [&old_id_rs, &old_id_ed] {
        verify_with_jwks::<IdClaims>(token, &after, "acme-web").unwrap();
    }
    verify_with_jwks::<Value>(&old_access, &after, fx.client_id()).unwrap();
    let resp = b
        .client
        .get(b.url("/v2/me"))
        .bearer_auth(&old_access)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    b.stop().await;
    a.stop().await;
}

/// Instances starting at once against one PostgreSQL (directly and through PgBouncer, each
/// with its own connection pool, as separate processes would be) end up with exactly one key
/// per algorithm, and agree on it. Needs `HJ_TEST_DATABASE_URL` and `HJ_TEST_PGBOUNCER_URL`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_starting_together_on_postgresql_create_one_key_per_algorithm() {
    let db = testkit::pg::TestDb::create("hj_keys").await;
    let open = |url: String| -> Arc<dyn store::Store> {
        Arc::new(
            storage::postgres::PgStore::open(&url, storage::postgres::PgOptions::default())
                .unwrap(),
        )
    };
    let first = open(db.direct_url());
    first.migrate().await.unwrap();
    let master = auth::MasterKey::parse(TEST_MASTER_KEY).unwrap();
    let lifetime = Duration::from_secs(900);
    let now = engine::unix_now();
    let mut tasks = Vec::new();
    for i in 0..6 {
        let store = if i % 2 == 0 {
            open(db.direct_url())
        } else {
            open(db.bouncer_url())
        };
        let master = master.clone();
        tasks.push(tokio::spawn(async move {
            KeyRing::load_or_create(store.as_ref(), &master, now, lifetime)
                .await
                .unwrap()
        }));
    }
    let mut rings = Vec::new();
    for task in tasks {
        rings.push(task.await.unwrap());
    }
    let stored = first.list_signing_keys().await.unwrap();
    assert_eq!(stored.len(), 2, "{stored:?}");
    for alg in SigningAlg::ALL {
        let key = stored.iter().find(|k| k.alg == alg).unwrap();
        for ring in &rings {
            assert_eq!(ring.active_kid(alg, now), key.kid);
        }
    }
    // A token from one verifies on every other.
    let token = rings[0].sign_id_token(&id_claims(now));
    for ring in &rings[1..] {
        assert_eq!(
            ring.verify_signed::<IdClaims>(&token, now).unwrap(),
            id_claims(now)
        );
    }
}
