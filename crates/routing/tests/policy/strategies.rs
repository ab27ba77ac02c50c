//! Each strategy on its own, with the explanations people see.

use std::time::{Duration, Instant};

use concord_routing::policy::{
    parse_requirements, route, Attributes, Candidate, Outcome, Presence, RoutingOptions, Skip,
    SkipReason, Strategy, WaitReason,
};

use super::{aware, day, decide, now, person, plain, skilled};

fn named(id: &str) -> Strategy {
    Strategy::Person { id: id.to_string() }
}

fn skills(text: &str) -> Strategy {
    Strategy::Skills {
        requirements: parse_requirements(text).expect("valid requirements"),
    }
}

fn assign(id: &str) -> Outcome {
    Outcome::Assign { id: id.to_string() }
}

#[test]
fn a_named_person_gets_the_task_unless_presence_aware_routing_finds_them_away() {
    let ooo = person("bo").with_out_of_office(day("2027-08-09"), day("2027-08-15"));
    let group = [person("ann"), ooo.clone().with_presence(Presence::Offline)];

    let decision = decide(&named("ann"), &group, &aware());
    assert_eq!(decision.outcome, assign("ann"));
    assert_eq!(decision.assignee(), Some("ann"));
    assert_eq!(decision.eligible, 1);
    assert_eq!(
        decision.explanation,
        "named person: assigned by the process"
    );

    // Without presence awareness, out of office and offline do not matter.
    assert_eq!(decide(&named("bo"), &group, &plain()).outcome, assign("bo"));

    let decision = decide(&named("bo"), &group, &aware());
    assert_eq!(
        decision.outcome,
        Outcome::Wait {
            reason: WaitReason::Unavailable
        }
    );
    assert_eq!(
        decision.explanation,
        "named person is out of office until 2027-08-15"
    );
    assert_eq!(
        decision.skipped,
        [Skip {
            id: "bo".into(),
            why: SkipReason::OutOfOffice {
                until: day("2027-08-15")
            }
        }]
    );
    assert_eq!(decision.eligible, 0);

    let offline = [person("bo").with_presence(Presence::Offline)];
    let decision = decide(&named("bo"), &offline, &aware());
    assert_eq!(decision.explanation, "named person is offline");

    // Capacity holds for a named person too; the wait is for load, not presence.
    let full = [person("bo").with_load(5, Some(5))];
    let decision = decide(&named("bo"), &full, &aware());
    assert_eq!(
        decision.outcome,
        Outcome::Wait {
            reason: WaitReason::AtCapacity
        }
    );
    assert_eq!(
        decision.explanation,
        "named person is at capacity (5 open of 5)"
    );
    let overload = RoutingOptions {
        respect_capacity: false,
        ..aware()
    };
    assert_eq!(decide(&named("bo"), &full, &overload).outcome, assign("bo"));

    let decision = decide(&named("zed"), &group, &aware());
    assert!(
        matches!(decision.outcome, Outcome::Unroutable { .. }),
        "{decision:?}"
    );
    assert_eq!(
        decision.explanation,
        "named person: not among the candidates"
    );
}

#[test]
fn a_queue_goes_to_the_whole_group_and_counts_who_can_claim_now() {
    let group = [
        person("ann"),
        person("bo").with_presence(Presence::Away),
        person("cy"),
    ];

    let decision = decide(&Strategy::Queue, &group, &plain());
    assert_eq!(decision.outcome, Outcome::Queue);
    assert_eq!(decision.eligible, 3);
    assert_eq!(decision.explanation, "shared queue: any of 3 can claim it");

    let decision = decide(&Strategy::Queue, &group, &aware());
    assert_eq!(decision.outcome, Outcome::Queue);
    assert_eq!(decision.eligible, 2);
    assert_eq!(
        decision.skipped,
        [Skip {
            id: "bo".into(),
            why: SkipReason::Away
        }]
    );
    assert_eq!(
        decision.explanation,
        "shared queue: 2 of 3 available to claim it; skipped 1: 1 away"
    );

    // A queue never waits: claiming is voluntary, escalation handles a queue nobody takes.
    let all_away = [group[1].clone()];
    assert_eq!(
        decide(&Strategy::Queue, &all_away, &aware()).outcome,
        Outcome::Queue
    );

    let decision = decide(&Strategy::Queue, &[], &aware());
    assert_eq!(
        decision.outcome,
        Outcome::Unroutable {
            reason: "shared queue: nobody in the group".into()
        }
    );
}

