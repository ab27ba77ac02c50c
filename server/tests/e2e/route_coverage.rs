//! Every route either is public by design or reaches an authorization decision.
//!
//! The routes come from the served OpenAPI document, which is generated from the router
//! itself, so a route added later is enumerated here without anyone remembering to. Each
//! is called as a signed-in user who belongs to nothing, with path parameters filled in
//! and the request body's documented example; the `x-concord-authz` header tells whether
//! `rbac::authorize` was reached.

use std::collections::BTreeSet;

use concord::http::PUBLIC_ROUTES;
use reqwest::Method;
use serde_json::Value;

use crate::harness::{spawn_app, Backend, PASSWORD};

fn example_body(doc: &Value, op: &Value) -> Option<Value> {
    let schema = &op["requestBody"]["content"]["application/json"]["schema"];
    if schema.is_null() {
        return None;
    }
    let schema = match schema["$ref"].as_str() {
        Some(r) => &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
        None => schema,
    };
    Some(schema["example"].clone())
        .filter(|e| !e.is_null())
        .or(Some(serde_json::json!({})))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_public_or_authorized() {
    let app = spawn_app(Backend::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    app.create_user(&admin, "outsider@example.org", "Outsider")
        .await;

    let doc = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await
        .expect(200)
        .clone();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "OpenAPI 3.1 expected"
    );

    let mut seen_public = BTreeSet::new();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().unwrap() {
            let Ok(m) = Method::from_bytes(method.to_uppercase().as_bytes()) else {
                continue;
            };
            let documented_public = op["security"].is_null();
            let listed_public = PUBLIC_ROUTES
                .iter()
                .any(|(pm, pp)| pm.eq_ignore_ascii_case(method) && pp == path);
            assert_eq!(
                documented_public, listed_public,
                "{method} {path}: the OpenAPI security and PUBLIC_ROUTES disagree"
            );
            if listed_public {
                seen_public.insert((m.to_string(), path.clone()));
                continue;
            }
            let concrete = path
                .split('/')
                .map(|seg| {
                    if seg.starts_with('{') {
                        uuid::Uuid::now_v7().to_string()
                    } else {
                        seg.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            let body = example_body(&doc, op);
            assert!(
                op["requestBody"]["content"]["application/json"].is_null() || body.as_ref().is_some_and(|b| b.as_object().is_some_and(|o| !o.is_empty())),
                "{method} {path}: document an example JSON request body so this test can reach the handler"
            );
            // A fresh session per route: one route signs out, another revokes sessions.
            let outsider = app.login("outsider@example.org", PASSWORD).await;
            let reply = app
                .call(m.clone(), &concrete, Some(&outsider.access), body)
                .await;
            let decision = reply
                .headers
                .get("x-concord-authz")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("missing");
            assert!(
                decision == "allowed" || decision == "denied",
                "{method} {path} answered {} without an authorization decision ({decision}): {}",
                reply.status,
                reply.body
            );
            checked += 1;
        }
    }
    // The served document itself is public and not described by itself.
    seen_public.insert(("GET".into(), "/api/v1/openapi.json".into()));
    let listed: BTreeSet<_> = PUBLIC_ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        seen_public, listed,
        "PUBLIC_ROUTES lists a route that does not exist"
    );
    assert!(checked >= 20, "only {checked} routes checked");
}
