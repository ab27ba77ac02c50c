//! The sign-in throttling policy: lock an account or an address after repeated failures.
//!
//! Counters live in the database (so they hold across restarts and nodes) under keys that
//! reveal neither the email nor the address: each is a keyed blind index
//! ([`crate::crypto::Keyring::blind_index`], purpose `login-throttle`), so an unknown email is throttled exactly like
//! a known one and a copy of the database does not say who tried to sign in from where.
//!
//! An attempt is counted *before* its password is checked ([`reserve`]), in the single write
//! path, so parallel guesses cannot all pass one check and then all be evaluated: once a key
//! holds its threshold of attempts (failed or still being checked), further attempts are
//! refused without hashing. A failure keeps its count and may lock the key ([`confirm_failure`]);
//! a success gives the address its count back and clears the account's ([`release`]), after
//! checking again that no lock arrived meanwhile ([`locked`]).

use std::net::{IpAddr, Ipv6Addr};

use chrono::{DateTime, Duration, Utc};

use crate::crypto::Keyring;
use crate::store::throttle::{self, ThrottleRecord};
use crate::store::{Conn, StoreError};

/// The blind index purpose of counter keys.
const PURPOSE: &str = "login-throttle";

/// Thresholds and window.
#[derive(Clone, Copy)]
pub(super) struct Policy {
    pub account_threshold: i64,
    pub ip_threshold: i64,
    pub window: Duration,
}

/// The counter keys one attempt touches, with each key's threshold: the account's first.
pub(super) fn keys(
    keyring: &Keyring,
    policy: &Policy,
    email_lookup: &str,
    ip: Option<IpAddr>,
) -> Vec<(String, i64)> {
    let mut keys = vec![(
        keyring.blind_index(PURPOSE, &format!("acct:{email_lookup}")),
        policy.account_threshold,
    )];
    if let Some(ip) = ip {
        keys.push((
            keyring.blind_index(PURPOSE, &format!("ip:{}", address_key(ip))),
            policy.ip_threshold,
        ));
    }
    keys
}

/// What an address is counted as: an IPv4 address itself (also when it arrives mapped into
/// IPv6), an IPv6 address by its /64 network. One host or household holds a whole /64, so
/// counting each of its addresses apart would let it step to a fresh address per guess.
fn address_key(ip: IpAddr) -> String {
    match address_network(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("{v6}/64"),
    }
}

/// The network a client address is limited as: an IPv4 address itself, an IPv6 address's /64
/// (see [`keys`]); shared by every per-address limit.
pub(crate) fn address_network(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u128::MAX >> 64))),
    }
}

fn seconds_until(until: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    (until - now).num_seconds().max(1) as u64
}

/// The counter as it stands at `now`: a lapsed window starts afresh (unless still locked).
fn current(record: Option<ThrottleRecord>, policy: &Policy, now: DateTime<Utc>) -> ThrottleRecord {
    match record {
        Some(r) if r.locked_until.is_some_and(|u| u > now) => r,
        Some(r) if now - r.window_start < policy.window => r,
        _ => ThrottleRecord {
            failures: 0,
            window_start: now,
            locked_until: None,
        },
    }
}

/// Counts one attempt against every key, unless one of them is locked or already holds its
/// threshold of attempts: then nothing is counted and the seconds until it frees are returned.
/// Runs inside a write, so concurrent attempts are counted one after the other.
pub(super) async fn reserve(
    conn: &mut Conn<'_>,
    policy: &Policy,
    keys: &[(String, i64)],
    now: DateTime<Utc>,
) -> Result<Option<u64>, StoreError> {
    let mut records = Vec::with_capacity(keys.len());
    let mut wait: Option<u64> = None;
    for (key, threshold) in keys {
        let record = current(throttle::get(conn, key).await?, policy, now);
        let refused = match record.locked_until {
            Some(until) if until > now => Some(seconds_until(until, now)),
            _ if record.failures >= *threshold => {
                Some(seconds_until(record.window_start + policy.window, now))
            }
            _ => None,
        };
        if let Some(secs) = refused {
            wait = Some(wait.map_or(secs, |w| w.max(secs)));
        }
        records.push(record);
    }
    if wait.is_some() {
        return Ok(wait);
    }
    for ((key, _), mut record) in keys.iter().zip(records) {
        record.failures += 1;
        throttle::put(conn, key, &record).await?;
    }
    Ok(None)
}

/// Seconds until the first of `keys` unlocks, if any is locked now (a success re-checks this
/// after its password was verified: a lock set meanwhile refuses it too).
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
                let secs = seconds_until(until, now);
                wait = Some(wait.map_or(secs, |w| w.max(secs)));
            }
        }
    }
    Ok(wait)
}

/// Keeps a reserved attempt as a failure; locks each key that reached its threshold and
/// returns true if this failure locked any.
pub(super) async fn confirm_failure(
    conn: &mut Conn<'_>,
    policy: &Policy,
    keys: &[(String, i64)],
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut locked_now = false;
    for (key, threshold) in keys {
        let mut record = match throttle::get(conn, key).await? {
            // A success cleared the counter meanwhile: the failure is forgiven with it.
            None => continue,
            Some(r) if r.locked_until.is_some_and(|u| u > now) => continue,
            // The window lapsed while the password was checked: count it in a new one.
            Some(r) if now - r.window_start >= policy.window => ThrottleRecord {
                failures: 1,
                window_start: now,
                locked_until: None,
            },
            Some(r) => r,
        };
        if record.failures >= *threshold {
            record.locked_until = Some(now + policy.window);
            locked_now = true;
        }
        throttle::put(conn, key, &record).await?;
    }
    Ok(locked_now)
}

/// After a successful sign-in: clears the account's counter and gives the address back the
/// attempt reserved for it (successes do not count against an address).
pub(super) async fn release(conn: &mut Conn<'_>, keys: &[(String, i64)]) -> Result<(), StoreError> {
    let Some(((account, _), addresses)) = keys.split_first() else {
        return Ok(());
    };
    throttle::clear(conn, account).await?;
    for (key, _) in addresses {
        if let Some(mut record) = throttle::get(conn, key).await? {
            if record.failures > 0 {
                record.failures -= 1;
                throttle::put(conn, key, &record).await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> String {
        address_key(s.parse().unwrap())
    }

    #[test]
    fn an_ipv6_network_is_counted_as_one_address() {
        // Stepping through the host bits of one /64 does not yield a fresh counter.
        assert_eq!(
            key("2001:db8:1:2::1"),
            key("2001:db8:1:2:ffff:ffff:ffff:fffe")
        );
        assert_eq!(key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        // IPv4 addresses stay apart, also when they arrive mapped into IPv6 (a dual-stack
        // listener): they must not all fall into the one /64 of the mapped range.
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_ne!(key("::ffff:192.0.2.7"), key("::ffff:192.0.2.8"));
    }
}
