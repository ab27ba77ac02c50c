//! Escalation as the server drives it with timers: when the next step is due, what firing
//! it does, in order up the chain.

use std::collections::HashMap;

use concord_routing::policy::{
    escalate, escalate_due, Due, EscalateTo, EscalateWhen, EscalationChain, EscalationStep,
    IsoDuration, Target, TaskTimes,
};
use serde_json::json;

use super::at;

fn chain(value: serde_json::Value) -> EscalationChain {
    serde_json::from_value(value).expect("a valid chain")
}

fn refused(value: serde_json::Value) -> String {
    match serde_json::from_value::<EscalationChain>(value) {
        Ok(chain) => panic!("accepted {chain:?}"),
        Err(e) => e.to_string(),
    }
}

/// Manager after 4 hours if nobody claimed it, then the leads' role after a day if not done.
fn manager_then_role() -> EscalationChain {
    chain(json!([
        {"to": "manager", "after": "PT4H", "on": "not_claimed"},
        {"to": {"role": "support-leads"}, "after": "P1D", "on": "not_done"}
    ]))
}

fn managers() -> HashMap<String, String> {
    HashMap::from([
        ("ann".to_string(), "mia".to_string()),
        ("mia".to_string(), "dir".to_string()),
    ])
}

fn opened() -> TaskTimes {
    TaskTimes {
        opened_at: at("2027-08-10T09:00:00Z"),
        claimed_at: None,
    }
}

#[test]
fn steps_fire_in_order_manager_then_role_at_their_due_times() {
    let chain = manager_then_role();
    let managers = managers();
    let manager_of = |id: &str| managers.get(id).cloned();
    let times = opened();

    assert_eq!(
        chain.next_due(&times, 0),
        Some(Due {
            step: 0,
            at: at("2027-08-10T13:00:00Z")
        })
    );
    assert_eq!(
        chain.due_at(1, times.opened_at),
        Some(at("2027-08-11T09:00:00Z"))
    );

    // A timer that fires early (or a check before the time) does nothing.
    let early = escalate_due(
        &chain,
        &times,
        0,
        at("2027-08-10T12:59:59Z"),
        Some("ann"),
        manager_of,
    );
    assert!(early.escalations.is_empty());
    assert_eq!(early.level, 0);
    assert_eq!(
        early.next,
        Some(Due {
            step: 0,
            at: at("2027-08-10T13:00:00Z")
        })
    );

    let first = escalate_due(
        &chain,
        &times,
        0,
        at("2027-08-10T13:00:00Z"),
        Some("ann"),
        manager_of,
    );
    assert_eq!(first.escalations.len(), 1);
    assert_eq!(first.escalations[0].step, 0);
    assert_eq!(first.escalations[0].to, Target::Person("mia".into()));
    assert_eq!(
        first.escalations[0].explanation,
        "escalated to the assignee's manager: not claimed within 4 hours"
    );
    assert_eq!(first.level, 1);
    assert_eq!(
        first.next,
        Some(Due {
            step: 1,
            at: at("2027-08-11T09:00:00Z")
        })
    );

    let second = escalate_due(
        &chain,
        &times,
        first.level,
        at("2027-08-11T09:30:00Z"),
        Some("mia"),
        manager_of,
    );
    assert_eq!(second.escalations.len(), 1);
    assert_eq!(
        second.escalations[0].to,
        Target::Role("support-leads".into())
    );
    assert_eq!(
        second.escalations[0].explanation,
        "escalated to support-leads: not done within 1 day"
    );
    assert_eq!(second.level, 2);
    assert_eq!(second.next, None, "the chain is spent");
}

#[test]
fn a_server_that_was_down_fires_every_missed_step_in_order() {
    let chain = manager_then_role();
    let managers = managers();
    let run = escalate_due(
        &chain,
        &opened(),
        0,
        at("2027-08-12T00:00:00Z"),
        Some("ann"),
        |id| managers.get(id).cloned(),
    );
    let steps: Vec<(usize, Target)> = run
        .escalations
        .iter()
        .map(|e| (e.step, e.to.clone()))
        .collect();
    assert_eq!(
        steps,
        [
            (0, Target::Person("mia".into())),
            (1, Target::Role("support-leads".into()))
        ]
    );
    assert_eq!(run.level, 2);
}

#[test]
fn a_claim_passes_over_the_not_claimed_steps() {
    let chain = manager_then_role();
    let claimed = TaskTimes {
        claimed_at: Some(at("2027-08-10T10:00:00Z")),
        ..opened()
    };
    assert_eq!(
        chain.next_due(&claimed, 0),
        Some(Due {
            step: 1,
            at: at("2027-08-11T09:00:00Z")
        }),
        "after a claim the server moves its timer to the not-done step"
    );
    assert_eq!(
        chain.due_steps(&claimed, 0, at("2027-08-10T14:00:00Z")),
        (vec![], 1)
    );
    let run = escalate_due(
        &chain,
        &claimed,
        0,
        at("2027-08-11T09:00:00Z"),
        Some("ann"),
        |_| None,
    );
    assert_eq!(run.escalations.len(), 1);
    assert_eq!(run.escalations[0].step, 1);
}

