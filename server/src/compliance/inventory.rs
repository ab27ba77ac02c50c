//! The compliance controls' entries in the data inventory ([`crate::inventory`]): a legal
//! hold's name and reason, under its workspace's key; a breach's title and description, under
//! the deployment's compliance-record key (`system:audit`), kept as the register's evidence.

use crate::inventory::{
    Column, KeyPart, Owner, Place, Retention, ScopeRule, Shape, Subject, SubjectKind,
};

const ID: &[KeyPart] = &[KeyPart::Id("id")];

const fn hold(column: &'static str) -> Column {
    Column {
        table: "legal_holds",
        key: ID,
        column,
        shape: Shape::Sealed,
        place: Some(Place { row: ID, column }),
        scope: ScopeRule::Workspace(Owner::at("workspace_id")),
        subject: Subject {
            kind: SubjectKind::Creator,
            who: Some(Owner::at("created_by")),
        },
        retention: Retention::Content,
    }
}

const fn breach(column: &'static str) -> Column {
    Column {
        table: "breaches",
        key: ID,
        column,
        shape: Shape::Recorded,
        place: Some(Place { row: ID, column }),
        scope: ScopeRule::Deployment,
        subject: Subject {
            kind: SubjectKind::Affected,
            who: None,
        },
        retention: Retention::Register,
    }
}

/// Every compliance column holding ciphertext or personal data.
pub const INVENTORY: &[Column] = &[
    hold("name"),
    hold("reason"),
    breach("title"),
    breach("description"),
    breach("no_notification_reason"),
];
