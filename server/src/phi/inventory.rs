//! The PHI safeguards' entries in the data inventory ([`crate::inventory`]): an emergency
//! access's reason, under its workspace's key.

use crate::inventory::{
    Column, KeyPart, Owner, Place, Retention, ScopeRule, Shape, Subject, SubjectKind,
};

const ID: &[KeyPart] = &[KeyPart::Id("id")];

/// Every PHI safeguard column holding ciphertext or personal data.
pub const INVENTORY: &[Column] = &[Column {
    table: "break_glass_grants",
    key: ID,
    column: "reason",
    shape: Shape::Sealed,
    place: Some(Place {
        row: ID,
        column: "reason",
    }),
    scope: ScopeRule::Workspace(Owner::at("workspace_id")),
    subject: Subject {
        kind: SubjectKind::Creator,
        who: Some(Owner::at("user_id")),
    },
    retention: Retention::Content,
}];
