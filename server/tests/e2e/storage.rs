//! Storage: both migration sets define the same schema; group commit batches writes without
//! letting one failing write spoil the others.

use std::collections::BTreeMap;
use std::sync::Arc;

use concord::events::{DomainEvent, Events};
use concord::store::{Store, StoreError, StoreOptions, Tx};
use sqlx::Connection;

use crate::harness::{spawn_app, Backend};

type Schema = BTreeMap<String, Vec<String>>;

async fn sqlite_schema(url: &str) -> Schema {
    let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut schema = Schema::new();
    for (table,) in tables {
        let cols: Vec<(String,)> = sqlx::query_as("SELECT name FROM pragma_table_info($1)")
            .bind(&table)
            .fetch_all(&mut conn)
            .await
            .unwrap();
        let mut cols: Vec<String> = cols.into_iter().map(|(c,)| c).collect();
        cols.sort();
        schema.insert(table, cols);
    }
    schema
}

async fn postgres_schema(url: &str) -> Schema {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name NOT LIKE '_sqlx%' ORDER BY 1, 2",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut schema = Schema::new();
    for (t, c) in rows {
        schema.entry(t).or_default().push(c);
    }
    schema
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_backends_define_the_same_tables_and_columns() {
    let sqlite = spawn_app(Backend::Sqlite).await;
    let pg = spawn_app(Backend::Postgres).await;
    let a = sqlite_schema(&sqlite.database_url).await;
    let b = postgres_schema(&pg.database_url).await;
    assert!(
        a.contains_key("users") && a.contains_key("sessions"),
        "{a:?}"
    );
    assert_eq!(a, b, "SQLite and PostgreSQL migrations disagree");
}

async fn open(app: &crate::harness::TestApp, events: Events) -> Store {
    open_batching(app, events, 64).await
}

async fn open_batching(app: &crate::harness::TestApp, events: Events, max_batch: usize) -> Store {
    let options = StoreOptions {
        url: app.database_url.clone(),
        max_connections: 4,
        max_batch,
    };
    Store::open(&options, events).await.unwrap()
}

crate::harness::both_backends! {
    async fn group_commit_acknowledges_every_write_once_durable(app) {
        let events = Events::in_process();
        let mut seen = events.subscribe();
        let store = Arc::new(open(&app, events).await);
        // 300 concurrent writers; every third fails after writing, and must leave no trace.
        let mut tasks = Vec::new();
        for i in 0..300u32 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .write(move |tx: &mut Tx| {
                        Box::pin(async move {
                            let key = format!("k{i}");
                            let record = concord::store::throttle::ThrottleRecord {
                                failures: i64::from(i),
                                window_start: chrono::Utc::now(),
                                locked_until: None,
                            };
                            concord::store::throttle::put(&mut tx.conn(), &key, &record).await?;
                            tx.emit(DomainEvent::MemberRemoved {
                                workspace_id: concord::domain::WorkspaceId::generate(),
                                user_id: concord::domain::UserId::generate(),
                            });
                            if i % 3 == 0 {
                                return Err(StoreError::Corrupt("deliberate failure"));
                            }
                            Ok(i)
                        })
                    })
                    .await
            }));
        }
        let mut ok = 0;
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await.unwrap() {
                Ok(v) => {
                    assert_eq!(v as usize, i);
                    ok += 1;
                }
                Err(StoreError::Corrupt(_)) => assert_eq!(i % 3, 0),
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!(ok, 200);
        // Exactly the successful writes are stored, and visible to readers now.
        let mut conn = store.reader().await.unwrap();
        for i in 0..300u32 {
            let got = concord::store::throttle::get(&mut conn.conn(), &format!("k{i}")).await.unwrap();
            assert_eq!(got.is_some(), i % 3 != 0, "k{i}");
        }
        drop(conn);
        // Exactly the successful writes' events were published.
        let mut published = 0;
        while let Ok(Ok(_)) = tokio::time::timeout(std::time::Duration::from_millis(200), seen.recv()).await {
            published += 1;
        }
        assert_eq!(published, 200);
        // The writes were grouped: 300 writers submitted at once share far fewer transactions
        // than one each (a writer committing one write at a time would give exactly 1.0).
        let (batches, writes) = store.commit_batches();
        assert_eq!(writes, 300, "every write ran in a batch");
        let mean = writes as f64 / batches as f64;
        assert!(mean >= 4.0, "{writes} writes in {batches} batches: mean batch size {mean:.1}");
        store.close().await;
        // After close, writes are refused rather than lost silently.
        let refused = store.write(|_tx: &mut Tx| Box::pin(async { Ok::<_, StoreError>(()) })).await;
        assert!(matches!(refused, Err(StoreError::ShuttingDown)));
    }
}

