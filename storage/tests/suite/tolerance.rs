//! Tolerant readers: rows a newer release wrote, with kinds and values this release does not
//! know, never make a reader fail. Each is skipped, dropped to a default or read as absent (as
//! `storage/src/tolerant.rs` decides per value), and counted (`store::tolerance`).

use super::webhooks::{all_deliveries, draft, endpoint};
use super::*;
use store::{ChallengeKind, ClientType, IssuerMode, MfaChallenge, OutboxKind, SigningAlg};

/// Writes behind the store's back, as a newer release would: its migration widens the CHECKs
/// of the columns it adds values to, then it writes rows with those values.
#[allow(dead_code)] // each backend's test crate builds one of the variants
pub enum Raw {
    /// The SQLite database file (CHECKs are ignored on this connection instead).
    Sqlite(std::path::PathBuf),
    /// A direct URL of the PostgreSQL database.
    Postgres(String),
}

/// The CHECKs a newer release would widen (PostgreSQL names them; SQLite ignores them).
const CHECKS: [(&str, &str); 5] = [
    ("signing_keys", "signing_keys_alg_check"),
    ("clients", "clients_client_type_check"),
    ("clients", "clients_id_token_alg_check"),
    ("tenants", "tenants_issuer_mode_check"),
    ("webhook_deliveries", "webhook_deliveries_status_check"),
];

impl Raw {
    /// Runs `sql` (parameters `$1`, `$2`, ..., all text) and returns how many rows it changed.
    pub(super) async fn exec(&self, sql: &str, params: &[&str]) -> u64 {
        match self {
            Raw::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).expect("open the database");
                conn.busy_timeout(std::time::Duration::from_secs(10))
                    .expect("busy timeout");
                conn.execute_batch("PRAGMA ignore_check_constraints = ON")
                    .expect("pragma");
                let sql = sql.replace('$', "?");
                let n = conn
                    .execute(&sql, rusqlite::params_from_iter(params.iter()))
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                n as u64
            }
            Raw::Postgres(url) => {
                let client = testkit::pg::admin(url).await;
                let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                    .iter()
                    .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
                    .collect();
                client
                    .execute(sql, &params)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
        }
    }

    /// What a newer release's migration does before it writes its new values.
    async fn widen_checks(&self) {
        if let Raw::Postgres(_) = self {
            for (table, check) in CHECKS {
                self.exec(&format!("ALTER TABLE {table} DROP CONSTRAINT {check}"), &[])
                    .await;
            }
        }
    }
}

fn key(kid: &str, alg: SigningAlg) -> SigningKey {
    SigningKey {
        kid: kid.into(),
        alg,
        public_key: kid.as_bytes().to_vec(),
        private_key_encrypted: vec![9; 40],
        created_at: NOW,
        activates_at: NOW,
        retired_at: None,
        tenant_id: None,
    }
}

fn client(tenant: &Tenant, client_id: &str, grant_types: &[&str]) -> NewClient {
    NewClient {
        grant_types: grant_types.iter().map(|g| g.to_string()).collect(),
        ..NewClient::new(tenant.id, client_id, client_id)
    }
}

