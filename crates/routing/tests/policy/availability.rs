//! Presence and capacity on the same candidates: out-of-office periods, presence flipping,
//! everyone full, and what the fallback finds.

use concord_routing::policy::{
    route, route_on, Candidate, Outcome, Presence, RoutingOptions, Strategy, WaitReason,
};

use super::{at, aware, day, decide, person, plain};

fn assign(id: &str) -> Outcome {
    Outcome::Assign { id: id.to_string() }
}

#[test]
fn when_everyone_is_at_capacity_the_task_waits_instead_of_overloading_someone() {
    let full = [
        person("ann").with_load(5, Some(5)),
        person("bo").with_load(7, Some(6)),
        person("cy").with_load(1, Some(1)),
    ];
    let decision = decide(&Strategy::LeastLoaded, &full, &plain());
    assert_eq!(
        decision.outcome,
        Outcome::Wait {
            reason: WaitReason::AtCapacity
        }
    );
    assert_eq!(decision.assignee(), None);
    assert_eq!(decision.eligible, 0);
    assert_eq!(decision.skipped.len(), 3);
    assert_eq!(
        decision.explanation,
        "least loaded: nobody available now (3 at capacity)"
    );

    // Someone away but with room: the wait is for presence, and the fallback finds them.
    let mut group = full.to_vec();
    group.push(
        person("dee")
            .with_load(9, None)
            .with_presence(Presence::Away),
    );
    let decision = decide(&Strategy::LeastLoaded, &group, &aware());
    assert_eq!(
        decision.outcome,
        Outcome::Wait {
            reason: WaitReason::Unavailable
        }
    );
    assert_eq!(
        decision.explanation,
        "least loaded: nobody available now (1 away, 3 at capacity)"
    );
    let fallback = decide(&Strategy::LeastLoaded, &group, &aware().ignoring_presence());
    assert_eq!(fallback.outcome, assign("dee"));

    // Away and full as well: the fallback would not help, so the reason is capacity.
    group[3] = person("dee")
        .with_load(2, Some(2))
        .with_presence(Presence::Away);
    let decision = decide(&Strategy::LeastLoaded, &group, &aware());
    assert_eq!(
        decision.outcome,
        Outcome::Wait {
            reason: WaitReason::AtCapacity
        }
    );

    // The caller may choose to overload.
    let overload = RoutingOptions {
        respect_capacity: false,
        ..plain()
    };
    assert_eq!(
        decide(&Strategy::LeastLoaded, &full, &overload).outcome,
        assign("cy")
    );
}

#[test]
fn out_of_office_covers_both_ends_and_is_judged_on_the_day_of_now() {
    let group = [
        person("ann").with_out_of_office(day("2027-08-10"), day("2027-08-15")),
        person("bo").with_load(3, None),
    ];
    let who = |instant: &str| {
        route(&Strategy::LeastLoaded, &group, None, &aware(), at(instant))
            .assignee()
            .map(str::to_string)
    };
    assert_eq!(who("2027-08-09T23:59:59Z").as_deref(), Some("ann"));
    assert_eq!(who("2027-08-10T00:00:00Z").as_deref(), Some("bo"));
    assert_eq!(who("2027-08-15T23:59:59Z").as_deref(), Some("bo"));
    assert_eq!(who("2027-08-16T00:00:00Z").as_deref(), Some("ann"));

    // Without presence awareness the period does not matter.
    let decision = route(
        &Strategy::LeastLoaded,
        &group,
        None,
        &plain(),
        at("2027-08-12T12:00:00Z"),
    );
    assert_eq!(decision.outcome, assign("ann"));

    // A caller that counts days in the workspace's zone passes the local date.
    let decision = route_on(
        &Strategy::LeastLoaded,
        &group,
        None,
        &aware(),
        day("2027-08-10"),
    );
    assert_eq!(decision.outcome, assign("bo"));
    assert_eq!(
        decision.explanation,
        "least loaded: 3 open, the only one available; skipped 1: 1 out of office"
    );
}

#[test]
fn flipping_presence_on_the_same_candidates_changes_the_outcome() {
    let mut group = vec![
        person("ann"),
        person("bo").with_load(1, None),
        person("cy").with_load(2, None),
    ];
    let who = |group: &[Candidate], options: &RoutingOptions| {
        decide(&Strategy::LeastLoaded, group, options).outcome
    };
    assert_eq!(who(&group, &aware()), assign("ann"));
    group[0].presence = Presence::Away;
    assert_eq!(who(&group, &aware()), assign("bo"));
    assert_eq!(
        who(&group, &plain()),
        assign("ann"),
        "presence only counts when asked"
    );
    group[1].presence = Presence::Offline;
    assert_eq!(who(&group, &aware()), assign("cy"));
    group[2].presence = Presence::Offline;
    let decision = decide(&Strategy::LeastLoaded, &group, &aware());
    assert_eq!(
        decision.outcome,
        Outcome::Wait {
            reason: WaitReason::Unavailable
        }
    );
    assert_eq!(
        decision.explanation,
        "least loaded: nobody available now (1 away, 2 offline)"
    );
    // The fallback after the timeout ignores presence.
    assert_eq!(who(&group, &aware().ignoring_presence()), assign("ann"));
    group[0].presence = Presence::Online;
    assert_eq!(who(&group, &aware()), assign("ann"));
}
