//! The data-subject register's entries in the data inventory ([`crate::inventory`]): a
//! request's note, extension reason and outcome, and a restriction's reasons, under the
//! subject's key.
//!
//! They are kept like the audit log (`Retention::AuditLog`): erasing the person leaves the
//! request in the register and makes its free text unreadable by destroying their key.

use crate::inventory::{
    Column, KeyPart, Owner, Place, Retention, ScopeRule, Shape, Subject, SubjectKind,
};

const ID: &[KeyPart] = &[KeyPart::Id("id")];

const fn request(column: &'static str) -> Column {
    Column {
        table: "data_subject_requests",
        key: ID,
        column,
        shape: Shape::Sealed,
        place: Some(Place { row: ID, column }),
        scope: ScopeRule::User(Owner::at("subject_id")),
        subject: Subject {
            kind: SubjectKind::Account,
            who: Some(Owner::at("subject_id")),
        },
        retention: Retention::AuditLog,
    }
}

const fn restriction(column: &'static str) -> Column {
    Column {
        table: "processing_restrictions",
        key: ID,
        column,
        shape: Shape::Sealed,
        place: Some(Place { row: ID, column }),
        scope: ScopeRule::User(Owner::at("subject_id")),
        subject: Subject {
            kind: SubjectKind::Account,
            who: Some(Owner::at("subject_id")),
        },
        retention: Retention::AuditLog,
    }
}

/// Every column of the register and of restrictions of processing holding ciphertext or
/// personal data.
pub const INVENTORY: &[Column] = &[
    request("note"),
    request("extension_reason"),
    request("outcome"),
    restriction("reason"),
    restriction("lift_reason"),
];
