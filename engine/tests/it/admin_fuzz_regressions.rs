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

/// `?limit=&limit=oops` was read as its first, empty value (the default page): a parameter
/// named twice is refused, whichever of its values a proxy or a log would have read.
#[tokio::test]
async fn an_audit_query_parameter_named_twice_is_refused() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    let root = root(&s).await;
    let base = format!("/v2/admin/tenants/{}/audit-logs", fx.slug());
    for path in [
        "/v2/admin/audit-logs?limit=&limit=oops".to_string(),
        format!("{base}?limit=5&limit=6"),
        format!("{base}/export?action=a&action=b"),
        format!("{base}?from=1&from=2"),
    ] {
        let a = root.get(&path).await;
        assert_eq!(a.status, 400, "{path}: {}", a.body);
        assert_eq!(a.body["code"], "BAD_REQUEST");
    }
    assert_eq!(
        root.get(&format!("{base}?limit=5&action=x")).await.status,
        200
    );
}

/// `?limit=` was read as no limit (the default page) where the document says an integer: an
/// empty filter (`?action=`) is still no filter, but an empty `limit` is refused.
#[tokio::test]
async fn an_empty_audit_limit_is_refused() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    let root = root(&s).await;
    let base = format!("/v2/admin/tenants/{}/audit-logs", fx.slug());
    for path in [
        format!("{base}?limit="),
        format!("{base}?limit=%20"),
        "/v2/admin/audit-logs?limit=".into(),
    ] {
        let a = root.get(&path).await;
        assert_eq!(
            (a.status, &a.body["detail"]["field"]),
            (400, &json!("limit")),
            "{path}"
        );
    }
    let a = root
        .get(&format!("{base}?action=&actor=&from=&cursor="))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
}

/// `[null, null]` was taken as `{"reason": null, "duration": null}` (a derived `Deserialize`
/// reads a struct from an array of its fields in order) and revoked everything, disabled a
/// user, rotated keys: an admin body that is not an object is refused, and so is a settings
/// `security` that is not one.
#[tokio::test]
async fn an_admin_body_that_is_no_object_is_refused() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    let root = root(&s).await;
    let t = format!("/v2/admin/tenants/{}", fx.slug());
    for path in [
        format!("{t}/tokens/revoke-all"),
        format!("{t}/sessions/revoke-all"),
        format!("{t}/keys/rotate"),
    ] {
        let a = root.post(&path, json!([null, null])).await;
        assert_eq!(a.status, 400, "{path}: {}", a.body);
        assert_eq!(a.body["code"], "INVALID_JSON", "{path}");
    }
    let a = root
        .call(
            http::Method::PATCH,
            &format!("{t}/settings"),
            Some(json!({"security": [null, true]})),
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.body);
    let a = root
        .post(&format!("{t}/tokens/revoke-all"), json!({}))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
}

/// `PUT .../settings` with an `If-Match` naming no version and no body answered 412, before
/// the body was read: a malformed request is 400 whatever its precondition.
#[tokio::test]
async fn a_malformed_settings_put_is_400_before_its_precondition() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    let root = root(&s).await;
    let url = s.url(&format!("/v2/admin/tenants/{}/settings", fx.slug()));
    let put = |body: &'static str, if_match: &'static str| {
        s.client
            .put(url.clone())
            .header("x-api-key", root.key.as_str())
            .header("content-type", "application/json")
            .header("if-match", if_match)
            .body(body)
            .send()
    };
    assert_eq!(put("", "").await.unwrap().status(), 400);
    assert_eq!(
        put(r#"{"sessionLifetimeSeconds": 1}"#, "\"0\"")
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(put("{}", "nonsense").await.unwrap().status(), 412);
}

/// `?page=` (blank) was read as absent, the first page: a page number that is not one is
/// refused, as `?page=x` is.
#[tokio::test]
async fn a_blank_page_number_is_refused() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    let root = root(&s).await;
    let t = format!("/v2/admin/tenants/{}", fx.slug());
    for path in [
        format!("{t}/users?page="),
        format!("{t}/tokens?page_size="),
        format!("{t}/sessions?page=%20"),
    ] {
        let a = root.get(&path).await;
        assert_eq!(a.status, 400, "{path}: {}", a.body);
    }
    let a = root.get(&format!("{t}/users?page=1&status=")).await;
    assert_eq!(a.status, 200, "{}", a.body);
}
