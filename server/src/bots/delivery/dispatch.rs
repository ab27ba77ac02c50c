//! Sending queued deliveries: each attempt in a task of its own, bounded in all and per bot.
//!
//! The dispatcher looks at which bots have deliveries due, starts attempts while the bot is
//! under `bots.event_concurrency_per_bot` and everyone under `bots.event_concurrency`, and
//! sleeps until the next one is due, a delivery is queued or replayed, or an attempt ends.
//! It never waits for an endpoint itself, so one that hangs until its timeout holds only
//! its own bot's slots. Bots take turns (each round starts after the bot served last), and a
//! bot whose last attempt failed gets one attempt at a time, failing bots together at most
//! half of all slots: however many endpoints hang, healthy bots keep the other half. An attempt records its outcome in a write of its own: delivered
//! (deleted), failed (its next retry scheduled, or parked after the last), or no longer for
//! the bot (deleted: the URL was removed, the bot left the channel or was deactivated).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::Utc;
use futures::FutureExt;
use reqwest::header::{HeaderMap, HeaderValue};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::envelope::{self, EventTypes};
use super::{signing, Delivery};
use crate::bots::BotService;
use crate::domain::{EventDeliveryId, UserId};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::store::bot_events::{self, DeliveryRecord};
use crate::store::{bots, Tx};

/// The longest the dispatcher sleeps without looking (deliveries another process queued).
const POLL: Duration = Duration::from_secs(1);

