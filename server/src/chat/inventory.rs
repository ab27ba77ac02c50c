//! Chat's entries in the data inventory ([`crate::inventory`]): channel details,
//! message bodies, their kept versions, what deletions kept and client ids, all under the
//! workspace's key.

use crate::inventory::{
    Column, Hop, KeyPart, Owner, Place, Retention, ScopeRule, Shape, Subject, SubjectKind,
};

const ID: &[KeyPart] = &[KeyPart::Id("id")];
const VERSION_KEY: &[KeyPart] = &[KeyPart::Id("message_id"), KeyPart::Int("version")];
const TO_CHANNEL: &[Hop] = &[Hop {
    column: "channel_id",
    table: "channels",
}];
const TO_MESSAGE_CHANNEL: &[Hop] = &[
    Hop {
        column: "message_id",
        table: "messages",
    },
    Hop {
        column: "channel_id",
        table: "channels",
    },
];
const TO_MESSAGE: &[Hop] = &[Hop {
    column: "message_id",
    table: "messages",
}];
const MEMBERS: Subject = Subject {
    kind: SubjectKind::Members,
    who: None,
};
const AUTHOR: Subject = Subject {
    kind: SubjectKind::Author,
    who: Some(Owner::at("author_id")),
};

const fn channel(column: &'static str, place: &'static str) -> Column {
    Column {
        table: "channels",
        key: ID,
        column,
        shape: Shape::Sealed,
        place: Some(Place {
            row: ID,
            column: place,
        }),
        scope: ScopeRule::Workspace(Owner::at("workspace_id")),
        subject: MEMBERS,
        retention: Retention::Content,
    }
}

const fn message(column: &'static str, place: &'static str) -> Column {
    Column {
        table: "messages",
        key: ID,
        column,
        shape: Shape::Sealed,
        place: Some(Place {
            row: ID,
            column: place,
        }),
        scope: ScopeRule::Workspace(Owner::via(TO_CHANNEL, "workspace_id")),
        subject: AUTHOR,
        retention: Retention::Content,
    }
}

/// What a deletion kept of a message (its text and earlier versions, while held or in
/// its grace period), bound to (message_remnants, "<message_id>:<version>", column).
const fn remnant(column: &'static str) -> Column {
    Column {
        table: "message_remnants",
        key: VERSION_KEY,
        column,
        shape: Shape::Sealed,
        place: Some(Place {
            row: VERSION_KEY,
            column,
        }),
        scope: ScopeRule::Workspace(Owner::via(TO_MESSAGE_CHANNEL, "workspace_id")),
        subject: Subject {
            kind: SubjectKind::Author,
            who: Some(Owner::via(TO_MESSAGE, "author_id")),
        },
        retention: Retention::Content,
    }
}

/// Every chat column holding ciphertext or personal data.
pub const INVENTORY: &[Column] = &[
    message("body", "body"),
    message("blocks", "blocks"),
    message("client_msg_id_enc", "client_msg_id"),
    Column {
        shape: Shape::BlindIndex,
        place: None,
        scope: ScopeRule::Deployment,
        ..message("client_msg_index", "client_msg_id")
    },
    Column {
        table: "message_versions",
        key: VERSION_KEY,
        column: "body",
        shape: Shape::Sealed,
        place: Some(Place {
            row: VERSION_KEY,
            column: "body",
        }),
        scope: ScopeRule::Workspace(Owner::via(TO_MESSAGE_CHANNEL, "workspace_id")),
        subject: Subject {
            kind: SubjectKind::Author,
            who: Some(Owner::via(TO_MESSAGE, "author_id")),
        },
        retention: Retention::Content,
    },
    remnant("body"),
    remnant("blocks"),
    channel("name_enc", "name"),
    channel("topic_enc", "topic"),
    channel("purpose_enc", "purpose"),
    Column {
        shape: Shape::BlindIndex,
        place: None,
        scope: ScopeRule::Deployment,
        ..channel("name_index", "name")
    },
];
