//! Tolerant readers: a release starts and serves on data and settings a newer release wrote
//! (a rollback), skipping what it does not know with a warning and a count on `/metrics`.

use crate::support::{StartOptions, TestServer, PASSWORD, TEST_MASTER_KEY};

/// Writes rows as a newer release would, behind the first server's back: its migration
/// (recorded as 9999) widens the CHECKs, then it adds a signing key of an algorithm this
/// release does not know and turns one client into a type this release does not know.
async fn write_newer_rows(srv: &TestServer) {
    let now = engine::unix_now();
    match &srv.handle().app().config.database_url {
        Some(url) => {
            let db = testkit::pg::admin(url.expose()).await;
            db.batch_execute(
                "ALTER TABLE signing_keys DROP CONSTRAINT signing_keys_alg_check; \
                 ALTER TABLE clients DROP CONSTRAINT clients_client_type_check",
            )
            .await
            .unwrap();
            db.execute(
                "INSERT INTO signing_keys (kid, alg, public_key, private_key_encrypted, \
                 created_at) VALUES ('pq-future', 'ML-DSA-65', $1, $2, $3)",
                &[&vec![1u8; 1952], &vec![2u8; 64], &now],
            )
            .await
            .unwrap();
            let n = db
                .execute(
                    "UPDATE clients SET client_type = 'hybrid' WHERE client_id = 'hybrid-app'",
                    &[],
                )
                .await
                .unwrap();
            assert_eq!(n, 1);
            db.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) \
                 VALUES (9999, 'future', 0)",
                &[],
            )
            .await
            .unwrap();
        }
        None => {
            let db = rusqlite::Connection::open(srv.dir.join("hellojohn.db")).unwrap();
            db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            db.execute_batch("PRAGMA ignore_check_constraints = ON")
                .unwrap();
            db.execute(
                "INSERT INTO signing_keys (kid, alg, public_key, private_key_encrypted, \
                 created_at) VALUES ('pq-future', 'ML-DSA-65', ?1, ?2, ?3)",
                rusqlite::params![vec![1u8; 1952], vec![2u8; 64], now],
            )
            .unwrap();
            let n = db
                .execute(
                    "UPDATE clients SET client_type = 'hybrid' WHERE client_id = 'hybrid-app'",
                    [],
                )
                .unwrap();
            assert_eq!(n, 1);
            db.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) \
                 VALUES (9999, 'future', 0)",
                [],
            )
            .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_starts_and_serves_on_what_a_newer_release_wrote() {
    // Two instances of one deployment: one store, one master key.
    let settings = [("HELLOJOHN_MASTER_KEY", TEST_MASTER_KEY)];
    let newer = TestServer::with(&settings).await;
    let fx = newer.fixture().await;
    newer.register(&fx, "ada@example.com").await;
    newer.add_client(&fx.tenant, "hybrid-app").await;
    // A grant type of a newer release on the client the user signs in with.
    let changes = store::ClientChanges {
        grant_types: Some(
            ["authorization_code", "refresh_token", "urn:future"]
                .map(String::from)
                .to_vec(),
        ),
        ..Default::default()
    };
    newer
        .store()
        .update_client(fx.tenant.id, fx.client_id(), changes, None)
        .await
        .unwrap()
        .unwrap();
    write_newer_rows(&newer).await;

    // The rollback: this release starts on that schema and those rows (what `hj serve` checks
    // first passes; the embedded store is not migrated over a newer schema), with a setting it
    // does not know in its environment, and serves sign-in and refresh.
    engine::prepare_store(newer.store().as_ref()).await.unwrap();
    let mut with_future = settings.to_vec();
    with_future.push(("HELLOJOHN_FUTURE_SETTING", "1"));
    let old = TestServer::with_options(
        &with_future,
        StartOptions {
            store: Some(newer.store()),
            ..Default::default()
        },
    )
    .await;
    let (status, body) = old.login(&fx, "ada@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let refresh = body["refresh_token"].as_str().unwrap();
    let (status, body) = old.refresh(fx.client_id(), refresh).await;
    assert_eq!(status, 200, "{body}");
    // The key of the unknown algorithm is not published; the known ones are.
    let (status, jwks) =
        crate::support::status_and_json(old.get("/.well-known/jwks.json").await).await;
    assert_eq!(status, 200);
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(!kids.contains(&"pq-future"), "{kids:?}");
    assert!(kids.len() >= 2, "{kids:?}");

    // A client of an unknown type is an unknown client here: a 400, not a fault.
    let hybrid = crate::support::Fixture {
        tenant: fx.tenant.clone(),
        client: store::Client {
            client_id: "hybrid-app".into(),
            ..fx.client.clone()
        },
    };
    let (status, body) = old.login(&hybrid, "ada@example.com", PASSWORD).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["detail"]["field"], "client_id", "{body}");

    let metrics = old.metrics().await;
    assert!(
        metrics.contains("# TYPE hellojohn_unknown_values_total counter"),
        "{metrics}"
    );
    for kind in ["signing_key_alg", "client_type", "setting"] {
        let series = format!("hellojohn_unknown_values_total{{kind=\"{kind}\"}}");
        let v = crate::support::metric(&metrics, &series).unwrap_or(0.0);
        assert!(v >= 1.0, "{series} = {v}");
    }
    old.stop().await;
    newer.stop().await;
}
