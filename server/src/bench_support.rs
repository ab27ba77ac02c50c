//! Helpers for the benchmarks (`concord-bench-writes`, `concord-bench dashboard`); not part
//! of the server's API.

use crate::accounts::{insert_user, NewAccount};
use crate::crypto::Keyring;
use crate::domain::{DisplayName, Email, Password, UserId};
use crate::error::Error;
use crate::store::{Store, Tx};

/// Creates `n` accounts (with their data keys) and returns their ids.
pub async fn seed_accounts(
    store: &Store,
    keyring: &Keyring,
    n: usize,
) -> Result<Vec<UserId>, Error> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let id = UserId::generate();
        ids.push(id);
        let keyring = keyring.clone();
        let account = NewAccount {
            email: Email::parse("email", &format!("seed{i}@example.org"))?,
            display_name: DisplayName::parse("name", &format!("Seed {i}"))?,
            password: Password::parse_new("password", "not used by the benchmark".into())?,
            system_role: None,
        };
        store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    insert_user(tx, &keyring, id, &account, None, "x", None).await?;
                    Ok::<_, Error>(())
                })
            })
            .await?;
    }
    Ok(ids)
}

/// The history the process-dashboard benchmark (`concord-bench dashboard`) loads.
#[derive(Clone, Copy, Debug)]
pub struct ProcessHistory {
    /// Instances that completed.
    pub completed: usize,
    /// Instances still in their first step.
    pub running: usize,
    /// Days the completions are spread over, up to now.
    pub days: i64,
    /// Seed of the durations.
    pub seed: u64,
}

/// Loads `history` into a deployed process whose model is the benchmark's (`triage`, a user
/// task from a queue due in 4 hours; `score`, a service task; `decide`, a user task assigned
/// at once, due in a day): instance rows (with a state of a sealed state's size) and their
/// facts, added to the dashboard's counts and histograms by the functions the write path
/// uses, a thousand instances per write. Returns the facts stored.
pub async fn load_process_history(
    store: &Store,
    workspace: crate::domain::WorkspaceId,
    process_id: &str,
    deployment_id: uuid::Uuid,
    history: ProcessHistory,
) -> Result<usize, Error> {
    use chrono::{Duration, Utc};
    use rand::{Rng, SeedableRng};

    use crate::store::workflow_facts::{self as facts, FactRecord};
    use crate::store::workflows::{self as wf, InstanceRecord};
    use crate::workflow::facts::{add_instances, add_left, leave};

    const PER_WRITE: usize = 1000;
    let now = Utc::now();
    let mut rng = rand::rngs::StdRng::seed_from_u64(history.seed);
    // A log-normal duration in milliseconds around `median`.
    fn log_normal(rng: &mut impl Rng, median_ms: f64, sigma: f64) -> i64 {
        let (u1, u2): (f64, f64) = (rng.gen_range(f64::EPSILON..1.0), rng.gen());
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        (median_ms * (sigma * z).exp()).round().max(0.0) as i64
    }
    let total = history.completed + history.running;
    let mut stored = 0;
    let mut next = 0;
    while next < total {
        let end = (next + PER_WRITE).min(total);
        let mut instances = Vec::with_capacity(end - next);
        let mut left = Vec::new();
        let mut open = Vec::new();
        let mut started = Vec::new();
        let mut ended = Vec::new();
        for i in next..end {
            let id = uuid::Uuid::now_v7();
            let fact =
                |element: &str, kind: &str, entered: chrono::DateTime<Utc>, n: usize| FactRecord {
                    id: format!("{id}:{n}"),
                    workspace_id: workspace,
                    process_id: process_id.to_owned(),
                    deployment_id,
                    instance_id: id,
                    element: element.to_owned(),
                    kind: kind.to_owned(),
                    execution: None,
                    entered_at: entered,
                    picked_at: None,
                    left_at: None,
                    outcome: None,
                    waiting_ms: None,
                    working_ms: None,
                    due_at: None,
                    breached: false,
                };
            let mut state = vec![0u8; 600];
            rng.fill(&mut state[..]);
            if i >= history.completed {
                let at = now - Duration::milliseconds(log_normal(&mut rng, 600_000.0, 1.0));
                let mut f = fact("triage", "user_task", at, 2);
                f.due_at = Some(at + Duration::hours(4));
                open.push(f);
                started.push(at);
                instances.push(InstanceRecord {
                    id,
                    workspace_id: workspace,
                    deployment_id,
                    process_id: process_id.to_owned(),
                    status: "running".into(),
                    state,
                    started_by: None,
                    started_at: at,
                    updated_at: at,
                    ended_at: None,
                    parent_id: None,
                    parent_wait: None,
                    trigger_event: None,
                });
                continue;
            }
            let triage_wait = log_normal(&mut rng, 20.0 * 60_000.0, 1.0);
            let triage_work = log_normal(&mut rng, 5.0 * 60_000.0, 0.8);
            let score = log_normal(&mut rng, 800.0, 0.5);
            let decide = log_normal(&mut rng, 60.0 * 60_000.0, 1.0);
            let span = triage_wait + triage_work + score + decide;
            let spread = history.days * 86_400_000;
            let ended_at = now - Duration::milliseconds(rng.gen_range(0..spread.max(1)));
            let start = ended_at - Duration::milliseconds(span);
            let mut triage = fact("triage", "user_task", start, 2);
            triage.due_at = Some(start + Duration::hours(4));
            triage.picked_at = Some(start + Duration::milliseconds(triage_wait));
            let t1 = start + Duration::milliseconds(triage_wait + triage_work);
            leave(&mut triage, t1, "completed");
            let mut scored = fact("score", "service_task", t1, 4);
            scored.execution = Some(1);
            let t2 = t1 + Duration::milliseconds(score);
            leave(&mut scored, t2, "completed");
            let mut decided = fact("decide", "user_task", t2, 6);
            decided.due_at = Some(t2 + Duration::days(1));
            decided.picked_at = Some(t2);
            leave(&mut decided, ended_at, "completed");
            left.extend([triage, scored, decided]);
            started.push(start);
            ended.push((ended_at, "completed"));
            instances.push(InstanceRecord {
                id,
                workspace_id: workspace,
                deployment_id,
                process_id: process_id.to_owned(),
                status: "completed".into(),
                state,
                started_by: None,
                started_at: start,
                updated_at: ended_at,
                ended_at: Some(ended_at),
                parent_id: None,
                parent_wait: None,
                trigger_event: None,
            });
        }
        stored += left.len() + open.len();
        let process = process_id.to_owned();
        store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    for instance in &instances {
                        wf::insert_instance(&mut tx.conn(), instance).await?;
                    }
                    facts::insert_facts(&mut tx.conn(), &left).await?;
                    facts::insert_facts(&mut tx.conn(), &open).await?;
                    add_left(&mut tx.conn(), &left).await?;
                    add_instances(&mut tx.conn(), workspace, &process, &started, &ended).await?;
                    Ok::<_, Error>(())
                })
            })
            .await?;
        next = end;
    }
    Ok(stored)
}
