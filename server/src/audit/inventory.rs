//! The audit log's entries in the data inventory ([`crate::inventory`]): the client
//! address and details of an entry, encrypted under the key of the person it is about (its
//! `subject` scope). The log is append-only and its hash covers these ciphertexts, so a
//! data-key rotation leaves them under the version they were written with; erasing the
//! subject's key makes them unreadable.

use crate::inventory::{
    Column, KeyPart, Owner, Place, Retention, ScopeRule, Shape, Subject, SubjectKind,
};

const KEY: &[KeyPart] = &[KeyPart::Int("seq")];
const ROW: &[KeyPart] = &[KeyPart::Text("id")];

const fn entry(column: &'static str, place: &'static str) -> Column {
    Column {
        table: "audit_events",
        key: KEY,
        column,
        shape: Shape::Chained,
        place: Some(Place {
            row: ROW,
            column: place,
        }),
        scope: ScopeRule::Stored("subject"),
        subject: Subject {
            kind: SubjectKind::Actor,
            who: Some(Owner::at("actor_id")),
        },
        retention: Retention::AuditLog,
    }
}

/// Every audit column holding ciphertext.
pub const INVENTORY: &[Column] = &[entry("ip_enc", "ip"), entry("details_enc", "details")];
