//! Files' entries in the data inventory ([`crate::inventory`]): names, the content key
//! (the per-file key the contents are sealed under, wrapped under the workspace's key), the
//! thumbnail and the text sent with a file, all bound to the file's row; and the partial
//! chunk of an upload in progress, sealed under the content key itself. Contents live in
//! blobs under the content key, so a data-key rotation re-wraps the content key and leaves
//! the blobs alone.

use crate::inventory::{
    Column, KeyPart, Owner, Place, Retention, ScopeRule, Shape, Subject, SubjectKind,
};

const ID: &[KeyPart] = &[KeyPart::Id("id")];

const fn file(column: &'static str, place: &'static str) -> Column {
    Column {
        table: "files",
        key: ID,
        column,
        shape: Shape::Sealed,
        place: Some(Place {
            row: ID,
            column: place,
        }),
        scope: ScopeRule::Workspace(Owner::at("workspace_id")),
        subject: Subject {
            kind: SubjectKind::Uploader,
            who: Some(Owner::at("uploader_id")),
        },
        retention: Retention::Content,
    }
}

/// Every file column holding ciphertext.
pub const INVENTORY: &[Column] = &[
    file("name_enc", "name"),
    file("content_key", "content_key"),
    file("thumbnail_enc", "thumbnail"),
    file("text_enc", "text"),
    Column {
        shape: Shape::ContentKeyed,
        place: None,
        scope: ScopeRule::Deployment,
        retention: Retention::Transient,
        ..file("tail_enc", "tail")
    },
];
