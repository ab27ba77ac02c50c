//! Channels and messages over REST: what members and outsiders see.

use serde_json::{json, Value};

use crate::harness::{both_backends, Reply, Session, TestApp};

pub async fn channel(
    app: &TestApp,
    who: &Session,
    ws: &str,
    name: &str,
    visibility: &str,
) -> String {
    let r = app
        .post(
            &format!("/api/v1/workspaces/{ws}/channels"),
            Some(&who.access),
            json!({"name": name, "visibility": visibility}),
        )
        .await;
    r.expect(201)["id"].as_str().unwrap().to_owned()
}

pub async fn say(app: &TestApp, who: &Session, channel: &str, text: &str) -> Value {
    let r = app
        .post(
            &format!("/api/v1/channels/{channel}/messages"),
            Some(&who.access),
            json!({"text": text}),
        )
        .await;
    r.expect(201).clone()
}

async fn seqs(app: &TestApp, who: &Session, channel: &str, query: &str) -> Vec<i64> {
    let r = app
        .get(
            &format!("/api/v1/channels/{channel}/messages?{query}"),
            &who.access,
        )
        .await;
    r.expect(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect()
}

async fn entry(app: &TestApp, who: &Session, ws: &str, channel: &str) -> Value {
    let list = app
        .get(&format!("/api/v1/workspaces/{ws}/channels"), &who.access)
        .await;
    list.expect(200)
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == channel)
        .unwrap()
        .clone()
}

async fn post_as(app: &TestApp, who: &Session, channel: &str, body: Value) -> Reply {
    app.post(
        &format!("/api/v1/channels/{channel}/messages"),
        Some(&who.access),
        body,
    )
    .await
}

/// The denials recorded so far. A refused write is answered before the denial it recorded is
/// committed (with the writer's next commit), so a write made and answered first settles it.
async fn denials(app: &TestApp, admin: &Session, settle_in: &str) -> Vec<Value> {
    say(app, admin, settle_in, "settles what was recorded before").await;
    let r = app
        .get(
            "/api/v1/audit/events?action=permission.denied&outcome=denied",
            &admin.access,
        )
        .await;
    r.expect(200)["events"].as_array().unwrap().clone()
}