/// An audit entry for the tests below.
fn entry(action: &str, survives_rollback: bool) -> concord::store::audit::PendingAudit {
    concord::store::audit::PendingAudit {
        fields: concord::store::audit::AuditFields {
            id: uuid::Uuid::now_v7().to_string(),
            occurred_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            actor_type: "system".into(),
            action: action.into(),
            outcome: "allowed".into(),
            ..Default::default()
        },
        survives_rollback,
    }
}

async fn count_action(store: &Store, action: &str) -> usize {
    let mut conn = store.reader().await.unwrap();
    let filter = concord::store::audit::AuditFilter {
        action: Some(action.into()),
        ..Default::default()
    };
    concord::store::audit::list(&mut conn.conn(), &filter, 100_000)
        .await
        .unwrap()
        .len()
}

/// One write through `store` recording `n` entries named `action`.
async fn append_entries(store: &Store, action: &'static str, n: usize) {
    store
        .write(move |tx: &mut Tx| {
            Box::pin(async move {
                for _ in 0..n {
                    tx.audit(entry(action, false));
                }
                Ok::<_, StoreError>(())
            })
        })
        .await
        .unwrap();
}

crate::harness::both_backends! {
    async fn a_failing_write_in_a_batch_of_audited_writes_fails_alone_and_the_chain_stays_whole_while_another_process_appends(app) {
        let events = Events::in_process();
        let mut seen = events.subscribe();
        let store = Arc::new(open(&app, events).await);
        // A second store on the same database, as the command line beside a server.
        let other = app.open_store().await;
        let rounds = 4;
        for round in 0..rounds {
            let mut tasks = Vec::new();
            for i in 0..40u32 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    store
                        .write(move |tx: &mut Tx| {
                            Box::pin(async move {
                                let key = format!("r{round}-{i}");
                                let record = concord::store::throttle::ThrottleRecord {
                                    failures: 1,
                                    window_start: chrono::Utc::now(),
                                    locked_until: None,
                                };
                                concord::store::throttle::put(&mut tx.conn(), &key, &record).await?;
                                tx.emit(DomainEvent::MemberRemoved {
                                    workspace_id: concord::domain::WorkspaceId::generate(),
                                    user_id: concord::domain::UserId::generate(),
                                });
                                if i % 8 == 0 {
                                    // A failing write: its record goes, its denial stays.
                                    tx.audit(entry("test.dropped", false));
                                    tx.audit(entry("test.denied", true));
                                    return Err(StoreError::Corrupt("deliberate failure"));
                                }
                                tx.audit(entry("test.kept", false));
                                Ok(i)
                            })
                        })
                        .await
                }));
            }
            // The other process appends while the batches run, and between them.
            for _ in 0..3 {
                append_entries(&other, "test.other", 1).await;
            }
            for (i, t) in tasks.into_iter().enumerate() {
                match t.await.unwrap() {
                    Ok(v) => assert_eq!(v as usize, i),
                    Err(StoreError::Corrupt(_)) => assert_eq!(i % 8, 0),
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            append_entries(&other, "test.other", 2).await;
        }
        let (batches, writes) = store.commit_batches();
        assert!(writes as f64 / batches as f64 > 1.5, "{writes} writes in {batches} batches");
        let failed = rounds * 5;
        assert_eq!(count_action(&store, "test.kept").await, rounds * 40 - failed);
        assert_eq!(count_action(&store, "test.denied").await, failed);
        assert_eq!(count_action(&store, "test.dropped").await, 0);
        assert_eq!(count_action(&store, "test.other").await, rounds * 5);
        // Exactly the successful writes are stored.
        let mut conn = store.reader().await.unwrap();
        for round in 0..rounds {
            for i in 0..40u32 {
                let got = concord::store::throttle::get(&mut conn.conn(), &format!("r{round}-{i}"))
                    .await
                    .unwrap();
                assert_eq!(got.is_some(), i % 8 != 0, "r{round}-{i}");
            }
        }
        // The outbox numbers events without a gap (the server may have pruned some).
        let stored = concord::store::outbox::after(&mut conn.conn(), 0, 100_000).await.unwrap();
        let ids: Vec<i64> = stored.iter().map(|e| e.id).collect();
        assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
        drop(conn);
        // Exactly the successful writes' events were published.
        let mut published = 0;
        while let Ok(Ok(_)) = tokio::time::timeout(std::time::Duration::from_millis(200), seen.recv()).await {
            published += 1;
        }
        assert_eq!(published, rounds * 40 - failed);
        // The chain verifies from the first entry to the last, across both writers.
        let verified = concord::audit::service::verify_live(&store).await.unwrap().unwrap();
        assert!(verified.entries as usize >= rounds * 45, "{}", verified.entries);
        other.close().await;
        store.close().await;
    }
}

