//! The outbox consumer that turns committed events into bots' deliveries.
//!
//! It reads the outbox after its cursor (`outbox::Consumer`, named [`super::CONSUMER`],
//! starting at the events committed after it first registered), decides for each event which
//! subscribed bots get which Slack events, and stores those deliveries in the write that
//! acknowledges the batch (`Consumer::ack_with`): queued and acknowledged together, so a
//! crash between the two cannot queue an event twice or skip it.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::envelope::{self, EventTypes};
use crate::bots::BotService;
use crate::domain::{EventDeliveryId, UserId, WorkspaceId};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::outbox::{Consumer, OutboxRecord, Start};
use crate::store::bot_events::{self, NewDelivery, Subscriber};
use crate::store::{channels, Conn, Tx};

/// Events read per batch.
const BATCH: usize = 200;

/// How long events that queued nothing may stay unacknowledged while more keep coming.
const LAZY_ACK: Duration = Duration::from_secs(1);

/// Runs until `stop`, retrying after storage errors.
pub(super) async fn run(service: BotService, stop: CancellationToken) {
    loop {
        let failed = tokio::select! {
            _ = stop.cancelled() => return,
            result = consume(&service, &stop) => match result {
                Ok(()) => return,
                Err(err) => err,
            },
        };
        tracing::warn!(error = %failed, "bot event fan-out failed; retrying");
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn consume(service: &BotService, stop: &CancellationToken) -> Result<(), Error> {
    let mut consumer = Consumer::open(&service.store, super::CONSUMER, Start::Latest)
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
    // Events that made no delivery are acknowledged lazily: reading them again after a
    // restart queues nothing, and the writer is spared a write per batch.
    let mut unacked: Option<i64> = None;
    let mut acked_at = Instant::now();
    loop {
        if stop.is_cancelled() {
            return Ok(());
        }
        let batch = consumer
            .next_batch(BATCH)
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        if batch.missed > 0 {
            tracing::warn!(
                missed = batch.missed,
                "bot events were pruned from the outbox before they were queued; they are not delivered"
            );
        }
        let Some(last) = batch.last_id() else {
            if let Some(cursor) = unacked.take() {
                consumer
                    .ack(cursor)
                    .await
                    .map_err(|e| Error::Internal(e.to_string()))?;
                acked_at = Instant::now();
            }
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = consumer.wait() => continue,
            }
        };
        let deliveries = plan_batch(service, &batch.events).await?;
        let queued = !deliveries.is_empty();
        if !queued && acked_at.elapsed() < LAZY_ACK {
            unacked = Some(last);
            continue;
        }
        unacked = None;
        acked_at = Instant::now();
        consumer
            .ack_with(last, move |tx: &mut Tx| {
                Box::pin(async move {
                    bot_events::enqueue(&mut tx.conn(), &deliveries, Utc::now()).await
                })
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        if queued {
            service.delivery().wake();
        }
    }
}

/// The deliveries a batch of committed events makes.
async fn plan_batch(
    service: &BotService,
    events: &[OutboxRecord],
) -> Result<Vec<NewDelivery>, Error> {
    let mut out = Vec::new();
    let mut subscribers: HashMap<WorkspaceId, Vec<(Subscriber, EventTypes)>> = HashMap::new();
    // Each bot's queue length (read once per batch, counted up as the batch adds to it) and
    // what its limit turned away.
    let mut queued: HashMap<UserId, i64> = HashMap::new();
    let mut dropped: HashMap<UserId, u64> = HashMap::new();
    let queue_max = service.delivery().queue_max;
    let mut pooled = service.store.reader().await?;
    let mut conn = pooled.conn();
    for record in events {
        let Ok(event) = serde_json::from_str::<DomainEvent>(&record.payload) else {
            continue;
        };
        let Some(plan) = envelope::plan(&event) else {
            continue;
        };
        let bots = match subscribers.entry(plan.workspace) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(slot) => slot.insert(
                bot_events::subscribers_in(&mut conn, plan.workspace)
                    .await?
                    .into_iter()
                    .map(|s| {
                        let types = EventTypes::stored(&s.event_types);
                        (s, types)
                    })
                    .collect(),
            ),
        };
        if bots.is_empty() {
            continue;
        }
        let Some(channel) = channels::by_id(&mut conn, plan.channel).await? else {
            continue;
        };
        if channel.workspace_id != plan.workspace {
            continue;
        }
        let time_us = record.committed_at.timestamp_micros();
        for (bot, types) in bots.iter() {
            if plan.caused_by == Some(bot.bot_id) {
                continue;
            }
            let mut member = None;
            for (kind, addressed) in &plan.kinds {
                if !types.wants(kind, &channel.kind) {
                    continue;
                }
                if addressed
                    .as_ref()
                    .is_some_and(|who| !who.contains(&bot.bot_id))
                {
                    continue;
                }
                // Slack's membership events are about channels, not conversations.
                if kind.starts_with("member_")
                    && !matches!(channel.kind.as_str(), "public" | "private")
                {
                    continue;
                }
                let visible = if *kind == "channel_created" {
                    channel.kind == "public" && channel.created_by != bot.bot_id
                } else {
                    match member {
                        Some(m) => m,
                        None => {
                            let m = is_member(&mut conn, plan.channel, bot.bot_id).await?;
                            member = Some(m);
                            m
                        }
                    }
                };
                if !visible {
                    continue;
                }
                let length = match queued.entry(bot.bot_id) {
                    Entry::Occupied(known) => known.into_mut(),
                    Entry::Vacant(slot) => {
                        slot.insert(bot_events::queued_for(&mut conn, bot.bot_id).await?)
                    }
                };
                if *length >= queue_max {
                    *dropped.entry(bot.bot_id).or_default() += 1;
                    continue;
                }
                *length += 1;
                out.push(NewDelivery {
                    id: EventDeliveryId::generate(),
                    bot_id: bot.bot_id,
                    workspace_id: plan.workspace,
                    event_id: envelope::event_id(&record.event_id, kind),
                    event_type: (*kind).to_owned(),
                    source: record.payload.clone(),
                    event_time_us: time_us,
                });
            }
        }
    }
    for (bot, n) in dropped {
        metrics::counter!("concord_bot_events_dropped_total").increment(n);
        tracing::warn!(%bot, dropped = n, limit = queue_max, "a bot's event queue is full; events not queued");
    }
    Ok(out)
}

async fn is_member(
    conn: &mut Conn<'_>,
    channel: crate::domain::ChannelId,
    bot: crate::domain::UserId,
) -> Result<bool, Error> {
    Ok(channels::membership(conn, channel, bot).await?.is_some())
}
