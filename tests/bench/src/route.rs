//! Routing decisions per second, and the latency of one decision, for each rule-based routing
//! policy over one group of people, against the least any router must do: a plain loop that
//! picks whoever has the fewest open tasks among the same people.
//!
//! The group is generated from a seed: people with UUID-like ids, one to three languages
//! (Korean and Japanese among them), products, certifications and a support level; open tasks
//! that add up to `--open-tasks`, skewed so a few people hold many; a capacity for most
//! (some have none); a mix of online, away and offline; some out of office (past, current and
//! future periods); a manager for each. Every strategy starts from the same group and sees the
//! same stream of task completions, so load moves the same way: after each assignment the
//! chosen person has one more open task, and one open task, drawn at random, is completed, so
//! the total stays at `--open-tasks`. Round-robin carries its cursor from one decision to the
//! next. The skills strategies take the next of four requirement sets (two or three required
//! items and one preferred, written as a process model writes them and parsed once) for each
//! decision.
//!
//! A decision's time is one call of `route` and dropping the parts of the decision not kept
//! (skip list, explanation), measured with `Instant`; the rate is decisions over the sum of
//! those times, so the benchmark's own bookkeeping is left out. This is the policy over an
//! in-memory snapshot: the server's gathering of that snapshot from its database is not in it.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use concord_routing::policy::{
    parse_requirements, route, Attributes, Candidate, Outcome, Presence, RoutingOptions, Strategy,
};
use hdrhistogram::Histogram;
use rand::distributions::WeightedIndex;
use rand::prelude::*;
use rand_chacha::ChaCha8Rng;

/// How big a group and how often.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct RouteOptions {
    /// People in the group the tasks are routed among.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub people: u32,
    /// Open tasks across the group (kept constant: each assignment is matched by a completion).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(0..=10_000_000))]
    pub open_tasks: u32,
    /// Decisions per strategy per run.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub decisions: u32,
    /// Runs; medians are taken across them.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,
    /// Seed of the generated group and of the stream of completions.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

const LANGUAGES: [(&str, f64); 8] = [
    ("en", 0.70),
    ("ko", 0.22),
    ("ja", 0.20),
    ("zh", 0.10),
    ("de", 0.12),
    ("fr", 0.10),
    ("es", 0.12),
    ("pt", 0.05),
];
const PRODUCTS: [&str; 8] = [
    "billing",
    "payments",
    "accounts",
    "mobile",
    "api",
    "integrations",
    "reporting",
    "security",
];
const CERTIFICATIONS: [(&str, f64); 5] = [
    ("hipaa", 0.15),
    ("pci", 0.20),
    ("soc2", 0.15),
    ("gdpr", 0.25),
    ("iso27001", 0.08),
];
/// What the skills strategies ask, one set per decision in turn: as a process model writes it.
const REQUIREMENTS: [&str; 4] = [
    "languages: ko; products: billing|payments; certifications: pci?",
    "languages: ja; products: api|integrations; level.support >= 2; certifications: hipaa?",
    "languages: en|de; products: security, accounts; level.support >= 3; certifications: soc2?",
    "languages: ko|ja; products: mobile; certifications: gdpr?",
];

/// The day tasks open on (out-of-office periods are placed around it).
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 0)
        .single()
        .unwrap_or_default()
}

fn day_after(days: u64) -> NaiveDate {
    now().date_naive() + chrono::Days::new(days)
}

fn day_before(days: u64) -> NaiveDate {
    now().date_naive() - chrono::Days::new(days)
}

/// A UUIDv7-looking id: ids made over a few months share their leading digits, as the
/// server's do, so comparing them is not decided by the first byte.
fn person_id(rng: &mut ChaCha8Rng) -> String {
    let millis: u64 = 0x0193_0000_0000 + rng.gen_range(0..0x0002_0000_0000);
    let rand_a: u16 = rng.gen_range(0..0x1000);
    let rand_b: u64 = rng.gen();
    format!(
        "{:08x}-{:04x}-7{:03x}-{:04x}-{:012x}",
        millis >> 16,
        millis & 0xffff,
        rand_a,
        0x8000 | ((rand_b >> 50) as u16 & 0x3fff),
        rand_b & 0xffff_ffff_ffff
    )
}

