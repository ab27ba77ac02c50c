//! Benchmark: the encrypted search index against an unencrypted tantivy index with the same
//! schema and analyzer, and against SQLite FTS5 (plaintext, trigram tokenizer), on one
//! generated corpus in one run.
//!
//! The corpus is deterministic (seeded): messages of realistic lengths (a few words to a few
//! paragraphs) in English (70%), Korean, Japanese and Chinese (10% each), spread over 50
//! channels and 200 authors. Each engine indexes all of it (throughput, size on disk), then
//! answers the same typical queries (latency p50/p99, top 20 with the total count; the tantivy
//! variants also build snippets and apply a 50-channel permission filter, as the server does).
//!
//! With `--runs R` (default 3) the whole measurement (fresh indexes, indexing, queries) is
//! repeated R times on the same corpus and every figure printed is the median of the R runs.
//!
//! `--cache-mib M` sizes the encrypted index's cache of decrypted chunks (default 256, the
//! server's default); `--no-fts5` leaves SQLite out, for quick comparisons of the two tantivy
//! variants only.
//!
//! Usage: concord-bench-search [--messages N] [--queries Q] [--runs R] [--dir DIR]
//!        [--cache-mib M] [--no-fts5]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use concord::search::encrypted_dir::{ChunkCache, IndexKeys};
use concord::search::query;
use concord::search::{Filters, MessageEntry, WorkspaceIndex};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::{Connection, Row};

const EN: &[&str] = &[
    "the",
    "a",
    "to",
    "and",
    "of",
    "in",
    "is",
    "for",
    "on",
    "we",
    "it",
    "this",
    "that",
    "with",
    "can",
    "be",
    "will",
    "you",
    "i",
    "deploy",
    "deployment",
    "release",
    "build",
    "test",
    "tests",
    "review",
    "meeting",
    "tomorrow",
    "today",
    "customer",
    "invoice",
    "budget",
    "quarter",
    "roadmap",
    "design",
    "server",
    "database",
    "migration",
    "latency",
    "incident",
    "postmortem",
    "ticket",
    "bug",
    "fix",
    "feature",
    "branch",
    "merge",
    "please",
    "thanks",
    "update",
    "status",
    "report",
    "draft",
    "document",
    "slides",
    "call",
    "lunch",
    "team",
    "project",
    "plan",
    "schedule",
    "friday",
    "monday",
    "morning",
    "afternoon",
    "question",
    "answer",
    "idea",
    "launch",
    "metrics",
    "dashboard",
    "alert",
    "outage",
    "restart",
    "config",
    "rollback",
    "staging",
    "production",
    "cluster",
    "kubernetes",
    "network",
    "security",
    "audit",
    "policy",
    "contract",
    "legal",
    "hiring",
    "interview",
    "candidate",
    "onboarding",
    "training",
    "vacation",
    "holiday",
    "office",
    "remote",
    "coffee",
    "weekend",
    "agenda",
    "notes",
    "summary",
    "follow",
    "up",
    "quick",
    "sync",
    "later",
    "soon",
    "done",
    "blocked",
    "waiting",
    "approved",
    "shipped",
];
const KO: &[&str] = &[
    "회의",
    "내일",
    "오늘",
    "배포",
    "검토",
    "고객",
    "예산",
    "일정",
    "문서",
    "보고서",
    "회의실에서",
    "데이터베이스",
    "서버",
    "장애",
    "복구",
    "출시",
    "테스트",
    "확인",
    "부탁드립니다",
    "감사합니다",
];
const JA: &[&str] = &[
    "会議",
    "明日",
    "今日",
    "東京都",
    "デプロイ",
    "レビュー",
    "顧客",
    "予算",
    "予定",
    "資料",
    "報告書",
    "データベース",
    "サーバー",
    "障害",
    "復旧",
    "リリース",
    "テスト",
    "確認",
    "お願いします",
];
const ZH: &[&str] = &[
    "会议",
    "明天",
    "今天",
    "部署",
    "审查",
    "客户",
    "预算",
    "日程",
    "文档",
    "报告",
    "数据库",
    "服务器",
    "故障",
    "恢复",
    "发布",
    "测试",
    "确认",
    "迁移",
    "谢谢",
];

