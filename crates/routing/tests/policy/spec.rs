//! A user task's routing block, parsed whole at deploy.

use concord_routing::policy::{RoutingOptions, RoutingSpec, Strategy};
use serde_json::json;

use super::at;

fn refused(value: serde_json::Value) -> String {
    match serde_json::from_value::<RoutingSpec>(value) {
        Ok(spec) => panic!("accepted {spec:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_routing_block_parses_strategy_options_fallback_and_escalation() {
    let spec: RoutingSpec = serde_json::from_value(json!({
        "strategy": "skills",
        "requirements": "languages: ko; products: billing|payments; certifications: hipaa?",
        "presence_aware": true,
        "fallback_after": "PT30M",
        "escalation": [
            {"to": "manager", "after": "PT4H", "on": "not_claimed"},
            {"to": {"role": "support-leads"}, "after": "P1D", "on": "not_done"}
        ]
    }))
    .expect("parses");
    assert!(matches!(&spec.strategy, Strategy::Skills { requirements } if requirements.len() == 3));
    assert_eq!(
        spec.options,
        RoutingOptions {
            presence_aware: true,
            respect_capacity: true
        }
    );
    assert_eq!(spec.escalation.steps().len(), 2);
    assert_eq!(
        spec.fallback_at(at("2027-08-10T09:00:00Z")),
        Some(at("2027-08-10T09:30:00Z"))
    );

    // What it writes reads back the same.
    let written = serde_json::to_value(&spec).expect("serialises");
    assert_eq!(written["strategy"], "skills");
    assert_eq!(
        serde_json::from_value::<RoutingSpec>(written).expect("reads back"),
        spec
    );

    let simple: RoutingSpec =
        serde_json::from_value(json!({"strategy": "round_robin"})).expect("parses");
    assert_eq!(simple, RoutingSpec::new(Strategy::RoundRobin));
    assert_eq!(simple.fallback_at(at("2027-08-10T09:00:00Z")), None);

    let named: RoutingSpec = serde_json::from_value(
        json!({"strategy": "person", "id": "ann", "respect_capacity": false}),
    )
    .expect("parses");
    assert_eq!(named.strategy, Strategy::Person { id: "ann".into() });
    assert!(!named.options.respect_capacity);
}

#[test]
fn a_routing_block_with_a_mistake_is_refused_at_deploy() {
    assert!(
        refused(json!({"strategy": "least_loaded", "presense_aware": true}))
            .contains("unknown field `presense_aware`")
    );
    assert!(refused(json!({"strategy": "fastest"})).contains("unknown variant `fastest`"));
    assert!(
        refused(json!({"strategy": "person"})).contains("strategy person needs the person's `id`")
    );
    assert!(refused(json!({"strategy": "skills"})).contains("strategy skills needs `requirements`"));
    assert!(refused(json!({"strategy": "queue", "id": "ann"}))
        .contains("`id` goes only with strategy person"));
    assert!(
        refused(json!({"strategy": "round_robin", "requirements": "languages: ko"}))
            .contains("`requirements` go only with strategy skills")
    );
    assert!(
        refused(json!({"strategy": "queue", "fallback_after": "PT1H"})).contains(
            "`fallback_after` applies to presence-aware routing: set `presence_aware: true`"
        )
    );
    assert!(
        refused(json!({"strategy": "queue", "presence_aware": true, "fallback_after": "1h"}))
            .contains("a duration starts with P")
    );
    assert!(
        refused(json!({"strategy": "skills", "requirements": "languages ko"}))
            .contains("requirement 1 (\"languages ko\")")
    );
}

#[test]
fn a_learned_block_sets_the_threshold_the_model_must_clear() {
    let spec: RoutingSpec =
        serde_json::from_value(json!({"strategy": "round_robin", "learned": {"threshold": 0.85}}))
            .expect("parses");
    let learned = spec.learned.expect("learned");
    assert!((learned.threshold() - 0.85).abs() < 1e-9);
    let written = serde_json::to_value(&spec).expect("serialises");
    assert_eq!(written["learned"]["threshold"], 0.85);
    let default: RoutingSpec =
        serde_json::from_value(json!({"strategy": "queue", "learned": {}})).expect("parses");
    assert!((default.learned.expect("learned").threshold() - 0.7).abs() < 1e-9);
    assert!(
        refused(json!({"strategy": "queue", "learned": {"threshold": 1.5}}))
            .contains("between 0 and 1")
    );
    assert!(
        refused(json!({"strategy": "queue", "learned": {"treshold": 0.5}}))
            .contains("unknown field `treshold`")
    );
}
