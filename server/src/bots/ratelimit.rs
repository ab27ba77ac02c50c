//! Per-token rate limits, modelled on Slack's method tiers, and per-person limits on what
//! people make bots do (slash commands, presses of buttons).
//!
//! Each (caller, tier) pair has a token bucket holding a minute's worth of calls that
//! refills continuously; a call finding it empty is refused with the seconds until the next
//! call would be allowed (Slack's `Retry-After`). State is in memory and per process: a
//! limit, not an accounting, so a restart forgetting it is harmless.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::domain::UserId;
use crate::rbac::BotCredential;

/// Buckets kept before idle ones are dropped.
const MAX_BUCKETS: usize = 50_000;

/// How often a kind of method may be called (calls per minute, as Slack documents them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tier {
    /// About 20 a minute: listing (`conversations.list`, `users.list`, `conversations.members`).
    Tier2,
    /// About 50 a minute: reading and changing (`conversations.history`, `chat.update`, ...).
    Tier3,
    /// About 100 a minute: lookups (`auth.test`, `users.info`, `conversations.info`).
    Tier4,
    /// Posting (`chat.postMessage`, incoming webhooks): about one a second, with bursts.
    Posting,
    /// A person's slash commands and presses of bots' buttons and menus, all bots together:
    /// about one every two seconds, with bursts. Each sends a request out of the server.
    Interactions,
}

/// Who a bucket counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Caller {
    /// A bot's token or webhook.
    Bot(BotCredential),
    /// A person.
    Person(UserId),
}

impl From<BotCredential> for Caller {
    fn from(c: BotCredential) -> Caller {
        Caller::Bot(c)
    }
}

impl Tier {
    fn per_minute(self) -> f64 {
        match self {
            Tier::Tier2 => 20.0,
            Tier::Tier3 => 50.0,
            Tier::Tier4 => 100.0,
            Tier::Posting => 60.0,
            Tier::Interactions => 30.0,
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every credential in use.
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<(Caller, Tier), Bucket>>,
}

impl RateLimiter {
    /// Takes one call from the bucket; `Err(seconds)` when it is empty.
    pub fn take(&self, who: impl Into<Caller>, tier: Tier) -> Result<(), u64> {
        self.take_at(who.into(), tier, Instant::now())
    }

    fn take_at(&self, who: Caller, tier: Tier, now: Instant) -> Result<(), u64> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let capacity = tier.per_minute();
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(&(who, tier)) {
            // Full buckets limit nobody: dropping them changes no answer.
            buckets.retain(|(_, t), b| {
                let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
                b.tokens + elapsed * t.per_minute() / 60.0 < t.per_minute()
            });
        }
        let bucket = buckets.entry((who, tier)).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * capacity / 60.0).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - bucket.tokens) * 60.0 / capacity).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::BotTokenId;

    #[test]
    fn a_bucket_empties_and_refills() {
        let limiter = RateLimiter::default();
        let who = Caller::Bot(BotCredential::Token(BotTokenId::generate()));
        let start = Instant::now();
        for _ in 0..20 {
            assert_eq!(limiter.take_at(who, Tier::Tier2, start), Ok(()));
        }
        assert_eq!(limiter.take_at(who, Tier::Tier2, start), Err(3));
        // Another tier and another token have buckets of their own.
        assert_eq!(limiter.take_at(who, Tier::Tier3, start), Ok(()));
        let other = Caller::Bot(BotCredential::Token(BotTokenId::generate()));
        assert_eq!(limiter.take_at(other, Tier::Tier2, start), Ok(()));
        let person = Caller::Person(UserId(uuid::Uuid::now_v7()));
        assert_eq!(limiter.take_at(person, Tier::Tier2, start), Ok(()));
        assert_eq!(
            limiter.take_at(who, Tier::Tier2, start + Duration::from_secs(3)),
            Ok(())
        );
    }
}
