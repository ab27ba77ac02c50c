//! Search over REST: what each person finds, in which languages, and that the index follows
//! edits, deletions, permission changes and a rebuild from scratch.

use std::time::Duration;

use serde_json::{json, Value};

use crate::chat::{channel, say};
use crate::harness::{both_backends, Session, TestApp, PASSWORD};

struct Team {
    ann: Session,
    bo: Session,
    ws: String,
    general: String,
    secret: String,
}

async fn team(app: &TestApp) -> Team {
    let admin = app.bootstrap_admin().await;
    for (email, name) in [("ann@example.org", "Ann"), ("bo@example.org", "Bo")] {
        app.create_user(&admin, email, name).await;
    }
    let ann = app.login("ann@example.org", PASSWORD).await;
    let bo = app.login("bo@example.org", PASSWORD).await;
    let ws = app.create_workspace(&admin, "Clinic").await;
    for s in [&ann, &bo] {
        app.add_member(&admin, &ws, s, "member").await;
    }
    let general = channel(app, &ann, &ws, "general", "public").await;
    let secret = channel(app, &ann, &ws, "secret", "private").await;
    app.post(
        &format!("/api/v1/channels/{general}/join"),
        Some(&bo.access),
        json!({}),
    )
    .await
    .expect(200);
    Team {
        ann,
        bo,
        ws,
        general,
        secret,
    }
}

async fn search_raw(app: &TestApp, who: &Session, ws: &str, query: &str) -> Value {
    let url = reqwest::Url::parse_with_params(
        &format!("{}/api/v1/workspaces/{ws}/search", app.base),
        &[("q", query), ("limit", "100")],
    )
    .unwrap();
    let path = &url.as_str()[app.base.len()..];
    app.get(path, &who.access).await.expect(200).clone()
}

