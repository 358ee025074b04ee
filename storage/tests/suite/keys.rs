//! Signing keys of both algorithms: one key per algorithm from concurrent first starts, and
//! rotation (a scheduled hand-over from the signing key to a new one).

use super::*;
use store::SigningAlg;

fn key(kid: &str, alg: SigningAlg, created_at: i64, activates_at: i64) -> SigningKey {
    SigningKey {
        kid: kid.into(),
        alg,
        public_key: kid.as_bytes().to_vec(),
        private_key_encrypted: kid.as_bytes().iter().copied().chain([9; 40]).collect(),
        created_at,
        activates_at,
        retired_at: None,
        tenant_id: None,
    }
}

/// Several instances starting at once each try to create the first key of each algorithm:
/// exactly one key per algorithm results, and every caller sees it.
pub async fn signing_keys_per_alg(store: Arc<dyn Store>) {
    migrated(&store).await;
    let mut tasks = Vec::new();
    for i in 0..4 {
        for alg in SigningAlg::ALL {
            let store = Arc::clone(&store);
            let k = key(&format!("{alg}-{i}"), alg, NOW, NOW);
            tasks.push(tokio::spawn(async move {
                (alg, store.insert_signing_key_if_none(k).await)
            }));
        }
    }
    let mut seen: Vec<(SigningAlg, Vec<SigningKey>)> = Vec::new();
    for task in tasks {
        let (alg, got) = task.await.expect("task");
        let got = got.expect("insert");
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].alg, alg, "only keys of the caller's algorithm");
        seen.push((alg, got));
    }
    let stored = store.list_signing_keys().await.expect("list");
    assert_eq!(stored.len(), 2, "{stored:?}");
    for alg in SigningAlg::ALL {
        let winner: Vec<&SigningKey> = stored.iter().filter(|k| k.alg == alg).collect();
        assert_eq!(winner.len(), 1, "{alg}: {stored:?}");
        assert!(winner[0].kid.starts_with(alg.as_str()));
        assert_eq!(*winner[0], key(&winner[0].kid, alg, NOW, NOW), "round trip");
        for (a, got) in &seen {
            if *a == alg {
                assert_eq!(got[0], *winner[0], "every caller sees the winner");
            }
        }
    }
}

/// A rotation inserts the new key and retires, at its activation, every key of its algorithm
/// that would still sign then; other algorithms are untouched.
pub async fn signing_key_rotation(store: Arc<dyn Store>) {
    migrated(&store).await;
    let a = key("ed-a", SigningAlg::EdDsa, NOW, NOW);
    let r = key("rsa-a", SigningAlg::Rs256, NOW, NOW);
    store
        .insert_signing_key_if_none(a.clone())
        .await
        .expect("a");
    store
        .insert_signing_key_if_none(r.clone())
        .await
        .expect("r");

    let b = key("ed-b", SigningAlg::EdDsa, NOW + 10, NOW + 610);
    assert_eq!(
        store
            .rotate_signing_key(b.clone(), None)
            .await
            .expect("rotate"),
        1
    );
    let keys = store.list_signing_keys().await.expect("list");
    let find = |keys: &[SigningKey], kid: &str| {
        keys.iter()
            .find(|k| k.kid == kid)
            .cloned()
            .unwrap_or_else(|| panic!("{kid} in {keys:?}"))
    };
    assert_eq!(find(&keys, "ed-a").retired_at, Some(NOW + 610));
    assert_eq!(find(&keys, "ed-b"), b, "the new key as given");
    assert_eq!(find(&keys, "rsa-a"), r, "another algorithm is untouched");

    // A second rotation before the first has activated: the old key keeps its earlier
    // retirement, the pending one retires when the newest activates.
    let c = key("ed-c", SigningAlg::EdDsa, NOW + 20, NOW + 700);
    assert_eq!(
        store
            .rotate_signing_key(c.clone(), None)
            .await
            .expect("rotate"),
        1
    );
    let keys = store.list_signing_keys().await.expect("list");
    assert_eq!(find(&keys, "ed-a").retired_at, Some(NOW + 610));
    assert_eq!(find(&keys, "ed-b").retired_at, Some(NOW + 700));
    assert_eq!(find(&keys, "ed-c").retired_at, None);
    assert_eq!(
        keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
        ["ed-a", "rsa-a", "ed-b", "ed-c"],
        "oldest first"
    );

    // A rotation to an earlier instant pulls later retirements forward.
    let d = key("ed-d", SigningAlg::EdDsa, NOW + 30, NOW + 650);
    assert_eq!(store.rotate_signing_key(d, None).await.expect("rotate"), 2);
    let keys = store.list_signing_keys().await.expect("list");
    assert_eq!(find(&keys, "ed-a").retired_at, Some(NOW + 610));
    assert_eq!(find(&keys, "ed-b").retired_at, Some(NOW + 650));
    assert_eq!(find(&keys, "ed-c").retired_at, Some(NOW + 650));

    // A start after rotations finds a key that is not retired and inserts nothing.
    let got = store
        .insert_signing_key_if_none(key("ed-e", SigningAlg::EdDsa, NOW + 40, NOW + 40))
        .await
        .expect("insert");
    assert_eq!(
        got.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
        ["ed-d"]
    );

    // A rotation that fails (a duplicate kid) retires nothing: one transaction.
    let mut other = store.list_signing_keys().await.expect("list");
    let fresh = key("rsa-a", SigningAlg::Rs256, NOW + 50, NOW + 50);
    assert!(store.rotate_signing_key(fresh, None).await.is_err());
    let mut after = store.list_signing_keys().await.expect("list");
    other.sort_by(|x, y| x.kid.cmp(&y.kid));
    after.sort_by(|x, y| x.kid.cmp(&y.kid));
    assert_eq!(after, other, "a failed rotation rolls back");
}