/// How much of an endpoint's answer is read.
const MAX_ANSWER: usize = 4096;

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Runs until `stop`.
pub(super) async fn run(service: BotService, stop: CancellationToken) {
    let delivery = service.delivery().clone();
    let mut flight = Flight::default();
    let mut tasks: JoinSet<Finished> = JoinSet::new();
    loop {
        let next_due = match start_due(&service, &mut flight, &mut tasks).await {
            Ok(next) => next,
            Err(err) => {
                tracing::warn!(error = %err, "bot event dispatch failed; retrying");
                Some(now_ms() + 1000)
            }
        };
        let wait = next_due
            .map(|due| Duration::from_millis((due - now_ms()).max(0) as u64).min(POLL))
            .unwrap_or(POLL);
        tokio::select! {
            _ = stop.cancelled() => {
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                return;
            }
            _ = delivery.wake.notified() => {}
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                flight.finished(done);
                while let Some(Some(done)) = tasks.join_next().now_or_never() {
                    flight.finished(done);
                }
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// An attempt that ended: its bot, its delivery, and whether the endpoint took it.
type Finished = (UserId, EventDeliveryId, bool);

/// The deliveries being attempted, by bot, and which bots are failing.
#[derive(Default)]
struct Flight {
    by_bot: HashMap<UserId, HashSet<EventDeliveryId>>,
    total: usize,
    /// Bots whose last attempt failed (or whose due deliveries were retries): each gets one
    /// attempt at a time until one succeeds, and together they hold at most half the slots,
    /// so endpoints that hang cannot take every slot from the healthy ones.
    failing: HashSet<UserId>,
    /// The bot that last got a slot; the next round starts after it, so bots take turns.
    last_served: Option<UserId>,
}

impl Flight {
    fn busy(&self, bot: UserId) -> usize {
        self.by_bot.get(&bot).map_or(0, HashSet::len)
    }

    fn failing_busy(&self) -> usize {
        self.failing.iter().map(|b| self.busy(*b)).sum()
    }

    /// Whether `bot` may start one more attempt now.
    fn fits(&self, bot: UserId, limits: &Delivery) -> bool {
        if self.total >= limits.concurrency {
            return false;
        }
        if self.failing.contains(&bot) {
            self.busy(bot) == 0 && self.failing_busy() < (limits.concurrency / 2).max(1)
        } else {
            self.busy(bot) < limits.per_bot
        }
    }

    fn finished(&mut self, done: Result<Finished, tokio::task::JoinError>) {
        // Attempts are aborted only when the dispatcher stops.
        let Ok((bot, id, delivered)) = done else {
            return;
        };
        if delivered {
            self.failing.remove(&bot);
        } else {
            self.failing.insert(bot);
        }
        if let Some(set) = self.by_bot.get_mut(&bot) {
            if set.remove(&id) {
                self.total -= 1;
            }
            if set.is_empty() {
                self.by_bot.remove(&bot);
            }
        }
    }
}

/// Starts the attempts that are due and fit; returns when the next queued one is due.
async fn start_due(
    service: &BotService,
    flight: &mut Flight,
    tasks: &mut JoinSet<Finished>,
) -> Result<Option<i64>, Error> {
    let delivery = service.delivery().clone();
    let now = now_ms();
    let mut pooled = service.store.reader().await?;
    let mut conn = pooled.conn();
    let mut next: Option<i64> = None;
    let mut bots = bot_events::pending_bots(&mut conn).await?;
    // Take turns: start after the bot served last.
    if let Some(last) = flight.last_served {
        let after = bots.partition_point(|(b, _)| *b <= last);
        bots.rotate_left(after);
    }
    for (bot, first_due) in bots {
        if flight.total >= delivery.concurrency {
            // An attempt ending wakes the dispatcher.
            break;
        }
        if !flight.fits(bot, &delivery) {
            continue;
        }
        if first_due > now {
            next = Some(next.map_or(first_due, |n| n.min(first_due)));
            continue;
        }
        let limit = (delivery.per_bot + flight.busy(bot)) as i64;
        for row in bot_events::due(&mut conn, bot, now, limit).await? {
            if row.attempts > 0 {
                // A retry: the endpoint failed before (perhaps before a restart).
                flight.failing.insert(bot);
            }
            if !flight.fits(bot, &delivery) {
                break;
            }
            let id = row.id;
            if !flight.by_bot.entry(bot).or_default().insert(id) {
                continue;
            }
            flight.total += 1;
            flight.last_served = Some(bot);
            let svc = service.clone();
            tasks.spawn(async move {
                let attempts = row.attempts;
                match std::panic::AssertUnwindSafe(attempt(&svc, row))
                    .catch_unwind()
                    .await
                {
                    Ok(delivered) => (bot, id, delivered),
                    Err(_) => {
                        // Counted as a failed attempt, so it waits for its retry instead of
                        // being started again at once, and is parked after the last.
                        tracing::error!(delivery = %id, "a bot event attempt panicked");
                        record_failed(
                            &svc,
                            id,
                            bot,
                            attempts,
                            "unknown_error",
                            "the attempt failed unexpectedly".to_owned(),
                            true,
                        )
                        .await;
                        (bot, id, false)
                    }
                }
            });
        }
    }
    Ok(next)
}

/// What an attempt came to.
enum Outcome {
    /// The endpoint answered 2xx.
    Delivered,
    /// The event is no longer for this bot; why.
    Dropped(&'static str),
    /// It failed: Slack's retry reason, details, and whether to retry at all.
    Failed {
        reason: &'static str,
        detail: String,
        retry: bool,
    },
}

/// One attempt at `row`, its outcome recorded; whether the endpoint took it (a delivery
/// dropped as no longer wanted counts as taken: the endpoint is not at fault).
async fn attempt(service: &BotService, row: DeliveryRecord) -> bool {
    let outcome = match send(service, &row).await {
        Ok(outcome) => outcome,
        Err(err) => Outcome::Failed {
            reason: "unknown_error",
            detail: err.to_string(),
            retry: true,
        },
    };
    let id = row.id;
    let label = match &outcome {
        Outcome::Delivered => "delivered",
        Outcome::Dropped(_) => "dropped",
        Outcome::Failed { .. } => "failed",
    };
    metrics::counter!("concord_bot_event_attempts_total", "outcome" => label).increment(1);
    match outcome {
        Outcome::Delivered | Outcome::Dropped(_) => {
            if let Outcome::Dropped(why) = outcome {
                tracing::debug!(delivery = %id, why, "bot event dropped");
            }
            let written = service
                .store
                .write(move |tx: &mut Tx| {
                    Box::pin(
                        async move { bot_events::remove(&mut tx.conn(), id).await.map(|_| ()) },
                    )
                })
                .await;
            if let Err(err) = written {
                tracing::warn!(delivery = %id, error = %err, "cannot record a bot event attempt");
            }
            true
        }
        Outcome::Failed {
            reason,
            detail,
            retry,
        } => {
            record_failed(service, id, row.bot_id, row.attempts, reason, detail, retry).await;
            false
        }
    }
}

/// Records a failed attempt at delivery `id` (which had `attempts` before this one): its
/// next retry is scheduled, or, after the last (or with `retry` false), it is parked.
async fn record_failed(
    service: &BotService,
    id: EventDeliveryId,
    bot: UserId,
    attempts: i64,
    reason: &'static str,
    detail: String,
    retry: bool,
) {
    let attempts_now = attempts + 1;
    let next = retry
        .then(|| {
            usize::try_from(attempts)
                .ok()
                .and_then(|n| service.delivery().retry_delays.get(n))
        })
        .flatten()
        .map(|d| now_ms() + d.as_millis() as i64);
    if next.is_none() {
        tracing::info!(delivery = %id, %bot, attempts = attempts_now, reason, "bot event parked after its last retry");
    }
    let error = format!("{reason}: {detail}");
    let written = service
        .store
        .write(move |tx: &mut Tx| {
            Box::pin(async move {
                bot_events::failed(&mut tx.conn(), id, attempts_now, next, &error).await
            })
        })
        .await;
    if let Err(err) = written {
        tracing::warn!(delivery = %id, error = %err, "cannot record a bot event attempt");
    }
}

/// Builds, signs and sends the event of `row`.
async fn send(service: &BotService, row: &DeliveryRecord) -> Result<Outcome, Error> {
    let (settings, live) = {
        let mut pooled = service.store.reader().await?;
        let mut conn = pooled.conn();
        let settings = bot_events::settings(&mut conn, row.bot_id).await?;
        let live = bots::live(&mut conn, row.bot_id).await?;
        (settings, live)
    };
    let Some(settings) = settings else {
        return Ok(Outcome::Dropped("no event settings"));
    };
    let Some(url) = settings.request_url.clone() else {
        return Ok(Outcome::Dropped("no request URL"));
    };
    if !live {
        return Ok(Outcome::Dropped("bot deactivated"));
    }
    if !EventTypes::stored(&settings.event_types).wants_any(&row.event_type) {
        return Ok(Outcome::Dropped("no longer subscribed"));
    }
    let Ok(event) = serde_json::from_str::<DomainEvent>(&row.source) else {
        return Ok(Outcome::Dropped("unreadable source event"));
    };
    let Some(built) = envelope::build(
        service,
        &event,
        &row.event_type,
        row.bot_id,
        row.event_time_us,
    )
    .await?
    else {
        return Ok(Outcome::Dropped("no longer visible to the bot"));
    };
    let secret = service
        .signing_key(
            settings.workspace_id,
            row.bot_id,
            &settings.signing_secret_enc,
        )
        .await?;
    let body = envelope::envelope(
        built,
        &signing::verification_token(&secret),
        row.workspace_id,
        row.bot_id,
        &row.event_id,
        row.event_time_us,
    );
    let body = serde_json::to_vec(&body).map_err(|e| Error::Internal(e.to_string()))?;
    let mut headers = signed_headers(&secret, &body);
    if row.attempts > 0 {
        headers.insert("x-slack-retry-num", HeaderValue::from(row.attempts));
        let reason = row
            .last_error
            .as_deref()
            .and_then(|e| e.split(':').next())
            .unwrap_or("unknown_error");
        if let Ok(value) = HeaderValue::from_str(reason) {
            headers.insert("x-slack-retry-reason", value);
        }
    }
    let delivery = service.delivery().clone();
    Ok(
        match delivery
            .egress
            .post_json(&url, headers, body, MAX_ANSWER)
            .await
        {
            Ok(answer) if (200..300).contains(&answer.status) => Outcome::Delivered,
            Ok(answer) => Outcome::Failed {
                reason: "http_error",
                detail: if (300..400).contains(&answer.status) {
                    format!("status {} (redirects are not followed)", answer.status)
                } else {
                    format!("status {}", answer.status)
                },
                // Slack's receivers may ask not to be retried.
                retry: answer
                    .headers
                    .get("x-slack-no-retry")
                    .is_none_or(|v| v.as_bytes() != b"1"),
            },
            Err(err) => Outcome::Failed {
                reason: err.retry_reason(),
                detail: err.to_string(),
                retry: true,
            },
        },
    )
}

/// `X-Slack-Request-Timestamp` (now) and `X-Slack-Signature` over `body`.
pub(crate) fn signed_headers(secret: &[u8], body: &[u8]) -> HeaderMap {
    let timestamp = Utc::now().timestamp();
    let mut headers = HeaderMap::new();
    headers.insert("x-slack-request-timestamp", HeaderValue::from(timestamp));
    if let Ok(sig) = HeaderValue::from_str(&signing::signature(secret, timestamp, body)) {
        headers.insert("x-slack-signature", sig);
    }
    headers
}