both_backends! {
    async fn a_conversation_in_a_public_channel(app) {
        let t = app.team().await;
        let general = channel(&app, &t.ann, &t.ws, "general", "public").await;
        // Bo finds it by browsing and joins; posting before joining is refused.
        let browse = app.get(&format!("/api/v1/workspaces/{}/channels/browse", t.ws), &t.bo.access).await;
        assert!(browse.expect(200).as_array().unwrap().iter().any(|c| c["name"] == "general"));
        app.post(&format!("/api/v1/channels/{general}/messages"), Some(&t.bo.access), json!({"text": "hi"})).await
            .expect_error(422, "not_in_channel");
        app.call(reqwest::Method::POST, &format!("/api/v1/channels/{general}/join"), Some(&t.bo.access), None).await.expect(200);

        let hello = say(&app, &t.ann, &general, "Hello **team**").await;
        assert_eq!(hello["seq"], 1);
        assert_eq!(hello["text"], "Hello **team**");

        // A retried post with the same client id is the same message.
        let body = json!({"text": "once only", "client_msg_id": "retry-1"});
        let a = app.post(&format!("/api/v1/channels/{general}/messages"), Some(&t.bo.access), body.clone()).await;
        let b = app.post(&format!("/api/v1/channels/{general}/messages"), Some(&t.bo.access), body).await;
        assert_eq!(a.expect(201)["id"], b.expect(201)["id"]);

        // Edits keep history; only the author edits.
        let id = hello["id"].as_str().unwrap();
        app.call(reqwest::Method::PATCH, &format!("/api/v1/messages/{id}"), Some(&t.bo.access), Some(json!({"text": "mine now"}))).await
            .expect_error(422, "not_author");
        let edited = app.call(reqwest::Method::PATCH, &format!("/api/v1/messages/{id}"), Some(&t.ann.access), Some(json!({"text": "Hello **everyone**"}))).await;
        assert_eq!(edited.expect(200)["text"], "Hello **everyone**");
        assert!(edited.body["edited_at"].is_string());
        let versions = app.get(&format!("/api/v1/messages/{id}/versions"), &t.bo.access).await;
        assert_eq!(versions.expect(200).as_array().unwrap()[0]["text"], "Hello **team**");

        // Threads count their replies.
        let reply = app.post(&format!("/api/v1/channels/{general}/messages"), Some(&t.bo.access),
            json!({"text": "in thread", "thread_root_id": id})).await;
        reply.expect(201);
        let thread = app.get(&format!("/api/v1/messages/{id}/thread"), &t.ann.access).await;
        let thread = thread.expect(200).as_array().unwrap().clone();
        assert_eq!(thread.len(), 2);
        assert_eq!(thread[0]["reply_count"], 1);
        assert_eq!(thread[1]["text"], "in thread");

        // One reaction per user per emoji.
        for who in [&t.ann, &t.bo, &t.bo] {
            app.call(reqwest::Method::PUT, &format!("/api/v1/messages/{id}/reactions/:thumbsup:"), Some(&who.access), None).await.expect(200);
        }
        let r = app.call(reqwest::Method::PUT, &format!("/api/v1/messages/{id}/reactions/%F0%9F%8E%89"), Some(&t.bo.access), None).await;
        let reactions = &r.expect(200)["reactions"];
        assert_eq!(reactions[":thumbsup:"].as_array().unwrap().len(), 2);
        assert_eq!(reactions["🎉"].as_array().unwrap().len(), 1);
        app.call(reqwest::Method::PUT, &format!("/api/v1/messages/{id}/reactions/not%20emoji"), Some(&t.bo.access), None).await
            .expect_error(422, "validation_failed");

        // Pins.
        app.call(reqwest::Method::PUT, &format!("/api/v1/messages/{id}/pin"), Some(&t.bo.access), None).await.expect(200);
        let pins = app.get(&format!("/api/v1/channels/{general}/pins"), &t.ann.access).await;
        assert_eq!(pins.expect(200).as_array().unwrap().len(), 1);

        // Deleting leaves a tombstone; Bo may not delete Ann's message.
        app.delete(&format!("/api/v1/messages/{id}"), &t.bo.access).await.expect_error(403, "forbidden");
        app.delete(&format!("/api/v1/messages/{id}"), &t.ann.access).await.expect(204);
        let history = app.get(&format!("/api/v1/channels/{general}/messages"), &t.bo.access).await;
        let history = history.expect(200).as_array().unwrap().clone();
        assert_eq!(history.len(), 2, "thread replies stay out of the channel history");
        assert_eq!(history[0]["deleted"], true);
        assert_eq!(history[0]["text"], "");
        assert_eq!(history[0]["reactions"], json!({}));
        assert_eq!(history[1]["text"], "once only");

        // Cy never joined: can read the public channel, not post in it.
        app.get(&format!("/api/v1/channels/{general}/messages"), &t.cy.access).await.expect(200);
    }

    async fn history_pages_in_a_stable_order_and_links_resolve(app) {
        let t = app.team().await;
        let c = channel(&app, &t.ann, &t.ws, "log", "public").await;
        let mut ids = Vec::new();
        for i in 1..=25 {
            ids.push(say(&app, &t.ann, &c, &format!("line {i}")).await["id"].as_str().unwrap().to_owned());
        }
        assert_eq!(seqs(&app, &t.ann, &c, "limit=10").await, (16..=25).collect::<Vec<_>>());
        assert_eq!(seqs(&app, &t.ann, &c, "limit=10&before=16").await, (6..=15).collect::<Vec<_>>());
        assert_eq!(seqs(&app, &t.ann, &c, "limit=10&before=6").await, (1..=5).collect::<Vec<_>>());
        assert_eq!(seqs(&app, &t.ann, &c, "limit=3&after=20").await, vec![21, 22, 23]);
        app.get(&format!("/api/v1/channels/{c}/messages?limit=many"), &t.ann.access).await.expect_error(400, "invalid_query");

        let ctx = app.get(&format!("/api/v1/messages/{}/context?around=2", ids[9]), &t.ann.access).await;
        let ctx = ctx.expect(200).clone();
        assert_eq!(ctx["message"]["text"], "line 10");
        let seqs: Vec<i64> = ctx["messages"].as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()).collect();
        assert_eq!(seqs, vec![8, 9, 10, 11, 12]);
    }

    async fn private_channels_and_conversations_stay_private(app) {
        let t = app.team().await;
        let secret = channel(&app, &t.ann, &t.ws, "hr-cases", "private").await;
        say(&app, &t.ann, &secret, "confidential").await;

        // Cy cannot see it anywhere: not in browse, not in their list, 404 on every route.
        let browse = app.get(&format!("/api/v1/workspaces/{}/channels/browse", t.ws), &t.cy.access).await;
        assert!(!browse.expect(200).to_string().contains("hr-cases"));
        let mine = app.get(&format!("/api/v1/workspaces/{}/channels", t.ws), &t.cy.access).await;
        assert!(!mine.expect(200).to_string().contains("hr-cases"));
        for path in [format!("/api/v1/channels/{secret}"), format!("/api/v1/channels/{secret}/messages"), format!("/api/v1/channels/{secret}/members")] {
            app.get(&path, &t.cy.access).await.expect_error(404, "not_found");
        }
        app.call(reqwest::Method::POST, &format!("/api/v1/channels/{secret}/join"), Some(&t.cy.access), None).await.expect_error(404, "not_found");
        // Even the system admin does not read a private channel it is not in.
        app.get(&format!("/api/v1/channels/{secret}/messages"), &t.admin.access).await.expect_error(404, "not_found");

        // Ann invites Bo, who then reads it.
        app.post(&format!("/api/v1/channels/{secret}/members"), Some(&t.ann.access), json!({"user_id": t.bo.user_id})).await.expect(200);
        let h = app.get(&format!("/api/v1/channels/{secret}/messages"), &t.bo.access).await;
        assert_eq!(h.expect(200)[0]["text"], "confidential");

        // A direct conversation is found again, not duplicated, and only its two people see it.
        let dm = app.post(&format!("/api/v1/workspaces/{}/conversations", t.ws), Some(&t.ann.access), json!({"user_ids": [t.bo.user_id]})).await;
        let dm = dm.expect(200)["id"].as_str().unwrap().to_owned();
        let again = app.post(&format!("/api/v1/workspaces/{}/conversations", t.ws), Some(&t.bo.access), json!({"user_ids": [t.ann.user_id]})).await;
        assert_eq!(again.expect(200)["id"], dm.as_str());
        assert_eq!(again.body["kind"], "direct");
        say(&app, &t.bo, &dm, "just us").await;
        app.get(&format!("/api/v1/channels/{dm}/messages"), &t.cy.access).await.expect_error(404, "not_found");
    }

    async fn unread_mentions_and_archived_channels(app) {
        let t = app.team().await;
        let c = channel(&app, &t.ann, &t.ws, "ops", "public").await;
        app.call(reqwest::Method::POST, &format!("/api/v1/channels/{c}/join"), Some(&t.bo.access), None).await.expect(200);
        say(&app, &t.ann, &c, "one").await;
        say(&app, &t.ann, &c, &format!("ping @{}", t.bo.user_id)).await;
        let last = say(&app, &t.ann, &c, "@channel deploy at five").await;

        let v = entry(&app, &t.bo, &t.ws, &c).await;
        assert_eq!(v["unread_count"], 3);
        assert_eq!(v["mention_count"], 2);
        // The author's own messages are read.
        let list = app.get(&format!("/api/v1/workspaces/{}/channels", t.ws), &t.ann.access).await;
        assert_eq!(list.expect(200)[0]["unread_count"], 0);

        app.put(&format!("/api/v1/channels/{c}/read"), &t.bo.access, json!({"seq": last["seq"]})).await.expect(200);
        let v = entry(&app, &t.bo, &t.ws, &c).await;
        assert_eq!(v["unread_count"], 0);
        assert_eq!(v["mention_count"], 0);

        // Archived: read-only for everyone, and only moderators archive.
        app.put(&format!("/api/v1/channels/{c}/archived"), &t.bo.access, json!({"archived": true})).await.expect_error(403, "forbidden");
        app.put(&format!("/api/v1/channels/{c}/archived"), &t.ann.access, json!({"archived": true})).await.expect(200);
        app.post(&format!("/api/v1/channels/{c}/messages"), Some(&t.bo.access), json!({"text": "late"})).await
            .expect_error(422, "channel_archived");
        app.get(&format!("/api/v1/channels/{c}/messages"), &t.bo.access).await.expect(200);
        app.put(&format!("/api/v1/channels/{c}/archived"), &t.ann.access, json!({"archived": false})).await.expect(200);
        say(&app, &t.bo, &c, "back").await;

        // Bad input.
        app.post(&format!("/api/v1/channels/{c}/messages"), Some(&t.bo.access), json!({"text": "x".repeat(16 * 1024 + 1)})).await
            .expect_error(422, "validation_failed");
        app.post(&format!("/api/v1/channels/{c}/messages"), Some(&t.bo.access), json!({"text": "   "})).await
            .expect_error(422, "validation_failed");
        app.post(&format!("/api/v1/workspaces/{}/channels", t.ws), Some(&t.bo.access), json!({"name": "Ops Team"})).await
            .expect_error(422, "validation_failed");
        app.post(&format!("/api/v1/workspaces/{}/channels", t.ws), Some(&t.bo.access), json!({"name": "ops"})).await
            .expect_error(409, "channel_name_taken");
    }
}

