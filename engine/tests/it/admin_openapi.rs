//! The OpenAPI document (`engine/src/admin/openapi.json`, served at `/v2/admin/openapi.json`)
//! held to the code: the admin route table and the public router against its paths and
//! methods, both ways, so that a route without documentation or documentation without a route
//! fails here; the error answers the admin API's prologue can give, on every operation; and
//! the wire types' JSON against their schemas (`admin_openapi_types.rs`). What this cannot see
//! (what a handler answers when) `scripts/admin-fuzz.sh` checks against a live server.

use std::collections::BTreeSet;

use engine::admin::routes::{AdminRoute, Reach};
use engine::router::Route;
use http::Method;
use serde_json::Value;

use crate::support::TestServer;

const DOCUMENT: &str = include_str!("../../src/admin/openapi.json");

pub fn document() -> Value {
    serde_json::from_str(DOCUMENT).expect("openapi.json is JSON")
}

/// The methods of an operation object, as the route tables name them.
const METHODS: [(&str, Method); 5] = [
    ("get", Method::GET),
    ("post", Method::POST),
    ("put", Method::PUT),
    ("patch", Method::PATCH),
    ("delete", Method::DELETE),
];

/// The `{name}`s of a path template, in order.
fn template_params(template: &str) -> Vec<String> {
    template
        .split(['{', '}'])
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Follows a local `$ref`.
pub fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling $ref {r}")),
        None => v,
    }
}