/// Issuer modes (migration 13): a tenant's mode round-trips, and a tenant's own keys are
/// created and rotated apart from the global keys and from another tenant's.
pub async fn tenant_issuer_modes_and_keys(store: Arc<dyn Store>) {
    use store::IssuerMode;
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let beta = tenant(&store, "beta").await;
    assert_eq!(acme.issuer_mode, IssuerMode::Global, "the default");
    assert!(store
        .set_tenant_issuer_mode(acme.id, IssuerMode::Path)
        .await
        .expect("set"));
    assert!(!store
        .set_tenant_issuer_mode(Uuid::new_v4(), IssuerMode::Path)
        .await
        .expect("unknown tenant"));
    let found = store
        .find_tenant("acme")
        .await
        .expect("find")
        .expect("acme");
    assert_eq!(found.issuer_mode, IssuerMode::Path);
    let listed = store.list_tenants().await.expect("list");
    assert_eq!(
        listed
            .iter()
            .map(|t| (t.slug.as_str(), t.issuer_mode))
            .collect::<Vec<_>>(),
        [("acme", IssuerMode::Path), ("beta", IssuerMode::Global)]
    );

    let owned = |kid: &str, owner: Option<Uuid>| SigningKey {
        tenant_id: owner,
        ..key(kid, SigningAlg::EdDsa, NOW, NOW)
    };
    // One key per algorithm and owner: the global key does not stand in for a tenant's.
    for (kid, owner) in [
        ("global", None),
        ("acme-1", Some(acme.id)),
        ("beta-1", Some(beta.id)),
    ] {
        let got = store
            .insert_signing_key_if_none(owned(kid, owner))
            .await
            .expect("insert");
        assert_eq!(got, [owned(kid, owner)], "round trip with its owner");
    }
    let got = store
        .insert_signing_key_if_none(owned("acme-2", Some(acme.id)))
        .await
        .expect("insert");
    assert_eq!(got, [owned("acme-1", Some(acme.id))]);

    // A rotation of acme's key retires acme's only.
    let next = SigningKey {
        activates_at: NOW + 600,
        ..owned("acme-3", Some(acme.id))
    };
    assert_eq!(
        store.rotate_signing_key(next, None).await.expect("rotate"),
        1
    );
    let keys = store.list_signing_keys().await.expect("list");
    assert_eq!(keys.len(), 4, "{keys:?}");
    for k in &keys {
        let retired = (k.kid == "acme-1").then_some(NOW + 600);
        assert_eq!(k.retired_at, retired, "{k:?}");
    }
    // And a global rotation retires no tenant's key.
    let global = SigningKey {
        activates_at: NOW + 600,
        ..owned("global-2", None)
    };
    assert_eq!(
        store
            .rotate_signing_key(global, None)
            .await
            .expect("rotate"),
        1
    );
    let keys = store.list_signing_keys().await.expect("list");
    let retired: Vec<&str> = keys
        .iter()
        .filter(|k| k.retired_at.is_some())
        .map(|k| k.kid.as_str())
        .collect();
    assert_eq!(retired, ["acme-1", "global"]);
}
