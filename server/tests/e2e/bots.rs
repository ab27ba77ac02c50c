//! Bots: an administrator creates a bot, issues it scoped tokens (shown once) and incoming
//! webhooks; Slack's own npm clients (`@slack/web-api`'s WebClient, `@slack/webhook`'s
//! IncomingWebhook, in tests/slack) then drive Concord's Slack-compatible surface unchanged,
//! and what they did is seen by people through Concord's API and in the audit log.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{both_backends, Team, TestApp};

/// tests/slack: Slack's npm clients and the scripts that drive them.
fn slack_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/slack")
}

async fn node(script: &str, args: &[&str]) -> String {
    let dir = slack_dir();
    assert!(
        dir.join("node_modules/@slack/web-api").is_dir(),
        "run `npm ci` in tests/slack (./tests/run does)"
    );
    let run = tokio::process::Command::new("node")
        .arg(dir.join(script))
        .args(args)
        .current_dir(&dir)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("node finished in time")
        .expect("node runs");
    assert!(
        out.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn channel(app: &TestApp, team: &Team, name: &str, visibility: &str) -> String {
    app.post(
        &format!("/api/v1/workspaces/{}/channels", team.ws),
        Some(&team.admin.access),
        json!({"name": name, "visibility": visibility}),
    )
    .await
    .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn create_bot(app: &TestApp, team: &Team) -> String {
    let bot = app
        .post(
            &format!("/api/v1/workspaces/{}/bots", team.ws),
            Some(&team.admin.access),
            json!({"name": "CI Bot", "avatar_url": "https://ci.example.org/logo.png"}),
        )
        .await;
    let bot = bot.expect(201);
    assert_eq!(bot["name"], "CI Bot");
    assert_eq!(bot["deactivated"], false);
    bot["id"].as_str().unwrap().to_owned()
}

async fn token(app: &TestApp, team: &Team, bot: &str, scopes: &[&str]) -> Value {
    app.post(
        &format!("/api/v1/workspaces/{}/bots/{bot}/tokens", team.ws),
        Some(&team.admin.access),
        json!({ "scopes": scopes }),
    )
    .await
    .expect(201)
    .clone()
}

const ALL_SCOPES: &[&str] = &[
    "chat:write",
    "channels:read",
    "channels:history",
    "channels:join",
    "reactions:write",
    "users:read",
];

/// The messages of a channel as a person reads them through Concord's API.
async fn history(app: &TestApp, token: &str, channel: &str) -> Vec<Value> {
    app.get(&format!("/api/v1/channels/{channel}/messages"), token)
        .await
        .expect(200)
        .as_array()
        .cloned()
        .unwrap_or_default()
}

both_backends! {
    async fn slack_web_client_round_trips_every_method(app) {
        let team = app.team().await;
        let deploys = channel(&app, &team, "deploys", "public").await;
        let random = channel(&app, &team, "random", "public").await;
        let secret = channel(&app, &team, "secret", "private").await;
        let bot = create_bot(&app, &team).await;
        for who in [&bot, &team.ann.user_id] {
            app.post(
                &format!("/api/v1/channels/{deploys}/members"),
                Some(&team.admin.access),
                json!({ "user_id": who }),
            )
            .await
            .expect(200);
        }
        let main = token(&app, &team, &bot, ALL_SCOPES).await;
        let narrow = token(&app, &team, &bot, &["chat:write"]).await;
        let revoked = token(&app, &team, &bot, ALL_SCOPES).await;
        let hasty = token(&app, &team, &bot, ALL_SCOPES).await;
        app.delete(
            &format!("/api/v1/workspaces/{}/bots/{bot}/tokens/{}", team.ws, revoked["id"].as_str().unwrap()),
            &team.admin.access,
        )
        .await
        .expect(204);

        let config = json!({
            "api": format!("{}/api/slack/", app.base),
            "token": main["token"],
            "narrowToken": narrow["token"],
            "revokedToken": revoked["token"],
            "rateToken": hasty["token"],
            "channel": deploys,
            "otherChannel": random,
            "privateChannel": secret,
            "human": team.ann.user_id,
            "bot": bot,
        });
        let out = node("webapi.mjs", &[&config.to_string()]).await;
        let out: Value = serde_json::from_str(out.trim().lines().last().unwrap()).unwrap();

        // What the bot did, as Ann sees it through Concord's own API.
        let seen = history(&app, &team.ann.access, &deploys).await;
        let texts: Vec<&str> = seen.iter().map(|m| m["text"].as_str().unwrap()).collect();
        assert!(texts.contains(&"Build #7 passed (edited)"), "{texts:?}");
        assert!(texts.contains(&"narrow but allowed"), "{texts:?}");
        let root = seen
            .iter()
            .find(|m| m["text"] == "Build #7 passed (edited)")
            .unwrap();
        assert_eq!(root["author_id"], bot.as_str());
        assert_eq!(root["reply_count"], 1);
        assert!(root["reactions"].as_object().unwrap().is_empty());
        let (secs, seq) = out["first"].as_str().unwrap().split_once('.').unwrap();
        assert_eq!(root["seq"].as_i64().unwrap(), seq.parse::<i64>().unwrap());
        assert!(root["created_at"].as_str().is_some() && !secs.is_empty());
        let deleted = seen
            .iter()
            .find(|m| m["seq"].as_i64().unwrap()
                == out["deleted"].as_str().unwrap().split_once('.').unwrap().1.parse::<i64>().unwrap())
            .unwrap();
        assert_eq!(deleted["deleted"], true);
        let other = history(&app, &team.admin.access, &random).await;
        assert!(other.iter().any(|m| m["text"] == "joined and posting" && m["author_id"] == bot.as_str()));
        assert!(history(&app, &team.admin.access, &secret).await.is_empty());

        // Every bot action is audited with the bot as actor.
        let audit = app.audit_events(&team.admin.access).await;
        let by_bot: Vec<&str> = audit
            .iter()
            .filter(|e| e["actor_type"] == "bot" && e["actor_id"] == bot.as_str())
            .filter_map(|e| e["action"].as_str())
            .collect();
        for action in ["message.posted", "message.edited", "message.deleted", "channel.member_added"] {
            assert!(by_bot.contains(&action), "{action} not audited as the bot: {by_bot:?}");
        }
        let main_id = main["id"].as_str().unwrap();
        assert!(audit.iter().any(|e| e["actor_type"] == "bot"
            && e["session_id"].as_str() == Some(&format!("token:{main_id}"))));
        // So is a method refused for a missing scope, like any denial.
        assert!(
            audit.iter().any(|e| e["actor_type"] == "bot"
                && e["action"] == "permission.denied"
                && e["details"]["scope"].is_string()),
            "no missing-scope denial recorded"
        );
    }

    async fn slack_incoming_webhook_posts_into_its_channel(app) {
        let team = app.team().await;
        let alerts = channel(&app, &team, "alerts", "public").await;
        let bot = create_bot(&app, &team).await;
        let hooks = format!("/api/v1/workspaces/{}/webhooks", team.ws);
        let hook = app
            .post(&hooks, Some(&team.admin.access), json!({"channel_id": alerts, "bot_id": bot}))
            .await
            .expect(201)
            .clone();
        let url = hook["url"].as_str().unwrap();
        assert!(url.starts_with(&format!("{}/hooks/", app.base)), "{url}");
        let revoked = app
            .post(&hooks, Some(&team.admin.access), json!({"channel_id": alerts, "bot_id": bot}))
            .await
            .expect(201)
            .clone();
        app.delete(&format!("{hooks}/{}", revoked["id"].as_str().unwrap()), &team.admin.access)
            .await
            .expect(204);
        // Listed without their URLs.
        let listed = app.get(&hooks, &team.admin.access).await.expect(200).clone();
        assert_eq!(listed.as_array().unwrap().len(), 2);
        assert!(!listed.to_string().contains(url.rsplit('/').next().unwrap()));

        node("webhook.mjs", &[url, revoked["url"].as_str().unwrap()]).await;

        let seen = history(&app, &team.admin.access, &alerts).await;
        let texts: Vec<&str> = seen.iter().map(|m| m["text"].as_str().unwrap()).collect();
        assert_eq!(
            texts,
            [
                "Deploy [#9](https://ci.example.org/deploys/9) started",
                "**Ticket 42**\n**Status** open\n\n**Owner**\nAnn\nPriority: high",
            ]
        );
        assert!(seen.iter().all(|m| m["author_id"] == bot.as_str()));
        let audit = app.audit_events(&team.admin.access).await;
        let hook_id = hook["id"].as_str().unwrap();
        let posts = audit
            .iter()
            .filter(|e| e["action"] == "message.posted"
                && e["actor_id"] == bot.as_str()
                && e["session_id"].as_str() == Some(&format!("webhook:{hook_id}")))
            .count();
        assert_eq!(posts, 2);
    }

    async fn only_someone_who_shares_a_bots_private_channels_issues_its_credentials(app) {
        let team = app.team().await;
        let bot = create_bot(&app, &team).await;
        // Ann keeps a private channel and adds the bot to it; the admin is not in it.
        let secret = crate::chat::channel(&app, &team.ann, &team.ws, "secret", "private").await;
        app.post(&format!("/api/v1/channels/{secret}/members"), Some(&team.ann.access), json!({"user_id": bot}))
            .await
            .expect(200);
        let tokens = format!("/api/v1/workspaces/{}/bots/{bot}/tokens", team.ws);
        // A token would let the admin read the private channel through the bot: refused.
        app.post(&tokens, Some(&team.admin.access), json!({"scopes": ["channels:history"]}))
            .await
            .expect_error(422, "private_channels_not_shared");
        // So is a webhook for the bot, even into a channel the admin is in.
        let open = crate::chat::channel(&app, &team.admin, &team.ws, "open", "public").await;
        app.post(
            &format!("/api/v1/workspaces/{}/webhooks", team.ws),
            Some(&team.admin.access),
            json!({"channel_id": open, "bot_id": bot}),
        )
        .await
        .expect_error(422, "private_channels_not_shared");
        // Once the admin is in the channel too, they may.
        app.post(&format!("/api/v1/channels/{secret}/members"), Some(&team.ann.access), json!({"user_id": team.admin.user_id}))
            .await
            .expect(200);
        token(&app, &team, &bot, &["channels:history"]).await;
    }

    async fn bot_tokens_are_shown_once_revocable_and_rotatable(app) {
        let team = app.team().await;
        let bot = create_bot(&app, &team).await;
        let base = format!("/api/v1/workspaces/{}/bots", team.ws);
        let listed = app.get(&base, &team.admin.access).await.expect(200).clone();
        assert_eq!(listed[0]["id"], bot.as_str());
        assert_eq!(
            app.get(&format!("{base}/{bot}"), &team.admin.access).await.expect(200)["avatar_url"],
            "https://ci.example.org/logo.png"
        );

        let created = token(&app, &team, &bot, &["chat:write", "users:read"]).await;
        let secret = created["token"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("xoxb-") && secret.len() >= 45, "{secret}");
        assert_eq!(created["scopes"], json!(["chat:write", "users:read"]));
        assert_eq!(created["hint"], secret[secret.len() - 4..]);
        let tokens = format!("{base}/{bot}/tokens");
        let list = app.get(&tokens, &team.admin.access).await.expect(200).clone();
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert!(list[0].get("token").is_none());
        assert!(!list.to_string().contains(&secret), "the secret is shown once");

        let slack = |t: String| {
            let app = &app;
            async move {
                app.post("/api/slack/auth.test", Some(&t), json!({})).await.expect(200).clone()
            }
        };
        assert_eq!(slack(secret.clone()).await["ok"], true);

        // Rotation: the old secret stops, the new one works with the same scopes.
        let id = created["id"].as_str().unwrap();
        let rotated = app
            .post(&format!("{tokens}/{id}/rotate"), Some(&team.admin.access), json!({}))
            .await
            .expect(201)
            .clone();
        let fresh = rotated["token"].as_str().unwrap().to_owned();
        assert_ne!(fresh, secret);
        assert_eq!(rotated["scopes"], created["scopes"]);
        assert_eq!(slack(secret.clone()).await["error"], "token_revoked");
        assert_eq!(slack(fresh.clone()).await["ok"], true);
        app.post(&format!("{tokens}/{id}/rotate"), Some(&team.admin.access), json!({}))
            .await
            .expect_error(410, "token_revoked");

        // Revocation.
        let fresh_id = rotated["id"].as_str().unwrap();
        app.delete(&format!("{tokens}/{fresh_id}"), &team.admin.access).await.expect(204);
        assert_eq!(slack(fresh.clone()).await["error"], "token_revoked");
        let list = app.get(&tokens, &team.admin.access).await.expect(200).clone();
        assert!(list.as_array().unwrap().iter().all(|t| t["revoked_at"].is_string()));

        // An operator disabling the bot's account stops its tokens too, until enabled again.
        let held = token(&app, &team, &bot, &["chat:write"]).await["token"].as_str().unwrap().to_owned();
        app.raw_sql("UPDATE users SET status = 'disabled' WHERE id IN (SELECT user_id FROM bots)").await.unwrap();
        assert_eq!(slack(held.clone()).await["error"], "account_inactive");
        app.raw_sql("UPDATE users SET status = 'active' WHERE id IN (SELECT user_id FROM bots)").await.unwrap();
        assert_eq!(slack(held).await["ok"], true);

        // Deactivation revokes everything (tokens and webhooks) and keeps the bot listed.
        let live = token(&app, &team, &bot, &["chat:write"]).await;
        let alerts = channel(&app, &team, "alerts", "public").await;
        let hooks = format!("/api/v1/workspaces/{}/webhooks", team.ws);
        app.post(&hooks, Some(&team.admin.access), json!({"channel_id": alerts, "bot_id": bot}))
            .await
            .expect(201);
        let gone = app.delete(&format!("{base}/{bot}"), &team.admin.access).await.expect(200).clone();
        assert_eq!(gone["deactivated"], true);
        let answer = slack(live["token"].as_str().unwrap().to_owned()).await;
        assert_eq!(answer["ok"], false);
        assert!(matches!(answer["error"].as_str(), Some("token_revoked" | "account_inactive")), "{answer}");
        app.post(&tokens, Some(&team.admin.access), json!({"scopes": ["chat:write"]}))
            .await
            .expect_error(410, "bot_deactivated");
        let listed = app.get(&hooks, &team.admin.access).await.expect(200).clone();
        let listed = listed.as_array().unwrap();
        assert!(!listed.is_empty() && listed.iter().all(|h| h["revoked_at"].is_string()), "{listed:?}");

        let audit = app.audit_events(&team.admin.access).await;
        for action in ["bot.create", "bot.token_create", "bot.token_rotate", "bot.token_revoke", "bot.deactivate"] {
            assert!(audit.iter().any(|e| e["action"] == action), "{action} not audited");
        }
    }

    async fn bot_administration_refuses_bad_input_and_non_admins(app) {
        let team = app.team().await;
        let base = format!("/api/v1/workspaces/{}/bots", team.ws);
        let admin = Some(team.admin.access.as_str());
        let refused = |r: crate::harness::Reply, status: u16, code: &str, field: Option<&str>| {
            r.expect_error(status, code);
            if let Some(field) = field {
                assert_eq!(r.body["error"]["field"], field, "{}", r.body);
            }
        };
        refused(app.post(&base, admin, json!({"name": ""})).await, 422, "validation_failed", Some("name"));
        refused(
            app.post(&base, admin, json!({"name": "CI", "avatar_url": "javascript:alert(1)"})).await,
            422, "validation_failed", Some("avatar_url"),
        );
        refused(app.post(&base, admin, json!({"name": "CI", "admin": true})).await, 422, "invalid_body", None);
        // A member who may not manage members, and someone outside the workspace.
        refused(app.post(&base, Some(&team.ann.access), json!({"name": "CI"})).await, 403, "forbidden", None);
        let outsider = app.create_workspace(&team.admin, "Elsewhere").await;
        refused(
            app.post(&format!("/api/v1/workspaces/{outsider}/bots"), Some(&team.ann.access), json!({"name": "CI"})).await,
            404, "not_found", None,
        );
        app.post("/api/v1/workspaces/not-a-uuid/bots", admin, json!({"name": "CI"}))
            .await
            .expect_error(400, "invalid_path");

        let bot = create_bot(&app, &team).await;
        let tokens = format!("{base}/{bot}/tokens");
        refused(app.post(&tokens, admin, json!({"scopes": ["chat:write", "admin"]})).await, 422, "validation_failed", Some("scopes"));
        refused(app.post(&tokens, admin, json!({"scopes": []})).await, 422, "validation_failed", Some("scopes"));
        refused(app.post(&tokens, Some(&team.ann.access), json!({"scopes": ["chat:write"]})).await, 403, "forbidden", None);
        refused(
            app.post(&format!("{base}/{}/tokens", team.ann.user_id), admin, json!({"scopes": ["chat:write"]})).await,
            404, "not_found", None,
        );
        refused(
            app.delete(&format!("{tokens}/{}", uuid::Uuid::now_v7()), &team.admin.access).await,
            404, "not_found", None,
        );
        let private = channel(&app, &team, "secret", "private").await;
        refused(
            app.post(&format!("/api/v1/workspaces/{}/webhooks", team.ws), Some(&team.ann.access),
                json!({"channel_id": private, "bot_id": bot})).await,
            403, "forbidden", None,
        );

        // The Slack surface answers in Slack's terms, with status 200 for method errors.
        let slack = app.post("/api/slack/auth.test", None, json!({})).await;
        assert_eq!(slack.expect(200)["error"], "not_authed");
        let slack = app.post("/api/slack/auth.test", Some(&team.admin.access), json!({})).await;
        assert_eq!(slack.expect(200)["error"], "invalid_auth");
        let unknown = app.post("/hooks/not-a-hook", None, json!({"text": "hi"})).await;
        assert_eq!(unknown.status.as_u16(), 404);
        assert_eq!(unknown.body, "no_service");
    }

    async fn slack_tokens_are_taken_from_the_authorization_header_only(app) {
        use futures::StreamExt as _;
        let team = app.team().await;
        let bot = create_bot(&app, &team).await;
        let t = token(&app, &team, &bot, ALL_SCOPES).await["token"].as_str().unwrap().to_owned();
        let url = |method: &str| format!("{}/api/slack/{method}", app.base);
        let answer = |req: reqwest::RequestBuilder| async move {
            let r = tokio::time::timeout(Duration::from_secs(10), req.send())
                .await
                .expect("answered without waiting for the body")
                .expect("request sent");
            crate::harness::reply(r).await
        };

        // A token in the query string is refused, even beside a good header, in Slack's shape.
        for (query, header) in [
            (format!("token={t}"), false),
            (format!("token={t}"), true),
            (format!("limit=1&to%6Ben={t}"), true),
            ("token=".to_owned(), true),
        ] {
            let mut req = app.client.get(format!("{}?{query}", url("auth.test")));
            if header {
                req = req.bearer_auth(&t);
            }
            let r = answer(req).await;
            let body = r.expect(200);
            assert_eq!(body["ok"], false, "{body}");
            assert_eq!(body["error"], "invalid_auth", "{body}");
            assert!(body["response_metadata"]["messages"][0].as_str().unwrap().contains("Authorization header"), "{body}");
            assert_eq!(r.headers["x-concord-authz"], "denied");
        }
        // A token in the body is not read: without the header the call is not authenticated.
        let r = answer(app.client.post(url("auth.test")).form(&[("token", t.as_str())])).await;
        assert_eq!(r.expect(200)["error"], "not_authed", "{}", r.body);
        let r = answer(app.client.post(url("auth.test")).json(&json!({"token": t}))).await;
        assert_eq!(r.expect(200)["error"], "not_authed", "{}", r.body);
        // The header is how Slack's SDKs send it.
        let r = answer(app.client.get(url("auth.test")).bearer_auth(&t)).await;
        assert_eq!(r.expect(200)["ok"], true, "{}", r.body);
        let r = answer(app.client.post(url("users.list")).bearer_auth(&t).form(&[("limit", "1")])).await;
        assert_eq!(r.expect(200)["members"].as_array().unwrap().len(), 1, "{}", r.body);

        // The token is checked before the body is read: a body that never ends is not waited
        // for when the token is missing or wrong.
        let endless = || {
            let first: Result<Vec<u8>, std::io::Error> = Ok(b"channel=C1&text=".to_vec());
            reqwest::Body::wrap_stream(
                futures::stream::iter([first]).chain(futures::stream::pending()),
            )
        };
        // The server answers and closes without reading the rest, so a client still sending
        // may lose the answer to the reset that follows (`IncompleteMessage`): either way it
        // was not waited for.
        let refused_early = |req: reqwest::RequestBuilder, error: &'static str| async move {
            match tokio::time::timeout(Duration::from_secs(10), req.send())
                .await
                .expect("answered without waiting for the body")
            {
                Ok(r) => {
                    let r = crate::harness::reply(r).await;
                    assert_eq!(r.expect(200)["error"], error, "{}", r.body);
                }
                Err(e) => assert!(e.is_request(), "{e:?}"),
            }
        };
        refused_early(
            app.client
                .post(url("chat.postMessage"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(endless()),
            "not_authed",
        )
        .await;
        refused_early(
            app.client
                .post(url("chat.postMessage"))
                .bearer_auth("xoxb-not-a-token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(endless()),
            "invalid_auth",
        )
        .await;
        // Nor is a body over the limit, or one that does not parse, read for a wrong token.
        refused_early(
            app.client
                .post(url("chat.postMessage"))
                .bearer_auth("xoxb-not-a-token")
                .header("content-type", "application/json")
                .body(vec![b'{'; 300 * 1024]),
            "invalid_auth",
        )
        .await;
        // With a good token, the body is read and its limit applies (the refusal comes while
        // the client may still be sending, so it may lose it to the reset, as above).
        match tokio::time::timeout(
            Duration::from_secs(10),
            app.client
                .post(url("chat.postMessage"))
                .bearer_auth(&t)
                .header("content-type", "application/json")
                .body(vec![b'{'; 300 * 1024])
                .send(),
        )
        .await
        .expect("answered")
        {
            Ok(r) => {
                let r = crate::harness::reply(r).await;
                assert_eq!(r.status.as_u16(), 413, "{}", r.body);
                assert_eq!(r.body["error"], "request_too_large");
            }
            Err(e) => assert!(e.is_request(), "{e:?}"),
        }
    }

    async fn users_info_reads_only_the_member_asked_about(app) {
        let team = app.team().await;
        let bot = create_bot(&app, &team).await;
        let t = token(&app, &team, &bot, &["users:read"]).await["token"].as_str().unwrap().to_owned();
        let info = |user: String| {
            let (app, t) = (&app, &t);
            async move { app.post("/api/slack/users.info", Some(t), json!({ "user": user })).await.expect(200).clone() }
        };
        let ann = info(team.ann.user_id.clone()).await;
        assert_eq!(ann["user"]["id"], team.ann.user_id.as_str(), "{ann}");
        assert_eq!(ann["user"]["real_name"], "Ann", "{ann}");
        assert_eq!(ann["user"]["is_bot"], false, "{ann}");
        let me = info(bot.clone()).await;
        assert_eq!(me["user"]["is_bot"], true, "{me}");
        assert_eq!(me["user"]["profile"]["image_72"], "https://ci.example.org/logo.png", "{me}");

        // Bo's stored name no longer decrypts (Ann's ciphertext moved into his row): whatever
        // reads every member now fails, and asking about Ann still works, since only she is
        // read.
        let id = |id: &str| match app.backend {
            crate::harness::Backend::Sqlite => format!("X'{}'", id.replace('-', "")),
            crate::harness::Backend::Postgres => format!("'{id}'"),
        };
        app.raw_sql(&format!(
            "UPDATE users SET display_name_enc = (SELECT display_name_enc FROM users WHERE id = {}) WHERE id = {}",
            id(&team.ann.user_id),
            id(&team.bo.user_id)
        ))
        .await
        .unwrap();
        let listed = app.post("/api/slack/users.list", Some(&t), json!({})).await.expect(200).clone();
        assert_eq!(listed["error"], "internal_error", "{listed}");
        let ann = info(team.ann.user_id.clone()).await;
        assert_eq!(ann["ok"], true, "{ann}");
        assert_eq!(ann["user"]["real_name"], "Ann", "{ann}");
        assert_eq!(info(team.bo.user_id.clone()).await["error"], "internal_error");

        // Someone outside the workspace is not found, like someone who does not exist.
        let stranger = app.create_user(&team.admin, "stranger@example.org", "Stranger").await;
        assert_eq!(info(stranger).await["error"], "user_not_found");
        assert_eq!(info(uuid::Uuid::now_v7().to_string()).await["error"], "user_not_found");
    }
}
