//! Stock Yjs clients against the document endpoint: the real `yjs` and `y-websocket` npm
//! packages (`tests/yjs`, installed by the test command) run in Node as separate processes.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::docs::{create_doc, share};
use crate::harness::{both_backends, spawn_app, Backend, TestApp};

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/yjs")
        .join(name)
}

fn endpoint(app: &TestApp) -> String {
    format!("{}/api/v1/yjs", app.base.replace("http://", "ws://"))
}

/// Runs a Node script; returns its JSON line on success, or its error line.
async fn node(name: &str, args: &[&str], limit: Duration) -> Result<Value, String> {
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(script(name)).args(args).kill_on_drop(true);
    let output = tokio::time::timeout(limit, cmd.output())
        .await
        .map_err(|_| format!("{name} {args:?} did not finish in {limit:?}"))?
        .map_err(|e| format!("node runs {name} (run npm ci in tests/yjs): {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("{name} {args:?}: {stderr}{stdout}"));
    }
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).map_err(|e| format!("{name}: not JSON ({e}): {stdout}"))
}

async fn scenario(app: &TestApp, name: &str, doc: &str, extra: &[&str]) -> Value {
    let url = endpoint(app);
    let mut args = vec![name, "--url", &url, "--doc", doc];
    args.extend_from_slice(extra);
    match node("interop.mjs", &args, Duration::from_secs(90)).await {
        Ok(v) => {
            assert_eq!(v["ok"], true, "{v}");
            v
        }
        Err(e) => panic!("{e}"),
    }
}

both_backends! {
    async fn stock_clients_converge_merge_offline_edits_and_survive_restarts(app) {
        let t = app.team().await;
        let doc = create_doc(&app, &t.ann, &t.ws, "Shared").await;
        share(&app, &t.ann, &doc, &t.bo, "edit").await;
        scenario(&app, "converge", &doc, &["--token", &t.ann.access, "--token2", &t.bo.access]).await;
        scenario(&app, "offline", &doc, &["--token", &t.ann.access, "--token2", &t.bo.access]).await;
        let written = scenario(&app, "write", &doc, &["--token", &t.ann.access, "--text", " kept across restarts"]).await;
        let text = written["text"].as_str().unwrap().to_owned();
        let app = app.restart().await;
        let read = scenario(&app, "read", &doc, &["--token", &t.bo.access, "--expect", &text]).await;
        assert_eq!(read["text"], text.as_str());
    }

    async fn stock_clients_are_refused_and_view_only_clients_cannot_write(app) {
        let t = app.team().await;
        let doc = create_doc(&app, &t.ann, &t.ws, "Guarded").await;
        let anonymous = scenario(&app, "denied", &doc, &["--expect-code", "4401"]).await;
        assert_eq!(anonymous["code"], 4401);
        let outsider = scenario(&app, "denied", &doc, &["--token", &t.bo.access, "--expect-code", "4403"]).await;
        assert_eq!(outsider["code"], 4403);
        share(&app, &t.ann, &doc, &t.bo, "view").await;
        scenario(&app, "write", &doc, &["--token", &t.ann.access, "--text", "editor text"]).await;
        let viewer = scenario(&app, "viewonly", &doc, &["--token", &t.ann.access, "--token2", &t.bo.access]).await;
        assert!(viewer["denied"].as_str().unwrap_or_default().contains("permission-denied"), "{viewer}");
        scenario(&app, "read", &doc, &["--token", &t.bo.access, "--expect", viewer["text"].as_str().unwrap()]).await;
        scenario(&app, "awareness", &doc, &["--token", &t.ann.access]).await;
    }

    async fn prosemirror_content_exports_as_markdown(app) {
        let t = app.team().await;
        let doc = create_doc(&app, &t.ann, &t.ws, "Rich").await;
        let written = scenario(&app, "prosemirror", &doc, &["--token", &t.ann.access]).await;
        let resp = app
            .client
            .get(format!("{}/api/v1/documents/{doc}/export?format=markdown", app.base))
            .bearer_auth(&t.ann.access)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let markdown = resp.text().await.unwrap();
        assert_eq!(markdown.trim_end(), written["markdown"].as_str().unwrap().trim_end());
        let json = app
            .client
            .get(format!("{}/api/v1/documents/{doc}/export?format=json", app.base))
            .bearer_auth(&t.ann.access)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        assert_eq!(json["prosemirror"]["type"], "doc");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_stock_client_stays_connected() {
    let app = spawn_app(Backend::Sqlite).await;
    let t = app.team().await;
    let doc = create_doc(&app, &t.ann, &t.ws, "Quiet").await;
    scenario(
        &app,
        "keepalive",
        &doc,
        &["--token", &t.ann.access, "--seconds", "35"],
    )
    .await;
}

/// The web client's way in: stock providers offering `concord.yjs.v1` and
/// `concord.bearer.<token>` (no token in the URL) sync, edit and share awareness; `ws`, like a
/// browser, fails the handshake unless the server answers the subprotocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_clients_sign_in_through_the_subprotocol() {
    let app = spawn_app(Backend::Sqlite).await;
    let t = app.team().await;
    let doc = create_doc(&app, &t.ann, &t.ws, "Headers").await;
    share(&app, &t.ann, &doc, &t.bo, "edit").await;
    let by_header = ["--auth", "protocol"];
    let tokens = ["--token", &t.ann.access, "--token2", &t.bo.access];
    let args: Vec<&str> = tokens.iter().chain(by_header.iter()).copied().collect();
    let converged = scenario(&app, "converge", &doc, &args).await;
    assert!(
        !converged["text"].as_str().unwrap_or_default().is_empty(),
        "{converged}"
    );
    scenario(&app, "awareness", &doc, &args).await;
    let refused = scenario(
        &app,
        "denied",
        &doc,
        &[
            "--token",
            "not-a-token",
            "--auth",
            "protocol",
            "--expect-code",
            "4401",
        ],
    )
    .await;
    assert_eq!(refused["code"], 4401);
}

async fn replay(trace: &str, backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.team().await;
    let doc = create_doc(&app, &t.ann, &t.ws, trace).await;
    let url = endpoint(&app);
    let result = node(
        "replay.mjs",
        &[
            trace,
            "--url",
            &url,
            "--doc",
            &doc,
            "--token",
            &t.ann.access,
            "--readers",
            "10",
        ],
        Duration::from_secs(600),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(result["readers"], 10, "{result}");
    // The server's own copy (and so the export) ends with the trace's final text too.
    let resp = app
        .client
        .get(format!(
            "{}/api/v1/documents/{doc}/export?format=text",
            app.base
        ))
        .bearer_auth(&t.ann.access)
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    assert_eq!(
        text.chars().count() as u64,
        result["length"].as_u64().unwrap(),
        "{result}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automerge_paper_trace_reaches_ten_readers() {
    replay("automerge-paper", Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seph_blog_trace_reaches_ten_readers() {
    replay("seph-blog1", Backend::Postgres).await;
}