#[test]
fn round_robin_takes_the_next_in_id_order_after_the_cursor_and_wraps() {
    // Given out of order: the order is the ids', not the snapshot's.
    let group = [person("cy"), person("ann"), person("dee"), person("bo")];
    let rr = Strategy::RoundRobin;
    let next = |cursor: Option<&str>| route(&rr, &group, cursor, &plain(), now());

    let first = next(None);
    assert_eq!(first.outcome, assign("ann"));
    assert_eq!(first.cursor.as_deref(), Some("ann"));
    assert_eq!(first.explanation, "round-robin: next of 4 in the group");

    let mut cursor = None;
    let mut order = Vec::new();
    for _ in 0..6 {
        let decision = next(cursor.as_deref());
        order.push(decision.assignee().unwrap_or_default().to_string());
        cursor = decision.cursor;
    }
    assert_eq!(order, ["ann", "bo", "cy", "dee", "ann", "bo"]);

    // The last one assigned has since left the group: the turn goes to the next id after it.
    assert_eq!(next(Some("bz")).outcome, assign("cy"));
    assert_eq!(next(Some("zz")).outcome, assign("ann"));
}

#[test]
fn round_robin_passes_over_people_who_are_away_or_full_and_keeps_the_cursor_when_waiting() {
    let group = [
        person("ann"),
        person("bo").with_load(3, Some(3)),
        person("cy").with_out_of_office(day("2027-08-01"), day("2027-08-31")),
        person("dee"),
        person("eve"),
        person("fay"),
    ];
    let decision = route(&Strategy::RoundRobin, &group, Some("ann"), &aware(), now());
    assert_eq!(decision.outcome, assign("dee"));
    assert_eq!(decision.cursor.as_deref(), Some("dee"));
    assert_eq!(decision.eligible, 4);
    assert_eq!(
        decision.explanation,
        "round-robin: next of 4 in the group; skipped 2: 1 out of office, 1 at capacity"
    );
    assert_eq!(
        decision.skipped,
        [
            Skip {
                id: "bo".into(),
                why: SkipReason::AtCapacity {
                    open: 3,
                    capacity: 3
                }
            },
            Skip {
                id: "cy".into(),
                why: SkipReason::OutOfOffice {
                    until: day("2027-08-31")
                }
            },
        ]
    );

    // Wrapping past the end skips the ineligible too.
    let decision = route(
        &Strategy::RoundRobin,
        &group[..3],
        Some("ann"),
        &aware(),
        now(),
    );
    assert_eq!(decision.outcome, assign("ann"));

    let nobody = [person("bo").with_presence(Presence::Offline)];
    let decision = route(&Strategy::RoundRobin, &nobody, Some("ann"), &aware(), now());
    assert_eq!(
        decision.outcome,
        Outcome::Wait {
            reason: WaitReason::Unavailable
        }
    );
    assert_eq!(
        decision.cursor.as_deref(),
        Some("ann"),
        "the turn is not used up"
    );
    assert_eq!(
        decision.explanation,
        "round-robin: nobody available now (1 offline)"
    );
}