/// The generated group, in a random (not id) order as a database would return it.
fn group(options: &RouteOptions) -> anyhow::Result<Vec<Candidate>> {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let people = options.people as usize;
    let ids: Vec<String> = (0..people).map(|_| person_id(&mut rng)).collect();
    // Skewed load: Pareto-like weights, so a few people hold many of the open tasks.
    let weights: Vec<f64> = (0..people)
        .map(|_| (1.0_f64 - rng.gen::<f64>()).powf(-0.5))
        .collect();
    let pick = WeightedIndex::new(&weights)?;
    let mut open = vec![0u32; people];
    for _ in 0..options.open_tasks {
        if let Some(n) = open.get_mut(pick.sample(&mut rng)) {
            *n += 1;
        }
    }
    let mut out = Vec::with_capacity(people);
    for (i, id) in ids.iter().enumerate() {
        let mut attributes = Attributes::new();
        let mut languages = 0;
        for (language, p) in LANGUAGES {
            if languages < 3 && rng.gen_bool(p) {
                attributes.add_skill("languages", language);
                languages += 1;
            }
        }
        if languages == 0 {
            attributes.add_skill("languages", "en");
        }
        let products = rng.gen_range(1..=4);
        for product in PRODUCTS.choose_multiple(&mut rng, products) {
            attributes.add_skill("products", product);
        }
        for (certification, p) in CERTIFICATIONS {
            if rng.gen_bool(p) {
                attributes.add_skill("certifications", certification);
            }
        }
        attributes.set_level("support", rng.gen_range(1..=4));
        if rng.gen_bool(0.3) {
            attributes.set_level("engineering", rng.gen_range(1..=3));
        }
        // Most have a capacity; about a quarter have none.
        let capacity = if rng.gen_bool(0.25) {
            None
        } else {
            Some(*[10u32, 15, 20, 25, 30, 40].choose(&mut rng).unwrap_or(&20))
        };
        let roll: f64 = rng.gen();
        let presence = if roll < 0.6 {
            Presence::Online
        } else if roll < 0.75 {
            Presence::Away
        } else {
            Presence::Offline
        };
        let mut candidate = Candidate::new(id.clone())
            .with_attributes(attributes)
            .with_load(open.get(i).copied().unwrap_or(0), capacity)
            .with_presence(presence);
        // About 8% have an out-of-office period: half of them now, the rest past or future.
        if rng.gen_bool(0.08) {
            let (from, until) = match rng.gen_range(0..4) {
                0 | 1 => (
                    day_before(rng.gen_range(0..5)),
                    day_after(rng.gen_range(0..10)),
                ),
                2 => (
                    day_before(rng.gen_range(10..30)),
                    day_before(rng.gen_range(1..10)),
                ),
                _ => (
                    day_after(rng.gen_range(1..10)),
                    day_after(rng.gen_range(10..20)),
                ),
            };
            candidate = candidate.with_out_of_office(from, until);
        }
        // The first of every ten manages the other nine and reports to the very first.
        let manager = if i % 10 == 0 { 0 } else { i - i % 10 };
        if manager != i {
            if let Some(manager) = ids.get(manager) {
                candidate = candidate.with_manager(manager.clone());
            }
        }
        out.push(candidate);
    }
    out.shuffle(&mut rng);
    Ok(out)
}

/// One strategy as measured.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Baseline,
    RoundRobin,
    LeastLoaded,
    Skills,
    Queue,
    PresenceSkills,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Baseline,
        Kind::RoundRobin,
        Kind::LeastLoaded,
        Kind::Skills,
        Kind::Queue,
        Kind::PresenceSkills,
    ];

    fn label(self) -> &'static str {
        match self {
            Kind::Baseline => "baseline: a Rust loop picking the fewest open tasks",
            Kind::RoundRobin => "`round_robin` (cursor carried between decisions)",
            Kind::LeastLoaded => "`least_loaded`",
            Kind::Skills => "`skills` (2–3 required, 1 preferred)",
            Kind::Queue => "`queue`",
            Kind::PresenceSkills => "`skills`, presence-aware",
        }
    }
}

/// One run of one strategy.
struct Sample {
    decisions: u64,
    /// Sum of the decisions' own times.
    busy: Duration,
    /// Nanoseconds per decision.
    latency: Histogram<u64>,
    assigned: u64,
    waited: u64,
    unroutable: u64,
    queued: u64,
    eligible: u64,
}

