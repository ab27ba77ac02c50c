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

/// A value of the parameter's documented type, to show the handler accepts the name.
fn sample_value(param: &Value) -> String {
    let schema = &param["schema"];
    let ty = schema["type"]
        .as_str()
        .or_else(|| schema["type"].as_array().and_then(|t| t[0].as_str()))
        .unwrap_or("string");
    match (ty, schema["format"].as_str()) {
        ("integer" | "number", _) => "1".into(),
        ("boolean", _) => "true".into(),
        (_, Some("uuid")) => uuid::Uuid::now_v7().to_string(),
        (_, Some("date-time")) => "2024-01-01T00:00:00Z".into(),
        _ => "x".into(),
    }
}

/// Generated clients build requests from the declared parameters: a path parameter must be a
/// `{name}` of the route's path (and every `{name}` declared as one), a query parameter must be
/// declared `in: query` and be a name the handler reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_declared_parameter_matches_the_router() {
    let app = spawn_app(Backend::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let doc = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await
        .expect(200)
        .clone();
    let mut problems = Vec::new();
    let mut queries = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let template: BTreeSet<String> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_owned)
            .collect();
        for (method, op) in item.as_object().unwrap() {
            let Ok(m) = Method::from_bytes(method.to_uppercase().as_bytes()) else {
                continue;
            };
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let mut in_path = BTreeSet::new();
            let mut query = Vec::new();
            for p in &params {
                let name = p["name"].as_str().unwrap_or_default().to_owned();
                match p["in"].as_str() {
                    Some("path") => {
                        if !template.contains(&name) {
                            problems.push(format!(
                                "{method} {path}: `{name}` is declared a path parameter but the path has no {{{name}}}"
                            ));
                        }
                        if p["required"] != Value::Bool(true) {
                            problems.push(format!(
                                "{method} {path}: path parameter `{name}` must be required"
                            ));
                        }
                        in_path.insert(name);
                    }
                    Some("query") => query.push(p.clone()),
                    Some("header" | "cookie") => {}
                    other => problems.push(format!(
                        "{method} {path}: `{name}` is declared in {other:?}"
                    )),
                }
            }
            for name in template.difference(&in_path) {
                problems.push(format!(
                    "{method} {path}: {{{name}}} is not declared as a path parameter"
                ));
            }
            if query.is_empty() || PUBLIC_ROUTES.iter().any(|(_, p)| p == path) {
                continue;
            }
            // Every declared query parameter at once: the handler must know each name (its
            // query type denies unknown fields), whatever it then decides.
            queries += 1;
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
            let qs = query
                .iter()
                .map(|p| format!("{}={}", p["name"].as_str().unwrap(), sample_value(p)))
                .collect::<Vec<_>>()
                .join("&");
            let body = example_body(&doc, op);
            let reply = app
                .call(m, &format!("{concrete}?{qs}"), Some(&admin.access), body)
                .await;
            let message = reply.body["error"]["message"].as_str().unwrap_or_default();
            if reply.body["error"]["code"] == "invalid_query" && message.contains("unknown field") {
                problems.push(format!(
                    "{method} {path}: the handler does not read a declared query parameter: {message}"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        queries >= 5,
        "only {queries} operations with query parameters"
    );
}

/// Marks every name and text of the other workspace, so a leak shows in any response body.
const MARKER: &str = "zqxsecret";

/// The concrete path of `template` with each `{name}` replaced by `ids[name]`; `None` if a
/// parameter has no object to point at.
fn fill(template: &str, ids: &std::collections::HashMap<&str, String>) -> Option<String> {
    template
        .split('/')
        .map(
            |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => ids.get(name).cloned(),
                None => Some(seg.to_owned()),
            },
        )
        .collect::<Option<Vec<_>>>()
        .map(|segs| segs.join("/"))
}

/// Every route of the OpenAPI document, called by people of every kind who do not belong to a
/// workspace, aimed at that workspace's private objects: none answers 2xx, and no answer to any
/// route carries the workspace's names or texts. (Bot accounts do not exist yet; when they do,
/// add one to the callers.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_one_outside_a_workspace_reaches_its_private_objects() {
    use std::collections::HashMap;

    use serde_json::json;

    use crate::chat::{channel, say};

    let app = spawn_app(Backend::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    for (email, name) in [
        ("vic@example.org", "Vic"),
        ("outsider@example.org", "Outsider"),
        ("member@example.org", "Member"),
        ("guest@example.org", "Guest"),
        ("wsadmin@example.org", "Wsadmin"),
        ("officer@example.org", "Officer"),
    ] {
        app.create_user(&admin, email, name).await;
    }
    let vic = app.login("vic@example.org", PASSWORD).await;

    // The workspace under attack, with one private object of every kind.
    let ws = app
        .create_workspace(&admin, &format!("{MARKER} workspace"))
        .await;
    app.add_member(&admin, &ws, &vic, "member").await;
    let private = channel(&app, &admin, &ws, &format!("{MARKER}-vault"), "private").await;
    app.post(
        &format!("/api/v1/channels/{private}/members"),
        Some(&admin.access),
        json!({"user_id": vic.user_id}),
    )
    .await
    .expect(200);
    let message = say(&app, &admin, &private, &format!("{MARKER} message")).await;
    let message = message["id"].as_str().unwrap().to_owned();
    app.call(
        Method::PUT,
        &format!("/api/v1/messages/{message}/pin"),
        Some(&admin.access),
        None,
    )
    .await;
    let file = app
        .upload(
            &admin,
            &private,
            &format!("{MARKER}.txt"),
            format!("{MARKER} file").as_bytes(),
        )
        .await;
    let file = file.expect(201)["id"].as_str().unwrap().to_owned();
    let doc = app
        .post(
            &format!("/api/v1/workspaces/{ws}/documents"),
            Some(&admin.access),
            json!({"title": format!("{MARKER} document")}),
        )
        .await;
    let doc = doc.expect(201)["id"].as_str().unwrap().to_owned();
    let version = app
        .post(
            &format!("/api/v1/documents/{doc}/versions"),
            Some(&admin.access),
            json!({"name": format!("{MARKER} version")}),
        )
        .await;
    let version = version.expect(201)["id"].as_str().unwrap().to_owned();
    let comment = app
        .post(
            &format!("/api/v1/documents/{doc}/comments"),
            Some(&admin.access),
            json!({"text": format!("{MARKER} comment")}),
        )
        .await;
    let comment = comment.expect(201)["id"].as_str().unwrap().to_owned();
    let invitation = app
        .post(
            &format!("/api/v1/workspaces/{ws}/invitations"),
            Some(&admin.access),
            json!({"role": "member"}),
        )
        .await;
    let invitation = invitation.expect(201)["id"].as_str().unwrap().to_owned();
    let role = app
        .post(
            &format!("/api/v1/workspaces/{ws}/roles"),
            Some(&admin.access),
            json!({"name": format!("{MARKER}role"), "permissions": ["workspace.read"]}),
        )
        .await;
    let role = role.expect(201)["id"].as_str().unwrap().to_owned();
    let bot = app
        .post(
            &format!("/api/v1/workspaces/{ws}/bots"),
            Some(&admin.access),
            json!({"name": format!("{MARKER} bot")}),
        )
        .await;
    let bot = bot.expect(201)["id"].as_str().unwrap().to_owned();
    let token = app
        .post(
            &format!("/api/v1/workspaces/{ws}/bots/{bot}/tokens"),
            Some(&admin.access),
            json!({"scopes": ["chat:write"]}),
        )
        .await;
    let token = token.expect(201)["id"].as_str().unwrap().to_owned();
    let webhook = app
        .post(
            &format!("/api/v1/workspaces/{ws}/webhooks"),
            Some(&admin.access),
            json!({"channel_id": private, "bot_id": bot}),
        )
        .await;
    let webhook = webhook.expect(201)["id"].as_str().unwrap().to_owned();
    app.post(
        &format!("/api/v1/workspaces/{ws}/bots/{bot}/signing-secret"),
        Some(&admin.access),
        json!({}),
    )
    .await
    .expect(201);
    let command = app
        .post(
            &format!("/api/v1/workspaces/{ws}/bots/{bot}/commands"),
            Some(&admin.access),
            // A literal public address: nothing is resolved or called to make a command.
            json!({"command": "/marker", "url": "https://93.184.216.34/commands"}),
        )
        .await;
    let command = command.expect(201)["id"].as_str().unwrap().to_owned();
    let hold = app
        .post(
            &format!("/api/v1/workspaces/{ws}/legal-holds"),
            Some(&admin.access),
            json!({"name": format!("{MARKER} hold"), "reason": format!("{MARKER} reason")}),
        )
        .await;
    let hold = hold.expect(201)["id"].as_str().unwrap().to_owned();
    let request = app
        .post(
            "/api/v1/data-subject-requests",
            Some(&admin.access),
            json!({"subject_id": vic.user_id, "kind": "access", "note": format!("{MARKER} request")}),
        )
        .await;
    let request = request.expect(201)["id"].as_str().unwrap().to_owned();
    let upload = {
        use base64::Engine;
        let name = base64::engine::general_purpose::STANDARD.encode(format!("{MARKER}.bin"));
        app.client
            .post(format!("{}/api/v1/channels/{private}/uploads", app.base))
            .bearer_auth(&admin.access)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Length", "1000")
            .header("Upload-Metadata", format!("filename {name}"))
            .send()
            .await
            .unwrap()
            .headers()["location"]
            .to_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned()
    };
    let workflow =
        "process: rc\nsteps:\n  - start: s\n  - user_task: check\n    person: ${who}\n  - end: e\n";
    app.post(
        &format!("/api/v1/workspaces/{ws}/workflows"),
        Some(&admin.access),
        json!({"source": workflow}),
    )
    .await
    .expect(201);
    let instance = app
        .post(
            &format!("/api/v1/workspaces/{ws}/workflows/rc/instances"),
            Some(&admin.access),
            json!({"variables": {"who": admin.user_id, "note": MARKER}}),
        )
        .await;
    let instance = instance.expect(201).clone();
    let task = instance["tasks"][0]["id"].as_str().unwrap().to_owned();
    let instance = instance["id"].as_str().unwrap().to_owned();
    let trigger = app
        .post(
            &format!("/api/v1/workspaces/{ws}/workflows/rc/triggers"),
            Some(&admin.access),
            json!({"kind": "webhook"}),
        )
        .await;
    let trigger = trigger.expect(201)["id"].as_str().unwrap().to_owned();
    app.post(
        &format!("/api/v1/workspaces/{ws}/workflow-decisions"),
        Some(&admin.access),
        json!({"source": format!("decision: rc_table\nname: {MARKER} table\ninputs: [note]\noutputs: [queue]\nrules:\n  - ['-', '\"{MARKER}\"']\n")}),
    )
    .await
    .expect(201);
    let ids: HashMap<&str, String> = [
        ("workspace_id", ws.clone()),
        ("channel_id", private),
        ("message_id", message),
        ("file_id", file),
        ("document_id", doc),
        ("version_id", version),
        ("comment_id", comment),
        ("invitation_id", invitation),
        ("role_id", role),
        ("upload_id", upload),
        ("user_id", vic.user_id.clone()),
        ("session_id", vic.session_id.clone()),
        ("emoji", "thumbsup".to_owned()),
        ("bot_id", bot),
        ("token_id", token),
        ("webhook_id", webhook),
        ("command_id", command),
        ("hold_id", hold),
        ("request_id", request),
        ("process_id", "rc".to_owned()),
        ("instance_id", instance),
        ("task_id", task),
        ("trigger_id", trigger),
        ("decision_key", "rc_table".to_owned()),
        // No incident was raised: an id that names none stands in for one.
        ("incident_id", format!("{}:incident1", uuid::Uuid::now_v7())),
        // Emergency accesses are read and ended by their holder only: an id that names none
        // stands in for one.
        ("grant_id", uuid::Uuid::now_v7().to_string()),
        // The breach register is the deployment's, not a workspace's: an id that names none
        // stands in for one.
        ("breach_id", uuid::Uuid::now_v7().to_string()),
        // No delivery was parked: an id that names none stands in for one.
        ("delivery_id", uuid::Uuid::now_v7().to_string()),
        // Ephemeral messages are pressed only by the one person shown them.
        ("ephemeral_id", "kept-for-nobody-else".to_owned()),
    ]
    .into_iter()
    .collect();

    // The callers: a person in no workspace; a member, a guest and an admin of another
    // workspace; a compliance officer (a system role).
    let home = app.create_workspace(&admin, "Home").await;
    for (email, role) in [
        ("member@example.org", "member"),
        ("guest@example.org", "guest"),
        ("wsadmin@example.org", "admin"),
    ] {
        let s = app.login(email, PASSWORD).await;
        app.add_member(&admin, &home, &s, role).await;
    }
    let officer_id = app.login("officer@example.org", PASSWORD).await.user_id;
    app.put(
        &format!("/api/v1/users/{officer_id}/system-role"),
        &admin.access,
        json!({"role": "compliance_officer"}),
    )
    .await
    .expect(200);
    let callers = [
        ("outsider", "outsider@example.org"),
        ("member elsewhere", "member@example.org"),
        ("guest elsewhere", "guest@example.org"),
        ("admin elsewhere", "wsadmin@example.org"),
        ("compliance officer", "officer@example.org"),
    ];

    // The marker shows where it may: to the workspace's own people.
    let own = app
        .get(
            &format!("/api/v1/channels/{}/messages", ids["channel_id"]),
            &vic.access,
        )
        .await;
    assert!(own.expect(200).to_string().contains(MARKER), "{}", own.body);

    let doc_json = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await
        .expect(200)
        .clone();
    let mut problems = Vec::new();
    let mut calls = 0;
    for (who, email) in callers {
        let mut session = app.login(email, PASSWORD).await;
        for (path, item) in doc_json["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().unwrap() {
                let Ok(m) = Method::from_bytes(method.to_uppercase().as_bytes()) else {
                    continue;
                };
                if PUBLIC_ROUTES
                    .iter()
                    .any(|(pm, pp)| pm.eq_ignore_ascii_case(method) && pp == path)
                {
                    continue;
                }
                let Some(concrete) = fill(path, &ids) else {
                    problems.push(format!("{method} {path}: no object for a parameter"));
                    continue;
                };
                let aimed = path.contains('{');
                // Signing out or revoking sessions ends the caller's session: start another.
                if app.get("/api/v1/users/me", &session.access).await.status == 401 {
                    session = app.login(email, PASSWORD).await;
                }
                let reply = app
                    .call(
                        m.clone(),
                        &concrete,
                        Some(&session.access),
                        example_body(&doc_json, op),
                    )
                    .await;
                calls += 1;
                let officer = who == "compliance officer";
                // By design a compliance officer reads the whole deployment's audit trail and
                // account directory, corrects anyone's name or email on their request (GDPR
                // Art. 16), manages every workspace's legal holds, may break the glass (an
                // audited, announced, time-limited read of one channel), and erases people (the
                // victim's content stays: the default policy anonymizes), restricts the
                // processing of people's data (GDPR Art. 18), keeps the register of
                // data-subject requests and the breach register, reads the record of
                // processing activities, and searches and exports content for eDiscovery.
                let by_design = officer
                    && ((m == Method::GET
                        && (path.starts_with("/api/v1/audit/")
                            || path.starts_with("/api/v1/users")))
                        || (m == Method::PATCH && path == "/api/v1/users/{user_id}")
                        || path.contains("/legal-holds")
                        || path.contains("/break-glass")
                        || path.ends_with("/erasure")
                        || path.contains("/restriction")
                        || path.starts_with("/api/v1/data-subject-requests")
                        || path.starts_with("/api/v1/breaches")
                        || path == "/api/v1/compliance/processing-record"
                        || path.starts_with("/api/v1/compliance/ediscovery/"));
                if aimed && reply.status.is_success() && !by_design {
                    problems.push(format!(
                        "{who}: {method} {path} answered {}: {}",
                        reply.status, reply.body
                    ));
                }
                if !by_design && reply.body.to_string().to_lowercase().contains(MARKER) {
                    problems.push(format!(
                        "{who}: {method} {path} leaked the workspace's content: {}",
                        reply.body
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(calls >= 5 * 60, "only {calls} calls");
}