/// The path parameters an operation declares (its own and its path item's).
fn declared_path_params(doc: &Value, item: &Value, op: &Value) -> Vec<String> {
    [item.get("parameters"), op.get("parameters")]
        .into_iter()
        .flatten()
        .flat_map(|ps| ps.as_array().into_iter().flatten())
        .map(|p| resolve(doc, p))
        .filter(|p| p["in"] == "path")
        .map(|p| p["name"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn every_admin_route_and_method_is_an_operation_and_every_admin_operation_a_route() {
    let doc = document();
    let paths = doc["paths"].as_object().expect("paths");
    let mut wrong = Vec::new();
    for route in AdminRoute::ALL {
        let t = route.template();
        let item = &paths.get(t).cloned().unwrap_or(Value::Null);
        for (name, method) in &METHODS {
            match (route.allows(method), item.get(*name)) {
                (true, None) => wrong.push(format!("{} {t}: a route, not documented", name)),
                (false, Some(_)) => wrong.push(format!("{} {t}: documented, not a route", name)),
                (true, Some(op)) => {
                    let mut declared = declared_path_params(&doc, item, op);
                    declared.sort();
                    let mut wanted = template_params(t);
                    wanted.sort();
                    if declared != wanted {
                        wrong.push(format!("{name} {t}: path parameters {declared:?}"));
                    }
                }
                (false, None) => {}
            }
        }
    }
    for path in paths.keys().filter(|p| p.starts_with("/v2/admin")) {
        if !AdminRoute::ALL.iter().any(|r| r.template() == path) {
            wrong.push(format!("{path}: documented, not in AdminRoute::ALL"));
        }
    }
    assert!(
        wrong.is_empty(),
        "openapi.json and the route table differ:\n{}",
        wrong.join("\n")
    );
}

/// The templates of the public router, read from `router.rs`'s `routes!` table (it has no list
/// of its own to iterate).
fn public_templates() -> Vec<String> {
    let source = include_str!("../../src/router.rs");
    let table = source
        .split("routes! {")
        .nth(1)
        .and_then(|rest| rest.split("\n}").next())
        .expect("router.rs has its routes! table");
    table
        .lines()
        .filter_map(|line| line.split_once(" => \"")?.1.split_once('"'))
        .map(|(template, _)| template.to_string())
        .collect()
}

/// A path of the template with a sample value in each parameter.
fn sample(template: &str) -> String {
    template.replace("{slug}", "acme")
}

#[test]
fn every_public_route_and_method_is_an_operation_and_every_public_path_a_route() {
    let doc = document();
    let paths = doc["paths"].as_object().expect("paths");
    let templates = public_templates();
    assert!(
        templates.len() > 30,
        "router.rs's table was not read: {templates:?}"
    );
    let mut wrong = Vec::new();
    for t in &templates {
        let route = Route::from_path(&sample(t));
        assert_ne!(route, Route::Unmatched, "{t}");
        let item = paths.get(t.as_str()).cloned().unwrap_or(Value::Null);
        for (name, method) in &METHODS {
            match (route.allows(method), item.get(*name).is_some()) {
                (true, false) => wrong.push(format!("{name} {t}: a route, not documented")),
                (false, true) => wrong.push(format!("{name} {t}: documented, not a route")),
                _ => {}
            }
        }
    }
    for path in paths.keys().filter(|p| !p.starts_with("/v2/admin")) {
        if !templates.contains(path) {
            wrong.push(format!("{path}: documented, not a route of router.rs"));
        }
    }
    assert!(
        wrong.is_empty(),
        "openapi.json and router.rs differ:\n{}",
        wrong.join("\n")
    );
}

/// The statuses an admin operation must document: what its prologue (`admin::dispatch`) and
/// its input can answer, whatever the handler does.
fn required_statuses(
    route: AdminRoute,
    op: &Value,
    doc: &Value,
    item: &Value,
) -> Vec<&'static str> {
    // Every request is counted against the per-IP limit and has its body read.
    let mut wanted = vec!["413", "429"];
    if route.reach() != Reach::Public {
        wanted.extend(["401", "403", "503"]);
    }
    if !declared_path_params(doc, item, op).is_empty() {
        // An unknown id, or a parameter too long to be one (`routes::MAX_PARAM`).
        wanted.push("404");
    }
    if op.get("requestBody").is_some() {
        wanted.extend(["400", "415"]);
    }
    wanted
}

#[test]
fn admin_operations_document_their_credentials_and_their_prologues_errors() {
    let doc = document();
    let mut wrong = Vec::new();
    for route in AdminRoute::ALL {
        let t = route.template();
        let item = &doc["paths"][t];
        for (name, method) in &METHODS {
            if !route.allows(method) {
                continue;
            }
            let op = &item[*name];
            let security = op["security"].as_array().map(Vec::len);
            let public = route.reach() == Reach::Public;
            if public != (security == Some(0)) {
                wrong.push(format!(
                    "{name} {t}: security {} for reach {:?}",
                    op["security"],
                    route.reach()
                ));
            }
            let responses = op["responses"].as_object().cloned().unwrap_or_default();
            for status in required_statuses(*route, op, &doc, item) {
                if !responses.contains_key(status) {
                    wrong.push(format!("{name} {t}: no {status} answer"));
                }
            }
            if !responses.keys().any(|s| s.starts_with('2')) {
                wrong.push(format!("{name} {t}: no success answer"));
            }
            for (status, r) in &responses {
                let r = resolve(&doc, r);
                let error = status.starts_with('4') || status.starts_with('5');
                let schema = &r["content"]["application/json"]["schema"];
                if error
                    && schema.get("$ref").and_then(Value::as_str)
                        != Some("#/components/schemas/Error")
                {
                    wrong.push(format!("{name} {t}: {status} is not an Error"));
                }
            }
            // A permissive answer (`{"type": "object"}`) is for routes not served yet, which
            // say so; the document itself is any object.
            let pending = op.get("x-hellojohn-status").and_then(Value::as_str) == Some("pending");
            if !pending && *route != AdminRoute::OpenApi {
                for (status, r) in responses.iter().filter(|(s, _)| s.starts_with('2')) {
                    let schema = &resolve(&doc, r)["content"]["application/json"]["schema"];
                    if *schema == serde_json::json!({"type": "object"}) {
                        wrong.push(format!("{name} {t}: {status} is permissive, not pending"));
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_schema_reference_resolves_and_every_schema_is_used() {
    let doc = document();
    let mut refs = BTreeSet::new();
    fn walk(v: &Value, refs: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                    refs.insert(r.to_string());
                }
                m.values().for_each(|v| walk(v, refs));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, refs)),
            _ => {}
        }
    }
    walk(&doc, &mut refs);
    for r in &refs {
        assert!(
            doc.pointer(r.trim_start_matches('#')).is_some(),
            "dangling {r}"
        );
    }
    for kind in ["schemas", "responses", "parameters"] {
        for name in doc["components"][kind].as_object().expect(kind).keys() {
            let r = format!("#/components/{kind}/{name}");
            assert!(refs.contains(&r), "{r} is not used");
        }
    }
}

#[tokio::test]
async fn the_document_is_served_to_anyone_as_it_is_in_the_repository() {
    let s = TestServer::start().await;
    let resp = s.get("/v2/admin/openapi.json").await;
    assert_eq!(resp.status(), 200);
    let headers = resp.headers().clone();
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "public, max-age=300");
    let body = resp.bytes().await.unwrap();
    assert_eq!(&body[..], DOCUMENT.as_bytes());
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    // A bad credential changes nothing: the route asks for none.
    let resp = s
        .client
        .get(s.url("/v2/admin/openapi.json"))
        .header("x-api-key", "nonsense")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}