both_backends! {
    async fn chat_changes_are_audited_exactly_once(app) {
        let t = app.team().await;
        let c = channel(&app, &t.ann, &t.ws, "audited", "public").await;
        app.call(reqwest::Method::POST, &format!("/api/v1/channels/{c}/join"), Some(&t.bo.access), None).await.expect(200);
        let m = say(&app, &t.ann, &c, "draft").await;
        let id = m["id"].as_str().unwrap();
        app.call(reqwest::Method::PATCH, &format!("/api/v1/messages/{id}"), Some(&t.ann.access), Some(json!({"text": "final"}))).await.expect(200);
        app.delete(&format!("/api/v1/messages/{id}"), &t.ann.access).await.expect(204);
        app.put(&format!("/api/v1/channels/{c}/archived"), &t.ann.access, json!({"archived": true})).await.expect(200);
        app.put(&format!("/api/v1/channels/{c}/archived"), &t.ann.access, json!({"archived": false})).await.expect(200);
        app.delete(&format!("/api/v1/channels/{c}/members/{}", t.bo.user_id), &t.bo.access).await.expect(204);
        // A refused delete is recorded as a denial.
        let other = say(&app, &t.ann, &c, "keep").await;
        app.delete(&format!("/api/v1/messages/{}", other["id"].as_str().unwrap()), &t.cy.access).await.expect_error(403, "forbidden");

        for (action, actor, target) in [
            ("channel.created", &t.ann, c.as_str()),
            ("channel.member_added", &t.bo, c.as_str()),
            ("message.edited", &t.ann, id),
            ("message.deleted", &t.ann, id),
            ("channel.archived", &t.ann, c.as_str()),
            ("channel.unarchived", &t.ann, c.as_str()),
            ("channel.member_removed", &t.bo, c.as_str()),
        ] {
            let r = app.get(&format!("/api/v1/audit/events?action={action}"), &t.admin.access).await;
            let events = r.expect(200)["events"].as_array().unwrap().clone();
            assert_eq!(events.len(), 1, "{action}: {events:?}");
            assert_eq!(events[0]["outcome"], "allowed", "{action}");
            assert_eq!(events[0]["actor_id"], actor.user_id.as_str(), "{action}");
            assert_eq!(events[0]["target_id"], target, "{action}");
        }
        let r = app.get("/api/v1/audit/events?action=permission.denied&outcome=denied", &t.admin.access).await;
        let denials = r.expect(200)["events"].as_array().unwrap().clone();
        assert!(denials.iter().any(|e| e["actor_id"] == t.cy.user_id.as_str() && e["target_id"] == c.as_str()), "{denials:?}");
    }

    async fn posting_is_decided_on_the_state_at_the_write(app) {
        let t = app.team().await;
        let settle = channel(&app, &t.admin, &t.ws, "settle", "private").await;
        // Taken out of a private channel, Bo can no longer post in it (nor learn it exists),
        // and the refusal is audited as a denial of messages.post on that channel.
        let desk = channel(&app, &t.ann, &t.ws, "desk", "private").await;
        app.post(&format!("/api/v1/channels/{desk}/members"), Some(&t.ann.access), json!({"user_id": t.bo.user_id})).await.expect(200);
        post_as(&app, &t.bo, &desk, json!({"text": "hello desk"})).await.expect(201);
        app.delete(&format!("/api/v1/channels/{desk}/members/{}", t.bo.user_id), &t.ann.access).await.expect(204);
        post_as(&app, &t.bo, &desk, json!({"text": "still here?"})).await.expect_error(404, "not_found");
        let found = denials(&app, &t.admin, &settle).await;
        let denial = found.iter().find(|e| e["actor_id"] == t.bo.user_id.as_str() && e["target_id"] == desk.as_str());
        assert_eq!(denial.unwrap_or_else(|| panic!("{found:?}"))["details"]["permission"], "messages.post");

        // Out of a public channel, a post is refused until one joins again (not a denial).
        let lobby = channel(&app, &t.ann, &t.ws, "lobby", "public").await;
        app.call(reqwest::Method::POST, &format!("/api/v1/channels/{lobby}/join"), Some(&t.bo.access), None).await.expect(200);
        app.delete(&format!("/api/v1/channels/{lobby}/members/{}", t.bo.user_id), &t.bo.access).await.expect(204);
        post_as(&app, &t.bo, &lobby, json!({"text": "knock"})).await.expect_error(422, "not_in_channel");
        assert!(!denials(&app, &t.admin, &settle).await.iter().any(|e| e["target_id"] == lobby.as_str()));

        // A role without messages.post reads and joins but does not post, react or edit.
        app.post(&format!("/api/v1/workspaces/{}/roles", t.ws), Some(&t.admin.access),
            json!({"name": "reader", "permissions": ["workspace.read", "channels.read"]})).await.expect(201);
        app.put(&format!("/api/v1/workspaces/{}/members/{}", t.ws, t.cy.user_id), &t.admin.access, json!({"role": "reader"})).await.expect(200);
        app.call(reqwest::Method::POST, &format!("/api/v1/channels/{lobby}/join"), Some(&t.cy.access), None).await.expect(200);
        post_as(&app, &t.cy, &lobby, json!({"text": "may I?"})).await.expect_error(403, "forbidden");
        let hello = say(&app, &t.ann, &lobby, "hello").await;
        let hello = hello["id"].as_str().unwrap();
        app.call(reqwest::Method::PUT, &format!("/api/v1/messages/{hello}/reactions/:wave:"), Some(&t.cy.access), None).await
            .expect_error(403, "forbidden");
        let cy_denials: Vec<Value> = denials(&app, &t.admin, &settle).await.into_iter()
            .filter(|e| e["actor_id"] == t.cy.user_id.as_str() && e["target_id"] == lobby.as_str())
            .collect();
        assert_eq!(cy_denials.len(), 2, "{cy_denials:?}");
        assert!(cy_denials.iter().all(|e| e["details"]["permission"] == "messages.post"));
        let history = app.get(&format!("/api/v1/channels/{lobby}/messages"), &t.ann.access).await;
        assert_eq!(history.expect(200).as_array().unwrap().len(), 1);

        // Reacting needs the channel too: a member who left may not react.
        app.call(reqwest::Method::PUT, &format!("/api/v1/messages/{hello}/reactions/:wave:"), Some(&t.bo.access), None).await
            .expect_error(422, "not_in_channel");
    }

    async fn a_retried_post_is_answered_even_where_a_new_one_is_refused(app) {
        let t = app.team().await;
        let c = channel(&app, &t.ann, &t.ws, "retries", "public").await;
        let path = format!("/api/v1/channels/{c}/messages");
        let root = say(&app, &t.ann, &c, "root").await;
        let root = root["id"].as_str().unwrap().to_owned();
        let reply = json!({"text": "a reply", "thread_root_id": root, "client_msg_id": "r-1"});
        let first = app.post(&path, Some(&t.ann.access), reply.clone()).await.expect(201).clone();
        let top = json!({"text": "top", "client_msg_id": "t-1"});
        let posted = app.post(&path, Some(&t.ann.access), top.clone()).await.expect(201).clone();
        assert_eq!(posted["client_msg_id"], "t-1");

        // The root is deleted: a new reply is refused, the retried one is the reply posted.
        app.delete(&format!("/api/v1/messages/{root}"), &t.ann.access).await.expect(204);
        let again = app.post(&path, Some(&t.ann.access), reply).await;
        assert_eq!(again.expect(201)["id"], first["id"]);
        app.post(&path, Some(&t.ann.access), json!({"text": "late reply", "thread_root_id": root, "client_msg_id": "r-2"})).await
            .expect_error(422, "invalid_thread");

        // Archived: a new post is refused, the retried one is the message posted.
        app.put(&format!("/api/v1/channels/{c}/archived"), &t.ann.access, json!({"archived": true})).await.expect(200);
        let again = app.post(&path, Some(&t.ann.access), top).await;
        assert_eq!(again.expect(201)["id"], posted["id"]);
        assert_eq!(again.body["seq"], posted["seq"]);
        app.post(&path, Some(&t.ann.access), json!({"text": "new", "client_msg_id": "t-2"})).await
            .expect_error(422, "channel_archived");
        app.put(&format!("/api/v1/channels/{c}/archived"), &t.ann.access, json!({"archived": false})).await.expect(200);
        let again = app.post(&path, Some(&t.ann.access), json!({"text": "top", "client_msg_id": "t-1"})).await;
        assert_eq!(again.expect(201)["id"], posted["id"]);

        // The same client id from another author is another message; no sequence number is
        // spent on a retry.
        app.call(reqwest::Method::POST, &format!("/api/v1/channels/{c}/join"), Some(&t.bo.access), None).await.expect(200);
        let theirs = app.post(&path, Some(&t.bo.access), json!({"text": "top", "client_msg_id": "t-1"})).await.expect(201).clone();
        assert_ne!(theirs["id"], posted["id"]);
        assert_eq!(theirs["seq"].as_i64().unwrap(), posted["seq"].as_i64().unwrap() + 1);
        assert_eq!(theirs["client_msg_id"], "t-1");
    }

    async fn posting_moves_only_the_authors_read_pointer_forward(app) {
        let t = app.team().await;
        let c = channel(&app, &t.ann, &t.ws, "pointers", "public").await;
        app.call(reqwest::Method::POST, &format!("/api/v1/channels/{c}/join"), Some(&t.bo.access), None).await.expect(200);
        for text in ["one", "two", "three"] {
            say(&app, &t.ann, &c, text).await;
        }
        let ann = entry(&app, &t.ann, &t.ws, &c).await;
        assert_eq!((ann["last_seq"].as_i64(), ann["last_read_seq"].as_i64()), (Some(3), Some(3)));
        let bo = entry(&app, &t.bo, &t.ws, &c).await;
        assert_eq!((bo["last_read_seq"].as_i64(), bo["unread_count"].as_i64()), (Some(0), Some(3)));

        // Bo's post marks it, and what came before it, read for him; not for Ann.
        say(&app, &t.bo, &c, "four").await;
        let bo = entry(&app, &t.bo, &t.ws, &c).await;
        assert_eq!((bo["last_read_seq"].as_i64(), bo["unread_count"].as_i64()), (Some(4), Some(0)));
        let ann = entry(&app, &t.ann, &t.ws, &c).await;
        assert_eq!((ann["last_read_seq"].as_i64(), ann["unread_count"].as_i64()), (Some(3), Some(1)));

        // A thread reply takes a sequence number and moves its author's pointer too.
        let root = say(&app, &t.ann, &c, "five").await;
        app.post(&format!("/api/v1/channels/{c}/messages"), Some(&t.bo.access),
            json!({"text": "six", "thread_root_id": root["id"]})).await.expect(201);
        let bo = entry(&app, &t.bo, &t.ws, &c).await;
        assert_eq!((bo["last_seq"].as_i64(), bo["last_read_seq"].as_i64()), (Some(6), Some(6)));
    }

    async fn channels_and_workspaces_are_listed_by_name(app) {
        // Names are stored encrypted, so the server sorts them after decrypting.
        let t = app.team().await;
        for name in ["zulu", "alpha", "mike"] {
            channel(&app, &t.ann, &t.ws, name, "public").await;
        }
        channel(&app, &t.ann, &t.ws, "kilo", "private").await;
        app.post(&format!("/api/v1/workspaces/{}/conversations", t.ws), Some(&t.ann.access),
            json!({"user_ids": [t.bo.user_id]})).await.expect(200);
        let names = |list: &Value| -> Vec<String> {
            list.as_array().unwrap().iter()
                .map(|c| format!("{}:{}", c["kind"].as_str().unwrap(), c["name"].as_str().unwrap_or("-")))
                .collect()
        };
        let browse = app.get(&format!("/api/v1/workspaces/{}/channels/browse", t.ws), &t.bo.access).await;
        assert_eq!(names(browse.expect(200)), ["public:alpha", "public:mike", "public:zulu"]);
        let mine = app.get(&format!("/api/v1/workspaces/{}/channels", t.ws), &t.ann.access).await;
        assert_eq!(
            names(mine.expect(200)),
            ["direct:-", "private:kilo", "public:alpha", "public:mike", "public:zulu"]
        );
        app.create_workspace(&t.admin, "Zeta lab").await;
        app.create_workspace(&t.admin, "Alpha lab").await;
        let list = app.get("/api/v1/workspaces", &t.admin.access).await;
        let workspaces: Vec<String> = list.expect(200).as_array().unwrap().iter()
            .map(|w| format!("{} ({})", w["name"].as_str().unwrap(), w["slug"].as_str().unwrap()))
            .collect();
        assert_eq!(workspaces, ["Alpha lab (alpha-lab)", "Clinic (clinic)", "Zeta lab (zeta-lab)"]);
    }
}

