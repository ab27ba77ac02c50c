//! The routing policies as the server uses them: a snapshot of candidates in, a decision
//! and its explanation out; requirements and routing blocks parsed at deploy; escalation
//! timers computed from a task's times.

mod availability;
mod escalation;
mod requirements;
mod spec;
mod strategies;

use chrono::{DateTime, NaiveDate, Utc};
use concord_routing::policy::{route, Attributes, Candidate, Decision, RoutingOptions, Strategy};

fn day(text: &str) -> NaiveDate {
    text.parse().expect("a test date")
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("a test instant")
}

/// The moment the tests' tasks open: 10 August 2027, 09:00 UTC.
fn now() -> DateTime<Utc> {
    at("2027-08-10T09:00:00Z")
}

fn person(id: &str) -> Candidate {
    Candidate::new(id)
}

fn skilled(id: &str, languages: &[&str], products: &[&str]) -> Candidate {
    Candidate::new(id).with_attributes(
        Attributes::new()
            .with_skills("languages", languages)
            .with_skills("products", products),
    )
}

fn aware() -> RoutingOptions {
    RoutingOptions {
        presence_aware: true,
        ..RoutingOptions::default()
    }
}

fn plain() -> RoutingOptions {
    RoutingOptions::default()
}

fn decide(strategy: &Strategy, candidates: &[Candidate], options: &RoutingOptions) -> Decision {
    route(strategy, candidates, None, options, now())
}