pub async fn tolerant_readers(store: Arc<dyn Store>, raw: Raw) {
    migrated(&store).await;
    raw.widen_checks().await;
    let count = store::tolerance::count;

    // A signing key of an algorithm this release does not know is skipped: the others load.
    store
        .insert_signing_key_if_none(key("ed-1", SigningAlg::EdDsa))
        .await
        .expect("EdDSA key");
    store
        .insert_signing_key_if_none(key("pq-1", SigningAlg::Rs256))
        .await
        .expect("the key to relabel");
    let n = raw
        .exec(
            "UPDATE signing_keys SET alg = 'ML-DSA-65' WHERE kid = $1",
            &["pq-1"],
        )
        .await;
    assert_eq!(n, 1);
    let before = count("signing_key_alg");
    let kids: Vec<String> = store
        .list_signing_keys()
        .await
        .expect("a list with an unknown key")
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, ["ed-1"]);
    assert!(count("signing_key_alg") > before);
    // This release still sees that it has no RS256 key and creates one beside it.
    let active = store
        .insert_signing_key_if_none(key("rs-1", SigningAlg::Rs256))
        .await
        .expect("RS256 key beside the unknown one");
    assert_eq!(
        active.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
        ["rs-1"]
    );

    // A tenant in an issuer mode this release does not know reads in the default mode.
    let acme = tenant(&store, "acme").await;
    let n = raw
        .exec(
            "UPDATE tenants SET issuer_mode = 'federated' WHERE slug = $1",
            &["acme"],
        )
        .await;
    assert_eq!(n, 1);
    let before = count("issuer_mode");
    let found = store
        .find_tenant("acme")
        .await
        .expect("find")
        .expect("acme");
    assert_eq!(found.issuer_mode, IssuerMode::Global);
    assert_eq!(store.list_tenants().await.expect("list").len(), 1);
    assert!(count("issuer_mode") >= before + 2);

    // A grant type this release does not know is kept (every flow asks for a grant it knows by
    // name, so it grants nothing here); an unknown token algorithm reads as the default.
    let grants = ["authorization_code", "urn:future"];
    store
        .create_client(client(&acme, "future-grants", &grants), NOW, None)
        .await
        .expect("client with a future grant type");
    let n = raw
        .exec(
            "UPDATE clients SET id_token_alg = 'ES256' WHERE client_id = $1",
            &["future-grants"],
        )
        .await;
    assert_eq!(n, 1);
    let before = count("client_alg");
    let future = store
        .find_client(acme.id, "future-grants")
        .await
        .expect("find")
        .expect("the client with a future grant type and algorithm");
    assert_eq!(future.grant_types, grants);
    assert_eq!(future.id_token_alg, None);
    assert!(count("client_alg") > before);

    // A client of a type this release does not know is absent (no lookup, list or update
    // finds it): reading it as public or confidential would drop one of its requirements.
    store
        .create_client(
            client(&acme, "hybrid-app", &["authorization_code"]),
            NOW,
            None,
        )
        .await
        .expect("client to retype");
    let n = raw
        .exec(
            "UPDATE clients SET client_type = 'hybrid' WHERE client_id = $1",
            &["hybrid-app"],
        )
        .await;
    assert_eq!(n, 1);
    let before = count("client_type");
    assert_eq!(
        store
            .find_client(acme.id, "hybrid-app")
            .await
            .expect("find"),
        None
    );
    let listed: Vec<String> = store
        .list_clients(Some(acme.id))
        .await
        .expect("a list with an unknown client type")
        .into_iter()
        .map(|c| c.client_id)
        .collect();
    assert_eq!(listed, ["future-grants"]);
    assert_eq!(store.list_clients(None).await.expect("all").len(), 1);
    assert!(store
        .find_clients_by_client_id("hybrid-app")
        .await
        .expect("by client_id")
        .is_empty());
    let changes = store::ClientChanges {
        client_type: Some(ClientType::Public),
        ..Default::default()
    };
    assert_eq!(
        store
            .update_client(acme.id, "hybrid-app", changes, None)
            .await
            .expect("update"),
        None,
        "an update does not change a client it cannot read back"
    );
    assert!(count("client_type") >= before + 4);

    // An MFA challenge of a kind this release does not know is absent: nothing here can
    // complete it in its place.
    let (user, _) = register(&store, &acme, "ada@acme.test").await;
    let challenge = MfaChallenge {
        token_hash: new_hash(),
        user_id: user.id,
        tenant_id: acme.id,
        client_id: "webauthn-app".into(),
        kind: ChallengeKind::Tokens,
        failures: 0,
        expires_at: NOW + 300,
        completed_at: None,
        created_at: NOW,
    };
    store
        .insert_mfa_challenge(challenge.clone())
        .await
        .expect("challenge");
    let n = raw
        .exec(
            "UPDATE mfa_challenges SET kind = 'webauthn' WHERE client_id = $1",
            &["webauthn-app"],
        )
        .await;
    assert_eq!(n, 1);
    let before = count("challenge_kind");
    assert_eq!(
        store
            .find_mfa_challenge(challenge.token_hash)
            .await
            .expect("find"),
        None
    );
    assert!(count("challenge_kind") > before);

    // A webhook delivery in a status this release does not know is left out of lists and
    // lookups, and never claimed.
    let hook = endpoint(&store, &acme, &["user.created"]).await;
    store
        .record_event(draft("user.created", Some(acme.id), NOW))
        .await
        .expect("event");
    let deliveries = store
        .list_webhook_deliveries(all_deliveries())
        .await
        .expect("deliveries");
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].endpoint_id, hook.id);
    let id = deliveries[0].id.to_string();
    let n = raw
        .exec(
            "UPDATE webhook_deliveries SET status = 'cancelled' \
             WHERE CAST(id AS TEXT) = $1",
            &[&id],
        )
        .await;
    assert_eq!(n, 1);
    let before = count("outbox_status");
    assert!(store
        .list_webhook_deliveries(all_deliveries())
        .await
        .expect("a list with an unknown status")
        .is_empty());
    assert_eq!(
        store
            .get_webhook_delivery(deliveries[0].id)
            .await
            .expect("get"),
        None
    );
    assert!(count("outbox_status") >= before + 2);
    let claimed = store
        .claim(
            OutboxKind::Webhook,
            NOW * 1000 + 60_000,
            NOW * 1000 + 90_000,
            10,
        )
        .await
        .expect("claim");
    assert!(claimed.is_empty(), "{claimed:?}");
}
