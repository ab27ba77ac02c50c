//! The learned router's evaluation from the command line: on a process's completed tasks
//! (the completer is the label), on a generated ticket history and on fortune files, with its
//! two baselines; bad input gets one line on stderr.

use std::process::Command;

use serde_json::{json, Value};

use crate::harness::{both_backends, Backend};

async fn a_process_history_is_evaluated_against_its_baselines(backend: Backend) {
    let app = crate::harness::spawn_app(backend).await;
    let t = app.team().await;
    let base = format!("/api/v1/workspaces/{}", t.ws);
    app.post(
        &format!("{base}/workflows"),
        Some(&t.admin.access),
        json!({"source": "process: helpdesk\nsteps:\n  - start: s\n  - user_task: answer\n    person: ${who}\n  - end: e\n"}),
    )
    .await
    .expect(201);
    let billing = [
        "refund for a double charge",
        "invoice shows the wrong amount",
        "card was charged twice",
        "cancel my subscription and refund",
        "billing address on the invoice",
        "환불 요청 결제 오류",
    ];
    let access = [
        "cannot sign in after password reset",
        "locked out of my account",
        "two-factor code never arrives",
        "reset my password please",
        "login page keeps failing",
        "비밀번호 재설정 로그인 불가",
    ];
    for n in 0..36 {
        let (subject, who) = if n % 2 == 0 {
            (billing[n / 2 % billing.len()], &t.ann)
        } else {
            (access[n / 2 % access.len()], &t.bo)
        };
        let started = app
            .post(
                &format!("{base}/workflows/helpdesk/instances"),
                Some(&t.admin.access),
                json!({"variables": {"subject": format!("{subject} #{n}"), "who": who.user_id}}),
            )
            .await
            .expect(201)
            .clone();
        let task = started["tasks"][0]["id"].as_str().unwrap().to_owned();
        app.post(
            &format!("/api/v1/workflow-tasks/{task}/complete"),
            Some(&who.access),
            json!({"variables": {}}),
        )
        .await
        .expect(200);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(app.cli_args())
        .args([
            "routing",
            "evaluate",
            "--workspace",
            &t.ws,
            "--process",
            "helpdesk",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["examples"], 36, "{e}");
    let mut labels: Vec<String> = serde_json::from_value(e["labels"].clone()).unwrap();
    labels.sort();
    let mut people = vec![t.ann.user_id.clone(), t.bo.user_id.clone()];
    people.sort();
    assert_eq!(labels, people, "the completers are the labels");
    assert!(
        e["model"]["accuracy"].as_f64().unwrap() > e["majority"]["accuracy"].as_f64().unwrap(),
        "{e}"
    );
    // A process without completed tasks has nothing to learn from.
    let out = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(app.cli_args())
        .args([
            "routing",
            "evaluate",
            "--workspace",
            &t.ws,
            "--process",
            "nothing",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no completed tasks") && stderr.lines().count() == 1,
        "{stderr}"
    );
}

both_backends!(a_process_history_is_evaluated_against_its_baselines);

#[test]
fn generated_and_fortune_histories_are_evaluated_and_bad_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_concord"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(["routing", "evaluate"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--generated", "2000"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("macro-F1") && report.contains("keyword rules"),
        "{report}"
    );
    let out = run(&["--generated", "2000", "--json"]);
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    let model = e["model"]["macro_f1"].as_f64().unwrap();
    assert!(
        model > e["keyword_rules"]["macro_f1"].as_f64().unwrap(),
        "{e}"
    );
    assert!(model > e["majority"]["macro_f1"].as_f64().unwrap(), "{e}");
    // Fortune files: entries between lines of `%`, the file's name the category; indexes skipped.
    let corpus = dir.path().join("fortunes");
    std::fs::create_dir(&corpus).unwrap();
    let mut food = String::new();
    let mut computers = String::new();
    for n in 0..30 {
        food.push_str(&format!(
            "Bread and butter with cheese, soup number {n}.\n%\n"
        ));
        computers.push_str(&format!(
            "The kernel crashed; reboot the server {n} times.\n%\n"
        ));
    }
    std::fs::write(corpus.join("food"), food).unwrap();
    std::fs::write(corpus.join("computers"), computers).unwrap();
    std::fs::write(corpus.join("food.dat"), [0u8, 1, 2]).unwrap();
    let out = run(&["--fortunes", corpus.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&e["examples"], &e["labels"]),
        (&json!(60), &json!(["computers", "food"])),
        "{e}"
    );
    // Bad input: one line on stderr, a non-zero exit.
    for args in [
        vec!["--threshold", "2", "--generated", "100"],
        vec![],
        vec!["--fortunes", "/nonexistent/fortunes"],
        vec!["--generated", "100", "--fortunes", "/tmp"],
    ] {
        let out = run(&args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.trim().is_empty(), "{args:?}");
    }
}
