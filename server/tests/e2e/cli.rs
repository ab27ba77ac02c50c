//! The `concord` command line, run as an operator would.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{postgres_admin_url, PASSWORD};

fn concord(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_concord"));
    cmd.current_dir(dir).env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("CONCORD_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn run(cmd: &mut Command, stdin: Option<&str>) -> (i32, String, String) {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("concord runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn administer_accounts_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (code, out, err) = run(
        concord(d).args([
            "admin",
            "create-user",
            "--email",
            "root@example.org",
            "--name",
            "Root",
            "--admin",
        ]),
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("created root@example.org") && out.contains("system_admin"),
        "{out}"
    );

    let (code, _, err) = run(
        concord(d)
            .args([
                "admin",
                "create-user",
                "--email",
                "bo@example.org",
                "--name",
                "Bo",
            ])
            .env("CONCORD_ADMIN_PASSWORD", PASSWORD),
        None,
    );
    assert_eq!(code, 0, "{err}");

    // Refusals are one line on stderr with a non-zero exit.
    let (code, _, err) = run(
        concord(d).args([
            "admin",
            "create-user",
            "--email",
            "bo@example.org",
            "--name",
            "Bo",
        ]),
        Some("short\n"),
    );
    assert_ne!(code, 0);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("password"), "{err}");
    let (code, _, err) = run(
        concord(d).args([
            "admin",
            "create-user",
            "--email",
            "BO@example.org",
            "--name",
            "B",
        ]),
        Some(&format!("{PASSWORD}\n")),
    );
    assert_ne!(code, 0);
    assert!(err.contains("already exists"), "{err}");
    let (code, _, err) = run(
        concord(d).args([
            "admin",
            "set-role",
            "--email",
            "nobody@example.org",
            "--role",
            "system_admin",
        ]),
        None,
    );
    assert_ne!(code, 0);
    assert!(err.contains("not found"), "{err}");

    let (code, out, err) = run(
        concord(d).args([
            "admin",
            "set-role",
            "--email",
            "bo@example.org",
            "--role",
            "compliance_officer",
        ]),
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("compliance_officer"), "{out}");
    let (code, out, _) = run(concord(d).args(["admin", "list-users"]), None);
    assert_eq!(code, 0);
    assert!(
        out.contains("root@example.org")
            && out.contains("bo@example.org")
            && out.contains("compliance_officer"),
        "{out}"
    );
    let (code, out, err) = run(
        concord(d).args(["admin", "revoke-sessions", "--email", "bo@example.org"]),
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("revoked 0 session(s)"), "{out}");
}

#[test]
fn configuration_is_layered_validated_and_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("concord.toml"),
        "bind = \"127.0.0.1:9999\"\n[auth]\nsession_days = 7\n",
    )
    .unwrap();
    let (code, out, err) = run(
        concord(d)
            .args(["config", "print"])
            .env("CONCORD_AUTH__SESSION_DAYS", "9")
            .env(
                "CONCORD_AUTH__SIGNING_KEY",
                "a-very-secret-signing-key-of-enough-length",
            )
            .env(
                "CONCORD_DATABASE__URL",
                "postgres://user:hunter2@db.example/concord",
            ),
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("bind = \"127.0.0.1:9999\""),
        "file applies: {out}"
    );
    assert!(
        out.contains("session_days = 9"),
        "environment wins over file: {out}"
    );
    assert!(
        !out.contains("a-very-secret") && !out.contains("hunter2"),
        "secrets redacted: {out}"
    );
    assert!(out.contains("<redacted>"), "{out}");

    let (code, out, _) = run(
        concord(d)
            .args(["config", "print", "--database-url", "sqlite:flag.db"])
            .env("CONCORD_DATABASE__URL", "sqlite:env.db"),
        None,
    );
    assert_eq!(code, 0);
    assert!(out.contains("url = \"<redacted>\""), "{out}");

    for (key, value, named) in [
        (
            "CONCORD_HTTP__BODY_LIMIT_BYTES",
            "lots",
            "http.body_limit_bytes",
        ),
        ("CONCORD_AUTH__SESSION_DAYS", "0", "auth.session_days"),
        ("CONCORD_AUTH__NO_SUCH_KEY", "1", "no_such_key"),
        ("CONCORD_BIND", "not an address", "bind"),
    ] {
        let (code, _, err) = run(concord(d).args(["config", "print"]).env(key, value), None);
        assert_eq!(code, 2, "{key}={value}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(named), "{key}: {err}");
    }
    let (code, _, err) = run(
        concord(d).args(["--config", "missing.toml", "config", "print"]),
        None,
    );
    assert_eq!(code, 2);
    assert!(err.contains("missing.toml"), "{err}");
}

/// `concord config print`'s TOML as JSON.
fn printed(out: &str) -> serde_json::Value {
    use figment::providers::Format;
    figment::Figment::from(figment::providers::Toml::string(out))
        .extract()
        .unwrap_or_else(|e| panic!("config print is TOML: {e}\n{out}"))
}

/// The value at dotted `path` (list items by index).
fn at<'a>(value: &'a serde_json::Value, path: &str) -> &'a serde_json::Value {
    path.split('.')
        .fold(value, |v, part| match part.parse::<usize>() {
            Ok(i) => &v[i],
            Err(_) => &v[part],
        })
}