crate::harness::both_backends! {
    async fn writes_with_a_synchronous_form_share_batches_with_the_others_and_fail_alone(app) {
        use concord::store::{Raw, RawTx};
        let sqlite = app.backend == Backend::Sqlite;
        let store = Arc::new(open(&app, Events::in_process()).await);
        // Four kinds, interleaved: 0 has no synchronous form; 1 succeeds in it; 2 declines
        // (its asynchronous form runs); 3 writes, records, then fails in it.
        let mut tasks = Vec::new();
        for i in 0..400u32 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let key = format!("s{i}");
                if i % 4 == 0 {
                    store
                        .write_enqueued(move |tx: &mut Tx| {
                            Box::pin(async move {
                                put(tx, &key).await?;
                                Ok::<_, StoreError>("async".to_owned())
                            })
                        })
                        .await
                        .unwrap()
                        .await
                } else {
                    store
                        .write_enqueued_raw(
                            key,
                            move |tx: &mut RawTx<'_>, key: String| {
                                match i % 4 {
                                    2 => Raw::Declined(key),
                                    kind => {
                                        if let Err(e) = tx.conn().execute(
                                            "INSERT INTO login_throttle (throttle_key, failures, window_start) \
                                             VALUES (?1, 1, '2026-12-05T00:00:00+00:00')",
                                            (&key,),
                                        ) {
                                            return Raw::Failed(StoreError::Commit(e.to_string()));
                                        }
                                        if kind == 3 {
                                            tx.audit(entry("test.raw_dropped", false));
                                            tx.audit(entry("test.raw_denied", true));
                                            return Raw::Failed(StoreError::Corrupt("deliberate failure"));
                                        }
                                        tx.audit(entry("test.raw_kept", false));
                                        Raw::Done("raw".to_owned())
                                    }
                                }
                            },
                            move |tx: &mut Tx, key: String| {
                                Box::pin(async move {
                                    put(tx, &key).await?;
                                    Ok::<_, StoreError>("async".to_owned())
                                })
                            },
                        )
                        .await
                        .unwrap()
                        .await
                }
            }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            let got = t.await.unwrap();
            match (sqlite, i % 4) {
                // On SQLite the synchronous form runs.
                (true, 1) => assert_eq!(got.unwrap(), "raw", "s{i}"),
                (true, 3) => assert!(matches!(got, Err(StoreError::Corrupt(_))), "s{i}: {got:?}"),
                _ => assert_eq!(got.unwrap(), "async", "s{i}"),
            }
        }
        let mut conn = store.reader().await.unwrap();
        for i in 0..400u32 {
            let stored = concord::store::throttle::get(&mut conn.conn(), &format!("s{i}"))
                .await
                .unwrap();
            assert_eq!(stored.is_some(), !(sqlite && i % 4 == 3), "s{i}");
        }
        drop(conn);
        let (kept, denied) = if sqlite { (100, 100) } else { (0, 0) };
        assert_eq!(count_action(&store, "test.raw_kept").await, kept);
        assert_eq!(count_action(&store, "test.raw_denied").await, denied);
        assert_eq!(count_action(&store, "test.raw_dropped").await, 0);
        let (batches, writes) = store.commit_batches();
        assert_eq!(writes, 400);
        assert!(writes as f64 / batches as f64 > 1.5, "{writes} writes in {batches} batches");
        let verified = concord::audit::service::verify_live(&store).await.unwrap().unwrap();
        assert!(verified.entries as usize >= kept + denied, "{}", verified.entries);
        store.close().await;
    }
}