struct Args {
    messages: usize,
    queries: usize,
    runs: usize,
    dir: Option<PathBuf>,
    cache_mib: usize,
    fts5: bool,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        messages: 1_000_000,
        queries: 100,
        runs: 3,
        dir: None,
        cache_mib: 256,
        fts5: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--no-fts5" {
            a.fts5 = false;
            continue;
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--messages" => a.messages = value.parse()?,
            "--queries" => a.queries = value.parse()?,
            "--runs" => a.runs = value.parse::<usize>()?.max(1),
            "--dir" => a.dir = Some(PathBuf::from(value)),
            "--cache-mib" => a.cache_mib = value.parse()?,
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    Ok(a)
}

fn message(rng: &mut StdRng, i: usize) -> MessageEntry {
    // Lengths: most messages short, a long tail (log-uniform between 2 and 120 words).
    let words = (2.0f64 * (60.0f64).powf(rng.gen::<f64>())) as usize;
    let lang = rng.gen_range(0..10);
    let (list, sep): (&[&str], &str) = match lang {
        0 => (KO, " "),
        1 => (JA, ""),
        2 => (ZH, ""),
        _ => (EN, " "),
    };
    let mut text = String::new();
    for w in 0..words {
        if w > 0 {
            text.push_str(sep);
        }
        // Zipf-like: early words far more often.
        let r: f64 = rng.gen();
        let k = ((list.len() as f64).powf(r) - 1.0) as usize;
        text.push_str(list[k.min(list.len() - 1)]);
    }
    if lang >= 3 && rng.gen_ratio(1, 20) {
        text.push_str(" https://example.org/t/");
        text.push_str(&i.to_string());
    }
    MessageEntry {
        id: format!("{i:012}"),
        channel_id: format!("channel-{}", rng.gen_range(0..50)),
        author_id: format!("user-{}", rng.gen_range(0..200)),
        thread_root_id: None,
        created_at_ms: 1_700_000_000_000 + i as i64 * 1000,
        seq: i as i64,
        flags: Vec::new(),
        text,
    }
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        dir_size(&p)
                    } else {
                        e.metadata().map(|m| m.len()).unwrap_or(0)
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Typical queries: (label, Concord syntax, FTS5 MATCH expression or None if FTS5 cannot).
const QUERIES: &[(&str, &str, Option<&str>)] = &[
    ("common word", "deploy", Some("deploy")),
    ("rare word", "postmortem", Some("postmortem")),
    ("two words", "budget quarter", Some("budget AND quarter")),
    ("phrase", "\"status report\"", Some("\"status report\"")),
    ("excluded", "release -friday", Some("release NOT friday")),
    ("Korean 1 char", "회", None),
    ("Chinese 1 char", "库", None),
    ("Korean 2 chars", "회의", None),
    ("Korean 3 chars", "회의실", Some("회의실")),
    ("Japanese", "データベース", Some("データベース")),
    ("Chinese", "数据库", Some("数据库")),
    ("in:#channel", "deploy in:#channel-7", None),
];

fn index_tantivy(index: &WorkspaceIndex, corpus: &[MessageEntry]) -> anyhow::Result<Duration> {
    let started = Instant::now();
    for (i, m) in corpus.iter().enumerate() {
        index.upsert_message(m)?;
        if (i + 1) % 200_000 == 0 {
            index.commit()?;
        }
    }
    index.set_payload(concord::search::READY);
    index.commit()?;
    Ok(started.elapsed())
}

/// Runs `q` `runs` times against each index, alternating between them so both see the same
/// machine conditions (on a shared machine, back-to-back blocks of runs drift apart).
fn query_tantivy(
    indexes: [&WorkspaceIndex; 2],
    q: &str,
    runs: usize,
) -> anyhow::Result<[(Vec<Duration>, usize); 2]> {
    let mut parsed = query::parse(q)?;
    let scopes: Vec<String> = (0..50).map(|c| format!("c:channel-{c}")).collect();
    let mut filters = Filters {
        scopes,
        ..Filters::default()
    };
    // The server resolves in:#name to channel ids; the benchmark's channels are named by id.
    if let Some((_, query::Place::Channel(name))) = parsed.places.first().cloned() {
        filters.channels.push(name);
        parsed.places.clear();
    }
    let mut out = [(Vec::with_capacity(runs), 0), (Vec::with_capacity(runs), 0)];
    for _ in 0..runs {
        for (index, (times, total)) in indexes.iter().zip(out.iter_mut()) {
            let t = Instant::now();
            let hits = index.search(&parsed, &filters, false, 0, 20)?;
            times.push(t.elapsed());
            *total = hits.total;
        }
    }
    for (times, _) in out.iter_mut() {
        times.sort();
    }
    Ok(out)
}

async fn fts5(
    path: &Path,
    corpus: &[MessageEntry],
    runs: usize,
) -> anyhow::Result<(Duration, u64, Vec<(Vec<Duration>, usize)>)> {
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await?;
    sqlx::query("PRAGMA journal_mode = WAL")
        .execute(&mut conn)
        .await?;
    sqlx::query("PRAGMA synchronous = NORMAL")
        .execute(&mut conn)
        .await?;
    sqlx::query("CREATE VIRTUAL TABLE m USING fts5(body, channel UNINDEXED, tokenize = 'trigram')")
        .execute(&mut conn)
        .await?;
    let started = Instant::now();
    for chunk in corpus.chunks(10_000) {
        let mut tx = conn.begin().await?;
        for m in chunk {
            sqlx::query("INSERT INTO m (rowid, body, channel) VALUES ($1, $2, $3)")
                .bind(m.seq)
                .bind(&m.text)
                .bind(&m.channel_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    let took = started.elapsed();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await?;
    let size = std::fs::metadata(path)?.len();
    let mut out = Vec::new();
    for (_, _, expr) in QUERIES {
        let Some(expr) = expr else {
            out.push((Vec::new(), 0));
            continue;
        };
        let mut times = Vec::with_capacity(runs);
        let mut total = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let rows = sqlx::query(
                "SELECT rowid, snippet(m, 0, '<b>', '</b>', '…', 24) FROM m WHERE m MATCH $1 ORDER BY rank LIMIT 20",
            )
            .bind(*expr)
            .fetch_all(&mut conn)
            .await?;
            let count: i64 = sqlx::query("SELECT count(*) FROM m WHERE m MATCH $1")
                .bind(*expr)
                .fetch_one(&mut conn)
                .await?
                .get(0);
            times.push(t.elapsed());
            total = count as usize;
            std::hint::black_box(rows);
        }
        times.sort();
        out.push((times, total));
    }
    Ok((took, size, out))
}

/// What one run measured: per engine (encrypted, unencrypted, FTS5) indexing time and size,
/// and per query the p50 and p99 of each engine in milliseconds with its match count.
struct Run {
    indexing: [Duration; 3],
    size: [u64; 3],
    queries: Vec<[(f64, f64, usize); 3]>,
}

async fn run_once(root: &Path, corpus: &[MessageEntry], a: &Args) -> anyhow::Result<Run> {
    let queries = a.queries;
    let cache_bytes = a.cache_mib * 1024 * 1024;
    let _ = std::fs::remove_dir_all(root);
    std::fs::create_dir_all(root)?;
    let mut keys = std::collections::HashMap::new();
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, key.as_mut());
    keys.insert(1, key);
    let encrypted_dir = root.join("encrypted");
    let plain_dir = root.join("plain");
    let encrypted = WorkspaceIndex::open(
        &encrypted_dir,
        IndexKeys::new(1, keys),
        ChunkCache::new(cache_bytes),
    )?;
    let plain = WorkspaceIndex::open_unencrypted(&plain_dir)?;

    eprintln!("indexing: tantivy, encrypted");
    let enc_time = index_tantivy(&encrypted, corpus)?;
    eprintln!("indexing: tantivy, unencrypted");
    let plain_time = index_tantivy(&plain, corpus)?;
    let (fts_time, fts_size, fts_queries) = if a.fts5 {
        eprintln!("indexing: SQLite FTS5 trigram");
        fts5(&root.join("fts5.db"), corpus, queries).await?
    } else {
        (Duration::ZERO, 0, vec![(Vec::new(), 0); QUERIES.len()])
    };
    eprintln!("querying");
    let mut out = Vec::new();
    for (i, (_, q, _)) in QUERIES.iter().enumerate() {
        let [(e, e_total), (p, p_total)] = query_tantivy([&encrypted, &plain], q, queries)?;
        let (f, f_total) = &fts_queries[i];
        let figures =
            |t: &[Duration], total: usize| (percentile(t, 0.5), percentile(t, 0.99), total);
        out.push([
            figures(&e, e_total),
            figures(&p, p_total),
            if f.is_empty() {
                (f64::NAN, f64::NAN, 0)
            } else {
                figures(f, *f_total)
            },
        ]);
    }
    let run = Run {
        indexing: [enc_time, plain_time, fts_time],
        size: [dir_size(&encrypted_dir), dir_size(&plain_dir), fts_size],
        queries: out,
    };
    drop((encrypted, plain));
    Ok(run)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let scratch = std::env::temp_dir().join(format!("concord-bench-search-{}", std::process::id()));
    let root = a.dir.clone().unwrap_or_else(|| scratch.clone());
    eprintln!("generating {} messages", a.messages);
    let mut rng = StdRng::seed_from_u64(42);
    let corpus: Vec<MessageEntry> = (0..a.messages).map(|i| message(&mut rng, i)).collect();
    let chars: usize = corpus.iter().map(|m| m.text.chars().count()).sum();
    eprintln!(
        "average {} characters per message",
        chars / a.messages.max(1)
    );
    let mut runs = Vec::new();
    for r in 0..a.runs {
        eprintln!("run {} of {}", r + 1, a.runs);
        let run = run_once(&root.join(format!("run-{r}")), &corpus, &a).await?;
        let _ = std::fs::remove_dir_all(root.join(format!("run-{r}")));
        runs.push(run);
    }

    let rate = |e: usize| {
        median(
            runs.iter()
                .map(|r| a.messages as f64 / r.indexing[e].as_secs_f64())
                .collect(),
        )
    };
    let mib = |e: usize| {
        median(
            runs.iter()
                .map(|r| r.size[e] as f64 / (1024.0 * 1024.0))
                .collect(),
        )
    };
    println!(
        "corpus: {} messages, {} characters on average; medians of {} runs; chunk cache {} MiB",
        a.messages,
        chars / a.messages.max(1),
        runs.len(),
        a.cache_mib
    );
    println!();
    println!("| engine | indexing (messages/s) | index size (MiB) |");
    println!("|---|---:|---:|");
    for (e, name) in [
        "tantivy, encrypted directory",
        "tantivy, unencrypted (mmap)",
        "SQLite FTS5 trigram, plaintext",
    ]
    .iter()
    .enumerate()
    .take(if a.fts5 { 3 } else { 2 })
    {
        println!("| {name} | {:.0} | {:.1} |", rate(e), mib(e));
    }
    println!();
    println!(
        "Query latency, ms (p50 / p99), {} runs of each query per run, and matches:",
        a.queries
    );
    println!();
    println!(
        "| query | encrypted | unencrypted | FTS5 trigram | encrypted speed vs unencrypted (p50) | encrypted speed vs FTS5 (p50) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (i, (label, q, _)) in QUERIES.iter().enumerate() {
        let fig = |e: usize| {
            let p50 = median(runs.iter().map(|r| r.queries[i][e].0).collect());
            let p99 = median(runs.iter().map(|r| r.queries[i][e].1).collect());
            let total = runs.last().map(|r| r.queries[i][e].2).unwrap_or(0);
            (p50, p99, total)
        };
        let (e50, e99, et) = fig(0);
        let (p50, p99, pt) = fig(1);
        let (f50, f99, ft) = fig(2);
        let (fts, vs_fts) = if f50.is_nan() {
            ("n/a".to_owned(), "n/a".to_owned())
        } else {
            (
                format!("{f50:.2} / {f99:.2} ({ft})"),
                format!("{:.1}", f50 / e50.max(1e-9)),
            )
        };
        println!(
            "| {label} `{q}` | {e50:.2} / {e99:.2} ({et}) | {p50:.2} / {p99:.2} ({pt}) | {fts} | {:.2} | {vs_fts} |",
            p50 / e50.max(1e-9),
        );
    }
    if a.dir.is_none() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    Ok(())
}