/// The texts' message ids found for `query`, best first.
async fn find(app: &TestApp, who: &Session, ws: &str, query: &str) -> Vec<String> {
    search_raw(app, who, ws, query).await["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Searches until `query` finds `want` (documents are indexed once their edits settle).
async fn eventually_found(
    app: &TestApp,
    who: &Session,
    ws: &str,
    query: &str,
    want: &str,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let page = search_raw(app, who, ws, query).await;
        if page["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == want)
        {
            return page;
        }
        assert!(tokio::time::Instant::now() < deadline, "{query}: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn id(message: &Value) -> String {
    message["id"].as_str().unwrap().to_owned()
}

both_backends! {
    async fn each_operator_narrows_results(app) {
        let t = team(&app).await;
        let deploy = id(&say(&app, &t.ann, &t.general, "Deploying the release train today").await);
        let friday = id(&say(&app, &t.bo, &t.general, "No deploy on friday please").await);
        let link = id(&say(&app, &t.bo, &t.general, "deploy notes at https://example.org/notes").await);
        let hidden = id(&say(&app, &t.ann, &t.secret, "deploy the secret thing").await);
        let reply = app
            .post(
                &format!("/api/v1/channels/{}/messages", t.general),
                Some(&t.ann.access),
                json!({"text": "deploy follow-up in thread", "thread_root_id": deploy}),
            )
            .await
            .expect(201)
            .clone();
        let reply = id(&reply);
        app.call(reqwest::Method::PUT, &format!("/api/v1/messages/{friday}/reactions/%F0%9F%91%8D"), Some(&t.ann.access), None)
            .await;
        app.call(reqwest::Method::PUT, &format!("/api/v1/messages/{link}/pin"), Some(&t.ann.access), None)
            .await;

        let mut all = find(&app, &t.ann, &t.ws, "deploy").await;
        all.sort();
        let mut want = vec![deploy.clone(), friday.clone(), link.clone(), hidden.clone(), reply.clone()];
        want.sort();
        assert_eq!(all, want, "stemming: deploying, deploy");
        assert_eq!(find(&app, &t.ann, &t.ws, "\"release train\"").await, vec![deploy.clone()]);
        assert!(find(&app, &t.ann, &t.ws, "\"train release\"").await.is_empty());
        let without = find(&app, &t.ann, &t.ws, "deploy -friday").await;
        assert!(!without.contains(&friday) && without.contains(&deploy));
        assert_eq!(find(&app, &t.ann, &t.ws, "deploy in:#secret").await, vec![hidden.clone()]);
        let mut from_bo = find(&app, &t.ann, &t.ws, "deploy from:@bo@example.org").await;
        from_bo.sort();
        let mut want = vec![friday.clone(), link.clone()];
        want.sort();
        assert_eq!(from_bo, want);
        assert_eq!(find(&app, &t.ann, &t.ws, &format!("from:@{}", t.bo.user_id)).await.len(), 2);
        assert_eq!(find(&app, &t.ann, &t.ws, "has:link").await, vec![link.clone()]);
        assert_eq!(find(&app, &t.ann, &t.ws, "has:reaction").await, vec![friday.clone()]);
        assert_eq!(find(&app, &t.ann, &t.ws, "has:pin").await, vec![link.clone()]);
        assert!(find(&app, &t.ann, &t.ws, "has:file").await.is_empty());
        let mut threads = find(&app, &t.ann, &t.ws, "is:thread").await;
        threads.sort();
        let mut want = vec![deploy.clone(), reply.clone()];
        want.sort();
        assert_eq!(threads, want);

        let today = chrono::Utc::now().date_naive();
        let yesterday = today.pred_opt().unwrap();
        let tomorrow = today.succ_opt().unwrap();
        assert_eq!(find(&app, &t.ann, &t.ws, &format!("deploy on:{today}")).await.len(), 5);
        assert_eq!(find(&app, &t.ann, &t.ws, &format!("deploy after:{yesterday}")).await.len(), 5);
        assert!(find(&app, &t.ann, &t.ws, &format!("deploy before:{today}")).await.is_empty());
        assert!(find(&app, &t.ann, &t.ws, &format!("deploy after:{today}")).await.is_empty());
        assert_eq!(find(&app, &t.ann, &t.ws, &format!("deploy before:{tomorrow}")).await.len(), 5);

        // A direct conversation, named by the other person.
        let dm = app
            .post(
                &format!("/api/v1/workspaces/{}/conversations", t.ws),
                Some(&t.ann.access),
                json!({"user_ids": [t.bo.user_id]}),
            )
            .await;
        assert!(dm.status.is_success(), "{}", dm.body);
        let dm = dm.body["id"].as_str().unwrap().to_owned();
        let private = id(&say(&app, &t.ann, &dm, "deploy between us").await);
        assert_eq!(find(&app, &t.bo, &t.ws, "deploy in:@ann@example.org").await, vec![private]);

        // Newest first, paged with a cursor, with the total of all matches.
        let url = format!("/api/v1/workspaces/{}/search?q=deploy&sort=date&limit=2", t.ws);
        let page = app.get(&url, &t.ann.access).await.expect(200).clone();
        assert_eq!(page["total"], 6);
        assert_eq!(page["results"].as_array().unwrap().len(), 2);
        assert_eq!(page["index"]["state"], "ready");
        let cursor = page["next_cursor"].as_str().unwrap();
        let page2 = app.get(&format!("{url}&cursor={cursor}"), &t.ann.access).await.expect(200).clone();
        assert_eq!(page2["results"].as_array().unwrap().len(), 2);
        assert_ne!(page["results"][0]["id"], page2["results"][0]["id"]);
        assert!(page["results"][0]["created_at"].as_str().unwrap() >= page2["results"][0]["created_at"].as_str().unwrap());
        let snippet = search_raw(&app, &t.ann, &t.ws, "train").await["results"][0]["snippet_html"].clone();
        assert!(snippet.as_str().unwrap().contains("<b>train</b>"), "{snippet}");
        let first = &search_raw(&app, &t.ann, &t.ws, "\"release train\"").await["results"][0];
        assert_eq!(first["channel_name"], "general");
        assert_eq!(first["author_id"].as_str().unwrap(), t.ann.user_id);
    }

    async fn permissions_apply_at_query_time(app) {
        let t = team(&app).await;
        say(&app, &t.ann, &t.secret, "quarterly numbers look grim").await;
        say(&app, &t.ann, &t.general, "quarterly party on friday").await;
        // Bo is not in #secret: neither results nor counts reveal it.
        let bo = search_raw(&app, &t.bo, &t.ws, "quarterly").await;
        assert_eq!(bo["total"], 1);
        assert!(!bo.to_string().contains("grim"));
        let err = app
            .get(&format!("/api/v1/workspaces/{}/search?q=in:%23secret", t.ws), &t.bo.access)
            .await;
        err.expect_error(422, "validation_failed");
        // Added, Bo finds it; once he leaves, it is gone at once.
        app.post(
            &format!("/api/v1/channels/{}/members", t.secret),
            Some(&t.ann.access),
            json!({"user_id": t.bo.user_id}),
        )
        .await
        .expect(200);
        assert_eq!(search_raw(&app, &t.bo, &t.ws, "quarterly").await["total"], 2);
        app.delete(&format!("/api/v1/channels/{}/members/{}", t.secret, t.bo.user_id), &t.bo.access)
            .await;
        assert_eq!(search_raw(&app, &t.bo, &t.ws, "quarterly").await["total"], 1);
        // An outsider to the workspace is told it does not exist.
        let admin = app.login("admin@example.org", PASSWORD).await;
        app.create_user(&admin, "out@example.org", "Out").await;
        let out = app.login("out@example.org", PASSWORD).await;
        let r = app.get(&format!("/api/v1/workspaces/{}/search?q=quarterly", t.ws), &out.access).await;
        assert_eq!(r.status, 404);
    }

    async fn korean_japanese_and_chinese_are_found_by_partial_words(app) {
        let t = team(&app).await;
        let ko = id(&say(&app, &t.ann, &t.general, "내일 회의실에서 만나요").await);
        let ja = id(&say(&app, &t.ann, &t.general, "東京都の会議は明日です").await);
        let zh = id(&say(&app, &t.ann, &t.general, "我们明天讨论数据库迁移").await);
        let mixed = id(&say(&app, &t.ann, &t.general, "Ｒｅｌｅａｓｅ 배포 v2 완료 café").await);
        assert_eq!(find(&app, &t.bo, &t.ws, "회의").await, vec![ko.clone()]);
        assert_eq!(find(&app, &t.bo, &t.ws, "회의실").await, vec![ko.clone()]);
        assert_eq!(find(&app, &t.bo, &t.ws, "京都").await, vec![ja.clone()]);
        assert_eq!(find(&app, &t.bo, &t.ws, "会議").await, vec![ja.clone()]);
        assert_eq!(find(&app, &t.bo, &t.ws, "数据库").await, vec![zh.clone()]);
        assert!(find(&app, &t.bo, &t.ws, "数据迁").await.is_empty(), "bigrams must be adjacent");
        assert_eq!(find(&app, &t.bo, &t.ws, "배포").await, vec![mixed.clone()]);
        assert_eq!(find(&app, &t.bo, &t.ws, "release").await, vec![mixed.clone()]);
        assert_eq!(find(&app, &t.bo, &t.ws, "RELEASE").await, vec![mixed.clone()]);
        assert_eq!(find(&app, &t.bo, &t.ws, "cafe").await, vec![mixed.clone()]);
    }

    async fn edits_and_deletions_are_followed(app) {
        let t = team(&app).await;
        let m = id(&say(&app, &t.ann, &t.general, "the blue elephant").await);
        assert_eq!(find(&app, &t.bo, &t.ws, "elephant").await, vec![m.clone()]);
        app.call(
            reqwest::Method::PATCH,
            &format!("/api/v1/messages/{m}"),
            Some(&t.ann.access),
            Some(json!({"text": "the green giraffe"})),
        )
        .await
        .expect(200);
        assert!(find(&app, &t.bo, &t.ws, "elephant").await.is_empty());
        assert_eq!(find(&app, &t.bo, &t.ws, "giraffe").await, vec![m.clone()]);
        app.delete(&format!("/api/v1/messages/{m}"), &t.ann.access).await;
        assert!(find(&app, &t.bo, &t.ws, "giraffe").await.is_empty());
    }

    async fn malformed_queries_are_explained(app) {
        let t = team(&app).await;
        for (q, hint) in [
            ("\"unclosed", "quote"),
            ("before:someday", "date"),
            ("has:magic", "has:magic"),
            ("in:#nowhere", "nowhere"),
            ("from:@nobody", "nobody"),
        ] {
            let url = reqwest::Url::parse_with_params(
                &format!("{}/api/v1/workspaces/{}/search", app.base, t.ws),
                &[("q", q)],
            )
            .unwrap();
            let r = app.get(&url.as_str()[app.base.len()..], &t.ann.access).await;
            r.expect_error(422, "validation_failed");
            let message = r.body["error"]["message"].as_str().unwrap();
            assert!(message.contains(hint) && message.contains("at character"), "{q}: {message}");
        }
        let r = app
            .get(&format!("/api/v1/workspaces/{}/search?q=x&cursor=garbage", t.ws), &t.ann.access)
            .await;
        assert_eq!(r.status, 422);
        let r = app
            .get(&format!("/api/v1/workspaces/{}/search?q=x&sort=sideways", t.ws), &t.ann.access)
            .await;
        assert_eq!(r.status, 422);
    }

    async fn a_deleted_index_is_rebuilt_with_the_same_results(app) {
        let t = team(&app).await;
        for i in 0..30 {
            say(&app, &t.ann, &t.general, &format!("status report number {i} for 회의록")).await;
        }
        let gone = id(&say(&app, &t.ann, &t.general, "status report to delete").await);
        app.delete(&format!("/api/v1/messages/{gone}"), &t.ann.access).await;
        let before = search_raw(&app, &t.bo, &t.ws, "report").await;
        let before_ko = find(&app, &t.bo, &t.ws, "회의").await;
        assert_eq!(before["total"], 30);
        let data = app.data_dir.clone();
        let mut app = app;
        app.stop().await;
        std::fs::remove_dir_all(data.join("search")).unwrap();
        let app = app.restart().await;
        let bo = app.login("bo@example.org", PASSWORD).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let after = loop {
            let page = search_raw(&app, &bo, &t.ws, "report").await;
            if page["index"]["state"] == "ready" && page["total"] == 30 {
                break page;
            }
            assert!(tokio::time::Instant::now() < deadline, "rebuild did not finish: {page}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let ids = |v: &Value| {
            let mut ids: Vec<String> = v["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
            ids.sort();
            ids
        };
        assert_eq!(ids(&before), ids(&after));
        let mut a = before_ko;
        a.sort();
        let mut b = find(&app, &bo, &t.ws, "회의").await;
        b.sort();
        assert_eq!(a, b);
    }

    async fn documents_are_found_by_title_and_text_for_those_who_can_view_them(app) {
        let t = crate::docs::team(&app).await;
        let doc = crate::docs::create_doc(&app, &t.ann, &t.ws, "Wintergreen roadmap").await;
        let mut client = crate::docs::YClient::connect(&app, &doc, &t.ann.access).await;
        client.insert(0, "Pemberton quarterly figures for 東京都").await;
        let page = eventually_found(&app, &t.ann, &t.ws, "pemberton", &doc).await;
        let hit = &page["results"][0];
        assert_eq!(hit["kind"], "document");
        assert_eq!(hit["title"], "Wintergreen roadmap");
        assert!(hit["snippet_html"].as_str().unwrap().contains("<b>Pemberton</b>"), "{hit}");
        assert_eq!(find(&app, &t.ann, &t.ws, "wintergreen").await, vec![doc.clone()]);
        assert_eq!(find(&app, &t.ann, &t.ws, "京都").await, vec![doc.clone()]);
        // Not shared with Bo: nothing, not even a count.
        assert_eq!(search_raw(&app, &t.bo, &t.ws, "pemberton").await["total"], 0);
        crate::docs::share(&app, &t.ann, &doc, &t.bo, "view").await;
        assert_eq!(find(&app, &t.bo, &t.ws, "pemberton").await, vec![doc.clone()]);
        client.close().await;
        app.delete(&format!("/api/v1/documents/{doc}"), &t.ann.access).await;
        assert!(find(&app, &t.ann, &t.ws, "wintergreen").await.is_empty());
    }
}
