//! The sign-in throttling policy: lock an account or an address after repeated failures.
//!
//! Counters live in the database (so they hold across restarts and nodes) under keys that
//! do not reveal the email (they derive from its keyed blind index): an unknown email is
//! throttled exactly like a known one.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use crate::store::throttle::{self, ThrottleRecord};
use crate::store::{Conn, StoreError};

/// Thresholds and window.
#[derive(Clone, Copy)]
pub(super) struct Policy {
    pub account_threshold: i64,
    pub ip_threshold: i64,
    pub window: Duration,
}

/// The counter keys one attempt touches, with each key's threshold.
pub(super) fn keys(policy: &Policy, email_index: &str, ip: Option<IpAddr>) -> Vec<(String, i64)> {
    let digest = Sha256::digest(email_index.as_bytes());
    let mut keys = vec![(
        format!("acct:{}", hex::encode(&digest[..16])),
        policy.account_threshold,
    )];
    if let Some(ip) = ip {
        keys.push((format!("ip:{ip}"), policy.ip_threshold));
    }
    keys
}

/// Seconds until the first of `keys` unlocks, if any is locked now.
pub(super) async fn locked(
    conn: &mut Conn<'_>,
    keys: &[(String, i64)],
    now: DateTime<Utc>,
) -> Result<Option<u64>, StoreError> {
    let mut wait: Option<u64> = None;
    for (key, _) in keys {
        if let Some(ThrottleRecord {
            locked_until: Some(until),
            ..
        }) = throttle::get(conn, key).await?
        {
            if until > now {
                let secs = (until - now).num_seconds().max(1) as u64;
                wait = Some(wait.map_or(secs, |w| w.max(secs)));
            }
        }
    }
    Ok(wait)
}

/// Counts a failure against each key; returns true if this failure locked any of them.
pub(super) async fn record_failure(
    conn: &mut Conn<'_>,
    policy: &Policy,
    keys: &[(String, i64)],
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut locked_now = false;
    for (key, threshold) in keys {
        let mut record = match throttle::get(conn, key).await? {
            Some(r) if now - r.window_start < policy.window => r,
            _ => ThrottleRecord {
                failures: 0,
                window_start: now,
                locked_until: None,
            },
        };
        record.failures += 1;
        if record.failures >= *threshold && record.locked_until.is_none_or(|u| u <= now) {
            record.locked_until = Some(now + policy.window);
            locked_now = true;
        }
        throttle::put(conn, key, &record).await?;
    }
    Ok(locked_now)
}

/// Clears the account counter after a successful sign-in (the address counter stays).
pub(super) async fn clear_account(
    conn: &mut Conn<'_>,
    keys: &[(String, i64)],
) -> Result<(), StoreError> {
    if let Some((key, _)) = keys.first() {
        throttle::clear(conn, key).await?;
    }
    Ok(())
}
