//! Key rotation from the command line, with the server stopped: data written before stays
//! readable, and new keys are in use afterwards.

use std::process::Command;

use serde_json::json;

use crate::durability::{json_post, start};
use crate::harness::PASSWORD;

fn concord(dir: &std::path::Path, args: &[&str], db: &str) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(args)
        .args(["--database-url", db])
        .current_dir(dir)
        .env("CONCORD_LOG__FILTER", "warn")
        .output()
        .expect("concord runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

async fn stop(mut p: crate::durability::Process) {
    let _ = Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status();
    let _ = p.child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_kek_and_data_keys_keeps_data_readable() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("concord.db").display());
    let client = reqwest::Client::new();

    let server = start(dir.path(), &db);
    // A channel message with an edit: its body and its kept first version are encrypted too.
    let (access, ch) = server
        .admin_with_channel(&client, "keeper@example.org", "Key Keeper")
        .await;
    let (s, m) = json_post(
        &client,
        format!("{}/api/v1/channels/{ch}/messages", server.base),
        Some(&access),
        json!({"text": "first words"}),
    )
    .await;
    assert_eq!(s, 201);
    let message = m["id"].as_str().unwrap().to_owned();
    let r = client
        .patch(format!("{}/api/v1/messages/{message}", server.base))
        .bearer_auth(&access)
        .json(&json!({"text": "second words"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    stop(server).await;
    let kek_before = std::fs::read(dir.path().join("data/keys/kek.key")).unwrap();

    let (ok, status, err) = concord(dir.path(), &["keys", "status"], &db);
    assert!(ok, "{err}");
    assert!(
        status.contains("user:") && status.contains("current"),
        "{status}"
    );

    let (ok, out, err) = concord(dir.path(), &["keys", "rotate-kek"], &db);
    assert!(ok, "{err}");
    assert!(out.contains("rewrapped"), "{out}");
    assert_ne!(
        std::fs::read(dir.path().join("data/keys/kek.key")).unwrap(),
        kek_before,
        "a new KEK is in place"
    );

    let (ok, out, err) = concord(dir.path(), &["keys", "rotate-dek"], &db);
    assert!(ok, "{err}");
    assert!(
        out.contains("started new key versions") && out.contains("re-encrypted"),
        "{out}"
    );
    let (_, status, _) = concord(dir.path(), &["keys", "status"], &db);
    assert!(
        status.contains("retired") && !status.contains("unfinished"),
        "{status}"
    );

    // The server starts with the new KEK and everything written before reads back.
    let server = start(dir.path(), &db);
    let (s, login) = json_post(
        &client,
        format!("{}/api/v1/auth/login", server.base),
        None,
        json!({"email": "keeper@example.org", "password": PASSWORD}),
    )
    .await;
    assert_eq!(s, 200, "{login}");
    let me: serde_json::Value = client
        .get(format!("{}/api/v1/users/me", server.base))
        .bearer_auth(login["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["display_name"], "Key Keeper");
    let get = |path: String| {
        let client = client.clone();
        let token = login["access_token"].as_str().unwrap().to_owned();
        async move {
            client
                .get(path)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let history = get(format!("{}/api/v1/channels/{ch}/messages", server.base)).await;
    assert_eq!(history[0]["text"], "second words");
    let versions = get(format!(
        "{}/api/v1/messages/{message}/versions",
        server.base
    ))
    .await;
    assert_eq!(versions[0]["text"], "first words");
    stop(server).await;

    // The live audit log still verifies, and records both rotations.
    let (ok, out, err) = concord(dir.path(), &["audit", "verify"], &db);
    assert!(ok, "{out}{err}");
}