impl Sample {
    fn rate(&self) -> f64 {
        self.decisions as f64 / self.busy.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// The open tasks' owners, so a completion can be drawn at random among the open tasks.
fn owners(group: &[Candidate]) -> Vec<usize> {
    group
        .iter()
        .enumerate()
        .flat_map(|(i, c)| std::iter::repeat_n(i, c.open_tasks as usize))
        .collect()
}

/// The baseline: the index of the first candidate with the fewest open tasks.
fn fewest_open(group: &[Candidate]) -> Option<usize> {
    let mut best: Option<(usize, u32)> = None;
    for (i, c) in group.iter().enumerate() {
        if best.is_none_or(|(_, open)| c.open_tasks < open) {
            best = Some((i, c.open_tasks));
        }
    }
    best.map(|(i, _)| i)
}

struct Setup {
    group: Vec<Candidate>,
    index: HashMap<String, usize>,
    skills: Vec<Strategy>,
}

fn measure(setup: &Setup, kind: Kind, options: &RouteOptions) -> anyhow::Result<Sample> {
    let mut group = setup.group.clone();
    let mut owners = owners(&group);
    // The same stream of completions for every strategy.
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed ^ 0x5EED);
    let today = now();
    let plain = RoutingOptions::default();
    let presence = RoutingOptions {
        presence_aware: true,
        ..RoutingOptions::default()
    };
    let mut cursor: Option<String> = None;
    let mut sample = Sample {
        decisions: 0,
        busy: Duration::ZERO,
        latency: Histogram::new_with_bounds(1, 60_000_000_000, 3)?,
        assigned: 0,
        waited: 0,
        unroutable: 0,
        queued: 0,
        eligible: 0,
    };
    for n in 0..options.decisions as usize {
        let skills = setup
            .skills
            .get(n % setup.skills.len().max(1))
            .ok_or_else(|| anyhow::anyhow!("no requirement sets"))?;
        let (strategy, routing) = match kind {
            Kind::Baseline => (None, &plain),
            Kind::RoundRobin => (Some(&Strategy::RoundRobin), &plain),
            Kind::LeastLoaded => (Some(&Strategy::LeastLoaded), &plain),
            Kind::Queue => (Some(&Strategy::Queue), &plain),
            Kind::Skills => (Some(skills), &plain),
            Kind::PresenceSkills => (Some(skills), &presence),
        };
        let started = Instant::now();
        let (outcome, eligible) = match strategy {
            None => {
                let chosen = std::hint::black_box(fewest_open(std::hint::black_box(&group)));
                (Step::Baseline(chosen), group.len())
            }
            Some(strategy) => {
                // The skip list and the explanation are dropped inside the timed part.
                let decision = route(strategy, &group, cursor.as_deref(), routing, today);
                let eligible = decision.eligible;
                (Step::Routed(decision.outcome, decision.cursor), eligible)
            }
        };
        let elapsed = started.elapsed();
        sample.busy += elapsed;
        sample
            .latency
            .saturating_record(elapsed.as_nanos().try_into().unwrap_or(u64::MAX));
        sample.decisions += 1;
        sample.eligible += eligible as u64;
        let chosen = match outcome {
            Step::Baseline(chosen) => chosen,
            Step::Routed(outcome, next) => {
                if kind == Kind::RoundRobin {
                    cursor = next;
                }
                match outcome {
                    Outcome::Assign { id } => Some(
                        *setup
                            .index
                            .get(&id)
                            .ok_or_else(|| anyhow::anyhow!("routed to an unknown id"))?,
                    ),
                    Outcome::Queue => {
                        sample.queued += 1;
                        None
                    }
                    Outcome::Wait { .. } => {
                        sample.waited += 1;
                        None
                    }
                    Outcome::Unroutable { .. } => {
                        sample.unroutable += 1;
                        None
                    }
                }
            }
        };
        sample.assigned += u64::from(chosen.is_some());
        move_load(&mut group, &mut owners, chosen, &mut rng);
    }
    Ok(sample)
}

/// What one decision gave: the baseline's pick, or a policy's outcome and cursor.
enum Step {
    Baseline(Option<usize>),
    Routed(Outcome, Option<String>),
}

/// One more open task for the chosen person, and one open task completed at random, so the
/// total stays the same. A queued task leaves the load as it was.
fn move_load(
    group: &mut [Candidate],
    owners: &mut Vec<usize>,
    chosen: Option<usize>,
    rng: &mut ChaCha8Rng,
) {
    let Some(chosen) = chosen else {
        return;
    };
    if let Some(c) = group.get_mut(chosen) {
        c.open_tasks += 1;
        owners.push(chosen);
    }
    if owners.is_empty() {
        return;
    }
    let done = owners.swap_remove(rng.gen_range(0..owners.len()));
    if let Some(c) = group.get_mut(done) {
        c.open_tasks = c.open_tasks.saturating_sub(1);
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

fn rate(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn micros(nanos: f64) -> String {
    let us = nanos / 1000.0;
    if us >= 100.0 {
        format!("{us:.0}")
    } else if us >= 10.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.2}")
    }
}

/// Checks, before anything is timed, that least loaded picks someone with as few open tasks
/// as anyone with room, and says on stderr how many people meet each requirement set (a
/// small `--people` may leave a set with nobody: those decisions are then unroutable).
fn check(setup: &Setup) -> anyhow::Result<()> {
    let today = now();
    let decision = route(
        &Strategy::LeastLoaded,
        &setup.group,
        None,
        &RoutingOptions::default(),
        today,
    );
    let fewest = setup
        .group
        .iter()
        .filter(|c| !c.is_at_capacity())
        .map(|c| c.open_tasks)
        .min();
    let chosen = decision
        .assignee()
        .and_then(|id| setup.index.get(id))
        .and_then(|&i| setup.group.get(i))
        .map(|c| c.open_tasks);
    anyhow::ensure!(
        chosen == fewest,
        "least loaded chose {chosen:?} open tasks, the fewest with room is {fewest:?}"
    );
    for (strategy, text) in setup.skills.iter().zip(REQUIREMENTS) {
        let decision = route(
            strategy,
            &setup.group,
            None,
            &RoutingOptions::default(),
            today,
        );
        eprintln!(
            "[route] {text:?}: {} eligible; {}",
            decision.eligible, decision.explanation
        );
    }
    Ok(())
}

/// Runs the benchmark; returns the Markdown table.
pub fn run(options: RouteOptions) -> anyhow::Result<String> {
    let group = group(&options)?;
    let index = group
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.clone(), i))
        .collect();
    let skills = REQUIREMENTS
        .iter()
        .map(|text| {
            parse_requirements(text)
                .map(|requirements| Strategy::Skills { requirements })
                .map_err(|e| anyhow::anyhow!("{text:?}: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let setup = Setup {
        group,
        index,
        skills,
    };
    check(&setup)?;
    let mut samples: Vec<Vec<Sample>> = Kind::ALL.iter().map(|_| Vec::new()).collect();
    for run in 0..options.runs {
        eprintln!("[route] run {}/{}", run + 1, options.runs);
        for (kind, runs) in Kind::ALL.iter().zip(samples.iter_mut()) {
            runs.push(measure(&setup, *kind, &options)?);
        }
    }
    let group = &setup.group;
    let capped = group.iter().filter(|c| c.capacity.is_some()).count();
    let full = group.iter().filter(|c| c.is_at_capacity()).count();
    let online = group
        .iter()
        .filter(|c| c.presence == Presence::Online)
        .count();
    let away_today = group
        .iter()
        .filter(|c| c.away_on(now().date_naive()).is_some())
        .count();
    let most = group.iter().map(|c| c.open_tasks).max().unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Routing decisions over {} people and {} open tasks (most held by one person: {most}; \
         {capped} with a capacity, {full} of them at it; {online} online; {away_today} out of \
         office today), {} decisions per strategy per run, one thread\n",
        group.len(),
        options.open_tasks,
        options.decisions
    );
    let _ = writeln!(
        out,
        "| Strategy | Decisions/s (median) | Range over runs /s | p50 µs | p99 µs | Ratio to baseline | Outcome (last run) |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|---|");
    let baseline = samples.first().map(Vec::as_slice).unwrap_or_default();
    for (kind, runs) in Kind::ALL.iter().zip(&samples) {
        let rates: Vec<f64> = runs.iter().map(Sample::rate).collect();
        let low = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let high = rates.iter().copied().fold(0.0, f64::max);
        let quantile = |q: f64| {
            median(
                runs.iter()
                    .map(|s| s.latency.value_at_quantile(q) as f64)
                    .collect(),
            )
        };
        let ratio = if *kind == Kind::Baseline {
            "1 (baseline)".to_string()
        } else {
            let ratios = runs
                .iter()
                .zip(baseline)
                .map(|(s, b)| s.rate() / b.rate().max(f64::MIN_POSITIVE))
                .collect();
            format!("{:.3} × baseline", median(ratios))
        };
        let outcome = runs.last().map_or_else(String::new, |s| {
            let share = |n: u64| 100.0 * n as f64 / s.decisions.max(1) as f64;
            let mut parts = Vec::new();
            if s.assigned > 0 {
                parts.push(format!("assigned {:.1}%", share(s.assigned)));
            }
            if s.queued > 0 {
                parts.push(format!("queued {:.1}%", share(s.queued)));
            }
            if s.waited > 0 {
                parts.push(format!("waited {:.1}%", share(s.waited)));
            }
            if s.unroutable > 0 {
                parts.push(format!("unroutable {:.1}%", share(s.unroutable)));
            }
            parts.push(format!(
                "{:.0} eligible on average",
                s.eligible as f64 / s.decisions.max(1) as f64
            ));
            parts.join(", ")
        });
        let _ = writeln!(
            out,
            "| {} | {} | {}–{} | {} | {} | {ratio} | {outcome} |",
            kind.label(),
            rate(median(rates.clone())),
            rate(low),
            rate(high),
            micros(quantile(0.50)),
            micros(quantile(0.99)),
        );
    }
    let _ = write!(
        out,
        "\nMedians over {} runs (latency percentiles from one HDR histogram per run, in \
         nanoseconds); a ratio is the median of the per-run ratios, each strategy measured right \
         after the baseline in the same run. A decision's time is the call of `route` and the \
         dropping of its skip list and explanation; the rate is decisions over the sum of those \
         times.",
        options.runs
    );
    Ok(out)
}
