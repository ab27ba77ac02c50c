//! What a search query cannot do: reach past the calendar, or learn who has an account outside
//! the workspace searched.

use serde_json::Value;

use crate::chat::{channel, say};
use crate::harness::{both_backends, Reply, Session, TestApp, PASSWORD};

async fn search(app: &TestApp, who: &Session, ws: &str, query: &str) -> Reply {
    let url = reqwest::Url::parse_with_params(
        &format!("{}/api/v1/workspaces/{ws}/search", app.base),
        &[("q", query)],
    )
    .unwrap();
    app.get(&url.as_str()[app.base.len()..], &who.access).await
}

/// The error's message with the name it quotes replaced, to compare two answers.
fn message_without(reply: &Reply, name: &str) -> String {
    reply.body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .replace(name, "<name>")
}

fn ids(page: &Value) -> Vec<&str> {
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

both_backends! {
    async fn dates_beyond_the_calendar_are_refused_with_the_reason(app) {
        let admin = app.bootstrap_admin().await;
        let ws = app.create_workspace(&admin, "Clinic").await;
        for q in [
            "on:+262142-12-31",
            "before:+262142-12-31",
            "after:+262142-12-31",
            "after:+262143-01-01",
            "on:-0001-01-01",
            "before:-262143-01-01",
            "after:0000-01-01",
            "report on:10000-01-01",
        ] {
            let r = search(&app, &admin, &ws, q).await;
            r.expect_error(422, "validation_failed");
            let message = r.body["error"]["message"].as_str().unwrap();
            assert!(message.contains("date") && message.contains("at character"), "{q}: {message}");
        }
        // The server is still answering, and the last day of the calendar works.
        search(&app, &admin, &ws, "on:9999-12-31").await.expect(200);
        search(&app, &admin, &ws, "after:0001-01-01").await.expect(200);
    }

    async fn people_are_found_only_among_the_workspace_members(app) {
        let admin = app.bootstrap_admin().await;
        app.create_user(&admin, "ann@example.org", "Ann Lee").await;
        app.create_user(&admin, "outsider@example.org", "Otto Outsider").await;
        let ann = app.login("ann@example.org", PASSWORD).await;
        let outsider = app.login("outsider@example.org", PASSWORD).await;
        let ws = app.create_workspace(&admin, "Clinic").await;
        app.add_member(&admin, &ws, &ann, "member").await;
        let elsewhere = app.create_workspace(&admin, "Elsewhere").await;
        app.add_member(&admin, &elsewhere, &outsider, "member").await;
        let general = channel(&app, &ann, &ws, "general", "public").await;
        let posted = say(&app, &ann, &general, "quarterly numbers").await;

        // Members are found by email (any case), display name and handle.
        for q in ["from:@ANN@example.org", "from:@\"Ann Lee\"", "from:@annlee", "from:@ann"] {
            let page = search(&app, &admin, &ws, &format!("{q} quarterly")).await;
            assert_eq!(ids(page.expect(200)), vec![posted["id"].as_str().unwrap()], "{q}");
        }

        // An account outside the workspace is answered exactly like one that does not exist.
        for (op, known, unknown) in [
            ("from:@", "outsider@example.org", "nobody-at-all@example.org"),
            ("in:@", "outsider@example.org", "nobody-at-all@example.org"),
            ("from:@", "otto", "zed"),
            ("from:@", "outsider", "nobodyatall"),
        ] {
            let a = search(&app, &ann, &ws, &format!("{op}{known}")).await;
            let b = search(&app, &ann, &ws, &format!("{op}{unknown}")).await;
            a.expect_error(422, "validation_failed");
            b.expect_error(422, "validation_failed");
            assert_eq!(message_without(&a, known), message_without(&b, unknown), "{op}");
            assert!(message_without(&a, known).contains("no member of this workspace"), "{}", a.body);
        }

        // Names follow membership: a member who leaves is no longer found, one who joins is.
        let ann_id = ann.user_id.clone();
        app.delete(&format!("/api/v1/workspaces/{ws}/members/{ann_id}"), &admin.access)
            .await
            .expect(204);
        search(&app, &admin, &ws, "from:@ann@example.org").await.expect_error(422, "validation_failed");
        app.add_member(&admin, &ws, &outsider, "member").await;
        search(&app, &admin, &ws, "from:@outsider@example.org").await.expect(200);
    }
}