/// Stores a throttle row named `key` in the write `tx`.
async fn put(tx: &mut Tx, key: &str) -> Result<(), StoreError> {
    let record = concord::store::throttle::ThrottleRecord {
        failures: 1,
        window_start: chrono::Utc::now(),
        locked_until: None,
    };
    concord::store::throttle::put(&mut tx.conn(), key, &record).await
}

crate::harness::both_backends! {
    async fn a_synchronous_form_alone_in_its_batch_fails_or_declines_without_a_trace(app) {
        use concord::store::{Raw, RawTx};
        // One write per batch: no savepoint, so a failure rolls back the whole transaction.
        let store = open_batching(&app, Events::in_process(), 1).await;
        let sqlite = app.backend == Backend::Sqlite;
        for (key, kind) in [("alone-fails", 0), ("alone-declines", 1), ("alone-writes", 2), ("alone-cheats", 3)] {
            let got = store
                .write_enqueued_raw(
                    key.to_owned(),
                    move |tx: &mut RawTx<'_>, key: String| {
                        if kind == 1 {
                            return Raw::Declined(key);
                        }
                        if let Err(e) = tx.conn().execute(
                            "INSERT INTO login_throttle (throttle_key, failures, window_start) \
                             VALUES (?1, 1, '2026-12-05T00:00:00+00:00')",
                            (&key,),
                        ) {
                            return Raw::Failed(StoreError::Commit(e.to_string()));
                        }
                        match kind {
                            0 => {
                                tx.audit(entry("test.alone_denied", true));
                                Raw::Failed(StoreError::Corrupt("deliberate failure"))
                            }
                            // Declining after writing breaks the rule: the write fails, undone.
                            3 => Raw::Declined(key),
                            _ => Raw::Done("raw".to_owned()),
                        }
                    },
                    move |tx: &mut Tx, key: String| {
                        Box::pin(async move {
                            put(tx, &key).await?;
                            Ok::<_, StoreError>("async".to_owned())
                        })
                    },
                )
                .await
                .unwrap()
                .await;
            match (sqlite, kind) {
                (true, 0) => assert!(matches!(got, Err(StoreError::Corrupt(_))), "{got:?}"),
                (true, 2) => assert_eq!(got.unwrap(), "raw"),
                (true, 3) => assert!(got.is_err(), "{got:?}"),
                _ => assert_eq!(got.unwrap(), "async", "{key}"),
            }
        }
        let mut conn = store.reader().await.unwrap();
        for (key, stored) in [("alone-fails", !sqlite), ("alone-declines", true), ("alone-writes", true), ("alone-cheats", !sqlite)] {
            let got = concord::store::throttle::get(&mut conn.conn(), key).await.unwrap();
            assert_eq!(got.is_some(), stored, "{key}");
        }
        drop(conn);
        // The failed write's denial was kept, in a transaction of its own.
        assert_eq!(count_action(&store, "test.alone_denied").await, usize::from(sqlite));
        let raw = store.raw_writes();
        assert_eq!(raw, if sqlite { (3, 1) } else { (0, 0) });
        store.close().await;
    }
}
