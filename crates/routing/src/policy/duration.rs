//! ISO 8601 durations (`PT4H`, `P1D`, `P1DT12H`) as a process model writes them for
//! escalation steps and the presence fallback, and how they read in an explanation
//! ("4 hours", "1 day 12 hours").
//!
//! The grammar is the workflow engine's (`concord-workflow`'s `timer::parse_duration`), kept
//! here so this crate does not depend on the engine: years and months count as 365 and 30
//! days (a timer needs a fixed length, not calendar arithmetic); weeks, days, hours, minutes
//! and (fractional) seconds are exact. A duration here must be longer than zero.

use std::fmt;

use chrono::Duration;
use serde::{Deserialize, Serialize};

/// The longest duration accepted: about 27 years, far beyond any escalation.
const MAX_MILLIS: f64 = 1.0e12;

/// A positive ISO 8601 duration, kept as written so a model exports unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IsoDuration {
    text: String,
    length: Duration,
}

impl IsoDuration {
    /// Parses `P[nY][nM][nW][nD][T[nH][nM][nS]]`, e.g. `PT4H`, `P2D`, `PT0.5S`.
    pub fn parse(text: &str) -> Result<IsoDuration, String> {
        let text = text.trim();
        let length = parse_length(text).map_err(|reason| format!("{text:?}: {reason}"))?;
        Ok(IsoDuration {
            text: text.to_string(),
            length,
        })
    }

    /// The length.
    pub fn length(&self) -> Duration {
        self.length
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// How the length reads to people: `4 hours`, `1 day 12 hours`, `90 seconds`.
    pub fn human(&self) -> String {
        human(self.length)
    }
}

impl TryFrom<String> for IsoDuration {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        IsoDuration::parse(&text)
    }
}

impl From<IsoDuration> for String {
    fn from(duration: IsoDuration) -> String {
        duration.text
    }
}

impl fmt::Display for IsoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn parse_length(text: &str) -> Result<Duration, &'static str> {
    let rest = text
        .strip_prefix('P')
        .ok_or("a duration starts with P, e.g. PT4H or P1D")?;
    let mut total_ms = 0.0_f64;
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
                    .map_err(|_| "each component needs a number before its unit")?;
                number.clear();
                let seconds = match (in_time, unit) {
                    (false, 'Y') => 365.0 * 86_400.0,
                    (false, 'M') => 30.0 * 86_400.0,
                    (false, 'W') => 7.0 * 86_400.0,
                    (false, 'D') => 86_400.0,
                    (true, 'H') => 3_600.0,
                    (true, 'M') => 60.0,
                    (true, 'S') => 1.0,
                    _ => return Err("unknown unit (use Y, M, W, D, and after T: H, M, S)"),
                };
                total_ms += value * seconds * 1000.0;
                if !total_ms.is_finite() || total_ms > MAX_MILLIS {
                    return Err("the duration is too long");
                }
                components += 1;
            }
        }
    }
    if !number.is_empty() {
        return Err("a number is missing its unit");
    }
    if components == 0 {
        return Err("a duration needs at least one component, e.g. PT4H");
    }
    // Bounded above by MAX_MILLIS, so the conversion cannot overflow.
    let length = Duration::milliseconds(total_ms.round() as i64);
    if length <= Duration::zero() {
        return Err("the duration must be longer than zero");
    }
    Ok(length)
}

/// Days, hours, minutes and seconds, largest first, zero parts left out.
fn human(length: Duration) -> String {
    let total = length.num_seconds();
    if total <= 0 {
        return "under a second".to_string();
    }
    let parts = [
        (total / 86_400, "day"),
        (total % 86_400 / 3_600, "hour"),
        (total % 3_600 / 60, "minute"),
        (total % 60, "second"),
    ];
    let mut out = String::new();
    for (n, unit) in parts.into_iter().filter(|(n, _)| *n > 0) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&format!("{n} {unit}{}", if n == 1 { "" } else { "s" }));
    }
    out
}
