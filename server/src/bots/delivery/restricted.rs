//! Restriction of processing (GDPR Art. 18) in event delivery: no bot receives an event a
//! restricted person caused or one about their content.
//!
//! Asked when an attempt builds its event (`envelope::build`), of the database (one indexed
//! query), so a restriction started after the event was queued, or in another process,
//! still holds back its delivery.

use crate::bots::BotService;
use crate::domain::UserId;
use crate::error::Error;
use crate::events::DomainEvent;
use crate::store::restrictions;

/// Whether `event` was caused by, or concerns the content or membership of, someone whose
/// processing is restricted.
pub(super) async fn concerns_restricted(
    svc: &BotService,
    event: &DomainEvent,
) -> Result<bool, Error> {
    let mut conn = svc.store.reader().await?;
    let mut people = Vec::new();
    match event {
        DomainEvent::MessageCreated { author_id, .. } => people.push(*author_id),
        DomainEvent::MessageUpdated {
            message_id,
            reaction,
            ..
        } => {
            people.extend(reaction.as_ref().map(|r| r.user_id));
            people.extend(restrictions::message_author(&mut conn.conn(), *message_id).await?);
        }
        DomainEvent::ChannelMemberAdded { user_id, by, .. }
        | DomainEvent::ChannelMemberRemoved { user_id, by, .. } => {
            people.push(*user_id);
            people.extend(*by);
        }
        _ => {}
    }
    Ok(!restrictions::restricted_among(&mut conn.conn(), &people)
        .await?
        .is_empty())
}

/// Whether `user`'s processing is restricted now (a channel they created names them and
/// carries the name they chose).
pub(super) async fn is_restricted(svc: &BotService, user: UserId) -> Result<bool, Error> {
    let mut conn = svc.store.reader().await?;
    Ok(restrictions::is_restricted(&mut conn.conn(), user).await?)
}