#[test]
fn least_loaded_picks_the_fewest_open_tasks_within_capacity() {
    let group = [
        person("ann").with_load(4, Some(10)),
        person("bo").with_load(2, Some(5)),
        person("cy").with_load(1, Some(1)),
        person("dee").with_load(3, None),
    ];
    let decision = decide(&Strategy::LeastLoaded, &group, &plain());
    assert_eq!(decision.outcome, assign("bo"), "cy has fewer but is full");
    assert_eq!(
        decision.explanation,
        "least loaded: 2 open of 5 capacity, least of 3; skipped 1: 1 at capacity"
    );
    assert_eq!(
        decision.skipped,
        [Skip {
            id: "cy".into(),
            why: SkipReason::AtCapacity {
                open: 1,
                capacity: 1
            }
        }]
    );

    // Equal open tasks: the most room left wins (no capacity is the most), then the id.
    let tied = [
        person("ann").with_load(2, Some(3)),
        person("bo").with_load(2, Some(8)),
        person("cy").with_load(2, Some(8)),
    ];
    assert_eq!(
        decide(&Strategy::LeastLoaded, &tied, &plain()).outcome,
        assign("bo")
    );
    let unlimited = [tied[1].clone(), person("dee").with_load(2, None)];
    let decision = decide(&Strategy::LeastLoaded, &unlimited, &plain());
    assert_eq!(decision.outcome, assign("dee"));
    assert_eq!(decision.explanation, "least loaded: 2 open, least of 2");

    let one = [person("ann").with_load(0, Some(2))];
    assert_eq!(
        decide(&Strategy::LeastLoaded, &one, &plain()).explanation,
        "least loaded: 0 open of 2 capacity, the only one available"
    );
}

#[test]
fn skills_filter_on_required_rank_on_preferred_and_break_ties_by_load() {
    let hipaa = |c: Candidate| {
        let attributes = c.attributes.clone().with_skill("certifications", "HIPAA");
        c.with_attributes(attributes)
    };
    let group = [
        skilled("ann", &["ko", "en"], &["billing"]).with_load(1, None),
        hipaa(skilled("bo", &["KO"], &["Billing"]).with_load(4, None)),
        hipaa(skilled("cy", &["ko"], &["payments"]).with_load(2, None)),
        hipaa(skilled("dee", &["ja"], &["billing"])),
        skilled("eve", &["ko"], &["support"]),
    ];
    let strategy = skills("languages: ko; products: billing|payments; certifications: hipaa?");
    let decision = decide(&strategy, &group, &plain());
    assert_eq!(
        decision.outcome,
        assign("cy"),
        "bo and cy have hipaa; cy has fewer open"
    );
    assert_eq!(decision.eligible, 3);
    assert_eq!(
        decision.explanation,
        "skills: ko, payments (preferred: hipaa); least loaded of 2 best matches, 3 matching"
    );
    assert_eq!(
        decision.skipped,
        [
            Skip {
                id: "dee".into(),
                why: SkipReason::MissingSkill {
                    kind: "languages".into()
                }
            },
            Skip {
                id: "eve".into(),
                why: SkipReason::MissingSkill {
                    kind: "products".into()
                }
            },
        ]
    );

    // The product's example: two who match equally, the less loaded one wins.
    let decision = decide(
        &strategy,
        &[group[1].clone(), hipaa(group[0].clone())],
        &plain(),
    );
    assert_eq!(decision.outcome, assign("ann"));
    assert_eq!(
        decision.explanation,
        "skills: ko, billing (preferred: hipaa); least loaded of 2 matching"
    );

    // A preferred skill outranks load.
    let decision = decide(&strategy, &group[..2], &plain());
    assert_eq!(decision.outcome, assign("bo"));
    assert_eq!(
        decision.explanation,
        "skills: ko, billing (preferred: hipaa); best match of 2"
    );

    // Levels.
    let levelled = [
        person("ann").with_attributes(Attributes::new().with_level("Support", 1)),
        person("bo")
            .with_attributes(Attributes::new().with_level("support", 3))
            .with_load(6, None),
        person("cy"),
    ];
    let decision = decide(&skills("level.support >= 2"), &levelled, &plain());
    assert_eq!(decision.outcome, assign("bo"));
    assert_eq!(
        decision.explanation,
        "skills: support level 2+; the only match available"
    );
    assert_eq!(
        decision.skipped[0].why,
        SkipReason::MissingSkill {
            kind: "level.support".into()
        }
    );

    // Nobody has it: no amount of waiting helps.
    let decision = decide(
        &skills("languages: de|fr; products: billing"),
        &group,
        &aware(),
    );
    assert_eq!(
        decision.outcome,
        Outcome::Unroutable {
            reason: "skills: nobody matches languages: de|fr; products: billing".into()
        }
    );

    // Someone has it but is away: wait for them (or the fallback).
    let mut absent = group.to_vec();
    for c in &mut absent {
        c.presence = Presence::Away;
    }
    let decision = decide(&strategy, &absent, &aware());
    assert_eq!(
        decision.outcome,
        Outcome::Wait {
            reason: WaitReason::Unavailable
        }
    );
    assert_eq!(
        decision.explanation,
        "skills: nobody available now of 3 matching (3 away)"
    );

    // No requirements at all is least loaded with a note.
    let decision = decide(&skills(""), &group, &plain());
    assert_eq!(decision.outcome, assign("dee"));
    assert_eq!(
        decision.explanation,
        "skills: none required; least loaded of 5 matching"
    );
}

