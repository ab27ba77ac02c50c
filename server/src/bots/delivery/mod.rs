//! Events out: committed events delivered to bots' request URLs as Slack's Events API does.
//!
//! An administrator gives a bot a signing secret (shown once, kept encrypted under the
//! workspace's key) and a request URL with the event types it wants; the URL must answer
//! Slack's `url_verification` challenge before it is kept (`subscription.rs`).
//!
//! Two tasks the server owns move events ([`spawn`]):
//! - `fanout.rs`, a durable outbox consumer (`bots.events`): for each committed event it
//!   decides which bots get which Slack events (`envelope::plan`) and queues one delivery
//!   per bot and Slack event id in `bot_event_deliveries`, in the same write that moves its
//!   cursor, so after a crash an event is queued once, never twice or not at all;
//! - `dispatch.rs`, which sends due deliveries, each in a task of its own, at most
//!   `bots.event_concurrency` at once and `bots.event_concurrency_per_bot` per bot, so a
//!   slow or dead endpoint delays only its own bot. An attempt builds the Slack event from
//!   the stored ids (`envelope::build`), signs it (`signing.rs`) and POSTs it through the
//!   guarded client (`egress.rs`: public addresses only unless configured, no redirects,
//!   timeouts). A 2xx answer deletes the delivery; a failure schedules the next retry
//!   (`bots.event_retry_delays_ms`, with `X-Slack-Retry-Num` and `X-Slack-Retry-Reason`),
//!   and after the last one the delivery is parked for administrators to list and replay.
//!
//! Slash commands (`super::commands`) use the same guarded client, signing and timeout.
//!
//! Neither task is on the path of a request or of the writer: posting a message costs the
//! outbox row it already had; delivery happens afterwards at its own pace.
//!
//! Delivery is at least once: an attempt whose answer arrived but whose deletion did not
//! commit (a crash in between) is sent again after a restart, with the same `event_id`,
//! which is how Slack's receivers deduplicate.

mod dispatch;
pub mod egress;
pub mod envelope;
mod fanout;
mod restricted;
pub mod signing;
mod subscription;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub(crate) use dispatch::signed_headers;
pub use envelope::{EventTypes, EVENT_TYPES};
pub(crate) use subscription::subscription_view;

use super::BotService;
use crate::config::BotsConfig;
use egress::{Egress, EgressError};

/// The outbox consumer that queues bots' events.
pub const CONSUMER: &str = "bots.events";

/// How events are delivered (from the `bots` configuration), and the dispatcher's wake-up.
pub struct Delivery {
    pub(crate) egress: Egress,
    retry_delays: Vec<Duration>,
    concurrency: usize,
    per_bot: usize,
    queue_max: i64,
    wake: Notify,
    /// Slash command invocations in flight, per bot.
    commands_in_flight: std::sync::Mutex<std::collections::HashMap<crate::domain::UserId, usize>>,
}

/// One slash command invocation in flight to a bot; released when dropped.
pub(crate) struct CommandSlot<'a> {
    delivery: &'a Delivery,
    bot: crate::domain::UserId,
}

impl Drop for CommandSlot<'_> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.delivery.commands_in_flight.lock() {
            if let Some(n) = map.get_mut(&self.bot) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(&self.bot);
                }
            }
        }
    }
}

impl Delivery {
    /// The delivery settings of `config`.
    pub fn from_config(config: &BotsConfig) -> Result<Delivery, EgressError> {
        Ok(Delivery {
            egress: Egress::new(
                config.event_allowed_networks.clone(),
                Duration::from_millis(config.event_timeout_ms),
            )?,
            retry_delays: config
                .event_retry_delays_ms
                .iter()
                .map(|ms| Duration::from_millis(*ms))
                .collect(),
            concurrency: config.event_concurrency.max(1),
            per_bot: config.event_concurrency_per_bot.max(1),
            queue_max: i64::try_from(config.event_queue_max).unwrap_or(i64::MAX),
            wake: Notify::new(),
            commands_in_flight: Default::default(),
        })
    }

    /// A slot for one slash command invocation to `bot`, if it has fewer than
    /// `bots.event_concurrency_per_bot` in flight: people typing commands cannot hold more of
    /// a bot's endpoint (or of this server's requests) than its events may.
    pub(crate) fn command_slot(&self, bot: crate::domain::UserId) -> Option<CommandSlot<'_>> {
        let mut map = self.commands_in_flight.lock().ok()?;
        let n = map.entry(bot).or_default();
        if *n >= self.per_bot {
            return None;
        }
        *n += 1;
        Some(CommandSlot {
            delivery: self,
            bot,
        })
    }

    /// Tells the dispatcher that deliveries were queued (or replayed).
    pub(super) fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Starts the outbox consumer and the dispatcher; both stop with `stop` (the dispatcher
/// abandons attempts in flight, which stay queued and are sent again after a restart).
pub fn spawn(service: BotService, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let fan = tokio::spawn(fanout::run(service.clone(), stop.clone()));
        let send = tokio::spawn(dispatch::run(service, stop));
        let _ = fan.await;
        let _ = send.await;
    })
}

impl BotService {
    /// The delivery settings.
    pub(super) fn delivery(&self) -> &Arc<Delivery> {
        &self.delivery
    }
}
