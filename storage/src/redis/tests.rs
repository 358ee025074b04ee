use super::sessions::WireSession;
use super::*;
use crate::model::{Session, User};

#[test]
fn cluster_urls_become_node_urls() {
    assert_eq!(
        cluster_nodes("redis+cluster://n1:6379,n2:6380,n3/0").unwrap(),
        ["redis://n1:6379/", "redis://n2:6380/", "redis://n3:6379/"]
    );
    assert_eq!(
        cluster_nodes("rediss+cluster://u:p%40ss@a:1,[::1]:2").unwrap(),
        ["rediss://u:p%40ss@a:1/", "rediss://u:p%40ss@[::1]:2/"]
    );
    assert!(cluster_nodes("redis+cluster://a:1,b:2/3").is_err());
    assert!(cluster_nodes("redis+cluster:///0").is_err());
}

#[test]
fn targets_by_scheme() {
    let o = RedisOptions::default();
    assert!(matches!(
        target("redis://127.0.0.1:6379/0", &o),
        Ok(Target::Single(_))
    ));
    assert!(matches!(
        target("rediss://h:6380", &o),
        Ok(Target::Single(_))
    ));
    assert!(matches!(
        target("redis+cluster://a:1,b:2/0", &o),
        Ok(Target::Cluster(_))
    ));
    assert!(matches!(
        target("rediss+cluster://a:1,b:2", &o),
        Ok(Target::Cluster(_))
    ));
    let err = target("http://user:hunter2@h", &o)
        .err()
        .unwrap()
        .to_string();
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn hex_round_trip() {
    let id: TokenHash = core::array::from_fn(|i| (i * 7) as u8);
    let mut back = [0u8; 32];
    assert!(decode_hex(&hex(&id), &mut back));
    assert_eq!(back, id);
    assert!(!decode_hex("zz", &mut back));
}

#[test]
fn sessions_survive_the_wire() {
    let s = Session {
        user: User {
            id: Uuid::now_v7(),
            tenant_id: Uuid::now_v7(),
            email: "ada@example.com".into(),
            email_verified: false,
            name: Some("Ada".into()),
            custom_fields: crate::Metadata::from_json(serde_json::json!({"plan": "pro"})),
            app_metadata: crate::Metadata::from_json(serde_json::json!({"role": "admin"})),
            disabled: false,
            disabled_reason: None,
            mfa_enabled: false,
            created_at: 5,
        },
        client_id: "web".into(),
        created_at: 10,
        expires_at: 20,
        revoked_at: None,
        amr: vec!["pwd".into(), "otp".into(), "mfa".into()],
    };
    let json = serde_json::to_string(&WireSession::from_session(&s)).unwrap();
    let back = serde_json::from_str::<WireSession>(&json)
        .unwrap()
        .into_session();
    assert_eq!(back, s);
}

/// Entries cached by an instance that predates app metadata (during a rolling update)
/// still read, with empty app metadata.
#[test]
fn sessions_cached_before_app_metadata_still_read() {
    let old = serde_json::json!({
        "uid": Uuid::now_v7(), "tid": Uuid::now_v7(), "email": "ada@example.com",
        "email_verified": false, "name": null, "custom": {"plan": "pro"}, "disabled": false,
        "user_created_at": 5, "client_id": "web", "created_at": 10, "expires_at": 20,
    });
    let back = serde_json::from_value::<WireSession>(old)
        .unwrap()
        .into_session();
    assert_eq!(back.user.app_metadata.as_json(), &serde_json::json!({}));
    assert_eq!(
        back.user.custom_fields.as_json(),
        &serde_json::json!({"plan": "pro"})
    );
}

/// Property tests (see docs/testing.md): any `HELLOJOHN_REDIS_URL` is taken apart or refused,
/// and any session JSON read back from Redis decodes or is refused, never a panic.
mod props {
    use proptest::prelude::*;

    use super::{cluster_nodes, target, RedisOptions, WireSession};

    fn url() -> impl Strategy<Value = String> {
        let scheme = prop::sample::select(
            &[
                "redis://",
                "rediss://",
                "redis+cluster://",
                "rediss+cluster://",
                "redis:/",
                "http://",
                "",
            ][..],
        );
        let user = prop::sample::select(&["", "u:p@", ":p@", "@", "a@b@"][..]);
        let hosts = prop::collection::vec(
            prop::sample::select(
                &[
                    "h",
                    "h:6379",
                    "[::1]",
                    "[::1]:7000",
                    "h:",
                    ":",
                    "h:x",
                    "",
                    " ",
                ][..],
            ),
            0..4,
        );
        let tail = prop::sample::select(
            &[
                "",
                "/",
                "/0",
                "/1",
                "/x",
                "?a=b",
                "#f",
                "/0?protocol=resp3",
                "//",
            ][..],
        );
        (scheme, user, hosts, tail).prop_map(|(s, u, h, t)| format!("{s}{u}{}{t}", h.join(",")))
    }

    proptest! {
        #![proptest_config({
            let mut c = ProptestConfig::default();
            if std::env::var_os("PROPTEST_CASES").is_none() { c.cases = 512; }
            c
        })]

        #[test]
        fn redis_urls_parse_or_are_refused(text in prop_oneof![any::<String>(), url()]) {
            if let Ok(nodes) = cluster_nodes(&text) {
                prop_assert!(!nodes.is_empty());
                for n in &nodes {
                    prop_assert!(n.starts_with("redis://") || n.starts_with("rediss://"), "{}", n);
                }
            }
            let _ = target(&text, &RedisOptions::default());
        }

        #[test]
        fn cached_sessions_decode_or_are_refused(json in prop_oneof![
            any::<String>(),
            prop::collection::vec(
                prop::sample::select(&[
                    "{", "}", "[", "]", ",", ":", "\"uid\"", "\"tid\"", "\"custom\"", "\"exp\"",
                    "\"00000000-0000-0000-0000-000000000000\"", "1", "-1", "null", "\"x\"",
                ][..]),
                0..40,
            )
            .prop_map(|t| t.concat()),
            (1usize..5_000).prop_map(|n| format!("{{\"custom\":{}1{}}}", "[".repeat(n), "]".repeat(n))),
        ]) {
            let _ = serde_json::from_str::<WireSession>(&json);
        }
    }
}