#[test]
fn the_snapshot_order_does_not_change_any_decision() {
    let group = vec![
        skilled("ann", &["ko"], &["billing"]).with_load(2, Some(4)),
        skilled("bo", &["ko"], &["billing"]).with_load(2, Some(4)),
        skilled("cy", &["ko"], &["payments"]).with_load(2, Some(4)),
        skilled("dee", &["ja"], &["billing"]).with_load(0, Some(4)),
    ];
    let strategies = [
        Strategy::RoundRobin,
        Strategy::LeastLoaded,
        skills("languages: ko; products: billing|payments"),
    ];
    for strategy in &strategies {
        let forward = route(strategy, &group, Some("ann"), &plain(), now());
        let mut reversed = group.clone();
        reversed.reverse();
        let backward = route(strategy, &reversed, Some("ann"), &plain(), now());
        assert_eq!(forward.outcome, backward.outcome, "{strategy:?}");
        assert_eq!(forward.explanation, backward.explanation, "{strategy:?}");
    }
}

#[test]
fn routing_among_a_thousand_people_takes_well_under_a_millisecond() {
    let group: Vec<Candidate> = (0..1000)
        .map(|i| {
            let languages: &[&str] = if i % 3 == 0 { &["ko", "en"] } else { &["en"] };
            let products: &[&str] = if i % 2 == 0 {
                &["billing"]
            } else {
                &["payments"]
            };
            let presence = if i % 5 == 0 {
                Presence::Away
            } else {
                Presence::Online
            };
            skilled(&format!("user-{i:04}"), languages, products)
                .with_load(i % 7, Some(6))
                .with_presence(presence)
                .with_out_of_office(
                    day("2027-08-01"),
                    day(if i % 11 == 0 {
                        "2027-08-20"
                    } else {
                        "2027-08-02"
                    }),
                )
        })
        .collect();
    let strategies = [
        Strategy::Queue,
        Strategy::RoundRobin,
        Strategy::LeastLoaded,
        skills("languages: ko; products: billing|payments; certifications: hipaa?; level.support >= 0?"),
        // Everyone lacks it: the skip list is longest here.
        skills("languages: de; products: billing"),
    ];
    for strategy in &strategies {
        let mut times: Vec<Duration> = (0..51)
            .map(|_| {
                let start = Instant::now();
                let decision = route(strategy, &group, Some("user-0500"), &aware(), now());
                let took = start.elapsed();
                assert!(
                    decision.eligible > 0 || matches!(decision.outcome, Outcome::Unroutable { .. })
                );
                took
            })
            .collect();
        times.sort();
        let median = times[times.len() / 2];
        // Unoptimised test builds included; an optimised build is some ten times faster.
        assert!(
            median < Duration::from_millis(1),
            "{strategy:?}: median {median:?}"
        );
    }
}
