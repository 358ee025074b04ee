//! The unauthenticated reads HelloJohn's JS SDK makes before sign-in: the password policy and
//! the sign-in providers.

use serde_json::json;

use crate::auth::assert_error;
use crate::support::{status_and_json, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_policy_is_the_one_register_enforces() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    for key in [fx.slug().to_string(), fx.tenant.id.to_string()] {
        let resp = srv
            .get(&format!("/v2/auth/password-policy?tenant_id={key}"))
            .await;
        assert_eq!(
            resp.headers()["cache-control"].to_str().unwrap(),
            "no-store"
        );
        let (status, body) = status_and_json(resp).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            json!({
                "configured": true,
                "tenant_id": fx.tenant.id.to_string(),
                "min_length": 8,
                "max_length": 128,
                "require_uppercase": true,
                "require_lowercase": true,
                "require_numbers": true,
                "require_symbols": false,
                "max_history": 0,
                "breach_detection": false,
                "common_password": false,
                "personal_info": false,
            })
        );
    }
    // What it announces is what register refuses: 7 characters, and no digit.
    for (password, rule) in [("Abcdef1", "min_length"), ("Abcdefgh", "digit")] {
        let resp = srv
            .post_json(
                "/v2/auth/register",
                &json!({ "tenant_id": fx.slug(), "client_id": fx.client_id(),
                         "email": "p@example.com", "password": password }),
            )
            .await;
        let (status, body) = status_and_json(resp).await;
        assert_error(status, &body, 400, "BAD_REQUEST");
        assert!(body.to_string().contains(rule), "{body}");
    }

    let (status, body) = status_and_json(srv.get("/v2/auth/password-policy").await).await;
    assert_error(status, &body, 400, "BAD_REQUEST");
    assert_eq!(body["detail"]["field"], "tenant_id");
    let (status, body) =
        status_and_json(srv.get("/v2/auth/password-policy?tenant_id=nope").await).await;
    assert_error(status, &body, 400, "BAD_REQUEST");
    let resp = srv
        .client
        .post(srv.url("/v2/auth/password-policy"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_is_an_empty_list_for_a_known_tenant() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    for path in [
        "/v2/auth/providers".to_string(),
        format!(
            "/v2/auth/providers?client_id={}&tenant_id={}",
            fx.client_id(),
            fx.slug()
        ),
    ] {
        let (status, body) = status_and_json(srv.get(&path).await).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body, json!({ "providers": [] }), "{path}");
    }
    let (status, body) = status_and_json(srv.get("/v2/auth/providers?tenant_id=nope").await).await;
    assert_error(status, &body, 400, "BAD_REQUEST");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_profile_merges_scalar_fields_into_the_user_metadata() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    let resp = srv
        .post_json(
            "/v2/auth/register",
            &json!({ "tenant_id": fx.slug(), "client_id": fx.client_id(),
                     "email": "ada@example.com", "password": crate::support::PASSWORD,
                     "custom_fields": { "plan": "free", "team": "r&d" } }),
        )
        .await;
    let (status, reg) = status_and_json(resp).await;
    assert_eq!(status, 200, "{reg}");
    let access = crate::auth::str_of(&reg, "access_token").to_string();
    let post = |body: serde_json::Value| {
        srv.client
            .post(srv.url("/v2/auth/complete-profile"))
            .bearer_auth(&access)
            .json(&body)
            .send()
    };
    let (status, body) = status_and_json(
        post(json!({ "custom_fields": { "plan": "pro", "age": 36, "ok": true } }))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["custom_fields"],
        json!({ "plan": "pro", "team": "r&d", "age": 36, "ok": true })
    );
    let (_, info) = status_and_json(srv.get_bearer("/userinfo", &access).await).await;
    assert_eq!(info["custom_fields"]["plan"], "pro", "{info}");

    // Bad input: 400 naming the field, nothing written.
    for bad in [
        json!({}),
        json!({ "custom_fields": [] }),
        json!({ "custom_fields": {} }),
        json!({ "custom_fields": { "nested": { "a": 1 } } }),
        json!({ "custom_fields": { "x": "y".repeat(1025) } }),
        json!({ "custom_fields": { "k".repeat(65): "v" } }),
    ] {
        let (status, body) = status_and_json(post(bad.clone()).await.unwrap()).await;
        assert_error(status, &body, 400, "BAD_REQUEST");
        assert_eq!(body["detail"]["field"], "custom_fields", "{bad}");
    }
    // Past the metadata size limit (4096 bytes) in several steps: refused, the rest kept.
    for i in 0..3 {
        let fields: serde_json::Map<String, serde_json::Value> = (0..3)
            .map(|j| (format!("f{i}{j}"), json!("v".repeat(1000))))
            .collect();
        let (status, body) =
            status_and_json(post(json!({ "custom_fields": fields })).await.unwrap()).await;
        if i < 1 {
            assert_eq!(status, 200, "{body}");
        } else {
            assert_error(status, &body, 400, "BAD_REQUEST");
        }
    }
    let (_, info) = status_and_json(srv.get_bearer("/userinfo", &access).await).await;
    assert_eq!(info["custom_fields"]["plan"], "pro");
    assert!(info["custom_fields"].get("f10").is_none(), "{info}");
    // Without a token: 401.
    let resp = srv
        .post_json(
            "/v2/auth/complete-profile",
            &json!({ "custom_fields": { "a": "b" } }),
        )
        .await;
    assert_eq!(resp.status(), 401);
    srv.stop().await;
}