#[test]
fn manager_steps_climb_from_whoever_holds_the_task_and_find_nobody_without_one() {
    let chain = chain(json!([
        {"to": "manager", "after": "PT1H", "on": "not_done"},
        {"to": "manager", "after": "PT2H", "on": "not_done"},
        {"to": "manager", "after": "PT3H", "on": "not_done"},
        {"to": {"person": "duty-officer"}, "after": "PT4H", "on": "not_done"}
    ]));
    let managers = managers();
    let run = escalate_due(
        &chain,
        &opened(),
        0,
        at("2027-08-10T13:00:00Z"),
        Some("ann"),
        |id| managers.get(id).cloned(),
    );
    let targets: Vec<Target> = run.escalations.iter().map(|e| e.to.clone()).collect();
    assert_eq!(
        targets,
        [
            Target::Person("mia".into()),
            Target::Person("dir".into()),
            Target::Nobody,
            Target::Person("duty-officer".into()),
        ]
    );
    assert_eq!(
        run.escalations[2].explanation,
        "escalation: not done within 3 hours, but the assignee has no manager on record"
    );
    assert_eq!(
        run.escalations[3].explanation,
        "escalated to the person the process names: not done within 4 hours"
    );

    // A task sitting in a queue has nobody whose manager to ask.
    let queued = escalate(&chain, 0, None, |_| Some("mia".into()));
    assert_eq!(queued.to, Target::Nobody);
    assert_eq!(
        queued.explanation,
        "escalation: not done within 1 hour, but nobody holds it to escalate to their manager"
    );
    assert_eq!(
        escalate(&chain, 9, Some("ann"), |_| None).to,
        Target::Nobody
    );
}

#[test]
fn a_chain_is_checked_when_the_model_is_deployed() {
    assert!(refused(json!([
        {"to": "manager", "after": "P1D", "on": "not_claimed"},
        {"to": {"role": "leads"}, "after": "PT4H", "on": "not_done"}
    ]))
    .contains(
        "escalation step 2 fires after PT4H but step 1 after P1D: each step's time counts from \
         when the task opened and must be later than the one before"
    ));
    assert!(
        refused(json!([{"to": "manager", "after": "4 hours", "on": "not_claimed"}]))
            .contains("\"4 hours\": a duration starts with P, e.g. PT4H or P1D")
    );
    assert!(
        refused(json!([{"to": "manager", "after": "PT0S", "on": "not_claimed"}]))
            .contains("the duration must be longer than zero")
    );
    assert!(
        refused(json!([{"to": {"role": " "}, "after": "PT1H", "on": "not_done"}]))
            .contains("escalation step 1: the role is empty")
    );
    assert!(
        refused(json!([{"to": "manager", "after": "PT1H", "on": "not_done", "then": "x"}]))
            .contains("unknown field `then`")
    );
    assert!(refused(json!([{"to": "boss", "after": "PT1H", "on": "not_done"}])).contains("boss"));

    let steps = manager_then_role().steps().to_vec();
    assert_eq!(
        steps[1],
        EscalationStep {
            to: EscalateTo::Role("support-leads".into()),
            after: IsoDuration::parse("P1D").expect("valid"),
            on: EscalateWhen::NotDone,
        }
    );
    assert_eq!(
        serde_json::to_value(manager_then_role()).expect("serialises"),
        json!([
            {"to": "manager", "after": "PT4H", "on": "not_claimed"},
            {"to": {"role": "support-leads"}, "after": "P1D", "on": "not_done"}
        ])
    );
}

#[test]
fn durations_read_as_people_say_them() {
    let human = |text: &str| IsoDuration::parse(text).expect("valid").human();
    assert_eq!(human("PT4H"), "4 hours");
    assert_eq!(human("P1DT12H"), "1 day 12 hours");
    assert_eq!(human("PT90M"), "1 hour 30 minutes");
    assert_eq!(human("P1W"), "7 days");
    assert_eq!(human("PT0.5S"), "under a second");
    assert_eq!(
        IsoDuration::parse("PT4H").expect("valid").length(),
        chrono::Duration::hours(4)
    );
    assert!(IsoDuration::parse("P").is_err());
    assert!(IsoDuration::parse("PT4").is_err_and(|e| e.contains("missing its unit")));
    assert!(IsoDuration::parse("P4X").is_err_and(|e| e.contains("unknown unit")));
}
