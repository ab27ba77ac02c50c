//! Search over REST: what each person finds, in which languages, and that the index follows
//! edits, deletions, permission changes and a rebuild from scratch; files by name and text;
//! people named as they are known.

use std::time::Duration;

use serde_json::{json, Value};

use crate::chat::{channel, say};
use crate::harness::{both_backends, Session, Team, TestApp, PASSWORD};

/// Ann's two channels beside the harness's team: "general" (public; Bo joined it) and
/// "secret" (private).
struct Rooms {
    general: String,
    secret: String,
}

async fn team(app: &TestApp) -> (Team, Rooms) {
    let t = app.team().await;
    let general = channel(app, &t.ann, &t.ws, "general", "public").await;
    let secret = channel(app, &t.ann, &t.ws, "secret", "private").await;
    app.post(
        &format!("/api/v1/channels/{general}/join"),
        Some(&t.bo.access),
        json!({}),
    )
    .await
    .expect(200);
    (t, Rooms { general, secret })
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

/// The results of kind `file` for `query`.
async fn files_found(app: &TestApp, who: &Session, ws: &str, query: &str) -> Vec<Value> {
    search_raw(app, who, ws, query).await["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "file")
        .cloned()
        .collect()
}

/// The ids of the messages (not files or documents) found for `query`, sorted.
async fn messages_found(app: &TestApp, who: &Session, ws: &str, query: &str) -> Vec<String> {
    let mut ids: Vec<String> = search_raw(app, who, ws, query).await["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "message")
        .map(id)
        .collect();
    ids.sort();
    ids
}

/// The message ids files were posted with, sorted.
fn posted_with(files: &[&Value]) -> Vec<String> {
    let mut ids: Vec<String> = files
        .iter()
        .map(|f| f["message_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// The status and error message of a query the server refuses.
async fn refused(app: &TestApp, who: &Session, ws: &str, query: &str) -> String {
    let url = reqwest::Url::parse_with_params(
        &format!("{}/api/v1/workspaces/{ws}/search", app.base),
        &[("q", query)],
    )
    .unwrap();
    let r = app.get(&url.as_str()[app.base.len()..], &who.access).await;
    r.expect_error(422, "validation_failed");
    r.body["error"]["message"].as_str().unwrap().to_owned()
}

both_backends! {
    async fn each_operator_narrows_results(app) {
        let (t, rooms) = team(&app).await;
        let deploy = id(&say(&app, &t.ann, &rooms.general, "Deploying the release train today").await);
        let friday = id(&say(&app, &t.bo, &rooms.general, "No deploy on friday please").await);
        let link = id(&say(&app, &t.bo, &rooms.general, "deploy notes at https://example.org/notes").await);
        let hidden = id(&say(&app, &t.ann, &rooms.secret, "deploy the secret thing").await);
        let reply = app
            .post(
                &format!("/api/v1/channels/{}/messages", rooms.general),
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
        let (t, rooms) = team(&app).await;
        say(&app, &t.ann, &rooms.secret, "quarterly numbers look grim").await;
        say(&app, &t.ann, &rooms.general, "quarterly party on friday").await;
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
            &format!("/api/v1/channels/{}/members", rooms.secret),
            Some(&t.ann.access),
            json!({"user_id": t.bo.user_id}),
        )
        .await
        .expect(200);
        assert_eq!(search_raw(&app, &t.bo, &t.ws, "quarterly").await["total"], 2);
        app.delete(&format!("/api/v1/channels/{}/members/{}", rooms.secret, t.bo.user_id), &t.bo.access)
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
        let (t, rooms) = team(&app).await;
        let ko = id(&say(&app, &t.ann, &rooms.general, "내일 회의실에서 만나요").await);
        let ja = id(&say(&app, &t.ann, &rooms.general, "東京都の会議は明日です").await);
        let zh = id(&say(&app, &t.ann, &rooms.general, "我们明天讨论数据库迁移").await);
        let mixed = id(&say(&app, &t.ann, &rooms.general, "Ｒｅｌｅａｓｅ 배포 v2 완료 café").await);
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
        let (t, rooms) = team(&app).await;
        let m = id(&say(&app, &t.ann, &rooms.general, "the blue elephant").await);
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
        let (t, _) = team(&app).await;
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
        let (t, rooms) = team(&app).await;
        for i in 0..30 {
            say(&app, &t.ann, &rooms.general, &format!("status report number {i} for 회의록")).await;
        }
        let gone = id(&say(&app, &t.ann, &rooms.general, "status report to delete").await);
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
        let t = app.team().await;
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

    async fn files_are_found_by_name_and_text_where_they_may_be_downloaded(app) {
        let (t, rooms) = team(&app).await;
        let notes = "# Wintergreen plan\n\nThe Pemberton milestones are due in March.\n";
        let plan = app.upload(&t.ann, &rooms.secret, "roadmap-q3.md", notes.as_bytes()).await.expect(201).clone();
        let csv = "region,amount\nZanzibar,1200\nOslo,800\n";
        let budget = app.upload(&t.ann, &rooms.general, "budget.csv", csv.as_bytes()).await.expect(201).clone();
        let minutes = app.upload(&t.ann, &rooms.general, "회의록.txt", "분기 예산 회의 내용".as_bytes()).await.expect(201).clone();
        let mut binary = vec![0u8, 1, 2, 3, 0xff, 0];
        binary.extend_from_slice(b"xylophone");
        let photo = app.upload(&t.ann, &rooms.general, "holiday-photo.bin", &binary).await.expect(201).clone();
        // Only the first MiB of a text file is indexed.
        let mut long = "aardvark ".repeat(100);
        long.push_str(&"filler ".repeat(1024 * 1024 / 7));
        long.push_str(" zeppelin");
        let long = app.upload(&t.ann, &rooms.general, "long.txt", long.as_bytes()).await.expect(201).clone();

        // Ann reads #secret: she finds the markdown by its text, with what a client shows.
        let found = files_found(&app, &t.ann, &t.ws, "pemberton").await;
        assert_eq!(found.len(), 1, "{found:?}");
        let hit = &found[0];
        assert_eq!(hit["id"], plan["id"]);
        assert_eq!(hit["name"], "roadmap-q3.md");
        assert_eq!(hit["content_type"], "text/plain");
        assert_eq!(hit["size"], notes.len());
        assert_eq!(hit["channel_id"].as_str().unwrap(), rooms.secret);
        assert_eq!(hit["channel_name"], "secret");
        assert_eq!(hit["author_id"].as_str().unwrap(), t.ann.user_id);
        assert_eq!(hit["message_id"], plan["message_id"]);
        assert!(hit["created_at"].as_str().is_some());
        assert!(hit["snippet_html"].as_str().unwrap().contains("<b>Pemberton</b>"), "{hit}");
        // By a word of its name, and with the file operators.
        assert_eq!(files_found(&app, &t.ann, &t.ws, "roadmap").await[0]["id"], plan["id"]);
        assert_eq!(files_found(&app, &t.ann, &t.ws, "milestones in:#secret").await.len(), 1);
        assert_eq!(files_found(&app, &t.ann, &t.ws, &format!("pemberton from:@{}", t.ann.user_id)).await.len(), 1);
        assert!(files_found(&app, &t.ann, &t.ws, "pemberton from:@bo@example.org").await.is_empty());

        // Bo is not in #secret: no result and no count, as downloading it gives him 404.
        let bo = search_raw(&app, &t.bo, &t.ws, "pemberton").await;
        assert_eq!(bo["total"], 0, "{bo}");
        let plan_id = plan["id"].as_str().unwrap();
        assert_eq!(app.get(&format!("/api/v1/files/{plan_id}"), &t.bo.access).await.status, 404);
        // CSV cells and Korean text are found; a binary file only by its name.
        assert_eq!(files_found(&app, &t.bo, &t.ws, "zanzibar").await[0]["id"], budget["id"]);
        assert_eq!(files_found(&app, &t.bo, &t.ws, "예산").await[0]["id"], minutes["id"]);
        assert_eq!(files_found(&app, &t.bo, &t.ws, "holiday").await[0]["id"], photo["id"]);
        assert!(files_found(&app, &t.bo, &t.ws, "xylophone").await.is_empty());
        assert_eq!(files_found(&app, &t.bo, &t.ws, "aardvark").await[0]["id"], long["id"]);
        assert!(files_found(&app, &t.bo, &t.ws, "zeppelin").await.is_empty(), "past the first MiB");
        let mut with_files: Vec<String> = files_found(&app, &t.bo, &t.ws, "has:file").await.iter().map(id).collect();
        with_files.sort();
        let mut want: Vec<String> = [&budget, &minutes, &photo, &long].into_iter().map(id).collect();
        want.sort();
        assert_eq!(with_files, want);
        // The messages the files were posted with have a file too; Bo's count leaves #secret out.
        assert_eq!(
            messages_found(&app, &t.bo, &t.ws, "has:file").await,
            posted_with(&[&budget, &minutes, &photo, &long])
        );
        assert_eq!(
            messages_found(&app, &t.ann, &t.ws, "has:file in:#secret").await,
            posted_with(&[&plan])
        );

        // Added to #secret, Bo finds it at once.
        app.post(
            &format!("/api/v1/channels/{}/members", rooms.secret),
            Some(&t.ann.access),
            json!({"user_id": t.bo.user_id}),
        )
        .await
        .expect(200);
        assert_eq!(files_found(&app, &t.bo, &t.ws, "pemberton").await.len(), 1);

        // A deleted file is gone from search.
        let budget_id = budget["id"].as_str().unwrap();
        let r = app.delete(&format!("/api/v1/files/{budget_id}"), &t.ann.access).await;
        assert!(r.status.is_success(), "{}", r.body);
        assert!(files_found(&app, &t.bo, &t.ws, "zanzibar").await.is_empty());
        // Its message stays, without a file.
        let with_file_messages = posted_with(&[&plan, &minutes, &photo, &long]);
        assert_eq!(messages_found(&app, &t.bo, &t.ws, "has:file").await, with_file_messages);

        // Rebuilt from scratch, the index finds the same files.
        let data = app.data_dir.clone();
        let mut app = app;
        app.stop().await;
        std::fs::remove_dir_all(data.join("search")).unwrap();
        let app = app.restart().await;
        let bo = app.login("bo@example.org", PASSWORD).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let page = search_raw(&app, &bo, &t.ws, "pemberton").await;
            if page["index"]["state"] == "ready" && page["total"] == 1 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "rebuild did not finish: {page}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(files_found(&app, &bo, &t.ws, "pemberton").await[0]["id"], plan["id"]);
        assert_eq!(files_found(&app, &bo, &t.ws, "예산").await[0]["id"], minutes["id"]);
        assert!(files_found(&app, &bo, &t.ws, "zanzibar").await.is_empty());
        assert!(files_found(&app, &bo, &t.ws, "xylophone").await.is_empty());
        assert_eq!(messages_found(&app, &bo, &t.ws, "has:file").await, with_file_messages);
    }

    async fn people_are_named_by_display_name_or_handle(app) {
        let (t, rooms) = team(&app).await;
        let admin = app.login("admin@example.org", PASSWORD).await;
        app.create_user(&admin, "carol.lee@example.org", "Carol Lee").await;
        let carol = app.login("carol.lee@example.org", PASSWORD).await;
        app.add_member(&admin, &t.ws, &carol, "member").await;
        app.post(&format!("/api/v1/channels/{}/join", rooms.general), Some(&carol.access), json!({}))
            .await
            .expect(200);
        let by_carol = id(&say(&app, &carol, &rooms.general, "harvest numbers attached").await);
        let by_bo = id(&say(&app, &t.bo, &rooms.general, "harvest is late").await);
        for q in [
            "harvest from:@\"Carol Lee\"",
            "harvest from:@\"carol lee\"",
            "harvest from:@CarolLee",
            "harvest from:@carol.lee",
            "harvest from:carol.lee",
            "harvest from:@carol.lee@example.org",
        ] {
            assert_eq!(find(&app, &t.ann, &t.ws, q).await, vec![by_carol.clone()], "{q}");
        }
        assert_eq!(find(&app, &t.ann, &t.ws, "harvest from:@BO").await, vec![by_bo.clone()]);
        assert_eq!(find(&app, &t.ann, &t.ws, "harvest in:#GENERAL").await.len(), 2);

        // The direct conversation, named by display name.
        let dm = app
            .post(
                &format!("/api/v1/workspaces/{}/conversations", t.ws),
                Some(&carol.access),
                json!({"user_ids": [t.bo.user_id]}),
            )
            .await;
        assert!(dm.status.is_success(), "{}", dm.body);
        let dm = dm.body["id"].as_str().unwrap().to_owned();
        let private = id(&say(&app, &carol, &dm, "harvest between us").await);
        assert_eq!(find(&app, &t.bo, &t.ws, "harvest in:@\"Carol Lee\"").await, vec![private]);

        // Two members answer to "dana": refused, not guessed. Strangers are not members.
        for (email, name) in [("dana@one.example", "Dana One"), ("dana@two.example", "Dana Two")] {
            app.create_user(&admin, email, name).await;
            let s = app.login(email, PASSWORD).await;
            app.add_member(&admin, &t.ws, &s, "member").await;
        }
        app.create_user(&admin, "eve@example.org", "Eve").await;
        let message = refused(&app, &t.ann, &t.ws, "harvest from:@dana").await;
        assert!(message.contains("several") && message.contains("at character 8"), "{message}");
        let message = refused(&app, &t.ann, &t.ws, "harvest from:@eve").await;
        assert!(message.contains("@eve") && message.contains("at character 8"), "{message}");
        let message = refused(&app, &t.ann, &t.ws, "from:@\"Nobody Here\"").await;
        assert!(message.contains("Nobody Here") && message.contains("at character 0"), "{message}");
        let message = refused(&app, &t.ann, &t.ws, "from:@\"Carol").await;
        assert!(message.contains("quote"), "{message}");
    }

    async fn one_cjk_character_finds_the_words_that_contain_it(app) {
        let (t, rooms) = team(&app).await;
        let ko = id(&say(&app, &t.ann, &rooms.general, "내일 회의실에서 만나요").await);
        let ja = id(&say(&app, &t.ann, &rooms.general, "東京都の会議は明日です").await);
        let zh = id(&say(&app, &t.ann, &rooms.general, "我们明天讨论数据库迁移").await);
        let en = id(&say(&app, &t.ann, &rooms.general, "tomorrow we meet").await);
        assert_eq!(find(&app, &t.bo, &t.ws, "회").await, vec![ko.clone()]);
        assert_eq!(find(&app, &t.bo, &t.ws, "실").await, vec![ko.clone()]);
        assert_eq!(find(&app, &t.bo, &t.ws, "議").await, vec![ja.clone()]);
        assert_eq!(find(&app, &t.bo, &t.ws, "京").await, vec![ja.clone()]);
        assert_eq!(find(&app, &t.bo, &t.ws, "库").await, vec![zh.clone()]);
        assert_eq!(find(&app, &t.bo, &t.ws, "移").await, vec![zh.clone()], "the last character of a run");
        let mut both = find(&app, &t.bo, &t.ws, "明").await;
        both.sort();
        let mut want = vec![ja.clone(), zh.clone()];
        want.sort();
        assert_eq!(both, want);
        assert!(find(&app, &t.bo, &t.ws, "猫").await.is_empty());
        // Full-width forms fold as elsewhere; excluded characters exclude.
        assert_eq!(find(&app, &t.bo, &t.ws, "明 -京").await, vec![zh.clone()]);
        let snippet = search_raw(&app, &t.bo, &t.ws, "회").await["results"][0]["snippet_html"].clone();
        assert!(snippet.as_str().unwrap().contains("<b>회</b>"), "{snippet}");
        // Bigrams and phrases behave as before.
        assert_eq!(find(&app, &t.bo, &t.ws, "회의실").await, vec![ko.clone()]);
        assert!(find(&app, &t.bo, &t.ws, "数据迁").await.is_empty(), "bigrams must be adjacent");
        assert_eq!(find(&app, &t.bo, &t.ws, "\"会議は明日\"").await, vec![ja.clone()]);
        assert_eq!(find(&app, &t.bo, &t.ws, "tomorrow").await, vec![en]);
    }
}

both_backends! {
    async fn the_command_line_rebuilds_messages_files_and_documents(app) {
        let (t, rooms) = team(&app).await;
        let message = id(&say(&app, &t.ann, &rooms.general, "Quillfeather minutes").await);
        let plan = app.upload(&t.ann, &rooms.general, "plan.md", b"Marmalade logistics\n").await.expect(201).clone();
        let doc = crate::docs::create_doc(&app, &t.ann, &t.ws, "Larkspur roadmap").await;
        let mut client = crate::docs::YClient::connect(&app, &doc, &t.ann.access).await;
        client.insert(0, "Tamarind milestones").await;
        eventually_found(&app, &t.ann, &t.ws, "tamarind", &doc).await;
        client.close().await;

        // With the server stopped and its index gone, the operator rebuilds it.
        let data = app.data_dir.clone();
        let mut app = app;
        app.stop().await;
        std::fs::remove_dir_all(data.join("search")).unwrap();
        let mut reindex = std::process::Command::new(env!("CARGO_BIN_EXE_concord"));
        for (k, _) in std::env::vars() {
            if k.starts_with("CONCORD_") {
                reindex.env_remove(k);
            }
        }
        let out = reindex.env_remove("RUST_LOG").args(app.cli_args()).args(["search", "reindex"]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("rebuilt 1 workspace index(es): "), "{stdout}");
        assert!(stdout.contains(" 1 documents, 1 files in "), "{stdout}");

        // The index is complete: the next start finds all three at once, without rebuilding.
        let app = app.restart().await;
        let ann = app.login("ann@example.org", PASSWORD).await;
        let page = search_raw(&app, &ann, &t.ws, "tamarind").await;
        assert_eq!(page["index"]["state"], "ready", "{page}");
        assert_eq!(page["results"][0]["id"].as_str(), Some(doc.as_str()), "{page}");
        assert_eq!(page["results"][0]["title"], "Larkspur roadmap");
        assert_eq!(files_found(&app, &ann, &t.ws, "marmalade").await[0]["id"], plan["id"]);
        assert_eq!(find(&app, &ann, &t.ws, "quillfeather").await, vec![message]);
    }
}
