//! Workspaces' entries in the data inventory ([`crate::inventory`]): workspace names
//! and slugs, custom roles' names and descriptions and invitation emails, under the
//! workspace's key, with the blind indexes that look them up.

use crate::inventory::{
    Column, KeyPart, Owner, Place, Retention, ScopeRule, Shape, Subject, SubjectKind,
};

const ID: &[KeyPart] = &[KeyPart::Id("id")];
const MEMBERS: Subject = Subject {
    kind: SubjectKind::Members,
    who: None,
};

const fn sealed(
    table: &'static str,
    column: &'static str,
    place: &'static str,
    scope: &'static str,
) -> Column {
    Column {
        table,
        key: ID,
        column,
        shape: Shape::Sealed,
        place: Some(Place {
            row: ID,
            column: place,
        }),
        scope: ScopeRule::Workspace(Owner::at(scope)),
        subject: MEMBERS,
        retention: Retention::Content,
    }
}

const fn index(table: &'static str, column: &'static str) -> Column {
    Column {
        shape: Shape::BlindIndex,
        place: None,
        scope: ScopeRule::Deployment,
        ..sealed(table, column, column, "id")
    }
}

const INVITEE: Subject = Subject {
    kind: SubjectKind::Invitee,
    who: None,
};

/// Every workspace, role and invitation column holding ciphertext or personal data.
pub const INVENTORY: &[Column] = &[
    Column {
        subject: INVITEE,
        retention: Retention::Invitation,
        ..sealed("invitations", "email_enc", "email", "workspace_id")
    },
    Column {
        subject: INVITEE,
        retention: Retention::Invitation,
        ..index("invitations", "email_index")
    },
    sealed("workspaces", "name_enc", "name", "id"),
    sealed("workspaces", "slug_enc", "slug", "id"),
    index("workspaces", "slug_index"),
    sealed("roles", "name_enc", "name", "workspace_id"),
    sealed("roles", "description_enc", "description", "workspace_id"),
    index("roles", "name"),
];
