//! Documents' entries in the data inventory ([`crate::inventory`]): titles, the update
//! log, snapshots, named versions and comments, all under the workspace's key.

use crate::inventory::{
    Column, Hop, KeyPart, Owner, Place, Retention, ScopeRule, Shape, Subject, SubjectKind,
};

const ID: &[KeyPart] = &[KeyPart::Id("id")];
const UPDATE_KEY: &[KeyPart] = &[KeyPart::Id("document_id"), KeyPart::Int("seq")];
const SNAPSHOT_KEY: &[KeyPart] = &[KeyPart::Id("document_id")];
const SNAPSHOT_ROW: &[KeyPart] = &[KeyPart::Id("document_id"), KeyPart::Int("upto_seq")];
const TO_DOCUMENT: &[Hop] = &[Hop {
    column: "document_id",
    table: "documents",
}];
const IN_DOCUMENT: ScopeRule = ScopeRule::Workspace(Owner::via(TO_DOCUMENT, "workspace_id"));
const MEMBERS: Subject = Subject {
    kind: SubjectKind::Members,
    who: None,
};

const fn sealed(
    table: &'static str,
    key: &'static [KeyPart],
    row: &'static [KeyPart],
    column: &'static str,
    subject: Subject,
) -> Column {
    Column {
        table,
        key,
        column,
        shape: Shape::Sealed,
        place: Some(Place { row, column }),
        scope: IN_DOCUMENT,
        subject,
        retention: Retention::Content,
    }
}

/// Every document column holding ciphertext.
pub const INVENTORY: &[Column] = &[
    Column {
        scope: ScopeRule::Workspace(Owner::at("workspace_id")),
        ..sealed(
            "documents",
            ID,
            ID,
            "title",
            Subject {
                kind: SubjectKind::Creator,
                who: Some(Owner::at("created_by")),
            },
        )
    },
    sealed("document_updates", UPDATE_KEY, UPDATE_KEY, "body", MEMBERS),
    sealed(
        "document_snapshots",
        SNAPSHOT_KEY,
        SNAPSHOT_ROW,
        "state",
        MEMBERS,
    ),
    sealed(
        "document_versions",
        ID,
        ID,
        "name",
        Subject {
            kind: SubjectKind::Creator,
            who: Some(Owner::at("created_by")),
        },
    ),
    sealed(
        "document_versions",
        ID,
        ID,
        "state",
        Subject {
            kind: SubjectKind::Creator,
            who: Some(Owner::at("created_by")),
        },
    ),
    sealed(
        "document_comments",
        ID,
        ID,
        "body",
        Subject {
            kind: SubjectKind::Author,
            who: Some(Owner::at("author_id")),
        },
    ),
    sealed(
        "document_comments",
        ID,
        ID,
        "anchor",
        Subject {
            kind: SubjectKind::Author,
            who: Some(Owner::at("author_id")),
        },
    ),
];
