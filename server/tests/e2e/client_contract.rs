//! The web client's contract with the server: `client-web/openapi.json` is the snapshot of the
//! OpenAPI document the client's API and live-frame types are generated from
//! (`client-web/src/generated/api.d.ts`). The served document must equal it, so a server
//! change that alters a route, a body or a hub frame fails here until the snapshot and the
//! generated types are refreshed (`npm run api:update` in client-web), and `tsc` then shows
//! every client use the change breaks. `concord openapi`, which that command runs, must print
//! the same document. That the generated file matches the snapshot is checked by the client
//! build (`npm run api:check`).

use std::path::PathBuf;
use std::process::Command;

use reqwest::Method;
use serde_json::Value;

use crate::harness::both_backends;

fn snapshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../client-web/openapi.json")
}

/// JSON pointers where `a` and `b` differ (at most `limit`).
fn differences(a: &Value, b: &Value, at: &str, out: &mut Vec<String>, limit: usize) {
    if out.len() >= limit || a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let here = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => differences(p, q, &here, out, limit),
                    (Some(_), None) => out.push(format!("{here}: only in the document")),
                    (None, Some(_)) => out.push(format!("{here}: only in the snapshot")),
                    (None, None) => {}
                }
                if out.len() >= limit {
                    return;
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                differences(p, q, &format!("{at}/{i}"), out, limit);
            }
        }
        _ => out.push(format!("{at}: document {a}, snapshot {b}")),
    }
}

fn assert_same(what: &str, actual: &Value, snapshot: &Value) {
    let mut diff = Vec::new();
    differences(actual, snapshot, "", &mut diff, 20);
    assert!(
        diff.is_empty(),
        "{what} differs from client-web/openapi.json, which the web client's types are \
         generated from; run `npm run api:update` in client-web, then `npm run build` and fix \
         what no longer type-checks:\n  {}",
        diff.join("\n  ")
    );
}

both_backends! {
    async fn served_openapi_document_is_the_client_snapshot(app) {
        let served = app
            .call(Method::GET, "/api/v1/openapi.json", None, None)
            .await
            .expect(200)
            .clone();
        let text = std::fs::read_to_string(snapshot_path()).expect("client-web/openapi.json");
        let snapshot: Value = serde_json::from_str(&text).expect("the snapshot is JSON");
        assert_same("the served OpenAPI document", &served, &snapshot);

        // Generated clients key operations by id: two routes with one id would share types.
        let mut seen = std::collections::BTreeMap::new();
        for (path, item) in served["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let Some(id) = op["operationId"].as_str() else {
                    continue;
                };
                if let Some(other) = seen.insert(id.to_owned(), format!("{method} {path}")) {
                    panic!("operationId {id} is used by {other} and by {method} {path}: give one an operation_id");
                }
            }
        }
    }
}

#[test]
fn concord_openapi_prints_the_served_document() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_concord"));
    cmd.arg("openapi")
        .current_dir(dir.path())
        .env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("CONCORD_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().expect("concord runs");
    assert!(
        out.status.success(),
        "concord openapi failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).expect("concord openapi prints JSON");
    let text = std::fs::read_to_string(snapshot_path()).expect("client-web/openapi.json");
    let snapshot: Value = serde_json::from_str(&text).expect("the snapshot is JSON");
    assert_same("`concord openapi`", &printed, &snapshot);
    // The snapshot is the command's output byte for byte, so regenerating leaves no diff.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        text,
        "client-web/openapi.json is not `concord openapi`'s output as printed"
    );
}
