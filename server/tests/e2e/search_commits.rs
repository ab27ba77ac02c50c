//! When the search index commits: messages posted in quick succession share commits (on a
//! timer or a size, `search.commit_interval_ms` and `search.commit_max_changes`), yet a query
//! finds what was posted just before it, and a stop commits what is still pending.

use std::time::Duration;

use concord::domain::WorkspaceId;
use serde_json::Value;

use crate::chat::{channel, say};
use crate::harness::{both_backends, spawn_app_with, Backend, Session, TestApp};

/// Long enough that, within a test, only a query, a size or a stop commits.
const NEVER_MS: u64 = 60_000;

/// The ids of the messages `query` finds.
async fn find(app: &TestApp, who: &Session, ws: &str, query: &str) -> Vec<String> {
    let url = reqwest::Url::parse_with_params(
        &format!("{}/api/v1/workspaces/{ws}/search", app.base),
        &[("q", query), ("limit", "100")],
    )
    .unwrap();
    let page: Value = app
        .get(&url.as_str()[app.base.len()..], &who.access)
        .await
        .expect(200)
        .clone();
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn commits(app: &TestApp, ws: &str) -> u64 {
    app.search.commits(ws.parse::<WorkspaceId>().unwrap()).await
}

both_backends!(
    posts_in_quick_succession_share_commits,
    pending_changes_commit_once_enough_of_them_wait,
    changes_commit_on_the_timer_without_a_query,
    a_query_commits_what_was_posted_just_before_it,
    a_stop_commits_what_is_pending,
    a_deletion_or_an_edit_commits_without_waiting,
);

async fn posts_in_quick_succession_share_commits(backend: Backend) {
    // The default policy: at most one commit per half second.
    let app = spawn_app_with(backend, |_| {}).await;
    let t = app.team().await;
    let general = channel(&app, &t.ann, &t.ws, "general", "public").await;
    let before = commits(&app, &t.ws).await;
    let posts = 60;
    for i in 0..posts {
        say(&app, &t.ann, &general, &format!("standup note {i}")).await;
    }
    assert_eq!(find(&app, &t.ann, &t.ws, "standup").await.len(), posts);
    let made = commits(&app, &t.ws).await - before;
    assert!(
        (1..=posts as u64 / 3).contains(&made),
        "{posts} posts and a query made {made} commits"
    );
}

async fn pending_changes_commit_once_enough_of_them_wait(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.search.commit_interval_ms = NEVER_MS;
        c.search.commit_max_changes = 10;
    })
    .await;
    let t = app.team().await;
    let general = channel(&app, &t.ann, &t.ws, "general", "public").await;
    // Commits what the workspace's creation left pending.
    assert!(find(&app, &t.ann, &t.ws, "retro").await.is_empty());
    let before = commits(&app, &t.ws).await;
    for i in 0..25 {
        say(&app, &t.ann, &general, &format!("retro item {i}")).await;
    }
    // Twenty of them in two commits of ten; the last five wait for the query.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while commits(&app, &t.ws).await - before < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no commits by size");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(commits(&app, &t.ws).await - before, 2);
    assert_eq!(find(&app, &t.ann, &t.ws, "retro").await.len(), 25);
    assert_eq!(commits(&app, &t.ws).await - before, 3);
}

async fn changes_commit_on_the_timer_without_a_query(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.search.commit_interval_ms = 200).await;
    let t = app.team().await;
    let general = channel(&app, &t.ann, &t.ws, "general", "public").await;
    assert!(find(&app, &t.ann, &t.ws, "lunch").await.is_empty());
    let before = commits(&app, &t.ws).await;
    say(&app, &t.ann, &general, "lunch at noon").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while commits(&app, &t.ws).await == before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the timer never committed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(commits(&app, &t.ws).await, before + 1);
    // Nothing is pending: the query commits nothing more.
    assert_eq!(find(&app, &t.ann, &t.ws, "lunch").await.len(), 1);
    assert_eq!(commits(&app, &t.ws).await, before + 1);
}

async fn a_query_commits_what_was_posted_just_before_it(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.search.commit_interval_ms = NEVER_MS).await;
    let t = app.team().await;
    let general = channel(&app, &t.ann, &t.ws, "general", "public").await;
    assert!(find(&app, &t.bo, &t.ws, "kickoff").await.is_empty());
    let before = commits(&app, &t.ws).await;
    let posted = say(&app, &t.ann, &general, "kickoff slides are ready").await;
    assert_eq!(
        commits(&app, &t.ws).await,
        before,
        "nothing but the query commits"
    );
    assert_eq!(
        find(&app, &t.ann, &t.ws, "kickoff").await,
        vec![posted["id"].as_str().unwrap().to_owned()]
    );
    assert_eq!(commits(&app, &t.ws).await, before + 1);
    // With nothing pending, a query does not commit.
    assert_eq!(find(&app, &t.ann, &t.ws, "slides").await.len(), 1);
    assert_eq!(commits(&app, &t.ws).await, before + 1);
}

async fn a_stop_commits_what_is_pending(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.search.commit_interval_ms = NEVER_MS).await;
    let t = app.team().await;
    let general = channel(&app, &t.ann, &t.ws, "general", "public").await;
    // The index is complete (committed as such): the next start will not rebuild it, so only
    // the stop's commit can keep the message posted afterwards.
    assert!(find(&app, &t.ann, &t.ws, "handover").await.is_empty());
    let posted = say(&app, &t.ann, &general, "handover notes for the weekend").await;
    let app = app.restart().await;
    let ann = app.login("ann@example.org", crate::harness::PASSWORD).await;
    assert_eq!(
        find(&app, &ann, &t.ws, "handover").await,
        vec![posted["id"].as_str().unwrap().to_owned()]
    );
    assert_eq!(app.search.status(t.ws.parse().unwrap()).state, "ready");
}

/// Text taken out of a message (deleted, or replaced by an edit) leaves the committed index
/// without waiting for the interval, so a crash cannot leave it findable.
async fn a_deletion_or_an_edit_commits_without_waiting(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.search.commit_interval_ms = NEVER_MS).await;
    let t = app.team().await;
    let general = channel(&app, &t.ann, &t.ws, "general", "public").await;
    let posted = say(&app, &t.ann, &general, "the vault code is 4711").await;
    let edited = say(&app, &t.ann, &general, "the alarm code is 0815").await;
    assert_eq!(find(&app, &t.ann, &t.ws, "code").await.len(), 2);
    let wait_for_commit = |before: u64, what: &'static str| {
        let app = &app;
        let ws = t.ws.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while commits(app, &ws).await == before {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{what} was not committed"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let before = commits(&app, &t.ws).await;
    let id = posted["id"].as_str().unwrap();
    app.delete(&format!("/api/v1/messages/{id}"), &t.ann.access)
        .await
        .expect(204);
    wait_for_commit(before, "a deletion").await;
    let before = commits(&app, &t.ws).await;
    let id = edited["id"].as_str().unwrap();
    app.call(
        reqwest::Method::PATCH,
        &format!("/api/v1/messages/{id}"),
        Some(&t.ann.access),
        Some(serde_json::json!({"text": "the alarm is fixed"})),
    )
    .await
    .expect(200);
    wait_for_commit(before, "an edit").await;
    assert!(find(&app, &t.ann, &t.ws, "4711").await.is_empty());
    assert!(find(&app, &t.ann, &t.ws, "0815").await.is_empty());
    // A new post still waits.
    let before = commits(&app, &t.ws).await;
    say(&app, &t.ann, &general, "standup moved").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(commits(&app, &t.ws).await, before);
}
