//! Sign-ins begun per client address.
//!
//! Anyone may begin a sign-in, and pending sign-ins are bounded deployment-wide
//! (`sso.max_pending_sign_ins`), so one client must not be able to fill that bound and turn
//! everyone else away. Each client address (an IPv6 address by its /64) may begin
//! [`PER_ADDRESS`] sign-ins per window (the time a pending sign-in lives); past that it is
//! refused (`503 sso_busy`) until its window ends, without a write. Counts are kept in memory
//! for at most [`MAX_ADDRESSES`] addresses; when that many are being tracked within their
//! windows, a new address is bounded by the deployment-wide limit alone.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::auth::address_network;

/// Sign-ins one address may begin per window.
pub(crate) const PER_ADDRESS: u32 = 30;

/// Addresses whose counts are kept at most.
const MAX_ADDRESSES: usize = 100_000;

/// Counts of sign-ins begun per address.
pub(crate) struct StartLimiter {
    window: Duration,
    per_address: u32,
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl StartLimiter {
    /// Allows `per_address` starts per `window` to each address.
    pub(crate) fn new(window: Duration, per_address: u32) -> StartLimiter {
        StartLimiter {
            window,
            per_address,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a sign-in begun from `ip` at `now`; past the address's share, returns the
    /// seconds until it may begin another (nothing is counted then).
    pub(crate) fn admit(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let key = address_network(ip);
        // Plain counters: a map left by a panicking holder is still sound.
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() >= MAX_ADDRESSES && !seen.contains_key(&key) {
            let window = self.window;
            seen.retain(|_, (start, _)| now.saturating_duration_since(*start) < window);
            if seen.len() >= MAX_ADDRESSES {
                return Ok(());
            }
        }
        let entry = seen.entry(key).or_insert((now, 0));
        let elapsed = now.saturating_duration_since(entry.0);
        if elapsed >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.per_address {
            let left = self
                .window
                .saturating_sub(now.saturating_duration_since(entry.0));
            return Err(left.as_secs().max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn each_address_begins_its_share_per_window() {
        let limiter = StartLimiter::new(Duration::from_secs(600), 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.admit(ip("203.0.113.5"), t0).unwrap();
        }
        let wait = limiter.admit(ip("203.0.113.5"), t0).unwrap_err();
        assert_eq!(wait, 600);
        // Another address, and the same IPv6 /64 counted as one address.
        limiter.admit(ip("203.0.113.6"), t0).unwrap();
        for host in 1..=3 {
            limiter.admit(ip(&format!("2001:db8::{host}")), t0).unwrap();
        }
        assert!(limiter.admit(ip("2001:db8::ffff"), t0).is_err());
        limiter.admit(ip("2001:db8:0:1::1"), t0).unwrap();
        // A new window starts afresh.
        let later = t0 + Duration::from_secs(600);
        for _ in 0..3 {
            limiter.admit(ip("203.0.113.5"), later).unwrap();
        }
        let wait = limiter
            .admit(ip("203.0.113.5"), later + Duration::from_secs(599))
            .unwrap_err();
        assert_eq!(wait, 1);
    }
}
