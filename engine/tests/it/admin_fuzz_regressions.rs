//! What `scripts/admin-fuzz.sh` (schemathesis against the OpenAPI document) found in the admin
//! API, each kept here as it was found.

use serde_json::json;

use crate::admin::{mint, Admin};
use crate::support::TestServer;

async fn root(s: &TestServer) -> Admin<'_> {
    let (_, key) = mint(s, "root", "admin").await;
    Admin { s, key }
}

/// A purge `before` year 3,170,843 purged everything and answered `before` as
/// "3170843-11-07T09:46:39Z", which is no RFC 3339 time: times beyond what RFC 3339 can
/// write (years 0000-9999) are refused, as bodies and as query parameters.
#[tokio::test]
async fn times_rfc3339_cannot_write_are_refused() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    let root = root(&s).await;
    let base = format!("/v2/admin/tenants/{}/audit-logs", fx.slug());
    for before in [
        json!(99_999_999_999_999i64),
        json!(i64::MIN),
        json!("-99999999999999"),
    ] {
        let a = root
            .post(&format!("{base}/purge"), json!({ "before": before }))
            .await;
        assert_eq!(a.status, 400, "{before}: {}", a.body);
        assert_eq!(a.body["detail"]["field"], "before");
    }
    let a = root.get(&format!("{base}?to=99999999999999")).await;
    assert_eq!((a.status, &a.body["detail"]["field"]), (400, &json!("to")));
    let a = root
        .post(
            &format!("{base}/purge"),
            json!({ "before": 253_402_300_799i64 }),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["before"], "9999-12-31T23:59:59Z");
}