/// One setting per table of the printed defaults, changed through the environment: a whole
/// number moves by one, a flag flips; tables with neither name their setting here.
fn one_setting_per_table(
    table: &str,
    value: &serde_json::Value,
    out: &mut Vec<(String, String, String, serde_json::Value)>,
) {
    use serde_json::json;
    let Some(map) = value.as_object() else { return };
    let explicit = match table {
        "" => Some(("bind", "127.0.0.1:9191", "bind", json!("127.0.0.1:9191"))),
        "log" => Some(("filter", "debug", "log.filter", json!("debug"))),
        "metrics" => Some(("mode", "public", "metrics.mode", json!("public"))),
        "processing_record" => Some((
            "controller",
            "Clinic Ltd",
            "processing_record.controller",
            json!("Clinic Ltd"),
        )),
        "policy" => Some((
            "modules",
            "[\"default\", \"gdpr\"]",
            "policy.modules",
            json!(["default", "gdpr"]),
        )),
        "files.blob" => Some(("path", "/srv/concord-blobs", "files.blob.path", json!("/srv/concord-blobs"))),
        "sso" => Some((
            "providers",
            "[{id=\"corp\",display_name=\"Corp\",issuer_url=\"https://id.example.org\",client_id=\"concord\",client_secret=\"shh\"}]",
            "sso.providers.0.id",
            json!("corp"),
        )),
        _ => None,
    };
    let key = |k: &str| {
        if table.is_empty() {
            k.to_owned()
        } else {
            format!("{table}.{k}")
        }
    };
    let chosen = explicit
        .map(|(k, v, check, expect)| (key(k), v.to_owned(), check.to_owned(), expect))
        .or_else(|| {
            map.iter().find_map(|(k, v)| {
                let n = v.as_u64()?;
                let changed = if n > 1 { n - 1 } else { n + 1 };
                Some((key(k), changed.to_string(), key(k), json!(changed)))
            })
        })
        .or_else(|| {
            map.iter().find_map(|(k, v)| {
                let b = v.as_bool()?;
                Some((key(k), (!b).to_string(), key(k), json!(!b)))
            })
        })
        .unwrap_or_else(|| {
            panic!(
                "no setting of [{table}] to change through the environment: name one in this test"
            )
        });
    out.push(chosen);
    for (k, v) in map {
        if v.is_object() {
            one_setting_per_table(&key(k), v, out);
        }
    }
}

#[test]
fn every_section_is_settable_through_the_environment_and_unknown_variables_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (code, out, err) = run(concord(d).args(["config", "print"]), None);
    assert_eq!(code, 0, "{err}");
    let defaults = printed(&out);
    let mut settings = Vec::new();
    one_setting_per_table("", &defaults, &mut settings);
    for section in ["docs", "search", "files", "audit", "http", "metrics"] {
        assert!(
            settings
                .iter()
                .any(|(k, ..)| k.starts_with(&format!("{section}."))),
            "[{section}] is covered: {settings:?}"
        );
    }

    let mut cmd = concord(d);
    cmd.args(["config", "print"])
        // Variables of the tools around Concord are not settings and are left alone.
        .env("CONCORD_TEST_POSTGRES_URL", "postgres://elsewhere/test")
        .env("CONCORD_ADMIN_PASSWORD", "not a setting");
    for (key, value, ..) in &settings {
        cmd.env(
            format!("CONCORD_{}", key.to_uppercase().replace('.', "__")),
            value,
        );
    }
    let (code, out, err) = run(&mut cmd, None);
    assert_eq!(code, 0, "{settings:?}: {err}");
    let effective = printed(&out);
    for (key, value, check, expected) in &settings {
        assert_eq!(
            at(&effective, check),
            expected,
            "{key}={value} did not take effect:\n{out}"
        );
    }
    let (code, out, err) = run(
        concord(d)
            .args(["config", "print"])
            .env("CONCORD_DOCS__IDLE_SECONDS", "7"),
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(printed(&out)["docs"]["idle_seconds"], 7, "{out}");

    for name in ["CONCORD_DOCS__NOPE", "CONCORD_SEARCH__NOPE", "CONCORD_NOPE"] {
        let (code, _, err) = run(concord(d).args(["config", "print"]).env(name, "1"), None);
        assert_eq!(code, 2, "{name}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(name), "{name}: {err}");
    }
}

#[test]
fn serve_prints_its_url_and_setup_link_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = concord(dir.path())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut url = None;
    let mut setup = None;
    while setup.is_none() || url.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("serve prints its URL and setup link");
        if let Some(u) = line.strip_prefix("Concord is listening on ") {
            url = Some(u.to_owned());
        }
        if line.contains("/setup?token=") {
            setup = Some(line.trim().to_owned());
        }
    }
    let url = url.unwrap();
    assert!(setup.unwrap().starts_with(&url));
    assert!(
        dir.path().join("data/concord.db").exists(),
        "SQLite in ./data by default"
    );

    let health = reqwest::blocking_get(&format!("{url}/healthz"));
    assert!(health.contains("ok"), "{health}");

    // SIGTERM: a graceful stop with exit code 0.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "server did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        err.contains("WARNING: development mode generated a new signing key"),
        "{err}"
    );
    assert!(err.contains("storage flushed"), "{err}");
}

#[test]
fn migrate_against_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let name = format!("concord_t_{}", uuid::Uuid::new_v4().simple());
    let admin = postgres_admin_url();
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await
            .unwrap();
    });
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&name);
    let (code, out, err) = run(
        concord(dir.path()).args(["migrate", "--database-url", url.as_str()]),
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Postgres"), "{out}");
    let (code, _, err) = run(
        concord(dir.path()).args(["migrate", "--database-url", "mysql://nope"]),
        None,
    );
    assert_eq!(code, 2);
    assert!(err.contains("database.url"), "{err}");
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&mut c)
            .await
            .unwrap();
    });
}

mod reqwest {
    /// A tiny blocking GET over a fresh runtime (the test itself is synchronous).
    pub fn blocking_get(url: &str) -> String {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async { ::reqwest::get(url).await.unwrap().text().await.unwrap() })
    }
}
