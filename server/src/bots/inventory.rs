//! Bots' entries in the data inventory ([`crate::inventory`]): each bot's event signing
//! secret, under its workspace's key, and the queued event deliveries (the domain event's
//! serialized form: ids of the people, channels and messages concerned, no decrypted
//! content), kept until delivered or, once parked, until replayed and delivered.

use crate::inventory::{
    Column, KeyPart, Owner, Place, Retention, ScopeRule, Shape, Subject, SubjectKind,
};

const BOT: &[KeyPart] = &[KeyPart::Id("bot_id")];

/// Every bot column holding ciphertext or personal data.
pub const INVENTORY: &[Column] = &[
    Column {
        table: "bot_event_settings",
        key: BOT,
        column: "signing_secret_enc",
        shape: Shape::Sealed,
        place: Some(Place {
            row: BOT,
            column: "signing_secret",
        }),
        scope: ScopeRule::Workspace(Owner::at("workspace_id")),
        subject: Subject {
            kind: SubjectKind::Account,
            who: Some(Owner::at("bot_id")),
        },
        retention: Retention::Account,
    },
    Column {
        table: "bot_event_deliveries",
        key: &[KeyPart::Id("id")],
        column: "source",
        shape: Shape::Plain,
        place: None,
        scope: ScopeRule::Deployment,
        subject: Subject {
            kind: SubjectKind::Members,
            who: None,
        },
        retention: Retention::Transient,
    },
];
