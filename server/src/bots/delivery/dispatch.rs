//! Sending queued deliveries: each attempt in a task of its own, bounded in all and per bot.
//!
//! The dispatcher looks at which bots have deliveries due, starts attempts while the bot is
//! under `bots.event_concurrency_per_bot` and everyone under `bots.event_concurrency`, and
//! sleeps until the next one is due, a delivery is queued or replayed, or an attempt ends.
//! It never waits for an endpoint itself, so one that hangs until its timeout holds only
//! its own bot's slots. An attempt records its outcome in a write of its own: delivered
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
use super::signing;
use crate::bots::BotService;
use crate::crypto::Scope;
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
    let mut tasks: JoinSet<(UserId, EventDeliveryId)> = JoinSet::new();
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

/// The deliveries being attempted, by bot.
#[derive(Default)]
struct Flight {
    by_bot: HashMap<UserId, HashSet<EventDeliveryId>>,
    total: usize,
}

impl Flight {
    fn busy(&self, bot: UserId) -> usize {
        self.by_bot.get(&bot).map_or(0, HashSet::len)
    }

    fn finished(&mut self, done: Result<(UserId, EventDeliveryId), tokio::task::JoinError>) {
        // Attempts are aborted only when the dispatcher stops.
        let Ok((bot, id)) = done else {
            return;
        };
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
    tasks: &mut JoinSet<(UserId, EventDeliveryId)>,
) -> Result<Option<i64>, Error> {
    let delivery = service.delivery().clone();
    let now = now_ms();
    let mut pooled = service.store.reader().await?;
    let mut conn = pooled.conn();
    let mut next: Option<i64> = None;
    for (bot, first_due) in bot_events::pending_bots(&mut conn).await? {
        if flight.total >= delivery.concurrency || flight.busy(bot) >= delivery.per_bot {
            // An attempt ending wakes the dispatcher.
            continue;
        }
        if first_due > now {
            next = Some(next.map_or(first_due, |n| n.min(first_due)));
            continue;
        }
        let limit = (delivery.per_bot + flight.busy(bot)) as i64;
        for row in bot_events::due(&mut conn, bot, now, limit).await? {
            if flight.total >= delivery.concurrency || flight.busy(bot) >= delivery.per_bot {
                break;
            }
            let id = row.id;
            if !flight.by_bot.entry(bot).or_default().insert(id) {
                continue;
            }
            flight.total += 1;
            let svc = service.clone();
            tasks.spawn(async move {
                // A panicking attempt leaves its delivery queued and still frees its slot.
                if std::panic::AssertUnwindSafe(attempt(&svc, row))
                    .catch_unwind()
                    .await
                    .is_err()
                {
                    tracing::error!(delivery = %id, "a bot event attempt panicked");
                }
                (bot, id)
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

/// One attempt at `row`, its outcome recorded.
async fn attempt(service: &BotService, row: DeliveryRecord) {
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
    let written = match outcome {
        Outcome::Delivered | Outcome::Dropped(_) => {
            if let Outcome::Dropped(why) = outcome {
                tracing::debug!(delivery = %id, why, "bot event dropped");
            }
            service
                .store
                .write(move |tx: &mut Tx| {
                    Box::pin(
                        async move { bot_events::remove(&mut tx.conn(), id).await.map(|_| ()) },
                    )
                })
                .await
        }
        Outcome::Failed {
            reason,
            detail,
            retry,
        } => {
            let attempts = row.attempts + 1;
            let next = retry
                .then(|| service.delivery().retry_delays.get(row.attempts as usize))
                .flatten()
                .map(|d| now_ms() + d.as_millis() as i64);
            if next.is_none() {
                tracing::info!(delivery = %id, bot = %row.bot_id, attempts, reason, "bot event parked after its last retry");
            }
            let error = format!("{reason}: {detail}");
            service
                .store
                .write(move |tx: &mut Tx| {
                    Box::pin(async move {
                        bot_events::failed(&mut tx.conn(), id, attempts, next, &error).await
                    })
                })
                .await
        }
    };
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
        let live = bots::by_id(&mut conn, row.bot_id)
            .await?
            .is_some_and(|b| b.deactivated_at.is_none())
            && bots::account_active(&mut conn, row.bot_id).await?;
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
    let secret = {
        let mut pooled = service.store.reader().await?;
        let row_id = row.bot_id.to_string();
        service
            .auditor
            .keyring()
            .decrypt(
                &mut pooled.conn(),
                &Scope::Workspace(settings.workspace_id),
                super::subscription::secret_aad(&row_id),
                &settings.signing_secret_enc,
            )
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
    };
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
pub(super) fn signed_headers(secret: &[u8], body: &[u8]) -> HeaderMap {
    let timestamp = Utc::now().timestamp();
    let mut headers = HeaderMap::new();
    headers.insert("x-slack-request-timestamp", HeaderValue::from(timestamp));
    if let Ok(sig) = HeaderValue::from_str(&signing::signature(secret, timestamp, body)) {
        headers.insert("x-slack-signature", sig);
    }
    headers
}
