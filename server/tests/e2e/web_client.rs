//! The web client in a real browser: each test spawns the server serving the built client
//! (`client-web/dist`, built by the test command), seeds a small team (or, for `setup`, nothing
//! but the first-run setup link), and runs one
//! `tests/browser/*.spec.mjs` script, which drives Debian's Chromium through `playwright-core`.
//! Screenshots of the main screens land in `target/screenshots/`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::harness::{spawn_app_with, Backend, Session, TestApp, PASSWORD};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct Team {
    admin: Session,
    alice: Session,
    bob: Session,
    ws: String,
    general: String,
}

async fn team(app: &TestApp) -> Team {
    let admin = app.bootstrap_admin().await;
    app.create_user(&admin, "alice@example.org", "Alice Archer")
        .await;
    app.create_user(&admin, "bob@example.org", "Bob Baker")
        .await;
    let alice = app.login("alice@example.org", PASSWORD).await;
    let bob = app.login("bob@example.org", PASSWORD).await;
    let ws = app.create_workspace(&admin, "Northwind Clinic").await;
    app.add_member(&admin, &ws, &alice, "member").await;
    app.add_member(&admin, &ws, &bob, "member").await;
    let general = app
        .post(
            &format!("/api/v1/workspaces/{ws}/channels"),
            Some(&admin.access),
            json!({"name": "general", "visibility": "public", "topic": "Everything and nothing"}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .expect("channel id")
        .to_owned();
    for who in [&alice, &bob] {
        app.post(
            &format!("/api/v1/channels/{general}/join"),
            Some(&who.access),
            json!({}),
        )
        .await
        .expect(200);
    }
    Team {
        admin,
        alice,
        bob,
        ws,
        general,
    }
}

/// Seeds the team every spec but `setup` starts from; returns the fixture the spec reads.
async fn seeded(app: &TestApp) -> serde_json::Value {
    let t = team(app).await;
    let user = |s: &Session, email: &str, name: &str| json!({"id": s.user_id, "email": email, "password": PASSWORD, "display_name": name});
    json!({
        "url": app.base,
        "workspace_id": t.ws,
        "channel_id": t.general,
        "users": {
            "admin": user(&t.admin, "admin@example.org", "Ada Admin"),
            "alice": user(&t.alice, "alice@example.org", "Alice Archer"),
            "bob": user(&t.bob, "bob@example.org", "Bob Baker"),
        },
    })
}

/// One browser at a time: Chromium with two contexts is heavy next to the rest of the suite.
static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `tests/browser/{name}.spec.mjs` against a fresh server; panics with its output if it fails.
async fn browser(name: &str) {
    let _one = BROWSER.lock().await;
    let dist = repo().join("client-web/dist");
    assert!(
        dist.join("index.html").is_file(),
        "the web client is not built: run `npm ci && npm run build` in client-web (the test command does)"
    );
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.http.web_root = Some(dist);
        // The bots spec answers slash commands from this machine; the operations spec's
        // process calls a service there.
        c.bots.event_allowed_networks = vec!["127.0.0.1/32".parse().expect("a network")];
        c.workflows.allowed_networks = vec!["127.0.0.1/32".parse().expect("a network")];
    })
    .await;
    let fixture = if name == "setup" {
        // The first run: no accounts at all, only the setup link.
        json!({"url": app.base, "setup_token": app.setup_token, "users": {}})
    } else {
        seeded(&app).await
    };
    let script = repo().join(format!("tests/browser/{name}.spec.mjs"));
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(&script)
        .current_dir(repo().join("tests/browser"))
        .env("CONCORD_URL", &app.base)
        .env("CONCORD_FIXTURE", fixture.to_string())
        .env("CONCORD_SCREENSHOTS", screenshots())
        .kill_on_drop(true);
    let limit = Duration::from_secs(240);
    let output = tokio::time::timeout(limit, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{name}.spec.mjs did not finish in {limit:?}"))
        .unwrap_or_else(|e| {
            panic!(
                "node runs {} (run npm ci in tests/browser): {e}",
                script.display()
            )
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{name}.spec.mjs failed:\n{stdout}\n{stderr}"
    );
    eprintln!("{stdout}");
}

/// `target/screenshots` (or under `CARGO_TARGET_DIR`).
fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    target.join("screenshots")
}

macro_rules! specs {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            browser(stringify!($name)).await;
        }
    )*};
}

specs!(setup, signin, chat, docs, search, tasks, bots, compliance, admin, designer, operations);

/// The server's side of the client, without a browser: routes fall back to `index.html` under
/// a strict policy, hashed assets are cached, and API misses stay JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_serves_the_client_and_keeps_api_errors_json() {
    let dist = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dist.path().join("index.html"),
        "<!doctype html><title>Concord</title>",
    )
    .unwrap();
    std::fs::create_dir(dist.path().join("assets")).unwrap();
    std::fs::write(dist.path().join("assets/index-abc123.js"), "console.log(1)").unwrap();
    let root = dist.path().to_owned();
    let app = spawn_app_with(Backend::Sqlite, |c| c.http.web_root = Some(root)).await;
    let get = |path: &str| app.client.get(format!("{}{path}", app.base)).send();

    for path in ["/", "/login", "/w/123/c/456/m/789", "/setup?token=abc"] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("object-src 'none'"),
            "{csp}"
        );
        assert_eq!(r.headers()["cache-control"], "no-cache");
        assert!(
            r.text().await.unwrap().contains("<title>Concord</title>"),
            "{path}"
        );
    }
    let asset = get("/assets/index-abc123.js").await.unwrap();
    assert_eq!(asset.status().as_u16(), 200);
    assert!(asset.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert!(asset.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));
    // A missing asset is a 404, not the page (a stale tab must not parse HTML as script).
    let missing = get("/assets/gone-000.js").await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    // Paths outside the folder are never served.
    let escape = get("/assets/..%2f..%2fetc%2fpasswd").await.unwrap();
    assert_eq!(escape.status().as_u16(), 404);
    // API misses and non-GET methods keep the JSON error shape.
    let api = app.get("/api/v1/nothing-here", "").await;
    api.expect_error(404, "route_not_found");
    let post = app.post("/w/123", None, json!({})).await;
    post.expect_error(404, "route_not_found");
}
