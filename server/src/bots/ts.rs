//! Slack's message timestamps for Concord's messages.
//!
//! A message's Slack `ts` is `<seconds>.<seq>`: the Unix second it was posted, a dot, and
//! its sequence number in its channel, zero-padded to six digits (more digits past 999999).
//! Slack's calls always name a message by channel and `ts`, and the sequence number is
//! unique in a channel, so the mapping is exact both ways and needs no table; the seconds
//! are checked too, so a `ts` from another channel does not find a message by chance. The
//! Web API and the events delivered to bots use the same mapping.

use chrono::{DateTime, Utc};

/// The Slack timestamp of the message posted at `created_at` with sequence number `seq`.
pub fn of(created_at: DateTime<Utc>, seq: i64) -> String {
    format!("{}.{:06}", created_at.timestamp(), seq)
}

/// A parsed Slack timestamp: (seconds, sequence number).
pub fn parse(ts: &str) -> Option<(i64, i64)> {
    let (secs, seq) = ts.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(secs) || !digits(seq) || seq.len() < 6 {
        return None;
    }
    Some((secs.parse().ok()?, seq.parse().ok()?))
}

/// An event's own timestamp (`event_ts` of events that are not messages): the time it
/// happened, to the microsecond.
pub fn of_instant(unix_micros: i64) -> String {
    format!(
        "{}.{:06}",
        unix_micros.div_euclid(1_000_000),
        unix_micros.rem_euclid(1_000_000)
    )
}
