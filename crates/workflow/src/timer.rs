//! Timer definitions: ISO 8601 dates, durations and repeating intervals (`R/PT1H`, `R3/PT10M`,
//! `R/2027-01-01T09:00:00Z/P1D`), and when a timer is due.
//!
//! Definitions are kept as written so export writes them back unchanged; they are parsed when a
//! model is validated and again when a timer starts. Durations support years and months as 365
//! and 30 days (timers need a fixed length, not calendar arithmetic); weeks, days, hours, minutes
//! and (fractional) seconds are exact. A cycle that does not start with `R` is a cron expression
//! in the Quartz form Camunda uses, seconds first (`0 0 9 * * MON-FRI`), evaluated in UTC
//! (the `cron` crate); it repeats without end.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// A timer as written in the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum TimerDefinition {
    /// A fixed instant (RFC 3339).
    Date(String),
    /// A delay from when the timer starts.
    Duration(String),
    /// A repeating interval, `R[n]/[start/]duration`, or a cron expression.
    Cycle(String),
}

/// A definition that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timer {value:?} is not valid: {reason}")]
pub struct TimerError {
    /// The text as written.
    pub value: String,
    /// Why it was refused.
    pub reason: &'static str,
}

/// A repeating interval, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// How many times it fires; `None` = forever.
    pub repetitions: Option<u32>,
    /// The first instant, if given; otherwise one interval after the timer starts.
    pub start: Option<DateTime<Utc>>,
    /// The interval.
    pub interval: Duration,
}

impl TimerDefinition {
    /// Checks the definition parses.
    pub fn check(&self) -> Result<(), TimerError> {
        match self {
            TimerDefinition::Date(d) => parse_date(d).map(|_| ()),
            TimerDefinition::Duration(d) => parse_duration(d).map(|_| ()),
            TimerDefinition::Cycle(c) if is_cron(c) => parse_cron(c).map(|_| ()),
            TimerDefinition::Cycle(c) => parse_cycle(c).map(|_| ()),
        }
    }

    /// When the timer first fires if it starts at `now`.
    pub fn first_due(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>, TimerError> {
        match self {
            TimerDefinition::Date(d) => parse_date(d),
            TimerDefinition::Duration(d) => Ok(now + parse_duration(d)?),
            TimerDefinition::Cycle(c) if is_cron(c) => {
                next_cron(c, now)?.ok_or_else(|| err(c, "the cron expression never fires"))
            }
            TimerDefinition::Cycle(c) => {
                let cycle = parse_cycle(c)?;
                Ok(cycle.start.unwrap_or(now + cycle.interval))
            }
        }
    }

    /// After the `fired`-th firing (1-based) of a timer due at `due`, handled at `now`: when it
    /// fires next; `None` = no more. Firings missed while nobody handled the timer (a server
    /// that was down) are not replayed one by one: the next firing is the first one after `now`,
    /// and each skipped one counts toward a repetition limit.
    pub fn next_due(
        &self,
        due: DateTime<Utc>,
        fired: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, TimerError> {
        match self {
            TimerDefinition::Cycle(c) if is_cron(c) => next_cron(c, due.max(now)),
            TimerDefinition::Cycle(c) => {
                let cycle = parse_cycle(c)?;
                let mut next = due + cycle.interval;
                let mut count = fired;
                while next <= now {
                    next += cycle.interval;
                    count += 1;
                }
                if cycle.repetitions.is_some_and(|n| count >= n) {
                    return Ok(None);
                }
                Ok(Some(next))
            }
            _ => Ok(None),
        }
    }
}

fn err(value: &str, reason: &'static str) -> TimerError {
    TimerError {
        value: value.to_string(),
        reason,
    }
}

fn is_cron(cycle: &str) -> bool {
    !cycle.trim_start().starts_with('R')
}

fn parse_cron(s: &str) -> Result<cron::Schedule, TimerError> {
    cron::Schedule::from_str(s.trim()).map_err(|_| {
        err(
            s,
            "a cycle is R[n]/[start/]duration (R/PT1H) or a cron expression with seconds (0 0 9 * * MON-FRI)",
        )
    })
}

/// The first time a cron expression fires after `after`.
fn next_cron(s: &str, after: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, TimerError> {
    Ok(parse_cron(s)?.after(&after).next())
}

/// Parses an RFC 3339 instant.
pub fn parse_date(s: &str) -> Result<DateTime<Utc>, TimerError> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| err(s, "expected an RFC 3339 date such as 2027-01-31T09:00:00Z"))
}

/// Parses an ISO 8601 duration such as `P1DT2H`, `PT30S`, `P2W`.
pub fn parse_duration(s: &str) -> Result<Duration, TimerError> {
    let t = s.trim();
    let rest = t
        .strip_prefix('P')
        .ok_or_else(|| err(s, "a duration starts with P, e.g. PT1H"))?;
    if rest.is_empty() {
        return Err(err(s, "a duration needs at least one component"));
    }
    let mut total_ms: i64 = 0;
    let mut in_time = false;
    let mut number = String::new();
    let mut components = 0;
    for c in rest.chars() {
        match c {
            'T' if !in_time && number.is_empty() => in_time = true,
            '0'..='9' | '.' | ',' => number.push(if c == ',' { '.' } else { c }),
            unit => {
                let value: f64 = number
                    .parse()
                    .map_err(|_| err(s, "each component needs a number before its unit"))?;
                number.clear();
                let seconds = match (in_time, unit) {
                    (false, 'Y') => 365.0 * 86_400.0,
                    (false, 'M') => 30.0 * 86_400.0,
                    (false, 'W') => 7.0 * 86_400.0,
                    (false, 'D') => 86_400.0,
                    (true, 'H') => 3_600.0,
                    (true, 'M') => 60.0,
                    (true, 'S') => 1.0,
                    _ => {
                        return Err(err(
                            s,
                            "unknown unit (use Y, M, W, D, and after T: H, M, S)",
                        ))
                    }
                };
                let ms = value * seconds * 1000.0;
                if !ms.is_finite() || ms > 1.0e15 {
                    return Err(err(s, "duration too long"));
                }
                total_ms += ms as i64;
                components += 1;
            }
        }
    }
    if !number.is_empty() || components == 0 {
        return Err(err(s, "a number is missing its unit"));
    }
    Ok(Duration::milliseconds(total_ms))
}

/// Parses a repeating interval `R[n]/[start/]duration`.
pub fn parse_cycle(s: &str) -> Result<Cycle, TimerError> {
    let parts: Vec<&str> = s.trim().split('/').collect();
    let reps = parts
        .first()
        .and_then(|p| p.strip_prefix('R'))
        .ok_or_else(|| {
            err(
                s,
                "a cycle is R[n]/duration, e.g. R/PT1H (cron is not supported)",
            )
        })?;
    let repetitions = if reps.is_empty() {
        None
    } else {
        Some(
            reps.parse::<u32>()
                .map_err(|_| err(s, "the repetition count after R must be a number"))?,
        )
    };
    let (start, interval) = match parts.as_slice() {
        [_, d] => (None, parse_duration(d)?),
        [_, start, d] => (Some(parse_date(start)?), parse_duration(d)?),
        _ => return Err(err(s, "a cycle is R[n]/[start/]duration")),
    };
    if interval <= Duration::zero() {
        return Err(err(s, "the interval must be longer than zero"));
    }
    Ok(Cycle {
        repetitions,
        start,
        interval,
    })
}