both_backends! {
    async fn plain_posts_are_stored_on_the_writers_thread_and_read_back_like_the_others(app) {
        let t = app.team().await;
        let c = channel(&app, &t.ann, &t.ws, "fast", "public").await;
        app.call(reqwest::Method::POST, &format!("/api/v1/channels/{c}/join"), Some(&t.bo.access), None).await.expect(200);
        let path = format!("/api/v1/channels/{c}/messages");
        // The workspace key's first uses are reserved by the general path.
        say(&app, &t.ann, &c, "warm").await;
        let (ran, declined) = app.store.raw_writes();
        // Plain posts (SQLite: on the writer's thread).
        let first = app.post(&path, Some(&t.bo.access), json!({"text": "one", "client_msg_id": "fast-1"})).await.expect(201).clone();
        let second = say(&app, &t.ann, &c, "two").await;
        // A retry, a reply and a mention take the general path and see the plain posts.
        let retry = app.post(&path, Some(&t.bo.access), json!({"text": "one", "client_msg_id": "fast-1"})).await.expect(201).clone();
        assert_eq!(retry["id"], first["id"]);
        assert_eq!(retry["seq"], 2);
        let root = first["id"].as_str().unwrap();
        let reply = app.post(&path, Some(&t.ann.access), json!({"text": "re", "thread_root_id": root})).await.expect(201).clone();
        let bo_id = app.get("/api/v1/users/me", &t.bo.access).await.expect(200)["id"].as_str().unwrap().to_owned();
        let mention = say(&app, &t.ann, &c, &format!("over to you @{bo_id}")).await;
        let (ran_now, declined_now) = app.store.raw_writes();
        if app.backend == Backend::Sqlite {
            assert_eq!(ran_now - ran, 2, "the two plain posts ran on the writer's thread");
            assert_eq!(declined_now - declined, 3, "the retry, the reply and the mention declined it");
        } else {
            assert_eq!((ran_now, declined_now), (ran, declined));
        }
        let seq = |v: &Value| v["seq"].as_i64();
        assert_eq!((seq(&first), seq(&second), seq(&reply), seq(&mention)), (Some(2), Some(3), Some(4), Some(5)));
        // Read back through the general path: text, times, client id, threads, read state.
        assert_eq!(seqs(&app, &t.bo, &c, "limit=10").await, vec![1, 2, 3, 5]);
        let listed = app.get(&format!("{path}?limit=10"), &t.ann.access).await.expect(200).as_array().unwrap().clone();
        let one = listed.iter().find(|m| m["id"] == first["id"]).unwrap();
        assert_eq!(one["text"], "one");
        assert_eq!(one["created_at"], first["created_at"]);
        assert_eq!(one["reply_count"], 1);
        assert!(listed.iter().any(|m| m["id"] == second["id"] && m["text"] == "two"));
        let thread = app.get(&format!("/api/v1/messages/{root}/thread"), &t.bo.access).await.expect(200).as_array().unwrap().clone();
        assert_eq!(thread[1]["id"], reply["id"]);
        // Posting moves the author's own read pointer, on either path.
        assert_eq!(entry(&app, &t.bo, &t.ws, &c).await["last_read_seq"], 2);
        assert_eq!(entry(&app, &t.ann, &t.ws, &c).await["last_read_seq"], 5);
        // Each post has its audit record, in the channel's workspace.
        let posted: Vec<Value> = app.audit_events(&t.admin.access).await.into_iter()
            .filter(|e| e["action"] == "message.posted" && e["details"]["channel_id"] == c)
            .collect();
        assert_eq!(posted.len(), 5, "{posted:?}");
        assert!(posted.iter().all(|e| e["workspace_id"] == t.ws), "{posted:?}");
    }
}
