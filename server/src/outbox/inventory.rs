//! The outbox's entry in the data inventory ([`crate::inventory`]): each stored event's
//! payload (its serialized form: ids of the people, channels and messages it concerns, no
//! decrypted content), kept until every consumer has passed it or it is older than
//! `outbox.max_age_seconds`.

use crate::inventory::{Column, KeyPart, Retention, ScopeRule, Shape, Subject, SubjectKind};

/// Every outbox column holding personal data.
pub const INVENTORY: &[Column] = &[Column {
    table: "outbox",
    key: &[KeyPart::Int("id")],
    column: "payload",
    shape: Shape::Plain,
    place: None,
    scope: ScopeRule::Deployment,
    subject: Subject {
        kind: SubjectKind::Members,
        who: None,
    },
    retention: Retention::Transient,
}];
